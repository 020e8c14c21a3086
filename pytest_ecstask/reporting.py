"""What reports: everything of a run that a user reads, and the task events other plugins get.

The report header line; with ``-v``, one live line per startup step; a test's task sections (state,
timeline, last log lines) in its report and JUnit XML, and the masking of secret values in that report;
the terminal summary (startup times, sweep notes, kept tasks and how to remove them); the files of
``--ecs-log-dir``; warnings that must reach the terminal.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.lifecycle import private_dir

if TYPE_CHECKING:
    from pytest_ecstask.run import Run
    from pytest_ecstask.taskview import TaskView

# The tasks a test used, directly, through ecs_task or through another fixture: their sections go in its report.
item_tasks_key = pytest.StashKey[list["TaskView"]]()


ENDPOINTS_SHOWN = {
    "auto": "endpoints at {ip} (auto: a server here, or the engine's relay, started with the first task)",
    "local": "endpoints at {ip} (local: a server on this machine, started with the first task)",
    "relay": "endpoints at {ip} (relay: through the engine's relay, started with the first task)",
    "off": "endpoints off",
}


def header(run: Run) -> str:
    """The report header line: the session, its task definition, its lease, and what the endpoints do."""
    from pytest_ecstask.endpointids import ENDPOINT_IP, endpoint_mode

    settings = run.settings
    where = f", taskdef {settings.taskdef}" if settings.taskdef else ""
    if settings.backend == "aws":  # no engine, no endpoints of ours: ECS gives the task its own
        return (
            f"ecstask: session {run.session_id}{where}, lease {run.owner.lease}, tasks run on ECS cluster "
            f"{settings.aws_cluster} (--ecs-backend=aws)"
        )
    keep = ", keeping tasks (--ecs-keep)" if run.owner.keep else ""
    if run.settings.reuse:
        keep += ", the session task kept for the next run and adopted from the last (--ecs-reuse)"
    shown = ", SECRET VALUES SHOWN UNMASKED (--ecs-show-secrets)" if settings.task.show_secrets else ""
    endpoints = ENDPOINTS_SHOWN[endpoint_mode(settings.task.endpoints)].format(ip=ENDPOINT_IP)
    return f"ecstask: session {run.session_id}{where}, lease {run.owner.lease}, {endpoints}{keep}{shown}"


def warn(config: pytest.Config, line: str) -> None:
    """A line for the terminal even while output is captured (removal failures, broken hooks)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line, red=True)
    else:
        print(line, file=sys.stderr)


# -- while a task starts ---------------------------------------------------------------------------------


def used_by(item: pytest.Item | None, task: TaskView) -> None:
    if item is not None:
        tasks = item.stash.setdefault(item_tasks_key, [])
        if task not in tasks:
            tasks.append(task)


def forward_events(config: pytest.Config, task: TaskView) -> None:
    """The task's lifecycle events to the pytest_ecstask_task_event hook, their text masked."""
    hook = config.hook.pytest_ecstask_task_event
    try:
        hook(task=task, event="planned", container=None, at=time.time(), details={})
    except Exception as exc:  # a reporting hook must never break the task
        warn(config, f"ecstask: pytest_ecstask_task_event failed: {type(exc).__name__}: {exc}")
    task.progress.listeners.append(
        lambda kind, container, details: hook(
            task=task,
            event=kind,
            container=container,
            at=time.time(),
            details={k: task.mask(v) if isinstance(v, str) else v for k, v in details.items()},
        )
    )


@contextmanager
def live_progress(config: pytest.Config, task: TaskView) -> Iterator[None]:
    """With -v, one terminal line per startup step, as it happens; without, only a wait that lasts (workers
    under xdist print nothing).

    The steps are recorded on the runner's threads, so output capture is off for the whole start: lines
    from any thread then reach the terminal, as pytest's own progress does.
    """
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(config, "workerinput"):
        yield
        return
    verbose = config.getoption("verbose") >= 1
    capture = config.pluginmanager.get_plugin("capturemanager")
    lock = threading.Lock()
    first = [True]

    def show(entry: Any) -> None:
        if not verbose and not entry.what.startswith("still waiting"):
            return  # without -v, only a long wait is said: the screen would otherwise show nothing
        who = f"{entry.container}: " if entry.container else ""
        line = task.mask(f"ecstask {task.family}:{task.revision} {entry.at:6.2f} s  {who}{entry.what}")
        with lock, capture.global_and_fixture_disabled() if capture is not None and not verbose else nullcontext():
            if first[0]:
                reporter.write_line("")
                first[0] = False
            reporter.write_line(line)

    task.progress.on_timeline = show
    try:
        with capture.global_and_fixture_disabled() if capture is not None and verbose else nullcontext():
            yield
    finally:
        task.progress.on_timeline = None  # live lines are for startup only


def record_startup(run: Run, task: TaskView) -> None:
    """For the summary's line of startup times."""
    if task.stop_code == "TaskFailedToStart":
        return  # check=False hands the test a task that never started: the summary counts started tasks
    took = task.timeline[-1].at if task.timeline else 0.0
    run.startups.append((f"{task.family}:{task.revision}", took))


def record_stop_kills(run: Run, task: TaskView) -> None:
    """Containers of a removed task that needed SIGKILL at their stop timeout, for the summary. Written to
    the run's shared folder, so that the summary of an xdist run tells of its workers' tasks too."""
    kills = task.progress.killed_at_stop
    if not kills:
        return
    lines = [
        json.dumps({"task": f"{task.family}:{task.revision}", "container": name, "seconds": took, "timeout": timeout})
        for name, took, timeout in kills
    ]
    with suppress(OSError, EcsTaskError):
        private_dir(run.session_dir)
        with open(run.session_dir / f"stop-kills-{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in lines))


def shared_note(run: Run, text: str) -> None:
    """A line for the terminal summary from any process of the run (an xdist worker's go through a file)."""
    if not run.is_worker:
        run.notes.append(text)
        return
    with suppress(OSError, EcsTaskError):
        private_dir(run.session_dir)
        with open(run.session_dir / f"notes-{os.getpid()}.txt", "a", encoding="utf-8") as out:
            out.write(text.replace("\n", " ") + "\n")


def worker_notes(session_dir: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted(session_dir.glob("notes-*.txt")):
        with suppress(OSError):
            lines += path.read_text(encoding="utf-8").splitlines()
    return lines


def stop_kill_lines(session_dir: Path) -> list[str]:
    """One line per container that needed SIGKILL at its stop timeout: how often, the time lost, the fixes."""
    seen: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted(session_dir.glob("stop-kills-*.jsonl")):
        with suppress(OSError, ValueError):
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                seen.setdefault((record["task"], record["container"]), []).append(record)
    out = []
    for (task, container), records in sorted(seen.items()):
        lost = sum(float(r["seconds"]) for r in records)
        times = f", {len(records)} times" if len(records) > 1 else ""
        timeout = records[-1]["timeout"]
        out.append(
            f"container {container!r} of task {task} did not exit on SIGTERM and was killed after its stop "
            f"timeout of {timeout} s{times}: {lost:.1f} s lost. Let its process handle SIGTERM (a shell entry "
            "point does not pass it on: exec the program), or lower its stopTimeout or --ecs-stop-timeout"
        )
    return out


def write_log_dir(run: Run, task: TaskView) -> None:
    """--ecs-log-dir: every container's full log, one file each, when its task is removed."""
    if run.settings.log_dir is None:
        return
    folder = run.settings.log_dir / f"{task.family}-{task.revision}-{task.id[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    for c in task.containers.values():
        try:
            # Masked: log files are CI artifacts, often public.
            text = "".join(f"{line.time} {line.stream} {line.text}\n" for line in c.log_lines())
        except EcsTaskError as exc:  # on ECS, a container whose logs went elsewhere: where they went
            text = f"{exc}\n"
        (folder / f"{c.name}.log").write_text(text)


# -- a test's report -------------------------------------------------------------------------------------


def add_task_sections(run: Run, item: pytest.Item, when: str, report: pytest.TestReport) -> None:
    """The state, timeline and logs of the tasks a test used, as --ecs-logs asks; secret values masked."""
    session_task = getattr(item, "funcargs", {}).get("ecs_session_task")
    if session_task is not None:  # asked for directly, or through ecs_task or another fixture
        used_by(item, session_task)
    tasks = item.stash.get(item_tasks_key, [])
    if not tasks or (when == "teardown" and report.passed):
        return
    mode = run.settings.logs
    if mode == "always" or (mode == "on-failure" and report.failed):
        for task in tasks:
            title = f"ecs task {task.family}:{task.revision} {task.id[:12]}"
            text = describe_for_report(task, run.settings.log_lines)
            if not (report.failed and _add_to_failure(report, title, text)):
                report.sections.append((title, text))
    mask_report(report, tasks)


def mask_report(report: pytest.TestReport, tasks: list[TaskView]) -> None:
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


def describe_for_report(task: TaskView, tail: int) -> str:
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
        out.extend(_last_log_lines(c, tail))
    return task.mask("\n".join(out))  # the lines are masked already; reasons and the timeline quote output too


def _last_log_lines(container: Any, tail: int) -> list[str]:
    try:
        lines = container.log_lines()
    except Exception as exc:  # the engine went away: say so, keep the rest of the report
        return [f"logs of {container.name}: unavailable ({exc})"]
    shown = lines[-tail:] if tail > 0 else []
    more = f", last {len(shown)} of {len(lines)}" if len(lines) > len(shown) else ""
    return [
        f"logs of {container.name}{more}:",
        *(f"  {line.time[11:23]} {line.stream[3:]} {line.text}" for line in shown),
    ]


# -- the end of the run ----------------------------------------------------------------------------------


def terminal_summary(run: Run, reporter: Any) -> None:
    """Startup times, what the first sweep did, and the tasks --ecs-keep left running."""
    if run.startups and run.config.getoption("verbose") >= 0:
        # One compact line instead of live output that would break pytest's progress line.
        slowest = max(run.startups, key=lambda s: s[1])
        total = sum(s[1] for s in run.startups)
        reporter.write_line(
            f"ecstask: started {len(run.startups)} task(s) in {total:.1f} s; slowest {slowest[0]} {slowest[1]:.1f} s"
        )
    if run.engine_used and run.config.getoption("verbose") >= 0:
        reporter.write_line(f"ecstask: engine {run.engine_used}")
    if run.endpoints_served and run.config.getoption("verbose") >= 0:
        reporter.write_line(f"ecstask: {run.endpoints_served}")
    for note in [*worker_notes(run.session_dir), *run.notes]:
        reporter.write_line(f"ecstask: {note}", yellow=True)
    for line in stop_kill_lines(run.session_dir):
        reporter.write_line(f"ecstask: {line}", yellow=True)
    if run.owner.keep and not run.kept and run.session_dir.exists():
        # xdist: the workers kept them; the controller only knows the session.
        reporter.write_line(f"ecstask: tasks of session {run.session_id} were kept running (--ecs-keep)")
        for line in removal_recipe(run.session_id):
            reporter.write_line(line)
    if run.kept:
        _kept_tasks(run, reporter)


def _kept_tasks(run: Run, reporter: Any) -> None:
    reporter.section("ecstask: tasks kept running (--ecs-keep)")
    for task in run.kept:
        reporter.write_line(f"task {task.family}:{task.revision} {task.id} ({task.status})")
        for c in task.containers.values():
            ports = []
            for p in c._state.plan.ports:
                with suppress(EcsTaskError):
                    ports.append(f"{p.key} -> {c.host}:{c.port(p.container_port, p.protocol)}")
            reporter.write_line(f"  {c.name}: docker container {c.docker_name} {' '.join(ports)}")
    for line in removal_recipe(run.session_id):
        reporter.write_line(line)


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
