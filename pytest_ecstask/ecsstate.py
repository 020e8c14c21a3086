"""A task on ECS as DescribeTasks tells it, in the words a test reads. Pure: no boto3, no AWS.

The AWS backend polls DescribeTasks; each answer is read here into a :class:`TaskSeen` (the task's status,
stop code and reason; each container's status, exit code, health and reason; where the task is reached),
and two answers in a row are compared into the lines of the task's timeline and the events other plugins
get, as a local run records them. Also here: how often to ask (:func:`poll_delays`), the CloudWatch Logs
stream ECS writes an ``awslogs`` container's output to, where the output of another log driver went, the
port a test connects to, and the one message for what a remote task cannot do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytest_ecstask.errors import EcsTaskError

BACKEND_FLAG = "--ecs-backend=aws"
RUNNING, STOPPED = "RUNNING", "STOPPED"
# The first answers come quickly (a task that fails to pull stops in seconds); a task that takes minutes to
# place and pull is asked every few seconds, well under DescribeTasks' rate limit. Not the waiter's 6 s.
FIRST_DELAY, DELAY_FACTOR, LONGEST_DELAY = 0.5, 1.5, 3.0


@dataclass(frozen=True)
class ContainerSeen:
    """One container of a DescribeTasks answer; a container not in it yet is PENDING."""

    name: str
    status: str = "PENDING"
    exit_code: int | None = None  # once STOPPED, as ECS reports it
    health: str = "UNKNOWN"
    reason: str | None = None
    runtime_id: str | None = None  # the Docker container id on the instance: an awslogs stream without prefix
    bindings: tuple[tuple[int, str, int], ...] = ()  # (containerPort, protocol, hostPort), bridge mode


@dataclass(frozen=True)
class TaskSeen:
    """One task of a DescribeTasks answer."""

    arn: str
    status: str
    desired_status: str = RUNNING
    stop_code: str | None = None
    stopped_reason: str | None = None
    containers: Mapping[str, ContainerSeen] = field(default_factory=dict)
    private_ip: str | None = None  # awsvpc: the task's elastic network interface
    network_interface: str | None = None
    container_instance: str | None = None  # EC2: the instance it runs on (bridge and host mode)
    created_at: datetime | None = None
    started_by: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def container(self, name: str) -> ContainerSeen:
        return self.containers.get(name) or ContainerSeen(name)


def read_task(description: Mapping[str, Any]) -> TaskSeen:
    """A DescribeTasks (or RunTask) task, as boto3 returns it."""
    containers = [c for c in description.get("containers") or [] if "name" in c]
    private_ip, network_interface = _network_interface(description, containers)
    created = description.get("createdAt")
    return TaskSeen(
        arn=str(description["taskArn"]),
        status=str(description.get("lastStatus") or "PROVISIONING"),
        desired_status=str(description.get("desiredStatus") or RUNNING),
        stop_code=description.get("stopCode") or None,
        stopped_reason=description.get("stoppedReason") or None,
        containers={c["name"]: _read_container(c) for c in containers},
        private_ip=private_ip,
        network_interface=network_interface,
        container_instance=description.get("containerInstanceArn") or None,
        created_at=created if isinstance(created, datetime) else None,
        started_by=str(description.get("startedBy") or ""),
        tags={str(t.get("key")): str(t.get("value")) for t in description.get("tags") or []},
    )


def _network_interface(
    description: Mapping[str, Any], containers: Sequence[Mapping[str, Any]]
) -> tuple[str | None, str | None]:
    """The task's private IP address and its network interface (awsvpc): from its ENI attachment, else the
    address its containers report."""
    details = {
        d.get("name"): d.get("value")
        for a in description.get("attachments") or []
        if a.get("type") == "ElasticNetworkInterface"
        for d in a.get("details") or []
    }
    reported = [i.get("privateIpv4Address") for c in containers for i in c.get("networkInterfaces") or []]
    private_ip = details.get("privateIPv4Address") or next((ip for ip in reported if ip), None)
    return private_ip, details.get("networkInterfaceId")


def _read_container(c: Mapping[str, Any]) -> ContainerSeen:
    status = str(c.get("lastStatus") or "PENDING")
    code = c.get("exitCode")
    bindings = tuple(
        (int(b["containerPort"]), str(b.get("protocol") or "tcp"), int(b["hostPort"]))
        for b in c.get("networkBindings") or []
        if "containerPort" in b and "hostPort" in b
    )
    return ContainerSeen(
        name=str(c["name"]),
        status=status,
        # An exit code is the container's once it stopped; before that, an answer's number means nothing.
        exit_code=int(code) if code is not None and status == STOPPED else None,
        health=str(c.get("healthStatus") or "UNKNOWN"),
        reason=c.get("reason") or None,
        runtime_id=c.get("runtimeId") or None,
        bindings=bindings,
    )


# -- what changed between two answers: the timeline and the events --------------------------------------


@dataclass(frozen=True)
class Change:
    """A line of the task's timeline, and the event other plugins get for it (None: a line only)."""

    container: str | None
    what: str
    event: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def changes(before: TaskSeen | None, after: TaskSeen, names: Sequence[str]) -> list[Change]:
    """What ``after`` says that ``before`` did not, container by container (in ``names`` order), then the task."""
    found = []
    for name in names:
        found += _container_changes(before.container(name) if before else ContainerSeen(name), after.container(name))
    if before is None or before.status != after.status:
        if after.status == STOPPED:
            found.append(
                Change(
                    None,
                    f"task STOPPED: {after.stop_code or 'no stop code'}: {after.stopped_reason or 'no reason given'}",
                    "task_stopped",
                    {"stop_code": after.stop_code, "reason": after.stopped_reason},
                )
            )
        else:
            found.append(Change(None, f"task {after.status}"))
    return found


def _container_changes(was: ContainerSeen, now: ContainerSeen) -> list[Change]:
    found = []
    name = now.name
    if was.status != now.status:
        if now.status == RUNNING:
            found.append(Change(name, "RUNNING", "container_started"))
        elif now.status == STOPPED:
            code = "no exit code" if now.exit_code is None else f"exit code {now.exit_code}"
            why = f" ({now.reason})" if now.reason else ""
            found.append(Change(name, f"STOPPED, {code}{why}", "container_exited", {"exit_code": now.exit_code}))
        else:
            found.append(Change(name, now.status))
    if was.health != now.health and now.health != "UNKNOWN":
        event = "container_healthy" if now.health == "HEALTHY" else None
        found.append(Change(name, now.health, event))
    return found


def poll_delays(
    first: float = FIRST_DELAY, factor: float = DELAY_FACTOR, longest: float = LONGEST_DELAY
) -> Iterator[float]:
    """Seconds to wait before each next DescribeTasks: short at first, growing to ``longest``."""
    delay = first
    while True:
        yield delay
        delay = min(delay * factor, longest)


# -- where a container's output went ---------------------------------------------------------------------


@dataclass(frozen=True)
class LogStream:
    """The CloudWatch Logs stream ECS writes an awslogs container's output to."""

    group: str
    stream: str
    region: str | None  # awslogs-region; None: the client's own


def log_stream(container: Mapping[str, Any], task_id: str, runtime_id: str | None) -> LogStream | str:
    """Where ECS writes the container's output: a CloudWatch Logs stream, or (text) why it cannot be read here.

    With ``awslogs-stream-prefix`` the stream is ``prefix/container name/task id``; without one (EC2 only),
    Docker's awslogs driver names it after the container id, which ECS reports once the container exists.
    """
    name = str(container.get("name"))
    config = container.get("logConfiguration") or {}
    driver = config.get("logDriver")
    if not driver:
        return (
            f"container {name!r} has no logConfiguration, so ECS keeps its output nowhere that can be read; give "
            "it the awslogs log driver to read its logs here"
        )
    if driver == "awsfirelens":
        return (
            f"container {name!r} sends its output to FireLens (logDriver awsfirelens): the log router's "
            "configuration says where it went; pytest-ecstask reads awslogs streams only"
        )
    if driver != "awslogs":
        return (
            f"container {name!r} sends its output with the {driver!r} log driver (logConfiguration.logDriver), "
            "not to CloudWatch Logs: read it there; pytest-ecstask reads awslogs streams only"
        )
    options = config.get("options") or {}
    group = options.get("awslogs-group")
    if not group:
        return f"container {name!r}: its awslogs logConfiguration has no awslogs-group, so no stream can be named"
    prefix = options.get("awslogs-stream-prefix")
    if prefix:
        stream = f"{prefix}/{name}/{task_id}"
    elif runtime_id:
        stream = runtime_id
    else:
        return (
            f"container {name!r}: without awslogs-stream-prefix its stream is named after its container id, which "
            "ECS has not reported yet"
        )
    return LogStream(str(group), stream, options.get("awslogs-region") or None)


# -- how a test reaches a container ----------------------------------------------------------------------


def published_port(
    container: Mapping[str, Any], network_mode: str, seen: ContainerSeen, container_port: int, protocol: str
) -> int:
    """The port to connect to for ``container_port``: the same number in awsvpc and host mode, the host port
    ECS bound in bridge mode."""
    name = str(container.get("name"))
    key = f"{int(container_port)}/{protocol}"
    mapped = [
        f"{int(m['containerPort'])}/{m.get('protocol') or 'tcp'}"
        for m in container.get("portMappings") or []
        if "containerPort" in m
    ]
    if key not in mapped:
        raise EcsTaskError(
            f"container {name!r} has no portMapping for {key}; its portMappings: {', '.join(mapped) or 'none'}"
        )
    if network_mode in ("awsvpc", "host"):
        return int(container_port)
    for bound_port, bound_protocol, host_port in seen.bindings:
        if bound_port == int(container_port) and bound_protocol == protocol:
            return host_port
    raise EcsTaskError(f"container {name!r}: ECS has bound no host port for {key} (the container is {seen.status})")


def not_on_ecs(what: str, why: str) -> EcsTaskError:
    """The one error for what a task on ECS cannot do, naming the backend."""
    return EcsTaskError(f"{what} is not possible with {BACKEND_FLAG}: {why}")
