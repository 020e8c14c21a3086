"""A mutation sampler for the pure modules: how many small deliberate bugs does the pure test tier catch?

Each mutant is one small change to the syntax tree of one pure module (a comparison flipped, ``and`` made
``or``, a constant changed, a statement removed, ...). A fixed-size sample is drawn with a fixed seed, so a
run is reproducible while the sources stay the same, and every mutant is run against the pure tier
(``-m "not engine"``, stopping at the first failure) in a copy of the project: the working tree is never
touched, even when a run is interrupted. Not part of CI: a full sample takes about ten minutes.

    python tools/mutation.py                      # 300 mutants, seed 19, 2 workers; tools/MUTATION.md
    python tools/mutation.py --list               # the sample: one mutant id per line, with its change
    python tools/mutation.py --show ID            # the mutant as a diff
    python tools/mutation.py --only ID [--only ID]  # run just these mutants

Mutants that cannot change behaviour are listed, with a reason each, in tools/mutation_equivalent.txt;
the summary shows the score with and without them.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import functools
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pytest_ecstask"
EQUIVALENT_FILE = Path(__file__).resolve().parent / "mutation_equivalent.txt"

# The modules with no Docker, no network and no pytest in them, and for lifecycle.py and leftovers.py the names
# that are pure (their leases and process checks touch the file system and other processes). None = the whole module.
# credentials.py and pause.py have no Docker calls either, but what they do is asserted only by the engine
# tier (the credentials endpoint, the pause container), so the pure tier cannot be expected to catch them.
PURE_MODULES: dict[str, frozenset[str] | None] = {
    "taskdef.py": None,
    "plan.py": None,
    "variables.py": None,
    "secretvalues.py": None,
    "fields.py": None,
    "options.py": None,
    "taskstate.py": None,
    "metadata.py": None,
    "endpointids.py": None,
    "lifecycle.py": frozenset(
        {
            "LABEL_PREFIX",
            "LABEL_SESSION",
            "LABEL_TASK",
            "LABEL_CREATED",
            "LABEL_OWNER",
            "LABEL_ROLE",
            "LABEL_HOST",
            "LABEL_LEASE",
            "LABEL_KEEP",
            "parse_rfc3339",
            "Owner",
            "resource_labels",
        }
    ),
    "leftovers.py": frozenset({"Resource", "Verdict", "classify", "describe"}),
}

# Test files run first for a module's mutants (the rest of the pure tier follows): most mutants fail there.
TESTS_FIRST: dict[str, tuple[str, ...]] = {
    "taskdef.py": ("test_taskdef.py", "test_real_taskdefs.py"),
    "plan.py": ("test_plan.py", "test_real_taskdefs.py", "test_field_support.py"),
    "variables.py": ("test_variables.py", "test_secretvalues.py"),
    "secretvalues.py": ("test_secretvalues.py", "test_plan.py"),
    "fields.py": ("test_field_support.py",),
    "options.py": ("test_plugin.py", "test_docs.py"),
    "lifecycle.py": ("test_lifecycle.py", "test_plan.py"),
    "leftovers.py": ("test_leftovers.py", "test_lifecycle.py"),
    "taskstate.py": ("test_taskstate.py",),
    "metadata.py": ("test_metadata.py",),
    "endpointids.py": ("test_metadata.py", "test_plan.py"),
}

COPY_IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache", ".pytest_cache", "site", "build", "dist"
)


# -- the mutants ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    id: str  # module:line:column:operator, stable while the module's text before it does not move
    module: str
    line: int
    before: str
    after: str


# One mutation found while walking a tree: where it goes (parent, field, index) and what replaces the node.
_Site = tuple[ast.AST, str, "int | None", ast.AST, str, Callable[[ast.AST], ast.AST]]

_COMPARE_SWAPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Lt: (ast.LtE, ast.GtE),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.LtE),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
_BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
}
_CALL_SWAPS = {"max": "min", "min": "max", "any": "all", "all": "any"}
_METHOD_SWAPS = {
    "startswith": "endswith",
    "endswith": "startswith",
    "lstrip": "rstrip",
    "rstrip": "lstrip",
    "partition": "rpartition",
    "rpartition": "partition",
    "removesuffix": "removeprefix",
    "removeprefix": "removesuffix",
}
# Statements whose removal leaves the code running (no NameError for free): effects, jumps, raises.
_REMOVABLE = (ast.Expr, ast.AugAssign, ast.Raise, ast.Continue, ast.Break)


def _is_docstring(node: ast.AST, parent: ast.AST, index: int | None) -> bool:
    return (
        index == 0
        and isinstance(parent, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _skipped(node: ast.AST) -> bool:
    """Code that is not behaviour: imports, typing-only blocks, ``__all__``, the command-line entry."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, ast.If):
        test = ast.unparse(node.test)
        return test in ("TYPE_CHECKING", "__name__ == '__main__'")
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    return False


def _names_a_type(call: ast.AST) -> bool:
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name in ("cast", "TypeVar")


def _top_level_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def _mutations(node: ast.AST, parent: ast.AST, field_name: str) -> Iterator[tuple[str, Callable[[ast.AST], ast.AST]]]:
    """(operator name, how to make the mutated node from a copy of ``node``) for every mutation of ``node``."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for new in _COMPARE_SWAPS.get(type(op), ()):
                where = f"@{i}" if len(node.ops) > 1 else ""
                yield f"{type(op).__name__}->{new.__name__}{where}", functools.partial(_swap_compare, i=i, new=new)
    elif isinstance(node, ast.BoolOp):
        new_bool: type[ast.boolop] = ast.Or if isinstance(node.op, ast.And) else ast.And
        yield f"{type(node.op).__name__}->{new_bool.__name__}", functools.partial(_set_op, op=new_bool)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop-not", _drop_not
    elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _BINOP_SWAPS:
        new_bin = _BINOP_SWAPS[type(node.op)]
        suffix = "=" if isinstance(node, ast.AugAssign) else ""
        yield f"{type(node.op).__name__}{suffix}->{new_bin.__name__}{suffix}", functools.partial(_set_op, op=new_bin)
    elif isinstance(node, ast.Constant):
        yield from _constant_mutations(node.value)
    elif isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id in _CALL_SWAPS:
            other = _CALL_SWAPS[func.id]
            yield f"{func.id}->{other}", functools.partial(_renamed_call, name=other)
        elif isinstance(func, ast.Attribute) and func.attr in _METHOD_SWAPS:
            other = _METHOD_SWAPS[func.attr]
            yield f"{func.attr}->{other}", functools.partial(_renamed_call, name=other)

    if _is_condition(parent, field_name) and not _flip_is_negation(node):
        yield "negate", _negate
    if isinstance(node, ast.Return) and not _returns_none(node):
        yield "return-None", lambda n: ast.Return(ast.Constant(None))
    if isinstance(node, _REMOVABLE) or (
        isinstance(node, ast.Assign) and all(isinstance(t, (ast.Subscript, ast.Attribute)) for t in node.targets)
    ):
        yield "remove", lambda n: ast.Pass()


def _returns_none(node: ast.Return) -> bool:
    return node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)


def _constant_mutations(value: object) -> Iterator[tuple[str, Callable[[ast.AST], ast.AST]]]:
    if isinstance(value, bool):
        yield f"{value}->{not value}", lambda n: ast.Constant(not value)
    elif isinstance(value, int):
        yield "int+1", lambda n: ast.Constant(value + 1)
        if value != 0:
            yield "int-1", lambda n: ast.Constant(value - 1)
    elif isinstance(value, float):
        yield "float+1", lambda n: ast.Constant(value + 1.0)
    elif isinstance(value, str):
        yield "str", lambda n: ast.Constant(f"XX{value}XX")


def _is_condition(parent: ast.AST, field_name: str) -> bool:
    return (isinstance(parent, (ast.If, ast.While, ast.IfExp)) and field_name == "test") or (
        isinstance(parent, ast.comprehension) and field_name == "ifs"
    )


def _flip_is_negation(node: ast.AST) -> bool:
    """Whether another operator already yields this condition's opposite (``not`` dropped, ``==`` flipped)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return True
    return (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot))
    )


def _swap_compare(node: ast.AST, i: int, new: type[ast.cmpop]) -> ast.AST:
    assert isinstance(node, ast.Compare)
    node.ops[i] = new()
    return node


def _set_op(node: ast.AST, op: type[ast.boolop] | type[ast.operator]) -> ast.AST:
    assert isinstance(node, (ast.BoolOp, ast.BinOp, ast.AugAssign))
    node.op = op()
    return node


def _drop_not(node: ast.AST) -> ast.AST:
    assert isinstance(node, ast.UnaryOp)
    return node.operand


def _negate(node: ast.AST) -> ast.AST:
    assert isinstance(node, ast.expr)
    return ast.UnaryOp(ast.Not(), node)


def _renamed_call(node: ast.AST, name: str) -> ast.AST:
    assert isinstance(node, ast.Call)
    if isinstance(node.func, ast.Name):
        node.func.id = name
    elif isinstance(node.func, ast.Attribute):
        node.func.attr = name
    return node


def _sites(tree: ast.Module, module: str) -> Iterator[_Site]:
    """Every mutation of a module, in source order."""
    allowed = PURE_MODULES[module]

    def walk(node: ast.AST) -> Iterator[_Site]:
        for field_name, value in ast.iter_fields(node):
            if field_name in ("annotation", "returns", "decorator_list", "type_comment"):
                continue  # types and decorators: not the behaviour the tests are about
            if isinstance(node, ast.JoinedStr) or (
                isinstance(node, ast.FormattedValue) and field_name == "format_spec"
            ):
                # An f-string's literal text and format specs are message wording; its expressions are code.
                for part in value if isinstance(value, list) else [value]:
                    if isinstance(part, ast.FormattedValue):
                        yield from walk(part)
                continue
            children = value if isinstance(value, list) else [value]
            for i, child in enumerate(children):
                index = i if isinstance(value, list) else None
                if not isinstance(child, ast.AST) or _is_docstring(child, node, index) or _skipped(child):
                    continue
                if field_name == "args" and index == 0 and _names_a_type(node):
                    continue  # cast("ListShape", x), TypeVar("_T"): a type's name, read by type checkers only
                for op, make in _mutations(child, node, field_name):
                    yield node, field_name, index, child, op, make
                yield from walk(child)

    for i, statement in enumerate(tree.body):
        if _is_docstring(statement, tree, i) or _skipped(statement):
            continue
        if allowed is not None and not (_top_level_names(statement) & allowed):
            continue
        for op, make in _mutations(statement, tree, "body"):
            yield tree, "body", i, statement, op, make
        yield from walk(statement)


def _identified(tree: ast.Module, module: str) -> Iterator[tuple[str, _Site]]:
    """Each site with its id: module, line, column and operator (plus #n should two ever coincide)."""
    seen: dict[str, int] = {}
    for site in _sites(tree, module):
        node, op = site[3], site[4]
        key = f"{module}:{getattr(node, 'lineno', 0)}:{getattr(node, 'col_offset', 0)}:{op}"
        seen[key] = seen.get(key, 0) + 1
        yield (key if seen[key] == 1 else f"{key}#{seen[key]}"), site


def _one_line(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def all_mutants(root: Path, modules: Sequence[str]) -> list[Mutant]:
    mutants: list[Mutant] = []
    for module in modules:
        tree = ast.parse((root / PACKAGE / module).read_text(encoding="utf-8"))
        for mutant_id, (_, _, _, node, _, make) in _identified(tree, module):
            before = ast.unparse(node)
            after = ast.unparse(make(copy.deepcopy(node)))
            mutants.append(Mutant(mutant_id, module, getattr(node, "lineno", 0), _one_line(before), _one_line(after)))
    return mutants


def mutated_source(root: Path, mutant_id: str) -> str:
    """The module's source with one mutant applied (unparsed: comments and layout are not kept)."""
    module = mutant_id.split(":", 1)[0]
    tree = ast.parse((root / PACKAGE / module).read_text(encoding="utf-8"))
    for found, (parent, field_name, index, node, _, make) in _identified(tree, module):
        if found == mutant_id:
            new = make(copy.deepcopy(node))
            if index is None:
                setattr(parent, field_name, new)
            else:
                getattr(parent, field_name)[index] = new
            return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    raise SystemExit(f"no mutant {mutant_id!r} (has {module} changed? see --list)")


def sample(mutants: Sequence[Mutant], size: int, seed: int) -> list[Mutant]:
    """``size`` mutants drawn with ``seed``, in source order; all of them when there are fewer."""
    if size >= len(mutants):
        return list(mutants)
    chosen = sorted(random.Random(seed).sample(range(len(mutants)), size))
    return [mutants[i] for i in chosen]


def load_equivalent(path: Path = EQUIVALENT_FILE) -> dict[str, str]:
    """Mutant id -> why it cannot change behaviour, from lines ``ID  reason`` (``#`` starts a comment)."""
    if not path.exists():
        return {}
    listed: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            mutant_id, _, reason = line.strip().partition(" ")
            listed[mutant_id] = reason.strip()
    return listed


# -- running the tests against a mutant ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # "caught", "timeout" (counted as caught), "survived"
    seconds: float
    detail: str = ""  # the first failing test, when caught


class Workspace:
    """A copy of the project (package, tests, docs) in which mutants are written; the tree is never touched."""

    def __init__(self, root: Path, path: Path) -> None:
        self.path = path
        shutil.copytree(root, self.path, ignore=COPY_IGNORE)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(self.path),
            "PYTHONDONTWRITEBYTECODE": "1",  # never a stale .pyc of the previous mutant
            "DOCKER_HOST": "unix:///nonexistent.sock",  # the pure tier needs no engine; make sure none is used
        }
        self.env.pop("PYTEST_ADDOPTS", None)
        self.process: subprocess.Popen[str] | None = None

    def check_isolated(self) -> None:
        """Make sure the copy is what gets imported, not the editable install of the working tree."""
        probe = f"import {PACKAGE}.plan as m; print(m.__file__)"
        out = subprocess.run(
            [sys.executable, "-c", probe], cwd=self.path, env=self.env, capture_output=True, text=True, check=True
        ).stdout.strip()
        expected = self.path / PACKAGE / "plan.py"
        if Path(out).resolve() != expected.resolve():
            raise SystemExit(f"the copy is not what gets imported: {out} instead of {expected}")

    def pytest(self, tests: Sequence[str], extra: Sequence[str], timeout: float) -> tuple[int | None, str]:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "not engine", *extra, *tests]
        self.process = subprocess.Popen(
            command,
            cwd=self.path,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            encoding="utf-8",
            errors="replace",  # tests of bad input print bytes that are not UTF-8
            start_new_session=True,  # its own process group: a timeout ends pytest and what it started
        )
        try:
            output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            self.process.communicate()
            return None, ""
        finally:
            code = self.process.returncode
            self.process = None
        return code, output

    def stop(self) -> None:
        """End the running pytest and everything it started (its own process group)."""
        process = self.process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    def run(
        self, mutant: Mutant, source: str, stages: Sequence[Sequence[str]], deselect: Sequence[str], timeout: float
    ) -> Outcome:
        """Run the stages of tests in turn (the module's own tests, then the whole tier) until one fails.

        A failure counts only if the failing tests fail again when run alone: a test that passes on the second
        try (a deadline missed on a busy machine) is left out for this mutant and the stage is run again.
        """
        target = self.path / PACKAGE / mutant.module
        original = target.read_text(encoding="utf-8")
        started = time.monotonic()
        flaky: list[str] = []
        target.write_text(source, encoding="utf-8")
        try:
            for tests in stages:
                for _ in range(3):
                    left_out = [f"--deselect={d}" for d in [*deselect, *flaky]]
                    code, output = self.pytest(tests, ["-x", *left_out], timeout)
                    failed = _failed_tests(output) if code == 1 else []
                    if not failed or self.pytest(failed, [], timeout)[0] != 0:
                        break
                    flaky += failed
                if code != 0:
                    break
        finally:
            target.write_text(original, encoding="utf-8")
        seconds = time.monotonic() - started
        note = f" (flaky, left out: {', '.join(flaky)})" if flaky else ""
        if code is None:
            return Outcome(mutant, "timeout", seconds, note.strip())
        if code == 0:
            return Outcome(mutant, "survived", seconds, note.strip())
        if code in (1, 2):  # tests failed, or collection failed (the mutant broke an import)
            failed = _failed_tests(output)
            shown = f"FAILED {failed[0]}" if failed else output.strip()[-200:]
            return Outcome(mutant, "caught", seconds, _one_line(shown, 160) + note)
        raise SystemExit(f"pytest exited {code} for {mutant.id}; the harness is wrong:\n{output[-2000:]}")


def _failed_tests(output: str) -> list[str]:
    """The node ids pytest -q lists as FAILED (``FAILED tests/x.py::test - message``)."""
    return [line[len("FAILED ") :].split(" - ", 1)[0] for line in output.splitlines() if line.startswith("FAILED ")]


def pure_test_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "tests").glob("test_*.py"))


def stages(module: str, files: Sequence[str]) -> list[list[str]]:
    """The module's own test files first (most mutants fail there, quickly), then the whole pure tier."""
    first = [f"tests/{name}" for name in TESTS_FIRST.get(module, ()) if f"tests/{name}" in files]
    return [first, list(files)] if first else [list(files)]


def baseline(workspace: Workspace, files: Sequence[str]) -> tuple[list[str], int, int, float]:
    """Tests that fail without any mutant (they would count every mutant as caught), how many tests ran and
    were skipped (a skip is a test that cannot catch anything), and the tier's time."""
    report = workspace.path / "baseline.xml"
    started = time.monotonic()
    code, output = workspace.pytest(files, [f"--junitxml={report}"], timeout=600)
    seconds = time.monotonic() - started
    if code not in (0, 1) or not report.exists():
        raise SystemExit(f"the pure tier does not run (exit {code}):\n{output[-2000:]}")
    failing = []
    cases = list(ET.parse(report).iter("testcase"))
    skipped = sum(case.find("skipped") is not None for case in cases)
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            path = case.get("classname", "").replace(".", "/")
            failing.append(f"{path}.py::{case.get('name')}")
    report.unlink()
    return failing, len(cases), skipped, seconds


# -- the command ---------------------------------------------------------------------------------------------


def _source_digest(root: Path, modules: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for module in modules:
        digest.update((root / PACKAGE / module).read_bytes())
    return digest.hexdigest()[:12]


def _summary(outcomes: Sequence[Outcome], equivalent: dict[str, str], modules: Sequence[str]) -> list[str]:
    rows = [
        "| module | sampled | caught | survived | equivalent | score | score without equivalent |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def row(name: str, group: Sequence[Outcome]) -> str:
        caught = sum(o.status != "survived" for o in group)
        same = sum(o.status == "survived" and o.mutant.id in equivalent for o in group)
        survived = len(group) - caught - same
        score = f"{100 * caught / len(group):.1f}%" if group else "-"
        real = len(group) - same
        adjusted = f"{100 * caught / real:.1f}%" if real else "-"
        return f"| {name} | {len(group)} | {caught} | {survived} | {same} | {score} | {adjusted} |"

    for module in modules:
        rows.append(row(module, [o for o in outcomes if o.mutant.module == module]))
    rows.append(row("**total**", outcomes))
    return rows


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=300, help="how many mutants to draw (default 300)")
    parser.add_argument("--seed", type=int, default=19, help="the seed of the draw (default 19)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: 10 times the clean run)")
    parser.add_argument("--module", action="append", choices=sorted(PURE_MODULES), help="only these modules")
    parser.add_argument("--list", action="store_true", help="print the sample and exit")
    parser.add_argument("--list-all", action="store_true", help="print every mutant and exit")
    parser.add_argument("--show", metavar="ID", help="print one mutant as a diff and exit")
    parser.add_argument("--only", metavar="ID", action="append", help="run only this mutant (repeatable)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write every outcome to FILE")
    parser.add_argument(
        "--tests", metavar="PYTEST_ARG", nargs="+", help="run these tests (node ids, files) instead of the pure tier"
    )
    parser.add_argument("--summary", metavar="FILE", type=Path, help="summarize a run saved with --json, and exit")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.summary:
        return _summarize_saved(args.summary)
    root: Path = args.root.resolve()
    modules = [m for m in PURE_MODULES if not args.module or m in args.module]

    everything = all_mutants(root, modules)
    chosen = sample(everything, args.sample, args.seed)
    if args.only:
        known = {m.id: m for m in everything}
        missing = [i for i in args.only if i not in known]
        if missing:
            parser.error(f"unknown mutant id(s): {', '.join(missing)} (see --list-all)")
        chosen = [known[i] for i in args.only]
    if args.list or args.list_all:
        for m in everything if args.list_all else chosen:
            print(f"{m.id}\t{m.before}  =>  {m.after}")
        return 0
    if args.show:
        module = args.show.split(":", 1)[0]
        original = ast.unparse(ast.parse((root / PACKAGE / module).read_text(encoding="utf-8"))) + "\n"
        diff = difflib.unified_diff(
            original.splitlines(keepends=True),
            mutated_source(root, args.show).splitlines(keepends=True),
            f"{module} (unparsed)",
            f"{module} ({args.show})",
        )
        sys.stdout.writelines(diff)
        return 0

    equivalent = load_equivalent()
    stale = sorted(set(equivalent) - {m.id for m in everything})
    print(f"mutation sample: {len(chosen)} of {len(everything)} mutants, seed {args.seed}, {args.jobs} at once")
    print(f"modules: {', '.join(modules)} (sources {_source_digest(root, modules)})")
    if stale:
        print(f"warning: listed as equivalent but no such mutant any more: {', '.join(stale)}")
    files = args.tests or pure_test_files(root)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated run cleans up like an interrupted one
    with tempfile.TemporaryDirectory(prefix="ecstask-mutation-") as scratch:
        # Mutants are made from a snapshot: the working tree may change while the run goes on.
        pristine = Path(scratch) / "pristine"
        shutil.copytree(root / PACKAGE, pristine / PACKAGE, ignore=COPY_IGNORE)
        if _source_digest(pristine, modules) != _source_digest(root, modules):
            raise SystemExit("the sources changed while the mutants were drawn; run again")
        # The tests read shared task definitions from beside the project: the copies find them there too.
        if (root.parent / "shared").is_dir():
            (Path(scratch) / "shared").symlink_to(root.parent / "shared")
        spaces = [Workspace(root, Path(scratch) / f"w{i}") for i in range(max(1, args.jobs))]
        spaces[0].check_isolated()
        failing, ran, skipped, clean = baseline(spaces[0], files)
        timeout = args.timeout or max(60.0, 10 * clean)
        print(f"clean pure tier: {ran} tests ({skipped} skipped) in {clean:.1f} s; per-mutant timeout {timeout:.0f} s")
        if failing:
            print(f"failing without any mutant, left out: {', '.join(failing)}")
        free = list(spaces)
        lock = threading.Lock()
        outcomes: list[Outcome] = []

        def one(mutant: Mutant) -> None:
            source = mutated_source(pristine, mutant.id)
            with lock:
                space = free.pop()
            try:
                plan = [list(args.tests)] if args.tests else stages(mutant.module, files)
                outcome = space.run(mutant, source, plan, failing, timeout)
            finally:
                with lock:
                    free.append(space)
            with lock:
                outcomes.append(outcome)
                mark = "EQUIVALENT" if outcome.status == "survived" and mutant.id in equivalent else outcome.status
                print(f"[{len(outcomes):3}/{len(chosen)}] {mark:10} {mutant.id}  {mutant.before}  =>  {mutant.after}")
                sys.stdout.flush()

        pool = ThreadPoolExecutor(max_workers=len(spaces))
        try:
            for future in [pool.submit(one, m) for m in chosen]:
                future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for space in spaces:
                space.stop()
            pool.shutdown(wait=True)
            raise
        pool.shutdown(wait=True)
    order = {m.id: i for i, m in enumerate(chosen)}
    outcomes.sort(key=lambda o: order[o.mutant.id])
    elapsed = time.monotonic() - started
    print()
    print(f"{len(outcomes)} mutants in {elapsed / 60:.1f} min")
    _report(outcomes, equivalent, modules)
    if args.json:
        _save(args.json, outcomes, equivalent, seed=args.seed, population=len(everything), minutes=elapsed / 60)
    return 0


def _report(outcomes: Sequence[Outcome], equivalent: dict[str, str], modules: Sequence[str]) -> None:
    for line in _summary(outcomes, equivalent, modules):
        print(line)
    caught_but_listed = [o.mutant.id for o in outcomes if o.status != "survived" and o.mutant.id in equivalent]
    if caught_but_listed:
        print(f"warning: listed as equivalent but caught (not equivalent): {', '.join(caught_but_listed)}")
    survivors = [o for o in outcomes if o.status == "survived" and o.mutant.id not in equivalent]
    if survivors:
        print("\nsurvivors:")
        for o in survivors:
            print(f"  {o.mutant.id}  {o.mutant.before}  =>  {o.mutant.after}")


def _save(
    path: Path, outcomes: Sequence[Outcome], equivalent: dict[str, str], *, seed: int, population: int, minutes: float
) -> None:
    data = {
        "seed": seed,
        "sample": len(outcomes),
        "population": population,
        "minutes": round(minutes, 1),
        "outcomes": [
            {
                "id": o.mutant.id,
                "status": o.status,
                "equivalent": o.mutant.id in equivalent,
                "seconds": round(o.seconds, 1),
                "before": o.mutant.before,
                "after": o.mutant.after,
                "detail": o.detail,
            }
            for o in outcomes
        ],
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _summarize_saved(path: Path) -> int:
    """The summary of a saved run (--json), with the equivalent mutants as listed now."""
    data = json.loads(path.read_text(encoding="utf-8"))
    outcomes = [
        Outcome(
            Mutant(o["id"], o["id"].split(":", 1)[0], int(o["id"].split(":")[1]), o["before"], o["after"]),
            o["status"],
            o["seconds"],
            o["detail"],
        )
        for o in data["outcomes"]
    ]
    print(f"{len(outcomes)} mutants of {data['population']}, seed {data['seed']}, {data['minutes']} min")
    _report(outcomes, load_equivalent(), [m for m in PURE_MODULES if any(o.mutant.module == m for o in outcomes)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
