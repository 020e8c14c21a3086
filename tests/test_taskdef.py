"""taskdef: reading and validating task definitions. Pure: no Docker, runs in milliseconds."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import NEEDS_RESTART_POLICY
from pytest_ecstask.errors import TaskDefinitionError
from pytest_ecstask.taskdef import (
    READ_ONLY_FIELDS,
    ContainerDefinition,
    ContainerDependency,
    DependencyCondition,
    Link,
    TaskDefinition,
    TaskDefinitionWarning,
    VolumeFrom,
    image_problems,
    load_task_definition,
    parse_task_definition,
    parse_task_definition_text,
)

TASKDEFS = Path(__file__).resolve().parents[1].parent / "shared" / "taskdefs"


# --- the real task definitions in shared/taskdefs -----------------------------------------------------------


@dataclass(frozen=True)
class Loads:
    family: str
    network_mode: str
    containers: tuple[str, ...]


@dataclass(frozen=True)
class Refused:
    count: int  # exactly this many problems: a spurious extra one is a bug too
    says: tuple[str, ...]  # each of these is part of some problem


# The verdict for each file, decided from what the file really contains.
VERDICTS: dict[str, Loads | Refused] = {
    # $$$X$$$ placeholders in both role ARNs and in a secretOptions valueFrom (region in options is free text)
    "02_ecsagent-firelens-fluentbit.json": Refused(
        3,
        (
            "$.taskRoleArn: unresolved template placeholder '$$$TASK_ROLE$$$'",
            "$.executionRoleArn: unresolved template placeholder '$$$EXECUTION_ROLE$$$'",
            "$.containerDefinitions[1].logConfiguration.secretOptions[0].valueFrom (container 'logsender'): "
            "unresolved template placeholder '$$$SECRET_OPTION_PARAM$$$'",
        ),
    ),
    # describe-task-definition wrapper, efs volume, awsvpc with hostPort == containerPort
    "12_firelens-efs-wrapped-taskDefinition.json": Loads("firelens-efs-example", "awsvpc", ("nginx", "log_router")),
    # secretOptions valueFrom is an ARN built from ${Partition}/${Region}/... CloudFormation placeholders
    "13_firelens-datadog-secretoptions.json": Refused(
        1,
        (
            "$.containerDefinitions[1].logConfiguration.secretOptions[0].valueFrom (container 'app'): "
            "unresolved template placeholders '${Partition}', '${Region}', '${Account}', '${SecretId}'",
        ),
    ),
    # bare array: ${var} in name, image and secrets valueFrom; "secretOptions": null is fine
    "14_tf-tpl-app-xray-envoy-array.json": Refused(
        5,
        (
            "$[0].name (container '${container_name}'): unresolved template placeholder '${container_name}'",
            "$[0].image (container '${container_name}'): unresolved template placeholder '${container_image}'",
            "$[0].secrets[0].valueFrom (container '${container_name}'): unresolved template placeholder "
            "'${dynamodb_tables}'",
            "$[0].secrets[1].valueFrom",
            "$[2].image (container 'envoy'): unresolved template placeholder '${aws_region}'",
        ),
    ),
    # unquoted jq $VARS: a JSON syntax error; then the quoted-placeholder pass names family, images, ARNs
    "16_appmesh-colorgateway-jq-vars.json": Refused(
        7,
        (
            "line 2, column 13: invalid JSON",
            "'$NAME' at line 2, '$APP_IMAGE' at line 32",
            "'$ECS_SERVICE_LOG_GROUP' at lines 57, 92",
            "'$EXECUTION_ROLE_ARN' at line 109",
            "render it first",
            "$.family: unresolved template placeholder '$NAME'",
            "$.containerDefinitions[1].image (container 'envoy'): unresolved template placeholder '$ENVOY_IMAGE'",
        ),
    ),
    # whole containers spliced in as $ENVOY_CONTAINER_JSON: dependsOn 'envoy' cannot be checked, so is not
    "17_appmesh-redis-spliced-containers.json": Refused(
        7,
        (
            "line 2, column 13: invalid JSON",
            "'$ENVOY_CONTAINER_JSON' at line 55, '$XRAY_CONTAINER_JSON' at line 56",
            "$.containerDefinitions[1]: unresolved template placeholder '$ENVOY_CONTAINER_JSON' "
            "where an object is expected",
            "$.taskRoleArn: unresolved template placeholder '$TASK_ROLE_ARN'",
        ),
    ),
    # host bind mounts, no networkMode (bridge), capabilities
    "20_datadog-agent-sysprobe-host-mounts.json": Loads("datadog-agent-task-lee", "bridge", ("datadog-agent",)),
    # bare array, no placeholders: family from the file name
    "23_tf-array-ssm-secrets-dynamic-port.json": Loads(
        "23_tf-array-ssm-secrets-dynamic-port", "bridge", ("nginx-app",)
    ),
    # unquoted ${fargate_cpu}: syntax error; then image/cpu/memory/port placeholders, container networkMode
    "24_tf-tpl-repository-credentials-unquoted.json": Refused(
        8,
        (
            "line 5, column 12: invalid JSON",
            "'${fargate_cpu}' at line 5, '${fargate_memory}' at line 6, '${app_port}' at lines 21, 22",
            "$[0].cpu (container 'bible_beasts_prod'): unresolved template placeholder '${fargate_cpu}' "
            "where an integer is expected",
            "$[0].networkMode (container 'bible_beasts_prod'): unknown key 'networkMode' in a container "
            "definition: it is a task definition field, move it to the top level",
            "$[0].portMappings[0].hostPort",
        ),
    ),
    # {{mustache}} in role ARNs and in an image; bare SSM parameter names and links are fine
    "25_cwagent-sidecar-links-ssm-name-mustache.json": Refused(
        3,
        (
            "$.taskRoleArn: unresolved template placeholder '{{task-role-arn}}'",
            "$.containerDefinitions[0].image (container 'demo-app'): unresolved template placeholder "
            "'{{demo-app-image}}'",
        ),
    ),
    # only the role ARNs are templated; one volume mounted twice is fine
    "26_cwagent-daemon-host-mounts-dup-volume.json": Refused(
        2,
        (
            "$.taskRoleArn: unresolved template placeholder '{{task-role-arn}}'",
            "$.executionRoleArn: unresolved template placeholder '{{execution-role-arn}}'",
        ),
    ),
    # {{networkmode}} and {{launchtype}} in enum fields: reported as placeholders, not as bad enum values
    "27_cwagent-prometheus-templated-networkmode.json": Refused(
        7,
        (
            "$.networkMode: unresolved template placeholder '{{networkmode}}' where one of 'bridge', 'host', "
            "'awsvpc', 'none' is expected",
            "$.requiresCompatibilities[0]: unresolved template placeholder '{{launchtype}}'",
            "$.family: unresolved template placeholders '{{launchtype}}', '{{networkmode}}'",
            "$.containerDefinitions[0].secrets[0].valueFrom (container 'cloudwatch-agent-prometheus'): "
            "unresolved template placeholder '{{ssm-prometheus-config}}'",
        ),
    ),
    # host network mode, no port mappings
    "28_consul-server-host-network.json": Loads("consulServer", "host", ("consulServer",)),
    # [ {{command}} ]: syntax error; then links in awsvpc and a health check without CMD/CMD-SHELL
    "30_adot-ec2-sidecar-links-in-awsvpc.json": Refused(
        6,
        (
            "line 42, column 10: invalid JSON",
            "'{{command}}' at line 42",
            "$.containerDefinitions[1].links (container 'aws-otel-emitter'): links are only supported in "
            "bridge network mode, this task uses 'awsvpc'",
            "$.containerDefinitions[0].healthCheck.command[0] (container 'aws-otel-collector'): "
            "'/healthcheck' is not CMD, CMD-SHELL or NONE",
            "$.taskRoleArn: unresolved template placeholder '{{ecsTaskRoleArn}}'",
        ),
    ),
    # Go templates inside the image, the role ARNs and secrets ARNs (but not in environment values)
    "31_ecspresso-ci-gotemplate-secrets-ephemeral.json": Refused(
        8,
        (
            "$.containerDefinitions[0].image (container 'nginx'): unresolved template placeholder "
            "'{{ env `NGINX_VERSION` `latest` }}'",
            "$.containerDefinitions[1].secrets[3].valueFrom (container 'bash')",
            "$.taskRoleArn: unresolved template placeholder '{{must_env `AWS_ACCOUNT_ID`}}'",
        ),
    ),
    "33_ecsagent-shmsize.json": Loads("ecsftest-shmsize", "bridge", ("exit",)),
    # unquoted ${DDN_*_PORT} container ports: syntax error; then family/name/image/ARN/port placeholders
    "36_envsubst-gpu-triton-unquoted-ports.json": Refused(
        11,
        (
            "line 17, column 28: invalid JSON",
            "'${DDN_FLASK_HTTP_PORT}' at line 17",
            "$.containerDefinitions[0].portMappings[3].containerPort (container '${DDN_ECS_CONTAINER}'): "
            "unresolved template placeholder '${DDN_TRITON_GRPC_PORT}' where an integer is expected",
            "$.family: unresolved template placeholder '${DDN_ECS_TASK_FAMILY}'",
        ),
    ),
    # health check interval 1 s: ECS accepts 5-300
    "44_ecsagent-container-health-windows.json": Refused(
        1,
        (
            "$.containerDefinitions[0].healthCheck.interval (container 'healthcontainer'): "
            "1 is out of range: ECS accepts 5-300 seconds",
        ),
    ),
    # quoted placeholders in numeric fields, a typo'd "{NGINX_CONTAINER_PORT}", a ${APP} link target; CRLF
    "45_tf-tpl-nginx-laravel-links-string-numbers.json": Refused(
        11,
        (
            "$[0].memory (container '${NGINX_CONTAINER_NAME}'): unresolved template placeholder "
            "'${NGINX_MEMORY_SIZE}' where an integer is expected",
            "$[0].portMappings[0].containerPort (container '${NGINX_CONTAINER_NAME}'): expected an integer, "
            "got '{NGINX_CONTAINER_PORT}'",
            "$[0].links[0] (container '${NGINX_CONTAINER_NAME}'): unresolved template placeholder '${APP}'",
            "$[1].name (container '${APP}'): unresolved template placeholder '${APP}'",
        ),
    ),
    # ${...} in the image and the secrets; placeholders in environment values and log options are fine
    "46_tf-tpl-sre-bot-drop-all-caps-ulimits.json": Refused(
        4,
        (
            "$[0].image (container 'sre-bot'): unresolved template placeholder '${image}'",
            "$[0].secrets[2].valueFrom (container 'sre-bot'): unresolved template placeholder '${pickle_string}'",
        ),
    ),
    "47_ecsagent-interactive-tty.json": Loads("ecsftest-interactive-tty", "bridge", ("exit",)),
    # bare array, nginx links to the app
    "48_tf-array-rails-nginx-links-ssm-names.json": Loads(
        "48_tf-array-rails-nginx-links-ssm-names", "bridge", ("bd-webapp", "nginx")
    ),
}


def _real_files() -> list[Any]:
    if not TASKDEFS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{TASKDEFS} is absent"))]
    return [pytest.param(p, id=p.name) for p in sorted(TASKDEFS.glob("*.json"))]


@pytest.mark.skipif(not TASKDEFS.is_dir(), reason="shared/taskdefs is absent")
def test_every_real_file_has_a_verdict() -> None:
    assert sorted(p.name for p in TASKDEFS.glob("*.json")) == sorted(VERDICTS)


@pytest.mark.parametrize("path", _real_files())
def test_real_file_loads_or_is_refused_with_a_located_reason(path: Path) -> None:
    try:
        load_task_definition(path)
    except TaskDefinitionError as exc:
        assert str(path) in str(exc)
        assert exc.source == str(path)
        for problem in exc.problems:
            assert re.match(r"(\$|line \d+)", problem), problem


@pytest.mark.parametrize("path", _real_files())
def test_real_file_verdict(path: Path) -> None:
    verdict = VERDICTS[path.name]
    if isinstance(verdict, Loads):
        task = load_task_definition(path)
        assert task.family == verdict.family
        assert task.network_mode == verdict.network_mode
        assert tuple(c.name for c in task.containers) == verdict.containers
        assert task.source == str(path)
        return
    with pytest.raises(TaskDefinitionError) as info:
        load_task_definition(path)
    problems = info.value.problems
    for expected in verdict.says:
        assert any(expected in p for p in problems), f"{expected!r} not in:\n" + "\n".join(problems)
    assert len(problems) == verdict.count, "\n".join(problems)


@pytest.mark.skipif(not TASKDEFS.is_dir(), reason="shared/taskdefs is absent")
def test_wrapped_file_details() -> None:
    task = load_task_definition(TASKDEFS / "12_firelens-efs-wrapped-taskDefinition.json")
    assert task.revision is None
    assert task.task_role_arn == "arn:aws:iam::11111111111:role/ecsTaskExecutionRole"
    assert task.volumes[0]["efsVolumeConfiguration"]["fileSystemId"] == "fs-c3c9bcbb"
    assert task.container("log_router").raw["user"] == "0"
    assert task.raw["cpu"] == "512"


@pytest.mark.skipif(not TASKDEFS.is_dir(), reason="shared/taskdefs is absent")
def test_links_in_a_real_bare_array() -> None:
    task = load_task_definition(TASKDEFS / "48_tf-array-rails-nginx-links-ssm-names.json")
    assert task.container("nginx").links == (Link("bd-webapp", "bd-webapp"),)
    assert task.container("bd-webapp").essential is True
    assert task.raw["family"] == "48_tf-array-rails-nginx-links-ssm-names"


# --- helpers ------------------------------------------------------------------------------------------------


def container(name: str = "app", /, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **fields}


def task(*containers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"family": "t", "containerDefinitions": list(containers) or [container()], **fields}


def problems_of(data: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition(data, "td.json", **kwargs)
    return info.value.problems


def only_problem(data: Any) -> str:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


# --- the three input shapes ---------------------------------------------------------------------------------


def test_register_input_shape() -> None:
    td = parse_task_definition(task(container(cpu=10), networkMode="awsvpc"), "td.json")
    assert isinstance(td, TaskDefinition)
    assert (td.family, td.network_mode, td.revision, td.source) == ("t", "awsvpc", None, "td.json")
    assert td.containers == (
        ContainerDefinition("app", "busybox", True, (), (), (), {"name": "app", "image": "busybox", "cpu": 10}),
    )


def test_a_botocore_without_the_ecs_input_model_is_a_plain_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_ecstask import apimodel
    from pytest_ecstask import taskdef as taskdef_module

    monkeypatch.setattr(apimodel, "ecs_model", lambda: {"operations": {}, "shapes": {}})
    taskdef_module._register_input_shape.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"^botocore's ECS model has no RegisterTaskDefinition input$"):
            parse_task_definition(task(), "td.json")
    finally:
        # The real model again for the tests that follow.
        taskdef_module._register_input_shape.cache_clear()


def test_network_mode_defaults_to_bridge() -> None:
    assert parse_task_definition(task(), "x").network_mode == "bridge"


def test_describe_output_with_wrapper_drops_read_only_fields_and_keeps_revision_and_tags() -> None:
    inner = task(
        taskDefinitionArn="arn:aws:ecs:us-east-1:1:task-definition/t:7",
        revision=7,
        status="ACTIVE",
        requiresAttributes=[{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
        compatibilities=["EC2"],
        registeredAt="2024-01-01T00:00:00Z",
        registeredBy="arn:aws:iam::1:user/x",
        deregisteredAt="2024-01-02T00:00:00Z",
    )
    td = parse_task_definition({"taskDefinition": inner, "tags": [{"key": "k", "value": "v"}]}, "d.json")
    assert td.revision == 7
    assert not READ_ONLY_FIELDS & set(td.raw)
    assert td.raw["tags"] == [{"key": "k", "value": "v"}]
    assert set(td.raw) == {"family", "containerDefinitions", "tags"}


def test_the_first_revision_is_1() -> None:
    assert parse_task_definition(task(revision=1), "d.json").revision == 1
    assert only_problem(task(revision=0)) == "$.revision: expected a revision number (1 or more), got 0"
    assert only_problem(task(revision=True)) == "$.revision: expected a revision number (1 or more), got true"


def test_a_boto3_response_with_its_response_metadata_is_accepted() -> None:
    response = {"taskDefinition": task(revision=2), "ResponseMetadata": {"HTTPStatusCode": 200}}
    assert parse_task_definition(response, "d.json").revision == 2


def test_tags_in_the_wrapper_and_inside_it_are_one_too_many() -> None:
    tags = [{"key": "team", "value": "shop"}]
    assert only_problem({"taskDefinition": task(tags=tags), "tags": tags}) == (
        "$.tags: tags given both here and in $.taskDefinition.tags; keep one"
    )


def test_describe_output_without_wrapper_is_accepted() -> None:
    td = parse_task_definition(task(revision=3, status="INACTIVE", compatibilities=["EC2"]), "d.json")
    assert td.revision == 3
    assert "status" not in td.raw


def test_paths_inside_a_wrapper_name_the_wrapper() -> None:
    problem = only_problem({"taskDefinition": task(container(cpu="1"))})
    assert problem.startswith("$.taskDefinition.containerDefinitions[0].cpu (container 'app'): ")


def test_wrapper_tags_paths_and_bad_revision() -> None:
    problems = problems_of({"taskDefinition": task(revision="7"), "tags": "x", "extra": 1})
    assert any(p.startswith("$.extra: unknown key 'extra'") for p in problems), problems
    assert any(p.startswith("$.taskDefinition.revision: expected a revision number") for p in problems)
    assert any(p.startswith("$.tags: expected an array, got 'x'") for p in problems)
    assert len(problems) == 3


def test_bare_array_family_from_default_family_sanitized() -> None:
    td = parse_task_definition([container()], "whatever", default_family="my app.v2")
    assert td.family == "my-app-v2"
    assert td.raw["family"] == "my-app-v2"


def test_bare_array_family_from_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "23 my+task.json"
    path.write_text(json.dumps([container()]), encoding="utf-8")
    assert load_task_definition(path).family == "23-my-task"


def test_bare_array_paths_start_at_the_array() -> None:
    assert only_problem([container(), container("b", essential="no")]).startswith(
        "$[1].essential (container 'b'): expected true or false, got 'no'"
    )


def test_missing_family_is_taken_from_the_stem(tmp_path: Path) -> None:
    path = tmp_path / "svc.json"
    path.write_text(json.dumps({"containerDefinitions": [container()]}), encoding="utf-8")
    assert load_task_definition(path).family == "svc"


def test_input_that_is_neither_object_nor_array() -> None:
    assert only_problem(42).startswith("$: expected a task definition object")


# --- file reading -------------------------------------------------------------------------------------------


def test_bom_and_crlf_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "td.json"
    text = json.dumps(task(), indent=2).replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_task_definition(path).family == "t"
    assert parse_task_definition_text("\ufeff" + text, "<string>").family == "t"


def test_input_limits_accept_their_own_bounds(tmp_path: Path) -> None:
    body = json.dumps(task())
    exact = tmp_path / "exact.json"
    exact.write_text(body + " " * (1_048_576 - len(body)))  # 1 MiB exactly: read
    assert load_task_definition(exact).family == "t"
    over = tmp_path / "over.json"
    over.write_text(body + " " * (1_048_577 - len(body)))
    with pytest.raises(TaskDefinitionError) as info:
        load_task_definition(over)
    assert info.value.problems == [
        "the file is 1.0 MiB; ECS takes task definitions up to 64 KiB, and this reads files up to 1 MiB"
    ]
    # The limit is on the file's bytes: a byte-order mark counts, although it is not part of the text.
    marked = tmp_path / "marked.json"
    marked.write_bytes(b"\xef\xbb\xbf" + (body + " " * (1_048_574 - len(body))).encode())
    with pytest.raises(TaskDefinitionError) as info:
        load_task_definition(marked)
    assert info.value.problems[0].startswith("the file is 1.0 MiB;")

    def nested(levels: int) -> Any:
        value: Any = "x"
        for _ in range(levels):
            value = [value]
        return value

    # $ > containerDefinitions > the container > 28 lists > "x": 32 levels, the most that is walked.
    assert "expected a string" in only_problem(task(container(command=nested(28))))
    assert only_problem(task(container(command=nested(29)))) == (
        "$: nested more than 32 levels deep; a task definition is at most 7 deep"
    )

    def with_cpu(digits: int, sign: str = "") -> str:
        return json.dumps(task(container(cpu=0))).replace('"cpu": 0', f'"cpu": {sign}{"9" * digits}')

    assert parse_task_definition_text(with_cpu(40), "t.json").container("app").raw["cpu"] == int("9" * 40)
    assert parse_task_definition_text(with_cpu(40, "-"), "t.json").container("app").raw["cpu"] == -int("9" * 40)
    for sign in ("", "-"):
        with pytest.raises(TaskDefinitionError) as info:
            parse_task_definition_text(with_cpu(41, sign), "t.json")
        assert info.value.problems == ["line 1: a number with 41 digits; task definition numbers have at most 10"]


def test_text_past_the_limits_is_refused_before_it_is_read() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text("\ud800" + " " * 1_101_004, "t.json")  # a lone surrogate cannot be encoded
    assert info.value.problems == [
        "the file is 1.1 MiB; ECS takes task definitions up to 64 KiB, and this reads files up to 1 MiB"
    ]
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text(" " * 1_100_900, "t.json")  # 1.0499 MiB: the size is rounded, not cut
    assert info.value.problems[0].startswith("the file is 1.0 MiB;")
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text("[" * 100_000 + "]" * 100_000, "t.json")
    assert info.value.problems == [
        "nested too deeply to read (thousands of levels); a task definition is at most 7 deep"
    ]


def test_a_lone_surrogate_is_located_by_its_character() -> None:
    data = task(container(dockerLabels={"k\ud800": "v"}))
    assert only_problem(data) == (
        "$.containerDefinitions[0].dockerLabels (container 'app'): a key is not valid Unicode: character 2 is a "
        "lone surrogate (a \\uD800-\\uDFFF escape without its pair), which cannot be printed or sent to Docker"
    )


@pytest.mark.parametrize(
    ("text", "source", "hint"),
    [
        ("- name: app\n  image: busybox\n", "t.yaml", True),  # by its name
        ("# by hand\nfamily: shop\n", "shop.template", True),  # by its first line
        ("- name: app\n  image: busybox\n", "t.json", False),
    ],
)
def test_yaml_is_told_apart_by_its_name_or_its_first_line(text: str, source: str, hint: bool) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text(text, source)
    said = any("this looks like YAML; convert it first" in p for p in info.value.problems)
    assert said is hint


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(TaskDefinitionError) as info:
        load_task_definition(missing)
    assert str(info.value).startswith(f"{missing}: cannot read the file")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('[\n{"name": "caf\xe9"}]'.encode("latin-1"))
    with pytest.raises(TaskDefinitionError) as info:
        load_task_definition(path)
    assert info.value.problems == [
        "line 2: not UTF-8 text (invalid continuation byte at byte offset 15); save the file as UTF-8"
    ]


# --- JSON syntax errors and templates -----------------------------------------------------------------------


def test_syntax_error_names_line_and_column() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text('{\n  "family": "x",\n  "containerDefinitions": [}\n', "t.json")
    assert info.value.problems == ["line 3, column 28: invalid JSON: Expecting value"]


def test_syntax_error_names_every_unquoted_placeholder_of_every_style() -> None:
    text = "\n".join(
        [
            "{",
            '  "family": ${family},',
            '  "taskRoleArn": $$$TASK_ROLE$$$,',
            '  "containerDefinitions": [',
            '    {"name": "app", "image": "busybox", "cpu": {{ cpu }}, "memory": ${family}},',
            "    $SIDECAR_JSON",
            "  ]",
            "}",
        ]
    )
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text(text, "t.json")
    problems = info.value.problems
    assert problems[0] == "line 2, column 13: invalid JSON: Expecting value"
    assert problems[1].startswith(
        "line 2: unresolved template placeholders outside JSON strings: '${family}' at lines 2, 5, "
        "'$$$TASK_ROLE$$$' at line 3, '{{ cpu }}' at line 5, '$SIDECAR_JSON' at line 6; this is a template: "
        "render it first"
    )
    # with the placeholders quoted, the rest is checked too, at the paths of the file as given
    assert (
        "$.containerDefinitions[0].cpu (container 'app'): unresolved template placeholder '{{ cpu }}'" in (problems[4])
    )
    assert problems[6].startswith(
        "$.containerDefinitions[1]: unresolved template placeholder '$SIDECAR_JSON' where an object is expected"
    )
    assert len(problems) == 7


def test_placeholders_inside_strings_do_not_count_as_unquoted() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text('{"family": "${x}", "a": "{{ y }}" "b": 1}', "t.json")
    assert info.value.problems == ["line 1, column 35: invalid JSON: Expecting ',' delimiter"]


def test_a_missing_comma_between_two_strings_hides_no_placeholder() -> None:
    text = '{"family": "t", "containerDefinitions": [{"name": "a", "image": "x", "command": ["echo""${X}"]}]}'
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text(text, "t.json")
    assert info.value.problems == ["line 1, column 88: invalid JSON: Expecting ',' delimiter"]


@pytest.mark.parametrize(
    ("text", "listed"),
    [
        # An empty string, a string holding the letter X, escaped quotes: each ends where JSON ends it.
        ('{"family": "", "containerDefinitions": ${DEFS}}', "'${DEFS}' at line 1"),
        ('{"family": "X-${F}",\n "cpu": ${CPU}}', "'${CPU}' at line 2"),
        ('{"family": "say \\"${F}\\" now", "cpu": ${CPU}}', "'${CPU}' at line 1"),
    ],
)
def test_only_placeholders_outside_strings_are_listed_as_unquoted(text: str, listed: str) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text(text, "t.json")
    line = listed.rsplit(" ", 1)[1]
    assert info.value.problems[1].startswith(
        f"line {line}: unresolved template placeholders outside JSON strings: {listed}; this is a template"
    )


def test_second_syntax_error_stops_the_check_after_the_placeholder_list() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition_text('{"family": ${x}, "containerDefinitions": [,]}', "t.json")
    assert len(info.value.problems) == 2
    assert "'${x}' at line 1" in info.value.problems[1]


PLACEHOLDERS = ["${app}", "{{ app }}", "{{app}}", "$APP", "$$$APP$$$"]

# Members where a literal placeholder cannot be meant, each with how to put a value there.
STRICT: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "family": ("$.family", lambda v: task(family=v)),
    "networkMode": ("$.networkMode", lambda v: task(networkMode=v)),
    "taskRoleArn": ("$.taskRoleArn", lambda v: task(taskRoleArn=v)),
    "executionRoleArn": ("$.executionRoleArn", lambda v: task(executionRoleArn=v)),
    "container name": ("$.containerDefinitions[0].name", lambda v: task(container(v))),
    "image": ("$.containerDefinitions[0].image", lambda v: task(container(image=v))),
    "integer": ("$.containerDefinitions[0].memory", lambda v: task(container(memory=v))),
    "boolean": ("$.containerDefinitions[0].essential", lambda v: task(container(essential=v))),
    "enum in a list": ("$.requiresCompatibilities[0]", lambda v: task(requiresCompatibilities=[v])),
    "dependsOn target": (
        "$.containerDefinitions[0].dependsOn[0].containerName",
        lambda v: task(container(dependsOn=[{"containerName": v, "condition": "START"}])),
    ),
    "dependsOn condition": (
        "$.containerDefinitions[1].dependsOn[0].condition",
        lambda v: task(container(), container("b", dependsOn=[{"containerName": "app", "condition": v}])),
    ),
    "link": ("$.containerDefinitions[0].links[0]", lambda v: task(container(links=[v]))),
    "volumesFrom": (
        "$.containerDefinitions[0].volumesFrom[0].sourceContainer",
        lambda v: task(container(volumesFrom=[{"sourceContainer": v}])),
    ),
    "secret valueFrom": (
        "$.containerDefinitions[0].secrets[0].valueFrom",
        lambda v: task(container(secrets=[{"name": "S", "valueFrom": v}])),
    ),
    "secretOptions valueFrom": (
        "$.containerDefinitions[0].logConfiguration.secretOptions[0].valueFrom",
        lambda v: task(
            container(logConfiguration={"logDriver": "awslogs", "secretOptions": [{"name": "k", "valueFrom": v}]})
        ),
    ),
    "repositoryCredentials": (
        "$.containerDefinitions[0].repositoryCredentials.credentialsParameter",
        lambda v: task(container(repositoryCredentials={"credentialsParameter": v})),
    ),
}


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
@pytest.mark.parametrize("member", list(STRICT))
def test_placeholder_in_a_strict_member_is_named_as_such(member: str, placeholder: str) -> None:
    path, make = STRICT[member]
    problem = only_problem(make(placeholder))
    assert problem.startswith(path)
    assert f"unresolved template placeholder {placeholder!r}" in problem
    assert "render the template first" in problem


def test_placeholder_embedded_in_an_arn_is_named() -> None:
    problem = only_problem(task(executionRoleArn="arn:aws:iam::${account}:role/x"))
    assert problem.startswith("$.executionRoleArn: unresolved template placeholder '${account}' in 'arn:aws")


def test_placeholders_in_free_text_are_left_alone() -> None:
    td = parse_task_definition(
        task(
            container(
                environment=[{"name": "HOME_COPY", "value": "$HOME"}, {"name": "X", "value": "${x}"}],
                command=["sh", "-c", 'echo "$APP ${APP} {{ x }} $$$Y$$$"'],
                entryPoint=["/bin/sh", "-c", "exec $CMD"],
                healthCheck={"command": ["CMD-SHELL", "test -n $READY"]},
                dockerLabels={"tpl": "${label}"},
                workingDirectory="/srv/${app}",
                logConfiguration={"logDriver": "awslogs", "options": {"awslogs-region": "${region}"}},
            )
        ),
        "t.json",
    )
    assert td.containers[0].raw["command"][2] == 'echo "$APP ${APP} {{ x }} $$$Y$$$"'


def test_brace_typo_is_a_type_error_not_a_placeholder() -> None:
    problem = only_problem(task(container(portMappings=[{"containerPort": "{PORT}"}])))
    assert problem == (
        "$.containerDefinitions[0].portMappings[0].containerPort (container 'app'): expected an integer, got '{PORT}'"
    )


# --- the API model ------------------------------------------------------------------------------------------


def test_unknown_key_suggests_the_close_one() -> None:
    assert only_problem(task(container(imagee="x"))) == (
        "$.containerDefinitions[0].imagee (container 'app'): unknown key 'imagee' in a container definition; "
        "did you mean 'image'?"
    )


def test_unknown_key_close_to_many_suggests_three() -> None:
    assert only_problem(task(container(envirPoints="x"))) == (
        "$.containerDefinitions[0].envirPoints (container 'app'): unknown key 'envirPoints' in a container "
        "definition; did you mean 'entryPoint' or 'environment' or 'environmentFiles'?"
    )


def test_unknown_key_without_a_close_one_lists_the_valid_keys() -> None:
    problem = only_problem(task(container(healthCheck={"command": ["CMD", "true"], "zzz": 1})))
    assert problem.startswith("$.containerDefinitions[0].healthCheck.zzz (container 'app'): unknown key 'zzz'")
    assert problem.endswith("valid keys: command, interval, retries, startPeriod, timeout")


def test_task_level_key_inside_a_container_says_where_it_belongs() -> None:
    assert "it is a task definition field, move it to the top level" in only_problem(
        task(container(networkMode="awsvpc"))
    )


def test_container_key_at_task_level_says_where_it_belongs() -> None:
    assert only_problem(task(image="busybox")) == (
        "$.image: unknown key 'image' in the task definition: it is a container definition field, "
        "move it into a container of containerDefinitions"
    )


def test_name_and_image_are_required_per_container() -> None:
    problems = problems_of(task({"name": "a"}, {"image": "busybox"}))
    assert problems == [
        "$.containerDefinitions[0] (container 'a'): missing 'image' (required in a container definition)",
        "$.containerDefinitions[1]: missing 'name' (required in a container definition)",
    ]


def test_required_members_of_nested_structures_come_from_the_model() -> None:
    problems = problems_of(task(container("a"), container("b", dependsOn=[{"containerName": "a"}])))
    assert problems == [
        "$.containerDefinitions[1].dependsOn[0] (container 'b'): missing 'condition' (required in a "
        "ContainerDependency)"
    ]


def test_containerDefinitions_is_required() -> None:
    assert only_problem({"family": "x"}) == ("$: missing 'containerDefinitions' (required in the task definition)")


@pytest.mark.parametrize(
    ("value", "shown"),
    [("256", "'256'"), (True, "true"), (2.5, "2.5"), ([1], "[1]"), ({"a": 1}, '{"a": 1}')],
)
def test_integer_members_take_only_integers(value: Any, shown: str) -> None:
    assert only_problem(task(container(memory=value))) == (
        f"$.containerDefinitions[0].memory (container 'app'): expected an integer, got {shown}"
    )


def test_integer_ranges_of_the_model_accept_their_bounds() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecs")
    if "sharingStrategy" not in model.shape_for("ResourceRequirement").members:
        pytest.skip("this botocore's ECS model predates GPU sharing strategies, the only bounded integers")

    def gpu(percent: int) -> dict[str, Any]:
        mps = {"memory": 1, "maxComputePercent": percent}
        return task(
            container(resourceRequirements=[{"type": "GPU", "value": "1", "sharingStrategy": {"nvidiaMps": mps}}])
        )

    parse_task_definition(gpu(1), "td.json")
    parse_task_definition(gpu(100), "td.json")
    for bad in (0, 101):
        assert only_problem(gpu(bad)) == (
            "$.containerDefinitions[0].resourceRequirements[0].sharingStrategy.nvidiaMps.maxComputePercent "
            f"(container 'app'): {bad} is out of range: expected 1-100"
        )


def test_task_level_cpu_and_memory_are_strings_in_the_model() -> None:
    assert parse_task_definition(task(cpu="256", memory="512"), "x").raw["memory"] == "512"
    assert only_problem(task(cpu=256)) == "$.cpu: expected a string, got 256"


def test_booleans_are_not_strings() -> None:
    assert only_problem(task(container(essential="true"))).endswith("expected true or false, got 'true'")


def test_enum_values_come_from_the_model() -> None:
    assert only_problem(task(container(portMappings=[{"containerPort": 80, "protocol": "TCP"}]))) == (
        "$.containerDefinitions[0].portMappings[0].protocol (container 'app'): 'TCP' is not one of 'tcp', "
        "'udp'; did you mean 'tcp'?"
    )


def test_an_enum_value_like_none_of_the_choices_lists_them_alone() -> None:
    assert (
        only_problem(task(networkMode="zzz")) == "$.networkMode: 'zzz' is not one of 'bridge', 'host', 'awsvpc', 'none'"
    )


def test_a_map_given_as_text_is_a_type_error() -> None:
    assert only_problem(task(container(dockerLabels="team=shop"))) == (
        "$.containerDefinitions[0].dockerLabels (container 'app'): expected an object, got 'team=shop'"
    )


def test_a_map_key_that_is_not_a_string_is_reported() -> None:
    # JSON keys are always strings; data from YAML or from Python code need not be.
    assert only_problem(task(container(dockerLabels={1: "x", "ok": "y"}))) == (
        "$.containerDefinitions[0].dockerLabels (container 'app'): key 1 is not a string"
    )


def test_map_values_are_checked_and_odd_keys_quoted_in_the_path() -> None:
    assert only_problem(task(container(dockerLabels={"com.example/x": 1}))) == (
        "$.containerDefinitions[0].dockerLabels['com.example/x'] (container 'app'): expected a string, got 1"
    )


def test_model_list_and_string_limits() -> None:
    problems = problems_of(task(tags=[{"key": f"k{i}", "value": "v"} for i in range(51)] + [{"key": ""}]))
    assert problems == [
        "$.tags: 52 items, at most 50 allowed",
        "$.tags[51].key: '' is shorter than 1 characters",
    ]


def test_model_limits_accept_their_own_bounds() -> None:
    tags = [{"key": "k", "value": ""}, {"key": "k" * 128, "value": "v" * 256}]
    tags += [{"key": f"k{i}", "value": "v"} for i in range(48)]
    td = parse_task_definition(task(tags=tags), "td.json")
    assert len(td.raw["tags"]) == 50
    assert parse_task_definition(task(tags=[]), "td.json").raw["tags"] == []


def test_tag_key_and_value_one_past_their_limits() -> None:
    assert problems_of(task(tags=[{"key": "k" * 129, "value": "v" * 257}])) == [
        "$.tags[0].key: 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk... is longer than 128 characters",
        "$.tags[0].value: 'vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv... is longer than 256 characters",
    ]


def test_null_optional_member_is_absent_and_dropped_from_raw() -> None:
    td = parse_task_definition(
        task(container(logConfiguration={"logDriver": "awslogs", "secretOptions": None}), cpu=None), "x"
    )
    assert td.containers[0].raw["logConfiguration"] == {"logDriver": "awslogs"}
    assert "cpu" not in td.raw


def test_null_required_member_is_missing() -> None:
    assert only_problem(task(container(image=None))) == (
        "$.containerDefinitions[0] (container 'app'): missing 'image' (required in a container definition)"
    )


def test_null_list_item_is_a_type_error() -> None:
    assert only_problem(task(container(links=[None]))) == (
        "$.containerDefinitions[0].links[0] (container 'app'): expected a string, got null"
    )


def test_long_values_are_truncated() -> None:
    problem = only_problem(task(container(cpu="x" * 500)))
    assert problem.endswith("got '" + "x" * 56 + "...")


# --- ECS rules beyond types ---------------------------------------------------------------------------------


def test_several_problems_are_reported_together() -> None:
    data = task(
        container("a", cpu="1", dependsOn=[{"containerName": "ghost", "condition": "START"}]),
        container("a", healthCheck={"command": ["CMD", "true"], "retries": 0}),
    )
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_definition(data, "many.json")
    assert info.value.problems == [
        "$.containerDefinitions[0].cpu (container 'a'): expected an integer, got '1'",
        "$.containerDefinitions[1].name (container 'a'): duplicate container name 'a' "
        "(also at $.containerDefinitions[0])",
        "$.containerDefinitions[0].dependsOn[0].containerName (container 'a'): 'ghost' is not a container of "
        "this task definition (containers: 'a')",
        "$.containerDefinitions[1].healthCheck.retries (container 'a'): 0 is out of range: ECS accepts 1-10",
    ]
    assert str(info.value).startswith("many.json: 4 problems:\n  - $.containerDefinitions[0].cpu")


def test_container_name_pattern() -> None:
    assert only_problem(task(container("my app"))) == (
        "$.containerDefinitions[0].name (container 'my app'): 'my app' is not a valid container name: "
        "use 1-255 letters, digits, '_' or '-'"
    )


@pytest.mark.parametrize("family", ["", "my.family", "x" * 256])
def test_family_pattern(family: str) -> None:
    problem = only_problem(task(family=family))
    assert problem.startswith("$.family: '")
    assert problem.endswith("is not a valid family: use 1-255 letters, digits, '_' or '-'")


def test_at_least_one_essential_container() -> None:
    assert only_problem(task(container("a", essential=False), container("b", essential=False))) == (
        '$.containerDefinitions: no essential container: ECS needs at least one container with "essential": '
        "true (the default)"
    )


def test_no_containers() -> None:
    assert only_problem(task(containerDefinitions=[])).startswith("$.containerDefinitions: no containers")


def test_essential_defaults_true_and_dependencies_are_typed() -> None:
    td = parse_task_definition(
        task(
            container("db", essential=False),
            container(
                "app",
                dependsOn=[{"containerName": "db", "condition": "SUCCESS"}],
                links=["db:database"],
                volumesFrom=[{"sourceContainer": "db", "readOnly": True}],
            ),
        ),
        "x",
    )
    app = td.container("app")
    assert (td.container("db").essential, app.essential) == (False, True)
    assert app.depends_on == (ContainerDependency("db", DependencyCondition.SUCCESS),)
    assert app.links == (Link("db", "database"),)
    assert app.volumes_from == (VolumeFrom("db", True),)


def test_unknown_container_lookup_is_a_clear_key_error() -> None:
    td = parse_task_definition(task(), "x")
    with pytest.raises(KeyError, match=r"task definition 't' has no container 'web' \(containers: 'app'\)"):
        td.container("web")
    two = parse_task_definition(task(container("app"), container("db")), "x")
    with pytest.raises(KeyError, match=r"has no container 'web' \(containers: 'app', 'db'\)"):
        two.container("web")


def test_result_is_hashable() -> None:
    td = parse_task_definition(task(volumes=[{"name": "v"}]), "x")
    assert hash(td) == hash(parse_task_definition(task(volumes=[{"name": "v"}]), "x"))


@pytest.mark.parametrize(
    ("field", "entry", "path"),
    [
        ("dependsOn", {"containerName": "db", "condition": "START"}, "dependsOn[0].containerName"),
        ("links", "db", "links[0]"),
        ("volumesFrom", {"sourceContainer": "db"}, "volumesFrom[0].sourceContainer"),
    ],
)
def test_reference_targets_must_exist(field: str, entry: Any, path: str) -> None:
    assert only_problem(task(container(), container("web", **{field: [entry]}))) == (
        f"$.containerDefinitions[1].{path} (container 'web'): 'db' is not a container of this task "
        "definition (containers: 'app', 'web')"
    )


@pytest.mark.parametrize(
    ("field", "entry", "verb"),
    [
        ("dependsOn", {"containerName": "app", "condition": "START"}, "depend on"),
        ("links", "app:me", "link to"),
        ("volumesFrom", {"sourceContainer": "app"}, "take volumes from"),
    ],
)
def test_reference_targets_must_not_be_the_container_itself(field: str, entry: Any, verb: str) -> None:
    assert only_problem(task(container(**{field: [entry]}))).endswith(
        f"'app' is this container itself: a container cannot {verb} itself"
    )


def test_reference_typo_suggests_the_close_name() -> None:
    assert only_problem(task(container("database"), container(links=["databse"]))).endswith("did you mean 'database'?")


@pytest.mark.parametrize("link", ["a:b:c", ":alias", "db:"])
def test_link_format(link: str) -> None:
    assert only_problem(task(container("db"), container(links=[link]))).endswith(
        "is not a link: expected 'name' or 'name:alias'"
    )


def test_link_alias_pattern() -> None:
    assert "link alias 'my.db' is not valid" in only_problem(task(container("db"), container(links=["db:my.db"])))


def test_mount_point_names_a_volume() -> None:
    assert only_problem(
        task(
            container(mountPoints=[{"sourceVolume": "data", "containerPath": "/d"}]),
            volumes=[{"name": "logs"}, {"name": "cache"}],
        )
    ) == (
        "$.containerDefinitions[0].mountPoints[0].sourceVolume (container 'app'): 'data' is not a volume of "
        "this task definition (volumes: 'logs', 'cache'); add it to \"volumes\""
    )


def test_mount_point_needs_source_volume_and_container_path() -> None:
    assert problems_of(task(container(mountPoints=[{"readOnly": True}]))) == [
        "$.containerDefinitions[0].mountPoints[0] (container 'app'): missing 'sourceVolume' (required in a MountPoint)",
        "$.containerDefinitions[0].mountPoints[0] (container 'app'): missing 'containerPath' (required in a "
        "MountPoint)",
    ]


def test_nameless_volume_does_not_hide_unknown_mount_sources() -> None:
    data = task(container(mountPoints=[{"sourceVolume": "data", "containerPath": "/d"}]), volumes=[{"host": {}}])
    assert "'data' is not a volume of this task definition (volumes: none)" in only_problem(data)


def test_templated_container_name_may_be_the_dependency_target() -> None:
    # Only the placeholder is reported: the templated name may well be 'db' once rendered.
    data = task(container("${NAME}"), container("web", dependsOn=[{"containerName": "db", "condition": "START"}]))
    assert only_problem(data) == (
        "$.containerDefinitions[0].name (container '${NAME}'): unresolved template placeholder '${NAME}'; "
        "render the template first"
    )


def test_volume_name_pattern() -> None:
    assert only_problem(task(volumes=[{"name": "bad name!"}])) == (
        "$.volumes[0].name: 'bad name!' is not a valid volume name: use 1-255 letters, digits, '_' or '-'"
    )


def test_templated_volume_name_may_be_the_mount_source() -> None:
    data = task(container(mountPoints=[{"sourceVolume": "data", "containerPath": "/d"}]), volumes=[{"name": "${v}"}])
    assert only_problem(data).startswith("$.volumes[0].name: unresolved template placeholder '${v}'")


def test_volume_names_are_unique() -> None:
    assert only_problem(task(volumes=[{"name": "v"}, {"name": "v", "host": {}}])) == (
        "$.volumes[1].name: duplicate volume name 'v' (also at $.volumes[0])"
    )


def test_dependency_cycle_is_named() -> None:
    data = task(
        container("a", dependsOn=[{"containerName": "b", "condition": "START"}]),
        container("b", dependsOn=[{"containerName": "a", "condition": "START"}]),
    )
    assert only_problem(data).startswith("$.containerDefinitions[0] (container 'a'): dependency cycle a -> b -> a")


def test_cycle_through_links_and_volumes_from() -> None:
    data = task(
        container("a", links=["b"]),
        container("b", volumesFrom=[{"sourceContainer": "c"}]),
        container("c", dependsOn=[{"containerName": "a", "condition": "START"}]),
        container("d", links=["a"]),
    )
    assert only_problem(data).startswith("$.containerDefinitions[0] (container 'a'): dependency cycle a -> b -> c -> a")


def test_a_cycle_found_after_an_acyclic_branch_names_only_the_cycle() -> None:
    # a's first dependency (x) is explored and done before the walk goes round a -> b -> a.
    data = task(
        container(
            "a", dependsOn=[{"containerName": "x", "condition": "START"}, {"containerName": "b", "condition": "START"}]
        ),
        container("x"),
        container("b", dependsOn=[{"containerName": "a", "condition": "START"}]),
    )
    assert only_problem(data) == (
        "$.containerDefinitions[0] (container 'a'): dependency cycle a -> b -> a (dependsOn, links and "
        "volumesFrom all order startup): none of them can start"
    )


def test_a_dependency_shared_by_two_containers_is_not_a_cycle() -> None:
    data = task(
        container("a", dependsOn=[{"containerName": "x", "condition": "START"}]),
        container("b", dependsOn=[{"containerName": "x", "condition": "START"}], links=["a"]),
        container("x", essential=False, volumesFrom=[{"sourceContainer": "y"}]),
        container("y", essential=False),
    )
    assert [c.name for c in parse_task_definition(data, "td.json").containers] == ["a", "b", "x", "y"]


def test_a_cycle_is_told_from_the_container_listed_first() -> None:
    data = task(
        container("p", dependsOn=[{"containerName": "q", "condition": "START"}]),
        container("r", dependsOn=[{"containerName": "q", "condition": "START"}]),
        container("q", dependsOn=[{"containerName": "r", "condition": "START"}]),
    )
    assert only_problem(data).startswith("$.containerDefinitions[1] (container 'r'): dependency cycle r -> q -> r (")


def test_two_cycles_through_one_container_are_each_named() -> None:
    data = task(
        container(
            "a", dependsOn=[{"containerName": "b", "condition": "START"}, {"containerName": "c", "condition": "START"}]
        ),
        container("b", dependsOn=[{"containerName": "a", "condition": "START"}]),
        container("c", dependsOn=[{"containerName": "a", "condition": "START"}]),
    )
    assert [p.split(" (dependsOn")[0] for p in problems_of(data)] == [
        "$.containerDefinitions[0] (container 'a'): dependency cycle a -> b -> a",
        "$.containerDefinitions[0] (container 'a'): dependency cycle a -> c -> a",
    ]


def test_healthy_needs_a_health_check() -> None:
    data = task(container("db"), container(dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]))
    assert only_problem(data) == (
        "$.containerDefinitions[1].dependsOn[0].condition (container 'app'): HEALTHY needs a healthCheck on "
        "container 'db', which has none; add one or depend on START"
    )


def test_healthy_on_a_disabled_health_check() -> None:
    data = task(
        container("db", healthCheck={"command": ["NONE"]}),
        container(dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]),
    )
    assert "HEALTHY needs a healthCheck on container 'db'" in only_problem(data)


def test_healthy_on_a_health_check_with_nothing_to_run_says_only_that() -> None:
    data = task(
        container("db", healthCheck={"command": ["CMD"]}),
        container(dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]),
    )
    assert (
        only_problem(data)
        == "$.containerDefinitions[0].healthCheck.command (container 'db'): nothing to run after 'CMD'"
    )


def test_healthy_with_a_health_check_loads() -> None:
    data = task(
        container("db", healthCheck={"command": ["CMD-SHELL", "true"]}),
        container(dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]),
    )
    assert parse_task_definition(data, "x").container("app").depends_on[0].condition is DependencyCondition.HEALTHY


@pytest.mark.parametrize("condition", ["COMPLETE", "SUCCESS"])
def test_complete_and_success_not_on_an_essential_container(condition: str) -> None:
    data = task(container("init"), container(dependsOn=[{"containerName": "init", "condition": condition}]))
    assert only_problem(data) == (
        f"$.containerDefinitions[1].dependsOn[0].condition (container 'app'): {condition} on essential "
        f"container 'init': ECS refuses COMPLETE and SUCCESS dependencies on essential containers; mark "
        "'init' \"essential\": false"
    )


@pytest.mark.parametrize(
    ("command", "path", "message"),
    [
        ([], "healthCheck.command", "empty; expected ['CMD', executable, args...]"),
        (["/healthcheck", "-v"], "healthCheck.command[0]", "'/healthcheck' is not CMD, CMD-SHELL or NONE"),
        (["CMD-SHELL"], "healthCheck.command", "nothing to run after 'CMD-SHELL'"),
    ],
)
def test_health_check_command(command: list[str], path: str, message: str) -> None:
    problem = only_problem(task(container(healthCheck={"command": command})))
    assert problem.startswith(f"$.containerDefinitions[0].{path} (container 'app'): {message}")


def test_health_check_command_without_prefix_suggests_cmd_shell() -> None:
    assert only_problem(task(container(healthCheck={"command": ["curl", "-f", "localhost"]}))).endswith(
        'did you mean ["CMD-SHELL", "curl -f localhost"]?'
    )


@pytest.mark.parametrize(
    ("key", "bad", "good"),
    [
        ("interval", 4, 5),
        ("interval", 301, 300),
        ("timeout", 1, 2),
        ("timeout", 61, 60),
        ("retries", 0, 1),
        ("retries", 11, 10),
        ("startPeriod", -1, 0),
        ("startPeriod", 301, 300),
    ],
)
def test_health_check_ranges(key: str, bad: int, good: int) -> None:
    def make(value: int) -> dict[str, Any]:
        return task(container(healthCheck={"command": ["CMD", "true"], key: value}))

    assert only_problem(make(bad)).startswith(
        f"$.containerDefinitions[0].healthCheck.{key} (container 'app'): {bad} is out of range"
    )
    parse_task_definition(make(good), "x")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"startTimeout": -1}, "startTimeout (container 'app'): -1 is negative"),
        ({"stopTimeout": -1}, "stopTimeout (container 'app'): -1 is out of range: ECS accepts 0-120 seconds"),
        ({"stopTimeout": 121}, "stopTimeout (container 'app'): 121 is out of range"),
    ],
)
def test_start_and_stop_timeouts(fields: dict[str, int], message: str) -> None:
    assert only_problem(task(container(**fields))).startswith(f"$.containerDefinitions[0].{message}")
    parse_task_definition(task(container(startTimeout=0, stopTimeout=120)), "x")
    parse_task_definition(task(container(stopTimeout=0)), "x")


def test_awsvpc_host_port_must_equal_container_port() -> None:
    data = task(container(portMappings=[{"containerPort": 80, "hostPort": 8080}]), networkMode="awsvpc")
    assert only_problem(data) == (
        "$.containerDefinitions[0].portMappings[0].hostPort (container 'app'): "
        "8080 differs from containerPort 80: in awsvpc network mode ECS requires them equal "
        "(or hostPort left out)"
    )


def test_awsvpc_host_port_zero_or_equal_or_absent_is_fine() -> None:
    mappings = [
        {"containerPort": 80, "hostPort": 0},
        {"containerPort": 81, "hostPort": 81},
        {"containerPort": 82},
    ]
    parse_task_definition(task(container(portMappings=mappings), networkMode="awsvpc"), "x")


def test_host_mode_host_port_must_equal_container_port() -> None:
    data = task(container(portMappings=[{"containerPort": 80, "hostPort": 0}]), networkMode="host")
    assert "in host network mode ECS requires them equal" in only_problem(data)


def test_bridge_mode_maps_ports_freely() -> None:
    parse_task_definition(task(container(portMappings=[{"containerPort": 80, "hostPort": 8080}])), "x")


def test_links_only_in_bridge_mode() -> None:
    data = task(container("db"), container(links=["db"]), networkMode="awsvpc")
    assert only_problem(data).startswith(
        "$.containerDefinitions[1].links (container 'app'): links are only supported in bridge network mode, "
        "this task uses 'awsvpc'"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hostname", "web"),
        ("extraHosts", [{"hostname": "a", "ipAddress": "10.0.0.1"}]),
        ("dnsServers", ["10.0.0.2"]),
        ("dnsSearchDomains", ["example.com"]),
    ],
)
def test_awsvpc_refuses_per_container_network_settings(key: str, value: Any) -> None:
    assert only_problem(task(container(**{key: value}), networkMode="awsvpc")) == (
        f"$.containerDefinitions[0].{key} (container 'app'): ECS refuses {key!r} in awsvpc network mode"
    )
    parse_task_definition(task(container(**{key: value})), "x")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"containerPort": 0}, "containerPort (container 'app'): 0 is out of range: expected 1-65535"),
        ({"containerPort": 65536}, "containerPort (container 'app'): 65536 is out of range"),
        ({"containerPort": 80, "hostPort": 65536}, "hostPort (container 'app'): 65536 is out of range"),
        ({"hostPort": 80}, "(container 'app'): missing 'containerPort' (or 'containerPortRange')"),
    ],
)
def test_port_ranges(mapping: dict[str, int], message: str) -> None:
    assert only_problem(task(container(portMappings=[mapping]))).startswith(
        f"$.containerDefinitions[0].portMappings[0]{'.' if message[0] != '(' else ' '}{message}"
    )


def test_port_bounds_are_accepted() -> None:
    mappings = [{"containerPort": 1, "hostPort": 0}, {"containerPort": 65535, "hostPort": 65535}]
    td = parse_task_definition(task(container(portMappings=mappings)), "td.json")
    assert td.container("app").raw["portMappings"] == mappings


def test_duplicate_port_and_protocol_in_one_container() -> None:
    mappings = [
        {"containerPort": 53},
        {"containerPort": 53, "protocol": "udp"},
        {"containerPort": 53, "protocol": "tcp"},
    ]
    assert only_problem(task(container(portMappings=mappings))) == (
        "$.containerDefinitions[0].portMappings[2].containerPort (container 'app'): "
        "53/tcp is already mapped by portMappings[0]"
    )


def test_network_mode_none_has_no_port_mappings() -> None:
    data = task(container(portMappings=[{"containerPort": 80}]), networkMode="none")
    assert only_problem(data) == (
        "$.containerDefinitions[0].portMappings (container 'app'): network mode 'none' has no network to map ports on"
    )


@pytest.mark.parametrize(
    ("ports", "valid"), [("1-65535", True), ("8000-8001", True), ("0-10", False), ("1-65536", False), ("80-80", False)]
)
def test_port_range_bounds(ports: str, valid: bool) -> None:
    data = task(container(portMappings=[{"containerPortRange": ports}]), networkMode="awsvpc")
    if valid:
        parse_task_definition(data, "td.json")
    else:
        assert only_problem(data) == (
            f"$.containerDefinitions[0].portMappings[0].containerPortRange (container 'app'): '{ports}' is malformed: "
            "expected FIRST-LAST, two ports from 1 to 65535 with FIRST below LAST (as 8000-8010)"
        )


# --- sizes, memory, the number of containers and images: what RegisterTaskDefinition refuses ----------------
# Each rule cites the ECS documentation it follows. Where the documentation leaves a rule unclear the task
# definition loads with a TaskDefinitionWarning instead (docs/field-support.md lists them).

API_CONTAINER = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html"
API_REGISTER = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html"


def loads_quietly(data: Any) -> TaskDefinition:
    """The task definition, which must load without a TaskDefinitionWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", TaskDefinitionWarning)
        return parse_task_definition(data, "td.json")


def warnings_of(data: Any) -> list[str]:
    """The TaskDefinitionWarnings the task definition loads with, each naming the file and a JSON path."""
    with pytest.warns(TaskDefinitionWarning) as caught:
        parse_task_definition(data, "td.json")
    texts = [str(w.message) for w in caught if issubclass(w.category, TaskDefinitionWarning)]
    assert all(text.startswith("td.json: $") for text in texts), texts
    return texts


def loads_warning(data: Any, match: str) -> str:
    """The one TaskDefinitionWarning the task definition loads with; it must contain ``match``."""
    texts = warnings_of(data)
    assert len(texts) == 1 and match in texts[0], texts
    return texts[0]


def sized(*containers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A task whose containers each set a memory, so that only the rule under test speaks."""
    return task(*[{"memory": 128, **c} for c in containers or [container()]], **fields)


# API_ContainerDefinition, memory and memoryReservation: "a non-zero integer"; Docker (20.10 on) reserves a
# minimum of 6 MiB, "so, don't specify less than 6 MiB". Docker refuses a smaller limit when it creates the
# container, locally as on an instance: refused here before anything is created.
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("memory", 0, "0 MiB: ECS needs a memory size greater than zero (MiB)"),
        ("memory", -1, "-1 MiB: ECS needs a memory size greater than zero (MiB)"),
        ("memory", 5, "5 MiB is below the 6 MiB Docker gives a container at the least"),
        ("memoryReservation", -1, "-1 MiB: ECS needs a memory size greater than zero (MiB)"),
        ("memoryReservation", 5, "5 MiB is below the 6 MiB Docker gives a container at the least"),
    ],
)
def test_container_memory_below_the_minimum_is_refused(key: str, value: int, message: str) -> None:
    data = task(container(**{"memory": 64, key: value}))
    assert only_problem(data).startswith(f"$.containerDefinitions[0].{key} (container 'app'): {message}")
    loads_quietly(task(container(**{"memory": 64, key: 6})))


# API_ContainerDefinition, memoryReservation asks for "a non-zero integer"; whether a zero reservation beside a
# memory is refused is not said, and Docker takes 0 as no reservation: a warning.
def test_a_zero_memory_reservation_warns() -> None:
    loads_warning(task(container(memory=64, memoryReservation=0)), "memoryReservation (container 'app'): 0 MiB")


# API_ContainerDefinition, memory: "If you specify both a container-level memory and memoryReservation value,
# memory must be greater than memoryReservation." ECS has been reported to accept them equal (docs pull
# request awsdocs/amazon-ecs-developer-guide#242): less is refused, equal warns.
def test_memory_below_memory_reservation_is_refused_and_equal_warns() -> None:
    assert only_problem(task(container(memory=100, memoryReservation=200))) == (
        "$.containerDefinitions[0].memory (container 'app'): 100 MiB is less than memoryReservation (200 MiB): "
        "the hard limit cannot be below the soft limit"
    )
    loads_warning(task(container(memory=100, memoryReservation=100)), "100 MiB equals memoryReservation")
    loads_quietly(task(container(memory=101, memoryReservation=100)))


# API_ContainerDefinition, memory: "If using the EC2 launch type, you must specify either a task-level memory
# value or a container-level memory value"; memoryReservation: "If a task-level memory value is not specified,
# you must specify a non-zero integer for one or both of memory or memoryReservation".
@pytest.mark.parametrize("launch_types", [["EC2"], ["EXTERNAL"], ["EC2", "EXTERNAL"]])
def test_ec2_and_external_need_a_memory_for_each_container_or_the_task(launch_types: list[str]) -> None:
    data = task(container("a", memory=64), container("b"), requiresCompatibilities=launch_types)
    assert only_problem(data) == (
        "$.containerDefinitions[1] (container 'b'): neither memory nor memoryReservation, and the task has no "
        f"memory: {' and '.join(launch_types)} in requiresCompatibilities needs one of them (MiB), or the task's "
        "memory"
    )
    loads_quietly(task(container("a", memory=64), container("b"), requiresCompatibilities=launch_types, memory="512"))
    loads_quietly(task(container("a", memoryReservation=64), requiresCompatibilities=launch_types))


# Without requiresCompatibilities ECS validates for EC2 and has been seen to refuse this ("At least one of
# 'memory' or 'memoryReservation' must be specified"), but the documentation ties the rule to the EC2 launch
# type, which the task definition does not name, and the launch type of a run does not reach validation.
def test_no_memory_anywhere_without_a_launch_type_warns() -> None:
    # A zero reservation is no memory size either (it warns for itself too).
    texts = warnings_of(task(container("a"), container("b", memoryReservation=0), container("c", memory=64)))
    assert len(texts) == 2
    assert texts[1].startswith(
        "td.json: $.containerDefinitions: no task memory, and 'a', 'b' set neither memory nor memoryReservation: "
        "ECS refuses that for the EC2 and EXTERNAL launch types, and this task definition names none"
    )
    loads_warning(task(container("a")), "no task memory, and 'a' sets neither")
    loads_quietly(task(container("a"), memory="512"))
    loads_quietly(task(container("a", memory=64)))


def test_a_definition_validated_again_after_its_overrides_warns_once() -> None:
    from pytest_ecstask.inputs import load_source
    from pytest_ecstask.options import TaskOptions

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own action for a UserWarning, and pytest's outside pytest.warns
        load_source(task(container()), options=TaskOptions(overrides={"app": {"command": ["true"]}}))
    assert [type(w.message) for w in caught] == [TaskDefinitionWarning]


# Service quotas, "Task definition max containers: 10", not adjustable:
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html
def test_more_than_ten_containers_are_refused() -> None:
    ten = [container(f"c{i}", memory=64, essential=i == 0) for i in range(10)]
    assert len(loads_quietly(task(*ten)).containers) == 10
    assert only_problem(task(*ten, container("c10", memory=64))) == (
        "$.containerDefinitions: 11 container definitions: ECS takes at most 10 in one task definition"
    )


# API_ContainerDefinition, image is required; "Container.image should not be null or empty".
@pytest.mark.parametrize("image", ["", "  "])
def test_an_empty_image_is_refused(image: str) -> None:
    assert only_problem(sized(container(image=image))) == (
        f"$.containerDefinitions[0].image (container 'app'): {image!r} is empty: ECS needs an image to run"
    )


# API_ContainerDefinition, image: up to 255 letters, digits, hyphens, underscores, colons, periods, forward
# slashes and number signs; for digests, 255 before the "@" and only "sha256:" with 64 hexadecimal digits. The
# image is also "passed directly to the Docker daemon", whose reference grammar (lower-case repository names)
# applies: https://pkg.go.dev/github.com/distribution/reference
SHA = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:1.36",
        "amazon/amazon-ecs-agent:latest",
        "quay.io/assemblyline/ubuntu",
        "localhost:5000/app:1",
        "012345678910.dkr.ecr.us-east-1.amazonaws.com/my-web-app:latest",
        f"012345678910.dkr.ecr.us-east-1.amazonaws.com/my-web-app@{SHA}",
        f"public.ecr.aws/docker/library/redis:7.2-alpine@{SHA}",
        "my_org/app__x-y.z:TAG_1.0-rc",
        "a" * 255,
    ],
)
def test_valid_image_references_run(image: str) -> None:
    assert image_problems(loads_quietly(sized(container(image=image))), {}) == []


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("my app", "'my app' has characters ECS refuses in an image (' ')"),
        ("app:1@sha256:x@y", "has characters ECS refuses in an image ('@')"),
        ("a" * 256, "256 characters: ECS takes images up to 255"),
        ("app@sha256:abc", "'app@sha256:abc': ECS takes only sha256 digests"),
        (f"app@md5:{'a' * 64}", "ECS takes only sha256 digests, 'sha256:' and 64 hexadecimal digits"),
        ("Repo/App:1", "'Repo/App:1' is not a valid image reference (repository names are lower case), and Docker"),
        ("app:", "'app:' is not a valid image reference, and Docker refuses it"),
        ("app#1", "'app#1' is not a valid image reference, and Docker refuses it"),
        ("/app", "'/app' is not a valid image reference"),
    ],
)
def test_image_references_ecs_or_docker_refuse_are_refused(image: str, message: str) -> None:
    taskdef = loads_quietly(sized(container("ok"), container("bad", image=image)))
    problems = image_problems(taskdef, {})
    assert len(problems) == 1, problems
    assert problems[0].startswith("$.containerDefinitions[1].image (container 'bad'): ") and message in problems[0]


# A deploy pipeline's placeholder (CodePipeline's ECS blue/green action fills <IMAGE1_NAME> from the image it
# built) is no image to ECS: "Container.image contains invalid characters". Mapped with --ecs-image it runs.
def test_an_unmapped_pipeline_placeholder_is_refused_with_the_mapping_that_fixes_it() -> None:
    taskdef = loads_quietly(sized(container(image="<IMAGE1_NAME>")))
    assert image_problems(taskdef, {}) == [
        "$.containerDefinitions[0].image (container 'app'): '<IMAGE1_NAME>' holds the pipeline placeholder "
        "'<IMAGE1_NAME>', which ECS refuses in an image (a deploy pipeline writes the image it built there); map "
        "it to an image to run: --ecs-image '<IMAGE1_NAME>=IMAGE' (ini ecs_images, marker "
        "images={'<IMAGE1_NAME>': IMAGE})"
    ]


def test_a_mapped_pipeline_placeholder_runs_and_an_unmapped_one_stops_the_inputs() -> None:
    from pytest_ecstask.inputs import resolve_inputs
    from pytest_ecstask.lifecycle import Owner
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.plan import PlanOptions, build_plan

    taskdef = loads_quietly(sized(container("app", image="<IMAGE1_NAME>"), container("side", image="<SIDE>")))
    images = {"<IMAGE1_NAME>": "shop:local"}

    def hook(image: str, container: str) -> str | None:  # the pytest_ecstask_resolve_image hook
        return "side:local" if image == "<SIDE>" else None

    inputs = resolve_inputs(taskdef, TaskOptions(images=images, image_resolver=hook))
    assert inputs.container_images == {"app": "shop:local", "side": "side:local"}
    plan = build_plan(
        taskdef,
        PlanOptions(
            task_id="f" * 32,
            owner=Owner("s", "h/1", "/tmp/s.lease"),
            created="2026-01-01T00:00:00Z",
            pause_image="pause",
            image_map=images,
            container_images=inputs.container_images,
        ),
    )
    assert [c.create_body["Image"] for c in plan.containers] == ["shop:local", "side:local"]
    with pytest.raises(TaskDefinitionError) as info:
        resolve_inputs(taskdef, TaskOptions(images=images))
    assert info.value.source == "td.json"
    assert info.value.problems == [
        "$.containerDefinitions[1].image (container 'side'): '<SIDE>' holds the pipeline placeholder '<SIDE>', "
        "which ECS refuses in an image (a deploy pipeline writes the image it built there); map it to an image to "
        "run: --ecs-image '<SIDE>=IMAGE' (ini ecs_images, marker images={'<SIDE>': IMAGE})"
    ]


def test_a_mapping_or_hook_that_gives_an_invalid_image_is_named_with_what_it_replaced() -> None:
    from pytest_ecstask.inputs import resolve_inputs
    from pytest_ecstask.options import TaskOptions

    taskdef = loads_quietly(sized(container("app", image="<IMAGE1_NAME>"), container("side", image="side:1")))
    options = TaskOptions(
        images={"<*>": "Shop Local"}, image_resolver=lambda image, name: "" if name == "side" else None
    )
    with pytest.raises(TaskDefinitionError) as info:
        resolve_inputs(taskdef, options)
    assert info.value.problems == [
        "$.containerDefinitions[0].image (container 'app'): 'Shop Local' is not a valid image reference, and "
        "Docker refuses it (what the image mappings or the image hook give for '<IMAGE1_NAME>')",
    ]
    # A hook answering "" leaves the image as it is: 'side:1' runs.
    fixed = dataclasses.replace(options, images={"<*>": "shop:local"})
    assert resolve_inputs(taskdef, fixed).container_images == {"app": "shop:local", "side": "side:1"}


# API_RegisterTaskDefinition, networkMode: "For Amazon ECS tasks on Fargate, the awsvpc network mode is
# required"; cpu and memory: "This field is required for Fargate". FARGATE rules apply "even if EC2 is also
# specified": https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html
FARGATE = {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512"}


@pytest.mark.parametrize("launch_types", [["FARGATE"], ["EC2", "FARGATE"]])
def test_fargate_needs_awsvpc_and_the_tasks_cpu_and_memory(launch_types: list[str]) -> None:
    loads_quietly(task(container(), **{**FARGATE, "requiresCompatibilities": launch_types}))
    assert problems_of(task(container(), requiresCompatibilities=launch_types)) == [
        "$: missing 'networkMode': FARGATE in requiresCompatibilities needs 'awsvpc' (absent is 'bridge')",
        "$: missing 'cpu': FARGATE in requiresCompatibilities needs the task's cpu",
        "$: missing 'memory': FARGATE in requiresCompatibilities needs the task's memory",
    ]
    for mode in ("bridge", "host", "none"):
        assert only_problem(task(container(), **{**FARGATE, "networkMode": mode})) == (
            f"$.networkMode: {mode!r}: FARGATE in requiresCompatibilities needs networkMode 'awsvpc'"
        )


# The Fargate task sizes, "Task CPU and memory":
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
# and the same table in task-cpu-memory-error.html ("Invalid 'cpu' setting for task").
@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        ("256", "512"),
        ("256", "2048"),
        ("512", "1024"),
        ("512", "4096"),
        ("1024", "2048"),
        ("1024", "8192"),
        ("2048", "4096"),
        ("2048", "16384"),
        ("4096", "8192"),
        ("4096", "30720"),
        ("8192", "16384"),
        ("8192", "61440"),
        ("16384", "32768"),
        ("16384", "122880"),
        (".25 vCPU", "0.5GB"),
        ("1 vcpu", "2 GB"),
        ("16 VCPU", "120 gb"),
    ],
)
def test_fargate_sizes_from_the_table_load(cpu: str, memory: str) -> None:
    loads_quietly(task(container(), **{**FARGATE, "cpu": cpu, "memory": memory}))


@pytest.mark.parametrize(
    ("cpu", "memory", "where", "message"),
    [
        (
            "256",
            "3072",
            "memory",
            "3072 MiB does not go with cpu 256 on Fargate, which offers 512, 1024 or 2048 MiB "
            "with it; 3072 MiB goes with cpu 512 or 1024",
        ),
        (
            "256",
            "256",
            "memory",
            "256 MiB does not go with cpu 256 on Fargate, which offers 512, 1024 or 2048 MiB with it",
        ),
        ("512", "5120", "memory", "offers 1024, 2048, 3072 or 4096 MiB with it; 5120 MiB goes with cpu 1024 or 2048"),
        ("1024", "9216", "memory", "offers 2048 to 8192 MiB in steps of 1024 with it"),
        ("2048", "16896", "memory", "offers 4096 to 16384 MiB in steps of 1024 with it"),
        ("4096", "31744", "memory", "offers 8192 to 30720 MiB in steps of 1024 with it"),
        (
            "8192",
            "18432",
            "memory",
            "offers 16384 to 61440 MiB in steps of 4096 with it; 18432 MiB goes with cpu 4096",
        ),
        ("16384", "36864", "memory", "offers 32768 to 122880 MiB in steps of 8192 with it"),
        (
            "128",
            "512",
            "cpu",
            "128 CPU units is not a Fargate size: Fargate offers 256, 512, 1024, 2048, 4096, 8192 "
            "or 16384 (0.25 to 16 vCPU)",
        ),
        ("32768", "65536", "cpu", "32768 CPU units is not a Fargate size"),
    ],
)
def test_fargate_sizes_off_the_table_are_refused(cpu: str, memory: str, where: str, message: str) -> None:
    problem = only_problem(task(container(), **{**FARGATE, "cpu": cpu, "memory": memory}))
    assert problem.startswith(f"$.{where}: ") and message in problem, problem


def test_fargate_sizes_are_not_asked_of_other_launch_types() -> None:
    loads_quietly(task(container(), cpu="128", memory="3000", requiresCompatibilities=["EC2"]))


# API_RegisterTaskDefinition, cpu: "an integer using CPU units (for example, 1024) or as a string using vCPUs
# (for example, 1 vCPU or 1 vcpu)"; memory: "an integer using MiB (for example, 1024) or as a string using GB
# (for example, 1GB or 1 GB)". The ECS documentation's own examples write ".25 vcpu" and ".5 gb".
@pytest.mark.parametrize(
    ("memory", "mib"),
    [("2048", 2048), ("2 GB", 2048), ("2GB", 2048), ("2 gb", 2048), ("2 Gb", 2048), (".5 GB", 512), ("1.5GB", 1536)],
)
def test_task_memory_in_mib_or_gb_is_read_as_ecs_reads_it(memory: str, mib: int) -> None:
    loads_quietly(task(container(memory=mib), memory=memory))
    assert only_problem(task(container(memory=mib + 1), memory=memory)) == (
        f"$.containerDefinitions[0].memory (container 'app'): {mib + 1} MiB is more than the task's memory "
        f"({mib} MiB at $.memory): ECS refuses a container memory greater than the task's"
    )


@pytest.mark.parametrize("cpu", ["1024", "1 vCPU", "1 vcpu", "1vCPU", "1 VCPU", ".25 vcpu", "0.5 vCPU", "128"])
def test_task_cpu_in_units_or_vcpus_loads(cpu: str) -> None:
    loads_quietly(task(container(memory=64), cpu=cpu))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "cpu",
            "1.5",
            "give CPU units as a whole number, or vCPU after a number, as in '1024', '1 vCPU' or '.25 vcpu'",
        ),
        ("cpu", "1 core", "give CPU units as a whole number"),
        ("cpu", "2 GB", "give CPU units as a whole number"),
        ("cpu", "", "give CPU units as a whole number"),
        ("memory", "1 GiB", "give MiB as a whole number, or GB after a number, as in '2048', '2 GB' or '0.5GB'"),
        ("memory", "512 MiB", "give MiB as a whole number"),
        ("memory", "512MB", "give MiB as a whole number"),
        ("memory", "1,024", "give MiB as a whole number"),
        ("memory", "two GB", "give MiB as a whole number"),
        ("memory", "\u0661\u0660\u0662\u0664", "give MiB as a whole number"),  # Arabic-Indic digits
    ],
)
def test_task_sizes_ecs_does_not_read_are_refused(key: str, value: str, expected: str) -> None:
    problem = only_problem(task(container(memory=64), **{key: value}))
    assert problem.startswith(f"$.{key}: {value!r} is not a task {key} ECS reads: ") and expected in problem, problem


def test_a_task_size_that_is_no_whole_number_warns() -> None:
    # ".3 GB" is 307.2 MiB: what ECS makes of it is not documented.
    loads_warning(task(container(memory=64), memory=".3 GB"), "$.memory: '.3 GB' is 307.2 MiB, not a whole number")


# API_ContainerDefinition, memory: "The total amount of memory reserved for all containers within a task must be
# lower than the task memory value, if one is specified." ECS refuses a sum of memoryReservation values above
# it ("The sum of all container 'memoryReservation' values cannot be greater than the value of the task
# 'memory'"); whether memory counts for containers without a reservation is not said: a warning.
def test_the_containers_reservations_cannot_add_up_to_more_than_the_task_memory() -> None:
    loads_quietly(task(container("a", memoryReservation=256), container("b", memoryReservation=256), memory="512"))
    assert only_problem(
        task(container("a", memoryReservation=256), container("b", memoryReservation=257), memory="512")
    ) == (
        "$.memory: 512 MiB is less than the 513 MiB the containers' memoryReservation values add up to ('a' 256, "
        "'b' 257): ECS refuses a sum greater than the task's memory"
    )
    loads_warning(
        task(container("a", memoryReservation=256), container("b", memory=300), memory="512"),
        "$.memory: 512 MiB is less than the 556 MiB the containers reserve ('a' 256, 'b' 300; memory where a "
        "container sets no memoryReservation)",
    )


# --- odd shapes never escape as anything but TaskDefinitionError --------------------------------------------

RICH = task(
    container(
        "db",
        essential=False,
        healthCheck={"command": ["CMD-SHELL", "true"], "interval": 5},
        portMappings=[{"containerPort": 5432, "hostPort": 0, "protocol": "tcp"}],
        mountPoints=[{"sourceVolume": "data", "containerPath": "/var/lib/db"}],
        secrets=[{"name": "P", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/p"}],
        logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
    ),
    container(
        "app",
        dependsOn=[{"containerName": "db", "condition": "HEALTHY"}],
        links=["db:database"],
        volumesFrom=[{"sourceContainer": "db", "readOnly": True}],
        environment=[{"name": "A", "value": "1"}],
        dockerLabels={"x": "y"},
    ),
    volumes=[{"name": "data", "host": {"sourcePath": "/tmp"}}],
    tags=[{"key": "k", "value": "v"}],
)

ODD_VALUES: list[Any] = [None, "x", "${X}", 7, True, [], ["x"], {}, {"x": 1}]


def _locations(value: Any, at: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*at, key)
            yield from _locations(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*at, i)
            yield from _locations(item, (*at, i))


def test_rich_example_loads() -> None:
    td = parse_task_definition(RICH, "x")
    assert [c.name for c in td.containers] == ["db", "app"]


@pytest.mark.parametrize("odd", ODD_VALUES, ids=repr)
def test_any_node_replaced_by_an_odd_value_loads_or_is_refused_cleanly(odd: Any) -> None:
    for location in _locations(RICH):
        data = copy.deepcopy(RICH)
        parent: Any = data
        for step in location[:-1]:
            parent = parent[step]
        parent[location[-1]] = odd
        try:
            parse_task_definition(data, "x")
        except TaskDefinitionError as exc:
            assert all(re.match(r"\$", p) for p in exc.problems), (location, exc.problems)


@pytest.mark.parametrize(
    "data",
    [
        None,
        "x",
        1,
        [],
        [1],
        [None],
        {},
        {"taskDefinition": "x"},
        {"taskDefinition": []},
        {"containerDefinitions": {}},
    ],
    ids=repr,
)
def test_odd_top_level_shapes_are_refused_cleanly(data: Any) -> None:
    assert problems_of(data)


# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerRestartPolicy.html: "a minimum
# restartAttemptPeriod of 60 seconds and a maximum restartAttemptPeriod of 1800 seconds"; "a maximum of 50
# container exit codes".
@NEEDS_RESTART_POLICY
@pytest.mark.parametrize(("period", "valid"), [(59, False), (60, True), (1800, True), (1801, False)])
def test_restart_attempt_period_is_60_to_1800_seconds(period: int, valid: bool) -> None:
    data = task(container(restartPolicy={"enabled": True, "restartAttemptPeriod": period}))
    if valid:
        parse_task_definition(data, "td.json")
    else:
        assert only_problem(data) == (
            f"$.containerDefinitions[0].restartPolicy.restartAttemptPeriod (container 'app'): {period} is out of "
            "range: ECS accepts 60-1800 seconds"
        )


@NEEDS_RESTART_POLICY
def test_at_most_50_ignored_exit_codes() -> None:
    parse_task_definition(task(container(restartPolicy={"enabled": True, "ignoredExitCodes": list(range(50))})), "x")
    assert only_problem(task(container(restartPolicy={"enabled": True, "ignoredExitCodes": list(range(51))}))) == (
        "$.containerDefinitions[0].restartPolicy.ignoredExitCodes (container 'app'): 51 exit codes: ECS takes at most 50"
    )
