"""Errors a user can act on: each says what failed, where, and what to change."""

from __future__ import annotations


class EcsTaskError(Exception):
    """Base of every error pytest-ecstask raises on purpose."""


# A message lists at most this many problems: a broken generated file can have thousands.
MAX_PROBLEMS_SHOWN = 50


def problem_list(source: str, problems: list[str], heading: str = "problems") -> str:
    """``source: problem``, or ``source: N problems:`` and the first MAX_PROBLEMS_SHOWN of them, one a line."""
    if len(problems) == 1:
        return f"{source}: {problems[0]}"
    lines = [f"  - {p}" for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return f"{source}: {len(problems)} {heading}:\n" + "\n".join(lines)


class TaskDefinitionError(EcsTaskError):
    """A task definition file cannot be used; lists every problem found, not only the first."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)  # all of them; the message shows the first MAX_PROBLEMS_SHOWN
        super().__init__(problem_list(source, self.problems))


class PlanError(EcsTaskError):
    """A valid task definition asks for something that cannot be reproduced on a local engine."""


class DockerUnavailable(EcsTaskError):
    """No Docker engine answered."""


class TaskFailedToStart(EcsTaskError):
    """The task stopped before every essential container was running."""
