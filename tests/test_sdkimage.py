"""The SDK test image runs the host's botocore on the relay image's python3."""

from __future__ import annotations

import contextlib
from typing import Any

import botocore
import docker.errors

SDK_PROBE = "import botocore.session, botocore.credentials; print(botocore.__version__)"


def test_sdk_image_imports_the_hosts_botocore(docker_api: Any, sdk_image: str) -> None:
    # Removed by hand, not with auto_remove: the engine could remove it before its output is read.
    container = docker_api.create_container(sdk_image, ["python3", "-c", SDK_PROBE])
    try:
        docker_api.start(container)
        status = docker_api.wait(container, timeout=60)["StatusCode"]
        stdout = docker_api.logs(container, stdout=True, stderr=False).decode().strip()
        stderr = docker_api.logs(container, stdout=False, stderr=True).decode().strip()
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.remove_container(container, force=True)
    assert (status, stdout) == (0, botocore.__version__), stderr
