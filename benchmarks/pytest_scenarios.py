"""Scenarios that run pytest itself: the plugin installed but unused, and xdist sharing one session task.

Each run is a fresh ``python -m pytest`` in a generated project under a temporary folder, with this checkout
first on PYTHONPATH (so the plugin under test is the one loaded through the ``pytest11`` entry point).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from support import ROOT, EventRecorder, Row, attempt, by_kind, median, rotated

from pytest_ecstask.lifecycle import LABEL_ROLE, LABEL_SESSION, LABEL_TASK, ROLE_SENTINEL, new_session_id
from pytest_ecstask.runtime import list_resources, remove_resources
from pytest_ecstask.testing import service

_pycache: tempfile.TemporaryDirectory[str] | None = None


def pytest_env(bytecode_cache: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a pytest run: this checkout first on the path; bytecode cached (as it is for an
    installed plugin) under a temporary PYTHONPYCACHEPREFIX, so nothing is written into the checkout."""
    global _pycache
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH", "")])])
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_ECSTASK_SESSION", None)
    if bytecode_cache:
        if _pycache is None:
            _pycache = tempfile.TemporaryDirectory(prefix="ecstask-bench-pycache-")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = _pycache.name
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    env.update(extra)
    return env


def run_pytest(folder: Path, args: list[str], env: dict[str, str], timeout: float = 600) -> tuple[float, Any]:
    took, _, result = run_pytest_timed(folder, args, env, timeout)
    return took, result


def run_pytest_timed(
    folder: Path, args: list[str], env: dict[str, str], timeout: float = 600
) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of the process and its children, result) of one pytest run. The CPU time
    is what waited-for children used (``RUSAGE_CHILDREN``): none other ends meanwhile in these scenarios."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
    )
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu, result


def _check(result: Any, what: str) -> None:
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise RuntimeError(f"{what}: pytest exited {result.returncode}:\n{tail}")


def write_trivial_suite(folder: Path, tests: int, per_file: int = 100) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    for f in range(-(-tests // per_file)):
        count = min(per_file, tests - f * per_file)
        body = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(count))
        (folder / f"test_trivial_{f:03d}.py").write_text(body)


# -- scenario: installed but unused ---------------------------------------------------------------------------


class RecordingSocket:
    """A unix socket standing in for the Docker engine: it records every connection and answers nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connections = 0
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()


MODULES_PROBE = """\
import json, sys
def pytest_sessionfinish(session):
    with open("modules.json", "w") as f:
        json.dump({m: m in sys.modules for m in ("docker", "testcontainers", "pytest_ecstask.task",
                                                 "pytest_ecstask.runtime", "pytest_ecstask.plugin")}, f)
"""


def unused_plugin(ctx: Any) -> list[Row]:
    tests = 2000
    reps = ctx.repeat * 3  # a difference of tens of ms on a loaded machine: three times the repetitions
    with_args, without_args = ["--collect-only", "-q"], ["--collect-only", "-q", "-p", "no:ecstask"]
    variants = {
        "with plugin": (with_args, True),
        "-p no:ecstask": (without_args, True),
        "with plugin, no bytecode cache": (with_args, False),
        "-p no:ecstask, no bytecode cache": (without_args, False),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="ecstask-bench-unused-") as tmp:
        folder = Path(tmp) / "suite"
        write_trivial_suite(folder, tests)
        for args, cached in variants.values():  # warm-up: bytecode caches, the OS's file cache
            _check(run_pytest(folder, args, pytest_env(cached))[1], "collect-only warm-up")
        for rep in range(reps):
            for name in rotated(list(variants), rep):
                args, cached = variants[name]
                took, used, result = run_pytest_timed(folder, args, pytest_env(cached))
                _check(result, f"collect-only {name}")
                if f"{tests} tests collected" not in result.stdout:
                    raise RuntimeError(f"expected {tests} tests collected:\n{result.stdout[-500:]}")
                samples[name].append(took)
                cpu[name].append(used)
        ctx.log(
            "  collect-only of {} tests ({} reps): {}".format(
                tests, reps, ", ".join(f"{name} {median(v):.3f} s" for name, v in samples.items())
            )
        )
        proof = no_docker_connection(Path(tmp), pytest_env())
    ctx.log(f"  no Docker connection when unused: {proof['verdict']}")
    paired = sorted(a / b for a, b in zip(samples["with plugin"], samples["-p no:ecstask"], strict=False))
    samples["paired_ratio_median"] = [paired[len(paired) // 2]] if paired else []
    return [
        Row(
            f"plugin unused: pytest --collect-only of {tests} tests / -p no:ecstask",
            median(samples["with plugin"]),
            median(samples["-p no:ecstask"]),
            unit="s",
            kind="ratio",
            target=1.03,
            samples={**samples, "no_docker_connection": proof},
            note="fresh interpreter per run (wall time of the whole pytest process), bytecode cached as for an "
            f"installed plugin; median of per-repetition ratios {samples['paired_ratio_median'][0]:.3f}"
            if paired
            else "",
        ),
        Row(
            f"plugin unused: CPU time of pytest --collect-only of {tests} tests / -p no:ecstask",
            median(cpu["with plugin"]),
            median(cpu["-p no:ecstask"]),
            unit="s",
            samples={"cpu": cpu},
            note="user and system CPU seconds of the pytest process: what the plugin adds, without the wall "
            "clock's scheduling noise on a shared machine",
        ),
        Row(
            "plugin unused, PYTHONDONTWRITEBYTECODE=1 (this machine's env): collect-only / -p no:ecstask",
            median(samples["with plugin, no bytecode cache"]),
            median(samples["-p no:ecstask, no bytecode cache"]),
            unit="s",
            note="every run compiles the plugin's modules (and the test files) from source",
        ),
        Row(
            "plugin unused: Docker connections opened by a full run (recording socket)",
            float(proof["recording_socket"]["connections"]),
            None,
            unit="count",
            kind="equal",
            target=0,
            note=proof["verdict"],
        ),
    ]


def no_docker_connection(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run (not just collect) a suite that needs no task with DOCKER_HOST at a recording socket, then at a
    socket that does not exist: both must pass, say nothing about Docker, and the socket must see nothing."""
    folder = tmp / "proof"
    write_trivial_suite(folder, 200)
    (folder / "conftest.py").write_text(MODULES_PROBE)
    out: dict[str, Any] = {}
    recorder = RecordingSocket(tmp / "docker.sock")
    try:
        _, result = run_pytest(
            folder, ["-q", "-p", "no:cacheprovider"], {**env, "DOCKER_HOST": f"unix://{recorder.path}"}
        )
        time.sleep(0.3)  # a late connection attempt would still be counted
    finally:
        recorder.close()
    out["recording_socket"] = _proof_run(result, recorder.connections, folder)
    _, result = run_pytest(
        folder, ["-q", "-p", "no:cacheprovider"], {**env, "DOCKER_HOST": f"unix://{tmp}/no-such-dir/docker.sock"}
    )
    out["missing_socket"] = _proof_run(result, None, folder)
    good = all(r["passed"] and not r["complaints"] for r in out.values())
    good = good and out["recording_socket"]["connections"] == 0
    out["verdict"] = (
        "no connection, both runs passed, no Docker complaint" if good else "FAILED: see samples.no_docker_connection"
    )
    return out


def _proof_run(result: Any, connections: int | None, folder: Path) -> dict[str, Any]:
    text = result.stdout + result.stderr
    complaints = [
        line
        for line in text.splitlines()
        if any(w in line.lower() for w in ("docker", "warning", "error")) and "passed" not in line
    ]
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").exists() else {}
    return {
        "passed": result.returncode == 0 and "200 passed" in text,
        "connections": connections,
        "complaints": complaints[:10],
        "modules_imported": modules,
        "summary": text.strip().splitlines()[-1] if text.strip() else "",
    }


# -- scenario: xdist sharing one session task ---------------------------------------------------------------


CPU_SUITE = """\
import pytest

LOOPS = {loops}


def burn():
    total = 0
    for i in range(LOOPS):
        total += i * i
    return total


@pytest.mark.parametrize("n", range({tests}))
def test_cpu_bound(n, ecs_task):
    assert ecs_task.status == "RUNNING"
    burn()
"""


def calibrate_loops(seconds: float) -> int:
    loops = 200_000
    while True:
        t0 = time.perf_counter()
        total = 0
        for i in range(loops):
            total += i * i
        took = time.perf_counter() - t0
        if took > 0.05:
            return int(loops * seconds / took)
        loops *= 2


def _tasks_launched(events: list[dict[str, Any]]) -> dict[str, Any]:
    tasks: set[str] = set()
    created = 0
    for event in events:
        attributes = event.get("Actor", {}).get("Attributes", {})
        if attributes.get(LABEL_ROLE) == ROLE_SENTINEL:
            continue  # the run's sentinel (labelled with a task id of its own) is no task
        created += 1
        task = attributes.get(LABEL_TASK)
        if task:
            tasks.add(task)
    return {"tasks": len(tasks), "containers_created": created}


def xdist_session_task(ctx: Any) -> list[Row]:
    tests = 16 if ctx.quick else 48
    per_test = 0.15
    loops = calibrate_loops(per_test)
    samples: dict[str, list[float]] = {"-n 4": [], "serial": []}
    launches: dict[str, list[dict[str, Any]]] = {"-n 4": [], "serial": []}
    taskdef = {
        "family": "benchxdist",
        "containerDefinitions": [
            {"name": "web", "image": ctx.image, "command": service(), "essential": True},
            {
                "name": "sidecar",
                "image": ctx.image,
                "command": service(),
                "essential": True,
                "dependsOn": [{"containerName": "web", "condition": "START"}],
            },
        ],
    }
    with tempfile.TemporaryDirectory(prefix="ecstask-bench-xdist-") as tmp:
        folder = Path(tmp)
        (folder / "pytest.ini").write_text("[pytest]\n")
        (folder / "taskdef.json").write_text(json.dumps(taskdef))
        (folder / "test_cpu.py").write_text(CPU_SUITE.format(loops=loops, tests=tests))
        common = [
            "-q",
            "-p",
            "no:cacheprovider",
            "--ecs-taskdef=taskdef.json",
            "--ecs-pull=never",
            "--ecs-stop-timeout=2",
        ]
        variants = {"-n 4": [*common, "-n", "4"], "serial": common}

        def one(name: str, record: bool) -> None:
            session = new_session_id()
            ctx.sessions.add(session)
            recorder = EventRecorder(
                ctx.api, {"type": "container", "event": "create", "label": f"{LABEL_SESSION}={session}"}
            )
            try:
                took, result = run_pytest(folder, variants[name], pytest_env(PYTEST_ECSTASK_SESSION=session))
            finally:
                events = recorder.stop()
            left = list_resources(ctx.api, f"{LABEL_SESSION}={session}")
            if left:
                remove_resources(ctx.api, left)
            _check(result, f"xdist scenario ({name})")
            if left:
                raise RuntimeError(f"{name}: the run left {by_kind(left)}")
            launched = _tasks_launched(events)
            if record:
                samples[name].append(took)
                launches[name].append(launched)

        for name in variants:
            attempt(ctx, f"xdist {name}", partial(one, name, record=False))
        for rep in range(ctx.repeat):
            for name in rotated(list(variants), rep):
                attempt(ctx, f"xdist {name}", partial(one, name, record=True))
            ctx.log(
                f"  xdist rep {rep + 1}: -n 4 {samples['-n 4'][-1]:.2f} s "
                f"({launches['-n 4'][-1]['tasks']} task), serial {samples['serial'][-1]:.2f} s "
                f"({launches['serial'][-1]['tasks']} task)"
            )
    counts = [x["tasks"] for x in launches["-n 4"]]
    worst = max(counts) if counts else None
    note = (
        f"{tests} tests of ~{per_test:g} s CPU each (calibrated loop), all using the session task; on "
        f"{os.cpu_count()} cores the best possible ratio is about {1 / min(4, os.cpu_count() or 1):.2f}"
    )
    return [
        Row(
            f"pytest -n 4 wall time / without xdist ({tests} CPU-bound tests, one session task)",
            median(samples["-n 4"]),
            median(samples["serial"]),
            unit="s",
            samples={**samples, "launches": launches, "loops": loops},
            note=note,
        ),
        Row(
            "pytest -n 4: tasks launched per run (worst of all runs)",
            float(worst) if worst is not None else None,
            None,
            unit="count",
            kind="equal",
            target=1,
            note="distinct pytest-ecstask.task labels on container create events of the run's session (recorded live)",
        ),
    ]
