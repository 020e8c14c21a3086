"""Where the time goes, for a scenario whose target is not met.

    python benchmarks/profile_ours.py trace start8|start1|teardown8|sweep [--loops N]
        Every Docker Engine API call made by ours and by the thread-pool baseline, with its thread and its
        start/end in ms since the call began: shows which calls wait for which.
    python benchmarks/profile_ours.py trace healthy [--loops N]
        HEALTHY gating in bridge and awsvpc mode: the runner's reaction to the health event, Docker's start.
    python benchmarks/profile_ours.py networks
        30 network deletes, with 1, 4 and 16 threads: whether the engine deletes networks in parallel.
    python benchmarks/profile_ours.py spy start8|start1|teardown8|sweep [--loops N]
        ours under py-spy (wall clock, idle included, every thread), folded stacks summarised per function
        (share of wall-clock samples in which the function is on the stack).
    python benchmarks/profile_ours.py endpoints
        py-spy on the endpoint server process while a container asks for task metadata, then credentials.
    python benchmarks/profile_ours.py collect
        ``python -X importtime`` of a collect-only run, with and without the plugin: what the plugin imports.

Nothing here changes the package: it wraps methods of the docker SDK client object of this process only.
"""

from __future__ import annotations

import argparse
import collections
import functools
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import support  # noqa: F401
from support import build_image, by_kind, docker_api

from pytest_ecstask.runtime import list_resources, remove_resources

TRACED = (
    "inspect_image",
    "events",
    "create_network",
    "create_volume",
    "create_container_from_config",
    "create_container",
    "start",
    "stop",
    "kill",
    "remove_container",
    "remove_network",
    "remove_volume",
    "logs",
    "inspect_container",
    "containers",
    "networks",
    "volumes",
    "version",
    "ping",
    "inspect_volume",
)


class ApiTrace:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, float]] = []
        self.t0 = time.perf_counter()
        self.lock = threading.Lock()

    def wrap(self, api: Any) -> None:
        for name in TRACED:
            original = getattr(api, name)
            if getattr(original, "_traced", False):
                continue

            @functools.wraps(original)
            def traced(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    with self.lock:
                        self.calls.append((threading.current_thread().name, _name, start, time.perf_counter()))

            traced._traced = True  # type: ignore[attr-defined]
            setattr(api, name, traced)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
        self.t0 = time.perf_counter()

    def report(self, title: str) -> str:
        lines = [f"-- {title}: {len(self.calls)} Engine API calls (ms since the call began)"]
        for thread, name, start, end in sorted(self.calls, key=lambda c: c[2]):
            lines.append(
                f"  {1000 * (start - self.t0):8.1f} -> {1000 * (end - self.t0):8.1f}  "
                f"({1000 * (end - start):6.1f})  {name:<30} [{thread}]"
            )
        by_name: dict[str, list[float]] = collections.defaultdict(list)
        for _, name, start, end in self.calls:
            by_name[name].append(1000 * (end - start))
        lines.append(
            "  totals: "
            + ", ".join(f"{n} x{len(v)} sum {sum(v):.0f} ms max {max(v):.0f} ms" for n, v in sorted(by_name.items()))
        )
        return "\n".join(lines)


_contexts: list[Any] = []


def _ctx() -> Any:
    import secrets

    from engine_scenarios import Context

    api = docker_api()
    image = build_image(api)
    ctx = Context(api=api, image=image, run_id=secrets.token_hex(6), repeat=1, quick=False, log=print)
    _contexts.append(ctx)
    return ctx


def _cleanup() -> None:
    """Whatever this process made: baseline resources by the run label, tasks by this process's session."""
    from pytest_ecstask.endpoints import stop_server
    from pytest_ecstask.lifecycle import LABEL_SESSION, lease_dir

    for ctx in _contexts:
        for label in (f"pytest-ecstask-bench.run={ctx.run_id}", f"{LABEL_SESSION}={ctx.owner.session_id}"):
            found = list_resources(ctx.api, label)
            if found:
                print(f"cleanup: removing what is left ({label}): {by_kind(found)}")
                remove_resources(ctx.api, found)
        stop_server(lease_dir() / f"{ctx.owner.session_id}.d")  # nothing to do when no task was started


def trace(scenario: str, loops: int) -> None:
    from engine_scenarios import OPTIONS, RawTask, independent_task, make_orphans, ours_start

    from pytest_ecstask.sweep import sweep
    from pytest_ecstask.task import create_task, get_engine

    ctx = _ctx()
    engine = get_engine()
    tracer = ApiTrace()
    tracer.wrap(engine.api)
    if engine.api is not ctx.api:
        tracer.wrap(ctx.api)
    n = 1 if scenario == "start1" else 8
    taskdef = independent_task(ctx.image, n)
    # Warm-up, untraced in the report.
    _, _, task = ours_start(ctx, taskdef)
    task.close()
    try:
        for _ in range(loops):
            if scenario in ("start8", "start1", "teardown8"):
                tracer.reset()
                t0 = time.perf_counter()
                task = create_task(taskdef, OPTIONS, owner=ctx.owner)
                task.start()
                started = time.perf_counter() - t0
                if scenario != "teardown8":
                    print(tracer.report(f"ours create_task+start ({1000 * started:.0f} ms)"))
                    print(
                        "  timeline: "
                        + ", ".join(f"{e.at * 1000:.0f} {e.container or ''} {e.what}" for e in task.timeline)
                    )
                tracer.reset()
                t0 = time.perf_counter()
                task.close()
                if scenario == "teardown8":
                    print(tracer.report(f"ours close ({1000 * (time.perf_counter() - t0):.0f} ms)"))
                raw = RawTask(ctx, taskdef)
                tracer.reset()
                t0 = time.perf_counter()
                raw.start_concurrent()
                if scenario != "teardown8":
                    print(tracer.report(f"baseline thread pool ({1000 * (time.perf_counter() - t0):.0f} ms)"))
                tracer.reset()
                t0 = time.perf_counter()
                raw.teardown_concurrent()
                if scenario == "teardown8":
                    print(tracer.report(f"baseline stop+remove pool ({1000 * (time.perf_counter() - t0):.0f} ms)"))
                raw.remove()
            elif scenario == "sweep":
                make_orphans(ctx, 200)
                tracer.reset()
                t0 = time.perf_counter()
                report = sweep(ctx.api, force=True)
                took = time.perf_counter() - t0
                calls = sorted(tracer.calls, key=lambda c: c[2])
                print(f"-- sweep ({1000 * took:.0f} ms, {len(report.chosen)} removed)")
                first = calls[0][2] if calls else t0
                print(f"  before the first API call: {1000 * (first - t0):.0f} ms")
                phases: dict[str, list[float]] = collections.defaultdict(list)
                for _, name, start, end in calls:
                    phases[name] += [start, end]
                for name, times in phases.items():
                    count = len(times) // 2
                    print(
                        f"  {name:<20} x{count:<4} from {1000 * (min(times) - t0):7.0f} to "
                        f"{1000 * (max(times) - t0):7.0f} ms"
                    )
                print(f"  after the last API call: {1000 * (t0 + took - max(c[3] for c in calls)):.0f} ms")
    finally:
        remove_resources(ctx.api, list_resources(ctx.api, f"pytest-ecstask-bench.run={ctx.run_id}"))


def trace_healthy(loops: int) -> None:
    """Per mode: how long after handling the health_status event the runner calls start, and how long
    Docker's start takes (the runner's timeline is read against its start time: a diagnostic, private)."""
    from engine_scenarios import healthy_gate_ours

    from pytest_ecstask.task import get_engine

    ctx = _ctx()
    tracer = ApiTrace()
    tracer.wrap(get_engine().api)
    for _ in range(loops):
        for mode in ("bridge", "awsvpc"):
            sample, task = healthy_gate_ours(ctx, mode)
            try:
                healthy = next(e.at for e in task.timeline if e.container == "db" and e.what == "health HEALTHY")
                start = [c for c in tracer.calls if c[1] == "start"][-1]
                reaction = (start[2] - task._runner._began) - healthy
                print(
                    f"{mode}: check end -> StartedAt {sample['from_check_end_ms']:.0f} ms, event -> StartedAt "
                    f"{sample['from_event_ms']:.0f} ms; event handled -> start call {1000 * reaction:.1f} ms; "
                    f"start call {1000 * (start[3] - start[2]):.0f} ms"
                )
            finally:
                task.close()
                tracer.reset()


def network_deletes(count: int = 30) -> None:
    """How the engine deletes networks: sequentially and with 4 and 16 threads."""
    from concurrent.futures import ThreadPoolExecutor

    from docker.types import IPAMConfig, IPAMPool

    ctx = _ctx()
    api = ctx.api
    try:
        for workers in (1, 4, 16):

            def make(i: int) -> str:
                ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=f"10.214.{i}.0/24")])
                return str(
                    api.create_network(
                        f"ecstask-bench-net-{ctx.run_id}-{i}",
                        ipam=ipam,
                        labels={"pytest-ecstask-bench.run": ctx.run_id},
                    )["Id"]
                )

            with ThreadPoolExecutor(4) as pool:
                ids = list(pool.map(make, range(count)))
            t0 = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(api.remove_network, ids))
            print(f"{count} network deletes, {workers} thread(s): {time.perf_counter() - t0:.2f} s")
    finally:
        remove_resources(api, list_resources(api, f"pytest-ecstask-bench.run={ctx.run_id}"))


def workload(scenario: str, loops: int) -> None:
    """What ``spy`` samples: ours only, ``loops`` times."""
    from engine_scenarios import independent_task, make_orphans, ours_start

    from pytest_ecstask.sweep import sweep

    ctx = _ctx()
    taskdef = independent_task(ctx.image, 1 if scenario == "start1" else 8)
    _, _, task = ours_start(ctx, taskdef)
    task.close()
    marks = []
    try:
        for _ in range(loops):
            if scenario == "sweep":
                make_orphans(ctx, 200)
                t0 = time.perf_counter()
                sweep(ctx.api, force=True)
            else:
                t0 = time.perf_counter()
                _, _, task = ours_start(ctx, taskdef)
                if scenario == "teardown8":
                    t0 = time.perf_counter()
                task.close()
            marks.append(time.perf_counter() - t0)
    finally:
        remove_resources(ctx.api, list_resources(ctx.api, f"pytest-ecstask-bench.run={ctx.run_id}"))
    print("measured: " + ", ".join(f"{m:.3f}" for m in marks))


def spy(scenario: str, loops: int, top: int) -> None:
    out = Path(tempfile.mkdtemp(prefix="ecstask-spy-")) / f"{scenario}.folded"
    cmd = [
        "py-spy",
        "record",
        "--idle",
        "--threads",
        "-r",
        "250",
        "-f",
        "raw",
        "-o",
        str(out),
        "--",
        sys.executable,
        __file__,
        "workload",
        scenario,
        "--loops",
        str(loops),
    ]
    subprocess.run(cmd, check=True)
    summarise(out, scenario, top)
    print(f"folded stacks: {out}")


def summarise(path: Path, scenario: str, top: int) -> None:
    """Per function: the share of wall-clock samples with it on the stack (inclusive), counting only samples
    of the measured work: stacks that pass through the package (setup code of the workload is left out)."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        frames = frames[1:] if frames and frames[0].startswith("thread ") else frames
        if not any("pytest_ecstask/" in f for f in frames) or any("make_orphans" in f for f in frames):
            continue
        count = int(count_text)
        total += count
        seen = set()
        for f in frames:
            name = f.rsplit(":", 1)[0] + ")" if ":" in f else f
            if name not in seen:
                inclusive[name] += count
                seen.add(name)
        leaf[frames[-1].rsplit(":", 1)[0] + ")"] += count
    print(f"-- py-spy, {scenario}: {total} wall-clock samples (250/s per thread) in the package's own work")
    for name, count in inclusive.most_common(top):
        print(f"  {100 * count / max(total, 1):5.1f}%  {name}")
    print("-- innermost frames")
    for name, count in leaf.most_common(12):
        print(f"  {100 * count / max(total, 1):5.1f}%  {name}")


def _importtime(folder: Path, env: dict[str, str], extra: list[str]) -> dict[str, tuple[int, int, int]]:
    """module -> (self us, cumulative us, nesting depth) from ``python -X importtime``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pytest", "--collect-only", "-q", *extra],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    out = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip(" "))) // 2
        out[name.strip()] = (int(own), int(cumulative), depth)
    return out


def collect() -> None:
    """What the installed-but-unused plugin adds to a collect-only run: modules, and time in its hooks."""
    from pytest_scenarios import pytest_env, write_trivial_suite

    with tempfile.TemporaryDirectory(prefix="ecstask-bench-importtime-") as tmp:
        folder = Path(tmp)
        write_trivial_suite(folder, 2000)
        env = pytest_env()
        for extra in ([], ["-p", "no:ecstask"]):  # warm the bytecode caches
            subprocess.run(
                [sys.executable, "-m", "pytest", "--collect-only", "-q", *extra],
                cwd=folder,
                env=env,
                capture_output=True,
            )
        runs: dict[str, list[dict[str, tuple[int, int, int]]]] = {"with": [], "without": []}
        for _ in range(3):
            runs["with"].append(_importtime(folder, env, []))
            runs["without"].append(_importtime(folder, env, ["-p", "no:ecstask"]))
        with_plugin, without = runs["with"][-1], runs["without"][-1]
        added = {m: v for m, v in with_plugin.items() if m not in without}

        # Median over the 3 runs of the self time of every module only the plugin run imports.
        def self_us(m: str) -> int:
            values = sorted(r.get(m, (0, 0, 0))[0] for r in runs["with"])
            return values[1]

        total = sum(self_us(m) for m in added)
        print(f"-- modules imported only with the plugin: {len(added)}, self time {total / 1000:.0f} ms (median of 3)")
        groups: collections.Counter[str] = collections.Counter()
        for m in added:
            groups[m.split(".")[0]] += self_us(m)
        for top, us in groups.most_common(12):
            print(f"  {us / 1000:7.1f} ms  {top}.*")
        print("-- who imports them: cumulative time of the plugin's own modules (last run)")
        for m, (own, cumulative, depth) in sorted(with_plugin.items(), key=lambda kv: -kv[1][1]):
            if m.startswith("pytest_ecstask"):
                print(f"  {cumulative / 1000:7.1f} ms cumulative, {own / 1000:5.1f} ms self  {'  ' * depth}{m}")
        # Where the rest of the wall time goes: the plugin's hooks, by cProfile of one in-process run.
        script = (
            "import cProfile, pstats, sys, pytest, io\n"
            "p = cProfile.Profile(); p.enable()\n"
            "pytest.main(['--collect-only', '-q'])\n"
            "p.disable(); s = io.StringIO(); st = pstats.Stats(p, stream=s); st.sort_stats('cumulative')\n"
            "st.print_stats('pytest_ecstask', 15); sys.stderr.write(s.getvalue())\n"
        )
        result = subprocess.run([sys.executable, "-c", script], cwd=folder, env=env, capture_output=True, text=True)
        print("-- cProfile, functions of pytest_ecstask by cumulative time (one collect-only run)")
        body = result.stderr.split("ncalls", 1)
        print("   ncalls" + body[1] if len(body) > 1 else result.stderr[-3000:])


def endpoints(seconds: float, top: int) -> None:
    """py-spy on the run's endpoint server process while a container asks it at 50 requests/s."""
    from engine_scenarios import _in_container_latency, endpoints_task, ours_start
    from support import percentile

    ctx = _ctx()
    _, _, task = ours_start(ctx, endpoints_task(ctx.image))
    auth = '--header "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN"'
    try:
        assert task.endpoint is not None
        for name, url, header in (
            ("metadata v4 task", "$ECS_CONTAINER_METADATA_URI_V4/task", ""),
            ("credentials", "$AWS_CONTAINER_CREDENTIALS_FULL_URI", auth),
        ):
            out = Path(tempfile.mkdtemp(prefix="ecstask-spy-")) / "endpoints.folded"
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--idle",
                    "--threads",
                    "-r",
                    "500",
                    "-f",
                    "raw",
                    "-o",
                    str(out),
                    "--pid",
                    str(task.endpoint.pid),
                    "-d",
                    str(int(seconds) + 1),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            result = _in_container_latency(task, url, header, 50, seconds)
            spy.wait()
            lat = result["latencies_ms"]
            print(f"== {name}: p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms")
            summarise_server(out, top)
    finally:
        task.close()


def summarise_server(path: Path, top: int) -> None:
    """Samples of the request-handling threads only (not the accept loop or the lease watcher)."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not any("do_GET" in f for f in frames):
            continue
        count = int(count_text)
        total += count
        seen = set()
        for f in frames:
            name = f.rsplit(":", 1)[0] + ")" if ":" in f else f
            if name not in seen:
                inclusive[name] += count
                seen.add(name)
    print(f"-- py-spy on the endpoint server: {total} wall-clock samples inside do_GET")
    for name, count in inclusive.most_common(top):
        print(f"  {100 * count / max(total, 1):5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("trace", "spy", "workload", "collect", "endpoints", "networks"))
    parser.add_argument(
        "scenario", nargs="?", default="start8", choices=("start8", "start1", "teardown8", "sweep", "healthy")
    )
    parser.add_argument("--loops", type=int, default=None)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    try:
        run_mode(args)
    finally:
        if args.mode != "spy":  # spy's work (and its cleanup) happens in the "workload" child process
            _cleanup()


def run_mode(args: Any) -> None:
    if args.mode == "trace" and args.scenario == "healthy":
        trace_healthy(args.loops or 1)
    elif args.mode == "trace":
        trace(args.scenario, args.loops or 1)
    elif args.mode == "networks":
        network_deletes()
    elif args.mode == "spy":
        spy(args.scenario, args.loops or 3, args.top)
    elif args.mode == "workload":
        workload(args.scenario, args.loops or 3)
    elif args.mode == "endpoints":
        endpoints(8.0, args.top)
    else:
        collect()


if __name__ == "__main__":
    main()
