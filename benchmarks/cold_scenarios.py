"""Cold start: a fresh pytest process whose first test needs a session task of 8 independent containers.

Ours is ``pytest --ecs-taskdef=...`` with a test asking for ``ecs_task``; the baselines are the same pytest
run without the plugin, with a session fixture that makes the same containers with the bare docker SDK (one
by one, and with a thread pool of 8). Each run is a fresh ``python -m pytest`` in a generated project, with a
small timing plugin (``ecstask_bench_timing``) that writes, on the monotonic clock:

- setup: from the start of ``pytest_sessionstart`` to the end of the first test's setup phase: whatever the
  plugin does at session start, collection, engine connection, first-use sweep, endpoint server, task;
- teardown: from the end of the last test's call phase to the start of ``pytest_unconfigure``: fixture
  teardown and the plugin's session finish (stopping and removing everything).

The containers are those of the task's own plan (``create_task(...).plan``, which creates nothing), so the
baselines make exactly the containers ours makes, just without the plugin.
"""

from __future__ import annotations

import json
import re
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from pytest_scenarios import _check, pytest_env, run_pytest
from support import BENCH_LABEL, Row, attempt, median, rotated

CONTAINERS = 8
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]

TIMING_PLUGIN = """\
import json, os, time

_t = {}


def pytest_sessionstart(session):
    _t["session_start"] = time.monotonic()


def pytest_runtest_logreport(report):
    now = time.monotonic()
    if report.when == "setup" and "setup_end" not in _t:
        _t["setup_end"] = now
    if report.when == "call":
        _t["call_end"] = now


def pytest_unconfigure(config):
    _t["unconfigure"] = time.monotonic()
    if "call_end" not in _t:
        return  # the test did not run: pytest's own output says why
    with open(os.environ["ECSTASK_BENCH_TIMING"], "w") as f:
        json.dump({"setup": _t["setup_end"] - _t["session_start"], "teardown": _t["unconfigure"] - _t["call_end"]}, f)
"""

# The baselines: the task's create bodies, made with the bare SDK by a session fixture.
SDK_CONFTEST = """\
import json, os
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest


@pytest.fixture(scope="session")
def sdk_task():
    api = docker.from_env().api
    spec = json.load(open("../bodies.json"))
    label = {spec["label"]: spec["run"]}
    names = [f"{name}-{spec['run']}-{os.getpid()}" for name in spec["names"]]

    def create_and_start(item):
        body, name = item
        body = dict(body, Labels={**body.get("Labels", {}), **label})
        cid = api.create_container_from_config(body, name=name)["Id"]
        api.start(cid)
        return cid

    def stop_and_remove(cid):
        api.stop(cid, timeout=2)
        api.remove_container(cid, v=True, force=True)

    items = list(zip(spec["bodies"], names))
    if os.environ["ECSTASK_BENCH_VARIANT"] == "pool":
        with ThreadPoolExecutor(len(items)) as pool:
            ids = list(pool.map(create_and_start, items))
    else:
        ids = [create_and_start(item) for item in items]
    yield ids
    with ThreadPoolExecutor(len(ids)) as pool:
        list(pool.map(stop_and_remove, ids))
"""


def taskdef(image: str) -> dict[str, Any]:
    return {
        "family": "cold",
        "networkMode": "bridge",
        "containerDefinitions": [
            {"name": f"c{i}", "image": image, "command": COMMAND, "memory": 32, "essential": i == 0}
            for i in range(CONTAINERS)
        ],
    }


def write_projects(folder: Path, image: str, owner: Any, run_id: str, more_tests: int = 0) -> None:
    """The task definition, the timing plugin, and two pytest projects in ``folder``: ``ours`` (the plugin's
    session task) and ``sdk`` (the same containers, from the task's own plan, made by the bare SDK).
    ``more_tests``: trivial tests more in each, collected before and run after the task's test."""
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.task import create_task

    (folder / "taskdef.json").write_text(json.dumps(taskdef(image)))
    plan = create_task(taskdef(image), TaskOptions(pull="never", endpoints=False), owner=owner).plan
    bodies = [dict(c.create_body) for c in plan.containers]
    names = [c.docker_name for c in plan.containers]
    (folder / "bodies.json").write_text(
        json.dumps({"bodies": bodies, "names": names, "label": BENCH_LABEL, "run": run_id})
    )
    (folder / "ecstask_bench_timing.py").write_text(TIMING_PLUGIN)
    ours = folder / "ours"
    ours.mkdir()
    (ours / "pytest.ini").write_text("[pytest]\necs_pull = never\necs_stop_timeout = 2\n")
    (ours / "test_cold.py").write_text("def test_cold(ecs_task):\n    assert ecs_task.status == 'RUNNING'\n")
    sdk = folder / "sdk"
    sdk.mkdir()
    (sdk / "pytest.ini").write_text("[pytest]\n")
    (sdk / "conftest.py").write_text(SDK_CONFTEST)
    (sdk / "test_cold.py").write_text(f"def test_cold(sdk_task):\n    assert len(sdk_task) == {CONTAINERS}\n")
    if more_tests:
        more = "".join(f"def test_more_{i}():\n    pass\n\n" for i in range(more_tests))
        for project in (ours, sdk):
            (project / "test_z_more.py").write_text(more)  # after test_cold.py: the task's test runs first


def cold_start(ctx: Any) -> list[Row]:

    variants = ("ours", "sdk one by one", "sdk pool")
    samples: dict[str, dict[str, list[float]]] = {v: {"setup": [], "teardown": [], "process": []} for v in variants}
    with tempfile.TemporaryDirectory(prefix="ecstask-bench-cold-") as tmp:
        folder = Path(tmp)
        write_projects(folder, ctx.image, ctx.owner, ctx.run_id)
        ours, sdk = folder / "ours", folder / "sdk"
        timing = folder / "timing.json"

        def one(variant: str) -> dict[str, float]:
            if variant == "ours":
                args = ["-p", "ecstask_bench_timing", "-p", "no:cacheprovider", "--ecs-taskdef", "../taskdef.json"]
                cwd, extra = ours, {}
            else:
                args = ["-p", "ecstask_bench_timing", "-p", "no:cacheprovider", "-p", "no:ecstask"]
                cwd, extra = sdk, {"ECSTASK_BENCH_VARIANT": "pool" if variant == "sdk pool" else "serial"}
            env = pytest_env(True, ECSTASK_BENCH_TIMING=str(timing), **extra)
            env["PYTHONPATH"] = f"{folder}:{env['PYTHONPATH']}"
            took, result = run_pytest(cwd, args, env)
            ctx.sessions.update(re.findall(r"ecstask: session ([0-9a-f]+)", result.stdout))  # for the final check
            _check(result, f"cold start, {variant}")
            if not timing.exists():
                raise RuntimeError(f"cold start, {variant}: no timing written:\n{result.stdout[-2000:]}")
            timing_data = json.loads(timing.read_text())
            timing.unlink()
            return {**timing_data, "process": took}

        for variant in variants:  # warm-up: bytecode caches, the image's layers in the page cache
            one(variant)
        for rep in range(ctx.repeat):
            for variant in rotated(list(variants), rep):
                measured = attempt(ctx, f"cold {variant}", partial(one, variant))
                for phase in ("setup", "teardown", "process"):
                    samples[variant][phase].append(measured[phase])
    ctx.log("  cold setup medians: " + ", ".join(f"{v} {median(samples[v]['setup']):.3f} s" for v in variants))
    ctx.log("  cold teardown medians: " + ", ".join(f"{v} {median(samples[v]['teardown']):.3f} s" for v in variants))
    ours_setup, ours_teardown = median(samples["ours"]["setup"]), median(samples["ours"]["teardown"])
    return [
        Row(
            "cold: first task, setup vs SDK pool",
            ours_setup,
            median(samples["sdk pool"]["setup"]),
            unit="s",
            kind="ratio",
            target=1.1,
            samples=samples,
        ),
        Row(
            "cold: first task, setup vs SDK one by one",
            ours_setup,
            median(samples["sdk one by one"]["setup"]),
            unit="s",
            kind="ratio",
            target=0.7,
        ),
        Row(
            "cold: first task, teardown vs SDK pool",
            ours_teardown,
            median(samples["sdk pool"]["teardown"]),
            unit="s",
            kind="ratio",
            target=1.2,
        ),
        Row(
            "cold: the whole pytest process (wall clock) vs SDK pool",
            median(samples["ours"]["process"]),
            median(samples["sdk pool"]["process"]),
            unit="s",
            note="interpreter start to exit: also what each does before pytest's session starts (ours opens "
            "its Docker connection from pytest_configure; the baseline imports the docker SDK with its conftest)",
        ),
    ]


# The baseline of a run that adopts a kept task: the same test, without the plugin, whose session fixture
# finds the kept task's containers with the bare SDK and inspects them, concurrently: the least a fixture that
# takes up running containers does. Its conftest imports the SDK, as the cold baselines' do.
REUSE_CONFTEST = """\
import os
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest


class Task:
    status = "RUNNING"


@pytest.fixture(scope="session")
def ecs_task():
    api = docker.from_env().api
    found = api.containers(filters={"label": os.environ["ECSTASK_BENCH_KEPT"]})
    assert found, "the kept task's containers are gone"
    with ThreadPoolExecutor(len(found)) as pool:
        states = list(pool.map(api.inspect_container, [c["Id"] for c in found]))
    assert len(states) == int(os.environ["ECSTASK_BENCH_CONTAINERS"])
    assert all(s["State"]["Running"] for s in states)
    return Task()
"""


def reused_start(ctx: Any) -> list[Row]:
    """--ecs-reuse: the setup of the session task in a run that adopts the task the run before it kept, and
    the whole process against a run without the plugin that inspects the same containers (REUSE_CONFTEST)."""
    import subprocess
    import sys

    from pytest_ecstask.lifecycle import LABEL_TASK

    variants = ("ours", "sdk inspect")
    samples: dict[str, dict[str, list[float]]] = {v: {"setup": [], "teardown": [], "process": []} for v in variants}
    with tempfile.TemporaryDirectory(prefix="ecstask-bench-reuse-") as tmp:
        folder = Path(tmp)
        ours, sdk = folder / "ours", folder / "sdk"
        for project in (ours, sdk):
            project.mkdir()
            (project / "test_cold.py").write_text("def test_cold(ecs_task):\n    assert ecs_task.status == 'RUNNING'\n")
        (ours / "taskdef.json").write_text(json.dumps(taskdef(ctx.image)))
        (ours / "pytest.ini").write_text("[pytest]\necs_pull = never\necs_stop_timeout = 2\n")
        (sdk / "pytest.ini").write_text("[pytest]\n")
        (sdk / "conftest.py").write_text(REUSE_CONFTEST)
        (folder / "ecstask_bench_timing.py").write_text(TIMING_PLUGIN)
        timing = folder / "timing.json"
        common = ["-p", "ecstask_bench_timing", "-p", "no:cacheprovider"]
        args = {
            "ours": [*common, "--ecs-taskdef", "taskdef.json", "--ecs-reuse"],
            "sdk inspect": [*common, "-p", "no:ecstask"],
        }
        env = pytest_env(True, ECSTASK_BENCH_TIMING=str(timing), ECSTASK_BENCH_CONTAINERS=str(CONTAINERS))
        env["PYTHONPATH"] = f"{folder}:{env['PYTHONPATH']}"

        def keeps(result: Any) -> None:
            """The baseline inspects the task this run kept (another suite's sweep may have replaced it)."""
            kept = re.search(r"reuse: task \S+ ([0-9a-f]+) kept for the next run", result.stdout)
            if kept is None:
                raise RuntimeError(f"reuse: no task was kept:\n{result.stdout[-2000:]}")
            env["ECSTASK_BENCH_KEPT"] = f"{LABEL_TASK}={kept.group(1)}"

        def one(variant: str) -> dict[str, float]:
            took, result = run_pytest(ours if variant == "ours" else sdk, args[variant], env)
            ctx.sessions.update(re.findall(r"ecstask: session ([0-9a-f]+)", result.stdout))
            _check(result, f"reuse, {variant}")
            if variant == "ours":
                keeps(result)
                if "reuse: adopted task" not in result.stdout:
                    raise RuntimeError(f"reuse: the task was not adopted:\n{result.stdout[-2000:]}")
            return {**json.loads(timing.read_text()), "process": took}

        try:
            first = run_pytest(ours, args["ours"], env)[1]
            _check(first, "reuse, the run that keeps the task")
            keeps(first)
            for variant in variants:  # warm-up
                one(variant)
            for rep in range(ctx.repeat * 2):
                for variant in rotated(list(variants), rep):
                    measured = attempt(ctx, f"reuse {variant}", partial(one, variant))
                    for phase in ("setup", "teardown", "process"):
                        samples[variant][phase].append(measured[phase])
        finally:
            subprocess.run(
                [sys.executable, "-m", "pytest", "--ecs-sweep-orphans", "--ecs-include-kept"],
                cwd=ours,
                env=env,
                capture_output=True,
                timeout=300,
            )
    adopted, baseline = samples["ours"], samples["sdk inspect"]
    ctx.log(
        f"  adopted: setup {median(adopted['setup']):.3f} s, teardown {median(adopted['teardown']):.3f} s, "
        f"process {median(adopted['process']):.3f} s; SDK inspect: setup {median(baseline['setup']):.3f} s, "
        f"process {median(baseline['process']):.3f} s"
    )
    return [
        Row(
            "reuse: the next run adopts the kept task (8 containers), setup",
            median(adopted["setup"]),
            None,
            unit="s",
            kind="max",
            target=0.1,
            samples=samples,
        ),
        Row("reuse: the same run, teardown (the task kept)", median(adopted["teardown"]), None, unit="s"),
        Row(
            "reuse: the whole pytest process (wall clock) vs SDK inspect of the kept containers",
            median(adopted["process"]),
            median(baseline["process"]),
            unit="s",
            note="the baseline imports the docker SDK in its conftest and inspects the kept containers from a "
            "session fixture; ours also imports testcontainers, checks and plans the task, checks its images, "
            "takes up its endpoint server, sweeps, and at the end records the task kept again",
        ),
    ]
