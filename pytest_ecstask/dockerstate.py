"""A container as ECS speaks of it, read from Docker's inspect data: the statuses, and how Docker's map to them.

Light on purpose (the standard library only): the endpoint server imports it at its start, the state
machine (:mod:`pytest_ecstask.taskstate`) and the reports too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# ECS known statuses of a container, and of a task.
PENDING, CREATED, RUNNING, STOPPED = "PENDING", "CREATED", "RUNNING", "STOPPED"
PROVISIONING, STOPPING = "PROVISIONING", "STOPPING"
# Health as ECS reports it: Docker's "starting" (no verdict yet) is UNKNOWN.
UNKNOWN, HEALTHY, UNHEALTHY = "UNKNOWN", "HEALTHY", "UNHEALTHY"


def docker_time(value: Any) -> str | None:
    """Docker's timestamp, or None for its zero time ("0001-01-01T00:00:00Z": never happened)."""
    text = str(value or "")
    return None if not text or text.startswith("0001-01-01") else text


@dataclass(frozen=True)
class ObservedStatus:
    """A container as ECS would report it, read from Docker's inspect ``State``."""

    known_status: str  # CREATED, RUNNING or STOPPED
    started: bool  # it has run at some point
    exit_code: int | None  # when STOPPED after running
    health: str  # UNKNOWN, HEALTHY or UNHEALTHY; always UNKNOWN without a task definition healthCheck


def observed_status(state: Mapping[str, Any] | None, *, has_health_check: bool) -> ObservedStatus:
    """Map Docker's ``State`` (None: the container is gone) to the ECS view of the container.

    Only a task definition's healthCheck counts: an image's own HEALTHCHECK leaves the health UNKNOWN.
    """
    if state is None:
        return ObservedStatus(STOPPED, False, None, UNKNOWN)
    started = docker_time(state.get("StartedAt")) is not None
    if state.get("Running"):
        known = RUNNING
    elif started:
        known = STOPPED
    else:
        known = CREATED
    exit_code = int(state.get("ExitCode") or 0) if known == STOPPED else None
    health = UNKNOWN
    if has_health_check:
        docker_health = str((state.get("Health") or {}).get("Status", "")).upper()
        health = docker_health if docker_health in (HEALTHY, UNHEALTHY) else UNKNOWN
    return ObservedStatus(known, started or known == RUNNING, exit_code, health)
