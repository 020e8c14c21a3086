"""Where a run's endpoints listen, and the ids and variables a task's containers get to find them. Pure.

The planner puts these variables in every container's environment; the server (``endpoints``) answers for
the ids. Every id is derived from a per-task secret, so it is unguessable and the same in every process of
the run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# The modes live with the task options (the settings read them at start-up, without these classes).
from pytest_ecstask.options import ENDPOINT_MODES as ENDPOINT_MODES
from pytest_ecstask.options import endpoint_mode as endpoint_mode

ENDPOINT_IP = "169.254.170.2"


@dataclass(frozen=True)
class EndpointInfo:
    """Where the run's server listens, and the secret its own processes use to register tasks."""

    port: int  # where containers reach the endpoints on 169.254.170.2
    control_token: str = field(repr=False)  # whoever holds it can register tasks and read their credentials
    pid: int
    port_refused: str = ""  # why the port asked for could not be bound, when the server took another
    mode: str = "local"  # local: the server owns 169.254.170.2 here; relay: the engine's relay carries it
    # Where the run's own processes reach the server (to register tasks): 169.254.170.2 itself in local
    # mode, a loopback port in relay mode, where the address belongs to the engine's machine.
    control_host: str = ENDPOINT_IP
    control_port: int = 0  # 0: ``port``

    @property
    def control_address(self) -> tuple[str, int]:
        return self.control_host, self.control_port or self.port

    @property
    def base_url(self) -> str:
        return f"http://{ENDPOINT_IP}" if self.port == 80 else f"http://{ENDPOINT_IP}:{self.port}"

    @property
    def relative_credentials(self) -> bool:
        """The exact ECS form (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) needs the server on port 80."""
        return self.port == 80


@dataclass(frozen=True)
class EndpointRequest:
    """How a run's endpoints are asked for: the mode, the port, and the relay's image and pull policy."""

    mode: str = "auto"
    port: int = 0
    relay_image: str = ""
    pull: str = "missing"


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
