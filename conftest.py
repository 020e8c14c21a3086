"""The suite's own promise: after every test has run, the engine holds nothing of ours."""

from __future__ import annotations

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # xdist workers: the controller checks once, after all of them
    try:
        import docker

        api = docker.from_env().api
        api.ping()
    except Exception:
        return  # no engine: the Docker tests were skipped or have failed already
    from datetime import datetime, timezone

    from pytest_ecstask.leftovers import classify
    from pytest_ecstask.lifecycle import host_id
    from pytest_ecstask.runtime import list_resources, remove_resources

    # Every run of the suite has ended by now, so what remains of it belongs to a dead run. Resources of
    # runs still alive (another suite on the same engine) are not ours to judge or remove.
    verdicts = classify(
        list_resources(api), this_host=host_id(), now=datetime.now(timezone.utc), max_age_seconds=float("inf")
    )
    left = [v.resource for v in verdicts if v.remove]
    if left:
        names = ", ".join(f"{r.kind} {r.name}" for r in left)
        session.config.get_terminal_writer().line(
            f"LEFTOVERS: the suite left {len(left)} resource(s) of ours on the engine: {names}", red=True
        )
        remove_resources(api, left)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
