"""The field-support list (and the table made from it) against botocore's ECS model and the planner. No Docker."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from pytest_ecstask.endpoints import EndpointInfo
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.fields import FIELDS, GROUPS, Support, field_support, markdown_table, with_table
from pytest_ecstask.lifecycle import Owner
from pytest_ecstask.plan import PlanOptions, TaskPlan, build_plan
from pytest_ecstask.taskdef import READ_ONLY_FIELDS, parse_task_definition

DOCS = Path(__file__).resolve().parent.parent / "docs"

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-password"
ENV_FILE_ARN = "arn:aws:s3:::config-bucket/app.env"
OPTIONS = PlanOptions(
    task_id="0123456789abcdef0123456789abcdef",
    owner=Owner("sess01", "host/1", "/tmp/sess01.lease"),
    created="2026-01-01T00:00:00.000Z",
    pause_image="pause:test",
    secret_values={SECRET_ARN: "s3cret"},
    environment_files={ENV_FILE_ARN: [("FROM_FILE", "1")]},
    endpoint=EndpointInfo(port=51000, control_token="t" * 32, pid=1),
    secret="per-task-secret",
)

# How to set each field: "task" goes into the task definition, "app" into the first container, "volume" into
# a volume named "data". "context" is in both the baseline and the variant; "value" only in the variant.
# "refused" sets the field the way the planner must refuse it.
EXAMPLES: dict[str, dict[str, Any]] = {
    "family": {"value": {"task": {"family": "other"}}},
    "taskRoleArn": {"value": {"task": {"taskRoleArn": "arn:aws:iam::123456789012:role/app"}}},
    "executionRoleArn": {"value": {"task": {"executionRoleArn": "arn:aws:iam::123456789012:role/exec"}}},
    "networkMode": {"value": {"task": {"networkMode": "awsvpc"}}},
    "containerDefinitions": {"value": {"task": {"extra_container": {"name": "third", "image": "third:1"}}}},
    "volumes": {"value": {"task": {"volumes": [{"name": "scratch"}]}}},
    "placementConstraints": {
        "value": {"task": {"placementConstraints": [{"type": "memberOf", "expression": "attribute:x == y"}]}}
    },
    "requiresCompatibilities": {"value": {"task": {"requiresCompatibilities": ["EC2", "FARGATE"]}}},
    "cpu": {"value": {"task": {"cpu": "256"}}},
    "memory": {"value": {"task": {"memory": "512"}}},
    "tags": {"value": {"task": {"tags": [{"key": "team", "value": "payments"}]}}},
    "pidMode": {"value": {"task": {"pidMode": "task"}}},
    "ipcMode": {"value": {"task": {"ipcMode": "task"}}},
    "proxyConfiguration": {
        "value": {"task": {"proxyConfiguration": {"type": "APPMESH", "containerName": "sidecar"}}},
    },
    "inferenceAccelerators": {
        "refused": {"task": {"inferenceAccelerators": [{"deviceName": "d1", "deviceType": "eia2.medium"}]}}
    },
    "ephemeralStorage": {"value": {"task": {"ephemeralStorage": {"sizeInGiB": 50}}}},
    "runtimePlatform": {
        "value": {"task": {"runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}}},
        "refused": {"task": {"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}}},
    },
    "enableFaultInjection": {"value": {"task": {"enableFaultInjection": True}}},
    # -- containers
    "containerDefinitions[].name": {"value": {"app": {"name": "web"}}},
    "containerDefinitions[].image": {"value": {"app": {"image": "app:2"}}},
    "containerDefinitions[].repositoryCredentials": {
        "value": {"app": {"repositoryCredentials": {"credentialsParameter": SECRET_ARN}}}
    },
    "containerDefinitions[].cpu": {"value": {"app": {"cpu": 128}}},
    "containerDefinitions[].memory": {"value": {"app": {"memory": 256}}},
    "containerDefinitions[].memoryReservation": {"value": {"app": {"memoryReservation": 128}}},
    "containerDefinitions[].links": {"value": {"app": {"links": ["sidecar"]}}},
    "containerDefinitions[].portMappings": {"value": {"app": {"portMappings": [{"containerPort": 8080}]}}},
    "containerDefinitions[].portMappings[].containerPortRange": {
        "refused": {"app": {"portMappings": [{"containerPortRange": "8000-8010"}]}}
    },
    "containerDefinitions[].portMappings[].name": {
        "context": {"app": {"portMappings": [{"containerPort": 8080}]}},
        "value": {"app": {"portMappings": [{"containerPort": 8080, "name": "http"}]}},
    },
    "containerDefinitions[].portMappings[].appProtocol": {
        "context": {"app": {"portMappings": [{"containerPort": 8080}]}},
        "value": {"app": {"portMappings": [{"containerPort": 8080, "appProtocol": "http"}]}},
    },
    "containerDefinitions[].essential": {"value": {"app": {"essential": False}}},
    "containerDefinitions[].restartPolicy": {
        "value": {"app": {"restartPolicy": {"enabled": False}}},
        "refused": {"app": {"restartPolicy": {"enabled": True, "ignoredExitCodes": [0]}}},
    },
    "containerDefinitions[].entryPoint": {"value": {"app": {"entryPoint": ["/bin/sh", "-c"]}}},
    "containerDefinitions[].command": {"value": {"app": {"command": ["serve"]}}},
    "containerDefinitions[].environment": {"value": {"app": {"environment": [{"name": "A", "value": "1"}]}}},
    "containerDefinitions[].environmentFiles": {
        "value": {"app": {"environmentFiles": [{"value": ENV_FILE_ARN, "type": "s3"}]}}
    },
    "containerDefinitions[].mountPoints": {
        "context": {"task": {"volumes": [{"name": "data"}]}},
        "value": {"app": {"mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]}},
    },
    "containerDefinitions[].volumesFrom": {"value": {"app": {"volumesFrom": [{"sourceContainer": "sidecar"}]}}},
    "containerDefinitions[].linuxParameters": {"value": {"app": {"linuxParameters": {"initProcessEnabled": True}}}},
    "containerDefinitions[].secrets": {
        "value": {"app": {"secrets": [{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}]}}
    },
    "containerDefinitions[].dependsOn": {
        "value": {"app": {"dependsOn": [{"containerName": "sidecar", "condition": "START"}]}}
    },
    "containerDefinitions[].startTimeout": {"value": {"app": {"startTimeout": 30}}},
    "containerDefinitions[].stopTimeout": {"value": {"app": {"stopTimeout": 20}}},
    "containerDefinitions[].versionConsistency": {"value": {"app": {"versionConsistency": "disabled"}}},
    "containerDefinitions[].hostname": {"value": {"app": {"hostname": "web-1"}}},
    "containerDefinitions[].user": {"value": {"app": {"user": "1000:1000"}}},
    "containerDefinitions[].workingDirectory": {"value": {"app": {"workingDirectory": "/srv"}}},
    "containerDefinitions[].disableNetworking": {"value": {"app": {"disableNetworking": True}}},
    "containerDefinitions[].privileged": {"value": {"app": {"privileged": True}}},
    "containerDefinitions[].readonlyRootFilesystem": {"value": {"app": {"readonlyRootFilesystem": True}}},
    "containerDefinitions[].dnsServers": {"value": {"app": {"dnsServers": ["10.0.0.2"]}}},
    "containerDefinitions[].dnsSearchDomains": {"value": {"app": {"dnsSearchDomains": ["internal"]}}},
    "containerDefinitions[].extraHosts": {
        "value": {"app": {"extraHosts": [{"hostname": "db.internal", "ipAddress": "10.0.0.5"}]}}
    },
    "containerDefinitions[].dockerSecurityOptions": {
        "value": {"app": {"dockerSecurityOptions": ["no-new-privileges"]}}
    },
    "containerDefinitions[].interactive": {"value": {"app": {"interactive": True}}},
    "containerDefinitions[].pseudoTerminal": {"value": {"app": {"pseudoTerminal": True}}},
    "containerDefinitions[].dockerLabels": {"value": {"app": {"dockerLabels": {"team": "payments"}}}},
    "containerDefinitions[].ulimits": {
        "value": {"app": {"ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]}}
    },
    "containerDefinitions[].logConfiguration": {
        "value": {"app": {"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/app"}}}}
    },
    "containerDefinitions[].healthCheck": {"value": {"app": {"healthCheck": {"command": ["CMD", "true"]}}}},
    "containerDefinitions[].systemControls": {
        "value": {"app": {"systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}]}}
    },
    "containerDefinitions[].resourceRequirements": {
        "refused": {"app": {"resourceRequirements": [{"type": "GPU", "value": "1"}]}}
    },
    "containerDefinitions[].firelensConfiguration": {
        "value": {"app": {"firelensConfiguration": {"type": "fluentbit"}}}
    },
    "containerDefinitions[].credentialSpecs": {
        "refused": {"app": {"credentialSpecs": ["credentialspecdomainless:arn:aws:s3:::bucket/spec.json"]}}
    },
    # -- linuxParameters
    "containerDefinitions[].linuxParameters.capabilities": {
        "value": {"app": {"linuxParameters": {"capabilities": {"add": ["NET_ADMIN"]}}}}
    },
    "containerDefinitions[].linuxParameters.devices": {
        "value": {"app": {"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}}}
    },
    "containerDefinitions[].linuxParameters.initProcessEnabled": {
        "value": {"app": {"linuxParameters": {"initProcessEnabled": True}}}
    },
    "containerDefinitions[].linuxParameters.sharedMemorySize": {
        "value": {"app": {"linuxParameters": {"sharedMemorySize": 128}}}
    },
    "containerDefinitions[].linuxParameters.tmpfs": {
        "value": {"app": {"linuxParameters": {"tmpfs": [{"containerPath": "/run", "size": 64}]}}}
    },
    "containerDefinitions[].linuxParameters.maxSwap": {
        "context": {"app": {"memory": 256}},
        "value": {"app": {"linuxParameters": {"maxSwap": 512}}},
    },
    "containerDefinitions[].linuxParameters.swappiness": {"value": {"app": {"linuxParameters": {"swappiness": 10}}}},
    # -- volumes
    "volumes[].name": {"context": {"volume": {}}, "value": {"volume": {"name": "cache"}}},
    "volumes[].host": {"context": {"volume": {}}, "value": {"volume": {"host": {"sourcePath": "/srv/data"}}}},
    "volumes[].dockerVolumeConfiguration": {
        "context": {"volume": {}},
        "value": {"volume": {"dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True}}},
    },
    "volumes[].efsVolumeConfiguration": {
        "refused": {"volume": {"efsVolumeConfiguration": {"fileSystemId": "fs-12345678"}}}
    },
    "volumes[].s3filesVolumeConfiguration": {
        "refused": {"volume": {"s3filesVolumeConfiguration": {"fileSystemArn": "arn:aws:s3files:us-east-1:1:fs/x"}}}
    },
    "volumes[].fsxWindowsFileServerVolumeConfiguration": {
        "refused": {
            "volume": {
                "fsxWindowsFileServerVolumeConfiguration": {
                    "fileSystemId": "fs-1",
                    "rootDirectory": "share",
                    "authorizationConfig": {"credentialsParameter": SECRET_ARN, "domain": "corp"},
                }
            }
        }
    },
    "volumes[].configuredAtLaunch": {"refused": {"volume": {"configuredAtLaunch": True}}},
}

# Supported fields whose effect lies outside the launch plan, and where that effect is tested instead.
EFFECT_OUTSIDE_THE_PLAN = {
    "tags": "TaskTags of /taskWithTags: tests/test_endpoints.py",
}


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _definition(*changes: dict[str, Any]) -> dict[str, Any]:
    app: dict[str, Any] = {"name": "app", "image": "app:1"}
    sidecar: dict[str, Any] = {"name": "sidecar", "image": "sidecar:1"}
    task: dict[str, Any] = {"family": "shop"}
    volume: dict[str, Any] | None = None
    extra_container = None
    for change in changes:
        _merge(app, change.get("app", {}))
        task_change = dict(change.get("task", {}))
        extra_container = task_change.pop("extra_container", extra_container)
        _merge(task, task_change)
        if "volume" in change:
            volume = volume or {"name": "data"}
            _merge(volume, change["volume"])
    containers = [app, sidecar] + ([extra_container] if extra_container else [])
    data = {**task, "containerDefinitions": containers}
    if volume is not None:
        data["volumes"] = [*data.get("volumes", []), volume]
    return data


def _plan(data: dict[str, Any]) -> TaskPlan:
    return build_plan(parse_task_definition(data, "taskdef.json"), OPTIONS)


def _plan_view(plan: TaskPlan) -> dict[str, Any]:
    view = dataclasses.asdict(plan)
    view.pop("options")
    return view


def _model_members() -> dict[str, set[str]]:
    """The field names botocore's ECS model gives each group of the table."""
    model = botocore.session.get_session().get_service_model("ecs")
    request = model.operation_model("RegisterTaskDefinition").input_shape
    container = request.members["containerDefinitions"].member
    return {
        "": set(request.members),
        "containerDefinitions[].": set(container.members),
        "containerDefinitions[].linuxParameters.": set(container.members["linuxParameters"].members),
        "volumes[].": set(request.members["volumes"].member.members),
    }


def test_every_field_of_the_model_is_in_the_list_once() -> None:
    paths = [entry.path for entry in FIELDS]
    assert len(paths) == len(set(paths)), "a field is listed twice"
    listed = {
        prefix: {p[len(prefix) :] for p in paths if p.startswith(prefix) and "." not in p[len(prefix) :]}
        for _, prefix in GROUPS
    }
    listed[""] = {p for p in paths if "." not in p and "[" not in p}
    for prefix, members in _model_members().items():
        assert listed[prefix] == members, (
            f"{prefix or 'task'}: missing {members - listed[prefix]}, unknown {listed[prefix] - members}"
        )


def test_nested_rows_name_real_model_members() -> None:
    model = botocore.session.get_session().get_service_model("ecs")
    container = model.operation_model("RegisterTaskDefinition").input_shape.members["containerDefinitions"].member
    for entry in FIELDS:
        if entry.path.startswith("containerDefinitions[].portMappings[]."):
            assert entry.path.rsplit(".", 1)[1] in container.members["portMappings"].member.members


def test_every_field_has_an_example_matching_its_support() -> None:
    assert set(EXAMPLES) == {entry.path for entry in FIELDS}
    for entry in FIELDS:
        example = EXAMPLES[entry.path]
        assert ("refused" in example) == (entry.support is Support.REFUSED or entry.path == "runtimePlatform"), (
            entry.path
        )
        if entry.support is not Support.REFUSED:
            assert "value" in example, entry.path


@pytest.mark.parametrize("entry", [e for e in FIELDS if e.support is Support.REFUSED], ids=lambda e: e.path)
def test_refused_fields_are_refused_by_name(entry: Any) -> None:
    example = EXAMPLES[entry.path]
    with pytest.raises(EcsTaskError) as caught:
        _plan(_definition(example.get("context", {}), example["refused"]))
    assert entry.path.rsplit(".", 1)[-1].rstrip("[]") in str(caught.value)


def test_refused_runtime_platform_and_accepted_linux() -> None:
    with pytest.raises(EcsTaskError, match="operatingSystemFamily"):
        _plan(_definition(EXAMPLES["runtimePlatform"]["refused"]))


@pytest.mark.parametrize("entry", [e for e in FIELDS if e.support is not Support.REFUSED], ids=lambda e: e.path)
def test_accepted_fields_plan_and_supported_ones_change_the_plan(entry: Any) -> None:
    example = EXAMPLES[entry.path]
    context = example.get("context", {})
    baseline = _plan(_definition(context))
    variant = _plan(_definition(context, example["value"]))  # must not raise
    if entry.support is Support.SUPPORTED and entry.path not in EFFECT_OUTSIDE_THE_PLAN:
        assert _plan_view(variant) != _plan_view(baseline), f"{entry.path} is listed as supported but has no effect"


def test_refused_fields_set_to_null_or_disabled_are_accepted() -> None:
    _plan(_definition({"app": {"restartPolicy": {"enabled": False}}}))
    _plan(_definition({"task": {"inferenceAccelerators": []}}))


def test_read_only_fields_are_those_describe_adds() -> None:
    model = botocore.session.get_session().get_service_model("ecs")
    request = model.operation_model("RegisterTaskDefinition").input_shape
    described = model.operation_model("DescribeTaskDefinition").output_shape.members["taskDefinition"]
    assert set(READ_ONLY_FIELDS) == set(described.members) - set(request.members)
    page = (DOCS / "field-support.md").read_text(encoding="utf-8")
    for name in READ_ONLY_FIELDS:
        assert f"`{name}`" in page
    data = {"containerDefinitions": [{"name": "app", "image": "app:1"}]}
    data.update({name: "x" for name in READ_ONLY_FIELDS if name != "revision"})
    assert parse_task_definition(data, "taskdef.json").family == "taskdef"


def test_lookup_by_path() -> None:
    assert field_support("volumes[].efsVolumeConfiguration").support is Support.REFUSED
    with pytest.raises(KeyError):
        field_support("nope")


def test_the_documented_table_is_the_generated_one() -> None:
    page = (DOCS / "field-support.md").read_text(encoding="utf-8")
    assert with_table(page) == page, "docs are stale: run python -m pytest_ecstask.fields --write docs/field-support.md"
    table = markdown_table()
    for entry in FIELDS:
        assert entry.note in table


def test_the_table_command_prints_writes_and_refuses_bad_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_ecstask.fields import BEGIN, END, main

    assert main([]) == 0
    assert capsys.readouterr().out == markdown_table()
    page = tmp_path / "page.md"
    page.write_text(f"# Fields\n\n{BEGIN}\nstale\n{END}\n\nafter\n")
    assert main(["--write", str(page)]) == 0
    written = page.read_text()
    assert "stale" not in written and markdown_table() in written and written.endswith("after\n")
    assert main(["--wrong"]) == 2
    assert "usage: python -m pytest_ecstask.fields" in capsys.readouterr().err
    page.write_text("# no markers\n")
    assert main(["--write", str(page)]) == 1
    assert f"error: {page}: the document lacks the markers" in capsys.readouterr().err
    assert page.read_text() == "# no markers\n"
    assert main(["--write", str(tmp_path / "missing.md")]) == 1
    assert "missing.md" in capsys.readouterr().err
