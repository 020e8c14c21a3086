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
    python benchmarks/profile_ours.py relay [--seconds N] [--hogs N] [--top N]
        The metadata GET through the relay and through a local server: the relay's hop alone (a path answered
        without Docker), the handler's Docker inspect, CPU per request by process (and py-spy on the run's
        server process), and the same under load (busy loops).

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

import support  # also puts the checkout first on sys.path
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


# -- the relay: its hop, and where the CPU goes ----------------------------------------------------------------

CPU_GROUPS = ("endpoint server", "relay: serve", "relay: connect", "dockerd", "containerd", "containerd-shim")


def _cpu_ticks(server_pid: int) -> dict[str, int]:
    """User+system clock ticks so far, per process group: the run's server, the relay's two programs (in the
    relay container, seen from this host), the engine's daemons."""
    ticks = dict.fromkeys(CPU_GROUPS, 0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = int(fields[11]) + int(fields[12])  # utime, stime
        if int(proc.name) == server_pid:
            group = "endpoint server"
        elif "pytest-ecstask-relay.py" in cmdline:
            group = "relay: connect" if " connect" in cmdline else "relay: serve"
        elif comm.startswith("containerd-shim"):
            group = "containerd-shim"
        elif comm in ("dockerd", "containerd"):
            group = comm
        else:
            continue
        ticks[group] += used
    return ticks


SPY_RATE = 1000  # py-spy samples per second


def _spy_summary(path: Path, requests: float, top: int) -> list[str]:
    """py-spy's on-CPU samples of the server process (every thread), per function, inclusive, as CPU ms per
    request."""
    inclusive: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        seen = set()
        for f in frames:
            name = f.rsplit(":", 1)[0] + ")" if ":" in f else f
            if name not in seen:
                inclusive[name] += int(count_text)
                seen.add(name)
    return [f"{1000 * n / SPY_RATE / requests:6.3f}  {name}" for name, n in inclusive.most_common(top)]


def relay(seconds: float, hogs: int, top: int) -> None:
    """The container metadata GET at 50/s through the relay and through a local server (bridge mode).

    Two paths: the container's metadata (the handler does one Docker inspect), and an unknown id (a 404
    answered without Docker: the transport alone). Also: the handler's Docker inspect timed from here; the
    CPU each process group spends per request in the steady part of each sample; py-spy (when installed) on
    the run's server process, on-CPU samples only; with ``hogs``, the metadata path again with that many busy
    loops on this machine, as another test suite would make.
    """
    import json
    import os
    import shutil

    from relay_scenarios import ModeRun

    from pytest_ecstask.lifecycle import lease_dir
    from pytest_ecstask.relaylink import relay_name

    api = docker_api()
    tick = os.sysconf("SC_CLK_TCK")
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    modes = {m: ModeRun.make(m) for m in ("local", "relay")}
    cases = [("metadata", "", 200), ("unknown id (404, no Docker)", "/v4/" + "0" * 32, 404)]
    if py_spy:  # apart: sampling the server perturbs it (a little: --nonblocking)
        cases.append(("metadata, py-spy on the server", "", 200))
    if hogs:
        cases.append((f"metadata, {hogs} busy loops", "", 200))
    p50: dict[tuple[str, str], float] = {}

    def server_pid(run: ModeRun) -> int:
        return int(json.loads((lease_dir() / f"{run.owner.session_id}.d" / "endpoint.json").read_text())["pid"])

    def sample(mode: str, path: str, expect: int, spy: bool) -> tuple[dict[str, Any], dict[str, float], list[str]]:
        """One client task; CPU ticks (and py-spy) over its steady part: after the start and the warm-up."""
        run = modes[mode]
        pid = server_pid(run)
        marks: list[tuple[float, dict[str, int]]] = []
        window = seconds - 3.0
        folded = Path(tempfile.mkdtemp(prefix="ecstask-relay-spy-")) / "server.folded"

        def steady() -> None:
            time.sleep(2.0)
            marks.append((time.perf_counter(), _cpu_ticks(pid)))
            if spy and py_spy:
                args = ["-r", str(SPY_RATE), "--nonblocking", "-f", "raw", "-o", str(folded), "-d", str(int(window))]
                subprocess.run([py_spy, "record", *args, "--pid", str(pid)], capture_output=True, check=False)
            else:
                time.sleep(window)
            marks.append((time.perf_counter(), _cpu_ticks(pid)))

        watcher = threading.Thread(target=steady)
        watcher.start()
        _, result = run.measure("bridge", seconds, path, expect)
        watcher.join()
        (t0, a), (t1, b) = marks
        requests = (t1 - t0) * 50
        cpu = {k: 1000 * (b[k] - a[k]) / tick / requests for k in a}
        spied = _spy_summary(folded, requests, 18) if folded.exists() else []
        return result, cpu, spied

    try:
        for run in modes.values():
            run.measure("bridge", 1.0)  # the servers and the relay up, the image's first run done
        took = []
        for _ in range(200):
            t0 = time.perf_counter()
            api.inspect_container(relay_name())
            took.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.02)
        print(
            f"Docker inspect of one container from this process, 50/s: p50 {support.percentile(took, 50):.2f} ms, "
            f"p99 {support.percentile(took, 99):.2f} ms"
        )
        for label, path, expect in cases:
            hog_processes = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(hogs if "busy" in label else 0)
            ]
            try:
                print(f"== {label}: open loop 50/s for {seconds:g} s, bridge mode")
                for mode in ("local", "relay"):
                    result, cpu, spied = sample(mode, path, expect, spy="py-spy" in label)
                    p50[(label, mode)] = float(result["p50"])
                    print(
                        f"  {mode:<6} p50 {result['p50']:5.2f}  p90 {result['p90']:5.2f}  p99 {result['p99']:6.2f}  "
                        f"max {result['max']:6.1f} ms, {result['errors']} failed; CPU ms per request: "
                        + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if v >= 0.005)
                        + f"; total {sum(cpu.values()):.2f}"
                    )
                    if spied:
                        print(f"    py-spy, the {mode} server process, CPU ms per request by function (inclusive):")
                        print("\n".join(f"      {line}" for line in spied[:top]))
            finally:
                for process in hog_processes:
                    process.terminate()
                    process.wait()
    finally:
        for mode in ("local", "relay"):
            modes[mode].end(api, print)
    hops = [
        f"{label} {p50[(label, 'relay')] - p50[(label, 'local')]:.2f} ms"
        for label, _, _ in cases
        if (label, "relay") in p50 and (label, "local") in p50
    ]
    print("== the relay's hop, relay - local at p50: " + ", ".join(hops))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("trace", "spy", "workload", "collect", "endpoints", "networks", "relay"))
    parser.add_argument(
        "scenario", nargs="?", default="start8", choices=("start8", "start1", "teardown8", "sweep", "healthy")
    )
    parser.add_argument("--loops", type=int, default=None)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0, help="relay: seconds per sample")
    parser.add_argument("--hogs", type=int, default=2, help="relay: busy loops for the run under load (0: none)")
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
    elif args.mode == "relay":
        relay(args.seconds, args.hogs, args.top)
    else:
        collect()


if __name__ == "__main__":
    main()
