"""Gating when Docker's events do not come: a stream cut mid-start, an engine that sends no health events.

Events are the fast path; the runner also asks Docker itself while a gate waits, and resumes a stream that
drops. Real engine, real containers: what is taken away is only the events.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import IMAGE, service
from pytest_ecstask import runtime
from pytest_ecstask.dockerstate import docker_time
from pytest_ecstask.lifecycle import process_owner
from pytest_ecstask.task import TaskOptions, create_task


@pytest.fixture
def made(image: str) -> Iterator[list[Any]]:
    tasks: list[Any] = []
    yield tasks
    for task in reversed(tasks):
        task.close()


def new_task(made: list[Any], taskdef: dict[str, Any]) -> Any:
    options = TaskOptions(pull="never", stop_timeout=2, start_timeout=60, check=False, endpoints=False)
    task = create_task(taskdef, options, owner=process_owner())
    made.append(task)
    return task


def seconds(docker_timestamp: str) -> float:
    from datetime import datetime

    text = docker_time(docker_timestamp)
    assert text is not None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_stream_cut_mid_start_is_resumed_and_the_exit_it_missed_still_opens_the_gate(made: list[Any]) -> None:
    task = new_task(
        made,
        {
            "family": "cutstream",
            "containerDefinitions": [
                {"name": "migrate", "image": IMAGE, "command": ["sh", "-c", "sleep 3"], "essential": False},
                {
                    "name": "app",
                    "image": IMAGE,
                    "command": service(),
                    "memory": 64,
                    "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"}],
                },
            ],
        },
    )
    starting = threading.Thread(target=task.start, daemon=True)
    starting.start()
    deadline = time.monotonic() + 20
    while task._runner.containers["migrate"].started is False:  # the gate waits; the exit is 3 s away
        assert time.monotonic() < deadline
        time.sleep(0.05)
    task._runner._events.close()  # the stream ends under the runner, as a dropped connection would end it
    starting.join(60)
    assert task.status == "RUNNING", task.timeline
    said = [e.what for e in task.timeline]
    assert said.index("the Docker event stream dropped: resuming it") < said.index("the Docker event stream resumed")
    assert task.containers["migrate"].exit_code == 0
    assert said.index("the Docker event stream dropped: resuming it") < said.index("exited with code 0")


def test_without_health_events_a_healthy_gate_is_met_within_one_interval_of_the_passing_check(
    made: list[Any], monkeypatch: pytest.MonkeyPatch, docker_api: Any
) -> None:
    real = runtime.container_event

    def no_health_events(event: Any) -> Any:  # as Podman's Docker API: no health_status events at all
        parsed = real(event)
        return None if parsed is not None and parsed[1].kind == "health" else parsed

    monkeypatch.setattr(runtime, "container_event", no_health_events)
    interval = 5
    task = new_task(
        made,
        {
            "family": "nohealthevents",
            "containerDefinitions": [
                {
                    "name": "db",
                    "image": IMAGE,
                    "command": service("sleep 2; touch /tmp/ready"),
                    "memory": 64,
                    "healthCheck": {
                        "command": ["CMD-SHELL", "test -f /tmp/ready"],
                        "interval": interval,
                        "retries": 10,
                    },
                },
                {
                    "name": "app",
                    "image": IMAGE,
                    "command": service(),
                    "memory": 64,
                    "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
                },
            ],
        },
    )
    task.start()
    assert task.status == "RUNNING", task.timeline
    db = docker_api.inspect_container(task.containers["db"].id)["State"]
    passed = min(seconds(e["End"]) for e in db["Health"]["Log"] if e["ExitCode"] == 0)
    app_started = seconds(docker_api.inspect_container(task.containers["app"].id)["State"]["StartedAt"])
    assert 0 < app_started - passed <= interval + 1.0
    assert ("db", "health HEALTHY") in [(e.container, e.what) for e in task.timeline]


def test_a_long_wait_says_what_it_waits_for_without_v(pytester: pytest.Pytester, image: str) -> None:
    taskdef = pytester.path / "taskdef.json"
    waiting = ["sh", "-c", "trap 'exit 0' TERM; sleep 8 & wait"]
    app = {"name": "app", "image": image, "memory": 64, "command": service()}
    app["dependsOn"] = [{"containerName": "db", "condition": "COMPLETE"}]
    db = {"name": "db", "image": image, "memory": 64, "command": waiting, "essential": False}
    taskdef.write_text(json.dumps({"family": "slowdb", "containerDefinitions": [db, app]}))
    pytester.makepyfile("def test_up(ecs_task):\n    assert ecs_task.status == 'RUNNING'\n")
    result = pytester.runpytest_subprocess(f"--ecs-taskdef={taskdef}", "--ecs-pull=never", "--ecs-endpoints=off")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["ecstask slowdb:1 * app: still waiting after * s for db COMPLETE (running)"])
