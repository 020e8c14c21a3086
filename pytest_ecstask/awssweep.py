"""What cleans up on ECS: ``pytest --ecs-sweep-orphans --ecs-backend=aws``.

A run stops its tasks and deregisters its revisions itself; a run that was killed leaves them. They are found
by what every run puts on them: tasks of the cluster started by ``pytest-ecstask-<session>`` and tagged with
the session, and revisions of the families that end with ``--ecs-aws-family-suffix`` tagged with it: active
ones, and inactive ones (deregistered by a run that could not delete them).
Each is judged by the rules of the Docker sweep (:func:`leftovers.classify`), from tags that carry what the
Docker labels carry: a run of this host (the host tag) by the lease its lease tag names (with the process
of its owner tag when the lease file is gone), so a live run's are never touched and a dead run's go at
once; another host's, whose lease cannot be asked, once older than ``--ecs-orphan-age``, counted from ECS's
own ``createdAt`` or ``registeredAt``, or from the run's heartbeat tag when that is later. Tasks are
stopped, active revisions deregistered, then revisions deleted (where ECS has no DeleteTaskDefinitions, an
inactive one is left, with why). The cap, the dry run and the report, as text or JSON, are the Docker
sweep's. A revision that cannot be described (a run removed it meanwhile) is left, with why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import PurePath
from typing import TYPE_CHECKING

from pytest_ecstask.ecsrequests import (
    ALIVE_TAG,
    HOST_TAG,
    LEASE_TAG,
    OWNER_TAG,
    SESSION_TAG,
    STARTED_BY_PREFIX,
    host_tag_value,
)
from pytest_ecstask.ecsstate import read_task
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.leftovers import Resource, Verdict, classify
from pytest_ecstask.lifecycle import (
    DEFAULT_CAP,
    DEFAULT_MAX_AGE,
    LABEL_ALIVE,
    LABEL_CREATED,
    LABEL_HOST,
    LABEL_LEASE,
    LABEL_OWNER,
    LABEL_SESSION,
    host_id,
    lease_dir,
    lease_is_held,
)
from pytest_ecstask.sweep import SweepReport, cap_refusal

if TYPE_CHECKING:
    from pytest_ecstask.ecsbackend import EcsBackend

TASK, REVISION, INACTIVE_REVISION = "task", "task definition", "inactive task definition"
_REVISION_KINDS = {"ACTIVE": REVISION, "INACTIVE": INACTIVE_REVISION}  # DELETE_IN_PROGRESS: going already
# An inactive revision (deregistered, not deleted) where ECS deletes none: left, as the run that left it did.
NO_DELETION = "inactive (deregistered); this region has no DeleteTaskDefinitions to delete it, and it runs nothing"
_LABELS_OF_TAGS = ((LEASE_TAG, LABEL_LEASE), (OWNER_TAG, LABEL_OWNER), (ALIVE_TAG, LABEL_ALIVE))


def ecs_resource(kind: str, arn: str, name: str, tags: Mapping[str, str], created: datetime | None) -> Resource | None:
    """What a sweep judges, labelled as a Docker resource of the same run would be; None: not a run's.

    The lease is the one its lease tag names; without one (a path ECS takes in no tag), for a run of this
    host, the one it holds in this sweep's lease directory, named after its session: its owner tag (its
    process) then keeps a live run's resources from being judged by a lease it does not hold. A lease tag
    that names another file than ``<session>.lease`` is not taken: proving a run dead removes its lease
    file, and a tag anyone with TagResource can write must not name any other file of this host.
    """
    session = tags.get(SESSION_TAG, "")
    if not session:
        return None
    host = tags.get(HOST_TAG, "")
    labels = {LABEL_SESSION: session, LABEL_HOST: host}
    labels.update({label: tags[tag] for tag, label in _LABELS_OF_TAGS if tags.get(tag)})
    if PurePath(labels.get(LABEL_LEASE, "")).name != f"{session}.lease":
        labels.pop(LABEL_LEASE, None)
    if LABEL_LEASE not in labels and host and host == host_tag_value(host_id()):
        labels[LABEL_LEASE] = str(lease_dir() / f"{session}.lease")
    if created is not None:
        stamp = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
        labels[LABEL_CREATED] = stamp.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return Resource(kind, arn, name, labels)


def session_tasks(backend: EcsBackend, cluster: str) -> list[Resource]:
    """The cluster's running tasks that a run started: by its startedBy, with its session tag."""
    found = []
    for description in backend.describe_tasks(cluster, backend.running_tasks(cluster)):
        seen = read_task(description)
        if not seen.started_by.startswith(STARTED_BY_PREFIX):
            continue
        revision = str(description.get("taskDefinitionArn", "")).rsplit("/", 1)[-1]
        resource = ecs_resource(TASK, seen.arn, f"{seen.id} ({revision})", seen.tags, seen.created_at)
        if resource is not None:
            found.append(resource)
    return found


def session_revisions(backend: EcsBackend, suffix: str) -> tuple[list[Resource], list[Verdict]]:
    """The revisions, active or inactive (a run deregistered them and could not delete them), of the families
    with the suffix that a run registered: by its session tag; and those that could not be described
    (removed by their run since they were listed, most likely), left."""
    found = []
    unread = []
    # Without DeleteTaskDefinitions (an older botocore) an inactive revision cannot go: not even looked at.
    statuses = ("ACTIVE", "INACTIVE") if backend.deletes_task_definitions() else ("ACTIVE",)
    listed = [arn for family in backend.families(suffix) for s in statuses for arn in backend.revisions(family, s)]
    for arn in listed:
        name = arn.rsplit("/", 1)[-1]
        try:
            described, tags = backend.describe_task_definition(arn)
        except EcsTaskError as exc:
            unread.append(Verdict(Resource(REVISION, arn, name, {}), False, f"could not be described: {exc}"))
            continue
        # Its status now, not the listing's: another sweep may have deregistered or deleted it meanwhile.
        kind = _REVISION_KINDS.get(str(described.get("status", "ACTIVE")))
        registered = described.get("registeredAt")
        created = registered if isinstance(registered, datetime) else None
        resource = ecs_resource(kind, arn, name, tags, created) if kind is not None else None
        if resource is not None:
            found.append(resource)
    return found, unread


def sweep_ecs(
    backend: EcsBackend,
    cluster: str,
    family_suffix: str,
    *,
    dry_run: bool = False,
    max_age: float = DEFAULT_MAX_AGE,
    cap: int = DEFAULT_CAP,
    force: bool = False,
    now: datetime | None = None,
) -> SweepReport:
    """Stop the tasks and remove the revisions of dead runs; a live run's are left alone."""
    tasks = session_tasks(backend, cluster)
    revisions, unread = session_revisions(backend, family_suffix)
    resources = tasks + revisions
    verdicts = classify(
        resources,
        this_host=host_tag_value(host_id()),
        now=now or datetime.now(timezone.utc),
        max_age_seconds=max_age,
        is_held=lambda path: lease_is_held(path, cleanup=not dry_run),
    )
    report = SweepReport(dry_run=dry_run)
    report.chosen = [v for v in verdicts if v.remove]
    report.left = [v for v in verdicts if not v.remove] + unread
    report.refused = cap_refusal(len(report.chosen), cap, force, dry_run)
    if report.refused or dry_run:
        return report
    report.failed, undeletable = remove(backend, cluster, [v.resource for v in report.chosen])
    if undeletable:
        report.chosen = [v for v in report.chosen if v.resource not in undeletable]
        report.left += [Verdict(r, False, NO_DELETION) for r in undeletable]
    return report


def remove(
    backend: EcsBackend, cluster: str, resources: Sequence[Resource]
) -> tuple[list[tuple[Resource, str]], list[Resource]]:
    """Stop the tasks first (their revisions can go while they stop), then deregister the active revisions
    and delete them and the inactive ones; returns what could not be removed, and why, and the inactive
    revisions left where ECS deletes none."""
    failed: list[tuple[Resource, str]] = []
    to_delete: dict[str, Resource] = {}
    for r in resources:
        try:
            if r.kind == TASK:
                backend.stop_task(cluster, r.id, f"pytest-ecstask sweep: its run ({r.session}) is over")
            elif r.kind == REVISION:
                backend.deregister_task_definition(r.id)
                to_delete[r.id] = r
            else:
                to_delete[r.id] = r
        except EcsTaskError as exc:
            failed.append((r, str(exc)))
    try:
        not_deleted = backend.delete_task_definitions(list(to_delete))
    except EcsTaskError as exc:
        not_deleted = [(arn, str(exc)) for arn in to_delete]
    if not_deleted is None:  # the active ones were deregistered: inactive now, as the inactive ones stay
        return failed, [r for r in to_delete.values() if r.kind == INACTIVE_REVISION]
    for arn, why in not_deleted:
        if arn in to_delete:
            done = "deregistered, not deleted" if to_delete[arn].kind == REVISION else "not deleted"
            failed.append((to_delete[arn], f"{done}: {why}"))
    return failed, []
