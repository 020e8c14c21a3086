"""The settings table: one precedence everywhere, checks when pytest starts, a run object per run. No Docker.

Configs come from ``pytester.parseconfig``: pytest's own option and ini parsing, in process, no tests run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_ecstask import settings
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.options import TaskOptions
from pytest_ecstask.settings import MARKER_ARGS, SETTINGS, for_task, resolve


def test_every_option_has_its_ini_twin_and_every_marker_argument_a_task_option() -> None:
    commands = {"sweep_orphans", "dry_run", "force", "include_kept", "json", "plan"}
    assert [s.name for s in SETTINGS if s.flag and not s.ini] == sorted(commands, key=[s.name for s in SETTINGS].index)
    fields = set(TaskOptions.__dataclass_fields__)
    assert all(settings.BY_NAME[name].task_field in fields for name in MARKER_ARGS)
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)


def test_the_marker_then_the_command_line_then_the_ini_file_then_the_default(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        ecs_cluster = from-ini
        ecs_region = eu-west-1
        ecs_stop_timeout = 7
        ecs_images =
            app:1=from-ini:1
            db:*=db-from-ini
        ecs_vars = A=ini
            B=ini
        """
    )
    config = pytester.parseconfig("--ecs-cluster=from-cli", "--ecs-image=app:1=from-cli:1", "--ecs-var=A=cli")
    base = resolve(config).task
    assert (base.cluster, base.region, base.stop_timeout, base.start_timeout) == ("from-cli", "eu-west-1", 7.0, 300.0)
    assert list(base.images.items()) == [("app:1", "from-cli:1"), ("db:*", "db-from-ini")]
    assert base.variables == {"A": "cli", "B": "ini"}
    task = for_task(base, {})
    assert task.availability_zone == "eu-west-1a"  # a zone of the region given
    marked = for_task(
        base, {"cluster": "from-marker", "images": {"x:*": "y"}, "variables": {"B": 2}, "region": "ap-south-1"}
    )
    assert (marked.cluster, marked.availability_zone) == ("from-marker", "ap-south-1a")
    assert list(marked.images) == ["x:*", "app:1", "db:*"]  # the marker's globs are tried first
    assert marked.variables == {"A": "cli", "B": "2"}
    assert for_task(base, {"availability_zone": "eu-west-1c"}).availability_zone == "eu-west-1c"
    assert for_task(base, {"start_timeout": 0}).start_timeout is None  # 0 = no limit, as in ECS
    assert for_task(base, {"check": False, "endpoints": False}).check is False
    assert base == resolve(config).task  # a marker changes the task's copy, never the run's


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"stop_timout": 1}, "ecs_task: unknown argument(s) stop_timout; known: images, pull, stop_timeout"),
        ({"stop_timeout": "soon"}, "ecs_task(stop_timeout=...): 'soon' is not a number of seconds"),
        (
            {"pull": "sometimes"},
            "pull policy 'sometimes' is not one of missing, always, never (--ecs-pull, ini ecs_pull)",
        ),
    ],
)
def test_a_bad_marker_argument_is_named(arguments: dict[str, Any], error: str) -> None:
    with pytest.raises(EcsTaskError) as raised:
        for_task(TaskOptions(), arguments)
    assert str(raised.value).startswith(error)


def test_ini_paths_are_relative_to_the_ini_file_and_may_be_quoted(pytester: pytest.Pytester) -> None:
    pytester.makeini('[pytest]\necs_log_dir = "ecs logs"\necs_vars_file = deploy/vars.env\n')
    pytester.mkdir("deploy").joinpath("vars.env").write_text("A=1\n")
    resolved = resolve(pytester.parseconfig())
    assert resolved.log_dir == Path(pytester.path, "ecs logs")
    assert resolved.task.variables == {"A": "1"}
    assert resolved.taskdef is None


def test_a_path_of_the_command_line_is_relative_to_where_pytest_started(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\necs_log_dir = from-ini\n")
    sub = pytester.mkdir("sub")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        assert resolve(pytester.parseconfig("--ecs-log-dir=logs")).log_dir == Path(sub, "logs")


def test_an_ini_path_given_with_o_alone_needs_no_ini_file(pytester: pytest.Pytester) -> None:
    # pytest 7 cannot make an ini "paths" value without an ini file; the setting is read all the same.
    config = pytester.parseconfig("-o", "ecs_log_dir=logs")
    assert config.inipath is None
    assert resolve(config).log_dir == Path(config.rootpath, "logs")


def test_two_paths_where_one_is_wanted_is_an_error_that_says_to_quote(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\necs_secrets_file = my secrets.json\n")
    with pytest.raises(EcsTaskError, match=r"ini ecs_secrets_file: one path, not 2: put quotes around a path"):
        resolve(pytester.parseconfig())


def test_each_in_process_run_has_its_own_engine_and_endpoints(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_ecstask import task as task_module
    from pytest_ecstask.lifecycle import new_session_id
    from pytest_ecstask.plugin import run_key

    monkeypatch.setattr(task_module, "_serve_endpoints", lambda owner, port, host: object())
    monkeypatch.setenv("PYTEST_ECSTASK_SESSION", new_session_id())  # one id, two runs one after the other
    first = pytester.parseconfigure().stash[run_key]
    assert first._connections is None  # nothing is opened before a task asks
    connections = first.connections  # opened as the run's first task opens them, through run.engine()
    served = task_module.endpoint_for(first.owner)
    assert task_module.endpoint_for(first.owner) is served  # once per run
    assert connections._endpoints[first.session_id] is served  # held by the run, not the module
    first.end()
    second = pytester.parseconfigure().stash[run_key]
    assert second.session_id == first.session_id and second.connections is not connections
    assert task_module.endpoint_for(second.owner) is not served  # the first run's server stopped with it
    second.end()
