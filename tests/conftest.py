"""Shared fixtures: a busybox image built locally (no registry is reachable) and task definition files."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

BUSYBOX = "/bin/busybox"
IMAGE = "pytest-ecstask-test/busybox:1"
DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin /tmp /www && /bin/busybox chmod 1777 /tmp && /bin/busybox --install -s /bin"]
ENV PATH=/bin:/usr/bin:/sbin:/usr/sbin
"""

# A long-running service that exits 0 on SIGTERM (busybox sh as PID 1 would otherwise ignore it).
SERVE = "trap 'exit 0' TERM; sleep 3600 & wait"


def service(script: str = "") -> list[str]:
    """A shell command that runs ``script`` then waits for SIGTERM, and exits 0 on it."""
    prefix = f"{script}; " if script else ""
    return ["sh", "-c", f"trap 'exit 0' TERM; {prefix}sleep 3600 & wait"]


@pytest.fixture(scope="session")
def docker_api() -> Any:
    import docker

    try:
        api = docker.from_env().api
        api.ping()
    except Exception as exc:
        pytest.fail(f"these tests need a Docker engine (see .ci/run): {exc}", pytrace=False)
    return api


@pytest.fixture(scope="session")
def image(docker_api: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A FROM-scratch image holding Debian's static busybox, built once per run."""
    from filelock import FileLock

    if not Path(BUSYBOX).exists():
        pytest.fail(f"{BUSYBOX} is missing: install Debian's busybox-static", pytrace=False)
    lock = tmp_path_factory.getbasetemp().parent / "busybox-image.lock"
    with FileLock(str(lock)):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(BUSYBOX, arcname="busybox")
            dockerfile = DOCKERFILE.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            tar.addfile(info, io.BytesIO(dockerfile))
        buf.seek(0)
        for chunk in docker_api.build(fileobj=buf, custom_context=True, tag=IMAGE, rm=True, decode=True):
            if "error" in chunk:
                pytest.fail(f"building {IMAGE} failed: {chunk['error']}", pytrace=False)
    return IMAGE


@pytest.fixture
def write_taskdef(tmp_path: Path) -> Callable[..., Path]:
    """Writes a task definition (dict or list) to a file and returns its path."""
    counter = iter(range(1000))

    def write(data: Any, name: str = "") -> Path:
        path = tmp_path / (name or f"taskdef{next(counter)}.json")
        path.write_text(json.dumps(data, indent=2))
        return path

    return write


@pytest.fixture
def run(image: str) -> Iterator[Callable[..., Any]]:
    """Starts a task from a dict through the public context-manager API; removes it at teardown."""
    from pytest_ecstask.lifecycle import process_owner
    from pytest_ecstask.task import TaskOptions, create_task

    tasks = []

    def start(taskdef: Any, **options: Any) -> Any:
        options.setdefault("pull", "never")
        options.setdefault("stop_timeout", 5)
        options.setdefault("start_timeout", 60)
        options.setdefault("check", False)
        task = create_task(taskdef, TaskOptions(**options), owner=process_owner())
        tasks.append(task)
        return task.start()

    yield start
    for task in reversed(tasks):
        task.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that reach the engine (through docker_api, which image and run use) are marked ``engine``.

    ``-m "not engine"`` is the pure tier: it runs without a Docker engine, in seconds.
    """
    for item in items:
        if "docker_api" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)
