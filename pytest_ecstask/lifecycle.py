"""What is ours and who is alive: session ids, labels, leases, and which leftovers belong to dead runs.

A run holds a lease, an OS file lock, for as long as it lives; the OS drops it when the process dies, SIGKILL
included. Every container, network and volume of the run names its lease file in a label, so any later
run on the same host can prove the owner dead by taking the lock itself. Where the lease cannot be read
(another host, another lease directory), the run's sentinel decides: a container whose stdin the run keeps
open through an attach, so the engine ends it when the run's process dies. Resources with neither fall back
to an age limit. Nothing here talks to Docker.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_ecstask.errors import EcsTaskError

LABEL_PREFIX = "pytest-ecstask"
# The sweep's defaults (here, so that the settings read them without importing the sweep).
DEFAULT_MAX_AGE = 2 * 3600.0  # for resources of another host, whose liveness cannot be checked
DEFAULT_CAP = 300  # more than this many resources in one sweep looks like a mistake: refuse unless forced
LABEL_SESSION = f"{LABEL_PREFIX}.session"
LABEL_TASK = f"{LABEL_PREFIX}.task"
LABEL_CREATED = f"{LABEL_PREFIX}.created"
LABEL_OWNER = f"{LABEL_PREFIX}.owner"
LABEL_ROLE = f"{LABEL_PREFIX}.role"
LABEL_HOST = f"{LABEL_PREFIX}.host"
LABEL_LEASE = f"{LABEL_PREFIX}.lease"
LABEL_KEEP = f"{LABEL_PREFIX}.keep"
# A run's heartbeat, the UTC time it last said it lives (on ECS, where another host's lease cannot be asked):
# the age rule counts from it when it is later than the creation time.
LABEL_ALIVE = f"{LABEL_PREFIX}.alive"
# --ecs-reuse: the path of the reuse record (this host's lease directory) of a session task kept for the next run
LABEL_REUSE = f"{LABEL_PREFIX}.reuse"
# "1" on every resource of a run that keeps a sentinel: without a sentinel, such a run is dead.
LABEL_SENTINEL = f"{LABEL_PREFIX}.sentinel"
ROLE_SENTINEL = "sentinel"  # the LABEL_ROLE of the sentinel container itself
# How long a sweep waits for a run to bring back a sentinel that exited (a dropped engine connection)
# before it judges the run dead.
SENTINEL_GRACE_SECONDS = 5.0
# How long, from a resource's creation, a sweep waits for its run's first sentinel (started at most a few
# seconds after the run's first Docker use, once its first task is up).
SENTINEL_START_GRACE_SECONDS = 30.0

# Lets a wrapper (a CI script running pytest several times) give a run its session id from outside.
SESSION_ENV = "PYTEST_ECSTASK_SESSION"
# Where leases live; every run on a host must agree, so only set it for all of them.
LEASE_DIR_ENV = "PYTEST_ECSTASK_LEASE_DIR"
HOST_ID_ENV = "PYTEST_ECSTASK_HOST_ID"


def new_session_id() -> str:
    return secrets.token_hex(6)


def new_task_id() -> str:
    """A task id shaped like the ECS one (32 lower-case hex digits)."""
    return secrets.token_hex(16)


def owner() -> str:
    """Who created a resource, for people reading labels: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def host_id() -> str:
    """This host's identity: the host name plus the machine id, so two machines named alike differ.

    ``PYTEST_ECSTASK_HOST_ID`` overrides it, for setups where runs that share leases disagree on it.
    """
    if os.environ.get(HOST_ID_ENV):
        return os.environ[HOST_ID_ENV]
    machine = ""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            machine = Path(path).read_text().strip()
            break
        except OSError:
            continue
    digest = hashlib.sha256(f"{socket.gethostname()}/{machine}".encode()).hexdigest()[:16]
    return f"{socket.gethostname()}/{digest}"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Owner:
    """The run that creates resources: its session, its host and its lease."""

    session_id: str
    host: str
    lease: str  # the lease file's path; held by the run for its lifetime
    keep: bool = False  # --ecs-keep: left running for debugging; the sweep leaves such resources alone
    sentinel: bool = False  # the run keeps a sentinel container (a pytest run does; a script does not)
    reuse: str = ""  # --ecs-reuse, for the session task: its reuse record's path (see pytest_ecstask.reuse)


def resource_labels(owner_of: Owner, task_id: str, role: str, created: str) -> dict[str, str]:
    labels = {
        LABEL_SESSION: owner_of.session_id,
        LABEL_TASK: task_id,
        LABEL_CREATED: created,
        LABEL_OWNER: owner(),
        LABEL_ROLE: role,
        LABEL_HOST: owner_of.host,
        LABEL_LEASE: owner_of.lease,
    }
    if owner_of.keep:
        labels[LABEL_KEEP] = "1"
    if owner_of.reuse:
        labels[LABEL_REUSE] = owner_of.reuse
    if owner_of.sentinel:
        labels[LABEL_SENTINEL] = "1"
    return labels


# -- leases ----------------------------------------------------------------------------------------------


def lease_dir() -> Path:
    given = os.environ.get(LEASE_DIR_ENV)
    path = Path(given) if given else Path(tempfile.gettempdir()) / "pytest-ecstask"
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            path.chmod(0o1777)  # shared by every user's runs, like /tmp itself
    return path


def private_dir(path: Path) -> Path:
    """``path`` made a folder of this user's only (0700), in the lease directory every user shares; an
    EcsTaskError when one is there already that another user owns, others can open, or is a link."""
    import stat

    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    info = path.lstat()
    mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    if not stat.S_ISDIR(info.st_mode) or not mine or info.st_mode & 0o077:
        raise EcsTaskError(
            f"{path}: this run's folder in the lease directory is not a folder of this user's only (mode 0700); "
            f"another user or process made it: remove it, or set {LEASE_DIR_ENV} to a folder of your own"
        )
    return path


def write_private(path: Path, text: str) -> None:
    """``text`` in ``path``, readable by this user only from the first byte (it may hold a secret)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


class LeaseTaken(EcsTaskError):
    """Another live process holds the lease."""


class Lease:
    """An exclusive OS file lock held for the life of a run.

    ``flock`` on the file, as filelock takes it (``lease_is_held`` asks through filelock); taken without
    importing filelock, because every run takes one at its start, also a run that never uses Docker.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._other: Any = None  # where there is no fcntl: filelock's lock

    @classmethod
    def acquire(cls, session_id: str, directory: Path | None = None) -> Lease:
        """The lease of ``session_id``; LeaseTaken when a live process holds it."""
        lease = cls((directory or lease_dir()) / f"{session_id}.lease")
        try:
            import fcntl
        except ImportError:
            from filelock import FileLock, Timeout

            lease._other = FileLock(str(lease.path), timeout=0, thread_local=False)
            try:
                lease._other.acquire()
            except Timeout:
                raise LeaseTaken(f"{lease.path} is held by another process") from None
            return lease
        fd = os.open(lease.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LeaseTaken(f"{lease.path} is held by another process") from None
        lease._fd = fd
        return lease

    def release(self) -> None:
        if self._other is not None and self._other.is_locked:
            self._other.release()
            _unlink(self.path)
        elif self._fd is not None:
            _unlink(self.path)  # first: a process that takes it meanwhile would lock a file about to go
            os.close(self._fd)  # closing lets go of the lock
            self._fd = None


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def lease_is_held(path: str, cleanup: bool = True) -> bool | None:
    """True when a live run holds the lease, False when it provably does not, None when we cannot tell.

    Taking a dead run's lease to prove it dead also removes its file, unless ``cleanup`` is off (dry runs).
    """
    from filelock import FileLock, Timeout

    if not path:
        return None
    target = Path(path)
    if not target.exists():
        return False  # the owner removes it only after its own cleanup; nobody holds it
    probe = FileLock(str(target), timeout=0, thread_local=False)
    try:
        probe.acquire()
    except Timeout:
        return True
    except OSError:
        return None  # not ours to open (another user's run): cannot prove it dead
    try:
        return False
    finally:
        probe.release()
        if cleanup:
            _unlink(target)


_process_lease: Lease | None = None
_process_lease_lock = threading.Lock()


def process_owner(keep: bool = False) -> Owner:
    """The owner for tasks started outside pytest: one session and one lease per process, taken on first use."""
    global _process_lease
    with _process_lease_lock:
        if _process_lease is None:
            import atexit

            session_id = os.environ.get(SESSION_ENV) or new_session_id()
            _process_lease = Lease.acquire(session_id)
            atexit.register(_release_process_lease, _process_lease)
        session = _process_lease.path.name[: -len(".lease")]
        return Owner(session, host_id(), str(_process_lease.path), keep)


def _release_process_lease(lease: Lease) -> None:
    import shutil

    lease.release()
    shutil.rmtree(lease.path.with_suffix(".d"), ignore_errors=True)


# -- which leftovers belong to dead runs --------------------------------------------------------------


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
