"""The endpoints through the engine's relay, against a server on this machine measured in the same run.

Two endpoint modes serve 169.254.170.2. ``local``: the run's server process binds the address here.
``relay``: a container on the engine (host network) listens there and carries each connection over a Docker
exec stream back to the run's server process. The answers come from the same handlers either way, so the
difference between the two is what the relay hop costs.

A run has one endpoint server, in one mode: each mode gets an owner of its own here (a session and a lease),
and the lease is released at the end, which stops that server (and the relay, once no run uses it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from engine_scenarios import Context
from support import EventRecorder, Row, attempt, median, other_containers, percentile, rotated

from pytest_ecstask.endpoints import listeners_on_endpoint_ip
from pytest_ecstask.lifecycle import LABEL_SESSION, Lease, Owner, host_id, lease_dir, new_session_id
from pytest_ecstask.options import TaskOptions
from pytest_ecstask.relaylink import LABEL_RELAY, relay_running
from pytest_ecstask.runtime import list_resources, remove_resources
from pytest_ecstask.task import create_task

# Debian bookworm's python3 (tools/relay-image.sh): the relay's image, and the client's.
RELAY_IMAGE = "pytest-ecstask-test/relay:debian"
RATE = 50.0  # requests per second
WARMUP = 10  # requests before the measured ones (first connection, ARP, the server's and the relay's threads)
CHUNK = 100  # samples per log line: Docker splits lines longer than 16 KiB

# The client, run by the container's python3 with ``-c``: GET $ECS_CONTAINER_METADATA_URI_V4 (the container's
# own metadata) on an open-loop schedule. Request i is due at start + i/rate and is handed to a worker thread
# then, whether or not the earlier ones have answered, so a slow answer cannot delay the ones after it and
# hide its own cost (coordinated omission). Latency is taken from the planned time (primary: it includes any
# lateness of the dispatcher and the hand-off to a worker) and, for comparison, from the worker's actual
# send. A new connection per request, as the SDKs' metadata and credential fetchers make. Each output line
# is JSON: the samples in chunks, in planned order, then the summary.
CLIENT = r"""
import http.client, json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

rate, seconds, warmup, chunk = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
url = urlsplit(os.environ["ECS_CONTAINER_METADATA_URI_V4"])
path = sys.argv[5] if len(sys.argv) > 5 else url.path  # another path on the same server (profiling)
expect = int(sys.argv[6]) if len(sys.argv) > 6 else 200

failures = {}  # what the failed requests saw, by kind

def get():
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status == expect and (expect != 200 or json.loads(body).get("DockerId") is not None):
            return True
        why = f"HTTP {response.status}: {body[:120]!r}"
    except (OSError, ValueError, http.client.HTTPException) as exc:
        why = f"{type(exc).__name__}: {exc}"[:160]
    finally:
        conn.close()
    failures[why] = failures.get(why, 0) + 1
    return False

for _ in range(warmup):
    get()
    time.sleep(1 / rate)
failures.clear()

samples = []  # (planned, sent, done, ok); list.append is atomic

def one(planned):
    sent = time.perf_counter()
    ok = get()
    samples.append((planned, sent, time.perf_counter(), ok))

n = int(rate * seconds)
pool = ThreadPoolExecutor(max_workers=64)
start = time.perf_counter() + 0.05
for i in range(n):
    planned = start + i / rate
    delay = planned - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    pool.submit(one, planned)
pool.shutdown(wait=True)
samples.sort()

def ms(x):
    return round(x * 1000, 3)

rows = [[ms(done - planned), ms(done - sent), int(ok)] for planned, sent, done, ok in samples]
for i in range(0, len(rows), chunk):
    print(json.dumps({"samples": rows[i : i + chunk]}), flush=True)

def pct(values, p):
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, -(-int(p * len(ordered)) // 100))
    return ordered[min(rank, len(ordered)) - 1]

good = [r[0] for r in rows if r[2]]
sent_good = [r[1] for r in rows if r[2]]
lag = [ms(sent - planned) for planned, sent, _, _ in samples]
span = samples[-1][1] - samples[0][1] if len(samples) > 1 else 0
print(json.dumps({
    "summary": True, "count": len(rows), "errors": len(rows) - len(good),
    "p50": pct(good, 50), "p90": pct(good, 90), "p99": pct(good, 99), "max": max(good, default=None),
    "p50_from_send": pct(sent_good, 50), "p99_from_send": pct(sent_good, 99),
    "max_dispatch_lag": max(lag, default=None), "failures": failures,
    "rate_per_s": round((len(samples) - 1) / span, 2) if span else None,
}), flush=True)
"""


def client_task(network_mode: str, seconds: float, path: str = "", expect: int = 200) -> dict[str, Any]:
    """One essential container that runs the client and exits: the task stops when the measurement is done.

    ``path``: another path on the endpoint server than the container's metadata, answered with ``expect``.
    """
    args = [f"{RATE:g}", f"{seconds:g}", str(WARMUP), str(CHUNK), *([path, str(expect)] if path else [])]
    return {
        "family": f"benchrelay-{network_mode}",
        "networkMode": network_mode,
        "containerDefinitions": [
            {"name": "client", "image": RELAY_IMAGE, "command": ["python3", "-c", CLIENT, *args], "essential": True}
        ],
    }


@dataclass
class ModeRun:
    """One endpoint mode: the owner (session + lease) whose server serves its tasks, and how it was asked."""

    mode: str
    owner: Owner
    lease: Lease
    options: TaskOptions

    @classmethod
    def make(cls, mode: str) -> ModeRun:
        session = new_session_id()
        lease = Lease.acquire(session)
        owner = Owner(session, host_id(), str(lease.path), keep=False)
        options = TaskOptions(pull="never", stop_timeout=2, start_timeout=120, endpoints=mode, relay_image=RELAY_IMAGE)
        return cls(mode, owner, lease, options)

    def measure(
        self, network_mode: str, seconds: float, path: str = "", expect: int = 200
    ) -> tuple[float, dict[str, Any]]:
        """Start a client task, wait for it to stop, and read its samples: (create+start seconds, result)."""
        t0 = time.perf_counter()
        task = create_task(client_task(network_mode, seconds, path, expect), self.options, owner=self.owner)
        try:
            task.start()
            started = time.perf_counter() - t0
            if task.containers["client"].metadata_uri is None:
                raise RuntimeError(f"{self.mode}: the endpoints are off for this task: nothing to measure")
            task.wait(timeout=seconds * 3 + 60)
            exit_code = task.containers["client"].exit_code
            output = task.logs("client", raw=True)
        finally:
            task.close()
        result = parse_client_output(output)
        if exit_code != 0 or "summary" not in result:
            raise RuntimeError(f"{self.mode}/{network_mode}: the client exited {exit_code}: {output[-800:]}")
        return started, result

    def end(self, api: Any, log: Callable[[str], None]) -> dict[str, Any]:
        """Release the lease and wait for the server process to exit: it stops within a poll or two, after
        (relay mode) the relay has left, if this run was its last, and the shared network is removed if no
        other run needs it. Reports what of this session is still on the engine."""
        session_dir = lease_dir() / f"{self.owner.session_id}.d"
        announce = session_dir / "endpoint.json"
        log_path = session_dir / "endpoint.log"
        server_log = log_path.read_text(errors="replace").splitlines()[-40:] if log_path.exists() else []
        try:
            pid: int | None = int(json.loads(announce.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            pid = None  # no server was started
        self.lease.release()
        began = time.perf_counter()
        while pid is not None and _running(pid) and time.perf_counter() - began < 15:
            time.sleep(0.05)
        server_gone = time.perf_counter() - began
        shutil.rmtree(session_dir, ignore_errors=True)
        left = list_resources(api, f"{LABEL_SESSION}={self.owner.session_id}")
        if left:
            remove_resources(api, left)
        state = {
            "server_exited_after_s": round(server_gone, 2),
            "server_exited": pid is None or not _running(pid),
            "session_resources_left": len(left),
            "server_log_tail": server_log,
        }
        log(f"  {self.mode} server exited after {server_gone:.2f} s; {len(left)} resource(s) of the session left")
        return state


def _running(pid: int) -> bool:
    """Whether a process runs (an exited child not yet reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def parse_client_output(text: str) -> dict[str, Any]:
    """The client's JSON lines: every sample (from planned, from send, ok) and the summary it printed."""
    samples: list[list[float]] = []
    summary: dict[str, Any] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        data = json.loads(line)
        if "samples" in data:
            samples.extend(data["samples"])
        elif data.get("summary"):
            summary = data
    return {**summary, "samples": samples} if summary else {"samples": samples}


def relay_latency(ctx: Context, seconds: float | None = None) -> list[Row]:
    """p99 and p50 of the container metadata GET through the relay, against a local server, in bridge and
    awsvpc mode: open-loop 50 requests/s for ``seconds`` (default 20; --quick 5) per sample."""
    api = ctx.api
    seconds = seconds or (5.0 if ctx.quick else 20.0)
    reps = min(ctx.repeat, 3)  # each sample lasts ``seconds``: 3 x 1000 requests per variant by default
    try:
        api.inspect_image(RELAY_IMAGE)
    except Exception:
        raise RuntimeError(f"image {RELAY_IMAGE} is missing: run `bash tools/relay-image.sh` to build it") from None
    relay_before = relay_running(api)
    network_modes = ["bridge", "awsvpc"]
    modes = {"local": ModeRun.make("local"), "relay": ModeRun.make("relay")}
    for run in modes.values():
        ctx.sessions.add(run.owner.session_id)
    variants = [(net, mode) for net in network_modes for mode in modes]
    results: dict[str, list[dict[str, Any]]] = {f"{n}/{m}": [] for n, m in variants}
    first_start: dict[str, float] = {}
    starts: dict[str, list[float]] = {m: [] for m in modes}
    ended: dict[str, Any] = {}
    replaced: list[dict[str, Any]] = []  # relay-mode servers given up after another run restarted the relay

    def relay_sample(net: str, sample_seconds: float) -> tuple[float, dict[str, Any]]:
        """A relay-mode sample, refused when the shared relay went away meanwhile (another run on the engine
        killed or restarted it). The run's server then starts a relay again, which may listen on another port
        than the one this run's tasks are told: a fresh server (a new owner) takes the next sample."""
        was_running = relay_running(api)
        recorder = EventRecorder(
            api, {"type": "container", "label": LABEL_RELAY, "event": ["start", "kill", "die", "destroy"]}
        )
        try:
            outcome = modes["relay"].measure(net, sample_seconds)
        finally:
            events = recorder.stop()
        # A start is expected once: the first relay-mode task starts the relay.
        changed = [e for e in events if e.get("Action") != "start" or was_running]
        if changed:
            seen = ", ".join(
                f"{e.get('Action')} {e.get('Actor', {}).get('Attributes', {}).get('name')}" for e in changed
            )
            gone = modes["relay"].end(api, ctx.log)
            modes["relay"] = ModeRun.make("relay")
            ctx.sessions.add(modes["relay"].owner.session_id)
            replaced.append({"events": seen, "ended": gone, "errors": outcome[1].get("errors")})
            raise RuntimeError(f"the engine's relay container changed during the sample: {seen}")
        return outcome

    def one(net: str, mode: str, record: bool) -> None:
        before = {"loadavg": [round(x, 2) for x in os.getloadavg()], "other_containers": other_containers(api)}
        if mode == "local":
            started, result = modes[mode].measure(net, seconds if record else 1.0)
        else:
            started, result = relay_sample(net, seconds if record else 1.0)
        if not record:
            first_start.setdefault(mode, started)  # the first one starts the mode's server (and the relay)
            return
        starts[mode].append(started)
        results[f"{net}/{mode}"].append({**result, "machine_before": before})
        ctx.log(f"  {net}/{mode}: {_summary(result)}")

    try:
        for net, mode in variants:  # warm-up: the servers, the relay, the image's first run
            attempt(ctx, f"relay warm-up {net}/{mode}", partial(one, net, mode, False), tries=5)
        for rep in range(reps):
            for net, mode in rotated(variants, rep):
                attempt(ctx, f"relay {net}/{mode}", partial(one, net, mode, True), tries=5)
    finally:
        # The baseline's server first: the relay mode's server then finds no other server of ours when it
        # decides whether to remove the shared 169.254.170.2 network.
        for mode in ("local", "relay"):
            ended[mode] = modes[mode].end(api, ctx.log)
        ended["relay_running_before"] = relay_before
        ended["relay_running_after"] = relay_running(api)
        ended["listening_on_endpoint_ip_after"] = sorted(listeners_on_endpoint_ip() or [])

    def ok(result: dict[str, Any], column: int = 0) -> list[float]:
        return [s[column] for s in result["samples"] if s[2]]

    def per_sample(net: str, mode: str, p: float, column: int = 0) -> list[float]:
        return [v for r in results[f"{net}/{mode}"] if (v := percentile(ok(r, column), p)) is not None]

    def med(net: str, mode: str, p: float, column: int = 0) -> float | None:
        return median(per_sample(net, mode, p, column))

    def pooled(net: str, mode: str, column: int = 0) -> list[float]:
        return [x for r in results[f"{net}/{mode}"] for x in ok(r, column)]

    rows = []
    for net in network_modes:
        name = f"metadata v4 GET, {net}: relay / local server"
        rows += [
            Row(f"{name}, p99", med(net, "relay", 99), med(net, "local", 99), unit="ms", kind="ratio", target=2.0),
            Row(f"{name}, p50", med(net, "relay", 50), med(net, "local", 50), unit="ms"),
            Row(f"{name}, p90", med(net, "relay", 90), med(net, "local", 90), unit="ms"),
            Row(
                f"{name}, p99 of all {reps} samples pooled",
                percentile(pooled(net, "relay"), 99),
                percentile(pooled(net, "local"), 99),
                unit="ms",
            ),
            Row(
                f"{name}, max of all samples",
                max(pooled(net, "relay"), default=None),
                max(pooled(net, "local"), default=None),
                unit="ms",
            ),
            Row(
                f"{name}, p99 from the actual send",
                med(net, "relay", 99, column=1),
                med(net, "local", 99, column=1),
                unit="ms",
            ),
        ]
    errors = sum(int(r.get("errors") or 0) for rs in results.values() for r in rs)
    rows.append(Row("metadata v4 GET, relay and local: failed requests", errors, None, unit="", kind="equal", target=0))
    rows.append(
        Row(
            "first task start, its endpoint server starting: relay / local",
            first_start.get("relay"),
            first_start.get("local"),
            unit="s",
            note="each mode's first task: create_task() + start(), the server (and the relay) starting with it",
        )
    )
    rows.append(Row("task start, server up: relay / local", median(starts["relay"]), median(starts["local"]), unit="s"))
    rows[0].samples = {
        "per_sample": {k: [{x: y for x, y in r.items() if x != "samples"} for r in v] for k, v in results.items()},
        "per_sample_p99_ms": {f"{n}/{m}": per_sample(n, m, 99) for n, m in variants},
        "latencies_from_planned_ms": {f"{n}/{m}": pooled(n, m) for n, m in variants},
        "latencies_from_send_ms": {f"{n}/{m}": pooled(n, m, 1) for n, m in variants},
        "task_start_s": starts,
        "first_task_start_s": first_start,
        "teardown": ended,
        "relay_servers_replaced": replaced,
    }
    rows[0].note = (
        f"client in the task's container (python3 -c, {RELAY_IMAGE}): open loop, {RATE:g} GET/s of "
        f"$ECS_CONTAINER_METADATA_URI_V4 for {seconds:g} s per sample after {WARMUP} warm-up requests, a new "
        f"connection per request, latency from each request's planned time; {reps} samples per variant, "
        "interleaved; ours/baseline = median over samples of each sample's percentile; baseline = the same "
        "task with the endpoint server bound on this machine (endpoints='local')"
    )
    return rows


def _summary(result: dict[str, Any]) -> str:
    def f(key: str) -> str:
        value = result.get(key)
        return "-" if value is None else f"{value:.1f}"

    return (
        f"{result.get('count')} requests, {result.get('errors')} failed, p50 {f('p50')} ms, p90 {f('p90')} ms, "
        f"p99 {f('p99')} ms, max {f('max')} ms (from send: p50 {f('p50_from_send')}, p99 {f('p99_from_send')}); "
        f"dispatch lag max {f('max_dispatch_lag')} ms; {f('rate_per_s')}/s"
        + (f"; failures: {result['failures']}" if result.get("failures") else "")
    )
