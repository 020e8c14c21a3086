"""Tables written into the docs from the code, between markers, and the ``--write`` command that renews them.

Used by ``python -m pytest_ecstask.fields`` (docs/field-support.md) and ``python -m pytest_ecstask.settings``
(docs/reference.md); each has a test that fails when its page drifts from the code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def between_markers(document: str, begin: str, end: str, text: str) -> str:
    """``document`` with what stands between ``begin`` and ``end`` replaced by ``text``."""
    head, found_begin, rest = document.partition(begin)
    _, found_end, tail = rest.partition(end)
    if not found_begin or not found_end:
        raise ValueError(f"the document lacks the markers {begin!r} and {end!r}")
    return f"{head}{begin}\n\n{text}\n{end}{tail}"


def write_command(argv: Sequence[str], module: str, renew: Callable[[str], str], show: Callable[[], str]) -> int:
    """``--write PAGE`` renews the page's tables in place; no argument prints them; anything else: usage."""
    if len(argv) == 2 and argv[0] == "--write":
        page = Path(argv[1])
        try:
            page.write_text(renew(page.read_text(encoding="utf-8")), encoding="utf-8")
        except (OSError, ValueError) as exc:
            print(f"error: {page}: {exc}", file=sys.stderr)
            return 1
        return 0
    if argv:
        print(f"usage: python -m {module} [--write DOCUMENT.md]", file=sys.stderr)
        return 2
    sys.stdout.write(show())
    return 0
