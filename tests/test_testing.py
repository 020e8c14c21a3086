"""pytest_ecstask.testing: the build context of the busybox images the tests, benchmarks, CI and example run."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from pytest_ecstask.testing import BUSYBOX_DOCKERFILE, ImageBuildError, build_context


def members(context: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(context)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_without_a_folder_the_context_is_the_busybox_dockerfile_and_the_binary(tmp_path: Path) -> None:
    binary = tmp_path / "busybox"
    binary.write_bytes(b"\x7fELF static busybox")
    assert members(build_context(busybox=binary)) == {
        "Dockerfile": BUSYBOX_DOCKERFILE.encode(),
        "busybox": b"\x7fELF static busybox",
    }


def test_a_folder_is_sent_whole_with_the_binary_beside_its_dockerfile(tmp_path: Path) -> None:
    binary = tmp_path / "busybox"
    binary.write_bytes(b"bin")
    folder = tmp_path / "app"
    (folder / "www" / "cgi-bin").mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
    (folder / "www" / "cgi-bin" / "orders").write_text("#!/bin/sh\n")
    assert set(members(build_context(folder, busybox=binary))) == {"Dockerfile", "www/cgi-bin/orders", "busybox"}


def test_a_missing_busybox_says_which_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match=r"missing: install Debian's busybox-static"):
        build_context(busybox=tmp_path / "busybox")
