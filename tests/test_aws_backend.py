"""--ecs-backend=aws from end to end, as a user runs it: pytest runs (pytester, in this process) against an
account moto fakes, then what is left in the account. No Docker, no real AWS.

moto keeps one container per task and reports no exit codes, health or logs of its own: those are
tests/test_ecsbackend.py's, with botocore's Stubber.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conftest import MockedAws
from pytest_ecstask.ecsbackend import BOTO3_MISSING, EcsBackend
from pytest_ecstask.ecsrequests import ALIVE_TAG, HOST_TAG, LEASE_TAG, OWNER_TAG, SESSION_TAG
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.lifecycle import Lease, Owner, lease_dir, owner
from pytest_ecstask.run import Run
from pytest_ecstask.settings import resolve

SESSION = "5e55100aa001"
HOST = "test-host/0123456789abcdef"  # the mocked_aws fixture's PYTEST_ECSTASK_HOST_ID
AWSLOGS = {"awslogs-group": "/ci/web", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "web"}
WEB: dict[str, Any] = {
    "family": "web",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {
            "name": "app",
            "image": "public.ecr.aws/nginx/nginx:1.27",
            "memory": 256,  # moto counts container memory, and refuses a task without it
            "portMappings": [{"containerPort": 8080}],
            "logConfiguration": {"logDriver": "awslogs", "options": AWSLOGS},
        },
        {"name": "sidecar", "image": "public.ecr.aws/docker/library/busybox:1.36", "memory": 64, "essential": False},
    ],
}


@pytest.fixture
def project(pytester: pytest.Pytester, mocked_aws: MockedAws, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTEST_ECSTASK_SESSION", SESSION)
    pytester.makefile(".json", web=json.dumps(WEB))
    pytester.makeini(
        "[pytest]\necs_backend = aws\necs_aws_cluster = ci\n"
        f"ecs_aws_subnets = {mocked_aws.subnet}\necs_aws_security_groups = {mocked_aws.security_group}\n"
    )
    return pytester


def tags(described: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in described.get("tags") or []}


def run_of(project: pytest.Pytester, is_worker: bool = False, *args: str) -> Run:
    """One process of a run of SESSION (the controller, or a worker), in this one: moto fakes AWS here only."""
    config = project.parseconfig(*args)
    lease = str(lease_dir() / f"{SESSION}.lease")
    return Run(config, resolve(config), SESSION, Owner(SESSION, HOST, lease), None, is_worker=is_worker)


class NeedsDocker:
    """A wait strategy that needs the Docker container: on ECS it fails the start, after RunTask."""

    def wait_until_ready(self, target: Any) -> None:
        target.get_wrapped_container()


def test_a_marked_test_runs_its_task_on_ecs_and_the_run_leaves_nothing(
    project: pytest.Pytester, mocked_aws: MockedAws
) -> None:
    project.makepyfile(
        """
        import re
        import pytest

        @pytest.mark.ecs_task("web.json")
        def test_on_ecs(ecs_task):
            assert ecs_task.status == "RUNNING"
            assert (ecs_task.family, ecs_task.revision) == ("web-ecstask", 1)
            app = ecs_task.containers["app"]
            assert re.fullmatch(r"10\\.\\d+\\.\\d+\\.\\d+", app.host)
            assert app.port(8080) == 8080
            timeline = [e.what for e in ecs_task.timeline]
            assert timeline[0] == "RunTask web-ecstask:1 in cluster ci" and "task RUNNING" in timeline
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    [task] = mocked_aws.tasks("STOPPED")
    assert task["lastStatus"] == "STOPPED" and task["stoppedReason"] == "pytest-ecstask: the test is over"
    assert task["startedBy"] == f"pytest-ecstask-{SESSION}"
    lease = str(lease_dir() / f"{SESSION}.lease")
    assert tags(task) == {SESSION_TAG: SESSION, HOST_TAG: HOST, LEASE_TAG: lease, OWNER_TAG: owner()}
    assert mocked_aws.tasks("RUNNING") == []
    assert mocked_aws.revisions("web-ecstask") == []  # deregistered, then deleted


def test_the_session_task_starts_once_and_a_factory_reuses_the_revision(
    project: pytest.Pytester, mocked_aws: MockedAws
) -> None:
    project.makepyfile(
        """
        def test_one(ecs_task):
            assert ecs_task.status == "RUNNING"

        def test_two(ecs_task, ecs_session_task):
            assert ecs_task is ecs_session_task

        def test_factory(ecs_task_factory):
            first, second = ecs_task_factory("web.json"), ecs_task_factory("web.json")
            assert first.arn != second.arn
            assert first.task_definition == second.task_definition == "web-ecstask:1"
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "--ecs-taskdef=web.json", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["ecstask: session *, tasks run on ECS cluster ci (--ecs-backend=aws)"])
    assert len(mocked_aws.tasks("STOPPED")) == 3 and mocked_aws.tasks("RUNNING") == []
    assert mocked_aws.revisions("web-ecstask") == []


def test_logs_are_read_from_the_stream_ecs_writes(project: pytest.Pytester, mocked_aws: MockedAws) -> None:
    project.makepyfile(
        """
        import time

        import boto3
        import pytest

        @pytest.mark.ecs_task("web.json")
        def test_logs(ecs_task):
            logs = boto3.client("logs", region_name="eu-west-1")
            logs.create_log_group(logGroupName="/ci/web")
            stream = f"web/app/{ecs_task.id}"
            logs.create_log_stream(logGroupName="/ci/web", logStreamName=stream)
            logs.put_log_events(
                logGroupName="/ci/web",
                logStreamName=stream,
                # CloudWatch refuses events older than 14 days: these are from now.
                logEvents=[{"timestamp": int(time.time() * 1000) + i, "message": f"line {i}"} for i in range(3)],
            )
            app = ecs_task.containers["app"]
            assert app.logs() == "line 0\\nline 1\\nline 2\\n"
            assert ecs_task.wait_for_log("app", r"line [12]", timeout=5) == "line 1"
            with pytest.raises(Exception, match="'sidecar' has no logConfiguration"):
                ecs_task.containers["sidecar"].logs()
        """
    )
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_failing_test_reports_the_task_and_where_the_logs_went(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.ecs_task("web.json")
        def test_fails(ecs_task):
            assert ecs_task.status == "STOPPED"
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- ecs task web-ecstask:1 * -*",
            "status RUNNING",
            "timeline:",
            "*RunTask web-ecstask:1 in cluster ci",
            "logs of sidecar: unavailable (container 'sidecar' has no logConfiguration, *",
        ]
    )


def test_what_needs_a_docker_engine_fails_with_one_message_naming_the_backend(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.ecs_task("web.json")
        def test_exec(ecs_task):
            ecs_task.containers["app"].exec(["ls"])
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["E * pytest_ecstask.errors.EcsTaskError: container 'app': exec is not possible with --ecs-backend=aws: *"]
    )


def test_a_task_that_cannot_be_run_fails_its_test_at_setup_with_the_reason(project: pytest.Pytester) -> None:
    project.makepyfile("import pytest\n\n@pytest.mark.ecs_task('web.json')\ndef test_x(ecs_task):\n    pass\n")
    result = project.runpytest("-p", "no:cacheprovider", "--ecs-aws-cluster=gone")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*RunTask of web-ecstask:1 in cluster gone: ClusterNotFoundException: *"])
    assert "Traceback" not in result.stdout.str()


def test_the_session_task_s_requests_are_checked_when_pytest_starts(project: pytest.Pytester) -> None:
    project.makepyfile("def test_x(ecs_task):\n    pass\n")
    result = project.runpytest("-p", "no:cacheprovider", "--ecs-taskdef=web.json", "-o", "ecs_aws_subnets=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *web.json: $.networkMode: 'awsvpc': *--ecs-aws-subnet=SUBNET*"])


@pytest.mark.parametrize("flag", ["--ecs-keep", "--ecs-reuse"])
def test_keeping_tasks_is_a_usage_error_with_the_aws_backend(project: pytest.Pytester, flag: str) -> None:
    project.makepyfile("def test_x():\n    pass\n")
    result = project.runpytest("-p", "no:cacheprovider", flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {flag} (ini ecs_*): not with --ecs-backend=aws, *"])


def test_without_boto3_the_run_says_how_to_install_it(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pytest_ecstask.ecsbackend.boto3_installed", lambda: False)
    project.makepyfile("def test_x():\n    pass\n")
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == f"ERROR: {BOTO3_MISSING}"
    assert BOTO3_MISSING.endswith(": pip install pytest-ecstask[aws]")


# -- --ecs-sweep-orphans --ecs-backend=aws ---------------------------------------------------------------


def leftovers(mocked_aws: MockedAws, session: str, host: str, more: dict[str, str] | None = None) -> tuple[str, str]:
    """What a run of ``session`` on ``host`` left: a running task and its active revision (``more``: tags)."""
    run_tags = [{"key": SESSION_TAG, "value": session}, {"key": HOST_TAG, "value": host}]
    run_tags += [{"key": k, "value": v} for k, v in (more or {}).items()]
    definition = {k: v for k, v in WEB.items() if k != "family"}
    registered = mocked_aws.ecs.register_task_definition(family=f"web-{session}-ecstask", tags=run_tags, **definition)
    revision = registered["taskDefinition"]["taskDefinitionArn"]
    awsvpc = {"subnets": [mocked_aws.subnet], "securityGroups": [mocked_aws.security_group]}
    task = mocked_aws.ecs.run_task(
        cluster="ci",
        taskDefinition=revision,
        startedBy=f"pytest-ecstask-{session}",
        tags=run_tags,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": awsvpc},
    )["tasks"][0]["taskArn"]
    return task, revision


@pytest.fixture
def swept(project: pytest.Pytester, mocked_aws: MockedAws) -> dict[str, tuple[str, str]]:
    """A dead run of this host, a live run of this host (its lease held), a young run of another host, and a
    task of the cluster that no run started."""
    found = {
        "dead": leftovers(mocked_aws, "dead01", HOST),
        "live": leftovers(mocked_aws, "live01", HOST),
        "other": leftovers(mocked_aws, "other01", "other-host/fedcba9876543210"),
    }
    Lease.acquire("dead01").release()  # a lease file that nobody holds: its run is over
    return found


def sweep_json_while_alive(project: pytest.Pytester, session: str) -> dict[str, Any]:
    """The JSON report of ``--ecs-sweep-orphans`` while the run of ``session`` holds its lease (is alive)."""
    live = Lease.acquire(session)
    try:
        result = project.runpytest("-p", "no:cacheprovider", "--ecs-sweep-orphans", "--ecs-json")
    finally:
        live.release()
    assert result.ret == 0, result.stderr.str()
    return dict(json.loads(result.stdout.str()))


def test_the_sweep_stops_and_removes_what_dead_runs_left_and_nothing_else(
    project: pytest.Pytester, mocked_aws: MockedAws, swept: dict[str, tuple[str, str]]
) -> None:
    report = sweep_json_while_alive(project, "live01")
    removed = {r["id"]: r for r in report["removed"]}
    assert set(removed) == set(swept["dead"])
    assert {r["kind"] for r in removed.values()} == {"task", "task definition"}
    assert all(r["session"] == "dead01" and "is dead: lease" in r["why"] for r in removed.values())
    left = {r["id"]: r["why"] for r in report["left"]}
    assert left[swept["live"][0]] == "its run (live01) is alive"
    assert left[swept["other"][0]] == "no creation time: cannot tell its age"  # moto has no createdAt
    running = {t["taskArn"] for t in mocked_aws.tasks("RUNNING")}
    assert running == {swept["live"][0], swept["other"][0]}
    assert mocked_aws.revisions("web-dead01-ecstask") == []
    assert mocked_aws.revisions("web-live01-ecstask") == [swept["live"][1]]
    assert not (lease_dir() / "dead01.lease").exists()


def test_a_revision_a_run_could_not_delete_is_a_warning_and_the_next_sweep_deletes_it(
    project: pytest.Pytester, mocked_aws: MockedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    def throttled(self: EcsBackend, arns: Any) -> list[tuple[str, str]]:
        return [(arn, "Rate exceeded") for arn in arns]

    project.makepyfile('import pytest\n\n@pytest.mark.ecs_task("web.json")\ndef test_on_ecs(ecs_task):\n    pass\n')
    with monkeypatch.context() as patched:
        patched.setattr(EcsBackend, "delete_task_definitions", throttled)
        result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    [revision] = mocked_aws.revisions("web-ecstask")
    result.stdout.fnmatch_lines(
        [
            f"*ecstask: could not delete {revision} (deregistered, so inactive): Rate exceeded. pytest "
            "--ecs-sweep-orphans --ecs-backend=aws tries again once this run is over*"
        ]
    )
    # That run's process is gone (the run here was in this process): its lease file went with its end.
    mocked_aws.ecs.tag_resource(resourceArn=revision, tags=[{"key": OWNER_TAG, "value": "gone-host:1"}])
    swept = project.runpytest("-p", "no:cacheprovider", "--ecs-sweep-orphans")
    assert swept.ret == 0
    swept.stdout.fnmatch_lines(["removed inactive task definition web-ecstask:1: its run (5e55100aa001) is dead: *"])
    assert mocked_aws.revisions("web-ecstask") == []


@pytest.mark.parametrize("ecs", ["deletes revisions", "a region that refuses it", "a botocore without it"])
def test_the_sweep_deletes_the_revisions_a_dead_run_deregistered_and_could_not_delete(
    project: pytest.Pytester, mocked_aws: MockedAws, monkeypatch: pytest.MonkeyPatch, ecs: str
) -> None:
    # A run whose DeleteTaskDefinitions failed at its end (throttled, cut off) leaves its revisions inactive.
    left = {run: leftovers(mocked_aws, run, HOST)[1] for run in ("dead02", "live02")}
    for arn in left.values():
        mocked_aws.ecs.deregister_task_definition(taskDefinition=arn)
    Lease.acquire("dead02").release()
    if ecs == "a region that refuses it":
        monkeypatch.setattr(EcsBackend, "delete_task_definitions", lambda self, arns: None)
    elif ecs == "a botocore without it":
        monkeypatch.setattr(EcsBackend, "deletes_task_definitions", lambda self: False)
    report = sweep_json_while_alive(project, "live02")
    revisions = {r["id"]: r for r in report["removed"] + report["left"] + report["failed"] if r["kind"] != "task"}
    assert mocked_aws.revisions("web-live02-ecstask") == [left["live02"]]
    if ecs == "a botocore without it":  # an inactive revision cannot go: not looked at
        assert revisions == {} and mocked_aws.revisions("web-dead02-ecstask") == [left["dead02"]]
        return
    assert {r["kind"] for r in revisions.values()} == {"inactive task definition"}
    assert revisions[left["live02"]]["why"] == "its run (live02) is alive"
    if ecs == "deletes revisions":
        assert left["dead02"] in {r["id"] for r in report["removed"]}
        assert mocked_aws.revisions("web-dead02-ecstask") == []
    else:
        assert revisions[left["dead02"]]["why"].startswith("inactive (deregistered); this region has no Delete")
        assert left["dead02"] not in {r["id"] for r in report["removed"]}
        assert mocked_aws.revisions("web-dead02-ecstask") == [left["dead02"]]


def test_a_live_run_s_lease_is_asked_where_its_tag_says_and_its_process_when_the_file_is_gone(
    project: pytest.Pytester, mocked_aws: MockedAws, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "another-lease-dir"  # a run with its own PYTEST_ECSTASK_LEASE_DIR or TMPDIR
    elsewhere.mkdir()
    held = Lease.acquire("live02", elsewhere)
    live = leftovers(mocked_aws, "live02", HOST, {LEASE_TAG: str(held.path), OWNER_TAG: "gone-host:1"})
    lost = leftovers(mocked_aws, "live03", HOST, {LEASE_TAG: str(elsewhere / "live03.lease"), OWNER_TAG: owner()})
    dead = leftovers(mocked_aws, "dead03", HOST, {LEASE_TAG: str(elsewhere / "dead03.lease"), OWNER_TAG: "gone-host:1"})
    try:
        result = project.runpytest("-p", "no:cacheprovider", "--ecs-sweep-orphans", "--ecs-json")
    finally:
        held.release()
    assert result.ret == 0, result.stderr.str()
    report = json.loads(result.stdout.str())
    left = {r["id"]: r["why"] for r in report["left"]}
    assert left[live[0]] == left[live[1]] == "its run (live02) is alive"
    assert left[lost[0]].startswith("its run (live03) cannot be checked")  # its process lives: this one
    assert {r["id"] for r in report["removed"]} == set(dead)


def test_the_heartbeat_keeps_a_long_run_from_another_host_s_sweep(
    project: pytest.Pytester, mocked_aws: MockedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_ecstask.awsrun import finish_run
    from pytest_ecstask.awssweep import sweep_ecs

    run = run_of(project)
    task = run.ecs.start_task(project.path / "web.json", {}, project.path, None)
    heartbeat = run.ecs._heartbeat
    assert heartbeat is not None and heartbeat.is_alive()
    beat = datetime.now(timezone.utc) + timedelta(seconds=1)  # later than ECS's own creation times
    assert run.ecs.beat(beat.isoformat(timespec="milliseconds").replace("+00:00", "Z")) == []
    [revision] = mocked_aws.revisions("web-ecstask")
    revision_tags = mocked_aws.ecs.list_tags_for_resource(resourceArn=revision)["tags"]
    assert tags(mocked_aws.tasks("RUNNING")[0])[ALIVE_TAG] == tags({"tags": revision_tags})[ALIVE_TAG]
    monkeypatch.setenv("PYTEST_ECSTASK_HOST_ID", "other-host/1")  # the sweep of another host
    young = sweep_ecs(EcsBackend(), "ci", "-ecstask", dry_run=True, now=beat + timedelta(hours=1))
    assert young.chosen == [] and {v.resource.id for v in young.left} == {task.arn, revision}
    assert {v.why for v in young.left} == {f"from host {HOST}, its run's last heartbeat only 3600 s ago"}
    old = sweep_ecs(EcsBackend(), "ci", "-ecstask", dry_run=True, now=beat + timedelta(hours=3))
    assert {v.why for v in old.chosen} == {f"from host {HOST}, its run's last heartbeat 10800 s ago"}
    finish_run(run)
    heartbeat.join(5)
    assert not heartbeat.is_alive()


def test_a_revision_that_cannot_be_described_is_left_with_why_and_the_sweep_goes_on(
    project: pytest.Pytester, mocked_aws: MockedAws, swept: dict[str, tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_ecstask.awssweep import sweep_ecs

    backend = EcsBackend()
    described = backend.describe_task_definition
    deleted = swept["dead"][1]  # by its own run, between ListTaskDefinitions and DescribeTaskDefinition

    def describe(arn: str) -> Any:
        if arn == deleted:
            raise EcsTaskError(f"DescribeTaskDefinition {arn}: ClientException: Unable to describe task definition.")
        return described(arn)

    monkeypatch.setattr(backend, "describe_task_definition", describe)
    report = sweep_ecs(backend, "ci", "-ecstask")
    assert {v.resource.id: v.why for v in report.left}[deleted] == (
        f"could not be described: DescribeTaskDefinition {deleted}: ClientException: Unable to describe task "
        "definition."
    )
    assert swept["dead"][0] in {v.resource.id for v in report.chosen} and report.failed == []


def test_a_stoptask_that_fails_at_teardown_is_tried_again_at_the_end_of_the_run(
    project: pytest.Pytester, mocked_aws: MockedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_ecstask.awsrun import finish_run

    run = run_of(project)
    task = run.ecs.start_task(project.path / "web.json", {}, project.path, None)
    stop = run.ecs.backend.stop_task
    reasons: list[str] = []

    def throttled_once(cluster: str, arn: str, reason: str) -> None:
        reasons.append(reason)
        if len(reasons) == 1:
            raise EcsTaskError(f"StopTask {arn} in cluster {cluster}: ThrottlingException: Rate exceeded")
        stop(cluster, arn, reason)

    monkeypatch.setattr(run.ecs.backend, "stop_task", throttled_once)
    run.close_task(task)  # the test's teardown: a warning
    assert task in run.ecs.open_tasks and [t["taskArn"] for t in mocked_aws.tasks("RUNNING")] == [task.arn]
    finish_run(run)
    assert mocked_aws.tasks("RUNNING") == [] and len(reasons) == 2


def test_two_threads_registering_the_same_task_definition_register_it_once(tmp_path: Path) -> None:
    from pytest_ecstask.awsrun import EcsRun

    class SlowRegistration:
        """RegisterTaskDefinition that lets a second thread ask for the same request while it is under way."""

        def __init__(self) -> None:
            self.registered = 0
            self.second: list[tuple[str, int]] = []
            self.other = threading.Thread(target=lambda: self.second.append(ecs.register({"family": "web-ecstask"})))

        def register_task_definition(self, request: Any) -> tuple[str, int]:
            self.registered += 1
            if self.registered == 1:
                self.other.start()
                self.other.join(0.5)  # it waits for this registration to end, or registers again
            return f"arn:aws:ecs:eu-west-1:1:task-definition/web-ecstask:{self.registered}", self.registered

        def deregister_task_definition(self, arn: str) -> None:
            pass

        def delete_task_definitions(self, arns: Any) -> list[tuple[str, str]]:
            return []

    backend = SlowRegistration()
    ecs = EcsRun(SimpleNamespace(session_dir=tmp_path / "run.d", notes=[], config=None), backend)  # type: ignore[arg-type]
    first = ecs.register({"family": "web-ecstask"})
    backend.other.join()
    ecs.finish()
    assert backend.registered == 1 and backend.second == [first]


def test_a_dry_run_and_the_cap_remove_nothing(
    project: pytest.Pytester, mocked_aws: MockedAws, swept: dict[str, tuple[str, str]]
) -> None:
    dry = project.runpytest("-p", "no:cacheprovider", "--ecs-sweep-orphans", "--ecs-dry-run")
    assert dry.ret == 0
    dry.stdout.fnmatch_lines(
        [
            "would remove task * (web-dead01-ecstask:1): its run (dead01) is dead: lease *dead01.lease is free",
            "would remove task * (web-live01-ecstask:1): its run (live01) is dead: *",  # its lease is not held
            "would remove task definition web-dead01-ecstask:1: its run (dead01) is dead: *",
            "ecstask sweep: 4 would remove, 0 failed, 2 left alone *",
        ]
    )
    # Exit code 2 is also pytest's for an interrupted run, which pytester would raise again.
    capped = project.runpytest(
        "-p", "no:cacheprovider", "--ecs-sweep-orphans", "--ecs-sweep-cap=1", "--ecs-json", no_reraise_ctrlc=True
    )
    assert capped.ret == 2
    assert json.loads(capped.stdout.str())["refused"].startswith("ecstask sweep: 4 resources would be removed")
    assert len(mocked_aws.tasks("RUNNING")) == 3
    assert mocked_aws.revisions("web-dead01-ecstask") == [swept["dead"][1]]


def test_a_sweep_that_cannot_ask_ecs_says_why(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    result = project.runpytest("-p", "no:cacheprovider", "--ecs-sweep-orphans", "--ecs-json")
    assert result.ret == 3
    error = json.loads(result.stdout.str())["error"]
    assert error.startswith("ListTasks in cluster ci: boto3 found no AWS credentials; ")


# -- under xdist: the session task started once ----------------------------------------------------------


def test_under_xdist_one_worker_starts_the_session_task_the_others_follow_and_the_controller_stops_it(
    project: pytest.Pytester, mocked_aws: MockedAws
) -> None:
    # The processes of an xdist run, in this one (moto fakes AWS in this process only): the controller and
    # two workers, sharing the run's session and its folder.
    from pytest_ecstask.awsrun import finish_run, shared_session_task

    controller = run_of(project)
    workers = [run_of(project, is_worker=True) for _ in range(2)]
    first, second = (shared_session_task(w, project.path / "web.json", {}) for w in workers)
    assert first.arn == second.arn and first.task_definition == second.task_definition == "web-ecstask:1"
    assert second.status == "RUNNING"
    for worker, task in zip(workers, (first, second), strict=True):
        task.close()  # the fixture's teardown in each worker
        finish_run(worker)
    [running] = mocked_aws.tasks("RUNNING")
    assert running["taskArn"] == first.arn
    assert mocked_aws.revisions("web-ecstask") == []  # the workers' revisions are gone; the task runs on
    finish_run(controller)
    [stopped] = mocked_aws.tasks("STOPPED")
    assert stopped["taskArn"] == first.arn and stopped["stoppedReason"] == "pytest-ecstask: the run is over"


def test_under_xdist_a_session_task_that_failed_to_start_fails_the_other_workers_the_same_way(
    project: pytest.Pytester, mocked_aws: MockedAws
) -> None:
    from pytest_ecstask.awsrun import finish_run, shared_session_task

    workers = [run_of(project, True, "--ecs-aws-cluster=gone") for _ in range(2)]
    messages = []
    for worker in workers:
        with pytest.raises(pytest.fail.Exception) as failed:
            shared_session_task(worker, project.path / "web.json", {})
        messages.append(str(failed.value))
        mocked_aws.ecs.create_cluster(clusterName="gone")  # a second RunTask would start a task now
    assert messages[0] == messages[1]
    assert mocked_aws.ecs.list_tasks(cluster="gone")["taskArns"] == []
    for worker in workers:
        finish_run(worker)
    assert messages[0].startswith("RunTask of web-ecstask:1 in cluster gone: ClusterNotFoundException")


def test_under_xdist_a_session_task_started_and_not_stopped_after_a_failed_start_is_stopped_by_the_controller(
    project: pytest.Pytester, mocked_aws: MockedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_ecstask.awsrun import finish_run, shared_session_task

    controller = run_of(project)
    workers = [run_of(project, is_worker=True) for _ in range(2)]

    def throttled(cluster: str, arn: str, reason: str) -> None:
        raise EcsTaskError(f"StopTask {arn} in cluster {cluster}: ThrottlingException: Rate exceeded")

    monkeypatch.setattr(workers[0].ecs.backend, "stop_task", throttled)
    messages = []
    for worker in workers:
        with pytest.raises(pytest.fail.Exception) as failed:
            shared_session_task(worker, project.path / "web.json", {"app": NeedsDocker()})
        messages.append(str(failed.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("container 'app' of task web-ecstask:1 did not get ready: ")
    assert "\n  StopTask failed too (StopTask " in messages[0]
    [running] = mocked_aws.tasks("RUNNING")
    for worker in workers:
        finish_run(worker)  # a worker never stops the session task
    finish_run(controller)
    [stopped] = mocked_aws.tasks("STOPPED")
    assert stopped["taskArn"] == running["taskArn"]
    assert stopped["stoppedReason"] == "pytest-ecstask: the run is over"


def test_under_xdist_the_controller_stops_what_a_crashed_worker_left_and_removes_its_revisions(
    project: pytest.Pytester, mocked_aws: MockedAws
) -> None:
    from pytest_ecstask.awsrun import finish_run

    controller, crashed = run_of(project), run_of(project, is_worker=True)
    task = crashed.ecs.start_task(project.path / "web.json", {}, project.path, None)
    assert mocked_aws.revisions("web-ecstask") != []  # the worker crashed: no finish_run of its own
    finish_run(controller)
    [stopped] = mocked_aws.tasks("STOPPED")
    assert stopped["taskArn"] == task.arn and stopped["stoppedReason"] == "pytest-ecstask: the run is over"
    assert mocked_aws.revisions("web-ecstask") == []
    crashed.ecs._over.set()  # its heartbeat, which would have ended with its process
