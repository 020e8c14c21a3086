"""The requests the AWS backend sends to ECS, RegisterTaskDefinition then RunTask. Pure: nothing is sent.

They are made from the task definition as a run loads it (rendered, adjusted by the hook, validated) and the
run's settings, never from the Docker plan, so nothing a local run adds (its labels, the endpoint variables,
``AWS_REGION``, the pause container) reaches ECS:

- RegisterTaskDefinition registers the task definition in a family of its own (its family and
  ``--ecs-aws-family-suffix``), so that the family the team deploys gets no test revisions, with the image
  mappings applied and the session id among its tags. Secrets go as their ``valueFrom`` references and
  environment files as their S3 ARNs, as ECS takes them: ECS resolves secrets itself with the task's
  execution role, and reads the files itself.
- RunTask runs one task of the revision registered, in the cluster, with the launch type or the capacity
  provider strategy and, for awsvpc, the subnets, security groups and public IP; started by and tagged
  with the session id.

Both carry, beside the session id, the tags a sweep judges the run by, as a Docker sweep reads the same
labels (``pytest_ecstask.awssweep``): the host's id, the path of the run's lease and the process
(``host:pid``) that sent them. While it runs, the run adds ``pytest-ecstask.alive``, its heartbeat.

Both are checked against botocore's ECS model, as boto3 checks a request before sending it, and against the
rules ECS enforces beyond shapes that a setting can break. Every problem is told at once.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_ecstask.errors import EcsTaskError, problem_list
from pytest_ecstask.lifecycle import (
    HOST_ID_ENV,
    LABEL_ALIVE,
    LABEL_HOST,
    LABEL_LEASE,
    LABEL_OWNER,
    LABEL_SESSION,
    SESSION_ENV,
)
from pytest_ecstask.plan import resolve_image
from pytest_ecstask.secretvalues import parse_value_from, secret_uses
from pytest_ecstask.settings import DEFAULT_AWS_LAUNCH_TYPE
from pytest_ecstask.taskdef import ecs_service_model, image_problems

if TYPE_CHECKING:
    from pytest_ecstask.settings import Settings
    from pytest_ecstask.taskdef import TaskDefinition

SESSION_TAG = LABEL_SESSION  # the key of the session id's tag: the label key of what runs on Docker
HOST_TAG = LABEL_HOST  # the key of the host id's tag: which host's leases can tell whether the run lives
LEASE_TAG = LABEL_LEASE  # the run's lease file: a sweep on the host asks it whether the run lives
OWNER_TAG = LABEL_OWNER  # host:pid of the process that sent the request: asked when the lease file is gone
ALIVE_TAG = LABEL_ALIVE  # the run's heartbeat (a UTC time), added while it runs: see awsrun
STARTED_BY_PREFIX = "pytest-ecstask-"
REVISION = "<revision>"  # in a plan, where RunTask names the revision RegisterTaskDefinition returns
LEASE = "<lease>"  # in a plan, the lease file of the run
OWNER = "<host:pid>"  # in a plan, the process of the run that sends the request
SECRETS_RESOLVED_BY_ECS = "ECS resolves secrets itself with the task's execution role"

# ECS's limits that botocore's model does not carry.
_STARTED_BY = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TAG_VALUE = re.compile(r"[\w\s.:/=+@-]{0,256}")  # letters, digits, spaces and _.:/=+-@
_NOT_IN_TAG_VALUE = re.compile(r"[^\w\s.:/=+@-]")
_TAGS_MAX = 50
_RUN_TAG_KEYS = (SESSION_TAG, HOST_TAG, LEASE_TAG, OWNER_TAG, ALIVE_TAG)
_FAMILY_MAX = 255
_S3_OBJECT_ARN = re.compile(r"arn:[a-z-]+:s3:::[^/]+/.+")


@dataclass(frozen=True)
class EcsRequests:
    """What the AWS backend sends, in order: each request's parameters, as boto3's client methods take them."""

    session_id: str
    register_task_definition: Mapping[str, Any]
    run_task: Mapping[str, Any]
    host: str = ""  # the host id in the tags ("" when none is)
    lease: str = ""  # the lease path in the tags ("" when none is)
    owner: str = ""  # host:pid in the tags ("" when none is)

    def as_data(self) -> dict[str, Any]:
        """The requests by operation name, in the order they are sent (``--ecs-plan --ecs-json``)."""
        return {"RegisterTaskDefinition": self.register_task_definition, "RunTask": self.run_task}


def build_requests(
    taskdef: TaskDefinition,
    images: Mapping[str, str],
    settings: Settings,
    session_id: str,
    host: str = "",
    *,
    lease: str = "",
    owner: str = "",
) -> EcsRequests:
    """Both requests for one task; an EcsTaskError lists everything ECS would refuse in them.

    Tagged beside the session id, each when given: ``host``, this host's id (``lifecycle.host_id``);
    ``lease``, the run's lease file; ``owner``, the sending process as ``host:pid`` (``lifecycle.owner``).
    """
    register = register_task_definition(taskdef, images, settings, session_id, host, lease=lease, owner=owner)
    run = run_task(taskdef, settings, session_id, host=host, lease=lease, owner=owner)
    problems = [
        *_registration_problems(taskdef, register, settings),
        *_run_problems(taskdef, settings, session_id),
        *model_problems("RegisterTaskDefinition", register),
        *model_problems("RunTask", run),
    ]
    if problems:
        raise EcsTaskError(problem_list(taskdef.source, problems, "things ECS would refuse"))
    return EcsRequests(session_id, register, run, host_tag_value(host), lease, owner)


def family(taskdef: TaskDefinition, settings: Settings) -> str:
    """The family the AWS backend registers in: the task definition's, and the suffix."""
    return taskdef.family + settings.aws_family_suffix


def session_tag(session_id: str) -> dict[str, str]:
    return {"key": SESSION_TAG, "value": session_id}


def host_tag_value(host: str) -> str:
    """A host id as a tag value: a character ECS refuses there becomes ``-`` (a sweep compares the same form)."""
    return _NOT_IN_TAG_VALUE.sub("-", host)[:256]


def fits_a_tag(value: str) -> bool:
    """Whether ECS takes ``value`` as a tag value as it is (a lease path may not: a Windows path, a long one)."""
    return bool(_TAG_VALUE.fullmatch(value))


def run_tags(session_id: str, host: str = "", lease: str = "", owner: str = "") -> list[dict[str, str]]:
    """The tags of what a run registers and runs: its session id, and its host, lease and process when given."""
    tags = [session_tag(session_id)]
    if host:
        tags.append({"key": HOST_TAG, "value": host_tag_value(host)})
    tags += [{"key": key, "value": value} for key, value in ((LEASE_TAG, lease), (OWNER_TAG, owner)) if value]
    return tags


def started_by(session_id: str) -> str:
    """RunTask's startedBy: the session id, in the characters and length ECS takes there."""
    return (STARTED_BY_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "-", session_id))[:128]


def register_task_definition(
    taskdef: TaskDefinition,
    images: Mapping[str, str],
    settings: Settings,
    session_id: str,
    host: str = "",
    *,
    lease: str = "",
    owner: str = "",
) -> dict[str, Any]:
    """The task definition as ECS takes it, in the family of its own, images mapped, the run among its tags."""
    request = copy.deepcopy(dict(taskdef.raw))
    request["family"] = family(taskdef, settings)
    for container in request["containerDefinitions"]:
        container["image"] = resolve_image(str(container["image"]), images)
    tags = [t for t in request.get("tags") or [] if t.get("key") not in _RUN_TAG_KEYS]
    request["tags"] = [*tags, *run_tags(session_id, host, lease, owner)]
    return request


def run_task(
    taskdef: TaskDefinition,
    settings: Settings,
    session_id: str,
    task_definition: str | None = None,
    host: str = "",
    *,
    lease: str = "",
    owner: str = "",
) -> dict[str, Any]:
    """RunTask for one task of ``task_definition`` (family:revision; in a plan, the family and ``<revision>``)."""
    request: dict[str, Any] = {
        "cluster": settings.aws_cluster,
        "taskDefinition": task_definition or f"{family(taskdef, settings)}:{REVISION}",
        "count": 1,
        "startedBy": started_by(session_id),
        "tags": run_tags(session_id, host, lease, owner),
        "propagateTags": "TASK_DEFINITION",  # the task gets the task definition's tags too
        "enableExecuteCommand": False,
        **_capacity(settings),
    }
    if taskdef.network_mode == "awsvpc":
        awsvpc: dict[str, Any] = {"subnets": list(settings.aws_subnets)}
        if settings.aws_security_groups:
            awsvpc["securityGroups"] = list(settings.aws_security_groups)  # else ECS takes the VPC's default
        awsvpc["assignPublicIp"] = "ENABLED" if settings.aws_public_ip else "DISABLED"
        request["networkConfiguration"] = {"awsvpcConfiguration": awsvpc}
    return request


def _capacity(settings: Settings) -> dict[str, Any]:
    """A capacity provider strategy when one is given, else a launch type: ECS takes one of them, not both."""
    if not settings.aws_capacity_providers:
        return {"launchType": settings.aws_launch_type or DEFAULT_AWS_LAUNCH_TYPE}
    strategy = []
    for provider in settings.aws_capacity_providers:
        item: dict[str, Any] = {"capacityProvider": provider.name}
        item.update({k: v for k, v in (("weight", provider.weight), ("base", provider.base)) if v is not None})
        strategy.append(item)
    return {"capacityProviderStrategy": strategy}


# -- what ECS refuses beyond shapes ----------------------------------------------------------------------


def _registration_problems(taskdef: TaskDefinition, register: Mapping[str, Any], settings: Settings) -> list[str]:
    images = {c["name"]: c["image"] for c in register["containerDefinitions"]}
    problems = image_problems(taskdef, images, sent_to_ecs=True)
    if len(register["family"]) > _FAMILY_MAX:
        problems.append(
            f"{taskdef.field_path('family')}: {register['family']!r}, with --ecs-aws-family-suffix "
            f"{settings.aws_family_suffix!r}, has {len(register['family'])} characters; ECS takes families up "
            f"to {_FAMILY_MAX}"
        )
    count = len(register["tags"]) + 1  # and the heartbeat, added while the run goes on
    if count > _TAGS_MAX:
        problems.append(
            f"{taskdef.field_path('tags')}: {count} tags with the run's own (its session, host, lease, process "
            f"and heartbeat); ECS takes {_TAGS_MAX} at most"
        )
    return problems + _secret_problems(taskdef) + _environment_file_problems(taskdef)


def _secret_problems(taskdef: TaskDefinition) -> list[str]:
    """Every valueFrom as ECS parses it; and the execution role that reads the secrets."""
    problems = []
    for what, container, value_from in secret_uses(taskdef):
        try:
            parse_value_from(value_from)
        except EcsTaskError as exc:
            problems.append(f"container {container!r}: {what}: {exc}")
    with_secrets = [c.name for c in taskdef.containers if c.raw.get("secrets")]
    if with_secrets and not taskdef.execution_role_arn:
        problems.append(
            f"{taskdef.field_path('executionRoleArn')}: missing; ECS refuses container secrets (in "
            f"{', '.join(repr(n) for n in with_secrets)}) without an executionRoleArn, because "
            f"{SECRETS_RESOLVED_BY_ECS}"
        )
    return problems


def _environment_file_problems(taskdef: TaskDefinition) -> list[str]:
    """ECS reads environment files from S3 only: a path that a local run reads is no use there."""
    problems = []
    for i, c in enumerate(taskdef.containers):
        for k, entry in enumerate(c.raw.get("environmentFiles") or []):
            value = str(entry.get("value", ""))
            if not _S3_OBJECT_ARN.fullmatch(value):
                problems.append(
                    f"{taskdef.container_path(i, c.name, f'environmentFiles[{k}]', 'value')}: {value!r} is not "
                    "the ARN of an S3 object (arn:aws:s3:::bucket/key); ECS reads environment files from S3 only: "
                    "upload the file and give its ARN"
                )
    return problems


def _run_problems(taskdef: TaskDefinition, settings: Settings, session_id: str) -> list[str]:
    problems = []
    mode = taskdef.network_mode
    given = "networkMode" in taskdef.raw
    if mode == "awsvpc" and not settings.aws_subnets:
        problems.append(
            f"{taskdef.field_path('networkMode')}: 'awsvpc': ECS runs an awsvpc task in the subnets it is given, "
            "and needs one at least: --ecs-aws-subnet=SUBNET (repeatable; ini ecs_aws_subnets)"
        )
    fargate = not settings.aws_capacity_providers and (settings.aws_launch_type or DEFAULT_AWS_LAUNCH_TYPE) == "FARGATE"
    if fargate and mode != "awsvpc":
        default = "" if settings.aws_launch_type else " (the default launch type)"
        problems.append(
            f"{taskdef.field_path('networkMode')}: {mode!r}{'' if given else ' (when none is given)'}: "
            f"FARGATE{default} runs awsvpc tasks only; give the task definition networkMode 'awsvpc', or "
            "run it with --ecs-aws-launch-type=EC2 (ini ecs_aws_launch_type) or a capacity provider "
            "(--ecs-aws-capacity-provider)"
        )
    if not _TAG_VALUE.fullmatch(session_id):
        problems.append(
            f"session id {session_id!r} (from {SESSION_ENV}): ECS takes tag values of up to 256 letters, "
            "digits, spaces and _.:/=+-@"
        )
    return problems


def model_problems(operation: str, request: Mapping[str, Any]) -> list[str]:
    """What botocore's ECS model refuses in ``request``, as boto3 would say it before sending it."""
    from botocore.validate import ParamValidator

    shape = ecs_service_model().operation_model(operation).input_shape
    if shape is None:
        raise RuntimeError(f"botocore's ECS model has no {operation} input")
    report = ParamValidator().validate(request, shape)
    if not report.has_errors():
        return []
    return [f"{operation}: {line}" for line in without_values(report.generate_report()).splitlines()]


# botocore's ``Invalid type for parameter X, value: V, type: ...`` (and ``Invalid value``, ``Invalid length``):
# the value goes, the parameter's path and the types or bounds stay.
_QUOTED_VALUE = re.compile(r", value: .*?, (?=type: <|valid min )", re.S)


def without_values(report: str) -> str:
    """botocore's validation report without the values it quotes: a refused value may be a secret."""
    return _QUOTED_VALUE.sub(", ", report)


# -- --ecs-plan --ecs-backend=aws ------------------------------------------------------------------------


def format_requests(requests: EcsRequests) -> str:
    """The requests as ``--ecs-plan`` prints them: what each one is for, then its parameters as JSON."""
    register, run = requests.register_task_definition, requests.run_task
    lines = [
        "The AWS backend sends these requests to ECS, in this order (--ecs-plan sends nothing).",
        f"Session id {requests.session_id} ({SESSION_ENV}, else made up for this plan; a run has its own): in "
        "the tags of both requests, and in startedBy.",
        *(
            [
                f"Host {requests.host} ({HOST_ID_ENV}, else this machine's id): in the tags of both requests, with "
                f"the run's lease file ({LEASE} in the plan) and its process ({OWNER}), so that a sweep on this "
                "host can ask the run's lease whether it lives."
            ]
            if requests.host
            else []
        ),
        f"Secrets go to ECS as their valueFrom references: {SECRETS_RESOLVED_BY_ECS}.",
        "",
        f"RegisterTaskDefinition: family {register['family']}, a family of its own (--ecs-aws-family-suffix)",
        json.dumps(register, indent=2),
        "",
        f"RunTask: one task in cluster {run['cluster']}; {REVISION} is the revision RegisterTaskDefinition returns",
        json.dumps(run, indent=2),
    ]
    return "\n".join(lines)
