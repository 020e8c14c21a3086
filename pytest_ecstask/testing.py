"""Images for test suites on machines that reach no registry: built FROM scratch around a static busybox.

What this project's own tests, benchmarks, CI and example build their images with, and what a team whose
CI pulls nothing can use too. Debian's ``busybox-static`` package puts the binary at ``/bin/busybox``. The
plugin never imports this module: it is a helper for test suites, not a part of a run.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_ecstask.errors import EcsTaskError

if TYPE_CHECKING:
    import docker

__all__ = [
    "BUSYBOX",
    "BUSYBOX_DOCKERFILE",
    "ImageBuildError",
    "build_busybox_image",
    "build_context",
    "build_image",
    "service",
]

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static

# Every applet linked into /bin (sh, wget, httpd, nc...), the usual directories, a world-writable /tmp.
BUSYBOX_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin /tmp /www && \
/bin/busybox chmod 1777 /tmp && /bin/busybox --install -s /bin"]
ENV PATH=/bin:/usr/bin:/sbin:/usr/sbin
"""


class ImageBuildError(EcsTaskError):
    """A test image could not be built: the static busybox is missing, or Docker refused the build."""


def service(script: str = "") -> list[str]:
    """A busybox shell command that runs ``script``, then waits for SIGTERM and exits 0 on it.

    busybox ``sh`` as PID 1 would otherwise ignore SIGTERM, and every stop would wait out the stop timeout.
    """
    prefix = f"{script}; " if script else ""
    return ["sh", "-c", f"trap 'exit 0' TERM; {prefix}sleep 3600 & wait"]


def build_context(context: Path | None = None, *, busybox: Path = BUSYBOX) -> bytes:
    """The build context as a tar stream: ``context``'s files (or :data:`BUSYBOX_DOCKERFILE`) and ``busybox``.

    The binary is placed at the top as ``busybox``, so that a Dockerfile can ``COPY busybox /bin/busybox``.
    """
    if not busybox.is_file():
        raise ImageBuildError(f"{busybox} is missing: install Debian's busybox-static")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if context is None:
            dockerfile = BUSYBOX_DOCKERFILE.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            tar.addfile(info, io.BytesIO(dockerfile))
        else:
            for item in sorted(context.iterdir()):
                tar.add(item, arcname=item.name)
        tar.add(busybox, arcname="busybox")
    return buf.getvalue()


def build_busybox_image(
    api: docker.APIClient, tag: str, context: Path | None = None, *, busybox: Path = BUSYBOX
) -> str:
    """Build ``tag`` and return it; nothing is pulled, and Docker's layer cache makes a rebuild quick.

    Without ``context``: a small userland, :data:`BUSYBOX_DOCKERFILE`. With ``context``: the Dockerfile in
    that folder, with ``busybox`` beside it. Raises :class:`ImageBuildError` with the end of the build log.
    """
    return build_image(api, build_context(context, busybox=busybox), tag)


def build_image(api: docker.APIClient, context: bytes, tag: str) -> str:
    """Build ``tag`` from a tar ``context`` (nothing pulled); :class:`ImageBuildError` with the end of the log."""
    log: list[str] = []
    chunks: Any = api.build(
        fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True, forcerm=True, pull=False, decode=True
    )
    for chunk in chunks:
        log.extend(str(chunk.get("stream", "")).splitlines())
        if "error" in chunk:
            tail = "".join(f"\n    {line}" for line in log[-20:] if line.strip())
            raise ImageBuildError(f"building {tag} failed: {str(chunk['error']).strip()}{tail}")
    return tag
