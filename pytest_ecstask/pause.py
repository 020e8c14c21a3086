"""The pause and sentinel images, made on the spot so that nothing needs a registry. Pure: builds bytes.

The pause image holds a single static program that blocks forever in one system call (the same job as the
ECS agent's pause container). The sentinel image holds one that reads its stdin until end of file, then
exits: a run keeps that stdin open through an attach, so the engine ends the sentinel when the run's process
dies, and any run on the engine can tell from it whether the run lives (see lifecycle).

Each program is a hand-assembled ELF of a few dozen bytes per architecture, so no compiler and no registry
is needed to produce it. They have no signal handlers: as PID 1 they ignore SIGTERM, so the runtime
removes them with SIGKILL.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile

PAUSE_REPOSITORY = "pytest-ecstask/pause"
SENTINEL_REPOSITORY = "pytest-ecstask/sentinel"
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
# loop: read(0, stack, 16); again while it read something; at end of file (0) or an error: exit_group(0).
# The buffer is the initial stack (argc and argv[0], which the program never uses).
_SENTINEL_CODE = {
    "x86_64": (
        62,
        bytes.fromhex(
            "31c0"  # 0: xor eax, eax          (read)
            "31ff"  # 2: xor edi, edi          (fd 0: stdin)
            "4889e6"  # 4: mov rsi, rsp        (buffer)
            "ba10000000"  # 7: mov edx, 16     (length)
            "0f05"  # 12: syscall
            "4885c0"  # 14: test rax, rax
            "7fed"  # 17: jg 0                 (read something: read again; -19 bytes)
            "b8e7000000"  # 19: mov eax, 231   (exit_group)
            "31ff"  # 24: xor edi, edi         (status 0)
            "0f05"  # 26: syscall
        ),
    ),
    "aarch64": (
        183,
        struct.pack(
            "<10I",
            0xD2800000,  # loop: mov x0, #0   (fd 0: stdin)
            0x910003E1,  # mov x1, sp          (buffer)
            0xD2800202,  # mov x2, #16         (length)
            0xD28007E8,  # mov x8, #63         (read)
            0xD4000001,  # svc #0
            0xF100001F,  # cmp x0, #0
            0x54FFFF4C,  # b.gt loop           (read something: read again; -6 instructions)
            0xD2800000,  # mov x0, #0          (status 0)
            0xD2800BC8,  # mov x8, #94         (exit_group)
            0xD4000001,  # svc #0
        ),
    ),
}
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def normalize_architecture(arch: str) -> str:
    return _ALIASES.get(arch, arch)


def pause_binary(arch: str) -> bytes:
    """A static ELF executable for ``arch`` that waits forever."""
    return _elf(_CODE, "pause", arch)


def sentinel_binary(arch: str) -> bytes:
    """A static ELF executable for ``arch`` that reads stdin until end of file, then exits with status 0."""
    return _elf(_SENTINEL_CODE, "sentinel", arch)


def _elf(programs: dict[str, tuple[int, bytes]], what: str, arch: str) -> bytes:
    arch = normalize_architecture(arch)
    if arch not in programs:
        raise ValueError(f"no {what} program for architecture {arch!r}; supported: {', '.join(programs)}")
    machine, code = programs[arch]
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
    return _rootfs_tar("pause", pause_binary(arch))


def sentinel_rootfs_tar(arch: str) -> bytes:
    """A root file system holding only ``/sentinel``, as a tar stream for the Engine API's image import."""
    return _rootfs_tar("sentinel", sentinel_binary(arch))


def _rootfs_tar(name: str, binary: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(binary)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(binary))
    return buf.getvalue()


def pause_image_tag(arch: str) -> str:
    """Content-addressed, so a changed program never reuses a stale image."""
    digest = hashlib.sha256(pause_binary(arch)).hexdigest()[:12]
    return f"{PAUSE_REPOSITORY}:{normalize_architecture(arch)}-{digest}"


def sentinel_image_tag(arch: str) -> str:
    """Content-addressed, like the pause image's."""
    digest = hashlib.sha256(sentinel_binary(arch)).hexdigest()[:12]
    return f"{SENTINEL_REPOSITORY}:{normalize_architecture(arch)}-{digest}"
