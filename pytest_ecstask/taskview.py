"""What every backend's task shows a test and the reports, as typing protocols.

A local :class:`~pytest_ecstask.task.Task` (Docker) and an :class:`~pytest_ecstask.awstask.AwsTask` (ECS)
both have these names, with the same meaning; the reports, the live progress lines and the task events are
written against them, so they read either kind of task the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Union

from pytest_ecstask.secretvalues import SecretMask
from pytest_ecstask.taskstate import LogLine, TimelineEntry

if TYPE_CHECKING:
    from pytest_ecstask.awstask import AwsTask
    from pytest_ecstask.task import Task

Listener = Callable[[str, "str | None", Mapping[str, Any]], None]


class TaskProgress(Protocol):
    """Where a task's timeline lines and events go as they happen."""

    on_timeline: Callable[[TimelineEntry], None] | None  # the live -v lines
    listeners: list[Listener]  # (event, container, details), for the pytest_ecstask_task_event hook
    killed_at_stop: list[tuple[str, float, int]]  # (container, seconds its stop took, its stop timeout)


class ContainerView(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def health(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def host(self) -> str: ...
    def port(self, container_port: int, protocol: str = "tcp") -> int: ...
    def log_lines(self, *, raw: bool = False) -> list[LogLine]: ...
    def logs(self, *, raw: bool = False) -> str: ...
    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30.0, *, raw: bool = False) -> str: ...


class TaskView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def stop_code(self) -> str | None: ...
    @property
    def stopped_reason(self) -> str | None: ...
    @property
    def timeline(self) -> list[TimelineEntry]: ...
    @property
    def containers(self) -> Mapping[str, Any]: ...  # name -> ContainerView
    @property
    def mask(self) -> SecretMask: ...  # resolved secret values out of a text; false when there are none
    @property
    def progress(self) -> TaskProgress: ...
    def close(self) -> None: ...


# What a fixture hands a test: a local task, or one on ECS (--ecs-backend=aws).
AnyTask = Union["Task", "AwsTask"]
