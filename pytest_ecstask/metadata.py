"""What the task metadata endpoint answers (v3, v4), built from a task's record and Docker inspect data. Pure.

A task is registered with the run's server as a :class:`TaskRecord`: what the task definition and the plan
say about it, fixed when the task is created. The server may be another process, so a record travels as
JSON (:meth:`TaskRecord.to_dict`, :meth:`TaskRecord.from_dict`). Live state (ids, statuses, timestamps,
health, exit codes, addresses, published ports) comes from ``docker inspect`` data the server reads on each
request and hands to the builders here; no function in this module talks to Docker or serves HTTP.
Container statuses come from :func:`pytest_ecstask.taskstate.observed_status`, as the runner's and the
reports' do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_ecstask.dockerstate import (
    CREATED,
    HEALTHY,
    RUNNING,
    STOPPED,
    UNHEALTHY,
    docker_time,
    observed_status,
)
from pytest_ecstask.endpointids import authorization_token, credentials_id, derive, metadata_id
from pytest_ecstask.lifecycle import LABEL_PREFIX

if TYPE_CHECKING:
    from pytest_ecstask.credentials import TaskCredentials
    from pytest_ecstask.plan import ContainerPlan, TaskPlan
    from pytest_ecstask.taskdef import TaskDefinition

NORMAL, CNI_PAUSE = "NORMAL", "CNI_PAUSE"  # container types as the metadata names them
RESOURCES_PROVISIONED = "RESOURCES_PROVISIONED"  # what ECS says of a running pause container
PODMAN_DEFAULT_NETWORK = "podman"  # what Podman calls the network Docker calls bridge

# Docker inspect data by Docker container name, as the server read it for one answer; None: the container is gone.
Inspected = Mapping[str, Mapping[str, Any] | None]

T = TypeVar("T")


# -- the records -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    protocol: str  # "tcp" | "udp"

    @property
    def key(self) -> str:
        """How Docker names the port in ``NetworkSettings.Ports``."""
        return f"{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class ContainerRecord:
    name: str
    docker_name: str
    image: str  # as the task definition writes it, before any image mapping
    type: str = NORMAL  # NORMAL, or CNI_PAUSE for the task's pause container
    essential: bool = False
    metadata_id: str = ""  # the id in its metadata URIs; none for the pause container, where no code asks
    health_check: bool = False  # the task definition gives it a healthCheck
    health_retries: int = 3  # failures in a row that make it UNHEALTHY
    limits: Mapping[str, int] = field(default_factory=lambda: {"CPU": 0, "Memory": 0})  # cpu and (hard) memory
    log_driver: str | None = None
    log_options: Mapping[str, str] = field(default_factory=dict)  # as ECS hands them to the agent
    container_arn: str = ""
    ports: tuple[ContainerPort, ...] = ()  # its portMappings
    labels: Mapping[str, str] = field(default_factory=dict)  # the agent's and the dockerLabels, as created
    restart_policy_enabled: bool = False  # the agent reports a RestartCount only then

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContainerRecord:
        return cls(**{**data, "ports": tuple(ContainerPort(**p) for p in data.get("ports") or ())})


@dataclass(frozen=True)
class CredentialsRecord:
    """What the credentials endpoint serves for a task, and what a request must present to get it."""

    id: str = field(repr=False)
    token: str = field(repr=False)  # the Authorization header asked for; "" in the relative form, as on ECS
    role_arn: str
    values: Mapping[str, str] = field(repr=False)  # AccessKeyId, SecretAccessKey, Token, Expiration


@dataclass(frozen=True)
class TaskRecord:
    """What the endpoint server needs to answer for a task; live state it reads from Docker itself."""

    task_id: str
    task_arn: str
    cluster: str
    family: str
    revision: int
    network_mode: str
    network_name: str | None  # the Docker network: awsvpc's own per task, bridge mode's default "bridge"
    pause_docker_name: str | None
    availability_zone: str
    launch_type: str
    containers: tuple[ContainerRecord, ...]  # the pause container first, when the task has one
    task_tags: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)  # task-level CPU (vCPUs) and Memory (MiB)
    pull_started_at: str = ""
    pull_stopped_at: str = ""
    credentials: CredentialsRecord | None = None
    fault_injection: bool = False  # the task definition's enableFaultInjection
    # Told by the plugin process, which restarts containers under a restartPolicy (Docker counts none of
    # it), by container name: how often each was restarted, and the StartedAt of its first run.
    restart_counts: Mapping[str, int] = field(default_factory=dict)
    first_started_at: Mapping[str, str] = field(default_factory=dict)

    def container(self, name: str) -> ContainerRecord:
        return next(c for c in self.containers if c.name == name)

    def network_owner(self, container: ContainerRecord) -> str:
        """The Docker name of the container whose network ``container`` uses."""
        return network_owner(self.network_mode, container.docker_name, self.pause_docker_name)

    def network_owners(self) -> list[str]:
        """The containers holding the task's addresses: the pause container under awsvpc, else every one."""
        return list(dict.fromkeys(self.network_owner(c) for c in self.containers))

    def to_inspect(self, containers: Iterable[ContainerRecord]) -> list[str]:
        """The containers to inspect for an answer about ``containers``: each one and its network's owner, and
        the essential containers, whose exit makes every container's desired status STOPPED."""
        about = [name for c in containers for name in (c.docker_name, self.network_owner(c))]
        return list(dict.fromkeys([*about, *(c.docker_name for c in self.containers if c.essential)]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the trip to the server process."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRecord:
        credentials = data.get("credentials")
        return cls(
            **{
                **data,
                "containers": tuple(ContainerRecord.from_dict(c) for c in data["containers"]),
                "credentials": CredentialsRecord(**credentials) if credentials else None,
            }
        )


def build_task_record(
    plan: TaskPlan,
    definition: TaskDefinition,
    credentials: TaskCredentials | None,
    pull_started: str,
    pull_stopped: str,
) -> TaskRecord:
    """The record of a planned task, with the credentials it serves and when its images were pulled."""
    options = plan.options
    containers = [_container_record(plan, definition, c) for c in plan.containers]
    if plan.pause is not None:
        pause = plan.pause
        labels = _agent_labels(pause)
        containers.insert(0, ContainerRecord(pause.name, pause.docker_name, pause.image, CNI_PAUSE, labels=labels))
    tags = definition.raw.get("tags") or []
    return TaskRecord(
        task_id=plan.task_id,
        task_arn=plan.task_arn,
        cluster=options.cluster,
        family=plan.family,
        revision=plan.revision,
        network_mode=plan.network_mode,
        network_name=plan.network.docker_name if plan.network else None,
        pause_docker_name=plan.pause.docker_name if plan.pause else None,
        availability_zone=options.availability_zone,
        launch_type=options.launch_type,
        containers=tuple(containers),
        task_tags={t["key"]: t.get("value", "") for t in tags if "key" in t},
        limits=task_limits(definition.raw),
        pull_started_at=pull_started,
        pull_stopped_at=pull_stopped,
        credentials=None if credentials is None else _served(plan, credentials),
        fault_injection=bool(definition.raw.get("enableFaultInjection")),
    )


def _served(plan: TaskPlan, credentials: TaskCredentials) -> CredentialsRecord:
    options = plan.options
    relative = options.endpoint is not None and options.endpoint.relative_credentials
    return CredentialsRecord(
        id=credentials_id(options.secret),
        token="" if relative else authorization_token(options.secret),
        role_arn=credentials.role_arn,
        values=credentials.as_response(),
    )


def _container_record(plan: TaskPlan, definition: TaskDefinition, c: ContainerPlan) -> ContainerRecord:
    options = plan.options
    container = definition.container(c.name)
    raw = container.raw
    log = raw.get("logConfiguration") or {}
    uuid = derive(options.secret, "container-arn", c.name)
    return ContainerRecord(
        name=c.name,
        docker_name=c.docker_name,
        image=container.image,
        essential=c.essential,
        metadata_id=metadata_id(options.secret, c.name),
        health_check=c.has_health_check,
        health_retries=int((raw.get("healthCheck") or {}).get("retries") or 3),
        # memoryReservation is a Docker setting the agent passes on; its Memory limit is the hard one only.
        limits={"CPU": int(raw.get("cpu") or 0), "Memory": int(raw.get("memory") or 0)},
        log_driver=log.get("logDriver"),
        log_options=log_options(log, c.name, plan.task_id),
        container_arn=f"arn:aws:ecs:{options.region}:{options.account_id}:container/{options.cluster}/"
        f"{plan.task_id}/{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}",
        ports=tuple(ContainerPort(p.container_port, p.protocol) for p in c.ports),
        labels=_agent_labels(c),
        restart_policy_enabled=c.restart_policy is not None,
    )


def _agent_labels(c: ContainerPlan) -> dict[str, str]:
    """The labels the agent would have created the container with: its own and the dockerLabels, not ours."""
    labels = c.create_body.get("Labels") or {}
    return {k: str(v) for k, v in labels.items() if not k.startswith(f"{LABEL_PREFIX}.")}


def log_options(log: Mapping[str, Any], container: str, task_id: str) -> dict[str, str]:
    """A logConfiguration's options as ECS hands them to the agent, which reports them in LogOptions.

    For awslogs, ECS turns ``awslogs-stream-prefix`` (no Docker option) into the stream it names,
    ``prefix/container/task-id``; without a prefix Docker names the stream after the container id.
    """
    options = {str(k): str(v) for k, v in (log.get("options") or {}).items()}
    prefix = options.pop("awslogs-stream-prefix", None) if log.get("logDriver") == "awslogs" else None
    if prefix:
        options["awslogs-stream"] = f"{prefix}/{container}/{task_id}"
    return options


def task_limits(raw: Mapping[str, Any]) -> dict[str, float]:
    """Task-level ``cpu`` in vCPUs and ``memory`` in MiB, those the task definition sets."""
    limits: dict[str, float] = {}
    if raw.get("cpu"):
        limits["CPU"] = _number(raw["cpu"]) / 1024
    if raw.get("memory"):
        limits["Memory"] = int(_number(raw["memory"]))
    return limits


def _number(value: Any) -> float:
    """Task-level cpu/memory are strings in the API: "1024", "1 vCPU", "2 GB"."""
    text = str(value).strip().lower()
    number = float("".join(ch for ch in text if ch.isdigit() or ch == ".") or 0)
    if "vcpu" in text:
        return number * 1024
    if "gb" in text:
        return number * 1024
    return number


# -- where a container's network and published ports are ----------------------------------------------------


def network_owner(network_mode: str, own: T, pause: T | None) -> T:
    """Whose network a container uses: under awsvpc every container joins the pause container's namespace,
    so its addresses and published ports are the pause container's."""
    return pause if network_mode == "awsvpc" and pause is not None else own


def published_ports(info: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Docker's ``NetworkSettings.Ports`` of an inspected container: bindings by "port/protocol"."""
    return dict(((info or {}).get("NetworkSettings") or {}).get("Ports") or {})


def host_binding(published: Mapping[str, Any], key: str) -> tuple[int, str] | None:
    """The host port and address a port ("8080/tcp") is published on; None when it is not."""
    for binding in published.get(key) or []:
        return int(binding["HostPort"]), binding.get("HostIp") or "0.0.0.0"
    return None


# -- the answers -------------------------------------------------------------------------------------------
# Built as the agent builds them (agent/handlers/v2/response.go, v3, v4/response.go, v4/tmdsstate.go), its
# fields in its order; a field the agent leaves empty is left out, as its Go encoder does (omitempty).

# Statuses only the agent's own state has: a container whose image is there but that is not created yet,
# and the task status of such a container (ecs-agent/api/container/status, ecs-agent/api/task/status).
PULLED, MANIFEST_PULLED, NONE = "PULLED", "MANIFEST_PULLED", "NONE"
# A task's known status is the earliest of its containers' (MapContainerToTaskStatus), in this order.
TASK_STATUS_ORDER = (NONE, MANIFEST_PULLED, CREATED, RUNNING, STOPPED)
TASK_STATUS_OF_CONTAINER = {
    PULLED: MANIFEST_PULLED,
    CREATED: CREATED,
    RUNNING: RUNNING,
    RESOURCES_PROVISIONED: RUNNING,  # the pause container's steady state
    STOPPED: STOPPED,
}
MINIMUM_CPU = 2  # the agent reports less than 2 cpu units (0 included) as 2, the CPU shares Docker gets
HEALTH_OUTPUT_LIMIT = 1024  # what the agent keeps of a health check's output
DOCKER_HEALTH = {"healthy": HEALTHY, "unhealthy": UNHEALTHY}  # "starting" is no status the agent reports
# Fields the agent writes even when empty (no omitempty in its structs); Health and RestartCount when it has them.
CONTAINER_ALWAYS = {"DockerId", "Name", "DockerName", "Image", "ImageID", "DesiredStatus", "KnownStatus", "Limits"}
CONTAINER_ALWAYS |= {"Type", "Health", "RestartCount"}
TASK_ALWAYS = {"Cluster", "TaskARN", "Family", "Revision", "KnownStatus", "FaultInjectionEnabled"}

# The Health each container was last answered with, by Docker id: the agent changes it only when the status
# changes, so the server keeps what it said.
SeenHealth = Mapping[str, Mapping[str, Any]]


def container_response(
    task: TaskRecord, c: ContainerRecord, inspected: Inspected, v4: bool, seen: SeenHealth | None = None
) -> dict[str, Any]:
    """``${ECS_CONTAINER_METADATA_URI_V4}`` (or the v3 one) of container ``c``."""
    info = inspected.get(c.docker_name) or {}
    known, desired = container_statuses(task, c, inspected)
    owner = inspected.get(task.network_owner(c))
    out: dict[str, Any] = {
        "DockerId": info.get("Id", ""),
        "Name": c.name,
        "DockerName": c.docker_name,
        "Image": c.image,
        "ImageID": "" if c.type == CNI_PAUSE else info.get("Image", ""),
        "Ports": port_mappings(task, c, owner, v4),
        "Labels": dict(c.labels),
        "DesiredStatus": desired,
        "KnownStatus": known,
        "ExitCode": observed_status(info["State"], has_health_check=False).exit_code if "State" in info else None,
        "Limits": {"CPU": max(c.limits.get("CPU", 0), MINIMUM_CPU), "Memory": c.limits.get("Memory", 0)},
        **container_times(task, c, info),
        "Type": c.type,
    }
    own_networks = networks(task, owner, v4)
    if not v4:
        out["Networks"] = own_networks
    if c.health_check:
        previous = (seen or {}).get(info.get("Id", ""))
        out["Health"] = health(info.get("State", {}).get("Health"), c.health_retries, previous)
    out["Volumes"] = volumes(info) if c.type != CNI_PAUSE else []
    if v4:
        options = dict(c.log_options) if c.log_driver else {}
        out.update(LogDriver=c.log_driver, LogOptions=options, ContainerARN=c.container_arn)
        out["Networks"] = own_networks
        if c.restart_policy_enabled:
            out["RestartCount"] = task.restart_counts.get(c.name, 0)
    return {key: value for key, value in out.items() if value not in (None, "", [], {}) or key in CONTAINER_ALWAYS}


def container_statuses(task: TaskRecord, c: ContainerRecord, inspected: Inspected) -> tuple[str, str]:
    """Known and desired status, in the agent's words.

    A container not created yet is PULLED (the task's images are there before it is registered). Every
    container's desired status is its steady state (RUNNING; RESOURCES_PROVISIONED for the pause container)
    until the task's desired status turns STOPPED, then STOPPED: a non-essential container that exited on
    its own stays desired RUNNING, as with the agent.
    """
    stopping = task_stopping(task, inspected)
    info = inspected.get(c.docker_name)
    if info is None:
        known = STOPPED if stopping else PULLED
    else:
        known = observed_status(info.get("State") or {}, has_health_check=False).known_status
    steady = RESOURCES_PROVISIONED if c.type == CNI_PAUSE else RUNNING
    if known == RUNNING:
        known = steady
    return known, STOPPED if stopping else steady


def task_stopping(task: TaskRecord, inspected: Inspected) -> bool:
    """The agent's task desired status is STOPPED once an essential container has stopped (or all are gone)."""
    if all(inspected.get(name) is None for name in inspected):
        return True
    return any(_exited(inspected.get(c.docker_name)) for c in task.containers if c.essential)


def _exited(info: Mapping[str, Any] | None) -> bool:
    return info is not None and observed_status(info.get("State") or {}, has_health_check=False).known_status == STOPPED


def container_times(task: TaskRecord, c: ContainerRecord, info: Mapping[str, Any]) -> dict[str, str | None]:
    """CreatedAt, StartedAt, FinishedAt: Docker's, as the agent records them from inspect data.

    The agent keeps the StartedAt of the first run when a restartPolicy restarts the container (Docker's is
    the last start), and a FinishedAt once there is one: after a restart, that of the last exit.
    """
    state = info.get("State") or {}
    return {
        "CreatedAt": docker_time(info.get("Created")),
        "StartedAt": task.first_started_at.get(c.name) or docker_time(state.get("StartedAt")),
        "FinishedAt": docker_time(state.get("FinishedAt")),
    }


def health(docker_health: Mapping[str, Any] | None, retries: int, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """ECS's Health object, as the agent keeps it (api/container SetHealthStatus).

    No status before Docker has one (its "starting" is not reported: ``{}``). The status, the time and the
    output change only when the status does: they are those of the check that changed it. exitCode is that
    of the check that made the container UNHEALTHY, and stays after it recovers.
    """
    status = DOCKER_HEALTH.get(str((docker_health or {}).get("Status", "")).lower())
    if status is None or docker_health is None:
        return {}
    if previous and previous.get("status") == status:
        return dict(previous)
    log = list(docker_health.get("Log") or [])
    check = _deciding_check(log, status, int(docker_health.get("FailingStreak") or 0), retries) or {}
    out: dict[str, Any] = {"status": status, "statusSince": check.get("End")}
    exit_code = check.get("ExitCode") if status == UNHEALTHY else (previous or {}).get("exitCode")
    out["exitCode"] = exit_code or None
    out["output"] = str(check.get("Output") or "")[:HEALTH_OUTPUT_LIMIT]
    return {key: value for key, value in out.items() if value}


def _deciding_check(log: list[Mapping[str, Any]], status: str, streak: int, retries: int) -> Mapping[str, Any] | None:
    """The check, among the last ones Docker keeps, whose result gave the container its health status.

    UNHEALTHY: the failure that made ``retries`` in a row. HEALTHY: the first success after the last failure
    that counted (Docker keeps five results; with no failure among them, the oldest is the best known).
    """
    if not log:
        return None
    if status == UNHEALTHY:
        index = len(log) - streak + retries - 1
        return log[min(max(index, 0), len(log) - 1)]
    end = len(log)
    while end > 0 and log[end - 1].get("ExitCode") != 0:
        end -= 1  # failures since the status was set, fewer than retries
    start = end
    while start > 0 and log[start - 1].get("ExitCode") == 0:
        start -= 1
    return log[start] if start < end else log[0]


def volumes(info: Mapping[str, Any]) -> list[dict[str, str]]:
    """The container's mounts as Docker reports them: volume name, host path, path in the container."""
    keys = (("DockerName", "Name"), ("Source", "Source"), ("Destination", "Destination"))
    return [{ours: m[theirs] for ours, theirs in keys if m.get(theirs)} for m in info.get("Mounts") or []]


def networks(task: TaskRecord, owner: Mapping[str, Any] | None, v4: bool) -> list[dict[str, Any]]:
    """The ``Networks`` of a container, from the inspect data of the container whose network it uses.

    awsvpc: the task's ENI, here the pause container's address on the task network, with the v4 interface
    properties. Other modes: every Docker network the container is on, named as Docker names it ("bridge",
    "host", "none"), each with its address, "" where it has none (v4/tmdsstate_linux.go).
    """
    if task.network_mode == "awsvpc":
        return [_eni_network(task, owner, v4)]
    return [] if owner is None else _docker_networks(task, owner)


def _eni_network(task: TaskRecord, owner: Mapping[str, Any] | None, v4: bool) -> dict[str, Any]:
    attached = ((owner or {}).get("NetworkSettings") or {}).get("Networks") or {}
    net = attached.get(task.network_name or "") or {}
    entry: dict[str, Any] = {
        "NetworkMode": "awsvpc",
        "IPv4Addresses": [net["IPAddress"]] if net.get("IPAddress") else [],
    }
    entry.update(_ipv6(net))
    if v4:
        entry.update(_interface_properties(net))
    return {key: value for key, value in entry.items() if value not in ("", [], None)}


def _docker_networks(task: TaskRecord, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
    settings = owner.get("NetworkSettings") or {}
    attached = settings.get("Networks") or {}
    if not attached:  # engines before API 1.21 name no networks (the agent's fallback)
        mode = ((owner.get("HostConfig") or {}).get("NetworkMode")) or task.network_mode
        return [{"NetworkMode": mode, "IPv4Addresses": [settings.get("IPAddress") or ""]}]
    return [
        {"NetworkMode": _network_mode(task, name), "IPv4Addresses": [net.get("IPAddress") or ""], **_ipv6(net)}
        for name, net in attached.items()
    ]


def _network_mode(task: TaskRecord, network: str) -> str:
    """The network's name, as the agent reports it; Podman's default network (``podman``) is the bridge."""
    return "bridge" if task.network_mode == "bridge" and network == PODMAN_DEFAULT_NETWORK else network


def _ipv6(net: Mapping[str, Any]) -> dict[str, list[str]]:
    return {"IPv6Addresses": [net["GlobalIPv6Address"]]} if net.get("GlobalIPv6Address") else {}


def _interface_properties(net: Mapping[str, Any]) -> dict[str, Any]:
    """What v4 adds for the ENI of an awsvpc task: the attachment index is always 0 (one ENI per task)."""
    out: dict[str, Any] = {"AttachmentIndex": 0}
    if net.get("IPAddress") and net.get("IPPrefixLen"):
        prefix = int(net["IPPrefixLen"])
        out["IPv4SubnetCIDRBlock"] = str(ipaddress.ip_network(f"{net['IPAddress']}/{prefix}", strict=False))
    out["MACAddress"] = net.get("MacAddress")
    if net.get("Gateway") and net.get("IPPrefixLen"):
        out["SubnetGatewayIpv4Address"] = f"{net['Gateway']}/{net['IPPrefixLen']}"
    return out


def port_mappings(
    task: TaskRecord, c: ContainerRecord, owner: Mapping[str, Any] | None, v4: bool
) -> list[dict[str, Any]]:
    """The ``Ports`` of a container: every binding Docker published for its portMappings (both addresses,
    0.0.0.0 and ::, where Docker publishes both), ``HostIp`` in v4 only.

    None under awsvpc, as on ECS ("port mappings are not applicable to awsvpc network mode"), though here
    the pause container publishes them for the test; none in host mode, where Docker publishes nothing.
    """
    if task.network_mode == "awsvpc":
        return []
    published = published_ports(owner)
    out: list[dict[str, Any]] = []
    for port in c.ports:
        for binding in published.get(port.key) or []:
            mapping = {"ContainerPort": port.container_port, "Protocol": port.protocol}
            mapping["HostPort"] = int(binding.get("HostPort") or 0)
            if v4:
                mapping["HostIp"] = binding.get("HostIp") or "0.0.0.0"  # Podman leaves it empty for every address
            out.append(mapping)
    return out


def task_response(
    task: TaskRecord, inspected: Inspected, v4: bool, with_tags: bool, seen: SeenHealth | None = None
) -> dict[str, Any]:
    """``${ECS_CONTAINER_METADATA_URI_V4}/task`` (``/taskWithTags`` with ``with_tags``).

    v4 lists the containers not created yet too (the agent's pulled containers); v3 does not.
    """
    containers = [container_response(task, c, inspected, v4, seen) for c in task.containers]
    known = task_known_status(containers)
    if not v4:
        containers = [c for c in containers if c["KnownStatus"] != PULLED]
    out: dict[str, Any] = {
        "Cluster": task.cluster,
        "TaskARN": task.task_arn,
        "Family": task.family,
        "Revision": str(task.revision),
        "DesiredStatus": STOPPED if known == STOPPED or task_stopping(task, inspected) else RUNNING,
        "KnownStatus": known,
        "Containers": containers,  # last in v4, where its own struct adds it after the v2 fields
        "Limits": dict(task.limits),
        "PullStartedAt": task.pull_started_at,
        "PullStoppedAt": task.pull_stopped_at,
        "ExecutionStoppedAt": execution_stopped_at(task, inspected),
        "AvailabilityZone": task.availability_zone,
        # The agent asks ECS for the tags; a container instance has none here.
        "TaskTags": dict(task.task_tags) if with_tags else None,
        "LaunchType": task.launch_type if v4 else None,
    }
    if v4:
        out["Containers"] = out.pop("Containers")
        out["FaultInjectionEnabled"] = task.fault_injection
    return {key: value for key, value in out.items() if value not in (None, "", [], {}) or key in TASK_ALWAYS}


def task_known_status(containers: Iterable[Mapping[str, Any]]) -> str:
    """The earliest status of the task's containers (a stopped one does not hold it back: STOPPED is last)."""
    statuses = [TASK_STATUS_OF_CONTAINER.get(c["KnownStatus"], NONE) for c in containers]
    return min(statuses, key=TASK_STATUS_ORDER.index, default=NONE)


def execution_stopped_at(task: TaskRecord, inspected: Inspected) -> str | None:
    """When the first essential container stopped (the agent records the time it learnt of it)."""
    times = [
        docker_time(((inspected.get(c.docker_name) or {}).get("State") or {}).get("FinishedAt"))
        for c in task.containers
        if c.essential and _exited(inspected.get(c.docker_name))
    ]
    return min((t for t in times if t), default=None)


def task_addresses(task: TaskRecord, inspected: Inspected) -> set[str]:
    """The IPv4 addresses of a task's containers (under awsvpc, of its pause container), on every network."""
    addresses: set[str] = set()
    for name in task.network_owners():
        attached = ((inspected.get(name) or {}).get("NetworkSettings") or {}).get("Networks") or {}
        addresses.update(n["IPAddress"] for n in attached.values() if n.get("IPAddress"))
    return addresses


def with_network_stats(stats: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """The sample of a container on another's network namespace (awsvpc) with that namespace's counters, as
    the agent gives every container of an awsvpc task the task's network stats."""
    out = dict(stats)
    for key in ("networks", "network_rate_stats"):
        if owner.get(key):
            out[key] = owner[key]
    return out


def stats_response(sample: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """``/stats``: a Docker stats sample, with the previous sample of the container as ``precpu_stats``.

    A one-shot sample has no previous one; the agent keeps the last sample, and so does the server.
    """
    stats = dict(sample)
    if "id" not in stats and "Id" in stats:  # Podman's spelling
        stats["id"] = stats.pop("Id")
    if not (stats.get("precpu_stats") or {}).get("system_cpu_usage"):
        earlier = previous or stats
        stats["precpu_stats"] = earlier.get("cpu_stats", {})
        stats["preread"] = earlier.get("read", stats.get("read"))
    stats.setdefault("network_rate_stats", {"rx_bytes_per_sec": 0, "tx_bytes_per_sec": 0})
    return stats
