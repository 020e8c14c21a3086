"""pytest glue only: the plugin's hooks and fixtures. What they do lives in modules named for it:

- ``settings``: every option, ini key and marker argument, their precedence and their checks;
- ``run``: the run object (session, lease, Docker connection, endpoints, open tasks), made once here;
- ``reporting``: the header line, live progress, report sections, masking, the terminal summary;
- ``xdistsession``: the session id and the session task shared by pytest-xdist's workers;
- ``awsrun``: with ``--ecs-backend=aws``, the run's revisions and tasks on ECS, and its session task under xdist;
- ``commands``: ``--ecs-sweep-orphans`` and ``--ecs-plan``.

Nothing here imports the docker SDK or boto3 at import time, and no Docker connection or AWS client is made
until a test asks for a task: installing the plugin costs a suite that does not use it nothing. The one
exception is a process that runs tests with ``--ecs-reuse`` and a session task: it imports the SDK as pytest
configures it and connects while it collects, so that the kept task is adopted at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ecstask import reporting, settings
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.run import Run, task_options
from pytest_ecstask.settings import MARKER_ARGS as MARKER_ARGS  # what a marker may say, named here as before

if TYPE_CHECKING:
    from pytest_ecstask.task import TaskSource
    from pytest_ecstask.taskview import AnyTask

run_key = pytest.StashKey[Run]()
# Kept for plugins and tests that read the id directly.
session_id_key = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_ecstask import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("ecs_plan"):
        from pytest_ecstask.commands import plan

        return plan(config)
    if config.getoption("ecs_sweep_orphans"):
        from pytest_ecstask.commands import sweep_orphans

        return sweep_orphans(config)
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ecs_task(path, **options): run this task definition for the test; the ecs_task fixture gives it to "
        f"the test. Options: {', '.join(MARKER_ARGS)}",
    )
    if config.option.help:
        return
    try:
        resolved = settings.resolve(config)  # a bad value is a usage error now, not at the first task
        if resolved.backend == "aws":
            from pytest_ecstask.awsrun import check_settings

            check_settings(config, resolved)
        elif resolved.taskdef is not None:
            # A broken task definition is a usage error: said once, before any test runs. Rendered and
            # adjusted as a run would, so a template given with --ecs-var passes.
            from pytest_ecstask.task import load_source

            load_source(resolved.taskdef, options=task_options(config, resolved))
    except EcsTaskError as exc:
        raise pytest.UsageError(str(exc)) from None
    run = Run.begin(config, resolved)
    if resolved.reuse and resolved.taskdef is not None and runs_tests(config):
        run.connect_in_background()  # the kept task is looked at as soon as the first test asks for it
    config.stash[run_key] = run
    config.stash[session_id_key] = run.session_id
    if config.pluginmanager.hasplugin("xdist"):
        from pytest_ecstask.xdistsession import XdistSessionSharing

        config.pluginmanager.register(XdistSessionSharing(run), "ecstask-xdist")


def runs_tests(config: pytest.Config) -> bool:
    """Whether this process runs tests: not with --collect-only, nor pytest-xdist's controller, which hands
    them to its workers."""
    if config.option.collectonly:
        return False
    return hasattr(config, "workerinput") or getattr(config.option, "dist", "no") == "no"


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(run_key, None)
    if run is not None:
        run.end()


def pytest_report_header(config: pytest.Config) -> str | None:
    run = config.stash.get(run_key, None)
    return reporting.header(run) if run is not None else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None:  # the last test (of this process): its teardown removes what the run made
        run = item.config.stash.get(run_key, None)
        if run is not None:
            run.tests_over()


@pytest.hookimpl(trylast=True)  # after pytest's own teardown of session fixtures
def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(run_key, None)
    if run is not None:
        run.finish()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(run_key, None)
    if run is not None:
        reporting.terminal_summary(run, terminalreporter)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    run = item.config.stash.get(run_key, None)
    if run is not None:
        reporting.add_task_sections(run, item, call.when, outcome.get_result())  # type: ignore[attr-defined]


# -- fixtures --------------------------------------------------------------------------------------------


class TaskFactory:
    """Starts tasks inside a test; every one is stopped and removed at the test's teardown."""

    def __init__(self, run: Run, base_dir: Path, credentials: Mapping[str, str] | None, item: pytest.Item) -> None:
        self._run = run
        self._base_dir = base_dir
        self._credentials = credentials
        self._item = item
        self.tasks: list[AnyTask] = []

    def __call__(self, source: TaskSource, **kwargs: Any) -> AnyTask:
        task = self._run.start(source, kwargs, self._base_dir, self._credentials, self._item)
        self.tasks.append(task)
        return task

    def close(self) -> None:
        while self.tasks:
            self._run.close_task(self.tasks.pop())


def _test_dir(request: pytest.FixtureRequest) -> Path:
    path = getattr(request.node, "path", None)
    return Path(path).parent if path is not None else Path(request.config.rootpath)


@pytest.fixture(scope="session")
def ecs_task_credentials() -> Mapping[str, str] | None:
    """Task-role credentials served to containers; override it in a conftest.py to give your own.

    Return a mapping with ``AccessKeyId`` and ``SecretAccessKey`` (``Token`` and ``Expiration``
    optional), or None to fall through to the ini key, STS (``--ecs-assume-role``) or made-up values.
    """
    return None


@pytest.fixture
def ecs_task_factory(request: pytest.FixtureRequest, ecs_task_credentials: Any) -> Iterator[TaskFactory]:
    """Start any number of tasks in a test: ``ecs_task_factory("taskdef.json", images={...})``."""
    factory = TaskFactory(request.config.stash[run_key], _test_dir(request), ecs_task_credentials, request.node)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def ecs_session_wait_for() -> Mapping[str, Any]:
    """Readiness checks for the session task; override it in a conftest.py to give your own.

    Return ``{container name: testcontainers wait strategy}``, as the marker's ``wait_for`` takes; they
    are applied once, after ECS gating, when the session task starts.
    """
    return {}


@pytest.fixture(scope="session")
def ecs_session_task(
    request: pytest.FixtureRequest, ecs_task_credentials: Any, ecs_session_wait_for: Mapping[str, Any]
) -> Iterator[AnyTask]:
    """The task of ``--ecs-taskdef`` / ini ``ecs_taskdef``, started once for the run (xdist workers share it)."""
    run = request.config.stash[run_key]
    path = run.settings.taskdef
    if path is None:
        pytest.fail(
            "the ecs_task fixture needs a task definition: pass --ecs-taskdef=PATH, set the ecs_taskdef ini key, "
            "or mark the test with @pytest.mark.ecs_task(PATH)",
            pytrace=False,
        )
    if not run.is_worker and run.settings.reuse:
        from pytest_ecstask import reuse

        task = reuse.session_task(run, path, {"wait_for": ecs_session_wait_for}, Path.cwd(), ecs_task_credentials)
        yield task
        reuse.keep(run, task, path)
        return
    if not run.is_worker:
        started = run.start(path, {"wait_for": ecs_session_wait_for}, Path.cwd(), ecs_task_credentials)
        yield started
        run.close_task(started)
        return
    if run.settings.backend == "aws":
        from pytest_ecstask.awsrun import shared_session_task as shared_on_ecs

        on_ecs = shared_on_ecs(run, path, ecs_session_wait_for)
        yield on_ecs
        on_ecs.close()  # stops following it; the controller stops it once every worker is done
        return
    from pytest_ecstask.xdistsession import shared_session_task

    task = shared_session_task(run, path, ecs_task_credentials, ecs_session_wait_for)
    yield task
    task.close()  # stops following it; the controller removes it once every worker is done


@pytest.fixture
def ecs_task(request: pytest.FixtureRequest, ecs_task_credentials: Any) -> Iterator[AnyTask]:
    """The test's task: its own when marked ``@pytest.mark.ecs_task(path, ...)``, else the session's."""
    marker = request.node.get_closest_marker("ecs_task")
    if marker is None:
        task = request.getfixturevalue("ecs_session_task")
        reporting.used_by(request.node, task)
        yield task
        return
    if not marker.args:
        pytest.fail("@pytest.mark.ecs_task needs the task definition path as its first argument", pytrace=False)
    run = request.config.stash[run_key]
    task = run.start(marker.args[0], marker.kwargs, _test_dir(request), ecs_task_credentials, request.node)
    yield task
    run.close_task(task)
