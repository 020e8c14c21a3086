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
    from pytest_ecstask.lifecycle import LABEL_SESSION
    from pytest_ecstask.runtime import remove_labelled

    containers = api.containers(all=True, filters={"label": LABEL_SESSION})
    networks = api.networks(filters={"label": LABEL_SESSION})
    volumes = api.volumes(filters={"label": LABEL_SESSION}).get("Volumes") or []
    if containers or networks or volumes:
        names = [c["Names"][0] for c in containers] + [n["Name"] for n in networks] + [v["Name"] for v in volumes]
        session.config.get_terminal_writer().line(
            f"LEFTOVERS: the suite left {len(names)} resource(s) of ours on the engine: {', '.join(names)}", red=True
        )
        remove_labelled(api, LABEL_SESSION)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
