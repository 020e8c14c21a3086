"""What talks to AWS: the only module that calls ECS, CloudWatch Logs and EC2, through boto3.

One call does one thing and returns data, as the Docker side's runtime does; every botocore error is caught
here and raised again as an :class:`EcsTaskError` that names the call and says what to do (a missing
permission, no credentials, no region). boto3 is imported when a backend is first made, never when the plugin
loads: a run on Docker needs no boto3, and a run on ECS without it is told ``pip install pytest-ecstask[aws]``.

botocore logs each request's headers and body at DEBUG: a run's captured logs (``--log-level=DEBUG``, a
failing test's report) must not get them, so a backend raises the ``botocore``, ``boto3`` and ``urllib3``
loggers to INFO when they are set lower.

The region and the credentials come from boto3's usual chain (``AWS_REGION``, ``AWS_PROFILE``, the
configuration files, an instance or task role); ``--ecs-region`` names the region of a local run's metadata
and has no part here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pytest_ecstask import __version__
from pytest_ecstask.errors import EcsTaskError

BOTO3_MISSING = "--ecs-backend=aws needs boto3, which is not installed: pip install pytest-ecstask[aws]"
POLICY = "the IAM policy in the AWS backend's documentation lists what the backend calls"
DESCRIBE_BATCH = 100  # DescribeTasks takes 100 tasks at most
DELETE_BATCH = 10  # DeleteTaskDefinitions takes 10 revisions at most
QUIET_LOGGERS = ("botocore", "boto3", "urllib3")  # their DEBUG lines carry request headers and bodies


def boto3_installed() -> bool:
    """Whether boto3 can be imported, asked without importing it."""
    import importlib.util

    return importlib.util.find_spec("boto3") is not None


class EcsBackend:
    """ECS, CloudWatch Logs and EC2 clients of one boto3 session, made on first use.

    ``session`` is anything with boto3's ``Session.client(service, region_name=...)``: tests give one whose
    clients are stubbed (botocore's Stubber).
    """

    def __init__(self, session: Any = None) -> None:
        if session is None:
            if not boto3_installed():
                raise EcsTaskError(BOTO3_MISSING)
            import boto3

            session = boto3.session.Session()
        _quiet_loggers()
        self._session = session
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                with _calling(f"{service} client", ""):
                    self._clients[key] = self._session.client(service, region_name=region, config=_client_config())
            return self._clients[key]

    # -- task definitions --------------------------------------------------------------------------------

    def register_task_definition(self, request: Mapping[str, Any]) -> tuple[str, int]:
        """The ARN and revision ECS gives the task definition."""
        family = request.get("family", "")
        with _calling("RegisterTaskDefinition", f"of family {family}"):
            registered = self.client("ecs").register_task_definition(**request)["taskDefinition"]
        return str(registered["taskDefinitionArn"]), int(registered["revision"])

    def deregister_task_definition(self, arn: str) -> None:
        with _calling("DeregisterTaskDefinition", arn):
            self.client("ecs").deregister_task_definition(taskDefinition=arn)

    def deletes_task_definitions(self) -> bool:
        """Whether this botocore has DeleteTaskDefinitions (a region may still refuse it)."""
        return hasattr(self.client("ecs"), "delete_task_definitions")

    def delete_task_definitions(self, arns: Sequence[str]) -> list[tuple[str, str]] | None:
        """Delete deregistered revisions; returns (ARN, why) of those ECS did not delete.

        None where ECS has no DeleteTaskDefinitions (an older botocore, a region without it): nothing is
        deleted, and a deregistered revision stays inactive, which runs nothing.
        """
        if not arns:
            return []
        if not self.deletes_task_definitions():
            return None
        client = self.client("ecs")
        failed: list[tuple[str, str]] = []
        for start in range(0, len(arns), DELETE_BATCH):
            batch = list(arns[start : start + DELETE_BATCH])
            try:
                with _calling("DeleteTaskDefinitions", ", ".join(batch)):
                    answer = client.delete_task_definitions(taskDefinitions=batch)
            except _Unsupported as exc:
                if start == 0:
                    return None
                return failed + [(arn, str(exc)) for arn in arns[start:]]
            failed += [(str(f.get("arn")), str(f.get("reason"))) for f in answer.get("failures") or []]
        return failed

    def describe_task_definition(self, arn: str) -> tuple[Mapping[str, Any], dict[str, str]]:
        """The revision (``registeredAt`` included) and its tags."""
        with _calling("DescribeTaskDefinition", arn):
            answer = self.client("ecs").describe_task_definition(taskDefinition=arn, include=["TAGS"])
        return answer["taskDefinition"], {str(t["key"]): str(t["value"]) for t in answer.get("tags") or []}

    def families(self, suffix: str) -> list[str]:
        """The families with revisions, active or inactive, whose name ends with ``suffix``."""
        with _calling("ListTaskDefinitionFamilies", ""):
            pages = self.client("ecs").get_paginator("list_task_definition_families").paginate(status="ALL")
            return [f for page in pages for f in page.get("families") or [] if str(f).endswith(suffix)]

    def revisions(self, family: str, status: str = "ACTIVE") -> list[str]:
        """The ARNs of the family's revisions in ``status``: ACTIVE, or INACTIVE (deregistered, not deleted)."""
        with _calling("ListTaskDefinitions", f"of family {family}"):
            pages = self.client("ecs").get_paginator("list_task_definitions")
            return [
                arn
                for page in pages.paginate(familyPrefix=family, status=status)
                for arn in page.get("taskDefinitionArns") or []
            ]

    # -- tasks -------------------------------------------------------------------------------------------

    def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """The task RunTask started; a failure ECS reports (no capacity, a missing cluster) is an error."""
        where = f"of {request.get('taskDefinition')} in cluster {request.get('cluster')}"
        with _calling("RunTask", where):
            answer = self.client("ecs").run_task(**request)
        tasks = answer.get("tasks") or []
        if tasks:
            return dict(tasks[0])
        failures = answer.get("failures") or []
        reasons = "; ".join(
            f"{f.get('reason', 'no reason')}"
            + (f" ({f['arn']})" if f.get("arn") else "")
            + (f": {f['detail']}" if f.get("detail") else "")
            for f in failures
        )
        raise EcsTaskError(f"RunTask {where} started no task: {reasons or 'ECS gave no reason'}")

    def describe_tasks(self, cluster: str, arns: Sequence[str]) -> list[Mapping[str, Any]]:
        """The tasks with their tags; a task ECS no longer knows is left out."""
        found: list[Mapping[str, Any]] = []
        for start in range(0, len(arns), DESCRIBE_BATCH):
            batch = list(arns[start : start + DESCRIBE_BATCH])
            with _calling("DescribeTasks", f"in cluster {cluster}"):
                answer = self.client("ecs").describe_tasks(cluster=cluster, tasks=batch, include=["TAGS"])
            found += answer.get("tasks") or []
        return found

    def describe_task(self, cluster: str, arn: str) -> Mapping[str, Any]:
        """The task; TaskMissing when ECS does not know it (not yet, right after RunTask; or no longer)."""
        found = self.describe_tasks(cluster, [arn])
        if not found:
            raise TaskMissing(f"DescribeTasks: ECS does not know task {arn} in cluster {cluster}")
        return found[0]

    def stop_task(self, cluster: str, arn: str, reason: str) -> None:
        with _calling("StopTask", f"{arn} in cluster {cluster}"):
            self.client("ecs").stop_task(cluster=cluster, task=arn, reason=reason[:255])

    def running_tasks(self, cluster: str, started_by: str | None = None) -> list[str]:
        """The ARNs of the cluster's tasks that are to run (desired status RUNNING); with ``started_by``,
        those RunTask started with it only."""
        arguments = {"cluster": cluster, "desiredStatus": "RUNNING"}
        if started_by:
            arguments["startedBy"] = started_by
        with _calling("ListTasks", f"in cluster {cluster}"):
            pages = self.client("ecs").get_paginator("list_tasks").paginate(**arguments)
            return [arn for page in pages for arn in page.get("taskArns") or []]

    def tag_resource(self, arn: str, tags: Mapping[str, str]) -> None:
        """Add (or change) tags of a task or a revision."""
        with _calling("TagResource", arn):
            self.client("ecs").tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in tags.items()])

    # -- where a task is reached -------------------------------------------------------------------------

    def public_ip(self, network_interface: str) -> str | None:
        """The public IP address of a task's elastic network interface (assignPublicIp ENABLED)."""
        with _calling("ec2:DescribeNetworkInterfaces", network_interface):
            answer = self.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[network_interface])
        for interface in answer.get("NetworkInterfaces") or []:
            address = (interface.get("Association") or {}).get("PublicIp")
            if address:
                return str(address)
        return None

    def instance_address(self, cluster: str, container_instance: str, public: bool) -> str | None:
        """The private (or public) IP address of the EC2 instance a bridge or host mode task runs on."""
        with _calling("DescribeContainerInstances", f"{container_instance} in cluster {cluster}"):
            answer = self.client("ecs").describe_container_instances(
                cluster=cluster, containerInstances=[container_instance]
            )
        instances = [str(i["ec2InstanceId"]) for i in answer.get("containerInstances") or [] if i.get("ec2InstanceId")]
        if not instances:
            return None
        with _calling("ec2:DescribeInstances", instances[0]):
            described = self.client("ec2").describe_instances(InstanceIds=instances[:1])
        for reservation in described.get("Reservations") or []:
            for instance in reservation.get("Instances") or []:
                address = instance.get("PublicIpAddress" if public else "PrivateIpAddress")
                if address:
                    return str(address)
        return None

    # -- CloudWatch Logs ---------------------------------------------------------------------------------

    def log_events(
        self, group: str, stream: str, region: str | None, token: str | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        """Every event of the stream after ``token`` (from its head without one), page by page, and the token
        to go on from; no events and the same token while the stream does not exist yet."""
        client = self.client("logs", region)
        events: list[Mapping[str, Any]] = []
        while True:
            arguments: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if token:
                arguments["nextToken"] = token
            try:
                with _calling("logs:GetLogEvents", f"of stream {stream} in group {group}"):
                    page = client.get_log_events(**arguments)
            except _NotFound as exc:
                if "log group" in str(exc).lower():
                    raise EcsTaskError(_no_log_group(group, region, exc)) from None
                return events, token  # the stream: nothing written yet
            events += page.get("events") or []
            following = page.get("nextForwardToken")
            # The last page gives back the token it was asked with.
            if not following or following == token:
                return events, token
            token = str(following)


def _no_log_group(group: str, region: str | None, error: EcsTaskError) -> str:
    where = f" in region {region}" if region else ""
    return (
        f"CloudWatch Logs group {group}{where} does not exist, so ECS cannot write the container's output "
        f"there either: create the group, or give the container's logConfiguration the option "
        f"awslogs-create-group 'true' (its execution role then needs logs:CreateLogGroup) ({error})"
    )


def _quiet_loggers() -> None:
    """botocore's DEBUG lines hold request headers and bodies: never in a run's captured logs."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET included: it would follow the root logger's DEBUG
            logger.setLevel(logging.INFO)


def _client_config() -> Any:
    from botocore.config import Config

    return Config(retries={"mode": "standard"}, user_agent_extra=f"pytest-ecstask/{__version__}")


class TaskMissing(EcsTaskError):
    """DescribeTasks does not know the task: not yet (ECS is eventually consistent), or no longer."""


class _NotFound(EcsTaskError):
    """The resource asked for does not exist (yet)."""


class _Unsupported(EcsTaskError):
    """The operation is not there: a region or an endpoint that does not offer it."""


_ACCESS_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnrecognizedClientException"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}


@contextmanager
def _calling(operation: str, what: str) -> Iterator[None]:
    """Raise botocore's errors of ``operation`` as EcsTaskError, with what to do about them."""
    import botocore.exceptions as errors

    where = f"{operation} {what}".rstrip()
    try:
        yield
    except errors.ClientError as exc:
        error = exc.response.get("Error") or {}
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        text = f"{where}: {code}: {message}"
        if code == "ResourceNotFoundException":
            raise _NotFound(text) from None
        if code in ("UnsupportedFeatureException", "UnknownOperationException", "InvalidAction"):
            raise _Unsupported(text) from None
        if code in _ACCESS_DENIED:
            text += f". The credentials boto3 found may not call {operation}: {POLICY}"
        elif code in _EXPIRED:
            text += ". The credentials boto3 found have expired: renew them (aws sso login, a new role session)"
        raise EcsTaskError(text) from None
    except errors.NoCredentialsError:
        raise EcsTaskError(
            f"{where}: boto3 found no AWS credentials; --ecs-backend=aws takes them from boto3's usual chain: "
            "AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the configuration files, an instance or "
            "task role, or a CI role (aws-actions/configure-aws-credentials)"
        ) from None
    except errors.NoRegionError:
        raise EcsTaskError(
            f"{where}: boto3 knows no AWS region; set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region) "
            "to the region of the cluster (--ecs-region is the region of a local run's metadata only)"
        ) from None
    except errors.ParamValidationError as exc:
        from pytest_ecstask.ecsrequests import without_values

        # botocore quotes the values it refuses, and a value may be a secret: the parameter and the type only.
        raise EcsTaskError(f"{where}: botocore refused the request: {without_values(str(exc))}") from None
    except errors.BotoCoreError as exc:
        raise EcsTaskError(f"{where}: {type(exc).__name__}: {exc}") from None
