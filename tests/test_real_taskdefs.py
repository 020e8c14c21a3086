"""Task definitions written by others (shared/taskdefs): planned without Docker, and run where they can be."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from conftest import IMAGE
from pytest_ecstask.errors import PlanError, TaskDefinitionError
from pytest_ecstask.lifecycle import Owner
from pytest_ecstask.plan import PlanOptions, build_plan
from pytest_ecstask.task import TaskOptions, create_task
from pytest_ecstask.taskdef import TaskDefinitionWarning, image_problems, load_task_definition

TASKDEFS = Path(__file__).resolve().parents[1].parent / "shared" / "taskdefs"
FILES = sorted(TASKDEFS.glob("*.json"))
EVERY_IMAGE_LOCAL = {"*": IMAGE}

# For the files that load: what planning says (None = plans; else words of the PlanError).
PLANS = {
    "12_firelens-efs-wrapped-taskDefinition.json": "efsVolumeConfiguration",
    "20_datadog-agent-sysprobe-host-mounts.json": None,
    "23_tf-array-ssm-secrets-dynamic-port.json": "has no local value",
    "28_consul-server-host-network.json": None,
    "33_ecsagent-shmsize.json": None,
    "47_ecsagent-interactive-tty.json": None,
    "48_tf-array-rails-nginx-links-ssm-names.json": "secret 'DB_HOST' (valueFrom 'DB_HOST') has no local value",
}


def options() -> PlanOptions:
    return PlanOptions(
        task_id="f" * 32,
        owner=Owner("s", "h/1", "/tmp/s.lease"),
        created="2026-01-01T00:00:00Z",
        pause_image="pause",
        image_map=EVERY_IMAGE_LOCAL,
    )


@pytest.mark.skipif(not FILES, reason="shared/taskdefs is not beside the checkout")
@pytest.mark.parametrize("path", FILES, ids=[p.name[:2] for p in FILES])
def test_every_real_file_loads_and_plans_or_is_refused_with_a_message(path: Path) -> None:
    try:
        taskdef = load_task_definition(path)
    except TaskDefinitionError as exc:
        assert path.name not in PLANS
        assert str(exc).startswith(str(path))
        return
    expected = PLANS[path.name]
    if expected is None:
        plan = build_plan(taskdef, options())
        assert [c.name for c in plan.containers] == [c.name for c in taskdef.containers]
        assert all(c.create_body["Image"] == IMAGE for c in plan.containers)
    else:
        with pytest.raises(PlanError, match=re.escape(expected)) as info:
            build_plan(taskdef, options())
        assert str(info.value).startswith(str(path))


@pytest.mark.skipif(not FILES, reason="shared/taskdefs is not beside the checkout")
@pytest.mark.parametrize("name", sorted(PLANS), ids=lambda name: name[:2])
def test_real_files_that_load_meet_the_register_rules_without_a_warning_and_name_valid_images(name: str) -> None:
    # Each was deployed as it stands: its sizes, memory and images are what ECS registers and runs.
    with warnings.catch_warnings():
        warnings.simplefilter("error", TaskDefinitionWarning)
        taskdef = load_task_definition(TASKDEFS / name)
    assert image_problems(taskdef, {}) == []


def run_file(name: str) -> Any:
    task = create_task(
        TASKDEFS / name, TaskOptions(images=EVERY_IMAGE_LOCAL, pull="never", stop_timeout=2, check=False)
    )
    return task.start()


@pytest.mark.skipif(not FILES, reason="shared/taskdefs is not beside the checkout")
def test_interactive_tty_task_sees_a_terminal(image: str) -> None:
    # The ECS agent's own functional test: exit 42 only when stdin is a TTY.
    task = run_file("47_ecsagent-interactive-tty.json")
    try:
        task.wait(timeout=30)
        assert task.containers["exit"].exit_code == 42
        assert task.stop_code == "EssentialContainerExited"
    finally:
        task.close()


@pytest.mark.skipif(not FILES, reason="shared/taskdefs is not beside the checkout")
def test_shared_memory_size_reaches_the_container(image: str) -> None:
    task = run_file("33_ecsagent-shmsize.json")
    try:
        assert task.containers["exit"].inspect()["HostConfig"]["ShmSize"] == 100 * 1024 * 1024
        task.wait(timeout=30)
    finally:
        task.close()


@pytest.mark.skipif(not FILES, reason="shared/taskdefs is not beside the checkout")
def test_missing_executable_is_a_start_failure_naming_the_container(image: str, docker_api: Any) -> None:
    # The consul image's entry point is not in the busybox image that stands in for it.
    task = run_file("28_consul-server-host-network.json")
    try:
        assert task.stop_code == "TaskFailedToStart"
        consul = task.containers["consulServer"]
        assert consul.status == "STOPPED" and consul.exit_code is None
        assert "CannotStartContainerError" in (consul.reason or "")
        assert "docker-entrypoint.sh" in (consul.reason or "")
        assert "'consulServer' did not start" in (task.stopped_reason or "")
        assert docker_api.inspect_container(consul.id)["HostConfig"]["NetworkMode"] == "host"
    finally:
        task.close()
