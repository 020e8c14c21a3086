"""Build the smoke test's image: Debian's static busybox in a FROM-scratch image (nothing can be pulled)."""

import docker

from pytest_ecstask.testing import build_busybox_image

print(f"ci: built {build_busybox_image(docker.from_env().api, 'pytest-ecstask-smoke/busybox:1')}")
