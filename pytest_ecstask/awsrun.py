"""The AWS backend's part of a run: its connection to AWS, the revisions it registered, the tasks it started.

The run makes one :class:`EcsRun` on its first task with ``--ecs-backend=aws``. Each distinct task definition
(templates filled, hooks and overrides applied, images mapped) is registered once per process, and its
revision reused by every task of it; each task is stopped at its test's teardown (StopTask), and at the end of
the run every revision the process registered is deregistered, then deleted. Under xdist the first worker
that asks for the session task starts it, the others follow it, and the controller stops it at the end.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ecstask import reporting
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.lifecycle import private_dir, write_private

if TYPE_CHECKING:
    from pytest_ecstask.awstask import AwsTask
    from pytest_ecstask.ecsbackend import EcsBackend
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.run import Run
    from pytest_ecstask.settings import Settings
    from pytest_ecstask.task import TaskSource

# In the run's shared folder: the session task a worker started, for the other workers and the controller.
SESSION_RECORD = "ecs-session-task.json"
SESSION_LOCK = "ecs-session-task.lock"
NOT_WITH_AWS = {
    "keep": "--ecs-keep (ini ecs_keep)",
    "reuse": "--ecs-reuse (ini ecs_reuse)",
}


def check_settings(config: pytest.Config, settings: Settings) -> None:
    """When pytest starts: what --ecs-backend=aws cannot do, boto3, and the session task's requests."""
    from pytest_ecstask.ecsbackend import BOTO3_MISSING, boto3_installed

    given = [flag for name, flag in NOT_WITH_AWS.items() if getattr(settings, name)]
    if given:
        raise EcsTaskError(
            f"{' and '.join(given)}: not with --ecs-backend=aws, which stops every task it starts and removes "
            "every revision it registers at the end of the run; leave it out, or run on Docker"
        )
    if not boto3_installed():
        raise EcsTaskError(BOTO3_MISSING)
    if settings.taskdef is not None:
        from pytest_ecstask.commands import aws_planned

        aws_planned(config, settings)  # what ECS would refuse in the session task's requests, said now


class EcsRun:
    """One process's connection to ECS, its registered revisions and its open tasks."""

    def __init__(self, run: Run, backend: EcsBackend | None = None) -> None:
        self.run = run
        self._backend = backend
        self.revisions: dict[str, tuple[str, int]] = {}  # the request, as JSON -> (ARN, revision)
        self.open_tasks: list[AwsTask] = []
        self._lock = threading.Lock()

    @property
    def backend(self) -> EcsBackend:
        from pytest_ecstask.ecsbackend import EcsBackend

        with self._lock:
            if self._backend is None:
                self._backend = EcsBackend()
            return self._backend

    def register(self, request: Mapping[str, Any]) -> tuple[str, int]:
        """The revision of this exact request: registered on first use, then reused."""
        key = json.dumps(request, sort_keys=True)
        with self._lock:
            known = self.revisions.get(key)
        if known is not None:
            return known
        registered = self.backend.register_task_definition(request)
        with self._lock:
            self.revisions[key] = registered
        return registered

    def create_task(
        self, source: TaskSource, options: TaskOptions, base_dir: Path | None, follow: Mapping[str, Any] | None = None
    ) -> AwsTask:
        """A task of the source's revision, registered if need be, not started. ``follow``: the record of a
        task another process started (its ARN and revision), to follow rather than start."""
        from pytest_ecstask.awstask import AwsTask
        from pytest_ecstask.ecsrequests import build_requests, family, run_task
        from pytest_ecstask.lifecycle import host_id
        from pytest_ecstask.task import load_source

        settings = self.run.settings
        taskdef = load_source(source, base_dir=base_dir, options=options)
        host = host_id()
        requests = build_requests(taskdef, options.images, settings, self.run.session_id, host)
        if follow is not None:
            revision = str(follow["task_definition"])
        else:
            revision = f"{family(taskdef, settings)}:{self.register(requests.register_task_definition)[1]}"
        run_request = run_task(taskdef, settings, self.run.session_id, revision, host)
        images = {str(c["name"]): str(c["image"]) for c in requests.register_task_definition["containerDefinitions"]}
        return AwsTask(
            self.backend,
            taskdef,
            run_request,
            options,
            images=images,
            public_ip=settings.aws_public_ip,
            task_arn=None if follow is None else str(follow["arn"]),
        )

    def start_task(
        self, source: TaskSource, arguments: Mapping[str, Any], base_dir: Path, item: pytest.Item | None
    ) -> AwsTask:
        """A started task (RUNNING, or STOPPED with ``check=False``); EcsTaskError says why not."""
        task = self.create_task(source, self.run.task_options(arguments), base_dir)
        self.open_tasks.append(task)  # before RunTask: an interrupted start is still stopped
        reporting.used_by(item, task)
        reporting.forward_events(self.run.config, task)
        with reporting.live_progress(self.run.config, task):
            task.start()
        reporting.record_startup(self.run, task)
        return task

    def close_task(self, task: AwsTask) -> None:
        """StopTask (a failure is a warning: the sweep finds the task by its tags), then --ecs-log-dir."""
        if task in self.open_tasks:
            self.open_tasks.remove(task)
        try:
            task.close()
        except EcsTaskError as exc:
            reporting.warn(self.run.config, f"ecstask: could not stop task {task.id}: {exc}")
        reporting.write_log_dir(self.run, task)

    def finish(self) -> None:
        """Stop what is still open, then deregister and delete every revision this process registered."""
        for task in reversed(self.open_tasks):
            self.close_task(task)
        arns = [arn for arn, _ in self.revisions.values()]
        deregistered = []
        for arn in arns:
            try:
                self.backend.deregister_task_definition(arn)
                deregistered.append(arn)
            except EcsTaskError as exc:
                reporting.warn(self.run.config, f"ecstask: could not deregister {arn}: {exc}")
        try:
            failures = self.backend.delete_task_definitions(deregistered)
        except EcsTaskError as exc:
            failures = [(", ".join(deregistered), str(exc))]
        for arn, why in failures:
            reporting.warn(self.run.config, f"ecstask: could not delete {arn} (it is deregistered): {why}")
        self.revisions.clear()


def finish_run(run: Run) -> None:
    """At the end of a run on ECS: this process's tasks and revisions; at an xdist controller, the session
    task its workers shared."""
    if run.ecs_started is not None:
        run.ecs_started.finish()
    if run.is_worker:
        return
    record = _read_record(run.session_dir / SESSION_RECORD)
    if record is None or "arn" not in record:
        return
    try:
        run.ecs.backend.stop_task(str(record["cluster"]), str(record["arn"]), "pytest-ecstask: the run is over")
    except EcsTaskError as exc:
        reporting.warn(run.config, f"ecstask: could not stop the session task {record['arn']}: {exc}")


# -- the session task under xdist ------------------------------------------------------------------------


def shared_session_task(run: Run, path: Path, wait_for: Mapping[str, Any]) -> AwsTask:
    """The first worker to get here starts the session task, under a file lock; the others follow it."""
    from filelock import FileLock

    private_dir(run.session_dir)
    record_path = run.session_dir / SESSION_RECORD
    with FileLock(str(run.session_dir / SESSION_LOCK), thread_local=False):
        record = _read_record(record_path)
        try:
            if record is None:
                return _start_first(run, path, wait_for, record_path)
            if "error" in record:
                raise EcsTaskError(str(record["error"]))  # its start failed in another worker
            task = run.ecs.create_task(record["source"], run.task_options({}), Path.cwd(), follow=record)
            task.start()  # a task followed is only described
            return task
        except EcsTaskError as exc:
            message = str(exc)
    pytest.fail(message, pytrace=False)  # outside the except block: the report shows the message alone


def _start_first(run: Run, path: Path, wait_for: Mapping[str, Any], record_path: Path) -> AwsTask:
    task = run.ecs.create_task(path, run.task_options({"wait_for": wait_for}), Path.cwd())
    reporting.forward_events(run.config, task)

    def record(arn: str) -> None:  # as soon as RunTask answers: the controller stops it, started or not
        shared = {"source": str(path), "arn": arn, "cluster": task.cluster, "task_definition": task.task_definition}
        write_private(record_path, json.dumps(shared))

    try:
        task.start(started=record)
    except EcsTaskError as exc:
        write_private(record_path, json.dumps({"error": str(exc)}))
        raise
    task.owned = False  # the controller stops it, once every worker is done
    return task


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
