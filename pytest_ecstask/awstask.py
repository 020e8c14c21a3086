"""What a test holds with ``--ecs-backend=aws``: a task running on ECS, and its containers.

:class:`AwsTask` and :class:`AwsContainer` give the part of a local :class:`~pytest_ecstask.task.Task` that a
task on a cluster can give, under the same names: the task's status, stop code and reason, each container's
status, exit code, health and reason, its ``host`` and ``port()``, its logs (read from CloudWatch Logs for an
``awslogs`` container), the timeline and the task events. What needs the Docker engine a local task runs on
(``exec``, ``pause``, ``disconnect``, the metadata and credentials endpoints of a local run) raises one
:class:`EcsTaskError` naming the backend.

State is read from DescribeTasks: while the task starts, with a short backoff (:func:`ecsstate.poll_delays`);
afterwards when a test reads it, at most once a second. Every call to AWS goes through
:class:`~pytest_ecstask.ecsbackend.EcsBackend`. Once RunTask has answered, a start that fails in any way
(the task stopped, the timeout, an error of AWS, an interrupt) stops the task before it raises.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_ecstask.ecsbackend import TaskMissing
from pytest_ecstask.ecsstate import (
    RUNNING,
    STOPPED,
    ContainerSeen,
    LogStream,
    TaskSeen,
    changes,
    log_stream,
    not_on_ecs,
    poll_delays,
    published_port,
    read_task,
)
from pytest_ecstask.errors import EcsTaskError, TaskFailedToStart
from pytest_ecstask.secretvalues import SecretMask
from pytest_ecstask.taskstate import STILL_WAITING_AFTER, STILL_WAITING_EVERY, LogLine, TimelineEntry
from pytest_ecstask.taskview import Listener

if TYPE_CHECKING:
    from pytest_ecstask.ecsbackend import EcsBackend
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.taskdef import TaskDefinition

FRESH_FOR = 1.0  # seconds an answer of DescribeTasks stands for, once the task has started
STOP_WAIT = 600.0  # stop() waits this long at most for STOPPED: ECS's longest stopTimeout is 120 s, then it drains
LOG_TAIL_ON_FAILURE = 20
# CloudWatch Logs shows a container's last lines some seconds after ECS reports it STOPPED: a wait for a
# log line goes on reading this long after that.
LOG_GRACE_AFTER_STOP = 10.0
NO_EXEC = (
    "RunTask starts tasks with enableExecuteCommand false, and a command in a task on ECS needs ECS Exec (the "
    "session manager plugin); run it as a container of the task definition instead"
)
NO_DOCKER = "the task runs on an ECS cluster, not on a Docker engine of this run"


class Clock:
    """The time, and the waits between DescribeTasks; tests give one of their own."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class EcsProgress:
    """The task's timeline and its event listeners, as a local task's runner keeps them; the reports and
    the live ``-v`` lines read them the same way."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._began = clock.monotonic()
        self.timeline: list[TimelineEntry] = []
        self.on_timeline: Callable[[TimelineEntry], None] | None = None
        self.listeners: list[Listener] = []
        self.killed_at_stop: list[tuple[str, float, int]] = []  # ECS stops the containers: none is known here

    def note(self, container: str | None, what: str) -> None:
        entry = TimelineEntry(round(self._clock.monotonic() - self._began, 4), container, what)
        self.timeline.append(entry)
        if self.on_timeline is not None:
            with contextlib.suppress(Exception):  # reporting must never break the task
                self.on_timeline(entry)

    def emit(self, kind: str, container: str | None, details: Mapping[str, Any]) -> None:
        for listener in self.listeners:
            with contextlib.suppress(Exception):  # a reporting hook must never break the task
                listener(kind, container, details)


class AwsTask:
    """A task RunTask started on ECS (or, ``task_arn`` given, one another process started and this one
    follows: it neither stops it nor waits for it to start)."""

    def __init__(
        self,
        backend: EcsBackend,
        definition: TaskDefinition,
        run_request: Mapping[str, Any],
        options: TaskOptions,
        *,
        images: Mapping[str, str] | None = None,
        public_ip: bool = False,
        clock: Clock | None = None,
        task_arn: str | None = None,
    ) -> None:
        self.definition = definition
        self.options = options
        # ECS resolves the secrets itself: no value is known here, so there is nothing to mask.
        self.mask = SecretMask(())
        self._backend = backend
        self._request = dict(run_request)
        self._clock = clock or Clock()
        self.progress = EcsProgress(self._clock)
        self._public_ip = public_ip
        self._images = dict(images or {})
        self._arn = task_arn
        self.owned = task_arn is None  # started here: stopped here
        self._seen: TaskSeen | None = None
        self._seen_at = 0.0
        self._closed = False
        self._stop_reason = "its start failed"  # StopTask's reason, when a start fails
        self._missing_noted = False
        self._lock = threading.RLock()
        self._address: str | None = None
        self.containers: Mapping[str, AwsContainer] = {
            c.name: AwsContainer(self, c.name) for c in definition.containers
        }

    def __repr__(self) -> str:  # the last answer: a repr asks AWS nothing
        status = self._seen.status if self._seen is not None else "PROVISIONING"
        return f"<AwsTask {self.family}:{self.revision} {self.id or '(not started)'} {status}>"

    def __enter__(self) -> AwsTask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what it is ----------------------------------------------------------------------------------------

    @property
    def arn(self) -> str:
        return self._arn or ""

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def cluster(self) -> str:
        return str(self._request["cluster"])

    @property
    def task_definition(self) -> str:
        """The revision it runs, ``family:revision``."""
        return str(self._request["taskDefinition"])

    @property
    def family(self) -> str:
        return self.task_definition.rsplit(":", 1)[0]

    @property
    def revision(self) -> int:
        tail = self.task_definition.rsplit(":", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    @property
    def network_mode(self) -> str:
        return self.definition.network_mode

    # -- its state, from DescribeTasks ---------------------------------------------------------------------

    def refresh(self) -> TaskSeen:
        """Ask DescribeTasks now; the timeline and the events get what changed."""
        with self._lock:
            seen = read_task(self._backend.describe_task(self.cluster, self.arn))
            self._take(seen)
            return seen

    def _take(self, seen: TaskSeen) -> None:
        before, self._seen, self._seen_at = self._seen, seen, self._clock.monotonic()
        self._arn = seen.arn
        for change in changes(before, seen, list(self.containers)):
            self.progress.note(change.container, change.what)
            if change.event is not None:
                self.progress.emit(change.event, change.container, change.details)

    def _fresh(self) -> TaskSeen | None:
        """The last answer, asked again when it is older than FRESH_FOR (not once the task stopped and closed).

        A DescribeTasks that fails here leaves the last answer standing, and says so on the timeline: a
        report written while AWS cannot be asked still shows what was known.
        """
        with self._lock:
            if self._seen is None or (self._closed and self._seen.status == STOPPED):
                return self._seen
            if self._clock.monotonic() - self._seen_at < FRESH_FOR:
                return self._seen
            try:
                return self.refresh()
            except EcsTaskError as exc:
                self._seen_at = self._clock.monotonic()  # not asked again at once
                self.progress.note(None, f"the last answer stands: {exc}")
                return self._seen

    @property
    def status(self) -> str:
        """ECS last status: PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, ..., STOPPED."""
        seen = self._fresh()
        return seen.status if seen is not None else "PROVISIONING"

    @property
    def stop_code(self) -> str | None:
        """TaskFailedToStart, EssentialContainerExited, UserInitiated, ... once the task stops."""
        seen = self._fresh()
        return seen.stop_code if seen is not None else None

    @property
    def stopped_reason(self) -> str | None:
        seen = self._fresh()
        return seen.stopped_reason if seen is not None else None

    @property
    def timeline(self) -> list[TimelineEntry]:
        """What happened when, in seconds since the task object was made, as DescribeTasks told it."""
        return list(self.progress.timeline)

    def seen(self, name: str) -> ContainerSeen:
        seen = self._fresh()
        return seen.container(name) if seen is not None else ContainerSeen(name)

    # -- where it is reached -------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The task's private IP address (awsvpc), or its instance's (bridge, host); the public one with
        --ecs-aws-public-ip."""
        with self._lock:
            if self._address is None:
                self._address = self._find_address()
            return self._address

    def _find_address(self) -> str:
        seen = self._fresh()
        if seen is None or seen.status != RUNNING:
            raise EcsTaskError(f"task {self.family}:{self.revision} is {self.status}: it has no address to reach")
        address: str | None
        if self.network_mode == "awsvpc":
            address = seen.private_ip
            if self._public_ip:
                if not seen.network_interface:
                    raise EcsTaskError(
                        f"task {self.family}:{self.revision} ({self.id}): ECS reports no elastic network interface, "
                        "whose public IP address --ecs-aws-public-ip asks for"
                    )
                address = self._backend.public_ip(seen.network_interface)
        elif seen.container_instance:
            address = self._backend.instance_address(self.cluster, seen.container_instance, self._public_ip)
        else:
            address = None
        if not address:
            which = "public" if self._public_ip else "private"
            raise EcsTaskError(f"task {self.family}:{self.revision} ({self.id}): ECS reports no {which} IP address")
        return address

    # -- its life --------------------------------------------------------------------------------------------

    def start(self, started: Callable[[str], None] | None = None) -> AwsTask:
        """RunTask, then DescribeTasks until the task is RUNNING, or is stopping with a stop code, or the start
        timeout passed.

        ``started`` is told the task's ARN as soon as RunTask answers. A task followed is described only.
        Whatever goes wrong after RunTask, the task is stopped before the error is raised.
        """
        if not self.owned:
            self.refresh()
            return self
        self.progress.note(None, f"RunTask {self.task_definition} in cluster {self.cluster}")
        with self._lock:
            self._take(read_task(self._backend.run_task(self._request)))
        self._stop_reason = "its start failed"
        try:
            if started is not None:
                started(self.arn)
            if self._await_start():
                self._wait_for_strategies()
        except BaseException as exc:
            self._stop_after_failed_start(exc)
            raise
        return self

    def _await_start(self) -> bool:
        """Whether the task runs once its start is over (else it stopped, or is stopping); TaskFailedToStart
        when it stopped before it ran (with ``check``) or the start timeout passed."""
        timeout = self.options.start_timeout
        seen = self._poll(_start_over, timeout, RUNNING, starting=True)
        if seen is None:
            self._stop_reason = f"did not reach RUNNING within {timeout:g} s"
            status = self._seen.status if self._seen is not None else "PROVISIONING"
            raise TaskFailedToStart(
                f"task {self.family}:{self.revision} ({self.id}) did not reach RUNNING within {timeout:g} s "
                f"(--ecs-start-timeout, ini ecs_start_timeout); it was {status}\n" + self._container_lines(self._seen)
            )
        if not _stopping(seen):
            return True
        if self._failed_to_start(seen) and self.options.check:
            raise TaskFailedToStart(self._failure_text(seen) + self._last_lines_of_failed())
        return False

    def _failed_to_start(self, seen: TaskSeen) -> bool:
        """ECS's TaskFailedToStart, or an essential container that did not exit 0: a task that stopped
        before it ran. Every essential container exiting 0 is a batch task that did its work."""
        if seen.stop_code == "TaskFailedToStart":
            return True
        return any(seen.container(c.name).exit_code != 0 for c in self.containers.values() if c.essential)

    def _stop_after_failed_start(self, failure: BaseException) -> None:
        """StopTask after a failed start; its own failure is added to the start's error, never in its place,
        and the task stays open for the end of the run to stop it."""
        try:
            self.close(self._stop_reason)
        except Exception as exc:
            why = (
                f"\n  StopTask failed too ({exc}); the end of the run tries again, and "
                "--ecs-sweep-orphans --ecs-backend=aws finds the task by its tags"
            )
            if isinstance(failure, EcsTaskError) and failure.args:
                failure.args = (f"{failure.args[0]}{why}", *failure.args[1:])

    def _poll(
        self, done: Callable[[TaskSeen], bool], timeout: float | None, waiting_for: str, *, starting: bool = False
    ) -> TaskSeen | None:
        """DescribeTasks with a growing delay until ``done``; None when ``timeout`` seconds passed first.

        ``starting``: right after RunTask, DescribeTasks may not know the task yet (ECS is eventually
        consistent); the last answer stands until it does.
        """
        began = self._clock.monotonic()
        deadline = None if timeout is None else began + timeout
        told = 0
        for delay in poll_delays():
            seen = self._refresh_starting() if starting else self.refresh()
            if done(seen):
                return seen
            now = self._clock.monotonic()
            if deadline is not None and now >= deadline:
                return None
            waited = now - began
            if waited >= STILL_WAITING_AFTER + STILL_WAITING_EVERY * told:
                self.progress.note(None, f"still waiting after {waited:.0f} s for {waiting_for} (task {seen.status})")
                told += 1
            self._clock.sleep(delay if deadline is None else min(delay, max(deadline - now, 0.0)))
        return None  # poll_delays never ends

    def _refresh_starting(self) -> TaskSeen:
        try:
            return self.refresh()
        except TaskMissing:
            with self._lock:
                assert self._seen is not None  # RunTask's answer, at least
                if not self._missing_noted:
                    self._missing_noted = True
                    self.progress.note(None, "DescribeTasks does not know the task yet")
                return self._seen

    def _wait_for_strategies(self) -> None:
        for name, strategy in self.options.wait_for.items():
            self.progress.note(name, f"waiting for {type(strategy).__name__}")
            try:
                strategy.wait_until_ready(AwsWaitTarget(self.containers[name]))
            except Exception as exc:
                message = f"container {name!r} of task {self.family}:{self.revision} did not get ready: {exc}"
                self._stop_reason = f"container {name} did not get ready"
                raise TaskFailedToStart(message) from None
            self.progress.note(name, f"ready ({type(strategy).__name__})")

    def stop(self, reason: str = "Task stopped by the test") -> None:
        """StopTask, as ECS stops a task (SIGTERM, then SIGKILL after each stopTimeout); returns once STOPPED."""
        if not self.owned:
            raise not_on_ecs("stopping the session task from an xdist worker", "the controller stops it")
        if self.arn and self.status != STOPPED:
            self._backend.stop_task(self.cluster, self.arn, reason)
        self.wait(STOP_WAIT)

    def wait(self, timeout: float | None = None) -> AwsTask:
        """Wait for the task to reach STOPPED (a batch task finishing, an essential container exiting)."""
        if self._poll(lambda s: s.status == STOPPED, timeout, STOPPED) is None:
            raise TimeoutError(f"task {self.family}:{self.revision} still {self.status} after {timeout} s")
        return self

    def close(self, reason: str = "the test is over") -> None:
        """StopTask (without waiting for STOPPED) if this process started the task and it is still to run.

        Closed once StopTask succeeded: after a failure, closing again tries again.
        """
        with self._lock:
            if self._closed:
                return
            seen = self._seen
            if not self.owned or not self.arn or (seen is not None and STOPPED in (seen.status, seen.desired_status)):
                self._closed = True
                return
        self._backend.stop_task(self.cluster, self.arn, f"pytest-ecstask: {reason}")
        with self._lock:
            self._closed = True
        self.progress.note(None, f"StopTask: {reason}")

    # -- what it says ----------------------------------------------------------------------------------------

    def logs(self, name: str | None = None, *, raw: bool = False) -> str:
        """One container's logs; without a name, every awslogs container's, by time, each line prefixed."""
        if name is not None:
            return self.containers[name].logs(raw=raw)
        lines = sorted(
            ((line, c.name) for c in self.containers.values() if c.log_stream() is not None for line in c.log_lines()),
            key=lambda x: x[0].time,
        )
        width = max((len(n) for n in self.containers), default=0)
        return "".join(f"{n:<{width}} | {line.text}\n" for line, n in lines)

    def wait_for_log(self, name: str, pattern: str | re.Pattern[str], timeout: float = 30.0) -> str:
        """Wait until container ``name`` logs a line matching ``pattern``; returns the line."""
        return self.containers[name].wait_for_log(pattern, timeout)

    def describe_failure(self) -> str:
        return self._failure_text(self._fresh())

    def _failure_text(self, seen: TaskSeen | None) -> str:
        """Why the task stopped before it ran: ECS's stop code and reason, and each container's state."""
        code, reason = (seen.stop_code, seen.stopped_reason) if seen is not None else (None, None)
        first = f"task {self.family}:{self.revision} ({self.id}) failed to start: {code}: {reason}"
        return "\n".join([first, self._container_lines(seen)]).rstrip()

    def _container_lines(self, seen: TaskSeen | None) -> str:
        lines = []
        for name in self.containers:
            c = seen.container(name) if seen is not None else ContainerSeen(name)
            code = "" if c.exit_code is None else f" exit code {c.exit_code}"
            why = f" - {c.reason}" if c.reason else ""
            lines.append(f"  {name}: {c.status}{code}{why}")
        return "\n".join(lines)

    def _last_lines_of_failed(self) -> str:
        """The last lines of the container whose exit stopped the task, where its logs can be read."""
        failed = [c for c in self.containers.values() if c.exit_code not in (None, 0)]
        for c in failed[:1]:
            where = c.log_stream()
            if where is None:
                return f"\n  logs of {c.name!r}: {c.logs_elsewhere()}"
            try:
                lines = c.log_lines()[-LOG_TAIL_ON_FAILURE:]
            except EcsTaskError as exc:
                return f"\n  logs of {c.name!r}: unavailable ({exc})"
            if lines:
                shown = "\n".join(f"    {line.text}" for line in lines)
                return f"\n  last log lines of {c.name!r} ({where.group} {where.stream}):\n{shown}"
        return ""

    @property
    def metadata_uri(self) -> str:
        raise not_on_ecs("the task metadata endpoint of a local run", f"{NO_DOCKER}; its containers get ECS's own")

    @property
    def credentials_uri(self) -> str:
        raise not_on_ecs("the credentials endpoint of a local run", f"{NO_DOCKER}; its containers get ECS's own")


class AwsContainer:
    """One container of a task on ECS, by its task definition name."""

    def __init__(self, task: AwsTask, name: str) -> None:
        self._task = task
        self.name = name
        self._definition = task.definition.container(name).raw
        self._lines: list[LogLine] = []
        self._token: str | None = None
        self._reading = threading.Lock()

    def __repr__(self) -> str:  # the last answer: a repr asks AWS nothing
        seen = self._task._seen.container(self.name) if self._task._seen is not None else ContainerSeen(self.name)
        return f"<AwsContainer {self.name!r} {seen.status} exit_code={seen.exit_code}>"

    @property
    def image(self) -> str:
        return self._task._images.get(self.name) or str(self._definition.get("image"))

    @property
    def essential(self) -> bool:
        return bool(self._definition.get("essential", True))

    @property
    def id(self) -> str | None:
        """The container's runtime id on its instance, once ECS reports one."""
        return self._task.seen(self.name).runtime_id

    @property
    def status(self) -> str:
        """ECS last status: PENDING, RUNNING or STOPPED."""
        return self._task.seen(self.name).status

    @property
    def exit_code(self) -> int | None:
        return self._task.seen(self.name).exit_code

    @property
    def health(self) -> str:
        """UNKNOWN, HEALTHY or UNHEALTHY, as ECS reports the task definition's healthCheck."""
        return self._task.seen(self.name).health

    @property
    def reason(self) -> str | None:
        return self._task.seen(self.name).reason

    @property
    def host(self) -> str:
        """Where the test reaches the task: its private IP (awsvpc), its instance's (bridge, host), or the
        public one with --ecs-aws-public-ip."""
        return self._task.host

    def port(self, container_port: int, protocol: str = "tcp") -> int:
        """The port to connect to for ``container_port``: the same in awsvpc and host mode, the bound host
        port in bridge mode."""
        return published_port(
            self._definition, self._task.network_mode, self._task.seen(self.name), container_port, protocol
        )

    def address(self, container_port: int, protocol: str = "tcp") -> tuple[str, int]:
        return self.host, self.port(container_port, protocol)

    def wait_until_healthy(self, timeout: float = 60.0) -> AwsContainer:
        """Wait for ECS to report the task definition's healthCheck HEALTHY."""
        if not self._definition.get("healthCheck"):
            raise EcsTaskError(f"container {self.name!r} has no healthCheck in its task definition")
        seen = self._task._poll(
            lambda s: s.container(self.name).health != "UNKNOWN" or s.container(self.name).status == STOPPED,
            timeout,
            f"{self.name} HEALTHY",
        )
        if seen is None:
            raise EcsTaskError(f"container {self.name!r} is not HEALTHY within {timeout:g} s: it is {self.health}")
        state = seen.container(self.name)
        if state.health != "HEALTHY":
            raise EcsTaskError(f"container {self.name!r} is {state.status}, health {state.health}, not HEALTHY")
        return self

    # -- logs, from CloudWatch Logs ------------------------------------------------------------------------

    def log_stream(self) -> LogStream | None:
        """The CloudWatch Logs stream of its output (awslogs); None for another log driver."""
        where = log_stream(self._definition, self._task.id, self._task.seen(self.name).runtime_id)
        return where if isinstance(where, LogStream) else None

    def logs_elsewhere(self) -> str:
        """Where its output went when it is not an awslogs stream, or why none can be named yet."""
        where = log_stream(self._definition, self._task.id, self._task.seen(self.name).runtime_id)
        return where if isinstance(where, str) else f"CloudWatch Logs group {where.group}, stream {where.stream}"

    def log_lines(self, *, raw: bool = False) -> list[LogLine]:
        """Its output so far, from its CloudWatch Logs stream (the stream mixes stdout and stderr: stdout)."""
        where = log_stream(self._definition, self._task.id, self._task.seen(self.name).runtime_id)
        if isinstance(where, str):
            raise EcsTaskError(where)
        with self._reading:
            events, self._token = self._task._backend.log_events(where.group, where.stream, where.region, self._token)
            self._lines += [
                LogLine(_event_time(e), "stdout", line)
                for e in events
                for line in str(e.get("message", "")).rstrip("\n").split("\n")
            ]
            return list(self._lines)

    def logs(self, *, raw: bool = False) -> str:
        """Its output so far, read from CloudWatch Logs (awslogs containers only)."""
        return "".join(f"{line.text}\n" for line in self.log_lines())

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30.0, *, raw: bool = False) -> str:
        """Wait for a log line matching ``pattern``, reading the stream with a growing delay; fails when the
        container has stopped without one, once LOG_GRACE_AFTER_STOP seconds have let CloudWatch Logs catch up."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        clock = self._task._clock
        deadline = clock.monotonic() + timeout
        stopped_at: float | None = None
        for delay in poll_delays():
            lines = self.log_lines()
            match = next((line.text for line in lines if regex.search(line.text)), None)
            if match is not None:
                return match
            now = clock.monotonic()
            if stopped_at is None and self.status == STOPPED:
                stopped_at = now
            if stopped_at is not None and now - stopped_at >= LOG_GRACE_AFTER_STOP:
                raise EcsTaskError(
                    f"container {self.name!r} is STOPPED; no log line matched {regex.pattern!r}, read until "
                    f"{LOG_GRACE_AFTER_STOP:g} s after it stopped"
                )
            if now >= deadline:
                tail = "".join(f"    {line.text}\n" for line in lines[-10:])
                raise TimeoutError(
                    f"container {self.name!r}: no log line matched {regex.pattern!r} within {timeout:g} s; it is "
                    f"{self.status}; its last log lines:\n{tail}"
                )
            ends = deadline if stopped_at is None else min(deadline, stopped_at + LOG_GRACE_AFTER_STOP)
            clock.sleep(max(min(delay, ends - now), 0.0))
        raise AssertionError("poll_delays never ends")

    # -- what needs a Docker engine --------------------------------------------------------------------------

    def exec(self, cmd: str | list[str], *, user: str = "", workdir: str | None = None) -> NoReturn:
        raise not_on_ecs(f"container {self.name!r}: exec", NO_EXEC)

    def inspect(self) -> Mapping[str, Any]:
        raise not_on_ecs(f"container {self.name!r}: inspect", NO_DOCKER)

    def stop(self, timeout: float | None = None) -> None:
        raise not_on_ecs(f"container {self.name!r}: stopping one container", "ECS stops whole tasks: task.stop()")

    def kill(self, signal: str | int = "SIGKILL") -> None:
        raise not_on_ecs(f"container {self.name!r}: kill", f"{NO_DOCKER}; ECS stops whole tasks: task.stop()")

    def restart(self, timeout: float | None = None) -> None:
        raise not_on_ecs(f"container {self.name!r}: restart", f"{NO_DOCKER}; ECS stops whole tasks: task.stop()")

    def pause(self) -> None:
        raise not_on_ecs(f"container {self.name!r}: pause", NO_DOCKER)

    def unpause(self) -> None:
        raise not_on_ecs(f"container {self.name!r}: unpause", NO_DOCKER)

    @property
    def paused(self) -> bool:
        return False

    def disconnect(self) -> None:
        raise not_on_ecs(f"container {self.name!r}: disconnect", f"{NO_DOCKER}; its network is the cluster's VPC")

    def reconnect(self) -> None:
        raise not_on_ecs(f"container {self.name!r}: reconnect", f"{NO_DOCKER}; its network is the cluster's VPC")

    @property
    def metadata_uri(self) -> str:
        raise not_on_ecs(
            f"container {self.name!r}: the metadata endpoint of a local run", f"{NO_DOCKER}; it gets ECS's own"
        )

    @property
    def metadata_uri_v3(self) -> str:
        return self.metadata_uri


def _stopping(seen: TaskSeen) -> bool:
    """STOPPED, or being stopped with a stop code: ECS stops a Fargate task that cannot pull its image at once,
    and its last status takes a minute more to say so."""
    return seen.status == STOPPED or (seen.desired_status == STOPPED and seen.stop_code is not None)


def _start_over(seen: TaskSeen) -> bool:
    return seen.status == RUNNING or _stopping(seen)


def _event_time(event: Mapping[str, Any]) -> str:
    """A CloudWatch event's timestamp (milliseconds since the epoch) in RFC 3339, as a local log line has it."""
    stamp = datetime.fromtimestamp(int(event.get("timestamp", 0)) / 1000, timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AwsWaitTarget:
    """A container on ECS as testcontainers' wait strategies expect one: its address, port and logs."""

    def __init__(self, container: AwsContainer) -> None:
        self._container = container

    def get_container_host_ip(self) -> str:
        return self._container.host

    def get_exposed_port(self, port: int) -> int:
        return self._container.port(port)

    def get_logs(self) -> tuple[bytes, bytes]:
        text = "".join(f"{line.text}\n" for line in self._container.log_lines())
        return text.encode(), b""

    def get_wrapped_container(self) -> Any:
        raise not_on_ecs(
            f"container {self._container.name!r}: a wait strategy that needs a Docker container", NO_DOCKER
        )

    def exec(self, command: str | list[str]) -> NoReturn:
        self._container.exec(command)

    def reload(self) -> None:
        return None

    @property
    def status(self) -> str:
        return self._container.status.lower()
