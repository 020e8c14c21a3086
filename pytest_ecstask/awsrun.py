"""The AWS backend's part of a run: its connection to AWS, the revisions it registered, the tasks it started.

The run makes one :class:`EcsRun` on its first task with ``--ecs-backend=aws``. Each distinct task definition
(templates filled, hooks and overrides applied, images mapped) is registered once per process, and its
revision reused by every task of it; each task is stopped at its test's teardown (StopTask), and at the end of
the run every revision the process registered is deregistered, then deleted. While a process has tasks or
revisions on ECS, a heartbeat tags them with the time every few minutes, so that another host's sweep, which
cannot ask the run's lease, sees the run alive however long it lasts.

Under xdist the first worker that asks for the session task starts it, the others follow it, and the
controller stops it at the end; each worker notes the revisions it registers in the run's shared folder until
it has removed them. At the end the controller stops every task of the session still running (a crashed
worker's, too) and removes the revisions left in that note.
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
from pytest_ecstask.run import deferred_interrupts

if TYPE_CHECKING:
    from pytest_ecstask.awstask import AwsTask
    from pytest_ecstask.ecsbackend import EcsBackend
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.run import Run
    from pytest_ecstask.settings import Settings
    from pytest_ecstask.task import TaskSource

# In the run's shared folder: the session task a worker started, for the other workers and the controller;
# and the revisions the processes registered and have not removed yet, one ARN a line, for the controller.
SESSION_RECORD = "ecs-session-task.json"
SESSION_LOCK = "ecs-session-task.lock"
REVISIONS_RECORD = "ecs-revisions.txt"
REVISIONS_LOCK = "ecs-revisions.lock"
NOT_WITH_AWS = {
    "keep": "--ecs-keep (ini ecs_keep)",
    "reuse": "--ecs-reuse (ini ecs_reuse)",
}
# Seconds between two heartbeats (the pytest-ecstask.alive tag): well under --ecs-orphan-age's two hours.
HEARTBEAT_EVERY = 300.0
# --ecs-log-dir: how long the end of a test waits for its task to be STOPPED (its containers' last lines in
# CloudWatch Logs) before it reads the logs.
LOG_DIR_STOP_WAIT = 60.0


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
        self.open_tasks: list[AwsTask] = []  # started here and not stopped yet
        self.shared_tasks: list[AwsTask] = []  # started here for the other workers: the controller stops them
        self._lock = threading.Lock()
        self._registering: dict[str, threading.Lock] = {}  # per request: one RegisterTaskDefinition at a time
        self._heartbeat: threading.Thread | None = None
        self._over = threading.Event()
        self._heartbeat_failed = False

    @property
    def backend(self) -> EcsBackend:
        from pytest_ecstask.ecsbackend import EcsBackend

        with self._lock:
            if self._backend is None:
                self._backend = EcsBackend()
            return self._backend

    def register(self, request: Mapping[str, Any]) -> tuple[str, int]:
        """The revision of this exact request: registered on first use, then reused (by every thread)."""
        key = json.dumps(request, sort_keys=True)
        with self._lock:
            registering = self._registering.setdefault(key, threading.Lock())
        with registering:
            with self._lock:
                known = self.revisions.get(key)
            if known is not None:
                return known
            registered = self.backend.register_task_definition(request)
            with self._lock:
                self.revisions[key] = registered
        _note_revisions(self.run.session_dir, add=[registered[0]])
        self.keep_alive()
        return registered

    def create_task(
        self, source: TaskSource, options: TaskOptions, base_dir: Path | None, follow: Mapping[str, Any] | None = None
    ) -> AwsTask:
        """A task of the source's revision, registered if need be, not started. ``follow``: the record of a
        task another process started (its ARN and revision), to follow rather than start."""
        from pytest_ecstask.awstask import AwsTask
        from pytest_ecstask.ecsrequests import build_requests, family, fits_a_tag, run_task
        from pytest_ecstask.lifecycle import host_id, owner
        from pytest_ecstask.task import load_source

        settings = self.run.settings
        taskdef = load_source(source, base_dir=base_dir, options=options)
        # The tags a sweep on this host judges the run by, as the Docker labels carry them; a lease path ECS
        # takes in no tag is left out (the sweep then looks in its own lease directory, and asks the process).
        lease = self.run.owner.lease if fits_a_tag(self.run.owner.lease) else ""
        host, process = host_id(), owner()
        requests = build_requests(
            taskdef, options.images, settings, self.run.session_id, host, lease=lease, owner=process
        )
        if follow is not None:
            revision = str(follow["task_definition"])
        else:
            revision = f"{family(taskdef, settings)}:{self.register(requests.register_task_definition)[1]}"
        run_request = run_task(taskdef, settings, self.run.session_id, revision, host, lease=lease, owner=process)
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
        """A started task (RUNNING, or stopped with ``check=False``); EcsTaskError says why not."""
        task = self.create_task(source, self.run.task_options(arguments), base_dir)
        with self._lock:
            self.open_tasks.append(task)  # before RunTask: an interrupted start is still stopped
        reporting.used_by(item, task)
        reporting.forward_events(self.run.config, task)
        with reporting.live_progress(self.run.config, task):
            task.start()
        reporting.record_startup(self.run, task)
        return task

    def close_task(self, task: AwsTask, finishing: bool = False) -> None:
        """StopTask (a failure is a warning, and the end of the run tries again; the sweep finds the task by
        its tags), then --ecs-log-dir. ``finishing``: at the end of the run, Ctrl-C only waits."""
        with deferred_interrupts(reraise=not finishing):
            try:
                task.close()
            except EcsTaskError as exc:
                reporting.warn(self.run.config, f"ecstask: could not stop task {task.id}: {exc}")
                stopped = False
            else:
                stopped = True
                with self._lock:
                    if task in self.open_tasks:
                        self.open_tasks.remove(task)
            if self.run.settings.log_dir is not None:
                self._write_log_dir(task, stopped and task.owned and bool(task.arn))

    def _write_log_dir(self, task: AwsTask, stopping: bool) -> None:
        """The logs, once the task is STOPPED (``stopping``: it was asked to stop): its containers' last lines
        have been sent by then."""
        if stopping:
            try:
                task.wait(LOG_DIR_STOP_WAIT)
            except (TimeoutError, EcsTaskError) as exc:
                reporting.warn(self.run.config, f"ecstask: --ecs-log-dir: task {task.id}'s logs may miss lines: {exc}")
        reporting.write_log_dir(self.run, task)

    def share(self, task: AwsTask) -> None:
        """A task started here that the controller stops (the xdist session task): the heartbeat tags it."""
        with self._lock:
            self.shared_tasks.append(task)

    def keep_alive(self) -> None:
        """Start the heartbeat, once: from the first revision registered until the end of the process."""
        with self._lock:
            if self._heartbeat is not None or self._over.is_set():
                return
            self._heartbeat = threading.Thread(target=self._beat_until_over, name="ecstask-heartbeat", daemon=True)
            self._heartbeat.start()

    def _beat_until_over(self) -> None:
        while not self._over.wait(HEARTBEAT_EVERY):
            for arn, why in self.beat():
                if not self._heartbeat_failed:  # said once, in the terminal summary
                    self._heartbeat_failed = True
                    self.run.notes.append(f"could not tag {arn} with the run's heartbeat: {why}")

    def beat(self, now: str | None = None) -> list[tuple[str, str]]:
        """Tag the tasks this process keeps on ECS and the revisions it registered with the time (``now``, a
        UTC time in RFC 3339, else the current one); returns the ARNs that could not be tagged, and why."""
        from pytest_ecstask.ecsrequests import ALIVE_TAG
        from pytest_ecstask.lifecycle import now_rfc3339

        stamp = now or now_rfc3339()
        with self._lock:
            tasks = [t.arn for t in [*self.open_tasks, *self.shared_tasks] if t.arn]
            arns = tasks + [arn for arn, _ in self.revisions.values()]
        failed = []
        for arn in arns:
            try:
                self.backend.tag_resource(arn, {ALIVE_TAG: stamp})
            except EcsTaskError as exc:
                failed.append((arn, str(exc)))
        return failed

    def finish(self) -> None:
        """Stop what is still open, then deregister and delete every revision this process registered."""
        self._over.set()  # the heartbeat ends: the run's end removes what it kept alive
        with deferred_interrupts(reraise=False):
            with self._lock:
                still_open = list(reversed(self.open_tasks))
            for task in still_open:
                self.close_task(task, finishing=True)
            arns = [arn for arn, _ in self.revisions.values()]
            removed = remove_revisions(self.run.config, self.backend, arns) if arns else []
            _note_revisions(self.run.session_dir, remove=removed)
            self.revisions.clear()


def remove_revisions(config: pytest.Config, backend: EcsBackend, arns: list[str]) -> list[str]:
    """Deregister, then delete; a failure is a warning. Returns the ARNs gone (deregistered, at least)."""
    deregistered = []
    for arn in arns:
        try:
            backend.deregister_task_definition(arn)
            deregistered.append(arn)
        except EcsTaskError as exc:
            reporting.warn(config, f"ecstask: could not deregister {arn}: {exc}")
    try:
        failures = backend.delete_task_definitions(deregistered)
    except EcsTaskError as exc:
        failures = [(", ".join(deregistered), str(exc))]
    for arn, why in failures or []:  # None: ECS here deletes no revision
        reporting.warn(
            config,
            f"ecstask: could not delete {arn} (deregistered, so inactive): {why}. "
            "pytest --ecs-sweep-orphans --ecs-backend=aws tries again once this run is over",
        )
    return deregistered


def finish_run(run: Run) -> None:
    """At the end of a run on ECS: this process's tasks and revisions; at an xdist controller, what its
    workers left: the session task, the session's tasks still running, the revisions noted in the shared
    folder. Ctrl-C waits until it is done."""
    with deferred_interrupts(reraise=False):
        if run.ecs_started is not None:
            run.ecs_started.finish()  # a process that ran tests: it stopped, and removed, all it could
        elif not run.is_worker:
            _finish_workers(run)


def _finish_workers(run: Run) -> None:
    from pytest_ecstask.ecsrequests import started_by

    record = _read_record(run.session_dir / SESSION_RECORD)
    left = _noted_revisions(run.session_dir)
    if record is None and not (run.session_dir / REVISIONS_RECORD).exists():
        return  # no worker used ECS
    backend = run.ecs.backend
    stopped = set()
    if record is not None and record.get("arn"):
        arn, cluster = str(record["arn"]), str(record.get("cluster") or run.settings.aws_cluster)
        _stop(run, backend, cluster, arn, f"the session task {arn}")
        stopped.add(arn)
    try:
        running = backend.running_tasks(run.settings.aws_cluster, started_by(run.session_id))
    except EcsTaskError as exc:
        running = []
        reporting.warn(run.config, f"ecstask: could not list the session's tasks still running: {exc}")
    for arn in running:
        if arn not in stopped:
            _stop(run, backend, run.settings.aws_cluster, arn, f"task {arn}")
    if left:
        _note_revisions(run.session_dir, remove=remove_revisions(run.config, backend, left))


def _stop(run: Run, backend: EcsBackend, cluster: str, arn: str, what: str) -> None:
    try:
        backend.stop_task(cluster, arn, "pytest-ecstask: the run is over")
    except EcsTaskError as exc:
        reporting.warn(run.config, f"ecstask: could not stop {what}: {exc}")


# -- what the processes of a run share: the revisions not removed yet ---------------------------------------


def _note_revisions(folder: Path, add: list[str] | None = None, remove: list[str] | None = None) -> None:
    """Add ARNs to the note of revisions not removed yet, or take them off, under its lock."""
    from filelock import FileLock

    if not add and not remove:
        return
    private_dir(folder)
    with FileLock(str(folder / REVISIONS_LOCK), thread_local=False):
        noted = _noted_revisions(folder)
        kept = [arn for arn in [*noted, *(a for a in add or [] if a not in noted)] if arn not in (remove or [])]
        write_private(folder / REVISIONS_RECORD, "".join(f"{arn}\n" for arn in kept))


def _noted_revisions(folder: Path) -> list[str]:
    try:
        return [line for line in (folder / REVISIONS_RECORD).read_text().splitlines() if line]
    except OSError:
        return []


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
    task: AwsTask | None = None

    def record(arn: str) -> None:  # as soon as RunTask answers: the controller stops it, started or not
        assert task is not None
        shared = {"source": str(path), "arn": arn, "cluster": task.cluster, "task_definition": task.task_definition}
        write_private(record_path, json.dumps(shared))

    try:
        task = run.ecs.create_task(path, run.task_options({"wait_for": wait_for}), Path.cwd())  # registers
        reporting.forward_events(run.config, task)
        task.start(started=record)
    except BaseException as exc:
        # The other workers fail the same way, without trying again; the controller still stops the task, if
        # RunTask started one.
        failed = {"error": str(exc) or type(exc).__name__}
        if task is not None and task.arn:
            failed.update(arn=task.arn, cluster=task.cluster, task_definition=task.task_definition)
        write_private(record_path, json.dumps(failed))
        raise
    task.owned = False  # the controller stops it, once every worker is done
    run.ecs.share(task)  # and this worker's heartbeat keeps it alive until then
    return task


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
