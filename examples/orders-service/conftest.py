"""Fixtures for the orders task's end-to-end tests: the images, and a client for the app's HTTP API."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from orders_client import OrdersApi, app_ready

from pytest_ecstask import Task

HERE = Path(__file__).parent

# The local tags that pytest.ini maps the task definition's ECR images to.
IMAGES = {
    "pytest-ecstask-example/orders-app:local": HERE / "images" / "orders-app",
    "pytest-ecstask-example/appconfig-agent:local": HERE / "images" / "appconfig-agent",
}
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static


@pytest.fixture(scope="session", autouse=True)
def images(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Builds the images before the session task starts (layer caching makes later runs fast).

    A real project builds its images in its own build step; these stand-ins are built from a static
    busybox because this example cannot pull a base image.
    """
    import docker
    from docker.errors import BuildError

    if not BUSYBOX.exists():
        pytest.fail(f"{BUSYBOX} is missing: install busybox-static", pytrace=False)
    client = docker.from_env()
    for tag, source in IMAGES.items():
        context = tmp_path_factory.mktemp("build")
        shutil.copytree(source, context, dirs_exist_ok=True)
        shutil.copy(BUSYBOX, context / "busybox")
        try:
            client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False)
        except BuildError as exc:
            log = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)
            pytest.fail(f"building {tag} failed: {exc}\n{log}", pytrace=False)


@pytest.fixture(scope="session")
def ecs_session_wait_for() -> dict[str, Any]:
    """The session task is handed to the tests once the app answers its health URL."""
    return app_ready()


@pytest.fixture
def orders(ecs_task: Task) -> OrdersApi:
    """A client for the app of the test's task (the session task, or the test's own with a marker)."""
    return OrdersApi(ecs_task)
