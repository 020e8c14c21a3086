"""pytest glue only: options and ini keys, the marker, the fixtures, the report header, the sweep command.

Nothing here imports the docker SDK at import time, and no Docker connection is opened until a test asks
for a task: installing the plugin costs a suite that does not use it nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ecstask import __version__
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.lifecycle import SESSION_ENV, Lease, Owner, host_id, lease_dir, new_session_id

if TYPE_CHECKING:
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.runtime import Engine
    from pytest_ecstask.task import Task, TaskSource

MARKER_ARGS = (
    "images",
    "pull",
    "stop_timeout",
    "start_timeout",
    "check",
    "endpoints",
    "credentials",
    "cluster",
    "region",
    "account_id",
    "availability_zone",
    "launch_type",
    "wait_for",
    "overrides",
    "secrets",
    "variables",
)
# Settings that are plain strings with an option, an ini key and a marker argument each.
TASK_TEXT_SETTINGS = {
    "cluster": ("--ecs-cluster", "DEFAULT_CLUSTER", "the cluster name in task ARNs, labels and metadata"),
    "region": ("--ecs-region", "DEFAULT_REGION", "the region in ARNs and metadata, and AWS_REGION"),
    "account_id": ("--ecs-account-id", "DEFAULT_ACCOUNT_ID", "the account id in ARNs"),
    "availability_zone": ("--ecs-availability-zone", "DEFAULT_AVAILABILITY_ZONE", "AvailabilityZone in metadata"),
    "launch_type": ("--ecs-launch-type", "DEFAULT_LAUNCH_TYPE", "LaunchType in metadata"),
}
DEFAULT_START_TIMEOUT = 300.0


@dataclass
class Run:
    """This pytest run as the plugin sees it; one per process (the xdist controller and each worker)."""

    session_id: str
    owner: Owner
    lease: Lease | None  # held by the controller (or the only process); workers name the controller's
    is_worker: bool
    open_tasks: list[Task] = field(default_factory=list)
    startups: list[tuple[str, float]] = field(default_factory=list)  # (family:revision, seconds to start)
    notes: list[str] = field(default_factory=list)  # for the terminal summary
    kept: list[Task] = field(default_factory=list)
    swept: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def session_dir(self) -> Path:
        """Files the processes of one run share (the xdist session task); removed at the end of the run."""
        return lease_dir() / f"{self.session_id}.d"


run_key = pytest.StashKey[Run]()
# Kept for plugins and tests that read the id directly.
session_id_key = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ecstask", "run an Amazon ECS task definition on Docker")
    group.addoption(
        "--ecs-taskdef",
        metavar="PATH",
        help="task definition (JSON) for the session-scoped ecs_task fixture. ini: ecs_taskdef",
    )
    group.addoption(
        "--ecs-pull",
        choices=("missing", "always", "never"),
        help="when to pull a task's images: missing (default), always, never. ini: ecs_pull",
    )
    group.addoption(
        "--ecs-image",
        action="append",
        default=[],
        metavar="NAME=LOCAL",
        help="run LOCAL wherever a task definition names image NAME (exact, or a glob like '*/app:*'); "
        "repeatable. ini: ecs_images",
    )
    group.addoption(
        "--ecs-stop-timeout",
        metavar="SECONDS",
        help="seconds between SIGTERM and SIGKILL for every container, instead of each stopTimeout "
        "(ECS default 30). ini: ecs_stop_timeout",
    )
    group.addoption(
        "--ecs-start-timeout",
        metavar="SECONDS",
        help=f"how long a dependent waits for a dependency without startTimeout (default {DEFAULT_START_TIMEOUT:g}; "
        "0 = no limit, as in ECS). ini: ecs_start_timeout",
    )
    group.addoption(
        "--ecs-keep",
        action="store_true",
        default=None,
        help="leave every task running after the run, for debugging; prints how to reach and remove them. "
        "ini: ecs_keep",
    )
    group.addoption(
        "--ecs-sweep-orphans",
        action="store_true",
        help="remove what dead runs left on the engine, then exit without running tests",
    )
    group.addoption("--ecs-dry-run", action="store_true", help="with --ecs-sweep-orphans: list, remove nothing")
    group.addoption(
        "--ecs-orphan-age",
        metavar="SECONDS",
        help="resources made from another host (whose runs cannot be checked) go when older than this "
        "(default 7200). ini: ecs_orphan_age",
    )
    group.addoption(
        "--ecs-sweep-cap",
        metavar="N",
        help="refuse a sweep that would remove more than N resources, unless --ecs-force (default 300). "
        "ini: ecs_sweep_cap",
    )
    group.addoption("--ecs-force", action="store_true", help="with --ecs-sweep-orphans: remove past the safety cap")
    group.addoption(
        "--ecs-include-kept",
        action="store_true",
        help="with --ecs-sweep-orphans: also remove tasks kept with --ecs-keep",
    )
    group.addoption("--ecs-json", action="store_true", help="with --ecs-sweep-orphans or --ecs-plan: print JSON")
    group.addoption(
        "--ecs-plan",
        action="store_true",
        help="print the launch plan of --ecs-taskdef (order, gates, images, commands, env names, ports, mounts) "
        "without starting anything, then exit",
    )
    group.addoption(
        "--ecs-logs",
        choices=("on-failure", "always", "never"),
        help="attach the task's logs and timeline to test reports: on-failure (default), always, never. ini: ecs_logs",
    )
    group.addoption(
        "--ecs-log-lines", metavar="N", help="log lines per container in reports (default 50). ini: ecs_log_lines"
    )
    group.addoption(
        "--ecs-log-dir",
        metavar="DIR",
        help="write every container's full log there, one file per "
        "container per task (for CI artifacts). ini: ecs_log_dir",
    )
    group.addoption(
        "--ecs-show-secrets",
        action="store_true",
        default=None,
        help="show resolved secret values in logs, reports and log files instead of ****** (local debugging "
        "only: CI logs are often public). ini: ecs_show_secrets",
    )
    group.addoption(
        "--ecs-endpoints",
        choices=("auto", "off"),
        help="serve the task metadata and credentials endpoints at 169.254.170.2: auto (default: where the "
        "engine is local) or off. ini: ecs_endpoints",
    )
    group.addoption(
        "--ecs-assume-role",
        action="store_true",
        default=None,
        help="serve task-role credentials from an STS AssumeRole of the taskRoleArn, with your own AWS "
        "credentials (needs boto3). ini: ecs_assume_role",
    )
    for key, (flag, _, what) in TASK_TEXT_SETTINGS.items():
        group.addoption(flag, metavar=key.upper(), help=f"{what}. ini: ecs_{key}")
    group.addoption(
        "--ecs-endpoint-port",
        metavar="PORT",
        help="port of the endpoint server on 169.254.170.2: 80 gives the exact ECS form "
        "(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) but keeps tasks from publishing hostPort 80; default: any "
        "free port, with AWS_CONTAINER_CREDENTIALS_FULL_URI. ini: ecs_endpoint_port",
    )
    parser.addini("ecs_endpoint_port", "port of the endpoint server (80 = the exact ECS form)", default="")
    parser.addini("ecs_endpoints", "serve the metadata and credentials endpoints: auto or off", default="auto")
    parser.addini("ecs_assume_role", "task-role credentials from STS AssumeRole", type="bool", default=False)
    parser.addini(
        "ecs_task_credentials",
        "static task-role credentials served to containers: ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]",
        default="",
    )
    for key, (_, _, what) in TASK_TEXT_SETTINGS.items():
        parser.addini(f"ecs_{key}", what, default="")
    group.addoption(
        "--ecs-var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fill ${NAME} in task definition templates; repeatable. ini: ecs_vars",
    )
    group.addoption(
        "--ecs-vars-file",
        metavar="PATH",
        help="template variables from a JSON, YAML or NAME=VALUE file. ini: ecs_vars_file",
    )
    group.addoption(
        "--ecs-template",
        action="store_true",
        default=None,
        help="treat task definitions as templates even without --ecs-var (values from the "
        "environment). ini: ecs_template",
    )
    group.addoption(
        "--ecs-secrets-file",
        metavar="PATH",
        help="secret values by parameter name or ARN (JSON or YAML). ini: ecs_secrets_file",
    )
    group.addoption(
        "--ecs-env-file",
        action="append",
        default=[],
        metavar="VALUE=PATH",
        help="read environmentFiles entry VALUE (an S3 ARN) from local PATH; repeatable. ini: ecs_env_files",
    )
    group.addoption(
        "--ecs-aws",
        action="store_true",
        default=None,
        help="read secrets (SSM, Secrets Manager) and S3 environment files from real AWS with your own "
        "credentials (needs boto3). ini: ecs_aws",
    )
    parser.addini("ecs_vars", "template variables, one NAME=VALUE a line", type="linelist", default=[])
    parser.addini("ecs_vars_file", "template variables file (JSON, YAML or NAME=VALUE lines)", default="")
    parser.addini("ecs_template", "treat task definitions as templates", type="bool", default=False)
    parser.addini("ecs_secrets_file", "secret values by parameter name or ARN (JSON or YAML)", default="")
    parser.addini("ecs_env_files", "environment file mappings, one VALUE=PATH a line", type="linelist", default=[])
    parser.addini("ecs_aws", "read secrets and S3 environment files from real AWS", type="bool", default=False)
    parser.addini("ecs_logs", "attach logs and timeline to reports: on-failure, always, never", default="on-failure")
    parser.addini("ecs_log_lines", "log lines per container in reports", default="50")
    parser.addini("ecs_log_dir", "directory for every container's full log", default="")
    parser.addini(
        "ecs_show_secrets", "show resolved secret values in logs and reports (debugging)", type="bool", default=False
    )
    parser.addini("ecs_taskdef", "task definition for the session-scoped ecs_task fixture (relative to the ini file)")
    parser.addini("ecs_pull", "when to pull images: missing, always, never", default="missing")
    parser.addini("ecs_images", "image mappings, one NAME=LOCAL a line", type="linelist", default=[])
    parser.addini("ecs_stop_timeout", "seconds between SIGTERM and SIGKILL for every container", default="")
    parser.addini("ecs_start_timeout", "default wait for a dependency's condition (0 = no limit)", default="")
    parser.addini("ecs_keep", "leave every task running after the run, for debugging", type="bool", default=False)
    parser.addini("ecs_orphan_age", "age in seconds past which another host's leftovers are swept", default="")
    parser.addini("ecs_sweep_cap", "most resources one sweep may remove without --ecs-force", default="")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_ecstask import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


# -- the sweep command -----------------------------------------------------------------------------------


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("ecs_plan"):
        try:
            return _print_plan(config)
        except Exception as exc:
            # Never a raw traceback, and never the exception's text: it may quote a value of the file.
            print(
                f"ERROR: --ecs-plan stopped on an unexpected {type(exc).__name__} while reading "
                f"{_session_taskdef_path(config)}. This is a bug in pytest-ecstask {__version__}: please report "
                "it with the task definition, its values replaced (they are not shown here, they may be secrets).",
                file=sys.stderr,
            )
            return int(pytest.ExitCode.INTERNAL_ERROR)
    if not config.getoption("ecs_sweep_orphans"):
        return None
    from pytest_ecstask.errors import DockerUnavailable
    from pytest_ecstask.sweep import EXIT_NO_ENGINE, sweep
    from pytest_ecstask.task import get_engine

    try:
        max_age, cap = sweep_limits(config)
    except EcsTaskError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    try:
        engine = get_engine()
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
    if config.getoption("ecs_json"):
        print(report.as_json())
    else:
        print("\n".join(report.lines()))
    return report.exit_code


def _print_plan(config: pytest.Config) -> int:
    """--ecs-plan: the launch plan, from the task definition alone; nothing is started, Docker is not asked."""
    import platform

    from pytest_ecstask.lifecycle import Owner, new_task_id, now_rfc3339
    from pytest_ecstask.pause import normalize_architecture, pause_image_tag
    from pytest_ecstask.plan import PlanOptions, build_plan, format_plan, plan_data

    path = _session_taskdef_path(config)
    if path is None:
        print(
            "ERROR: --ecs-plan needs a task definition: --ecs-taskdef=PATH or the ecs_taskdef ini key", file=sys.stderr
        )
        return int(pytest.ExitCode.USAGE_ERROR)
    from pytest_ecstask.task import load_source

    try:
        options = task_options(config, {})
        taskdef = load_source(path, options=options)  # rendered and adjusted, as a run would load it
        try:
            pause = pause_image_tag(normalize_architecture(platform.machine()))
        except ValueError:
            pause = "pytest-ecstask/pause"
        plan = build_plan(
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
    except EcsTaskError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    secrets = {c.name: [str(x["name"]) for x in c.raw.get("secrets") or []] for c in taskdef.containers}
    data = plan_data(plan, secrets)
    print(json.dumps(data, indent=2) if config.getoption("ecs_json") else format_plan(data))
    return 0


def sweep_limits(config: pytest.Config) -> tuple[float, int]:
    from pytest_ecstask.sweep import DEFAULT_CAP, DEFAULT_MAX_AGE

    age = config.getoption("ecs_orphan_age")
    max_age = (
        _parse_seconds(age, "--ecs-orphan-age")
        if age not in (None, "")
        else _parse_seconds(config.getini("ecs_orphan_age"), "ini ecs_orphan_age")
    )
    cap_text = config.getoption("ecs_sweep_cap") or config.getini("ecs_sweep_cap") or str(DEFAULT_CAP)
    try:
        cap = int(cap_text)
    except ValueError:
        cap = -1
    if cap < 0:
        raise EcsTaskError(f"--ecs-sweep-cap / ini ecs_sweep_cap: {cap_text!r} is not a whole number >= 0")
    return (DEFAULT_MAX_AGE if max_age is None else max_age), cap


# -- the run ---------------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ecs_task(path, **options): run this task definition for the test; the ecs_task fixture gives it to "
        f"the test. Options: {', '.join(MARKER_ARGS)}",
    )
    if config.option.help:
        return
    try:
        options = task_options(config, {})  # a bad option value is a usage error now, not at the first task
        sweep_limits(config)
        report_settings(config)
        path = _session_taskdef_path(config)
        if path is not None:
            # A broken task definition is a usage error: said once, before any test runs. Rendered and
            # adjusted as a run would, so a template given with --ecs-var passes.
            from pytest_ecstask.task import load_source

            load_source(path, options=options)
    except EcsTaskError as exc:
        raise pytest.UsageError(str(exc)) from None

    keep = bool(config.getoption("ecs_keep") or config.getini("ecs_keep"))
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "ecstask_session" in workerinput:
        session_id = str(workerinput["ecstask_session"])
        lease = None
        lease_path = str(workerinput["ecstask_lease"])
    else:
        from filelock import Timeout

        session_id = os.environ.get(SESSION_ENV) or new_session_id()
        # Held for the whole run: the OS lets go of it when this process dies, however it dies.
        try:
            lease = Lease.acquire(session_id)
        except Timeout:
            raise pytest.UsageError(
                f"session id {session_id!r} (from {SESSION_ENV}) is in use by another run that is still going; "
                "give each run its own id"
            ) from None
        lease_path = str(lease.path)
    run = Run(session_id, Owner(session_id, host_id(), lease_path, keep), lease, is_worker=workerinput is not None)
    config.stash[run_key] = run
    config.stash[session_id_key] = session_id
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistSessionSharing(), "ecstask-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(run_key, None)
    if run is not None and run.lease is not None:
        shutil.rmtree(run.session_dir, ignore_errors=True)
        run.lease.release()


class XdistSessionSharing:
    """Hands the controller's session id and lease to every xdist worker, so one run is one owner."""

    def pytest_configure_node(self, node: Any) -> None:
        run = node.config.stash[run_key]
        node.workerinput["ecstask_session"] = run.session_id
        node.workerinput["ecstask_lease"] = run.owner.lease


def pytest_report_header(config: pytest.Config) -> str | None:
    run = config.stash.get(run_key, None)
    if run is None:
        return None
    path = _session_taskdef_path(config)
    where = f", taskdef {path}" if path else ""
    keep = ", keeping tasks (--ecs-keep)" if run.owner.keep else ""
    shown = ", SECRET VALUES SHOWN UNMASKED (--ecs-show-secrets)" if show_secrets(config) else ""
    mode = config.getoption("ecs_endpoints") or config.getini("ecs_endpoints") or "auto"
    from pytest_ecstask.endpoints import ENDPOINT_IP

    endpoints = "endpoints off" if mode == "off" else f"endpoints at {ENDPOINT_IP} (started with the first task)"
    return f"ecstask: session {run.session_id}{where}, lease {run.owner.lease}, {endpoints}{keep}{shown}"


def show_secrets(config: pytest.Config) -> bool:
    return bool(config.getoption("ecs_show_secrets") or config.getini("ecs_show_secrets"))


def engine_for(config: pytest.Config) -> Engine:
    """The Docker engine; on a run's first use, it is first swept of dead runs' leftovers."""
    from pytest_ecstask.sweep import sweep
    from pytest_ecstask.task import get_engine

    run = config.stash[run_key]
    engine = get_engine()
    with run.lock:
        if not run.swept:
            run.swept = True
            run.session_dir.mkdir(parents=True, exist_ok=True)  # tells the controller Docker was used
            max_age, cap = sweep_limits(config)
            report = sweep(engine.api, max_age=max_age, cap=cap, live_sessions=[run.session_id])
            removed = len(report.chosen) - len(report.failed)
            if removed or report.failed or report.refused:
                # Said in the terminal summary: during a test's setup, output capture would hide it.
                run.notes.extend(
                    line.replace("ecstask sweep: ", "sweep: ")
                    for line in (report.lines()[-1:] if not report.refused else report.lines()[:1])
                )
    return engine


@pytest.hookimpl(trylast=True)  # after pytest's own teardown of session fixtures
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    run = config.stash.get(run_key, None)
    if run is None:
        return
    # The fixtures' own teardown comes first; this is the net behind it (an interrupted setup, a task never
    # closed), and at the controller of an xdist run, the one removal of the shared session task.
    for task in reversed(run.open_tasks):
        _close(config, task, finishing=True)
    if not run.is_worker and run.session_dir.exists():
        from pytest_ecstask.endpoints import stop_server

        try:
            if not run.owner.keep:
                _remove_session_task(config, run)
                _remove_everything_of(config, run)
        finally:
            # Kept tasks lose their endpoints with the run: the server lives as long as the run's lease.
            stop_server(run.session_dir)


def _remove_session_task(config: pytest.Config, run: Run) -> None:
    record_path = run.session_dir / "session-task.json"
    if not record_path.exists():
        return
    record = json.loads(record_path.read_text())
    if "task_id" not in record:
        return
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # endpoint warnings were given when the task started
            task = _session_task_from(config, run, record, owned=True)
    except Exception as exc:
        # The removal by label that follows still removes it, without the ordered stop.
        _warn(config, f"ecstask: the session task is removed without its stop order: {type(exc).__name__}: {exc}")
        return
    with deferred_interrupts(reraise=False):
        task.close()
    _write_log_dir(config, task)


def _remove_everything_of(config: pytest.Config, run: Run) -> None:
    """Whatever a crashed worker left: everything labelled with this session goes."""
    from pytest_ecstask.lifecycle import LABEL_SESSION
    from pytest_ecstask.runtime import list_resources, remove_resources
    from pytest_ecstask.task import get_engine

    try:
        api = get_engine().api
        with deferred_interrupts(reraise=False):
            failures = remove_resources(api, list_resources(api, f"{LABEL_SESSION}={run.session_id}"))
    except EcsTaskError as exc:
        failures = []
        _warn(config, f"ecstask: could not check the engine for leftovers: {exc}")
    for resource, why in failures:
        _warn(config, f"ecstask: could not remove {resource.kind} {resource.name}: {why}")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(run_key, None)
    if run is not None and run.startups and config.get_verbosity() >= 0:
        # One compact line instead of live output that would break pytest's progress line.
        slowest = max(run.startups, key=lambda s: s[1])
        total = sum(s[1] for s in run.startups)
        terminalreporter.write_line(
            f"ecstask: started {len(run.startups)} task(s) in {total:.1f} s; slowest {slowest[0]} {slowest[1]:.1f} s"
        )
    for note in run.notes if run is not None else []:
        terminalreporter.write_line(f"ecstask: {note}", yellow=True)
    if run is not None and run.owner.keep and not run.kept and run.session_dir.exists():
        # xdist: the workers kept them; the controller only knows the session.
        terminalreporter.write_line(f"ecstask: tasks of session {run.session_id} were kept running (--ecs-keep)")
        for line in removal_recipe(run.session_id):
            terminalreporter.write_line(line)
    if run is None or not run.kept:
        return
    terminalreporter.section("ecstask: tasks kept running (--ecs-keep)")
    for task in run.kept:
        terminalreporter.write_line(f"task {task.family}:{task.revision} {task.id} ({task.status})")
        for c in task.containers.values():
            ports = []
            for p in c._state.plan.ports:
                with suppress(EcsTaskError):
                    ports.append(f"{p.key} -> {c.host}:{c.port(p.container_port, p.protocol)}")
            terminalreporter.write_line(f"  {c.name}: docker container {c.docker_name} {' '.join(ports)}")
    for line in removal_recipe(run.session_id):
        terminalreporter.write_line(line)


def removal_recipe(session_id: str) -> list[str]:
    """How to remove kept tasks: every kept run, or this one's containers, then its networks and volumes.

    Containers go first: Docker refuses to remove a network or volume a container still uses. ``xargs -r``
    (GNU, BSD and busybox alike) runs nothing for an empty list, as in host mode, which has no network.
    """
    from pytest_ecstask.lifecycle import LABEL_SESSION

    label = f"label={LABEL_SESSION}={session_id}"
    return [
        "remove them with: pytest --ecs-sweep-orphans --ecs-include-kept",
        "or this run's alone, with the docker CLI:",
        f"  docker ps -aq --filter {label} | xargs -r docker rm -f",
        f"  docker network ls -q --filter {label} | xargs -r docker network rm",
        f"  docker volume ls -q --filter {label} | xargs -r docker volume rm",
    ]


def _warn(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line, red=True)
    else:
        print(line, file=sys.stderr)


@contextmanager
def deferred_interrupts(reraise: bool = True) -> Iterator[None]:
    """Ctrl-C while removing a task is held back until the removal is done, so nothing is left half-removed.

    It is raised afterwards (``reraise``), except at session finish, where the run is ending anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        if not interrupted:
            print("\necstask: removing tasks, please wait (interrupt again after this finishes)", file=sys.stderr)
        interrupted.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted and reraise:
        raise KeyboardInterrupt


# -- settings: marker > command line > ini > default ---------------------------------------------------


def _session_taskdef_path(config: pytest.Config) -> Path | None:
    given = config.getoption("ecs_taskdef")
    if given:
        return Path(config.invocation_params.dir, given)
    ini = config.getini("ecs_taskdef")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return Path(base, str(ini))
    return None


def _parse_seconds(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise EcsTaskError(f"{what}: {value!r} is not a number of seconds") from None
    if seconds < 0:
        raise EcsTaskError(f"{what}: {value!r} must not be negative")
    return seconds


def parse_image_mappings(entries: list[str], what: str) -> dict[str, str]:
    mappings = {}
    for entry in entries:
        name, sep, local = entry.partition("=")
        if not sep or not name.strip() or not local.strip():
            raise EcsTaskError(f"{what}: {entry!r} is not NAME=LOCAL")
        mappings[name.strip()] = local.strip()
    return mappings


def task_options(config: pytest.Config, marker_kwargs: Mapping[str, Any]) -> TaskOptions:
    from pytest_ecstask.options import TaskOptions

    unknown = sorted(set(marker_kwargs) - set(MARKER_ARGS))
    if unknown:
        raise EcsTaskError(f"ecs_task: unknown argument(s) {', '.join(unknown)}; known: {', '.join(MARKER_ARGS)}")
    # Highest precedence first: for an exact name and for the first matching glob alike.
    images: dict[str, str] = {}
    for source in (
        dict(marker_kwargs.get("images") or {}),
        parse_image_mappings(config.getoption("ecs_image"), "--ecs-image"),
        parse_image_mappings(list(config.getini("ecs_images")), "ini ecs_images"),
    ):
        for name, local in source.items():
            images.setdefault(name, local)
    pull = marker_kwargs.get("pull") or config.getoption("ecs_pull") or config.getini("ecs_pull") or "missing"
    if pull not in ("missing", "always", "never"):
        raise EcsTaskError(f"pull policy {pull!r} is not one of missing, always, never (--ecs-pull, ini ecs_pull)")

    def seconds(key: str) -> float | None:
        if marker_kwargs.get(key) is not None:
            return _parse_seconds(marker_kwargs[key], f"ecs_task({key}=...)")
        option = config.getoption(f"ecs_{key}")
        if option not in (None, ""):
            return _parse_seconds(option, f"--ecs-{key.replace('_', '-')}")
        return _parse_seconds(config.getini(f"ecs_{key}"), f"ini ecs_{key}")

    start_timeout = seconds("start_timeout")
    if start_timeout is None:
        start_timeout = DEFAULT_START_TIMEOUT
    from pytest_ecstask import options as plan

    text: dict[str, str] = {}
    for key, (_flag, default_name, _) in TASK_TEXT_SETTINGS.items():
        value = marker_kwargs.get(key) or config.getoption(f"ecs_{key}") or config.getini(f"ecs_{key}")
        text[key] = str(value or getattr(plan, default_name))
    if text["region"] != plan.DEFAULT_REGION and text["availability_zone"] == plan.DEFAULT_AVAILABILITY_ZONE:
        text["availability_zone"] = f"{text['region']}a"  # a zone of the region given, unless one is given
    endpoints = marker_kwargs.get("endpoints")
    if endpoints is None:
        mode = config.getoption("ecs_endpoints") or config.getini("ecs_endpoints") or "auto"
        if mode not in ("auto", "off"):
            raise EcsTaskError(f"endpoints: {mode!r} is not auto or off (--ecs-endpoints, ini ecs_endpoints)")
        endpoints = mode == "auto"
    port_text = str(config.getoption("ecs_endpoint_port") or config.getini("ecs_endpoint_port") or "0")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise EcsTaskError(f"--ecs-endpoint-port / ini ecs_endpoint_port: {port_text!r} is not a port number")
    static = str(config.getini("ecs_task_credentials") or "")
    if static:
        from pytest_ecstask.credentials import parse_static

        parse_static(static, "ini ecs_task_credentials")  # a usage error at start-up, not at the first task
    return TaskOptions(
        images=images,
        pull=str(pull),
        stop_timeout=seconds("stop_timeout"),
        start_timeout=start_timeout or None,  # 0 = no limit
        check=bool(marker_kwargs.get("check", True)),
        endpoints=bool(endpoints),
        endpoint_port=int(port_text),
        credentials=marker_kwargs.get("credentials"),
        assume_role=bool(config.getoption("ecs_assume_role") or config.getini("ecs_assume_role")),
        wait_for=dict(marker_kwargs.get("wait_for") or {}),
        variables=_variables(config, marker_kwargs),
        template=bool(config.getoption("ecs_template") or config.getini("ecs_template")),
        secrets=dict(marker_kwargs.get("secrets") or {}),
        secret_resolvers=_secret_resolvers(config),
        aws=bool(config.getoption("ecs_aws") or config.getini("ecs_aws")),
        environment_files=_environment_file_paths(config),
        environment_file_resolver=lambda value, container: config.hook.pytest_ecstask_resolve_environment_file(
            value=value, container=container
        ),
        overrides=dict(marker_kwargs.get("overrides") or {}),
        adjust=lambda definition, source: config.hook.pytest_ecstask_adjust_task_definition(
            definition=definition, source=source
        ),
        image_resolver=lambda image, container: config.hook.pytest_ecstask_resolve_image(
            image=image, container=container
        ),
        registry_auth=lambda image, container: config.hook.pytest_ecstask_registry_credentials(
            image=image, container=container
        ),
        show_secrets=show_secrets(config),
        cluster=text["cluster"],
        region=text["region"],
        account_id=text["account_id"],
        availability_zone=text["availability_zone"],
        launch_type=text["launch_type"],
    )


def _relative_to_ini(config: pytest.Config, value: str) -> Path:
    base = config.inipath.parent if config.inipath else config.rootpath
    return Path(base, value)


def _variables(config: pytest.Config, marker_kwargs: Mapping[str, Any]) -> dict[str, str]:
    """Template values, highest precedence first: marker, command line, ini, vars file."""
    values: dict[str, str] = {}
    path = config.getoption("ecs_vars_file")
    if not (
        path
        or config.getini("ecs_vars_file")
        or config.getini("ecs_vars")
        or config.getoption("ecs_var")
        or marker_kwargs.get("variables")
    ):
        return values  # no templating asked for: nothing to import or read
    from pytest_ecstask.variables import load_vars_file, parse_var_assignments

    if path:
        values.update(load_vars_file(Path(config.invocation_params.dir, path)))
    elif config.getini("ecs_vars_file"):
        values.update(load_vars_file(_relative_to_ini(config, str(config.getini("ecs_vars_file")))))
    values.update(parse_var_assignments(list(config.getini("ecs_vars")), "ini ecs_vars"))
    values.update(parse_var_assignments(config.getoption("ecs_var"), "--ecs-var"))
    values.update({str(k): str(v) for k, v in dict(marker_kwargs.get("variables") or {}).items()})
    return values


_secrets_files: dict[Path, Any] = {}


def _secret_resolvers(config: pytest.Config) -> list[Any]:
    """The secrets file, then the hook; real AWS comes last (TaskOptions.aws)."""
    resolvers: list[Any] = []
    given = config.getoption("ecs_secrets_file")
    path = (
        Path(config.invocation_params.dir, given)
        if given
        else (
            _relative_to_ini(config, str(config.getini("ecs_secrets_file")))
            if config.getini("ecs_secrets_file")
            else None
        )
    )
    if path is not None:
        from pytest_ecstask.secretvalues import load_secrets_file, local_resolver

        if path not in _secrets_files:
            _secrets_files[path] = local_resolver(load_secrets_file(path))
        resolvers.append(_secrets_files[path])
    resolvers.append(lambda reference: config.hook.pytest_ecstask_resolve_secret(reference=reference, container=""))
    return resolvers


def _environment_file_paths(config: pytest.Config) -> dict[str, str]:
    mappings = {}
    for entry, where, base in [(e, "ini ecs_env_files", None) for e in config.getini("ecs_env_files")] + [
        (e, "--ecs-env-file", config.invocation_params.dir) for e in config.getoption("ecs_env_file")
    ]:
        value, sep, path = str(entry).rpartition("=")
        if not sep or not value or not path:
            raise EcsTaskError(f"{where}: {entry!r} is not VALUE=PATH")
        mappings[value] = str(Path(base, path) if base else _relative_to_ini(config, path))
    return mappings


# -- fixtures --------------------------------------------------------------------------------------------


class TaskFactory:
    """Starts tasks inside a test; every one is stopped and removed at the test's teardown."""

    def __init__(
        self, config: pytest.Config, base_dir: Path, credentials: Mapping[str, str] | None, item: pytest.Item
    ) -> None:
        self._config = config
        self._base_dir = base_dir
        self._credentials = credentials
        self._item = item
        self.tasks: list[Task] = []

    def __call__(self, source: TaskSource, **kwargs: Any) -> Task:
        task = _start(self._config, source, kwargs, self._base_dir, self._credentials, self._item)
        self.tasks.append(task)
        return task

    def close(self) -> None:
        while self.tasks:
            _close(self._config, self.tasks.pop())


def credentials_provider(
    config: pytest.Config, fixture_value: Mapping[str, str] | None
) -> Callable[[str, str], Mapping[str, str] | None]:
    """Task-role credentials from, in order: the hook, the ``ecs_task_credentials`` fixture, the ini key."""

    def provide(role_arn: str, family: str) -> Mapping[str, str] | None:
        from pytest_ecstask.credentials import parse_static

        given = config.hook.pytest_ecstask_task_credentials(role_arn=role_arn, family=family)
        if given is not None:
            return dict(given)
        if fixture_value is not None:
            return dict(fixture_value)
        static = str(config.getini("ecs_task_credentials") or "")
        return parse_static(static, "ini ecs_task_credentials") if static else None

    return provide


item_tasks_key = pytest.StashKey[list["Task"]]()


def _used_by(item: pytest.Item | None, task: Task) -> None:
    if item is not None:
        tasks = item.stash.setdefault(item_tasks_key, [])
        if task not in tasks:
            tasks.append(task)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    session_task = getattr(item, "funcargs", {}).get("ecs_session_task")
    if session_task is not None:  # asked for directly, or through ecs_task or another fixture
        _used_by(item, session_task)
    tasks = item.stash.get(item_tasks_key, [])
    if not tasks or (call.when == "teardown" and report.passed):
        return
    mode, lines = report_settings(item.config)
    if mode == "always" or (mode == "on-failure" and report.failed):
        for task in tasks:
            title, text = f"ecs task {task.family}:{task.revision} {task.id[:12]}", describe_for_report(task, lines)
            if not (report.failed and _add_to_failure(report, title, text)):
                report.sections.append((title, text))
    _mask_report(report, tasks)


def _mask_report(report: pytest.TestReport, tasks: list[Task]) -> None:
    """The failure text and captured output of a test that used tasks, with their secret values masked.

    A test's own assertion can quote a raw value (``logs(raw=True)``, an ``exec`` output): the terminal
    and the JUnit XML show what the report holds, so the report is masked here, once.
    """
    masks = [task.mask for task in tasks if task.mask]
    if not masks:
        return

    def mask(text: str) -> str:
        for one in masks:
            text = one(text)
        return text

    report.sections = [(title, mask(text)) for title, text in report.sections]
    if report.longrepr is not None:
        text = str(report.longrepr)
        masked = mask(text)
        if masked != text:
            # pytest's representation objects cannot be edited line by line; their text can replace them.
            report.longrepr = masked


def report_settings(config: pytest.Config) -> tuple[str, int]:
    mode = str(config.getoption("ecs_logs") or config.getini("ecs_logs") or "on-failure")
    if mode not in ("on-failure", "always", "never"):
        raise EcsTaskError(f"ini ecs_logs: {mode!r} is not one of on-failure, always, never")
    text = str(config.getoption("ecs_log_lines") or config.getini("ecs_log_lines") or "50")
    if not text.isdigit():
        raise EcsTaskError(f"--ecs-log-lines / ini ecs_log_lines: {text!r} is not a whole number >= 0")
    return mode, int(text)


def _add_to_failure(report: pytest.TestReport, title: str, text: str) -> bool:
    """Into the failure text itself, so the JUnit XML <failure> carries it whatever junit_logging says."""
    longrepr = report.longrepr
    addsection = getattr(longrepr, "addsection", None)  # pytest's exception representations have it
    if callable(addsection):
        addsection(title, text)
        return True
    if isinstance(longrepr, str):
        report.longrepr = f"{longrepr}\n\n{'-' * 20} {title} {'-' * 20}\n{text}"
        return True
    return False


def describe_for_report(task: Task, tail: int) -> str:
    """The explanation, the timeline with durations, and the last log lines of every container."""
    out = [f"status {task.status}" + (f", stopped: {task.stop_code}: {task.stopped_reason}" if task.stop_code else "")]
    for c in task.containers.values():
        state = c.status + (f" exit code {c.exit_code}" if c.exit_code is not None else "")
        if c.health != "UNKNOWN":
            state += f", {c.health}"
        out.append(f"  {c.name}: {state}" + (f" - {c.reason}" if c.reason else ""))
    out.append("timeline:")
    previous = 0.0
    for entry in task.timeline:
        who = f"{entry.container}: " if entry.container else ""
        out.append(f"  {entry.at:7.3f} s (+{entry.at - previous:.3f}) {who}{entry.what}")
        previous = entry.at
    for c in task.containers.values():
        try:
            lines = c.log_lines()
        except Exception as exc:  # the engine went away: say so, keep the rest of the report
            out.append(f"logs of {c.name}: unavailable ({exc})")
            continue
        shown = lines[-tail:] if tail > 0 else []
        more = f", last {len(shown)} of {len(lines)}" if len(lines) > len(shown) else ""
        out.append(f"logs of {c.name}{more}:")
        out.extend(f"  {line.time[11:23]} {line.stream[3:]} {line.text}" for line in shown)
    return task.mask("\n".join(out))  # the lines are masked already; reasons and the timeline quote output too


def _start(
    config: pytest.Config,
    source: TaskSource,
    kwargs: Mapping[str, Any],
    base_dir: Path,
    fixture_credentials: Mapping[str, str] | None = None,
    item: pytest.Item | None = None,
) -> Task:
    from dataclasses import replace

    from pytest_ecstask.task import create_task

    run = config.stash[run_key]
    try:
        options = replace(
            task_options(config, kwargs), credentials_provider=credentials_provider(config, fixture_credentials)
        )
        task = create_task(source, options, owner=run.owner, engine=engine_for(config), base_dir=base_dir)
        # Tracked before anything exists on the engine, so an interrupted start is still cleaned up.
        run.open_tasks.append(task)
        _used_by(item, task)
        _forward_events(config, task)
        with _live_progress(config, task):
            task.start()
        _started_line(config, task)
        return task
    except EcsTaskError as exc:
        message = str(exc)
    # Outside the except block, so the report shows our message alone, not a chained traceback.
    pytest.fail(message, pytrace=False)


def _forward_events(config: pytest.Config, task: Task) -> None:
    import time as _time

    hook = config.hook.pytest_ecstask_task_event
    try:
        hook(task=task, event="planned", container=None, at=_time.time(), details={})
    except Exception as exc:  # a reporting hook must never break the task
        _warn(config, f"ecstask: pytest_ecstask_task_event failed: {type(exc).__name__}: {exc}")
    task._runner.listeners.append(
        lambda kind, container, details: hook(
            task=task,
            event=kind,
            container=container,
            at=_time.time(),
            details={k: task.mask(v) if isinstance(v, str) else v for k, v in details.items()},
        )
    )


@contextmanager
def _live_progress(config: pytest.Config, task: Task) -> Iterator[None]:
    """With -v, one terminal line per startup step, as it happens (workers under xdist print nothing).

    The steps are recorded on the runner's threads, so output capture is off for the whole start: lines
    from any thread then reach the terminal, as pytest's own progress does.
    """
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < 1 or hasattr(config, "workerinput"):
        yield
        return
    lock = threading.Lock()
    first = [True]

    def show(entry: Any) -> None:
        who = f"{entry.container}: " if entry.container else ""
        line = task.mask(f"ecstask {task.family}:{task.revision} {entry.at:6.2f} s  {who}{entry.what}")
        with lock:
            _write(first, reporter, line)

    capture = config.pluginmanager.get_plugin("capturemanager")
    task._runner.on_timeline = show
    try:
        with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
            yield
    finally:
        task._runner.on_timeline = None  # live lines are for startup only


def _write(first: list[bool], reporter: Any, line: str) -> None:
    if first[0]:
        reporter.write_line("")
        first[0] = False
    reporter.write_line(line)


def _started_line(config: pytest.Config, task: Task) -> None:
    if task.stop_code == "TaskFailedToStart":
        return  # check=False hands the test a task that never started: the summary counts started tasks
    took = task.timeline[-1].at if task.timeline else 0.0
    config.stash[run_key].startups.append((f"{task.family}:{task.revision}", took))


def _write_log_dir(config: pytest.Config, task: Task) -> None:
    given = config.getoption("ecs_log_dir")
    directory = (
        Path(config.invocation_params.dir, given)
        if given
        else (_relative_to_ini(config, str(config.getini("ecs_log_dir"))) if config.getini("ecs_log_dir") else None)
    )
    if directory is None:
        return
    folder = directory / f"{task.family}-{task.revision}-{task.id[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    for c in task.containers.values():
        # Masked: log files are CI artifacts, often public.
        (folder / f"{c.name}.log").write_text(
            "".join(f"{line.time} {line.stream} {line.text}\n" for line in c.log_lines())
        )


def _close(config: pytest.Config, task: Task, finishing: bool = False) -> None:
    """Remove a task (or keep it, with --ecs-keep). ``finishing``: at session finish, Ctrl-C only waits."""
    run = config.stash[run_key]
    if task in run.open_tasks:
        run.open_tasks.remove(task)
    if run.owner.keep:
        if task not in run.kept and not task._runner._removed:
            run.kept.append(task)
        return
    try:
        with deferred_interrupts(reraise=not finishing):
            task.close()
    except Exception as exc:  # a Docker error included: warn, and let the sweep see to what is left
        _warn(config, f"ecstask: could not remove task {task.id}: {type(exc).__name__}: {exc}")
    _write_log_dir(config, task)


def _test_dir(request: pytest.FixtureRequest) -> Path:
    path = getattr(request.node, "path", None)
    return Path(path).parent if path is not None else Path(request.config.rootpath)


@pytest.fixture(scope="session")
def ecs_task_credentials() -> Mapping[str, str] | None:
    """Task-role credentials served to containers; override it in a conftest.py to give your own.

    Return a mapping with ``AccessKeyId`` and ``SecretAccessKey`` (``Token`` and ``Expiration``
    optional), or None to fall through to the ini key, STS (``--ecs-assume-role``) or made-up values.
    """
    return None


@pytest.fixture
def ecs_task_factory(request: pytest.FixtureRequest, ecs_task_credentials: Any) -> Iterator[TaskFactory]:
    """Start any number of tasks in a test: ``ecs_task_factory("taskdef.json", images={...})``."""
    factory = TaskFactory(request.config, _test_dir(request), ecs_task_credentials, request.node)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def ecs_session_wait_for() -> Mapping[str, Any]:
    """Readiness checks for the session task; override it in a conftest.py to give your own.

    Return ``{container name: testcontainers wait strategy}``, as the marker's ``wait_for`` takes; they
    are applied once, after ECS gating, when the session task starts.
    """
    return {}


@pytest.fixture(scope="session")
def ecs_session_task(
    request: pytest.FixtureRequest, ecs_task_credentials: Any, ecs_session_wait_for: Mapping[str, Any]
) -> Iterator[Task]:
    """The task of ``--ecs-taskdef`` / ini ``ecs_taskdef``, started once for the run (xdist workers share it)."""
    config = request.config
    path = _session_taskdef_path(config)
    if path is None:
        pytest.fail(
            "the ecs_task fixture needs a task definition: pass --ecs-taskdef=PATH, set the ecs_taskdef ini key, "
            "or mark the test with @pytest.mark.ecs_task(PATH)",
            pytrace=False,
        )
    run = config.stash[run_key]
    if not run.is_worker:
        task = _start(config, path, {"wait_for": ecs_session_wait_for}, Path.cwd(), ecs_task_credentials)
        yield task
        _close(config, task)
        return
    task = _shared_session_task(config, run, path, ecs_task_credentials, ecs_session_wait_for)
    yield task
    task.close()  # stops following it; the controller removes it once every worker is done


def _shared_session_task(
    config: pytest.Config,
    run: Run,
    path: Path,
    fixture_credentials: Mapping[str, str] | None,
    wait_for: Mapping[str, Any],
) -> Task:
    """The first worker to get here starts the task, under a file lock; the others take it up."""
    from filelock import FileLock

    from pytest_ecstask.lifecycle import new_task_id, now_rfc3339

    failure = None
    try:
        engine_for(config)
    except EcsTaskError as exc:
        failure = str(exc)
    if failure is not None:  # outside the except block: the report shows the message alone
        pytest.fail(failure, pytrace=False)
    record_path = run.session_dir / "session-task.json"
    with FileLock(str(run.session_dir / "session-task.lock"), thread_local=False):
        if record_path.exists():
            record = json.loads(record_path.read_text())
            if "error" in record:
                failure = str(record["error"])  # its start failed in another worker
            else:
                try:
                    return _session_task_from(config, run, record, owned=False)
                except EcsTaskError as exc:
                    failure = str(exc)
        else:
            import secrets

            record = {
                "source": str(path),
                "task_id": new_task_id(),
                "created": now_rfc3339(),
                "secret": secrets.token_hex(16),
            }
            try:
                task = _session_task_from(
                    config, run, record, owned=None, fixture_credentials=fixture_credentials, wait_for=wait_for
                )
                record_path.write_text(json.dumps(record))  # before starting: the controller removes a half start
                _forward_events(config, task)
                task.start()
            except EcsTaskError as exc:
                failure = str(exc)
                record_path.write_text(json.dumps({"error": failure}))
    if failure is not None:  # outside the except block: the report shows the message alone
        pytest.fail(failure, pytrace=False)
    # Removal is the controller's: the worker that started it may finish before the others.
    task._runner._follower = True
    return task


def _session_task_from(
    config: pytest.Config,
    run: Run,
    record: Mapping[str, Any],
    owned: bool | None,
    fixture_credentials: Mapping[str, str] | None = None,
    wait_for: Mapping[str, Any] | None = None,
) -> Task:
    """The session task's plan, rebuilt from its record; ``owned`` None = about to be started here."""
    from dataclasses import replace

    from pytest_ecstask.task import create_task

    options = replace(
        task_options(config, {"wait_for": wait_for or {}}),
        credentials_provider=credentials_provider(config, fixture_credentials),
    )
    task = create_task(
        record["source"],
        options,
        owner=run.owner,
        engine=engine_for(config) if owned is not True else None,
        task_id=record["task_id"],
        created=record["created"],
        secret=record["secret"],
        started_elsewhere=owned is not None,
    )
    if owned is not None:
        task._runner.attach(owned=owned)
        if not owned:
            task.load_credentials_from_endpoint()
    return task


@pytest.fixture
def ecs_task(request: pytest.FixtureRequest, ecs_task_credentials: Any) -> Iterator[Task]:
    """The test's task: its own when marked ``@pytest.mark.ecs_task(path, ...)``, else the session's."""
    marker = request.node.get_closest_marker("ecs_task")
    if marker is None:
        task = request.getfixturevalue("ecs_session_task")
        _used_by(request.node, task)
        yield task
        return
    if not marker.args:
        pytest.fail("@pytest.mark.ecs_task needs the task definition path as its first argument", pytrace=False)
    task = _start(request.config, marker.args[0], marker.kwargs, _test_dir(request), ecs_task_credentials, request.node)
    yield task
    _close(request.config, task)
