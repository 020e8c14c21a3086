"""TaskOptions: the defaults a task gets outside pytest are the ones the reference documents. Pure."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

from pytest_ecstask.options import TaskOptions

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"
ROW = re.compile(r"^\| `(?P<name>\w+)` \| [^|]+ \| `(?P<default>[^`]+)` \|", re.MULTILINE)


def documented_defaults() -> dict[str, object]:
    text = REFERENCE.read_text(encoding="utf-8")
    table = text[text.index("### `TaskOptions`") :]
    table = table[: table.index("\n### ")]
    return {m["name"]: ast.literal_eval(m["default"]) for m in ROW.finditer(table)}


def test_every_field_has_the_documented_default() -> None:
    defaults = TaskOptions()
    documented = documented_defaults()
    assert sorted(documented) == sorted(f.name for f in dataclasses.fields(TaskOptions))
    actual = {name: getattr(defaults, name) for name in documented}
    # Mappings and sequences compare by content: the dataclass gives each instance its own empty dict.
    assert {k: dict(v) if isinstance(v, dict) else v for k, v in actual.items()} == documented
