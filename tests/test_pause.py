"""The hand-made programs of the pause and sentinel images: their bytes (pure), and the sentinel run for real."""

from __future__ import annotations

import io
import socket
import struct
import tarfile
import time
from typing import Any

import pytest

from pytest_ecstask.pause import (
    LOAD_ADDRESS,
    PAUSE_REPOSITORY,
    SENTINEL_REPOSITORY,
    pause_binary,
    pause_image_tag,
    sentinel_binary,
    sentinel_image_tag,
    sentinel_rootfs_tar,
)

HEADERS = 64 + 56

# Checked against `objdump -D -b binary -m i386:x86-64` and `llvm-mc --disassemble -triple=aarch64`.
SENTINEL_X86_64 = "31c031ff4889e6ba100000000f054885c07fedb8e700000031ff0f05"
SENTINEL_AARCH64 = [
    0xD2800000,  # mov x0, #0
    0x910003E1,  # mov x1, sp
    0xD2800202,  # mov x2, #16
    0xD28007E8,  # mov x8, #63 (read)
    0xD4000001,  # svc #0
    0xF100001F,  # cmp x0, #0
    0x54FFFF4C,  # b.gt -24
    0xD2800000,  # mov x0, #0
    0xD2800BC8,  # mov x8, #94 (exit_group)
    0xD4000001,  # svc #0
]


@pytest.mark.parametrize(("arch", "machine"), [("x86_64", 62), ("amd64", 62), ("aarch64", 183), ("arm64", 183)])
def test_the_sentinel_is_a_static_elf_that_starts_right_after_its_headers(arch: str, machine: int) -> None:
    binary = sentinel_binary(arch)
    assert binary[:4] == b"\x7fELF" and binary[4] == 2  # 64-bit
    e_type, e_machine, _, entry = struct.unpack_from("<HHIQ", binary, 16)
    assert (e_type, e_machine, entry) == (2, machine, LOAD_ADDRESS + HEADERS)
    p_type, p_flags, _, _, _, filesz, memsz = struct.unpack_from("<IIQQQQQ", binary, 64)
    assert (p_type, p_flags, filesz, memsz) == (1, 5, len(binary), len(binary))


def test_the_sentinel_code_reads_stdin_until_end_of_file_then_exits() -> None:
    assert sentinel_binary("x86_64")[HEADERS:].hex() == SENTINEL_X86_64
    assert list(struct.unpack("<10I", sentinel_binary("aarch64")[HEADERS:])) == SENTINEL_AARCH64


def test_the_pause_program_is_unchanged() -> None:
    assert pause_binary("x86_64")[HEADERS:].hex() == "b8220000000f05ebf7"


def test_the_sentinel_image_is_its_own_content_addressed_image() -> None:
    tag = sentinel_image_tag("x86_64")
    assert tag.startswith(f"{SENTINEL_REPOSITORY}:x86_64-") and tag != sentinel_image_tag("aarch64")
    assert pause_image_tag("x86_64").startswith(f"{PAUSE_REPOSITORY}:")
    with tarfile.open(fileobj=io.BytesIO(sentinel_rootfs_tar("x86_64"))) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.mode) == ("sentinel", 0o755)
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == sentinel_binary("x86_64")


def test_no_sentinel_for_an_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="no sentinel program for architecture 'ppc64le'"):
        sentinel_binary("ppc64le")


def _status(docker_api: Any, container: str) -> dict[str, Any]:
    return dict(docker_api.inspect_container(container)["State"])


def test_the_sentinel_runs_while_its_stdin_is_open_and_exits_0_at_its_end(docker_api: Any) -> None:
    from pytest_ecstask.runtime import Engine

    image = Engine(docker_api, "").sentinel_image()
    container = docker_api.create_container(image, stdin_open=True, labels={"pytest-ecstask-test.sentinel": "1"})
    try:
        stream = docker_api.attach_socket(container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        docker_api.start(container)
        sock = stream._sock
        sock.sendall(b"more than sixteen bytes, read in several calls\n" * 100)
        time.sleep(0.5)
        assert _status(docker_api, container)["Running"], "data on stdin must not end it"
        sock.shutdown(socket.SHUT_WR)  # end of file
        deadline = time.monotonic() + 10
        while _status(docker_api, container)["Running"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _status(docker_api, container)["ExitCode"] == 0 and not _status(docker_api, container)["Running"]
        stream.close()
    finally:
        docker_api.remove_container(container, force=True)
