"""Secrets and environment files, resolved the way the ECS agent resolves them.

``valueFrom`` is parsed as the agent parses it: an SSM parameter name or ARN, or a Secrets Manager ARN,
optionally followed by ``:json-key:version-stage:version-id`` with every colon present. Where values come
from is pluggable (a local file, a hook, real AWS); every value stays out of error messages and reprs.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import EcsTaskError, problem_list
from .options import MASK
from .taskdef import TaskDefinition
from .variables import read_mapping_file, scalar_text

__all__ = [
    "MIN_MASKED_LENGTH",
    "SecretMask",
    "SecretReference",
    "SecretResolver",
    "UnresolvedSecretsError",
    "aws_resolver",
    "load_secrets_file",
    "local_resolver",
    "merge_environment",
    "parse_environment_file",
    "parse_value_from",
    "resolve_secrets",
    "secret_uses",
]

SSM = "ssm"
SECRETS_MANAGER = "secretsmanager"

# The agent reads environment files with Go's bufio.Scanner, which fails on a line of 64 KiB or more.
_MAX_ENV_LINE_BYTES = 64 * 1024
_CLIENTS_LOCK = threading.Lock()  # boto3 clients for the AWS secret resolver are made one at a time

HOW_TO_GIVE_SECRETS = (
    "give values with a secrets file (--ecs-secrets-file or ini ecs_secrets_file), a "
    "pytest_ecstask_resolve_secret hook, or --ecs-aws to read them from AWS"
)


@dataclass(frozen=True)
class SecretReference:
    """A parsed ``valueFrom``: which service holds the secret, under which id, and which part of it."""

    value_from: str
    service: str  # "ssm" | "secretsmanager"
    secret_id: str  # SSM: the name or ARN as given; Secrets Manager: the ARN without the json-key suffix
    json_key: str | None = None
    version_stage: str | None = None
    version_id: str | None = None

    @property
    def region(self) -> str | None:
        """The region named in an ARN; None for an SSM parameter given by name (the task's region)."""
        if not self.value_from.startswith("arn:"):
            return None
        parts = self.value_from.split(":", 5)
        return (parts[3] or None) if len(parts) == 6 else None


SecretResolver = Callable[[SecretReference], str | None]  # None means "not mine, ask the next one"


def parse_value_from(value_from: str) -> SecretReference:
    """Parse ``valueFrom`` exactly as ECS does; anything it would refuse raises ``EcsTaskError``."""
    if not value_from:
        raise EcsTaskError(
            "a secret's valueFrom is empty: give an SSM parameter name or ARN, or a Secrets Manager secret ARN"
        )
    if not value_from.startswith("arn:"):
        # ECS treats anything that is not an ARN as an SSM parameter name in the task's region.
        return SecretReference(value_from=value_from, service=SSM, secret_id=value_from)
    parts = value_from.split(":", 5)
    if len(parts) != 6 or not parts[2] or not parts[5]:
        raise EcsTaskError(
            f"valueFrom {value_from!r} is not a valid ARN (arn:partition:service:region:account:resource)"
        )
    service = parts[2]
    if service == SSM:
        return _ssm_parameter_arn(value_from, parts[5])
    if service == SECRETS_MANAGER:
        return _secrets_manager_arn(value_from, parts)
    raise EcsTaskError(
        f"valueFrom {value_from!r} is an ARN of {service!r}; ECS reads secrets only from SSM Parameter "
        "Store (ssm) and Secrets Manager (secretsmanager)"
    )


def _ssm_parameter_arn(value_from: str, resource: str) -> SecretReference:
    if not resource.startswith("parameter/") or resource == "parameter/":
        raise EcsTaskError(
            f"valueFrom {value_from!r} is an SSM ARN but not of a parameter (expected "
            "arn:aws:ssm:region:account:parameter/name)"
        )
    return SecretReference(value_from=value_from, service=SSM, secret_id=value_from)


def _secrets_manager_arn(value_from: str, parts: list[str]) -> SecretReference:
    # The agent accepts exactly secret:id, or secret:id:json-key:version-stage:version-id with every colon.
    fields = parts[5].split(":")
    if fields[0] != "secret" or not fields[1:] or not fields[1]:
        raise EcsTaskError(
            f"valueFrom {value_from!r} is a Secrets Manager ARN but not of a secret (expected "
            "arn:aws:secretsmanager:region:account:secret:name-AbCdEf)"
        )
    if len(fields) == 2:
        return SecretReference(value_from=value_from, service=SECRETS_MANAGER, secret_id=value_from)
    if len(fields) != 5:
        raise EcsTaskError(
            f"valueFrom {value_from!r} is not a valid Secrets Manager reference: after the secret ARN ECS "
            "expects ':json-key:version-stage:version-id' with all three colons, parts left empty when "
            "unused (e.g. '...:secret:name-AbCdEf:password::')"
        )
    return SecretReference(
        value_from=value_from,
        service=SECRETS_MANAGER,
        secret_id=":".join(parts[:5] + fields[:2]),
        json_key=fields[2] or None,
        version_stage=fields[3] or None,
        version_id=fields[4] or None,
    )


def _json_key_value(secret_string: str, ref: SecretReference) -> str:
    """The ``json_key`` field of a secret holding a JSON object. Never echoes the secret."""
    if ref.json_key is None:
        return secret_string
    try:
        # Numbers keep their text as written (the agent would print them through a float64).
        data = json.loads(secret_string, parse_int=str, parse_float=str)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise EcsTaskError(
            f"secret {ref.secret_id!r} is not a JSON object, so json key {ref.json_key!r} of valueFrom "
            f"{ref.value_from!r} cannot be read from it"
        )
    if ref.json_key not in data:
        raise EcsTaskError(
            f"secret {ref.secret_id!r} has no json key {ref.json_key!r} (asked for by valueFrom {ref.value_from!r})"
        )
    value = data[ref.json_key]
    if isinstance(value, str):
        return value  # a string, or a number's text as written
    if isinstance(value, (dict, list)):
        return json.dumps(json.loads(secret_string)[ref.json_key])  # nested numbers as numbers
    return json.dumps(value)  # true, false, null


# --- local values -------------------------------------------------------------------------------------------


def load_secrets_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """A JSON or YAML mapping of SSM parameter names / ARNs and Secrets Manager ARNs to values.

    A Secrets Manager value may be given as an object: it stands for the secret's JSON string.
    """
    source = os.fspath(path)
    data = read_mapping_file(path, "secrets file")
    values: dict[str, str] = {}
    for key, value in data.items():
        try:
            parse_value_from(key)
        except EcsTaskError as exc:
            raise EcsTaskError(f"{source}: {exc}") from None
        if isinstance(value, (dict, list)):
            values[key] = json.dumps(value)
            continue
        text = scalar_text(value)
        if text is None:
            raise EcsTaskError(
                f"{source}: secret {key!r} has no usable value (null, or an unquoted date?); give a string, "
                "or an object for a Secrets Manager JSON secret"
            )
        values[key] = text
    return values


def _ssm_name(key: str) -> str | None:
    """The parameter name a key or reference stands for, without its leading '/', or None if not SSM."""
    if key.startswith("arn:"):
        parts = key.split(":", 5)
        if len(parts) == 6 and parts[2] == SSM and parts[5].startswith("parameter/"):
            return parts[5][len("parameter/") :].lstrip("/")
        return None
    return key.lstrip("/")


def local_resolver(mapping: Mapping[str, str]) -> SecretResolver:
    """Resolve from given values: by the full valueFrom, then by secret id, then SSM name <-> ARN."""
    values = dict(mapping)
    # SSM keys by bare name; an ARN key and a name key can both stand for the same parameter.
    by_name: dict[str, list[str]] = {}
    for key in values:
        name = _ssm_name(key)
        if name is not None:
            by_name.setdefault(name, []).append(key)

    def resolve(ref: SecretReference) -> str | None:
        if ref.value_from in values:
            return values[ref.value_from]  # a key with the json-key suffix holds the final value
        if ref.service == SECRETS_MANAGER:
            if ref.json_key is not None and (ref.version_stage or ref.version_id):
                # The same field of the current version: versions are not kept in a local file.
                unversioned = f"{ref.secret_id}:{ref.json_key}::"
                if unversioned in values:
                    return values[unversioned]
            if ref.secret_id in values:
                return _json_key_value(values[ref.secret_id], ref)
            return None
        name = _ssm_name(ref.value_from)
        reference_is_arn = ref.value_from.startswith("arn:")
        for key in by_name.get(name or "", []):
            # Two ARNs only match exactly (above): they may name different accounts or regions.
            if not (reference_is_arn and key.startswith("arn:")):
                return values[key]
        return None

    return resolve


# --- real AWS -----------------------------------------------------------------------------------------------


def aws_resolver(region: str, session: Any = None) -> SecretResolver:
    """Read secrets from AWS with the runner's own credentials (opt-in).

    ``session`` may be a boto3 ``Session`` (or anything with its ``client(service, region_name=...)``), or a
    mapping of service name ("ssm", "secretsmanager") to ready-made clients, which tests use with Stubber.
    The region in an ARN wins over ``region``, as ECS reads a secret from the region its ARN names.
    """
    try:
        import boto3
        import botocore.exceptions
    except ImportError:
        raise EcsTaskError("reading secrets from AWS needs boto3: pip install boto3") from None
    clients: dict[tuple[str, str], Any] = {}

    def client(service: str, where: str) -> Any:
        if isinstance(session, Mapping):
            if service not in session:
                raise EcsTaskError(f"no {service} client was given to the AWS secret resolver")
            return session[service]
        if (service, where) not in clients:
            # boto3's default session, as for the task role and S3 files: credentials fetched once.
            maker: Any = session if session is not None else boto3._get_default_session()
            with _CLIENTS_LOCK:  # a boto3 session is not safe to make clients from in two threads at once
                clients[(service, where)] = maker.client(service, region_name=where)
        return clients[(service, where)]

    def resolve(ref: SecretReference) -> str | None:
        where = ref.region or region
        label = "SSM Parameter Store" if ref.service == SSM else "Secrets Manager"
        try:
            if ref.service == SSM:
                response = client(SSM, where).get_parameter(Name=ref.secret_id, WithDecryption=True)
                return str(response["Parameter"]["Value"])
            request = {"SecretId": ref.secret_id}
            if ref.version_stage is not None:
                request["VersionStage"] = ref.version_stage
            if ref.version_id is not None:
                request["VersionId"] = ref.version_id
            response = client(SECRETS_MANAGER, where).get_secret_value(**request)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "error")
            message = error.get("Message", "")
            raise EcsTaskError(
                f"{label} ({where}) could not give valueFrom {ref.value_from!r}: {code}"
                + (f" ({message})" if message else "")
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise EcsTaskError(f"could not read valueFrom {ref.value_from!r} from {label} in {where}: {exc}") from None
        if "SecretString" not in response:
            raise EcsTaskError(
                f"secret {ref.secret_id!r} holds binary data (SecretBinary); ECS injects only SecretString"
            )
        return _json_key_value(str(response["SecretString"]), ref)

    return resolve


# --- a task definition's secrets ----------------------------------------------------------------------------


class UnresolvedSecretsError(EcsTaskError):
    """Secrets of a task definition that no resolver could give; lists every one, never a value."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        # Every secret is listed (no limit): each one is a value the user has to supply.
        listing = problem_list(
            source,
            self.problems,
            "secrets could not be resolved",
            singular="secret could not be resolved",
            limit=None,
        )
        super().__init__(f"{listing}\n{HOW_TO_GIVE_SECRETS}")


def secret_uses(taskdef: TaskDefinition) -> list[tuple[str, str, str]]:
    """(what, container, valueFrom) for every secret of every container and every log secret option."""
    uses: list[tuple[str, str, str]] = []
    for container in taskdef.containers:
        entries = [("secret", s) for s in container.raw.get("secrets") or []]
        log = container.raw.get("logConfiguration") or {}
        if isinstance(log, Mapping):
            entries += [("logConfiguration secret option", s) for s in log.get("secretOptions") or []]
        for kind, entry in entries:
            if isinstance(entry, Mapping) and isinstance(entry.get("valueFrom"), str):
                uses.append((f"{kind} {entry.get('name')!r}", container.name, entry["valueFrom"]))
    return uses


def resolve_secrets(taskdef: TaskDefinition, resolvers: Sequence[SecretResolver]) -> dict[str, str]:
    """valueFrom -> value for every secret the task definition uses, from the first resolver that answers.

    Every failure is collected and raised as one ``UnresolvedSecretsError`` naming container, secret and
    valueFrom: like ECS, a task whose secrets cannot all be read does not start.
    """
    resolved: dict[str, str] = {}
    failures: dict[str, str | None] = {}  # valueFrom -> error text, None when no resolver answered
    problems: list[str] = []
    for what, container, value_from in secret_uses(taskdef):
        if value_from not in resolved and value_from not in failures:
            try:
                ref = parse_value_from(value_from)
                value = next((v for v in (r(ref) for r in resolvers) if v is not None), None)
            except EcsTaskError as exc:
                failures[value_from] = str(exc)
            else:
                if value is None:
                    failures[value_from] = None
                else:
                    resolved[value_from] = value
        if value_from in failures:
            error = failures[value_from]
            if error is None:
                problems.append(f"container {container!r}: {what} (valueFrom {value_from!r}) could not be resolved")
            else:
                problems.append(f"container {container!r}: {what} (valueFrom {value_from!r}): {error}")
    if problems:
        raise UnresolvedSecretsError(taskdef.source, problems)
    return resolved


# --- keeping resolved values out of what is shown --------------------------------------------------------

# Shorter values are left alone: masking a secret "1" or "on" would hide every such character in the output.
MIN_MASKED_LENGTH = 4


class SecretMask:
    """Replaces each resolved secret value in a text with ``MASK``, as CI systems mask the secrets they know.

    Longest values first, so a value that holds another is masked whole. Each line of a multi-line value
    is masked on its own too: reports and log files show container output line by line.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        pieces = {piece for value in values for piece in [value, *value.splitlines()]}
        kept = sorted((p for p in pieces if len(p.strip()) >= MIN_MASKED_LENGTH), key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(p) for p in kept)) if kept else None

    def __call__(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(MASK, text)

    def __bool__(self) -> bool:
        """False when there is nothing to mask (no secrets, or ``--ecs-show-secrets``)."""
        return self._pattern is not None

    def __repr__(self) -> str:
        return "SecretMask(******)" if self else "SecretMask()"


# --- environment files --------------------------------------------------------------------------------------


def parse_environment_file(text: str, source: str) -> list[tuple[str, str]]:
    """(name, value) pairs of an environment file, read as the ECS agent reads it.

    Lines starting with '#' are comments; lines without '=' or with an empty name or value are skipped;
    the rest is split on the first '='. Nothing else is interpreted: no trimming, quotes are kept, no
    ``export``. Order is kept, duplicates included (the last in a file wins; see ``merge_environment``).
    """
    pairs: list[tuple[str, str]] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start another
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")  # the agent's line reader drops a CR before LF
        if len(line.encode("utf-8")) >= _MAX_ENV_LINE_BYTES:
            raise EcsTaskError(
                f"{source}: line {number} is 64 KiB or longer; the ECS agent cannot read such a line and fails the task"
            )
        if line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        if name and value:
            pairs.append((name, value))
    return pairs


def merge_environment(
    environment: Sequence[Mapping[str, Any]], files: Sequence[Sequence[tuple[str, str]]]
) -> dict[str, str]:
    """A container's environment as ECS builds it: ``environment`` beats files; the first file to set a name
    wins over later files; within one file the last line for a name wins."""
    merged: dict[str, str] = {}
    for entry in environment:
        name = entry.get("name")
        if isinstance(name, str):
            value = entry.get("value")
            merged[name] = "" if value is None else str(value)
    for pairs in files:
        for name, value in dict(pairs).items():
            merged.setdefault(name, value)
    return merged
