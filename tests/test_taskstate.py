"""The ECS task state machine, pure: every agent rule driven by events and clock ticks, no Docker, no threads."""

from __future__ import annotations

from typing import Any

import pytest
from test_plan import c, plan  # the same small task definitions, planned with the same options

from conftest import NEEDS_RESTART_POLICY
from pytest_ecstask.dockerstate import ObservedStatus, observed_status
from pytest_ecstask.plan import RestartPolicy
from pytest_ecstask.taskstate import (
    ContainerEvent,
    Emit,
    Evidence,
    Failed,
    Met,
    Note,
    RestartContainer,
    Role,
    StopTask,
    TaskMachine,
    Waiting,
    container_event,
    not_healthy_why,
    should_restart,
)

HEALTH = {"command": ["CMD", "true"]}
T0 = 1000.0  # a monotonic clock reading; the machine only ever sees the times it is given


def on(name: str, condition: str) -> dict[str, Any]:
    return {"dependsOn": [{"containerName": name, "condition": condition}]}


def running(m: TaskMachine, *names: str, at: float = T0) -> None:
    """Containers created and started at ``at``, the task PENDING."""
    m.state.status = "PENDING"
    for name in names:
        m.created(name, f"id-{name}")
        m.started(name, at, at + 1e9)


def exited(m: TaskMachine, name: str, code: int, at: float = T0 + 1) -> list[Any]:
    return m.on_event(name, ContainerEvent("die", exit_code=code), at, at + 1e9)


def notes(actions: Any) -> list[tuple[str | None, str]]:
    return [(a.container, a.what) for a in actions if isinstance(a, Note)]


def dependency_of_app(condition: str, **db: Any) -> TaskMachine:
    return TaskMachine(plan(c("db", essential=False, **db), c("app", **on("db", condition))))


def verdict(m: TaskMachine, now: float = T0 + 1) -> Any:
    return m.verdict(m.plan.container("app").depends_on[0], now)


# --- dependsOn: each condition, each state of the dependency ------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "db_does", "expected"),
    [
        # START: met once the dependency ran, even when it exited since.
        ("START", "nothing", Waiting(None)),
        ("START", "runs", Met()),
        ("START", "exits 1", Met()),
        # COMPLETE: any exit code.
        ("COMPLETE", "runs", Waiting(None)),
        ("COMPLETE", "exits 0", Met()),
        ("COMPLETE", "exits 3", Met()),
        # SUCCESS: exit code 0 only; another code fails at once, quoting the dependency's logs.
        ("SUCCESS", "runs", Waiting(None)),
        ("SUCCESS", "exits 0", Met()),
        (
            "SUCCESS",
            "exits 1",
            Failed("dependency 'db' exited with code 1; condition SUCCESS needs exit code 0", "db", Evidence.LOGS),
        ),
        # HEALTHY: the health check's verdict; UNHEALTHY keeps waiting (it may still turn HEALTHY).
        ("HEALTHY", "runs", Waiting(None)),
        ("HEALTHY", "turns HEALTHY", Met()),
        ("HEALTHY", "turns UNHEALTHY", Waiting(None)),
        ("HEALTHY", "exits 0", Failed("dependency 'db' exited with code 0 before it was HEALTHY", "db", Evidence.LOGS)),
    ],
)
def test_each_condition_against_each_state_of_the_dependency(condition: str, db_does: str, expected: Any) -> None:
    m = dependency_of_app(condition, **({"healthCheck": HEALTH} if condition == "HEALTHY" else {}))
    m.state.status = "PENDING"
    if db_does != "nothing":
        running(m, "db")
    if db_does.startswith("exits"):
        exited(m, "db", int(db_does.split()[1]))
    if db_does.startswith("turns"):
        m.on_event("db", ContainerEvent("health", health=db_does.split()[1]), T0 + 1, 0)
    assert verdict(m) == expected


@pytest.mark.parametrize("condition", ["START", "COMPLETE", "SUCCESS", "HEALTHY"])
def test_a_dependency_that_never_started_fails_every_condition_naming_its_reason(condition: str) -> None:
    m = dependency_of_app(condition, **({"healthCheck": HEALTH} if condition == "HEALTHY" else {}))
    m.start_refused("db", "exec: /app: no such file")
    assert verdict(m) == Failed(
        "dependency 'db' never started (CannotStartContainerError: exec: /app: no such file)", "db"
    )


def test_a_container_the_engine_would_not_create_at_its_gate_fails_its_dependents_with_that_reason() -> None:
    # On Podman a container with links is created at its gate; the engine's refusal is its reason as given.
    m = dependency_of_app("START")
    m.start_refused("db", "CannotCreateContainerError: container 'db' of task t: bad parameter", created=False)
    assert m.containers["db"].status == "STOPPED" and m.containers["db"].docker_id is None
    assert verdict(m) == Failed(
        "dependency 'db' never started (CannotCreateContainerError: container 'db' of task t: bad parameter)", "db"
    )


def test_each_exit_is_counted_once_however_often_it_is_told() -> None:
    # Container.stop() waits for this count to grow: the exit taken, from its event or from inspect.
    m = dependency_of_app("START")
    m.set_status("RUNNING")
    m.created("db", "id-db")
    m.on_event("db", ContainerEvent("start"), T0, 0)
    m.on_event("db", ContainerEvent("die", exit_code=0), T0 + 1, 0)
    m.on_event("db", ContainerEvent("die", exit_code=0), T0 + 2, 0)  # told again
    assert m.containers["db"].exits == 1
    m.on_event("db", ContainerEvent("start"), T0 + 3, 0)
    m.on_event("db", ContainerEvent("die", exit_code=0), T0 + 4, 0)
    assert m.containers["db"].exits == 2


# --- startTimeout --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "now", "expected"),
    [
        ("COMPLETE", T0 + 4.9, Waiting(T0 + 5)),
        ("SUCCESS", T0 + 4.9, Waiting(T0 + 5)),
        ("HEALTHY", T0 + 4.9, Waiting(T0 + 5)),
        (
            "COMPLETE",
            T0 + 5,
            Failed("dependency 'db' did not reach COMPLETE within its startTimeout of 5 s", "db", Evidence.HEALTH),
        ),
        (
            "HEALTHY",
            T0 + 6,
            Failed("dependency 'db' did not reach HEALTHY within its startTimeout of 5 s", "db", Evidence.HEALTH),
        ),
        ("START", T0 + 60, Met()),  # START is met by the start itself: no time limit applies
    ],
)
def test_start_timeout_is_the_dependencys_own_counted_from_its_start(condition: str, now: float, expected: Any) -> None:
    m = dependency_of_app(condition, startTimeout=5, **({"healthCheck": HEALTH} if condition == "HEALTHY" else {}))
    running(m, "db", at=T0)
    assert verdict(m, now) == expected


def test_without_start_timeout_a_wait_has_no_limit_and_the_dependents_own_timeout_does_not_count() -> None:
    m = TaskMachine(plan(c("db", essential=False), c("app", startTimeout=1, **on("db", "COMPLETE"))))
    running(m, "db", at=T0)
    assert verdict(m, T0 + 10_000) == Waiting(None)


def test_no_time_limit_on_waiting_for_a_dependency_to_start() -> None:
    m = dependency_of_app("HEALTHY", startTimeout=5, healthCheck=HEALTH)
    m.state.status = "PENDING"
    assert verdict(m, T0 + 10_000) == Waiting(None)


# --- gating: what a waiting container does -------------------------------------------------------------------


def test_a_gate_says_what_it_waits_for_once_then_when_it_was_met() -> None:
    m = dependency_of_app("HEALTHY", startTimeout=30, healthCheck=HEALTH)
    running(m, "db", at=T0)
    first = m.gate("app", T0 + 1)
    assert (first.start, first.deadline, notes(first.actions)) == (False, T0 + 30, [("app", "waiting for db HEALTHY")])
    again = m.gate("app", T0 + 2)
    assert (again.start, again.actions) == (False, ())
    m.on_event("db", ContainerEvent("health", health="HEALTHY"), T0 + 3.5, 0)
    met = m.gate("app", T0 + 3.5)
    assert met.start and m.containers["app"].starting
    assert notes(met.actions) == [("app", "dependencies met after 2.5 s")]


def test_a_gate_with_nothing_to_wait_for_starts_at_once_without_a_note() -> None:
    m = TaskMachine(plan(c("app")))
    gate = m.gate("app", T0)
    assert gate.start and gate.actions == ()


def test_a_gate_waits_until_the_earliest_deadline_of_its_dependencies() -> None:
    m = TaskMachine(
        plan(
            c("a", essential=False, startTimeout=20),
            c("b", essential=False, startTimeout=8),
            c(
                "app",
                dependsOn=[
                    {"containerName": "a", "condition": "COMPLETE"},
                    {"containerName": "b", "condition": "COMPLETE"},
                ],
            ),
        )
    )
    running(m, "a", "b", at=T0)
    assert m.gate("app", T0 + 1).deadline == T0 + 8


def test_a_failed_dependency_ends_the_dependent_with_143_and_a_reason_naming_it() -> None:
    m = dependency_of_app("SUCCESS")
    running(m, "db")
    exited(m, "db", 2)
    gate = m.gate("app", T0 + 2)
    assert gate.failed == Failed(
        "dependency 'db' exited with code 2; condition SUCCESS needs exit code 0", "db", Evidence.LOGS
    )
    actions = m.give_up("app", gate.failed.why + "; its last log lines: boom")
    app = m.containers["app"]
    assert (app.status, app.exit_code, app.started) == ("STOPPED", 143, False)
    assert (
        app.reason
        == "DependencyFailed: dependency 'db' exited with code 2; condition SUCCESS needs exit code 0; its last log lines: boom"
    )
    assert notes(actions) == [("app", f"not started: {gate.failed.why}; its last log lines: boom")]


def test_a_failure_travels_down_a_chain_with_each_reason_in_brackets() -> None:
    m = TaskMachine(
        plan(c("db", essential=False), c("api", essential=False, **on("db", "SUCCESS")), c("app", **on("api", "START")))
    )
    running(m, "db")
    exited(m, "db", 1)
    m.give_up("api", m.gate("api", T0 + 2).failed.why)  # type: ignore[union-attr]
    assert m.gate("app", T0 + 2).failed == Failed(
        "dependency 'api' never started (DependencyFailed: dependency 'db' exited with code 1; condition SUCCESS "
        "needs exit code 0)",
        "api",
    )


@pytest.mark.parametrize("status", ["STOPPING", "STOPPED"])
def test_a_gate_gives_up_when_the_task_stops(status: str) -> None:
    m = dependency_of_app("HEALTHY", healthCheck=HEALTH)
    m.state.status = status
    gate = m.gate("app", T0)
    app = m.containers["app"]
    assert gate.done and not gate.start
    assert (app.status, app.exit_code, app.reason) == ("STOPPED", None, "the task stopped before the container started")
    assert notes(gate.actions) == [("app", "not started: task stopping")]


# --- essential containers and the task's stop code -----------------------------------------------------------


@pytest.mark.parametrize(
    ("essential", "task_status", "role", "stops"),
    [
        (True, "RUNNING", Role.OWNER, True),
        (True, "PENDING", Role.OWNER, True),
        (True, "RUNNING", Role.STARTER, True),  # the worker that started the session task acts on it
        (True, "RUNNING", Role.FOLLOWER, False),  # the others leave it to the starter
        (True, "STOPPING", Role.OWNER, False),  # already stopping: an exit is expected
        (False, "RUNNING", Role.OWNER, False),  # a non-essential exit does not stop the task
    ],
)
def test_an_essential_exit_stops_the_task(essential: bool, task_status: str, role: Role, stops: bool) -> None:
    m = TaskMachine(plan(c("app", essential=essential), c("side")), role=role)
    running(m, "app", "side")
    m.state.status = task_status
    actions = exited(m, "app", 7)
    expected = [StopTask("EssentialContainerExited", "Essential container in task exited: 'app' exited with code 7")]
    assert [a for a in actions if isinstance(a, StopTask)] == (expected if stops else [])
    # The stop is decided at the exit: a container still waiting to start sees the task stopping at once.
    assert (m.state.status == "STOPPING") is stops or task_status == "STOPPING"
    assert ("app", "exited with code 7") in notes(actions)
    assert Emit("container_exited", "app", {"exit_code": 7}) in actions


def test_a_follower_notices_the_task_stopped_when_every_container_has() -> None:
    m = TaskMachine(plan(c("app"), c("side", essential=False)), role=Role.FOLLOWER)
    running(m, "app", "side")
    m.state.status = "RUNNING"
    exited(m, "app", 0)
    assert m.state.status == "RUNNING"
    exited(m, "side", 0)
    assert m.state.status == "STOPPED"


def test_an_essential_container_that_did_not_start_fails_the_task_to_start() -> None:
    m = TaskMachine(plan(c("db", essential=False), c("app", **on("db", "SUCCESS"))))
    running(m, "db")
    exited(m, "db", 1)
    m.give_up("app", "dependency 'db' exited with code 1; condition SUCCESS needs exit code 0")
    why = (
        "Essential container 'app' did not start: DependencyFailed: dependency 'db' exited with code 1; "
        "condition SUCCESS needs exit code 0"
    )
    assert m.after_gates() == [Note(None, "task STOPPING (TaskFailedToStart)"), StopTask("TaskFailedToStart", why)]
    assert (m.state.status, m.state.stop_code, m.state.stopped_reason) == ("STOPPING", "TaskFailedToStart", why)


def test_a_non_essential_container_that_did_not_start_lets_the_task_run() -> None:
    m = TaskMachine(plan(c("app"), c("side", essential=False)))
    running(m, "app")
    m.start_refused("side", "port is already allocated")
    assert m.after_gates() == [Note(None, "task RUNNING")]
    assert m.state.status == "RUNNING"


def test_the_first_stop_code_wins_and_stopping_is_said_once() -> None:
    m = TaskMachine(plan(c("app")))
    running(m, "app")
    assert m.request_stop("EssentialContainerExited", "app exited") == [
        Note(None, "task STOPPING (EssentialContainerExited)")
    ]
    assert m.request_stop("UserInitiated", "Task stopped by the test") == []
    assert (m.state.status, m.state.stop_code, m.state.stopped_reason) == (
        "STOPPING",
        "EssentialContainerExited",
        "app exited",
    )


def test_the_stopped_task_tells_its_stop_code_to_listeners() -> None:
    m = TaskMachine(plan(c("app")))
    m.request_stop("UserInitiated", "done")
    assert m.set_status("STOPPED") == [
        Note(None, "task STOPPED"),
        Emit("task_stopped", None, {"stop_code": "UserInitiated", "reason": "done"}),
    ]


# --- stop order ----------------------------------------------------------------------------------------------


def test_dependents_stop_before_their_dependencies_through_every_kind_of_dependency() -> None:
    m = TaskMachine(
        plan(
            c("db"),
            c("data", essential=False),
            c("cache"),
            c("app", links=["cache"], volumesFrom=[{"sourceContainer": "data"}], **on("db", "START")),
            networkMode="bridge",
        )
    )
    running(m, "db", "data", "cache", "app")
    assert {n: m.may_stop(n) for n in m.containers} == {"db": False, "data": False, "cache": False, "app": True}
    m.stopped("app")
    assert all(m.may_stop(n) for n in m.containers)


def test_a_container_waits_to_stop_while_a_dependent_is_still_starting_or_may_still_start() -> None:
    m = dependency_of_app("START")
    running(m, "db")
    m.gating = True
    assert not m.may_stop("db")  # app may still start: it is stopped first
    m.containers["app"].starting = True
    m.gating = False
    assert not m.may_stop("db")
    m.containers["app"].starting = False
    assert m.may_stop("db")  # app never started and no longer can: nothing to wait for
    m.containers["db"].starting = True
    assert not m.may_stop("db")  # its own start call is under way


def test_only_a_running_container_is_stopped() -> None:
    m = TaskMachine(plan(c("app"), c("done", essential=False), c("never", essential=False)))
    running(m, "app", "done")
    exited(m, "done", 0)
    assert [n for n in m.containers if m.needs_stop(n)] == ["app"]


# --- restarts: the agent's restart tracker -------------------------------------------------------------------

POLICY = RestartPolicy(ignored_exit_codes=(0,), restart_attempt_period=60)


@pytest.mark.parametrize(
    ("policy", "exit_code", "ran_since", "stopping", "expected"),
    [
        (None, 1, T0, False, (False, "restart policy is not enabled")),
        (POLICY, 1, T0, True, (False, "the task is stopping")),
        (POLICY, None, T0, False, (False, "exit code is unknown")),
        (POLICY, 0, T0, False, (False, "exit code 0 is ignored")),
        (POLICY, 1, T0 + 40.1, False, (False, "it ran for less than the restartAttemptPeriod of 60 s")),
        (POLICY, 1, T0 + 40, False, (True, "")),  # exactly the period: restarted
        (POLICY, 137, T0, False, (True, "")),
    ],
)
def test_should_restart(policy: Any, exit_code: Any, ran_since: float, stopping: bool, expected: Any) -> None:
    assert should_restart(policy, exit_code, ran_since, T0 + 100, stopping) == expected


def test_a_restarted_essential_container_does_not_stop_the_task_and_counts_its_restarts() -> None:
    m = TaskMachine(plan(c("app")), restart_policies={"app": POLICY})
    running(m, "app", at=T0)
    m.state.status = "RUNNING"
    actions = exited(m, "app", 1, at=T0 + 61)
    assert [a for a in actions if not isinstance(a, (Note, Emit))] == [RestartContainer("app")]
    assert ("app", "restarting (restart 1)") in notes(actions)
    again = m.on_event("app", ContainerEvent("start"), T0 + 62, 0)
    assert notes(again) == [("app", "started again")]
    app = m.containers["app"]
    assert (app.status, app.exit_code, app.restart_count) == ("RUNNING", None, 1)
    # The period counts from the last restart: an exit 30 s after it is not restarted, and stops the task.
    assert [a for a in exited(m, "app", 1, at=T0 + 91) if isinstance(a, (StopTask, RestartContainer))] == [
        StopTask("EssentialContainerExited", "Essential container in task exited: 'app' exited with code 1")
    ]


def test_a_refused_restart_of_an_essential_container_stops_the_task() -> None:
    m = TaskMachine(plan(c("app"), c("side", essential=False)), restart_policies={"app": POLICY, "side": POLICY})
    running(m, "app", "side")
    m.state.status = "RUNNING"
    assert m.restart_refused("side", "gone") == [Note("side", "not restarted: CannotStartContainerError: gone")]
    assert m.restart_refused("app", "gone")[1:] == [
        Note(None, "task STOPPING (EssentialContainerExited)"),
        StopTask("EssentialContainerExited", "Essential container in task exited: 'app' exited with code None"),
    ]


def test_a_follower_never_restarts() -> None:
    m = TaskMachine(plan(c("app")), role=Role.FOLLOWER, restart_policies={"app": POLICY})
    running(m, "app", at=T0)
    assert not any(isinstance(a, RestartContainer) for a in exited(m, "app", 1, at=T0 + 100))


def test_a_test_restarting_an_exited_container_makes_it_run_again() -> None:
    m = TaskMachine(plan(c("app"), c("side", essential=False)))
    running(m, "app", "side")
    exited(m, "side", 3)
    assert notes(m.on_event("side", ContainerEvent("start"), T0 + 5, 0)) == [("side", "started again")]
    assert (m.containers["side"].status, m.containers["side"].exit_code) == ("RUNNING", None)


# --- events --------------------------------------------------------------------------------------------------


def test_an_exit_proves_a_start_whose_event_was_missed() -> None:
    m = TaskMachine(plan(c("app")))
    m.state.status = "PENDING"
    m.created("app", "id-app")
    actions = exited(m, "app", 0, at=T0 + 3)
    app = m.containers["app"]
    assert (app.started, app.started_monotonic, app.status) == (True, T0 + 3, "STOPPED")
    assert notes(actions)[:2] == [("app", "started"), ("app", "exited with code 0")]


@pytest.mark.parametrize(
    ("has_check", "docker_says", "health", "emitted"),
    [
        (True, "HEALTHY", "HEALTHY", True),
        (True, "UNHEALTHY", "UNHEALTHY", False),
        (True, "STARTING", "UNKNOWN", False),
        (False, "HEALTHY", "UNKNOWN", False),  # an image's own HEALTHCHECK does not count
    ],
)
def test_health_comes_only_from_the_task_definitions_health_check(
    has_check: bool, docker_says: str, health: str, emitted: bool
) -> None:
    m = TaskMachine(plan(c("app", **({"healthCheck": HEALTH} if has_check else {}))))
    running(m, "app")
    actions = m.on_event("app", ContainerEvent("health", health=docker_says), T0, 0)
    assert m.containers["app"].health == health
    assert (Emit("container_healthy", "app") in actions) is emitted


def test_pause_and_unpause_are_noted() -> None:
    m = TaskMachine(plan(c("app")))
    running(m, "app")
    assert notes(m.on_event("app", ContainerEvent("pause"), T0, 0)) == [("app", "paused")]
    assert m.containers["app"].paused
    m.on_event("app", ContainerEvent("unpause"), T0, 0)
    assert not m.containers["app"].paused


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"Action": "start", "id": "c1"}, ("c1", ContainerEvent("start"))),
        ({"status": "pause", "id": "c1"}, ("c1", ContainerEvent("pause"))),
        (
            {"Action": "die", "Actor": {"ID": "c1", "Attributes": {"exitCode": "137"}}},
            ("c1", ContainerEvent("die", exit_code=137)),
        ),
        ({"Action": "die", "Actor": {"ID": "c1", "Attributes": {}}}, ("c1", ContainerEvent("die"))),
        ({"Action": "health_status: healthy", "id": "c1"}, ("c1", ContainerEvent("health", health="HEALTHY"))),
        # Podman's form: the status in a field of its own; "starting" tells nothing.
        (
            {"Action": "health_status", "HealthStatus": "unhealthy", "id": "c1"},
            ("c1", ContainerEvent("health", health="UNHEALTHY")),
        ),
        ({"Action": "health_status", "HealthStatus": "starting", "id": "c1"}, None),
        ({"Action": "exec_start: sh", "id": "c1"}, None),
        ({"Action": "create", "id": "c1"}, None),
    ],
)
def test_docker_events_are_read_into_container_events(event: dict[str, Any], expected: Any) -> None:
    assert container_event(event) == expected


def test_an_adopted_task_runs_while_an_essential_container_runs() -> None:
    m = TaskMachine(plan(c("app", healthCheck=HEALTH), c("side", essential=False)), role=Role.FOLLOWER)
    m.observe("app", "id-app", ObservedStatus("RUNNING", True, None, "HEALTHY"))
    m.observe("side", "id-side", ObservedStatus("STOPPED", True, 3, "UNKNOWN"))
    assert (m.containers["app"].health, m.containers["side"].exit_code) == ("HEALTHY", 3)
    assert m.adopted_status() == "RUNNING"
    m.observe("app", "id-app", ObservedStatus("STOPPED", True, 0, "UNKNOWN"))
    assert m.adopted_status() == "STOPPED"


# --- Docker state, as ECS reports it -------------------------------------------------------------------------

ZERO = "0001-01-01T00:00:00Z"
STARTED = "2026-01-01T10:00:00.5Z"


@pytest.mark.parametrize(
    ("state", "has_check", "expected"),
    [
        (None, False, ObservedStatus("STOPPED", False, None, "UNKNOWN")),  # gone
        (
            {"Running": False, "StartedAt": ZERO, "ExitCode": 0},
            False,
            ObservedStatus("CREATED", False, None, "UNKNOWN"),
        ),
        ({"Running": True, "StartedAt": STARTED}, False, ObservedStatus("RUNNING", True, None, "UNKNOWN")),
        (
            {"Running": False, "StartedAt": STARTED, "ExitCode": 137},
            False,
            ObservedStatus("STOPPED", True, 137, "UNKNOWN"),
        ),
        (
            {"Running": True, "StartedAt": STARTED, "Health": {"Status": "healthy"}},
            True,
            ObservedStatus("RUNNING", True, None, "HEALTHY"),
        ),
        (
            {"Running": True, "StartedAt": STARTED, "Health": {"Status": "starting"}},
            True,
            ObservedStatus("RUNNING", True, None, "UNKNOWN"),
        ),
        (
            {"Running": True, "StartedAt": STARTED, "Health": {"Status": "unhealthy"}},
            True,
            ObservedStatus("RUNNING", True, None, "UNHEALTHY"),
        ),
        (
            {"Running": True, "StartedAt": STARTED, "Health": {"Status": "healthy"}},
            False,
            ObservedStatus("RUNNING", True, None, "UNKNOWN"),
        ),
    ],
)
def test_docker_state_maps_to_the_ecs_view(state: Any, has_check: bool, expected: ObservedStatus) -> None:
    assert observed_status(state, has_health_check=has_check) == expected


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"status": "STOPPED", "exit_code": 3}, "it stopped (exit code 3)"),
        ({"status": "STOPPED", "reason": "CannotStartContainerError: x"}, "it stopped: CannotStartContainerError: x"),
        ({"status": "RUNNING", "health": "UNHEALTHY"}, "it is UNHEALTHY"),
        ({"status": "RUNNING"}, "it is not HEALTHY after 2.5 s"),
    ],
)
def test_why_a_container_is_not_healthy(change: dict[str, Any], why: str) -> None:
    m = TaskMachine(plan(c("app", healthCheck=HEALTH)))
    state = m.containers["app"]
    for key, value in change.items():
        setattr(state, key, value)
    assert not_healthy_why(state, 2.5) == why


@pytest.mark.parametrize(
    ("role", "acts", "removes"),
    [(Role.OWNER, True, True), (Role.STARTER, True, False), (Role.FOLLOWER, False, False)],
)
def test_what_each_role_does_with_a_task(role: Role, acts: bool, removes: bool) -> None:
    assert (role.acts, role.removes) == (acts, removes)


def test_the_restart_attempt_period_defaults_to_ecs_five_minutes() -> None:
    # ECS: restartAttemptPeriod defaults to 300 s when a restartPolicy leaves it out.
    assert RestartPolicy().restart_attempt_period == 300 and RestartPolicy().ignored_exit_codes == ()


def test_creating_and_starting_are_noted_and_the_start_is_told_to_listeners_once() -> None:
    m = TaskMachine(plan(c("app")))
    assert m.created("app", "id-app") == [Note("app", "created")]
    assert m.containers["app"].status == "CREATED"
    m.gate("app", T0)
    assert m.containers["app"].starting
    assert m.started("app", T0, 5.0) == [Note("app", "started"), Emit("container_started", "app")]
    app = m.containers["app"]
    assert (app.starting, app.status, app.started_at, app.started_monotonic) == (False, "RUNNING", 5.0, T0)
    assert m.started("app", T0 + 1, 6.0) == []  # the start event after the start call: nothing new


def test_a_refused_start_is_no_longer_starting_and_says_why() -> None:
    m = TaskMachine(plan(c("app")))
    m.created("app", "id-app")
    m.gate("app", T0)
    assert m.start_refused("app", "port is already allocated") == [
        Note("app", "CannotStartContainerError: port is already allocated")
    ]
    app = m.containers["app"]
    assert (app.starting, app.status, app.started) == (False, "STOPPED", False)


@NEEDS_RESTART_POLICY
def test_the_machine_applies_the_plans_restart_policies() -> None:
    m = TaskMachine(
        plan(
            c("app", restartPolicy={"enabled": True, "ignoredExitCodes": [0, 2], "restartAttemptPeriod": 90}),
            c("off", essential=False, restartPolicy={"enabled": False, "restartAttemptPeriod": 90}),
            c("plain", essential=False),
            c("default", essential=False, restartPolicy={"enabled": True}),
        )
    )
    assert m.restart_policies == {"app": RestartPolicy((0, 2), 90), "default": RestartPolicy((), 300)}
    running(m, "app", at=T0)
    m.state.status = "RUNNING"
    assert RestartContainer("app") not in exited(m, "app", 2, at=T0 + 100)  # ignored: the task stops
    restarted = TaskMachine(m.plan)
    running(restarted, "app", at=T0)
    restarted.state.status = "RUNNING"
    actions = exited(restarted, "app", 1, at=T0 + 100)
    assert Emit("container_restarted", "app", {"restart_count": 1, "exit_code": 1}) in actions
    assert RestartContainer("app") in actions


def test_an_essential_container_that_fails_before_running_is_a_failure_to_start() -> None:
    m = TaskMachine(plan(c("db", healthCheck=HEALTH), c("app", **on("db", "HEALTHY"))))
    running(m, "db")
    stop = [a for a in exited(m, "db", 2) if isinstance(a, StopTask)]
    m.request_stop(stop[0].stop_code, stop[0].reason)
    failed = m.failed_during_startup()
    assert failed is not None and failed.name == "db"
    assert m.after_gates() == []  # stopping: never RUNNING


@pytest.mark.parametrize(
    ("code", "before_running", "failed"),
    [(2, True, True), (0, True, False), (2, False, False)],  # a batch task's exit 0 is its work done
)
def test_only_an_error_exit_before_running_fails_the_start(code: int, before_running: bool, failed: bool) -> None:
    m = TaskMachine(plan(c("app"), c("side", essential=False)))
    running(m, "app", "side")
    if not before_running:
        m.after_gates()
    stop = [a for a in exited(m, "app", code) if isinstance(a, StopTask)]
    m.request_stop(stop[0].stop_code, stop[0].reason)
    assert (m.failed_during_startup() is not None) is failed


def test_a_user_stop_before_running_is_no_failure_to_start() -> None:
    m = TaskMachine(plan(c("app")))
    running(m, "app")
    m.request_stop("UserInitiated", "stopped")
    exited(m, "app", 143)
    assert m.failed_during_startup() is None


# --- what Docker's inspect confirms while a gate waits ---------------------------------------------------------


def seen(status: str, health: str = "UNKNOWN", started: bool = True, exit_code: int | None = None) -> ObservedStatus:
    return ObservedStatus(status, started, exit_code, health)


def test_a_health_no_event_told_is_taken_from_inspect_and_meets_the_gate() -> None:
    m = dependency_of_app("HEALTHY", healthCheck=HEALTH)
    running(m, "db")
    m.created("app", "id-app")
    assert not m.gate("app", T0 + 1).start
    actions = m.confirm("db", seen("RUNNING", "HEALTHY"), T0 + 2, T0 + 2e9)
    assert notes(actions) == [("db", "health HEALTHY")] and Emit("container_healthy", "db") in actions
    assert m.gate("app", T0 + 2).start
    assert m.confirm("db", seen("RUNNING", "HEALTHY"), T0 + 3, T0 + 3e9) == []  # told once, like the event


def test_a_start_no_event_told_is_taken_from_inspect_once() -> None:
    m = dependency_of_app("START")
    m.state.status = "PENDING"
    m.created("db", "id-db")
    assert [a.what for a in m.confirm("db", seen("RUNNING"), T0, T0 + 1e9) if isinstance(a, Note)] == ["started"]
    assert m.confirm("db", seen("RUNNING"), T0 + 1, T0 + 2e9) == []


@pytest.mark.parametrize(
    ("observed", "why"),
    [
        (seen("STOPPED", exit_code=1), "exits stay with the events, which a dropped stream replays"),
        (seen("RUNNING", "UNKNOWN"), "no verdict yet is no news"),
        (seen("CREATED", started=False), "nothing happened"),
    ],
)
def test_what_inspect_does_not_tell_a_waiting_gate(observed: ObservedStatus, why: str) -> None:
    m = dependency_of_app("HEALTHY", healthCheck=HEALTH)
    running(m, "db")
    assert m.confirm("db", observed, T0 + 1, T0 + 1e9) == [], why
    assert m.containers["db"].status == "RUNNING" and m.containers["db"].health == "UNKNOWN"


def test_an_image_health_check_is_not_taken_from_inspect_either() -> None:
    m = dependency_of_app("START")  # db has no task definition healthCheck
    running(m, "db")
    assert m.confirm("db", seen("RUNNING", "HEALTHY"), T0 + 1, T0 + 1e9) == []


def test_a_long_wait_says_what_it_waits_for_after_a_few_seconds_then_every_half_minute() -> None:
    m = dependency_of_app("HEALTHY", healthCheck=HEALTH)
    running(m, "db")
    m.created("app", "id-app")
    m.gate("app", T0)  # the wait begins
    assert m.still_waiting("app", T0 + 4) == []
    assert notes(m.still_waiting("app", T0 + 5)) == [
        ("app", "still waiting after 5 s for db HEALTHY (running, health UNKNOWN)")
    ]
    assert m.still_waiting("app", T0 + 20) == []
    assert notes(m.still_waiting("app", T0 + 35))[0][1].startswith("still waiting after 35 s for db HEALTHY")
    m.on_event("db", ContainerEvent("health", health="HEALTHY"), T0 + 36, T0 + 36)
    assert m.still_waiting("app", T0 + 70) == []  # met: nothing waits


def test_a_wait_for_a_dependency_not_yet_started_says_so() -> None:
    m = dependency_of_app("COMPLETE")
    m.state.status = "PENDING"
    m.created("db", "id-db")
    m.created("app", "id-app")
    m.gate("app", T0)
    assert notes(m.still_waiting("app", T0 + 6)) == [("app", "still waiting after 6 s for db COMPLETE (created)")]


def test_a_health_told_twice_is_taken_once() -> None:
    m = dependency_of_app("HEALTHY", healthCheck=HEALTH)
    running(m, "db")
    first = m.on_event("db", ContainerEvent("health", health="HEALTHY"), T0 + 1, T0 + 1)
    assert Emit("container_healthy", "db") in first
    assert m.on_event("db", ContainerEvent("health", health="HEALTHY"), T0 + 2, T0 + 2) == []  # Podman: each check
    assert notes(m.on_event("db", ContainerEvent("health", health="UNHEALTHY"), T0 + 3, T0 + 3)) == [
        ("db", "health UNHEALTHY")
    ]


def test_after_the_stream_dropped_an_exit_is_taken_from_inspect_once() -> None:
    m = dependency_of_app("SUCCESS")
    running(m, "db")
    stopped = seen("STOPPED", exit_code=0)
    assert m.confirm("db", stopped, T0 + 1, T0 + 1e9) == []  # events may still bring it
    assert m.verdict(m.plan.container("app").depends_on[0], T0 + 1) == Waiting(None)
    taken = m.confirm("db", stopped, T0 + 2, T0 + 2e9, exits=True)  # the stream dropped: they may not
    assert ("db", "exited with code 0") in notes(taken) and m.verdict(
        m.plan.container("app").depends_on[0], T0 + 2
    ) == Met()
    assert exited(m, "db", 0, at=T0 + 3) == []  # the replayed event: told already


def test_an_exit_after_a_restart_is_a_new_exit() -> None:
    m = dependency_of_app("START")
    running(m, "db")
    assert notes(exited(m, "db", 1)) == [("db", "exited with code 1")]
    m.on_event("db", ContainerEvent("start"), T0 + 2, T0 + 2)
    assert notes(exited(m, "db", 1, at=T0 + 3)) == [("db", "exited with code 1")]
