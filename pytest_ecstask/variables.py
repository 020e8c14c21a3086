"""Template variables: fill the ``${name}`` placeholders of a task definition template before it is parsed.

Terraform's ``templatefile`` is the commonest way task definitions are rendered, so its rules are followed:
``${name}`` is replaced by the value verbatim (the template decides quoting, so ``"memory": ${mem}`` works),
and ``$${`` is the escape for a literal ``${``. Values come from the command line (``--ecs-var``), a vars
file, or the environment, in that order. Values never appear in error messages: some are credentials.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import EcsTaskError, TaskDefinitionError

__all__ = [
    "VARIABLE_NAME",
    "load_vars_file",
    "parse_var_assignments",
    "placeholder_names",
    "substitute",
    "template_values",
]

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The escape is matched first so that `$${x}` is never read as `$` followed by the placeholder `${x}`.
_TOKEN = re.compile(r"(?P<escape>\$\$\{)|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")
_YAML_SUFFIXES = (".yaml", ".yml")
_SHOW_MAX = 60


def placeholder_names(text: str) -> list[str]:
    """Names of the unescaped ``${NAME}`` placeholders, each once, in order of first appearance."""
    names = (m.group("name") for m in _TOKEN.finditer(text) if m.group("name"))
    return list(dict.fromkeys(names))


def substitute(text: str, values: Mapping[str, str], source: str) -> str:
    """Fill every ``${NAME}`` in ``text`` and turn ``$${`` into ``${``, on the raw text before JSON parsing.

    Raises ``TaskDefinitionError`` with one problem per placeholder that has no value, all at once.
    """
    missing: dict[str, list[int]] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None:
            return "${"
        if name in values:
            return values[name]
        line = text.count("\n", 0, match.start()) + 1
        lines = missing.setdefault(name, [])
        if line not in lines:
            lines.append(line)
        return match.group()

    result = _TOKEN.sub(replace, text)
    if missing:
        problems = [
            f"line {', '.join(map(str, lines))}: template variable ${{{name}}} has no value; give it with "
            f"--ecs-var {name}=VALUE, a vars file (ecs_vars_file), or the environment"
            for name, lines in missing.items()  # insertion order is order of first appearance
        ]
        raise TaskDefinitionError(source, problems)
    return result


def template_values(
    cli: Mapping[str, str],
    file_values: Mapping[str, str],
    environ: Mapping[str, str],
    names: Iterable[str],
) -> dict[str, str]:
    """The value of each name the template uses: command line, then vars file, then environment.

    Restricted to ``names`` so that the whole environment is never carried around (or printed).
    """
    chosen: dict[str, str] = {}
    for name in names:
        for layer in (cli, file_values, environ):
            if name in layer:
                chosen[name] = layer[name]
                break
    return chosen


def parse_var_assignments(entries: Sequence[str], what: str) -> dict[str, str]:
    """``NAME=VALUE`` entries (``--ecs-var``, repeatable); split on the first ``=``, a later entry wins."""
    assignments: dict[str, str] = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        if not sep:
            raise EcsTaskError(f"{what}: {_show(entry)} is not NAME=VALUE")
        if not VARIABLE_NAME.fullmatch(name):
            # Only the name part is shown: the value may be a credential.
            raise EcsTaskError(
                f"{what}: {_show(name)} is not a variable name (use letters, digits and '_', not starting "
                "with a digit) in a NAME=VALUE entry"
            )
        assignments[name] = value
    return assignments


def load_vars_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Template values from a JSON object, a YAML mapping (``.yaml``/``.yml``) or a dotenv-style file.

    Numbers and booleans of JSON and YAML become their JSON text (``512``, ``true``), which is what a
    template that inserts them unquoted needs.
    """
    source = os.fspath(path)
    suffix = Path(source).suffix.lower()
    if suffix == ".json" or suffix in _YAML_SUFFIXES:
        data = read_mapping_file(path, "vars file")
        values: dict[str, str] = {}
        for key, value in data.items():
            if not VARIABLE_NAME.fullmatch(key):
                raise EcsTaskError(
                    f"{source}: {_show(key)} is not a variable name (use letters, digits and '_', not "
                    "starting with a digit)"
                )
            if isinstance(value, (dict, list)):
                raise EcsTaskError(f"{source}: variable {key!r} has a nested value; give a string, number or boolean")
            text = scalar_text(value)
            if text is None:
                raise EcsTaskError(
                    f"{source}: variable {key!r} has no usable value (null, or an unquoted date?); give a "
                    "string, number or boolean, quoted if in doubt"
                )
            values[key] = text
        return values
    return _parse_dotenv(_read_text(path, "vars file"), source)


# --- shared with secretvalues: reading JSON and YAML mappings without ever echoing their contents -----------


def scalar_text(value: Any) -> str | None:
    """A JSON/YAML scalar as text: strings as they are, numbers and booleans as JSON writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return None


def read_mapping_file(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """A JSON object or (for ``.yaml``/``.yml``) a YAML mapping with string keys.

    Syntax errors name the line and column but never quote the text: the file may hold secrets.
    """
    source = os.fspath(path)
    text = _read_text(path, what)
    if Path(source).suffix.lower() in _YAML_SUFFIXES:
        data = _load_yaml(text, source)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EcsTaskError(
                f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON in the {what}: {exc.msg}"
            ) from None
    if data is None:
        return {}  # an empty YAML file
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise EcsTaskError(f"{source}: the {what} holds {kind}; expected a mapping of names to values")
    for key in data:
        if not isinstance(key, str):
            raise EcsTaskError(f"{source}: key {key!r} in the {what} is not a string; quote it")
    return data


def _read_text(path: str | os.PathLike[str], what: str) -> str:
    source = os.fspath(path)
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise EcsTaskError(f"{source}: {what} not found") from None
    except OSError as exc:
        raise EcsTaskError(f"{source}: cannot read the {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise EcsTaskError(f"{source}: the {what} is not UTF-8 text ({exc.reason}); save it as UTF-8") from None


def _load_yaml(text: str, source: str) -> Any:
    try:
        # Imported by name: PyYAML is optional, and only YAML files need it.
        yaml = importlib.import_module("yaml")
    except ImportError:
        raise EcsTaskError(f"{source}: reading YAML needs PyYAML: pip install pyyaml") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # str(exc) quotes the offending line; only the problem and its position are told.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise EcsTaskError(f"{source}: {where}invalid YAML: {problem}") from None


def _parse_dotenv(text: str, source: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("export ", "export\t")):
            line = line[len("export") :].lstrip()
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise EcsTaskError(f"{source}: line {number}: expected NAME=VALUE")
        if not VARIABLE_NAME.fullmatch(name):
            raise EcsTaskError(
                f"{source}: line {number}: {_show(name)} is not a variable name (use letters, digits and "
                "'_', not starting with a digit)"
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values


def _show(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= _SHOW_MAX else shown[: _SHOW_MAX - 3] + "..."
