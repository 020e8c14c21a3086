"""What a test author sees: logs, timeline, the plan, failure explanations, readiness, fault injection."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_docs import page, section
from test_runtime import fetch

from conftest import IMAGE, service

Run = Callable[..., Any]
TASKDEFS = Path(__file__).resolve().parents[1].parent / "shared" / "taskdefs"


def chatty(image: str) -> dict[str, Any]:
    return {
        "family": "chatty",
        "networkMode": "bridge",
        "containerDefinitions": [
            {"name": "db", "image": image, "command": service("echo db-is-up; echo db-warning >&2")},
            {
                "name": "app",
                "image": image,
                "command": service("echo app-listening"),
                "dependsOn": [{"containerName": "db", "condition": "START"}],
            },
        ],
    }


@pytest.fixture
def project(pytester: pytest.Pytester, image: str) -> pytest.Pytester:
    pytester.makefile(".json", chatty=json.dumps(chatty(image)))
    pytester.makeini("[pytest]\necs_pull = never\necs_stop_timeout = 2\naddopts = -p no:benchmark\n")
    return pytester


def test_failing_test_shows_logs_timeline_and_state_in_terminal_and_junit(project: pytest.Pytester) -> None:
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("chatty.json")
        def test_fails(ecs_task):
            ecs_task.wait_for_log("app", "app-listening")
            assert False, "the app did not answer"

        @pytest.mark.ecs_task("chatty.json")
        def test_passes(ecs_task):
            ecs_task.wait_for_log("db", "db-is-up")
        """)
    result = project.runpytest("--junitxml=report.xml")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert out.count("ecs task chatty:1") >= 1
    result.stdout.fnmatch_lines(["*timeline:*", "*db: started*", "*logs of db*", "*logs of app*", "*out app-listening"])
    result.stdout.fnmatch_lines(["*logs of db*", "*out db-is-up"])
    result.stdout.fnmatch_lines(["*logs of db*", "*err db-warning"])
    failure = out.split("FAILURES")[1].split("short test summary")[0]
    assert "db-is-up" in failure and "the app did not answer" in failure
    assert out.count("logs of db") == 1  # only for the failing test
    junit = (project.path / "report.xml").read_text()
    assert "db-is-up" in junit and "app-listening" in junit and "timeline:" in junit


def test_the_session_task_is_reported_when_asked_for_directly_or_through_a_fixture(project: pytest.Pytester) -> None:
    project.makeconftest("""
        import pytest

        @pytest.fixture
        def app_logs(ecs_session_task):
            return ecs_session_task.containers["app"]
        """)
    project.makepyfile("""
        def test_direct(ecs_session_task):
            ecs_session_task.wait_for_log("app", "app-listening")
            assert False, "direct"

        def test_through_a_fixture(app_logs):
            assert False, "through a fixture"
        """)
    result = project.runpytest("--ecs-taskdef=chatty.json")
    result.assert_outcomes(failed=2)
    failures = result.stdout.str().split("FAILURES")[1].split("short test summary")[0]
    blocks = re.split(r"\n_{3,} (test_\w+) _{3,}\n", failures)
    bodies = dict(zip(blocks[1::2], blocks[2::2], strict=True))
    assert set(bodies) == {"test_direct", "test_through_a_fixture"}
    for body in bodies.values():
        assert "ecs task chatty:1" in body and "out app-listening" in body, body


def test_logs_always_and_never(project: pytest.Pytester) -> None:
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("chatty.json")
        def test_passes(ecs_task):
            ecs_task.wait_for_log("db", "db-is-up")
        """)
    always = project.runpytest("--ecs-logs=always", "-rP")
    always.assert_outcomes(passed=1)
    assert "logs of db" in always.stdout.str()
    project.makepyfile(
        test_fail="""
        import pytest

        @pytest.mark.ecs_task("chatty.json")
        def test_fails(ecs_task):
            ecs_task.wait_for_log("db", "db-is-up")
            assert False
        """
    )
    never = project.runpytest("--ecs-logs=never", "test_fail.py")
    never.assert_outcomes(failed=1)
    assert "logs of db" not in never.stdout.str()


def test_essential_exit_during_the_test_is_explained_in_its_failure(project: pytest.Pytester, image: str) -> None:
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("chatty.json")
        def test_app_dies(ecs_task):
            ecs_task.containers["app"].kill("SIGKILL")
            ecs_task.wait(timeout=30)
            assert ecs_task.containers["app"].status == "RUNNING"
        """)
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*stopped: EssentialContainerExited: Essential container in task exited: 'app' exited with code 137*"]
    )


def test_verbose_shows_each_startup_step_and_log_dir_keeps_full_logs(project: pytest.Pytester) -> None:
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("chatty.json")
        def test_ok(ecs_task):
            ecs_task.wait_for_log("app", "app-listening")
        """)
    result = project.runpytest_subprocess("-v", "--ecs-log-dir=logs")  # real output capture
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "ecstask chatty:1 * db: created",
            "ecstask chatty:1 * app: waiting for db START",
            "ecstask chatty:1 * app: started",
        ]
    )
    files = sorted(p.name for p in (project.path / "logs").glob("chatty-1-*/*.log"))
    assert files == ["app.log", "db.log"]
    db_log = next((project.path / "logs").glob("chatty-1-*/db.log")).read_text()
    assert " stdout db-is-up" in db_log and " stderr db-warning" in db_log


def test_verbose_startup_steps_print_live_not_into_the_captured_output(project: pytest.Pytester) -> None:
    project.makepyfile("""
        import pytest

        @pytest.fixture
        def noisy():
            print("fixture-setup-output")

        @pytest.mark.ecs_task("chatty.json")
        def test_fails(noisy, ecs_task):
            assert False
        """)
    result = project.runpytest_subprocess("-v")  # real output capture
    result.assert_outcomes(failed=1)
    live, report = result.stdout.str().split(" FAILURES ")
    # Between the test's name and its outcome, as they happen, with the default capture.
    assert re.search(r"::test_fails \n+(ecstask chatty:1 .*\n)+\n*\S*::test_fails FAILED", live), live
    captured = report.split("Captured stdout setup")[1]
    assert "fixture-setup-output" in captured and "ecstask chatty:1" not in captured
    # The debugging page says the same: no -s needed, nothing in the captured output.
    docs = section(page("debugging.md"), "## Startup steps as they happen: `-v`")
    assert "no `-s` is needed" in docs and "not part of the test's captured output" in docs


def test_plan_prints_order_gates_and_masks_secrets(pytester: pytest.Pytester, image: str) -> None:
    taskdef = {
        "family": "shop",
        "networkMode": "awsvpc",
        "containerDefinitions": [
            {
                "name": "db",
                "image": "postgres:16",
                "healthCheck": {"command": ["CMD", "pg_isready"]},
                "portMappings": [{"containerPort": 5432}],
            },
            {
                "name": "app",
                "image": "shop:1",
                "command": ["serve"],
                "environment": [{"name": "MODE", "value": "prod"}],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"}],
                "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
            },
        ],
    }
    pytester.makefile(".json", shop=json.dumps(taskdef))
    result = pytester.runpytest("--ecs-plan", "--ecs-taskdef=shop.json", f"--ecs-image=shop:1={image}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "task shop:1  network mode awsvpc",
            "*1. db",
            "*2. app    [[]app after db HEALTHY[]]",
            "stop order: app -> db",
            "container db",
            "  ports       5432/tcp -> ephemeral",
            "container app",
            f"  image       {image}",
            "  env         *MODE, DB_PASSWORD (secret)*",
        ]
    )
    data = json.loads(pytester.runpytest("--ecs-plan", "--ecs-taskdef=shop.json", "--ecs-json").stdout.str())
    app = next(c for c in data["containers"] if c["name"] == "app")
    assert app["environment"]["DB_PASSWORD"] == "******" and app["environment"]["MODE"] == "prod"
    assert data["start_levels"] == [["db"], ["app"]]


@pytest.mark.skipif(not TASKDEFS.exists(), reason="shared/taskdefs is not beside the checkout")
@pytest.mark.parametrize(
    ("name", "says"),
    [
        (
            "28_consul-server-host-network.json",
            [
                "task consulServer:1  network mode host",
                "*1. consulServer",
                "*entryPoint  [[]'/usr/local/bin/docker-entrypoint.sh'[]]*",
            ],
        ),
        (
            "48_tf-array-rails-nginx-links-ssm-names.json",
            [
                "*1. bd-webapp",
                "*2. nginx    [[]nginx after bd-webapp START[]]",
                "*DB_PASSWORD (secret)*",
                "*80/tcp -> 80*",
            ],
        ),
        ("12_firelens-efs-wrapped-taskDefinition.json", ["ERROR: *efsVolumeConfiguration*"]),
    ],
)
def test_plan_of_real_task_definitions(pytester: pytest.Pytester, name: str, says: list[str]) -> None:
    result = pytester.runpytest("--ecs-plan", f"--ecs-taskdef={TASKDEFS / name}")
    if says[0].startswith("ERROR"):
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(says)
    else:
        assert result.ret == 0
        result.stdout.fnmatch_lines(says)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# -- logs, readiness and faults on a live task ------------------------------------------------------------


def test_task_logs_interleave_by_time_with_container_prefixes(run: Run, image: str) -> None:
    t = run(chatty(image))
    t.wait_for_log("app", "app-listening")
    text = t.logs()
    assert "db  | db-is-up" in text and "app | app-listening" in text
    assert text.index("db-is-up") < text.index("app-listening")  # db started first
    assert t.logs("db").splitlines() == ["db-is-up", "db-warning"] or set(t.logs("db").split()) == {
        "db-is-up",
        "db-warning",
    }


def test_wait_for_log_times_out_with_the_last_lines(run: Run, image: str) -> None:
    t = run(chatty(image))
    with pytest.raises(TimeoutError, match=r"no log line matched 'never printed' within 0.5 s; it is RUNNING"):
        t.wait_for_log("db", "never printed", timeout=0.5)


def test_awslogs_containers_are_grouped_as_cloudwatch_would(run: Run) -> None:
    t = run(
        {
            "family": "cw",
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "command": service("echo to-cloudwatch"),
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {"awslogs-group": "/ecs/cw", "awslogs-stream-prefix": "web"},
                    },
                },
                {"name": "side", "image": IMAGE, "command": service(), "essential": False},
            ],
        }
    )
    t.wait_for_log("app", "to-cloudwatch")
    assert list(t.awslogs) == [("/ecs/cw", f"web/app/{t.id}")]
    assert t.awslogs[("/ecs/cw", f"web/app/{t.id}")].strip() == "to-cloudwatch"


def test_testcontainers_wait_strategies_apply_after_ecs_gating(run: Run) -> None:
    from testcontainers.core.wait_strategies import HttpWaitStrategy, LogMessageWaitStrategy

    t = run(
        {
            "family": "ready",
            "containerDefinitions": [
                {
                    "name": "web",
                    "image": IMAGE,
                    "portMappings": [{"containerPort": 8080}],
                    "command": service("sleep 1; echo hi > /www/index.html; httpd -p 8080 -h /www; echo serving"),
                },
            ],
        },
        wait_for={"web": HttpWaitStrategy(8080).for_status_code(200)},
    )
    web = t.containers["web"]
    assert fetch(f"http://{web.host}:{web.port(8080)}/") == "hi"  # ready: no retry was needed
    assert any("ready (HttpWaitStrategy)" in e.what for e in t.timeline)
    from pytest_ecstask.errors import TaskFailedToStart

    with pytest.raises(TaskFailedToStart, match="container 'web' of task ready:1 did not get ready"):
        run(
            {"family": "ready", "containerDefinitions": [{"name": "web", "image": IMAGE, "command": service()}]},
            wait_for={"web": LogMessageWaitStrategy("never said").with_startup_timeout(1)},
        )


def test_exec_health_and_status_wait_strategies_work_on_task_containers(run: Run) -> None:
    from testcontainers.core.wait_strategies import (
        ContainerStatusWaitStrategy,
        ExecWaitStrategy,
        HealthcheckWaitStrategy,
    )

    from pytest_ecstask.errors import TaskFailedToStart

    health = {"command": ["CMD-SHELL", "test -f /tmp/up"], "interval": 5, "retries": 3}
    t = run(
        {
            "family": "ready",
            "containerDefinitions": [
                {"name": "db", "image": IMAGE, "command": service("touch /tmp/up"), "healthCheck": health},
                {"name": "app", "image": IMAGE, "command": service("sleep 1; touch /tmp/migrated")},
                {"name": "side", "image": IMAGE, "command": service()},
            ],
        },
        wait_for={
            "db": HealthcheckWaitStrategy().with_startup_timeout(30),
            "app": ExecWaitStrategy(["test", "-f", "/tmp/migrated"]).with_startup_timeout(30),
            "side": ContainerStatusWaitStrategy(),
        },
    )
    assert t.containers["db"].health == "HEALTHY"
    assert t.containers["app"].exec(["test", "-f", "/tmp/migrated"]).exit_code == 0
    ready = [e.what for e in t.timeline if e.what.startswith("ready (")]
    assert ready == [
        "ready (HealthcheckWaitStrategy)",
        "ready (ExecWaitStrategy)",
        "ready (ContainerStatusWaitStrategy)",
    ]
    with pytest.raises(
        TaskFailedToStart, match=r"'done' of task ready:1 did not get ready: .*status not valid.*STOPPED"
    ):
        run(
            {
                "family": "ready",
                "containerDefinitions": [
                    {
                        "name": "app",
                        "image": IMAGE,
                        "command": service(),
                        "dependsOn": [{"containerName": "done", "condition": "SUCCESS"}],
                    },
                    {"name": "done", "image": IMAGE, "command": ["true"], "essential": False},
                ],
            },
            wait_for={"done": ContainerStatusWaitStrategy()},
        )


def test_kill_with_a_signal_and_essential_semantics(run: Run) -> None:
    t = run(
        {
            "family": "faults",
            "containerDefinitions": [
                {"name": "app", "image": IMAGE, "command": service()},
                {"name": "side", "image": IMAGE, "command": ["sh", "-c", "sleep 3600"], "essential": False},
            ],
        }
    )
    t.containers["side"].kill(signal.SIGTERM.value)  # sh as PID 1 ignores TERM: still running
    time.sleep(0.3)
    assert t.containers["side"].status == "RUNNING"
    t.containers["side"].kill("SIGKILL")
    for _ in range(50):
        if t.containers["side"].status == "STOPPED":
            break
        time.sleep(0.1)
    assert t.containers["side"].exit_code == 137 and t.status == "RUNNING"  # not essential: the task goes on
    t.containers["app"].kill()
    t.wait(timeout=30)
    assert t.stop_code == "EssentialContainerExited" and "'app' exited with code 137" in t.stopped_reason


def test_stop_and_restart_a_non_essential_container(run: Run) -> None:
    t = run(
        {
            "family": "faults",
            "containerDefinitions": [
                {"name": "app", "image": IMAGE, "command": service()},
                {"name": "worker", "image": IMAGE, "command": service("echo worker-start"), "essential": False},
            ],
        }
    )
    worker = t.containers["worker"]
    worker.stop(timeout=2)
    assert worker.status == "STOPPED" and worker.exit_code == 0 and t.status == "RUNNING"
    worker.restart(timeout=2)
    for _ in range(50):
        if worker.status == "RUNNING":
            break
        time.sleep(0.1)
    assert worker.status == "RUNNING" and worker.exit_code is None
    for _ in range(50):
        if worker.logs().count("worker-start") == 2:
            break
        time.sleep(0.1)
    assert worker.logs().count("worker-start") == 2  # the same container ran its command again


def test_pause_and_unpause(run: Run) -> None:
    t = run({"family": "faults", "containerDefinitions": [{"name": "app", "image": IMAGE, "command": service()}]})
    app = t.containers["app"]
    app.pause()
    assert app.inspect()["State"]["Paused"] is True
    for _ in range(50):
        if app.paused:
            break
        time.sleep(0.1)
    assert app.paused
    app.unpause()
    assert app.inspect()["State"]["Paused"] is False
    assert app.exec(["true"]).exit_code == 0


def test_disconnect_and_reconnect_from_the_task_network(run: Run) -> None:
    # Bridge tasks run on Docker's default bridge, where only links give names (as on ECS). While a link
    # target is off the bridge Docker refuses exec in the containers linked to it, so the cut is seen from the
    # host, through the published port.
    t = run(
        {
            "family": "faults",
            "networkMode": "bridge",
            "containerDefinitions": [
                {
                    "name": "web",
                    "image": IMAGE,
                    "command": service("echo up > /www/index.html; httpd -p 80 -h /www"),
                    "portMappings": [{"containerPort": 80}],
                },
                {"name": "client", "image": IMAGE, "command": service(), "links": ["web:frontend"]},
            ],
        }
    )
    client, web = t.containers["client"], t.containers["web"]
    assert fetch_from(client, "http://frontend/") == "up"
    url = f"http://{web.host}:{web.port(80)}/"
    web.disconnect()
    assert not reachable(url)
    web.reconnect()
    assert fetch(f"http://{web.host}:{web.port(80)}/") == "up"  # published again, on a new host port
    assert fetch_from(client, "http://frontend/") == "up"  # the link comes back with it
    client.disconnect()
    assert fetch_from(client, "http://frontend/", attempts=1) is None
    client.reconnect()
    assert fetch_from(client, "http://frontend/") == "up"


def reachable(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def fetch_from(container: Any, url: str, attempts: int = 30) -> Any:
    for _ in range(attempts):
        result = container.exec(["sh", "-c", f"timeout 2 wget -qO- {url}"])
        if result.exit_code == 0:
            return result.output.strip()
        time.sleep(0.1)
    return None


STUBBORN = ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]  # a shell entry point ignoring SIGTERM


@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist"])
def test_the_summary_names_each_container_killed_at_its_stop_timeout_once(
    project: pytest.Pytester, xdist: bool
) -> None:
    taskdef = {
        "family": "stubborn",
        "containerDefinitions": [
            {"name": "app", "image": IMAGE, "command": service(), "memory": 32},
            {"name": "shell", "image": IMAGE, "command": STUBBORN, "memory": 32, "essential": False},
        ],
    }
    project.makefile(".json", stubborn=json.dumps(taskdef))
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("stubborn.json")
        def test_one(ecs_task):
            pass

        @pytest.mark.ecs_task("stubborn.json")
        def test_two(ecs_task):
            pass
        """)
    result = project.runpytest(*(["-n", "2"] if xdist else []))
    result.assert_outcomes(passed=2)
    lines = [line for line in result.stdout.lines if "did not exit on SIGTERM" in line]
    assert len(lines) == 1, result.stdout.str()  # once per container, however many tasks ran it
    assert re.fullmatch(
        r"ecstask: container 'shell' of task stubborn:1 did not exit on SIGTERM and was killed after its stop "
        r"timeout of 2 s, 2 times: (\d+\.\d) s lost\. Let its process handle SIGTERM \(a shell entry point does "
        r"not pass it on: exec the program\), or lower its stopTimeout or --ecs-stop-timeout",
        lines[0],
    ), lines[0]
    assert float(re.search(r"(\d+\.\d) s lost", lines[0]).group(1)) >= 4.0  # type: ignore[union-attr]
    assert "'app'" not in lines[0]  # app handles SIGTERM: nothing to say of it
