"""What talks to Docker: the only module that calls the Engine API (through the docker SDK, never the CLI).

A :class:`TaskRunner` carries one :class:`~pytest_ecstask.plan.TaskPlan` through the ECS task lifecycle:
create everything, start independent containers together, gate dependents on their ``dependsOn``
conditions as Docker events arrive, stop the task when an essential container exits, stop containers in
reverse dependency order and remove everything.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_ecstask.background import Background
from pytest_ecstask.dockerstate import HEALTHY, PENDING, PROVISIONING, STOPPED, STOPPING, UNHEALTHY, observed_status
from pytest_ecstask.errors import DockerUnavailable, EcsTaskError, TaskFailedToStart
from pytest_ecstask.leftovers import Resource
from pytest_ecstask.lifecycle import LABEL_SESSION, LABEL_TASK, now_rfc3339
from pytest_ecstask.pause import (
    normalize_architecture,
    pause_image_tag,
    pause_rootfs_tar,
    sentinel_image_tag,
    sentinel_rootfs_tar,
)
from pytest_ecstask.plan import TaskPlan, VolumePlan
from pytest_ecstask.taskstate import (
    Action,
    ContainerState,
    Emit,
    Evidence,
    Failed,
    LogLine,
    Note,
    RestartContainer,
    Role,
    StopTask,
    TaskMachine,
    TimelineEntry,
    container_event,
    not_healthy_why,
)

if TYPE_CHECKING:
    import docker

T = TypeVar("T")
Inspected = Mapping[str, Mapping[str, Any] | None]  # inspect data by container name; None: gone

PULL_POLICIES = ("missing", "always", "never")
LOG_TAIL_ON_FAILURE = 10
CONFIRM_EVERY = 5.0  # seconds: a wait on dependencies asks Docker itself at least this often
SIGKILL_EXIT_CODE = 137
EXIT_TAKEN_WITHIN = 5.0  # seconds a stop from the test waits for the exit event before asking Docker


def describe_engine(version: Mapping[str, Any], host: str) -> str:
    """Which engine answers, from its version response: Docker Engine, Docker Desktop or Podman, its version."""
    components = {str(c.get("Name", "")): str(c.get("Version", "")) for c in version.get("Components") or []}
    platform = str((version.get("Platform") or {}).get("Name") or "")
    podman = next((name for name in components if "podman" in name.lower()), None)
    if podman is not None:
        kind, number = "Podman", components[podman]
    else:
        kind = "Docker Desktop" if "desktop" in platform.lower() else "Docker Engine"
        number = str(version.get("Version") or components.get("Engine", "?"))
    where = f"{version.get('Os', '?')}/{version.get('Arch', '?')}, API {version.get('ApiVersion', '?')}"
    return f"{kind} {number} ({where}) at {host}"


def import_sdk() -> None:
    """What ``Engine.connect`` imports: the Docker SDK and testcontainers (0.1 to 0.2 s of CPU)."""
    import docker.errors  # noqa: F401
    import testcontainers.core.docker_client  # noqa: F401


class Engine:
    """A connection to one Docker engine, shared by every task of the process."""

    def __init__(self, api: docker.APIClient, host: str) -> None:
        self.api = api
        self.host = host
        self._pause_image: str | None = None
        self._lock = threading.Lock()
        self._podman: bool | None = None
        self._version: Mapping[str, Any] | None = None

    @property
    def podman(self) -> bool:
        """Whether Podman serves the API (asked once): it needs the health checks run for it, see HealthDriver."""
        if self._podman is None:
            try:
                self._podman = self.describe().startswith("Podman")
            except Exception:
                self._podman = False
        return self._podman

    def version(self) -> Mapping[str, Any]:
        """The engine's version answer, asked once: its kind, version and architecture."""
        if self._version is None:
            self._version = dict(self.api.version())
        return self._version

    def describe(self) -> str:
        return describe_engine(self.version(), self.host)

    def run_health_check(self, docker_id: str) -> None:
        """Podman's own endpoint that runs a container's health check once, as its timer would."""
        url = self.api._url("/libpod/containers/{0}/healthcheck", docker_id)  # type: ignore[attr-defined]
        self.api._result(self.api._get(url))  # type: ignore[attr-defined]

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

        with self._lock:
            if self._pause_image is None:
                arch = normalize_architecture(str(self.version().get("Arch", "")))
                try:
                    tag = pause_image_tag(arch)
                except ValueError as exc:
                    raise EcsTaskError(
                        f"this engine cannot run a pause container (needed by awsvpc and by pidMode/ipcMode "
                        f"'task'): {exc}"
                    ) from None
                self._pause_image = self._imported(tag, pause_rootfs_tar, arch, "/pause")
            return self._pause_image

    def _imported(self, tag: str, rootfs: Callable[[str], bytes], arch: str, entrypoint: str) -> str:
        """An image made on the spot, imported unless the engine has it; its tag.

        Podman's import takes the repository but not the tag (it tags ``latest``): the imported image is
        tagged by its id, which both engines answer with.
        """
        import json

        import docker.errors

        try:
            self.api.inspect_image(tag)
        except docker.errors.NotFound:
            repository, _, version = tag.partition(":")
            answer = self.api.import_image_from_data(
                rootfs(arch), repository=repository, tag=version, changes=[f'ENTRYPOINT ["{entrypoint}"]']
            )
            ids = [
                str(line.get("id") or line.get("status") or "")
                for line in (json.loads(text) for text in str(answer).splitlines() if text.strip().startswith("{"))
            ]
            image_id = next((i for i in reversed(ids) if i.startswith("sha256:")), None)
            if image_id is not None:
                self.api.tag(image_id, repository, version)
        return tag

    def sentinel_image(self) -> str:
        """The sentinel image's tag (see lifecycle), imported from bytes made on the spot when missing."""

        arch = normalize_architecture(str(self.version().get("Arch", "")))
        tag = sentinel_image_tag(arch)  # ValueError for an architecture without a sentinel program
        with self._lock:
            return self._imported(tag, sentinel_rootfs_tar, arch, "/sentinel")

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
        try:
            pull_image(self.api, image, auth)
        except docker.errors.APIError as exc:
            raise TaskFailedToStart(
                f"CannotPullContainerError: image {image!r} for container {who} could not be pulled "
                f"({_first_line(exc)}); map it to a local image (--ecs-image '{image}=LOCAL', "
                "ini ecs_images, or the images argument)"
            ) from None


def pull_image(api: docker.APIClient, image: str, auth: Mapping[str, str] | None = None) -> None:
    """Pull ``image``, raising Docker's APIError for a failure the engine tells inside the stream (Podman
    answers 200 and then says it there). Without auth, the SDK uses the client's own ~/.docker/config.json."""
    import docker.errors

    repository, tag = _split_image(image)
    for line in api.pull(repository, tag=tag, stream=True, decode=True, auth_config=dict(auth) if auth else None):
        error = isinstance(line, dict) and (line.get("error") or (line.get("errorDetail") or {}).get("message"))
        if error:
            raise docker.errors.APIError(str(error), explanation=str(error))


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


class TaskRunner:
    """Runs one task plan on an engine: performs what the task's state machine decides, feeds it Docker's events.

    Thread-safe; every state change notifies ``self._changed``. The ECS rules live in
    :class:`~pytest_ecstask.taskstate.TaskMachine`; this class holds the threads and makes the Docker calls.
    """

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
        self.machine = TaskMachine(plan)
        self.state = self.machine.state
        self.containers = self.machine.containers
        self.pause = self.machine.pause
        self._changed = threading.Condition()
        self._began = time.monotonic()
        self._events: Any = None
        self._events_closing = False  # set when the runner itself ends the stream: it is not resumed then
        self.events_gap = False  # the stream dropped once: events may have been lost, exits come from inspect too
        self._events_opened = 0.0  # wall time the stream was first opened
        self._event_thread: threading.Thread | None = None
        self._by_id: dict[str, ContainerState] = {}
        self._network_id: str | None = None
        self._volumes_created: list[str] = []  # task-scoped: removed with the task
        self._shared_volumes: list[str] = []  # shared and made by this run: removed once no task uses them
        self._stop_lock = threading.Lock()
        self._removed_early: set[str] = set()  # removed as soon as they stopped (see stop's ``removing``)
        self._left_early: list[str] = []  # what of those could not be removed, and why
        # Containers that ignored SIGTERM at the task's stop: (name, seconds the stop took, its timeout).
        self.killed_at_stop: list[tuple[str, float, int]] = []
        self._removed = False
        self._started = False

    @property
    def role(self) -> Role:
        return self.machine.role

    @property
    def removed(self) -> bool:
        return self._removed

    def hand_over_removal(self) -> None:
        """This process started the task for the run; another one (the xdist controller) removes it."""
        self.machine.role = Role.STARTER

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Create and start the task; returns once every container has started or been given up on.

        Docker errors while creating (a missing image, a refused configuration) remove whatever was
        created and raise TaskFailedToStart. A container that cannot start because of its dependencies
        is an ECS outcome, not an error here: the task stops with ``stop_code`` TaskFailedToStart when
        that container is essential, and its state says why.
        """
        if self._started:
            raise EcsTaskError(f"task {self.plan.task_id} was already started; start a new task instead")
        self._started = True
        self._provision()
        self._set_task_status(PENDING)
        self._drive_health_checks()
        self._run_gates()
        with self._changed:
            failed_to_start = self._perform(self.machine.after_gates(), stop_now=True)
        if failed_to_start is not None:
            self.stop(stop_code=failed_to_start.stop_code, reason=failed_to_start.reason)

    def _drive_health_checks(self) -> None:
        """On Podman, run the health checks Podman may not run (see HealthDriver)."""
        if self.engine.podman and any(c.plan.has_health_check for c in self.containers.values()):
            HealthDriver(self).start()

    def _provision(self) -> None:
        """Images, the event stream, the network, volumes, the pause container and every container."""
        import docker.errors

        provisioned = Background(None)
        try:
            pull_started = now_rfc3339()
            self._ensure_images()
            # Told while the containers are created (the endpoint server may still be starting), and done
            # before any of them starts: what a container asks the server of its task is known by then.
            provisioned = Background(self._on_provisioned, pull_started, now_rfc3339())
            self._watch_events()
            self._create_network_and_volumes()
            if self.pause is not None:  # it asks the server nothing
                self._create(self.pause)
                self._start_container(self.pause)
                if not self.pause.started:
                    raise TaskFailedToStart(f"the task's pause container did not start: {self.pause.reason}")
            self._create_containers()
            provisioned.result()
        except docker.errors.APIError as exc:
            provisioned.settle()
            self.remove()
            raise TaskFailedToStart(
                f"task {self.plan.family}:{self.plan.revision}: the Docker engine refused to set it up: "
                f"{_first_line(exc)}"
            ) from None
        except BaseException:
            provisioned.settle()
            self.remove()
            raise

    def stop(
        self, *, stop_code: str = "UserInitiated", reason: str = "Task stopped by the test", removing: bool = False
    ) -> None:
        """Stop every container, dependents before their dependencies; idempotent and safe from any thread.

        ``removing``: the task is being removed, so each container is removed as soon as it has stopped,
        unless another container was created after it (its volumes or link are used by that one).
        """
        with self._changed:
            self._perform(self.machine.request_stop(stop_code, reason))
        with self._stop_lock:
            if self.state.status == STOPPED:
                return
            self._stop_containers(removing)
            if self.pause is not None and self.pause.started:
                self._kill(self.pause)
            self._wait_for_exit_codes(timeout=2.0)
            self._set_task_status(STOPPED)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task is STOPPED; False when ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self.state.status != STOPPED:
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
            while c.health != HEALTHY:
                remaining = deadline - time.monotonic()
                if c.health == UNHEALTHY or c.status == STOPPED or remaining <= 0:
                    break
                self._changed.wait(remaining)
            if c.health == HEALTHY:
                return
            why = not_healthy_why(c, timeout)
            hint = self._health_hint(c) or self._last_logs_hint(c)
        raise EcsTaskError(f"container {name!r}: {why}{hint}")

    def attach(self, *, owned: bool, inspected: Inspected | None = None) -> None:
        """Take up a task another process of this run started (xdist workers share one session task), or
        one an earlier run kept (``inspected``: its containers' inspect data, by Docker name, just read).

        State comes from Docker, then follows its events. An ``owned`` task is stopped and removed by this
        runner's ``remove()``; otherwise removal only stops following it.
        """
        self._started = True
        self.machine.role = Role.OWNER if owned else Role.FOLLOWER
        self._watch_events()
        if inspected is not None:  # read before the events were followed: what changed since, read again
            inspected = {**inspected, **inspect_containers(self.api, self._changed_since(inspected))}
        for docker_id, c, info in self._inspect_task_containers(inspected):
            seen = observed_status(info["State"], has_health_check=c.plan.has_health_check)
            with self._changed:
                self._by_id[docker_id] = c
                self.machine.observe(c.name, docker_id, seen)
        if self.plan.network is not None and self.plan.network.owned_by_task:
            networks = self.api.networks(names=[self.plan.network.docker_name])
            self._network_id = networks[0]["Id"] if networks else None
        self._volumes_created = [v.docker_name for v in self.plan.volumes if v.docker_name and v.scope == "task"]
        self._shared_volumes = [v.docker_name for v in self.plan.volumes if v.docker_name and v.scope == "shared"]
        self._set_task_status(self.machine.adopted_status())
        self._drive_health_checks()  # an xdist worker that takes up the session task keeps its health going

    def _changed_since(self, inspected: Inspected) -> list[str]:
        """The containers whose state or health the engine's list shows otherwise than ``inspected`` did."""
        listed = {
            (c.get("Names") or ["/"])[0].lstrip("/"): c
            for c in self.api.containers(all=True, filters={"label": f"{LABEL_TASK}={self.plan.task_id}"})
        }
        changed = []
        for name, info in inspected.items():
            state = (info or {}).get("State") or {}
            health = str((state.get("Health") or {}).get("Status") or "")
            now = listed.get(name)
            status = str((now or {}).get("Status") or "")
            shown = "(health: starting)" if health == "starting" else f"({health})"  # as the list shows it
            if now is None or now.get("State") != state.get("Status") or (health and shown not in status):
                changed.append(name)
        return changed

    def _inspect_task_containers(
        self, inspected: Inspected | None = None
    ) -> list[tuple[str, ContainerState, Mapping[str, Any]]]:
        """The task's containers on the engine, by the names the plan gave them, with their inspect data."""
        import docker.errors

        by_name = {c.plan.docker_name: c for c in self.containers.values()}
        if self.pause is not None:
            by_name[self.pause.plan.docker_name] = self.pause
        if inspected is not None:
            return [
                (str(info["Id"]), by_name[name], info) for name, info in inspected.items() if info and name in by_name
            ]
        found = []
        for listed in self.api.containers(all=True, filters={"label": f"{LABEL_TASK}={self.plan.task_id}"}):
            c = by_name.get((listed.get("Names") or ["/"])[0].lstrip("/"))
            if c is None:
                continue
            with contextlib.suppress(docker.errors.NotFound):
                found.append((listed["Id"], c, self.api.inspect_container(listed["Id"])))
        return found

    def remove(self) -> None:
        """Stop what still runs, keep the logs, remove every container, the network and task volumes."""
        if self._removed:
            return
        if not self.machine.role.removes:
            self._removed = True
            self._close_events()
            return
        try:
            if self.state.status not in (STOPPED, PROVISIONING):
                self.stop(removing=True)
        finally:
            self._removed = True
            self._remove_everything()

    def _remove_everything(self) -> None:
        """Each step is tried whatever failed before; then one error names everything that is left.

        A volume is removed only once every container of the task is gone: a container that could not be
        removed may still use it. What is left carries the run's labels, so a later sweep removes it.
        """
        created = [c for c in self.containers.values() if c.docker_id and c.name not in self._removed_early]
        named = lambda c: f"container {c.plan.docker_name}"  # noqa: E731
        left = self._left_early + _attempt(self._capture_logs_and_remove, created, named)
        if self.pause is not None and self.pause.docker_id:  # last: Podman refuses it while others share it
            left += _attempt(self._remove_container, [self.pause], named)
        self._close_events()
        if self._network_id is not None:
            network_id = self._network_id
            left += _attempt(
                lambda _: _remove_tolerantly(lambda: self.api.remove_network(network_id)),
                [network_id],
                lambda _: "the task network",
            )
        volumes = self._volumes_created + self._shared_volumes
        if left:
            left += [f"volume {name}: kept while a container of the task may use it" for name in volumes]
        else:
            left += _attempt(
                lambda name: _remove_tolerantly(lambda: self.api.remove_volume(name, force=True)),
                self._volumes_created,
                lambda name: f"volume {name}",
            )
            # 409: another task of this run still uses a shared volume, and will remove it
            left += _attempt(
                lambda name: _remove_tolerantly(lambda: self.api.remove_volume(name), in_use_ok=True),
                self._shared_volumes,
                lambda name: f"volume {name}",
            )
        if self._on_removed is not None:
            self._on_removed()
        if left:
            raise EcsTaskError(
                f"task {self.plan.family}:{self.plan.revision} ({self.plan.task_id}): could not remove "
                + "; ".join(left)
                + " (a later sweep removes them once this run has ended)"
            )

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
        self._events_closing = False
        self._events_opened = time.time()
        self._events = self._open_events(None)
        self._event_thread = threading.Thread(
            target=self._read_events, name=f"ecstask-events-{self.plan.task_id[:8]}", daemon=True
        )
        self._event_thread.start()

    def _create_network_and_volumes(self) -> None:
        # In bridge mode the containers go on Docker's default bridge, which is never created nor removed here.
        if self.plan.network is not None and self.plan.network.owned_by_task:
            self._network_id = self.api.create_network(
                self.plan.network.docker_name, driver="bridge", labels=dict(self.plan.network.labels)
            )["Id"]
        for volume in self.plan.volumes:
            if volume.docker_name is not None and (volume.scope != "shared" or self._shared_volume_missing(volume)):
                self.api.create_volume(
                    volume.docker_name,
                    driver=volume.driver,
                    driver_opts=dict(volume.driver_opts),
                    labels=dict(volume.labels),
                )
                (self._shared_volumes if volume.scope == "shared" else self._volumes_created).append(volume.docker_name)

    def _shared_volume_missing(self, volume: VolumePlan) -> bool:
        """A shared volume is made once: True when it must be made now (autoprovision allowing)."""
        import docker.errors

        assert volume.docker_name is not None
        try:
            existing = self.api.inspect_volume(volume.docker_name)
        except docker.errors.NotFound:
            if not volume.autoprovision:
                raise TaskFailedToStart(
                    f"volume {volume.name!r}: shared Docker volume {volume.docker_name!r} does not exist "
                    "and autoprovision is false; create it first, or set autoprovision to true"
                ) from None
            return True
        # Made by an earlier task of this run: whichever task uses it last removes it.
        if (existing.get("Labels") or {}).get(LABEL_SESSION) == self.plan.labels[LABEL_SESSION]:
            self._shared_volumes.append(volume.docker_name)
        return False

    def _create_containers(self) -> None:
        # volumesFrom needs its source to exist: create in waves, each wave concurrently. On Podman, a
        # container with links (and what is created after it) waits for its gate: see _create_linked.
        remaining = {name: c for name, c in self.containers.items() if name not in self._created_late()}
        while remaining:
            wave = [c for c in remaining.values() if all(self.containers[s].docker_id for s in c.plan.created_after)]
            _parallel(self._create, wave)
            for c in wave:
                del remaining[c.name]

    def _created_late(self) -> frozenset[str]:
        """Podman's Docker API refuses legacy links: a container with links is created once the containers
        it links to run (they are START dependencies), with their addresses as /etc/hosts entries."""
        if not self.engine.podman:
            return frozenset()
        late = {
            name for name, c in self.containers.items() if (c.plan.create_body.get("HostConfig") or {}).get("Links")
        }
        while True:
            more = {name for name, c in self.containers.items() if late.intersection(c.plan.created_after)} - late
            if not more:
                return frozenset(late)
            late |= more

    def _create(self, c: ContainerState, body: Mapping[str, Any] | None = None) -> None:
        import docker.errors

        try:
            created = self.api.create_container_from_config(dict(body or c.plan.create_body), name=c.plan.docker_name)
        except docker.errors.APIError as exc:
            raise TaskFailedToStart(
                f"CannotCreateContainerError: container {c.name!r} of task {self.plan.family}: {_first_line(exc)}"
            ) from None
        with self._changed:
            self._by_id[created["Id"]] = c
            self._perform(self.machine.created(c.name, created["Id"]))

    def _create_linked(self, c: ContainerState) -> bool:
        """Create, at its gate, a container whose links Podman refuses: each link becomes a hosts entry for
        the alias and the target's name, at the address the target has now, as Docker's link would write it.
        Called with the lock held; False when the engine refused it (the container then ends STOPPED)."""
        sources = [self.containers[name] for name in c.plan.created_after]  # volumesFrom, created late too
        self._changed.wait_for(lambda: all(d.docker_id or d.status == STOPPED for d in sources))
        never = [d.name for d in sources if not d.docker_id]
        if never:
            why = f"CannotCreateContainerError: container {never[0]!r}, which it needs, was never created"
            self._perform(self.machine.start_refused(c.name, why, created=False))
            return False
        body = dict(c.plan.create_body)
        host_config = dict(body.get("HostConfig") or {})
        by_docker_name = {d.plan.docker_name: d for d in self.containers.values()}
        hosts = list(host_config.get("ExtraHosts") or [])
        self._changed.release()
        try:
            for link in host_config.pop("Links", []):
                target, _, alias = link.partition(":")
                address = self._address_of(by_docker_name[target])
                hosts += [f"{name}:{address}" for name in dict.fromkeys([alias or target, target])]
            host_config["ExtraHosts"] = hosts
            body["HostConfig"] = host_config
            self._create(c, body)
            return True
        except TaskFailedToStart as exc:
            why = str(exc)
        finally:
            self._changed.acquire()
        self._perform(self.machine.start_refused(c.name, why, created=False))
        return False

    def _address_of(self, target: ContainerState) -> str:
        if target.docker_id is None:
            raise TaskFailedToStart(f"CannotCreateContainerError: its link target {target.name!r} was never created")
        settings = self.api.inspect_container(target.docker_id).get("NetworkSettings") or {}
        networks = (settings.get("Networks") or {}).values()
        address = next((str(a) for a in [settings.get("IPAddress"), *(n.get("IPAddress") for n in networks)] if a), "")
        if not address:
            raise TaskFailedToStart(f"CannotCreateContainerError: its link target {target.name!r} has no address")
        return address

    # -- starting, gated on dependsOn -----------------------------------------------------------------

    def _run_gates(self) -> None:
        with self._changed:
            self.machine.gating = True
        threads = [
            threading.Thread(target=self._gate_and_start, args=(c,), name=f"ecstask-start-{c.name}", daemon=True)
            for c in self.containers.values()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._changed:
            self.machine.gating = False
            self._changed.notify_all()

    def _gate_and_start(self, c: ContainerState) -> None:
        asked_docker, confirmed_failure = time.monotonic(), False
        with self._changed:
            while True:
                gate = self.machine.gate(c.name, time.monotonic())
                if gate.failed is not None and not confirmed_failure:
                    # Before giving up, Docker's own view: an event the wait missed would change the verdict.
                    self._confirm(c)
                    confirmed_failure = True
                    continue
                self._perform(gate.actions)
                if gate.start:
                    break
                if gate.failed is not None:
                    self._perform(self.machine.give_up(c.name, gate.failed.why + self._evidence(gate.failed)))
                    return
                if gate.done:
                    return
                now = time.monotonic()
                every = self._confirm_every(c)
                wait = every if gate.deadline is None else min(max(gate.deadline - now, 0.0) + 0.01, every)
                self._changed.wait(wait)
                if time.monotonic() - asked_docker >= every:
                    self._confirm(c)  # events can be late or lost, and some engines send no health events
                    asked_docker = time.monotonic()
                self._perform(self.machine.still_waiting(c.name, time.monotonic()))
            if c.docker_id is None and not self._create_linked(c):
                return
            if self.state.status in (STOPPING, STOPPED):  # the task stopped while it was being created
                c.starting = False
                self._perform(self.machine.gate(c.name, time.monotonic()).actions)
                self._changed.notify_all()
                return
        self._start_container(c)

    def wait_for_exit(self, name: str, exits_before: int, timeout: float = EXIT_TAKEN_WITHIN) -> None:
        """After the test stopped a container: return once its exit is taken, from its event or, when that is
        late (some engines send it after the stop call returns, or not at all), from Docker's inspect."""
        c = self.containers[name]
        with self._changed:
            if not self._changed.wait_for(lambda: c.exits > exits_before, timeout) and c.docker_id is not None:
                self._changed.release()
                try:
                    state = self.api.inspect_container(c.docker_id)["State"]
                finally:
                    self._changed.acquire()
                seen = observed_status(state, has_health_check=c.plan.has_health_check)
                self._perform(self.machine.confirm(name, seen, time.monotonic(), time.time(), exits=True))

    def _confirm_every(self, c: ContainerState) -> float:
        """How often a wait asks Docker itself: twice per health-check interval of what it waits on (a
        passing check is then seen within one interval, whenever it ends), 5 s at most, 1 s at least."""
        intervals = [CONFIRM_EVERY]
        for dep in c.plan.depends_on:
            check = self.containers[dep.container_name].plan.create_body.get("Healthcheck") or {}
            if check.get("Interval"):
                intervals.append(max(int(check["Interval"]) / 2e9, 1.0))
        return min(intervals)

    def _confirm(self, c: ContainerState) -> None:
        """What Docker shows of the containers ``c`` waits on, taken as the events it has not sent.

        Called with the lock held; released while Docker answers, so that a slow engine holds up nothing else.
        """
        asked = [
            (d.name, d.docker_id, d.plan.has_health_check)
            for d in (self.containers[dep.container_name] for dep in c.plan.depends_on)
            if d.docker_id is not None and d.status != STOPPED
        ]
        seen = []
        self._changed.release()
        try:
            for name, docker_id, has_check in asked:
                with contextlib.suppress(Exception):  # gone, or no answer: the next confirmation asks again
                    seen.append(
                        (
                            name,
                            observed_status(self.api.inspect_container(docker_id)["State"], has_health_check=has_check),
                        )
                    )
        finally:
            self._changed.acquire()
        for name, observed in seen:
            self._perform(self.machine.confirm(name, observed, time.monotonic(), time.time(), exits=self.events_gap))

    def _evidence(self, failed: Failed) -> str:
        # Called with the lock held: one short Docker call at most.
        d = self.containers[failed.dependency]
        if failed.evidence is Evidence.LOGS:
            return self._last_logs_hint(d)
        if failed.evidence is Evidence.HEALTH:
            return self._health_hint(d)
        return ""

    def _last_logs_hint(self, d: ContainerState) -> str:
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
                self._perform(self.machine.start_refused(c.name, _first_line(exc)))
            return
        with self._changed:
            self._perform(self.machine.started(c.name, time.monotonic(), time.time()))

    def _restart(self, c: ContainerState) -> None:
        """Start an exited container again in place, as the agent does under a restartPolicy."""
        import docker.errors

        assert c.docker_id is not None
        try:
            self.api.start(c.docker_id)
        except docker.errors.APIError as exc:
            with self._changed:
                self._perform(self.machine.restart_refused(c.name, _first_line(exc)))

    # -- events ----------------------------------------------------------------------------------------

    def _open_events(self, since: int | None) -> Any:
        labels = [f"{LABEL_TASK}={self.plan.task_id}"]
        return self.api.events(since=since, filters={"type": ["container"], "label": labels}, decode=True)

    def _read_events(self) -> None:
        """Follow the task's events; a stream that ends while the task goes on is resumed, with what it missed."""
        told: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=500)
        last: float | None = None  # the engine's time of the last event taken
        while self._events is not None:
            last = self._take_events(self._events, told, last)
            if self._events_closing or self._removed or not self._events_resumed(last):
                return

    def _take_events(self, stream: Any, told: collections.deque[tuple[Any, ...]], last: float | None) -> float | None:
        """The events of one stream, until it ends; those a resumed stream replays are taken once."""
        try:
            for event in stream:
                key = (event.get("id"), event.get("Action") or event.get("status"), event.get("timeNano"))
                if key in told:
                    continue
                told.append(key)
                last = float(event.get("time") or 0) or last
                self._on_event(event)
        except Exception:
            pass  # the stream ends with an error when it is closed at removal
        return last

    def _events_resumed(self, last: float | None) -> bool:
        """The stream dropped under us (the engine restarted its API, a proxy timed out): open it again from
        a little before the last event, so that what happened meanwhile is replayed. Docker replays only its
        last few hundred events, and none after a restart of its own: from a drop on, the waits take exits
        from inspect too (``events_gap``)."""
        with self._changed:
            self.events_gap = True
            self._perform([Note(None, "the Docker event stream dropped: resuming it")])
        since = (last if last is not None else self._events_opened - 60.0) - 1.0
        resumed = self._resume_events(int(since))
        with self._changed:
            if resumed is not None and not self._events_closing:
                self._events = resumed
                self._perform([Note(None, "the Docker event stream resumed")])
                return True
        if resumed is not None:
            with contextlib.suppress(Exception):
                resumed.close()
        return False

    def _resume_events(self, since: int) -> Any:
        """A new stream, tried again and again (at most every 5 s) while the task goes on."""
        delay = 0.0
        while not (self._events_closing or self._removed):
            time.sleep(delay)
            try:
                return self._open_events(since)
            except Exception:
                delay = min(max(delay * 2, 0.2), 5.0)
        return None

    def _on_event(self, event: Mapping[str, Any]) -> None:
        parsed = container_event(event)
        c = self._by_id.get(parsed[0]) if parsed is not None else None
        if parsed is None or c is None:
            return
        with self._changed:
            self._perform(self.machine.on_event(c.name, parsed[1], time.monotonic(), time.time()))

    def _close_events(self) -> None:
        with self._changed:  # a resume assigns the stream under this lock: it sees the closing, or is closed here
            self._events_closing = True
            stream, self._events = self._events, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    # -- performing what the machine decides ------------------------------------------------------------

    def _perform(self, actions: Sequence[Action], *, stop_now: bool = False) -> StopTask | None:
        """Record notes, tell listeners, and start what blocks on Docker off the caller's thread.

        The caller holds the lock. With ``stop_now``, a task stop is returned for the caller to do itself
        once it has let go of the lock, instead of on a thread of its own.
        """
        stop_here = None
        for action in actions:
            if isinstance(action, Note):
                self.note(action.container, action.what)
            elif isinstance(action, Emit):
                self._emit(action.kind, action.container, **action.details)
            elif isinstance(action, StopTask) and stop_now:
                stop_here = action
            elif isinstance(action, StopTask):
                # Stopping blocks on Docker: never on the event thread, which must keep reading.
                self._in_thread(self.stop, stop_code=action.stop_code, reason=action.reason)
            elif isinstance(action, RestartContainer):
                self._in_thread(self._restart, self.containers[action.name])
        self._changed.notify_all()
        return stop_here

    def _in_thread(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        name = f"ecstask-{fn.__name__.strip('_')}-{self.plan.task_id[:8]}"
        threading.Thread(target=fn, args=args, kwargs=kwargs, name=name, daemon=True).start()

    # -- stopping and removal -------------------------------------------------------------------------

    def _stop_containers(self, removing: bool = False) -> None:
        used_by_others = {name for c in self.containers.values() for name in c.plan.created_after}

        def stop_after_dependents(c: ContainerState) -> None:
            with self._changed:
                while not self.machine.may_stop(c.name):
                    self._changed.wait()
                running = self.machine.needs_stop(c.name)
            if running:
                self.note(c.name, "stopping (SIGTERM)")
                self._stop(c)
            with self._changed:
                self.machine.stopped(c.name)
                self._changed.notify_all()
            if removing and c.docker_id and c.name not in used_by_others:
                self._remove_early(c)

        _parallel(stop_after_dependents, list(self.containers.values()), workers=len(self.containers))

    def _remove_early(self, c: ContainerState) -> None:
        """A stopped container of a task being removed: its exit code (from its event, else inspect), its
        logs, and the container itself, while the others still stop."""
        with self._changed:
            self._changed.wait_for(lambda: not c.started or c.exit_code is not None, EXIT_TAKEN_WITHIN / 5)
            missing = c.started and c.exit_code is None
        if missing and c.docker_id is not None:
            docker_id = c.docker_id
            with contextlib.suppress(Exception):
                c.exit_code = int(self.api.inspect_container(docker_id)["State"]["ExitCode"])
        try:
            self._capture_logs_and_remove(c)
        except Exception as exc:
            self._left_early.append(f"container {c.plan.docker_name}: {_first_line(exc)}")
        self._removed_early.add(c.name)

    def _stop(self, c: ContainerState) -> None:
        import docker.errors

        assert c.docker_id is not None
        timeout = math.ceil(c.plan.stop_timeout)
        began = time.monotonic()
        with contextlib.suppress(docker.errors.NotFound):
            self.api.stop(c.docker_id, timeout=timeout)
        took = time.monotonic() - began
        if timeout > 0 and took >= timeout and self._exit_code_now(c) == SIGKILL_EXIT_CODE:
            # Docker waited the whole timeout, then sent SIGKILL
            self.killed_at_stop.append((c.name, took, timeout))
            self.note(c.name, f"did not exit within {timeout} s of SIGTERM: SIGKILL")

    def _exit_code_now(self, c: ContainerState) -> int | None:
        with contextlib.suppress(Exception):
            assert c.docker_id is not None
            return int(self.api.inspect_container(c.docker_id)["State"]["ExitCode"])
        return None

    def _kill(self, c: ContainerState) -> None:
        import docker.errors

        assert c.docker_id is not None
        with contextlib.suppress(docker.errors.APIError):  # already gone or not running
            self.api.kill(c.docker_id)
        with self._changed:
            self.machine.stopped(c.name)

    def _wait_for_exit_codes(self, timeout: float) -> None:
        """Exit codes arrive with die events; ask Docker only for those that did not come in time."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                missing = self.machine.missing_exit_codes()
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

    def _capture_logs_and_remove(self, c: ContainerState) -> None:
        self._capture_logs(c)
        self._remove_container(c)

    def _remove_container(self, c: ContainerState) -> None:
        assert c.docker_id is not None
        docker_id = c.docker_id
        _remove_tolerantly(lambda: self.api.remove_container(docker_id, v=True, force=True))

    # -- helpers ---------------------------------------------------------------------------------------

    def _set_task_status(self, status: str) -> None:
        with self._changed:
            actions = self.machine.set_status(status)
            self._perform([a for a in actions if isinstance(a, Note)])
        # Outside the lock: a listener of task_stopped may look at the task from another thread.
        self._perform_unlocked([a for a in actions if isinstance(a, Emit)])

    def _perform_unlocked(self, emits: Sequence[Emit]) -> None:
        for e in emits:
            self._emit(e.kind, e.container, **e.details)

    def _emit(self, kind: str, container: str | None, **details: Any) -> None:
        for listener in self.listeners:
            with contextlib.suppress(Exception):  # a reporting hook must never break the task
                listener(kind, container, details)

    def note(self, container: str | None, what: str) -> None:
        """A line on the task's timeline (and the live -v progress), masked."""
        entry = TimelineEntry(round(time.monotonic() - self._began, 4), container, self.mask(what))
        self.state.timeline.append(entry)
        if self.on_timeline is not None:
            with contextlib.suppress(Exception):  # reporting must never break the task
                self.on_timeline(entry)


OVERDUE_AFTER = 2.0  # seconds past its interval after which a Podman health check is run for it


class HealthDriver(threading.Thread):
    """Runs the task's health checks on Podman when Podman does not.

    Podman schedules health checks with systemd timers; where there is no systemd (most CI containers, and
    many hosts), no check ever runs and no container becomes healthy. The driver runs a container's check
    through Podman's API when one is overdue (none ended within its interval, plus 2 s), so a check
    that Podman does run is never run twice; what the check finds reaches the task through inspect, as
    the events Podman does not send would have.
    """

    def __init__(self, runner: TaskRunner) -> None:
        super().__init__(name=f"ecstask-health-{runner.plan.task_id[:8]}", daemon=True)
        self.runner = runner
        self.skew = 0.0

    def run(self) -> None:
        from pytest_ecstask.relaylink import engine_now

        checked = [c for c in self.runner.containers.values() if c.plan.has_health_check]
        self.skew = engine_now(self.runner.api) - time.time()  # the engine's times are read by its own clock
        while not self.runner._removed and self.runner.state.status not in (STOPPING, STOPPED):
            for c in checked:
                with contextlib.suppress(Exception):  # gone, or not yet created: the next round asks again
                    self._check_if_due(c)
            time.sleep(1.0)

    def _check_if_due(self, c: ContainerState) -> None:
        if c.docker_id is None or not c.started or c.status == STOPPED:
            return
        check = c.plan.create_body.get("Healthcheck") or {}
        interval = int(check.get("Interval") or 30 * 10**9) / 1e9
        state = self.runner.api.inspect_container(c.docker_id)["State"]
        log = (state.get("Health") or {}).get("Log") or []
        last = _seconds(log[-1].get("End", "")) if log else _seconds(state.get("StartedAt", ""))
        if last is not None and time.time() + self.skew - last < interval + OVERDUE_AFTER:
            return
        self.runner.engine.run_health_check(c.docker_id)
        state = self.runner.api.inspect_container(c.docker_id)["State"]
        seen = observed_status(state, has_health_check=True)
        with self.runner._changed:
            self.runner._perform(self.runner.machine.confirm(c.name, seen, time.monotonic(), time.time()))
            self.runner._changed.notify_all()


def _seconds(text: str) -> float | None:
    from pytest_ecstask.relaylink import docker_seconds

    return docker_seconds(text) if text else None


def _attempt(fn: Callable[[T], Any], items: Sequence[T], name: Callable[[T], str]) -> list[str]:
    """Run ``fn`` over ``items`` concurrently, every one tried; what failed, as "name: Docker's reason"."""
    failed: list[str] = []
    lock = threading.Lock()

    def one(item: T) -> None:
        try:
            fn(item)
        except Exception as exc:
            with lock:
                failed.append(f"{name(item)}: {_first_line(exc)}")

    _parallel(one, items)
    return failed


def _remove_tolerantly(remove: Callable[[], Any], *, in_use_ok: bool = False) -> None:
    """One removal (or stop): something already gone, or being removed by a concurrent sweep, counts as done.

    ``in_use_ok`` also lets a 409 pass (a shared volume another task still uses). Other errors are raised.
    """
    import docker.errors

    try:
        remove()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if not (_already_going(exc) or (in_use_ok and exc.status_code == 409)):
            raise


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


def inspect_containers(api: docker.APIClient, names: Sequence[str]) -> Inspected:
    """Each container's inspect data by name, asked concurrently; None for one that is gone."""
    import docker.errors

    found: dict[str, Mapping[str, Any] | None] = {}

    def inspect(name: str) -> None:
        try:
            found[name] = dict(api.inspect_container(name))
        except docker.errors.NotFound:
            found[name] = None

    _parallel(inspect, names)
    return found


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
        if r.kind == "container":
            call = functools.partial(api.remove_container, r.id, v=True, force=True)
        elif r.kind == "network":
            call = functools.partial(api.remove_network, r.id)
        else:
            call = functools.partial(api.remove_volume, r.id, force=True)
        try:
            _remove_tolerantly(call)
        except docker.errors.APIError as exc:
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
