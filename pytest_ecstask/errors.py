"""Errors a user can act on: each says what failed, where, and what to change."""

from __future__ import annotations

from collections.abc import Sequence


class EcsTaskError(Exception):
    """Base of every error pytest-ecstask raises on purpose."""


# A message lists at most this many problems: a broken generated file can have thousands.
MAX_PROBLEMS_SHOWN = 50


def problem_list(
    source: str,
    problems: Sequence[str],
    heading: str = "problems",
    *,
    singular: str | None = None,
    limit: int | None = MAX_PROBLEMS_SHOWN,
) -> str:
    """``source: N heading:`` and the problems one a line, the first ``limit`` of them (None: all).

    A lone problem goes on the first line (``source: problem``), unless ``singular`` counts it
    (``source: 1 secret could not be resolved:`` and the problem below).
    """
    count = len(problems)
    if count == 1 and singular is None:
        return f"{source}: {problems[0]}"
    shown = problems if limit is None else problems[:limit]
    lines = [f"  - {p}" for p in shown]
    if count > len(shown):
        lines.append(f"  ... and {count - len(shown)} more")
    noun = heading if count > 1 or singular is None else singular
    return f"{source}: {count} {noun}:\n" + "\n".join(lines)


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
