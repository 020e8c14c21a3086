"""A test image with botocore in it, built on the relay image without a registry or a package index.

The pure-Python packages botocore imports are copied from this interpreter's site-packages into /opt/sdk,
so the image runs the very botocore the tests run. Its tag carries a hash of their versions and of the
base image, so a new botocore (or a rebuilt relay image) gets a new image and an old one is never reused.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_ecstask.testing import ImageBuildError, build_image

if TYPE_CHECKING:
    import docker

# botocore and what it imports (python-dateutil needs six); none has compiled code.
SDK_MODULES = ("botocore", "jmespath", "dateutil", "six", "urllib3")

# Compiled once at build time: the host's __pycache__ is left out, as it may be for another Python.
SDK_DOCKERFILE = """\
FROM {base}
COPY sdk /opt/sdk
RUN python3 -m compileall -q /opt/sdk
ENV PYTHONPATH=/opt/sdk
"""


def sdk_sources() -> list[Path]:
    """Each module's file or package folder, found through its ``__file__``."""
    sources = []
    for name in SDK_MODULES:
        file = importlib.import_module(name).__file__
        if file is None:
            raise ImageBuildError(f"{name} has no __file__: it cannot be copied into a test image")
        path = Path(file)
        sources.append(path.parent if path.name == "__init__.py" else path)
    return sources


def sdk_key(base_id: str) -> str:
    """What the image is made of: botocore's version, its dependencies' versions and the base image."""
    versions = " ".join(f"{name}={getattr(importlib.import_module(name), '__version__', '?')}" for name in SDK_MODULES)
    digest = hashlib.sha256(f"{versions} base={base_id}".encode()).hexdigest()[:12]
    return f"botocore-{importlib.import_module('botocore').__version__}-{digest}"


def skip_bytecode(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    name = Path(info.name).name
    return None if name == "__pycache__" or name.endswith(".pyc") else info


def sdk_context(base: str) -> bytes:
    """The build context as a tar stream: the Dockerfile and the packages under ``sdk/``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dockerfile = SDK_DOCKERFILE.format(base=base).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for path in sdk_sources():
            tar.add(path, arcname=f"sdk/{path.name}", filter=skip_bytecode)
    return buf.getvalue()


def build_sdk_image(api: docker.APIClient, base: str, tag: str) -> str:
    """Build (or find, when built already) the SDK image on ``base`` and return its reference.

    ``tag`` names the image without a tag part (``pytest-ecstask-test/sdk``); the reference returned adds
    one made of botocore's version and a hash (:func:`sdk_key`). Raises :class:`ImageBuildError` when
    ``base`` is missing or Docker refuses the build.
    """
    import docker.errors

    try:
        base_id = str(api.inspect_image(base)["Id"])
    except docker.errors.ImageNotFound:
        raise ImageBuildError(
            f"the base image {base} is missing: run `bash tools/relay-image.sh` to build it (no registry needed)"
        ) from None
    reference = f"{tag}:{sdk_key(base_id)}"
    try:
        api.inspect_image(reference)
        return reference
    except docker.errors.ImageNotFound:
        pass
    return build_image(api, sdk_context(base), reference)
