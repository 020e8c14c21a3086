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

from pytest_ecstask.endpointids import authorization_token, credentials_id, derive, metadata_id
from pytest_ecstask.taskstate import CREATED, PENDING, RUNNING, STOPPED, STOPPING, docker_time, observed_status

if TYPE_CHECKING:
    from pytest_ecstask.credentials import TaskCredentials
    from pytest_ecstask.plan import ContainerPlan, TaskPlan
    from pytest_ecstask.taskdef import TaskDefinition

NORMAL, CNI_PAUSE = "NORMAL", "CNI_PAUSE"  # container types as the metadata names them
RESOURCES_PROVISIONED = "RESOURCES_PROVISIONED"  # what ECS says of a running pause container
ECS_LABEL_PREFIX = "com.amazonaws.ecs."

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
    limits: Mapping[str, int] = field(default_factory=lambda: {"CPU": 0, "Memory": 0})
    log_driver: str | None = None
    log_options: Mapping[str, str] = field(default_factory=dict)
    container_arn: str = ""
    ports: tuple[ContainerPort, ...] = ()  # its portMappings

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
    network_name: str | None  # the task's own Docker network (bridge, awsvpc)
    pause_docker_name: str | None
    availability_zone: str
    launch_type: str
    containers: tuple[ContainerRecord, ...]  # the pause container first, when the task has one
    task_tags: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)  # task-level CPU (vCPUs) and Memory (MiB)
    pull_started_at: str = ""
    pull_stopped_at: str = ""
    credentials: CredentialsRecord | None = None

    def container(self, name: str) -> ContainerRecord:
        return next(c for c in self.containers if c.name == name)

    def network_owner(self, container: ContainerRecord) -> str:
        """The Docker name of the container whose network ``container`` uses."""
        return network_owner(self.network_mode, container.docker_name, self.pause_docker_name)

    def network_owners(self) -> list[str]:
        """The containers holding the task's addresses: the pause container under awsvpc, else every one."""
        return list(dict.fromkeys(self.network_owner(c) for c in self.containers))

    def to_inspect(self, containers: Iterable[ContainerRecord]) -> list[str]:
        """The containers to inspect for an answer about ``containers``: each one and its network's owner."""
        return list(dict.fromkeys(name for c in containers for name in (c.docker_name, self.network_owner(c))))

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
        containers.insert(0, ContainerRecord(pause.name, pause.docker_name, pause.image, type=CNI_PAUSE))
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
        limits={
            "CPU": int(raw.get("cpu") or 0),
            "Memory": int(raw.get("memory") or raw.get("memoryReservation") or 0),
        },
        log_driver=log.get("logDriver"),
        log_options=dict(log.get("options") or {}),
        container_arn=f"arn:aws:ecs:{options.region}:{options.account_id}:container/{options.cluster}/"
        f"{plan.task_id}/{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}",
        ports=tuple(ContainerPort(p.container_port, p.protocol) for p in c.ports),
    )


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


def container_response(task: TaskRecord, c: ContainerRecord, inspected: Inspected, v4: bool) -> dict[str, Any]:
    """``${ECS_CONTAINER_METADATA_URI_V4}`` (or the v3 one) of container ``c``."""
    info = inspected.get(c.docker_name)
    state = None if info is None else dict(info.get("State") or {})
    observed = observed_status(state, has_health_check=c.health_check)
    known, desired = _statuses(c, observed.known_status)
    info, state = info or {}, state or {}
    out: dict[str, Any] = {
        **_identity(c, info),
        "DesiredStatus": desired,
        "KnownStatus": known,
        "Limits": dict(c.limits),
    }
    if observed.exit_code is not None:
        out["ExitCode"] = observed.exit_code
    out.update(_times(info, state, stopped=known == STOPPED))
    out["Type"] = c.type
    if c.health_check and state.get("Health"):
        out["Health"] = _health(state["Health"], observed.health)
    owner = inspected.get(task.network_owner(c))
    if not v4:
        return {**out, "Networks": networks(task, owner, v4)}
    if c.log_driver:
        out.update(LogDriver=c.log_driver, LogOptions=dict(c.log_options))
    out.update(ContainerARN=c.container_arn, Networks=networks(task, owner, v4))
    ports = port_mappings(task, c, owner)
    return {**out, "Ports": ports} if ports else out


def _identity(c: ContainerRecord, info: Mapping[str, Any]) -> dict[str, Any]:
    labels = (info.get("Config", {}).get("Labels") or {}).items()
    return {
        "DockerId": info.get("Id", ""),
        "Name": c.name,
        "DockerName": c.docker_name,
        "Image": c.image,
        "ImageID": "" if c.type == CNI_PAUSE else info.get("Image", ""),
        "Labels": {k: v for k, v in labels if k.startswith(ECS_LABEL_PREFIX)},
    }


def _statuses(c: ContainerRecord, known: str) -> tuple[str, str]:
    """Known and desired status: a running pause container has its resources provisioned, and stays so."""
    if c.type == CNI_PAUSE:
        return (RESOURCES_PROVISIONED if known == RUNNING else known), RESOURCES_PROVISIONED
    return known, (RUNNING if known in (CREATED, RUNNING) else STOPPED)


def _times(info: Mapping[str, Any], state: Mapping[str, Any], stopped: bool) -> dict[str, str]:
    times = {"CreatedAt": docker_time(info.get("Created")), "StartedAt": docker_time(state.get("StartedAt"))}
    if stopped:
        times["FinishedAt"] = docker_time(state.get("FinishedAt"))
    return {key: value for key, value in times.items() if value}


def _health(docker_health: Mapping[str, Any], status: str) -> dict[str, Any]:
    """ECS's Health object: the status (Docker's "starting" is UNKNOWN) and the last check's result."""
    log = docker_health.get("Log") or []
    if not log:
        return {"status": "UNKNOWN"}
    last = log[-1]
    return {
        "status": status,
        "statusSince": last.get("End", ""),
        "exitCode": last.get("ExitCode"),
        "output": str(last.get("Output", "")).strip(),
    }


def networks(task: TaskRecord, owner: Mapping[str, Any] | None, v4: bool) -> list[dict[str, Any]]:
    """The ``Networks`` of a container, from the inspect data of the container whose network it uses."""
    if task.network_mode == "none":
        return []
    entry: dict[str, Any] = {"NetworkMode": task.network_mode, "IPv4Addresses": []}
    attached = ((owner or {}).get("NetworkSettings") or {}).get("Networks") or {}
    net = attached.get(task.network_name) if task.network_name else None
    if net and net.get("IPAddress"):
        entry.update(_addresses(net, v4))
    return [entry]


def _addresses(net: Mapping[str, Any], v4: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"IPv4Addresses": [net["IPAddress"]]}
    if v4:
        out["AttachmentIndex"] = 0
        if net.get("MacAddress"):
            out["MACAddress"] = net["MacAddress"]
        if net.get("IPPrefixLen") and net.get("Gateway"):
            prefix = int(net["IPPrefixLen"])
            out["IPv4SubnetCIDRBlock"] = str(ipaddress.ip_network(f"{net['IPAddress']}/{prefix}", strict=False))
            out["SubnetGatewayIpv4Address"] = f"{net['Gateway']}/{net['IPPrefixLen']}"
    return out


def port_mappings(task: TaskRecord, c: ContainerRecord, owner: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The v4 ``Ports`` of a container: each portMapping Docker published, on the owner of its network."""
    out: list[dict[str, Any]] = []
    published = published_ports(owner)
    for port in c.ports:
        mapping: dict[str, Any] = {"ContainerPort": port.container_port, "Protocol": port.protocol}
        if task.network_mode == "host":
            out.append({**mapping, "HostPort": port.container_port})  # the container's port is the host's
            continue
        binding = host_binding(published, port.key)
        if binding is not None:
            out.append({**mapping, "HostPort": binding[0], "HostIp": binding[1]})
    return out


def task_response(task: TaskRecord, inspected: Inspected, v4: bool, with_tags: bool) -> dict[str, Any]:
    """``${ECS_CONTAINER_METADATA_URI_V4}/task`` (``/taskWithTags`` with ``with_tags``)."""
    containers = [container_response(task, c, inspected, v4) for c in task.containers]
    known = task_known_status(task, containers)
    out: dict[str, Any] = {
        "Cluster": task.cluster,
        "TaskARN": task.task_arn,
        "Family": task.family,
        "Revision": str(task.revision),
        "DesiredStatus": RUNNING if known in (PENDING, RUNNING) else STOPPED,
        "KnownStatus": known,
        "Containers": containers,
    }
    if task.limits:
        out["Limits"] = dict(task.limits)
    if task.pull_started_at:
        out["PullStartedAt"] = task.pull_started_at
        out["PullStoppedAt"] = task.pull_stopped_at
    out["AvailabilityZone"] = task.availability_zone
    if v4:
        out["LaunchType"] = task.launch_type
    if with_tags:
        out["TaskTags"] = dict(task.task_tags)
        out["ContainerInstanceTags"] = {}
    return out


def task_known_status(task: TaskRecord, containers: Iterable[Mapping[str, Any]]) -> str:
    """The task's status from its containers' answers: the pause container does not count."""
    essential = {c.name for c in task.containers if c.essential}
    normal = {c["Name"]: c["KnownStatus"] for c in containers if c["Type"] == NORMAL}
    essentials = [status for name, status in normal.items() if name in essential]
    if normal and set(normal.values()) == {STOPPED}:
        return STOPPED
    if STOPPED in essentials:
        return STOPPING
    if set(essentials) <= {RUNNING}:
        return RUNNING
    return PENDING


def task_addresses(task: TaskRecord, inspected: Inspected) -> set[str]:
    """The IPv4 addresses of a task's containers (under awsvpc, of its pause container), on every network."""
    addresses: set[str] = set()
    for name in task.network_owners():
        attached = ((inspected.get(name) or {}).get("NetworkSettings") or {}).get("Networks") or {}
        addresses.update(n["IPAddress"] for n in attached.values() if n.get("IPAddress"))
    return addresses


def stats_response(sample: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """``/stats``: a Docker stats sample, with the previous sample of the container as ``precpu_stats``.

    A one-shot sample has no previous one; the agent keeps the last sample, and so does the server.
    """
    stats = dict(sample)
    if not (stats.get("precpu_stats") or {}).get("system_cpu_usage"):
        earlier = previous or stats
        stats["precpu_stats"] = earlier.get("cpu_stats", {})
        stats["preread"] = earlier.get("read", stats.get("read"))
    stats.setdefault("network_rate_stats", {"rx_bytes_per_sec": 0, "tx_bytes_per_sec": 0})
    return stats
