"""pytest-ecstask benchmarks: ours against bare-SDK baselines measured in the same run.

    python benchmarks/run.py [--repeat N] [--json PATH] [--quick] [--only NAME ...] [--relay-seconds N]

Prints a table (scenario, our median, the baseline's median, ratio, target, met) and writes every sample
as JSON. Everything it creates on the engine is removed at the end, and the engine is checked for it;
images stay. Exit status: 0 when every scenario ran and the engine is clean, 1 otherwise (a target that is
not met does not change the exit status: read the table).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

import support
from support import BENCH_LABEL, Row, build_image, by_kind, docker_api, machine, table

SCENARIOS = ("cold", "reuse", "start", "start1", "healthy", "sweep", "endpoints", "relay", "unused", "xdist")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per scenario (default 5, --quick 2)")
    parser.add_argument(
        "--json", metavar="PATH", default=None, help="where to write the results (default benchmarks/last-run.json)"
    )
    parser.add_argument("--quick", action="store_true", help="2 repetitions and smaller sizes: a smoke run for CI")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument(
        "--relay-seconds",
        type=float,
        default=None,
        metavar="N",
        help="relay: seconds of 50 requests/s per sample (default 20, --quick 5)",
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 5)
    json_path = Path(args.json) if args.json else Path(__file__).resolve().parent / "last-run.json"
    chosen = args.only or list(SCENARIOS)

    import secrets

    from cold_scenarios import cold_start, reused_start
    from engine_scenarios import (
        Context,
        endpoints_latency,
        healthy_gating,
        start_and_teardown,
        start_one,
        sweep_orphans,
    )
    from pytest_scenarios import unused_plugin, xdist_session_task
    from relay_scenarios import relay_latency

    began = time.perf_counter()
    api = docker_api()
    info = machine()
    version = api.version()
    info["docker"] = version.get("Version")
    info["docker_api"] = version.get("ApiVersion")
    info["storage_driver"] = api.info().get("Driver")
    info["other_running_containers_at_start"] = support.other_containers(api)
    info.update(support.checkout_state())
    from pytest_ecstask.endpoints import NETWORK_NAME

    endpoint_network_before = bool(api.networks(names=[NETWORK_NAME]))

    def log(line: str) -> None:
        print(line, flush=True)

    log(f"machine: {info}")
    image = build_image(api)
    run_id = secrets.token_hex(6)
    ctx = Context(api=api, image=image, run_id=run_id, repeat=repeat, quick=args.quick, log=log)
    ctx.sessions.add(ctx.owner.session_id)

    runners: dict[str, Callable[[Any], list[Row]]] = {
        "cold": cold_start,
        "reuse": reused_start,
        "start": start_and_teardown,
        "start1": start_one,
        "healthy": healthy_gating,
        "sweep": sweep_orphans,
        "endpoints": endpoints_latency,
        "relay": partial(relay_latency, seconds=args.relay_seconds),
        "unused": unused_plugin,
        "xdist": xdist_session_task,
    }
    rows: list[Row] = []
    errors: dict[str, str] = {}
    durations: dict[str, float] = {}
    try:
        for name in chosen:
            log(f"== {name}")
            t0 = time.perf_counter()
            try:
                rows.extend(runners[name](ctx))
            except Exception:
                errors[name] = traceback.format_exc()
                log(f"  ERROR in {name}:\n{errors[name]}")
            durations[name] = round(time.perf_counter() - t0, 1)
            log(f"  ({durations[name]} s)")
    finally:
        clean = final_check(ctx, endpoint_network_before, log)
    with contextlib.suppress(OSError):
        info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    print()
    print(table(rows))
    print()
    met = [r for r in rows if r.met is not None]
    print(
        f"targets met: {sum(1 for r in met if r.met)} of {len(met)}; "
        f"engine clean: {'yes' if clean['clean'] else 'NO'}; {time.perf_counter() - began:.0f} s"
    )
    for name in errors:
        print(f"scenario {name} FAILED (see above)")
    if ctx.retries:
        print(f"{len(ctx.retries)} sample(s) failed and were taken again (see retried_samples in the JSON)")
    result = {
        "machine": info,
        "repeat": repeat,
        "quick": args.quick,
        "run_id": run_id,
        "seconds": round(time.perf_counter() - began, 1),
        "scenario_seconds": durations,
        "rows": [r.as_dict() for r in rows],
        "errors": errors,
        "retried_samples": ctx.retries,
        "engine_check": clean,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {json_path}")
    return 0 if not errors and clean["clean"] else 1


def final_check(ctx: Any, endpoint_network_before: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Remove and then look for everything this run made: baselines, orphans, tasks, the endpoint server."""
    from pytest_ecstask.endpoints import NETWORK_NAME, listeners_on_endpoint_ip, stop_server
    from pytest_ecstask.lifecycle import LABEL_SESSION, lease_dir
    from pytest_ecstask.runtime import list_resources, remove_resources

    api = ctx.api
    labels = [f"{BENCH_LABEL}={ctx.run_id}"] + [f"{LABEL_SESSION}={s}" for s in sorted(ctx.sessions)]
    leftovers = {}
    for label in labels:
        found = list_resources(api, label)
        if found:
            leftovers[label] = by_kind(found)
            remove_resources(api, found)
    # The run's endpoint server stops when asked (or when this process's lease goes at exit); on stopping it
    # removes the shared 169.254.170.2 network unless another run's server still listens there.
    stop_server(lease_dir() / f"{ctx.owner.session_id}.d")  # nothing to do when no task was started
    still = {label: by_kind(found) for label in labels if (found := list_resources(api, label))}
    network_now = bool(api.networks(names=[NETWORK_NAME]))
    listening = listeners_on_endpoint_ip()
    result: dict[str, Any] = {
        "clean": not leftovers and not still,
        "leftovers_removed_at_end": leftovers,
        "left_after_removal": still,
        "endpoint_network": {
            "existed_before": endpoint_network_before,
            "exists_after": network_now,
            "other_servers_listening": sorted(listening or []),
        },
    }
    if network_now and not endpoint_network_before and not listening:
        result["clean"] = False
        result["endpoint_network"]["note"] = "made by this run and left behind"
    log(f"== engine check: {'clean' if result['clean'] else 'NOT clean'} {json.dumps(result)}")
    return result


if __name__ == "__main__":
    sys.exit(main())
