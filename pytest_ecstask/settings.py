"""Every setting once: its option, ini key, marker argument, parser, default and help, in one table.

``pytest --help`` (options and their ini twins), the checks when pytest starts, a marker's or factory
call's arguments and the settings tables of docs/reference.md are all made from :data:`SETTINGS`.
Precedence is one rule everywhere: the marker or factory call, then the command line, then the ini
file, then the default. The few settings whose values merge rather than replace (image mappings,
template variables, environment file mappings) have a reader of their own.

``python -m pytest_ecstask.settings --write docs/reference.md`` rewrites the generated tables there.

:func:`plan_options` is the one place a task's settings become its plan's options: a run (``create_task``)
and ``--ecs-plan`` both call it, so the plan shown is the plan run.

Light on imports: the plugin resolves these when pytest starts, also in runs that never start a task.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_ecstask import options as defaults
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.generated import between_markers, write_command
from pytest_ecstask.lifecycle import DEFAULT_CAP, DEFAULT_MAX_AGE
from pytest_ecstask.options import ENDPOINT_MODES, TaskOptions, endpoint_mode

if TYPE_CHECKING:
    import pytest

    from pytest_ecstask.endpointids import EndpointInfo, EndpointRequest
    from pytest_ecstask.inputs import TaskInputs
    from pytest_ecstask.lifecycle import Owner
    from pytest_ecstask.plan import PlanOptions
    from pytest_ecstask.taskdef import TaskDefinition

DEFAULT_START_TIMEOUT = 300.0  # under pytest, so that a broken health check cannot hang a run
DEFAULT_ORPHAN_AGE = DEFAULT_MAX_AGE
DEFAULT_SWEEP_CAP = DEFAULT_CAP

Parse = Callable[[Any, str], Any]  # (value, where it came from) -> the setting's value; EcsTaskError if bad


# -- parsers: each takes the value and where it came from, for the message -------------------------------


def seconds(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EcsTaskError(f"{where}: {value!r} is not a number of seconds") from None
    if number < 0:
        raise EcsTaskError(f"{where}: {value!r} must not be negative")
    return number


def start_timeout(value: Any, where: str) -> float | None:
    """Seconds; 0 is no limit (None), as in ECS, and an empty value the default."""
    number = seconds(value, where)
    return DEFAULT_START_TIMEOUT if number is None else (number or None)


def whole_number(value: Any, where: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise EcsTaskError(f"{where}: {value!r} is not a whole number >= 0")
    return number


def digits(value: Any, where: str) -> int:
    text = str(value)
    if not text.isdigit():
        raise EcsTaskError(f"{where}: {text!r} is not a whole number >= 0")
    return int(text)


def port(value: Any, where: str) -> int:
    text = str(value)
    if not text.isdigit() or int(text) > 65535:
        raise EcsTaskError(f"{where}: {text!r} is not a port number")
    return int(text)


def choice(choices: Sequence[str], message: str, result: Callable[[str], Any] = str) -> Parse:
    """One of ``choices``; ``message`` is formatted with the value, where it came from, and the choices."""

    def parse(value: Any, where: str) -> Any:
        if value not in choices:
            raise EcsTaskError(message.format(value=value, where=where, choices=", ".join(choices)))
        return result(str(value))

    return parse


def text(value: Any, where: str) -> str:
    return str(value)


def endpoint_mode_of(value: Any, where: str) -> str:
    try:
        return endpoint_mode(value)
    except ValueError:
        raise EcsTaskError(f"{where}: endpoints={value!r} is not one of {', '.join(ENDPOINT_MODES)}") from None


def static_credentials(value: Any, where: str) -> Mapping[str, str]:
    from pytest_ecstask.credentials import parse_static

    return parse_static(str(value), where)


def pairs(entries: Sequence[str], where: str) -> dict[str, str]:
    """``NAME=LOCAL`` entries, split on the first ``=``; a later entry wins."""
    found = {}
    for entry in entries:
        name, sep, local = entry.partition("=")
        if not sep or not name.strip() or not local.strip():
            raise EcsTaskError(f"{where}: {entry!r} is not NAME=LOCAL")
        found[name.strip()] = local.strip()
    return found


# -- the AWS backend's parsers ---------------------------------------------------------------------------

BACKENDS = ("docker", "aws")
AWS_LAUNCH_TYPES = ("FARGATE", "EC2", "EXTERNAL")
DEFAULT_AWS_LAUNCH_TYPE = "FARGATE"  # RunTask's, when no capacity provider strategy is given
_FAMILY_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")  # what ECS takes in a family name
# A capacity provider's weight and base, as RunTask takes them (the ranges of botocore's ECS model).
_WEIGHT_RANGE, _BASE_RANGE = (0, 1000), (0, 100000)


@dataclass(frozen=True)
class CapacityProvider:
    """One capacity provider of a RunTask capacity provider strategy; None: ECS's default."""

    name: str
    weight: int | None = None
    base: int | None = None


def capacity_providers(entries: Sequence[str], where: str) -> tuple[CapacityProvider, ...]:
    """``NAME[:WEIGHT[:BASE]]`` entries, as a strategy: each provider once, a base for one of them at most."""
    found: dict[str, CapacityProvider] = {}
    for entry in entries:
        provider = _capacity_provider(str(entry), where)
        if provider.name in found:
            raise EcsTaskError(
                f"{where}: capacity provider {provider.name!r} is given twice; a strategy names each once"
            )
        found[provider.name] = provider
    with_base = [p.name for p in found.values() if p.base]
    if len(with_base) > 1:
        raise EcsTaskError(
            f"{where}: {', '.join(with_base)} each have a base; ECS takes a base for one capacity provider of a "
            "strategy only"
        )
    return tuple(found.values())


def _capacity_provider(entry: str, where: str) -> CapacityProvider:
    name, *numbers = entry.strip().split(":")
    if not name or len(numbers) > 2:
        raise EcsTaskError(f"{where}: {entry!r} is not NAME[:WEIGHT[:BASE]]")
    weight = _in_range(numbers[0], _WEIGHT_RANGE, "weight", entry, where) if numbers else None
    base = _in_range(numbers[1], _BASE_RANGE, "base", entry, where) if len(numbers) > 1 else None
    return CapacityProvider(name, weight, base)


def _in_range(text: str, limits: tuple[int, int], what: str, entry: str, where: str) -> int:
    low, high = limits
    if not text.isdigit() or not low <= int(text) <= high:
        raise EcsTaskError(f"{where}: {entry!r}: the {what} is a whole number from {low} to {high}, not {text!r}")
    return int(text)


def resource_ids(prefix: str, what: str) -> Parse:
    """Ids of one kind of VPC resource (``subnet-...``, ``sg-...``), in the order given; each once."""

    def parse(entries: Sequence[str], where: str) -> tuple[str, ...]:
        ids = [str(e).strip() for e in entries]
        for given in ids:
            if not re.fullmatch(rf"{prefix}-[0-9A-Za-z]+", given):
                raise EcsTaskError(f"{where}: {given!r} is not {what} id ({prefix}-...)")
        return tuple(dict.fromkeys(ids))

    return parse


def family_suffix(value: Any, where: str) -> str:
    text = str(value)
    if not _FAMILY_CHARACTERS.fullmatch(text):
        raise EcsTaskError(f"{where}: {text!r} has characters ECS refuses in a family: letters, digits, '-' and '_'")
    return text


# -- how a marker or factory argument changes what the command line and ini gave ------------------------

Apply = Callable[[Any, Any, str], Any]  # (value so far, the argument, where) -> the task's value


def replaces(parse: Parse | None = None) -> Apply:
    """The argument replaces the value when given (not None); parsed like the command line's."""
    return lambda current, given, where: current if given is None else (parse(given, where) if parse else given)


def replaces_when_set(parse: Parse) -> Apply:
    """The argument replaces the value when it is set at all (an empty string is not)."""
    return lambda current, given, where: parse(given, where) if given else current


def merged_first(current: Any, given: Any, where: str) -> dict[str, Any]:
    """The argument's entries first: an exact name and the first matching glob are looked up in this order."""
    merged = dict(given or {})
    for name, value in dict(current).items():
        merged.setdefault(name, value)
    return merged


def merged_over(current: Any, given: Any, where: str) -> dict[str, str]:
    """The argument's entries win, name by name."""
    return {**dict(current), **{str(k): str(v) for k, v in dict(given or {}).items()}}


def as_dict(current: Any, given: Any, where: str) -> dict[str, Any]:
    return dict(given or {})


def as_bool(current: Any, given: Any, where: str) -> bool:
    return bool(given)


# -- the table -------------------------------------------------------------------------------------------

TASK, RUN, AWS, COMMAND, MARKER_ONLY = "task", "run", "aws", "command", "marker"


@dataclass(frozen=True)
class Setting:
    """One setting: where it can be given, how it is read, what it defaults to, and what it is for."""

    name: str
    title: str  # its name in the reference's tables
    # Its table in the reference: TASK (marker, command line and ini), RUN (command line and ini), AWS (command
    # line and ini, of the AWS backend), COMMAND (command line only: makes pytest do something else),
    # MARKER_ONLY (marker and factory call only).
    group: str
    help: str  # for pytest --help (option and ini key) and the reference
    task_field: str | None = None  # the TaskOptions field it gives (a run setting: the Settings field `name`)
    flag: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    switch: bool = False  # the option can only switch the setting on; its ini twin is a bool
    repeatable: bool = False
    ini: str | None = None
    ini_type: str = "string"  # as pytest's addini: string, linelist, bool, paths
    parse: Parse = text
    default: Any = None
    names_both: bool = False  # its errors name "--flag / ini key", not where the value came from
    marker: str = ""  # the marker / factory argument, as the reference shows it (Markdown)
    apply: Apply | None = None  # how that argument changes the value of the command line and ini
    read: Callable[[pytest.Config, Setting], Any] | None = None  # for values merged from several places
    shown_default: str = "none"
    note: str = ""  # more for the reference's ini table

    @property
    def dest(self) -> str:
        return (self.flag or "")[2:].replace("-", "_")

    def where(self, source: str) -> str:
        return f"{self.flag} / ini {self.ini}" if self.names_both else source


def _images(config: pytest.Config, setting: Setting) -> dict[str, str]:
    """The command line's mappings first, then the ini file's: the first matching glob wins."""
    found = pairs(config.getoption(setting.dest), str(setting.flag))
    for name, local in pairs(list(config.getini(str(setting.ini))), f"ini {setting.ini}").items():
        found.setdefault(name, local)
    return found


def _variables(config: pytest.Config, setting: Setting) -> dict[str, str]:
    """Template values, highest precedence first: command line, ini, vars file (a marker's go on top)."""
    vars_file = path(config, BY_NAME["vars_file"])
    if not (vars_file or config.getini(str(setting.ini)) or config.getoption(setting.dest)):
        return {}  # no templating asked for: nothing to import or read
    from pytest_ecstask.variables import load_vars_file, parse_var_assignments

    values: dict[str, str] = {}
    if vars_file is not None:
        values.update(load_vars_file(vars_file))
    values.update(parse_var_assignments(list(config.getini(str(setting.ini))), f"ini {setting.ini}"))
    values.update(parse_var_assignments(config.getoption(setting.dest), str(setting.flag)))
    return values


def _environment_files(config: pytest.Config, setting: Setting) -> dict[str, str]:
    """``VALUE=PATH`` mappings; the command line wins over the ini file for the same VALUE."""
    given = [(e, f"ini {setting.ini}", _ini_dir(config)) for e in config.getini(str(setting.ini))]
    given += [(e, str(setting.flag), config.invocation_params.dir) for e in config.getoption(setting.dest)]
    found = {}
    for entry, where, directory in given:
        value, sep, file = str(entry).rpartition("=")
        if not sep or not value or not file:
            raise EcsTaskError(f"{where}: {entry!r} is not VALUE=PATH")
        found[value] = str(Path(directory, file))
    return found


def _secrets_file(config: pytest.Config, setting: Setting) -> tuple[Any, ...]:
    """The secrets file, read now: a missing or broken file is a usage error when pytest starts."""
    file = path(config, setting)
    if file is None:
        return ()
    from pytest_ecstask.secretvalues import load_secrets_file, local_resolver

    return (local_resolver(load_secrets_file(file)),)


def _text(name: str, title: str, what: str, default: str) -> Setting:
    """A plain string with an option, an ini key and a marker argument, used as given."""
    return Setting(
        name,
        title,
        TASK,
        what,
        task_field=name,
        flag=f"--ecs-{name.replace('_', '-')}",
        metavar=name.upper(),
        ini=f"ecs_{name}",
        default=default,
        marker=f"`{name}=`",
        apply=replaces_when_set(text),
        shown_default=f"`{default}`",
    )


_PULL = choice(
    ("missing", "always", "never"), "pull policy {value!r} is not one of {choices} (--ecs-pull, ini ecs_pull)"
)
_IN_INI_DIR = "A relative path is read from the ini file's directory (or the root directory if there is no ini file)."

# In the order of pytest --help; the marker's arguments keep the order they have always had among them.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "taskdef",
        "Task definition",
        TASK,
        "task definition (JSON) for the session-scoped ecs_task fixture",
        flag="--ecs-taskdef",
        metavar="PATH",
        ini="ecs_taskdef",
        ini_type="paths",
        marker="first positional argument",
        note=_IN_INI_DIR,
    ),
    Setting(
        "images",
        "Image mappings",
        TASK,
        "run LOCAL wherever a task definition names image NAME (exact, or a glob like '*/app:*')",
        task_field="images",
        flag="--ecs-image",
        metavar="NAME=LOCAL",
        repeatable=True,
        ini="ecs_images",
        ini_type="linelist",
        default={},
        marker="`images={NAME: LOCAL}`",
        apply=merged_first,
        read=_images,
        note="One `NAME=LOCAL` a line; in `pyproject.toml`, a list of strings.",
    ),
    Setting(
        "pull",
        "Pull policy",
        TASK,
        "when to pull a task's images: missing (default), always, never",
        task_field="pull",
        flag="--ecs-pull",
        choices=("missing", "always", "never"),
        ini="ecs_pull",
        parse=_PULL,
        default="missing",
        marker='`pull="missing"`',
        apply=replaces_when_set(_PULL),
        shown_default="`missing`",
    ),
    Setting(
        "stop_timeout",
        "Stop timeout",
        TASK,
        "seconds between SIGTERM and SIGKILL for every container, instead of each stopTimeout (ECS default 30)",
        task_field="stop_timeout",
        flag="--ecs-stop-timeout",
        metavar="SECONDS",
        ini="ecs_stop_timeout",
        parse=seconds,
        marker="`stop_timeout=SECONDS`",
        apply=replaces(seconds),
        shown_default="each container's `stopTimeout`, else 30",
    ),
    Setting(
        "start_timeout",
        "Start timeout",
        TASK,
        f"how long a dependent waits for a dependency without startTimeout; with --ecs-backend=aws, how long a "
        f"task may take to reach RUNNING (default {DEFAULT_START_TIMEOUT:g}; 0 = no limit, as in ECS)",
        task_field="start_timeout",
        flag="--ecs-start-timeout",
        metavar="SECONDS",
        ini="ecs_start_timeout",
        parse=start_timeout,
        default=DEFAULT_START_TIMEOUT,
        marker="`start_timeout=SECONDS`",
        apply=replaces(start_timeout),
        shown_default=f"{DEFAULT_START_TIMEOUT:g} (0 = no limit)",
    ),
    Setting(
        "check",
        "Fail on TaskFailedToStart",
        MARKER_ONLY,
        "Fail the test when the task stops with `TaskFailedToStart`. With `False`, the test gets the stopped task.",
        task_field="check",
        default=True,
        marker="`check=True`",
        apply=as_bool,
        shown_default="`True`",
    ),
    Setting(
        "keep",
        "Keep tasks after the run",
        RUN,
        "leave every task running after the run, for debugging; prints how to reach and remove them",
        flag="--ecs-keep",
        switch=True,
        ini="ecs_keep",
        ini_type="bool",
        default=False,
        shown_default="off",
    ),
    Setting(
        "reuse",
        "Keep the session task for the next run",
        RUN,
        "keep the session task up after the run; the next run adopts it when its plan, images and settings "
        "are the same and its containers are as they were left, else replaces it",
        flag="--ecs-reuse",
        switch=True,
        ini="ecs_reuse",
        ini_type="bool",
        default=False,
        shown_default="off",
    ),
    Setting(
        "sweep_orphans",
        "Sweep and exit",
        COMMAND,
        "remove what dead runs left on the engine (with --ecs-backend=aws, on ECS), then exit without running tests",
        flag="--ecs-sweep-orphans",
        switch=True,
    ),
    Setting(
        "dry_run",
        "Dry run",
        COMMAND,
        "with --ecs-sweep-orphans: list, remove nothing",
        flag="--ecs-dry-run",
        switch=True,
    ),
    Setting(
        "orphan_age",
        "Age past which another host's leftovers are swept",
        RUN,
        "resources made from another host (whose runs cannot be checked) go when older than this "
        f"(default {DEFAULT_ORPHAN_AGE:g})",
        flag="--ecs-orphan-age",
        metavar="SECONDS",
        ini="ecs_orphan_age",
        parse=seconds,
        default=DEFAULT_ORPHAN_AGE,
        shown_default=f"{DEFAULT_ORPHAN_AGE:g}",
    ),
    Setting(
        "sweep_cap",
        "Most resources one sweep may remove",
        RUN,
        f"refuse a sweep that would remove more than N resources, unless --ecs-force (default {DEFAULT_SWEEP_CAP})",
        flag="--ecs-sweep-cap",
        metavar="N",
        ini="ecs_sweep_cap",
        parse=whole_number,
        default=DEFAULT_SWEEP_CAP,
        names_both=True,
        shown_default=str(DEFAULT_SWEEP_CAP),
    ),
    Setting(
        "force",
        "Force",
        COMMAND,
        "with --ecs-sweep-orphans: remove past the safety cap",
        flag="--ecs-force",
        switch=True,
    ),
    Setting(
        "include_kept",
        "Include kept tasks",
        COMMAND,
        "with --ecs-sweep-orphans: also remove tasks kept with --ecs-keep",
        flag="--ecs-include-kept",
        switch=True,
    ),
    Setting(
        "json", "JSON", COMMAND, "with --ecs-sweep-orphans or --ecs-plan: print JSON", flag="--ecs-json", switch=True
    ),
    Setting(
        "plan",
        "Print the launch plan and exit",
        COMMAND,
        "print the launch plan of --ecs-taskdef (order, gates, images, commands, env names, ports, mounts), or "
        "with --ecs-backend=aws the requests to ECS, without starting or sending anything, then exit",
        flag="--ecs-plan",
        switch=True,
    ),
    Setting(
        "logs",
        "Logs and timeline in test reports",
        RUN,
        "attach the task's logs and timeline to test reports: on-failure (default), always, never",
        flag="--ecs-logs",
        choices=("on-failure", "always", "never"),
        ini="ecs_logs",
        parse=choice(("on-failure", "always", "never"), "{where}: {value!r} is not one of {choices}"),
        default="on-failure",
        shown_default="`on-failure`",
    ),
    Setting(
        "log_lines",
        "Log lines per container in reports",
        RUN,
        "log lines per container in reports (default 50)",
        flag="--ecs-log-lines",
        metavar="N",
        ini="ecs_log_lines",
        parse=digits,
        default=50,
        names_both=True,
        shown_default="50",
    ),
    Setting(
        "log_dir",
        "Directory for full container logs",
        RUN,
        "write every container's full log there, one file per container per task (for CI artifacts)",
        flag="--ecs-log-dir",
        metavar="DIR",
        ini="ecs_log_dir",
        ini_type="paths",
        note=_IN_INI_DIR,
    ),
    Setting(
        "show_secrets",
        "Show resolved secret values unmasked",
        RUN,
        "show resolved secret values in logs, reports and log files instead of ****** (local debugging "
        "only: CI logs are often public)",
        task_field="show_secrets",
        flag="--ecs-show-secrets",
        switch=True,
        ini="ecs_show_secrets",
        ini_type="bool",
        default=False,
        shown_default="off (masked as `******`)",
    ),
    Setting(
        "endpoints",
        "Metadata and credentials endpoints",
        TASK,
        "serve the task metadata and credentials endpoints at 169.254.170.2: auto (default: a server on this "
        "machine where the engine's networks are here, else through the engine's relay), local, relay, or off",
        task_field="endpoints",
        flag="--ecs-endpoints",
        choices=ENDPOINT_MODES,
        ini="ecs_endpoints",
        parse=choice(ENDPOINT_MODES, "endpoints: {value!r} is not one of {choices} ({where})"),
        default="auto",
        marker="`endpoints=` a mode, or `True` (auto) / `False` (off)",
        apply=replaces(lambda given, where: endpoint_mode_of(given, where)),
        shown_default="`auto`",
        note="See [where the endpoints are served](endpoints.md#local-server-or-relay).",
    ),
    Setting(
        "credentials",
        "Task-role credentials",
        MARKER_ONLY,
        "Task-role credentials for the credentials endpoint. See [credentials](endpoints.md#credentials).",
        task_field="credentials",
        marker="`credentials={...}`",
        apply=lambda current, given, where: given,
    ),
    Setting(
        "assume_role",
        "Task-role credentials from STS",
        RUN,
        "serve task-role credentials from an STS AssumeRole of the taskRoleArn, with your own AWS "
        "credentials (needs boto3)",
        task_field="assume_role",
        flag="--ecs-assume-role",
        switch=True,
        ini="ecs_assume_role",
        ini_type="bool",
        default=False,
        shown_default="off",
    ),
    _text("cluster", "Cluster", "the cluster name in task ARNs, labels and metadata", defaults.DEFAULT_CLUSTER),
    _text("region", "Region", "the region in ARNs and metadata, and AWS_REGION", defaults.DEFAULT_REGION),
    _text("account_id", "Account id", "the account id in ARNs", defaults.DEFAULT_ACCOUNT_ID),
    replace(
        _text(
            "availability_zone",
            "Availability zone",
            "AvailabilityZone in metadata",
            defaults.DEFAULT_AVAILABILITY_ZONE,
        ),
        shown_default=f"`{defaults.DEFAULT_AVAILABILITY_ZONE}`, or `<region>a` with another region",
    ),
    _text("launch_type", "Launch type", "LaunchType in metadata", defaults.DEFAULT_LAUNCH_TYPE),
    Setting(
        "wait_for",
        "Readiness checks",
        MARKER_ONLY,
        "testcontainers wait strategies applied after the task has started. See "
        "[readiness](debugging.md#readiness-wait_for).",
        task_field="wait_for",
        marker="`wait_for={container: strategy}`",
        apply=as_dict,
    ),
    Setting(
        "overrides",
        "Container overrides",
        MARKER_ONLY,
        "Changes to `environment`, `command`, `entryPoint`, `image` and `dockerLabels`. See "
        "[overrides](secrets-and-variables.md#overrides).",
        task_field="overrides",
        marker="`overrides={container: {field: value}}`",
        apply=as_dict,
    ),
    Setting(
        "secrets",
        "Secret values",
        MARKER_ONLY,
        "Secret values, asked before the secrets file. See [secrets](secrets-and-variables.md#where-values-come-from).",
        task_field="secrets",
        marker="`secrets={valueFrom: value}`",
        apply=as_dict,
    ),
    Setting(
        "endpoint_port",
        "Port of the endpoint server",
        RUN,
        "port of the endpoint server on 169.254.170.2: 80 gives the exact ECS form "
        "(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) but keeps tasks from publishing hostPort 80; default: any "
        "free port, with AWS_CONTAINER_CREDENTIALS_FULL_URI",
        task_field="endpoint_port",
        flag="--ecs-endpoint-port",
        metavar="PORT",
        ini="ecs_endpoint_port",
        parse=port,
        default=0,
        names_both=True,
        shown_default="any free port",
    ),
    Setting(
        "relay_image",
        "Relay image",
        RUN,
        "image of the relay that carries the endpoints on an engine that is not on this machine: any image "
        "with python3 3.8 or newer",
        task_field="relay_image",
        flag="--ecs-relay-image",
        metavar="IMAGE",
        ini="ecs_relay_image",
        default=defaults.DEFAULT_RELAY_IMAGE,
        shown_default=f"`{defaults.DEFAULT_RELAY_IMAGE}`",
        note="See [the relay's image](recipes/remote-engines.md#the-relay-image).",
    ),
    Setting(
        "task_credentials",
        "Static task-role credentials",
        RUN,
        "static task-role credentials served to containers: ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]",
        ini="ecs_task_credentials",
        parse=static_credentials,
        note="No command-line twin. See [credentials](endpoints.md#credentials).",
    ),
    Setting(
        "variables",
        "Template variables",
        TASK,
        "fill ${NAME} in task definition templates",
        task_field="variables",
        flag="--ecs-var",
        metavar="NAME=VALUE",
        repeatable=True,
        ini="ecs_vars",
        ini_type="linelist",
        default={},
        marker="`variables={NAME: VALUE}`",
        apply=merged_over,
        read=_variables,
        note="One `NAME=VALUE` a line.",
    ),
    Setting(
        "vars_file",
        "Template variables file",
        RUN,
        "template variables from a JSON, YAML or NAME=VALUE file",
        flag="--ecs-vars-file",
        metavar="PATH",
        ini="ecs_vars_file",
        ini_type="paths",
        note=_IN_INI_DIR,
    ),
    Setting(
        "template",
        "Treat task definitions as templates",
        RUN,
        "treat task definitions as templates even without --ecs-var (values from the environment)",
        task_field="template",
        flag="--ecs-template",
        switch=True,
        ini="ecs_template",
        ini_type="bool",
        default=False,
        shown_default="off (on when a variable is given)",
    ),
    Setting(
        "secrets_file",
        "Secrets file",
        RUN,
        "secret values by parameter name or ARN (JSON or YAML)",
        task_field="secret_resolvers",
        flag="--ecs-secrets-file",
        metavar="PATH",
        ini="ecs_secrets_file",
        ini_type="paths",
        read=_secrets_file,
        note=_IN_INI_DIR,
    ),
    Setting(
        "environment_files",
        "Environment file mappings",
        RUN,
        "read environmentFiles entry VALUE (an S3 ARN) from local PATH",
        task_field="environment_files",
        flag="--ecs-env-file",
        metavar="VALUE=PATH",
        repeatable=True,
        ini="ecs_env_files",
        ini_type="linelist",
        default={},
        read=_environment_files,
        note="One `VALUE=PATH` a line. A relative `PATH` is read from the ini file's directory.",
    ),
    Setting(
        "aws",
        "Read secrets and S3 environment files from AWS",
        RUN,
        "read secrets (SSM, Secrets Manager) and S3 environment files from real AWS with your own "
        "credentials (needs boto3)",
        task_field="aws",
        flag="--ecs-aws",
        switch=True,
        ini="ecs_aws",
        ini_type="bool",
        default=False,
        shown_default="off",
    ),
    Setting(
        "backend",
        "Where tasks run",
        AWS,
        "where tasks run: docker (a Docker engine) or aws (a real ECS cluster, through boto3)",
        flag="--ecs-backend",
        choices=BACKENDS,
        ini="ecs_backend",
        parse=choice(BACKENDS, "{where}: {value!r} is not one of {choices}"),
        default="docker",
        shown_default="`docker`",
    ),
    Setting(
        "aws_cluster",
        "Cluster",
        AWS,
        "the ECS cluster the AWS backend runs tasks in (a name or an ARN)",
        flag="--ecs-aws-cluster",
        metavar="CLUSTER",
        ini="ecs_aws_cluster",
        default="default",
        shown_default="`default`",
    ),
    Setting(
        "aws_launch_type",
        "Launch type",
        AWS,
        "the launch type the AWS backend runs tasks with: FARGATE (default, unless a capacity provider is "
        "given), EC2 or EXTERNAL; not with --ecs-aws-capacity-provider",
        flag="--ecs-aws-launch-type",
        choices=AWS_LAUNCH_TYPES,
        ini="ecs_aws_launch_type",
        parse=choice(AWS_LAUNCH_TYPES, "{where}: {value!r} is not one of {choices}"),
        shown_default=f"`{DEFAULT_AWS_LAUNCH_TYPE}`, none with a capacity provider",
    ),
    Setting(
        "aws_capacity_providers",
        "Capacity provider strategy",
        AWS,
        "a capacity provider of the strategy the AWS backend runs tasks with, with its weight and base; not "
        "with --ecs-aws-launch-type",
        flag="--ecs-aws-capacity-provider",
        metavar="NAME[:WEIGHT[:BASE]]",
        repeatable=True,
        ini="ecs_aws_capacity_providers",
        ini_type="linelist",
        parse=capacity_providers,
        default=(),
        note="One `NAME[:WEIGHT[:BASE]]` a line.",
    ),
    Setting(
        "aws_subnets",
        "Subnets",
        AWS,
        "a subnet of awsvpc tasks run by the AWS backend (ECS needs one at least)",
        flag="--ecs-aws-subnet",
        metavar="SUBNET",
        repeatable=True,
        ini="ecs_aws_subnets",
        ini_type="linelist",
        parse=resource_ids("subnet", "a subnet"),
        default=(),
        note="One subnet id a line.",
    ),
    Setting(
        "aws_security_groups",
        "Security groups",
        AWS,
        "a security group of awsvpc tasks run by the AWS backend",
        flag="--ecs-aws-security-group",
        metavar="GROUP",
        repeatable=True,
        ini="ecs_aws_security_groups",
        ini_type="linelist",
        parse=resource_ids("sg", "a security group"),
        default=(),
        shown_default="none (the VPC's default group)",
        note="One security group id a line.",
    ),
    Setting(
        "aws_public_ip",
        "Public IP",
        AWS,
        "give awsvpc tasks run by the AWS backend a public IP address (assignPublicIp ENABLED)",
        flag="--ecs-aws-public-ip",
        switch=True,
        ini="ecs_aws_public_ip",
        ini_type="bool",
        default=False,
        shown_default="off (`DISABLED`)",
    ),
    Setting(
        "aws_family_suffix",
        "Family suffix",
        AWS,
        "added to the task definition's family when the AWS backend registers it, so that the family the "
        "team deploys gets no test revisions",
        flag="--ecs-aws-family-suffix",
        metavar="SUFFIX",
        ini="ecs_aws_family_suffix",
        parse=family_suffix,
        default="-ecstask",
        shown_default="`-ecstask`",
    ),
)
BY_NAME = {s.name: s for s in SETTINGS}
# What a marker or factory call may say; any other keyword fails its test with "unknown argument(s)".
MARKER_ARGS = tuple(s.name for s in SETTINGS if s.apply is not None)


# -- reading a setting -----------------------------------------------------------------------------------


def _ini_dir(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath else config.rootpath


def _override(config: pytest.Config, key: str) -> str:
    """The value ``-o key=value`` gives (the last one), or ""."""
    found = ""
    for entry in config.getoption("override_ini") or []:
        name, _, value = str(entry).partition("=")
        if name.strip() == key:
            found = value
    return found


def path(config: pytest.Config, setting: Setting) -> Path | None:
    """A path from the command line (relative to where pytest started), else the ini file (relative to it)."""
    given = config.getoption(setting.dest) if setting.flag else None
    if given:
        return Path(config.invocation_params.dir, given)
    if config.inipath is None:
        # Only -o can give it then, and pytest 7 cannot make "paths" without an ini file to be relative to.
        text = _override(config, str(setting.ini))
        return Path(config.rootpath, text) if text else None
    paths = config.getini(str(setting.ini))
    if len(paths) > 1:
        raise EcsTaskError(f"ini {setting.ini}: one path, not {len(paths)}: put quotes around a path with spaces")
    return Path(paths[0]) if paths else None


def _given(config: pytest.Config, setting: Setting) -> tuple[Any, str] | None:
    """The value on the command line, else in the ini file, with where it came from; None if neither."""
    if setting.flag:
        value = config.getoption(setting.dest)
        if value not in (None, "", []):
            return value, setting.flag
    if setting.ini:
        value = config.getini(setting.ini)
        if value not in (None, "", [], False):
            return value, f"ini {setting.ini}"
    return None


def read(config: pytest.Config, setting: Setting) -> Any:
    """The setting's value from the command line, else the ini file, else its default; checked."""
    if setting.read is not None:
        return setting.read(config, setting)
    if setting.ini_type == "paths":
        return path(config, setting)
    found = _given(config, setting)
    if setting.switch:
        return found is not None
    if found is None:
        return setting.default
    value, where = found
    return setting.parse(value, setting.where(where))


# -- the settings of a run, and of one task --------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Every setting of a run, from the command line, the ini file and the defaults, checked."""

    # What every task starts from: for_task applies a marker's or factory call's arguments, then makes the
    # availability zone from the region when none is given.
    task: TaskOptions = field(default_factory=TaskOptions)
    taskdef: Path | None = None  # of the session task
    keep: bool = False
    reuse: bool = False  # the session task, kept for the next run
    orphan_age: float = DEFAULT_ORPHAN_AGE
    sweep_cap: int = DEFAULT_SWEEP_CAP
    logs: str = "on-failure"
    log_lines: int = 50
    log_dir: Path | None = None
    task_credentials: Mapping[str, str] | None = None
    # Where tasks run, and the AWS backend's cluster, capacity and network (pytest_ecstask.ecsrequests).
    backend: str = "docker"
    aws_cluster: str = "default"
    aws_launch_type: str | None = None  # None: FARGATE, unless a capacity provider strategy is given
    aws_capacity_providers: tuple[CapacityProvider, ...] = ()
    aws_subnets: tuple[str, ...] = ()
    aws_security_groups: tuple[str, ...] = ()
    aws_public_ip: bool = False
    aws_family_suffix: str = "-ecstask"


def task_settings(config: pytest.Config) -> TaskOptions:
    """The settings every task of the run starts from; a bad value raises EcsTaskError naming it."""
    given = [s for s in SETTINGS if s.task_field and (s.flag or s.ini)]
    return TaskOptions(**{str(s.task_field): read(config, s) for s in given})


def sweep_settings(config: pytest.Config) -> tuple[float, int]:
    """The orphan age and the safety cap: all the sweep command reads."""
    return read(config, BY_NAME["orphan_age"]), read(config, BY_NAME["sweep_cap"])


def resolve(config: pytest.Config) -> Settings:
    """Every setting, once, when pytest starts: a bad value raises EcsTaskError naming it."""
    run_fields = {f for f in Settings.__dataclass_fields__ if f != "task"}
    task = task_settings(config)
    resolved = Settings(task, **{s.name: read(config, s) for s in SETTINGS if s.name in run_fields})
    if resolved.aws_launch_type and resolved.aws_capacity_providers:
        raise EcsTaskError(
            "--ecs-aws-launch-type (ini ecs_aws_launch_type) and --ecs-aws-capacity-provider (ini "
            "ecs_aws_capacity_providers) exclude each other: ECS runs a task with a launch type or a capacity "
            "provider strategy, not both; give one of them"
        )
    return resolved


def for_task(base: TaskOptions, arguments: Mapping[str, Any]) -> TaskOptions:
    """``base`` as a marker's or factory call's keyword arguments change it."""
    unknown = sorted(set(arguments) - set(MARKER_ARGS))
    if unknown:
        raise EcsTaskError(f"ecs_task: unknown argument(s) {', '.join(unknown)}; known: {', '.join(MARKER_ARGS)}")
    changes = {}
    for name, given in arguments.items():
        setting = BY_NAME[name]
        assert setting.task_field is not None and setting.apply is not None  # every marker argument has both
        changes[setting.task_field] = setting.apply(getattr(base, setting.task_field), given, f"ecs_task({name}=...)")
    options = replace(base, **changes)
    if options.region != defaults.DEFAULT_REGION and options.availability_zone == defaults.DEFAULT_AVAILABILITY_ZONE:
        options = replace(options, availability_zone=f"{options.region}a")  # a zone of the region given
    return options


def plan_options(
    taskdef: TaskDefinition,
    options: TaskOptions,
    inputs: TaskInputs | None,
    *,
    owner: Owner,
    pause_image: Callable[[], str],
    serve_endpoints: Callable[[EndpointRequest], EndpointInfo | None] | None = None,
    task_id: str | None = None,
    created: str | None = None,
    secret: str | None = None,
) -> PlanOptions:
    """What a task's settings make of its plan, for a run (``create_task``) and for ``--ecs-plan`` alike.

    ``inputs`` None is a plan to show: secrets and environment files are not read (their names show) and
    the image hook is not asked (it may build an image). ``pause_image`` is asked only for a task with a
    pause container (a run's engine imports the image then); ``serve_endpoints``, with the port asked, only
    when the endpoints are on. What the caller does not give is made up: a task id, the time, the secret
    the endpoint ids derive from.
    """
    import secrets as _secrets

    from pytest_ecstask.endpointids import EndpointRequest
    from pytest_ecstask.lifecycle import new_task_id, now_rfc3339
    from pytest_ecstask.plan import PlanOptions, needs_pause_container

    mode = endpoint_mode(options.endpoints)
    serve = serve_endpoints if mode != "off" else None
    request = EndpointRequest(mode, options.endpoint_port, options.relay_image, options.pull)
    return PlanOptions(
        task_id=task_id or new_task_id(),
        owner=owner,
        created=created or now_rfc3339(),
        pause_image=pause_image() if needs_pause_container(taskdef) else "",
        image_map=dict(options.images),
        container_images=inputs.container_images if inputs is not None else {},
        stop_timeout=options.stop_timeout,
        default_start_timeout=options.start_timeout,
        cluster=options.cluster,
        region=options.region,
        account_id=options.account_id,
        availability_zone=options.availability_zone,
        launch_type=options.launch_type,
        secret_values=inputs.secret_values if inputs is not None else {},
        environment_files=inputs.environment_files if inputs is not None else {},
        endpoint=serve(request) if serve is not None else None,
        secret=secret or _secrets.token_hex(16),
        mask_secrets=inputs is None,
    )


# -- pytest --help ---------------------------------------------------------------------------------------


def add_options(parser: pytest.Parser) -> None:
    """Every setting's option and ini key, with the same help."""
    group = parser.getgroup("ecstask", "run an Amazon ECS task definition on Docker")
    for s in SETTINGS:
        if s.flag:
            what = f"{s.help}; repeatable" if s.repeatable else s.help
            group.addoption(s.flag, help=f"{what}. ini: {s.ini}" if s.ini else what, **_option_kwargs(s))
    for s in SETTINGS:
        if s.ini:
            empty: Any = [] if s.ini_type in ("linelist", "paths") else False if s.ini_type == "bool" else ""
            parser.addini(s.ini, s.help, type=s.ini_type, default=empty)  # type: ignore[arg-type]


def _option_kwargs(s: Setting) -> dict[str, Any]:
    if s.switch:
        # None, not False: an ini key's true is not overridden by an option not given.
        return {"action": "store_true", "default": None if s.ini else False}
    if s.repeatable:
        return {"action": "append", "default": [], "metavar": s.metavar}
    if s.choices:
        return {"choices": s.choices}
    return {"metavar": s.metavar}


# -- the reference's tables ------------------------------------------------------------------------------


def _command_line(s: Setting) -> str:
    if not s.flag:
        return "none"
    value = f"={s.metavar}" if s.metavar else f"={{{','.join(s.choices)}}}" if s.choices else ""
    return f"`{s.flag}{value}`" + (" (repeatable)" if s.repeatable else "")


def _ini_key(s: Setting) -> str:
    return f"`{s.ini}`" + (" (one a line)" if s.ini_type == "linelist" else "") if s.ini else "none"


def _sentence(s: Setting) -> str:
    return s.help[:1].upper() + s.help[1:] + ("" if s.help.endswith(".") else ".")


def _run_table(group: str) -> list[str]:
    return [
        "| Setting | Command line | ini key | Default |",
        "| --- | --- | --- | --- |",
        *(
            f"| {s.title} | {_command_line(s)} | {_ini_key(s)} | {s.shown_default} |"
            for s in SETTINGS
            if s.group == group
        ),
    ]


_INI_TYPES = {"string": "string", "linelist": "lines", "bool": "bool", "paths": "path"}
_TABLES: dict[str, Callable[[], list[str]]] = {
    "task settings": lambda: [
        "| Option | Marker / factory argument | Command line | ini key | Default |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {s.title} | {s.marker} | {_command_line(s)} | {_ini_key(s)} | {s.shown_default} |"
            for s in SETTINGS
            if s.group == TASK
        ),
    ],
    "marker arguments": lambda: [
        "| Argument | Default | Meaning |",
        "| --- | --- | --- |",
        *(f"| {s.marker} | {s.shown_default} | {s.help} |" for s in SETTINGS if s.group == MARKER_ONLY),
    ],
    "run settings": lambda: _run_table(RUN),
    "aws backend settings": lambda: _run_table(AWS),
    "ini keys": lambda: [
        "| Key | Type | Meaning |",
        "| --- | --- | --- |",
        *(
            f"| `{s.ini}` | {_INI_TYPES[s.ini_type]} | {f'As `{s.flag}`.' if s.flag else _sentence(s)}"
            + (f" {s.note}" if s.note else "")
            + " |"
            for s in SETTINGS
            if s.ini
        ),
    ],
}


def begin(name: str) -> str:
    return f"<!-- {name} table: generated by python -m pytest_ecstask.settings --write; do not edit -->"


def end(name: str) -> str:
    return f"<!-- end of {name} table -->"


def markdown_table(name: str) -> str:
    return "\n".join(_TABLES[name]()) + "\n"


def with_tables(document: str) -> str:
    """``document`` with the text between each table's begin and end markers replaced by the current table."""
    for name in _TABLES:
        document = between_markers(document, begin(name), end(name), markdown_table(name))
    return document


def main(argv: Sequence[str]) -> int:
    return write_command(
        argv, "pytest_ecstask.settings", with_tables, lambda: "\n".join(markdown_table(name) for name in _TABLES)
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
