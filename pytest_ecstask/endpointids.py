"""Where a run's endpoints listen, and the ids and variables a task's containers get to find them. Pure.

The planner puts these variables in every container's environment; the server (``endpoints``) answers for
the ids. Every id is derived from a per-task secret, so it is unguessable and the same in every process of
the run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

ENDPOINT_IP = "169.254.170.2"


@dataclass(frozen=True)
class EndpointInfo:
    """Where the run's server listens, and the secret its own processes use to register tasks."""

    port: int
    control_token: str = field(repr=False)  # whoever holds it can register tasks and read their credentials
    pid: int
    port_refused: str = ""  # why the port asked for could not be bound, when the server took another

    @property
    def base_url(self) -> str:
        return f"http://{ENDPOINT_IP}" if self.port == 80 else f"http://{ENDPOINT_IP}:{self.port}"

    @property
    def relative_credentials(self) -> bool:
        """The exact ECS form (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) needs the server on port 80."""
        return self.port == 80


def derive(secret: str, *parts: str) -> str:
    return hashlib.sha256(":".join((secret, *parts)).encode()).hexdigest()[:32]


def metadata_id(secret: str, container: str) -> str:
    return derive(secret, "metadata", container)


def credentials_id(secret: str) -> str:
    return derive(secret, "credentials")


def authorization_token(secret: str) -> str:
    return derive(secret, "authorization") + derive(secret, "authorization", "2")


def container_environment(info: EndpointInfo, secret: str, container: str, role_arn: str | None) -> dict[str, str]:
    """The variables the ECS agent sets in a container for its endpoints."""
    mid = metadata_id(secret, container)
    env = {
        "ECS_CONTAINER_METADATA_URI_V4": f"{info.base_url}/v4/{mid}",
        "ECS_CONTAINER_METADATA_URI": f"{info.base_url}/v3/{mid}",
    }
    if role_arn:
        # One of the two, never both: SDKs disagree on which wins.
        path = f"/v2/credentials/{credentials_id(secret)}"
        if info.relative_credentials:
            env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = path
        else:
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"{info.base_url}{path}"
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = authorization_token(secret)
    return env
