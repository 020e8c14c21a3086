"""Run from the installed wheel: a tiny task through `pytest --ecs-taskdef`."""

import json
import urllib.request

import pytest_ecstask


def test_the_plugin_comes_from_the_wheel() -> None:
    assert "site-packages" in pytest_ecstask.__file__


def test_the_task_serves_what_its_init_container_wrote(ecs_task) -> None:
    web = ecs_task.containers["web"]
    assert ecs_task.containers["init"].exit_code == 0
    with urllib.request.urlopen(f"http://{web.host}:{web.port(8080)}/", timeout=10) as response:
        assert response.read().decode().strip() == "hello from the task"


def test_the_container_reads_its_task_metadata(ecs_task) -> None:
    result = ecs_task.containers["web"].exec(["sh", "-c", 'wget -q -O- "$ECS_CONTAINER_METADATA_URI_V4/task"'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["TaskARN"] == ecs_task.arn
