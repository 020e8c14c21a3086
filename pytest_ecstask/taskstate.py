"""What decides order: the ECS task as a pure state machine, the agent's rules with no Docker in them.

Given a task plan, the state of its containers, an event or the time, it says what is true now and what to
do next: whether a dependency condition is met, waiting until a deadline or failed (and why); what a
container event changes; when an essential exit stops the task; which container may stop once its
dependents have; what the task's status is. The runner performs what it decides through the Engine API
and feeds Docker's events back; the endpoints and the reports read Docker state through
:func:`observed_status`, so all three speak of a container the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pytest_ecstask.dockerstate import (
    CREATED,
    HEALTHY,
    PENDING,
    PROVISIONING,
    RUNNING,
    STOPPED,
    STOPPING,
    UNHEALTHY,
    UNKNOWN,
    ObservedStatus,
)
from pytest_ecstask.plan import ContainerPlan, RestartPolicy, TaskPlan
from pytest_ecstask.taskdef import ContainerDependency, DependencyCondition

# What a never-started container reports when a dependency failed (SIGTERM's exit status, as the agent does).
DEPENDENCY_FAILED_EXIT_CODE = 143
# A wait this long says what it waits for (a note on the timeline, and on the screen), then again this often.
STILL_WAITING_AFTER, STILL_WAITING_EVERY = 5.0, 30.0


# -- what the machine holds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    time: str  # RFC 3339 with nanoseconds, as Docker stamps it
    stream: str  # "stdout" or "stderr"
    text: str


@dataclass
class ContainerState:
    """What is known of one container, in the ECS agent's words."""

    plan: ContainerPlan
    docker_id: str | None = None
    status: str = PENDING  # PENDING, CREATED, RUNNING, STOPPED (ECS known status)
    started: bool = False
    starting: bool = False  # the start call is under way
    exit_code: int | None = None
    health: str = UNKNOWN  # UNKNOWN, HEALTHY, UNHEALTHY
    reason: str | None = None
    started_at: float | None = None  # wall clock
    started_monotonic: float | None = None
    finished_at: float | None = None
    logs: list[LogLine] | None = None  # kept when the container is removed
    paused: bool = False
    waiting_since: float | None = None  # monotonic: when it began to wait for its dependencies
    restart_count: int = 0
    last_restart_monotonic: float | None = None
    waits_told: int = 0  # how many "still waiting" notes its wait has had
    exits: int = 0  # how many exits were taken

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def settled(self) -> bool:
        """Will not start any more: running, exited, or given up on."""
        return self.started or self.status == STOPPED


@dataclass(frozen=True)
class TimelineEntry:
    at: float  # seconds since the task began
    container: str | None
    what: str


@dataclass
class TaskState:
    status: str = PROVISIONING  # PROVISIONING, PENDING, RUNNING, STOPPING, STOPPED (ECS last status)
    stop_code: str | None = None  # TaskFailedToStart, EssentialContainerExited, UserInitiated
    stopped_reason: str | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    reached_running: bool = False
    startup_exit: str | None = None  # the essential container whose exit stopped the task before RUNNING


class Role(Enum):
    """What a process does with a task it holds (under xdist several processes hold the session task)."""

    OWNER = "owner"  # started or adopted it: stops it when an essential container exits, and removes it
    STARTER = "starter"  # started it for the run, whose controller removes it
    FOLLOWER = "follower"  # follows a task another process owns: neither stops nor removes it

    @property
    def acts(self) -> bool:
        """Acts on exits: stops the task when an essential container exits, restarts per restartPolicy."""
        return self is not Role.FOLLOWER

    @property
    def removes(self) -> bool:
        return self is Role.OWNER


def should_restart(
    policy: RestartPolicy | None,
    exit_code: int | None,
    ran_since: float | None,
    now: float,
    task_stopping: bool,
) -> tuple[bool, str]:
    """The agent's restart decision, with its reason when the answer is no.

    ``ran_since`` is the container's last restart, else its start (monotonic seconds). A container is
    restarted unless the task is stopping, its exit code is unknown or ignored, or it ran for less than
    the restartAttemptPeriod (so a container that fails at once is not restarted in a loop).
    """
    if policy is None:
        return False, "restart policy is not enabled"
    if task_stopping:
        return False, "the task is stopping"
    if exit_code is None:
        return False, "exit code is unknown"
    if exit_code in policy.ignored_exit_codes:
        return False, f"exit code {exit_code} is ignored"
    if ran_since is None or now - ran_since < policy.restart_attempt_period:
        return False, f"it ran for less than the restartAttemptPeriod of {policy.restart_attempt_period:g} s"
    return True, ""


# -- what the machine says to do --------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """A line for the task's timeline."""

    container: str | None
    what: str


@dataclass(frozen=True)
class Emit:
    """A lifecycle event for hooks: container_started, container_exited, container_healthy, task_stopped."""

    kind: str
    container: str | None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StopTask:
    stop_code: str
    reason: str


@dataclass(frozen=True)
class RestartContainer:
    name: str


Action = Note | Emit | StopTask | RestartContainer


class Evidence(Enum):
    """What a failure reason quotes of the dependency, read from Docker by the runner."""

    NONE = "none"
    LOGS = "logs"  # its last log lines
    HEALTH = "health"  # its health status and last health check results


@dataclass(frozen=True)
class Met:
    pass


@dataclass(frozen=True)
class Waiting:
    deadline: float | None  # monotonic; None: no time limit


@dataclass(frozen=True)
class Failed:
    why: str
    dependency: str
    evidence: Evidence = Evidence.NONE


Verdict = Met | Waiting | Failed


@dataclass(frozen=True)
class Gate:
    """What a container waiting on its dependencies does next."""

    start: bool = False  # its dependencies are met: start it
    done: bool = False  # it will never start (the task is stopping)
    failed: Failed | None = None  # a dependency failed: give up with this reason (plus its evidence)
    deadline: float | None = None  # else wait until an event, or this monotonic time
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True)
class ContainerEvent:
    """A Docker container event, reduced to what changes the task."""

    kind: str  # start, die, pause, unpause, health
    exit_code: int | None = None  # die
    health: str | None = None  # health: HEALTHY, UNHEALTHY, or Docker's other words


def container_event(event: Mapping[str, Any]) -> tuple[str, ContainerEvent] | None:
    """The container id and the event, from one entry of Docker's event stream; None for others."""
    action = str(event.get("Action") or event.get("status") or "")
    actor = event.get("Actor") or {}
    docker_id = str(event.get("id") or actor.get("ID", ""))
    if action in ("start", "pause", "unpause"):
        return docker_id, ContainerEvent(action)
    if action == "die":
        code = (actor.get("Attributes") or {}).get("exitCode")
        return docker_id, ContainerEvent("die", exit_code=int(code) if code is not None else None)
    if action.startswith("health_status:"):
        return docker_id, ContainerEvent("health", health=action.split(":", 1)[1].strip().upper())
    if action == "health_status" and str(event.get("HealthStatus", "")).upper() in (HEALTHY, UNHEALTHY):
        return docker_id, ContainerEvent("health", health=str(event["HealthStatus"]).upper())  # Podman's form
    return None


# -- the machine --------------------------------------------------------------------------------------------


class TaskMachine:
    """One task's ECS state and rules. Not thread-safe: its caller serialises calls (the runner's lock).

    Every method takes the time it is told (monotonic ``now``, wall-clock ``wall``), so that a test can
    drive it through any sequence of events and clock ticks in microseconds.
    """

    def __init__(
        self,
        plan: TaskPlan,
        *,
        role: Role = Role.OWNER,
        restart_policies: Mapping[str, RestartPolicy] | None = None,
    ) -> None:
        self.plan = plan
        self.role = role
        # By container: the plan's enabled restartPolicy, unless given (a test may shorten the period).
        self.restart_policies: dict[str, RestartPolicy] = {
            c.name: c.restart_policy for c in plan.containers if c.restart_policy is not None
        }
        self.restart_policies.update(restart_policies or {})
        self.state = TaskState()
        self.containers: dict[str, ContainerState] = {c.name: ContainerState(c) for c in plan.containers}
        self.pause: ContainerState | None = ContainerState(plan.pause) if plan.pause else None
        self.gating = False  # containers are being gated: one not started yet may still start

    # -- dependsOn ---------------------------------------------------------------------------------------

    def verdict(self, dep: ContainerDependency, now: float) -> Verdict:
        """Whether one dependsOn condition is met, still waited for (until a deadline), or failed."""
        d = self.containers[dep.container_name]
        if not d.started:
            if d.status == STOPPED:
                return Failed(f"dependency {d.name!r} never started ({d.reason})", d.name)
            return Waiting(None)
        condition, exited = dep.condition, d.status == STOPPED
        if condition is DependencyCondition.START or (condition is DependencyCondition.COMPLETE and exited):
            return Met()
        if condition is DependencyCondition.SUCCESS and exited:
            if d.exit_code == 0:
                return Met()
            why = f"dependency {d.name!r} exited with code {d.exit_code}; condition SUCCESS needs exit code 0"
            return Failed(why, d.name, Evidence.LOGS)
        if condition is DependencyCondition.HEALTHY:
            if d.health == HEALTHY:
                return Met()
            if exited:
                return Failed(
                    f"dependency {d.name!r} exited with code {d.exit_code} before it was HEALTHY", d.name, Evidence.LOGS
                )
        return self._within_start_timeout(d, condition, now)

    @staticmethod
    def _within_start_timeout(d: ContainerState, condition: DependencyCondition, now: float) -> Verdict:
        # The limit is the dependency's own startTimeout, counted from its start.
        timeout = d.plan.start_timeout
        if timeout is None or d.started_monotonic is None:
            return Waiting(None)
        deadline = d.started_monotonic + timeout
        if now >= deadline:
            why = f"dependency {d.name!r} did not reach {condition.value} within its startTimeout of {timeout:g} s"
            return Failed(why, d.name, Evidence.HEALTH)
        return Waiting(deadline)

    def gate(self, name: str, now: float) -> Gate:
        """What container ``name`` does next while it waits to start."""
        c = self.containers[name]
        if self.state.status in (STOPPING, STOPPED):
            c.status = STOPPED
            c.reason = c.reason or "the task stopped before the container started"
            return Gate(done=True, actions=(Note(name, "not started: task stopping"),))
        verdicts = [(dep, self.verdict(dep, now)) for dep in c.plan.depends_on]
        failed = next((v for _, v in verdicts if isinstance(v, Failed)), None)
        if failed is not None:
            return Gate(failed=failed)
        if all(isinstance(v, Met) for _, v in verdicts):
            return self._start(c, now)
        return self._wait(c, verdicts, now)

    @staticmethod
    def _start(c: ContainerState, now: float) -> Gate:
        c.starting = True
        if c.waiting_since is None:
            return Gate(start=True)
        return Gate(start=True, actions=(Note(c.name, f"dependencies met after {now - c.waiting_since:.1f} s"),))

    @staticmethod
    def _wait(c: ContainerState, verdicts: list[tuple[ContainerDependency, Verdict]], now: float) -> Gate:
        # Said once, when the wait begins: which conditions it waits for.
        actions: tuple[Action, ...] = ()
        if c.waiting_since is None:
            c.waiting_since = now
            pending = [f"{dep.container_name} {dep.condition.value}" for dep, v in verdicts if not isinstance(v, Met)]
            actions = (Note(c.name, f"waiting for {', '.join(pending)}"),)
        deadlines = [v.deadline for _, v in verdicts if isinstance(v, Waiting) and v.deadline is not None]
        return Gate(deadline=min(deadlines) if deadlines else None, actions=actions)

    def give_up(self, name: str, why: str) -> list[Action]:
        """A dependency failed: the container never starts, and ends as the agent reports it."""
        c = self.containers[name]
        c.status, c.exit_code, c.reason = STOPPED, DEPENDENCY_FAILED_EXIT_CODE, f"DependencyFailed: {why}"
        return [Note(name, f"not started: {why}")]

    # -- container lifecycle -----------------------------------------------------------------------------

    def created(self, name: str, docker_id: str) -> list[Action]:
        c = self._container(name)
        c.docker_id, c.status = docker_id, CREATED
        return [Note(name, "created")]

    def start_refused(self, name: str, why: str, *, created: bool = True) -> list[Action]:
        """Docker refused to start the container (a missing executable, a port taken), or to create one
        created at its gate (``created=False``; ``why`` then says so itself)."""
        c = self._container(name)
        c.starting, c.status = False, STOPPED
        c.reason = f"CannotStartContainerError: {why}" if created else why
        return [Note(name, c.reason)]

    def started(self, name: str, now: float, wall: float) -> list[Action]:
        c = self._container(name)
        c.starting = False
        if c.started:
            return []
        c.started, c.started_at, c.started_monotonic = True, wall, now
        if c.status != STOPPED:
            c.status = RUNNING
        return [Note(name, "started"), Emit("container_started", name)]

    def on_event(self, name: str, event: ContainerEvent, now: float, wall: float) -> list[Action]:
        """What one Docker event changes, and what follows from it."""
        c = self._container(name)
        if event.kind == "start":
            return self._on_start(c, now, wall)
        if event.kind in ("pause", "unpause"):
            c.paused = event.kind == "pause"
            return [Note(name, "paused" if c.paused else "unpaused")]
        if event.kind == "die":
            if c.status == STOPPED and c.started and c.exit_code == event.exit_code:
                return []  # told already (by inspect, after the stream dropped), and not started since
            return self._on_exit(c, event.exit_code, now, wall)
        if event.kind == "health" and c.plan.has_health_check:
            if event.health == c.health:
                return []  # told already: by inspect, or again (Podman tells each check)
            # An image's own HEALTHCHECK does not count: ECS reports only task definition health checks.
            c.health = event.health if event.health in (HEALTHY, UNHEALTHY) else c.health
            actions: list[Action] = [Note(name, f"health {c.health}")]
            if c.health == HEALTHY:
                actions.append(Emit("container_healthy", name))
            return actions
        return []

    def _on_start(self, c: ContainerState, now: float, wall: float) -> list[Action]:
        actions: list[Action] = []
        if c.started and c.status == STOPPED and self.state.status in (PENDING, RUNNING):
            # Started again (restarted by its policy, or by a test): running once more, the old exit code gone.
            c.status, c.exit_code, c.finished_at = RUNNING, None, None
            actions.append(Note(c.name, "started again"))
        return actions + self.started(c.name, now, wall)

    def _on_exit(self, c: ContainerState, exit_code: int | None, now: float, wall: float) -> list[Action]:
        actions = self.started(c.name, now, wall)  # an exit proves a start, even if its event was missed
        c.status, c.finished_at, c.exits = STOPPED, wall, c.exits + 1
        c.exit_code = exit_code if exit_code is not None else c.exit_code
        actions += [
            Note(c.name, f"exited with code {c.exit_code}"),
            Emit("container_exited", c.name, {"exit_code": c.exit_code}),
        ]
        if not self.role.acts:
            # The process that started the task acts on exits; a follower only notices that all has stopped.
            if all(x.status == STOPPED for x in self.containers.values()):
                self.state.status = STOPPED
            return actions
        task_up = self.state.status in (PENDING, RUNNING)
        ran_since = c.last_restart_monotonic if c.last_restart_monotonic is not None else c.started_monotonic
        restart, _ = should_restart(self.restart_policies.get(c.name), c.exit_code, ran_since, now, not task_up)
        if restart:
            c.restart_count += 1
            c.last_restart_monotonic = now
            return [
                *actions,
                Note(c.name, f"restarting (restart {c.restart_count})"),
                Emit("container_restarted", c.name, {"restart_count": c.restart_count, "exit_code": c.exit_code}),
                RestartContainer(c.name),
            ]
        if c.plan.essential and task_up:
            if self.state.status == PENDING and self.state.startup_exit is None:
                self.state.startup_exit = c.name
            why = f"Essential container in task exited: {c.name!r} exited with code {c.exit_code}"
            actions += self._stop_task("EssentialContainerExited", why)
        return actions

    def restart_refused(self, name: str, why: str) -> list[Action]:
        """Docker refused to start the container again: an essential one then stops the task."""
        c = self._container(name)
        actions: list[Action] = [Note(name, f"not restarted: CannotStartContainerError: {why}")]
        if c.plan.essential and self.state.status in (PENDING, RUNNING):
            reason = f"Essential container in task exited: {name!r} exited with code {c.exit_code}"
            actions += self._stop_task("EssentialContainerExited", reason)
        return actions

    def stopped(self, name: str) -> None:
        """The runner stopped (or killed) the container."""
        self._container(name).status = STOPPED

    def confirm(self, name: str, seen: ObservedStatus, now: float, wall: float, exits: bool = False) -> list[Action]:
        """What Docker's inspect shows of a container a gate waits on, that its events have not told yet.

        Events are the fast path, but they can be late or lost (a dropped stream), and some engines send
        no health events at all (Podman): the runner inspects while it waits, and what is new here is taken
        as the event would have been: a start, and the health of a running container. An exit only with
        ``exits``, once the event stream has dropped: events are the only way to tell one exit from the next
        after a restart, but a stream that dropped may never replay the one that was missed.
        """
        c = self._container(name)
        if c.docker_id is None or c.status == STOPPED:
            return []
        if exits and seen.known_status == STOPPED and seen.started:
            return self.on_event(name, ContainerEvent("die", exit_code=seen.exit_code), now, wall)
        actions: list[Action] = []
        if seen.started and seen.known_status == RUNNING and not c.started:
            actions += self.on_event(name, ContainerEvent("start"), now, wall)
        health_news = seen.health in (HEALTHY, UNHEALTHY) and seen.health != c.health
        if c.plan.has_health_check and seen.known_status == RUNNING and health_news:
            actions += self.on_event(name, ContainerEvent("health", health=seen.health), now, wall)
        return actions

    def still_waiting(self, name: str, now: float) -> list[Action]:
        """A wait of a few seconds, then every half minute: what it waits for, and how the dependencies are."""
        c = self._container(name)
        if c.waiting_since is None or c.started or c.starting or c.status == STOPPED:
            return []
        waited = now - c.waiting_since
        if waited < STILL_WAITING_AFTER + STILL_WAITING_EVERY * c.waits_told:
            return []
        c.waits_told += 1
        pending = []
        for dep in c.plan.depends_on:
            if not isinstance(self.verdict(dep, now), Met):
                d = self.containers[dep.container_name]
                state = d.status.lower() if not d.started else "running"
                if dep.condition is DependencyCondition.HEALTHY and d.started:
                    state += f", health {d.health}"
                pending.append(f"{d.name} {dep.condition.value} ({state})")
        return [Note(name, f"still waiting after {waited:.0f} s for {', '.join(pending)}")] if pending else []

    def observe(self, name: str, docker_id: str, seen: ObservedStatus) -> None:
        """Take up a container as Docker shows it (a process adopting a task another one started)."""
        c = self._container(name)
        c.docker_id, c.started, c.status = docker_id, seen.started, seen.known_status
        if seen.known_status == STOPPED:
            c.exit_code = seen.exit_code
        if seen.health != UNKNOWN:
            c.health = seen.health

    # -- the task ----------------------------------------------------------------------------------------

    def set_status(self, status: str) -> list[Action]:
        self.state.status = status
        actions: list[Action] = [Note(None, f"task {status}")]
        if status == STOPPED:
            actions.append(
                Emit("task_stopped", None, {"stop_code": self.state.stop_code, "reason": self.state.stopped_reason})
            )
        return actions

    def after_gates(self) -> list[Action]:
        """Every container started or was given up on: the task runs, or fails to start."""
        failed = [c for c in self.containers.values() if c.plan.essential and not c.started and c.status == STOPPED]
        if failed and self.state.stop_code is None:
            why = f"Essential container {failed[0].name!r} did not start: {failed[0].reason}"
            return self._stop_task("TaskFailedToStart", why)
        if self.state.status == PENDING:
            self.state.status, self.state.reached_running = RUNNING, True
            return [Note(None, "task RUNNING")]
        return []

    def failed_during_startup(self) -> ContainerState | None:
        """The essential container that exited with an error before the task was RUNNING, if one did.

        ECS says EssentialContainerExited, as for any essential exit; for a test it is a task that failed to
        start. An exit with code 0 is a batch task that finished its work: not a failure.
        """
        if self.state.reached_running or self.state.stop_code != "EssentialContainerExited":
            return None
        c = self.containers.get(self.state.startup_exit or "")
        return c if c is not None and c.exit_code != 0 else None

    def adopted_status(self) -> str:
        """An adopted task runs while one of its essential containers runs."""
        running = any(c.status == RUNNING for c in self.containers.values() if c.plan.essential)
        self.state.reached_running = running
        return RUNNING if running else STOPPED

    def request_stop(self, stop_code: str, reason: str) -> list[Action]:
        """The first stop code wins; the task goes STOPPING once."""
        if self.state.stop_code is None:
            self.state.stop_code, self.state.stopped_reason = stop_code, reason
        if self.state.status in (STOPPING, STOPPED):
            return []
        self.state.status = STOPPING
        return [Note(None, f"task STOPPING ({self.state.stop_code})")]

    def _stop_task(self, stop_code: str, reason: str) -> list[Action]:
        # Decided now, at the event: a container still waiting to start sees the task stopping at once.
        return [*self.request_stop(stop_code, reason), StopTask(stop_code, reason)]

    # -- stop order --------------------------------------------------------------------------------------

    def may_stop(self, name: str) -> bool:
        """Dependents stop before their dependencies: ``name`` may stop once each dependent is done."""
        c = self.containers[name]
        return not c.starting and all(self._done_for_stop(self.containers[d]) for d in self.plan.dependents(name))

    def _done_for_stop(self, c: ContainerState) -> bool:
        # One still gating sees the task STOPPING and gives up, which counts.
        return c.status == STOPPED or (not c.started and not c.starting and not self.gating)

    def needs_stop(self, name: str) -> bool:
        c = self.containers[name]
        return c.started and c.status != STOPPED

    def missing_exit_codes(self) -> list[ContainerState]:
        return [c for c in self.containers.values() if c.started and c.exit_code is None]

    def _container(self, name: str) -> ContainerState:
        if self.pause is not None and name == self.pause.name:
            return self.pause
        return self.containers[name]


def not_healthy_why(c: ContainerState, timeout: float) -> str:
    """Why ``wait_until_healthy`` gave up on a container."""
    if c.status == STOPPED:
        return f"it stopped (exit code {c.exit_code})" if c.exit_code is not None else f"it stopped: {c.reason}"
    if c.health == UNHEALTHY:
        return "it is UNHEALTHY"
    return f"it is not HEALTHY after {timeout:g} s"
