"""ECS semantics on a real Docker engine: each test runs a real multi-container task built from busybox."""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import IMAGE, default_network, service
from pytest_ecstask.errors import DockerUnavailable, EcsTaskError, TaskFailedToStart
from pytest_ecstask.lifecycle import LABEL_SESSION, LABEL_TASK
from pytest_ecstask.task import TaskOptions, create_task, run_task

Run = Callable[..., Any]


def container(name: str, command: list[str], **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "command": command, **fields}


def task(*containers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"family": "test", "containerDefinitions": list(containers), **fields}


def state(docker_api: Any, c: Any) -> dict[str, Any]:
    return dict(docker_api.inspect_container(c.id)["State"])


def fetch(url: str) -> str:
    """GET ``url``, retrying while the server in the container is still binding its port."""
    for _ in range(50):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode().strip())
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def never_started(docker_api: Any, c: Any) -> bool:
    return str(state(docker_api, c)["StartedAt"]).startswith("0001-01-01")


def test_start_dependency_is_running_before_its_dependent_starts(run: Run, docker_api: Any) -> None:
    t = run(
        task(
            container("db", service()),
            container("app", service(), dependsOn=[{"containerName": "db", "condition": "START"}]),
        )
    )
    assert t.status == "RUNNING"
    db, app = t.containers["db"], t.containers["app"]
    assert (db.status, app.status) == ("RUNNING", "RUNNING")
    assert state(docker_api, db)["StartedAt"] <= state(docker_api, app)["StartedAt"]


def test_complete_waits_for_exit_with_any_code_and_task_volume_is_shared(run: Run, docker_api: Any) -> None:
    t = run(
        task(
            container(
                "init",
                ["sh", "-c", "sleep 0.5; echo seeded > /data/seed; exit 3"],
                essential=False,
                mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}],
            ),
            container(
                "app",
                service("cat /data/seed"),
                dependsOn=[{"containerName": "init", "condition": "COMPLETE"}],
                mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}],
            ),
            volumes=[{"name": "data", "host": {}}],
        )
    )
    init, app = t.containers["init"], t.containers["app"]
    assert init.exit_code == 3 and init.status == "STOPPED"
    assert app.status == "RUNNING"
    assert state(docker_api, init)["FinishedAt"] <= state(docker_api, app)["StartedAt"]
    t.containers["app"].exec(["true"])  # still running
    t.close()
    assert "seeded" in app.logs()


def test_success_dependency_exiting_zero_lets_dependent_start(run: Run, docker_api: Any) -> None:
    t = run(
        task(
            container("migrate", ["sh", "-c", "sleep 0.3; exit 0"], essential=False),
            container("app", service(), dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}]),
        )
    )
    assert t.containers["migrate"].exit_code == 0
    assert t.containers["app"].status == "RUNNING"
    assert (
        state(docker_api, t.containers["migrate"])["FinishedAt"] <= state(docker_api, t.containers["app"])["StartedAt"]
    )


def test_failed_success_dependency_stops_dependents_with_143_at_once(run: Run, docker_api: Any) -> None:
    t = run(
        task(
            container(
                "migrate",
                ["sh", "-c", "echo 'relation users already exists'; exit 1"],
                essential=False,
                startTimeout=600,
            ),
            container("app", service(), dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}]),
            container("worker", service(), dependsOn=[{"containerName": "app", "condition": "START"}]),
        )
    )
    app, worker = t.containers["app"], t.containers["worker"]
    assert (app.status, app.exit_code) == ("STOPPED", 143)
    assert "'migrate' exited with code 1" in (app.reason or "")
    assert "relation users already exists" in (app.reason or "")  # the dependency's last log lines
    assert worker.exit_code == 143 and "'app' never started" in (worker.reason or "")
    assert never_started(docker_api, app) and never_started(docker_api, worker)
    assert t.stop_code == "TaskFailedToStart" and t.status == "STOPPED"
    # Fail fast: the dependents gave up when migrate exited, not at its 600 s startTimeout.
    assert "startTimeout" not in (app.reason or "")


def test_failed_start_raises_with_explanation_and_leaves_nothing(image: str, docker_api: Any) -> None:
    td = task(
        container("migrate", ["sh", "-c", "exit 2"], essential=False),
        container("app", service(), dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}]),
    )
    with pytest.raises(TaskFailedToStart) as info, run_task(td, TaskOptions(pull="never", stop_timeout=5)):
        pytest.fail("the task should not have started")
    text = str(info.value)
    assert "failed to start" in text and "app: STOPPED exit code 143" in text and "'migrate' exited with code 2" in text
    task_id = text.split("(", 1)[1].split(")", 1)[0]
    assert docker_api.containers(all=True, filters={"label": f"{LABEL_TASK}={task_id}"}) == []


def test_healthy_gates_on_exec_and_shell_form_health_checks(run: Run, docker_api: Any) -> None:
    health = {"interval": 5, "timeout": 2, "retries": 3}
    t = run(
        task(
            container(
                "db",
                service("sleep 1; touch /tmp/ready"),
                healthCheck={"command": ["CMD", "test", "-f", "/tmp/ready"], **health},
            ),
            container(
                "cache",
                service("touch /tmp/ok"),
                healthCheck={"command": ["CMD-SHELL", "test -f /tmp/ok && echo fine"], **health},
            ),
            container(
                "app",
                service(),
                dependsOn=[
                    {"containerName": "db", "condition": "HEALTHY"},
                    {"containerName": "cache", "condition": "HEALTHY"},
                ],
            ),
        )
    )
    db, cache, app = (t.containers[n] for n in ("db", "cache", "app"))
    assert (db.health, cache.health, app.status) == ("HEALTHY", "HEALTHY", "RUNNING")
    assert app.health == "UNKNOWN"  # no healthCheck in its definition
    healthchecks = [docker_api.inspect_container(c.id)["Config"]["Healthcheck"]["Test"] for c in (db, cache)]
    assert healthchecks == [["CMD", "test", "-f", "/tmp/ready"], ["CMD-SHELL", "test -f /tmp/ok && echo fine"]]
    log = docker_api.inspect_container(db.id)["State"]["Health"]["Log"]
    assert log and log[-1]["ExitCode"] == 0
    assert state(docker_api, app)["StartedAt"] > log[0]["End"][:26]


def test_wait_until_healthy_returns_or_says_why_not(run: Run) -> None:
    health = {"interval": 5, "timeout": 2, "retries": 1}
    t = run(
        task(
            container("good", service(), healthCheck={"command": ["CMD-SHELL", "true"], **health}),
            container(
                "bad",
                service(),
                essential=False,
                healthCheck={"command": ["CMD-SHELL", "echo config missing; exit 1"], **health},
            ),
            container("plain", service(), essential=False),
            container(
                "gone",
                ["sh", "-c", "echo bye; exit 3"],
                essential=False,
                healthCheck={"command": ["CMD-SHELL", "true"], **health},
            ),
        )
    )
    with pytest.raises(EcsTaskError, match="'plain' has no healthCheck"):
        t.containers["plain"].wait_until_healthy()
    with pytest.raises(EcsTaskError, match=r"'bad': it is not HEALTHY after 0.5 s"):
        t.containers["bad"].wait_until_healthy(timeout=0.5)
    assert t.containers["good"].wait_until_healthy(timeout=30).health == "HEALTHY"
    with pytest.raises(
        EcsTaskError, match=r"(?s)'bad': it is UNHEALTHY; health status UNHEALTHY.*exit 1: config missing"
    ):
        t.containers["bad"].wait_until_healthy(timeout=30)
    with pytest.raises(EcsTaskError, match=r"'gone': it stopped \(exit code 3\); its last log lines:\n +bye"):
        t.containers["gone"].wait_until_healthy(timeout=30)


def test_start_timeout_gives_up_on_a_dependency_that_never_gets_healthy(run: Run) -> None:
    t = run(
        task(
            container(
                "db",
                service(),
                startTimeout=2,
                healthCheck={"command": ["CMD-SHELL", "echo not yet; exit 1"], "interval": 5, "retries": 1},
            ),
            container("app", service(), dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]),
        )
    )
    app = t.containers["app"]
    assert (app.status, app.exit_code) == ("STOPPED", 143)
    assert "'db' did not reach HEALTHY within its startTimeout of 2 s" in (app.reason or "")
    assert t.stop_code == "TaskFailedToStart"


def test_essential_container_exit_stops_the_task(run: Run) -> None:
    t = run(
        task(
            container("app", ["sh", "-c", "sleep 0.5; exit 7"]),
            container("sidecar", service(), essential=False),
        )
    )
    t.wait(timeout=30)
    assert t.status == "STOPPED" and t.stop_code == "EssentialContainerExited"
    assert "'app' exited with code 7" in (t.stopped_reason or "")
    assert t.containers["app"].exit_code == 7
    assert (t.containers["sidecar"].status, t.containers["sidecar"].exit_code) == ("STOPPED", 0)


def test_batch_task_running_to_completion_is_a_normal_outcome(run: Run) -> None:
    t = run(task(container("job", ["sh", "-c", "echo done"])), check=True)
    t.wait(timeout=30)
    assert t.stop_code == "EssentialContainerExited"
    assert t.containers["job"].exit_code == 0
    t.close()
    assert t.containers["job"].logs().strip() == "done"


def test_stop_order_is_dependents_first(run: Run, tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.touch()
    log.chmod(0o666)

    def recorder(name: str, **fields: Any) -> dict[str, Any]:
        return container(
            name,
            ["sh", "-c", f"trap 'echo {name} >> /order/log; exit 0' TERM; sleep 3600 & wait"],
            mountPoints=[{"sourceVolume": "order", "containerPath": "/order"}],
            **fields,
        )

    t = run(
        task(
            recorder("db"),
            recorder("app", dependsOn=[{"containerName": "db", "condition": "START"}]),
            recorder("proxy", links=["app"]),  # a link is an implicit START dependency
            volumes=[{"name": "order", "host": {"sourcePath": str(tmp_path)}}],
            networkMode="bridge",
        )
    )
    t.stop()
    assert log.read_text().split() == ["proxy", "app", "db"]
    assert all(c.exit_code == 0 for c in t.containers.values())


def test_awsvpc_containers_share_localhost_and_publish_ports(run: Run, docker_api: Any) -> None:
    t = run(
        task(
            container(
                "web",
                service("echo hello-from-web > /www/index.html; httpd -p 8080 -h /www"),
                portMappings=[{"containerPort": 8080, "hostPort": 8080}],
            ),
            container(
                "client",
                [
                    "sh",
                    "-c",
                    "for i in 1 2 3 4 5 6 7 8 9 10; do "
                    "wget -qO- http://localhost:8080/ && exit 0; sleep 0.2; done; exit 1",
                ],
                essential=False,
                dependsOn=[{"containerName": "web", "condition": "START"}],
            ),
            networkMode="awsvpc",
        )
    )
    web, client = t.containers["web"], t.containers["client"]
    assert docker_api.inspect_container(web.id)["HostConfig"]["NetworkMode"].startswith("container:")
    assert fetch(f"http://{web.host}:{web.port(8080)}/") == "hello-from-web"
    t.stop()
    assert client.exit_code == 0 and "hello-from-web" in client.logs()


def test_bridge_containers_reach_each_other_only_through_links(run: Run, docker_api: Any) -> None:
    # Docker's default bridge, as on ECS: container names have no DNS; a link gives its alias (the target's
    # name when it has none) in /etc/hosts, and only to the container that declares it.
    t = run(
        task(
            container(
                "web",
                service("echo hi > /www/index.html; httpd -p 80 -h /www"),
                portMappings=[{"containerPort": 80, "hostPort": 0}],
            ),
            container("client", service(), links=["web:frontend"]),
            container("plain", service(), links=["web"]),
            container("loner", service()),
            networkMode="bridge",
        )
    )

    def get(name: str, host: str) -> tuple[int, str]:
        result = t.containers[name].exec(["wget", "-qO-", f"http://{host}/"])
        return result.exit_code, result.output.strip()

    assert get("client", "frontend") == (0, "hi")
    assert get("plain", "web") == (0, "hi")
    for name, host in (("loner", "web"), ("loner", "frontend"), ("client", "web"), ("plain", "frontend")):
        code, output = get(name, host)
        assert code != 0 and "bad address" in output, (name, host, output)
    for c in t.containers.values():
        assert list(docker_api.inspect_container(c.id)["NetworkSettings"]["Networks"]) == [default_network(docker_api)]
    assert t.containers["web"].port(80) > 0


def test_volumes_from_shares_the_source_volumes_read_only(run: Run) -> None:
    t = run(
        task(
            container(
                "writer",
                service("echo shared > /data/file"),
                mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}],
            ),
            container(
                "reader",
                service(),
                volumesFrom=[{"sourceContainer": "writer", "readOnly": True}],
                dependsOn=[{"containerName": "writer", "condition": "START"}],
            ),
            volumes=[{"name": "data"}],
        )
    )
    reader = t.containers["reader"]
    for _ in range(50):
        if reader.exec(["cat", "/data/file"]).output.strip() == "shared":
            break
    assert reader.exec(["cat", "/data/file"]).output.strip() == "shared"
    assert reader.exec(["sh", "-c", "echo x > /data/other"]).exit_code != 0  # read-only


def test_everything_is_labelled_and_removed(run: Run, docker_api: Any) -> None:
    t = run(
        task(
            container("app", service(), dockerLabels={"team": "payments"}),
            volumes=[{"name": "scratch", "host": {}}],
            networkMode="awsvpc",
        )
    )
    selector = {"label": f"{LABEL_TASK}={t.id}"}
    containers = docker_api.containers(all=True, filters=selector)
    assert len(containers) == 2  # the app and the pause container
    labels = docker_api.inspect_container(t.containers["app"].id)["Config"]["Labels"]
    assert labels["team"] == "payments" and labels[LABEL_SESSION]
    assert labels["com.amazonaws.ecs.task-arn"] == t.arn and labels["com.amazonaws.ecs.container-name"] == "app"
    assert labels["com.amazonaws.ecs.task-definition-family"] == "test"
    assert len(docker_api.networks(filters=selector)) == 1
    assert len(docker_api.volumes(filters=selector)["Volumes"] or []) == 1
    t.close()
    assert docker_api.containers(all=True, filters=selector) == []
    assert docker_api.networks(filters=selector) == []
    assert not docker_api.volumes(filters=selector)["Volumes"]


def test_missing_image_with_pull_never_names_image_and_container(image: str, docker_api: Any) -> None:
    td = task(container("app", service(), image="registry.example/team/app:1.2"))
    td["containerDefinitions"][0]["image"] = "registry.example/team/app:1.2"
    t = create_task(td, TaskOptions(pull="never"))
    with pytest.raises(TaskFailedToStart, match=r"image 'registry.example/team/app:1.2' for container 'app'"):
        t.start()
    assert docker_api.containers(all=True, filters={"label": f"{LABEL_TASK}={t.id}"}) == []
    assert docker_api.networks(filters={"label": f"{LABEL_TASK}={t.id}"}) == []


def test_image_mapping_runs_the_local_image(run: Run, docker_api: Any) -> None:
    td = task(container("app", service()))
    td["containerDefinitions"][0]["image"] = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:prod"
    t = run(td, images={"*.amazonaws.com/app:*": IMAGE})
    assert docker_api.inspect_container(t.containers["app"].id)["Image"] == docker_api.inspect_image(IMAGE)["Id"]


def test_no_engine_is_a_plain_error_naming_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_ecstask.runtime import Engine

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(DockerUnavailable, match="DOCKER_HOST"):
        Engine.connect()


def test_shared_volume_outlives_one_task_and_goes_with_the_last(run: Run, docker_api: Any) -> None:
    # A shared volume's Docker name is its task-definition name: unique here, since runs share the engine.
    cache = f"cache-{uuid.uuid4().hex[:8]}"

    def volume_task(name: str, script: str) -> dict[str, Any]:
        return task(
            container(name, service(script), mountPoints=[{"sourceVolume": cache, "containerPath": "/cache"}]),
            volumes=[
                {
                    "name": cache,
                    "dockerVolumeConfiguration": {
                        "scope": "shared",
                        "autoprovision": True,
                        "labels": {"purpose": "test"},
                    },
                }
            ],
        )

    first = run(volume_task("writer", "echo from-first > /cache/file"))
    second = run(volume_task("reader", ""))
    reader = second.containers["reader"]
    for _ in range(50):
        if reader.exec(["cat", "/cache/file"]).output.strip() == "from-first":
            break
        time.sleep(0.1)
    assert reader.exec(["cat", "/cache/file"]).output.strip() == "from-first"
    assert docker_api.inspect_volume(cache)["Labels"]["purpose"] == "test"
    first.close()
    assert docker_api.inspect_volume(cache)  # still used by the second task
    second.close()
    assert not [v for v in docker_api.volumes()["Volumes"] or [] if v["Name"] == cache]


def test_shared_volume_without_autoprovision_must_exist(image: str, docker_api: Any) -> None:
    td = task(
        container("app", service(), mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}]),
        volumes=[{"name": "data", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": False}}],
    )
    t = create_task(td, TaskOptions(pull="never"))
    with pytest.raises(
        TaskFailedToStart, match="shared Docker volume 'data' does not exist and autoprovision is false"
    ):
        t.start()
    assert docker_api.containers(all=True, filters={"label": f"{LABEL_TASK}={t.id}"}) == []


def test_container_ignoring_sigterm_is_killed_after_its_stop_timeout(image: str) -> None:
    td = task(container("stubborn", ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], stopTimeout=1))
    with run_task(td, TaskOptions(pull="never")) as t:
        t.stop()
        assert t.containers["stubborn"].exit_code == 137  # SIGKILL
        assert any("stopping (SIGTERM)" in e.what for e in t.timeline)
        assert "stubborn: did not exit within 1 s of SIGTERM: SIGKILL" in [
            f"{e.container}: {e.what}" for e in t.timeline
        ]
        [(name, took, timeout)] = t._runner.killed_at_stop
        assert (name, timeout) == ("stubborn", 1) and took >= 1


def test_image_that_cannot_be_pulled_names_container_and_how_to_map_it(image: str, docker_api: Any) -> None:
    td = task(container("app", service()))
    td["containerDefinitions"][0]["image"] = "127.0.0.1:9/team/app:1"  # nothing listens there
    t = create_task(td, TaskOptions(pull="missing"))
    with pytest.raises(TaskFailedToStart) as info:
        t.start()
    text = str(info.value)
    assert "CannotPullContainerError: image '127.0.0.1:9/team/app:1' for container 'app'" in text
    assert "--ecs-image '127.0.0.1:9/team/app:1=LOCAL'" in text
    assert docker_api.containers(all=True, filters={"label": f"{LABEL_TASK}={t.id}"}) == []


def test_task_that_fails_to_start_never_reports_running(run: Run) -> None:
    t = run(
        task(
            container("app", service(), dependsOn=[{"containerName": "gate", "condition": "SUCCESS"}]),
            container("gate", ["sh", "-c", "exit 1"], essential=False),
        )
    )
    assert t.stop_code == "TaskFailedToStart"
    assert "task RUNNING" not in [e.what for e in t.timeline]
    with pytest.raises(Exception, match="already started"):
        t._runner.start()


def test_restart_policy_restarts_an_essential_container_in_place_and_the_task_keeps_running(
    image: str, docker_api: Any
) -> None:
    from pytest_ecstask.lifecycle import process_owner
    from pytest_ecstask.plan import RestartPolicy

    policy = {"enabled": True, "ignoredExitCodes": [0], "restartAttemptPeriod": 60}
    t = create_task(
        task(
            container("app", ["sh", "-c", "echo run; sleep 1; exit 4"], restartPolicy=policy),
            container("side", service(), essential=False),
        ),
        TaskOptions(pull="never", stop_timeout=1, check=False),
        owner=process_owner(),
    )
    events: list[tuple[str, str | None, Any]] = []
    t._runner.listeners.append(lambda kind, name, details: events.append((kind, name, dict(details))))
    assert t._runner.machine.restart_policies["app"] == RestartPolicy((0,), 60)
    # ECS's shortest period is 60 s: shortened here so that the test need not wait a minute per restart.
    t._runner.machine.restart_policies["app"] = RestartPolicy((0,), 0.5)
    try:
        t.start()
        app = t.containers["app"]
        deadline = time.monotonic() + 30
        while app.restart_count < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert app.restart_count >= 2
        assert t.status == "RUNNING" and t.stop_code is None
        assert int(docker_api.inspect_container(app.id)["RestartCount"]) == 0  # restarted by us, as the agent does
        assert [e.what for e in t.timeline if e.container == "app"].count("started again") >= 1
        assert ("container_restarted", "app", {"restart_count": 1, "exit_code": 4}) in events
        assert app.logs().count("run") >= 2  # one container, restarted in place: its output goes on
    finally:
        t.close()
    assert t.stop_code == "UserInitiated"


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        ({"enabled": True, "restartAttemptPeriod": 60}, 3),  # exited within the period: not restarted
        ({"enabled": True, "ignoredExitCodes": [3], "restartAttemptPeriod": 60}, 3),  # an ignored exit code
    ],
)
def test_an_essential_container_not_restarted_stops_the_task(run: Run, policy: dict[str, Any], code: int) -> None:
    t = run(task(container("app", ["sh", "-c", f"sleep 0.5; exit {code}"], restartPolicy=policy)))
    t.wait(30)
    assert (t.stop_code, t.containers["app"].exit_code, t.containers["app"].restart_count) == (
        "EssentialContainerExited",
        code,
        0,
    )


def test_an_essential_container_that_crashes_during_startup_fails_the_start_with_its_exit_and_output(run: Run) -> None:
    with pytest.raises(TaskFailedToStart) as info:
        run(
            task(
                container(
                    "db",
                    ["sh", "-c", "echo 'db: config file missing'; sleep 0.5; exit 2"],
                    healthCheck={"command": ["CMD", "true"], "interval": 5},
                ),
                container("app", service(), dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]),
            ),
            check=True,
        )
    message = str(info.value)
    assert "failed to start: Essential container in task exited: 'db' exited with code 2" in message
    assert "db: STOPPED exit code 2" in message
    # app gives up either on its dependency's exit or on the task stopping: whichever it sees first.
    assert "\n  app: STOPPED" in message
    assert message.endswith("last log lines of 'db':\n    db: config file missing")


def test_a_batch_task_that_finishes_during_startup_is_handed_to_the_test(run: Run) -> None:
    t = run(task(container("job", ["sh", "-c", "echo done"]), container("app", service())), check=True)
    t.wait(30)
    assert (t.stop_code, t.containers["job"].exit_code) == ("EssentialContainerExited", 0)


# -- bridge mode is Docker's default bridge, as the agent does it ------------------------------------------


def test_bridge_dns_servers_search_domains_extra_hosts_and_hostname_reach_the_container(run: Run) -> None:
    t = run(
        task(
            container(
                "app",
                service(),
                hostname="app-host",
                dnsServers=["10.0.0.2", "10.0.0.3"],
                dnsSearchDomains=["corp.example", "svc.example"],
                extraHosts=[{"hostname": "db.example", "ipAddress": "10.0.0.5"}],
            ),
            networkMode="bridge",
        )
    )
    app = t.containers["app"]
    resolv = app.exec(["cat", "/etc/resolv.conf"]).output.splitlines()
    # As given, not Docker's embedded DNS (127.0.0.11), which a per-task user network would put there.
    assert [line for line in resolv if line.startswith("nameserver")] == ["nameserver 10.0.0.2", "nameserver 10.0.0.3"]
    assert "search corp.example svc.example" in resolv
    hosts = [line.split() for line in app.exec(["cat", "/etc/hosts"]).output.splitlines()]
    assert ["10.0.0.5", "db.example"] in hosts
    assert app.exec(["hostname"]).output.strip() == "app-host"


def test_a_bridge_task_creates_no_network_and_the_sweep_sees_its_containers(run: Run, docker_api: Any) -> None:
    from datetime import datetime, timezone

    from pytest_ecstask.leftovers import classify
    from pytest_ecstask.lifecycle import host_id
    from pytest_ecstask.runtime import list_resources

    t = run(task(container("app", service()), container("side", service(), essential=False), networkMode="bridge"))
    mine = f"{LABEL_TASK}={t.id}"
    found = list_resources(docker_api, mine)
    assert sorted((r.kind, r.name) for r in found) == sorted(("container", c.docker_name) for c in t.plan.containers)
    assert all(r.labels[LABEL_SESSION] for r in found)
    # Its run is alive: left alone. Seen from another host past the age limit: every container is chosen.
    now = datetime.now(timezone.utc)
    assert not any(v.remove for v in classify(found, this_host=host_id(), now=now, max_age_seconds=0))
    assert all(v.remove for v in classify(found, this_host="elsewhere", now=now, max_age_seconds=-1))
    t.close()
    assert list_resources(docker_api, mine) == []
    assert docker_api.networks(names=[default_network(docker_api)])  # the default bridge is never ours to remove


def test_what_cannot_be_removed_is_named_and_the_rest_is_removed(run: Run, docker_api: Any, image: str) -> None:
    t = run(
        task(
            container("app", service(), mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}]),
            volumes=[{"name": "data", "host": {}}],
        )
    )
    volume = t.plan.volumes[0].docker_name
    # Something outside the task holds its volume: the volume cannot go, the containers still do.
    holder = docker_api.create_container(
        image, ["sleep", "60"], host_config=docker_api.create_host_config(binds=[f"{volume}:/held"])
    )["Id"]
    try:
        with pytest.raises(EcsTaskError) as info:
            t.close()
        message = str(info.value)
        assert message.startswith(f"task test:1 ({t.id}): could not remove volume {volume}: ")
        assert re.search("in use|being used", message) and message.endswith(
            "(a later sweep removes them once this run has ended)"
        )
        assert docker_api.containers(all=True, filters={"label": f"{LABEL_TASK}={t.id}"}) == []
        assert "container app" not in message
    finally:
        docker_api.remove_container(holder, force=True)
        docker_api.remove_volume(volume, force=True)


@pytest.mark.parametrize(
    ("version", "described"),
    [
        (
            {"Version": "28.2.2", "Os": "linux", "Arch": "amd64", "ApiVersion": "1.50", "Platform": {"Name": ""}},
            "Docker Engine 28.2.2 (linux/amd64, API 1.50) at h",
        ),
        (
            {
                "Version": "28.0.1",
                "Os": "linux",
                "Arch": "arm64",
                "ApiVersion": "1.48",
                "Platform": {"Name": "Docker Desktop 4.39.0 (184744)"},
            },
            "Docker Desktop 28.0.1 (linux/arm64, API 1.48) at h",
        ),
        (
            {
                "Version": "4.3.1",
                "Os": "linux",
                "Arch": "amd64",
                "ApiVersion": "1.41",
                "Platform": {"Name": "linux/amd64/debian-12"},
                "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}, {"Name": "Conmon", "Version": "2.1.6"}],
            },
            "Podman 4.3.1 (linux/amd64, API 1.41) at h",
        ),
    ],
)
def test_the_engine_is_described_by_kind_and_version(version: dict[str, Any], described: str) -> None:
    from pytest_ecstask.runtime import describe_engine

    assert describe_engine(version, "h") == described


def test_the_summary_names_the_engine_the_run_used(pytester: pytest.Pytester, image: str, docker_api: Any) -> None:
    import json

    app = {"name": "app", "image": image, "memory": 64, "command": service()}
    taskdef = pytester.path / "taskdef.json"
    taskdef.write_text(json.dumps({"family": "named", "containerDefinitions": [app]}))
    pytester.makepyfile("def test_up(ecs_task):\n    assert ecs_task.status == 'RUNNING'\n")
    result = pytester.runpytest_subprocess(f"--ecs-taskdef={taskdef}", "--ecs-pull=never", "--ecs-endpoints=off")
    result.assert_outcomes(passed=1)
    version = docker_api.version()
    result.stdout.fnmatch_lines([f"ecstask: engine * {version['Version']} ({version['Os']}/*, API *) at *"])
