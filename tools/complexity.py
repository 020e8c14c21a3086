"""Fail when a function or method of the package is more complex than MAX_COMPLEXITY (radon's cyclomatic count).

    python tools/complexity.py            # every block above the limit, worst first; exit 1 if any
    python tools/complexity.py --top 10   # the ten most complex blocks, whatever their score

Run by .ci/run. A block over the limit is a sign that rules which deserve names (or a table) are buried in
one chain of conditions: split it where an ECS reader would, rather than raising the limit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Function

MAX_COMPLEXITY = 15
PACKAGE = Path(__file__).resolve().parent.parent / "pytest_ecstask"


def blocks(package: Path = PACKAGE) -> list[tuple[int, str]]:
    """(complexity, "file:line name") for every function and method, most complex first."""
    found = []
    for path in sorted(package.glob("*.py")):
        # radon lists methods on their own (with their class name) as well as inside their class.
        for item in cc_visit(path.read_text(encoding="utf-8")):
            if isinstance(item, Function):
                name = f"{item.classname}.{item.name}" if item.classname else item.name
                found.append((item.complexity, f"{path.name}:{item.lineno} {name}"))
    return sorted(found, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, help="show the N most complex blocks and exit 0")
    args = parser.parse_args(argv)
    found = blocks()
    if args.top:
        for score, where in found[: args.top]:
            print(f"{score:4d}  {where}")
        return 0
    over = [(score, where) for score, where in found if score > MAX_COMPLEXITY]
    for score, where in over:
        print(f"{score:4d}  {where}: above {MAX_COMPLEXITY}")
    if over:
        print(f"{len(over)} of {len(found)} functions are above complexity {MAX_COMPLEXITY}")
        return 1
    print(f"complexity: all {len(found)} functions at or below {MAX_COMPLEXITY} (worst {found[0][0]}: {found[0][1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
