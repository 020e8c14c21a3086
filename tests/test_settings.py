"""The settings table: one precedence everywhere, checks when pytest starts, a run object per run. No Docker.

Configs come from ``pytester.parseconfig``: pytest's own option and ini parsing, in process, no tests run.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

# commands, task, run and runtime are imported here, not in a test: pytester forgets the modules a test
# imports, and a patch of a forgotten module would not be the one the run uses.
from pytest_ecstask import settings
from pytest_ecstask import task as task_module
from pytest_ecstask.commands import planned, shown
from pytest_ecstask.endpointids import EndpointInfo, EndpointRequest
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.options import DEFAULT_RELAY_IMAGE, TaskOptions
from pytest_ecstask.plan import PlanOptions, TaskPlan, build_plan
from pytest_ecstask.plugin import run_key
from pytest_ecstask.run import Run
from pytest_ecstask.runtime import Engine
from pytest_ecstask.settings import MARKER_ARGS, SETTINGS, for_task, resolve
from pytest_ecstask.task import Task
from pytest_ecstask.taskdef import TaskDefinition


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


def test_endpoint_modes_from_a_marker_and_what_is_refused() -> None:
    assert [for_task(TaskOptions(), {"endpoints": given}).endpoints for given in (True, False, "relay")] == [
        "auto",
        "off",
        "relay",
    ]
    with pytest.raises(EcsTaskError) as raised:
        for_task(TaskOptions(), {"endpoints": "remote"})
    assert "endpoints='remote' is not one of auto, local, relay, off" in str(raised.value)


def test_a_bad_endpoint_mode_on_the_command_line_is_refused_with_the_modes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-o", "ecs_endpoints=remote")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*endpoints: 'remote' is not one of auto, local, relay, off (*ecs_endpoints*)*"])


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
    from pytest_ecstask.endpointids import EndpointInfo
    from pytest_ecstask.lifecycle import new_session_id
    from pytest_ecstask.plugin import run_key

    monkeypatch.setattr(task_module, "_serve_endpoints", lambda *args: EndpointInfo(8123, "token", 1))
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


# -- the plan --ecs-plan shows is the plan a run makes ------------------------------------------------------
#
# Each setting of the table is given, once, to a pytest run, and the task definition is planned twice: by the
# --ecs-plan command (commands.planned) and by the run, as it starts the session task (Run.start_task, with a
# made-up engine and nothing started). The two plans are compared field by field of PlanOptions and by what
# --ecs-plan prints. A setting one path forgets makes its case fail.
#
# What cannot be compared, because a plan to show has no engine, no server and reads no inputs:
ONLY_A_RUN = {
    "task_id": "made up for each task",
    "created": "when the task is planned",
    "secret": "made up for each task; the endpoint ids derive from it",
    "endpoint": "the run's endpoint server: compared below is only when and on which port a run asks for it",
    "container_images": "the image hook is asked by a run only (it may build an image); the mapping is compared",
    "secret_values": "a run resolves secrets; a plan shows their names",
    "environment_files": "a run reads environment files; a plan leaves them to the run",
    "mask_secrets": "a plan to show, not to run",
}
# ... and of the owner, its session id and lease (the run's; a plan takes none); its host and keep are compared.
# The pause image tag is compared, but a run takes it from the engine's architecture: the made-up engine below
# says it is this machine's, which is what --ecs-plan assumes. A different engine is not covered here.


@dataclass(frozen=True)
class Sample:
    args: tuple[str, ...]
    changes_plan: bool  # the plan differs from the one without it: the case can tell a forgotten setting
    template: bool = False  # given to the task definition with a ${TAG} placeholder
    files: tuple[tuple[str, str], ...] = ()


SECRET_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/db"
ENV_FILE_ARN = "arn:aws:s3:::bucket/app.env"
SAMPLES = {
    "images": Sample(("--ecs-image=registry.example/web:*=local/web:2",), True),
    "pull": Sample(("--ecs-pull=never",), False),
    "stop_timeout": Sample(("--ecs-stop-timeout=7",), True),
    "start_timeout": Sample(("--ecs-start-timeout=0",), True),
    "keep": Sample(("--ecs-keep",), True),  # the owner's keep label
    "orphan_age": Sample(("--ecs-orphan-age=60",), False),
    "sweep_cap": Sample(("--ecs-sweep-cap=3",), False),
    "logs": Sample(("--ecs-logs=always",), False),
    "log_lines": Sample(("--ecs-log-lines=5",), False),
    "log_dir": Sample(("--ecs-log-dir=logs",), False),
    "show_secrets": Sample(("--ecs-show-secrets",), False),
    "endpoints": Sample(("--ecs-endpoints=off",), False),
    "assume_role": Sample(("--ecs-assume-role",), False),
    "cluster": Sample(("--ecs-cluster=other",), True),
    "region": Sample(("--ecs-region=eu-west-1",), True),
    "account_id": Sample(("--ecs-account-id=210987654321",), True),
    "availability_zone": Sample(("--ecs-availability-zone=us-east-1c",), True),
    "launch_type": Sample(("--ecs-launch-type=FARGATE",), True),
    "endpoint_port": Sample(("--ecs-endpoint-port=8080",), False),
    "relay_image": Sample(("--ecs-relay-image=local/python:3",), False),
    "task_credentials": Sample(("-o", "ecs_task_credentials=AKIAEXAMPLE:example-secret"), False),
    "variables": Sample(("--ecs-var=TAG=2",), True, template=True),
    "vars_file": Sample(("--ecs-vars-file=vars.env",), True, template=True, files=(("vars.env", "TAG=3\n"),)),
    # Templating on at all: the template cases' baseline has it already (without it they are refused).
    "template": Sample(("--ecs-template",), False, template=True),
    "secrets_file": Sample(
        ("--ecs-secrets-file=secrets.json",), False, files=(("secrets.json", json.dumps({SECRET_ARN: "file"})),)
    ),
    "environment_files": Sample(
        (f"--ecs-env-file={ENV_FILE_ARN}=local.env",), False, files=(("local.env", "FROM_FILE=local\n"),)
    ),
    "aws": Sample(("--ecs-aws",), False),  # the conftest's hooks answer before AWS would be asked
    # The AWS backend's settings change nothing on Docker (their requests: tests/test_ecsrequests.py).
    "aws_cluster": Sample(("--ecs-aws-cluster=ci",), False),
    "aws_launch_type": Sample(("--ecs-aws-launch-type=EC2",), False),
    "aws_capacity_providers": Sample(("--ecs-aws-capacity-provider=FARGATE_SPOT:1",), False),
    "aws_subnets": Sample(("--ecs-aws-subnet=subnet-0a1b2c3d",), False),
    "aws_security_groups": Sample(("--ecs-aws-security-group=sg-0a1b2c3d",), False),
    "aws_public_ip": Sample(("--ecs-aws-public-ip",), False),
    "aws_family_suffix": Sample(("--ecs-aws-family-suffix=-ci",), False),
}
NOT_SAMPLED = {
    "taskdef": "given in every case",
    "plan": "the command under test",
    "json": "how --ecs-plan prints, not what it plans",
    "sweep_orphans": "a command that sweeps instead of running tests",
    "dry_run": "with --ecs-sweep-orphans only",
    "force": "with --ecs-sweep-orphans only",
    "include_kept": "with --ecs-sweep-orphans only",
    "reuse": "whether the session task is kept and adopted, not what is planned (tests/test_reuse.py)",
    # Only a marker or factory call gives these: --ecs-plan has none to read.
    "check": "marker only",
    "wait_for": "marker only",
    "overrides": "marker only",
    "secrets": "marker only",
    "credentials": "marker only",
    "backend": "aws: --ecs-plan prints the requests to ECS, and a run is refused (tests/test_ecsrequests.py)",
}

PLANNED_TASK = {
    "family": "shop",
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {
            "name": "db",
            "image": "registry.example/db:16",
            "healthCheck": {"command": ["CMD", "true"]},
            "portMappings": [{"containerPort": 5432}],
        },
        {
            "name": "app",
            "image": "registry.example/web:1",
            "environment": [{"name": "MODE", "value": "prod"}],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}],
            "environmentFiles": [{"value": ENV_FILE_ARN, "type": "s3"}],
            "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
            "portMappings": [{"containerPort": 80}],
        },
    ],
}
PLANNED_CONFTEST = """
def pytest_ecstask_resolve_secret(reference, container):
    return "from-the-hook"

def pytest_ecstask_resolve_environment_file(value, container):
    return "FROM_FILE=the-hook\\n"
"""


class MadeUpEngine:
    """An engine of this machine's architecture that has the pause image: all a run asks of it to plan."""

    host = "localhost"

    def version(self) -> dict[str, str]:
        return {"Arch": platform.machine()}

    def inspect_image(self, tag: str) -> dict[str, str]:
        return {}


@dataclass
class BothPlans:
    shown: tuple[TaskDefinition, TaskPlan]  # by --ecs-plan
    run: tuple[TaskDefinition, TaskPlan] | None  # by a run, for its session task (when asked for)
    endpoint_asked: list[EndpointRequest]  # how a run asked for its endpoint server


@pytest.fixture
def plan_both(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Callable[..., BothPlans]:
    engine = Engine(MadeUpEngine(), MadeUpEngine.host)  # type: ignore[arg-type]
    monkeypatch.setattr(Run, "engine", lambda run: engine)
    monkeypatch.setattr(Task, "start", lambda task: task)  # planned, nothing started
    asked: list[EndpointRequest] = []

    def serve(
        owner: Any, request: EndpointRequest, engine_host: str, engine: Any = None, prepared: Any = None
    ) -> EndpointInfo:
        asked.append(request)
        return EndpointInfo(request.port or 49153, "token", 0)

    monkeypatch.setattr(task_module, "_serve_endpoints", serve)
    monkeypatch.setenv("TAG", "1")  # the template's value when no setting gives one
    pytester.makeconftest(PLANNED_CONFTEST)
    plain = json.dumps(PLANNED_TASK, indent=2)
    pytester.makefile(".json", plain=plain, template=plain.replace("web:1", "web:${TAG}"))

    def plan(sample: Sample, run_too: bool = True) -> BothPlans:
        for name, text in sample.files:
            pytester.path.joinpath(name).write_text(text)
        asked.clear()
        taskdef = "--ecs-taskdef=template.json" if sample.template else "--ecs-taskdef=plain.json"
        config = pytester.parseconfigure(taskdef, *sample.args)
        by_plan = planned(config)
        if not run_too:
            return BothPlans(by_plan, None, [])
        run = config.stash[run_key]
        _ = run.connections  # the run's own endpoint servers, not the process's
        assert run.settings.taskdef is not None
        task = run.start_task(run.settings.taskdef, {}, Path.cwd())  # as the session task starts
        run.open_tasks.remove(task)  # nothing to remove: nothing was created
        return BothPlans(by_plan, (task.definition, task.plan), list(asked))

    return plan


def compared(by: tuple[TaskDefinition, TaskPlan], made_up: PlanOptions) -> tuple[PlanOptions, dict[str, Any]]:
    """A plan's options and what --ecs-plan prints of it, with what only a run knows taken from ``made_up``."""
    taskdef, plan = by
    owner = replace(plan.options.owner, session_id=made_up.owner.session_id, lease=made_up.owner.lease)
    options = replace(plan.options, owner=owner, **{name: getattr(made_up, name) for name in ONLY_A_RUN})
    return options, shown(taskdef, build_plan(taskdef, options))


def test_every_setting_is_sampled_or_said_why_not() -> None:
    assert not set(SAMPLES) & set(NOT_SAMPLED)
    assert set(SAMPLES) | set(NOT_SAMPLED) == {s.name for s in SETTINGS}
    assert set(ONLY_A_RUN) < set(PlanOptions.__dataclass_fields__)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_plan_command_plans_as_a_run_does(name: str, plan_both: Callable[..., BothPlans]) -> None:
    sample = SAMPLES[name]
    both = plan_both(sample)
    assert both.run is not None
    made_up = both.shown[1].options
    run_options, run_data = compared(both.run, made_up)
    shown_options, shown_data = compared(both.shown, made_up)
    differ = [f for f in PlanOptions.__dataclass_fields__ if getattr(run_options, f) != getattr(shown_options, f)]
    assert not differ, (
        f"{name}: --ecs-plan and a run disagree on {differ}: {[(getattr(run_options, f), getattr(shown_options, f)) for f in differ]}"
    )
    assert shown_data == run_data
    # The endpoint server: asked for by the run exactly when endpoints are on, on the port the settings say.
    endpoints_on = name != "endpoints"
    port = 8080 if name == "endpoint_port" else 0
    relay_image = "local/python:3" if name == "relay_image" else DEFAULT_RELAY_IMAGE
    pull = "never" if name == "pull" else "missing"
    asked = EndpointRequest("auto", port, relay_image, pull)
    assert both.endpoint_asked == ([asked] if endpoints_on else [])
    assert (both.run[1].options.endpoint is not None) is endpoints_on and made_up.endpoint is None
    # Without the setting, the plan is another one when the setting is said to change it.
    baseline = plan_both(Sample(("--ecs-template",) if sample.template else (), False, sample.template), run_too=False)
    assert (compared(baseline.shown, made_up) != (shown_options, shown_data)) is sample.changes_plan
