"""The launch plan, pure: the dependency graph and the exact Engine API request per container. No Docker."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ecstask.errors import PlanError
from pytest_ecstask.lifecycle import Owner
from pytest_ecstask.plan import MIB, NANOS, PlanOptions, TaskPlan, build_plan, resolve_image
from pytest_ecstask.taskdef import DependencyCondition, parse_task_definition

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
    assert app.created_after == ("data",)
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
        "Interval": 10 * NANOS,
        "Timeout": 5 * NANOS,
        "Retries": 3,
        "StartPeriod": 0,
    }
    assert body["ExposedPorts"] == {"8080/tcp": {}, "9000/udp": {}}
    assert host["PortBindings"] == {
        "8080/tcp": [{"HostIp": "", "HostPort": ""}],
        "9000/udp": [{"HostIp": "", "HostPort": "9000"}],
    }
    assert (host["Memory"], host["MemoryReservation"], host["CpuShares"]) == (512 * MIB, 256 * MIB, 2)
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Init"] is True and host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["MKNOD"]
    assert host["Tmpfs"] == {"/scratch": "size=64m,noexec"}
    assert host["ShmSize"] == 100 * MIB
    assert host["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rw"}]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["ExtraHosts"] == ["db.local:10.0.0.5"]
    assert (host["Dns"], host["DnsSearch"]) == (["10.0.0.2"], ["corp.local"])
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is True
    assert (app.stop_timeout, app.start_timeout) == (20.0, 40.0)
    endpoint = body["NetworkingConfig"]["EndpointsConfig"][p.network.docker_name]  # type: ignore[union-attr]
    assert endpoint["Aliases"] == ["app"]


def test_ecs_defaults_for_stop_timeout_health_check_and_essential() -> None:
    p = plan(c("app", healthCheck={"command": ["CMD", "true"]}), c("side", essential=False))
    app = p.container("app")
    assert app.stop_timeout == 30.0 and app.start_timeout is None
    assert app.create_body["Healthcheck"]["Interval"] == 30 * NANOS
    assert app.create_body["Healthcheck"]["Retries"] == 3
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


def test_bridge_links_use_docker_names_and_aliases() -> None:
    p = plan(c("db"), c("app", links=["db:database", "cache"]), c("cache"), networkMode="bridge")
    endpoint = p.container("app").create_body["NetworkingConfig"]["EndpointsConfig"][p.network.docker_name]  # type: ignore[union-attr]
    assert endpoint["Links"] == [
        f"{p.container('db').docker_name}:database",
        f"{p.container('cache').docker_name}:cache",
    ]


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
    assert p.container("app").create_body["Labels"]["com.amazonaws.ecs.task-arn"] == p.task_arn


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
    assert "volumes[0] ('shared'): efsVolumeConfiguration" in text
    assert "container 'app': resourceRequirements" in text
    assert "secret 'DB_PASSWORD'" in text


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
    with pytest.raises(PlanError, match=r"container 'app': portMappings\[0\]: containerPortRange"):
        plan(c("app", portMappings=[{"containerPortRange": "8000-8010"}]), networkMode="awsvpc")
