"""What talks to Docker: the only module that calls the Engine API (through the docker SDK, never the CLI).

A :class:`TaskRunner` carries one :class:`~pytest_ecstask.plan.TaskPlan` through the ECS task lifecycle:
create everything, start independent containers together, gate dependents on their ``dependsOn``
conditions as Docker events arrive, stop the task when an essential container exits, stop containers in
reverse dependency order and remove everything.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_ecstask.errors import DockerUnavailable, EcsTaskError, TaskFailedToStart
from pytest_ecstask.lifecycle import LABEL_SESSION, LABEL_TASK, Resource, now_rfc3339
from pytest_ecstask.pause import normalize_architecture, pause_image_tag, pause_rootfs_tar
from pytest_ecstask.plan import ContainerPlan, TaskPlan
from pytest_ecstask.taskdef import ContainerDependency, DependencyCondition

if TYPE_CHECKING:
    import docker

T = TypeVar("T")

PULL_POLICIES = ("missing", "always", "never")
# What a never-started container reports when a dependency failed (SIGTERM's exit status, as the agent does).
DEPENDENCY_FAILED_EXIT_CODE = 143
LOG_TAIL_ON_FAILURE = 10


class Engine:
    """A connection to one Docker engine, shared by every task of the process."""

    def __init__(self, api: docker.APIClient, host: str) -> None:
        self.api = api
        self.host = host
        self._pause_image: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def connect(cls) -> Engine:
        """Connect as testcontainers does (DOCKER_HOST, its properties file, Docker-in-Docker)."""
        import docker.errors

        try:
            from testcontainers.core.docker_client import DockerClient

            client = DockerClient()
            client.client.api.ping()
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerUnavailable(
                f"No Docker engine answered ({_first_line(exc)}). Start one, or point DOCKER_HOST at a "
                "running engine (for example DOCKER_HOST=unix:///var/run/docker.sock or tcp://host:2375)."
            ) from None
        return cls(client.client.api, client.host())

    def pause_image(self) -> str:
        """The pause image's tag, imported from bytes made on the spot when the engine lacks it."""
        import docker.errors

        with self._lock:
            if self._pause_image is None:
                arch = normalize_architecture(str(self.api.version().get("Arch", "")))
                try:
                    tag = pause_image_tag(arch)
                except ValueError as exc:
                    raise EcsTaskError(
                        f"this engine cannot run a pause container (needed by awsvpc and by pidMode/ipcMode "
                        f"'task'): {exc}"
                    ) from None
                try:
                    self.api.inspect_image(tag)
                except docker.errors.NotFound:
                    repository, _, version = tag.partition(":")
                    self.api.import_image_from_data(
                        pause_rootfs_tar(arch), repository=repository, tag=version, changes=['ENTRYPOINT ["/pause"]']
                    )
                self._pause_image = tag
            return self._pause_image

    def ensure_image(
        self, image: str, containers: Sequence[str], pull: str, auth: Mapping[str, str] | None = None
    ) -> None:
        """Make ``image`` present per the pull policy, or say which containers need it and how to map it."""
        import docker.errors

        who = ", ".join(repr(c) for c in containers)
        if pull != "always":
            try:
                self.api.inspect_image(image)
                return
            except docker.errors.NotFound:
                if pull == "never":
                    raise TaskFailedToStart(
                        f"image {image!r} for container {who} is not present on the engine and the pull policy is "
                        f"'never'; build it, or map it to a local image (--ecs-image '{image}=LOCAL', "
                        "ini ecs_images, or the images argument)"
                    ) from None
        repository, tag = _split_image(image)
        try:
            # Without auth, the SDK uses the engine client's own configuration (~/.docker/config.json).
            self.api.pull(repository, tag=tag, auth_config=dict(auth) if auth else None)
        except docker.errors.APIError as exc:
            raise TaskFailedToStart(
                f"CannotPullContainerError: image {image!r} for container {who} could not be pulled "
                f"({_first_line(exc)}); map it to a local image (--ecs-image '{image}=LOCAL', "
                "ini ecs_images, or the images argument)"
            ) from None


def _split_image(image: str) -> tuple[str, str | None]:
    if "@" in image:
        return image, None
    name, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return image, "latest"


def _already_going(exc: Exception) -> bool:
    """Another remover got there first (a concurrent sweep): the resource is going, which is what we want."""
    return getattr(exc, "status_code", None) == 409 and "in progress" in str(exc)


def _first_line(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class LogLine:
    time: str  # RFC 3339 with nanoseconds, as Docker stamps it
    stream: str  # "stdout" or "stderr"
    text: str


def fetch_log_lines(api: docker.APIClient, docker_id: str, tail: Any = "all") -> list[LogLine]:
    """stdout and stderr with Docker's timestamps, merged in time order."""
    lines = []
    for stream in ("stdout", "stderr"):
        raw = api.logs(docker_id, stdout=stream == "stdout", stderr=stream == "stderr", timestamps=True, tail=tail)
        for line in raw.decode("utf-8", "replace").splitlines():
            stamp, _, text = line.partition(" ")
            lines.append(LogLine(stamp, stream, text))
    lines.sort(key=lambda line: line.time)
    return lines


@dataclass
class ContainerState:
    """What the runtime knows of one container, in the ECS agent's words."""

    plan: ContainerPlan
    docker_id: str | None = None
    status: str = "PENDING"  # PENDING, CREATED, RUNNING, STOPPED (ECS known status)
    started: bool = False
    starting: bool = False  # the start call is under way
    exit_code: int | None = None
    health: str = "UNKNOWN"  # UNKNOWN, HEALTHY, UNHEALTHY
    reason: str | None = None
    started_at: float | None = None  # wall clock
    started_monotonic: float | None = None
    finished_at: float | None = None
    logs: list[LogLine] | None = None  # kept when the container is removed
    paused: bool = False

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def settled(self) -> bool:
        """Will not start any more: running, exited, or given up on."""
        return self.started or self.status == "STOPPED"


@dataclass(frozen=True)
class TimelineEntry:
    at: float  # seconds since the task began
    container: str | None
    what: str


@dataclass
class TaskState:
    status: str = "PROVISIONING"  # PROVISIONING, PENDING, RUNNING, STOPPING, STOPPED (ECS last status)
    stop_code: str | None = None  # TaskFailedToStart, EssentialContainerExited, UserInitiated
    stopped_reason: str | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)


class TaskRunner:
    """Runs one task plan on an engine. Thread-safe; every state change notifies ``self._changed``."""

    def __init__(
        self,
        engine: Engine,
        plan: TaskPlan,
        *,
        pull: str = "missing",
        on_provisioned: Callable[[str, str], None] | None = None,
        on_removed: Callable[[], None] | None = None,
        mask: Callable[[str], str] = str,
    ) -> None:
        if pull not in PULL_POLICIES:
            raise EcsTaskError(f"pull policy {pull!r} is not one of {', '.join(PULL_POLICIES)}")
        self.engine = engine
        self.api = engine.api
        self.plan = plan
        self.pull = pull
        self._on_provisioned = on_provisioned  # images are there: called with the pull start and stop times
        self._on_removed = on_removed
        # Container output quoted in reasons and errors goes through it: resolved secrets never show.
        self.mask = mask
        self.on_timeline: Callable[[TimelineEntry], None] | None = None  # live progress for the reporter
        # Lifecycle events (kind, container, details) for hooks; called from the runner's threads.
        self.listeners: list[Callable[[str, str | None, Mapping[str, Any]], None]] = []
        self.registry_auth: Mapping[str, Mapping[str, str]] = {}  # image -> pull credentials
        self.state = TaskState()
        self.containers: dict[str, ContainerState] = {c.name: ContainerState(c) for c in plan.containers}
        self.pause: ContainerState | None = ContainerState(plan.pause) if plan.pause else None
        self._changed = threading.Condition()
        self._began = time.monotonic()
        self._events: Any = None
        self._event_thread: threading.Thread | None = None
        self._by_id: dict[str, ContainerState] = {}
        self._network_id: str | None = None
        self._volumes_created: list[str] = []  # task-scoped: removed with the task
        self._shared_volumes: list[str] = []  # shared and made by this run: removed once no task uses them
        self._stop_lock = threading.Lock()
        self._removed = False
        self._gating = False
        self._started = False
        self._follower = False  # follows a task another process owns: never removes it
        self.stops_on_essential_exit = True  # followers that did not start the task leave that to the starter

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Create and start the task; returns once every container has started or been given up on.

        Docker errors while creating (a missing image, a refused configuration) remove whatever was
        created and raise TaskFailedToStart. A container that cannot start because of its dependencies
        is an ECS outcome, not an error here: the task stops with ``stop_code`` TaskFailedToStart when
        that container is essential, and its state says why.
        """
        import docker.errors

        if self._started:
            raise EcsTaskError(f"task {self.plan.task_id} was already started; start a new task instead")
        self._started = True
        try:
            pull_started = now_rfc3339()
            self._ensure_images()
            if self._on_provisioned is not None:
                self._on_provisioned(pull_started, now_rfc3339())
            self._watch_events()
            self._create_network_and_volumes()
            if self.pause is not None:
                self._create(self.pause)
                self._start_container(self.pause)
                if not self.pause.started:
                    raise TaskFailedToStart(f"the task's pause container did not start: {self.pause.reason}")
            self._create_containers()
        except docker.errors.APIError as exc:
            self.remove()
            raise TaskFailedToStart(
                f"task {self.plan.family}:{self.plan.revision}: the Docker engine refused to set it up: "
                f"{_first_line(exc)}"
            ) from None
        except BaseException:
            self.remove()
            raise
        self._set_task_status("PENDING")
        self._run_gates()
        failed = [c for c in self.containers.values() if c.plan.essential and not c.started and c.status == "STOPPED"]
        if failed and self.state.stop_code is None:
            first = failed[0]
            self.stop(
                stop_code="TaskFailedToStart",
                reason=f"Essential container {first.name!r} did not start: {first.reason}",
            )
            return
        with self._changed:
            if self.state.status == "PENDING":
                self.state.status = "RUNNING"
                self._record(None, "task RUNNING")
                self._changed.notify_all()

    def stop(self, *, stop_code: str = "UserInitiated", reason: str = "Task stopped by the test") -> None:
        """Stop every container, dependents before their dependencies; idempotent and safe from any thread."""
        with self._changed:
            if self.state.stop_code is None:
                self.state.stop_code = stop_code
                self.state.stopped_reason = reason
            if self.state.status not in ("STOPPING", "STOPPED"):
                self.state.status = "STOPPING"
                self._record(None, f"task STOPPING ({self.state.stop_code})")
            self._changed.notify_all()
        with self._stop_lock:
            if self.state.status == "STOPPED":
                return
            self._stop_containers()
            if self.pause is not None and self.pause.started:
                self._kill(self.pause)
            self._wait_for_exit_codes(timeout=2.0)
            self._set_task_status("STOPPED")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task is STOPPED; False when ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self.state.status != "STOPPED":
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def wait_until_healthy(self, name: str, timeout: float) -> None:
        """Block until container ``name`` is HEALTHY; raise when it turns UNHEALTHY, stops, or time runs out."""
        c = self.containers[name]
        if not c.plan.has_health_check:
            raise EcsTaskError(f"container {name!r} has no healthCheck in the task definition: it never turns HEALTHY")
        deadline = time.monotonic() + timeout
        with self._changed:
            while c.health != "HEALTHY":
                remaining = deadline - time.monotonic()
                if c.health == "UNHEALTHY" or c.status == "STOPPED" or remaining <= 0:
                    break
                self._changed.wait(remaining)
            if c.health == "HEALTHY":
                return
            if c.status == "STOPPED":
                why = f"it stopped (exit code {c.exit_code})" if c.exit_code is not None else f"it stopped: {c.reason}"
            elif c.health == "UNHEALTHY":
                why = "it is UNHEALTHY"
            else:
                why = f"it is not HEALTHY after {timeout:g} s"
            hint = self._health_hint(c) or self._last_logs_hint(c)
        raise EcsTaskError(f"container {name!r}: {why}{hint}")

    def attach(self, *, owned: bool) -> None:
        """Take up a task another process of this run started (xdist workers share one session task).

        State comes from Docker, then follows its events. An ``owned`` task is stopped and removed by this
        runner's ``remove()``; otherwise removal only stops following it.
        """
        import docker.errors

        self._started = True
        self._follower = not owned
        self.stops_on_essential_exit = owned
        self._watch_events()
        label = f"{LABEL_TASK}={self.plan.task_id}"
        by_name = {c.plan.docker_name: c for c in self.containers.values()}
        if self.pause is not None:
            by_name[self.pause.plan.docker_name] = self.pause
        for found in self.api.containers(all=True, filters={"label": label}):
            c = by_name.get((found.get("Names") or ["/"])[0].lstrip("/"))
            if c is None:
                continue
            try:
                info = self.api.inspect_container(found["Id"])
            except docker.errors.NotFound:
                continue
            with self._changed:
                self._by_id[found["Id"]] = c
                c.docker_id = found["Id"]
                state = info["State"]
                c.started = not str(state.get("StartedAt", "")).startswith("0001-")
                c.status = "RUNNING" if state.get("Running") else ("STOPPED" if c.started else "CREATED")
                if c.status == "STOPPED":
                    c.exit_code = int(state.get("ExitCode", 0))
                health = (state.get("Health") or {}).get("Status", "")
                if c.plan.has_health_check and health in ("healthy", "unhealthy"):
                    c.health = health.upper()
        if self.plan.network is not None:
            networks = self.api.networks(names=[self.plan.network.docker_name])
            self._network_id = networks[0]["Id"] if networks else None
        self._volumes_created = [v.docker_name for v in self.plan.volumes if v.docker_name and v.scope == "task"]
        self._shared_volumes = [v.docker_name for v in self.plan.volumes if v.docker_name and v.scope == "shared"]
        running = any(c.status == "RUNNING" for c in self.containers.values() if c.plan.essential)
        self._set_task_status("RUNNING" if running else "STOPPED")

    def remove(self) -> None:
        """Stop what still runs, keep the logs, remove every container, the network and task volumes."""
        if self._removed:
            return
        if self._follower:
            self._removed = True
            self._close_events()
            return
        import docker.errors

        try:
            if self.state.status not in ("STOPPED", "PROVISIONING"):
                self.stop()
        finally:
            self._removed = True
            created = [c for c in self.containers.values() if c.docker_id]
            _parallel(self._capture_logs, created)
            _parallel(self._remove_container, created + ([self.pause] if self.pause and self.pause.docker_id else []))
            self._close_events()
            if self._network_id is not None:
                with contextlib.suppress(docker.errors.NotFound):
                    self.api.remove_network(self._network_id)
            _parallel(self._remove_volume, self._volumes_created)
            _parallel(self._remove_shared_volume, self._shared_volumes)
            if self._on_removed is not None:
                self._on_removed()

    # -- creation --------------------------------------------------------------------------------------

    def _ensure_images(self) -> None:
        by_image: dict[str, list[str]] = {}
        for c in self.plan.containers:
            by_image.setdefault(c.image, []).append(c.name)
        _parallel(
            lambda item: self.engine.ensure_image(item[0], item[1], self.pull, self.registry_auth.get(item[0])),
            list(by_image.items()),
        )

    def _watch_events(self) -> None:
        # Opened before anything is created, so that no start, die or health event can be missed.
        self._events = self.api.events(
            filters={"type": ["container"], "label": [f"{LABEL_TASK}={self.plan.task_id}"]}, decode=True
        )
        self._event_thread = threading.Thread(
            target=self._read_events, name=f"ecstask-events-{self.plan.task_id[:8]}", daemon=True
        )
        self._event_thread.start()

    def _create_network_and_volumes(self) -> None:
        import docker.errors

        if self.plan.network is not None:
            self._network_id = self.api.create_network(
                self.plan.network.docker_name, driver="bridge", labels=dict(self.plan.network.labels)
            )["Id"]
        for volume in self.plan.volumes:
            if volume.docker_name is None:
                continue
            if volume.scope == "shared":
                try:
                    existing = self.api.inspect_volume(volume.docker_name)
                except docker.errors.NotFound:
                    if not volume.autoprovision:
                        raise TaskFailedToStart(
                            f"volume {volume.name!r}: shared Docker volume {volume.docker_name!r} does not exist "
                            "and autoprovision is false; create it first, or set autoprovision to true"
                        ) from None
                else:
                    # Made by an earlier task of this run: whichever task uses it last removes it.
                    if (existing.get("Labels") or {}).get(LABEL_SESSION) == self.plan.labels[LABEL_SESSION]:
                        self._shared_volumes.append(volume.docker_name)
                    continue
            self.api.create_volume(
                volume.docker_name,
                driver=volume.driver,
                driver_opts=dict(volume.driver_opts),
                labels=dict(volume.labels),
            )
            (self._shared_volumes if volume.scope == "shared" else self._volumes_created).append(volume.docker_name)

    def _create_containers(self) -> None:
        # volumesFrom needs its source to exist: create in waves, each wave concurrently.
        remaining = dict(self.containers)
        while remaining:
            wave = [c for c in remaining.values() if all(self.containers[s].docker_id for s in c.plan.created_after)]
            _parallel(self._create, wave)
            for c in wave:
                del remaining[c.name]

    def _create(self, c: ContainerState) -> None:
        import docker.errors

        try:
            created = self.api.create_container_from_config(dict(c.plan.create_body), name=c.plan.docker_name)
        except docker.errors.APIError as exc:
            raise TaskFailedToStart(
                f"CannotCreateContainerError: container {c.name!r} of task {self.plan.family}: {_first_line(exc)}"
            ) from None
        with self._changed:
            c.docker_id = created["Id"]
            c.status = "CREATED"
            self._by_id[created["Id"]] = c
            self._record(c.name, "created")

    # -- starting, gated on dependsOn -----------------------------------------------------------------

    def _run_gates(self) -> None:
        self._gating = True
        threads = [
            threading.Thread(target=self._gate_and_start, args=(c,), name=f"ecstask-start-{c.name}", daemon=True)
            for c in self.containers.values()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._changed:
            self._gating = False
            self._changed.notify_all()

    def _gate_and_start(self, c: ContainerState) -> None:
        announced = False
        waiting_since = time.monotonic()
        with self._changed:
            while True:
                if self.state.status in ("STOPPING", "STOPPED"):
                    c.status = "STOPPED"
                    c.reason = c.reason or "the task stopped before the container started"
                    self._record(c.name, "not started: task stopping")
                    self._changed.notify_all()
                    return
                verdicts = [self._dependency_verdict(d) for d in c.plan.depends_on]
                failure = next((v for v in verdicts if v[0] == "failed"), None)
                if failure is not None:
                    c.status = "STOPPED"
                    c.exit_code = DEPENDENCY_FAILED_EXIT_CODE
                    c.reason = f"DependencyFailed: {failure[1]}"
                    self._record(c.name, f"not started: {failure[1]}")
                    self._changed.notify_all()
                    return
                if all(v[0] == "met" for v in verdicts):
                    c.starting = True
                    if announced:
                        self._record(c.name, f"dependencies met after {time.monotonic() - waiting_since:.1f} s")
                    break
                if not announced:
                    announced = True
                    waiting_since = time.monotonic()
                    pending = [
                        f"{d.container_name} {d.condition.value}"
                        for d, v in zip(c.plan.depends_on, verdicts, strict=False)
                        if v[0] != "met"
                    ]
                    self._record(c.name, f"waiting for {', '.join(pending)}")
                deadlines = [float(v[1]) for v in verdicts if v[0] == "waiting" and v[1] is not None]
                wait = min(deadlines) - time.monotonic() if deadlines else None
                self._changed.wait(None if wait is None else max(wait, 0.0) + 0.01)
        self._start_container(c)

    def _dependency_verdict(self, dep: ContainerDependency) -> tuple[str, Any]:
        """("met", None), ("failed", why) or ("waiting", monotonic deadline or None). Caller holds the lock."""
        d = self.containers[dep.container_name]
        condition = dep.condition
        if not d.started:
            if d.status == "STOPPED":
                return "failed", f"dependency {d.name!r} never started ({d.reason})"
            return "waiting", None
        exited = d.status == "STOPPED"
        if condition is DependencyCondition.START:
            return "met", None
        if condition is DependencyCondition.COMPLETE and exited:
            return "met", None
        if condition is DependencyCondition.SUCCESS and exited:
            if d.exit_code == 0:
                return "met", None
            return "failed", (
                f"dependency {d.name!r} exited with code {d.exit_code}; condition SUCCESS needs exit code 0"
                + self._last_logs_hint(d)
            )
        if condition is DependencyCondition.HEALTHY:
            if d.health == "HEALTHY":
                return "met", None
            if exited:
                return "failed", (
                    f"dependency {d.name!r} exited with code {d.exit_code} before it was HEALTHY"
                    + self._last_logs_hint(d)
                )
        timeout = d.plan.start_timeout
        if timeout is not None and d.started_monotonic is not None:
            deadline = d.started_monotonic + timeout
            if time.monotonic() >= deadline:
                return "failed", (
                    f"dependency {d.name!r} did not reach {condition.value} within its startTimeout of "
                    f"{timeout:g} s" + self._health_hint(d)
                )
            return "waiting", deadline
        return "waiting", None

    def _last_logs_hint(self, d: ContainerState) -> str:
        # Called with the lock held: keep it to one short Docker call.
        if d.docker_id is None:
            return ""
        try:
            text = self.api.logs(d.docker_id, tail=LOG_TAIL_ON_FAILURE).decode("utf-8", "replace").rstrip()
        except Exception:
            return ""
        return f"; its last log lines:\n{_indent(self.mask(text))}" if text else ""

    def _health_hint(self, d: ContainerState) -> str:
        if not d.plan.has_health_check or d.docker_id is None:
            return ""
        try:
            log = self.api.inspect_container(d.docker_id)["State"].get("Health", {}).get("Log") or []
        except Exception:
            return ""
        outputs = [f"exit {e.get('ExitCode')}: {self.mask(str(e.get('Output', '')).strip())}" for e in log[-3:]]
        return f"; health status {d.health}, last health checks:\n{_indent(chr(10).join(outputs))}" if outputs else ""

    def _start_container(self, c: ContainerState) -> None:
        import docker.errors

        assert c.docker_id is not None
        try:
            self.api.start(c.docker_id)
        except docker.errors.APIError as exc:
            with self._changed:
                c.starting = False
                c.status = "STOPPED"
                c.reason = f"CannotStartContainerError: {_first_line(exc)}"
                self._record(c.name, c.reason)
                self._changed.notify_all()
            return
        with self._changed:
            c.starting = False
            self._mark_started(c)

    def _mark_started(self, c: ContainerState) -> None:
        if c.started:
            return
        c.started = True
        c.started_at = time.time()
        c.started_monotonic = time.monotonic()
        if c.status != "STOPPED":
            c.status = "RUNNING"
        self._record(c.name, "started")
        self._emit("container_started", c.name)
        self._changed.notify_all()

    # -- events ----------------------------------------------------------------------------------------

    def _read_events(self) -> None:
        try:
            for event in self._events:
                self._on_event(event)
        except Exception:
            # The stream ends with an error when it is closed at removal; nothing to report.
            return

    def _on_event(self, event: Mapping[str, Any]) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        c = self._by_id.get(str(event.get("id") or event.get("Actor", {}).get("ID", "")))
        if c is None:
            return
        attributes = event.get("Actor", {}).get("Attributes", {})
        essential_exit = False
        with self._changed:
            if action == "start":
                if c.started and c.status == "STOPPED" and self.state.status in ("PENDING", "RUNNING"):
                    # Started again (a test restarting it): running once more, the old exit code gone.
                    c.status, c.exit_code, c.finished_at = "RUNNING", None, None
                    self._record(c.name, "started again")
                self._mark_started(c)
            elif action in ("pause", "unpause"):
                c.paused = action == "pause"
                self._record(c.name, "paused" if c.paused else "unpaused")
            elif action == "die":
                self._mark_started(c)
                c.status = "STOPPED"
                c.finished_at = time.time()
                code = attributes.get("exitCode")
                c.exit_code = int(code) if code is not None else c.exit_code
                self._record(c.name, f"exited with code {c.exit_code}")
                self._emit("container_exited", c.name, exit_code=c.exit_code)
                essential_exit = c.plan.essential and self.state.status in ("PENDING", "RUNNING")
                if self._follower and not self.stops_on_essential_exit:
                    essential_exit = False  # the process that started the task stops it
                    if all(x.status == "STOPPED" for x in self.containers.values()):
                        self.state.status = "STOPPED"
            elif action.startswith("health_status:") and c.plan.has_health_check:
                # An image's own HEALTHCHECK does not count: ECS reports only task definition health checks.
                status = action.split(":", 1)[1].strip().upper()
                c.health = status if status in ("HEALTHY", "UNHEALTHY") else c.health
                self._record(c.name, f"health {c.health}")
                if c.health == "HEALTHY":
                    self._emit("container_healthy", c.name)
            self._changed.notify_all()
        if essential_exit:
            # Stopping blocks on Docker: do it off the event thread, which must keep reading.
            threading.Thread(
                target=self.stop,
                kwargs={
                    "stop_code": "EssentialContainerExited",
                    "reason": f"Essential container in task exited: {c.name!r} exited with code {c.exit_code}",
                },
                name=f"ecstask-stop-{self.plan.task_id[:8]}",
                daemon=True,
            ).start()

    def _close_events(self) -> None:
        if self._events is not None:
            with contextlib.suppress(Exception):
                self._events.close()
            self._events = None

    # -- stopping and removal -------------------------------------------------------------------------

    def _stop_containers(self) -> None:
        def stop_after_dependents(c: ContainerState) -> None:
            dependents = [self.containers[n] for n in self.plan.dependents(c.name)]
            with self._changed:
                # Dependents first. One still gating sees the task STOPPING and gives up, which counts.
                while not all(self._done_for_stop(d) for d in dependents) or c.starting:
                    self._changed.wait()
                running = c.started and c.status != "STOPPED"
            if running:
                self._record(c.name, "stopping (SIGTERM)")
                self._stop(c)
            with self._changed:
                c.status = "STOPPED"
                self._changed.notify_all()

        _parallel(stop_after_dependents, list(self.containers.values()), workers=len(self.containers))

    def _done_for_stop(self, c: ContainerState) -> bool:
        return c.status == "STOPPED" or (not c.started and not c.starting and not self._gating)

    def _stop(self, c: ContainerState) -> None:
        import docker.errors

        assert c.docker_id is not None
        with contextlib.suppress(docker.errors.NotFound):
            self.api.stop(c.docker_id, timeout=math.ceil(c.plan.stop_timeout))

    def _kill(self, c: ContainerState) -> None:
        import docker.errors

        assert c.docker_id is not None
        with contextlib.suppress(docker.errors.APIError):  # already gone or not running
            self.api.kill(c.docker_id)
        with self._changed:
            c.status = "STOPPED"

    def _wait_for_exit_codes(self, timeout: float) -> None:
        """Exit codes arrive with die events; ask Docker only for those that did not come in time."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                missing = [c for c in self.containers.values() if c.started and c.exit_code is None]
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0:
                    break
                self._changed.wait(remaining)
        for c in missing:
            assert c.docker_id is not None
            with contextlib.suppress(Exception):
                c.exit_code = int(self.api.inspect_container(c.docker_id)["State"]["ExitCode"])

    def _capture_logs(self, c: ContainerState) -> None:
        assert c.docker_id is not None
        try:
            c.logs = fetch_log_lines(self.api, c.docker_id)
        except Exception:
            c.logs = c.logs or []

    def _remove_container(self, c: ContainerState) -> None:
        import docker.errors

        assert c.docker_id is not None
        try:
            self.api.remove_container(c.docker_id, v=True, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if not _already_going(exc):
                raise

    def _remove_volume(self, name: str) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_volume(name, force=True)

    def _remove_shared_volume(self, name: str) -> None:
        import docker.errors

        try:
            self.api.remove_volume(name)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: another task of this run still uses it, and will remove it
                raise

    # -- helpers ---------------------------------------------------------------------------------------

    def _set_task_status(self, status: str) -> None:
        with self._changed:
            self.state.status = status
            self._record(None, f"task {status}")
            self._changed.notify_all()
        if status == "STOPPED":
            self._emit("task_stopped", None, stop_code=self.state.stop_code, reason=self.state.stopped_reason)

    def _emit(self, kind: str, container: str | None, **details: Any) -> None:
        for listener in self.listeners:
            with contextlib.suppress(Exception):  # a reporting hook must never break the task
                listener(kind, container, details)

    def _record(self, container: str | None, what: str) -> None:
        entry = TimelineEntry(round(time.monotonic() - self._began, 4), container, self.mask(what))
        self.state.timeline.append(entry)
        if self.on_timeline is not None:
            with contextlib.suppress(Exception):  # reporting must never break the task
                self.on_timeline(entry)


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _parallel(fn: Callable[[T], Any], items: Sequence[T], workers: int | None = None) -> None:
    """Run ``fn`` over ``items`` concurrently; re-raise the first error after all have finished."""
    if not items:
        return
    if len(items) == 1:
        fn(items[0])
        return
    with ThreadPoolExecutor(max_workers=workers or min(len(items), 16)) as pool:
        futures = [pool.submit(fn, item) for item in items]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]


def list_resources(api: docker.APIClient, label: str = LABEL_SESSION) -> list[Resource]:
    """Every container, network and volume carrying ``label``: one filtered call per resource type."""
    found = [
        Resource("container", c["Id"], (c.get("Names") or [c["Id"]])[0].lstrip("/"), c.get("Labels") or {})
        for c in api.containers(all=True, filters={"label": label})
    ]
    found += [
        Resource("network", n["Id"], n["Name"], n.get("Labels") or {}) for n in api.networks(filters={"label": label})
    ]
    found += [
        Resource("volume", v["Name"], v["Name"], v.get("Labels") or {})
        for v in api.volumes(filters={"label": label}).get("Volumes") or []
    ]
    return found


def remove_resources(api: docker.APIClient, resources: Sequence[Resource]) -> list[tuple[Resource, str]]:
    """Remove in parallel: containers first (they hold networks and volumes), then networks, then volumes.

    Returns what could not be removed, with Docker's reason; something already gone counts as removed.
    """
    import docker.errors

    failures: list[tuple[Resource, str]] = []
    lock = threading.Lock()

    def remove(r: Resource) -> None:
        try:
            if r.kind == "container":
                api.remove_container(r.id, v=True, force=True)
            elif r.kind == "network":
                api.remove_network(r.id)
            else:
                api.remove_volume(r.id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if not _already_going(exc):
                with lock:
                    failures.append((r, _first_line(exc)))

    for kind in ("container", "network", "volume"):
        batch = [r for r in resources if r.kind == kind]
        if batch:
            with ThreadPoolExecutor(max_workers=min(len(batch), 16)) as pool:
                list(pool.map(remove, batch))
    return failures


def remove_labelled(api: docker.APIClient, label: str) -> int:
    """Remove every container, network and volume carrying ``label``; returns how many were found."""
    found = list_resources(api, label)
    remove_resources(api, found)
    return len(found)
