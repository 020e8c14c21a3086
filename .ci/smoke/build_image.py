"""Build the smoke test's image: Debian's static busybox in a FROM-scratch image (nothing can be pulled)."""

import io
import tarfile

import docker

DOCKERFILE = b"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /www /tmp && /bin/busybox --install -s /bin"]
ENV PATH=/bin
"""

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    tar.add("/bin/busybox", arcname="busybox")
    info = tarfile.TarInfo("Dockerfile")
    info.size = len(DOCKERFILE)
    tar.addfile(info, io.BytesIO(DOCKERFILE))
buf.seek(0)
docker.from_env().images.build(fileobj=buf, custom_context=True, tag="pytest-ecstask-smoke/busybox:1", rm=True)
print("ci: built pytest-ecstask-smoke/busybox:1")
