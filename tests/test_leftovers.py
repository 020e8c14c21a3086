"""Nothing left behind: leases, the orphan sweep, xdist-shared session tasks, interrupted runs, --ecs-keep."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import service
from pytest_ecstask.leftovers import Resource, classify
from pytest_ecstask.lifecycle import (
    LABEL_CREATED,
    LABEL_HOST,
    LABEL_KEEP,
    LABEL_LEASE,
    LABEL_ROLE,
    LABEL_SESSION,
    LABEL_TASK,
    ROLE_SENTINEL,
    SENTINEL_GRACE_SECONDS,
    host_id,
    new_session_id,
    now_rfc3339,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


# -- deciding what is dead, pure ---------------------------------------------------------------------------


def resource(
    session: str = "s1", host: str = "here", lease: str = "/leases/s1.lease", age: float = 10, **labels: str
) -> Resource:
    created = (NOW - timedelta(seconds=age)).isoformat().replace("+00:00", "Z")
    return Resource(
        "container",
        f"id-{session}",
        f"name-{session}",
        {LABEL_SESSION: session, LABEL_HOST: host, LABEL_LEASE: lease, LABEL_CREATED: created, **labels},
    )


def decide(*resources: Resource, held: dict[str, bool | None] | None = None, **kwargs: Any) -> list[bool]:
    leases = held or {}
    verdicts = classify(
        list(resources),
        this_host="here",
        now=NOW,
        max_age_seconds=3600,
        is_held=lambda path: leases.get(path),
        **kwargs,
    )
    return [v.remove for v in verdicts]


def test_a_free_lease_on_this_host_means_dead_whatever_the_age() -> None:
    assert decide(resource(age=1), held={"/leases/s1.lease": False}) == [True]


def test_a_held_lease_means_alive_whatever_the_age() -> None:
    assert decide(resource(age=10**6), held={"/leases/s1.lease": True}) == [False]


def test_another_hosts_resources_go_only_past_the_age_limit() -> None:
    assert decide(resource(host="elsewhere", age=7200), resource(session="s2", host="elsewhere", age=60)) == [
        True,
        False,
    ]


def test_a_lease_that_cannot_be_checked_on_this_host_is_left_alone_whatever_the_age() -> None:
    # Another user's run: its lease cannot be opened, so it cannot be proved dead.
    assert decide(
        resource(age=10**6),
        resource(session="s2", lease="/leases/s2.lease", age=5),
        held={"/leases/s1.lease": None, "/leases/s2.lease": None},
    ) == [False, False]


def test_a_missing_lease_with_a_live_owner_process_is_left_alone() -> None:
    import os
    import socket

    alive = resource(**{"pytest-ecstask.owner": f"{socket.gethostname()}:{os.getpid()}"})
    assert decide(alive, held={"/leases/s1.lease": False}) == [False]


def test_kept_resources_stay_unless_asked_for() -> None:
    kept = resource(**{LABEL_KEEP: "1"})
    assert decide(kept, held={"/leases/s1.lease": False}) == [False]
    assert decide(kept, held={"/leases/s1.lease": False}, include_kept=True) == [True]


def test_the_sweeping_runs_own_session_is_never_chosen() -> None:
    assert decide(resource(), held={"/leases/s1.lease": False}, live_sessions=["s1"]) == [False]


def test_no_creation_time_and_no_lease_is_left_alone() -> None:
    r = Resource("volume", "v", "v", {LABEL_SESSION: "x", LABEL_HOST: "elsewhere"})
    assert decide(r) == [False]


# -- real runs, real engine --------------------------------------------------------------------------------


def labelled(docker_api: Any, session: str) -> list[str]:
    f = {"label": f"{LABEL_SESSION}={session}"}
    return (
        [c["Id"] for c in docker_api.containers(all=True, filters=f)]
        + [n["Id"] for n in docker_api.networks(filters=f)]
        + [v["Name"] for v in docker_api.volumes(filters=f)["Volumes"] or []]
    )


def task_resources(docker_api: Any, session: str) -> list[str]:
    """What ``labelled`` finds, less the run's sentinel containers."""
    f = {"label": f"{LABEL_SESSION}={session}"}
    return (
        [c["Id"] for c in docker_api.containers(all=True, filters=f) if c["Labels"].get(LABEL_ROLE) != ROLE_SENTINEL]
        + [n["Id"] for n in docker_api.networks(filters=f)]
        + [v["Name"] for v in docker_api.volumes(filters=f)["Volumes"] or []]
    )


def sentinels_of(docker_api: Any, session: str) -> list[str]:
    """The states of a session's sentinel containers, oldest first."""
    f = {"label": [f"{LABEL_SESSION}={session}", f"{LABEL_ROLE}={ROLE_SENTINEL}"]}
    return [c["State"] for c in sorted(docker_api.containers(all=True, filters=f), key=lambda c: c["Created"])]


def wait_until(condition: Any, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> str:
    """A host identity of the test's own: runs of other tests (in parallel) see its resources as another
    host's, too young to sweep, so only this test's runs decide about them."""
    identity = f"test-host/{new_session_id()}"
    monkeypatch.setenv("PYTEST_ECSTASK_HOST_ID", identity)
    return identity


@pytest.fixture
def project(pytester: pytest.Pytester, image: str, host: str) -> pytest.Pytester:
    taskdef = {
        "family": "leftover",
        "taskRoleArn": "arn:aws:iam::123456789012:role/leftover",
        "networkMode": "bridge",
        "containerDefinitions": [
            {"name": "db", "image": image, "command": service(), "essential": True},
            {
                "name": "app",
                "image": image,
                "command": service(),
                "dependsOn": [{"containerName": "db", "condition": "START"}],
            },
        ],
    }
    pytester.makefile(".json", taskdef=json.dumps(taskdef))
    pytester.makeini(
        "[pytest]\necs_pull = never\necs_stop_timeout = 5\naddopts = -p no:benchmark -p no:cacheprovider\n"
    )
    return pytester


def pytest_process(
    project: pytest.Pytester, *args: str, session: str | None = None, job: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, **(job or {})}
    if session:
        env["PYTEST_ECSTASK_SESSION"] = session
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def sweep(project: pytest.Pytester, *args: str, job: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--ecs-sweep-orphans", *args],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(job or {})},
    )


def a_run_holding_a_task(
    project: pytest.Pytester, docker_api: Any, session: str, job: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """A pytest run whose test holds its task until a file appears (or it is killed)."""
    project.makepyfile(
        test_hold="""
        import os, time
        from pathlib import Path

        def test_hold(ecs_task):
            Path("started").write_text(ecs_task.id)
            while not Path("release").exists():
                time.sleep(0.1)
        """
    )
    process = pytest_process(project, "--ecs-taskdef=taskdef.json", session=session, job=job)
    try:
        wait_until(lambda: (project.path / "started").exists() or process.poll() is not None, what="the task")
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert len(task_resources(docker_api, session)) == 2  # two containers: a bridge task has no network
        wait_until(lambda: sentinels_of(docker_api, session) == ["running"], timeout=30, what="the run's sentinel")
    except BaseException:
        process.kill()  # not left holding its task (and bringing its sentinel back) after the test
        process.wait()
        raise
    return process


def test_a_run_over_within_seconds_of_its_first_task_makes_no_sentinel(
    project: pytest.Pytester, docker_api: Any
) -> None:
    session = new_session_id()
    since = int(time.time()) - 1
    project.makepyfile(test_quick="def test_quick(ecs_task):\n    assert ecs_task.status == 'RUNNING'\n")
    process = pytest_process(project, "--ecs-taskdef=taskdef.json", session=session)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    created = docker_api.events(
        since=since,
        until=int(time.time()) + 1,
        filters={"type": "container", "event": "create", "label": f"{LABEL_SESSION}={session}"},
        decode=True,
    )
    roles = [e["Actor"]["Attributes"].get(LABEL_ROLE, "") for e in created]
    assert len(roles) == 2 and ROLE_SENTINEL not in roles  # the task's two containers, and no sentinel


def test_sigkilled_run_is_swept_by_the_sweep_command_at_once(project: pytest.Pytester, docker_api: Any) -> None:
    session = new_session_id()
    process = a_run_holding_a_task(project, docker_api, session)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(task_resources(docker_api, session)) == 2  # a SIGKILL leaves everything
    result = sweep(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dead" in result.stdout
    assert labelled(docker_api, session) == []


def test_sigkilled_run_is_swept_by_the_next_run_that_uses_docker(project: pytest.Pytester, docker_api: Any) -> None:
    session = new_session_id()
    process = a_run_holding_a_task(project, docker_api, session)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (project.path / "test_hold.py").unlink()
    project.makepyfile(
        test_next="""
        def test_next(ecs_task_factory):
            ecs_task_factory("taskdef.json")
        """
    )
    result = project.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert labelled(docker_api, session) == []


def test_a_live_runs_resources_are_never_swept(project: pytest.Pytester, docker_api: Any) -> None:
    session = new_session_id()
    process = a_run_holding_a_task(project, docker_api, session)
    try:
        result = sweep(project)
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(task_resources(docker_api, session)) == 2
    finally:
        (project.path / "release").write_text("")
        output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert labelled(docker_api, session) == []


@pytest.mark.parametrize("created", ["2020-01-01T00:00:00.000Z", "now"], ids=["years-old", "brand-new"])
def test_a_held_lease_protects_resources_of_any_age(
    project: pytest.Pytester, docker_api: Any, image: str, tmp_path: Path, created: str, kept_tasks_lock: None
) -> None:
    from pytest_ecstask.lifecycle import Lease

    session = new_session_id()
    lease = Lease.acquire(session, tmp_path)  # this test is the live run
    labels = {
        LABEL_SESSION: session,
        LABEL_HOST: host_id(),
        LABEL_LEASE: str(lease.path),
        LABEL_CREATED: now_rfc3339() if created == "now" else created,
        # Kept, and swept here with --ecs-include-kept: the sweeps of tests running in parallel (other host
        # identities, for which a years-old resource is fair game) leave it alone.
        LABEL_KEEP: "1",
    }
    c = docker_api.create_container(image, command=["true"], labels=labels)

    def ours_failed(result: subprocess.CompletedProcess[str]) -> list[Any]:
        # Only this test's resources are judged: the engine may hold other runs' leftovers too.
        return [f for f in json.loads(result.stdout)["failed"] if f["session"] == session]

    try:
        assert ours_failed(sweep(project, "--ecs-orphan-age=60", "--ecs-include-kept", "--ecs-json")) == []
        assert len(labelled(docker_api, session)) == 1
        lease.release()  # the run ends without cleaning up: now it is provably dead
        assert ours_failed(sweep(project, "--ecs-orphan-age=60", "--ecs-include-kept", "--ecs-json")) == []
        assert labelled(docker_api, session) == []
    finally:
        lease.release()
        with contextlib.suppress(Exception):
            docker_api.remove_container(c, force=True)


@pytest.mark.parametrize("interrupts", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_interrupt_during_startup_leaves_nothing(
    project: pytest.Pytester, docker_api: Any, image: str, interrupts: int
) -> None:
    slow = {
        "family": "slow",
        "containerDefinitions": [
            {
                "name": "db",
                "image": image,
                "command": service(),
                "essential": False,
                "healthCheck": {"command": ["CMD-SHELL", "exit 1"], "interval": 5},
            },
            {
                "name": "app",
                "image": image,
                "command": service(),
                "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
            },
        ],
    }
    project.makefile(".json", slow=json.dumps(slow))
    project.makepyfile(
        test_slow="""
        def test_slow(ecs_task_factory):
            ecs_task_factory("slow.json")
        """
    )
    session = new_session_id()
    process = pytest_process(project, session=session)
    wait_until(lambda: len(task_resources(docker_api, session)) >= 2, what="the task's containers")
    time.sleep(0.5)
    for _ in range(interrupts):
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
    output, _ = process.communicate(timeout=120)
    assert "KeyboardInterrupt" in output or "Interrupted" in output, output
    assert labelled(docker_api, session) == []


def test_xdist_workers_share_one_session_task_removed_once(project: pytest.Pytester, docker_api: Any) -> None:
    project.makepyfile(
        test_shared="""
        import pytest
        from pathlib import Path

        @pytest.mark.parametrize("n", range(6))
        def test_sees(n, ecs_task, request):
            worker = request.config.workerinput["workerid"]
            ids = sorted(c.id for c in ecs_task.containers.values())
            assert ecs_task.metadata_uri and ecs_task.credentials.access_key_id.startswith("ASIA")
            assert all(c.status == "RUNNING" for c in ecs_task.containers.values())
            Path(f"{worker}-{n}.seen").write_text(ecs_task.id + " " + " ".join(ids))

        def test_the_controller_keeps_a_sentinel():
            import os, time, docker
            api = docker.from_env().api
            session = os.environ["PYTEST_ECSTASK_SESSION"]
            f = {"label": [f"pytest-ecstask.session={session}", "pytest-ecstask.role=sentinel"]}
            deadline = time.monotonic() + 30
            while not api.containers(filters=f):
                assert time.monotonic() < deadline, "no sentinel"
                time.sleep(0.1)
        """
    )
    session = new_session_id()
    process = pytest_process(project, "-n", "3", "--ecs-taskdef=taskdef.json", session=session)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    seen = {p.name.split("-")[0]: p.read_text() for p in project.path.glob("*.seen")}
    assert len(set(p.name.split("-")[0] for p in project.path.glob("*.seen"))) >= 2, seen
    assert len(set(seen.values())) == 1  # one task, the same containers everywhere
    assert labelled(docker_api, session) == []


# -- CI jobs on one engine: the sentinel decides where the lease cannot be read ------------------------


@pytest.fixture
def jobs(tmp_path: Path) -> Any:
    """Each call: the environment of another CI job on this engine (its own host identity and lease dir)."""

    def job(name: str) -> dict[str, str]:
        return {
            "PYTEST_ECSTASK_HOST_ID": f"ci-job-{name}/{new_session_id()}",
            "PYTEST_ECSTASK_LEASE_DIR": str(tmp_path / f"leases-{name}"),
        }

    return job


def killed_job(project: pytest.Pytester, docker_api: Any, job: dict[str, str], grace: bool = True) -> str:
    """A job's run SIGKILLed while it holds a task; returns once its sentinel exited and (``grace``) the
    sweep's grace period has passed."""
    session = new_session_id()
    process = a_run_holding_a_task(project, docker_api, session, job=job)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The engine ends the sentinel when the dead process's attach connection closes.
    wait_until(lambda: sentinels_of(docker_api, session) == ["exited"], timeout=30, what="the sentinel to exit")
    assert len(task_resources(docker_api, session)) == 2
    if grace:
        time.sleep(SENTINEL_GRACE_SECONDS + 0.5)
    return session


def a_test_using_docker(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_next="""
        def test_next(ecs_task_factory):
            ecs_task_factory("taskdef.json")
        """
    )


def reasons(report: dict[str, Any], key: str, session: str) -> set[str]:
    return {r["why"] for r in report[key] if r["session"] == session}


def test_a_sigkilled_jobs_task_is_removed_at_once_by_another_jobs_sweep(
    project: pytest.Pytester, docker_api: Any, jobs: Any
) -> None:
    job_a, job_b = jobs("a"), jobs("b")
    session = killed_job(project, docker_api, job_a, grace=False)
    exited = time.monotonic()
    # Within the grace period every sweep waits (the run might bring a new sentinel back).
    looked = json.loads(sweep(project, "--ecs-dry-run", "--ecs-json", job=job_b).stdout)
    waiting = [r for r in looked["left"] if r["session"] == session]
    assert len(waiting) == 3, looked  # the two task containers and the sentinel
    assert all(
        re.fullmatch(rf"its run \({session}\) may come back: its sentinel exited \d s ago", r["why"]) for r in waiting
    )
    time.sleep(max(0.0, SENTINEL_GRACE_SECONDS + 0.5 - (time.monotonic() - exited)))
    result = sweep(project, "--ecs-json", job=job_b)
    assert result.returncode == 0, result.stdout + result.stderr
    assert labelled(docker_api, session) == []
    # Another test's sweep, running in parallel, may have been first: then this one had nothing left to do.
    dead = re.compile(rf"its run \({session}\) is dead: its sentinel exited \d+ s ago")
    assert all(dead.fullmatch(r["why"]) for r in json.loads(result.stdout)["removed"] if r["session"] == session)


def test_a_sigkilled_jobs_task_is_removed_by_another_jobs_first_docker_use(
    project: pytest.Pytester, docker_api: Any, jobs: Any
) -> None:
    session = killed_job(project, docker_api, jobs("a"))
    (project.path / "test_hold.py").unlink()
    a_test_using_docker(project)
    process = pytest_process(project, "test_next.py", job=jobs("b"))
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert labelled(docker_api, session) == []


def test_a_live_jobs_task_is_never_touched_by_another_job(project: pytest.Pytester, docker_api: Any, jobs: Any) -> None:
    job_a, job_b = jobs("a"), jobs("b")
    session = new_session_id()
    process = a_run_holding_a_task(project, docker_api, session, job=job_a)
    try:
        result = sweep(project, "--ecs-json", job=job_b)
        assert reasons(json.loads(result.stdout), "left", session) == {
            f"its run ({session}) is alive: its sentinel runs"
        }
        a_test_using_docker(project)
        other = pytest_process(project, "test_next.py", job=job_b)
        output, _ = other.communicate(timeout=120)
        assert other.returncode == 0, output
        assert len(task_resources(docker_api, session)) == 2 and sentinels_of(docker_api, session) == ["running"]
    finally:
        (project.path / "release").write_text("")
        output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert labelled(docker_api, session) == []


def test_a_job_whose_sentinel_was_killed_gets_it_back_and_keeps_its_task(
    project: pytest.Pytester, docker_api: Any, jobs: Any
) -> None:
    job_a, job_b = jobs("a"), jobs("b")
    session = new_session_id()
    process = a_run_holding_a_task(project, docker_api, session, job=job_a)
    try:
        f = {"label": [f"{LABEL_SESSION}={session}", f"{LABEL_ROLE}={ROLE_SENTINEL}"]}
        (first,) = docker_api.containers(filters=f)
        docker_api.kill(first["Id"])
        wait_until(
            lambda: sorted(sentinels_of(docker_api, session)) == ["exited", "running"], timeout=30, what="a new one"
        )
        time.sleep(SENTINEL_GRACE_SECONDS + 0.5)  # the first one's grace is over: only the new one speaks
        result = sweep(project, "--ecs-json", job=job_b)
        assert result.returncode == 0, result.stdout + result.stderr
        assert reasons(json.loads(result.stdout), "left", session) == {
            f"its run ({session}) is alive: its sentinel runs"
        }
        assert len(task_resources(docker_api, session)) == 2
        assert process.poll() is None
    finally:
        (project.path / "release").write_text("")
        output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert labelled(docker_api, session) == []  # both sentinels removed at the end


# -- the sweep command ---------------------------------------------------------------------------------


@pytest.fixture
def orphans(docker_api: Any, image: str, tmp_path: Path, host: str) -> Any:
    """Makes resources that look as a dead run of this host left them (their lease is free)."""
    made: list[tuple[str, str]] = []

    def make(count: int, session: str | None = None) -> str:
        session = session or new_session_id()
        labels = {
            LABEL_SESSION: session,
            LABEL_TASK: "t" * 32,
            LABEL_HOST: host_id(),
            LABEL_LEASE: str(tmp_path / f"{session}.lease"),
            LABEL_CREATED: now_rfc3339(),
        }
        for i in range(count):
            c = docker_api.create_container(image, command=["true"], labels=labels, name=f"orphan-{session}-{i}")
            made.append(("container", c["Id"]))
        return session

    yield make
    for _, cid in made:
        with contextlib.suppress(Exception):
            docker_api.remove_container(cid, force=True)


def test_dry_run_lists_and_removes_nothing_then_json_run_removes(
    project: pytest.Pytester, docker_api: Any, orphans: Any
) -> None:
    session = orphans(2)
    result = sweep(project, "--ecs-dry-run")
    assert result.returncode == 0
    assert result.stdout.count(f"would remove container orphan-{session}") == 2
    assert len(labelled(docker_api, session)) == 2
    result = sweep(project, "--ecs-json")
    report = json.loads(result.stdout)
    assert result.returncode == report["exit_code"] == 0
    assert {r["name"] for r in report["removed"] if r["session"] == session} == {
        f"orphan-{session}-0",
        f"orphan-{session}-1",
    }
    assert labelled(docker_api, session) == []


def test_safety_cap_refuses_unless_forced(project: pytest.Pytester, docker_api: Any, orphans: Any) -> None:
    session = orphans(3)
    result = sweep(project, "--ecs-sweep-cap=2")
    assert result.returncode == 2
    assert "more than the safety cap of 2" in result.stdout
    assert len(labelled(docker_api, session)) == 3
    result = sweep(project, "--ecs-sweep-cap=2", "--ecs-force")
    assert result.returncode == 0
    assert labelled(docker_api, session) == []


def ours(report: dict[str, Any], key: str, session: str) -> list[str]:
    """The names under ``key`` of one session's resources: the engine may hold other runs' leftovers too."""
    return sorted(r["name"] for r in report[key] if r["session"] == session)


def test_a_dry_run_over_the_cap_lists_everything_and_says_the_sweep_would_be_refused(
    project: pytest.Pytester, docker_api: Any, orphans: Any
) -> None:
    session = orphans(3)
    names = [f"orphan-{session}-{i}" for i in range(3)]
    result = sweep(project, "--ecs-dry-run", "--ecs-sweep-cap=2")
    assert result.returncode == 2, result.stdout + result.stderr  # as the sweep it stands for would
    first, *rest = result.stdout.splitlines()
    assert "more than the safety cap of 2; without --ecs-dry-run the sweep would refuse" in first
    for name in names:  # the list to size the cap by
        assert any(line.startswith(f"would remove container {name}: ") for line in rest), result.stdout
    assert rest[-1].startswith("ecstask sweep: would be refused, ")
    report = json.loads(sweep(project, "--ecs-dry-run", "--ecs-sweep-cap=2", "--ecs-json").stdout)
    assert report["exit_code"] == 2 and report["dry_run"] is True
    assert "without --ecs-dry-run the sweep would refuse" in report["refused"]
    assert ours(report, "would_remove", session) == names and report["removed"] == []
    # --ecs-force lifts the cap for a dry run as for a sweep.
    forced = sweep(project, "--ecs-dry-run", "--ecs-sweep-cap=2", "--ecs-force", "--ecs-json")
    assert forced.returncode == 0 and json.loads(forced.stdout)["refused"] is None
    assert len(labelled(docker_api, session)) == 3


def test_a_refused_sweep_lists_what_it_would_remove_in_json_as_in_text(
    project: pytest.Pytester, docker_api: Any, orphans: Any
) -> None:
    session = orphans(3)
    names = [f"orphan-{session}-{i}" for i in range(3)]
    text = sweep(project, "--ecs-sweep-cap=2")
    assert text.returncode == 2
    assert all(f"would remove container {n}: " in text.stdout for n in names), text.stdout
    report = json.loads(sweep(project, "--ecs-sweep-cap=2", "--ecs-json").stdout)
    assert report["exit_code"] == 2 and report["dry_run"] is False
    assert "nothing was removed" in report["refused"]
    assert ours(report, "would_remove", session) == names and report["removed"] == []
    assert len(labelled(docker_api, session)) == 3
    # The same keys whatever happened: a consumer reads one shape.
    removed = json.loads(sweep(project, "--ecs-json").stdout)
    assert set(removed) == set(report) and removed["refused"] is None and removed["would_remove"] == []
    assert ours(removed, "removed", session) == names


def test_what_cannot_be_removed_gives_exit_code_1(
    project: pytest.Pytester, docker_api: Any, image: str, tmp_path: Path
) -> None:
    session = new_session_id()
    volume = f"orphan-volume-{session}"
    docker_api.create_volume(
        volume,
        labels={
            LABEL_SESSION: session,
            LABEL_HOST: host_id(),
            LABEL_LEASE: str(tmp_path / "gone.lease"),
            LABEL_CREATED: now_rfc3339(),
        },
    )
    # A container that is not ours still uses the volume, so Docker refuses to remove it.
    user = docker_api.create_container(
        image, command=["true"], host_config=docker_api.create_host_config(binds=[f"{volume}:/v"])
    )
    try:
        result = sweep(project, "--ecs-json")
        report = json.loads(result.stdout)
        assert result.returncode == report["exit_code"] == 1
        assert [f["name"] for f in report["failed"]] == [volume]
        assert re.search("in use|being used", report["failed"][0]["error"])  # Docker's words, Podman's
    finally:
        docker_api.remove_container(user, force=True)
        docker_api.remove_volume(volume, force=True)


def test_sweep_without_an_engine_says_so(project: pytest.Pytester) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--ecs-sweep-orphans"],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"},
    )
    assert result.returncode == 3
    assert "No Docker engine answered" in result.stderr


def test_keep_leaves_the_task_running_and_the_sweep_alone_until_asked(
    project: pytest.Pytester, docker_api: Any, kept_tasks_lock: None
) -> None:
    project.makepyfile(
        test_keep="""
        def test_keep(ecs_task):
            assert ecs_task.containers["app"].status == "RUNNING"
        """
    )
    session = new_session_id()
    process = pytest_process(project, "--ecs-taskdef=taskdef.json", "--ecs-keep", session=session)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "tasks kept running (--ecs-keep)" in output and "--ecs-include-kept" in output
    try:
        running = docker_api.containers(filters={"label": f"{LABEL_SESSION}={session}"})
        assert len(running) == 2
        assert sweep(project).returncode == 0
        assert len(labelled(docker_api, session)) == 2  # its run is dead, but it is kept on purpose
        assert sentinels_of(docker_api, session) == []  # the sentinel goes with the run, kept tasks or not
        assert sweep(project, "--ecs-include-kept").returncode == 0
        assert labelled(docker_api, session) == []
    finally:
        from pytest_ecstask.runtime import remove_labelled

        remove_labelled(docker_api, f"{LABEL_SESSION}={session}")


def test_the_removal_printed_for_kept_tasks_removes_containers_network_and_volumes(
    project: pytest.Pytester, docker_api: Any, image: str, kept_tasks_lock: None
) -> None:
    with_volume = {
        "family": "kept",
        "networkMode": "bridge",
        "volumes": [{"name": "data", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}}],
        "containerDefinitions": [
            {
                "name": "app",
                "image": image,
                "command": service(),
                "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}],
            }
        ],
    }
    project.makefile(".json", kept=json.dumps(with_volume))
    project.makepyfile(
        test_keep="""
        import pytest

        @pytest.mark.ecs_task("kept.json")
        def test_keep(ecs_task):
            assert ecs_task.status == "RUNNING"
        """
    )
    session = new_session_id()
    process = pytest_process(project, "--ecs-keep", session=session)
    output, _ = process.communicate(timeout=120)
    try:
        assert process.returncode == 0, output
        f = {"label": f"{LABEL_SESSION}={session}"}
        kept = (
            len(docker_api.containers(all=True, filters=f)),
            len(docker_api.networks(filters=f)),
            len(docker_api.volumes(filters=f)["Volumes"] or []),
        )
        assert kept == (1, 0, 1), output  # the container and the task volume (bridge: no task network)
        recipe = [line.strip() for line in output.splitlines() if line.strip().startswith("docker ")]
        assert recipe and all(session in line for line in recipe), output
        for line in recipe:  # as a user would paste them
            done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{line}: {done.stderr}"
        assert labelled(docker_api, session) == []
    finally:
        from pytest_ecstask.runtime import remove_labelled

        remove_labelled(docker_api, f"{LABEL_SESSION}={session}")
