"""What is ours and what is dead, pure: the labels every resource carries and what the sweep lists. No Docker."""

from __future__ import annotations

from datetime import datetime, timezone

from pytest_ecstask.lifecycle import (
    LABEL_CREATED,
    LABEL_HOST,
    LABEL_SESSION,
    LABEL_TASK,
    Owner,
    Resource,
    classify,
    describe,
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
