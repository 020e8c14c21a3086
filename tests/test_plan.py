"""The launch plan, pure: the dependency graph and the exact Engine API request per container. No Docker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_ecstask.endpoints import EndpointInfo
from pytest_ecstask.errors import PlanError
from pytest_ecstask.lifecycle import Owner
from pytest_ecstask.plan import (
    PlanOptions,
    TaskPlan,
    build_plan,
    format_plan,
    needs_pause_container,
    plan_data,
    resolve_image,
)
from pytest_ecstask.taskdef import DependencyCondition, TaskDefinitionWarning, parse_task_definition

OPTIONS = PlanOptions(
    task_id="0123456789abcdef0123456789abcdef",
    owner=Owner("sess01", "host/1", "/tmp/sess01.lease"),
    created="2026-01-01T00:00:00.000Z",
    pause_image="pause:test",
)


def plan(*containers: dict[str, Any], options: PlanOptions = OPTIONS, **task: Any) -> TaskPlan:
    data = {"family": "shop", "containerDefinitions": list(containers), **task}
    return build_plan(parse_task_definition(data, "taskdef.json"), options)


def c(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": f"{name}:1", **fields}


def test_implicit_dependencies_links_are_start_and_volumes_from_orders_creation() -> None:
    p = plan(
        c("db"),
        c("data", essential=False),
        c("app", links=["db:database"], volumesFrom=[{"sourceContainer": "data"}]),
        networkMode="bridge",
    )
    app = p.container("app")
    assert [(d.container_name, d.condition) for d in app.depends_on] == [("db", DependencyCondition.START)]
    assert app.created_after == ("data", "db")  # a legacy link, like volumesFrom, needs its target to exist
    assert p.start_levels() == [["db", "data"], ["app"]]
    assert p.stop_levels() == [["app"], ["db", "data"]]
    assert set(p.dependents("db")) == {"app"} and set(p.dependents("data")) == {"app"}


def test_explicit_condition_on_a_linked_container_is_kept() -> None:
    p = plan(
        c("db", healthCheck={"command": ["CMD", "true"]}),
        c("app", links=["db"], dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]),
    )
    assert [(d.container_name, d.condition) for d in p.container("app").depends_on] == [
        ("db", DependencyCondition.HEALTHY)
    ]


def test_start_levels_follow_chains() -> None:
    p = plan(
        c("a"),
        c("b", dependsOn=[{"containerName": "a", "condition": "START"}]),
        c("c", dependsOn=[{"containerName": "b", "condition": "START"}]),
        c("d"),
    )
    assert p.start_levels() == [["a", "d"], ["b"], ["c"]]


def test_container_create_body_carries_every_supported_field() -> None:
    p = plan(
        c(
            "app",
            command=["serve", "--port", "8080"],
            entryPoint=["/entry.sh"],
            environment=[{"name": "MODE", "value": "test"}],
            workingDirectory="/srv",
            user="1000:1000",
            hostname="app-host",
            memory=512,
            memoryReservation=256,
            cpu=1,
            portMappings=[
                {"containerPort": 8080, "hostPort": 0},
                {"containerPort": 9000, "hostPort": 9000, "protocol": "udp"},
            ],
            dockerLabels={"team": "shop"},
            ulimits=[{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
            linuxParameters={
                "initProcessEnabled": True,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                "tmpfs": [{"containerPath": "/scratch", "size": 64, "mountOptions": ["noexec"]}],
                "sharedMemorySize": 100,
                "devices": [{"hostPath": "/dev/fuse", "permissions": ["read", "write"]}],
            },
            systemControls=[{"namespace": "net.core.somaxconn", "value": "1024"}],
            extraHosts=[{"hostname": "db.local", "ipAddress": "10.0.0.5"}],
            dnsServers=["10.0.0.2"],
            dnsSearchDomains=["corp.local"],
            readonlyRootFilesystem=True,
            privileged=True,
            interactive=True,
            pseudoTerminal=True,
            healthCheck={"command": ["CMD-SHELL", "curl -f localhost:8080"], "interval": 10},
            stopTimeout=20,
            startTimeout=40,
        ),
        networkMode="bridge",
    )
    app = p.container("app")
    body = app.create_body
    host = body["HostConfig"]
    assert body["Image"] == "app:1"
    assert body["Cmd"] == ["serve", "--port", "8080"] and body["Entrypoint"] == ["/entry.sh"]
    assert "MODE=test" in body["Env"] and "AWS_EXECUTION_ENV=AWS_ECS_EC2" in body["Env"]
    assert (body["WorkingDir"], body["User"], body["Hostname"]) == ("/srv", "1000:1000", "app-host")
    assert body["OpenStdin"] is True and body["Tty"] is True
    assert body["Labels"]["team"] == "shop"
    assert body["Labels"]["com.amazonaws.ecs.container-name"] == "app"
    assert body["Labels"]["com.amazonaws.ecs.task-definition-family"] == "shop"
    assert body["Labels"]["pytest-ecstask.session"] == "sess01"
    assert body["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f localhost:8080"],
        "Interval": 10_000_000_000,  # nanoseconds, as the Engine API takes them
        "Timeout": 5_000_000_000,
        "Retries": 3,
        "StartPeriod": 0,
    }
    assert body["ExposedPorts"] == {"8080/tcp": {}, "9000/udp": {}}
    assert host["PortBindings"] == {
        "8080/tcp": [{"HostIp": "", "HostPort": ""}],
        "9000/udp": [{"HostIp": "", "HostPort": "9000"}],
    }
    assert (host["Memory"], host["MemoryReservation"], host["CpuShares"]) == (536_870_912, 268_435_456, 2)
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Init"] is True and host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["MKNOD"]
    assert host["Tmpfs"] == {"/scratch": "size=64m,noexec"}
    assert host["ShmSize"] == 104_857_600
    assert host["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rw"}]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["ExtraHosts"] == ["db.local:10.0.0.5"]
    assert (host["Dns"], host["DnsSearch"]) == (["10.0.0.2"], ["corp.local"])
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is True
    assert (app.stop_timeout, app.start_timeout) == (20.0, 40.0)
    # Docker's default bridge, as the agent does it: no network-scoped alias gives the container a name.
    assert host["NetworkMode"] == "bridge" and "NetworkingConfig" not in body and "Links" not in host


def test_ecs_defaults_for_stop_timeout_health_check_and_essential() -> None:
    p = plan(c("app", healthCheck={"command": ["CMD", "true"]}), c("side", essential=False))
    app = p.container("app")
    assert app.stop_timeout == 30.0 and app.start_timeout is None
    assert app.create_body["Healthcheck"] == {
        "Test": ["CMD", "true"],
        "Interval": 30_000_000_000,
        "Timeout": 5_000_000_000,
        "Retries": 3,
        "StartPeriod": 0,
    }
    assert app.essential and not p.container("side").essential
    assert p.network_mode == "bridge"


def test_stop_timeout_override_and_default_start_timeout() -> None:
    options = PlanOptions(**{**OPTIONS.__dict__, "stop_timeout": 2.0, "default_start_timeout": 9.0})
    p = plan(c("app", stopTimeout=60), c("other", startTimeout=3), options=options)
    assert p.container("app").stop_timeout == 2.0
    assert p.container("app").start_timeout == 9.0 and p.container("other").start_timeout == 3.0


def test_awsvpc_joins_the_pause_namespace_and_publishes_every_port_there() -> None:
    p = plan(
        c(
            "app",
            portMappings=[{"containerPort": 8080, "hostPort": 8080}],
            systemControls=[{"namespace": "net.ipv4.tcp_keepalive_time", "value": "60"}],
        ),
        c("envoy", portMappings=[{"containerPort": 9901}]),
        networkMode="awsvpc",
    )
    assert p.pause is not None and p.network is not None
    for name in ("app", "envoy"):
        host = p.container(name).create_body["HostConfig"]
        assert host["NetworkMode"] == f"container:{p.pause.docker_name}"
        assert "PortBindings" not in host
    pause = p.pause.create_body
    assert pause["Image"] == "pause:test"
    assert pause["HostConfig"]["NetworkMode"] == p.network.docker_name
    # Locally every task shares one host, so even a fixed awsvpc hostPort is published on an ephemeral one.
    assert pause["HostConfig"]["PortBindings"] == {
        "8080/tcp": [{"HostIp": "", "HostPort": ""}],
        "9901/tcp": [{"HostIp": "", "HostPort": ""}],
    }
    assert pause["HostConfig"]["Sysctls"] == {"net.ipv4.tcp_keepalive_time": "60"}
    assert "Sysctls" not in p.container("app").create_body["HostConfig"]


@pytest.mark.parametrize(
    ("task", "pause"),
    [
        ({"networkMode": "awsvpc"}, True),
        ({"networkMode": "bridge", "pidMode": "task"}, True),
        ({"networkMode": "host", "ipcMode": "task"}, True),
        ({"networkMode": "bridge", "pidMode": "host", "ipcMode": "none"}, False),
        ({"networkMode": "host"}, False),
    ],
)
def test_a_pause_container_is_planned_exactly_when_the_task_shares_namespaces(
    task: dict[str, Any], pause: bool
) -> None:
    taskdef = parse_task_definition({"family": "shop", "containerDefinitions": [c("app")], **task}, "taskdef.json")
    assert needs_pause_container(taskdef) is pause
    assert (build_plan(taskdef, OPTIONS).pause is not None) is pause


def test_fields_set_to_false_zero_or_empty_are_left_to_docker_unless_zero_means_something() -> None:
    with pytest.warns(TaskDefinitionWarning, match=r"memoryReservation \(container 'app'\): 0 MiB"):
        p = plan_with_zeros()
    body = p.container("app").create_body
    host = body["HostConfig"]
    assert (body["Cmd"], body["Entrypoint"]) == ([], [])
    assert (host["ShmSize"], host["MemorySwappiness"]) == (0, 0)
    assert not {"WorkingDir", "OpenStdin"} & set(body)
    left_out = {"CpuShares", "MemoryReservation", "Privileged", "Dns", "Ulimits", "Init", "CapAdd", "CapDrop"}
    assert not (left_out | {"Tmpfs", "Devices", "MemorySwap"}) & set(host)


def plan_with_zeros() -> TaskPlan:
    return plan(
        c(
            "app",
            command=[],
            entryPoint=[],
            cpu=0,
            memoryReservation=0,
            workingDirectory="",
            interactive=False,
            privileged=False,
            dnsServers=[],
            ulimits=[],
            linuxParameters={
                "initProcessEnabled": False,
                "capabilities": {"add": [], "drop": []},
                "tmpfs": [],
                "devices": [],
                "sharedMemorySize": 0,
                "swappiness": 0,
                "maxSwap": 100,  # without a memory limit: no swap limit
            },
        )
    )


def test_host_and_none_network_modes_have_no_task_network() -> None:
    for mode in ("host", "none"):
        p = plan(c("app"), networkMode=mode)
        assert p.network is None and p.pause is None
        assert p.container("app").create_body["HostConfig"]["NetworkMode"] == mode


def test_pid_and_ipc_mode_task_share_the_pause_namespaces() -> None:
    p = plan(c("app"), c("debug"), pidMode="task", ipcMode="task", networkMode="bridge")
    assert p.pause is not None
    host = p.container("debug").create_body["HostConfig"]
    assert host["PidMode"] == host["IpcMode"] == f"container:{p.pause.docker_name}"
    assert p.pause.create_body["HostConfig"]["IpcMode"] == "shareable"
    # Outside awsvpc the pause container only holds namespaces: no network, no ports.
    assert p.pause.create_body["HostConfig"]["NetworkMode"] == "none"
    assert "PortBindings" not in p.pause.create_body["HostConfig"] and p.pause.ports == ()


def test_volumes_bind_task_scoped_shared_and_read_only() -> None:
    p = plan(
        c(
            "app",
            mountPoints=[
                {"sourceVolume": "logs", "containerPath": "/logs", "readOnly": True},
                {"sourceVolume": "scratch", "containerPath": "/scratch"},
                {"sourceVolume": "cache", "containerPath": "/cache"},
                {"sourceVolume": "plain", "containerPath": "/plain"},
            ],
        ),
        c("side", essential=False, volumesFrom=[{"sourceContainer": "app", "readOnly": True}]),
        volumes=[
            {"name": "logs", "host": {"sourcePath": "/var/log/app"}},
            {"name": "scratch", "host": {}},
            {
                "name": "cache",
                "dockerVolumeConfiguration": {
                    "scope": "shared",
                    "autoprovision": True,
                    "driver": "local",
                    "driverOpts": {"type": "tmpfs"},
                    "labels": {"app": "shop"},
                },
            },
            {"name": "plain"},
        ],
    )
    volumes = {v.name: v for v in p.volumes}
    assert volumes["logs"].docker_name is None and volumes["logs"].source_path == "/var/log/app"
    assert volumes["scratch"].docker_name.endswith(OPTIONS.task_id[:12])  # type: ignore[union-attr]
    assert volumes["scratch"].scope == "task" and volumes["plain"].scope == "task"
    assert volumes["cache"].docker_name == "cache" and volumes["cache"].scope == "shared"
    assert volumes["cache"].autoprovision and volumes["cache"].driver_opts == {"type": "tmpfs"}
    assert volumes["cache"].labels["app"] == "shop" and volumes["cache"].labels["pytest-ecstask.task"]
    binds = p.container("app").create_body["HostConfig"]["Binds"]
    assert binds == [
        "/var/log/app:/logs:ro",
        f"{volumes['scratch'].docker_name}:/scratch",
        "cache:/cache",
        f"{volumes['plain'].docker_name}:/plain",
    ]
    assert p.container("side").create_body["HostConfig"]["VolumesFrom"] == [f"{p.container('app').docker_name}:ro"]


def test_bridge_links_are_legacy_links_docker_name_and_alias_as_the_agent_writes_them() -> None:
    p = plan(c("db"), c("app", links=["db:database", "cache"]), c("cache"), networkMode="bridge")
    host = p.container("app").create_body["HostConfig"]
    # A link without an alias is aliased by the container's name (the agent's dockerLinks).
    assert host["Links"] == [
        f"{p.container('db').docker_name}:database",
        f"{p.container('cache').docker_name}:cache",
    ]
    assert host["NetworkMode"] == "bridge" and "NetworkingConfig" not in p.container("app").create_body


def test_bridge_mode_uses_the_default_bridge_and_creates_no_network() -> None:
    p = plan(c("app"), c("side"), networkMode="bridge")
    assert p.network is not None and p.network.docker_name == "bridge"
    assert not p.network.owned_by_task and p.network.labels == {}  # never created, labelled or removed
    for name in ("app", "side"):
        body = p.container(name).create_body
        assert body["HostConfig"]["NetworkMode"] == "bridge" and "NetworkingConfig" not in body
    assert plan_data(p)["network"] == "bridge"


def test_an_awsvpc_task_still_has_a_network_of_its_own_for_its_pause_container() -> None:
    p = plan(c("app"), networkMode="awsvpc")
    assert p.network is not None and p.network.owned_by_task and p.pause is not None
    assert p.network.docker_name == "ecs-shop-1-0123456789ab" and p.network.labels == p.labels
    assert not any("NetworkingConfig" in x.create_body for x in (*p.containers, p.pause))


def test_dns_extra_hosts_and_hostname_reach_docker_as_the_agent_passes_them() -> None:
    p = plan(
        c(
            "app",
            hostname="app.internal",
            dnsServers=["10.0.0.2", "10.0.0.3"],
            dnsSearchDomains=["corp.local", "svc.local"],
            extraHosts=[{"hostname": "db.local", "ipAddress": "10.0.0.5"}, {"hostname": "v6", "ipAddress": "::1"}],
        ),
        networkMode="bridge",
    )
    body = p.container("app").create_body
    host = body["HostConfig"]
    assert body["Hostname"] == "app.internal"
    assert (host["Dns"], host["DnsSearch"]) == (["10.0.0.2", "10.0.0.3"], ["corp.local", "svc.local"])
    assert host["ExtraHosts"] == ["db.local:10.0.0.5", "v6:::1"]


def test_image_mapping_exact_then_glob() -> None:
    mapping = {"nginx:1.25": "local/nginx", "*.dkr.ecr.*.amazonaws.com/app:*": "app:dev"}
    assert resolve_image("nginx:1.25", mapping) == "local/nginx"
    assert resolve_image("123.dkr.ecr.eu-west-1.amazonaws.com/app:prod", mapping) == "app:dev"
    assert resolve_image("redis:7", mapping) == "redis:7"
    options = PlanOptions(**{**OPTIONS.__dict__, "image_map": mapping})
    assert plan(c("web", image="nginx:1.25"), options=options).container("web").create_body["Image"] == "local/nginx"


def test_task_arn_and_names_follow_the_agent() -> None:
    p = plan(c("app"))
    assert p.task_arn == f"arn:aws:ecs:us-east-1:123456789012:task/pytest-ecstask/{OPTIONS.task_id}"
    assert p.container("app").docker_name == f"ecs-shop-1-app-{OPTIONS.task_id[:12]}"
    labels = p.container("app").create_body["Labels"]
    assert labels["com.amazonaws.ecs.task-arn"] == p.task_arn
    assert labels["com.amazonaws.ecs.cluster"] == "pytest-ecstask"
    assert labels["com.amazonaws.ecs.task-definition-version"] == "1"


def test_what_cannot_run_locally_is_refused_together_naming_each() -> None:
    with pytest.raises(PlanError) as info:
        plan(
            c(
                "app",
                resourceRequirements=[{"type": "GPU", "value": "1"}],
                secrets=[{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"}],
            ),
            volumes=[{"name": "shared", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}],
        )
    text = str(info.value)
    assert text.startswith("taskdef.json: 3 things cannot be run locally")
    assert "  - $.volumes[0].efsVolumeConfiguration (volume 'shared'): an EFS file system cannot be mounted" in text
    assert "  - $.containerDefinitions[0].resourceRequirements (container 'app'): GPUs" in text
    assert "  - $.containerDefinitions[0].secrets[0] (container 'app'): secret 'DB_PASSWORD'" in text


def test_secret_with_a_local_value_becomes_an_environment_variable() -> None:
    arn = "arn:aws:ssm:us-east-1:1:parameter/db"
    options = PlanOptions(**{**OPTIONS.__dict__, "secret_values": {arn: "s3cret"}})
    p = plan(c("app", secrets=[{"name": "DB_PASSWORD", "valueFrom": arn}]), options=options)
    assert "DB_PASSWORD=s3cret" in p.container("app").create_body["Env"]


def test_docker_labels_cannot_replace_the_labels_the_runtime_relies_on() -> None:
    p = plan(
        c("app", dockerLabels={"pytest-ecstask.task": "mine", "com.amazonaws.ecs.container-name": "x", "team": "shop"})
    )
    labels = p.container("app").create_body["Labels"]
    assert labels["pytest-ecstask.task"] == OPTIONS.task_id
    assert labels["com.amazonaws.ecs.container-name"] == "app"
    assert labels["team"] == "shop"


def test_container_port_range_is_refused_by_name() -> None:
    with pytest.raises(
        PlanError,
        match=r"^taskdef.json: \$\.containerDefinitions\[0\]\.portMappings\[0\]\.containerPortRange \(container 'app'\): "
        "port ranges are not reproduced locally",
    ):
        plan(c("app", portMappings=[{"containerPortRange": "8000-8010"}]), networkMode="awsvpc")


def test_health_check_values_given_are_passed_in_nanoseconds() -> None:
    check = {"command": ["CMD", "true"], "interval": 5, "timeout": 2, "retries": 10, "startPeriod": 300}
    assert plan(c("app", healthCheck=check)).container("app").create_body["Healthcheck"] == {
        "Test": ["CMD", "true"],
        "Interval": 5_000_000_000,
        "Timeout": 2_000_000_000,
        "Retries": 10,
        "StartPeriod": 300_000_000_000,
    }


def test_environment_files_fill_in_below_environment_and_the_first_file_wins() -> None:
    options = PlanOptions(
        **{
            **OPTIONS.__dict__,
            "environment_files": {
                "arn:aws:s3:::cfg/first.env": [("MODE", "from-file"), ("REGION_NAME", "eu-west-1"), ("LEVEL", "1")],
                "arn:aws:s3:::cfg/second.env": [("LEVEL", "2"), ("EXTRA", "yes")],
            },
        }
    )
    p = plan(
        c(
            "app",
            environment=[{"name": "MODE", "value": "test"}],
            environmentFiles=[
                {"value": "arn:aws:s3:::cfg/first.env", "type": "s3"},
                {"value": "arn:aws:s3:::cfg/second.env", "type": "s3"},
            ],
        ),
        options=options,
    )
    assert p.container("app").create_body["Env"] == [
        "AWS_EXECUTION_ENV=AWS_ECS_EC2",
        "AWS_REGION=us-east-1",
        "MODE=test",
        "REGION_NAME=eu-west-1",
        "LEVEL=1",
        "EXTRA=yes",
    ]


def test_an_environment_file_without_local_content_is_refused_unless_the_plan_is_only_shown() -> None:
    app = c("app", environmentFiles=[{"value": "arn:aws:s3:::cfg/app.env", "type": "s3"}])
    with pytest.raises(PlanError) as info:
        plan(app)
    message = str(info.value)
    assert message.startswith("taskdef.json: ")
    assert message.endswith("(container 'app'): environment file 'arn:aws:s3:::cfg/app.env' has no local content")
    shown = plan(app, options=PlanOptions(**{**OPTIONS.__dict__, "mask_secrets": True}))
    assert shown.container("app").create_body["Env"] == ["AWS_EXECUTION_ENV=AWS_ECS_EC2", "AWS_REGION=us-east-1"]


def test_disable_networking_disables_the_containers_network() -> None:
    p = plan(c("app", disableNetworking=True), c("side", essential=False))
    assert p.container("app").create_body["NetworkDisabled"] is True
    assert "NetworkDisabled" not in p.container("side").create_body


def test_a_docker_volume_without_a_driver_uses_the_local_driver() -> None:
    p = plan(
        c("app", mountPoints=[{"sourceVolume": "scratch", "containerPath": "/scratch"}]),
        volumes=[
            {"name": "scratch", "dockerVolumeConfiguration": {"scope": "task"}},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "shared"}},
            {"name": "plain", "dockerVolumeConfiguration": {"driverOpts": {"type": "tmpfs"}}},  # no scope: task
        ],
    )
    scratch, cache, plain = p.volumes
    assert (plain.scope, plain.driver, plain.docker_name) == ("task", "local", "ecs-shop-1-plain-0123456789ab")
    assert (scratch.docker_name, scratch.driver, scratch.scope, scratch.autoprovision) == (
        "ecs-shop-1-scratch-0123456789ab",
        "local",
        "task",
        True,
    )
    assert scratch.driver_opts == {}
    # A shared volume is not created unless autoprovision says so, as on ECS.
    assert (cache.docker_name, cache.driver, cache.scope, cache.autoprovision) == ("cache", "local", "shared", False)
    assert p.container("app").create_body["HostConfig"]["Binds"] == ["ecs-shop-1-scratch-0123456789ab:/scratch"]


SECRET_ARN = "arn:aws:ssm:us-east-1:1:parameter/db"


def secret_plan(**options: Any) -> TaskPlan:
    """A plan made to run (the secret has its value), as --ecs-plan would never show it."""
    given = PlanOptions(**{**OPTIONS.__dict__, "secret_values": {SECRET_ARN: "s3cret"}, **options})
    return plan(
        c(
            "app",
            environment=[{"name": "MODE", "value": "test"}],
            secrets=[{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}],
        ),
        options=given,
        taskRoleArn="arn:aws:iam::123456789012:role/app",
    )


def test_the_plan_as_data_masks_secrets_and_shows_the_rest() -> None:
    data = plan_data(secret_plan(), {"app": ["DB_PASSWORD"]})
    (app,) = data["containers"]
    assert app["environment"] == {
        "AWS_EXECUTION_ENV": "AWS_ECS_EC2",
        "AWS_REGION": "us-east-1",
        "MODE": "test",
        "DB_PASSWORD": "******",
    }
    assert app["secrets"] == ["DB_PASSWORD"]
    assert "s3cret" not in json.dumps(data)


def test_the_plan_as_text_names_secrets_as_such_and_never_shows_a_value() -> None:
    text = format_plan(plan_data(secret_plan(), {"app": ["DB_PASSWORD"]}))
    assert "  env         AWS_EXECUTION_ENV, AWS_REGION, MODE, DB_PASSWORD (secret)" in text.splitlines()
    assert "s3cret" not in text


def test_the_credentials_token_is_masked_whatever_the_task_definition_says() -> None:
    endpoint = EndpointInfo(port=49152, control_token="control", pid=1)
    p = secret_plan(endpoint=endpoint, secret="task-secret")
    env = dict(item.split("=", 1) for item in p.container("app").create_body["Env"])
    token = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    data = plan_data(p, {"app": ["DB_PASSWORD"]})
    (app,) = data["containers"]
    assert app["environment"]["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == "******"
    assert app["environment"]["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith(
        "http://169.254.170.2:49152/v2/credentials/"
    )
    assert app["secrets"] == ["DB_PASSWORD"]  # the token is masked, not listed as a task definition secret
    assert token not in json.dumps(data) and token not in format_plan(data)


def test_the_plan_as_text_says_what_a_user_needs_to_read() -> None:
    p = plan(
        c(
            "db",
            image="postgres:16",
            essential=False,
            healthCheck={"command": ["CMD", "pg_isready"]},
            mountPoints=[{"sourceVolume": "data", "containerPath": "/var/lib/postgresql", "readOnly": True}],
        ),
        c("migrate", essential=False, command=["migrate", "up"]),
        c(
            "app",
            command=["serve"],
            entryPoint=["/entry"],
            portMappings=[{"containerPort": 8080}, {"containerPort": 9000, "hostPort": 9000, "protocol": "udp"}],
            links=["db"],
            dependsOn=[
                {"containerName": "db", "condition": "HEALTHY"},
                {"containerName": "migrate", "condition": "SUCCESS"},
            ],
            volumesFrom=[{"sourceContainer": "db"}],
            startTimeout=30,
            stopTimeout=10,
        ),
        volumes=[{"name": "data"}, {"name": "logs", "host": {"sourcePath": "/var/log/shop"}}],
    )
    assert format_plan(plan_data(p)).splitlines() == [
        "task shop:1  network mode bridge",
        "start order (each level starts together, once its gates open):",
        "  1. db, migrate",
        "  2. app    [app after db HEALTHY, migrate SUCCESS]",
        "stop order: app -> db, migrate",
        "container db (not essential)",
        "  image       postgres:16",
        "  env         AWS_EXECUTION_ENV, AWS_REGION",
        "  ports       -",
        "  mounts      ecs-shop-1-data-0123456789ab:/var/lib/postgresql:ro",
        "  network     bridge",
        "  health      ['CMD', 'pg_isready']",
        "  timeouts    start none, stop 30 s",
        "container migrate (not essential)",
        "  image       migrate:1",
        "  command     ['migrate', 'up']",
        "  env         AWS_EXECUTION_ENV, AWS_REGION",
        "  ports       -",
        "  mounts      -",
        "  network     bridge",
        "  timeouts    start none, stop 30 s",
        "container app",
        "  image       app:1",
        "  entryPoint  ['/entry']",
        "  command     ['serve']",
        "  env         AWS_EXECUTION_ENV, AWS_REGION",
        "  ports       8080/tcp -> ephemeral, 9000/udp -> 9000",
        "  mounts      volumes from ecs-shop-1-db-0123456789ab",
        "  network     bridge, links ecs-shop-1-db-0123456789ab:db",
        "  timeouts    start 30 s, stop 10 s",
        "volume data: Docker volume ecs-shop-1-data-0123456789ab (task)",
        "volume logs: /var/log/shop",
    ]


def test_the_plan_as_data_says_what_each_container_gets() -> None:
    p = plan(
        c("db", essential=False, healthCheck={"command": ["CMD", "pg_isready"]}),
        c(
            "app",
            command=["serve"],
            entryPoint=["/entry"],
            dependsOn=[{"containerName": "db", "condition": "HEALTHY"}],
            mountPoints=[{"sourceVolume": "logs", "containerPath": "/logs"}],
            volumesFrom=[{"sourceContainer": "db", "readOnly": True}],
        ),
        volumes=[{"name": "logs", "host": {"sourcePath": "/var/log/shop"}}],
    )
    db, app = plan_data(p)["containers"]
    assert (db["health_check"], db["command"], db["entry_point"]) == (["CMD", "pg_isready"], None, None)
    assert app["depends_on"] == [{"container": "db", "condition": "HEALTHY"}]
    assert app["created_after"] == ["db"]
    assert (app["command"], app["entry_point"], app["health_check"]) == (["serve"], ["/entry"], None)
    assert app["mounts"] == ["/var/log/shop:/logs"]
    assert app["volumes_from"] == ["ecs-shop-1-db-0123456789ab:ro"]
    assert (app["network"], app["links"]) == ("bridge", [])
    assert (app["start_timeout"], app["stop_timeout"]) == (None, 30.0)
    assert plan_data(p)["volumes"] == [
        {"name": "logs", "docker_volume": None, "host_path": "/var/log/shop", "scope": "task", "driver": "local"}
    ]


def test_the_plan_as_text_names_the_pause_container_of_an_awsvpc_task() -> None:
    lines = format_plan(plan_data(plan(c("app"), networkMode="awsvpc"))).splitlines()
    assert lines[:2] == [
        "task shop:1  network mode awsvpc",
        "  pause container ecs-shop-1-internalecspause-0123456789ab owns the task's namespaces",
    ]


def test_devices_get_every_permission_unless_given() -> None:
    p = plan(
        c(
            "app",
            linuxParameters={
                "devices": [
                    {"hostPath": "/dev/fuse"},
                    {"hostPath": "/dev/sda", "containerPath": "/dev/disk", "permissions": ["mknod"]},
                ]
            },
        )
    )
    assert p.container("app").create_body["HostConfig"]["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/disk", "CgroupPermissions": "m"},
    ]


def test_swap_is_added_to_the_memory_limit_and_swappiness_passed() -> None:
    p = plan(c("app", memory=256, linuxParameters={"maxSwap": 512, "swappiness": 10}))
    host = p.container("app").create_body["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["MemorySwappiness"]) == (268_435_456, 805_306_368, 10)


def test_host_pid_and_ipc_modes_and_ipc_none() -> None:
    host = plan(c("app"), pidMode="host", ipcMode="host").container("app").create_body["HostConfig"]
    assert (host["PidMode"], host["IpcMode"]) == ("host", "host")
    assert plan(c("app"), ipcMode="none").container("app").create_body["HostConfig"]["IpcMode"] == "none"
    plain = plan(c("app")).container("app").create_body["HostConfig"]
    assert "PidMode" not in plain and "IpcMode" not in plain


def test_the_plan_says_which_containers_have_a_health_check() -> None:
    p = plan(c("db", essential=False, healthCheck={"command": ["CMD", "true"]}), c("app"))
    assert p.container("db").has_health_check is True
    assert p.container("app").has_health_check is False


def test_awsvpc_pause_container_exposes_every_port() -> None:
    p = plan(
        c("app", portMappings=[{"containerPort": 8080}, {"containerPort": 53, "protocol": "udp"}]), networkMode="awsvpc"
    )
    assert p.pause is not None
    assert p.pause.create_body["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert [(port.container_port, port.protocol, port.host_port) for port in p.pause.ports] == [
        (8080, "tcp", None),
        (53, "udp", None),
    ]


FSX_AUTHORIZATION = {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:1:secret:fsx", "domain": "corp"}


@pytest.mark.parametrize(
    ("configuration", "settings", "why"),
    [
        ("efsVolumeConfiguration", {"fileSystemId": "fs-1"}, "an EFS file system cannot be mounted by a local engine"),
        (
            "fsxWindowsFileServerVolumeConfiguration",
            {"fileSystemId": "fs-1", "rootDirectory": "\\\\share", "authorizationConfig": FSX_AUTHORIZATION},
            "FSx for Windows needs a Windows container host",
        ),
        (
            "s3filesVolumeConfiguration",
            {"fileSystemArn": "arn:aws:s3files:us-east-1:1:file-system/fs-1"},
            "S3 file volumes need the ECS agent's mount helper",
        ),
    ],
)
def test_volumes_a_local_engine_cannot_mount_are_refused_saying_why(
    configuration: str, settings: dict[str, Any], why: str
) -> None:
    import botocore.session

    if configuration not in botocore.session.get_session().get_service_model("ecs").shape_for("Volume").members:
        pytest.skip(f"this botocore's ECS model has no {configuration}")
    with pytest.raises(PlanError) as info:
        plan(c("app"), volumes=[{"name": "shared", configuration: settings}])
    assert str(info.value).endswith(
        f"{configuration} (volume 'shared'): {why}; use a host path or a Docker volume for local runs"
    )
