"""pytest glue only: options and ini keys, the marker, the fixtures, the report header.

Nothing here imports the docker SDK at import time, and no Docker connection is opened until a test asks
for a task: installing the plugin costs a suite that does not use it nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import pytest

from pytest_ecstask.errors import EcsTaskError, TaskDefinitionError
from pytest_ecstask.lifecycle import SESSION_ENV, new_session_id

if TYPE_CHECKING:
    from pytest_ecstask.task import Task, TaskOptions, TaskSource

MARKER_ARGS = ("images", "pull", "stop_timeout", "start_timeout", "check")
DEFAULT_START_TIMEOUT = 300.0

session_id_key = pytest.StashKey[str]()
open_tasks_key = pytest.StashKey[list["Task"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ecstask", "run an Amazon ECS task definition on Docker")
    group.addoption(
        "--ecs-taskdef",
        metavar="PATH",
        help="task definition (JSON) for the session-scoped ecs_task fixture. ini: ecs_taskdef",
    )
    group.addoption(
        "--ecs-pull",
        choices=("missing", "always", "never"),
        help="when to pull a task's images: missing (default), always, never. ini: ecs_pull",
    )
    group.addoption(
        "--ecs-image",
        action="append",
        default=[],
        metavar="NAME=LOCAL",
        help="run LOCAL wherever a task definition names image NAME (exact, or a glob like '*/app:*'); "
        "repeatable. ini: ecs_images",
    )
    group.addoption(
        "--ecs-stop-timeout",
        metavar="SECONDS",
        help="seconds between SIGTERM and SIGKILL for every container, instead of each stopTimeout "
        "(ECS default 30). ini: ecs_stop_timeout",
    )
    group.addoption(
        "--ecs-start-timeout",
        metavar="SECONDS",
        help=f"how long a dependent waits for a dependency without startTimeout (default {DEFAULT_START_TIMEOUT:g}; "
        "0 = no limit, as in ECS). ini: ecs_start_timeout",
    )
    parser.addini("ecs_taskdef", "task definition for the session-scoped ecs_task fixture (relative to the ini file)")
    parser.addini("ecs_pull", "when to pull images: missing, always, never", default="missing")
    parser.addini("ecs_images", "image mappings, one NAME=LOCAL a line", type="linelist", default=[])
    parser.addini("ecs_stop_timeout", "seconds between SIGTERM and SIGKILL for every container", default="")
    parser.addini("ecs_start_timeout", "default wait for a dependency's condition (0 = no limit)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ecs_task(path, *, images=None, pull=None, stop_timeout=None, start_timeout=None, check=True): "
        "run this task definition for the test; the ecs_task fixture gives it to the test",
    )
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "ecstask_session" in workerinput:
        session_id = str(workerinput["ecstask_session"])
    else:
        session_id = os.environ.get(SESSION_ENV) or new_session_id()
    config.stash[session_id_key] = session_id
    config.stash[open_tasks_key] = []
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistSessionSharing(), "ecstask-xdist")
    if config.option.help:
        return
    try:
        task_options(config, {})  # a bad option value is a usage error now, not when the first task starts
    except EcsTaskError as exc:
        raise pytest.UsageError(str(exc)) from None
    path = _session_taskdef_path(config)
    if path is not None:
        # A broken task definition is a usage error: said once, before any test runs.
        from pytest_ecstask.taskdef import load_task_definition

        try:
            load_task_definition(path)
        except TaskDefinitionError as exc:
            raise pytest.UsageError(str(exc)) from None


class XdistSessionSharing:
    """Hands the controller's session id to every xdist worker, so one run has one id."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["ecstask_session"] = node.config.stash[session_id_key]


def pytest_report_header(config: pytest.Config) -> str:
    path = _session_taskdef_path(config)
    where = f", taskdef {path}" if path else ""
    return f"ecstask: session {config.stash[session_id_key]}{where}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A safety net behind the fixtures' own teardown (an interrupted setup, a task a test never closed).
    for task in reversed(session.config.stash.get(open_tasks_key, [])):
        try:
            task.close()
        except Exception as exc:
            session.config.get_terminal_writer().line(f"ecstask: could not remove task {task.id}: {exc}", red=True)
    session.config.stash[open_tasks_key] = []


# -- settings: marker > command line > ini > default ---------------------------------------------------


def _session_taskdef_path(config: pytest.Config) -> Optional[Path]:
    given = config.getoption("ecs_taskdef")
    if given:
        return Path(config.invocation_params.dir, given)
    ini = config.getini("ecs_taskdef")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return Path(base, str(ini))
    return None


def _parse_seconds(value: Any, what: str) -> Optional[float]:
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise EcsTaskError(f"{what}: {value!r} is not a number of seconds") from None
    if seconds < 0:
        raise EcsTaskError(f"{what}: {value!r} must not be negative")
    return seconds


def parse_image_mappings(entries: list[str], what: str) -> dict[str, str]:
    mappings = {}
    for entry in entries:
        name, sep, local = entry.partition("=")
        if not sep or not name.strip() or not local.strip():
            raise EcsTaskError(f"{what}: {entry!r} is not NAME=LOCAL")
        mappings[name.strip()] = local.strip()
    return mappings


def task_options(config: pytest.Config, marker_kwargs: Mapping[str, Any]) -> TaskOptions:
    from pytest_ecstask.task import TaskOptions

    unknown = sorted(set(marker_kwargs) - set(MARKER_ARGS))
    if unknown:
        raise EcsTaskError(f"ecs_task: unknown argument(s) {', '.join(unknown)}; known: {', '.join(MARKER_ARGS)}")
    # Highest precedence first: for an exact name and for the first matching glob alike.
    images: dict[str, str] = {}
    for source in (
        dict(marker_kwargs.get("images") or {}),
        parse_image_mappings(config.getoption("ecs_image"), "--ecs-image"),
        parse_image_mappings(list(config.getini("ecs_images")), "ini ecs_images"),
    ):
        for name, local in source.items():
            images.setdefault(name, local)
    pull = marker_kwargs.get("pull") or config.getoption("ecs_pull") or config.getini("ecs_pull") or "missing"
    if pull not in ("missing", "always", "never"):
        raise EcsTaskError(f"pull policy {pull!r} is not one of missing, always, never (--ecs-pull, ini ecs_pull)")

    def seconds(key: str) -> Optional[float]:
        if marker_kwargs.get(key) is not None:
            return _parse_seconds(marker_kwargs[key], f"ecs_task({key}=...)")
        option = config.getoption(f"ecs_{key}")
        if option not in (None, ""):
            return _parse_seconds(option, f"--ecs-{key.replace('_', '-')}")
        return _parse_seconds(config.getini(f"ecs_{key}"), f"ini ecs_{key}")

    start_timeout = seconds("start_timeout")
    if start_timeout is None:
        start_timeout = DEFAULT_START_TIMEOUT
    return TaskOptions(
        images=images,
        pull=str(pull),
        stop_timeout=seconds("stop_timeout"),
        start_timeout=start_timeout or None,  # 0 = no limit
        check=bool(marker_kwargs.get("check", True)),
    )


# -- fixtures --------------------------------------------------------------------------------------------


class TaskFactory:
    """Starts tasks inside a test; every one is stopped and removed at the test's teardown."""

    def __init__(self, config: pytest.Config, base_dir: Path) -> None:
        self._config = config
        self._base_dir = base_dir
        self.tasks: list[Task] = []

    def __call__(self, source: TaskSource, **kwargs: Any) -> Task:
        return _start(self._config, source, kwargs, self._base_dir, self.tasks)

    def close(self) -> None:
        errors = []
        while self.tasks:
            task = self.tasks.pop()
            try:
                _close(self._config, task)
            except Exception as exc:
                errors.append(f"task {task.id}: {exc}")
        if errors:
            raise EcsTaskError("could not remove every task: " + "; ".join(errors))


def _start(
    config: pytest.Config, source: TaskSource, kwargs: Mapping[str, Any], base_dir: Path, owned: list[Task]
) -> Task:
    from pytest_ecstask.task import create_task

    try:
        task = create_task(
            source, task_options(config, kwargs), session_id=config.stash[session_id_key], base_dir=base_dir
        )
        # Tracked before anything exists on the engine, so an interrupted start is still cleaned up.
        owned.append(task)
        config.stash[open_tasks_key].append(task)
        return task.start()
    except EcsTaskError as exc:
        message = str(exc)
    # Outside the except block, so the report shows our message alone, not a chained traceback.
    pytest.fail(message, pytrace=False)


def _close(config: pytest.Config, task: Task) -> None:
    open_tasks = config.stash[open_tasks_key]
    try:
        task.close()
    finally:
        if task in open_tasks:
            open_tasks.remove(task)


def _test_dir(request: pytest.FixtureRequest) -> Path:
    path = getattr(request.node, "path", None)
    return Path(path).parent if path is not None else Path(request.config.rootpath)


@pytest.fixture
def ecs_task_factory(request: pytest.FixtureRequest) -> Iterator[TaskFactory]:
    """Start any number of tasks in a test: ``ecs_task_factory("taskdef.json", images={...})``."""
    factory = TaskFactory(request.config, _test_dir(request))
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def ecs_session_task(request: pytest.FixtureRequest) -> Iterator[Task]:
    """The task of ``--ecs-taskdef`` / ini ``ecs_taskdef``, started once for the session."""
    path = _session_taskdef_path(request.config)
    if path is None:
        pytest.fail(
            "the ecs_task fixture needs a task definition: pass --ecs-taskdef=PATH, set the ecs_taskdef ini key, "
            "or mark the test with @pytest.mark.ecs_task(PATH)",
            pytrace=False,
        )
    owned: list[Task] = []
    task = _start(request.config, path, {}, Path.cwd(), owned)
    yield task
    _close(request.config, task)


@pytest.fixture
def ecs_task(request: pytest.FixtureRequest) -> Iterator[Task]:
    """The test's task: its own when marked ``@pytest.mark.ecs_task(path, ...)``, else the session's."""
    marker = request.node.get_closest_marker("ecs_task")
    if marker is None:
        yield request.getfixturevalue("ecs_session_task")
        return
    if not marker.args:
        pytest.fail("@pytest.mark.ecs_task needs the task definition path as its first argument", pytrace=False)
    owned: list[Task] = []
    task = _start(request.config, marker.args[0], marker.kwargs, _test_dir(request), owned)
    yield task
    _close(request.config, task)
