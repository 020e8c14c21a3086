"""Errors a user can act on: each says what failed, where, and what to change."""

from __future__ import annotations


class EcsTaskError(Exception):
    """Base of every error pytest-ecstask raises on purpose."""


class TaskDefinitionError(EcsTaskError):
    """A task definition file cannot be used; lists every problem found, not only the first."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = f"{source}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            text = f"{source}: {len(self.problems)} problems:\n{lines}"
        super().__init__(text)


class PlanError(EcsTaskError):
    """A valid task definition asks for something that cannot be reproduced on a local engine."""


class DockerUnavailable(EcsTaskError):
    """No Docker engine answered."""


class TaskFailedToStart(EcsTaskError):
    """The task stopped before every essential container was running."""
