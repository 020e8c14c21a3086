"""The endpoints through the engine's relay, forced on this machine's engine: what containers get, as in local mode.

Each test's relay-mode tasks belong to a run of their own (a session and a lease), whose endpoint server
uses the relay; the ``run`` fixture's tasks get the local server, as on any engine on this machine.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_endpoints import ROLE, STATIC, env_of

from conftest import IMAGE, service
from pytest_ecstask.lifecycle import Lease, Owner, host_id, lease_dir, new_session_id
from pytest_ecstask.relaylink import LABEL_RELAY, relay_name

Run = Callable[..., Any]
# Python that stops at once on SIGTERM (as PID 1 it would otherwise wait out the stop timeout).
WAIT = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); time.sleep(3600)"
# What an app in the container does: botocore's container provider, then the v4 metadata of itself and its task.
PROBE = """
import json, os, urllib.request
from botocore.credentials import ContainerProvider
frozen = ContainerProvider().load().get_frozen_credentials()
def get(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)
base = os.environ["ECS_CONTAINER_METADATA_URI_V4"]
print(json.dumps({"credentials": [frozen.access_key, frozen.secret_key, frozen.token],
                  "container": get(base), "task": get(base + "/task")}))
"""


class RelayedRun:
    """A run of its own whose endpoints come through the relay: its session, its lease, its tasks."""

    def __init__(self, relay_image: str) -> None:
        self.session_id = new_session_id()
        self.lease = Lease.acquire(self.session_id)
        self.owner = Owner(self.session_id, host_id(), str(self.lease.path))
        self.relay_image = relay_image
        self.tasks: list[Any] = []

    def start(self, taskdef: Any, **options: Any) -> Any:
        from pytest_ecstask.task import TaskOptions, create_task

        options = {"pull": "never", "stop_timeout": 5, "start_timeout": 60, "check": False, **options}
        options.setdefault("endpoints", "relay")
        options.setdefault("relay_image", self.relay_image)
        task = create_task(taskdef, TaskOptions(**options), owner=self.owner)
        self.tasks.append(task)
        return task.start()

    def end(self) -> None:
        """As a run ends: its tasks go, then its lease, which ends its endpoint server."""
        for task in reversed(self.tasks):
            task.close()
        self.tasks.clear()
        self.lease.release()
        deadline = time.monotonic() + 10
        announce = lease_dir() / f"{self.session_id}.d" / "endpoint.json"
        while announce.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(lease_dir() / f"{self.session_id}.d", ignore_errors=True)


@pytest.fixture
def relayed(image: str, relay_image: str) -> Iterator[RelayedRun]:
    run = RelayedRun(relay_image)
    yield run
    run.end()


def app_task(family: str, network_mode: str, image: str, command: list[str]) -> dict[str, Any]:
    return {
        "family": family,
        "taskRoleArn": ROLE,
        "networkMode": network_mode,
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{"name": "app", "image": image, "command": command, "memory": 128}],
    }


def probe(task: Any) -> dict[str, Any]:
    result = task.containers["app"].exec(["python3", "-c", PROBE])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def comparable(answers: dict[str, Any]) -> dict[str, Any]:
    """What must be the same in both modes: everything but the ids, times and addresses of this very task."""
    container, task = answers["container"], answers["task"]
    return {
        "credentials": answers["credentials"],
        "container keys": sorted(container),
        "container": {k: container[k] for k in ("Name", "Image", "Limits", "DesiredStatus", "KnownStatus", "Type")},
        "network modes": [n["NetworkMode"] for n in container.get("Networks", [])],
        "task keys": sorted(task),
        "task": {k: task[k] for k in ("Family", "Revision", "DesiredStatus", "KnownStatus", "LaunchType", "Limits")},
        "task containers": sorted(c["Name"] for c in task["Containers"]),
    }


@pytest.mark.parametrize("network_mode", ["bridge", "awsvpc"])
def test_an_sdk_in_a_container_gets_the_same_answers_through_the_relay(
    network_mode: str, sdk_image: str, run: Run, relayed: RelayedRun
) -> None:
    command = ["python3", "-c", WAIT]
    local = run(app_task("sdkcheck", network_mode, sdk_image, command), credentials=STATIC)
    through_relay = relayed.start(app_task("sdkcheck", network_mode, sdk_image, command), credentials=STATIC)
    assert local.plan.options.endpoint.mode == "local"
    assert through_relay.plan.options.endpoint.mode == "relay"
    answers = probe(through_relay)
    assert answers["credentials"] == [STATIC["AccessKeyId"], STATIC["SecretAccessKey"], STATIC["Token"]]
    assert answers["container"]["DockerId"] == through_relay.containers["app"].id  # its own, live from Docker
    assert comparable(answers) == comparable(probe(local))


def test_another_tasks_container_is_refused_credentials_through_the_relay(relayed: RelayedRun) -> None:
    owner = relayed.start(app_task("owner", "awsvpc", IMAGE, service()), credentials=STATIC)
    intruder = relayed.start(app_task("intruder", "bridge", IMAGE, service()))
    env = env_of(owner.containers["app"])
    url, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    mine = owner.containers["app"].exec(["wget", "-qO-", "--header", f"Authorization: {token}", url])
    assert mine.exit_code == 0 and json.loads(mine.output)["AccessKeyId"] == STATIC["AccessKeyId"]
    # The right URI and token, from a container of another task: the run's server sees where it comes from.
    refused = intruder.containers["app"].exec(["wget", "-S", "-O-", "--header", f"Authorization: {token}", url])
    assert refused.exit_code != 0 and "400" in refused.output
    assert STATIC["SecretAccessKey"] not in refused.output


def test_a_relay_that_dies_comes_back_on_its_port_and_requests_meanwhile_fail_at_once(
    relayed: RelayedRun, docker_api: Any
) -> None:
    task = relayed.start(app_task("phoenix", "bridge", IMAGE, service()), credentials=STATIC)
    app = task.containers["app"]
    uri = env_of(app)["ECS_CONTAINER_METADATA_URI_V4"]
    assert app.exec(["wget", "-qO-", uri]).exit_code == 0
    before = docker_api.inspect_container(relay_name())["Id"]
    docker_api.kill(relay_name())
    asked = time.monotonic()
    # busybox's wget -T crashes on a refused connection: timeout(1) bounds the wait instead.
    first = app.exec(["timeout", "20", "wget", "-qO-", uri])
    failed_after = time.monotonic() - asked
    deadline = time.monotonic() + 20
    while (again := app.exec(["timeout", "5", "wget", "-qO-", uri])).exit_code != 0:
        assert time.monotonic() < deadline, f"the relay did not come back: {again.output}"
        time.sleep(0.2)
    assert json.loads(again.output)["DockerId"] == app.id
    assert docker_api.inspect_container(relay_name())["Id"] != before  # a new relay, on the port containers know
    if first.exit_code != 0:  # asked before the new relay listened: refused, not left waiting
        assert failed_after < 3.0, first.output


def test_a_run_that_ends_leaves_the_relay_and_the_relay_tells(relayed: RelayedRun, docker_api: Any) -> None:
    relayed.start(app_task("leaving", "bridge", IMAGE, service()))
    session = relayed.session_id
    relayed.end()
    deadline = time.monotonic() + 10
    while True:
        try:
            logs = docker_api.logs(relay_name()).decode()
        except Exception:  # the relay is gone: it was the last run's, and left with it
            break
        if f"run {session} left" in logs:
            break
        assert time.monotonic() < deadline, logs


@pytest.mark.parametrize(
    ("pull", "why"), [("never", ", and --ecs-pull=never forbids pulling it"), ("missing", " and could not be pulled (")]
)
def test_a_relay_image_that_is_not_there_turns_the_endpoints_off_with_a_warning(
    relayed: RelayedRun, docker_api: Any, pull: str, why: str
) -> None:
    missing = "pytest-ecstask-test/no-such-relay:1"  # no registry answers here: a pull fails at once
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = relayed.start(app_task("noimage", "bridge", IMAGE, service()), relay_image=missing, pull=pull)
    text = " ".join(str(w.message) for w in caught)
    assert f"the relay did not start: the relay image {missing} is not on the engine{why}" in text
    assert "ecs_relay_image" in text
    assert task.status == "RUNNING" and task.plan.options.endpoint is None
    assert "ECS_CONTAINER_METADATA_URI_V4" not in env_of(task.containers["app"])
    assert not any(missing in (c.get("Image") or "") for c in docker_api.containers(all=True))


def test_a_relay_left_not_running_is_swept(docker_api: Any, image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_ecstask import relaylink
    from pytest_ecstask.sweep import sweep

    left = docker_api.create_container(image, ["true"], labels={LABEL_RELAY: "1"})
    try:
        created = relaylink.docker_seconds(docker_api.inspect_container(left["Id"])["Created"])
        assert created is not None
        # Within a minute of its creation (by the engine's clock) it may be a run's relay about to start.
        assert left["Id"] not in {r.id for r in relaylink.relay_leftovers(docker_api, now=created + 5)}
        assert left["Id"] in {r.id for r in relaylink.relay_leftovers(docker_api, now=created + 61)}
        monkeypatch.setattr(relaylink, "LEFT_BEHIND_AFTER", 0.0)  # as a minute later
        report = sweep(docker_api)
        assert any(
            v.resource.id == left["Id"] and v.why == "a relay container that does not run" for v in report.chosen
        )
        with pytest.raises(Exception, match=r"(?i)no such container"):
            docker_api.inspect_container(left["Id"])
    finally:
        with _suppressed():
            docker_api.remove_container(left["Id"], force=True)


def test_the_report_names_the_relay_and_a_task_reads_its_metadata_through_it(
    pytester: pytest.Pytester, image: str, relay_image: str
) -> None:
    taskdef = pytester.path / "taskdef.json"
    taskdef.write_text(json.dumps(app_task("reported", "awsvpc", image, service())))
    pytester.makepyfile(
        """
        import json

        def test_metadata(ecs_task):
            app = ecs_task.containers["app"]
            env = dict(e.split("=", 1) for e in app.inspect()["Config"]["Env"])
            answer = app.exec(["wget", "-qO-", env["ECS_CONTAINER_METADATA_URI_V4"] + "/task"])
            assert json.loads(answer.output)["Family"] == "reported"
        """
    )
    result = pytester.runpytest_subprocess(
        f"--ecs-taskdef={taskdef}",
        "--ecs-endpoints=relay",
        f"--ecs-relay-image={relay_image}",
        "--ecs-pull=never",
        "-o",
        "ecs_task_credentials=AKIAREPORTED:secret",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*endpoints at 169.254.170.2 (relay: through the engine's relay*",
            "ecstask: endpoints served through the engine's relay at 169.254.170.2:*",
        ]
    )


def _suppressed() -> Any:
    import contextlib

    import docker.errors

    return contextlib.suppress(docker.errors.NotFound)
