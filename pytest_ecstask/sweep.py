"""What cleans up: the orphan sweep, run at a run's first Docker use and by ``pytest --ecs-sweep-orphans``.

Under one file lock per host (so concurrent runs and xdist workers do not race), it lists our resources
by label (one call per resource type) and the runs' sentinel containers, keeps every resource whose run is
alive, and removes in parallel those whose run is provably dead (its lease is free, or, where the lease
cannot be read, its sentinel is over) or, for resources with neither, older than the age limit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_ecstask.leftovers import (
    Resource,
    SentinelSeen,
    Verdict,
    classify,
    describe,
    remove_stale_run_files,
    sentinels_seen,
)
from pytest_ecstask.lifecycle import (
    DEFAULT_CAP,
    DEFAULT_MAX_AGE,
    LABEL_REUSE,
    LABEL_ROLE,
    LABEL_SESSION,
    ROLE_SENTINEL,
    host_id,
    lease_dir,
    lease_is_held,
)

if TYPE_CHECKING:
    import docker

    from pytest_ecstask.endpointids import EndpointInfo

LOCK_TIMEOUT = 120.0

EXIT_OK = 0
EXIT_NOT_REMOVED = 1
EXIT_CAP_REFUSED = 2
EXIT_NO_ENGINE = 3


@dataclass
class SweepReport:
    dry_run: bool
    chosen: list[Verdict] = field(default_factory=list)  # removed, or would be in a dry run or a refused sweep
    left: list[Verdict] = field(default_factory=list)  # not touched, with the reason
    failed: list[tuple[Resource, str]] = field(default_factory=list)
    # The safety cap tripped: nothing was removed. A dry run says so too, since it is how a cap is sized.
    refused: str | None = None
    stale_leases: int = 0

    @property
    def removing(self) -> bool:
        """Whether the chosen resources were removed (not a dry run, not refused)."""
        return not (self.dry_run or self.refused)

    @property
    def exit_code(self) -> int:
        if self.refused:
            return EXIT_CAP_REFUSED
        return EXIT_NOT_REMOVED if self.failed else EXIT_OK

    def as_json(self) -> str:
        failed_ids = {r.id for r, _ in self.failed}
        chosen = [{**describe(v.resource), "why": v.why} for v in self.chosen if v.resource.id not in failed_ids]
        data: dict[str, Any] = {
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "refused": self.refused,
            "removed": chosen if self.removing else [],
            "would_remove": [] if self.removing else chosen,
            "failed": [{**describe(r), "error": why} for r, why in self.failed],
            "left": [{**describe(v.resource), "why": v.why} for v in self.left],
            "stale_leases_removed": self.stale_leases,
        }
        return json.dumps(data, indent=2)

    def lines(self) -> list[str]:
        out = []
        verb = "removed" if self.removing else "would remove"
        if self.refused:
            out.append(self.refused)
        failed_ids = {r.id for r, _ in self.failed}
        for v in self.chosen:
            if v.resource.id in failed_ids:
                continue
            out.append(f"{verb} {v.resource.kind} {v.resource.name}: {v.why}")
        for r, why in self.failed:
            out.append(f"could not remove {r.kind} {r.name}: {why}")
        live = sum(1 for v in self.left)
        summary = f"ecstask sweep: {len(self.chosen) - len(self.failed)} {verb}"
        if self.refused:
            refused = "would be refused" if self.dry_run else "refused"
            summary = f"ecstask sweep: {refused}, {len(self.chosen)} resources would go"
        summary += f", {len(self.failed)} failed, {live} left alone (live runs, kept, or too young)"
        out.append(summary)
        return out


def sweep(
    api: docker.APIClient,
    *,
    dry_run: bool = False,
    max_age: float = DEFAULT_MAX_AGE,
    cap: int = DEFAULT_CAP,
    force: bool = False,
    include_kept: bool = False,
    live_sessions: Sequence[str] = (),
    network: bool = True,
) -> SweepReport:
    """``network`` False: the shared endpoint network is left for ``sweep_network``, called after."""
    from filelock import FileLock

    from pytest_ecstask.runtime import list_resources, remove_resources

    directory = lease_dir()
    report = SweepReport(dry_run=dry_run)
    serving: list[tuple[EndpointInfo, str]] = []
    with FileLock(str(directory / "sweep.lock"), timeout=LOCK_TIMEOUT, thread_local=False):
        verdicts = classify(
            list_resources(api),
            this_host=host_id(),
            now=datetime.now(timezone.utc),
            max_age_seconds=max_age,
            include_kept=include_kept,
            live_sessions=live_sessions,
            is_held=lambda path: lease_is_held(path, cleanup=not dry_run),
            sentinels=sentinels(api),
        )
        from pytest_ecstask.relaylink import relay_leftovers

        # The engine's relay is shared by runs, so no run's liveness decides: it goes once it does not run.
        verdicts += [Verdict(r, True, "a relay container that does not run") for r in relay_leftovers(api)]
        report.chosen = [v for v in verdicts if v.remove]
        report.left = [v for v in verdicts if not v.remove]
        report.refused = cap_refusal(len(report.chosen), cap, force, dry_run)
        if report.refused:
            return report
        if dry_run:
            return report
        report.failed = remove_resources(api, [v.resource for v in report.chosen])
        serving = _forget_reuse_records(directory, [v.resource for v in report.chosen])
        report.stale_leases = remove_stale_run_files(directory)
    from pytest_ecstask.endpoints import release_kept

    for server, task_id in serving:  # after the sweep's lock: each may take seconds to stop
        release_kept(server, task_id)
    if network:
        sweep_network(api)
    return report


def sweep_network(api: docker.APIClient) -> None:
    """Remove the shared endpoint network when no server of any run is left to need it (one killed outright)."""
    from filelock import FileLock

    from pytest_ecstask.endpoints import remove_network_if_unused

    with FileLock(str(lease_dir() / "endpoint-network.lock"), timeout=LOCK_TIMEOUT, thread_local=False):
        remove_network_if_unused(api, lease_dir(), own_session="")


def cap_refusal(chosen: int, cap: int, force: bool, dry_run: bool) -> str | None:
    """Why a sweep that would remove ``chosen`` resources removes nothing (None: it may go on)."""
    if chosen <= cap or force:
        return None
    over = f"ecstask sweep: {chosen} resources would be removed, more than the safety cap of {cap}"
    if dry_run:
        return (
            f"{over}; without --ecs-dry-run the sweep would refuse and remove nothing. If the list is right, "
            "sweep with --ecs-force or a larger --ecs-sweep-cap"
        )
    return (
        f"{over}; nothing was removed. Look at the list (--ecs-dry-run), then run again with "
        "--ecs-force or a larger --ecs-sweep-cap"
    )


def _forget_reuse_records(directory: Path, removed: Sequence[Resource]) -> list[tuple[EndpointInfo, str]]:
    """The reuse records of kept tasks the sweep removed: nothing is left to adopt (and they hold secrets).
    Returned: the servers that kept serving such tasks, with the task each kept, to be stopped."""
    from pytest_ecstask.endpoints import info_from_record

    serving = []
    for path in {Path(r.labels.get(LABEL_REUSE, "")) for r in removed}:
        if path.name and path.parent.parent == directory and path.parent.name.startswith("reuse"):
            with contextlib.suppress(OSError, ValueError):  # another user's: theirs to forget
                record = json.loads(path.read_text())
                path.unlink(missing_ok=True)
                server = info_from_record(record.get("server")) if isinstance(record, dict) else None
                if server is not None:
                    serving.append((server, str(record.get("task_id"))))
    return serving


def sentinels(api: docker.APIClient) -> dict[str, SentinelSeen]:
    """Every run's sentinel as the engine sees it; one inspect per sentinel that is over (for its exit time)."""
    import docker.errors

    found = []
    for c in api.containers(all=True, filters={"label": f"{LABEL_ROLE}={ROLE_SENTINEL}"}):
        session = (c.get("Labels") or {}).get(LABEL_SESSION, "")
        finished = ""
        if c.get("State") in ("exited", "dead"):
            with contextlib.suppress(docker.errors.NotFound):  # removed meanwhile: over, since when is unknown
                finished = str(api.inspect_container(c["Id"])["State"].get("FinishedAt", ""))
        found.append((session, str(c.get("State", "")), finished))
    return sentinels_seen(found)
