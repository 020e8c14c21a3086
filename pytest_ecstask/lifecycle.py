"""What is ours and who is alive: session ids, labels, leases (which leftovers belong to dead runs: ``leftovers``).

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
