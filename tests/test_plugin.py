"""The pytest surface, driven through real pytest runs (pytester) against a real engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import service
from pytest_ecstask.lifecycle import LABEL_SESSION


def taskdef(**fields: Any) -> dict[str, Any]:
    return {
        "family": "web",
        "networkMode": "bridge",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "registry.example/web:1",
                "command": service("echo ok > /www/index.html; httpd -p 80 -h /www"),
                "portMappings": [{"containerPort": 80}],
            }
        ],
        **fields,
    }


@pytest.fixture
def project(pytester: pytest.Pytester, image: str) -> pytest.Pytester:
    pytester.makefile(".json", taskdef=json.dumps(taskdef()))
    pytester.makeini(
        f"""
        [pytest]
        ecs_images = registry.example/web:1={image}
        ecs_pull = never
        ecs_stop_timeout = 5
        addopts = -p no:benchmark
        """
    )
    return pytester


def engine_resources(docker_api: Any, session_id: str) -> int:
    label = {"label": f"{LABEL_SESSION}={session_id}"}
    return len(docker_api.containers(all=True, filters=label)) + len(docker_api.networks(filters=label))


def session_of(result: pytest.RunResult) -> str:
    line = next(line for line in result.outlines if line.startswith("ecstask: session "))
    return line.split()[2].rstrip(",")


def test_session_task_from_command_line_is_shared_by_the_session(project: pytest.Pytester, docker_api: Any) -> None:
    project.makepyfile(
        """
        import time
        import urllib.request

        seen = []

        def test_one(ecs_task):
            seen.append(ecs_task.id)
            app = ecs_task.containers["app"]
            assert app.status == "RUNNING"
            url = f"http://{app.host}:{app.port(80)}/"
            for _ in range(50):  # httpd may still be binding its port
                try:
                    body = urllib.request.urlopen(url, timeout=10).read()
                    break
                except OSError:
                    time.sleep(0.1)
            assert body.strip() == b"ok"

        def test_two(ecs_task):
            assert seen == [ecs_task.id]
            assert ecs_task.family == "web" and ecs_task.arn.endswith(ecs_task.id)
        """
    )
    result = project.runpytest("--ecs-taskdef=taskdef.json", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["ecstask: session *, taskdef *taskdef.json, lease *.lease, endpoints at 169.254.170.2*"]
    )
    assert engine_resources(docker_api, session_of(result)) == 0


def test_ini_taskdef_and_marker_task_per_test(project: pytest.Pytester, docker_api: Any) -> None:
    project.makepyfile(
        """
        import pytest

        ids = []

        @pytest.mark.ecs_task("taskdef.json", stop_timeout=1)
        def test_marked(ecs_task):
            ids.append(ecs_task.id)
            assert ecs_task.containers["app"].status == "RUNNING"

        @pytest.mark.ecs_task("taskdef.json")
        def test_marked_again(ecs_task):
            assert ids and ids[0] != ecs_task.id  # a task of its own
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=2)
    assert engine_resources(docker_api, session_of(result)) == 0


def test_factory_starts_several_tasks_and_removes_them(project: pytest.Pytester, docker_api: Any) -> None:
    project.makepyfile(
        """
        def test_two_tasks(ecs_task_factory):
            first = ecs_task_factory("taskdef.json")
            second = ecs_task_factory("taskdef.json", stop_timeout=1)
            assert first.id != second.id
            assert first.containers["app"].port(80) != second.containers["app"].port(80)
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    assert engine_resources(docker_api, session_of(result)) == 0


def test_ecs_task_without_a_task_definition_says_how_to_give_one(project: pytest.Pytester) -> None:
    project.makepyfile("def test_x(ecs_task):\n    pass\n")
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs a task definition: pass --ecs-taskdef=PATH*"])
    assert "Traceback" not in result.stdout.str()


def test_invalid_task_definition_is_a_usage_error_naming_file_and_path(project: pytest.Pytester) -> None:
    bad = taskdef()
    bad["containerDefinitions"][0]["dependsOn"] = [{"containerName": "db", "condition": "START"}]
    project.makefile(".json", bad=json.dumps(bad))
    project.makepyfile("def test_x():\n    pass\n")
    result = project.runpytest("--ecs-taskdef=bad.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bad.json*containerDefinitions[[]0[]].dependsOn[[]0[]].containerName*'db'*"])
    assert "Traceback" not in result.stderr.str()


def test_task_that_cannot_start_fails_the_test_setup_with_the_reason(project: pytest.Pytester, image: str) -> None:
    failing = taskdef()
    failing["containerDefinitions"].insert(
        0, {"name": "migrate", "image": image, "essential": False, "command": ["sh", "-c", "echo boom; exit 4"]}
    )
    failing["containerDefinitions"][1]["dependsOn"] = [{"containerName": "migrate", "condition": "SUCCESS"}]
    project.makefile(".json", failing=json.dumps(failing))
    project.makepyfile(
        """
        import pytest

        @pytest.mark.ecs_task("failing.json")
        def test_x(ecs_task):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*failed to start*", "*app: STOPPED exit code 143*'migrate' exited with code 4*", "*boom*"]
    )


def test_check_false_hands_over_a_task_that_did_not_start_and_the_summary_does_not_count_it(
    project: pytest.Pytester,
) -> None:
    broken = taskdef(family="broken")
    broken["containerDefinitions"][0]["command"] = ["/no/such/program"]  # Docker refuses to start it
    project.makefile(".json", broken=json.dumps(broken))
    project.makepyfile(
        """
        import pytest

        @pytest.mark.ecs_task("broken.json", check=False)
        def test_gets_the_stopped_task(ecs_task):
            assert ecs_task.stop_code == "TaskFailedToStart"
            assert ecs_task.containers["app"].reason.startswith("CannotStartContainerError")

        @pytest.mark.ecs_task("taskdef.json")
        def test_started(ecs_task):
            assert ecs_task.status == "RUNNING"

        @pytest.mark.ecs_task("taskdef.json", check=False, images={"registry.example/web:1": "not-built/anywhere:1"})
        def test_a_missing_image_still_fails_the_setup(ecs_task):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*image 'not-built/anywhere:1' for container 'app'*"])
    result.stdout.fnmatch_lines(["ecstask: started 1 task(s) in * s; slowest web:1 * s"])


def test_a_wait_for_name_that_is_not_a_container_fails_before_anything_is_created(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        from pathlib import Path

        def pytest_ecstask_task_event(task, event, container, at, details):
            with Path("events").open("a") as events:
                events.write(f"{event} {container}\\n")
        """
    )
    project.makepyfile(
        """
        import pytest
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        @pytest.mark.ecs_task("taskdef.json", wait_for={"ap": LogMessageWaitStrategy("ready")})
        def test_x(ecs_task):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*wait_for names 'ap', which is not a container of web (containers: 'app')"])
    assert not (project.path / "events").exists(), (project.path / "events").read_text()  # not even planned


def test_unknown_marker_argument_is_named(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.ecs_task("taskdef.json", stop_timout=1)
        def test_x(ecs_task):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown argument(s) stop_timout*"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--ecs-stop-timeout=soon"], "--ecs-stop-timeout: 'soon' is not a number of seconds"),
        (["--ecs-start-timeout=-1"], "--ecs-start-timeout: '-1' must not be negative"),
        (["--ecs-image=nonsense"], "--ecs-image: 'nonsense' is not NAME=LOCAL"),
        (["-o", "ecs_pull=sometimes"], "pull policy 'sometimes' is not one of missing, always, never"),
        (["--ecs-endpoint-port=http"], "--ecs-endpoint-port / ini ecs_endpoint_port: 'http' is not a port number"),
        (["--ecs-sweep-cap=-1"], "--ecs-sweep-cap / ini ecs_sweep_cap: '-1' is not a whole number >= 0"),
        (["--ecs-log-lines=many"], "--ecs-log-lines / ini ecs_log_lines: 'many' is not a whole number >= 0"),
        (["-o", "ecs_logs=sometimes"], "ini ecs_logs: 'sometimes' is not one of on-failure, always, never"),
        (["-o", "ecs_task_credentials=only-a-key"], "ini ecs_task_credentials: expected ACCESS_KEY_ID:SECRET"),
        (["--ecs-vars-file=missing.env"], "missing.env"),
        (["--ecs-secrets-file=missing.json"], "missing.json"),
    ],
)
def test_bad_option_values_are_usage_errors_before_any_test(
    project: pytest.Pytester, args: list[str], says: str
) -> None:
    project.makepyfile("def test_x():\n    pass\n")
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{says}*"])


def test_setup_failure_message_is_shown_once(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.ecs_task("taskdef.json", images={"registry.example/web:1": "not-built/anywhere:1"})
        def test_x(ecs_task):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    body = result.stdout.str().split("short test summary info")[0]  # the summary may repeat it in one line
    assert body.count("image 'not-built/anywhere:1' for container 'app'") == 1
    assert "During handling" not in result.stdout.str()


def test_image_mapping_precedence_marker_then_command_line_then_ini(project: pytest.Pytester, image: str) -> None:
    project.makepyfile(
        f"""
        import pytest

        @pytest.mark.ecs_task("taskdef.json", images={{"registry.example/*": "{image}"}})
        def test_marker_wins(ecs_task):
            assert ecs_task.containers["app"].image == "{image}"

        def test_command_line_glob_beats_ini_glob(ecs_task_factory):
            task = ecs_task_factory("taskdef.json")
            assert task.containers["app"].image == "{image}"
        """
    )
    result = project.runpytest(
        f"--ecs-image=registry.example/web:*={image}", "-o", "ecs_images=registry.example/*=not-built/x:1"
    )
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["alone", "xdist"])
def test_no_engine_is_a_plain_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    project.makepyfile("def test_x(ecs_task):\n    pass\n")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = project.runpytest_subprocess("--ecs-taskdef=taskdef.json", *xdist)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*No Docker engine answered*DOCKER_HOST*"])
    out = result.stdout.str()
    assert "Traceback" not in out and "another exception occurred" not in out and "plugin.py" not in out


def test_xdist_workers_share_the_controllers_session_id(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest
        from pathlib import Path

        @pytest.mark.parametrize("n", range(4))
        def test_id(n, request):
            from pytest_ecstask.plugin import session_id_key
            worker = request.config.workerinput["workerid"]
            Path(f"{worker}-{n}.id").write_text(request.config.stash[session_id_key])
        """
    )
    result = project.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=4)
    written = {p.name.split("-")[0]: p.read_text() for p in project.path.glob("*.id")}
    assert set(written) == {"gw0", "gw1"}
    assert set(written.values()) == {session_of(result)}


def test_xdist_controller_removes_the_session_task_even_when_it_cannot_rebuild_it(
    project: pytest.Pytester, docker_api: Any
) -> None:
    project.makeconftest(
        """
        import os

        def pytest_ecstask_adjust_task_definition(definition, source):
            if os.path.exists("broken"):
                raise RuntimeError("the definition cannot be read any more")
        """
    )
    project.makepyfile(
        """
        from pathlib import Path

        def test_uses_the_session_task(ecs_task):
            assert ecs_task.status == "RUNNING"
            Path("broken").write_text("")
        """
    )
    result = project.runpytest_subprocess("-n", "2", "--ecs-taskdef=taskdef.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*the session task is removed without its stop order: RuntimeError: the definition*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert engine_resources(docker_api, session_of(result)) == 0


def test_xdist_session_task_sends_events_and_gets_its_log_files(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import os

        def pytest_ecstask_task_event(task, event, container, at, details):
            with open(f"events-{os.getpid()}.txt", "a") as out:
                out.write(f"{event} {container or '-'}\\n")
        """
    )
    project.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_uses_the_session_task(n, ecs_task):
            assert ecs_task.status == "RUNNING"
        """
    )
    result = project.runpytest_subprocess("-n", "2", "--ecs-taskdef=taskdef.json", "--ecs-log-dir=logs")
    result.assert_outcomes(passed=4)
    events = [p.read_text().splitlines() for p in project.path.glob("events-*.txt")]
    assert len(events) == 1, "only the worker that starts the session task sends its events"
    assert "planned -" in events[0] and "container_started app" in events[0]
    logs = sorted(p.name for p in (project.path / "logs").glob("*/*.log"))
    assert logs == ["app.log"], logs


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["alone", "xdist"])
def test_the_session_task_waits_for_the_strategies_of_its_fixture(project: pytest.Pytester, xdist: list[str]) -> None:
    project.makeconftest(
        """
        import pytest
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        @pytest.fixture(scope="session")
        def ecs_session_wait_for():
            return {"app": LogMessageWaitStrategy("warmed up").with_startup_timeout(20)}
        """
    )
    (project.path / "taskdef.json").write_text(
        json.dumps(taskdef()).replace("echo ok > /www/index.html", "sleep 1; echo warmed up; echo ok > /www/index.html")
    )
    project.makepyfile(
        """
        def test_ready_at_once(ecs_task):
            assert "warmed up" in ecs_task.containers["app"].logs()
        """
    )
    result = project.runpytest_subprocess("--ecs-taskdef=taskdef.json", *xdist)
    result.assert_outcomes(passed=1)


def test_a_session_task_that_never_gets_ready_fails_its_tests(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        @pytest.fixture(scope="session")
        def ecs_session_wait_for():
            return {"app": LogMessageWaitStrategy("never said").with_startup_timeout(1)}
        """
    )
    project.makepyfile("def test_x(ecs_task):\n    pass\n")
    result = project.runpytest_subprocess("--ecs-taskdef=taskdef.json")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*container 'app' of task web:1 did not get ready*"])


def test_xdist_session_task_that_cannot_start_errors_every_test_with_its_message(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_uses_the_session_task(n, ecs_task):
            pass
        """
    )
    result = project.runpytest_subprocess(
        "-n", "2", "--ecs-taskdef=taskdef.json", "-o", "ecs_images=registry.example/web:1=not-built/x:1"
    )
    result.assert_outcomes(errors=4)
    out = result.stdout.str()
    assert out.count("image 'not-built/x:1' for container 'app' is not present on the engine") >= 4, out
    assert "another exception occurred" not in out and "Traceback" not in out


def test_help_lists_every_option_with_its_ini_twin(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for option, ini in [
        ("--ecs-taskdef", "ecs_taskdef"),
        ("--ecs-pull", "ecs_pull"),
        ("--ecs-image", "ecs_images"),
        ("--ecs-stop-timeout", "ecs_stop_timeout"),
        ("--ecs-start-timeout", "ecs_start_timeout"),
    ]:
        result.stdout.fnmatch_lines([f"*{option}*"])
        result.stdout.fnmatch_lines([f"*{ini} *"])


def test_a_session_id_in_use_by_a_live_run_is_a_usage_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_ecstask.lifecycle import Lease, new_session_id

    session = new_session_id()
    lease = Lease.acquire(session)  # the live run
    try:
        project.makepyfile("def test_x():\n    pass\n")
        monkeypatch.setenv("PYTEST_ECSTASK_SESSION", session)
        result = project.runpytest_subprocess()
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*session id '{session}' (from PYTEST_ECSTASK_SESSION) is in use*"])
        assert "Traceback" not in result.stderr.str()
    finally:
        lease.release()


@pytest.mark.parametrize(
    ("launch_type", "execution_env"),
    [("FARGATE", "AWS_ECS_FARGATE"), ("EXTERNAL", "AWS_ECS_EXTERNAL"), ("EC2", "AWS_ECS_EC2")],
)
def test_the_plan_shows_the_execution_env_of_the_launch_type_a_run_would_set(
    pytester: pytest.Pytester, launch_type: str, execution_env: str
) -> None:
    # No engine: --ecs-plan never asks one. Fargate's own rules want awsvpc and a task cpu/memory pair it offers.
    pytester.makefile(".json", taskdef=json.dumps(taskdef(networkMode="awsvpc", cpu="256", memory="512")))
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--ecs-plan",
        "--ecs-taskdef=taskdef.json",
        f"--ecs-launch-type={launch_type}",
        "--ecs-json",
    )
    assert result.ret == 0, result.stderr.str()
    (app,) = json.loads(result.stdout.str())["containers"]
    assert app["environment"]["AWS_EXECUTION_ENV"] == execution_env
