"""After the suite: the engine must hold no container, network or volume of ours (waits for servers to exit)."""

from __future__ import annotations

import sys
import time

import docker

LABELS = ("pytest-ecstask.session", "pytest-ecstask.endpoints")


def leftovers(api: docker.APIClient) -> list[str]:
    found = []
    for label in LABELS:
        found += [f"container {c['Names'][0]}" for c in api.containers(all=True, filters={"label": label})]
        found += [f"network {n['Name']}" for n in api.networks(filters={"label": label})]
        found += [f"volume {v['Name']}" for v in api.volumes(filters={"label": label}).get("Volumes") or []]
    return found


def main() -> int:
    api = docker.from_env().api
    deadline = time.monotonic() + 15  # endpoint servers leave within a second of their run's end
    while True:
        found = leftovers(api)
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if found:
        print("ci: the engine still holds resources of ours after the suite:", *found, sep="\n  ")
        return 1
    print("ci: engine clean: no container, network or volume of ours remains")
    return 0


if __name__ == "__main__":
    sys.exit(main())
