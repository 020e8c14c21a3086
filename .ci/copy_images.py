"""Copy images from one engine to another through their APIs (docker save | docker load): no registry.

Usage: python3 .ci/copy_images.py FROM_URL TO_URL IMAGE...   An image the target has already is kept.
"""

from __future__ import annotations

import sys

import docker
import docker.errors


def main(source_url: str, target_url: str, images: list[str]) -> int:
    source = docker.APIClient(base_url=source_url)
    target = docker.APIClient(base_url=target_url)
    for image in images:
        try:
            target.inspect_image(image)
            print(f"ci: {image} is on {target_url} already")
            continue
        except docker.errors.ImageNotFound:
            pass
        try:
            archive = b"".join(source.get_image(image))
        except docker.errors.ImageNotFound:
            print(f"ci: {image} is not on {source_url} either (bash tools/relay-image.sh builds it)")
            return 1
        target.load_image(archive)
        target.inspect_image(image)  # the short name must resolve there
        print(f"ci: {image} copied from {source_url} to {target_url} ({len(archive) // 2**20} MiB)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
