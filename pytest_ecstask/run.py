"""The run: one per pytest process (the xdist controller and each worker), made once from the settings.

What a run owns lives on its :class:`Run`, never in module globals, so two runs in one process (pytester)
share nothing: its settings, its session id and lease, its Docker connection and endpoint servers, the
tasks it has open. It starts and removes tasks, and at its end removes whatever of it is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_ecstask import reporting
from pytest_ecstask.background import Background
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.lifecycle import SESSION_ENV, Lease, Owner, host_id, lease_dir, new_session_id, private_dir
from pytest_ecstask.options import own_endpoint_variable
from pytest_ecstask.settings import Settings, for_task

if TYPE_CHECKING:
    from pytest_ecstask.awsrun import EcsRun
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.runtime import Engine
    from pytest_ecstask.task import Connections, Task, TaskSource
    from pytest_ecstask.taskview import AnyTask


@dataclass
class Run:
    """This pytest run as the plugin sees it."""

    config: pytest.Config
    settings: Settings
    session_id: str
    owner: Owner
    lease: Lease | None  # held by the controller (or the only process); workers name the controller's
    is_worker: bool
    open_tasks: list[Task] = field(default_factory=list)
    startups: list[tuple[str, float]] = field(default_factory=list)  # (family:revision, seconds to start)
    notes: list[str] = field(default_factory=list)  # for the terminal summary
    endpoints_served: str = ""  # how the endpoints were served, for the summary (read at the end)
    engine_used: str = ""  # which engine the run used (kind, version, where), for the summary
    kept: list[Task] = field(default_factory=list)
    _sweeping: Background | None = None  # the first-use sweep, under way or over
    _sweeping_network: Background | None = None  # its last step, which no task start waits for
    _connecting: threading.Thread | None = None  # connect_in_background's: awaited before the run's end
    lock: threading.Lock = field(default_factory=threading.Lock)
    sentinel: Sentinel | None = None  # the lease holder's, from the run's first Docker use on
    _connections: Connections | None = None
    _watching: threading.Event | None = None  # set when an xdist controller stops waiting for Docker use
    _sentinel_lock: threading.Lock = field(default_factory=threading.Lock)
    first_start_done: threading.Event = field(default_factory=threading.Event)  # the sentinel waits for it
    _ended: bool = False  # past the point where the sentinel is removed: no new one
    _ecs: EcsRun | None = None  # --ecs-backend=aws: made on first use
    own_endpoint: str | None = None  # the variable by which the process gets its own credentials, at its start

    @classmethod
    def begin(cls, config: pytest.Config, settings: Settings) -> Run:
        """The run's session id and lease: the controller's under xdist, else its own, held until the end."""
        from pytest_ecstask.xdistsession import controller_session

        given = controller_session(config)
        if given is not None:
            session_id, lease, lease_path = given[0], None, given[1]
        else:
            session_id = os.environ.get(SESSION_ENV) or new_session_id()
            lease = _take_lease(session_id)
            lease_path = str(lease.path)
        owner = Owner(session_id, host_id(), lease_path, settings.keep, sentinel=True)
        own_endpoint = own_endpoint_variable(os.environ)  # before fixtures or tests change the environment
        return cls(
            config,
            settings,
            session_id,
            owner,
            lease,
            is_worker=hasattr(config, "workerinput"),
            own_endpoint=own_endpoint,
        )

    @property
    def session_dir(self) -> Path:
        """Files the processes of one run share (the xdist session task); removed at the end of the run."""
        return lease_dir() / f"{self.session_id}.d"

    @property
    def connections(self) -> Connections:
        """The run's Docker connection and endpoint servers, opened on first use."""
        from pytest_ecstask.task import Connections, use_connections

        with self.lock:
            if self._connections is None:
                self._connections = Connections(self.own_endpoint)
                use_connections(self.session_id, self._connections)
            return self._connections

    @property
    def ecs(self) -> EcsRun:
        """The run's part on ECS (--ecs-backend=aws), made on first use."""
        from pytest_ecstask.awsrun import EcsRun

        with self.lock:
            if self._ecs is None:
                self._ecs = EcsRun(self)
            return self._ecs

    @property
    def ecs_started(self) -> EcsRun | None:
        """The run's part on ECS if it was used, else None."""
        return self._ecs

    def connect_in_background(self) -> None:
        """Open the engine connection alongside collection, for a run sure to need it (its session task kept
        for reuse); a failure is left for the first use to report.

        The Docker SDK and testcontainers are imported here, before collection, and only the engine's answer
        is awaited alongside it: an import in the thread takes the same CPU, but shares the interpreter with
        collection and ends after the session starts, in the adoption's path (0.1 s of 0.2 here).
        """
        from pytest_ecstask.runtime import import_sdk

        with contextlib.suppress(Exception):  # a failure to import is reported by the first use, as one to connect
            import_sdk()
        connections = self.connections

        def connect() -> None:
            with contextlib.suppress(Exception):
                connections.engine()

        self._connecting = threading.Thread(target=connect, name="ecstask-connect", daemon=True)
        self._connecting.start()

    def engine(self) -> Engine:
        """The Docker engine; on the run's first use, a sweep of dead runs' leftovers begins alongside (its
        end is awaited before a task starts: ``swept``)."""
        engine = self.connections.engine()
        with self.lock:
            if self._sweeping is None:
                private_dir(self.session_dir)  # tells the controller Docker was used
                if self.lease is not None:  # the lease holder's own first use: its sentinel starts alongside
                    self.start_sentinel(engine)
                self._sweeping = Background(self._first_use, engine)
        return engine

    def swept(self) -> None:
        """Before a task starts: the first-use sweep is over (a dead run's container may hold a port)."""
        with self.lock:
            sweeping = self._sweeping
        if sweeping is not None:
            sweeping.result()

    def _first_use(self, engine: Engine) -> None:
        from pytest_ecstask.sweep import sweep, sweep_network

        with contextlib.suppress(Exception):  # for the summary: which engine the run used (kind, version)
            (self.session_dir / "engine.txt").write_text(engine.describe())
        report = sweep(
            engine.api,
            max_age=self.settings.orphan_age,
            cap=self.settings.sweep_cap,
            live_sessions=[self.session_id],
            network=False,  # it waits for the endpoint network's lock, which this run's first task may hold
        )
        if not report.refused:
            with self.lock:
                self._sweeping_network = Background(sweep_network, engine.api)
        if (len(report.chosen) - len(report.failed)) or report.failed or report.refused:
            # Said in the terminal summary: during a test's setup, output capture would hide it.
            self.notes.extend(
                line.replace("ecstask sweep: ", "sweep: ")
                for line in (report.lines()[-1:] if not report.refused else report.lines()[:1])
            )

    def start_sentinel(self, engine: Engine) -> None:
        """The run's sentinel, started in a thread so that the first task's start does not wait for it."""
        with self._sentinel_lock:
            if self.sentinel is None and not self._ended:
                self.sentinel = Sentinel(engine, self.owner, self.notes)
                self.sentinel.start(after=self.first_start_done)

    def watch_for_docker_use(self) -> None:
        """At an xdist controller: start the sentinel once a worker first uses Docker (its shared folder appears)."""
        if self._watching is not None:
            return
        done = self._watching = threading.Event()

        def watch() -> None:
            while not done.wait(0.05):
                if self.session_dir.exists():
                    try:
                        self.start_sentinel(self.connections.engine())
                    except EcsTaskError as exc:
                        self.notes.append(f"could not start the run's sentinel: {exc}")
                    return

        threading.Thread(target=watch, name="ecstask-sentinel-watch", daemon=True).start()

    def task_options(
        self, arguments: Mapping[str, Any], fixture_credentials: Mapping[str, str] | None = None
    ) -> TaskOptions:
        """The run's options as a marker's or factory call's arguments change them."""
        return task_options(self.config, self.settings, arguments, fixture_credentials)

    def start_task(
        self,
        source: TaskSource,
        arguments: Mapping[str, Any],
        base_dir: Path,
        fixture_credentials: Mapping[str, str] | None = None,
        item: pytest.Item | None = None,
        owner: Owner | None = None,
    ) -> Task:
        """A started task on Docker, or the test fails with the reason (no traceback). ``owner``: the run's,
        but for labels of its own (the session task kept for reuse)."""
        from pytest_ecstask.task import create_task

        try:
            options = self.task_options(arguments, fixture_credentials)
            task = create_task(source, options, owner=owner or self.owner, engine=self.engine(), base_dir=base_dir)
            # Tracked before anything exists on the engine, so an interrupted start is still cleaned up.
            self.open_tasks.append(task)
            self.swept()
            reporting.used_by(item, task)
            reporting.forward_events(self.config, task)
            with reporting.live_progress(self.config, task):
                task.start()
            reporting.record_startup(self, task)
            return task
        except EcsTaskError as exc:
            message = str(exc)
        finally:
            self.first_start_done.set()
        # Outside the except block, so the report shows our message alone, not a chained traceback.
        pytest.fail(message, pytrace=False)

    def start(
        self,
        source: TaskSource,
        arguments: Mapping[str, Any],
        base_dir: Path,
        fixture_credentials: Mapping[str, str] | None = None,
        item: pytest.Item | None = None,
    ) -> AnyTask:
        """A started task where the run's backend runs tasks: Docker, or ECS (--ecs-backend=aws)."""
        if self.settings.backend != "aws":
            return self.start_task(source, arguments, base_dir, fixture_credentials, item)
        try:
            return self.ecs.start_task(source, arguments, base_dir, item)
        except EcsTaskError as exc:
            message = str(exc)
        # Outside the except block, so the report shows our message alone, not a chained traceback.
        pytest.fail(message, pytrace=False)

    def close_task(self, task: AnyTask, finishing: bool = False) -> None:
        """Remove a task (or keep it, with --ecs-keep). ``finishing``: at session finish, Ctrl-C only waits."""
        if self.settings.backend == "aws":  # a Docker run never imports the AWS backend
            from pytest_ecstask.awstask import AwsTask

            if isinstance(task, AwsTask):
                self.ecs.close_task(task, finishing)
                return
        task = cast("Task", task)  # every task of a Docker run
        if task in self.open_tasks:
            self.open_tasks.remove(task)
        if self.owner.keep:
            if task not in self.kept and not task._runner.removed:
                self.kept.append(task)
            return
        try:
            with deferred_interrupts(reraise=not finishing):
                task.close()
        except Exception as exc:  # a Docker error included: warn, and let the sweep see to what is left
            reporting.warn(self.config, f"ecstask: could not remove task {task.id}: {type(exc).__name__}: {exc}")
        reporting.write_log_dir(self, task)
        reporting.record_stop_kills(self, task)

    def finish(self) -> None:
        """After the session fixtures' own teardown: the net behind it, and the controller's removals."""
        if self.settings.backend == "aws":
            from pytest_ecstask.awsrun import finish_run

            finish_run(self)
            return
        if self._connecting is not None:  # a connection still being opened is not cut short at exit
            self._connecting.join()
        # An interrupted setup, a task never closed; at the controller of an xdist run, the one removal
        # of the shared session task and of whatever crashed workers left.
        for task in reversed(self.open_tasks):
            self.close_task(task, finishing=True)
        with self.lock:
            sweeping = self._sweeping
        if sweeping is not None:  # not to be cut short at exit
            sweeping.settle()
        with self.lock:
            sweeping = self._sweeping_network
        if sweeping is not None:
            sweeping.settle()
        if self._watching is not None:
            self._watching.set()
        if not self.session_dir.exists():  # Docker was never used
            return
        from pytest_ecstask.endpoints import close_handoffs

        close_handoffs()
        if self.is_worker:
            return
        from pytest_ecstask.endpoints import served, stop_server
        from pytest_ecstask.xdistsession import remove_session_task

        self.endpoints_served = served(self.session_dir)  # for the summary: how, if a task needed them
        with contextlib.suppress(OSError):
            self.engine_used = (self.session_dir / "engine.txt").read_text()

        try:
            if not self.owner.keep:
                remove_session_task(self)
                self._remove_everything()
        finally:
            # Kept tasks lose their endpoints with the run: the server lives as long as the run's lease. The
            # server stops (and removes the endpoint network, if no other run needs it) while the sentinel goes.
            stopping = threading.Thread(target=stop_server, args=(self.session_dir,), name="ecstask-stop-server")
            stopping.start()
            try:
                self._remove_sentinel()
            finally:
                stopping.join()

    def tests_over(self) -> None:
        """The last test's teardown begins: a sentinel not started yet is not started any more (what the run
        made is being removed; sweeps give a run without one SENTINEL_START_GRACE_SECONDS meanwhile)."""
        with self._sentinel_lock:
            sentinel = self.sentinel
        if sentinel is not None:
            sentinel.not_needed()

    def _remove_sentinel(self) -> None:
        """Last: while anything of the run is left, its sentinel says that the run lives."""
        with self._sentinel_lock:
            self._ended = True
        if self.sentinel is not None:
            for what in self.sentinel.remove():
                reporting.warn(self.config, f"ecstask: could not remove the run's sentinel: {what}")

    def _remove_everything(self) -> None:
        """Whatever a crashed worker left: everything labelled with this session goes."""
        from pytest_ecstask.lifecycle import LABEL_REUSE, LABEL_ROLE, LABEL_SESSION, ROLE_SENTINEL
        from pytest_ecstask.runtime import list_resources, remove_resources

        try:
            api = self.connections.engine().api
            with deferred_interrupts(reraise=False):
                found = list_resources(api, f"{LABEL_SESSION}={self.session_id}")
                # The sentinel goes last, on its own (finish); the session task kept for reuse stays.
                gone = [r for r in found if r.labels.get(LABEL_ROLE) != ROLE_SENTINEL and not r.labels.get(LABEL_REUSE)]
                failures = remove_resources(api, gone)
        except EcsTaskError as exc:
            failures = []
            reporting.warn(self.config, f"ecstask: could not check the engine for leftovers: {exc}")
        for resource, why in failures:
            reporting.warn(self.config, f"ecstask: could not remove {resource.kind} {resource.name}: {why}")

    def end(self) -> None:
        """The run is over: its shared files go, its lease is let go, its connections are forgotten."""
        if self._connections is not None:
            from pytest_ecstask.task import use_connections

            use_connections(self.session_id, None)
        if self.lease is not None:
            shutil.rmtree(self.session_dir, ignore_errors=True)
            self.lease.release()


class Sentinel:
    """The run's sentinel container: it runs while this process keeps its stdin open (see lifecycle).

    One thread starts it, then waits on its attach stream, which ends when the sentinel exits. If that
    happens while the run lives (someone killed it, the engine connection dropped), the thread starts a new
    one for the same session. ``remove`` stops that and removes every sentinel made.
    """

    def __init__(self, engine: Engine, owner: Owner, notes: list[str]) -> None:
        self.engine = engine
        self.owner = owner
        self.notes = notes
        self.made: list[str] = []  # container ids, in order
        self._stopping = threading.Event()
        self._not_needed = threading.Event()  # the run's tests are over before its first sentinel started
        self._lock = threading.Lock()
        self._sockets: list[Any] = []  # the attach streams; kept open, as the sentinel's stdin

    def start(self, after: threading.Event | None = None) -> None:
        """Start keeping a sentinel; the first is started once ``after`` is set, or SENTINEL_DEFER_SECONDS."""
        threading.Thread(target=self._keep_one_running, args=(after,), name="ecstask-sentinel", daemon=True).start()

    def _keep_one_running(self, after: threading.Event | None) -> None:
        if after is not None:
            # Not while the first task's containers start: on a small machine the engine's work for the
            # sentinel would slow them. Nor in the seconds after: a run over by then needs none, and its
            # removal would slow the run's end. Sweeps give a run without a sentinel yet
            # SENTINEL_START_GRACE_SECONDS.
            after.wait(SENTINEL_DEFER_SECONDS)
            if self._not_needed.wait(SENTINEL_DEFER_SECONDS) or self._stopping.is_set():
                return
        failures = 0
        while not self._stopping.is_set():
            try:
                stream = self._start_one()
            except Exception as exc:  # a Docker error included: said once, retried a few times
                failures += 1
                if failures == 1:
                    self.notes.append(f"could not start the run's sentinel: {type(exc).__name__}: {exc}")
                if failures >= SENTINEL_ATTEMPTS or self._stopping.wait(1.0):
                    return
                continue
            failures = 0
            _read_until_closed(stream)  # returns when the sentinel is over

    def _start_one(self) -> Any:
        from docker.types import LogConfig

        from pytest_ecstask.lifecycle import ROLE_SENTINEL, new_task_id, now_rfc3339, resource_labels

        api = self.engine.api
        image = self.engine.sentinel_image()
        with self._lock:
            if self._stopping.is_set():
                raise EcsTaskError("the run is ending")
            labels = resource_labels(self.owner, new_task_id(), ROLE_SENTINEL, now_rfc3339())
            container = api.create_container(
                image,
                name=f"ecs-sentinel-{self.owner.session_id}-{len(self.made) + 1}",
                labels=labels,
                # OpenStdin, and (the SDK sets it with it) StdinOnce: the engine closes stdin when the attach ends.
                stdin_open=True,
                host_config=api.create_host_config(network_mode="none", log_config=LogConfig(type="none")),
            )["Id"]
            self.made.append(container)
            # stdout too, though it stays silent: with stdin alone the engine does not end the stream at exit.
            stream = api.attach_socket(container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            for sock in (stream, getattr(stream, "_sock", stream)):  # held for the whole run: no read timeout
                if hasattr(sock, "settimeout"):
                    sock.settimeout(None)
            self._sockets.append(stream)
            api.start(container)
        return stream

    def not_needed(self) -> None:
        self._not_needed.set()

    def remove(self) -> list[str]:
        """Stop keeping a sentinel, remove every one made; returns what could not be removed, and why."""
        import docker.errors

        self._stopping.set()
        self._not_needed.set()
        problems = []
        with self._lock:
            for container in self.made:
                try:
                    self.engine.api.remove_container(container, force=True)
                except docker.errors.NotFound:
                    pass
                except Exception as exc:  # a Docker error included: reported; the next sweeps remove it
                    problems.append(f"container {container[:12]}: {type(exc).__name__}: {exc}")
            for stream in self._sockets:
                with contextlib.suppress(Exception):
                    stream.close()
        return problems


SENTINEL_ATTEMPTS = 3  # starts in a row that may fail before a run gives up keeping a sentinel
SENTINEL_DEFER_SECONDS = 2.0  # twice at most, after the run's first Docker use; well within the start grace


def _read_until_closed(stream: Any) -> None:
    """Block until the engine ends the attach stream (the sentinel exited); nothing is ever sent on it."""
    from docker.utils.socket import read

    with contextlib.suppress(Exception):  # a broken connection ends the stream as well
        while read(stream, 4096):
            pass


def _take_lease(session_id: str) -> Lease:
    from pytest_ecstask.lifecycle import LeaseTaken

    # Held for the whole run: the OS lets go of it when this process dies, however it dies.
    try:
        return Lease.acquire(session_id)
    except LeaseTaken:
        raise pytest.UsageError(
            f"session id {session_id!r} (from {SESSION_ENV}) is in use by another run that is still going; "
            "give each run its own id"
        ) from None


def task_options(
    config: pytest.Config,
    settings: Settings,
    arguments: Mapping[str, Any] | None = None,
    fixture_credentials: Mapping[str, str] | None = None,
) -> TaskOptions:
    """What a task is given: the settings, the plugin's hooks, then a marker's or factory call's arguments.

    A run's tasks and ``--ecs-plan`` both ask here (and ``settings.plan_options`` then), so the plan shown
    is the plan a run makes.
    """
    provider = credentials_provider(config, fixture_credentials, settings.task_credentials)
    return replace(for_task(with_hooks(config, settings.task), arguments or {}), credentials_provider=provider)


def with_hooks(config: pytest.Config, options: TaskOptions) -> TaskOptions:
    """``options`` with the plugin's hooks asked where a task needs an image, a secret, a file or a change."""
    hook = config.hook
    return replace(
        options,
        # The secrets file first, then the hook; real AWS comes last (TaskOptions.aws).
        secret_resolvers=(
            *options.secret_resolvers,
            lambda reference: hook.pytest_ecstask_resolve_secret(reference=reference, container=""),
        ),
        environment_file_resolver=lambda value, container: hook.pytest_ecstask_resolve_environment_file(
            value=value, container=container
        ),
        adjust=lambda definition, source: hook.pytest_ecstask_adjust_task_definition(
            definition=definition, source=source
        ),
        image_resolver=lambda image, container: hook.pytest_ecstask_resolve_image(image=image, container=container),
        registry_auth=lambda image, container: hook.pytest_ecstask_registry_credentials(
            image=image, container=container
        ),
    )


def credentials_provider(
    config: pytest.Config, fixture_value: Mapping[str, str] | None, static: Mapping[str, str] | None
) -> Callable[[str, str], Mapping[str, str] | None]:
    """Task-role credentials from, in order: the hook, the ``ecs_task_credentials`` fixture, the ini key."""

    def provide(role_arn: str, family: str) -> Mapping[str, str] | None:
        given = config.hook.pytest_ecstask_task_credentials(role_arn=role_arn, family=family)
        if given is not None:
            return dict(given)
        if fixture_value is not None:
            return dict(fixture_value)
        return dict(static) if static else None

    return provide


@contextmanager
def deferred_interrupts(reraise: bool = True) -> Iterator[None]:
    """Ctrl-C while removing a task is held back until the removal is done, so nothing is left half-removed.

    It is raised afterwards (``reraise``), except at session finish, where the run is ending anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        if not interrupted:
            print("\necstask: removing tasks, please wait (interrupt again after this finishes)", file=sys.stderr)
        interrupted.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted and reraise:
        raise KeyboardInterrupt
