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
# A vars or secrets file many times this size is not one: refused before it is read.
MAX_FILE_BYTES = 1024 * 1024


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
    for number, entry in enumerate(entries, start=1):
        # Neither the entry nor an invalid name is shown: a typo such as DB_PASSWORD:s3cret holds a credential.
        name, sep, value = entry.partition("=")
        if not sep:
            raise EcsTaskError(
                f"{what}: entry {number} of {len(entries)} has no '=': expected NAME=VALUE (the entry is not "
                "shown, it may hold a secret)"
            )
        if not VARIABLE_NAME.fullmatch(name):
            raise EcsTaskError(
                f"{what}: entry {number} of {len(entries)}: the part before the first '=' is not a variable name "
                "(use letters, digits and '_', not starting with a digit); the entry is not shown, it may hold "
                "a secret"
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
        for number, (key, value) in enumerate(data.items(), start=1):
            if not VARIABLE_NAME.fullmatch(key):
                # Not shown: a mistyped line can put a value where the name should be.
                raise EcsTaskError(
                    f"{source}: name {number} of {len(data)} is not a variable name (use letters, digits and "
                    "'_', not starting with a digit); it is not shown, it may hold a secret"
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
    if not text.strip():
        return {}  # an empty file gives no values
    if Path(source).suffix.lower() in _YAML_SUFFIXES:
        data = _load_yaml(text, source, what)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EcsTaskError(
                f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON in the {what}: {exc.msg}"
            ) from None
        except (RecursionError, ValueError):  # nesting or a number Python will not read
            raise EcsTaskError(f"{source}: the {what} nests too deeply or holds a number too long to read") from None
    if data is None:
        return {}  # an empty YAML file
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise EcsTaskError(f"{source}: the {what} holds {kind}; expected a mapping of names to values")
    for number, key in enumerate(data, start=1):
        if not isinstance(key, str):
            # Told by position: a value typed where a name belongs would be shown otherwise.
            raise EcsTaskError(f"{source}: name {number} of {len(data)} in the {what} is not a string; quote it")
    return data


def _read_text(path: str | os.PathLike[str], what: str) -> str:
    source = os.fspath(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise EcsTaskError(
                f"{source}: the {what} is {size / 1024 / 1024:.1f} MiB; this reads files up to "
                f"{MAX_FILE_BYTES // 1024 // 1024} MiB"
            )
        return Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise EcsTaskError(f"{source}: {what} not found") from None
    except OSError as exc:
        raise EcsTaskError(f"{source}: cannot read the {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise EcsTaskError(f"{source}: the {what} is not UTF-8 text ({exc.reason}); save it as UTF-8") from None


# What a YAML error means, by its class: the parser's own words quote the offending token, which in a
# secrets or vars file is a secret (an unquoted value starting with '!' is read as a tag, and so on).
_YAML_PROBLEMS = {
    "ScannerError": "a value that cannot be read as written: quote values that start with @, `, %, & or *",
    "ParserError": "the structure is broken: check the indentation and the ':' after each name",
    "ComposerError": "an alias (*name) with no anchor: quote values that start with *",
    "ConstructorError": "a tag (!name) that plain YAML does not know: quote values that start with !",
    "ReaderError": "a character YAML does not allow in a file",
}


def _load_yaml(text: str, source: str, what: str) -> Any:
    try:
        # Imported by name: PyYAML is optional, and only YAML files need it.
        yaml = importlib.import_module("yaml")
    except ImportError:
        raise EcsTaskError(f"{source}: reading YAML needs PyYAML: pip install pyyaml") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the position and the kind of problem are told, never the parser's text: it quotes the file.
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = _YAML_PROBLEMS.get(type(exc).__name__, "not readable as YAML")
        raise EcsTaskError(f"{source}: {where}invalid YAML in the {what}: {problem} (the text is not shown)") from None
    except (RecursionError, ValueError):
        raise EcsTaskError(f"{source}: the {what} nests too deeply or holds a number too long to read") from None


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
                f"{source}: line {number}: the part before the first '=' is not a variable name (use letters, "
                "digits and '_', not starting with a digit); the line is not shown, it may hold a secret"
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values
