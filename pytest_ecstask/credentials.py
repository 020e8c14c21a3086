"""Task-role credentials: where they come from, and a value that never shows its secrets when printed."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pytest_ecstask.errors import EcsTaskError

LOCAL_LIFETIME = timedelta(hours=6)


@dataclass(frozen=True)
class TaskCredentials:
    """What the credentials endpoint serves for a task role. Printing it never shows the secret parts."""

    role_arn: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    token: str = field(repr=False)
    expiration: str  # RFC 3339

    def __repr__(self) -> str:
        return (
            f"TaskCredentials(role_arn={self.role_arn!r}, access_key_id={self.access_key_id[:4]}..., "
            f"expiration={self.expiration!r})"
        )

    __str__ = __repr__

    def as_response(self) -> dict[str, str]:
        """The fields of the ECS credentials response (RoleArn is added by the server)."""
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.token,
            "Expiration": self.expiration,
        }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_credentials(role_arn: str) -> TaskCredentials:
    """Made-up credentials, well formed: enough for moto, LocalStack or code that only reads them."""
    upper = string.ascii_uppercase + string.digits
    return TaskCredentials(
        role_arn=role_arn,
        access_key_id="ASIA" + "".join(secrets.choice(upper) for _ in range(16)),
        secret_access_key=secrets.token_urlsafe(30)[:40],
        token=secrets.token_urlsafe(96),
        expiration=_rfc3339(datetime.now(timezone.utc) + LOCAL_LIFETIME),
    )


_KEYS = {
    "AccessKeyId": ("AccessKeyId", "access_key_id", "aws_access_key_id"),
    "SecretAccessKey": ("SecretAccessKey", "secret_access_key", "aws_secret_access_key"),
    "Token": ("Token", "SessionToken", "token", "session_token", "aws_session_token"),
    "Expiration": ("Expiration", "expiration"),
}


def from_mapping(role_arn: str, values: Mapping[str, Any], where: str) -> TaskCredentials:
    """Credentials given as a mapping (ECS, STS or boto3 key names all work)."""
    found: dict[str, str | None] = {}
    for canonical, names in _KEYS.items():
        value = next((values[n] for n in names if values.get(n) is not None), None)
        # boto3 gives Expiration as a datetime: RFC 3339 it is, as the endpoint must serve it.
        found[canonical] = _rfc3339(value) if isinstance(value, datetime) else (None if value is None else str(value))
    missing = [k for k in ("AccessKeyId", "SecretAccessKey") if not found[k]]
    if missing:
        raise EcsTaskError(f"{where}: task-role credentials need {' and '.join(missing)}")
    expiration = found["Expiration"]
    if expiration and not re.search(r"(Z|[+-]\d\d:?\d\d)$", expiration):
        expiration += "Z"  # no zone given: UTC, as STS means it
    return TaskCredentials(
        role_arn=role_arn,
        access_key_id=str(found["AccessKeyId"]),
        secret_access_key=str(found["SecretAccessKey"]),
        token=found["Token"] or "",
        expiration=expiration or _rfc3339(datetime.now(timezone.utc) + LOCAL_LIFETIME),
    )


def parse_static(text: str, where: str) -> dict[str, str]:
    """``ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`` from an ini key or the command line."""
    parts = text.strip().split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise EcsTaskError(f"{where}: expected ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]")
    return {"AccessKeyId": parts[0], "SecretAccessKey": parts[1], "Token": parts[2] if len(parts) > 2 else ""}


def assume_role(role_arn: str, region: str, session_name: str) -> TaskCredentials:
    """The real thing: STS AssumeRole of the task role with the runner's own AWS credentials (opt-in)."""
    try:
        import boto3
        import botocore.exceptions
    except ImportError:
        raise EcsTaskError("assuming the task role needs boto3: pip install boto3") from None
    try:
        response = boto3.client("sts", region_name=region).assume_role(
            RoleArn=role_arn, RoleSessionName=session_name[:64]
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise EcsTaskError(f"could not assume the task role {role_arn}: {exc}") from None
    creds = response["Credentials"]
    expiration = creds["Expiration"]
    return TaskCredentials(
        role_arn=role_arn,
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        token=creds["SessionToken"],
        expiration=_rfc3339(expiration) if isinstance(expiration, datetime) else str(expiration),
    )
