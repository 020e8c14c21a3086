"""What is ours: the session id, the task ids and the labels every container, network and volume carries."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timezone

LABEL_PREFIX = "pytest-ecstask"
LABEL_SESSION = f"{LABEL_PREFIX}.session"
LABEL_TASK = f"{LABEL_PREFIX}.task"
LABEL_CREATED = f"{LABEL_PREFIX}.created"
LABEL_OWNER = f"{LABEL_PREFIX}.owner"
LABEL_ROLE = f"{LABEL_PREFIX}.role"

# Lets a wrapper (a CI script running pytest several times) give a run its session id from outside.
SESSION_ENV = "PYTEST_ECSTASK_SESSION"


def new_session_id() -> str:
    return secrets.token_hex(6)


def new_task_id() -> str:
    """A task id shaped like the ECS one (32 lower-case hex digits)."""
    return secrets.token_hex(16)


def owner() -> str:
    """Who created a resource: host and process, so a later run can tell whether its creator is alive."""
    return f"{socket.gethostname()}:{os.getpid()}"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def resource_labels(session_id: str, task_id: str, role: str, created: str, owner_id: str) -> dict[str, str]:
    return {
        LABEL_SESSION: session_id,
        LABEL_TASK: task_id,
        LABEL_CREATED: created,
        LABEL_OWNER: owner_id,
        LABEL_ROLE: role,
    }
