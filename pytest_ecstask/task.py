"""What a test holds: a live ECS task and its containers, and the way to start one outside pytest."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from pytest_ecstask.errors import EcsTaskError, TaskFailedToStart
from pytest_ecstask.lifecycle import Owner, new_task_id, now_rfc3339, process_owner
from pytest_ecstask.plan import PlanOptions, TaskPlan, build_plan
from pytest_ecstask.runtime import ContainerState, Engine, TaskRunner, TimelineEntry
from pytest_ecstask.taskdef import TaskDefinition, load_task_definition, parse_task_definition

TaskSource = Union[str, "os.PathLike[str]", TaskDefinition, Mapping[str, Any], list]

_engine: Optional[Engine] = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """The process's Docker connection, opened on first use (never when no test needs a task)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine.connect()
        return _engine


def engine_if_connected() -> Optional[Engine]:
    return _engine


@dataclass(frozen=True)
class TaskOptions:
    """How to run a task. All but ``check`` also have a command-line option and an ini key."""

    images: Mapping[str, str] = field(default_factory=dict)  # task definition image (or glob) -> local image
    pull: str = "missing"  # missing | always | never
    stop_timeout: Optional[float] = None  # overrides every container's stopTimeout
    start_timeout: Optional[float] = None  # for containers without startTimeout; None = no limit
    check: bool = True  # raise TaskFailedToStart when an essential container could not start


def load_source(source: TaskSource, *, base_dir: Optional[Path] = None) -> TaskDefinition:
    if isinstance(source, TaskDefinition):
        return source
    if isinstance(source, (Mapping, list)):
        return parse_task_definition(source, "<task definition given as data>", default_family="task")
    path = Path(os.fspath(source))
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    return load_task_definition(path)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


class Container:
    """One container of a running task, by its task definition name."""

    def __init__(self, task: Task, state: ContainerState) -> None:
        self._task = task
        self._state = state
        self._ports: Optional[Mapping[str, Any]] = None

    def __repr__(self) -> str:
        return f"<Container {self.name!r} {self.status} exit_code={self.exit_code}>"

    @property
    def name(self) -> str:
        return self._state.name

    @property
    def id(self) -> Optional[str]:
        """The Docker container id."""
        return self._state.docker_id

    @property
    def docker_name(self) -> str:
        return self._state.plan.docker_name

    @property
    def image(self) -> str:
        return self._state.plan.image

    @property
    def essential(self) -> bool:
        return self._state.plan.essential

    @property
    def status(self) -> str:
        """ECS known status: PENDING, CREATED, RUNNING or STOPPED."""
        return self._state.status

    @property
    def exit_code(self) -> Optional[int]:
        return self._state.exit_code

    @property
    def health(self) -> str:
        """UNKNOWN, HEALTHY or UNHEALTHY; only a task definition healthCheck makes it other than UNKNOWN."""
        return self._state.health

    @property
    def reason(self) -> Optional[str]:
        """Why the container stopped or never started, when ECS would say."""
        return self._state.reason

    @property
    def host(self) -> str:
        """The address where this container's published ports are reached from the test."""
        return self._task._engine.host

    def port(self, container_port: int, protocol: str = "tcp") -> int:
        """The host port published for ``container_port`` (the same number in host network mode)."""
        plan = self._state.plan
        key = f"{int(container_port)}/{protocol}"
        if not any(p.key == key for p in plan.ports):
            mapped = ", ".join(p.key for p in plan.ports) or "none"
            raise EcsTaskError(f"container {self.name!r} has no portMapping for {key}; its portMappings: {mapped}")
        if self._task.network_mode == "host":
            return int(container_port)
        if self._ports is None:
            owner_state = self._task._runner.pause if self._task.network_mode == "awsvpc" else self._state
            if owner_state is None or owner_state.docker_id is None:
                raise EcsTaskError(f"container {self.name!r} was never created, so {key} is not published")
            info = self._task._engine.api.inspect_container(owner_state.docker_id)
            ports = info["NetworkSettings"]["Ports"] or {}
            if not ports:
                raise EcsTaskError(f"container {self.name!r}: {key} is not published (is the container running?)")
            self._ports = ports  # published ports do not change while the container lives
        bindings = self._ports.get(key) or []
        if not bindings:
            raise EcsTaskError(f"container {self.name!r}: {key} is not published (is the container running?)")
        return int(bindings[0]["HostPort"])

    def address(self, container_port: int, protocol: str = "tcp") -> tuple[str, int]:
        return self.host, self.port(container_port, protocol)

    def logs(self) -> str:
        """stdout and stderr so far; kept after the container is removed."""
        if self._state.logs is not None or self.id is None:
            return self._state.logs or ""
        return str(self._task._engine.api.logs(self.id).decode("utf-8", "replace"))

    def exec(self, cmd: Union[str, list[str]], *, user: str = "", workdir: Optional[str] = None) -> ExecResult:
        """Run ``cmd`` inside the running container, as ``docker exec`` would."""
        if self.id is None or self.status != "RUNNING":
            raise EcsTaskError(f"container {self.name!r} is {self.status}; exec needs it RUNNING")
        api = self._task._engine.api
        exec_id = api.exec_create(self.id, cmd, user=user, workdir=workdir)["Id"]
        output = api.exec_start(exec_id)
        code = api.exec_inspect(exec_id)["ExitCode"]
        return ExecResult(int(code), output.decode("utf-8", "replace"))

    def inspect(self) -> Mapping[str, Any]:
        """Docker's own view of the container (``docker inspect``)."""
        if self.id is None:
            raise EcsTaskError(f"container {self.name!r} was never created")
        return dict(self._task._engine.api.inspect_container(self.id))


class Task:
    """A running (or stopped) ECS task. Use as a context manager to have it removed on exit."""

    def __init__(self, engine: Engine, taskdef: TaskDefinition, plan: TaskPlan, options: TaskOptions) -> None:
        self._engine = engine
        self.definition = taskdef
        self.plan = plan
        self.options = options
        self._runner = TaskRunner(engine, plan, pull=options.pull)
        self.containers: Mapping[str, Container] = {
            name: Container(self, state) for name, state in self._runner.containers.items()
        }

    def __repr__(self) -> str:
        return f"<Task {self.family}:{self.revision} {self.id} {self.status}>"

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def arn(self) -> str:
        return self.plan.task_arn

    @property
    def id(self) -> str:
        return self.plan.task_id

    @property
    def family(self) -> str:
        return self.plan.family

    @property
    def revision(self) -> int:
        return self.plan.revision

    @property
    def network_mode(self) -> str:
        return self.plan.network_mode

    @property
    def status(self) -> str:
        """ECS last status: PROVISIONING, PENDING, RUNNING, STOPPING or STOPPED."""
        return self._runner.state.status

    @property
    def stop_code(self) -> Optional[str]:
        """TaskFailedToStart, EssentialContainerExited or UserInitiated once the task stops."""
        return self._runner.state.stop_code

    @property
    def stopped_reason(self) -> Optional[str]:
        return self._runner.state.stopped_reason

    @property
    def timeline(self) -> list[TimelineEntry]:
        """What happened when, in seconds since the task began."""
        return list(self._runner.state.timeline)

    def start(self) -> Task:
        self._runner.start()
        if self.options.check and self.stop_code == "TaskFailedToStart":
            message = self.describe_failure()
            self.close()
            raise TaskFailedToStart(message)
        return self

    def stop(self, reason: str = "Task stopped by the test") -> None:
        """Stop the task as ECS does: dependents first, SIGTERM then SIGKILL after each stopTimeout."""
        self._runner.stop(stop_code="UserInitiated", reason=reason)

    def wait(self, timeout: Optional[float] = None) -> Task:
        """Wait for the task to reach STOPPED (a batch task finishing, an essential container exiting)."""
        if not self._runner.wait(timeout):
            running = ", ".join(c.name for c in self.containers.values() if c.status == "RUNNING")
            raise TimeoutError(f"task {self.family}:{self.revision} still running after {timeout} s ({running})")
        return self

    def close(self) -> None:
        """Stop the task if it runs, keep its logs, and remove every container, network and task volume."""
        self._runner.remove()

    def describe_failure(self) -> str:
        lines = [f"task {self.family}:{self.revision} ({self.id}) failed to start: {self.stopped_reason}"]
        for c in self.containers.values():
            code = "" if c.exit_code is None else f" exit code {c.exit_code}"
            why = f" - {c.reason}" if c.reason else ""
            lines.append(f"  {c.name}: {c.status}{code}{why}")
        return "\n".join(lines)


def create_task(
    source: TaskSource,
    options: TaskOptions = TaskOptions(),
    *,
    owner: Optional[Owner] = None,
    engine: Optional[Engine] = None,
    base_dir: Optional[Path] = None,
    task_id: Optional[str] = None,
    created: Optional[str] = None,
) -> Task:
    """A planned, not yet started task (nothing on the engine yet).

    ``owner`` is the run the task belongs to (its session and lease); outside pytest, the process's own.
    """
    taskdef = load_source(source, base_dir=base_dir)
    engine = engine or get_engine()
    needs_pause = taskdef.network_mode == "awsvpc" or taskdef.raw.get("pidMode") == "task" or (
        taskdef.raw.get("ipcMode") == "task"
    )
    plan = build_plan(
        taskdef,
        PlanOptions(
            task_id=task_id or new_task_id(),
            owner=owner or process_owner(),
            created=created or now_rfc3339(),
            pause_image=engine.pause_image() if needs_pause else "",
            image_map=dict(options.images),
            stop_timeout=options.stop_timeout,
            default_start_timeout=options.start_timeout,
        ),
    )
    return Task(engine, taskdef, plan, options)


@contextmanager
def run_task(source: TaskSource, options: TaskOptions = TaskOptions(), *, owner: Optional[Owner] = None) -> Iterator[Task]:
    """Start a task for the length of a ``with`` block, outside pytest; everything is removed on exit."""
    task = create_task(source, options, owner=owner)
    try:
        task.start()
        yield task
    finally:
        task.close()
