"""The documentation names everything the plugin registers: options, ini keys, hooks, fixtures, marker arguments.

Pure: no Docker. The registered names are read from pytest itself (``--help``, ``--fixtures``) and from the
plugin's own modules, never from a list kept here, so adding an option without documenting it fails.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from pytest_ecstask import hookspecs, plugin

DOCS = Path(__file__).resolve().parent.parent / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line), up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    start = lines.index(heading)  # ValueError names the missing heading
    end = len(lines)
    for i in range(start + 1, len(lines)):
        match = re.match(r"(#+) ", lines[i])
        if match and len(match.group(1)) <= level:
            end = i
            break
    return "\n".join(lines[start + 1 : end])


def mentions(text: str, name: str) -> bool:
    """``name`` as a whole word: ``--ecs-log`` is not found in ``--ecs-log-dir``, ``ecs_task`` not in ``ecs_task_factory``."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def help_lines(pytester: pytest.Pytester) -> list[str]:
    result = pytester.runpytest("--help")
    assert result.ret == 0, result.stderr.str()
    return result.outlines


def registered_options(pytester: pytest.Pytester) -> list[str]:
    # An option's own line starts with two spaces and its flags, then its help after two or more spaces;
    # wrapped help text is indented further.
    found = []
    for line in help_lines(pytester):
        if re.match(r"  -", line):
            flags = re.split(r"\s{2,}", line.strip())[0]
            found += re.findall(r"(?<![\w-])(--ecs-[a-z0-9-]+)", flags)
    return list(dict.fromkeys(found))


def registered_ini_keys(pytester: pytest.Pytester) -> list[str]:
    found = [m.group(1) for line in help_lines(pytester) if (m := re.match(r"  (ecs_[a-z0-9_]+) \(", line))]
    return list(dict.fromkeys(found))


def registered_fixtures(pytester: pytest.Pytester) -> list[str]:
    result = pytester.runpytest("--fixtures")
    assert result.ret == 0, result.stderr.str()
    lines = result.outlines
    header = next(i for i, line in enumerate(lines) if "fixtures defined from pytest_ecstask.plugin" in line)
    found = []
    for line in lines[header + 1 :]:
        if line.startswith("-----") or line.startswith("====="):
            break  # the next plugin's fixtures, or the end
        match = re.match(r"([a-z_][a-z0-9_]*)( \[\w+ scope\])? -- ", line)
        if match:
            found.append(match.group(1))
    return found


def hook_names() -> list[str]:
    return [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("pytest_")]


def test_every_command_line_option_is_in_the_reference(pytester: pytest.Pytester) -> None:
    options = registered_options(pytester)
    assert "--ecs-taskdef" in options, f"could not read the options from pytest --help: {options}"
    reference = page("reference.md")
    missing = [o for o in options if not mentions(reference, o)]
    assert not missing, f"docs/reference.md does not mention these command-line options: {', '.join(missing)}"


def test_every_ini_key_is_in_the_reference(pytester: pytest.Pytester) -> None:
    keys = registered_ini_keys(pytester)
    assert "ecs_taskdef" in keys, f"could not read the ini keys from pytest --help: {keys}"
    reference = page("reference.md")
    missing = [k for k in keys if not mentions(reference, k)]
    assert not missing, f"docs/reference.md does not mention these ini keys: {', '.join(missing)}"


def test_every_hook_has_a_section_in_the_hooks_page() -> None:
    names = hook_names()
    assert names, "no hook specs found in pytest_ecstask.hookspecs"
    hooks = page("hooks.md")
    missing = [n for n in names if f"### `{n}`" not in hooks.splitlines()]
    assert not missing, f"docs/hooks.md has no '### `name`' section for these hooks: {', '.join(missing)}"


def test_every_fixture_is_in_the_reference(pytester: pytest.Pytester) -> None:
    fixtures = registered_fixtures(pytester)
    assert "ecs_task" in fixtures, f"could not read the plugin's fixtures from pytest --fixtures: {fixtures}"
    # The first column of the table in the Fixtures section.
    rows = [line for line in section(page("reference.md"), "## Fixtures").splitlines() if line.startswith("|")]
    listed = {cells[1].strip() for cells in (row.split("|") for row in rows) if len(cells) > 2}
    missing = [f for f in fixtures if f"`{f}`" not in listed]
    assert not missing, (
        f"the table in the Fixtures section of docs/reference.md has no row for these fixtures: {', '.join(missing)}"
    )


def test_every_marker_argument_is_in_the_reference() -> None:
    # MARKER_ARGS is what the plugin accepts: any other keyword fails the test with "unknown argument(s)".
    arguments = plugin.MARKER_ARGS
    assert arguments, "pytest_ecstask.plugin.MARKER_ARGS is empty"
    marker = section(page("reference.md"), "## The `ecs_task` marker")
    missing = [a for a in arguments if f"`{a}`" not in marker]
    assert not missing, (
        f"the section 'The `ecs_task` marker' of docs/reference.md does not list these marker arguments: "
        f"{', '.join(missing)}"
    )


@pytest.mark.parametrize("name", ["Task", "Container"])
def test_every_public_attribute_of_task_and_container_is_in_the_reference(name: str) -> None:
    from pytest_ecstask import task as task_module

    cls = getattr(task_module, name)
    attributes = [a for a in dir(cls) if not a.startswith("_")]
    documented = section(page("reference.md"), f"### `{name}`")
    missing = [a for a in attributes if not mentions(documented, a) and not mentions(documented, f"{a}()")]
    assert not missing, f"the section '### `{name}`' of docs/reference.md does not mention: {', '.join(missing)}"


def test_every_name_the_package_exports_is_in_the_reference() -> None:
    import pytest_ecstask

    reference = page("reference.md")
    missing = [n for n in pytest_ecstask.__all__ if n != "__version__" and not mentions(reference, n)]
    assert not missing, f"docs/reference.md does not mention these exports of pytest_ecstask: {', '.join(missing)}"


def test_the_changelog_has_an_entry_for_this_version() -> None:
    import pytest_ecstask

    changelog = (DOCS.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    version = pytest_ecstask.__version__
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M), (
        f"CHANGELOG.md has no '## [{version}] - YYYY-MM-DD' entry for the package's version"
    )
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{version}]")
