"""The cold scenario for two versions of the package side by side: did a change make the first task faster?

    python benchmarks/compare_cold.py OTHER_CHECKOUT [--rounds N] [--more-tests N]

OTHER_CHECKOUT is another checkout of the project (``git worktree add /tmp/before REV``). Each round runs,
in a rotating order, a fresh pytest process of this checkout's plugin, one of the other's, and the SDK
thread-pool baseline of ``cold_scenarios`` (the same task of 8 containers, the same timing plugin), so that
the machine's drift hits the three alike. Prints the medians of the setup phase and of the whole process,
and each version's ratio to the pool. ``--more-tests N``: N trivial tests more in each project, collected
(so inside the setup phase) and run after the task's test, as in a suite whose collection takes time.
Everything made on the engine is removed by the runs themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import cold_scenarios
from pytest_scenarios import _check, run_pytest
from support import ROOT, build_image, docker_api

VARIANTS = ("this", "other", "pool")


def one(folder: Path, variant: str, other: Path) -> tuple[float, float]:
    """(setup, whole process) of one fresh pytest process, in seconds."""
    timing = folder / "timing.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # bytecode cached
    env["ECSTASK_BENCH_TIMING"] = str(timing)
    checkout = other if variant == "other" else ROOT
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(checkout)])  # before the installed plugin
    if variant == "pool":
        cwd, args = folder / "sdk", ["-p", "no:ecstask"]
        env["ECSTASK_BENCH_VARIANT"] = "pool"
    else:
        cwd, args = folder / "ours", ["--ecs-taskdef", "../taskdef.json"]
    took, result = run_pytest(cwd, ["-p", "ecstask_bench_timing", "-p", "no:cacheprovider", *args], env, 300)
    _check(result, variant)
    measured = json.loads(timing.read_text())
    timing.unlink()
    return float(measured["setup"]), took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", type=Path, help="another checkout of the project")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--more-tests", type=int, default=0, help="trivial tests more, collected and run")
    args = parser.parse_args()
    image = build_image(docker_api())
    samples: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="ecstask-compare-cold-") as tmp:
        folder = Path(tmp)
        cold_scenarios.write_projects(folder, image, None, "compare", args.more_tests)
        for variant in VARIANTS:  # warm-up: bytecode caches, the image in the page cache
            one(folder, variant, args.other)
        for round_ in range(args.rounds):
            for variant in VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]:
                samples[variant].append(one(folder, variant, args.other))
    pool = statistics.median(s for s, _ in samples["pool"])
    for variant, measured in samples.items():
        setup = statistics.median(s for s, _ in measured)
        whole = statistics.median(w for _, w in measured)
        print(f"{variant:5}  setup {setup:.3f} s (/ pool {setup / pool:.2f})  whole process {whole:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
