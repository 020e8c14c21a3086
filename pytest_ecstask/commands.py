"""The commands that make pytest do something else than run tests, then exit: ``--ecs-sweep-orphans`` and
``--ecs-plan``. Each returns the exit code; neither collects tests.
"""

from __future__ import annotations

import json
import sys
from contextlib import suppress
from typing import TYPE_CHECKING

import pytest

from pytest_ecstask import __version__, settings
from pytest_ecstask.errors import EcsTaskError

if TYPE_CHECKING:
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.plan import TaskPlan
    from pytest_ecstask.taskdef import TaskDefinition


def sweep_orphans(config: pytest.Config) -> int:
    """Remove what dead runs left on the engine and print a report (text, or JSON with --ecs-json)."""
    from pytest_ecstask.errors import DockerUnavailable
    from pytest_ecstask.sweep import EXIT_NO_ENGINE, sweep
    from pytest_ecstask.task import Connections

    try:
        max_age, cap = settings.sweep_settings(config)
    except EcsTaskError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    try:
        engine = Connections().engine()
    except DockerUnavailable as exc:
        if config.getoption("ecs_json"):
            print(json.dumps({"exit_code": EXIT_NO_ENGINE, "error": str(exc)}))
        else:
            print(f"ecstask sweep: {exc}", file=sys.stderr)
        return EXIT_NO_ENGINE
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
    """The launch plan, from the task definition alone; nothing is started, Docker is not asked."""
    from pytest_ecstask.plan import format_plan, plan_data
    from pytest_ecstask.task import load_source

    try:
        path = settings.path(config, settings.BY_NAME["taskdef"])
        if path is None:
            print(
                "ERROR: --ecs-plan needs a task definition: --ecs-taskdef=PATH or the ecs_taskdef ini key",
                file=sys.stderr,
            )
            return int(pytest.ExitCode.USAGE_ERROR)
        from pytest_ecstask.run import with_hooks

        options = settings.for_task(with_hooks(config, settings.task_settings(config)), {})
        taskdef = load_source(path, options=options)  # rendered and adjusted, as a run would load it
        shown = _plan_of(taskdef, options)
    except EcsTaskError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    secrets = {c.name: [str(x["name"]) for x in c.raw.get("secrets") or []] for c in taskdef.containers}
    data = plan_data(shown, secrets)
    print(json.dumps(data, indent=2) if config.getoption("ecs_json") else format_plan(data))
    return 0


def _plan_of(taskdef: TaskDefinition, options: TaskOptions) -> TaskPlan:
    """The plan a run would make, secrets masked, with a made-up task id and owner."""
    import platform

    from pytest_ecstask.lifecycle import Owner, host_id, new_task_id, now_rfc3339
    from pytest_ecstask.pause import normalize_architecture, pause_image_tag
    from pytest_ecstask.plan import PlanOptions, build_plan

    try:
        pause = pause_image_tag(normalize_architecture(platform.machine()))
    except ValueError:
        pause = "pytest-ecstask/pause"
    return build_plan(
        taskdef,
        PlanOptions(
            task_id=new_task_id(),
            owner=Owner("plan", host_id(), ""),
            created=now_rfc3339(),
            pause_image=pause,
            image_map=dict(options.images),
            stop_timeout=options.stop_timeout,
            default_start_timeout=options.start_timeout,
            cluster=options.cluster,
            region=options.region,
            account_id=options.account_id,
            mask_secrets=True,
        ),
    )
