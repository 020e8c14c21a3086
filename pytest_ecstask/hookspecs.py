"""Every way another plugin or a ``conftest.py`` can steer pytest-ecstask: implement these hooks.

Each hook is documented by its docstring. Those marked ``firstresult`` stop at the first implementation
that returns something other than None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import pytest


@pytest.hookspec(firstresult=True)
def pytest_ecstask_task_credentials(role_arn: str, family: str) -> Optional[Mapping[str, str]]:
    """Credentials the credentials endpoint serves for a task whose definition has ``taskRoleArn``.

    Return a mapping with ``AccessKeyId`` and ``SecretAccessKey``, and optionally ``Token`` and
    ``Expiration`` (RFC 3339); the STS and boto3 key names are accepted too. Return None to let the next
    source decide: the ``ecs_task_credentials`` fixture, the ``ecs_task_credentials`` ini key, an STS
    AssumeRole when ``--ecs-assume-role`` is given, else made-up credentials.

    :param role_arn: the task definition's ``taskRoleArn``.
    :param family: the task definition's family.
    """
