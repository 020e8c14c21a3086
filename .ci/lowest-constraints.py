"""Print pip constraints pinning every dependency (and the test extra) to the lowest version pyproject.toml allows.

CI installs the project with them to prove that the lower bounds it promises are true.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

LOWER_BOUND = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)")


def lowest(requirements: list[str]) -> list[str]:
    pins = []
    for requirement in requirements:
        match = LOWER_BOUND.match(requirement)
        if match is None:
            raise SystemExit(f"lowest-constraints: {requirement!r} has no lower bound (name>=version)")
        pins.append(f"{match[1]}=={match[2]}")
    return pins


def main() -> int:
    project = tomllib.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml").read_text())["project"]
    print("\n".join(lowest(project["dependencies"] + project["optional-dependencies"]["test"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
