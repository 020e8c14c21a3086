"""Fixtures for the orders task's end-to-end tests: the images, and a client for the app's HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from orders_client import OrdersApi, app_ready

from pytest_ecstask import Task
from pytest_ecstask.testing import ImageBuildError, build_busybox_image

HERE = Path(__file__).parent

# The local tags that pytest.ini maps the task definition's ECR images to.
IMAGES = {
    "pytest-ecstask-example/orders-app:local": HERE / "images" / "orders-app",
    "pytest-ecstask-example/appconfig-agent:local": HERE / "images" / "appconfig-agent",
}


@pytest.fixture(scope="session", autouse=True)
def images() -> None:
    """Builds the images before the session task starts (layer caching makes later runs fast).

    A real project builds its images in its own build step; these stand-ins are built from a static
    busybox (Debian's busybox-static) because this example cannot pull a base image.
    """
    import docker

    api = docker.from_env().api
    for tag, context in IMAGES.items():
        try:
            build_busybox_image(api, tag, context)
        except ImageBuildError as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def ecs_session_wait_for() -> dict[str, Any]:
    """The session task is handed to the tests once the app answers its health URL."""
    return app_ready()


@pytest.fixture
def orders(ecs_task: Task) -> OrdersApi:
    """A client for the app of the test's task (the session task, or the test's own with a marker)."""
    return OrdersApi(ecs_task)
