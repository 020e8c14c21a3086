"""Resolve inputs: everything a task takes from outside its task definition, found before the engine is asked.

The stage between reading a task definition and planning it (source -> render -> parse and validate ->
resolve inputs -> plan). :func:`load_source` reads the file, renders its template variables, validates it,
then applies the hooks' adjustments and the per-container overrides and validates the result again.
:func:`resolve_inputs` finds the values the containers get from elsewhere: secrets, environment files, the
image each container runs and the pull credentials for it. :func:`resolve_credentials` gives the task
role's credentials, which the endpoints serve. Nothing here talks to Docker: a secret or an environment
file that cannot be found fails the task before anything exists on the engine.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Union

from pytest_ecstask.credentials import TaskCredentials, assume_role, from_mapping, local_credentials
from pytest_ecstask.errors import EcsTaskError, TaskDefinitionError
from pytest_ecstask.options import TaskOptions
from pytest_ecstask.secretvalues import (
    SecretResolver,
    aws_resolver,
    local_resolver,
    parse_environment_file,
    parse_value_from,
    resolve_secrets,
)
from pytest_ecstask.taskdef import (
    TaskDefinition,
    image_problems,
    load_task_definition,
    parse_task_definition,
    parse_task_definition_text,
    read_task_definition_text,
)

__all__ = [
    "OVERRIDABLE",
    "TaskInputs",
    "TaskSource",
    "load_source",
    "resolve_credentials",
    "resolve_inputs",
]

TaskSource = Union[str, "os.PathLike[str]", TaskDefinition, Mapping[str, Any], list[Any]]


# -- the task definition: read, rendered, validated, adjusted, overridden --------------------------------------


def load_source(
    source: TaskSource, *, base_dir: Path | None = None, options: TaskOptions | None = None
) -> TaskDefinition:
    """The task definition to run: rendered (template variables), adjusted (hooks), overridden, validated."""
    options = options or TaskOptions()
    taskdef = _read(source, base_dir, options)
    if options.adjust is None and not options.overrides:
        return taskdef
    raw = copy.deepcopy(dict(taskdef.raw))
    if options.adjust is not None:
        options.adjust(raw, taskdef.source)
    _apply_overrides(raw, options.overrides, taskdef.source)
    raw.setdefault("family", taskdef.family)
    # Validated like the file itself: a hook or override cannot smuggle in what ECS would refuse.
    adjusted = parse_task_definition(raw, taskdef.source, default_family=taskdef.family)
    return replace(adjusted, revision=taskdef.revision)


def _read(source: TaskSource, base_dir: Path | None, options: TaskOptions) -> TaskDefinition:
    if isinstance(source, TaskDefinition):
        return source
    if isinstance(source, (Mapping, list)):
        return parse_task_definition(source, "<task definition given as data>", default_family="task")
    path = Path(os.fspath(source))
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    return _render(path, options) if options.variables or options.template else load_task_definition(path)


def _render(path: Path, options: TaskOptions) -> TaskDefinition:
    from pytest_ecstask.variables import placeholder_names, substitute, template_values

    text = read_task_definition_text(path).lstrip("\ufeff")
    values = template_values(options.variables, {}, os.environ, placeholder_names(text))
    rendered = substitute(text, values, str(path))
    family = "".join(ch if ch.isalnum() or ch in "_-" else "-" for ch in path.stem)
    return parse_task_definition_text(rendered, str(path), default_family=family)


def _merge_environment(target: dict[str, Any], value: Any) -> None:
    """Merged by name: the override's value wins, other variables stay."""
    env = {e.get("name"): e for e in target.get("environment") or [] if isinstance(e, dict)}
    for name, text in dict(value).items():
        env[name] = {"name": name, "value": str(text)}
    target["environment"] = list(env.values())


def _merge_labels(target: dict[str, Any], value: Any) -> None:
    target["dockerLabels"] = {**(target.get("dockerLabels") or {}), **dict(value)}


def _replacing(key: str) -> Callable[[dict[str, Any], Any], None]:
    def apply(target: dict[str, Any], value: Any) -> None:
        target[key] = value

    return apply


# What an override may change in a container definition, and how it lands there.
_OVERRIDES: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "environment": _merge_environment,
    "command": _replacing("command"),
    "entryPoint": _replacing("entryPoint"),
    "image": _replacing("image"),
    "dockerLabels": _merge_labels,
}
OVERRIDABLE = tuple(_OVERRIDES)


def _apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Mapping[str, Any]], source: str) -> None:
    containers = {c.get("name"): c for c in raw.get("containerDefinitions") or [] if isinstance(c, dict)}
    problems = []
    for name, changes in overrides.items():
        if name not in containers:
            problems.append(f"overrides[{name!r}]: no container {name!r} in this task definition")
            continue
        for key, value in changes.items():
            if key in _OVERRIDES:
                _OVERRIDES[key](containers[name], value)
            else:
                problems.append(f"overrides[{name!r}]: {key!r} cannot be overridden; one of {', '.join(OVERRIDABLE)}")
    if problems:
        raise TaskDefinitionError(source, problems)


# -- what the containers get from elsewhere --------------------------------------------------------------------


@dataclass(frozen=True)
class TaskInputs:
    """The values a task definition refers to, resolved: what the plan and the runner are given."""

    secret_values: Mapping[str, str] = field(repr=False)  # valueFrom -> value
    environment_files: Mapping[str, Sequence[tuple[str, str]]] = field(repr=False)  # value -> its variables
    container_images: Mapping[str, str]  # container name -> the image it runs (mappings, then the hook)
    registry_auth: Mapping[str, Mapping[str, str]] = field(repr=False)  # image -> pull credentials


def resolve_inputs(taskdef: TaskDefinition, options: TaskOptions, base_dir: Path | None = None) -> TaskInputs:
    """Everything the task takes from outside its definition; what is missing is said here, all at once per kind."""
    _check_wait_for(taskdef, options)
    resolvers = _secret_resolvers(options)
    secret_values = resolve_secrets(taskdef, resolvers)
    environment_files = _read_environment_files(taskdef, options, base_dir)
    images = _container_images(taskdef, options)
    return TaskInputs(secret_values, environment_files, images, _registry_auth(taskdef, images, options, resolvers))


def _check_wait_for(taskdef: TaskDefinition, options: TaskOptions) -> None:
    """A misspelled name is said before anything is created, not after the whole task started."""
    names = [c.name for c in taskdef.containers]
    for name in options.wait_for:
        if name not in names:
            known = ", ".join(repr(n) for n in names)
            raise EcsTaskError(
                f"wait_for names {name!r}, which is not a container of {taskdef.family} (containers: {known})"
            )


def _secret_resolvers(options: TaskOptions) -> list[SecretResolver]:
    """Given values first, then the hooks' resolvers in order, then real AWS when asked."""
    resolvers: list[SecretResolver] = []
    if options.secrets:
        # A Secrets Manager JSON secret may be given as a dict: it is the secret's JSON string.
        given = {k: v if isinstance(v, str) else json.dumps(v) for k, v in options.secrets.items()}
        resolvers.append(local_resolver(given))
    resolvers.extend(options.secret_resolvers)
    if options.aws:
        resolvers.append(aws_resolver(options.region))
    return resolvers


def _container_images(taskdef: TaskDefinition, options: TaskOptions) -> dict[str, str]:
    """The image each container runs: the image mappings, then the image hook when it answers."""
    from pytest_ecstask.plan import resolve_image

    images: dict[str, str] = {}
    for c in taskdef.containers:
        mapped = resolve_image(c.image, options.images)
        chosen = options.image_resolver(mapped, c.name) if options.image_resolver is not None else None
        images[c.name] = chosen or mapped
    # Checked here, not when the file is read: a mapping may stand in for what a deploy pipeline writes there.
    problems = image_problems(taskdef, images)
    if problems:
        raise TaskDefinitionError(taskdef.source, problems)
    return images


def _registry_auth(
    taskdef: TaskDefinition, images: Mapping[str, str], options: TaskOptions, resolvers: Sequence[SecretResolver]
) -> dict[str, Mapping[str, str]]:
    """Pull credentials per image: the hook, else a resolvable repositoryCredentials secret, else the engine's."""
    auth: dict[str, Mapping[str, str]] = {}
    for c in taskdef.containers:
        image = images[c.name]
        given = options.registry_auth(image, c.name) if options.registry_auth is not None else None
        parameter = (c.raw.get("repositoryCredentials") or {}).get("credentialsParameter")
        if given is None and parameter:
            given = _repository_credentials(c.name, str(parameter), resolvers)
        if given is not None:
            auth[image] = dict(given)
    return auth


def _repository_credentials(
    container: str, parameter: str, resolvers: Sequence[SecretResolver]
) -> dict[str, str] | None:
    """A repositoryCredentials secret: JSON with username and password, from the first resolver that answers."""
    reference = parse_value_from(parameter)
    value = next((v for v in (resolve(reference) for resolve in resolvers) if v is not None), None)
    if value is None:
        return None
    try:
        data = json.loads(value)
        return {"username": str(data["username"]), "password": str(data["password"])}
    except (ValueError, KeyError, TypeError):
        raise EcsTaskError(
            f"container {container!r}: repositoryCredentials {parameter!r} must hold JSON with username and password"
        ) from None


def _read_environment_files(
    taskdef: TaskDefinition, options: TaskOptions, base_dir: Path | None
) -> dict[str, list[tuple[str, str]]]:
    """Each environmentFiles value's parsed content: a given local path, the hook, a path, or S3 (with aws)."""
    out: dict[str, list[tuple[str, str]]] = {}
    problems = []
    for c in taskdef.containers:
        for entry in c.raw.get("environmentFiles") or []:
            value = str(entry.get("value", ""))
            if value in out:
                continue
            try:
                text = _environment_file_text(value, c.name, options, base_dir, taskdef.source)
            except EcsTaskError as exc:
                problems.append(f"container {c.name!r}: {exc}")
                continue
            if text is None:
                problems.append(
                    f"container {c.name!r}: environment file {value!r} could not be found: map it to a local file "
                    "(--ecs-env-file VALUE=PATH, ini ecs_env_files), answer the "
                    "pytest_ecstask_resolve_environment_file hook, or read S3 with --ecs-aws"
                )
                continue
            out[value] = parse_environment_file(text, value)
    if problems:
        raise TaskDefinitionError(taskdef.source, problems)
    return out


def _environment_file_text(
    value: str, container: str, options: TaskOptions, base_dir: Path | None, source: str
) -> str | None:
    local = options.environment_files.get(value)
    if local is not None:
        try:
            return Path(local).read_text(encoding="utf-8")
        except OSError as exc:
            raise EcsTaskError(f"environment file {value!r} mapped to {local}: {exc.strerror or exc}") from None
    if options.environment_file_resolver is not None:
        text = options.environment_file_resolver(value, container)
        if text is not None:
            return text
    if not value.startswith("arn:"):
        # A plain path: relative to the task definition's folder.
        folder = Path(source).parent if Path(source).exists() else (base_dir or Path.cwd())
        path = Path(value) if Path(value).is_absolute() else folder / value
        return path.read_text(encoding="utf-8") if path.is_file() else None
    if options.aws and value.startswith("arn:aws:s3:::"):
        return _read_s3(value, options.region)
    return None


def _read_s3(arn: str, region: str) -> str:
    try:
        import boto3
        import botocore.exceptions
    except ImportError:
        raise EcsTaskError("reading environment files from S3 needs boto3: pip install boto3") from None
    bucket, _, key = arn[len("arn:aws:s3:::") :].partition("/")
    try:
        body = boto3.client("s3", region_name=region).get_object(Bucket=bucket, Key=key)["Body"].read()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise EcsTaskError(f"environment file {arn!r} could not be read from S3: {exc}") from None
    return str(body.decode("utf-8"))


# -- what the credentials endpoint serves -----------------------------------------------------------------------


def resolve_credentials(role_arn: str, options: TaskOptions, task_id: str, family: str) -> TaskCredentials:
    """Given values win; then STS when asked; else well-formed made-up credentials."""
    if options.credentials is not None:
        return from_mapping(role_arn, options.credentials, "credentials")
    if options.credentials_provider is not None:
        given = options.credentials_provider(role_arn, family)
        if given is not None:
            return from_mapping(role_arn, given, "task-role credentials from the hook, fixture or ini")
    if options.assume_role:
        return assume_role(role_arn, options.region, f"pytest-ecstask-{task_id}")
    return local_credentials(role_arn)
