"""Every task-definition field and what a local run does with it: supported, a local difference, or refused.

This list is the source of the field-support table in the documentation (``python -m pytest_ecstask.fields``
prints it) and the tests hold it against what the planner really does and against botocore's ECS model.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_ecstask.generated import between_markers, write_command


class Support(enum.Enum):
    SUPPORTED = "supported"
    LOCAL_DIFFERENCE = "supported, with a local difference"
    REFUSED = "refused"


@dataclass(frozen=True)
class FieldSupport:
    path: str  # JSON path below the task definition, ``[]`` for every entry of a list
    support: Support
    note: str  # for REFUSED: the reason (and when); otherwise what a local run does with the field


S, L, R = Support.SUPPORTED, Support.LOCAL_DIFFERENCE, Support.REFUSED
C = "containerDefinitions[]."
LP = "containerDefinitions[].linuxParameters."
V = "volumes[]."

FIELDS: tuple[FieldSupport, ...] = (
    # -- the task ----------------------------------------------------------------------------------------
    FieldSupport("family", S, "Names the containers, networks and volumes; in ARNs, labels and metadata."),
    FieldSupport("taskRoleArn", S, "Task-role credentials served at 169.254.170.2 (given, made up, or STS)."),
    FieldSupport("executionRoleArn", L, "Not used: secrets, environment files and images use local sources."),
    FieldSupport("networkMode", S, "awsvpc, bridge, host, none; awsvpc ports go to ephemeral host ports."),
    FieldSupport("containerDefinitions", S, "One Docker container each, started in dependency order."),
    FieldSupport("volumes", S, "Host paths and Docker volumes; see the volume fields."),
    FieldSupport("placementConstraints", L, "Not used: there is no cluster to place the task in."),
    FieldSupport(
        "requiresCompatibilities",
        L,
        "Checked as ECS checks it (FARGATE: awsvpc and a Fargate size; EC2, EXTERNAL: a memory for each "
        "container or the task); nothing else is done with it.",
    ),
    FieldSupport(
        "cpu", L, "Checked (CPU units or '1 vCPU'; a Fargate size with FARGATE); not enforced: container limits are."
    ),
    FieldSupport(
        "memory",
        L,
        "Checked (MiB or '2 GB'; a Fargate size with FARGATE; at least each container's memory and the sum of "
        "their memoryReservation); not enforced: container limits are.",
    ),
    FieldSupport("tags", S, "Served as TaskTags by the metadata endpoint's /taskWithTags."),
    FieldSupport("pidMode", S, "task shares the pause container's PID namespace; host uses the host's."),
    FieldSupport("ipcMode", S, "task shares the pause container's IPC namespace; host and none as given."),
    FieldSupport("proxyConfiguration", L, "Not used: no App Mesh traffic redirection; containers talk directly."),
    FieldSupport("inferenceAccelerators", R, "Elastic Inference accelerators do not exist on a local engine."),
    FieldSupport("ephemeralStorage", L, "Not enforced: the engine's own storage is used."),
    FieldSupport(
        "runtimePlatform",
        L,
        "LINUX only: another operatingSystemFamily is refused (it needs a Windows host); cpuArchitecture is "
        "not used, the engine runs images for its own platform.",
    ),
    FieldSupport("enableFaultInjection", L, "Not used: inject faults with Container.stop/kill/pause instead."),
    FieldSupport(
        "trustedExecutionConfiguration",
        L,
        "Not used: containers run with the engine's own isolation; no sandbox and no attestation locally.",
    ),
    # -- each container ----------------------------------------------------------------------------------
    FieldSupport(C + "name", S, "The container's name in the task, in Docker names and labels."),
    FieldSupport(
        C + "image",
        S,
        "Image, after image mappings (a mapped pipeline placeholder such as `<IMAGE1_NAME>` runs); a valid "
        "reference; pulled per --ecs-pull.",
    ),
    FieldSupport(
        C + "repositoryCredentials",
        L,
        "Used for pulls when its secret can be resolved; otherwise the local Docker credentials are used.",
    ),
    FieldSupport(C + "cpu", L, "CpuShares (at least 2) when 1 or more; without it Docker's default applies."),
    FieldSupport(C + "memory", S, "Memory (MiB); 6 or more, not above the task's memory."),
    FieldSupport(C + "memoryReservation", S, "MemoryReservation (MiB); 6 or more, not above memory."),
    FieldSupport(
        C + "links", S, "Legacy Docker links on the default bridge; the target is created first; an implicit START."
    ),
    FieldSupport(C + "portMappings", S, "ExposedPorts and PortBindings; in awsvpc on the pause container."),
    FieldSupport(
        C + "portMappings[].containerPortRange",
        R,
        "Port ranges are not reproduced locally; list the ports one by one with containerPort.",
    ),
    FieldSupport(C + "portMappings[].name", L, "Not used (Service Connect)."),
    FieldSupport(C + "portMappings[].appProtocol", L, "Not used (Service Connect)."),
    FieldSupport(C + "essential", S, "An essential container that stops stops the task."),
    FieldSupport(C + "restartPolicy", S, "Restarts in place as the agent does; see ECS semantics."),
    FieldSupport(C + "entryPoint", S, "Entrypoint."),
    FieldSupport(C + "command", S, "Cmd."),
    FieldSupport(C + "environment", S, "Env, after the variables the agent adds."),
    FieldSupport(
        C + "environmentFiles",
        L,
        "Read from a local file, a hook or a plain path; S3 only with --ecs-aws. ECS reads S3 objects.",
    ),
    FieldSupport(C + "mountPoints", S, "Binds (:ro with readOnly)."),
    FieldSupport(C + "volumesFrom", S, "VolumesFrom (:ro with readOnly); the source container is created first."),
    FieldSupport(C + "linuxParameters", S, "See the linuxParameters fields."),
    FieldSupport(
        C + "secrets",
        L,
        "Env, with values from the secrets argument, a secrets file (--ecs-secrets-file), hooks, or SSM and "
        "Secrets Manager with --ecs-aws.",
    ),
    FieldSupport(C + "dependsOn", S, "START, COMPLETE, SUCCESS and HEALTHY, gated on Docker events."),
    FieldSupport(C + "startTimeout", S, "The dependency's time limit, counted from its start."),
    FieldSupport(C + "stopTimeout", S, "SIGTERM, then SIGKILL after this many seconds."),
    FieldSupport(C + "versionConsistency", L, "Not used: the tag is resolved by the local engine."),
    FieldSupport(C + "hostname", S, "Hostname."),
    FieldSupport(C + "user", S, "User."),
    FieldSupport(C + "workingDirectory", S, "WorkingDir."),
    FieldSupport(C + "disableNetworking", S, "NetworkDisabled."),
    FieldSupport(C + "privileged", S, "Privileged, as given: no agent setting turns it off."),
    FieldSupport(C + "readonlyRootFilesystem", S, "ReadonlyRootfs."),
    FieldSupport(C + "dnsServers", S, "Dns."),
    FieldSupport(C + "dnsSearchDomains", S, "DnsSearch."),
    FieldSupport(C + "extraHosts", S, "ExtraHosts."),
    FieldSupport(C + "dockerSecurityOptions", S, "SecurityOpt, as given."),
    FieldSupport(C + "interactive", S, "OpenStdin."),
    FieldSupport(C + "pseudoTerminal", S, "Tty."),
    FieldSupport(C + "dockerLabels", S, "Labels; the agent's and the plugin's labels win on a clash."),
    FieldSupport(C + "ulimits", S, "Ulimits."),
    FieldSupport(
        C + "logConfiguration",
        L,
        "Not passed to Docker: logs stay readable by the test (Task.awslogs names awslogs streams); "
        "secretOptions must still resolve.",
    ),
    FieldSupport(C + "healthCheck", S, "Healthcheck; HEALTHY gates dependents."),
    FieldSupport(C + "systemControls", S, "Sysctls; in awsvpc the net.* ones go to the pause container."),
    FieldSupport(C + "resourceRequirements", R, "GPUs and accelerators are not reserved by a local engine."),
    FieldSupport(C + "firelensConfiguration", L, "Not used: a FireLens router runs as a plain container."),
    FieldSupport(C + "credentialSpecs", R, "gMSA credential specs need a host joined to Active Directory."),
    # -- linuxParameters ---------------------------------------------------------------------------------
    FieldSupport(LP + "capabilities", S, "CapAdd and CapDrop."),
    FieldSupport(LP + "devices", S, "Devices (permissions default to read, write, mknod)."),
    FieldSupport(LP + "initProcessEnabled", S, "Init."),
    FieldSupport(LP + "sharedMemorySize", S, "ShmSize (MiB)."),
    FieldSupport(LP + "tmpfs", S, "Tmpfs (size in MiB plus mountOptions)."),
    FieldSupport(LP + "maxSwap", L, "MemorySwap = memory + maxSwap, only when the container sets memory."),
    FieldSupport(LP + "swappiness", S, "MemorySwappiness."),
    # -- volumes -----------------------------------------------------------------------------------------
    FieldSupport(V + "name", S, "What mountPoints refer to."),
    FieldSupport(V + "host", S, "sourcePath: a bind mount of that host path; without one, a task volume."),
    FieldSupport(
        V + "dockerVolumeConfiguration",
        L,
        "A Docker volume with its driver, options and labels; a shared volume made by the run is removed "
        "by the run (on ECS it outlives the task).",
    ),
    FieldSupport(V + "efsVolumeConfiguration", R, "An EFS file system cannot be mounted by a local engine."),
    FieldSupport(V + "s3filesVolumeConfiguration", R, "S3 file volumes need the ECS agent's mount helper."),
    FieldSupport(V + "fsxWindowsFileServerVolumeConfiguration", R, "FSx for Windows needs a Windows container host."),
    FieldSupport(V + "configuredAtLaunch", R, "Such volumes are attached by a service; none is attached locally."),
)

GROUPS: tuple[tuple[str, str], ...] = (
    ("Task definition", ""),
    ("Container definitions", C),
    ("linuxParameters", LP),
    ("Volumes", V),
)


# Botocore's ECS model shape that holds the fields of each group, for messages about the installed model.
GROUP_SHAPES: Mapping[str, str] = {
    "": "RegisterTaskDefinitionRequest",
    C: "ContainerDefinition",
    LP: "LinuxParameters",
    V: "Volume",
}


def field_support(path: str) -> FieldSupport:
    for entry in FIELDS:
        if entry.path == path:
            return entry
    raise KeyError(path)


def listed_names(prefix: str) -> frozenset[str]:
    """The field names this list knows directly below ``prefix`` (one of the GROUPS prefixes)."""
    names = (e.path[len(prefix) :] for e in FIELDS if _group(e.path) == prefix)
    return frozenset(name for name in names if "." not in name and "[" not in name)


def unlisted_fields(raw: Mapping[str, Any]) -> list[str]:
    """JSON paths of the fields a validated task definition sets that this list does not know.

    Botocore's model is newer than the list: the field passed validation, and nothing here reproduces it
    locally. Only the four groups of the list are looked at (the task, containers, linuxParameters, volumes).
    """
    found = [f"$.{key}" for key in raw if key not in listed_names("")]
    container_keys, linux_keys, volume_keys = listed_names(C), listed_names(LP), listed_names(V)
    for i, container in enumerate(raw.get("containerDefinitions") or ()):
        found += [f"$.containerDefinitions[{i}].{key}" for key in container if key not in container_keys]
        linux = container.get("linuxParameters") or {}
        found += [f"$.containerDefinitions[{i}].linuxParameters.{key}" for key in linux if key not in linux_keys]
    for i, volume in enumerate(raw.get("volumes") or ()):
        found += [f"$.volumes[{i}].{key}" for key in volume if key not in volume_keys]
    return found


def _group(path: str) -> str:
    """The longest group prefix the path starts with (the task's own fields have the empty prefix)."""
    return max((prefix for _, prefix in GROUPS if path.startswith(prefix)), key=len)


def _rows(prefix: str) -> Iterator[FieldSupport]:
    return (entry for entry in FIELDS if _group(entry.path) == prefix)


def markdown_table(groups: Sequence[tuple[str, str]] = GROUPS) -> str:
    """The field-support tables, one per group, as Markdown."""
    out: list[str] = []
    for title, prefix in groups:
        where = f" (`{prefix.rstrip('.')}`)" if prefix else ""
        out += [f"### {title}{where}", "", "| Field | Support | Locally |", "| --- | --- | --- |"]
        out += [f"| `{e.path[len(prefix) :]}` | {e.support.value} | {e.note} |" for e in _rows(prefix)]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


BEGIN = "<!-- field-support table: generated by python -m pytest_ecstask.fields --write; do not edit -->"
END = "<!-- end of field-support table -->"


def with_table(document: str) -> str:
    """``document`` with the text between the BEGIN and END markers replaced by the current table."""
    return between_markers(document, BEGIN, END, markdown_table())


def main(argv: Sequence[str]) -> int:
    return write_command(argv, "pytest_ecstask.fields", with_table, markdown_table)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
