"""What DescribeTasks answers mean for a test, and how the AWS sweep judges what runs left. Pure: no AWS."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from pytest_ecstask.awssweep import REVISION, TASK, ecs_resource
from pytest_ecstask.ecsrequests import ALIVE_TAG, HOST_TAG, LEASE_TAG, OWNER_TAG, SESSION_TAG, host_tag_value
from pytest_ecstask.ecsstate import (
    Change,
    ContainerSeen,
    LogStream,
    changes,
    log_stream,
    poll_delays,
    published_port,
    read_task,
)
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.leftovers import classify

ARN = "arn:aws:ecs:eu-west-1:123456789012:task/ci/0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_the_polling_delays_grow_from_half_a_second_to_three() -> None:
    assert list(itertools.islice(poll_delays(), 7)) == [0.5, 0.75, 1.125, 1.6875, 2.53125, 3.0, 3.0]


def test_a_described_task_is_read_with_its_containers_address_and_tags() -> None:
    created = NOW - timedelta(minutes=3)
    seen = read_task(
        {
            "taskArn": ARN,
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "startedBy": "pytest-ecstask-abc",
            "createdAt": created,
            "tags": [{"key": SESSION_TAG, "value": "abc"}],
            "attachments": [
                {
                    "type": "ElasticNetworkInterface",
                    "details": [
                        {"name": "networkInterfaceId", "value": "eni-1"},
                        {"name": "privateIPv4Address", "value": "10.0.1.9"},
                    ],
                }
            ],
            "containers": [
                {"name": "app", "lastStatus": "RUNNING", "exitCode": 0, "healthStatus": "HEALTHY", "runtimeId": "d0c"},
                {
                    "name": "job",
                    "lastStatus": "STOPPED",
                    "exitCode": 3,
                    "reason": "OutOfMemoryError",
                    "networkBindings": [{"containerPort": 80, "hostPort": 32001, "protocol": "udp"}],
                },
            ],
        }
    )
    assert (seen.id, seen.status, seen.private_ip, seen.network_interface) == (
        "0123456789abcdef0123456789abcdef",
        "RUNNING",
        "10.0.1.9",
        "eni-1",
    )
    assert (seen.created_at, seen.started_by, dict(seen.tags)) == (created, "pytest-ecstask-abc", {SESSION_TAG: "abc"})
    # An exit code counts once the container stopped.
    assert seen.container("app") == ContainerSeen("app", "RUNNING", None, "HEALTHY", None, "d0c")
    assert seen.container("job") == ContainerSeen(
        "job", "STOPPED", 3, "UNKNOWN", "OutOfMemoryError", None, ((80, "udp", 32001),)
    )
    assert seen.container("never-seen") == ContainerSeen("never-seen")


def task(status: str, *containers: dict[str, Any], **fields: Any) -> Any:
    return read_task({"taskArn": ARN, "lastStatus": status, "containers": list(containers), **fields})


def test_changes_between_answers_are_the_timeline_and_the_events() -> None:
    first = task("PENDING", {"name": "app", "lastStatus": "PENDING"})
    running = task("RUNNING", {"name": "app", "lastStatus": "RUNNING", "healthStatus": "HEALTHY"})
    stopped = task(
        "STOPPED",
        {"name": "app", "lastStatus": "STOPPED", "exitCode": 137, "healthStatus": "UNHEALTHY", "reason": "OOM"},
        stopCode="EssentialContainerExited",
        stoppedReason="Essential container in task exited",
    )
    names = ["app", "db"]
    assert changes(None, first, names) == [Change(None, "task PENDING")]
    assert changes(first, first, names) == []
    assert changes(first, running, names) == [
        Change("app", "RUNNING", "container_started"),
        Change("app", "HEALTHY", "container_healthy"),
        Change(None, "task RUNNING"),
    ]
    assert changes(running, stopped, names) == [
        Change("app", "STOPPED, exit code 137 (OOM)", "container_exited", {"exit_code": 137}),
        Change("app", "UNHEALTHY"),
        Change(
            None,
            "task STOPPED: EssentialContainerExited: Essential container in task exited",
            "task_stopped",
            {"stop_code": "EssentialContainerExited", "reason": "Essential container in task exited"},
        ),
    ]


AWSLOGS = {"logDriver": "awslogs", "options": {"awslogs-group": "/ci/web", "awslogs-region": "us-east-2"}}


@pytest.mark.parametrize(
    ("config", "runtime_id", "expected"),
    [
        (
            {**AWSLOGS, "options": {**AWSLOGS["options"], "awslogs-stream-prefix": "web"}},
            "d0c",
            LogStream("/ci/web", "web/app/t1d", "us-east-2"),
        ),
        (AWSLOGS, "d0c", LogStream("/ci/web", "d0c", "us-east-2")),  # no prefix: Docker's container id
        (AWSLOGS, None, "without awslogs-stream-prefix its stream is named after its container id"),
        ({"logDriver": "awslogs", "options": {}}, "d0c", "its awslogs logConfiguration has no awslogs-group"),
        ({"logDriver": "awsfirelens"}, None, "sends its output to FireLens (logDriver awsfirelens)"),
        ({"logDriver": "json-file"}, None, "sends its output with the 'json-file' log driver"),
        (None, None, "has no logConfiguration, so ECS keeps its output nowhere that can be read"),
    ],
)
def test_the_stream_ecs_writes_to_or_where_the_output_went(
    config: dict[str, Any] | None, runtime_id: str | None, expected: LogStream | str
) -> None:
    container = {"name": "app", **({"logConfiguration": config} if config else {})}
    found = log_stream(container, "t1d", runtime_id)
    if isinstance(expected, LogStream):
        assert found == expected
    else:
        assert isinstance(found, str) and found.startswith("container 'app'") and expected in found


def test_the_port_to_connect_to_by_network_mode() -> None:
    app = {"name": "app", "portMappings": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "udp"}]}
    bound = ContainerSeen("app", "RUNNING", bindings=((8080, "tcp", 32768),))
    assert published_port(app, "awsvpc", ContainerSeen("app"), 8080, "tcp") == 8080
    assert published_port(app, "host", ContainerSeen("app"), 53, "udp") == 53
    assert published_port(app, "bridge", bound, 8080, "tcp") == 32768
    with pytest.raises(
        EcsTaskError, match=r"^container 'app': ECS has bound no host port for 53/udp \(the container is RUNNING\)$"
    ):
        published_port(app, "bridge", bound, 53, "udp")
    with pytest.raises(EcsTaskError, match=r"no portMapping for 8080/udp; its portMappings: 8080/tcp, 53/udp"):
        published_port(app, "awsvpc", bound, 8080, "udp")


# -- how the sweep judges what a run left ----------------------------------------------------------------


def test_only_what_carries_a_session_is_a_run_s_and_this_host_s_runs_are_asked_by_their_lease(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("PYTEST_ECSTASK_HOST_ID", "ci runner#7")  # '#' is no tag character: it became '-'
    monkeypatch.setenv("PYTEST_ECSTASK_LEASE_DIR", str(tmp_path))
    assert host_tag_value("ci runner#7") == "ci runner-7"
    assert ecs_resource(TASK, ARN, "t", {}, NOW) is None
    mine = ecs_resource(TASK, ARN, "t", {SESSION_TAG: "s1", HOST_TAG: "ci runner-7"}, NOW)
    theirs = ecs_resource(REVISION, "arn:td", "web-ecstask:3", {SESSION_TAG: "s2", HOST_TAG: "other/1"}, NOW)
    assert mine is not None and theirs is not None
    assert mine.labels["pytest-ecstask.lease"] == str(tmp_path / "s1.lease")  # no lease tag: this sweep's folder
    assert "pytest-ecstask.lease" not in theirs.labels
    assert theirs.labels["pytest-ecstask.created"] == "2026-03-01T12:00:00Z"
    tagged = {SESSION_TAG: "s3", HOST_TAG: "ci runner-7", LEASE_TAG: "/elsewhere/s3.lease", OWNER_TAG: "ci:42"}
    moved = ecs_resource(TASK, ARN, "t", {**tagged, ALIVE_TAG: "2026-03-01T13:00:00.000Z"}, NOW)
    assert moved is not None
    assert (moved.labels["pytest-ecstask.lease"], moved.labels["pytest-ecstask.owner"]) == (
        "/elsewhere/s3.lease",
        "ci:42",
    )
    assert moved.labels["pytest-ecstask.alive"] == "2026-03-01T13:00:00.000Z"
    # A lease tag naming another file than the session's lease: not taken (a sweep removes a dead run's lease).
    other_file = ecs_resource(TASK, ARN, "t", {**tagged, LEASE_TAG: "/home/ci/.bashrc"}, NOW)
    assert other_file is not None and other_file.labels["pytest-ecstask.lease"] == str(tmp_path / "s3.lease")


@pytest.mark.parametrize(
    ("host", "age", "held", "remove", "why"),
    [
        ("this/1", 10, False, True, "its run (s1) is dead: lease "),
        ("this/1", 10**6, True, False, "its run (s1) is alive"),
        ("other/2", 7201, None, True, "from host other/2, 7201 s old"),
        ("other/2", 7199, None, False, "from host other/2, only 7199 s old"),
    ],
)
def test_this_host_s_runs_by_their_lease_and_another_host_s_by_their_age(
    host: str, age: int, held: bool | None, remove: bool, why: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    asked: list[str] = []

    def is_held(path: str) -> bool | None:
        asked.append(path)
        return held

    monkeypatch.setenv("PYTEST_ECSTASK_HOST_ID", "this/1")
    monkeypatch.setenv("PYTEST_ECSTASK_LEASE_DIR", str(tmp_path))
    resource = ecs_resource(TASK, ARN, "t", {SESSION_TAG: "s1", HOST_TAG: host}, NOW - timedelta(seconds=age))
    assert resource is not None
    [verdict] = classify([resource], this_host="this/1", now=NOW, max_age_seconds=7200, is_held=is_held)
    assert verdict.remove is remove and verdict.why.startswith(why)
    assert len(asked) == (1 if host == "this/1" else 0)


@pytest.mark.parametrize(
    ("created", "alive", "remove", "why"),
    [
        (10**5, 600, False, "from host other/2, its run's last heartbeat only 600 s ago"),
        (10**5, 7300, True, "from host other/2, its run's last heartbeat 7300 s ago"),
        (600, 10**5, False, "from host other/2, only 600 s old"),  # a heartbeat older than the creation
        (None, 600, False, "from host other/2, its run's last heartbeat only 600 s ago"),
    ],
)
def test_another_host_s_run_is_as_old_as_its_last_heartbeat(
    created: int | None, alive: int, remove: bool, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ECSTASK_HOST_ID", "this/1")
    stamp = (NOW - timedelta(seconds=alive)).isoformat().replace("+00:00", "Z")
    when = None if created is None else NOW - timedelta(seconds=created)
    resource = ecs_resource(
        REVISION, "arn:td", "web-ecstask:3", {SESSION_TAG: "s2", HOST_TAG: "other/2", ALIVE_TAG: stamp}, when
    )
    assert resource is not None
    [verdict] = classify([resource], this_host="this/1", now=NOW, max_age_seconds=7200)
    assert (verdict.remove, verdict.why) == (remove, why)


def test_the_aws_backend_s_modules_import_no_boto3() -> None:
    import subprocess
    import sys

    modules = "pytest_ecstask.plugin, pytest_ecstask.awsrun, pytest_ecstask.awstask, pytest_ecstask.ecsbackend"
    code = f"import sys, {modules}, pytest_ecstask.awssweep; print('boto3' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout == "False\n"
