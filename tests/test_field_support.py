"""The field-support list (and the table made from it) against botocore's ECS model and the planner. No Docker."""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from pytest_ecstask import fields
from pytest_ecstask.endpoints import EndpointInfo
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.fields import FIELDS, GROUPS, Support, field_support, listed_names, markdown_table, with_table
from pytest_ecstask.lifecycle import Owner
from pytest_ecstask.plan import (
    CONFIG_FIELDS,
    HOST_CONFIG_FIELDS,
    PlanOptions,
    TaskPlan,
    build_plan,
    format_plan,
    plan_data,
)
from pytest_ecstask.taskdef import READ_ONLY_FIELDS, parse_task_definition

DOCS = Path(__file__).resolve().parent.parent / "docs"

# The newest botocore release whose ECS model the list was checked against. From this release on, every
# listed field must be in the model; an older model may lack the newest fields (they are refused there).
LIST_CHECKED_AGAINST = (1, 44, 8)

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
    "requiresCompatibilities": {
        "value": {
            "task": {
                "requiresCompatibilities": ["EC2", "FARGATE"],
                "networkMode": "awsvpc",
                "cpu": "256",
                "memory": "512",
            }
        }
    },
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
    "trustedExecutionConfiguration": {
        "value": {"task": {"trustedExecutionConfiguration": {"isolationMode": "SHARED"}}}
    },
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
        "value": {"app": {"restartPolicy": {"enabled": True, "ignoredExitCodes": [0]}}},
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


@functools.cache
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


def _botocore_version() -> tuple[int, ...]:
    return tuple(int(part) for part in botocore.__version__.split(".")[:3])


def _model_knows(path: str) -> bool:
    """Whether the installed botocore's model has this listed field (an old one lacks the newest fields)."""
    prefix = max((prefix for _, prefix in GROUPS if path.startswith(prefix)), key=len)
    name = path[len(prefix) :].split(".")[0].split("[")[0]
    return name in _model_members()[prefix]


def _needs_model(entry: Any) -> Any:
    return pytest.param(
        entry,
        id=entry.path,
        marks=pytest.mark.skipif(
            not _model_knows(entry.path), reason=f"botocore {botocore.__version__}'s model predates {entry.path}"
        ),
    )


def test_every_listed_field_is_in_the_model_once() -> None:
    paths = [entry.path for entry in FIELDS]
    assert len(paths) == len(set(paths)), "a field is listed twice"
    for prefix, members in _model_members().items():
        listed = listed_names(prefix)
        if _botocore_version() >= LIST_CHECKED_AGAINST:
            assert listed <= members, f"{prefix or 'task'}: listed but not in the model: {listed - members}"
        # What the model has and the list does not know yet is accepted and reported: tested below.


UNLISTED = (
    "ephemeralStorage",
    "containerDefinitions[].hostname",
    "containerDefinitions[].linuxParameters.swappiness",
    "volumes[].dockerVolumeConfiguration",
)


def _unknown_to_the_list(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A task definition setting four fields that the list is made to forget, as a newer model's would be."""
    monkeypatch.setattr(fields, "FIELDS", tuple(e for e in FIELDS if e.path not in UNLISTED))
    return _definition(
        {"task": {"ephemeralStorage": {"sizeInGiB": 50}}},
        {"app": {"hostname": "web-1", "linuxParameters": {"swappiness": 10}}},
        {"volume": {"dockerVolumeConfiguration": {"scope": "task"}}},
    )


def test_model_fields_the_list_does_not_know_are_accepted_and_reported_by_the_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = _plan(_unknown_to_the_list(monkeypatch))  # accepted: no error
    assert plan.not_reproduced == (
        "$.ephemeralStorage",
        "$.containerDefinitions[0].hostname",
        "$.containerDefinitions[0].linuxParameters.swappiness",
        "$.volumes[0].dockerVolumeConfiguration",
    )
    data = plan_data(plan)
    assert data["not_reproduced"] == list(plan.not_reproduced)
    text = format_plan(data)
    assert (
        "not reproduced locally: $.containerDefinitions[0].linuxParameters.swappiness "
        "(a field of a newer ECS model than this version knows)"
    ) in text
    assert text.count("not reproduced locally:") == 4
    # The fields the list knows are not reported.
    monkeypatch.undo()
    assert _plan(_definition({"task": {"ephemeralStorage": {"sizeInGiB": 50}}})).not_reproduced == ()


def test_model_fields_the_list_does_not_know_are_warned_about_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_ecstask.task import UnknownFieldWarning, _warn_unknown_fields

    data = _unknown_to_the_list(monkeypatch)
    data["containerDefinitions"][1]["hostname"] = "sidecar-1"  # the same field twice is one field
    plan = _plan(data)
    with pytest.warns(UnknownFieldWarning) as caught:
        _warn_unknown_fields(plan, "taskdef.json")
        _warn_unknown_fields(plan, "taskdef.json")  # the second task of the run: nothing new to say
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(
        "taskdef.json: $.ephemeralStorage, $.containerDefinitions[].hostname, "
        "$.containerDefinitions[].linuxParameters.swappiness, $.volumes[].dockerVolumeConfiguration: these fields "
        "are in botocore's ECS model but not yet known to pytest-ecstask"
    )
    assert "a test can pass here and fail on ECS" in message
    other_run = dataclasses.replace(plan, options=dataclasses.replace(plan.options, owner=Owner("sess02", "h/1", "")))
    with pytest.warns(UnknownFieldWarning):
        _warn_unknown_fields(other_run, "taskdef.json")


def test_a_listed_field_an_old_model_lacks_is_refused_with_the_upgrade_to_make(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    future = fields.FieldSupport("containerDefinitions[].futureSetting", Support.SUPPORTED, "From a newer model.")
    monkeypatch.setattr(fields, "FIELDS", (*FIELDS, future))
    with pytest.raises(EcsTaskError) as caught:
        _plan(_definition({"app": {"futureSetting": True}}))
    assert str(caught.value) == (
        "taskdef.json: $.containerDefinitions[0].futureSetting (container 'app'): unknown key 'futureSetting' in "
        f"a container definition: botocore {botocore.__version__} is installed, and its ECS model predates this "
        "field; upgrade botocore (pip install -U botocore) to run task definitions that use it"
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


@pytest.mark.parametrize("entry", [_needs_model(e) for e in FIELDS if e.support is Support.REFUSED])
def test_refused_fields_are_refused_by_name(entry: Any) -> None:
    example = EXAMPLES[entry.path]
    with pytest.raises(EcsTaskError) as caught:
        _plan(_definition(example.get("context", {}), example["refused"]))
    assert entry.path.rsplit(".", 1)[-1].rstrip("[]") in str(caught.value)


def test_refused_runtime_platform_and_accepted_linux() -> None:
    with pytest.raises(EcsTaskError, match="operatingSystemFamily"):
        _plan(_definition(EXAMPLES["runtimePlatform"]["refused"]))


@pytest.mark.parametrize("entry", [_needs_model(e) for e in FIELDS if e.support is not Support.REFUSED])
def test_accepted_fields_plan_and_supported_ones_change_the_plan(entry: Any) -> None:
    example = EXAMPLES[entry.path]
    context = example.get("context", {})
    baseline = _plan(_definition(context))
    variant = _plan(_definition(context, example["value"]))  # must not raise
    if entry.support is Support.SUPPORTED and entry.path not in EFFECT_OUTSIDE_THE_PLAN:
        assert _plan_view(variant) != _plan_view(baseline), f"{entry.path} is listed as supported but has no effect"


@pytest.mark.parametrize("row", [*CONFIG_FIELDS, *HOST_CONFIG_FIELDS], ids=lambda row: str(row[0]))
def test_every_field_the_planner_maps_one_to_one_is_listed_with_its_docker_field(row: Any) -> None:
    ecs_key, docker_key, _ = row
    # linuxParameters.capabilities.add and .drop are listed together as linuxParameters.capabilities.
    path = "containerDefinitions[]." + ecs_key.removesuffix(".add").removesuffix(".drop")
    entry = field_support(path)
    assert entry.support is not Support.REFUSED
    assert docker_key in entry.note


@pytest.mark.skipif(not _model_knows("containerDefinitions[].restartPolicy"), reason="the model predates it")
def test_refused_fields_set_to_null_or_disabled_are_accepted() -> None:
    _plan(_definition({"app": {"restartPolicy": {"enabled": False}}}))
    _plan(_definition({"task": {"inferenceAccelerators": []}}))


def test_read_only_fields_are_those_describe_adds() -> None:
    model = botocore.session.get_session().get_service_model("ecs")
    request = model.operation_model("RegisterTaskDefinition").input_shape
    described = model.operation_model("DescribeTaskDefinition").output_shape.members["taskDefinition"]
    added_by_describe = set(described.members) - set(request.members)
    assert added_by_describe <= READ_ONLY_FIELDS
    if _botocore_version() >= LIST_CHECKED_AGAINST:
        assert added_by_describe == READ_ONLY_FIELDS
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
