"""Which leftovers belong to dead runs: how a sweep judges each resource, by its run's lease, its sentinel,
or its age (the rules; ``sweep`` and ``awssweep`` list and remove). Nothing here talks to Docker or AWS.

Apart from ``lifecycle``, which every run imports at start-up, so that a run that never sweeps does not pay
for these classes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_ecstask.lifecycle import (
    LABEL_ALIVE,
    LABEL_CREATED,
    LABEL_HOST,
    LABEL_KEEP,
    LABEL_LEASE,
    LABEL_OWNER,
    LABEL_REUSE,
    LABEL_SENTINEL,
    LABEL_SESSION,
    LABEL_TASK,
    SENTINEL_GRACE_SECONDS,
    SENTINEL_START_GRACE_SECONDS,
    lease_is_held,
    parse_rfc3339,
)


@dataclass(frozen=True)
class Resource:
    kind: str  # "container", "network" or "volume"
    id: str
    name: str
    labels: Mapping[str, str]

    @property
    def session(self) -> str:
        return self.labels.get(LABEL_SESSION, "")


@dataclass(frozen=True)
class Verdict:
    resource: Resource
    remove: bool
    why: str


@dataclass(frozen=True)
class SentinelSeen:
    """What a sweep saw of one session's sentinel containers: one running, or when the last one exited."""

    running: bool
    exited_at: datetime | None = None  # the latest exit, when none runs


def sentinels_seen(containers: Sequence[tuple[str, str, str]]) -> dict[str, SentinelSeen]:
    """Per session, from its sentinel containers as (session, Docker state, FinishedAt): one that is not
    over (running, or created and about to start) makes the session's sentinel run."""
    seen: dict[str, SentinelSeen] = {}
    for session, state, finished in containers:
        before = seen.get(session)
        if before is not None and before.running:
            continue
        if state not in ("exited", "dead", "removing"):
            seen[session] = SentinelSeen(True)
            continue
        at = _docker_time(finished)
        latest = max((t for t in (at, before.exited_at if before else None) if t is not None), default=None)
        seen[session] = SentinelSeen(False, latest)
    return seen


def _docker_time(text: str) -> datetime | None:
    """Docker's times have nanoseconds (``2026-01-01T10:00:00.123456789Z``); Python 3.10 reads 0, 3 or 6 digits."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    return parse_rfc3339(f"{whole}.{(fraction + '000000')[:6]}+00:00") if whole else None


def classify(
    resources: Sequence[Resource],
    *,
    this_host: str,
    now: datetime,
    max_age_seconds: float,
    include_kept: bool = False,
    is_held: Callable[[str], bool | None] = lease_is_held,
    reuse_record: Callable[[str], tuple[float, str, str] | None] | None = None,
    live_sessions: Sequence[str] = (),
    sentinels: Mapping[str, SentinelSeen] | None = None,
    grace_seconds: float = SENTINEL_GRACE_SECONDS,
    start_grace_seconds: float = SENTINEL_START_GRACE_SECONDS,
) -> list[Verdict]:
    """Decide, per resource, whether it belongs to a dead run. A live run's resources are never chosen.

    The first rule that can tell decides: this run, kept (for reuse, or on purpose), the lease (this host),
    the sentinel, the age. ``reuse_record`` reads a reuse record: its age in seconds, the lease of the run
    that uses it now ("" when none does) and the task it records; None when there is none, OSError when it
    cannot be read.
    """
    held: dict[str, bool | None] = {}
    read_record = reuse_record or _reuse_record
    seen = sentinels or {}
    verdicts = []
    for r in resources:
        labels = r.labels
        if r.session in live_sessions:
            verdicts.append(Verdict(r, False, "this run"))
            continue
        kept = _kept(r, this_host, read_record, is_held, max_age_seconds, include_kept)
        if kept is not None:
            verdicts.append(kept)
            continue
        lease = labels.get(LABEL_LEASE, "") if labels.get(LABEL_HOST) == this_host else ""
        if lease and lease not in held:
            held[lease] = is_held(lease)
        by_lease = _by_lease(r, lease, held[lease]) if lease else None
        verdict = by_lease or _by_sentinel(r, seen.get(r.session), now, (grace_seconds, start_grace_seconds))
        if verdict is None and lease:
            # On this host a run we cannot check (another user's lease) is left alone, whatever its age.
            verdict = Verdict(r, False, f"its run ({r.session}) cannot be checked: lease {lease}")
        verdicts.append(verdict or _by_age(r, now, max_age_seconds))
    return verdicts


def _kept(
    r: Resource,
    this_host: str,
    read_record: Callable[[str], tuple[float, str, str] | None],
    is_held: Callable[[str], bool | None],
    max_age_seconds: float,
    include_kept: bool,
) -> Verdict | None:
    """The verdict on a resource kept on purpose: for reuse, or by --ecs-keep; None when the usual rules
    decide (any other resource, and kept ones with ``include_kept``, unless a live run uses them)."""
    if r.labels.get(LABEL_REUSE):
        return _by_reuse(r, this_host, read_record, is_held, max_age_seconds, include_kept)
    if r.labels.get(LABEL_KEEP) == "1" and not include_kept:
        return Verdict(r, False, "kept on purpose (--ecs-keep)")
    return None


def _by_reuse(
    r: Resource,
    this_host: str,
    read_record: Callable[[str], tuple[float, str, str] | None],
    is_held: Callable[[str], bool | None],
    max_age_seconds: float,
    include_kept: bool,
) -> Verdict | None:
    """A session task kept for the next run (--ecs-reuse): kept while a run uses it (even with
    ``include_kept``) or one used it within the orphan age; swept once idle longer. A task its record does
    not name (not kept yet: its run is going; or replaced) is judged by the usual rules, its run's lease."""
    if r.labels.get(LABEL_HOST) != this_host:
        return None if include_kept else Verdict(r, False, "kept for reuse by another host's runs (--ecs-reuse)")
    try:
        record = read_record(r.labels[LABEL_REUSE])
    except OSError:
        return Verdict(r, False, "kept for reuse; its reuse record cannot be read here (another user's run)")
    if record is None or record[2] != r.labels.get(LABEL_TASK):
        return None
    idle, lease, _ = record
    if lease and is_held(lease):
        return Verdict(r, False, "kept for reuse, and in use by a live run")
    if include_kept:
        return None
    if idle > max_age_seconds:
        return Verdict(r, True, f"kept for reuse, idle for {idle:.0f} s (more than {max_age_seconds:.0f} s)")
    return Verdict(r, False, f"kept for reuse (--ecs-reuse), idle for {idle:.0f} s")


def _reuse_record(path: str) -> tuple[float, str, str] | None:
    """A reuse record's age, the lease of the run using it and its task; None when there is none; OSError
    when it cannot be read (another user's)."""
    import json
    import time

    try:
        idle = time.time() - os.stat(path).st_mtime
        data = json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return idle, str(data.get("lease") or ""), str(data.get("task_id") or "")


def _by_lease(r: Resource, lease: str, alive: bool | None) -> Verdict | None:
    """The lease's verdict, or None when it cannot tell."""
    if alive is False and _process_alive(r.labels.get(LABEL_OWNER, "")):
        return None  # lease file gone (a /tmp cleaner?) but its process lives: do not guess
    if alive is False:
        return Verdict(r, True, f"its run ({r.session}) is dead: lease {lease} is free")
    if alive is True:
        return Verdict(r, False, f"its run ({r.session}) is alive")
    return None


def _by_sentinel(r: Resource, seen: SentinelSeen | None, now: datetime, graces: tuple[float, float]) -> Verdict | None:
    """The sentinel's verdict, or None for a resource of a run that keeps no sentinel (older, or a script)."""
    grace, start_grace = graces
    if seen is None and r.labels.get(LABEL_SENTINEL) != "1":
        return None
    if seen is not None and seen.running:
        return Verdict(r, False, f"its run ({r.session}) is alive: its sentinel runs")
    if seen is not None and seen.exited_at is not None:
        ago = (now - seen.exited_at).total_seconds()
        if ago < grace:
            return Verdict(r, False, f"its run ({r.session}) may come back: its sentinel exited {ago:.0f} s ago")
        return Verdict(r, True, f"its run ({r.session}) is dead: its sentinel exited {ago:.0f} s ago")
    created = parse_rfc3339(r.labels.get(LABEL_CREATED, ""))
    if created is not None and (now - created).total_seconds() < start_grace:
        return Verdict(r, False, f"its run ({r.session}) is starting: no sentinel yet")
    return Verdict(r, True, f"its run ({r.session}) is dead: it has no sentinel")


def _by_age(r: Resource, now: datetime, max_age_seconds: float) -> Verdict:
    """Old enough to go, counted from its creation, or from its run's last heartbeat when that is later."""
    created = parse_rfc3339(r.labels.get(LABEL_CREATED, ""))
    alive = parse_rfc3339(r.labels.get(LABEL_ALIVE, ""))
    host = r.labels.get(LABEL_HOST, "?")
    if alive is not None and (created is None or alive > created):
        since = (now - alive).total_seconds()
        if since > max_age_seconds:
            return Verdict(r, True, f"from host {host}, its run's last heartbeat {since:.0f} s ago")
        return Verdict(r, False, f"from host {host}, its run's last heartbeat only {since:.0f} s ago")
    if created is None:
        return Verdict(r, False, "no creation time: cannot tell its age")
    age = (now - created).total_seconds()
    if age > max_age_seconds:
        return Verdict(r, True, f"from host {host}, {age:.0f} s old")
    return Verdict(r, False, f"from host {host}, only {age:.0f} s old")


def _process_alive(owner_label: str) -> bool:
    """Whether the process named in an owner label (``host:pid``) still runs on this host."""
    host, _, pid = owner_label.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True


def remove_stale_run_files(directory: Path) -> int:
    """Remove the lease files and shared-state folders of runs that are gone; returns how many went."""
    import shutil

    removed = 0
    for path in directory.glob("*.lease"):
        if lease_is_held(str(path)) is False:  # taking the lock also removes the file
            removed += 1
    for folder in directory.glob("*.d"):
        if lease_is_held(str(directory / f"{folder.name[:-2]}.lease")) is False:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def describe(resource: Resource) -> dict[str, Any]:
    return {
        "kind": resource.kind,
        # Docker's container and network ids are shown short, as the docker CLI shows them; ARNs whole.
        "id": resource.id[:12] if resource.kind in ("container", "network") else resource.id,
        "name": resource.name,
        "session": resource.session,
        "task": resource.labels.get(LABEL_TASK, ""),
        "created": resource.labels.get(LABEL_CREATED, ""),
        "host": resource.labels.get(LABEL_HOST, ""),
    }
