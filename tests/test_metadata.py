"""The task metadata answers, built from a task's record and recorded Docker inspect data: no engine.

tests/data/metadata_inspect.json holds what a real engine said of two tasks (trimmed to what the builders
read); tests/test_endpoints.py asks a live server the same questions from inside the containers.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_ecstask.credentials import from_mapping
from pytest_ecstask.endpointids import EndpointInfo, authorization_token, credentials_id, metadata_id
from pytest_ecstask.lifecycle import Owner
from pytest_ecstask.metadata import (
    ContainerRecord,
    TaskRecord,
    build_task_record,
    container_response,
    host_binding,
    network_owner,
    published_ports,
    stats_response,
    task_addresses,
    task_limits,
    task_response,
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
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/checkout"}},
            "healthCheck": {"command": ["CMD-SHELL", "echo all good"], "interval": 5},
            "portMappings": [{"containerPort": 8080}],
        },
        {"name": "migrate", "image": IMAGE, "command": ["sh", "-c", "exit 3"], "essential": False},
    ],
}
SHARED = {
    "family": "shared",
    "networkMode": "bridge",
    "pidMode": "task",
    "containerDefinitions": [{"name": "web", "image": IMAGE, "portMappings": [{"containerPort": 80}]}],
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
    app = record.container("app")
    assert app.metadata_id == metadata_id("per-task-secret", "app") and app.essential and app.health_check
    assert app.limits == {"CPU": 128, "Memory": 64} and app.log_driver == "awslogs"
    assert re.fullmatch(
        rf"arn:aws:ecs:us-east-1:123456789012:container/pytest-ecstask/{task_id}/"
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        app.container_arn,
    )
    pause = record.container(PAUSE)
    assert (pause.type, pause.metadata_id, pause.container_arn, pause.ports) == ("CNI_PAUSE", "", "", ())
    assert record.credentials is not None
    assert record.credentials.id == credentials_id("per-task-secret")
    assert record.credentials.token == authorization_token("per-task-secret")
    assert record.credentials.values == STATIC


def test_on_port_80_credentials_need_no_token_as_on_ecs() -> None:
    record, _ = recorded_task("checkout", CHECKOUT, port=80)
    assert record.credentials is not None and record.credentials.token == ""


def test_a_record_survives_the_trip_to_the_server_process(checkout: Any) -> None:
    record, _ = checkout
    assert TaskRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    shared, _ = recorded_task("shared", SHARED)
    assert shared.credentials is None
    assert TaskRecord.from_dict(json.loads(json.dumps(shared.to_dict()))) == shared


def test_a_record_never_shows_the_credentials_it_serves(checkout: Any) -> None:
    record, _ = checkout
    shown = repr(record)
    assert record.credentials is not None
    for value in (*STATIC.values(), record.credentials.token, record.credentials.id):
        assert value not in shown
    assert ROLE in shown


# -- container metadata --------------------------------------------------------------------------------------


def test_container_metadata_matches_the_reference_and_docker(checkout: Any) -> None:
    record, inspected = checkout
    app_info = RECORDED["checkout"]["containers"]["app"]
    pause_info = RECORDED["checkout"]["containers"][PAUSE]
    ours = container_response(record, record.container("app"), inspected, v4=True)
    assert shape_problems(ours, reference()["v4"]["Example container metadata response"]) == []
    assert ours["DockerId"] == app_info["Id"] and ours["ImageID"] == app_info["Image"]
    assert (ours["Name"], ours["DockerName"], ours["Image"]) == ("app", docker_name(record, "app"), IMAGE)
    assert (ours["KnownStatus"], ours["DesiredStatus"]) == ("RUNNING", "RUNNING")
    assert ours["CreatedAt"] == app_info["Created"] and ours["StartedAt"] == app_info["State"]["StartedAt"]
    assert "FinishedAt" not in ours and "ExitCode" not in ours  # Docker's zero time is no time
    assert ours["Limits"] == {"CPU": 128, "Memory": 64}
    assert ours["Health"] == {
        "status": "HEALTHY",
        "statusSince": app_info["State"]["Health"]["Log"][-1]["End"],
        "exitCode": 0,
        "output": "all good",
    }
    assert ours["Labels"]["com.amazonaws.ecs.task-arn"] == record.task_arn
    assert "pytest-ecstask.role" not in ours["Labels"]  # only the agent's labels
    assert ours["LogDriver"] == "awslogs" and ours["LogOptions"] == {"awslogs-group": "/ecs/checkout"}
    assert ours["ContainerARN"] == record.container("app").container_arn
    # awsvpc: the addresses and published ports are the pause container's.
    assert ours["Networks"] == [  # the pause container's, as recorded: 192.168.128.2/20
        {
            "NetworkMode": "awsvpc",
            "IPv4Addresses": ["192.168.128.2"],
            "AttachmentIndex": 0,
            "MACAddress": "02:42:c0:a8:80:02",
            "IPv4SubnetCIDRBlock": "192.168.128.0/20",
            "SubnetGatewayIpv4Address": "192.168.128.1/20",
        }
    ]
    host_port = int(pause_info["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
    assert ours["Ports"] == [{"ContainerPort": 8080, "Protocol": "tcp", "HostPort": host_port, "HostIp": "0.0.0.0"}]


def test_v3_container_metadata_has_no_v4_fields(checkout: Any) -> None:
    record, inspected = checkout
    v3 = container_response(record, record.container("app"), inspected, v4=False)
    assert shape_problems(v3, reference()["v3"]["Example Container Metadata Response"]) == []
    assert not {"LogDriver", "LogOptions", "ContainerARN", "Ports"} & set(v3)
    assert set(v3["Networks"][0]) == {"NetworkMode", "IPv4Addresses"}
    assert v3["DockerId"] == RECORDED["checkout"]["containers"]["app"]["Id"]


def test_an_exited_container_reports_its_exit_code_and_finish_time(checkout: Any) -> None:
    record, inspected = checkout
    state = RECORDED["checkout"]["containers"]["migrate"]["State"]
    ours = container_response(record, record.container("migrate"), inspected, v4=True)
    assert (ours["KnownStatus"], ours["DesiredStatus"], ours["ExitCode"]) == ("STOPPED", "STOPPED", 3)
    assert ours["FinishedAt"] == state["FinishedAt"] and ours["Limits"] == {"CPU": 0, "Memory": 0}
    assert "Health" not in ours and "LogDriver" not in ours and "Ports" not in ours


def test_a_container_never_started_is_created_and_desired_running(checkout: Any) -> None:
    record, inspected = checkout
    state = inspected[docker_name(record, "migrate")]["State"]
    state.update(Status="created", Running=False, StartedAt="0001-01-01T00:00:00Z", ExitCode=0)
    ours = container_response(record, record.container("migrate"), inspected, v4=True)
    assert (ours["KnownStatus"], ours["DesiredStatus"]) == ("CREATED", "RUNNING")
    assert "StartedAt" not in ours and "ExitCode" not in ours and "FinishedAt" not in ours


def test_a_container_already_removed_is_stopped_with_nothing_from_docker(checkout: Any) -> None:
    record, inspected = checkout
    inspected[docker_name(record, "app")] = None
    ours = container_response(record, record.container("app"), inspected, v4=True)
    assert (ours["KnownStatus"], ours["DesiredStatus"], ours["DockerId"], ours["ImageID"]) == (
        "STOPPED",
        "STOPPED",
        "",
        "",
    )
    assert ours["Labels"] == {} and not {"ExitCode", "CreatedAt", "Health"} & set(ours)


@pytest.mark.parametrize(
    ("docker_status", "log", "expected"),
    [
        ("healthy", True, "HEALTHY"),
        ("unhealthy", True, "UNHEALTHY"),
        ("starting", True, "UNKNOWN"),  # Docker's "starting" is not an ECS value
        ("starting", False, None),  # no check has run: {"status": "UNKNOWN"} and nothing else
    ],
)
def test_health_is_reported_as_ecs_names_it(checkout: Any, docker_status: str, log: bool, expected: str) -> None:
    record, inspected = checkout
    health = inspected[docker_name(record, "app")]["State"]["Health"]
    health["Status"] = docker_status
    if not log:
        health["Log"] = []
    ours = container_response(record, record.container("app"), inspected, v4=True)
    if expected is None:
        assert ours["Health"] == {"status": "UNKNOWN"}
    else:
        assert ours["Health"]["status"] == expected and ours["Health"]["output"] == "all good"


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
    assert ours["ImageID"] == "" and ours["ContainerARN"] == "" and "Ports" not in ours
    inspected[docker_name(record, PAUSE)]["State"].update(Running=False, ExitCode=137)
    stopped = container_response(record, record.container(PAUSE), inspected, v4=True)
    assert (stopped["KnownStatus"], stopped["DesiredStatus"], stopped["ExitCode"]) == (
        "STOPPED",
        "RESOURCES_PROVISIONED",
        137,
    )


def test_bridge_containers_report_their_own_network_and_ports() -> None:
    record, inspected = recorded_task("shared", SHARED)
    web_info = RECORDED["shared"]["containers"]["web"]
    ours = container_response(record, record.container("web"), inspected, v4=True)
    address = web_info["NetworkSettings"]["Networks"][record.network_name]["IPAddress"]
    assert ours["Networks"][0]["NetworkMode"] == "bridge" and ours["Networks"][0]["IPv4Addresses"] == [address]
    host_port = int(web_info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    assert ours["Ports"] == [{"ContainerPort": 80, "Protocol": "tcp", "HostPort": host_port, "HostIp": "0.0.0.0"}]
    pause = container_response(record, record.container(PAUSE), inspected, v4=True)
    assert pause["Networks"] == [{"NetworkMode": "bridge", "IPv4Addresses": []}]  # the pause is on no network


@pytest.mark.parametrize(
    ("mode", "networks"),
    [("host", [{"NetworkMode": "host", "IPv4Addresses": []}]), ("none", [])],
)
def test_host_and_none_network_modes(mode: str, networks: list[dict[str, Any]]) -> None:
    ports = [{"containerPort": 9000}] if mode == "host" else []
    taskdef = {
        "family": "plain",
        "networkMode": mode,
        "containerDefinitions": [{"name": "app", "image": IMAGE, "portMappings": ports}],
    }
    record, _ = recorded_task("checkout", taskdef)
    info = copy.deepcopy(RECORDED["checkout"]["containers"]["app"])
    ours = container_response(record, record.container("app"), {docker_name(record, "app"): info}, v4=True)
    assert ours["Networks"] == networks
    if mode == "host":  # nothing is published: the container's port is the host's
        assert ours["Ports"] == [{"ContainerPort": 9000, "Protocol": "tcp", "HostPort": 9000}]


def test_a_port_docker_has_not_published_is_left_out(checkout: Any) -> None:
    record, inspected = checkout
    inspected[docker_name(record, PAUSE)]["NetworkSettings"]["Ports"] = {}
    assert "Ports" not in container_response(record, record.container("app"), inspected, v4=True)


# -- task metadata -------------------------------------------------------------------------------------------


def test_task_metadata_matches_the_reference_with_the_pause_container(checkout: Any) -> None:
    record, inspected = checkout
    ref = reference()
    task = task_response(record, inspected, v4=True, with_tags=False)
    assert shape_problems(task, ref["v4"]["Example task metadata response"]) == []
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
    assert [c["Name"] for c in task["Containers"]] == [PAUSE, "app", "migrate"]
    assert task["Containers"][1] == container_response(record, record.container("app"), inspected, v4=True)
    assert "TaskTags" not in task
    v3 = task_response(record, inspected, v4=False, with_tags=False)
    assert shape_problems(v3, ref["v3"]["Example Task Metadata Response"]) == []
    assert "LaunchType" not in v3 and "Ports" not in v3["Containers"][1]


def test_task_with_tags(checkout: Any) -> None:
    record, inspected = checkout
    tagged = task_response(record, inspected, v4=True, with_tags=True)
    theirs = reference()["v4"]["Example task with tags metadata response"]
    assert shape_problems(tagged, {**theirs, "TaskTags": {}}) == []  # the tags are the task definition's
    assert tagged["TaskTags"] == {"team": "payments"} and tagged["ContainerInstanceTags"] == {}


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
    return {"Status": status, "Running": status == "running", "StartedAt": started, "ExitCode": exit_code}


@pytest.mark.parametrize(
    ("app", "migrate", "known", "desired"),
    [
        ("running", "exited", "RUNNING", "RUNNING"),  # a non-essential container may exit
        ("running", "running", "RUNNING", "RUNNING"),
        ("created", "running", "PENDING", "RUNNING"),
        ("exited", "running", "STOPPING", "STOPPED"),  # an essential container exited
        ("exited", "exited", "STOPPED", "STOPPED"),
        (None, None, "STOPPED", "STOPPED"),  # removed
    ],
)
def test_the_task_status_follows_its_essential_containers(
    checkout: Any, app: str | None, migrate: str | None, known: str, desired: str
) -> None:
    record, inspected = checkout
    for name, status in (("app", app), ("migrate", migrate)):
        info = inspected[docker_name(record, name)]
        if status is None:
            inspected[docker_name(record, name)] = None
        else:
            info["State"] = _state(status)
    task = task_response(record, inspected, v4=True, with_tags=False)
    assert (task["KnownStatus"], task["DesiredStatus"]) == (known, desired)


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
    app = record.container("app")
    assert record.to_inspect([app]) == [app.docker_name, record.pause_docker_name]
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


def test_a_container_record_from_the_wire_with_defaults() -> None:
    c = ContainerRecord.from_dict({"name": "x", "docker_name": "ecs-x", "image": "x:1"})
    assert (c.type, c.limits, c.ports, c.metadata_id) == ("NORMAL", {"CPU": 0, "Memory": 0}, (), "")
