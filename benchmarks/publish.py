"""Write the results table of benchmark runs to benchmarks/RESULTS.md and into docs/performance.md.

Usage: python benchmarks/publish.py RUN.json [RUN.json ...]   (the JSON files ``run.py --json`` wrote)

Both get the same text, between the markers below in docs/performance.md, so the two never disagree
(tests/test_docs.py checks). Each run's ratio and verdict get a column of their own: a target is met when
every run meets it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # support, also when loaded by path (tests/test_docs.py)
from support import ROOT, fmt

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
DOCS = ROOT / "docs" / "performance.md"
BEGIN = "<!-- results: written by benchmarks/publish.py; do not edit by hand -->"
END = "<!-- /results -->"
VERDICT = {True: "yes", False: "NO", None: "-"}


def render(runs: list[dict[str, Any]]) -> str:
    """The header naming the machine and the runs, then one row per scenario with each run's ratio."""
    first = runs[0]["machine"]
    lines = [
        f"{len(runs)} run(s) of `python benchmarks/run.py`"
        + (f" (`--repeat {runs[0]['repeat']}`)" if runs[0].get("repeat") else "")
        + f" on {first.get('nproc')} cores, Linux {first.get('kernel')}, Python {first.get('python')}, Docker "
        f"{first.get('docker')} (API {first.get('docker_api')}, {first.get('storage_driver')}).",
        "",
    ]
    for n, run in enumerate(runs, 1):
        machine = run["machine"]
        changes = machine.get("package_uncommitted_changes") or []
        lines.append(
            f"- run {n}: package at commit {machine.get('package_commit') or '?'}"
            + (f" with uncommitted changes in {', '.join(changes)}" if changes else "")
            + f", {run.get('seconds', 0):.0f} s, load average {machine.get('loadavg_start')} at the start, "
            f"engine clean: {'yes' if run.get('engine_check', {}).get('clean') else 'NO'}"
        )
    lines += [
        "",
        "Medians of the last run; ratio = ours / baseline, each run in its own column (for a row without a "
        "baseline, each run's own value).",
        "",
    ]
    header = ["scenario", "ours", "baseline", *[f"ratio, run {n}" for n in range(1, len(runs) + 1)], "target"]
    header += ["met"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    by_run = [{row["scenario"]: row for row in run["rows"]} for run in runs]
    for scenario, last in by_run[-1].items():
        rows = [seen.get(scenario) for seen in by_run]
        # A row without a baseline (an absolute target, a count) shows each run's own value instead.
        ratios = [
            "-"
            if r is None
            else f"{r['ratio']:.2f}"
            if r.get("ratio") is not None
            else fmt(r.get("ours_median"), r["unit"])
            for r in rows
        ]
        verdicts = [r.get("met") if r is not None else None for r in rows]
        if any(v is False for v in verdicts):
            met = "NO"
        elif all(v is True for v in verdicts):
            met = "yes"
        else:
            met = VERDICT[verdicts[-1]] if None not in verdicts else "-"
        cells = [scenario, fmt(last["ours_median"], last["unit"]), fmt(last["baseline_median"], last["unit"])]
        lines.append("| " + " | ".join([*cells, *ratios, last["target"], met]) + " |")
    return "\n".join(lines) + "\n"


def publish(paths: list[Path]) -> str:
    runs = [json.loads(path.read_text()) for path in paths]
    text = render(runs)
    RESULTS.write_text("# Benchmark results\n\n" + text)
    docs = DOCS.read_text()
    before, _, rest = docs.partition(BEGIN)
    _, _, after = rest.partition(END)
    DOCS.write_text(f"{before}{BEGIN}\n{text}{END}{after}")
    return text


def results_block(docs_text: str) -> str:
    """What publish wrote into docs/performance.md (for the check that it matches RESULTS.md)."""
    return docs_text.partition(BEGIN)[2].partition(END)[0].removeprefix("\n")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    print(publish([Path(p) for p in sys.argv[1:]]), end="")
