"""The launch plan: what decides order, and the exact Docker request for every container. Pure: no Docker.

A plan holds the dependency graph the ECS agent builds (explicit ``dependsOn`` plus the implicit dependencies
it adds: ``links`` = START, ``volumesFrom`` = the source container created) and, per container, the Engine API
``ContainerCreate`` body the runtime posts unchanged.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_ecstask.endpoints import EndpointInfo, container_environment
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
    created_after: tuple[str, ...]  # volumesFrom sources: must exist before this container is created
    has_health_check: bool
    start_timeout: float | None
    stop_timeout: float
    ports: tuple[PortMapping, ...]
    # Engine API ContainerCreate body, HostConfig and NetworkingConfig inside; its Env holds secret values.
    create_body: Mapping[str, Any] = field(repr=False)


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
    if mode in ("bridge", "awsvpc"):
        network = NetworkPlan(f"{prefix}-{short_id}", {**base_labels})

    volumes = tuple(
        _volume_plan(v, taskdef.field_path(f"volumes[{i}]"), prefix, short_id, base_labels, problems)
        for i, v in enumerate(taskdef.volumes)
    )
    volumes_by_name = {v.name: v for v in volumes}

    raw = taskdef.raw
    needs_pause = mode == "awsvpc" or raw.get("pidMode") == "task" or raw.get("ipcMode") == "task"
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

    pause = (
        _pause_plan(taskdef, options, pause_name, network, containers, {**agent_labels, **base_labels})
        if needs_pause
        else None
    )

    if problems:
        raise PlanError(_format_problems(taskdef.source, problems))

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


def _format_problems(source: str, problems: list[str]) -> str:
    return problem_list(source, problems, "things cannot be run locally")


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
            continue  # a containerPortRange: refused in _container_plan
        container_port = int(pm["containerPort"])
        host_port = pm.get("hostPort")
        # In awsvpc the task has its own address in ECS; locally every task shares the host, so each
        # containerPort is published on an ephemeral host port instead of a fixed one.
        host = None if mode == "awsvpc" or not host_port else int(host_port)
        ports.append(PortMapping(container_port, str(pm.get("protocol", "tcp")), host))
    return tuple(ports)


def _port_config(ports: Sequence[PortMapping]) -> tuple[dict[str, Any], dict[str, Any]]:
    exposed: dict[str, Any] = {p.key: {} for p in ports}
    bindings = {p.key: [{"HostIp": "", "HostPort": "" if p.host_port is None else str(p.host_port)}] for p in ports}
    return exposed, bindings


def _health_check(raw: Mapping[str, Any]) -> dict[str, Any]:
    hc = {**HEALTH_CHECK_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
    return {
        "Test": list(hc["command"]),  # exec form kept exactly as given
        "Interval": int(hc["interval"]) * NANOS,
        "Timeout": int(hc["timeout"]) * NANOS,
        "Retries": int(hc["retries"]),
        "StartPeriod": int(hc["startPeriod"]) * NANOS,
    }


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


def _linux_parameters(c: ContainerDefinition, host_config: dict[str, Any], problems: list[str]) -> None:
    lp = c.raw.get("linuxParameters") or {}
    if lp.get("initProcessEnabled"):
        host_config["Init"] = True
    caps = lp.get("capabilities") or {}
    if caps.get("add"):
        host_config["CapAdd"] = list(caps["add"])
    if caps.get("drop"):
        host_config["CapDrop"] = list(caps["drop"])
    if lp.get("sharedMemorySize") is not None:
        host_config["ShmSize"] = int(lp["sharedMemorySize"]) * MIB
    tmpfs = {}
    for mount in lp.get("tmpfs") or []:
        opts = [f"size={int(mount['size'])}m"] + [str(o) for o in mount.get("mountOptions") or []]
        tmpfs[str(mount["containerPath"])] = ",".join(opts)
    if tmpfs:
        host_config["Tmpfs"] = tmpfs
    devices = []
    for dev in lp.get("devices") or []:
        perms = dev.get("permissions") or ["read", "write", "mknod"]
        devices.append(
            {
                "PathOnHost": str(dev["hostPath"]),
                "PathInContainer": str(dev.get("containerPath") or dev["hostPath"]),
                "CgroupPermissions": "".join(p[0] for p in ("read", "write", "mknod") if p in perms),
            }
        )
    if devices:
        host_config["Devices"] = devices
    if lp.get("maxSwap") is not None and c.raw.get("memory"):
        host_config["MemorySwap"] = (int(c.raw["memory"]) + int(lp["maxSwap"])) * MIB
    if lp.get("swappiness") is not None:
        host_config["MemorySwappiness"] = int(lp["swappiness"])


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

    depends_on = list(c.depends_on)
    for link in c.links:
        if not any(d.container_name == link.container_name for d in depends_on):
            depends_on.append(ContainerDependency(link.container_name, DependencyCondition.START))

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
    if (raw.get("restartPolicy") or {}).get("enabled"):
        problems.append(f"{at('restartPolicy')}: container restarts are not reproduced locally")

    config: dict[str, Any] = {
        "Image": image,
        "Env": _environment(c, at, options, taskdef.task_role_arn, problems),
        # The agent's labels and ours win over dockerLabels: the runtime finds its containers by them.
        "Labels": {**dict(raw.get("dockerLabels") or {}), **labels, "com.amazonaws.ecs.container-name": c.name},
    }
    if raw.get("command") is not None:
        config["Cmd"] = list(raw["command"])
    if raw.get("entryPoint") is not None:
        config["Entrypoint"] = list(raw["entryPoint"])
    for key, docker_key in (("workingDirectory", "WorkingDir"), ("user", "User"), ("hostname", "Hostname")):
        if raw.get(key):
            config[docker_key] = str(raw[key])
    if raw.get("interactive"):
        config["OpenStdin"] = True
    if raw.get("pseudoTerminal"):
        config["Tty"] = True
    if raw.get("disableNetworking"):
        config["NetworkDisabled"] = True
    if raw.get("healthCheck"):
        config["Healthcheck"] = _health_check(raw["healthCheck"])

    host_config: dict[str, Any] = {}
    networking: dict[str, Any] = {}
    if mode == "awsvpc":
        host_config["NetworkMode"] = f"container:{pause_name}"
    elif mode == "bridge" and network is not None:
        host_config["NetworkMode"] = network.docker_name
        exposed, bindings = _port_config(ports)
        if ports:
            config["ExposedPorts"] = exposed
            host_config["PortBindings"] = bindings
        endpoint: dict[str, Any] = {"Aliases": [c.name]}
        if c.links:
            endpoint["Links"] = [f"{docker_names[link.container_name]}:{link.alias}" for link in c.links]
        networking = {"EndpointsConfig": {network.docker_name: endpoint}}
    else:
        host_config["NetworkMode"] = mode  # "host" or "none"

    if pause_name and taskdef.raw.get("pidMode") == "task":
        host_config["PidMode"] = f"container:{pause_name}"
    elif taskdef.raw.get("pidMode") == "host":
        host_config["PidMode"] = "host"
    if pause_name and taskdef.raw.get("ipcMode") == "task":
        host_config["IpcMode"] = f"container:{pause_name}"
    elif taskdef.raw.get("ipcMode") in ("host", "none"):
        host_config["IpcMode"] = taskdef.raw["ipcMode"]

    binds = []
    for mp in raw.get("mountPoints") or []:
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

    if raw.get("memory"):
        host_config["Memory"] = int(raw["memory"]) * MIB
    if raw.get("memoryReservation"):
        host_config["MemoryReservation"] = int(raw["memoryReservation"]) * MIB
    if raw.get("cpu"):
        host_config["CpuShares"] = max(int(raw["cpu"]), MIN_CPU_SHARES)
    if raw.get("ulimits"):
        host_config["Ulimits"] = [
            {"Name": str(u["name"]), "Soft": int(u["softLimit"]), "Hard": int(u["hardLimit"])} for u in raw["ulimits"]
        ]
    if raw.get("privileged"):
        host_config["Privileged"] = True
    if raw.get("readonlyRootFilesystem"):
        host_config["ReadonlyRootfs"] = True
    if raw.get("dnsServers"):
        host_config["Dns"] = list(raw["dnsServers"])
    if raw.get("dnsSearchDomains"):
        host_config["DnsSearch"] = list(raw["dnsSearchDomains"])
    if raw.get("extraHosts"):
        host_config["ExtraHosts"] = [f"{h['hostname']}:{h['ipAddress']}" for h in raw["extraHosts"]]
    if raw.get("dockerSecurityOptions"):
        host_config["SecurityOpt"] = list(raw["dockerSecurityOptions"])
    sysctls = {
        str(s["namespace"]): str(s.get("value", "")) for s in raw.get("systemControls") or [] if s.get("namespace")
    }
    if mode == "awsvpc":
        # Network sysctls belong to the namespace owner (the pause container), as in ECS.
        sysctls = {k: v for k, v in sysctls.items() if not k.startswith("net.")}
    if sysctls:
        host_config["Sysctls"] = sysctls
    _linux_parameters(c, host_config, problems)

    stop_timeout = options.stop_timeout
    if stop_timeout is None:
        stop_timeout = float(raw["stopTimeout"]) if raw.get("stopTimeout") is not None else DEFAULT_STOP_TIMEOUT
    start_timeout = float(raw["startTimeout"]) if raw.get("startTimeout") is not None else options.default_start_timeout

    body = {**config, "HostConfig": host_config}
    if networking:
        body["NetworkingConfig"] = networking
    return ContainerPlan(
        name=c.name,
        docker_name=docker_names[c.name],
        image=image,
        essential=c.essential,
        depends_on=tuple(depends_on),
        created_after=tuple(v.source_container for v in c.volumes_from),
        has_health_check=bool(raw.get("healthCheck")),
        start_timeout=start_timeout,
        stop_timeout=stop_timeout,
        ports=ports,
        create_body=body,
    )


def _pause_plan(
    taskdef: TaskDefinition,
    options: PlanOptions,
    docker_name: str,
    network: NetworkPlan | None,
    containers: Sequence[ContainerPlan],
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
        exposed, bindings = _port_config(ports)
        if ports:
            config["ExposedPorts"] = exposed
            host_config["PortBindings"] = bindings
        sysctls = {
            str(s["namespace"]): str(s.get("value", ""))
            for c in taskdef.containers
            for s in c.raw.get("systemControls") or []
            if str(s.get("namespace", "")).startswith("net.")
        }
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
    by_name = {c["name"]: c for c in data["containers"]}
    lines.append("start order (each level starts together, once its gates open):")
    for i, level in enumerate(data["start_levels"], 1):
        gates = []
        for name in level:
            deps = by_name[name]["depends_on"]
            if deps:
                gates.append(f"{name} after " + ", ".join(f"{d['container']} {d['condition']}" for d in deps))
        lines.append(f"  {i}. {', '.join(level)}" + (f"    [{'; '.join(gates)}]" if gates else ""))
    lines.append("stop order: " + " -> ".join(", ".join(level) for level in data["stop_levels"]))
    for c in data["containers"]:
        lines.append(f"container {c['name']}{'' if c['essential'] else ' (not essential)'}")
        lines.append(f"  image       {c['image']}")
        if c["entry_point"]:
            lines.append(f"  entryPoint  {c['entry_point']}")
        if c["command"]:
            lines.append(f"  command     {c['command']}")
        env = ", ".join(f"{k}{' (secret)' if k in c['secrets'] else ''}" for k in c["environment"])
        lines.append(f"  env         {env or '-'}")
        ports = ", ".join(
            f"{p['container_port']}/{p['protocol']} -> {p['host_port'] or 'ephemeral'}" for p in c["ports"]
        )
        lines.append(f"  ports       {ports or '-'}")
        mounts = c["mounts"] + [f"volumes from {v}" for v in c["volumes_from"]]
        lines.append(f"  mounts      {', '.join(mounts) or '-'}")
        lines.append(f"  network     {c['network']}")
        if c["health_check"]:
            lines.append(f"  health      {c['health_check']}")
        timeout = "none" if c["start_timeout"] is None else f"{c['start_timeout']:g} s"
        lines.append(f"  timeouts    start {timeout}, stop {c['stop_timeout']:g} s")
    for v in data["volumes"]:
        where = v["host_path"] or f"Docker volume {v['docker_volume']} ({v['scope']})"
        lines.append(f"volume {v['name']}: {where}")
    for path in data["not_reproduced"]:
        lines.append(f"not reproduced locally: {path} (a field of a newer ECS model than this version knows)")
    return "\n".join(lines)
