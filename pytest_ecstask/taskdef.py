"""Read an ECS task definition from disk and check it the way RegisterTaskDefinition would.

Accepted shapes: RegisterTaskDefinition input, DescribeTaskDefinition output (with or without its
``taskDefinition`` wrapper) and a bare ``containerDefinitions`` array. Types come from the ECS API model that
botocore ships; the rules ECS enforces beyond types (references, cycles, health checks, network modes) are
written out below. Every problem found is collected and raised as one ``TaskDefinitionError``, each naming
the JSON path in the file as given, the offending value and what is expected.
"""

from __future__ import annotations

import difflib
import enum
import functools
import json
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .apimodel import ModelShape, operation_input
from .errors import TaskDefinitionError

if TYPE_CHECKING:
    from botocore.model import ServiceModel

__all__ = [
    "READ_ONLY_FIELDS",
    "ContainerDefinition",
    "ContainerDependency",
    "DependencyCondition",
    "Link",
    "TaskDefinition",
    "TaskDefinitionWarning",
    "VolumeFrom",
    "ecs_service_model",
    "image_problems",
    "load_task_definition",
    "parse_task_definition",
    "parse_task_definition_text",
]

# Fields DescribeTaskDefinition returns that RegisterTaskDefinition does not take: accepted and dropped.
READ_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)

# Placeholder syntaxes of the tools people render task definitions with. Order matters in PLACEHOLDER:
# `$$$X$$$` must win over `$X`.
TRIPLE_DOLLAR_PLACEHOLDER = re.compile(r"\$\$\$[A-Za-z_][A-Za-z0-9_]*\$\$\$")  # ecs-agent functional tests
DOLLAR_BRACE_PLACEHOLDER = re.compile(r"\$\{[^{}\s]+\}")  # terraform templatefile, envsubst, Fn::Sub
MUSTACHE_PLACEHOLDER = re.compile(r"\{\{[^{}\n]*\}\}")  # mustache, Go templates (ecspresso)
DOLLAR_NAME_PLACEHOLDER = re.compile(r"\$[A-Z_][A-Z0-9_]*\b")  # jq --arg, envsubst $VAR
PLACEHOLDER = re.compile(
    "|".join(
        p.pattern
        for p in (
            TRIPLE_DOLLAR_PLACEHOLDER,
            DOLLAR_BRACE_PLACEHOLDER,
            MUSTACHE_PLACEHOLDER,
            DOLLAR_NAME_PLACEHOLDER,
        )
    )
)

# Members holding names, images and ARNs: no literal value of these can contain a placeholder, so one that
# does was never rendered. Free text (environment, command, labels, log options) is left alone because
# shell commands use `$X` and `${x}` on purpose. Enum and numeric members are always checked.
_STRICT_MEMBERS: frozenset[tuple[str, str]] = frozenset(
    {
        ("RegisterTaskDefinitionRequest", "family"),
        ("RegisterTaskDefinitionRequest", "taskRoleArn"),
        ("RegisterTaskDefinitionRequest", "executionRoleArn"),
        ("RegisterTaskDefinitionRequest", "cpu"),
        ("RegisterTaskDefinitionRequest", "memory"),
        ("ContainerDefinition", "name"),
        ("ContainerDefinition", "image"),
        ("ContainerDefinition", "links"),
        ("ContainerDependency", "containerName"),
        ("VolumeFrom", "sourceContainer"),
        ("Secret", "valueFrom"),  # container secrets and logConfiguration.secretOptions alike
        ("RepositoryCredentials", "credentialsParameter"),
        ("MountPoint", "sourceVolume"),
        ("Volume", "name"),
        ("ProxyConfiguration", "containerName"),
    }
)

# ECS refuses these without them although the API model marks nothing required.
_EXTRA_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "ContainerDefinition": ("name", "image"),
    "MountPoint": ("sourceVolume", "containerPath"),
    "VolumeFrom": ("sourceContainer",),
}

_SHAPE_LABELS: Mapping[str, str] = {
    "RegisterTaskDefinitionRequest": "the task definition",
    "ContainerDefinition": "a container definition",
}

_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")  # containers, volumes, families, link aliases
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NETWORK_MODES = ("bridge", "host", "awsvpc", "none")
_DEFAULT_NETWORK_MODE = "bridge"  # what ECS uses on EC2 Linux when networkMode is absent
_HEALTH_CHECK_KINDS = ("CMD", "CMD-SHELL", "NONE")
_HEALTH_CHECK_RANGES: Mapping[str, tuple[int, int]] = {
    "interval": (5, 300),
    "timeout": (2, 60),
    "retries": (1, 10),
    "startPeriod": (0, 300),
}
_STOP_TIMEOUT_MAX = 120
# ECS takes at most this many container definitions in one task definition (a quota that cannot be raised).
_CONTAINERS_MAX = 10
# Docker (20.10 on) refuses a container memory limit or reservation below 6 MiB; the ECS docs say so too.
_MEMORY_MIN_MIB = 6
# Task-level sizes: "1024" in CPU units or MiB, or a number with its unit ("1 vCPU", ".25 vcpu", "2GB").
_TASK_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+) ?(?P<unit>[A-Za-z]*)")
_TASK_SIZE_UNITS: Mapping[str, tuple[str, str, str]] = {  # key -> its unit, in any case; the base unit; examples
    "cpu": ("vCPU", "CPU units", "'1024', '1 vCPU' or '.25 vcpu'"),
    "memory": ("GB", "MiB", "'2048', '2 GB' or '0.5GB'"),
}
# The cpu and memory pairs Fargate offers: task CPU units -> the task memory values (MiB) that go with it.
_FARGATE_SIZES: Mapping[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
# ECS refuses these in awsvpc: the task's network namespace is configured by ECS, not per container.
_AWSVPC_REFUSED = ("hostname", "extraHosts", "dnsServers", "dnsSearchDomains")
_WRAPPER_KEYS = ("taskDefinition", "tags", "ResponseMetadata")  # boto3 responses carry ResponseMetadata
_SHOW_MAX = 60
# ECS takes task definitions up to 64 KiB; a file many times that size is not one, and is refused at once.
MAX_FILE_BYTES = 1024 * 1024
# The deepest member of a task definition is 7 levels down; deeper data is refused before anything walks it.
MAX_DEPTH = 32
# The longest number a task definition holds is a 32-bit integer; Python refuses to read past 4300 digits.
_MAX_DIGITS = 40
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_YAML_SUFFIXES = (".yaml", ".yml")
_YAML_START = re.compile(r"(---|[A-Za-z_][\w-]*\s*:(\s|$))")

# A deploy pipeline's image placeholder, as CodePipeline's ECS blue/green action takes it (<IMAGE1_NAME>): the
# pipeline puts the image it built there before it registers the task definition.
PIPELINE_PLACEHOLDER = re.compile(r"<[A-Za-z0-9_.-]+>")
# What ECS takes as an image: up to 255 of these characters (before the "@" of a digest), and sha256 digests.
_ECS_IMAGE_CHARACTERS = re.compile(r"[A-Za-z0-9_:./#@-]*")
_ECS_IMAGE_MAX = 255
_ECS_DIGEST = re.compile(r"sha256:[0-9A-Fa-f]{64}")
# What Docker takes as an image reference (the grammar of github.com/distribution/reference): lower-case
# repository path components, an optional registry host and port, a tag, a digest.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOCKER_REFERENCE = re.compile(
    rf"(?:(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?"
)
_DOCKER_NAME_MAX = 255  # the repository name, registry included, without tag or digest

_T = TypeVar("_T")


class TaskDefinitionWarning(UserWarning):
    """ECS may refuse this task definition, and its documentation leaves the rule unclear: it runs locally."""


class DependencyCondition(str, enum.Enum):
    """A dependsOn condition, named as ECS names it."""

    START = "START"
    COMPLETE = "COMPLETE"
    SUCCESS = "SUCCESS"
    HEALTHY = "HEALTHY"


@dataclass(frozen=True)
class ContainerDependency:
    container_name: str
    condition: DependencyCondition


@dataclass(frozen=True)
class VolumeFrom:
    source_container: str
    read_only: bool


@dataclass(frozen=True)
class Link:
    container_name: str  # the target container's name
    alias: str  # equals container_name when the link has no ":alias"


@dataclass(frozen=True)
class ContainerDefinition:
    name: str
    image: str
    essential: bool  # ECS default True
    depends_on: tuple[ContainerDependency, ...]
    links: tuple[Link, ...]
    volumes_from: tuple[VolumeFrom, ...]
    # The validated camelCase containerDefinition as given, JSON nulls dropped (they mean "absent").
    raw: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True)
class TaskDefinition:
    family: str
    revision: int | None  # from describe output if present, else None
    network_mode: str  # "bridge" | "host" | "awsvpc" | "none"
    containers: tuple[ContainerDefinition, ...]
    volumes: tuple[Mapping[str, Any], ...] = field(hash=False)  # raw "volumes" entries
    task_role_arn: str | None
    execution_role_arn: str | None
    # Normalized RegisterTaskDefinition input: read-only describe fields removed, family filled in,
    # the describe wrapper's tags moved in, JSON nulls dropped.
    raw: Mapping[str, Any] = field(hash=False)
    source: str
    # Where the task definition and its containers are in the file, for messages: "$", or "$.taskDefinition"
    # in DescribeTaskDefinition output; a bare containerDefinitions array has its containers at "$".
    json_base: str = "$"
    containers_path: str = "$.containerDefinitions"

    def container_path(self, index: int, name: str, *steps: str) -> str:
        """``$.containerDefinitions[i].steps (container 'name')``, the way validation messages say where."""
        return f"{self.containers_path}[{index}]{''.join('.' + step for step in steps)} (container {name!r})"

    def field_path(self, *steps: str) -> str:
        """``$.steps`` below the task definition object."""
        return self.json_base + "".join("." + step for step in steps)

    def container(self, name: str) -> ContainerDefinition:
        for container in self.containers:
            if container.name == name:
                return container
        known = ", ".join(repr(c.name) for c in self.containers)
        raise KeyError(f"task definition {self.family!r} has no container {name!r} (containers: {known})")


def load_task_definition(path: str | os.PathLike[str]) -> TaskDefinition:
    """Read and validate a task definition file (UTF-8, with or without BOM, any line endings)."""
    source = os.fspath(path)
    return parse_task_definition_text(read_task_definition_text(path), source, default_family=Path(source).stem)


def read_task_definition_text(path: str | os.PathLike[str]) -> str:
    """The text of a task definition file, or a TaskDefinitionError naming the file and what is wrong."""
    source = os.fspath(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise TaskDefinitionError(source, [_too_large(size)])
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TaskDefinitionError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = f"line {line}: not UTF-8 text ({exc.reason} at byte offset {exc.start}); save the file as UTF-8"
        raise TaskDefinitionError(source, [problem]) from None


def _too_large(size: int) -> str:
    return (
        f"the file is {size / 1024 / 1024:.1f} MiB; ECS takes task definitions up to 64 KiB, and this reads "
        f"files up to {MAX_FILE_BYTES // 1024 // 1024} MiB"
    )


def parse_task_definition_text(text: str, source: str, *, default_family: str | None = None) -> TaskDefinition:
    """Parse JSON text; a syntax error names its line and column and any unrendered template placeholders."""
    text = text.lstrip("\ufeff")
    if len(text) > MAX_FILE_BYTES:
        raise TaskDefinitionError(source, [_too_large(len(text.encode("utf-8", "surrogatepass")))])
    if not text.strip():
        raise TaskDefinitionError(source, ["the file is empty: expected a task definition in JSON"])
    try:
        data = _json_loads(text)
    except json.JSONDecodeError as exc:
        raise TaskDefinitionError(source, _syntax_problems(text, exc, source, default_family)) from None
    except _Unreadable as exc:
        raise TaskDefinitionError(source, [str(exc)]) from None
    return parse_task_definition(data, source, default_family=default_family)


class _Unreadable(ValueError):
    """Valid JSON that no task definition holds and Python should not read: numbers too long, nesting too deep."""


def _json_loads(text: str) -> Any:
    def bounded_int(literal: str) -> int:
        if len(literal.lstrip("-")) > _MAX_DIGITS:
            line = text.count("\n", 0, max(text.find(literal), 0)) + 1
            raise _Unreadable(
                f"line {line}: a number with {len(literal.lstrip('-'))} digits; task definition numbers have at most 10"
            )
        return int(literal)

    try:
        return json.loads(text, parse_int=bounded_int)
    except RecursionError:
        raise _Unreadable(
            "nested too deeply to read (thousands of levels); a task definition is at most 7 deep"
        ) from None


def _depth_over(data: Any, limit: int) -> bool:
    """Whether JSON data nests deeper than ``limit``; iterative, so no depth can exhaust the stack."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return False


def parse_task_definition(data: Any, source: str, *, default_family: str | None = None) -> TaskDefinition:
    """Validate already-parsed JSON. A family missing from the data is taken from default_family, else
    from the source's file name stem (characters ECS refuses in a family become '-').

    What ECS may refuse, where its documentation leaves the rule unclear, is a ``TaskDefinitionWarning``.
    """
    task, problems, notes = _validate(data, source, default_family)
    if task is None:
        raise TaskDefinitionError(source, problems)
    for note in notes:
        # Told from this line, whoever calls: a definition validated again after its overrides warns once.
        warnings.warn(TaskDefinitionWarning(f"{source}: {note}"), stacklevel=1)
    return task


# --- where a problem is, and how it is told -------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    path: str
    container: str | None = None

    def key(self, name: str) -> _Where:
        step = f".{name}" if _PLAIN_KEY.fullmatch(name) else f"[{name!r}]"
        return _Where(self.path + step, self.container)

    def index(self, i: int) -> _Where:
        return _Where(f"{self.path}[{i}]", self.container)

    def in_container(self, name: str | None) -> _Where:
        return _Where(self.path, name)

    def __str__(self) -> str:
        return self.path if self.container is None else f"{self.path} (container {self.container!r})"


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.notes: list[str] = []  # what ECS may refuse: warned about, not refused

    def add(self, where: _Where, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def warn(self, where: _Where, message: str) -> None:
        self.notes.append(f"{where}: {message}")


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = repr(value)
        # A lone surrogate cannot be printed: shown as its escape, as repr shows it in a string.
        text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _has_placeholder(value: str) -> bool:
    return PLACEHOLDER.search(value) is not None


def _placeholder_message(value: str, expected: str = "") -> str:
    tokens = list(dict.fromkeys(m.group() for m in PLACEHOLDER.finditer(value)))
    if tokens == [value]:
        text = f"unresolved template placeholder {value!r}"
    else:
        plural = "s" if len(tokens) > 1 else ""
        listed = ", ".join(repr(t) for t in tokens)
        text = f"unresolved template placeholder{plural} {listed} in {_show(value)}"
    if expected:
        text += f" where {expected} is expected"
    return text + "; render the template first"


def _one_of(value: str, choices: list[str]) -> str:
    text = f"{value!r} is not one of " + ", ".join(repr(c) for c in choices)
    close = [c for c in choices if c.lower() == value.lower()] or difflib.get_close_matches(value, choices, n=1)
    return text + (f"; did you mean {close[0]!r}?" if close else "")


def _add_wrong_type(value: Any, expected: str, where: _Where, out: _Problems) -> None:
    if isinstance(value, str) and _has_placeholder(value):
        out.add(where, _placeholder_message(value, expected))
    else:
        out.add(where, f"expected {expected}, got {_show(value)}")


def _typed(obj: Mapping[str, Any], key: str, kind: type[_T]) -> _T | None:
    """obj[key] when it has the wanted type; type problems are reported by the model walk, not here."""
    value = obj.get(key)
    if isinstance(value, bool) and kind is not bool:
        return None
    return value if isinstance(value, kind) else None


# --- the API model walk ----------------------------------------------------------------------------------


@functools.cache
def ecs_service_model() -> ServiceModel:
    """The ECS API model botocore ships: what the AWS CLI and boto3 check requests against."""
    # Imported here: botocore takes ~0.1 s to import and most test runs never read a task definition.
    import botocore.session

    return botocore.session.get_session().get_service_model("ecs")


@functools.cache
def _register_input_shape() -> ModelShape:
    # The same model, read without importing botocore (see apimodel): checking starts every run.
    shape = operation_input("RegisterTaskDefinition")
    if shape is None:
        raise RuntimeError("botocore's ECS model has no RegisterTaskDefinition input")
    return shape


def _container_shape() -> ModelShape:
    return _register_input_shape().members["containerDefinitions"].member


def _check_value(value: Any, shape: ModelShape, where: _Where, out: _Problems, strict: bool) -> None:
    kind = shape.type_name
    if kind == "structure":
        _check_structure(value, shape, where, out)
    elif kind == "list":
        _check_list(value, shape, where, out, strict)
    elif kind == "map":
        _check_map(value, shape, where, out)
    elif kind == "string":
        _check_string(value, shape, where, out, strict)
    elif kind in ("integer", "long"):
        _check_integer(value, shape, where, out)
    elif kind == "boolean":
        if not isinstance(value, bool):
            _add_wrong_type(value, "true or false", where, out)
    elif kind in ("double", "float") and (isinstance(value, bool) or not isinstance(value, (int, float))):
        _add_wrong_type(value, "a number", where, out)
    # timestamp and blob shapes do not occur in RegisterTaskDefinition input


def _check_structure(
    value: Any,
    shape: ModelShape,
    where: _Where,
    out: _Problems,
    locate: Callable[[str], _Where] | None = None,
) -> None:
    if not isinstance(value, dict):
        _add_wrong_type(value, "an object", where, out)
        return
    if shape.name == "ContainerDefinition":
        where = where.in_container(_typed(value, "name", str))
    locate = locate or where.key
    members = shape.members
    for key, member_value in value.items():
        if not isinstance(key, str):
            out.add(where, f"key {key!r} is not a string")
            continue
        member = members.get(key)
        if member is None:
            out.add(locate(key), _unknown_key_message(key, shape))
        elif member_value is not None:  # JSON null for an optional member means absent
            strict = (shape.name, key) in _STRICT_MEMBERS
            _check_value(member_value, member, locate(key), out, strict)
    label = _SHAPE_LABELS.get(shape.name, f"a {shape.name}")
    for key in [*shape.required_members, *_EXTRA_REQUIRED.get(shape.name, ())]:
        if value.get(key) is None:
            out.add(where, f"missing {key!r} (required in {label})")


def _unknown_key_message(key: str, shape: ModelShape) -> str:
    label = _SHAPE_LABELS.get(shape.name, f"a {shape.name}")
    text = f"unknown key {key!r} in {label}"
    # A field one level off is the commonest mistake (networkMode inside a container): say where it goes.
    if shape.name == "ContainerDefinition" and key in _register_input_shape().members:
        return text + ": it is a task definition field, move it to the top level"
    if shape.name == "RegisterTaskDefinitionRequest" and key in _container_shape().members:
        return text + ": it is a container definition field, move it into a container of containerDefinitions"
    if key in _listed_fields(shape.name):
        import botocore

        return (
            f"{text}: botocore {botocore.__version__} is installed, and its ECS model predates this field; "
            "upgrade botocore (pip install -U botocore) to run task definitions that use it"
        )
    valid = list(shape.members)
    close = [v for v in valid if v.lower() == key.lower()] or difflib.get_close_matches(key, valid, n=3)
    if close:
        return text + "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return text + "; valid keys: " + ", ".join(sorted(valid))


def _listed_fields(shape_name: str) -> frozenset[str]:
    """The fields of this model shape that the field-support list knows (a newer model may have more)."""
    from pytest_ecstask.fields import GROUP_SHAPES, listed_names

    for prefix, name in GROUP_SHAPES.items():
        if name == shape_name:
            return listed_names(prefix)
    return frozenset()


def _check_list(value: Any, shape: ModelShape, where: _Where, out: _Problems, strict: bool) -> None:
    if not isinstance(value, list):
        _add_wrong_type(value, "an array", where, out)
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if isinstance(high, int) and len(value) > high:
        out.add(where, f"{len(value)} items, at most {high} allowed")
    if isinstance(low, int) and len(value) < low:
        out.add(where, f"{len(value)} items, at least {low} needed")
    for i, item in enumerate(value):
        _check_value(item, shape.member, where.index(i), out, strict)


def _check_map(value: Any, shape: ModelShape, where: _Where, out: _Problems) -> None:
    if not isinstance(value, dict):
        _add_wrong_type(value, "an object", where, out)
        return
    for key, item in value.items():
        if not isinstance(key, str):
            out.add(where, f"key {key!r} is not a string")
            continue
        if _LONE_SURROGATE.search(key):
            out.add(where, "a key is " + _lone_surrogate_message(key))
            continue
        _check_value(item, shape.value, where.key(key), out, strict=False)


def _lone_surrogate_message(value: str) -> str:
    # The value is not shown: it cannot be printed, and it may have come from a template variable.
    at = _LONE_SURROGATE.search(value)
    return (
        f"not valid Unicode: character {at.start() + 1 if at else 0} is a lone surrogate (a \\uD800-\\uDFFF "
        "escape without its pair), which cannot be printed or sent to Docker"
    )


def _check_string(value: Any, shape: ModelShape, where: _Where, out: _Problems, strict: bool) -> None:
    if not isinstance(value, str):
        _add_wrong_type(value, "a string", where, out)
        return
    if _LONE_SURROGATE.search(value):
        out.add(where, "the value is " + _lone_surrogate_message(value))
        return
    choices = shape.enum
    if choices and value not in choices:
        if _has_placeholder(value):
            out.add(where, _placeholder_message(value, "one of " + ", ".join(repr(c) for c in choices)))
        else:
            out.add(where, _one_of(value, choices))
        return
    if strict and _has_placeholder(value):
        out.add(where, _placeholder_message(value))
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if isinstance(low, int) and len(value) < low:
        out.add(where, f"{_show(value)} is shorter than {low} characters")
    if isinstance(high, int) and len(value) > high:
        out.add(where, f"{_show(value)} is longer than {high} characters")


def _check_integer(value: Any, shape: ModelShape, where: _Where, out: _Problems) -> None:
    # bool is an int to Python but not to the API; "256" is a string even where it looks like a number.
    if isinstance(value, bool) or not isinstance(value, int):
        _add_wrong_type(value, "an integer", where, out)
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (isinstance(low, int) and value < low) or (isinstance(high, int) and value > high):
        out.add(where, f"{value} is out of range: expected {low}-{high}")


# --- shapes of input, and building the result --------------------------------------------------------------


@dataclass
class _Normalized:
    body: dict[str, Any]  # RegisterTaskDefinition input
    revision: int | None
    base: _Where  # where the task definition object is in the file
    moved: dict[str, _Where]  # top-level members that sit elsewhere in the file

    def locate(self, key: str) -> _Where:
        return self.moved.get(key) or self.base.key(key)


def _family_from(source: str, default_family: str | None) -> str:
    stem = default_family if default_family is not None else Path(source).stem
    return re.sub(r"[^A-Za-z0-9_-]", "-", stem).strip("-")[:255]


def _normalize(data: Any, source: str, default_family: str | None, out: _Problems) -> _Normalized | None:
    norm = _unwrap(data, out)
    if norm is None:
        return None
    _take_revision(norm, out)
    for key in READ_ONLY_FIELDS:
        norm.body.pop(key, None)
    if norm.body.get("family") is None:
        family = _family_from(source, default_family)
        if not family:
            out.add(norm.base, f'no family given and none can be made from {source!r}: add "family"')
            return None
        norm.body["family"] = family
    return norm


def _unwrap(data: Any, out: _Problems) -> _Normalized | None:
    """The RegisterTaskDefinition input inside any of the accepted shapes, and where it is in the file."""
    root = _Where("$")
    if isinstance(data, list):
        return _Normalized({"containerDefinitions": data}, None, root, {"containerDefinitions": root})
    if isinstance(data, dict) and "taskDefinition" in data:
        return _unwrap_describe_output(data, root, out)
    if isinstance(data, dict):
        return _Normalized(dict(data), None, root, {})
    out.add(
        root,
        f"expected a task definition object, a DescribeTaskDefinition output or a containerDefinitions "
        f"array, got {_show(data)}",
    )
    return None


def _unwrap_describe_output(data: dict[str, Any], root: _Where, out: _Problems) -> _Normalized | None:
    # DescribeTaskDefinition returns the task's tags beside the definition, not in it: they are moved in.
    for key in data:
        if key not in _WRAPPER_KEYS:
            out.add(root.key(str(key)), f"unknown key {key!r} next to 'taskDefinition' (expected 'tags')")
    inner = data["taskDefinition"]
    if not isinstance(inner, dict):
        _add_wrong_type(inner, "an object (the task definition)", root.key("taskDefinition"), out)
        return None
    norm = _Normalized(dict(inner), None, root.key("taskDefinition"), {})
    tags = data.get("tags")
    if tags is not None:
        if inner.get("tags") is not None:
            out.add(root.key("tags"), "tags given both here and in $.taskDefinition.tags; keep one")
        norm.body["tags"] = tags
        norm.moved["tags"] = root.key("tags")
    return norm


def _take_revision(norm: _Normalized, out: _Problems) -> None:
    # Describe output carries the revision; RegisterTaskDefinition does not take it, so it is kept aside.
    revision = norm.body.get("revision")
    if revision is None:
        return
    if isinstance(revision, int) and not isinstance(revision, bool) and revision >= 1:
        norm.revision = revision
    else:
        out.add(norm.locate("revision"), f"expected a revision number (1 or more), got {_show(revision)}")


def _validate(data: Any, source: str, default_family: str | None) -> tuple[TaskDefinition | None, list[str], list[str]]:
    """The task definition (None when refused), the problems that refuse it, and what to warn about."""
    if _depth_over(data, MAX_DEPTH):
        return None, [f"$: nested more than {MAX_DEPTH} levels deep; a task definition is at most 7 deep"], []
    out = _Problems()
    norm = _normalize(data, source, default_family, out)
    if norm is None:
        return None, out.items, []
    _check_structure(norm.body, _register_input_shape(), norm.base, out, locate=norm.locate)
    _check_ecs_rules(norm, out)
    if out.items:
        return None, out.items, []
    return _build(norm, source), [], out.notes


def _without_nulls(value: Any) -> Any:
    """A copy of JSON data with null object members dropped: the API treats them as absent."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _parse_link(text: str) -> Link | None:
    parts = text.split(":")
    if len(parts) == 1 and parts[0]:
        return Link(parts[0], parts[0])
    if len(parts) == 2 and all(parts):
        return Link(parts[0], parts[1])
    return None


def _build(norm: _Normalized, source: str) -> TaskDefinition:
    raw: dict[str, Any] = _without_nulls(norm.body)
    containers = tuple(
        ContainerDefinition(
            name=c["name"],
            image=c["image"],
            essential=c.get("essential", True),
            depends_on=tuple(
                ContainerDependency(d["containerName"], DependencyCondition(d["condition"]))
                for d in c.get("dependsOn", ())
            ),
            links=tuple(link for link in map(_parse_link, c.get("links", ())) if link is not None),
            volumes_from=tuple(
                VolumeFrom(v["sourceContainer"], v.get("readOnly", False)) for v in c.get("volumesFrom", ())
            ),
            raw=c,
        )
        for c in raw["containerDefinitions"]
    )
    return TaskDefinition(
        family=raw["family"],
        revision=norm.revision,
        network_mode=raw.get("networkMode", _DEFAULT_NETWORK_MODE),
        containers=containers,
        volumes=tuple(raw.get("volumes", ())),
        task_role_arn=raw.get("taskRoleArn"),
        execution_role_arn=raw.get("executionRoleArn"),
        raw=raw,
        source=source,
        json_base=norm.base.path,
        containers_path=norm.locate("containerDefinitions").path,
    )


# --- rules ECS enforces beyond types ------------------------------------------------------------------------


@dataclass
class _Container:
    where: _Where  # the container object, labelled with its name
    body: dict[str, Any]
    name: str | None  # None unless a literal, well-typed name

    @property
    def essential(self) -> bool:
        return self.body.get("essential") is not False

    @property
    def health_check_enabled(self) -> bool:
        check = _typed(self.body, "healthCheck", dict)
        command = _typed(check, "command", list) if check is not None else None
        return command is not None and len(command) > 0 and command[0] in ("CMD", "CMD-SHELL")


class _Task:
    """The facts the cross-field rules need, gathered once from a body whose types may be wrong."""

    def __init__(self, norm: _Normalized) -> None:
        body = self.body = norm.body
        self.where = norm.locate("containerDefinitions")
        mode = body.get("networkMode")
        # Unknown or templated modes are reported by the model walk; mode-specific rules then stay quiet.
        self.network_mode: str | None = (
            _DEFAULT_NETWORK_MODE if mode is None else mode if mode in _NETWORK_MODES else None
        )
        # None when absent: ECS then checks the definition for the EC2 launch type without saying so.
        compatibilities = _typed(body, "requiresCompatibilities", list)
        self.launch_types: frozenset[str] | None = (
            None
            if body.get("requiresCompatibilities") is None
            else frozenset(c for c in compatibilities or [] if isinstance(c, str))
        )
        self.has_list = isinstance(body.get("containerDefinitions"), list)
        self._gather_containers(_typed(body, "containerDefinitions", list) or [])
        self.volumes_where = norm.locate("volumes")
        self._gather_volumes(_typed(body, "volumes", list) or [])

    def _gather_containers(self, entries: list[Any]) -> None:
        self.count = len(entries)
        self.containers: list[_Container] = []
        for i, entry in enumerate(entries):
            if isinstance(entry, dict):
                name = _typed(entry, "name", str)
                literal = name if name is not None and not _has_placeholder(name) else None
                self.containers.append(_Container(self.where.index(i).in_container(name), entry, literal))
        # Names can be checked against only when every container is an object with a literal name: an
        # entry spliced in by a template, or a templated name, may be the one a reference means.
        self.all_objects = len(self.containers) == self.count
        self.names_known = self.all_objects and all(c.name is not None for c in self.containers)
        self.by_name: dict[str, _Container] = {}
        for c in self.containers:
            if c.name is not None:
                self.by_name.setdefault(c.name, c)

    def _gather_volumes(self, volumes: list[Any]) -> None:
        self.volume_names: dict[str, int] = {}
        self.volumes_known = True  # as with containers: a templated volume name may be the one meant
        for i, volume in enumerate(volumes):
            name = volume.get("name") if isinstance(volume, dict) else None
            if isinstance(name, str) and not _has_placeholder(name):
                self.volume_names.setdefault(name, i)
            elif name is not None or not isinstance(volume, dict):
                self.volumes_known = False


def _check_ecs_rules(norm: _Normalized, out: _Problems) -> None:
    task = _Task(norm)
    if not task.has_list:
        return
    if task.count == 0:
        out.add(task.where, "no containers: a task definition needs at least one container definition")
        return
    _check_family(norm, out)
    _check_names(task, out)
    _check_volumes(task, out)
    if task.all_objects and not any(c.essential for c in task.containers):
        out.add(
            task.where,
            'no essential container: ECS needs at least one container with "essential": true (the default)',
        )
    if task.count > _CONTAINERS_MAX:
        out.add(
            task.where,
            f"{task.count} container definitions: ECS takes at most {_CONTAINERS_MAX} in one task definition",
        )
    for container in task.containers:
        _check_references(container, task, out)
        _check_health_check(container, out)
        _check_timeouts(container, out)
        _check_restart_policy(container, out)
        _check_ports(container, task, out)
        _check_network_fields(container, task, out)
        _check_image(container, out)
    _check_cycles(task, out)
    _check_sizes(norm, task, out)


def _check_family(norm: _Normalized, out: _Problems) -> None:
    family = _typed(norm.body, "family", str)
    if family is not None and not _has_placeholder(family) and not _NAME.fullmatch(family):
        out.add(
            norm.locate("family"),
            f"{_show(family)} is not a valid family: use 1-255 letters, digits, '_' or '-'",
        )


def _check_names(task: _Task, out: _Problems) -> None:
    first_at: dict[str, _Container] = {}
    for c in task.containers:
        if c.name is None:
            continue
        where = c.where.key("name")
        if not _NAME.fullmatch(c.name):
            out.add(where, f"{_show(c.name)} is not a valid container name: use 1-255 letters, digits, '_' or '-'")
        if c.name in first_at:
            out.add(where, f"duplicate container name {c.name!r} (also at {first_at[c.name].where.path})")
        else:
            first_at[c.name] = c


def _check_volumes(task: _Task, out: _Problems) -> None:
    seen: dict[str, int] = {}
    for i, volume in _enumerate_dicts(task.body, "volumes"):
        name = _typed(volume, "name", str)
        if name is None or _has_placeholder(name):
            continue
        where = task.volumes_where.index(i).key("name")
        if not _NAME.fullmatch(name):
            out.add(where, f"{_show(name)} is not a valid volume name: use 1-255 letters, digits, '_' or '-'")
        if name in seen:
            out.add(where, f"duplicate volume name {name!r} (also at {task.volumes_where.index(seen[name]).path})")
        else:
            seen[name] = i
    for c in task.containers:
        for k, mount in _enumerate_dicts(c.body, "mountPoints"):
            source = _typed(mount, "sourceVolume", str)
            if source is None or _has_placeholder(source) or not task.volumes_known:
                continue
            if source not in task.volume_names:
                known = ", ".join(repr(n) for n in task.volume_names) or "none"
                out.add(
                    c.where.key("mountPoints").index(k).key("sourceVolume"),
                    f'{source!r} is not a volume of this task definition (volumes: {known}); add it to "volumes"',
                )


def _enumerate_dicts(obj: Mapping[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    """(index, item) for the object items of the list obj[key]; anything else was reported already."""
    items = _typed(obj, key, list) or []
    return [(i, item) for i, item in enumerate(items) if isinstance(item, dict)]


def _resolve(
    target: str | None, container: _Container, task: _Task, where: _Where, verb: str, out: _Problems
) -> _Container | None:
    """The container a reference names, or None after reporting why it cannot be followed."""
    if target is None or _has_placeholder(target):
        return None  # missing, mistyped or templated: reported by the model walk
    if container.name is not None and target == container.name:
        out.add(where, f"{target!r} is this container itself: a container cannot {verb} itself")
        return None
    if target in task.by_name:
        return task.by_name[target]
    if task.names_known:
        names = list(task.by_name)
        close = difflib.get_close_matches(target, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(repr(n) for n in names)
        out.add(where, f"{target!r} is not a container of this task definition (containers: {known}){hint}")
    return None


def _check_references(container: _Container, task: _Task, out: _Problems) -> None:
    _check_depends_on(container, task, out)
    _check_links(container, task, out)
    for k, volume_from in _enumerate_dicts(container.body, "volumesFrom"):
        where = container.where.key("volumesFrom").index(k).key("sourceContainer")
        _resolve(_typed(volume_from, "sourceContainer", str), container, task, where, "take volumes from", out)


def _check_depends_on(container: _Container, task: _Task, out: _Problems) -> None:
    for j, dependency in _enumerate_dicts(container.body, "dependsOn"):
        where = container.where.key("dependsOn").index(j)
        target = _resolve(
            _typed(dependency, "containerName", str),
            container,
            task,
            where.key("containerName"),
            "depend on",
            out,
        )
        if target is not None and target.name is not None:
            _check_condition(_typed(dependency, "condition", str), target, where.key("condition"), out)


def _check_condition(condition: str | None, target: _Container, where: _Where, out: _Problems) -> None:
    """What a dependsOn condition asks of the container it waits for."""
    if condition == DependencyCondition.HEALTHY.value and not target.health_check_enabled:
        out.add(
            where,
            f"HEALTHY needs a healthCheck on container {target.name!r}, which has none; add one or depend on START",
        )
    # An essential container that exits stops the task, so nothing could ever start after it completes.
    if condition in (DependencyCondition.COMPLETE.value, DependencyCondition.SUCCESS.value) and target.essential:
        out.add(
            where,
            f"{condition} on essential container {target.name!r}: ECS refuses COMPLETE and SUCCESS "
            f'dependencies on essential containers; mark {target.name!r} "essential": false',
        )


def _check_links(container: _Container, task: _Task, out: _Problems) -> None:
    links = _typed(container.body, "links", list) or []
    for k, text in enumerate(links):
        if not isinstance(text, str) or _has_placeholder(text):
            continue
        where = container.where.key("links").index(k)
        link = _parse_link(text)
        if link is None:
            out.add(where, f"{_show(text)} is not a link: expected 'name' or 'name:alias'")
            continue
        if not _NAME.fullmatch(link.alias):
            out.add(where, f"link alias {link.alias!r} is not valid: use 1-255 letters, digits, '_' or '-'")
        _resolve(link.container_name, container, task, where, "link to", out)
    if links and task.network_mode not in (None, "bridge"):
        out.add(
            container.where.key("links"),
            f"links are only supported in bridge network mode, this task uses {task.network_mode!r}"
            + ("; containers of an awsvpc task reach each other on localhost" if task.network_mode == "awsvpc" else ""),
        )


def _check_health_check(container: _Container, out: _Problems) -> None:
    check = _typed(container.body, "healthCheck", dict)
    if check is None:
        return
    where = container.where.key("healthCheck")
    command = _typed(check, "command", list)
    if command is not None:
        if not command:
            out.add(
                where.key("command"),
                "empty; expected ['CMD', executable, args...], ['CMD-SHELL', 'shell command'] or ['NONE']",
            )
        elif isinstance(command[0], str) and command[0] not in _HEALTH_CHECK_KINDS:
            words = " ".join(w for w in command if isinstance(w, str))
            out.add(
                where.key("command").index(0),
                f"{_show(command[0])} is not CMD, CMD-SHELL or NONE, and Docker accepts nothing else; "
                f"did you mean {_show(['CMD-SHELL', words])}?",
            )
        elif command[0] in ("CMD", "CMD-SHELL") and len(command) == 1:
            out.add(where.key("command"), f"nothing to run after {command[0]!r}")
    for key, (low, high) in _HEALTH_CHECK_RANGES.items():
        value = _typed(check, key, int)
        if value is not None and not low <= value <= high:
            unit = "" if key == "retries" else " seconds"
            out.add(where.key(key), f"{value} is out of range: ECS accepts {low}-{high}{unit}")


# ContainerRestartPolicy: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerRestartPolicy.html
_RESTART_ATTEMPT_PERIOD = (60, 1800)
_IGNORED_EXIT_CODES_MAX = 50


def _check_restart_policy(container: _Container, out: _Problems) -> None:
    policy = _typed(container.body, "restartPolicy", dict)
    if policy is None:
        return
    where = container.where.key("restartPolicy")
    low, high = _RESTART_ATTEMPT_PERIOD
    period = _typed(policy, "restartAttemptPeriod", int)
    if period is not None and not low <= period <= high:
        out.add(where.key("restartAttemptPeriod"), f"{period} is out of range: ECS accepts {low}-{high} seconds")
    codes = _typed(policy, "ignoredExitCodes", list)
    if codes is not None and len(codes) > _IGNORED_EXIT_CODES_MAX:
        out.add(
            where.key("ignoredExitCodes"),
            f"{len(codes)} exit codes: ECS takes at most {_IGNORED_EXIT_CODES_MAX}",
        )


def _check_timeouts(container: _Container, out: _Problems) -> None:
    start = _typed(container.body, "startTimeout", int)
    if start is not None and start < 0:
        out.add(container.where.key("startTimeout"), f"{start} is negative: expected seconds, 0 or more")
    stop = _typed(container.body, "stopTimeout", int)
    if stop is not None and not 0 <= stop <= _STOP_TIMEOUT_MAX:
        out.add(
            container.where.key("stopTimeout"),
            f"{stop} is out of range: ECS accepts 0-{_STOP_TIMEOUT_MAX} seconds",
        )


def _check_ports(container: _Container, task: _Task, out: _Problems) -> None:
    mappings = _enumerate_dicts(container.body, "portMappings")
    if mappings and task.network_mode == "none":
        out.add(container.where.key("portMappings"), "network mode 'none' has no network to map ports on")
    seen: dict[tuple[int, str], int] = {}
    for k, mapping in mappings:
        where = container.where.key("portMappings").index(k)
        container_port = _check_port_mapping(mapping, task.network_mode, where, out)
        if container_port is None:
            continue
        key = (container_port, _typed(mapping, "protocol", str) or "tcp")
        if key in seen:
            out.add(
                where.key("containerPort"),
                f"{container_port}/{key[1]} is already mapped by portMappings[{seen[key]}]",
            )
        else:
            seen[key] = k


def _check_port_mapping(mapping: dict[str, Any], network_mode: str | None, where: _Where, out: _Problems) -> int | None:
    """Check one portMappings entry; its containerPort when that is a valid port, else None."""
    if mapping.get("containerPort") is None and mapping.get("containerPortRange") is None:
        out.add(where, "missing 'containerPort' (or 'containerPortRange')")
    port_range = _typed(mapping, "containerPortRange", str)
    if port_range is not None and not _has_placeholder(port_range) and not _valid_port_range(port_range):
        out.add(
            where.key("containerPortRange"),
            f"{_show(port_range)} is malformed: expected FIRST-LAST, two ports from 1 to 65535 with FIRST "
            "below LAST (as 8000-8010)",
        )
    container_port = _port(mapping, "containerPort", 1, where, out)
    host_port = _port(mapping, "hostPort", 0, where, out, " (0 = any free port)")
    # In awsvpc and host mode the container has the address itself: a port can only be mapped onto itself
    # (awsvpc also takes 0, "any").
    differs = container_port is not None and host_port is not None and host_port != container_port
    if differs and ((network_mode == "awsvpc" and host_port != 0) or network_mode == "host"):
        out.add(
            where.key("hostPort"),
            f"{host_port} differs from containerPort {container_port}: in {network_mode} network mode ECS "
            "requires them equal (or hostPort left out)",
        )
    return container_port


def _port(mapping: dict[str, Any], key: str, low: int, where: _Where, out: _Problems, note: str = "") -> int | None:
    """mapping[key] when it is a port from ``low`` to 65535; None when absent, mistyped or out of range."""
    port = _typed(mapping, key, int)
    if port is not None and not low <= port <= 65535:
        out.add(where.key(key), f"{port} is out of range: expected {low}-65535{note}")
        return None
    return port


def _valid_port_range(text: str) -> bool:
    match = re.fullmatch(r"(\d{1,5})-(\d{1,5})", text)
    return match is not None and 1 <= int(match[1]) < int(match[2]) <= 65535


def _check_network_fields(container: _Container, task: _Task, out: _Problems) -> None:
    if task.network_mode != "awsvpc":
        return
    for key in _AWSVPC_REFUSED:
        if container.body.get(key) not in (None, [], ""):
            out.add(container.where.key(key), f"ECS refuses {key!r} in awsvpc network mode")


def image_problems(taskdef: TaskDefinition, images: Mapping[str, str], *, sent_to_ecs: bool = False) -> list[str]:
    """What refuses the images the containers run (by container name, after the image mappings and the image
    hook), each located in the task definition; empty when every image can run.

    An image nothing replaced is checked as ECS and Docker check it. One that a mapping or the hook replaced is
    checked as Docker takes it: the mapping stands in for what a deploy pipeline writes in the task definition
    before ECS sees it, so a mapped ``<IMAGE1_NAME>`` runs. With ``sent_to_ecs`` (a registration with ECS), a
    mapped image is what ECS gets, and is checked as ECS checks it too.
    """
    problems = []
    for i, c in enumerate(taskdef.containers):
        image = images.get(c.name, c.image)
        if image == c.image:
            problem = _pipeline_placeholder_problem(image) or _ecs_image_problem(image) or _docker_image_problem(image)
        else:
            problem = (_ecs_image_problem(image) if sent_to_ecs else None) or _docker_image_problem(image)
            problem = problem and f"{problem} (what the image mappings or the image hook give for {_show(c.image)})"
        if problem:
            problems.append(f"{taskdef.container_path(i, c.name, 'image')}: {problem}")
    return problems


def _pipeline_placeholder_problem(image: str) -> str | None:
    token = PIPELINE_PLACEHOLDER.search(image)
    if token is None:
        return None
    return (
        f"{_show(image)} holds the pipeline placeholder {token.group()!r}, which ECS refuses in an image (a "
        "deploy pipeline writes the image it built there); map it to an image to run: "
        f"--ecs-image '{image}=IMAGE' (ini ecs_images, marker images={{{image!r}: IMAGE}})"
    )


def _ecs_image_problem(image: str) -> str | None:
    name, at, digest = image.partition("@")
    refused = sorted(
        {ch for ch in image if not _ECS_IMAGE_CHARACTERS.fullmatch(ch)} | ({"@"} if "@" in digest else set())
    )
    if refused:
        return (
            f"{_show(image)} has characters ECS refuses in an image ({', '.join(map(repr, refused))}): it takes "
            "letters, digits, '-', '_', ':', '.', '/', '#', and '@' before a digest"
        )
    if len(name) > _ECS_IMAGE_MAX:
        return f"{len(name)} characters{' before the digest' if at else ''}: ECS takes images up to {_ECS_IMAGE_MAX}"
    if at and not _ECS_DIGEST.fullmatch(digest):
        return f"{_show(image)}: ECS takes only sha256 digests, 'sha256:' and 64 hexadecimal digits after the '@'"
    return None


def _docker_image_problem(image: str) -> str | None:
    if not _DOCKER_REFERENCE.fullmatch(image):
        lower = " (repository names are lower case)" if _DOCKER_REFERENCE.fullmatch(image.lower()) else ""
        return f"{_show(image)} is not a valid image reference{lower}, and Docker refuses it"
    name = re.sub(r":[^/]*$", "", image.partition("@")[0])
    if len(name) > _DOCKER_NAME_MAX:
        return f"{_show(image)} has a repository name of {len(name)} characters: Docker takes up to {_DOCKER_NAME_MAX}"
    return None


def _check_image(container: _Container, out: _Problems) -> None:
    # Whether the image is a valid reference is checked once the image to run is known (image_problems): an
    # image mapping may stand in for what a pipeline puts there. Nothing can stand in for no image at all.
    image = _typed(container.body, "image", str)
    if image is not None and not image.strip():
        out.add(container.where.key("image"), f"{_show(image)} is empty: ECS needs an image to run")


# --- task size and memory -----------------------------------------------------------------------------------


def _check_sizes(norm: _Normalized, task: _Task, out: _Problems) -> None:
    cpu = _task_size(norm, "cpu", out)
    memory = _task_size(norm, "memory", out)
    fargate = task.launch_types is not None and "FARGATE" in task.launch_types
    if fargate:
        _check_fargate(norm, task, cpu, memory, out)
    for container in task.containers:
        _check_container_memory(container, memory, norm, out)
    if memory is not None:
        _check_reservations(task, memory, norm.locate("memory"), out)
    if norm.body.get("memory") is None and not fargate:
        _check_memory_given(task, out)


def _task_size(norm: _Normalized, key: str, out: _Problems) -> int | None:
    """Task-level cpu (CPU units) or memory (MiB) as ECS reads it; None when absent, templated or unreadable."""
    text = _typed(norm.body, key, str)
    if text is None or _has_placeholder(text):
        return None
    unit_name, base, examples = _TASK_SIZE_UNITS[key]
    where = norm.locate(key)
    match = _TASK_SIZE.fullmatch(text)
    unit = match["unit"].lower() if match else None
    if match is None or unit not in ("", unit_name.lower()) or (unit == "" and not match["number"].isdigit()):
        out.add(
            where,
            f"{_show(text)} is not a task {key} ECS reads: give {base} as a whole number, or {unit_name} after "
            f"a number, as in {examples}",
        )
        return None
    value = Decimal(match["number"]) * (1024 if unit else 1)
    if value != value.to_integral_value():
        out.warn(
            where,
            f"{_show(text)} is {value.normalize():f} {base}, not a whole number, and the ECS documentation does "
            f"not say what ECS makes of it; give {base} as a whole number",
        )
        return None
    return int(value)


def _check_fargate(norm: _Normalized, task: _Task, cpu: int | None, memory: int | None, out: _Problems) -> None:
    """What FARGATE in requiresCompatibilities asks: awsvpc, and a task size Fargate offers."""
    if norm.body.get("networkMode") is None:
        out.add(
            norm.base, "missing 'networkMode': FARGATE in requiresCompatibilities needs 'awsvpc' (absent is 'bridge')"
        )
    elif task.network_mode not in (None, "awsvpc"):
        out.add(
            norm.locate("networkMode"),
            f"{task.network_mode!r}: FARGATE in requiresCompatibilities needs networkMode 'awsvpc'",
        )
    for key in ("cpu", "memory"):
        if norm.body.get(key) is None:
            out.add(norm.base, f"missing {key!r}: FARGATE in requiresCompatibilities needs the task's {key}")
    if cpu is None or memory is None:
        return
    if cpu not in _FARGATE_SIZES:
        offered = _either(list(_FARGATE_SIZES))
        out.add(
            norm.locate("cpu"), f"{cpu} CPU units is not a Fargate size: Fargate offers {offered} (0.25 to 16 vCPU)"
        )
    elif memory not in _FARGATE_SIZES[cpu]:
        fits = [c for c, memories in _FARGATE_SIZES.items() if memory in memories]
        hint = f"; {memory} MiB goes with cpu {_either(fits)}" if fits else ""
        out.add(
            norm.locate("memory"),
            f"{memory} MiB does not go with cpu {cpu} on Fargate, which offers {_sizes(_FARGATE_SIZES[cpu])} "
            f"with it{hint}",
        )


def _sizes(memories: tuple[int, ...]) -> str:
    if len(memories) <= 4:
        return f"{_either(list(memories))} MiB"
    return f"{memories[0]} to {memories[-1]} MiB in steps of {memories[1] - memories[0]}"


def _either(values: list[int]) -> str:
    """``1, 2 or 3``."""
    return " or ".join(filter(None, [", ".join(map(str, values[:-1])), str(values[-1])]))


def _check_container_memory(container: _Container, task_memory: int | None, norm: _Normalized, out: _Problems) -> None:
    memory = _typed(container.body, "memory", int)
    reservation = _typed(container.body, "memoryReservation", int)
    for key, value in (("memory", memory), ("memoryReservation", reservation)):
        if key == "memoryReservation" and value == 0:
            # Docker takes a zero reservation as none; the ECS documentation asks for a non-zero one.
            out.warn(
                container.where.key(key),
                "0 MiB: the ECS documentation asks for memory sizes greater than zero, and does not say whether "
                "ECS refuses a zero memoryReservation; leave it out (Docker takes 0 as no reservation)",
            )
        elif value is not None and value < _MEMORY_MIN_MIB:
            out.add(container.where.key(key), _too_little_memory(value))
    if memory is not None and reservation is not None and min(memory, reservation) >= _MEMORY_MIN_MIB:
        if memory < reservation:
            out.add(
                container.where.key("memory"),
                f"{memory} MiB is less than memoryReservation ({reservation} MiB): the hard limit cannot be "
                "below the soft limit",
            )
        elif memory == reservation:
            out.warn(
                container.where.key("memory"),
                f"{memory} MiB equals memoryReservation: the ECS documentation asks for memory greater than "
                "memoryReservation, and ECS has been seen to accept them equal; raise memory or drop "
                "memoryReservation to be sure",
            )
    if task_memory is not None and memory is not None and memory > task_memory:
        out.add(
            container.where.key("memory"),
            f"{memory} MiB is more than the task's memory ({task_memory} MiB at {norm.locate('memory').path}): "
            "ECS refuses a container memory greater than the task's",
        )


def _too_little_memory(value: int) -> str:
    if value <= 0:
        return f"{value} MiB: ECS needs a memory size greater than zero (MiB)"
    return (
        f"{value} MiB is below the {_MEMORY_MIN_MIB} MiB Docker gives a container at the least, and Docker "
        f"refuses a smaller limit; give {_MEMORY_MIN_MIB} or more"
    )


def _check_reservations(task: _Task, task_memory: int, where: _Where, out: _Problems) -> None:
    """The memory the containers reserve, against the task's: memoryReservation, else memory, per container."""
    reserved: dict[str, int] = {}
    counted: dict[str, int] = {}
    for c in task.containers:
        reservation = _typed(c.body, "memoryReservation", int)
        memory = _typed(c.body, "memory", int)
        label = c.name or c.where.path
        if reservation is not None:
            reserved[label] = reservation
        size = reservation if reservation is not None else memory
        if size is not None:
            counted[label] = size
    total = sum(reserved.values())
    if total > task_memory:
        out.add(
            where,
            f"{task_memory} MiB is less than the {total} MiB the containers' memoryReservation values "
            f"add up to ({_listed(reserved)}): ECS refuses a sum greater than the task's memory",
        )
    elif sum(counted.values()) > task_memory:
        out.warn(
            where,
            f"{task_memory} MiB is less than the {sum(counted.values())} MiB the containers reserve "
            f"({_listed(counted)}; memory where a container sets no memoryReservation): the ECS documentation "
            "asks for a total below the task's memory, and does not say whether ECS refuses more",
        )


def _listed(sizes: Mapping[str, int]) -> str:
    return ", ".join(f"{name!r} {size}" for name, size in sizes.items())


def _check_memory_given(task: _Task, out: _Problems) -> None:
    """Without a task memory, each container needs memory or memoryReservation on EC2 and EXTERNAL."""
    # A zero is no size: the ECS documentation asks for "a non-zero integer for one or both".
    bare = [
        c for c in task.containers if c.body.get("memory") in (None, 0) and c.body.get("memoryReservation") in (None, 0)
    ]
    if not bare:
        return
    if task.launch_types is None:
        names = ", ".join(repr(c.name or c.where.path) for c in bare)
        out.warn(
            task.where,
            f"no task memory, and {names} set{'s' if len(bare) == 1 else ''} neither memory nor memoryReservation: "
            "ECS refuses that for the EC2 and EXTERNAL launch types, and this task definition names none "
            "(requiresCompatibilities); give each container a memory or memoryReservation (MiB), or the task a memory",
        )
        return
    launch_types = sorted(task.launch_types & {"EC2", "EXTERNAL"})
    for c in bare if launch_types else []:
        out.add(
            c.where,
            f"neither memory nor memoryReservation, and the task has no memory: {' and '.join(launch_types)} in "
            "requiresCompatibilities needs one of them (MiB), or the task's memory",
        )


def _check_cycles(task: _Task, out: _Problems) -> None:
    # Every reference orders startup (links and volumesFrom imply START), so any cycle deadlocks the task.
    edges = {c.name: _startup_references(c, task) for c in task.containers if c.name is not None}
    order = {name: i for i, name in enumerate(edges)}
    reported: set[frozenset[str]] = set()
    for cycle in _cycles(edges):
        if frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        # Told from the container that comes first in the file, whichever container the search met first.
        start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
        cycle = cycle[start:] + cycle[:start]
        out.add(
            task.by_name[cycle[0]].where,
            "dependency cycle "
            + " -> ".join([*cycle, cycle[0]])
            + " (dependsOn, links and volumesFrom all order startup): none of them can start",
        )


def _startup_references(container: _Container, task: _Task) -> list[str]:
    """The other containers of the task this one waits for: dependsOn, links and volumesFrom, once each."""
    targets = [_typed(d, "containerName", str) for _, d in _enumerate_dicts(container.body, "dependsOn")]
    for text in _typed(container.body, "links", list) or []:
        link = _parse_link(text) if isinstance(text, str) else None
        targets.append(link.container_name if link is not None else None)
    targets += [_typed(v, "sourceContainer", str) for _, v in _enumerate_dicts(container.body, "volumesFrom")]
    return [t for t in dict.fromkeys(targets) if t is not None and t != container.name and t in task.by_name]


def _cycles(edges: Mapping[str, list[str]]) -> list[list[str]]:
    """Every cycle a depth-first search meets, as the path from where it closes; the same cycle may recur."""
    found: list[list[str]] = []
    state: dict[str, str] = {}  # "open" while on the DFS stack, then "done"
    # An explicit stack: a long dependsOn chain cannot exhaust Python's.
    for root in edges:
        if root in state:
            continue
        state[root] = "open"
        stack = [root]
        pending = [iter(edges[root])]
        while pending:
            target = next(pending[-1], None)
            if target is None:
                state[stack.pop()] = "done"
                pending.pop()
            elif state.get(target) == "open":
                found.append(stack[stack.index(target) :])
            elif target not in state:
                state[target] = "open"
                stack.append(target)
                pending.append(iter(edges[target]))
    return found


# --- JSON syntax errors in templates ------------------------------------------------------------------------


def _looks_like_yaml(text: str, source: str) -> bool:
    if Path(source).suffix.lower() in _YAML_SUFFIXES:
        return True
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return _YAML_START.match(stripped) is not None
    return False


def _unquoted_placeholders(text: str) -> list[re.Match[str]]:
    """Placeholders standing where a JSON value should be, i.e. outside any string literal."""
    found: list[re.Match[str]] = []
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char == '"':
            i += 1
            # A raw newline cannot be inside a JSON string: the string was unterminated, resume scanning.
            while i < end and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
            i += 1
            continue
        match = PLACEHOLDER.match(text, i)
        if match:
            found.append(match)
            i = match.end()
        else:
            i += 1
    return found


def _syntax_problems(text: str, error: json.JSONDecodeError, source: str, default_family: str | None) -> list[str]:
    problems = [f"line {error.lineno}, column {error.colno}: invalid JSON: {error.msg}"]
    if _looks_like_yaml(text, source):
        name = Path(source).name
        problems.append(
            "task definitions are JSON (as RegisterTaskDefinition takes them), and this looks like YAML; convert "
            "it first, for example: python -c 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), "
            f"sys.stdout, indent=2)' < {name} > {Path(name).stem}.json"
        )
        return problems
    matches = _unquoted_placeholders(text)
    if not matches:
        return problems

    def line_of(match: re.Match[str]) -> int:
        return text.count("\n", 0, match.start()) + 1

    lines: dict[str, list[int]] = {}
    for match in matches:
        seen_at = lines.setdefault(match.group(), [])
        if line_of(match) not in seen_at:
            seen_at.append(line_of(match))
    listed = ", ".join(
        f"{token!r} at line{'s' if len(at) > 1 else ''} {', '.join(map(str, at))}" for token, at in lines.items()
    )
    problems.append(
        f"line {line_of(matches[0])}: unresolved template placeholders outside JSON strings: {listed}; "
        "this is a template: render it first (terraform templatefile, envsubst, jq, ...) and point the "
        "plugin at the result"
    )
    # With each placeholder quoted the rest of the file can often be checked now rather than after a fix.
    pieces: list[str] = []
    last = 0
    for match in matches:
        pieces += [text[last : match.start()], json.dumps(match.group())]
        last = match.end()
    pieces.append(text[last:])
    try:
        data = _json_loads("".join(pieces))
    except ValueError:  # JSONDecodeError included
        return problems  # more broken than placeholders alone: the first error has to be fixed first
    problems += _validate(data, source, default_family)[1]
    return problems
