"""What is ours and what is dead, pure: the labels every resource carries and what the sweep lists. No Docker."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from pytest_ecstask.leftovers import Resource, SentinelSeen, classify, describe, sentinels_seen
from pytest_ecstask.lifecycle import (
    LABEL_CREATED,
    LABEL_HOST,
    LABEL_KEEP,
    LABEL_LEASE,
    LABEL_SENTINEL,
    LABEL_SESSION,
    LABEL_TASK,
    SENTINEL_GRACE_SECONDS,
    SENTINEL_START_GRACE_SECONDS,
    Owner,
    resource_labels,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def never_asked(lease: str) -> bool | None:
    raise AssertionError(f"no lease to check, yet {lease!r} was checked")


def test_a_resource_of_this_host_without_a_lease_goes_by_its_age() -> None:
    labels = {LABEL_SESSION: "s1", LABEL_HOST: "here", LABEL_CREATED: "2026-01-01T10:00:00.000Z"}
    verdicts = classify(
        [Resource("network", "n1", "net", labels)],
        this_host="here",
        now=NOW,
        max_age_seconds=3600,
        is_held=never_asked,
    )
    assert [(v.remove, v.why) for v in verdicts] == [(True, "from host here, 7200 s old")]


def test_the_sweep_lists_a_container_by_its_short_id_and_a_volume_by_its_name() -> None:
    labels = {LABEL_SESSION: "s1", LABEL_TASK: "t1", LABEL_CREATED: "2026-01-01T10:00:00.000Z", LABEL_HOST: "h"}
    container = Resource("container", "0123456789abcdef0123", "ecs-shop-1-app", labels)
    volume = Resource("volume", "ecs-shop-1-data-0123456789ab", "ecs-shop-1-data-0123456789ab", labels)
    assert describe(container) == {
        "kind": "container",
        "id": "0123456789ab",
        "name": "ecs-shop-1-app",
        "session": "s1",
        "task": "t1",
        "created": "2026-01-01T10:00:00.000Z",
        "host": "h",
    }
    assert describe(volume)["id"] == "ecs-shop-1-data-0123456789ab"


def test_the_sweep_lists_a_resource_without_our_labels_with_empty_fields() -> None:
    assert describe(Resource("network", "abc", "stray", {})) == {
        "kind": "network",
        "id": "abc",
        "name": "stray",
        "session": "",
        "task": "",
        "created": "",
        "host": "",
    }


def test_every_resource_carries_the_run_the_task_and_the_lease() -> None:
    owner = Owner("sess01", "host/1", "/tmp/sess01.lease")
    labels = resource_labels(owner, "task01", "container", "2026-01-01T00:00:00.000Z")
    assert {k: v for k, v in labels.items() if k != "pytest-ecstask.owner"} == {
        "pytest-ecstask.session": "sess01",
        "pytest-ecstask.task": "task01",
        "pytest-ecstask.created": "2026-01-01T00:00:00.000Z",
        "pytest-ecstask.role": "container",
        "pytest-ecstask.host": "host/1",
        "pytest-ecstask.lease": "/tmp/sess01.lease",
    }
    kept = resource_labels(Owner("sess01", "host/1", "/tmp/sess01.lease", keep=True), "task01", "container", "")
    assert kept["pytest-ecstask.keep"] == "1"


def test_a_resource_without_a_host_label_is_said_to_come_from_an_unknown_host() -> None:
    labels = {LABEL_SESSION: "s1", LABEL_CREATED: "2026-01-01T10:00:00.000Z"}
    verdicts = classify(
        [Resource("volume", "v1", "vol", labels)], this_host="here", now=NOW, max_age_seconds=3600, is_held=never_asked
    )
    assert [(v.remove, v.why) for v in verdicts] == [(True, "from host ?, 7200 s old")]


# -- the sentinel: where the lease cannot be read ---------------------------------------------------------


def from_another_job(age: float = 600, sentinel: bool = True, **labels: str) -> Resource:
    """A resource of a run on another host (another CI job): its lease cannot be read from here."""
    created = (NOW - timedelta(seconds=age)).isoformat().replace("+00:00", "Z")
    base = {LABEL_SESSION: "s1", LABEL_HOST: "job-b", LABEL_LEASE: "/elsewhere/s1.lease", LABEL_CREATED: created}
    if sentinel:
        base[LABEL_SENTINEL] = "1"
    return Resource("container", "c1", "ecs-app", {**base, **labels})


def judge(r: Resource, seen: SentinelSeen | None, max_age: float = 7200, **kwargs: Any) -> tuple[bool, str]:
    (verdict,) = classify(
        [r],
        this_host="job-a",
        now=NOW,
        max_age_seconds=max_age,
        is_held=never_asked,
        sentinels={} if seen is None else {r.session: seen},
        **kwargs,
    )
    return verdict.remove, verdict.why


def test_a_running_sentinel_keeps_another_jobs_run_alive_whatever_its_age() -> None:
    assert judge(from_another_job(age=10**6), SentinelSeen(True), max_age=60) == (
        False,
        "its run (s1) is alive: its sentinel runs",
    )


def test_an_exited_sentinel_means_dead_at_once_past_the_grace_period() -> None:
    exited = SentinelSeen(False, NOW - timedelta(seconds=SENTINEL_GRACE_SECONDS + 1))
    assert judge(from_another_job(age=30), exited) == (True, "its run (s1) is dead: its sentinel exited 6 s ago")


def test_a_sentinel_that_just_exited_gets_a_grace_period_to_come_back() -> None:
    exited = SentinelSeen(False, NOW - timedelta(seconds=2))
    assert judge(from_another_job(), exited) == (False, "its run (s1) may come back: its sentinel exited 2 s ago")
    assert judge(from_another_job(), exited, grace_seconds=1)[0] is True


def test_a_missing_sentinel_means_dead_unless_the_run_is_just_starting() -> None:
    assert judge(from_another_job(age=SENTINEL_START_GRACE_SECONDS + 1), None) == (
        True,
        "its run (s1) is dead: it has no sentinel",
    )
    # Its first sentinel is started once its first task is up: the run is given time for it.
    assert judge(from_another_job(age=20), None) == (False, "its run (s1) is starting: no sentinel yet")


def test_without_sentinel_or_readable_lease_the_age_decides() -> None:
    # An older version's or a script's resource: no sentinel label and no sentinel on the engine.
    old = from_another_job(age=7201, sentinel=False)
    assert judge(old, None) == (True, "from host job-b, 7201 s old")
    assert judge(from_another_job(age=60, sentinel=False), None) == (False, "from host job-b, only 60 s old")


def test_the_lease_stays_the_fast_path_on_this_host() -> None:
    here = from_another_job(**{LABEL_HOST: "job-a"})
    dead = classify(
        [here],
        this_host="job-a",
        now=NOW,
        max_age_seconds=7200,
        is_held=lambda _: False,
        sentinels={"s1": SentinelSeen(True)},
    )
    assert [(v.remove, v.why) for v in dead] == [(True, "its run (s1) is dead: lease /elsewhere/s1.lease is free")]


def test_a_lease_that_cannot_be_read_on_this_host_leaves_the_decision_to_the_sentinel() -> None:
    here = from_another_job(**{LABEL_HOST: "job-a"})
    verdicts = classify(
        [here, replace(here, labels={**here.labels, LABEL_SENTINEL: ""})],
        this_host="job-a",
        now=NOW,
        max_age_seconds=7200,
        is_held=lambda _: None,
        sentinels={"s1": SentinelSeen(False, NOW - timedelta(seconds=60))},
    )
    assert [(v.remove, v.why) for v in verdicts] == [
        (True, "its run (s1) is dead: its sentinel exited 60 s ago"),
        (True, "its run (s1) is dead: its sentinel exited 60 s ago"),  # a sentinel seen on the engine counts
    ]


def test_kept_and_own_resources_stay_whatever_the_sentinel_says() -> None:
    gone = SentinelSeen(False, NOW - timedelta(seconds=600))
    assert judge(from_another_job(**{LABEL_KEEP: "1"}), gone)[0] is False
    assert judge(from_another_job(), gone, live_sessions=["s1"]) == (False, "this run")


def test_a_session_with_any_sentinel_running_is_alive_and_times_are_read_as_docker_writes_them() -> None:
    seen = sentinels_seen(
        [
            ("s1", "exited", "2026-01-01T11:59:00.123456789Z"),
            ("s1", "running", "0001-01-01T00:00:00Z"),
            ("s2", "exited", "2026-01-01T11:58:00.5Z"),
            ("s2", "exited", "2026-01-01T11:59:30Z"),
            ("s3", "created", ""),
        ]
    )
    assert seen == {
        "s1": SentinelSeen(True),
        "s2": SentinelSeen(False, datetime(2026, 1, 1, 11, 59, 30, tzinfo=timezone.utc)),
        "s3": SentinelSeen(True),  # about to start
    }


def test_resources_of_a_run_with_a_sentinel_say_so() -> None:
    labels = resource_labels(Owner("s", "h", "/l", sentinel=True), "t", "sentinel", "")
    assert labels[LABEL_SENTINEL] == "1"
    assert LABEL_SENTINEL not in resource_labels(Owner("s", "h", "/l"), "t", "app", "")


def test_a_task_kept_for_reuse_stays_while_used_or_recently_used_and_goes_when_idle() -> None:
    from pytest_ecstask.lifecycle import LABEL_REUSE

    labels = {
        LABEL_SESSION: "s1",
        LABEL_HOST: "here",
        LABEL_TASK: "t1",
        LABEL_LEASE: "/leases/s1.lease",
        LABEL_CREATED: "2026-01-01T01:00:00.000Z",
        LABEL_REUSE: "/leases/reuse/abc.json",
    }
    kept = Resource("container", "c1", "ecs-x", labels)

    def verdict(
        record: Any, *, include_kept: bool = False, host: str = "here", creator_alive: bool = False
    ) -> tuple[bool, str]:
        def read(path: str) -> Any:
            if isinstance(record, Exception):
                raise record
            return record if path == "/leases/reuse/abc.json" else None

        [v] = classify(
            [kept],
            this_host=host,
            now=NOW,
            max_age_seconds=3600,
            include_kept=include_kept,
            is_held=lambda lease: lease == "/leases/user.lease" or (lease == "/leases/s1.lease" and creator_alive),
            reuse_record=read,
        )
        return v.remove, v.why

    assert verdict((60.0, "", "t1")) == (False, "kept for reuse (--ecs-reuse), idle for 60 s")
    in_use = (False, "kept for reuse, and in use by a live run")
    assert verdict((7200.0, "/leases/user.lease", "t1")) == in_use
    assert verdict((7200.0, "/leases/user.lease", "t1"), include_kept=True) == in_use  # never under a live run
    assert verdict((7200.0, "", "t1")) == (True, "kept for reuse, idle for 7200 s (more than 3600 s)")
    assert verdict(PermissionError()) == (
        False,
        "kept for reuse; its reuse record cannot be read here (another user's run)",
    )
    assert verdict((60.0, "", "t1"), host="elsewhere") == (False, "kept for reuse by another host's runs (--ecs-reuse)")
    # Not (or no longer) the recorded task: its run's lease decides, as for any resource.
    assert verdict(None, creator_alive=True) == (False, "its run (s1) is alive")  # kept at the run's end only
    assert verdict((60.0, "", "t2")) == (True, "its run (s1) is dead: lease /leases/s1.lease is free")  # replaced
    # --ecs-include-kept: judged as any other resource; its run's lease is free, so it goes.
    assert verdict((60.0, "", "t1"), include_kept=True)[0] is True


def test_a_run_folder_others_can_open_or_another_made_is_refused_naming_it(tmp_path: Any) -> None:
    import os
    import stat

    import pytest

    from pytest_ecstask.errors import EcsTaskError
    from pytest_ecstask.lifecycle import private_dir, write_private

    made = private_dir(tmp_path / "s1.d")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    write_private(made / "endpoint.json", "{}")
    assert stat.S_IMODE((made / "endpoint.json").stat().st_mode) == 0o600
    assert private_dir(made) == made  # there already, and the user's only: taken as it is
    opened = tmp_path / "s2.d"
    opened.mkdir(mode=0o755)
    os.chmod(opened, 0o755)  # whatever the umask: others may open it
    with pytest.raises(EcsTaskError) as raised:
        private_dir(opened)
    assert str(raised.value).startswith(f"{opened}: this run's folder in the lease directory is not a folder of")
    assert "PYTEST_ECSTASK_LEASE_DIR" in str(raised.value)
    link = tmp_path / "s3.d"
    link.symlink_to(made)
    with pytest.raises(EcsTaskError):
        private_dir(link)  # a link, even to a private folder
