"""What shares one run's session and its session task between pytest-xdist's controller and workers.

The controller hands its session id and lease to every worker, so one run is one owner. The first worker
that asks for the session task starts it, under a file lock, and writes a record of it in the run's shared
folder; the other workers take it up from that record. Only the controller removes it, at the end of the
run, once every worker is done.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ecstask import reporting
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.lifecycle import write_private

if TYPE_CHECKING:
    from pytest_ecstask.run import Run
    from pytest_ecstask.task import Task


class XdistSessionSharing:
    """Registered at the controller when xdist is installed: each worker gets the run's session and lease."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["ecstask_session"] = self.run.session_id
        node.workerinput["ecstask_lease"] = self.run.owner.lease
        # The controller holds the lease, so it keeps the run's sentinel, from the first worker's Docker use.
        if self.run.settings.backend != "aws":  # on ECS the lease alone tells a sweep that the run lives
            self.run.watch_for_docker_use()


def controller_session(config: pytest.Config) -> tuple[str, str] | None:
    """In a worker, the controller's session id and lease path; None elsewhere."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or "ecstask_session" not in workerinput:
        return None
    return str(workerinput["ecstask_session"]), str(workerinput["ecstask_lease"])


def shared_session_task(
    run: Run, path: Path, fixture_credentials: Mapping[str, str] | None, wait_for: Mapping[str, Any]
) -> Task:
    """The first worker to get here starts the task, under a file lock; the others take it up."""
    from filelock import FileLock

    failure = None
    try:
        run.engine()
    except EcsTaskError as exc:
        failure = str(exc)
    if failure is not None:  # outside the except block: the report shows the message alone
        pytest.fail(failure, pytrace=False)
    record_path = run.session_dir / "session-task.json"
    with FileLock(str(run.session_dir / "session-task.lock"), thread_local=False):
        if record_path.exists():
            task, failure = _take_up(run, json.loads(record_path.read_text()))
        else:
            task, failure = _start_first(run, path, record_path, fixture_credentials, wait_for)
    if failure is not None or task is None:  # outside the except block: the report shows the message alone
        pytest.fail(str(failure), pytrace=False)
    return task


def _take_up(run: Run, record: Mapping[str, Any]) -> tuple[Task | None, str | None]:
    """The task another worker started, or why it cannot be had."""
    if "error" in record:
        return None, str(record["error"])  # its start failed in another worker
    try:
        return session_task_from(run, record, owned=False), None
    except EcsTaskError as exc:
        return None, str(exc)


def _start_first(
    run: Run,
    path: Path,
    record_path: Path,
    fixture_credentials: Mapping[str, str] | None,
    wait_for: Mapping[str, Any],
) -> tuple[Task | None, str | None]:
    """Start the session task here, recording it (or its failure) for the other workers."""
    import secrets

    from pytest_ecstask.lifecycle import new_task_id, now_rfc3339

    if run.settings.reuse:
        return _reuse_first(run, path, record_path, fixture_credentials, wait_for)

    record = {"source": str(path), "task_id": new_task_id(), "created": now_rfc3339(), "secret": secrets.token_hex(16)}
    try:
        task = session_task_from(run, record, owned=None, fixture_credentials=fixture_credentials, wait_for=wait_for)
        write_private(record_path, json.dumps(record))  # before starting: the controller removes a half start
        reporting.forward_events(run.config, task)
        run.swept()
        task.start()
    except EcsTaskError as exc:
        write_private(record_path, json.dumps({"error": str(exc)}))
        return None, str(exc)
    # Removal is the controller's: the worker that started it may finish before the others.
    task._runner.hand_over_removal()
    return task, None


def _reuse_first(
    run: Run,
    path: Path,
    record_path: Path,
    fixture_credentials: Mapping[str, str] | None,
    wait_for: Mapping[str, Any],
) -> tuple[Task | None, str | None]:
    """--ecs-reuse: adopt the kept task or start one (see pytest_ecstask.reuse), recorded for the others;
    the controller keeps it at the end."""
    from pytest_ecstask import reuse
    from pytest_ecstask.endpoints import info_record

    try:
        task = reuse.session_task(run, path, {"wait_for": wait_for}, Path.cwd(), fixture_credentials)
    except pytest.fail.Exception as exc:  # the others fail with the same message instead of trying again
        write_private(record_path, json.dumps({"error": str(exc.msg)}))
        return None, str(exc.msg)
    options = task.plan.options
    pull_started, pull_stopped = task._pull_times
    write_private(
        record_path,
        json.dumps(
            {
                "source": str(path),
                **{"task_id": task.id, "created": options.created, "secret": options.secret},
                **{"pull_started": pull_started, "pull_stopped": pull_stopped},
                "kept": bool(task.plan.options.owner.reuse),
                # An adopted task's server is the one that kept serving it, not the run's.
                "server": info_record(task.endpoint) if task.endpoint is not None else None,
            }
        ),
    )
    task._runner.hand_over_removal()
    return task, None


def session_task_from(
    run: Run,
    record: Mapping[str, Any],
    owned: bool | None,
    fixture_credentials: Mapping[str, str] | None = None,
    wait_for: Mapping[str, Any] | None = None,
) -> Task:
    """The session task's plan, rebuilt from its record; ``owned`` None = about to be started here."""
    from pytest_ecstask.endpoints import info_from_record
    from pytest_ecstask.task import create_task

    options = run.task_options({"wait_for": wait_for or {}}, fixture_credentials)
    task = create_task(
        record["source"],
        options,
        owner=run.owner,
        # No sweep when the controller removes it at the end: the workers' first use of Docker swept.
        engine=run.engine() if owned is not True else run.connections.engine(),
        task_id=record["task_id"],
        created=record["created"],
        secret=record["secret"],
        started_elsewhere=owned is not None,
        served_by=info_from_record(record.get("server")),
    )
    if owned is not None:
        task._runner.attach(owned=owned)
        if not owned:
            task.load_credentials_from_endpoint()
    return task


def remove_session_task(run: Run) -> None:
    """At the controller, at the end of the run: the session task the workers shared, in its stop order."""
    import warnings

    from pytest_ecstask.run import deferred_interrupts

    record_path = run.session_dir / "session-task.json"
    if not record_path.exists():
        return
    record = json.loads(record_path.read_text())
    if "task_id" not in record:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # endpoint warnings were given when the task started
            task = session_task_from(run, record, owned=True)
    except Exception as exc:
        # The removal by label that follows still removes it, without the ordered stop.
        reporting.warn(
            run.config, f"ecstask: the session task is removed without its stop order: {type(exc).__name__}: {exc}"
        )
        return
    if run.settings.reuse:
        from pytest_ecstask import reuse

        task._pull_times = (str(record.get("pull_started", "")), str(record.get("pull_stopped", "")))
        reuse.keep(run, task, Path(record["source"]), kept=bool(record.get("kept", True)))
        return
    with deferred_interrupts(reraise=False):
        task.close()
    reporting.write_log_dir(run, task)
    reporting.record_stop_kills(run, task)
