"""The pause image, made on the spot so that awsvpc tasks run with no registry access. Pure: builds bytes.

The image holds a single static program that blocks forever in one system call (the same job as the
ECS agent's pause container). It is a hand-assembled ELF of a few dozen bytes per architecture, so no
compiler and no registry is needed to produce it. It has no signal handlers: as PID 1 it ignores SIGTERM,
so the runtime removes it with SIGKILL, after every container that shares its namespaces has stopped.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile

PAUSE_REPOSITORY = "pytest-ecstask/pause"
LOAD_ADDRESS = 0x400000
_HEADER_SIZE = 64 + 56  # ELF header + one program header

# machine name (as `uname -m` and Docker's Architecture say) -> (e_machine, code)
_CODE = {
    # loop: mov eax, 34 (pause); syscall; jmp loop
    "x86_64": (62, bytes.fromhex("b8220000000f05ebf7")),
    # loop: x0..x3 = 0; x8 = 73 (ppoll: no fds, no timeout = wait for a signal); svc #0; b loop
    "aarch64": (
        183,
        struct.pack(
            "<7I",
            0xD2800000,  # mov x0, #0
            0xD2800001,  # mov x1, #0
            0xD2800002,  # mov x2, #0
            0xD2800003,  # mov x3, #0
            0xD2800928,  # mov x8, #73
            0xD4000001,  # svc #0
            0x17FFFFFA,  # b loop (-6 instructions)
        ),
    ),
}
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def normalize_architecture(arch: str) -> str:
    return _ALIASES.get(arch, arch)


def pause_binary(arch: str) -> bytes:
    """A static ELF executable for ``arch`` that waits forever."""
    arch = normalize_architecture(arch)
    if arch not in _CODE:
        raise ValueError(f"no pause program for architecture {arch!r}; supported: {', '.join(_CODE)}")
    machine, code = _CODE[arch]
    size = _HEADER_SIZE + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC
        machine,
        1,  # EV_CURRENT
        LOAD_ADDRESS + _HEADER_SIZE,  # entry point: the code right after the headers
        64,  # program headers start after the ELF header
        0,
        0,
        64,
        56,
        1,
        0,
        0,
        0,
    )
    program = struct.pack(
        "<IIQQQQQQ",
        1,  # PT_LOAD
        5,  # readable + executable
        0,
        LOAD_ADDRESS,
        LOAD_ADDRESS,
        size,
        size,
        0x10000,
    )
    return header + program + code


def pause_rootfs_tar(arch: str) -> bytes:
    """A root file system holding only ``/pause``, as a tar stream for the Engine API's image import."""
    binary = pause_binary(arch)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("pause")
        info.size = len(binary)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(binary))
    return buf.getvalue()


def pause_image_tag(arch: str) -> str:
    """Content-addressed, so a changed program never reuses a stale image."""
    digest = hashlib.sha256(pause_binary(arch)).hexdigest()[:12]
    return f"{PAUSE_REPOSITORY}:{normalize_architecture(arch)}-{digest}"
