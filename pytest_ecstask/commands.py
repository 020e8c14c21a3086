"""The commands that make pytest do something else than run tests, then exit: ``--ecs-sweep-orphans`` and
``--ecs-plan`` (the launch plan on Docker, or with ``--ecs-backend=aws`` the requests sent to ECS). Each returns
the exit code; neither collects tests.
"""

from __future__ import annotations

import json
import sys
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ecstask import __version__, settings
from pytest_ecstask.errors import EcsTaskError

if TYPE_CHECKING:
    from pytest_ecstask.ecsrequests import EcsRequests
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.plan import TaskPlan
    from pytest_ecstask.taskdef import TaskDefinition


def sweep_orphans(config: pytest.Config) -> int:
    """Remove what dead runs left on the engine (or on ECS, with --ecs-backend=aws) and print a report (text,
    or JSON with --ecs-json)."""
    from pytest_ecstask.errors import DockerUnavailable
    from pytest_ecstask.sweep import sweep
    from pytest_ecstask.task import Connections

    try:
        max_age, cap = settings.sweep_settings(config)
        backend = settings.read(config, settings.BY_NAME["backend"])
        if backend == "aws":
            return _sweep_ecs(config, settings.resolve(config), max_age, cap)
    except EcsTaskError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    try:
        engine = Connections().engine()
    except DockerUnavailable as exc:
        return _cannot_sweep(config, exc)
    report = sweep(
        engine.api,
        dry_run=bool(config.getoption("ecs_dry_run")),
        max_age=max_age,
        cap=cap,
        force=bool(config.getoption("ecs_force")),
        include_kept=bool(config.getoption("ecs_include_kept")),
    )
    print(report.as_json() if config.getoption("ecs_json") else "\n".join(report.lines()))
    return report.exit_code


def _sweep_ecs(config: pytest.Config, resolved: settings.Settings, max_age: float, cap: int) -> int:
    """--ecs-sweep-orphans --ecs-backend=aws: the cluster's tasks and the suffixed families' revisions."""
    from pytest_ecstask.awssweep import sweep_ecs
    from pytest_ecstask.ecsbackend import EcsBackend

    try:
        report = sweep_ecs(
            EcsBackend(),
            resolved.aws_cluster,
            resolved.aws_family_suffix,
            dry_run=bool(config.getoption("ecs_dry_run")),
            max_age=max_age,
            cap=cap,
            force=bool(config.getoption("ecs_force")),
        )
    except EcsTaskError as exc:  # no boto3, no credentials, no permission: ECS could not be asked
        return _cannot_sweep(config, exc)
    print(report.as_json() if config.getoption("ecs_json") else "\n".join(report.lines()))
    return report.exit_code


def _cannot_sweep(config: pytest.Config, error: EcsTaskError) -> int:
    """Neither the engine nor ECS could be asked: exit code 3, and why."""
    from pytest_ecstask.sweep import EXIT_NO_ENGINE

    if config.getoption("ecs_json"):
        print(json.dumps({"exit_code": EXIT_NO_ENGINE, "error": str(error)}))
    else:
        print(f"ecstask sweep: {error}", file=sys.stderr)
    return EXIT_NO_ENGINE


def plan(config: pytest.Config) -> int:
    """--ecs-plan; an unexpected failure is a message, never a raw traceback."""
    try:
        return _print_plan(config)
    except Exception as exc:
        # Never the exception's text: it may quote a value of the file.
        where = "the task definition"
        with suppress(EcsTaskError):
            where = str(settings.path(config, settings.BY_NAME["taskdef"]))
        print(
            f"ERROR: --ecs-plan stopped on an unexpected {type(exc).__name__} while reading "
            f"{where}. This is a bug in pytest-ecstask {__version__}: please report "
            "it with the task definition, its values replaced (they are not shown here, they may be secrets).",
            file=sys.stderr,
        )
        return int(pytest.ExitCode.INTERNAL_ERROR)


def _print_plan(config: pytest.Config) -> int:
    """The launch plan, or the AWS backend's requests, from the task definition alone; nothing is started or
    sent, neither Docker nor AWS is asked."""
    from pytest_ecstask.ecsrequests import format_requests
    from pytest_ecstask.plan import format_plan

    as_json = config.getoption("ecs_json")
    try:
        resolved = settings.resolve(config)
        if resolved.backend == "aws":
            requests = aws_planned(config, resolved)
            print(json.dumps(requests.as_data(), indent=2) if as_json else format_requests(requests))
            return 0
        data = shown(*planned(config, resolved))
    except EcsTaskError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    print(json.dumps(data, indent=2) if as_json else format_plan(data))
    return 0


def planned(config: pytest.Config, resolved: settings.Settings | None = None) -> tuple[TaskDefinition, TaskPlan]:
    """The plan a run would make of the session task, secrets masked, no engine asked.

    Made by the run's own functions (``run.task_options``, ``settings.plan_options``). Made up: the task id
    and the run (owner); the pause image is this machine's architecture's, where a run asks its engine.
    """
    from pytest_ecstask.lifecycle import Owner, host_id
    from pytest_ecstask.plan import build_plan

    resolved = resolved or settings.resolve(config)
    options, taskdef = _session_task(config, resolved)
    owner = Owner("plan", host_id(), "", resolved.keep, sentinel=True)  # labelled as a run labels
    return taskdef, build_plan(
        taskdef, settings.plan_options(taskdef, options, None, owner=owner, pause_image=_pause_image)
    )


def aws_planned(config: pytest.Config, resolved: settings.Settings | None = None) -> EcsRequests:
    """The requests the AWS backend would send for the session task; nothing is read from AWS.

    The session id is ``PYTEST_ECSTASK_SESSION``, else made up, as a run makes its own; the host is this
    machine's id, as a run tags it; the run's lease file and process, which only a run has, are placeholders.
    Secrets and environment files stay the references ECS is given: none is resolved or read.
    """
    import os

    from pytest_ecstask.ecsrequests import LEASE, OWNER, build_requests
    from pytest_ecstask.lifecycle import SESSION_ENV, host_id, new_session_id

    resolved = resolved or settings.resolve(config)
    options, taskdef = _session_task(config, resolved)
    session = os.environ.get(SESSION_ENV) or new_session_id()
    return build_requests(taskdef, options.images, resolved, session, host_id(), lease=LEASE, owner=OWNER)


def _session_task(config: pytest.Config, resolved: settings.Settings) -> tuple[TaskOptions, TaskDefinition]:
    """The session task's options and its task definition, rendered and adjusted, as a run loads it."""
    from pytest_ecstask.run import task_options
    from pytest_ecstask.task import load_source

    if resolved.taskdef is None:
        raise EcsTaskError("--ecs-plan needs a task definition: --ecs-taskdef=PATH or the ecs_taskdef ini key")
    options = task_options(config, resolved)
    return options, load_source(resolved.taskdef, options=options)


def shown(taskdef: TaskDefinition, plan: TaskPlan) -> dict[str, Any]:
    """What --ecs-plan prints of a plan, as data; secrets show by name only."""
    from pytest_ecstask.plan import plan_data

    secrets = {c.name: [str(x["name"]) for x in c.raw.get("secrets") or []] for c in taskdef.containers}
    return plan_data(plan, secrets)


def _pause_image() -> str:
    """The pause image a local engine of this machine's architecture runs; a run asks its engine."""
    import platform

    from pytest_ecstask.pause import PAUSE_REPOSITORY, normalize_architecture, pause_image_tag

    try:
        return pause_image_tag(normalize_architecture(platform.machine()))
    except ValueError:
        return PAUSE_REPOSITORY
