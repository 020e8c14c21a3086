"""The launch plan: the dependency graph and the exact Docker request for every container. Pure: no Docker.

A plan holds the dependency graph the ECS agent builds (explicit ``dependsOn`` plus the implicit dependencies
it adds: ``links`` = START, ``volumesFrom`` = the source container created) and, per container, the Engine API
``ContainerCreate`` body the runtime posts unchanged. When each container starts and stops, given events, is
the state machine's part (:mod:`pytest_ecstask.taskstate`).
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_ecstask.endpointids import EndpointInfo, container_environment
from pytest_ecstask.errors import PlanError, problem_list
from pytest_ecstask.fields import unlisted_fields
from pytest_ecstask.lifecycle import LABEL_ROLE, Owner, resource_labels
from pytest_ecstask.secretvalues import merge_environment
from pytest_ecstask.taskdef import (
    ContainerDefinition,
    ContainerDependency,
    DependencyCondition,
    TaskDefinition,
)

MIB = 1024 * 1024
NANOS = 1_000_000_000

# ECS defaults (container definition reference).
DEFAULT_STOP_TIMEOUT = 30.0
HEALTH_CHECK_DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
# The agent never gives a container fewer CPU shares than this.
MIN_CPU_SHARES = 2

# Defaults shared with the settings: one place says them.
from pytest_ecstask.options import (  # noqa: E402
    DEFAULT_ACCOUNT_ID,
    DEFAULT_AVAILABILITY_ZONE,
    DEFAULT_CLUSTER,
    DEFAULT_LAUNCH_TYPE,
    DEFAULT_REGION,
    MASK,
)


@dataclass(frozen=True)
class PlanOptions:
    """Everything besides the task definition that shapes a plan."""

    task_id: str
    owner: Owner
    created: str
    pause_image: str
    image_map: Mapping[str, str] = field(default_factory=dict)
    container_images: Mapping[str, str] = field(default_factory=dict)  # by container name, after image_map
    stop_timeout: float | None = None  # overrides every container's stopTimeout when set
    default_start_timeout: float | None = None  # for containers without startTimeout; None = no limit
    cluster: str = DEFAULT_CLUSTER
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    availability_zone: str = DEFAULT_AVAILABILITY_ZONE
    launch_type: str = DEFAULT_LAUNCH_TYPE
    secret_values: Mapping[str, str] = field(default_factory=dict, repr=False)  # valueFrom -> value
    environment_files: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict, repr=False)
    endpoint: EndpointInfo | None = None  # the run's metadata and credentials server, when there is one
    secret: str = field(default="", repr=False)  # per task: the metadata and credentials ids are derived from it
    mask_secrets: bool = False  # a plan to show, not to run: secrets need no values


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    protocol: str  # "tcp" | "udp"
    host_port: int | None  # None = ephemeral

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    docker_name: str
    image: str  # after the image mapping
    essential: bool
    depends_on: tuple[ContainerDependency, ...]  # explicit dependsOn plus START for every link target
    # volumesFrom sources and link targets: Docker needs them to exist when this container is created
    created_after: tuple[str, ...]
    has_health_check: bool
    start_timeout: float | None
    stop_timeout: float
    ports: tuple[PortMapping, ...]
    # Engine API ContainerCreate body, HostConfig inside; its Env holds secret values.
    create_body: Mapping[str, Any] = field(repr=False)
    restart_policy: RestartPolicy | None = None  # an enabled restartPolicy; the state machine applies it


@dataclass(frozen=True)
class RestartPolicy:
    """An enabled restartPolicy, as the agent's restart tracker reads it."""

    ignored_exit_codes: tuple[int, ...] = ()
    restart_attempt_period: float = 300.0  # seconds a container must run before a restart is tried (ECS default)


@dataclass(frozen=True)
class VolumePlan:
    name: str  # the task definition's volume name
    docker_name: str | None  # None for a host bind mount
    source_path: str | None  # host bind mount path
    driver: str = "local"
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    scope: str = "task"  # "task": created and removed with the task; "shared": outlives it
    autoprovision: bool = True


@dataclass(frozen=True)
class NetworkPlan:
    docker_name: str
    labels: Mapping[str, str]
    # False for Docker's default bridge (bridge mode, as the agent runs it): it is on every engine, shared by
    # every container there, and never ours to create or remove.
    owned_by_task: bool = True


DEFAULT_BRIDGE = NetworkPlan("bridge", {}, owned_by_task=False)


@dataclass(frozen=True)
class TaskPlan:
    task_id: str
    task_arn: str
    family: str
    revision: int
    network_mode: str
    cluster: str
    network: NetworkPlan | None
    pause: ContainerPlan | None  # owns the shared namespaces (awsvpc, pidMode/ipcMode "task")
    volumes: tuple[VolumePlan, ...]
    containers: tuple[ContainerPlan, ...]  # in task definition order
    labels: Mapping[str, str]  # ours, on every resource of the task
    options: PlanOptions
    # JSON paths of fields the installed ECS model accepts that this version does not know: not reproduced.
    not_reproduced: tuple[str, ...] = ()

    def container(self, name: str) -> ContainerPlan:
        for c in self.containers:
            if c.name == name:
                return c
        raise KeyError(f"no container named {name!r} in task {self.family}:{self.revision}")

    def dependents(self, name: str) -> tuple[str, ...]:
        """Containers that depend on ``name`` in any way; they are stopped before it."""
        return tuple(
            c.name
            for c in self.containers
            if name in c.created_after or any(d.container_name == name for d in c.depends_on)
        )

    def start_levels(self) -> list[list[str]]:
        """Containers grouped by dependency depth: each level can start once the levels before it are through."""
        parents = {c.name: [d.container_name for d in c.depends_on] + list(c.created_after) for c in self.containers}
        depth: dict[str, int] = {}
        # Iterative, so that a long dependsOn chain cannot exhaust the stack; validation refused cycles.
        for c in self.containers:
            stack = [c.name]
            while stack:
                name = stack[-1]
                waiting = [p for p in parents[name] if p not in depth]
                if not waiting:
                    depth[name] = 1 + max((depth[p] for p in parents[name]), default=-1)
                    stack.pop()
                elif waiting[0] in stack:  # the stack is one path of dependencies: back on it is a cycle
                    raise PlanError(f"dependency cycle through {waiting[0]!r}")
                else:
                    stack.append(waiting[0])
        levels: dict[int, list[str]] = {}
        for c in self.containers:
            levels.setdefault(depth[c.name], []).append(c.name)
        return [levels[i] for i in sorted(levels)]

    def stop_levels(self) -> list[list[str]]:
        """The reverse of the start order: dependents before what they depend on."""
        return list(reversed(self.start_levels()))


def resolve_image(image: str, image_map: Mapping[str, str]) -> str:
    """The image to run for ``image``: an exact mapping wins, then the first matching glob pattern."""
    if image in image_map:
        return image_map[image]
    for pattern, local in image_map.items():
        if any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(image, pattern):
            return local
    return image


def task_arn(options: PlanOptions) -> str:
    return f"arn:aws:ecs:{options.region}:{options.account_id}:task/{options.cluster}/{options.task_id}"


def needs_pause_container(taskdef: TaskDefinition) -> bool:
    """Whether the task has an ECS pause container: it owns the namespaces the containers share (the network
    in awsvpc, the PID and IPC namespaces with pidMode or ipcMode "task")."""
    raw = taskdef.raw
    return taskdef.network_mode == "awsvpc" or raw.get("pidMode") == "task" or raw.get("ipcMode") == "task"


def build_plan(taskdef: TaskDefinition, options: PlanOptions) -> TaskPlan:
    """The launch plan for one task; raises PlanError listing everything that cannot be run locally."""
    problems: list[str] = []
    revision = taskdef.revision or 1
    short_id = options.task_id[:12]
    prefix = f"ecs-{taskdef.family}-{revision}"
    arn = task_arn(options)
    base_labels = resource_labels(options.owner, options.task_id, "task", options.created)

    _refuse_unsupported_task_fields(taskdef, problems)

    mode = taskdef.network_mode
    network: NetworkPlan | None = None
    if mode == "awsvpc":
        network = NetworkPlan(f"{prefix}-{short_id}", {**base_labels})
    elif mode == "bridge":
        network = DEFAULT_BRIDGE

    volumes = tuple(
        _volume_plan(v, taskdef.field_path(f"volumes[{i}]"), prefix, short_id, base_labels, problems)
        for i, v in enumerate(taskdef.volumes)
    )
    volumes_by_name = {v.name: v for v in volumes}

    needs_pause = needs_pause_container(taskdef)
    pause_name = f"{prefix}-internalecspause-{short_id}"
    docker_names = {c.name: f"{prefix}-{c.name}-{short_id}" for c in taskdef.containers}

    agent_labels = {
        "com.amazonaws.ecs.cluster": options.cluster,
        "com.amazonaws.ecs.task-arn": arn,
        "com.amazonaws.ecs.task-definition-family": taskdef.family,
        "com.amazonaws.ecs.task-definition-version": str(revision),
    }

    containers = tuple(
        _container_plan(
            c,
            at=functools.partial(taskdef.container_path, index, c.name),
            taskdef=taskdef,
            options=options,
            docker_names=docker_names,
            network=network,
            pause_name=pause_name if needs_pause else None,
            volumes=volumes_by_name,
            labels={**agent_labels, **base_labels, LABEL_ROLE: "container"},
            problems=problems,
        )
        for index, c in enumerate(taskdef.containers)
    )

    pause = _pause_plan(taskdef, options, pause_name, network, {**agent_labels, **base_labels}) if needs_pause else None

    if problems:
        raise PlanError(problem_list(taskdef.source, problems, "things cannot be run locally"))

    return TaskPlan(
        task_id=options.task_id,
        task_arn=arn,
        family=taskdef.family,
        revision=revision,
        network_mode=mode,
        cluster=options.cluster,
        network=network,
        pause=pause,
        volumes=volumes,
        containers=containers,
        labels=base_labels,
        options=options,
        not_reproduced=tuple(unlisted_fields(taskdef.raw)),
    )


def _refuse_unsupported_task_fields(taskdef: TaskDefinition, problems: list[str]) -> None:
    raw = taskdef.raw
    if raw.get("inferenceAccelerators"):
        problems.append(
            f"{taskdef.field_path('inferenceAccelerators')}: Elastic Inference accelerators do not exist on a "
            "local engine"
        )
    platform = raw.get("runtimePlatform") or {}
    if str(platform.get("operatingSystemFamily", "LINUX")).upper() not in ("LINUX",):
        problems.append(
            f"{taskdef.field_path('runtimePlatform', 'operatingSystemFamily')}: "
            f"{platform['operatingSystemFamily']!r} tasks need a Windows container host; this runs Linux "
            "containers only"
        )


def _volume_plan(
    raw: Mapping[str, Any],
    path: str,  # where the volume is in the file, for messages
    prefix: str,
    short_id: str,
    labels: Mapping[str, str],
    problems: list[str],
) -> VolumePlan:
    name = str(raw.get("name", ""))
    for unsupported, why in (
        ("efsVolumeConfiguration", "an EFS file system cannot be mounted by a local engine"),
        ("fsxWindowsFileServerVolumeConfiguration", "FSx for Windows needs a Windows container host"),
        ("s3filesVolumeConfiguration", "S3 file volumes need the ECS agent's mount helper"),
    ):
        if raw.get(unsupported):
            problems.append(
                f"{path}.{unsupported} (volume {name!r}): {why}; use a host path or a Docker volume for local runs"
            )
    if raw.get("configuredAtLaunch"):
        problems.append(
            f"{path}.configuredAtLaunch (volume {name!r}): such volumes are attached by a service; none is "
            "attached locally"
        )
    host = raw.get("host")
    if isinstance(host, Mapping) and host.get("sourcePath"):
        return VolumePlan(name=name, docker_name=None, source_path=str(host["sourcePath"]))
    config = raw.get("dockerVolumeConfiguration")
    if isinstance(config, Mapping):
        scope = str(config.get("scope", "task"))
        # A shared volume keeps its own name so that several tasks (and runs) find it.
        docker_name = name if scope == "shared" else f"{prefix}-{name}-{short_id}"
        autoprovision = bool(config.get("autoprovision", False)) if scope == "shared" else True
        return VolumePlan(
            name=name,
            docker_name=docker_name,
            source_path=None,
            driver=str(config.get("driver") or "local"),
            driver_opts={str(k): str(v) for k, v in (config.get("driverOpts") or {}).items()},
            labels={**{str(k): str(v) for k, v in (config.get("labels") or {}).items()}, **labels},
            scope=scope,
            autoprovision=autoprovision,
        )
    # `host: {}` or no host at all: a Docker volume that lives as long as the task.
    return VolumePlan(name=name, docker_name=f"{prefix}-{name}-{short_id}", source_path=None, labels=dict(labels))


def _ports(c: ContainerDefinition, mode: str) -> tuple[PortMapping, ...]:
    ports = []
    for pm in c.raw.get("portMappings") or []:
        if pm.get("containerPort") is None:
            continue  # a containerPortRange: refused in _refuse_unsupported_container_fields
        container_port = int(pm["containerPort"])
        host_port = pm.get("hostPort")
        # In awsvpc the task has its own address in ECS; locally every task shares the host, so each
        # containerPort is published on an ephemeral host port instead of a fixed one.
        host = None if mode == "awsvpc" or not host_port else int(host_port)
        ports.append(PortMapping(container_port, str(pm.get("protocol", "tcp")), host))
    return tuple(ports)


def _publish(ports: Sequence[PortMapping], config: dict[str, Any], host_config: dict[str, Any]) -> None:
    """Expose and bind ``ports`` on the container that owns the network namespace."""
    if ports:
        config["ExposedPorts"] = {p.key: {} for p in ports}
        host_config["PortBindings"] = {
            p.key: [{"HostIp": "", "HostPort": "" if p.host_port is None else str(p.host_port)}] for p in ports
        }


# -- fields that map one-to-one onto the Engine API: (ECS key, Docker key, converter) ------------------
# A converter turns the ECS value into the Docker one; None leaves the Docker field unset. A dotted ECS key
# reaches into an object (linuxParameters.capabilities.add).

Converter = Callable[[Any], Any]


def _given(convert: Converter) -> Converter:
    """``convert`` for a field that the agent leaves out when it is false, 0 or empty."""
    return lambda value: convert(value) if value else None


def _mebibytes(value: Any) -> int:
    return int(value) * MIB


def _cpu_shares(value: Any) -> int:
    return max(int(value), MIN_CPU_SHARES)


def _ulimits(value: Any) -> list[dict[str, Any]]:
    return [{"Name": str(u["name"]), "Soft": int(u["softLimit"]), "Hard": int(u["hardLimit"])} for u in value]


def _extra_hosts(value: Any) -> list[str]:
    return [f"{h['hostname']}:{h['ipAddress']}" for h in value]


def _health_check(raw: Mapping[str, Any]) -> dict[str, Any]:
    hc = {**HEALTH_CHECK_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
    return {
        "Test": list(hc["command"]),  # exec form kept exactly as given
        "Interval": int(hc["interval"]) * NANOS,
        "Timeout": int(hc["timeout"]) * NANOS,
        "Retries": int(hc["retries"]),
        "StartPeriod": int(hc["startPeriod"]) * NANOS,
    }


def _tmpfs(mounts: Any) -> dict[str, str]:
    # ECS gives the size in MiB; Docker takes mount options, the size among them.
    return {
        str(m["containerPath"]): ",".join([f"size={int(m['size'])}m"] + [str(o) for o in m.get("mountOptions") or []])
        for m in mounts
    }


def _devices(devices: Any) -> list[dict[str, str]]:
    result = []
    for dev in devices:
        # ECS grants read, write and mknod when permissions are not given.
        perms = dev.get("permissions") or ["read", "write", "mknod"]
        result.append(
            {
                "PathOnHost": str(dev["hostPath"]),
                "PathInContainer": str(dev.get("containerPath") or dev["hostPath"]),
                "CgroupPermissions": "".join(p[0] for p in ("read", "write", "mknod") if p in perms),
            }
        )
    return result


CONFIG_FIELDS: tuple[tuple[str, str, Converter], ...] = (
    ("command", "Cmd", list),  # kept even when empty, as given
    ("entryPoint", "Entrypoint", list),
    ("workingDirectory", "WorkingDir", _given(str)),
    ("user", "User", _given(str)),
    ("hostname", "Hostname", _given(str)),
    ("interactive", "OpenStdin", _given(bool)),
    ("pseudoTerminal", "Tty", _given(bool)),
    ("disableNetworking", "NetworkDisabled", _given(bool)),
    ("healthCheck", "Healthcheck", _given(_health_check)),
)

HOST_CONFIG_FIELDS: tuple[tuple[str, str, Converter], ...] = (
    ("memory", "Memory", _given(_mebibytes)),
    ("memoryReservation", "MemoryReservation", _given(_mebibytes)),
    ("cpu", "CpuShares", _given(_cpu_shares)),
    ("ulimits", "Ulimits", _given(_ulimits)),
    ("privileged", "Privileged", _given(bool)),
    ("readonlyRootFilesystem", "ReadonlyRootfs", _given(bool)),
    ("dnsServers", "Dns", _given(list)),
    ("dnsSearchDomains", "DnsSearch", _given(list)),
    ("extraHosts", "ExtraHosts", _given(_extra_hosts)),
    ("dockerSecurityOptions", "SecurityOpt", _given(list)),
    ("linuxParameters.initProcessEnabled", "Init", _given(bool)),
    ("linuxParameters.capabilities.add", "CapAdd", _given(list)),
    ("linuxParameters.capabilities.drop", "CapDrop", _given(list)),
    ("linuxParameters.sharedMemorySize", "ShmSize", _mebibytes),
    ("linuxParameters.tmpfs", "Tmpfs", _given(_tmpfs)),
    ("linuxParameters.devices", "Devices", _given(_devices)),
    ("linuxParameters.swappiness", "MemorySwappiness", int),
)


def _from_table(table: Sequence[tuple[str, str, Converter]], raw: Mapping[str, Any]) -> dict[str, Any]:
    """The Docker fields of ``table`` that the container definition ``raw`` sets."""
    out: dict[str, Any] = {}
    for ecs_key, docker_key, convert in table:
        value: Any = raw
        for step in ecs_key.split("."):
            value = (value or {}).get(step)
        converted = None if value is None else convert(value)
        if converted is not None:
            out[docker_key] = converted
    return out


# -- fields with rules of their own ---------------------------------------------------------------------


def _refuse_unsupported_container_fields(c: ContainerDefinition, at: Callable[..., str], problems: list[str]) -> None:
    raw = c.raw
    if any(r.get("type") in ("GPU", "InferenceAccelerator") for r in raw.get("resourceRequirements") or []):
        problems.append(
            f"{at('resourceRequirements')}: GPUs and other ECS resource requirements are not reserved by a local engine"
        )
    if raw.get("credentialSpecs"):
        problems.append(f"{at('credentialSpecs')}: gMSA credential specs need an Active Directory joined host")
    for i, pm in enumerate(raw.get("portMappings") or []):
        if pm.get("containerPort") is None:
            problems.append(
                f"{at(f'portMappings[{i}]', 'containerPortRange')}: port ranges are not reproduced locally; "
                "list the ports one by one with containerPort"
            )


def _depends_on(c: ContainerDefinition) -> tuple[ContainerDependency, ...]:
    """Explicit dependsOn, plus START on every link target without a condition of its own, as the agent adds."""
    depends_on = list(c.depends_on)
    for link in c.links:
        if not any(d.container_name == link.container_name for d in depends_on):
            depends_on.append(ContainerDependency(link.container_name, DependencyCondition.START))
    return tuple(depends_on)


def _environment(
    c: ContainerDefinition,
    at: Callable[..., str],
    options: PlanOptions,
    task_role_arn: str | None,
    problems: list[str],
) -> list[str]:
    execution_env = {"FARGATE": "AWS_ECS_FARGATE", "EXTERNAL": "AWS_ECS_EXTERNAL"}.get(
        options.launch_type, "AWS_ECS_EC2"
    )
    env: dict[str, str] = {"AWS_EXECUTION_ENV": execution_env, "AWS_REGION": options.region}
    if options.endpoint is not None:
        env.update(container_environment(options.endpoint, options.secret, c.name, task_role_arn))
    files = []
    for k, entry in enumerate(c.raw.get("environmentFiles") or []):
        value = str(entry.get("value", ""))
        if value in options.environment_files:
            files.append(list(options.environment_files[value]))
        elif options.mask_secrets:
            continue  # a plan to show: the file is read when the task runs
        else:
            problems.append(f"{at(f'environmentFiles[{k}]')}: environment file {value!r} has no local content")
    # ECS precedence: environment beats environment files; among files the first to set a name wins.
    env.update(merge_environment([e for e in c.raw.get("environment") or [] if e.get("name")], files))
    for k, item in enumerate(c.raw.get("secrets") or []):
        value_from = str(item["valueFrom"])
        if value_from in options.secret_values:
            env[str(item["name"])] = options.secret_values[value_from]
        elif options.mask_secrets:
            env[str(item["name"])] = SECRET_MASK
        else:
            problems.append(
                f"{at(f'secrets[{k}]')}: secret {item['name']!r} (valueFrom {value_from!r}) has no local value"
            )
    return [f"{k}={v}" for k, v in env.items()]


def _join_network(
    c: ContainerDefinition,
    mode: str,
    network: NetworkPlan | None,
    pause_name: str | None,
    ports: Sequence[PortMapping],
    docker_names: Mapping[str, str],
    config: dict[str, Any],
    host_config: dict[str, Any],
) -> None:
    """Put the container on the task's network as the agent does: through HostConfig alone (the agent sends
    an empty NetworkingConfig), so no network-scoped alias exists in any mode."""
    if mode == "awsvpc":
        host_config["NetworkMode"] = f"container:{pause_name}"  # the pause container publishes the ports
        return
    if mode != "bridge" or network is None:
        host_config["NetworkMode"] = mode  # "host" or "none"
        return
    # Docker's default bridge has no DNS for container names: only links (legacy links, in /etc/hosts) give
    # a container a name to reach another by, "docker name:alias" as the agent's dockerLinks writes them.
    host_config["NetworkMode"] = network.docker_name
    _publish(ports, config, host_config)
    if c.links:
        host_config["Links"] = [f"{docker_names[link.container_name]}:{link.alias}" for link in c.links]


def _link_targets(c: ContainerDefinition) -> list[str]:
    # A legacy link names a container that exists; the agent creates a linked container only after its targets.
    return [link.container_name for link in c.links]


# pidMode and ipcMode: "task" shares the pause container's namespace; the values Docker knows pass as given.
_NAMESPACE_MODES = (("pidMode", "PidMode", ("host",)), ("ipcMode", "IpcMode", ("host", "none")))


def _namespaces(taskdef: TaskDefinition, pause_name: str | None) -> dict[str, str]:
    host_config = {}
    for ecs_key, docker_key, as_given in _NAMESPACE_MODES:
        mode = taskdef.raw.get(ecs_key)
        if pause_name and mode == "task":
            host_config[docker_key] = f"container:{pause_name}"
        elif mode in as_given:
            host_config[docker_key] = str(mode)
    return host_config


def _mounts(
    c: ContainerDefinition, volumes: Mapping[str, VolumePlan], docker_names: Mapping[str, str]
) -> dict[str, Any]:
    host_config: dict[str, Any] = {}
    binds = []
    for mp in c.raw.get("mountPoints") or []:
        volume = volumes[str(mp["sourceVolume"])]
        source = volume.source_path if volume.source_path else volume.docker_name
        suffix = ":ro" if mp.get("readOnly") else ""
        binds.append(f"{source}:{mp['containerPath']}{suffix}")
    if binds:
        host_config["Binds"] = binds
    if c.volumes_from:
        host_config["VolumesFrom"] = [
            f"{docker_names[v.source_container]}{':ro' if v.read_only else ''}" for v in c.volumes_from
        ]
    return host_config


def _sysctls(c: ContainerDefinition) -> dict[str, str]:
    return {
        str(s["namespace"]): str(s.get("value", "")) for s in c.raw.get("systemControls") or [] if s.get("namespace")
    }


def _is_network_sysctl(name: str) -> bool:
    # In awsvpc they belong to the namespace owner (the pause container), as in ECS.
    return name.startswith("net.")


def _memory_swap(c: ContainerDefinition) -> dict[str, int]:
    # maxSwap is swap on top of the container's memory limit: without a limit nothing is set (a local difference).
    max_swap = (c.raw.get("linuxParameters") or {}).get("maxSwap")
    if max_swap is None or not c.raw.get("memory"):
        return {}
    return {"MemorySwap": (int(c.raw["memory"]) + int(max_swap)) * MIB}


def _container_plan(
    c: ContainerDefinition,
    *,
    at: Callable[..., str],  # the container's JSON path with steps below it, for messages
    taskdef: TaskDefinition,
    options: PlanOptions,
    docker_names: Mapping[str, str],
    network: NetworkPlan | None,
    pause_name: str | None,
    volumes: Mapping[str, VolumePlan],
    labels: Mapping[str, str],
    problems: list[str],
) -> ContainerPlan:
    raw = c.raw
    mode = taskdef.network_mode
    image = options.container_images.get(c.name) or resolve_image(c.image, options.image_map)
    ports = _ports(c, mode)
    _refuse_unsupported_container_fields(c, at, problems)

    config: dict[str, Any] = {
        "Image": image,
        "Env": _environment(c, at, options, taskdef.task_role_arn, problems),
        # The agent's labels and ours win over dockerLabels: the runtime finds its containers by them.
        "Labels": {**dict(raw.get("dockerLabels") or {}), **labels, "com.amazonaws.ecs.container-name": c.name},
        **_from_table(CONFIG_FIELDS, raw),
    }
    host_config: dict[str, Any] = {}
    _join_network(c, mode, network, pause_name, ports, docker_names, config, host_config)
    host_config.update(_namespaces(taskdef, pause_name))
    host_config.update(_mounts(c, volumes, docker_names))
    host_config.update(_from_table(HOST_CONFIG_FIELDS, raw))
    sysctls = {k: v for k, v in _sysctls(c).items() if mode != "awsvpc" or not _is_network_sysctl(k)}
    if sysctls:
        host_config["Sysctls"] = sysctls
    host_config.update(_memory_swap(c))

    body = {**config, "HostConfig": host_config}
    return ContainerPlan(
        name=c.name,
        docker_name=docker_names[c.name],
        image=image,
        essential=c.essential,
        depends_on=_depends_on(c),
        created_after=tuple(dict.fromkeys([*(v.source_container for v in c.volumes_from), *_link_targets(c)])),
        has_health_check=bool(raw.get("healthCheck")),
        start_timeout=_start_timeout(c, options),
        stop_timeout=_stop_timeout(c, options),
        ports=ports,
        create_body=body,
        restart_policy=_restart_policy(raw),
    )


def _restart_policy(raw: Mapping[str, Any]) -> RestartPolicy | None:
    """The agent restarts a container in place only when its restartPolicy is enabled."""
    policy = raw.get("restartPolicy") or {}
    if not policy.get("enabled"):
        return None
    period = policy.get("restartAttemptPeriod")
    return RestartPolicy(
        ignored_exit_codes=tuple(policy.get("ignoredExitCodes") or ()),
        restart_attempt_period=float(period) if period is not None else RestartPolicy.restart_attempt_period,
    )


def _start_timeout(c: ContainerDefinition, options: PlanOptions) -> float | None:
    start_timeout = c.raw.get("startTimeout")
    return float(start_timeout) if start_timeout is not None else options.default_start_timeout


def _stop_timeout(c: ContainerDefinition, options: PlanOptions) -> float:
    if options.stop_timeout is not None:
        return options.stop_timeout  # the session-wide override, for fast test teardown
    stop_timeout = c.raw.get("stopTimeout")
    return float(stop_timeout) if stop_timeout is not None else DEFAULT_STOP_TIMEOUT


def _pause_plan(
    taskdef: TaskDefinition,
    options: PlanOptions,
    docker_name: str,
    network: NetworkPlan | None,
    labels: Mapping[str, str],
) -> ContainerPlan:
    host_config: dict[str, Any] = {}
    config: dict[str, Any] = {
        "Image": options.pause_image,
        "Labels": {**labels, LABEL_ROLE: "pause", "com.amazonaws.ecs.container-name": "~internal~ecs~pause"},
    }
    ports: tuple[PortMapping, ...] = ()
    if taskdef.network_mode == "awsvpc" and network is not None:
        # Every container joins this namespace, so the ports of all of them are published here.
        ports = tuple(p for c in taskdef.containers for p in _ports(c, "awsvpc"))
        host_config["NetworkMode"] = network.docker_name
        _publish(ports, config, host_config)
        sysctls = {k: v for c in taskdef.containers for k, v in _sysctls(c).items() if _is_network_sysctl(k)}
        if sysctls:
            host_config["Sysctls"] = sysctls
    else:
        host_config["NetworkMode"] = "none"
    if taskdef.raw.get("ipcMode") == "task":
        host_config["IpcMode"] = "shareable"
    return ContainerPlan(
        name="~internal~ecs~pause",
        docker_name=docker_name,
        image=options.pause_image,
        essential=False,
        depends_on=(),
        created_after=(),
        has_health_check=False,
        start_timeout=None,
        stop_timeout=0.0,
        ports=ports,
        create_body={**config, "HostConfig": host_config},
    )


# -- the plan as data and as text (--ecs-plan) -----------------------------------------------------------

SECRET_MASK = MASK  # the one mask: plans, reprs, reports and logs show the same


def plan_data(plan: TaskPlan, secret_names: Mapping[str, Sequence[str]] = {}) -> dict[str, Any]:
    """What ``--ecs-plan`` shows, as data. Values of secrets (``secret_names``: container -> names) are masked."""
    containers = []
    for c in plan.containers:
        body = c.create_body
        host = body.get("HostConfig", {})
        masked = set(secret_names.get(c.name, ()))
        env = {}
        for item in body.get("Env", []):
            # A secret's name may itself hold "=": match whole names, never split the value of a secret.
            secret = next((n for n in masked if str(item).startswith(n + "=")), None)
            name, _, value = str(item).partition("=") if secret is None else (secret, "=", "")
            env[name] = SECRET_MASK if secret is not None or _looks_secret(name) else value
        containers.append(
            {
                "name": c.name,
                "docker_name": c.docker_name,
                "image": c.image,
                "essential": c.essential,
                "depends_on": [{"container": d.container_name, "condition": d.condition.value} for d in c.depends_on],
                "created_after": list(c.created_after),
                "entry_point": body.get("Entrypoint"),
                "command": body.get("Cmd"),
                "environment": env,
                "secrets": sorted(masked),
                "ports": [
                    {"container_port": p.container_port, "protocol": p.protocol, "host_port": p.host_port}
                    for p in c.ports
                ],
                "mounts": list(host.get("Binds", [])),
                "volumes_from": list(host.get("VolumesFrom", [])),
                "network": host.get("NetworkMode"),
                "links": list(host.get("Links", [])),
                "health_check": body.get("Healthcheck", {}).get("Test"),
                "start_timeout": c.start_timeout,
                "stop_timeout": c.stop_timeout,
            }
        )
    return {
        "family": plan.family,
        "revision": plan.revision,
        "task_arn": plan.task_arn,
        "network_mode": plan.network_mode,
        "network": plan.network.docker_name if plan.network else None,
        "pause_container": plan.pause.docker_name if plan.pause else None,
        "start_levels": plan.start_levels(),
        "stop_levels": plan.stop_levels(),
        "volumes": [
            {
                "name": v.name,
                "docker_volume": v.docker_name,
                "host_path": v.source_path,
                "scope": v.scope,
                "driver": v.driver,
            }
            for v in plan.volumes
        ],
        "containers": containers,
        "not_reproduced": list(plan.not_reproduced),
    }


def _looks_secret(name: str) -> bool:
    # The agent-made credentials token is a secret whatever the task definition says.
    return name == "AWS_CONTAINER_AUTHORIZATION_TOKEN"


def format_plan(data: Mapping[str, Any]) -> str:
    """``plan_data`` as the text ``--ecs-plan`` prints."""
    lines = [f"task {data['family']}:{data['revision']}  network mode {data['network_mode']}"]
    if data["pause_container"]:
        lines.append(f"  pause container {data['pause_container']} owns the task's namespaces")
    lines += _format_order(data)
    for c in data["containers"]:
        lines += _format_container(c)
    for v in data["volumes"]:
        where = v["host_path"] or f"Docker volume {v['docker_volume']} ({v['scope']})"
        lines.append(f"volume {v['name']}: {where}")
    for path in data["not_reproduced"]:
        lines.append(f"not reproduced locally: {path} (a field of a newer ECS model than this version knows)")
    return "\n".join(lines)


def _format_order(data: Mapping[str, Any]) -> list[str]:
    by_name = {c["name"]: c for c in data["containers"]}
    lines = ["start order (each level starts together, once its gates open):"]
    for i, level in enumerate(data["start_levels"], 1):
        gates = []
        for name in level:
            deps = by_name[name]["depends_on"]
            if deps:
                gates.append(f"{name} after " + ", ".join(f"{d['container']} {d['condition']}" for d in deps))
        lines.append(f"  {i}. {', '.join(level)}" + (f"    [{'; '.join(gates)}]" if gates else ""))
    lines.append("stop order: " + " -> ".join(", ".join(level) for level in data["stop_levels"]))
    return lines


def _format_container(c: Mapping[str, Any]) -> list[str]:
    lines = [f"container {c['name']}{'' if c['essential'] else ' (not essential)'}", f"  image       {c['image']}"]
    if c["entry_point"]:
        lines.append(f"  entryPoint  {c['entry_point']}")
    if c["command"]:
        lines.append(f"  command     {c['command']}")
    env = ", ".join(f"{k}{' (secret)' if k in c['secrets'] else ''}" for k in c["environment"])
    lines.append(f"  env         {env or '-'}")
    ports = ", ".join(f"{p['container_port']}/{p['protocol']} -> {p['host_port'] or 'ephemeral'}" for p in c["ports"])
    lines.append(f"  ports       {ports or '-'}")
    mounts = c["mounts"] + [f"volumes from {v}" for v in c["volumes_from"]]
    lines.append(f"  mounts      {', '.join(mounts) or '-'}")
    links = f", links {', '.join(c['links'])}" if c.get("links") else ""
    lines.append(f"  network     {c['network']}{links}")
    if c["health_check"]:
        lines.append(f"  health      {c['health_check']}")
    timeout = "none" if c["start_timeout"] is None else f"{c['start_timeout']:g} s"
    lines.append(f"  timeouts    start {timeout}, stop {c['stop_timeout']:g} s")
    return lines
