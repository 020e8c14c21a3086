"""After the suite: the engine must hold no container, network or volume of ours (waits for servers to exit)."""

from __future__ import annotations

import sys
import time

import docker

from pytest_ecstask.endpoints import NETWORK_LABEL
from pytest_ecstask.lifecycle import LABEL_SESSION
from pytest_ecstask.relaylink import LABEL_RELAY
from pytest_ecstask.runtime import list_resources

LABELS = (LABEL_SESSION, NETWORK_LABEL, LABEL_RELAY)


def leftovers(api: docker.APIClient) -> list[str]:
    return [f"{r.kind} {r.name}" for label in LABELS for r in list_resources(api, label)]


def main() -> int:
    api = docker.from_env().api
    deadline = time.monotonic() + 15  # endpoint servers and the relay leave within seconds of their run's end
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
