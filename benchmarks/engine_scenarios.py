"""Scenarios that drive the Docker engine: task start and teardown, HEALTHY gating, the sweep, the endpoints.

"Ours" always goes through the public API (``create_task``, ``TaskOptions``, ``Task.start``/``close``,
``sweep.sweep``). Baselines do the same Docker work with the bare docker SDK (or CLI), and are measured in
the same run, interleaved with ours, in an order that rotates between repetitions.
"""

from __future__ import annotations

import copy
import http.client
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from support import (
    BENCH_LABEL,
    EventRecorder,
    Row,
    attempt,
    by_kind,
    docker_time,
    median,
    percentile,
    rotated,
    timed,
)

from pytest_ecstask.lifecycle import (
    LABEL_OWNER,
    LABEL_SESSION,
    LABEL_TASK,
    Owner,
    host_id,
    lease_dir,
    new_session_id,
    new_task_id,
    now_rfc3339,
    process_owner,
    resource_labels,
)
from pytest_ecstask.options import TaskOptions
from pytest_ecstask.runtime import list_resources, remove_resources
from pytest_ecstask.sweep import sweep
from pytest_ecstask.task import Task, create_task
from pytest_ecstask.testing import service

# A small stop timeout: every container here exits 0 on SIGTERM anyway.
OPTIONS = TaskOptions(pull="never", stop_timeout=2, start_timeout=120)


@dataclass
class Context:
    api: Any
    image: str
    run_id: str
    repeat: int
    quick: bool
    log: Callable[[str], None]
    owner: Owner = field(default_factory=process_owner)
    sessions: set[str] = field(default_factory=set)  # every session id this run used (for the final check)
    retries: list[str] = field(default_factory=list)  # samples that failed and were taken again, and why

    def label(self, labels: dict[str, str]) -> dict[str, str]:
        return {**labels, BENCH_LABEL: self.run_id}


# -- task definitions ---------------------------------------------------------------------------------------


def independent_task(image: str, n: int) -> dict[str, Any]:
    return {
        "family": f"bench{n}",
        "containerDefinitions": [
            {"name": f"c{i}", "image": image, "command": service(), "essential": True} for i in range(n)
        ],
    }


def healthy_task(image: str, mode: str) -> dict[str, Any]:
    return {
        "family": f"benchhealthy-{mode}",
        "networkMode": mode,
        "containerDefinitions": [
            {
                "name": "db",
                "image": image,
                "command": service("touch /tmp/ready"),
                "essential": True,
                # ECS's smallest interval: the first check runs 5 s after the start.
                "healthCheck": {
                    "command": ["CMD-SHELL", "test -f /tmp/ready"],
                    "interval": 5,
                    "timeout": 2,
                    "retries": 3,
                    "startPeriod": 0,
                },
            },
            {
                "name": "app",
                "image": image,
                "command": service(),
                "essential": True,
                "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
            },
        ],
    }


def endpoints_task(image: str) -> dict[str, Any]:
    return {
        "family": "benchendpoints",
        "taskRoleArn": "arn:aws:iam::123456789012:role/bench",
        "containerDefinitions": [
            {
                "name": "app",
                "image": image,
                # busybox httpd on loopback: the floor of the in-container measurement method.
                "command": service("echo ok > /www/x; httpd -p 127.0.0.1:8080 -h /www"),
                "essential": True,
            }
        ],
    }


# -- ours and raw equivalents ----------------------------------------------------------------------------------


def ours_start(ctx: Context, taskdef: dict[str, Any]) -> tuple[float, float, Task]:
    """create_task + start, timed from the call to every container running; also start() alone."""
    t0 = time.perf_counter()
    task = create_task(taskdef, OPTIONS, owner=ctx.owner)
    t1 = time.perf_counter()
    try:
        task.start()
    except BaseException:
        task.close()
        raise
    t2 = time.perf_counter()
    ctx.sessions.add(task.plan.labels[LABEL_SESSION])
    not_running = [c.name for c in task.containers.values() if c.status != "RUNNING"]
    if not_running:
        task.close()
        raise RuntimeError(f"containers not running after start: {not_running}")
    return t2 - t0, t2 - t1, task


class RawTask:
    """The same containers (the plan's exact create bodies and names) made with the bare docker SDK."""

    def __init__(self, ctx: Context, taskdef: dict[str, Any]) -> None:
        # Planning creates nothing on the engine: it only gives names and create bodies.
        self.plan = create_task(taskdef, OPTIONS, owner=ctx.owner).plan
        self.ctx = ctx
        self.api = ctx.api
        self.network_id: str | None = None
        self.ids: dict[str, str] = {}

    def body(self, plan: Any) -> dict[str, Any]:
        body = copy.deepcopy(dict(plan.create_body))
        body["Labels"] = self.ctx.label(dict(body.get("Labels") or {}))
        return body

    def create_network(self) -> None:
        if self.plan.network is not None and self.plan.network.owned_by_task:  # not Docker's default bridge
            self.network_id = self.api.create_network(
                self.plan.network.docker_name, driver="bridge", labels=self.ctx.label(dict(self.plan.network.labels))
            )["Id"]

    def create(self, plan: Any) -> str:
        cid = str(self.api.create_container_from_config(self.body(plan), name=plan.docker_name)["Id"])
        self.ids[plan.name] = cid
        return cid

    def create_start(self, plan: Any) -> str:
        cid = self.create(plan)
        self.api.start(cid)
        return cid

    def start_sequential(self) -> None:
        self.create_network()
        for c in self.plan.containers:
            self.create_start(c)

    def start_concurrent(self) -> None:
        self.create_network()
        with ThreadPoolExecutor(max_workers=len(self.plan.containers)) as pool:
            list(pool.map(self.create_start, self.plan.containers))

    def start_cli(self) -> None:
        """``docker network create`` then one ``docker run -d`` per container, with the same env and labels."""

        def run(args: list[str]) -> None:
            subprocess.run(["docker", *args], check=True, capture_output=True)

        network = self.plan.network.docker_name if self.plan.network else None
        if network and self.plan.network and self.plan.network.owned_by_task:
            labels = self.ctx.label(dict(self.plan.network.labels))
            run(["network", "create", *[f"--label={k}={v}" for k, v in labels.items()], network])
        for c in self.plan.containers:
            body = self.body(c)
            args = ["run", "-d", f"--name={c.docker_name}"]
            if network:
                args += [f"--network={network}"]
            if network and self.plan.network and self.plan.network.owned_by_task:
                args += [f"--network-alias={c.name}"]
            args += [f"--env={e}" for e in body.get("Env") or []]
            args += [f"--label={k}={v}" for k, v in body["Labels"].items()]
            run([*args, body["Image"], *body["Cmd"]])

    def teardown_concurrent(self, stop_timeout: int = 2) -> None:
        """What a careful script does: stop + remove every container in a thread pool, then the network."""

        def stop_remove(cid: str) -> None:
            self.api.stop(cid, timeout=stop_timeout)
            self.api.remove_container(cid, v=True)

        ids = list(self.ids.values())
        with ThreadPoolExecutor(max_workers=len(ids)) as pool:
            list(pool.map(stop_remove, ids))
        if self.network_id:
            self.api.remove_network(self.network_id)
        self.ids.clear()
        self.network_id = None

    def remove(self) -> None:
        """Untimed cleanup of whatever this raw task made (found by its task label: the CLI's too)."""
        remove_resources(self.api, list_resources(self.api, f"{LABEL_TASK}={self.plan.task_id}"))
        self.ids.clear()
        self.network_id = None


# -- scenario: start an 8-container task, and tear it down --------------------------------------------------------


def start_and_teardown(ctx: Context, n: int = 8) -> list[Row]:
    taskdef = independent_task(ctx.image, n)
    variants = ["ours", "sequential", "concurrent", "cli"]
    samples: dict[str, list[float]] = {v: [] for v in variants}
    samples["ours_start_only"] = []
    samples["ours_teardown"] = []
    samples["raw_teardown"] = []
    timelines = []

    def one(variant: str, record: bool) -> None:
        if variant == "ours":
            total, start_only, task = ours_start(ctx, taskdef)
            closed, _ = timed(task.close)
            if record:
                samples["ours"].append(total)
                samples["ours_start_only"].append(start_only)
                samples["ours_teardown"].append(closed)
                timelines.append([(e.at, e.container, e.what) for e in task.timeline])
            return
        raw = RawTask(ctx, taskdef)
        try:
            if variant == "sequential":
                took, _ = timed(raw.start_sequential)
            elif variant == "concurrent":
                took, _ = timed(raw.start_concurrent)
            else:
                took, _ = timed(raw.start_cli)
            if variant == "concurrent":
                down, _ = timed(raw.teardown_concurrent)
                if record:
                    samples["raw_teardown"].append(down)
            if record:
                samples[variant].append(took)
        finally:
            raw.remove()

    for variant in variants:  # warm-up: the endpoint server, image checks, imports, engine caches
        attempt(ctx, f"start {variant}", partial(one, variant, record=False))
    for rep in range(ctx.repeat):
        for variant in rotated(variants, rep):
            attempt(ctx, f"start {variant}", partial(one, variant, record=True))
        ctx.log(
            f"  {n}-container start, rep {rep + 1}: ours {samples['ours'][-1]:.3f} s, sequential "
            f"{samples['sequential'][-1]:.3f} s, concurrent {samples['concurrent'][-1]:.3f} s, "
            f"cli {samples['cli'][-1]:.3f} s; teardown ours {samples['ours_teardown'][-1]:.3f} s, "
            f"raw {samples['raw_teardown'][-1]:.3f} s"
        )
    ours = median(samples["ours"])
    all_samples = {**samples, "ours_timelines": timelines[:2]}
    note = (
        "ours = create_task() + start(); baselines create the task's network and the same 8 containers "
        "(identical create bodies) with the docker SDK"
    )
    return [
        Row(
            f"start {n} containers: ours / SDK one by one",
            ours,
            median(samples["sequential"]),
            unit="s",
            kind="ratio",
            target=0.7,
            samples=all_samples,
            note=note,
        ),
        Row(
            f"start {n} containers: ours / SDK thread pool",
            ours,
            median(samples["concurrent"]),
            unit="s",
            kind="ratio",
            target=1.1,
        ),
        Row(f"start {n} containers: ours / docker run -d loop (CLI)", ours, median(samples["cli"]), unit="s"),
        Row(
            f"start {n} containers: ours start() alone / SDK thread pool",
            median(samples["ours_start_only"]),
            median(samples["concurrent"]),
            unit="s",
            note="create_task() (planning) left out",
        ),
        Row(
            f"teardown {n} containers: close() / SDK stop+remove pool",
            median(samples["ours_teardown"]),
            median(samples["raw_teardown"]),
            unit="s",
            kind="ratio",
            target=1.3,
        ),
    ]


def start_one(ctx: Context) -> list[Row]:
    taskdef = independent_task(ctx.image, 1)
    variants = ["ours", "raw", "raw_default_bridge"]
    samples: dict[str, list[float]] = {v: [] for v in variants}

    def one(variant: str, record: bool) -> None:
        if variant == "ours":
            took, _, task = ours_start(ctx, taskdef)
            task.close()
        else:
            raw = RawTask(ctx, taskdef)
            try:
                if variant == "raw":
                    took, _ = timed(raw.start_sequential)
                else:
                    plan = raw.plan.containers[0]
                    body = raw.body(plan)
                    body.pop("NetworkingConfig", None)
                    body["HostConfig"] = {**body["HostConfig"], "NetworkMode": "default"}

                    def create_start() -> None:
                        raw.ids["c0"] = raw.api.create_container_from_config(body, name=plan.docker_name)["Id"]
                        raw.api.start(raw.ids["c0"])

                    took, _ = timed(create_start)
            finally:
                raw.remove()
        if record:
            samples[variant].append(took)

    for variant in variants:
        attempt(ctx, f"start1 {variant}", partial(one, variant, record=False))
    reps = ctx.repeat * 2  # cheap: twice the repetitions for a steadier median
    for rep in range(reps):
        for variant in rotated(variants, rep):
            attempt(ctx, f"start1 {variant}", partial(one, variant, record=True))
    ctx.log(
        f"  1-container start: ours {median(samples['ours']):.3f} s, raw {median(samples['raw']):.3f} s, "
        f"raw on the default bridge {median(samples['raw_default_bridge']):.3f} s ({reps} reps)"
    )
    return [
        Row(
            "start 1 container: ours / SDK network+create+start",
            median(samples["ours"]),
            median(samples["raw"]),
            unit="s",
            kind="ratio",
            target=1.15,
            samples=samples,
            note="baseline makes the same task network and container (the plan's create body)",
        ),
        Row(
            "start 1 container: ours / SDK create+start, default bridge",
            median(samples["ours"]),
            median(samples["raw_default_bridge"]),
            unit="s",
            note="baseline skips the task network that ours (bridge mode) creates",
        ),
    ]


# -- scenario: HEALTHY gating -----------------------------------------------------------------------------------


def _first_pass_end(info: dict[str, Any]) -> float:
    log = info["State"].get("Health", {}).get("Log") or []
    passing = [e for e in log if e.get("ExitCode") == 0]
    if not passing:
        raise RuntimeError(f"no passing health check in {log}")
    return docker_time(passing[0]["End"])


def _healthy_event_time(events: list[dict[str, Any]], container_id: str) -> float | None:
    for event in events:
        if event.get("id") == container_id and str(event.get("Action", "")).startswith("health_status: healthy"):
            return int(event["timeNano"]) / 1e9
    return None


def healthy_gate_ours(ctx: Context, mode: str) -> tuple[dict[str, float], Task]:
    """Start the HEALTHY-gated task with the plugin: its gate sample, and the task (still running: close it)."""
    taskdef = healthy_task(ctx.image, mode)
    recorder = EventRecorder(
        ctx.api,
        {
            "type": "container",
            "event": "health_status",
            "label": f"com.amazonaws.ecs.task-definition-family={taskdef['family']}",
        },
    )
    try:
        _, _, task = ours_start(ctx, taskdef)
    finally:
        events = recorder.stop(settle=0)
    try:
        return _gate_sample(ctx.api, str(task.containers["db"].id), str(task.containers["app"].id), events), task
    except BaseException:
        task.close()
        raise


def _gate_sample(api: Any, db_id: str, app_id: str, events: list[dict[str, Any]]) -> dict[str, float]:
    db, app = api.inspect_container(db_id), api.inspect_container(app_id)
    started = docker_time(app["State"]["StartedAt"])
    event = _healthy_event_time(events, db_id)
    return {
        "from_check_end_ms": (started - _first_pass_end(db)) * 1000,
        "from_event_ms": (started - event) * 1000 if event is not None else float("nan"),
    }


def healthy_gating(ctx: Context) -> list[Row]:
    modes = ["awsvpc", "bridge"]
    variants = [(mode, who) for mode in modes for who in ("ours", "raw")]
    samples: dict[str, list[dict[str, float]]] = {f"{m}/{w}": [] for m, w in variants}

    def ours(mode: str) -> dict[str, float]:
        sample, task = healthy_gate_ours(ctx, mode)
        task.close()
        return sample

    def raw(mode: str) -> dict[str, float]:
        """A minimal event-driven starter: start app on the health_status: healthy event of db."""
        r = RawTask(ctx, healthy_task(ctx.image, mode))
        try:
            r.create_network()
            if r.plan.pause is not None:
                r.create_start(r.plan.pause)
            db_id = r.create(r.plan.container("db"))
            app_id = r.create(r.plan.container("app"))
            events = ctx.api.events(filters={"type": "container", "container": db_id}, decode=True)
            watchdog = threading.Timer(60, events.close)
            watchdog.start()
            seen = []
            try:
                ctx.api.start(db_id)
                for event in events:
                    if str(event.get("Action", "")).startswith("health_status: healthy"):
                        ctx.api.start(app_id)
                        seen.append(event)
                        break
            finally:
                watchdog.cancel()
                events.close()
            return _gate_sample(ctx.api, db_id, app_id, seen)
        finally:
            r.remove()

    reps = min(ctx.repeat, 4)  # each sample waits out the 5 s health interval
    for rep in range(reps):
        for mode, who in rotated(variants, rep):
            sample = attempt(ctx, f"healthy {mode}/{who}", partial(ours if who == "ours" else raw, mode))
            samples[f"{mode}/{who}"].append(sample)
        ctx.log(
            "  HEALTHY gating, rep {}: {}".format(
                rep + 1, ", ".join(f"{k} {v[-1]['from_check_end_ms']:.0f} ms" for k, v in samples.items())
            )
        )

    def med(key: str, metric: str = "from_check_end_ms") -> float | None:
        return median([s[metric] for s in samples[key]])

    note = (
        f"{reps} samples per variant (each waits out the 5 s health interval); dependent's StartedAt "
        "minus the End of the dependency's first passing health check; baseline = bare SDK starting the "
        "dependent on the health_status event"
    )
    return [
        Row(
            "HEALTHY gate, awsvpc: health check end -> dependent StartedAt",
            med("awsvpc/ours"),
            med("awsvpc/raw"),
            unit="ms",
            kind="max",
            target=100,
            samples=samples,
            note=note,
        ),
        Row(
            "HEALTHY gate, bridge: health check end -> dependent StartedAt",
            med("bridge/ours"),
            med("bridge/raw"),
            unit="ms",
            kind="max",
            target=100,
        ),
        Row(
            "HEALTHY gate, awsvpc: health_status event -> StartedAt",
            med("awsvpc/ours", "from_event_ms"),
            med("awsvpc/raw", "from_event_ms"),
            unit="ms",
        ),
        Row(
            "HEALTHY gate, bridge: health_status event -> StartedAt",
            med("bridge/ours", "from_event_ms"),
            med("bridge/raw", "from_event_ms"),
            unit="ms",
        ),
    ]


# -- scenario: teardown is measured with the 8-container start above; the sweep ----------------------------------


def _dead_pid() -> int:
    """The pid of a process that has exited: the owner label of a dead run."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


ORPHAN_SUBNETS = "10.213"  # 10.213.N.0/24 for orphaned task N (at most 256 tasks)


def make_orphans(ctx: Context, containers: int, per_task: int = 8, per_session: int = 40, networks: bool = True) -> str:
    """What SIGKILLed runs of this host leave: labelled containers, one network (bridge mode) and one volume
    per task, ``per_task`` containers a task, ``per_session`` containers a dead run.

    The containers are created, not started (starting 200 would take longer than the whole benchmark; both
    sides pay the same for a running one). Their lease files do not exist and their owner pid is dead.
    """
    from docker.types import IPAMConfig, IPAMPool

    api = ctx.api
    batch = secrets.token_hex(4)
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    created = now_rfc3339()
    tasks = []
    for t in range(-(-containers // per_task)):
        if t % max(1, per_session // per_task) == 0:
            session = new_session_id()
            owner = Owner(session, host_id(), str(lease_dir() / f"{session}.lease"))
        tasks.append((owner, new_task_id(), min(per_task, containers - t * per_task)))

    def labels(owner: Owner, task_id: str, role: str) -> dict[str, str]:
        out = resource_labels(owner, task_id, role, created)
        out[LABEL_OWNER] = dead
        return ctx.label({**out, "pytest-ecstask-bench.batch": batch})

    def make_task(index_item: tuple[int, tuple[Owner, str, int]]) -> None:
        index, (owner, task_id, n) = index_item
        short = task_id[:12]
        network = f"ecs-orphan-{short}"
        volume = f"ecs-orphan-data-{short}"
        if networks:
            # Subnets of our own: Docker's default pools hold only ~30 bridge networks on an engine.
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=f"{ORPHAN_SUBNETS}.{index}.0/24")])
            api.create_network(network, driver="bridge", ipam=ipam, labels=labels(owner, task_id, "task"))
        api.create_volume(volume, labels=labels(owner, task_id, "task"))
        for i in range(n):
            api.create_container(
                ctx.image,
                service(),
                name=f"ecs-orphan-c{i}-{short}",
                labels=labels(owner, task_id, "container"),
                host_config=api.create_host_config(
                    network_mode=network if networks else "none", binds=[f"{volume}:/data"]
                ),
                networking_config=api.create_networking_config({network: api.create_endpoint_config(aliases=[f"c{i}"])})
                if networks
                else None,
            )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(make_task, enumerate(tasks)))
    return batch


def sweep_orphans(ctx: Context) -> list[Row]:
    n = 40 if ctx.quick else 200
    per_task = 8
    variants = [(who, nets) for nets in (True, False) for who in ("ours", "sequential")]
    samples: dict[str, list[float]] = {f"{w}{'' if nets else ' (no networks)'}": [] for w, nets in variants}
    phases: dict[str, list[float]] = {"containers": [], "networks": [], "volumes": []}
    removed: list[int] = []
    others_failed: list[str] = []

    def one(variant: str, networks: bool) -> None:
        key = f"{variant}{'' if networks else ' (no networks)'}"
        took_setup, batch = timed(lambda: make_orphans(ctx, n, per_task=per_task, networks=networks))
        mine = f"pytest-ecstask-bench.batch={batch}"
        made = by_kind(list_resources(ctx.api, mine))
        if variant == "ours":
            took, report = timed(lambda: sweep(ctx.api, force=True))
            removed.append(len(report.chosen) - len(report.failed))
            ours_failed = [
                (r.name, why) for r, why in report.failed if r.labels.get("pytest-ecstask-bench.batch") == batch
            ]
            if ours_failed:
                raise RuntimeError(f"sweep failed to remove: {ours_failed[:3]}")
            # Another dead run's resource the engine will not remove (a network with a stale endpoint...).
            others_failed.extend(f"{r.kind} {r.name}: {why}" for r, why in report.failed)
        else:

            def sequential() -> None:
                found = by_kind(list_resources(ctx.api, mine))  # one listing call per resource type, like the sweep
                marks = [time.perf_counter()]
                for cid in found["containers"]:
                    ctx.api.remove_container(cid, force=True, v=True)
                marks.append(time.perf_counter())
                for nid in found["networks"]:
                    ctx.api.remove_network(nid)
                marks.append(time.perf_counter())
                for name in found["volumes"]:
                    ctx.api.remove_volume(name, force=True)
                marks.append(time.perf_counter())
                if networks:
                    for phase, a, b in zip(phases, marks, marks[1:], strict=False):
                        phases[phase].append(b - a)

            took, _ = timed(sequential)
        left = list_resources(ctx.api, mine)
        if left:
            remove_resources(ctx.api, left)
            raise RuntimeError(f"{key}: {len(left)} orphans were left")
        samples[key].append(took)
        ctx.log(
            f"  sweep of {len(made['containers'])} containers + {len(made['networks'])} networks + "
            f"{len(made['volumes'])} volumes, {variant}: {took:.3f} s (setup {took_setup:.1f} s)"
        )

    for rep in range(ctx.repeat):
        for variant, networks in rotated(variants, rep):
            attempt(ctx, f"sweep {variant}", partial(one, variant, networks))
    tasks = -(-n // per_task)
    seq_phases = {k: median(v) for k, v in phases.items()}
    return [
        Row(
            f"sweep {n} orphaned containers + {tasks} networks + {tasks} volumes: sweep() / SDK sequential loop",
            median(samples["ours"]),
            median(samples["sequential"]),
            unit="s",
            kind="ratio",
            target=0.5,
            samples={
                **samples,
                "sweep_removed": removed,
                "sequential_phase_medians_s": seq_phases,
                "sweep_failed_on_other_runs_leftovers": sorted(set(others_failed)),
            },
            note=f"orphans: {tasks} killed 8-container bridge tasks of {n // 40 or 1} dead runs, created (not "
            "started) with this host's host_id(), a missing lease file and a dead owner pid; sweep(api, "
            "force=True) also reaps any other dead run's leftovers; sequential phases (median): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in seq_phases.items() if v is not None),
        ),
        Row(
            f"sweep {n} orphaned containers + {tasks} volumes, no networks: sweep() / SDK sequential loop",
            median(samples["ours (no networks)"]),
            median(samples["sequential (no networks)"]),
            unit="s",
            note="the same without task networks: what the sweep's own parallel removal gains",
        ),
    ]


# -- scenario: the metadata and credentials endpoints ---------------------------------------------------------


LOOP = """\
i=0
while [ $i -lt {n} ]; do
  echo S
  wget -q -O /dev/null {header} "{url}"
  echo "E $?"
  usleep {pause_us}
  i=$((i+1))
done | ts "%.s"
"""


def _in_container_latency(task: Task, url: str, header: str, rate: float, seconds: float) -> dict[str, Any]:
    """busybox wget in a loop inside the task's container; busybox ts stamps S/E lines (microseconds).

    The pause after each request is the period minus a typical request, so the rate is about ``rate``;
    the achieved rate is reported. ``timeout`` bounds the loop.
    """
    n = int(rate * seconds)
    pause_us = max(0, int(1e6 / rate) - 3000)
    script = LOOP.format(n=n, header=header, url=url, pause_us=pause_us)
    result = task.containers["app"].exec(["timeout", "-s", "KILL", str(int(seconds * 4 + 30)), "sh", "-c", script])
    lines = [line.split() for line in result.output.splitlines() if line.strip()]
    latencies, failures, started = [], 0, None
    stamps = []
    for parts in lines:
        if len(parts) >= 2 and parts[1] == "S":
            started = float(parts[0])
            stamps.append(started)
        elif len(parts) >= 3 and parts[1] == "E" and started is not None:
            if parts[2] == "0":
                latencies.append((float(parts[0]) - started) * 1000)
            else:
                failures += 1
            started = None
    span = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return {
        "latencies_ms": latencies,
        "failures": failures,
        "requests": len(stamps),
        "rate_per_s": (len(stamps) - 1) / span if span else None,
    }


def _host_latency(url: str, headers: dict[str, str], rate: float, seconds: float) -> dict[str, Any]:
    """From the host against 169.254.170.2: a new connection per request (as the SDKs' credential fetchers do)."""
    parts = urlsplit(url)
    n = int(rate * seconds)
    latencies, failures = [], 0
    next_at = time.perf_counter()
    begun = next_at
    for _ in range(n):
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        next_at += 1 / rate
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection(parts.hostname or "localhost", parts.port or 80, timeout=5)
        try:
            conn.request("GET", parts.path or "/", headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except OSError:
            ok = False
        finally:
            conn.close()
        if ok:
            latencies.append((time.perf_counter() - t0) * 1000)
        else:
            failures += 1
    return {
        "latencies_ms": latencies,
        "failures": failures,
        "requests": n,
        "rate_per_s": n / (time.perf_counter() - begun),
    }


FLOOR_SERVER = """\
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        data = json.dumps({"ok": True}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
s = ThreadingHTTPServer(("127.0.0.1", 0), H); s.daemon_threads = True
print(s.server_address[1], flush=True); s.serve_forever()
"""


def endpoints_latency(ctx: Context) -> list[Row]:
    rate = 50.0
    seconds = 3.0 if ctx.quick else 10.0
    host_seconds = 2.0 if ctx.quick else 5.0
    _, _, task = ours_start(ctx, endpoints_task(ctx.image))
    results: dict[str, dict[str, Any]] = {}
    floor = None
    try:
        if task.metadata_uri is None or task.credentials_uri is None:
            raise RuntimeError("the endpoints are off on this engine: nothing to measure")
        env = dict(e.split("=", 1) for e in task.containers["app"].inspect()["Config"]["Env"])
        token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", "")
        auth = '--header "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN"'
        inside = {
            "metadata v4 container": ("$ECS_CONTAINER_METADATA_URI_V4", ""),
            "metadata v4 task": ("$ECS_CONTAINER_METADATA_URI_V4/task", ""),
            "credentials": ("$AWS_CONTAINER_CREDENTIALS_FULL_URI", auth),
            "floor: busybox httpd on loopback": ("http://127.0.0.1:8080/x", ""),
        }
        # A short warm-up so first-connection costs (ARP, the server's threads) are not in the samples.
        _in_container_latency(task, "$ECS_CONTAINER_METADATA_URI_V4", "", rate, 0.4)
        for name, (url, header) in inside.items():
            results[f"in container: {name}"] = _in_container_latency(task, url, header, rate, seconds)
            ctx.log(f"  endpoint in container, {name}: {_summary(results[f'in container: {name}'])}")
        floor = subprocess.Popen([sys.executable, "-c", FLOOR_SERVER], stdout=subprocess.PIPE, text=True)
        floor_port = int(floor.stdout.readline())  # type: ignore[union-attr]
        on_host = {
            "metadata v4 container": (str(task.metadata_uri), {}),
            "metadata v4 task": (f"{task.metadata_uri}/task", {}),
            "credentials": (str(task.credentials_uri), {"Authorization": token}),
            "floor: stdlib HTTP server on loopback": (f"http://127.0.0.1:{floor_port}/", {}),
        }
        _host_latency(str(task.metadata_uri), {}, rate, 0.4)
        for name, (url, headers) in on_host.items():
            results[f"host: {name}"] = _host_latency(url, headers, rate, host_seconds)
            ctx.log(f"  endpoint from host, {name}: {_summary(results[f'host: {name}'])}")
    finally:
        if floor is not None:
            floor.terminate()
            floor.wait()
        task.close()

    def stat(key: str, p: float) -> float | None:
        return percentile(results[key]["latencies_ms"], p)

    rows = []
    floor_in = "in container: floor: busybox httpd on loopback"
    floor_host = "host: floor: stdlib HTTP server on loopback"
    for name in ("metadata v4 container", "metadata v4 task", "credentials"):
        key = f"in container: {name}"
        rows.append(Row(f"{name} GET from a container (wget), p50", stat(key, 50), stat(floor_in, 50), unit="ms"))
        rows.append(
            Row(
                f"{name} GET from a container (wget), p99",
                stat(key, 99),
                stat(floor_in, 99),
                unit="ms",
                kind="max",
                target=10,
            )
        )
    for name in ("metadata v4 container", "metadata v4 task", "credentials"):
        key = f"host: {name}"
        rows.append(Row(f"{name} GET from the host, p50", stat(key, 50), stat(floor_host, 50), unit="ms"))
        rows.append(
            Row(f"{name} GET from the host, p99", stat(key, 99), stat(floor_host, 99), unit="ms", kind="max", target=10)
        )
    rows[0].samples = {k: {**v, "latencies_ms": [round(x, 3) for x in v["latencies_ms"]]} for k, v in results.items()}
    rows[0].note = (
        f"{rate:g} requests/s for {seconds:g} s per endpoint from inside the task's container "
        f"(busybox wget, timed by busybox ts), {host_seconds:g} s from the host (http.client, new "
        "connection per request, the task's token); baseline = a static server on loopback, the "
        "floor of the same method"
    )
    return rows


def _summary(result: dict[str, Any]) -> str:
    lat = result["latencies_ms"]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    rate = result.get("rate_per_s")
    return (
        f"{len(lat)} ok, {result['failures']} failed, p50 {p50 or 0:.1f} ms, p99 {p99 or 0:.1f} ms, "
        f"max {max(lat) if lat else 0:.1f} ms, {rate or 0:.0f}/s"
    )
