"""--ecs-reuse against a real engine: adopted when nothing changed, replaced (and why) when something did,
left alone by other runs' sweeps, removed by --ecs-sweep-orphans --ecs-include-kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import IMAGE, service
from pytest_ecstask.endpointids import EndpointInfo
from pytest_ecstask.lifecycle import LABEL_REUSE, Owner
from pytest_ecstask.plan import PlanOptions, build_plan
from pytest_ecstask.reuse import fingerprint, records_dir
from pytest_ecstask.taskdef import parse_task_definition

TEST = """
import json, os


def test_records_the_task(ecs_task):
    app = ecs_task.containers["app"]
    got = app.exec(["wget", "-qO-", app.metadata_uri]).output
    with open(os.environ["REUSE_OUT"], "a") as out:
        out.write(json.dumps({"task": ecs_task.id, "app": app.id, "metadata": json.loads(got)["DockerId"]}) + "\\n")
"""


def taskdef(image: str, greeting: str = "hello") -> dict[str, Any]:
    return {
        "family": "reused",
        "containerDefinitions": [
            {
                "name": "app",
                "image": image,
                "command": service(),
                "memory": 32,
                "environment": [{"name": "GREETING", "value": greeting}],
            },
            {"name": "side", "image": image, "command": service(), "memory": 32, "essential": False},
        ],
    }


# -- the fingerprint (pure) --------------------------------------------------------------------------------


def planned(owner: Owner, greeting: str = "hello", port: int = 40123, **options: Any) -> Any:
    """The plan a run makes of the kept task's identity (same id, time and secret), as its own owner."""
    definition = parse_task_definition(taskdef(IMAGE, greeting), "reused.json")
    return build_plan(
        definition,
        PlanOptions(
            task_id="0123456789abcdef0123456789abcdef",
            owner=owner,
            created="2026-01-01T00:00:00.000Z",
            pause_image="",
            endpoint=EndpointInfo(port, "control-token", 1),
            secret="per-task-secret",
            **options,
        ),
    )


FIRST = Owner("sess01", "host/1", "/leases/sess01.lease", sentinel=True, reuse="/leases/reuse/k.json")
LATER = Owner("sess02", "host/1", "/leases/sess02.lease", sentinel=True, reuse="/leases/reuse/k.json")
IDS = {"app": "sha256:aaa", "side": "sha256:bbb"}


def test_the_fingerprint_is_the_same_for_another_run_and_differs_where_the_task_does() -> None:
    kept = fingerprint(planned(FIRST), IDS)
    assert fingerprint(planned(LATER), IDS) == kept  # the run's own labels do not count
    greeting = fingerprint(planned(LATER, greeting="bonjour"), IDS)
    assert [name for name in kept if kept[name] != greeting[name]] == ["app"]
    image = fingerprint(planned(LATER), {**IDS, "side": "sha256:ccc"})
    assert [name for name in kept if kept[name] != image[name]] == ["side"]
    setting = fingerprint(planned(LATER, cluster="another"), IDS)
    assert {name for name in kept if kept[name] != setting[name]} == {"app", "side"}
    port = fingerprint(planned(LATER, port=40124), IDS)  # what the containers were told
    assert {name for name in kept if kept[name] != port[name]} == {"app", "side"}


# -- against the engine ---------------------------------------------------------------------------------------


@pytest.fixture
def project(
    pytester: pytest.Pytester, image: str, docker_api: Any, tmp_path: Any, kept_tasks_lock: None
) -> Iterator[pytest.Pytester]:
    pytester.makefile(".json", reused=json.dumps(taskdef(image)))
    pytester.makeini("[pytest]\necs_pull = never\necs_stop_timeout = 2\necs_taskdef = reused.json\n")
    pytester.makepyfile(test_reused=TEST)
    yield pytester
    # Whatever the test left kept: no task of ours may stay on the engine.
    sweep(pytester, "--ecs-include-kept")


def sweep(project: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    """``pytest --ecs-sweep-orphans`` in the project, as a CI cleanup step runs it."""
    command = [sys.executable, "-m", "pytest", "--ecs-sweep-orphans", *args]
    return subprocess.run(command, cwd=project.path, capture_output=True, text=True, timeout=120)


def run(project: pytest.Pytester, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    out = project.path / "out.jsonl"
    out.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "REUSE_OUT": str(out)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    [seen] = [json.loads(line) for line in out.read_text().splitlines()]
    assert seen["metadata"] == seen["app"]  # the endpoints answer the task's containers, adopted or not
    return result, seen


def reuse_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("ecstask: reuse:")]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_the_next_run_adopts_the_kept_task_when_nothing_changed(
    project: pytest.Pytester, docker_api: Any, xdist: list[str]
) -> None:
    first, one = run(project, "--ecs-reuse", *xdist)
    assert reuse_lines(first)[0] == "ecstask: reuse: no task kept by an earlier run to adopt; the session task is new"
    assert any("kept for the next run (--ecs-reuse)" in line for line in reuse_lines(first))
    kept = docker_api.containers(filters={"label": f"pytest-ecstask.task={one['task']}"})
    assert len(kept) == 2 and all(c["Labels"].get(LABEL_REUSE) for c in kept)  # running, labelled
    second, two = run(project, "--ecs-reuse", *xdist)
    assert (two["task"], two["app"]) == (one["task"], one["app"])  # the same containers
    assert reuse_lines(second)[0].startswith(f"ecstask: reuse: adopted task reused:1 {one['task']}")
    # A run without --ecs-reuse neither adopts nor keeps: it starts its own task and removes it.
    third, three = run(project, *xdist)
    assert three["task"] != one["task"] and not reuse_lines(third)
    # The sweep that removes the kept task forgets its record too (it holds the task's secret).
    records = list(records_dir().glob("*.json"))
    assert any(json.loads(p.read_text())["task_id"] == one["task"] for p in records)
    assert sweep(project, "--ecs-include-kept").returncode == 0
    assert docker_api.containers(all=True, filters={"label": f"pytest-ecstask.task={one['task']}"}) == []
    records = list(records_dir().glob("*.json"))
    assert not any(json.loads(p.read_text())["task_id"] == one["task"] for p in records)


def kept_record(task_id: str) -> dict[str, Any]:
    [record] = [r for p in records_dir().glob("*.json") if (r := json.loads(p.read_text()))["task_id"] == task_id]
    return dict(record)


def metadata_from_inside(docker_api: Any, container: str) -> dict[str, Any]:
    """What the container's own v4 metadata endpoint answers it, asked from inside it."""
    command = ["sh", "-c", 'wget -qO- "$ECS_CONTAINER_METADATA_URI_V4"']
    exec_id = docker_api.exec_create(container, command)["Id"]
    output = docker_api.exec_start(exec_id).decode()
    assert docker_api.exec_inspect(exec_id)["ExitCode"] == 0, output
    return dict(json.loads(output))


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_the_kept_task_keeps_its_endpoints_between_runs_and_the_next_run_takes_its_server_up(
    project: pytest.Pytester, docker_api: Any
) -> None:
    _, one = run(project, "--ecs-reuse")
    server = kept_record(one["task"])["server"]
    assert server and server["port"] == kept_record(one["task"])["port"]
    # The run is over; its containers' endpoints still answer them.
    assert metadata_from_inside(docker_api, one["app"])["DockerId"] == one["app"]
    _, two = run(project, "--ecs-reuse")
    assert two["app"] == one["app"]
    assert kept_record(one["task"])["server"]["pid"] == server["pid"]  # the same server, taken up
    assert metadata_from_inside(docker_api, one["app"])["DockerId"] == one["app"]
    # Removing the kept task stops the server that kept serving it.
    assert sweep(project, "--ecs-include-kept").returncode == 0
    assert process_gone(server["pid"])


def test_when_the_kept_server_is_gone_the_next_run_serves_the_kept_task_on_the_port_it_was_told(
    project: pytest.Pytester, docker_api: Any
) -> None:
    import signal

    _, one = run(project, "--ecs-reuse")
    server = kept_record(one["task"])["server"]
    os.kill(server["pid"], signal.SIGKILL)
    second, two = run(project, "--ecs-reuse")  # run() checks the endpoints answer the adopted container
    assert reuse_lines(second)[0].startswith(f"ecstask: reuse: adopted task reused:1 {one['task']}")
    assert two["app"] == one["app"]
    again = kept_record(one["task"])["server"]
    assert again["port"] == server["port"] and again["pid"] != server["pid"]


def test_a_replaced_kept_task_takes_its_server_with_it(project: pytest.Pytester, docker_api: Any) -> None:
    _, one = run(project, "--ecs-reuse")
    server = kept_record(one["task"])["server"]
    second, two = run(project, "--ecs-reuse", "--ecs-cluster=another")
    assert reuse_lines(second)[0].startswith("ecstask: reuse: replaced the task an earlier run kept")
    assert process_gone(server["pid"])
    assert kept_record(two["task"])["server"]["pid"] != server["pid"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("taskdef", "the container 'app' changed (the task definition, an image or a setting)"),
        ("setting", "the container 'app' changed (the task definition, an image or a setting)"),
        ("died", "container 'app' exited (code 137)"),
        ("gone", "container 'side' is gone"),
    ],
)
def test_the_kept_task_is_replaced_and_the_summary_says_why(
    project: pytest.Pytester, docker_api: Any, image: str, change: str, why: str
) -> None:
    _, one = run(project, "--ecs-reuse")
    args = ["--ecs-reuse"]
    if change == "taskdef":
        project.makefile(".json", reused=json.dumps(taskdef(image, greeting="bonjour")))
    elif change == "setting":
        args.append("--ecs-cluster=another")  # changes what the containers are told
    elif change == "died":
        docker_api.kill(one["app"])
    else:
        [side] = docker_api.containers(filters={"label": [f"pytest-ecstask.task={one['task']}"], "name": "side"})
        docker_api.remove_container(side["Id"], force=True)
    second, two = run(project, *args)
    assert (
        reuse_lines(second)[0] == f"ecstask: reuse: replaced the task an earlier run kept ({one['task'][:12]}): {why}"
    )
    assert two["task"] != one["task"]
    assert docker_api.containers(all=True, filters={"label": f"pytest-ecstask.task={one['task']}"}) == []


def test_the_kept_task_is_replaced_when_its_image_changed(
    project: pytest.Pytester, docker_api: Any, image: str
) -> None:
    import io
    import tarfile

    from pytest_ecstask.testing import build_image

    dockerfile = f"FROM {image}\nLABEL reuse-test=another-image\n".encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    other = build_image(docker_api, context.getvalue(), "pytest-ecstask-test/busybox:reuse")
    try:
        _, one = run(project, "--ecs-reuse", f"--ecs-image={image}={image}")
        second, two = run(project, "--ecs-reuse", f"--ecs-image={image}={other}")
        assert (
            reuse_lines(second)[0].endswith("the container 'app' changed (the task definition, an image or a setting)")
            and two["task"] != one["task"]
        )
    finally:
        sweep(project, "--ecs-include-kept")
        docker_api.remove_image(other, force=True)


def test_another_runs_sweep_leaves_the_kept_task_and_include_kept_removes_it(
    project: pytest.Pytester, docker_api: Any
) -> None:
    _, one = run(project, "--ecs-reuse")
    mine = {"label": f"pytest-ecstask.task={one['task']}"}
    swept = sweep(project, "--ecs-json")
    report = json.loads(swept.stdout)
    assert not [r for r in report["removed"] if r["task"] == one["task"]]
    assert {r["name"] for r in report["left"] if r["task"] == one["task"] and "kept for reuse" in r["why"]}
    assert len(docker_api.containers(filters=mine)) == 2
    # Idle for longer than the orphan age: a sweep takes it.
    idle = sweep(project, "--ecs-orphan-age=0")
    assert idle.returncode == 0, idle.stdout[-2000:]
    assert docker_api.containers(all=True, filters=mine) == []


def test_a_run_while_another_uses_the_kept_task_gets_its_own_and_leaves_that_one(
    project: pytest.Pytester, docker_api: Any
) -> None:
    from pytest_ecstask.lifecycle import Lease, new_session_id

    _, one = run(project, "--ecs-reuse")
    [record] = [p for p in records_dir().glob("*.json") if json.loads(p.read_text())["task_id"] == one["task"]]
    other = Lease.acquire(new_session_id())  # a live run that has adopted the kept task
    try:
        record.write_text(json.dumps({**json.loads(record.read_text()), "lease": str(other.path)}))
        second, two = run(project, "--ecs-reuse")
        assert reuse_lines(second) == [
            "ecstask: reuse: the kept task is in use by another run; this run's session task is its own"
        ]
        assert two["task"] != one["task"]
        assert len(docker_api.containers(filters={"label": f"pytest-ecstask.task={one['task']}"})) == 2
        assert docker_api.containers(all=True, filters={"label": f"pytest-ecstask.task={two['task']}"}) == []
        # Not even --ecs-include-kept removes a task a live run uses.
        assert sweep(project, "--ecs-include-kept").returncode == 0
        assert len(docker_api.containers(filters={"label": f"pytest-ecstask.task={one['task']}"})) == 2
    finally:
        other.release()


def test_reuse_without_an_engine_fails_the_test_with_the_reason_not_a_traceback(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makefile(".json", reused=json.dumps(taskdef(IMAGE)))
    pytester.makepyfile(test_reused="def test_x(ecs_task):\n    pass\n")
    result = pytester.runpytest_subprocess("--ecs-taskdef=reused.json", "--ecs-reuse", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ecstask: --ecs-reuse: DockerUnavailable: No Docker engine answered*"])
    assert "Traceback" not in result.stdout.str()


WATCH_IMPORTS = """
import sys, threading


class Watch:
    def find_spec(self, name, path, target=None):
        if name == "testcontainers.core.docker_client":
            print("imported in", threading.current_thread().name, flush=True)
        return None


sys.meta_path.insert(0, Watch())


def pytest_collection(session):
    print("at collection:", "testcontainers.core.docker_client" in sys.modules, flush=True)
"""


@pytest.mark.parametrize(
    ("args", "imported"),
    [
        (["--ecs-reuse"], ["imported in MainThread", "at collection: True"]),
        ([], ["at collection: False"]),
        (["--ecs-reuse", "--collect-only"], ["at collection: False"]),
        (["--ecs-reuse", "-n", "1"], []),  # the controller, which collects nothing; its worker's output is not shown
    ],
    ids=["reuse", "no reuse", "collect only", "xdist controller"],
)
def test_a_reuse_run_imports_the_docker_sdk_before_collection_and_a_run_that_may_start_no_task_does_not(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], imported: list[str]
) -> None:
    # Imported in the thread that connects, the SDK would share the interpreter with collection and end
    # after the session starts, in the adoption's path.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # no other plugin imports docker
    pytester.makefile(".json", reused=json.dumps(taskdef(IMAGE)))
    pytester.makeconftest(WATCH_IMPORTS)
    pytester.makepyfile(test_reused="def test_x():\n    pass\n")
    plugins = ["-p", "pytest_ecstask.plugin", "-p", "xdist.plugin", "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(*plugins, "--ecs-taskdef=reused.json", "-s", *args)
    assert result.ret == 0, result.stdout.str()
    seen = [line for line in result.stdout.lines if line.startswith(("imported in", "at collection:"))]
    assert seen == imported
