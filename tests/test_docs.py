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


# -- the other way round: what the docs name exists ----------------------------------------------------

# The pages a user reads; the changelog is history and may name what is gone.
USER_PAGES = [*sorted(p for p in DOCS.rglob("*.md") if p.name != "changelog.md"), DOCS.parent / "README.md"]


def named_in_docs(pattern: str, prose_only: bool = False) -> dict[str, list[str]]:
    """Every match of ``pattern`` (its first group) in the user pages, with the pages that name it.

    ``prose_only`` leaves out fenced code blocks, where an example may bind a name to what it likes.
    """
    found: dict[str, list[str]] = {}
    for path in USER_PAGES:
        text = path.read_text(encoding="utf-8")
        if prose_only:
            text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
        for name in re.findall(pattern, text):
            pages = found.setdefault(name, [])
            if path.name not in pages:
                pages.append(path.name)
    return found


def where(names: dict[str, list[str]], missing: list[str]) -> str:
    return ", ".join(f"{n} ({', '.join(names[n])})" for n in missing)


def test_every_command_line_option_the_docs_name_exists(pytester: pytest.Pytester) -> None:
    # Written as --ecs-x, --ecs-x=VALUE or --ecs-x VALUE: the name ends where letters, digits and inner
    # hyphens do.
    named = named_in_docs(r"(?<![\w-])(--ecs-[a-z0-9]+(?:-[a-z0-9]+)*)")
    assert "--ecs-taskdef" in named, "could not read the options from the docs"
    options = registered_options(pytester)
    missing = [o for o in named if o not in options]
    assert not missing, f"the docs name command-line options that pytest does not know: {where(named, missing)}"


def test_every_ini_key_and_fixture_the_docs_name_exists(pytester: pytest.Pytester) -> None:
    # ecs_x is an ini key, a fixture or the marker; ecs_task.containers is the fixture ecs_task.
    named = named_in_docs(r"(?<![\w./-])(ecs_[a-z0-9_]+)")
    assert "ecs_taskdef" in named, "could not read the ini keys from the docs"
    known = {*registered_ini_keys(pytester), *registered_fixtures(pytester), "ecs_task"}
    missing = [n for n in named if n not in known]
    assert not missing, f"the docs name ini keys or fixtures that do not exist: {where(named, missing)}"


def attributes(cls: type) -> set[str]:
    """What an instance has: the class's own names, dataclass fields, and what ``__init__`` assigns."""
    import dataclasses

    names = set(dir(cls))
    if dataclasses.is_dataclass(cls):
        return names | {f.name for f in dataclasses.fields(cls)}
    init = cls.__init__
    if inspect.isfunction(init):
        names |= set(re.findall(r"self\.(\w+)(?:: [^=]+)? = ", inspect.getsource(init)))
    return names


def api_classes() -> dict[str, type]:
    """The classes the reference gives a section of their own, by name, from the modules it names."""
    import importlib

    import pytest_ecstask

    modules = [pytest_ecstask] + [
        importlib.import_module(m)
        for m in re.findall(r"\| `(pytest_ecstask\.\w+)` \|", section(page("reference.md"), "## Python API"))
    ]
    classes = {}
    for heading in re.findall(r"^### `(\w+)`$", page("reference.md"), re.M):
        for module in modules:
            value = getattr(module, heading, None)
            if inspect.isclass(value):
                classes[heading] = value
                break
    return classes


def test_every_attribute_in_the_reference_tables_exists() -> None:
    classes = api_classes()
    assert {"Task", "Container", "TaskOptions", "TaskCredentials"} <= set(classes), classes
    missing = []
    for name, cls in classes.items():
        rows = [line for line in section(page("reference.md"), f"### `{name}`").splitlines() if line.startswith("|")]
        # The first column: `name`, `name() -> type`, or several: `pause()`, `unpause()`.
        for row in rows[2:]:
            first = row.split("|")[1]
            for attribute in re.findall(r"`(\w+)", first):
                if attribute not in attributes(cls):
                    missing.append(f"{name}.{attribute}")
    assert not missing, f"the reference's tables name attributes that do not exist: {', '.join(missing)}"


def test_every_task_and_container_attribute_the_docs_use_exists() -> None:
    from pytest_ecstask.task import Container, Task

    owners = {"task": Task, "ecs_task": Task, "ecs_session_task": Task, "container": Container}
    named = named_in_docs(r"(?<![\w./-])((?:task|ecs_task|ecs_session_task)\.\w+)")
    # In code a hook's ``container`` is a container definition, a dict; in prose it is a Container.
    named.update(named_in_docs(r"(?<![\w./-])(container\.\w+)", prose_only=True))
    assert "ecs_task.containers" in named and "container.exit_code" in named, "could not read the docs"
    missing = [n for n in named if n.split(".")[1] not in attributes(owners[n.split(".")[0]])]
    assert not missing, f"the docs use attributes that do not exist: {where(named, missing)}"


# -- what the docs say of when values are checked, run ---------------------------------------------------


def test_what_the_reference_says_is_not_checked_at_start_up_is_not(pytester: pytest.Pytester) -> None:
    text = section(page("reference.md"), "### When values are checked")
    sentence = next(p for p in text.split("\n\n") if p.startswith("Not checked at start-up:"))
    options = re.findall(r"`(--ecs-[a-z0-9-]+)`", sentence)
    keys = re.findall(r"`(ecs_[a-z0-9_]+)`", sentence)
    assert options or keys, sentence
    pytester.makepyfile("def test_x():\n    pass\n")
    nonsense = "test_x.py/0"  # neither a number, nor a choice, nor a directory that can be made
    for args in [[f"{o}={nonsense}"] for o in options] + [["-o", f"{k}={nonsense}"] for k in keys]:
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.OK, f"{args}: {result.stderr.str()}"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--ecs-log-lines=many"], "--ecs-log-lines / ini ecs_log_lines: 'many' is not a whole number >= 0"),
        (["-o", "ecs_log_lines=many"], "--ecs-log-lines / ini ecs_log_lines: 'many' is not a whole number >= 0"),
        (["-o", "ecs_logs=sometimes"], "ini ecs_logs: 'sometimes' is not one of on-failure, always, never"),
    ],
)
def test_the_report_settings_are_checked_at_start_up_as_the_docs_say(
    pytester: pytest.Pytester, args: list[str], error: str
) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {error}"])
    assert f"ERROR: {error}" in section(page("reference.md"), "### When values are checked")
    assert error in section(page("debugging.md"), "## Options for reports")


def test_the_quickstart_says_what_check_false_covers_and_how_to_stop_quickly() -> None:
    quickstart = page("quickstart.md")
    # A first run with a shell entry point otherwise waits 30 s for each container at teardown.
    assert mentions(quickstart, "--ecs-stop-timeout")
    paragraph = next(p for p in quickstart.split("\n\n") if "`check=False`" in p)
    for still_fails in ("missing or unpullable", "refused to create", "`wait_for`"):
        assert still_fails in paragraph, f"the quickstart's check=False paragraph does not say {still_fails!r}"


def test_the_changelog_has_an_entry_for_this_version() -> None:
    import pytest_ecstask

    changelog = (DOCS.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    version = pytest_ecstask.__version__
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M), (
        f"CHANGELOG.md has no '## [{version}] - YYYY-MM-DD' entry for the package's version"
    )
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{version}]")


# -- the settings tables are generated from pytest_ecstask.settings ------------------------------------


def test_the_settings_tables_are_the_generated_ones() -> None:
    from pytest_ecstask.settings import with_tables

    reference = page("reference.md")
    assert with_tables(reference) == reference, (
        "docs/reference.md is stale: run python -m pytest_ecstask.settings --write docs/reference.md"
    )


def test_the_settings_table_command_prints_writes_and_refuses_bad_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_ecstask.settings import begin, end, main, markdown_table

    assert main([]) == 0
    printed = capsys.readouterr().out
    assert markdown_table("task settings") in printed and markdown_table("ini keys") in printed
    document = tmp_path / "reference.md"
    names = ["task settings", "marker arguments", "run settings", "aws backend settings", "ini keys"]
    document.write_text("# Reference\n\n" + "".join(f"{begin(n)}\nstale\n{end(n)}\n\n" for n in names) + "after\n")
    assert main(["--write", str(document)]) == 0
    written = document.read_text()
    assert "stale" not in written and markdown_table("run settings") in written and written.endswith("after\n")
    assert main(["--wrong"]) == 2
    assert "usage: python -m pytest_ecstask.settings [--write DOCUMENT.md]" in capsys.readouterr().err
    document.write_text("# no markers\n")
    assert main(["--write", str(document)]) == 1
    assert main(["--write", str(tmp_path / "missing.md")]) == 1


def test_every_option_in_help_is_a_row_of_the_settings_table(pytester: pytest.Pytester) -> None:
    # What pytest registered is what the table holds: nothing is added beside it.
    from pytest_ecstask.settings import SETTINGS

    assert registered_options(pytester) == [s.flag for s in SETTINGS if s.flag]
    assert registered_ini_keys(pytester) == [s.ini for s in SETTINGS if s.ini]


def test_the_podman_recipe_lists_every_test_skipped_on_podman() -> None:
    from conftest import PODMAN_DIFFERS

    recipe = (DOCS / "recipes" / "podman.md").read_text()
    for test in PODMAN_DIFFERS:
        assert f"`{test.split('::')[1]}`" in recipe, f"docs/recipes/podman.md does not list {test}"


def test_the_results_table_is_the_same_in_the_docs_and_in_benchmarks() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("publish", DOCS.parent / "benchmarks" / "publish.py")
    assert spec is not None and spec.loader is not None
    publish = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(publish)
    results = (DOCS.parent / "benchmarks" / "RESULTS.md").read_text()
    block = publish.results_block((DOCS / "performance.md").read_text())
    assert block.strip(), "docs/performance.md has no results block: run benchmarks/publish.py"
    assert results == "# Benchmark results\n\n" + block
