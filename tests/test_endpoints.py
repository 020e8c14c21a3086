"""The task metadata and credentials endpoints, as code inside the containers sees them."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from test_metadata import reference, shape_problems

from conftest import IMAGE, default_network, health_output, service
from pytest_ecstask.endpointids import (
    ENDPOINT_IP,
    EndpointInfo,
    EndpointRequest,
    authorization_token,
    container_environment,
)
from pytest_ecstask.endpoints import unknown_id

Run = Callable[..., Any]
ROLE = "arn:aws:iam::123456789012:role/checkout-task"
STATIC = {
    "AccessKeyId": "AKIAEXAMPLESTATIC01",
    "SecretAccessKey": "static-secret-never-printed",
    "Token": "static-session-token",
    "Expiration": "2030-01-01T00:00:00Z",
}


def get(container: Any, url: str, headers: tuple[str, ...] = ()) -> Any:
    """GET from inside the container (busybox wget), JSON-decoded; None when the request failed."""
    args = ["wget", "-qO-"]
    for header in headers:
        args += ["--header", header]
    result = container.exec([*args, url])
    return json.loads(result.output) if result.exit_code == 0 else None


def answered(container: Any, url: str, attempts: int = 3) -> Any:
    """GET from inside the container while another container of the task restarts: asked up to
    ``attempts`` times; when every one failed, what wget says of the last is in the assertion."""
    import time

    for _ in range(attempts):
        found = get(container, url)
        if found is not None:
            return found
        time.sleep(0.5)
    said = container.exec(["wget", "-O-", url]).output
    raise AssertionError(f"GET {url} from {container.name!r} failed {attempts} times; wget says: {said}")


def env_of(container: Any) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inspect()["Config"]["Env"])


def credentials_request(env: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """The URL and headers an SDK would use, from the variables the container received."""
    if "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in env:
        return f"http://{ENDPOINT_IP}{env['AWS_CONTAINER_CREDENTIALS_RELATIVE_URI']}", ()
    return env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], (f"Authorization: {env['AWS_CONTAINER_AUTHORIZATION_TOKEN']}",)


@pytest.fixture
def checkout(run: Run) -> Any:
    return run(
        {
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
                    "command": service(),
                    "cpu": 128,
                    "memory": 64,
                    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/checkout"}},
                    "healthCheck": {"command": ["CMD-SHELL", "echo all good"], "interval": 5},
                    "portMappings": [{"containerPort": 8080}],
                },
                {"name": "migrate", "image": IMAGE, "command": ["sh", "-c", "exit 3"], "essential": False},
            ],
        },
        credentials=STATIC,
    )


def test_every_container_gets_its_own_metadata_uris_and_one_credentials_variable(checkout: Any) -> None:
    app = checkout.containers["app"]
    env = env_of(app)
    assert env["ECS_CONTAINER_METADATA_URI_V4"] == app.metadata_uri
    assert env["ECS_CONTAINER_METADATA_URI"] == app.metadata_uri_v3
    assert app.metadata_uri.startswith(f"http://{ENDPOINT_IP}")
    assert app.metadata_uri != checkout.containers["migrate"].metadata_uri
    relative = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in env
    full = "AWS_CONTAINER_CREDENTIALS_FULL_URI" in env
    assert relative != full  # exactly one of the two
    assert full == ("AWS_CONTAINER_AUTHORIZATION_TOKEN" in env)


def test_container_metadata_matches_reference_and_reality(checkout: Any) -> None:
    ref = reference()
    app = checkout.containers["app"]
    checkout.wait_for = None
    for _ in range(100):  # the first health check runs after its 5 s interval
        ours = get(app, app.metadata_uri)
        if ours.get("Health", {}).get("status") == "HEALTHY":
            break
        app.exec(["sleep", "0.2"])
    assert shape_problems(ours, ref["v4"]["Example container metadata response"]) == []
    assert ours["DockerId"] == app.id and ours["Name"] == "app" and ours["DockerName"] == app.docker_name
    assert ours["KnownStatus"] == "RUNNING" and ours["Limits"] == {"CPU": 128, "Memory": 64}
    # The engine's output as it is (Docker keeps the newline, Podman drops it), and no exitCode: the agent
    # sets one only for an UNHEALTHY check.
    assert ours["Health"]["status"] == "HEALTHY" and ours["Health"]["output"] == health_output(app)
    assert "exitCode" not in ours["Health"]
    assert ours["LogDriver"] == "awslogs" and ours["LogOptions"] == {"awslogs-group": "/ecs/checkout"}
    assert ours["Labels"]["com.amazonaws.ecs.task-arn"] == checkout.arn
    assert ours["Networks"][0]["NetworkMode"] == "awsvpc" and ours["Networks"][0]["IPv4Addresses"]
    assert "Ports" not in ours and app.port(8080)  # none under awsvpc, as on ECS; published here for the test
    # The health the server answered stays, as the agent's: it changes with the status only.
    assert get(app, app.metadata_uri)["Health"] == ours["Health"]
    v3 = get(app, app.metadata_uri_v3)
    assert shape_problems(v3, ref["v3"]["Example Container Metadata Response"]) == []
    assert "LogDriver" not in v3 and v3["DockerId"] == app.id


def test_task_metadata_lists_every_container_with_the_pause_container(checkout: Any) -> None:
    ref = reference()
    app = checkout.containers["app"]
    task = get(app, f"{app.metadata_uri}/task")
    assert shape_problems(task, ref["v4"]["Example task metadata response"]) == []
    assert task["TaskARN"] == checkout.arn and task["Family"] == "checkout" and task["Revision"] == "1"
    assert task["Limits"] == {"CPU": 0.25, "Memory": 512}
    by_name = {c["Name"]: c for c in task["Containers"]}
    assert by_name["~internal~ecs~pause"]["Type"] == "CNI_PAUSE"
    assert by_name["~internal~ecs~pause"]["KnownStatus"] == "RESOURCES_PROVISIONED"
    # Reality: the non-essential one-shot container has exited with its code.
    assert by_name["migrate"]["KnownStatus"] == "STOPPED" and by_name["migrate"]["ExitCode"] == 3
    assert by_name["migrate"]["FinishedAt"]
    tagged = get(app, f"{app.metadata_uri}/taskWithTags")
    assert tagged["TaskTags"] == {"team": "payments"}
    v3 = get(app, f"{app.metadata_uri_v3}/task")
    assert shape_problems(v3, ref["v3"]["Example Task Metadata Response"]) == []


def test_stats_come_from_docker(checkout: Any) -> None:
    ref = reference()
    app = checkout.containers["app"]
    stats = get(app, f"{app.metadata_uri}/stats")
    assert shape_problems(stats, ref["v4"]["Example container stats response"]) == []
    assert stats["id"] == app.id and stats["memory_stats"]["usage"] > 0
    task_stats = get(app, f"{app.metadata_uri}/task/stats")
    assert app.id in task_stats and task_stats[app.id]["id"] == app.id


def test_credentials_endpoint_serves_what_was_configured(checkout: Any) -> None:
    app = checkout.containers["app"]
    url, headers = credentials_request(env_of(app))
    creds = get(app, url, headers)
    assert creds == {"RoleArn": ROLE, **STATIC}
    assert checkout.credentials.access_key_id == STATIC["AccessKeyId"]
    assert checkout.credentials_uri.endswith(url.rsplit("/", 1)[1])


def test_botocore_container_provider_accepts_the_uri_and_token_the_container_got(checkout: Any) -> None:
    from botocore.credentials import ContainerProvider

    env = {k: v for k, v in env_of(checkout.containers["app"]).items() if k.startswith("AWS_CONTAINER_")}
    credentials = ContainerProvider(environ=env).load()
    frozen = credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        STATIC["AccessKeyId"],
        STATIC["SecretAccessKey"],
        STATIC["Token"],
    )


def test_another_tasks_container_is_refused_its_credentials(checkout: Any, run: Run) -> None:
    other = run(
        {
            "family": "intruder",
            "taskRoleArn": "arn:aws:iam::123456789012:role/other",
            "containerDefinitions": [{"name": "probe", "image": IMAGE, "command": service()}],
        }
    )
    probe = other.containers["probe"]
    url, headers = credentials_request(env_of(checkout.containers["app"]))
    own_url, own_headers = credentials_request(env_of(probe))
    assert url != own_url
    assert get(probe, own_url, own_headers)["RoleArn"] == "arn:aws:iam::123456789012:role/other"
    # Even knowing the other task's URI (and token), a container of another task gets nothing.
    refused = probe.exec(["wget", "-S", "-O-", *[part for h in headers for part in ("--header", h)], url])
    assert refused.exit_code != 0 and "400" in refused.output


def test_a_bridge_task_with_a_pid_pause_container_gets_its_credentials(run: Run) -> None:
    # The pause container of pidMode "task" is on no network: the task's addresses are its containers' own.
    t = run(
        {
            "family": "sharedpid",
            "networkMode": "bridge",
            "pidMode": "task",
            "taskRoleArn": ROLE,
            "containerDefinitions": [{"name": "app", "image": IMAGE, "command": service()}],
        },
        credentials=STATIC,
    )
    app = t.containers["app"]
    url, headers = credentials_request(env_of(app))
    assert get(app, url, headers) == {"RoleArn": ROLE, **STATIC}


def test_unknown_credentials_id_gets_ecs_error_body(checkout: Any) -> None:
    import http.client

    port = checkout.endpoint.port
    conn = http.client.HTTPConnection(ENDPOINT_IP, port, timeout=5)
    conn.request("GET", "/v2/credentials/0123456789abcdef")
    response = conn.getresponse()
    assert response.status == 400
    assert json.loads(response.read()) == {
        "code": "InvalidIdInRequest",
        "message": "CredentialsV2Request: Credentials not found",
    }
    conn.request("GET", "/v4/unknown-id/task")
    response = conn.getresponse()
    assert response.status == 404 and b"V4 task metadata handler" in response.read()


def test_unknown_ids_get_the_agents_answer_for_each_path(checkout: Any) -> None:
    import http.client

    conn = http.client.HTTPConnection(ENDPOINT_IP, checkout.endpoint.port, timeout=5)
    for path, (status, message) in {
        "/v4/unknown-id": unknown_id(True, "", "unknown-id"),
        "/v4/unknown-id/taskWithTags": unknown_id(True, "task", "unknown-id"),
        "/v3/unknown-id/task/stats": unknown_id(False, "task/stats", "unknown-id"),
        "/v4/unknown-id/nothing-here": (404, "404 page not found"),
    }.items():
        conn.request("GET", path)
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())) == (status, message), path


def test_what_the_agent_answers_for_an_unknown_id_and_a_failure() -> None:
    from pytest_ecstask.endpoints import failed
    from pytest_ecstask.metadata import ContainerRecord, TaskRecord

    lookup = "unable to get task arn from request: unable to get task Arn from v3 endpoint ID: x"
    assert unknown_id(True, "", "x") == (
        404,
        "V4 container metadata handler: unable to get container ID from request: "
        "unable to get docker ID from v3 endpoint ID: x",
    )
    assert unknown_id(True, "taskWithTags", "x") == (404, f"V4 task metadata handler: {lookup}")
    assert unknown_id(True, "stats", "x") == (404, f"V4 container stats handler: {lookup}")
    assert unknown_id(False, "task", "x") == (500, f"V3 task metadata handler: {lookup}")  # v3 says 500
    assert unknown_id(False, "stats", "x") == (400, f"V3 container stats handler: {lookup}")  # and 400 here
    app = ContainerRecord("app", "ecs-app", "app:1")
    record = TaskRecord("t", "arn:t", "c", "f", 1, "bridge", "bridge", None, "az", "EC2", (app,))
    assert failed(True, "stats", record, app) == (500, "Unable to get container stats for: ecs-app")
    assert failed(False, "task/stats", record, app) == (400, "Unable to get task stats for: arn:t")
    assert failed(True, "", record, app) == (500, "unable to generate metadata for container 'ecs-app'")
    assert failed(True, "task", record, app) == (500, "Unable to generate metadata for v4 task: 'arn:t'")


def test_the_registry_keeps_restart_counts_told_by_the_plugin_process() -> None:
    from pytest_ecstask.endpoints import Registry
    from pytest_ecstask.metadata import ContainerRecord, TaskRecord

    app = ContainerRecord("app", "ecs-app", "app:1", metadata_id="mid", restart_policy_enabled=True)
    registry = Registry()
    registry.add(TaskRecord("t", "arn:t", "c", "f", 1, "bridge", "bridge", None, "az", "EC2", (app,)))
    assert registry.restarted("t", "app", 1, "2026-01-01T00:00:00.5Z")
    assert registry.restarted("t", "app", 3, "2026-01-01T00:09:00Z")
    assert registry.restarted("t", "app", 2, None)  # told out of order: the count never goes back
    found = registry.task_of_container("mid")
    assert found is not None
    record, _ = found
    assert record.restart_counts == {"app": 3}
    assert record.first_started_at == {"app": "2026-01-01T00:00:00.5Z"}  # the first run's, kept
    assert not registry.restarted("t", "other", 1, None) and not registry.restarted("gone", "app", 1, None)
    # Registered again by another process of the run: what was told stays.
    registry.add(TaskRecord("t", "arn:t", "c", "f", 1, "bridge", "bridge", None, "az", "EC2", (app,)))
    assert registry.tasks["t"].restart_counts == {"app": 3}


def test_a_bridge_container_gets_what_the_agent_says_of_it(run: Run, docker_api: Any) -> None:
    t = run(
        {
            "family": "fields",
            "networkMode": "bridge",
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "command": service(),
                    "memoryReservation": 32,
                    "dockerLabels": {"team": "payments"},
                    "portMappings": [{"containerPort": 8080}],
                    "mountPoints": [{"sourceVolume": "cache", "containerPath": "/cache"}],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {"awslogs-group": "/ecs/fields", "awslogs-stream-prefix": "web"},
                    },
                }
            ],
            "volumes": [{"name": "cache"}],
        }
    )
    app = t.containers["app"]
    ours = get(app, app.metadata_uri)
    live = docker_api.inspect_container(app.id)
    assert ours["Labels"]["team"] == "payments" and not [k for k in ours["Labels"] if k.startswith("pytest-")]
    assert ours["LogOptions"] == {"awslogs-group": "/ecs/fields", "awslogs-stream": f"web/app/{t.id}"}
    assert ours["Limits"] == {"CPU": 2, "Memory": 0}  # no cpu, and memoryReservation is no hard limit
    mount = live["Mounts"][0]
    assert ours["Volumes"] == [{"DockerName": mount["Name"], "Source": mount["Source"], "Destination": "/cache"}]
    bindings = live["NetworkSettings"]["Ports"]["8080/tcp"]
    assert ours["Ports"] == [
        {"ContainerPort": 8080, "Protocol": "tcp", "HostPort": int(b["HostPort"]), "HostIp": b["HostIp"] or "0.0.0.0"}
        for b in bindings
    ]
    assert ours["Networks"] == [
        {"NetworkMode": "bridge" if name == default_network(docker_api) else name, "IPv4Addresses": [net["IPAddress"]]}
        for name, net in live["NetworkSettings"]["Networks"].items()
    ]
    task = get(app, f"{app.metadata_uri}/task")
    assert (task["KnownStatus"], task["DesiredStatus"], task["FaultInjectionEnabled"]) == ("RUNNING", "RUNNING", False)
    assert "ContainerInstanceTags" not in get(app, f"{app.metadata_uri}/taskWithTags")


def test_restart_count_and_the_first_start_reach_the_metadata(image: str, docker_api: Any) -> None:
    import time

    from pytest_ecstask.lifecycle import process_owner
    from pytest_ecstask.plan import RestartPolicy
    from pytest_ecstask.task import TaskOptions, create_task

    policy = {"enabled": True, "ignoredExitCodes": [], "restartAttemptPeriod": 60}  # the least ECS accepts
    t = create_task(
        {
            "family": "restarts",
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "memory": 64,
                    "command": ["sh", "-c", "sleep 2; exit 4"],
                    "restartPolicy": policy,
                },
                {"name": "probe", "image": IMAGE, "memory": 64, "command": service(), "essential": False},
            ],
        },
        TaskOptions(pull="never", stop_timeout=1, check=False),
        owner=process_owner(),
    )
    # ECS's shortest period is 60 s: shortened here so that the test need not wait a minute per restart.
    t._runner.machine.restart_policies["app"] = RestartPolicy((), 0.5)
    try:
        t.start()
        app, probe = t.containers["app"], t.containers["probe"]
        first_start = docker_api.inspect_container(app.id)["State"]["StartedAt"]
        before = get(probe, app.metadata_uri)
        assert before["RestartCount"] == 0  # there from the start under an enabled restartPolicy
        assert "RestartCount" not in get(probe, probe.metadata_uri)  # no policy, no count
        deadline = time.monotonic() + 30
        while app.restart_count < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        ours = answered(probe, app.metadata_uri)
        assert 2 <= ours["RestartCount"] <= app.restart_count
        # Docker's StartedAt is the last start; the agent keeps the first, and the last exit's FinishedAt.
        assert ours["StartedAt"] == first_start != docker_api.inspect_container(app.id)["State"]["StartedAt"]
        assert ours["FinishedAt"] > first_start
        by_name = {c["Name"]: c for c in get(probe, f"{probe.metadata_uri}/task")["Containers"]}
        assert by_name["app"]["RestartCount"] >= 2 and "RestartCount" not in by_name["probe"]
        assert "RestartCount" not in get(probe, app.metadata_uri_v3)  # v4 only
    finally:
        t.close()


def test_tasks_without_a_role_get_metadata_but_no_credentials_variables(run: Run) -> None:
    t = run(
        {
            "family": "plain",
            "networkMode": "bridge",
            "containerDefinitions": [{"name": "app", "image": IMAGE, "command": service()}],
        }
    )
    env = env_of(t.containers["app"])
    assert "ECS_CONTAINER_METADATA_URI_V4" in env
    assert not [k for k in env if k.startswith("AWS_CONTAINER_")]
    assert t.credentials is None and t.credentials_uri is None
    metadata = get(t.containers["app"], env["ECS_CONTAINER_METADATA_URI_V4"])
    assert metadata["Networks"][0]["NetworkMode"] == "bridge"


def test_host_network_containers_reach_the_endpoint(run: Run) -> None:
    t = run(
        {
            "family": "hostnet",
            "networkMode": "host",
            "containerDefinitions": [{"name": "app", "image": IMAGE, "command": service()}],
        }
    )
    app = t.containers["app"]
    assert get(app, app.metadata_uri)["Name"] == "app"


def test_endpoints_off_sets_no_variables(run: Run) -> None:
    t = run(
        {
            "family": "off",
            "taskRoleArn": ROLE,
            "containerDefinitions": [{"name": "app", "image": IMAGE, "command": service()}],
        },
        endpoints=False,
    )
    assert not [k for k in env_of(t.containers["app"]) if k.startswith(("ECS_CONTAINER_", "AWS_CONTAINER_"))]
    assert t.containers["app"].metadata_uri is None


def test_credential_secrets_never_show_in_repr_or_reports(pytester: pytest.Pytester, image: str) -> None:
    taskdef = {
        "family": "secretive",
        "taskRoleArn": ROLE,
        "containerDefinitions": [{"name": "app", "image": image, "command": service()}],
    }
    pytester.makefile(".json", taskdef=json.dumps(taskdef))
    pytester.makeini(
        "[pytest]\necs_pull = never\necs_stop_timeout = 2\naddopts = -p no:benchmark\n"
        f"ecs_task_credentials = {STATIC['AccessKeyId']}:{STATIC['SecretAccessKey']}:{STATIC['Token']}\n"
    )
    pytester.makepyfile("""
        from pathlib import Path

        def test_fails_with_everything_shown(ecs_task):
            creds = ecs_task.credentials
            Path("control-token").write_text(ecs_task.endpoint.control_token)
            print(repr(creds), str(creds), ecs_task, ecs_task.containers, ecs_task.endpoint, ecs_task.options)
            assert creds.access_key_id == "AKIAEXAMPLESTATIC01"
            assert False, f"look: {creds!r} {ecs_task.endpoint!r} {ecs_task.timeline}"
        """)
    result = pytester.runpytest("--ecs-taskdef=taskdef.json", "--junitxml=report.xml", "-rA", "-v")
    result.assert_outcomes(failed=1)
    everything = result.stdout.str() + result.stderr.str() + (pytester.path / "report.xml").read_text()
    assert STATIC["SecretAccessKey"] not in everything and STATIC["Token"] not in everything
    assert "AKIA..." in everything  # the repr was shown, masked
    # The endpoint server's control token lets anyone register tasks and read every task's credentials.
    assert (pytester.path / "control-token").read_text() not in everything
    assert "EndpointInfo(port=" in everything  # its repr was shown, without the token


def test_options_never_show_secret_values_or_credentials_in_repr() -> None:
    from pytest_ecstask.options import TaskOptions

    options = TaskOptions(
        secrets={"arn:aws:ssm:us-east-1:123456789012:parameter/db": "hunter2"},
        credentials=STATIC,
        endpoint_port=80,
    )
    shown = repr(options)
    assert not [value for value in (*STATIC.values(), "hunter2") if value in shown], shown
    # Which ones were given still shows, and so does every other setting.
    assert "'arn:aws:ssm:us-east-1:123456789012:parameter/db': '******'" in shown
    assert "'SecretAccessKey': '******'" in shown and "endpoint_port=80" in shown
    assert repr(EndpointInfo(80, "control-token-never-printed", 1)) == (
        "EndpointInfo(port=80, pid=1, port_refused='', mode='local', control_host='169.254.170.2', control_port=0)"
    )


def test_a_plan_never_shows_secret_values_environment_files_or_the_task_secret_in_repr() -> None:
    from pytest_ecstask.lifecycle import Owner
    from pytest_ecstask.plan import PlanOptions, build_plan
    from pytest_ecstask.taskdef import parse_task_definition

    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/db"
    taskdef = parse_task_definition(
        {
            "family": "shop",
            "taskRoleArn": ROLE,
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": "app:1",
                    "secrets": [{"name": "DB_PASSWORD", "valueFrom": arn}],
                    "environmentFiles": [{"value": "arn:aws:s3:::b/app.env", "type": "s3"}],
                }
            ],
        },
        "taskdef.json",
    )
    plan = build_plan(
        taskdef,
        PlanOptions(
            task_id="0" * 32,
            owner=Owner("sess01", "host/1", ""),
            created="2026-01-01T00:00:00.000Z",
            pause_image="pause:test",
            secret_values={arn: "hunter2-secret"},
            environment_files={"arn:aws:s3:::b/app.env": [("API_KEY", "file-secret-value")]},
            endpoint=EndpointInfo(40123, "control-token-never-printed", 1),
            secret="per-task-secret-never-printed",
        ),
    )
    token = authorization_token("per-task-secret-never-printed")
    assert "DB_PASSWORD=hunter2-secret" in plan.containers[0].create_body["Env"]  # the plan itself has them
    shown = repr(plan)
    for value in ("hunter2-secret", "file-secret-value", "per-task-secret-never-printed", token):
        assert value not in shown
    assert "family='shop'" in shown and "name='app'" in shown


def test_container_environment_forms() -> None:
    on_80 = EndpointInfo(80, "t", 1)
    on_other = EndpointInfo(40123, "t", 1)
    relative = container_environment(on_80, "s", "app", ROLE)
    assert relative["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"].startswith("/v2/credentials/")
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in relative
    assert relative["ECS_CONTAINER_METADATA_URI_V4"].startswith("http://169.254.170.2/v4/")
    full = container_environment(on_other, "s", "app", ROLE)
    assert full["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://169.254.170.2:40123/v2/credentials/")
    assert full["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == authorization_token("s")
    assert "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" not in full
    assert (
        container_environment(on_other, "s", "app", ROLE)["ECS_CONTAINER_METADATA_URI_V4"]
        != (container_environment(on_other, "t", "app", ROLE)["ECS_CONTAINER_METADATA_URI_V4"])
    )
    assert not [k for k in container_environment(on_80, "s", "app", None) if k.startswith("AWS_")]


def test_cluster_region_account_zone_and_launch_type_are_settable(run: Run) -> None:
    t = run(
        {"family": "where", "containerDefinitions": [{"name": "app", "image": IMAGE, "command": service()}]},
        cluster="orders",
        region="eu-west-1",
        account_id="210987654321",
        availability_zone="eu-west-1b",
        launch_type="EXTERNAL",
    )
    assert t.arn == f"arn:aws:ecs:eu-west-1:210987654321:task/orders/{t.id}"
    task = get(t.containers["app"], f"{t.metadata_uri}/task")
    assert (task["Cluster"], task["AvailabilityZone"], task["LaunchType"]) == ("orders", "eu-west-1b", "EXTERNAL")
    assert env_of(t.containers["app"])["AWS_REGION"] == "eu-west-1"


def test_unavailable_endpoints_warn_and_say_which_sdks_refuse_what(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_ecstask import task as task_module
    from pytest_ecstask.endpoints import EndpointUnavailable
    from pytest_ecstask.lifecycle import Owner

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise EndpointUnavailable("cannot bind 169.254.170.2 (port 80: Cannot assign requested address)")

    monkeypatch.setattr(task_module, "ensure_server", unavailable)
    owner = Owner("warn-test-session", "host/x", "/nonexistent.lease")
    with pytest.warns(task_module.EndpointWarning) as warned:
        assert task_module.endpoint_for(owner) is None
    text = str(warned[0].message)
    assert "cannot bind 169.254.170.2" in text and "host.docker.internal" in text and "botocore" in text
    assert task_module.endpoint_for(owner) is None  # once per run: no second warning, no second attempt


@pytest.mark.parametrize(
    ("mode", "engine_host", "local_binds", "started"),
    [
        ("auto", "localhost", True, ["local"]),
        ("auto", "192.0.2.10", True, ["relay"]),  # another machine: straight to the relay
        ("auto", "localhost", False, ["local", "relay"]),  # Docker Desktop, rootless: the address is not here
        ("local", "localhost", True, ["local"]),
        ("local", "localhost", False, ["local"]),  # forced: no relay, a warning
        ("local", "192.0.2.10", True, []),
        ("relay", "localhost", True, ["relay"]),
        ("relay", "192.0.2.10", True, ["relay"]),
    ],
)
def test_which_server_each_mode_starts_where(
    monkeypatch: pytest.MonkeyPatch, mode: str, engine_host: str, local_binds: bool, started: list[str]
) -> None:
    from pytest_ecstask import task as task_module
    from pytest_ecstask.endpoints import EndpointUnavailable
    from pytest_ecstask.lifecycle import Owner

    tried: list[str] = []

    def ensure_server(*args: Any, relay: Any = None, engine: Any = None) -> EndpointInfo:
        tried.append("relay" if relay is not None else "local")
        if relay is None and not local_binds:
            raise EndpointUnavailable("cannot bind 169.254.170.2 (port any: Cannot assign requested address)", True)
        return EndpointInfo(8123, "t", 1, mode="relay" if relay is not None else "local")

    monkeypatch.setattr(task_module, "ensure_server", ensure_server)
    owner = Owner(f"mode-test-{mode}-{engine_host}-{local_binds}", "host/x", "/nonexistent.lease")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = task_module.endpoint_for(owner, EndpointRequest(mode, relay_image="img"), engine_host)
    assert tried == started
    assert (info.mode if info else None) == (started[-1] if info else None)
    served = bool(started) and (started[-1] == "relay" or local_binds)
    assert (info is not None) is served and bool(caught) is not served
    if mode == "local" and engine_host != "localhost":
        assert "the Docker engine is at 192.0.2.10, not on this machine" in str(caught[0].message)
        assert "--ecs-endpoints=auto or relay" in str(caught[0].message)


def test_engines_here_and_elsewhere() -> None:
    from pytest_ecstask.endpoints import engine_is_here

    assert engine_is_here("localhost") and engine_is_here("127.0.0.1")
    assert not engine_is_here("192.0.2.10")  # TEST-NET-1: never an address of this machine
    assert not engine_is_here("engine.invalid")


def test_a_port_that_could_not_be_bound_is_named_in_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_ecstask import task as task_module
    from pytest_ecstask.lifecycle import Owner

    def on_another_port(*args: Any, **kwargs: Any) -> EndpointInfo:
        return EndpointInfo(41234, "t" * 32, 1, "port 80: [Errno 98] Address already in use")

    monkeypatch.setattr(task_module, "ensure_server", on_another_port)
    owner = Owner("fallback-test-session", "host/x", "/nonexistent.lease")
    with pytest.warns(task_module.EndpointWarning) as warned:
        assert task_module.endpoint_for(owner, EndpointRequest(port=80)).port == 41234
    text = str(warned[0].message)
    assert "--ecs-endpoint-port=80" in text and "Address already in use" in text and "port 41234" in text
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert task_module.endpoint_for(owner, EndpointRequest(port=80)).port == 41234  # once per run
    owner_any = Owner("fallback-test-any", "host/x", "/nonexistent.lease")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert task_module.endpoint_for(owner_any).port == 41234  # no port asked for: nothing to warn about


def test_port_80_gives_the_exact_ecs_relative_form(pytester: pytest.Pytester, image: str) -> None:
    taskdef = {
        "family": "exact",
        "taskRoleArn": ROLE,
        "containerDefinitions": [{"name": "app", "image": image, "command": service()}],
    }
    pytester.makefile(".json", taskdef=json.dumps(taskdef))
    pytester.makeini(
        "[pytest]\necs_pull = never\necs_stop_timeout = 2\naddopts = -p no:benchmark\n"
        f"ecs_task_credentials = {STATIC['AccessKeyId']}:{STATIC['SecretAccessKey']}\n"
    )
    pytester.makepyfile("""
        from botocore.credentials import ContainerProvider

        def test_relative(ecs_task):
            env = dict(e.split("=", 1) for e in ecs_task.containers["app"].inspect()["Config"]["Env"])
            assert env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"].startswith("/v2/credentials/")
            assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in env and "AWS_CONTAINER_AUTHORIZATION_TOKEN" not in env
            assert env["ECS_CONTAINER_METADATA_URI_V4"].startswith("http://169.254.170.2/v4/")
            creds = ContainerProvider(environ={"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI":
                                               env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]}).load()
            assert creds.get_frozen_credentials().access_key == "AKIAEXAMPLESTATIC01"
        """)
    pytester.runpytest("--ecs-taskdef=taskdef.json", "--ecs-endpoint-port=80").assert_outcomes(passed=1)


def test_containers_on_the_default_bridge_reach_metadata_and_credentials(run: Run, docker_api: Any) -> None:
    # One network per container, Docker's default bridge, as on ECS: the endpoint network is not joined;
    # 169.254.170.2 is reached through the default bridge's gateway, the host, which owns the address.
    t = run(
        {
            "family": "bridged",
            "networkMode": "bridge",
            "taskRoleArn": ROLE,
            "containerDefinitions": [
                {"name": "app", "image": IMAGE, "command": service()},
                {"name": "side", "image": IMAGE, "command": service(), "essential": False},
            ],
        },
        credentials=STATIC,
    )
    app = t.containers["app"]
    attached = docker_api.inspect_container(app.id)["NetworkSettings"]["Networks"]
    assert list(attached) == [default_network(docker_api)]
    address = attached[default_network(docker_api)]["IPAddress"]
    env = env_of(app)
    v4 = get(app, env["ECS_CONTAINER_METADATA_URI_V4"])
    assert (v4["Name"], v4["Networks"][0]["NetworkMode"]) == ("app", "bridge")
    assert v4["Networks"][0]["IPv4Addresses"] == [address]  # read from the default bridge
    v3 = get(app, env["ECS_CONTAINER_METADATA_URI"])
    assert (v3["Networks"][0]["NetworkMode"], v3["Networks"][0]["IPv4Addresses"]) == ("bridge", [address])
    task = get(app, env["ECS_CONTAINER_METADATA_URI_V4"] + "/task")
    assert {c["Name"] for c in task["Containers"]} == {"app", "side"}
    url, headers = credentials_request(env)
    assert get(app, url, headers) == {"RoleArn": ROLE, **STATIC}
    assert get(t.containers["side"], url, headers) == {"RoleArn": ROLE, **STATIC}  # from its own address


def test_a_server_that_does_not_take_the_registration_is_named_in_the_error() -> None:
    import socket
    from types import SimpleNamespace

    from pytest_ecstask.endpoints import EndpointUnavailable, register

    with socket.socket() as probe:  # a port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    info = EndpointInfo(41999, "t" * 32, 1, mode="relay", control_host="127.0.0.1", control_port=port)
    with pytest.raises(EndpointUnavailable) as raised:
        register(info, SimpleNamespace(to_dict=dict))  # type: ignore[arg-type]  # what is sent does not matter
    assert str(raised.value).startswith(
        "the endpoint server at 169.254.170.2:41999 did not take the task's registration (ConnectionRefusedError"
    )
    assert "endpoint.log" in str(raised.value)


def _record(task_id: str = "t", mid: str = "mid") -> Any:
    from pytest_ecstask.metadata import ContainerRecord, TaskRecord

    app = ContainerRecord("app", "ecs-app", "app:1", metadata_id=mid)
    return TaskRecord(task_id, f"arn:{task_id}", "c", "f", 1, "bridge", "bridge", None, "az", "EC2", (app,))


def test_a_registration_handed_over_on_stdin_is_waited_for_by_an_id_not_known_yet() -> None:
    import os
    import threading

    from pytest_ecstask.endpoints import Registry

    registry = Registry()
    read_end, write_end = os.pipe()
    with open(read_end, "rb") as stream:
        registry.take_handoff(stream)
        found: list[Any] = []
        asking = threading.Thread(target=lambda: found.append(registry.task_of_container("mid")))
        asking.start()  # a container asks before the server has read its task's registration
        asking.join(0.2)
        assert asking.is_alive() and not found  # it waits: the registration may be on its way
        with open(write_end, "wb") as pipe:
            pipe.write(json.dumps(_record().to_dict()).encode() + b"\n")
        asking.join(5)
        assert found and found[0] is not None and found[0][0].task_id == "t"
        # Once the stream is closed, an unknown id is answered at once: nothing more can come that way.
        assert registry.handed_over.is_set() and registry.task_of_container("other") is None


class _Engine:
    """What a server asks Docker of the tasks it keeps: the running containers with a task label."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.answers = True

    def containers(self, filters: Any) -> list[dict[str, Any]]:
        if not self.answers:
            raise OSError("the engine does not answer")
        return [{"Labels": {"pytest-ecstask.task": task}} for task in self.running]


def test_a_server_that_keeps_a_task_serves_it_past_its_runs_while_it_runs(tmp_path: Any) -> None:
    from pytest_ecstask.endpoints import EndpointServer
    from pytest_ecstask.lifecycle import Lease, new_session_id

    engine = _Engine()
    server = EndpointServer(("127.0.0.1", 0), engine, "token")  # type: ignore[arg-type]
    try:
        lease = Lease.acquire(new_session_id())
        server.leases.append(str(lease.path))
        server.registry.add(_record("kept", "m1"))
        server.registry.add(_record("other", "m2"))
        assert not server.keep("unknown") and server.keep("kept")
        assert server.needed()  # its run lives
        lease.release()
        engine.running = ["kept"]
        # The run is over: the kept task, still running, is served on; the run's other task goes.
        assert server.needed() and set(server.registry.tasks) == {"kept"}
        # A later run takes it up, with its lease (only a lease in the lease directory is probed).
        later = Lease.acquire(new_session_id())
        assert not server.adopt("kept", str(tmp_path / "elsewhere.lease"))
        assert not server.adopt("other", str(later.path))  # not a task it keeps
        assert server.adopt("kept", str(later.path)) and server.needed()
        later.release()
        engine.running = []  # its containers are gone: checked every KEPT_CHECK_SECONDS
        server._kept_checked = 0.0
        assert not server.needed() and server.closing and not server.registry.tasks
        again = Lease.acquire(new_session_id())
        try:
            assert not server.adopt("kept", str(again.path))  # closing: a run serves the task itself
        finally:
            again.release()
    finally:
        server.server_close()


def test_a_server_keeps_serving_a_kept_task_while_docker_cannot_tell_for_a_minute_at_most() -> None:
    from pytest_ecstask.endpoints import KEPT_CHECK_SECONDS, KEPT_UNKNOWN_SECONDS, EndpointServer

    engine = _Engine()
    server = EndpointServer(("127.0.0.1", 0), engine, "token")  # type: ignore[arg-type]
    try:
        server.registry.add(_record("kept", "m1"))
        server.keep("kept")
        engine.answers = False
        for _ in range(int(KEPT_UNKNOWN_SECONDS / KEPT_CHECK_SECONDS) - 1):
            server._kept_checked = 0.0
            assert server.needed()
        server._kept_checked = 0.0
        assert not server.needed()
    finally:
        server.server_close()


def test_a_control_request_about_a_task_waits_for_its_registration_on_stdin() -> None:
    import http.client
    import os
    import threading

    from pytest_ecstask.endpoints import EndpointServer

    server = EndpointServer(("127.0.0.1", 0), None, "token")
    read_end, write_end = os.pipe()
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    with open(read_end, "rb") as stream:
        server.registry.take_handoff(stream)
        serving.start()
        try:
            answers: list[int] = []

            def keep() -> None:
                conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
                body = json.dumps({"task_id": "t"})
                conn.request("POST", "/_ecstask/keep", body, {"X-Ecstask-Token": "token"})
                answers.append(conn.getresponse().status)

            asking = threading.Thread(target=keep)
            asking.start()  # a quick run keeps its task before the server read the registration
            asking.join(0.3)
            assert asking.is_alive() and not answers
            with open(write_end, "wb") as pipe:
                pipe.write(json.dumps(_record().to_dict()).encode() + b"\n")
            asking.join(10)
            assert answers == [200] and server.kept == {"t"}
        finally:
            server.shutdown()
            server.server_close()


def test_a_server_given_its_socket_connects_to_docker_later_unless_a_request_needs_it() -> None:
    import threading
    import time

    from pytest_ecstask.endpoints import DockerReads

    connected = threading.Event()

    def connect() -> Any:
        connected.set()
        return "api"

    reads = DockerReads(None)
    reads.connect_in_background(connect, after=60)
    assert not connected.wait(0.3)  # not yet: the task's containers may be starting
    started = time.monotonic()
    assert reads.api == "api"  # a request needs Docker: it connects at once
    assert time.monotonic() - started < 5


def test_an_answer_that_is_not_the_servers_is_an_endpoint_error_not_a_traceback() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from pytest_ecstask.endpoints import EndpointUnavailable, adopt_served

    class NotJson(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"<html/>\n ")

        def log_message(self, format: str, *args: Any) -> None:
            return

    other = HTTPServer(("127.0.0.1", 0), NotJson)
    threading.Thread(target=other.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        info = EndpointInfo(41999, "t" * 32, 1, control_host="127.0.0.1", control_port=other.server_address[1])
        from pytest_ecstask.endpoints import _request

        with pytest.raises(EndpointUnavailable) as raised:
            _request(info, "POST", "/_ecstask/adopt", {})
        assert str(raised.value) == (
            "the endpoint server gave no usable answer to POST /_ecstask/adopt (JSONDecodeError)"
        )
        assert not adopt_served(info, "t", "/leases/x.lease")  # the run then serves the task itself
    finally:
        other.shutdown()
        other.server_close()


def test_a_record_names_only_a_local_server_on_the_endpoint_address() -> None:
    from pytest_ecstask.endpoints import info_from_record, info_record

    local = EndpointInfo(41999, "t" * 32, 7)
    assert info_from_record(info_record(local)) == local
    relay = EndpointInfo(41999, "t" * 32, 7, mode="relay", control_host="127.0.0.1", control_port=5000)
    assert info_from_record(info_record(relay)) is None
    elsewhere = {**info_record(local), "control_host": "203.0.113.9"}  # where the token would go
    assert info_from_record(elsewhere) is None
    assert info_from_record({"port": "x"}) is None and info_from_record(None) is None


def test_an_inspect_the_engine_refuses_is_asked_again_once() -> None:
    import docker.errors

    from pytest_ecstask.endpoints import DockerReads

    class Restarting:
        def __init__(self, refusals: int) -> None:
            self.refusals = refusals
            self.asked = 0

        def inspect_container(self, name: str) -> dict[str, Any]:
            self.asked += 1
            if self.asked <= self.refusals:
                raise docker.errors.APIError("container state improper")
            return {"Name": name}

    once = Restarting(1)
    assert DockerReads(once).inspect(["app"]) == {"app": {"Name": "app"}}  # type: ignore[arg-type]
    assert once.asked == 2
    twice = Restarting(2)
    with pytest.raises(docker.errors.APIError):
        DockerReads(twice).inspect(["app"])  # type: ignore[arg-type]
    assert twice.asked == 2


def test_a_task_that_fails_before_it_registers_asks_its_server_nothing(image: str) -> None:
    """A start that fails before its task is registered (here: a missing image) makes no request to unregister
    it: the run's server may still be waiting for that first task, and would hold the request until then."""
    import socket

    from pytest_ecstask.errors import TaskFailedToStart
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.task import create_task

    with socket.socket() as server:  # stands where the server listens: it takes connections, answers none
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        info = EndpointInfo(
            41999, "t" * 32, 1, mode="relay", control_host="127.0.0.1", control_port=server.getsockname()[1]
        )
        taskdef = {
            "family": "unregistered",
            "containerDefinitions": [{"name": "app", "image": "pytest-ecstask-test/absent:1", "memory": 32}],
        }
        task = create_task(taskdef, TaskOptions(pull="never"), served_by=info)
        with pytest.raises(TaskFailedToStart, match="absent"):
            task.start()
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody asked


def test_the_endpoint_address_is_bound_ahead_of_the_network_that_makes_it_the_hosts() -> None:
    from pytest_ecstask import endpoints

    bound = endpoints._bind_local(0, ahead=True)
    assert not isinstance(bound, str), bound
    sock, refused = bound
    with sock:
        assert sock.getsockname()[0] == ENDPOINT_IP and sock.getsockname()[1] > 0 and refused == ""


def test_another_process_of_the_run_waits_for_the_endpoint_network_being_made(tmp_path: Any) -> None:
    """A server announced with its network still being made is used once the announcement says it is made;
    one whose process is gone is not waited for."""
    import os
    import threading
    import time

    from pytest_ecstask import endpoints
    from pytest_ecstask.lifecycle import write_private

    announce = tmp_path / "endpoint.json"
    final = {"port": 41999, "token": "t" * 48, "pid": os.getpid(), "mode": "local"}
    pending = {**final, "network": "pending", "maker": os.getpid()}
    write_private(announce, json.dumps(pending))  # as the server's starter writes it: whole, or not yet
    timer = threading.Timer(0.3, lambda: write_private(announce, json.dumps(final)))
    timer.start()
    began = time.monotonic()
    assert endpoints._network_settled(announce, dict(pending)) == final
    assert time.monotonic() - began >= 0.25
    timer.join()
    for gone in ({**pending, "pid": 2**22 + 1}, {**pending, "maker": 2**22 + 1}):  # above any pid handed out
        write_private(announce, json.dumps(gone))  # the server, or the process making its network, is gone
        assert endpoints._network_settled(announce, dict(gone)) == gone


def test_a_network_pending_too_long_is_an_endpoint_error_not_a_second_server(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_ecstask import endpoints
    from pytest_ecstask.endpoints import EndpointUnavailable
    from pytest_ecstask.lifecycle import write_private

    monkeypatch.setattr(endpoints, "NETWORK_WAIT_TIMEOUT", 0.6)
    announce = tmp_path / "endpoint.json"
    pending = {"port": 41999, "token": "t" * 48, "pid": os.getpid(), "maker": os.getpid(), "network": "pending"}
    write_private(announce, json.dumps(pending))  # both processes live; the network never comes
    with pytest.raises(EndpointUnavailable) as raised:
        endpoints._network_settled(announce, dict(pending))
    assert str(raised.value) == "the run's endpoint server waits for its 169.254.170.0/24 network longer than 1 s"


def test_only_an_engine_on_this_machines_kernel_not_rootless_with_a_local_bridge_binds_ahead() -> None:
    """Binding 169.254.170.2 before its network exists is right only where the network will make it this
    machine's: not on Docker Desktop (its own kernel), not on a rootless engine (its own network namespace,
    whose bridge may have a local-looking address), not where asking the engine fails."""
    import platform

    from pytest_ecstask import endpoints
    from pytest_ecstask.runtime import Engine

    class Answers:  # what the engine says of itself and its networks (the decision is ours, not Docker's)
        def __init__(self, kernel: str, components: tuple[str, ...] = ("Engine",), gateway: str = "127.0.0.1") -> None:
            self.kernel, self.components, self.gateway = kernel, components, gateway

        def version(self) -> dict[str, Any]:
            return {"KernelVersion": self.kernel, "Components": [{"Name": name} for name in self.components]}

        def networks(self, names: list[str]) -> list[Any]:
            return []

        def inspect_network(self, name: str) -> dict[str, Any]:
            if self.gateway == "refused":
                raise RuntimeError("the engine refused")
            return {"IPAM": {"Config": [{"Subnet": f"{self.gateway}/8"}]}}

    def ahead(api: Answers) -> bool:
        return endpoints._network_can_follow(Engine(api, "localhost"))  # type: ignore[arg-type]

    here = platform.release()
    assert ahead(Answers(here))  # the subnet's first host, 127.0.0.1, is this machine's
    assert not ahead(Answers("6.10.14-linuxkit"))
    assert not ahead(Answers(here, ("Engine", "rootlesskit")))
    assert not ahead(Answers(here, gateway="192.0.2.77"))  # TEST-NET-1: nobody's
    assert not ahead(Answers(here, gateway="refused"))
    # The endpoint network there already: the engine's networks are here, but nothing is to be made.
    made = Answers(here)
    made.networks = lambda names: [{"Name": names[0]}]  # type: ignore[method-assign]
    assert endpoints.engine_networks_here(Engine(made, "localhost")) and not ahead(made)  # type: ignore[arg-type]


def test_an_endpoint_network_the_engine_refuses_after_the_bind_fails_the_registration_and_stops_the_server(
    docker_api: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from pytest_ecstask import endpoints
    from pytest_ecstask.endpoints import EndpointUnavailable, register

    monkeypatch.setenv("PYTEST_ECSTASK_LEASE_DIR", str(tmp_path))
    monkeypatch.setattr(endpoints, "NETWORK_NAME", f"ecstask-test-refused-{os.getpid()}")
    monkeypatch.setattr(endpoints, "SUBNET", "not-a-subnet")  # the engine refuses it
    announce = tmp_path / "endpoint.json"
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    info = EndpointInfo(41999, "t" * 32, server.pid)
    try:
        with endpoints._handoffs_lock:
            endpoints._networks[server.pid] = endpoints._NetworkAfter(docker_api, announce, {"port": 1}, server)
        with pytest.raises(EndpointUnavailable, match="could not create the not-a-subnet network"):
            register(info, _record())
        assert endpoints.network_failed(info)  # the next task that asks starts anew
        assert server.wait(timeout=10) != 0  # stopped: it would serve nobody
        assert "not-a-subnet" in json.loads(announce.read_text())["error"]
    finally:
        server.kill()
        with endpoints._handoffs_lock:
            endpoints._networks.pop(server.pid, None)
    assert not docker_api.networks(names=[endpoints.NETWORK_NAME])


def test_an_endpoint_network_lock_held_too_long_fails_the_registration_with_the_reason(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from filelock import FileLock

    from pytest_ecstask import endpoints
    from pytest_ecstask.endpoints import EndpointUnavailable, register

    monkeypatch.setenv("PYTEST_ECSTASK_LEASE_DIR", str(tmp_path))
    monkeypatch.setattr(endpoints, "NETWORK_WAIT_TIMEOUT", 30.5)  # the lock is waited for 0.5 s
    announce = tmp_path / "endpoint.json"
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    info = EndpointInfo(41998, "t" * 32, server.pid)
    held = FileLock(str(tmp_path / "endpoint-network.lock"), thread_local=False)
    try:
        with held:  # a sweep, or another run, holds it meanwhile
            with endpoints._handoffs_lock:
                endpoints._networks[server.pid] = endpoints._NetworkAfter(None, announce, {"port": 1}, server)  # type: ignore[arg-type]
            with pytest.raises(EndpointUnavailable) as raised:
                register(info, _record())
        assert str(raised.value) == (
            f"the engine-wide endpoint network lock ({tmp_path / 'endpoint-network.lock'}) stayed taken for 0.5 s: "
            "a sweep, or another run making or removing the network, holds it"
        )
        assert json.loads(announce.read_text())["error"] == str(raised.value)  # other processes stop waiting
        assert endpoints.network_failed(info)
        assert server.wait(timeout=10) != 0  # stopped: it would serve nobody
    finally:
        server.kill()
        with endpoints._handoffs_lock:
            endpoints._networks.pop(server.pid, None)


@pytest.mark.parametrize(
    ("environ", "found"),
    [
        ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/id"}, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        (
            {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"},
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ),
        ({"ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/abc"}, "ECS_CONTAINER_METADATA_URI_V4"),
        ({"ECS_CONTAINER_METADATA_URI": "http://169.254.170.2:80/v3/abc"}, "ECS_CONTAINER_METADATA_URI"),
        (  # several: the first in OWN_ENDPOINT_VARIABLES' order that points into the subnet
            {
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:8080/creds",
                "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/abc",
            },
            "ECS_CONTAINER_METADATA_URI_V4",
        ),
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:8080/creds"}, None),  # loopback: untouched
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.169.254/creds"}, None),  # EC2's IMDS
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.171.2/creds"}, None),  # the next /24
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://[fd00:ec2::23]/v1/credentials"}, None),  # IPv6
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://localhost/creds"}, None),
        ({"ECS_CONTAINER_METADATA_URI_V4": "not a url"}, None),
        ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": " "}, None),
        ({}, None),
    ],
)
def test_a_process_getting_its_own_credentials_from_the_endpoint_subnet_is_recognised(
    environ: dict[str, str], found: str | None
) -> None:
    from pytest_ecstask.options import own_endpoint_variable

    assert own_endpoint_variable(environ) == found


class _GuardEngine:
    """What the guard asks of an engine: Podman or not, and whether the endpoint network exists."""

    def __init__(self, podman: bool = False, network_exists: bool = False) -> None:
        self.podman = podman
        self.api = self
        self._exists = network_exists

    def networks(self, names: list[str]) -> list[Any]:
        return [{"Name": names[0]}] if self._exists else []


@pytest.mark.parametrize(
    ("mode", "variable", "engine", "networks_here", "tried", "warned"),
    [
        ("auto", True, _GuardEngine(), True, [], "--ecs-endpoints=local serves the endpoints anyway"),  # left off
        (
            "local",
            True,
            _GuardEngine(),
            True,
            ["fetched", "local"],
            "(--ecs-endpoints=local: taken; boto3's default session fetched its credentials first)",
        ),
        ("relay", True, _GuardEngine(), True, ["fetched", "relay"], "(--ecs-endpoints=relay: taken;"),
        ("auto", False, _GuardEngine(), None, ["local"], ""),  # the engine is not even asked
        ("auto", True, _GuardEngine(), False, ["local"], ""),  # the engine's networks are elsewhere
        ("auto", True, _GuardEngine(network_exists=True), True, ["local"], ""),  # taken already by another run
        ("auto", True, _GuardEngine(podman=True), None, ["local"], ""),  # Podman: not checked
    ],
)
def test_the_endpoint_network_does_not_silently_take_this_process_own_credentials_address(
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    variable: bool,
    engine: _GuardEngine,
    networks_here: bool | None,
    tried: list[str],
    warned: str,
) -> None:
    from pytest_ecstask import task as task_module
    from pytest_ecstask.lifecycle import Owner

    started: list[str] = []

    def ensure_server(*args: Any, relay: Any = None, engine: Any = None) -> EndpointInfo:
        started.append("relay" if relay is not None else "local")
        return EndpointInfo(8123, "t", 1, mode=started[-1])

    def here(engine: Any, when_unsure: bool = False) -> bool:
        assert networks_here is not None, "the engine was asked, though nothing needed it"
        assert when_unsure, "an engine that cannot say where its networks are counts as here"
        return networks_here

    monkeypatch.setattr(task_module, "ensure_server", ensure_server)
    monkeypatch.setattr(task_module, "engine_networks_here", here)
    # boto3's default session is not asked for real: the order is what matters, fetched before it is taken.
    monkeypatch.setattr(task_module, "_fetch_own_credentials", lambda: started.append("fetched") is None)
    connections = task_module.Connections("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" if variable else None)
    owner = Owner(f"own-endpoint-{mode}-{variable}-{networks_here}", "host/x", "/nonexistent.lease")
    request = EndpointRequest(mode, relay_image="img")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = connections.endpoint(owner, request, "localhost", engine)  # type: ignore[arg-type]
        assert connections.endpoint(owner, request, "localhost", engine) is info  # once per run
    assert started == tried
    assert (info is not None) is bool(tried)
    texts = [str(w.message) for w in caught]
    if not warned:
        assert texts == []
        return
    assert len(texts) == 1 and warned in texts[0]
    assert "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set" in texts[0] and "EKS Pod Identity" in texts[0]


def test_taking_the_address_says_when_boto3_had_nothing_to_fetch_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_ecstask import task as task_module
    from pytest_ecstask.lifecycle import Owner

    monkeypatch.setattr(task_module, "ensure_server", lambda *args, **kwargs: EndpointInfo(8123, "t", 1))
    monkeypatch.setattr(task_module, "engine_networks_here", lambda engine, when_unsure=False: True)
    monkeypatch.setattr(task_module, "_fetch_own_credentials", lambda: False)  # no boto3, or no credentials
    connections = task_module.Connections("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    owner = Owner("own-endpoint-nothing-fetched", "host/x", "/nonexistent.lease")
    with pytest.warns(task_module.EndpointWarning) as warned:
        assert connections.endpoint(owner, EndpointRequest("local"), "localhost", _GuardEngine()) is not None  # type: ignore[arg-type]
    assert str(warned[0].message).endswith(
        "(--ecs-endpoints=local: taken; boto3's default session had no credentials to fetch first)"
    )


def test_taking_the_address_is_not_announced_when_the_endpoints_then_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_ecstask import task as task_module
    from pytest_ecstask.endpoints import EndpointUnavailable
    from pytest_ecstask.lifecycle import Owner

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise EndpointUnavailable("cannot bind 169.254.170.2 (port any: Cannot assign requested address)")

    monkeypatch.setattr(task_module, "ensure_server", unavailable)
    monkeypatch.setattr(task_module, "engine_networks_here", lambda engine, when_unsure=False: True)
    monkeypatch.setattr(task_module, "_fetch_own_credentials", lambda: None)
    connections = task_module.Connections("ECS_CONTAINER_METADATA_URI_V4")
    owner = Owner("own-endpoint-failed", "host/x", "/nonexistent.lease")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert connections.endpoint(owner, EndpointRequest("local"), "localhost", _GuardEngine()) is None  # type: ignore[arg-type]
    texts = [str(w.message) for w in caught]
    assert len(texts) == 1 and "endpoints are off: cannot bind 169.254.170.2" in texts[0]


def test_a_run_reads_its_own_credentials_variables_at_its_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_ecstask.run import Run

    seen: list[Any] = []
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials")
    monkeypatch.setattr(Run, "begin", _recording(Run.begin, seen))
    pytester.makepyfile(
        """
        import os

        def test_changes_the_environment():
            os.environ.pop("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert [run.own_endpoint for run in seen] == ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    from pytest_ecstask.task import use_connections

    try:  # and the run's connections use it
        assert seen[0].connections.own_endpoint == "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    finally:
        use_connections(seen[0].session_id, None)


def _recording(begin: Any, seen: list[Any]) -> Any:
    def record(config: Any, settings: Any) -> Any:
        run = begin(config, settings)
        seen.append(run)
        return run

    return classmethod(lambda cls, config, settings: record(config, settings))
