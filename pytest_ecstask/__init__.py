"""Run an Amazon ECS task definition on a local Docker engine, the way the ECS agent would."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Loaded on first use, so that installing the plugin costs a suite that never starts a task nothing.
_EXPORTS = {
    "run_task": "pytest_ecstask.task",
    "create_task": "pytest_ecstask.task",
    "Task": "pytest_ecstask.task",
    "Container": "pytest_ecstask.task",
    "TaskOptions": "pytest_ecstask.options",
    "load_task_definition": "pytest_ecstask.taskdef",
    "TaskDefinition": "pytest_ecstask.taskdef",
    "EcsTaskError": "pytest_ecstask.errors",
    "TaskDefinitionError": "pytest_ecstask.errors",
    "PlanError": "pytest_ecstask.errors",
    "DockerUnavailable": "pytest_ecstask.errors",
    "TaskFailedToStart": "pytest_ecstask.errors",
}

__all__ = [
    "Container",
    "DockerUnavailable",
    "EcsTaskError",
    "PlanError",
    "Task",
    "TaskDefinition",
    "TaskDefinitionError",
    "TaskFailedToStart",
    "TaskOptions",
    "__version__",
    "create_task",
    "load_task_definition",
    "run_task",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pytest_ecstask' has no attribute {name!r}")
