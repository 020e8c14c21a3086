"""Every way another plugin or a ``conftest.py`` can steer pytest-ecstask: implement these hooks.

Each hook is documented by its docstring. Those marked ``firstresult`` stop at the first implementation
that returns something other than None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_ecstask.secretvalues import SecretReference


@pytest.hookspec(firstresult=True)
def pytest_ecstask_task_credentials(role_arn: str, family: str) -> Mapping[str, str] | None:
    """Credentials the credentials endpoint serves for a task whose definition has ``taskRoleArn``.

    Return a mapping with ``AccessKeyId`` and ``SecretAccessKey``, and optionally ``Token`` and
    ``Expiration`` (RFC 3339); the STS and boto3 key names are accepted too. Return None to let the next
    source decide: the ``ecs_task_credentials`` fixture, the ``ecs_task_credentials`` ini key, an STS
    AssumeRole when ``--ecs-assume-role`` is given, else made-up credentials.

    :param role_arn: the task definition's ``taskRoleArn``.
    :param family: the task definition's family.
    """


@pytest.hookspec
def pytest_ecstask_adjust_task_definition(definition: dict[str, Any], source: str) -> None:
    """Change a loaded task definition before it is planned: add a container, change an env value, ...

    ``definition`` is the RegisterTaskDefinition-shaped dict; change it in place. The result is validated
    like the file itself. Called for every task, after template variables are filled and before the
    ``overrides`` of a marker or factory call are merged.

    :param definition: the task definition, to change in place.
    :param source: the file it came from.
    """


@pytest.hookspec(firstresult=True)
def pytest_ecstask_resolve_image(image: str, container: str) -> str | None:
    """The image to run for ``container``, after the ``--ecs-image`` / ``ecs_images`` mapping.

    Return None to keep ``image`` (already mapped). Build an image here and return its tag, for example.
    Not asked with ``--ecs-backend=aws``: ECS cannot pull an image of this machine; the mappings choose.
    """


@pytest.hookspec(firstresult=True)
def pytest_ecstask_resolve_secret(reference: SecretReference, container: str) -> str | None:
    """The value of a secret (``secrets[].valueFrom`` or ``logConfiguration.secretOptions[].valueFrom``).

    Asked after the secrets file (``--ecs-secrets-file``) and before real AWS (``--ecs-aws``). The
    ``reference`` says which service, the secret id, and ECS's json-key / version-stage / version-id
    parts; return the final value (after json-key extraction) or None. Never log the value.
    """


@pytest.hookspec(firstresult=True)
def pytest_ecstask_resolve_environment_file(value: str, container: str) -> str | None:
    """The content of an ``environmentFiles`` entry (an S3 ARN or a path), or None to let others try.

    Asked after ``--ecs-env-file VALUE=PATH`` mappings, before a plain path and before S3 (``--ecs-aws``).
    """


@pytest.hookspec(firstresult=True)
def pytest_ecstask_registry_credentials(image: str, container: str) -> Mapping[str, str] | None:
    """Registry credentials to pull ``image`` with: ``{"username": ..., "password": ...}``.

    Return None to use what the Docker engine's client configuration has (``~/.docker/config.json``), or,
    when the container has ``repositoryCredentials`` and its secret can be resolved, that secret.
    """


@pytest.hookspec
def pytest_ecstask_task_event(
    task: Any, event: str, container: str | None, at: float, details: Mapping[str, Any]
) -> None:
    """A task lifecycle event, for custom reporting: ``planned``, ``container_started``,
    ``container_healthy``, ``container_exited`` (details: ``exit_code``), ``container_restarted`` (details:
    ``restart_count``, ``exit_code``; its restartPolicy restarts it in place), ``task_stopped`` (details:
    ``stop_code``, ``reason``). ``at`` is the wall-clock time (seconds since the epoch). Text in
    ``details`` is display text: resolved secret values in it are masked (unless ``--ecs-show-secrets``).

    Called from the plugin's worker threads as events happen: keep it quick and thread-safe.
    """
