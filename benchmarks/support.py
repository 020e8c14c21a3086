"""What every scenario needs: the project on sys.path, the busybox image, statistics, Docker bookkeeping.

Nothing here measures anything; the scenarios live in ``engine_scenarios.py`` and ``pytest_scenarios.py``.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_ecstask.leftovers import Resource

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # The checkout under test, not whatever copy happens to be installed.
    sys.path.insert(0, str(ROOT))

IMAGE = "pytest-ecstask-bench/busybox:1"

# Every baseline resource and every fake orphan carries this label (value: the run id), so the final
# check can find exactly what this run made, whatever else shares the engine.
BENCH_LABEL = "pytest-ecstask-bench.run"


def docker_api() -> Any:
    import docker

    api = docker.from_env(timeout=300).api
    api.ping()
    return api


def build_image(api: Any) -> str:
    """The busybox image every scenario runs (the tests' image, under a tag of its own)."""
    from pytest_ecstask.testing import ImageBuildError, build_busybox_image

    try:
        return build_busybox_image(api, IMAGE)
    except ImageBuildError as exc:
        raise SystemExit(str(exc)) from None


# -- statistics ----------------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100): with 500 samples, p99 is the 5th slowest."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-p * len(ordered) // 100)))  # ceil(p/100 * n)
    return ordered[min(rank, len(ordered)) - 1]


def rotated(items: Sequence[Any], rep: int) -> list[Any]:
    """The variants of one repetition, in an order that rotates between repetitions (drift hits all alike)."""
    k = rep % len(items)
    return list(items[k:]) + list(items[:k])


def docker_time(text: str) -> float:
    """A Docker RFC 3339 timestamp (nanoseconds) as epoch seconds, keeping microseconds."""
    text = text.rstrip("Z")
    base, _, frac = text.partition(".")
    seconds = datetime.fromisoformat(base).replace(tzinfo=timezone.utc).timestamp()
    return seconds + float(f"0.{frac or '0'}"[:8])


# -- Docker bookkeeping --------------------------------------------------------------------------------------


def by_kind(found: Sequence[Resource]) -> dict[str, list[str]]:
    """What ``list_resources`` found, as ids by kind: for logs, counts and the results file."""
    out: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": []}
    for r in found:
        out[f"{r.kind}s"].append(r.id)
    return out


def attempt(ctx: Any, what: str, fn: Callable[[], Any], tries: int = 3) -> Any:
    """Run one sample, again if it fails: others share this engine, and a test suite that ends may remove
    every pytest-ecstask resource on it (ours included) mid-sample. Every retry is logged and reported."""
    for n in range(tries):
        try:
            return fn()
        except Exception as exc:
            if n == tries - 1:
                raise
            last = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else ""
            reason = f"{what}: {type(exc).__name__}: {last}"
            ctx.retries.append(reason)
            ctx.log(f"  retrying after a failed sample: {reason}")


class EventRecorder:
    """Docker events recorded live (the engine keeps only its last 256 events for ``since`` queries, too few on
    a busy shared engine): opened before the measured work, closed after it."""

    def __init__(self, api: Any, filters: dict[str, Any]) -> None:
        import threading

        self.events: list[dict[str, Any]] = []
        self._stream = api.events(filters=filters, decode=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                self.events.append(event)
        except Exception:
            return  # closed

    def stop(self, settle: float = 0.2) -> list[dict[str, Any]]:
        time.sleep(settle)  # events of the last moment are still on their way
        with contextlib.suppress(Exception):
            self._stream.close()
        self._thread.join(timeout=5)
        return self.events


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def machine() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError):
        info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def checkout_state() -> dict[str, Any]:
    """Which code was measured: others edit the package while benchmarks run."""
    import subprocess

    def git(*args: str) -> str:  # rstrip: a porcelain line starts with a space (" M path")
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    modified = [line[3:] for line in git("status", "--porcelain", "--", "pytest_ecstask").splitlines()]
    return {"package_commit": git("rev-parse", "--short", "HEAD"), "package_uncommitted_changes": modified}


def other_containers(api: Any, mine: Iterable[str] = ()) -> int:
    """Running containers on the engine that are not this run's: others share the 2 cores with us."""
    skip = set(mine)
    return sum(1 for c in api.containers() if c["Id"] not in skip)


# -- results ---------------------------------------------------------------------------------------------------


class Row:
    """One line of the table: our median, the baseline's median, and the target they are held to.

    ``kind`` says how ``target`` is read: "ratio" (ours / baseline <= target), "max" (ours <= target, in
    ``unit``), "equal" (ours == target) or "report" (no target: shown for context).
    """

    def __init__(
        self,
        scenario: str,
        ours: float | None,
        baseline: float | None,
        *,
        unit: str,
        kind: str = "report",
        target: float | None = None,
        samples: dict[str, Any] | None = None,
        note: str = "",
    ) -> None:
        self.scenario = scenario
        self.ours = ours
        self.baseline = baseline
        self.unit = unit
        self.kind = kind
        self.target = target
        self.samples = samples or {}
        self.note = note

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.baseline:
            return None
        return self.ours / self.baseline

    @property
    def met(self) -> bool | None:
        if self.kind == "ratio":
            return None if self.ratio is None else self.ratio <= float(self.target or 0)
        if self.kind == "max":
            return None if self.ours is None else self.ours <= float(self.target or 0)
        if self.kind == "equal":
            return None if self.ours is None else self.ours == self.target
        return None

    @property
    def target_text(self) -> str:
        if self.kind == "ratio":
            return f"ratio <= {self.target:g}"
        if self.kind == "max":
            return f"<= {self.target:g} {self.unit}"
        if self.kind == "equal":
            return f"== {self.target:g}"
        return "(report)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "unit": self.unit,
            "ours_median": self.ours,
            "baseline_median": self.baseline,
            "ratio": self.ratio,
            "target": self.target_text,
            "met": self.met,
            "note": self.note,
            "samples": self.samples,
        }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:g}"


def table(rows: Sequence[Row]) -> str:
    header = ("scenario", "ours (median)", "baseline (median)", "ratio", "target", "met")
    lines = [header] + [
        (
            r.scenario,
            fmt(r.ours, r.unit),
            fmt(r.baseline, r.unit),
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            r.target_text,
            {True: "yes", False: "NO", None: "-"}[r.met],
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)
