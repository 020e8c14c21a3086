"""The task metadata answers, built from a task's record and recorded Docker inspect data: no engine.

tests/data/metadata_inspect.json holds what a real engine said of two tasks (trimmed to what the builders
read); tests/test_endpoints.py asks a live server the same questions from inside the containers.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import NEEDS_FAULT_INJECTION, NEEDS_RESTART_POLICY
from pytest_ecstask.credentials import from_mapping
from pytest_ecstask.endpointids import EndpointInfo, authorization_token, credentials_id, metadata_id
from pytest_ecstask.lifecycle import Owner
from pytest_ecstask.metadata import (
    ContainerRecord,
    TaskRecord,
    build_task_record,
    container_response,
    health,
    host_binding,
    log_options,
    network_owner,
    published_ports,
    stats_response,
    task_addresses,
    task_limits,
    task_response,
    with_network_stats,
)
from pytest_ecstask.plan import PlanOptions, build_plan
from pytest_ecstask.taskdef import parse_task_definition

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "metadata_v4_examples.json"
RECORDED = json.loads((Path(__file__).parent / "data" / "metadata_inspect.json").read_text())
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
IMAGE = "pytest-ecstask-test/busybox:1"
PAUSE = "~internal~ecs~pause"
ROLE = "arn:aws:iam::123456789012:role/checkout-task"
STATIC = {
    "AccessKeyId": "AKIAEXAMPLESTATIC01",
    "SecretAccessKey": "static-secret-never-printed",
    "Token": "static-session-token",
    "Expiration": "2030-01-01T00:00:00Z",
}
# The task definitions the recorded tasks ran (tests/test_endpoints.py runs the first one too).
CHECKOUT = {
    "family": "checkout",
    "taskRoleArn": ROLE,
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
    "tags": [{"key": "team", "value": "payments"}],
    "containerDefinitions": [
        {
            "name": "app",
            "image": IMAGE,
            "cpu": 128,
            "memory": 64,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ecs/checkout", "awslogs-stream-prefix": "web"},
            },
            "healthCheck": {"command": ["CMD-SHELL", "echo all good"], "interval": 5},
            "portMappings": [{"containerPort": 8080}],
            "dockerLabels": {"team": "payments"},
            "mountPoints": [{"sourceVolume": "cache", "containerPath": "/cache"}],
        },
        {
            "name": "migrate",
            "image": IMAGE,
            "command": ["sh", "-c", "exit 3"],
            "essential": False,
            "memoryReservation": 32,
        },
    ],
    "volumes": [{"name": "cache"}],
}
SHARED = {
    "family": "shared",
    "networkMode": "bridge",
    "pidMode": "task",
    "containerDefinitions": [
        {"name": "web", "image": IMAGE, "memory": 64, "portMappings": [{"containerPort": 80}]},
    ],
}


# -- comparing with the reference shapes (tests/test_endpoints.py uses these on live answers) ----------------


def reference() -> dict[str, Any]:
    if not REFERENCE.exists():
        pytest.skip("shared/reference is not beside the checkout")
    return dict(json.loads(REFERENCE.read_text()))


def shape_problems(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Where our JSON differs from the reference in keys (those both should have) or in value types."""
    problems = []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{path}: expected an object, got {type(ours).__name__}"]
        for key, value in theirs.items():
            if key in OPTIONAL_KEYS:
                continue
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += shape_problems(ours[key], value, f"{path}.{key}")
    elif isinstance(theirs, list) and theirs and isinstance(ours, list) and ours:
        problems += shape_problems(ours[0], theirs[0], f"{path}[0]")
    elif isinstance(theirs, str) and RFC3339_NANO.match(theirs):
        if not (isinstance(ours, str) and RFC3339_NANO.match(ours)):
            problems.append(f"{path}: {ours!r} is not an RFC 3339 timestamp")
    elif type(theirs) in (str, bool) and type(ours) is not type(theirs):
        problems.append(f"{path}: expected {type(theirs).__name__}, got {ours!r}")
    elif isinstance(theirs, (int, float)) and not isinstance(ours, (int, float)):
        problems.append(f"{path}: expected a number, got {ours!r}")
    return problems


# Fields ECS has only with a service, a VPC ENI or an EC2 instance behind the task.
OPTIONAL_KEYS = {
    "ServiceName",
    "VPCID",
    "PrivateDNSName",
    "ContainerInstanceTags",
    "Errors",
    "num_procs",
    "storage_stats",
    "io_service_bytes_recursive",
    "percpu_usage",
    "throttling_data",
    "ExitCode",
    "FinishedAt",
    "Health",
    "Ports",
    "LogDriver",
    "LogOptions",
    "Limits",
    "MACAddress",
    "IPv4SubnetCIDRBlock",
    "SubnetGatewayIpv4Address",
    "AttachmentIndex",
    "stats",
    "networks",
    "read",
    "preread",
    "hierarchical_memsw_limit",
    "cpu_usage",
    "max_usage",
}


def test_the_shape_check_finds_what_differs() -> None:
    theirs = {"A": "x", "B": 1, "C": {"D": True}, "T": "2026-01-01T00:00:00.5Z", "ExitCode": 0}
    assert shape_problems({"A": "y", "B": 2.5, "C": {"D": False}, "T": "2026-02-02T00:00:00Z"}, theirs) == []
    assert shape_problems({"A": 1, "C": {"D": "no"}, "T": "yesterday"}, theirs) == [
        "$.A: expected str, got 1",
        "$.B: missing",
        "$.C.D: expected bool, got 'no'",
        "$.T: 'yesterday' is not an RFC 3339 timestamp",
    ]


# -- the recorded tasks, as records and inspect data ----------------------------------------------------------


def recorded_task(name: str, taskdef: dict[str, Any], port: int = 40123) -> tuple[TaskRecord, dict[str, Any]]:
    """The record of a recorded task (same task id, so the same Docker names) and its inspect data by name."""
    recording = RECORDED[name]
    definition = parse_task_definition(taskdef, f"{name}.json")
    plan = build_plan(
        definition,
        PlanOptions(
            task_id=recording["task_id"],
            owner=Owner("sess01", "host/1", ""),
            created="2026-01-01T00:00:00.000Z",
            pause_image="pytest-ecstask/pause:test",
            endpoint=EndpointInfo(port, "control-token", 1),
            secret="per-task-secret",
        ),
    )
    credentials = from_mapping(ROLE, STATIC, "the test") if definition.task_role_arn else None
    record = build_task_record(plan, definition, credentials, "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z")
    by_name = {c.name: c.docker_name for c in record.containers}
    inspected = {by_name[c]: copy.deepcopy(info) for c, info in recording["containers"].items() if c in by_name}
    return record, inspected


@pytest.fixture
def checkout() -> tuple[TaskRecord, dict[str, Any]]:
    return recorded_task("checkout", CHECKOUT)


def docker_name(record: TaskRecord, name: str) -> str:
    return record.container(name).docker_name


def test_the_record_holds_what_the_task_definition_and_the_plan_say(checkout: Any) -> None:
    record, _ = checkout
    task_id = RECORDED["checkout"]["task_id"]
    assert [c.name for c in record.containers] == [PAUSE, "app", "migrate"]  # the pause container first
    assert record.task_arn == f"arn:aws:ecs:us-east-1:123456789012:task/pytest-ecstask/{task_id}"
    assert (record.family, record.revision, record.network_mode) == ("checkout", 1, "awsvpc")
    assert record.network_name == f"ecs-checkout-1-{task_id[:12]}"
    assert record.pause_docker_name == f"ecs-checkout-1-internalecspause-{task_id[:12]}"
    assert record.task_tags == {"team": "payments"} and record.limits == {"CPU": 0.25, "Memory": 512}
    assert record.fault_injection is False and record.restart_counts == {} and record.first_started_at == {}
    app = record.container("app")
    assert app.metadata_id == metadata_id("per-task-secret", "app") and app.essential and app.health_check
    assert app.limits == {"CPU": 128, "Memory": 64} and app.log_driver == "awslogs" and app.health_retries == 3
    assert not app.restart_policy_enabled
    assert re.fullmatch(
        rf"arn:aws:ecs:us-east-1:123456789012:container/pytest-ecstask/{task_id}/"
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        app.container_arn,
    )
    # The labels the agent creates the container with: its own and the dockerLabels; ours are not among them.
    assert app.labels == {
        "team": "payments",
        "com.amazonaws.ecs.cluster": "pytest-ecstask",
        "com.amazonaws.ecs.task-arn": record.task_arn,
        "com.amazonaws.ecs.task-definition-family": "checkout",
        "com.amazonaws.ecs.task-definition-version": "1",
        "com.amazonaws.ecs.container-name": "app",
    }
    pause = record.container(PAUSE)
    assert (pause.type, pause.metadata_id, pause.container_arn, pause.ports) == ("CNI_PAUSE", "", "", ())
    assert pause.labels["com.amazonaws.ecs.container-name"] == PAUSE and "pytest-ecstask.role" not in pause.labels
    assert record.credentials is not None
    assert record.credentials.id == credentials_id("per-task-secret")
    assert record.credentials.token == authorization_token("per-task-secret")
    assert record.credentials.values == STATIC


def test_the_agent_reports_the_hard_memory_limit_only() -> None:
    # memoryReservation is a Docker setting the agent passes on; its container Memory is the hard limit.
    record, _ = recorded_task("checkout", CHECKOUT)
    assert record.container("migrate").limits == {"CPU": 0, "Memory": 0}


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        # ECS names the awslogs stream prefix/container/task-id, and hands the agent that stream, no prefix.
        (
            {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-stream-prefix": "web"}},
            {"awslogs-group": "g", "awslogs-stream": "web/app/0123"},
        ),
        # Without a prefix Docker names the stream after the container id: nothing is added.
        ({"logDriver": "awslogs", "options": {"awslogs-group": "g"}}, {"awslogs-group": "g"}),
        # Other drivers keep their options as given, a key named like the awslogs one included.
        (
            {"logDriver": "fluentd", "options": {"tag": "app", "awslogs-stream-prefix": "x"}},
            {"tag": "app", "awslogs-stream-prefix": "x"},
        ),
        ({"logDriver": "json-file"}, {}),
    ],
)
def test_log_options_are_those_ecs_hands_the_agent(log: dict[str, Any], expected: dict[str, str]) -> None:
    assert log_options(log, "app", "0123") == expected


@NEEDS_FAULT_INJECTION
@NEEDS_RESTART_POLICY
def test_a_restart_policy_and_fault_injection_reach_the_record() -> None:
    taskdef = {
        "family": "restarts",
        "enableFaultInjection": True,
        "containerDefinitions": [
            {
                "name": "app",
                "image": IMAGE,
                "memory": 64,
                "restartPolicy": {"enabled": True, "ignoredExitCodes": [], "restartAttemptPeriod": 60},
                "healthCheck": {"command": ["CMD", "true"], "retries": 5},
            },
            {"name": "off", "image": IMAGE, "memory": 64, "restartPolicy": {"enabled": False}},
        ],
    }
    record, _ = recorded_task("checkout", taskdef)
    assert record.fault_injection is True
    assert record.container("app").restart_policy_enabled and not record.container("off").restart_policy_enabled
    assert record.container("app").health_retries == 5


def test_on_port_80_credentials_need_no_token_as_on_ecs() -> None:
    record, _ = recorded_task("checkout", CHECKOUT, port=80)
    assert record.credentials is not None and record.credentials.token == ""


def test_a_record_survives_the_trip_to_the_server_process(checkout: Any) -> None:
    record, _ = checkout
    assert TaskRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    shared, _ = recorded_task("shared", SHARED)
    assert shared.credentials is None
    assert TaskRecord.from_dict(json.loads(json.dumps(shared.to_dict()))) == shared
    restarted = TaskRecord.from_dict({**record.to_dict(), "restart_counts": {"app": 2}})
    assert TaskRecord.from_dict(json.loads(json.dumps(restarted.to_dict()))).restart_counts == {"app": 2}


def test_a_record_never_shows_the_credentials_it_serves(checkout: Any) -> None:
    record, _ = checkout
    shown = repr(record)
    assert record.credentials is not None
    for value in (*STATIC.values(), record.credentials.token, record.credentials.id):
        assert value not in shown
    assert ROLE in shown


# -- container metadata --------------------------------------------------------------------------------------
# The agent's fields, in its order (the Go structs of ecs-agent/tmds/handlers/v2 and v4/state).
V4_CONTAINER_FIELDS = [
    *("DockerId", "Name", "DockerName", "Image", "ImageID", "Ports", "Labels", "DesiredStatus", "KnownStatus"),
    *("ExitCode", "Limits", "CreatedAt", "StartedAt", "FinishedAt", "Type", "Health", "Volumes", "LogDriver"),
    *("LogOptions", "ContainerARN", "Networks", "RestartCount"),
]
V3_CONTAINER_FIELDS = [
    *("DockerId", "Name", "DockerName", "Image", "ImageID", "Ports", "Labels", "DesiredStatus", "KnownStatus"),
    *("ExitCode", "Limits", "CreatedAt", "StartedAt", "FinishedAt", "Type", "Networks", "Health", "Volumes"),
]


def in_agent_order(answer: dict[str, Any], fields: list[str]) -> bool:
    return list(answer) == [f for f in fields if f in answer] and set(answer) <= set(fields)


def test_container_metadata_matches_the_reference_and_docker(checkout: Any) -> None:
    record, inspected = checkout
    task_id = RECORDED["checkout"]["task_id"]
    app_info = RECORDED["checkout"]["containers"]["app"]
    ours = container_response(record, record.container("app"), inspected, v4=True)
    assert shape_problems(ours, reference()["v4"]["Example container metadata response"]) == []
    assert in_agent_order(ours, V4_CONTAINER_FIELDS)
    assert ours["DockerId"] == app_info["Id"] and ours["ImageID"] == app_info["Image"]
    assert (ours["Name"], ours["DockerName"], ours["Image"]) == ("app", docker_name(record, "app"), IMAGE)
    assert (ours["KnownStatus"], ours["DesiredStatus"]) == ("RUNNING", "RUNNING")
    assert ours["CreatedAt"] == app_info["Created"] and ours["StartedAt"] == app_info["State"]["StartedAt"]
    assert "FinishedAt" not in ours and "ExitCode" not in ours  # Docker's zero time is no time
    assert ours["Limits"] == {"CPU": 128, "Memory": 64}
    check = app_info["State"]["Health"]["Log"][0]  # the first success made it HEALTHY
    assert ours["Health"] == {"status": "HEALTHY", "statusSince": check["End"], "output": "all good\n"}
    assert ours["Labels"] == record.container("app").labels and ours["Labels"]["team"] == "payments"
    assert ours["LogDriver"] == "awslogs"
    assert ours["LogOptions"] == {"awslogs-group": "/ecs/checkout", "awslogs-stream": f"web/app/{task_id}"}
    assert ours["ContainerARN"] == record.container("app").container_arn
    mount = app_info["Mounts"][0]
    assert ours["Volumes"] == [{"DockerName": mount["Name"], "Source": mount["Source"], "Destination": "/cache"}]
    # awsvpc: the task's ENI is the pause container's address, with the v4 interface properties.
    net = RECORDED["checkout"]["containers"][PAUSE]["NetworkSettings"]["Networks"][record.network_name]
    prefix = net["IPPrefixLen"]
    assert ours["Networks"] == [
        {
            "NetworkMode": "awsvpc",
            "IPv4Addresses": [net["IPAddress"]],
            "AttachmentIndex": 0,
            "IPv4SubnetCIDRBlock": str(ipaddress.ip_network(f"{net['IPAddress']}/{prefix}", strict=False)),
            "MACAddress": net["MacAddress"],
            "SubnetGatewayIpv4Address": f"{net['Gateway']}/{prefix}",
        }
    ]
    # "Port mappings are not applicable to awsvpc network mode": the agent reports none, though the pause
    # container publishes them here for the test.
    assert "Ports" not in ours and RECORDED["checkout"]["containers"][PAUSE]["NetworkSettings"]["Ports"]
    assert "RestartCount" not in ours  # no restartPolicy


def test_v3_container_metadata_has_no_v4_fields(checkout: Any) -> None:
    record, inspected = checkout
    v3 = container_response(record, record.container("app"), inspected, v4=False)
    assert shape_problems(v3, reference()["v3"]["Example Container Metadata Response"]) == []
    assert in_agent_order(v3, V3_CONTAINER_FIELDS)
    assert not {"LogDriver", "LogOptions", "ContainerARN", "RestartCount"} & set(v3)
    assert set(v3["Networks"][0]) == {"NetworkMode", "IPv4Addresses"}
    assert v3["DockerId"] == RECORDED["checkout"]["containers"]["app"]["Id"] and v3["Volumes"]


def test_an_exited_non_essential_container_reports_its_exit_code_and_stays_desired_running(checkout: Any) -> None:
    record, inspected = checkout
    state = RECORDED["checkout"]["containers"]["migrate"]["State"]
    ours = container_response(record, record.container("migrate"), inspected, v4=True)
    # The agent leaves its desired status RUNNING: only an essential container's exit stops the task.
    assert (ours["KnownStatus"], ours["DesiredStatus"], ours["ExitCode"]) == ("STOPPED", "RUNNING", 3)
    assert ours["FinishedAt"] == state["FinishedAt"]
    assert "Health" not in ours and "LogDriver" not in ours and "Ports" not in ours and "Volumes" not in ours


def test_cpu_below_two_units_is_reported_as_two_as_the_agent_does(checkout: Any) -> None:
    record, inspected = checkout
    # migrate sets no cpu and only a memoryReservation; the pause container sets neither.
    for name in ("migrate", PAUSE):
        assert container_response(record, record.container(name), inspected, v4=True)["Limits"] == {
            "CPU": 2,
            "Memory": 0,
        }


def test_a_container_never_started_is_created_and_desired_running(checkout: Any) -> None:
    record, inspected = checkout
    state = inspected[docker_name(record, "migrate")]["State"]
    state.update(Status="created", Running=False, StartedAt="0001-01-01T00:00:00Z", ExitCode=0)
    state.update(FinishedAt="0001-01-01T00:00:00Z")
    ours = container_response(record, record.container("migrate"), inspected, v4=True)
    assert (ours["KnownStatus"], ours["DesiredStatus"]) == ("CREATED", "RUNNING")
    assert "StartedAt" not in ours and "ExitCode" not in ours and "FinishedAt" not in ours


def test_a_container_not_created_yet_is_pulled(checkout: Any) -> None:
    # dependsOn holds it back: its image is there (the task registers after the pull), Docker has nothing.
    record, inspected = checkout
    inspected[docker_name(record, "app")] = None
    ours = container_response(record, record.container("app"), inspected, v4=True)
    assert (ours["KnownStatus"], ours["DesiredStatus"], ours["DockerId"], ours["ImageID"]) == (
        "PULLED",
        "RUNNING",
        "",
        "",
    )
    assert ours["Labels"] == record.container("app").labels and ours["Health"] == {}
    assert not {"ExitCode", "CreatedAt", "StartedAt", "Volumes"} & set(ours)


def test_containers_already_removed_are_stopped(checkout: Any) -> None:
    record, inspected = checkout
    gone = {name: None for name in inspected}
    ours = container_response(record, record.container("app"), gone, v4=True)
    assert (ours["KnownStatus"], ours["DesiredStatus"], ours["DockerId"]) == ("STOPPED", "STOPPED", "")


def test_an_essential_exit_makes_every_container_desired_stopped(checkout: Any) -> None:
    record, inspected = checkout
    inspected[docker_name(record, "app")]["State"] = _state("exited", 1)
    for name, known in ((PAUSE, "RESOURCES_PROVISIONED"), ("app", "STOPPED"), ("migrate", "STOPPED")):
        ours = container_response(record, record.container(name), inspected, v4=True)
        assert (ours["KnownStatus"], ours["DesiredStatus"]) == (known, "STOPPED"), name


def test_after_a_restart_started_at_is_the_first_and_finished_at_the_last_exit(checkout: Any) -> None:
    record, inspected = checkout
    state = inspected[docker_name(record, "app")]["State"]
    state.update(StartedAt="2026-01-01T00:01:00.5Z", FinishedAt="2026-01-01T00:00:59.25Z")
    record = TaskRecord.from_dict({**record.to_dict(), "first_started_at": {"app": "2026-01-01T00:00:00.1Z"}})
    ours = container_response(record, record.container("app"), inspected, v4=True)
    assert (ours["KnownStatus"], ours["StartedAt"], ours["FinishedAt"]) == (
        "RUNNING",
        "2026-01-01T00:00:00.1Z",  # the agent sets it once
        "2026-01-01T00:00:59.25Z",  # the agent records Docker's, which is the last exit's
    )
    assert "ExitCode" not in ours  # running again


@NEEDS_RESTART_POLICY
def test_restart_count_only_under_an_enabled_restart_policy_and_only_in_v4() -> None:
    taskdef = {
        "family": "restarts",
        "containerDefinitions": [
            {
                "name": "app",
                "image": IMAGE,
                "memory": 64,
                "restartPolicy": {"enabled": True, "ignoredExitCodes": [], "restartAttemptPeriod": 60},
            },
            {"name": "plain", "image": IMAGE, "memory": 64},
        ],
    }
    record, _ = recorded_task("checkout", taskdef)
    info = copy.deepcopy(RECORDED["checkout"]["containers"]["app"])
    inspected = {docker_name(record, "app"): info, docker_name(record, "plain"): copy.deepcopy(info)}
    assert container_response(record, record.container("app"), inspected, v4=True)["RestartCount"] == 0
    assert "RestartCount" not in container_response(record, record.container("plain"), inspected, v4=True)
    restarted = TaskRecord.from_dict({**record.to_dict(), "restart_counts": {"app": 3}})
    assert container_response(restarted, restarted.container("app"), inspected, v4=True)["RestartCount"] == 3
    assert "RestartCount" not in container_response(restarted, restarted.container("app"), inspected, v4=False)
    task = task_response(restarted, inspected, v4=True, with_tags=False)
    assert [c.get("RestartCount") for c in task["Containers"]] == [3, None]


def _check(end: str, exit_code: int, output: str = "") -> dict[str, Any]:
    return {"Start": end, "End": end, "ExitCode": exit_code, "Output": output}


OK1, OK2, OK3 = (_check(f"2026-01-01T00:00:0{i}Z", 0, f"ok {i}\n") for i in (1, 2, 3))
BAD1, BAD2, BAD3, BAD4 = (_check(f"2026-01-01T00:00:1{i}Z", 1, f"bad {i}\n") for i in (1, 2, 3, 4))


@pytest.mark.parametrize(
    ("docker_health", "retries", "previous", "expected"),
    [
        # Docker's "starting" (or no health at all) is no status the agent reports: an empty object.
        ({"Status": "starting", "Log": [BAD1]}, 3, None, {}),
        (None, 3, None, {}),
        # HEALTHY: the time and output of the first success after the last failure; no exitCode.
        (
            {"Status": "healthy", "Log": [BAD1, OK1, OK2]},
            3,
            None,
            {"status": "HEALTHY", "statusSince": OK1["End"], "output": "ok 1\n"},
        ),
        # Failures fewer than retries after it became healthy do not change it.
        (
            {"Status": "healthy", "FailingStreak": 2, "Log": [OK1, OK2, BAD1, BAD2]},
            3,
            None,
            {"status": "HEALTHY", "statusSince": OK1["End"], "output": "ok 1\n"},
        ),
        # UNHEALTHY: the failure that made `retries` in a row, with its exit code.
        (
            {"Status": "unhealthy", "FailingStreak": 4, "Log": [OK1, BAD1, BAD2, BAD3, BAD4]},
            3,
            None,
            {"status": "UNHEALTHY", "statusSince": BAD3["End"], "exitCode": 1, "output": "bad 3\n"},
        ),
        # An unchanged status keeps what the agent first said, however Docker's log has moved on.
        (
            {"Status": "healthy", "Log": [OK2, OK3]},
            3,
            {"status": "HEALTHY", "statusSince": "earlier", "output": "first\n"},
            {"status": "HEALTHY", "statusSince": "earlier", "output": "first\n"},
        ),
        # Recovered: the exit code of the failure stays, as the agent sets it only when unhealthy.
        (
            {"Status": "healthy", "Log": [BAD4, OK3]},
            3,
            {"status": "UNHEALTHY", "statusSince": "earlier", "exitCode": 1, "output": "bad\n"},
            {"status": "HEALTHY", "statusSince": OK3["End"], "exitCode": 1, "output": "ok 3\n"},
        ),
    ],
)
def test_health_is_what_the_agent_keeps(
    docker_health: dict[str, Any] | None, retries: int, previous: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    assert health(docker_health, retries, previous) == expected


def test_health_output_is_cut_where_the_agent_cuts_it() -> None:
    long = {"Status": "healthy", "Log": [_check("2026-01-01T00:00:01Z", 0, "x" * 5000)]}
    assert health(long, 3, None)["output"] == "x" * 1024


def test_the_server_keeps_the_health_it_answered(checkout: Any) -> None:
    record, inspected = checkout
    app = inspected[docker_name(record, "app")]
    seen = {app["Id"]: {"status": "HEALTHY", "statusSince": "2026-01-01T00:00:00Z", "output": "first\n"}}
    ours = container_response(record, record.container("app"), inspected, v4=True, seen=seen)
    assert ours["Health"] == seen[app["Id"]]


def test_only_a_task_definition_health_check_gives_health(checkout: Any) -> None:
    record, inspected = checkout
    # An image HEALTHCHECK shows in Docker's state; the task definition gives migrate none.
    inspected[docker_name(record, "migrate")]["State"]["Health"] = {"Status": "healthy", "Log": []}
    assert "Health" not in container_response(record, record.container("migrate"), inspected, v4=True)


def test_the_pause_container_reports_its_resources_provisioned(checkout: Any) -> None:
    record, inspected = checkout
    ours = container_response(record, record.container(PAUSE), inspected, v4=True)
    assert (ours["KnownStatus"], ours["DesiredStatus"], ours["Type"]) == (
        "RESOURCES_PROVISIONED",
        "RESOURCES_PROVISIONED",
        "CNI_PAUSE",
    )
    assert ours["ImageID"] == "" and not {"ContainerARN", "Ports", "Volumes", "LogDriver"} & set(ours)
    inspected[docker_name(record, PAUSE)]["State"].update(Running=False, ExitCode=137)
    stopped = container_response(record, record.container(PAUSE), inspected, v4=True)
    assert (stopped["KnownStatus"], stopped["DesiredStatus"], stopped["ExitCode"]) == (
        "STOPPED",
        "RESOURCES_PROVISIONED",
        137,
    )


def test_bridge_containers_report_their_docker_network_and_every_binding() -> None:
    record, inspected = recorded_task("shared", SHARED)
    web_info = RECORDED["shared"]["containers"]["web"]
    ours = container_response(record, record.container("web"), inspected, v4=True)
    address = web_info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    # No interface properties outside awsvpc: the network Docker names, and the address on it.
    assert ours["Networks"] == [{"NetworkMode": "bridge", "IPv4Addresses": [address]}]
    bindings = web_info["NetworkSettings"]["Ports"]["80/tcp"]
    assert len(bindings) == 2  # Docker publishes on 0.0.0.0 and ::, and the agent lists both
    assert ours["Ports"] == [
        {"ContainerPort": 80, "Protocol": "tcp", "HostPort": int(b["HostPort"]), "HostIp": b["HostIp"]}
        for b in bindings
    ]
    v3 = container_response(record, record.container("web"), inspected, v4=False)
    assert v3["Ports"] == [{"ContainerPort": 80, "Protocol": "tcp", "HostPort": int(b["HostPort"])} for b in bindings]
    # The pidMode pause container is on Docker's "none" network, where it has no address.
    pause = container_response(record, record.container(PAUSE), inspected, v4=True)
    assert pause["Networks"] == [{"NetworkMode": "none", "IPv4Addresses": [""]}]


@pytest.mark.parametrize("mode", ["host", "none"])
def test_host_and_none_network_modes(mode: str) -> None:
    ports = [{"containerPort": 9000}] if mode == "host" else []
    taskdef = {
        "family": "plain",
        "networkMode": mode,
        "containerDefinitions": [{"name": "app", "image": IMAGE, "memory": 64, "portMappings": ports}],
    }
    record, _ = recorded_task("checkout", taskdef)
    info = copy.deepcopy(RECORDED["checkout"]["containers"]["app"])
    # What Docker says of a container in these modes: one network of that name, no address, nothing published.
    info["NetworkSettings"] = {"Ports": {}, "Networks": {mode: {"IPAddress": "", "MacAddress": ""}}, "IPAddress": ""}
    ours = container_response(record, record.container("app"), {docker_name(record, "app"): info}, v4=True)
    assert ours["Networks"] == [{"NetworkMode": mode, "IPv4Addresses": [""]}]
    assert "Ports" not in ours  # Docker publishes nothing in host mode, so the agent has no binding


def test_a_port_docker_has_not_published_is_left_out() -> None:
    record, inspected = recorded_task("shared", SHARED)
    inspected[docker_name(record, "web")]["NetworkSettings"]["Ports"] = {"80/tcp": None}
    assert "Ports" not in container_response(record, record.container("web"), inspected, v4=True)


def test_podmans_default_network_and_bindings_read_as_the_agent_reports_docker_s() -> None:
    # Podman names the default bridge "podman" and leaves HostIp empty for a binding on every address.
    record, inspected = recorded_task("shared", SHARED)
    settings = inspected[docker_name(record, "web")]["NetworkSettings"]
    settings["Networks"] = {"podman": settings["Networks"]["bridge"]}
    settings["Ports"] = {"80/tcp": [{"HostIp": "", "HostPort": "45673"}]}
    ours = container_response(record, record.container("web"), inspected, v4=True)
    assert [n["NetworkMode"] for n in ours["Networks"]] == ["bridge"]
    assert ours["Ports"] == [{"ContainerPort": 80, "Protocol": "tcp", "HostPort": 45673, "HostIp": "0.0.0.0"}]
    # Only the default network of a bridge task is the bridge: a network a test joined keeps its name.
    settings["Networks"]["podman-extra"] = settings["Networks"]["podman"]
    ours = container_response(record, record.container("web"), inspected, v4=True)
    assert [n["NetworkMode"] for n in ours["Networks"]] == ["bridge", "podman-extra"]


def test_an_ipv6_address_is_reported_beside_the_ipv4_one() -> None:
    record, inspected = recorded_task("shared", SHARED)
    inspected[docker_name(record, "web")]["NetworkSettings"]["Networks"]["bridge"]["GlobalIPv6Address"] = "fd00::2"
    network = container_response(record, record.container("web"), inspected, v4=True)["Networks"][0]
    assert network["IPv6Addresses"] == ["fd00::2"]


# -- task metadata -------------------------------------------------------------------------------------------
V4_TASK_FIELDS = [
    *("Cluster", "TaskARN", "Family", "Revision", "DesiredStatus", "KnownStatus", "Limits", "PullStartedAt"),
    *("PullStoppedAt", "ExecutionStoppedAt", "AvailabilityZone", "TaskTags", "LaunchType", "Containers"),
    "FaultInjectionEnabled",
]
V3_TASK_FIELDS = [
    *("Cluster", "TaskARN", "Family", "Revision", "DesiredStatus", "KnownStatus", "Containers", "Limits"),
    *("PullStartedAt", "PullStoppedAt", "ExecutionStoppedAt", "AvailabilityZone", "TaskTags"),
]


def test_task_metadata_matches_the_reference_with_the_pause_container(checkout: Any) -> None:
    record, inspected = checkout
    ref = reference()
    task = task_response(record, inspected, v4=True, with_tags=False)
    assert shape_problems(task, ref["v4"]["Example task metadata response"]) == []
    assert in_agent_order(task, V4_TASK_FIELDS)
    assert (task["Cluster"], task["TaskARN"], task["Family"], task["Revision"]) == (
        "pytest-ecstask",
        record.task_arn,
        "checkout",
        "1",
    )
    assert (task["KnownStatus"], task["DesiredStatus"]) == ("RUNNING", "RUNNING")
    assert task["Limits"] == {"CPU": 0.25, "Memory": 512}
    assert (task["PullStartedAt"], task["PullStoppedAt"]) == ("2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z")
    assert (task["AvailabilityZone"], task["LaunchType"]) == ("us-east-1a", "EC2")
    assert task["FaultInjectionEnabled"] is False  # always there in v4
    assert [c["Name"] for c in task["Containers"]] == [PAUSE, "app", "migrate"]
    assert task["Containers"][1] == container_response(record, record.container("app"), inspected, v4=True)
    assert not {"TaskTags", "ContainerInstanceTags", "ExecutionStoppedAt"} & set(task)
    v3 = task_response(record, inspected, v4=False, with_tags=False)
    assert shape_problems(v3, ref["v3"]["Example Task Metadata Response"]) == []
    assert in_agent_order(v3, V3_TASK_FIELDS)
    assert not {"LaunchType", "FaultInjectionEnabled"} & set(v3)


def test_task_with_tags(checkout: Any) -> None:
    record, inspected = checkout
    tagged = task_response(record, inspected, v4=True, with_tags=True)
    theirs = reference()["v4"]["Example task with tags metadata response"]
    assert shape_problems(tagged, {**theirs, "TaskTags": {}}) == []  # the tags are the task definition's
    # The agent leaves out an empty map: no container instance here, so no ContainerInstanceTags.
    assert tagged["TaskTags"] == {"team": "payments"} and "ContainerInstanceTags" not in tagged
    untagged, inspected = recorded_task("shared", SHARED)
    assert not {"TaskTags", "ContainerInstanceTags"} & set(task_response(untagged, inspected, True, True))


@NEEDS_FAULT_INJECTION
def test_fault_injection_is_the_task_definitions() -> None:
    record, inspected = recorded_task("shared", {**SHARED, "enableFaultInjection": True})
    assert task_response(record, inspected, v4=True, with_tags=False)["FaultInjectionEnabled"] is True


@pytest.mark.parametrize(
    ("cpu", "memory", "limits"),
    [
        ("256", "512", {"CPU": 0.25, "Memory": 512}),
        ("1 vCPU", "2 GB", {"CPU": 1.0, "Memory": 2048}),
        ("0.5 vcpu", "1.5gb", {"CPU": 0.5, "Memory": 1536}),
        ("2048", None, {"CPU": 2.0}),
        (None, "1024", {"Memory": 1024}),
    ],
)
def test_task_limits_read_the_forms_the_api_accepts(cpu: str | None, memory: str | None, limits: Any) -> None:
    raw = {key: value for key, value in (("cpu", cpu), ("memory", memory)) if value is not None}
    assert task_limits(raw) == limits


def test_a_task_definition_without_cpu_memory_or_pull_times_leaves_them_out() -> None:
    record, inspected = recorded_task("shared", SHARED)
    record = TaskRecord.from_dict({**record.to_dict(), "pull_started_at": "", "pull_stopped_at": ""})
    task = task_response(record, inspected, v4=True, with_tags=False)
    assert not {"Limits", "PullStartedAt", "PullStoppedAt"} & set(task)


def _state(status: str, exit_code: int = 0) -> dict[str, Any]:
    started = "0001-01-01T00:00:00Z" if status == "created" else "2026-01-01T00:00:00Z"
    finished = "2026-01-01T00:00:09Z" if status == "exited" else "0001-01-01T00:00:00Z"
    return {
        "Status": status,
        "Running": status == "running",
        "StartedAt": started,
        "FinishedAt": finished,
        "ExitCode": exit_code,
    }


@pytest.mark.parametrize(
    ("pause", "app", "migrate", "known", "desired"),
    [
        # The earliest of the containers' statuses; a stopped one does not hold the task back.
        ("running", "running", "exited", "RUNNING", "RUNNING"),  # a non-essential container may exit
        ("running", "running", "running", "RUNNING", "RUNNING"),
        ("running", "created", "running", "CREATED", "RUNNING"),
        ("running", None, "exited", "MANIFEST_PULLED", "RUNNING"),  # app waits for migrate: not created yet
        ("running", "exited", "running", "RUNNING", "STOPPED"),  # an essential container exited: stopping
        ("running", "exited", "exited", "RUNNING", "STOPPED"),  # the pause container is stopped last
        ("exited", "exited", "exited", "STOPPED", "STOPPED"),
        (None, None, None, "STOPPED", "STOPPED"),  # removed
    ],
)
def test_the_task_status_is_the_agents(
    checkout: Any, pause: str | None, app: str | None, migrate: str | None, known: str, desired: str
) -> None:
    record, inspected = checkout
    for name, status in ((PAUSE, pause), ("app", app), ("migrate", migrate)):
        if status is None:
            inspected[docker_name(record, name)] = None
        else:
            inspected[docker_name(record, name)]["State"] = _state(status)
    task = task_response(record, inspected, v4=True, with_tags=False)
    assert (task["KnownStatus"], task["DesiredStatus"]) == (known, desired)
    assert ("ExecutionStoppedAt" in task) == (app == "exited")  # when the essential container stopped
    if app == "exited":
        assert task["ExecutionStoppedAt"] == "2026-01-01T00:00:09Z"


def test_v3_lists_only_containers_docker_has_and_v4_the_pulled_ones_too(checkout: Any) -> None:
    record, inspected = checkout
    inspected[docker_name(record, "app")] = None
    v4 = task_response(record, inspected, v4=True, with_tags=False)
    assert [(c["Name"], c["KnownStatus"]) for c in v4["Containers"]][1] == ("app", "PULLED")
    v3 = task_response(record, inspected, v4=False, with_tags=False)
    assert [c["Name"] for c in v3["Containers"]] == [PAUSE, "migrate"]
    assert v3["KnownStatus"] == "MANIFEST_PULLED"  # the task status counts it all the same


# -- the awsvpc port lookup and the addresses credentials requests may come from -------------------------------


def test_under_awsvpc_the_pause_container_owns_every_network() -> None:
    assert network_owner("awsvpc", "app", "pause") == "pause"
    assert network_owner("awsvpc", "app", None) == "app"
    assert network_owner("bridge", "app", "pause") == "app"  # a pidMode/ipcMode pause has no network of theirs
    published = published_ports(RECORDED["checkout"]["containers"][PAUSE])
    port = int(published["8080/tcp"][0]["HostPort"])
    assert host_binding(published, "8080/tcp") == (port, "0.0.0.0")
    assert host_binding(published, "9090/tcp") is None
    assert host_binding({"53/udp": [{"HostPort": "5353", "HostIp": ""}]}, "53/udp") == (5353, "0.0.0.0")
    assert host_binding({"53/udp": [{"HostPort": "5353", "HostIp": "127.0.0.1"}]}, "53/udp") == (5353, "127.0.0.1")
    assert published_ports(None) == {} and published_ports({"NetworkSettings": {"Ports": None}}) == {}


def test_credentials_requests_may_come_from_the_tasks_own_addresses(checkout: Any) -> None:
    record, inspected = checkout
    pause = RECORDED["checkout"]["containers"][PAUSE]["NetworkSettings"]["Networks"][record.network_name]
    assert record.network_owners() == [record.pause_docker_name]
    assert task_addresses(record, inspected) == {pause["IPAddress"]}
    # With a pause container for pidMode only, each container has its own address on the task network.
    shared, shared_inspected = recorded_task("shared", SHARED)
    web = RECORDED["shared"]["containers"]["web"]["NetworkSettings"]["Networks"][shared.network_name]
    assert task_addresses(shared, shared_inspected) == {web["IPAddress"]}
    assert task_addresses(shared, {}) == set()  # containers gone: no address


def test_what_is_inspected_for_an_answer(checkout: Any) -> None:
    record, _ = checkout
    app, migrate = record.container("app"), record.container("migrate")
    assert record.to_inspect([app]) == [app.docker_name, record.pause_docker_name]
    # The essential containers too: their exit makes every container's desired status STOPPED.
    assert record.to_inspect([migrate]) == [migrate.docker_name, record.pause_docker_name, app.docker_name]
    assert sorted(record.to_inspect(record.containers)) == sorted(c.docker_name for c in record.containers)


# -- stats ---------------------------------------------------------------------------------------------------


def test_stats_carry_the_previous_sample_of_the_container() -> None:
    first, second = RECORDED["checkout"]["stats"]
    answered = stats_response(first, None)
    assert shape_problems(answered, reference()["v4"]["Example container stats response"]) == []
    assert answered["precpu_stats"] == first["cpu_stats"]  # nothing earlier: the sample itself
    assert answered["network_rate_stats"] == {"rx_bytes_per_sec": 0, "tx_bytes_per_sec": 0}
    later = stats_response(second, answered)
    assert later["precpu_stats"] == first["cpu_stats"] and later["preread"] == first["read"]
    assert later["cpu_stats"] == second["cpu_stats"]
    assert "network_rate_stats" not in first  # the sample given is left as it was
    # A sample that has its own previous one (a streaming engine) keeps it.
    own = {**second, "precpu_stats": {"system_cpu_usage": 5, "cpu_usage": {"total_usage": 1}}}
    assert stats_response(own, answered)["precpu_stats"] == own["precpu_stats"]


def test_podmans_stats_give_the_id_as_docker_does() -> None:
    first, _ = RECORDED["checkout"]["stats"]
    podman = {("Id" if key == "id" else key): value for key, value in first.items()}
    answered = stats_response(podman, None)
    assert answered["id"] == first["id"] and "Id" not in answered
    assert shape_problems(answered, reference()["v4"]["Example container stats response"]) == []


def test_a_container_on_the_pause_containers_network_gets_its_network_counters() -> None:
    # Docker counts no network traffic for a container on another's namespace; the agent gives the task's.
    first, _ = RECORDED["checkout"]["stats"]
    app = {key: value for key, value in first.items() if key != "networks"}
    pause = {**first, "network_rate_stats": {"rx_bytes_per_sec": 10, "tx_bytes_per_sec": 20}}
    joined = with_network_stats(app, pause)
    assert joined["networks"] == first["networks"] and joined["network_rate_stats"] == pause["network_rate_stats"]
    assert joined["cpu_stats"] == app["cpu_stats"] and "networks" not in app
    assert with_network_stats(app, {}) == app


def test_a_container_record_from_the_wire_with_defaults() -> None:
    c = ContainerRecord.from_dict({"name": "x", "docker_name": "ecs-x", "image": "x:1"})
    assert (c.type, c.limits, c.ports, c.metadata_id) == ("NORMAL", {"CPU": 0, "Memory": 0}, (), "")
