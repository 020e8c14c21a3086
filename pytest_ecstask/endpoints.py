"""What serves HTTP: the task metadata (v3, v4) and credentials endpoints at 169.254.170.2.

One server per run, in a small process of its own, so that every process of the run (the xdist controller
and its workers) registers its tasks with the same server, and the server outlives whichever worker
finishes first. It lives until the run's lease is released, however the run ends.

How containers reach it: a Docker network with the subnet 169.254.170.0/24 and gateway 169.254.170.2 makes
the engine's host own 169.254.170.2 on that network's bridge. Containers need not join that network: their
packets to 169.254.170.2 leave through their own network's gateway, the host, which owns the address. So
containers of every network mode reach it (awsvpc through the pause container's network, bridge from
Docker's default bridge, host), and AWS SDKs accept it, since 169.254.170.2 is the ECS address they trust
for plain-http credentials. They must not join it either: as on an ECS instance (where the host forwards
169.254.170.2 to the agent), a bridge-mode container has one network, the default bridge, and a second,
user-defined one would hand its resolver to Docker's embedded DNS.

This module serves, and reads Docker for each answer; ``metadata`` builds the answers from a task's
record and that data, with no Docker and no HTTP in it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pytest_ecstask.dockerstate import docker_time

# What a container is told (its variables and ids) is pure, in endpointids, where the planner reads it;
# the names other modules import from here are re-exported.
from pytest_ecstask.endpointids import ENDPOINT_IP as ENDPOINT_IP
from pytest_ecstask.endpointids import EndpointInfo as EndpointInfo
from pytest_ecstask.endpointids import EndpointRequest, authorization_token
from pytest_ecstask.endpointids import credentials_id as credentials_id
from pytest_ecstask.endpointids import metadata_id as metadata_id
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.metadata import (
    ContainerRecord,
    Inspected,
    TaskRecord,
    container_response,
    stats_response,
    task_addresses,
    task_response,
    with_network_stats,
)
from pytest_ecstask.options import ENDPOINT_SUBNET
from pytest_ecstask.relay import is_local as _is_local  # one probe: bind the address

if TYPE_CHECKING:
    import socket

    import docker

    from pytest_ecstask.runtime import Engine

SUBNET = ENDPOINT_SUBNET
NETWORK_NAME = "pytest-ecstask-endpoints"
NETWORK_LABEL = "pytest-ecstask.endpoints"
ANCHOR_NAME = "pytest-ecstask-endpoints-anchor"  # Podman: keeps the network's bridge, and 169.254.170.2, up
CONTROL = "/_ecstask"
STARTUP_TIMEOUT = 20.0
# How long the run's processes wait for the endpoint network another of them makes (the lock may be busy).
NETWORK_WAIT_TIMEOUT = 150.0
RELAY_START_TIMEOUT = 300.0  # more, for the relay: its image may be pulled first
LEASE_POLL_SECONDS = 0.5
KEPT_CHECK_SECONDS = 5.0  # how often a server whose runs are over checks that the tasks kept for reuse are up
KEPT_UNKNOWN_SECONDS = 60.0  # how long it goes on serving them while Docker cannot tell
SHUTDOWN_POLL_SECONDS = 0.05  # how soon the server notices a shutdown asked (the run waits for it to go)
TOKEN_VARIABLE = "PYTEST_ECSTASK_ENDPOINT_TOKEN"  # the control token, for a server given its socket
DOCKER_CONNECT_DELAY_SECONDS = 2.0  # a server given its socket connects to Docker then, or when first needed
INSPECT_RETRY_SECONDS = 0.1  # before asking the engine again an inspect it refused
HANDOFF_WAIT_SECONDS = 5.0  # how long an unknown id waits for a registration handed over on stdin
LISTEN_BACKLOG = 128

# The paths below a container's metadata URI, and what the agent's handlers answer for an id they do not
# know (ecs-agent/tmds/handlers/v4/handlers.go, agent/handlers/v3): status and message by version and path.
METADATA_PATHS = ("", "task", "taskWithTags", "stats", "task/stats")
_CONTAINER_LOOKUP = "unable to get container ID from request: unable to get docker ID from v3 endpoint ID: {}"
_TASK_LOOKUP = "unable to get task arn from request: unable to get task Arn from v3 endpoint ID: {}"
UNKNOWN_ID = {
    (True, ""): (404, "V4 container metadata handler: " + _CONTAINER_LOOKUP),
    (True, "task"): (404, "V4 task metadata handler: " + _TASK_LOOKUP),
    (True, "stats"): (404, "V4 container stats handler: " + _TASK_LOOKUP),
    (True, "task/stats"): (404, "V4 task stats handler: " + _TASK_LOOKUP),
    (False, ""): (500, "V3 container metadata handler: " + _CONTAINER_LOOKUP),
    (False, "task"): (500, "V3 task metadata handler: " + _TASK_LOOKUP),
    (False, "stats"): (400, "V3 container stats handler: " + _TASK_LOOKUP),
    (False, "task/stats"): (400, "V3 task stats handler: " + _TASK_LOOKUP),
}


def unknown_id(v4: bool, rest: str, mid: str) -> tuple[int, str]:
    status, message = UNKNOWN_ID[(v4, "task" if rest == "taskWithTags" else rest)]
    return status, message.format(mid)


def failed(v4: bool, rest: str, record: TaskRecord, container: ContainerRecord) -> tuple[int, str]:
    """What the agent answers when it cannot build an answer: here Docker failed, or the container is gone."""
    if rest == "stats":
        return (500 if v4 else 400), f"Unable to get container stats for: {container.docker_name}"
    if rest == "task/stats":
        return (500 if v4 else 400), f"Unable to get task stats for: {record.task_arn}"
    if rest == "":
        return 500, f"{'u' if v4 else 'U'}nable to generate metadata for container '{container.docker_name}'"
    return 500, f"Unable to generate metadata for {'v4 task' if v4 else 'task'}: '{record.task_arn}'"


# -- the server --------------------------------------------------------------------------------------------


class Registry:
    """Registered tasks, by the ids containers present."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[str, TaskRecord] = {}
        self.by_metadata_id: dict[str, tuple[str, str]] = {}  # id -> (task id, container name)
        self.by_credentials_id: dict[str, str] = {}
        self.on_change: Callable[[], None] = lambda: None  # the relay link tells the relay the ids served
        # Set once the registrations handed over on the server's stdin are all in (see ``take_handoff``).
        self.handed_over = threading.Event()
        self.handed_over.set()

    def take_handoff(self, stream: IO[bytes]) -> None:
        """Registrations the run's process writes on the server's stdin, one JSON line each, before it
        starts the task's containers (the server may still be starting); it closes the stream after the
        first. An id not known yet waits for them: what a container asks is registered before it started.
        Nothing is waited for after STARTUP_TIMEOUT (a first task that never registered)."""
        self.handed_over.clear()

        def read() -> None:
            try:
                for line in stream:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        self.add(TaskRecord.from_dict(json.loads(line)))
            finally:
                self.handed_over.set()

        threading.Thread(target=read, name="ecstask-handoff", daemon=True).start()
        limit = threading.Timer(STARTUP_TIMEOUT, self.handed_over.set)
        limit.daemon = True
        limit.start()

    def handoff_pending(self) -> bool:
        return not self.handed_over.is_set()

    def await_handoff(self) -> None:
        """Before acting on a task id of a control request: the registration on its way is in."""
        self.handed_over.wait(HANDOFF_WAIT_SECONDS)

    def ids(self) -> list[str]:
        """Every id a container may present: what the relay routes to this run."""
        with self.lock:
            return [*self.by_metadata_id, *self.by_credentials_id]

    def add(self, record: TaskRecord) -> None:
        with self.lock:
            known = self.tasks.get(record.task_id)
            if known is not None:  # registered again (another process of the run): the restarts told stay
                record = dataclasses.replace(
                    record, restart_counts=known.restart_counts, first_started_at=known.first_started_at
                )
            self.tasks[record.task_id] = record
            for c in record.containers:
                if c.metadata_id:
                    self.by_metadata_id[c.metadata_id] = (record.task_id, c.name)
            if record.credentials:
                self.by_credentials_id[record.credentials.id] = record.task_id
        self.on_change()

    def remove(self, task_id: str) -> None:
        with self.lock:
            record = self.tasks.pop(task_id, None)
            if record is None:
                return
            for c in record.containers:
                self.by_metadata_id.pop(c.metadata_id, None)
            if record.credentials:
                self.by_credentials_id.pop(record.credentials.id, None)
        self.on_change()

    def task_of_container(self, mid: str) -> tuple[TaskRecord, ContainerRecord] | None:
        pending = self.handoff_pending()  # before the lookup: the registration may come in just after it
        found = self._task_of_container(mid)
        if found is None and pending and self.handed_over.wait(HANDOFF_WAIT_SECONDS):
            found = self._task_of_container(mid)
        return found

    def _task_of_container(self, mid: str) -> tuple[TaskRecord, ContainerRecord] | None:
        with self.lock:
            task_id, name = self.by_metadata_id.get(mid, ("", ""))
            record = self.tasks.get(task_id)
        return None if record is None else (record, record.container(name))

    def task_of_credentials(self, cid: str) -> TaskRecord | None:
        pending = self.handoff_pending()
        record = self._task_of_credentials(cid)
        if record is None and pending and self.handed_over.wait(HANDOFF_WAIT_SECONDS):
            record = self._task_of_credentials(cid)
        return record

    def _task_of_credentials(self, cid: str) -> TaskRecord | None:
        with self.lock:
            return self.tasks.get(self.by_credentials_id.get(cid, ""))

    def restarted(self, task_id: str, container: str, count: int, first_started_at: str | None) -> bool:
        """A restartPolicy restarted ``container``: the plugin process says so, Docker counts none of it."""
        with self.lock:
            record = self.tasks.get(task_id)
            if record is None or container not in {c.name for c in record.containers}:
                return False
            counts = dict(record.restart_counts)
            counts[container] = max(count, counts.get(container, 0))  # told in order, but never go back
            first = dict(record.first_started_at)
            if first_started_at:
                first.setdefault(container, first_started_at)
            self.tasks[task_id] = dataclasses.replace(record, restart_counts=counts, first_started_at=first)
            return True


class DockerReads:
    """What the answers need from Docker, read on each request: inspect data and stats samples.

    Without an ``api``, ``connect_in_background`` gives it one: the server then answers what needs no Docker
    (a task's registration) while it connects, and a request that needs Docker waits for the connection.
    """

    def __init__(self, api: docker.APIClient | None) -> None:
        self._api = api
        self._connected = threading.Event()
        self._wanted = threading.Event()  # a request needs Docker: connect now
        self._why_not = ""
        if api is not None:
            self._connected.set()
        self._previous_stats: dict[str, dict[str, Any]] = {}

    def connect_in_background(self, connect: Callable[[], docker.APIClient], after: float = 0.0) -> None:
        """Connect in a thread, ``after`` seconds from now or as soon as a request needs Docker."""

        def run() -> None:
            self._wanted.wait(after)
            try:
                self._api = connect()
            except Exception as exc:  # said to each request that needs Docker, and in the log
                self._why_not = f"{type(exc).__name__}: {exc}"
            finally:
                self._connected.set()

        threading.Thread(target=run, name="ecstask-docker-connect", daemon=True).start()

    @property
    def api(self) -> docker.APIClient:
        self._wanted.set()
        self._connected.wait(STARTUP_TIMEOUT)
        if self._api is None:
            raise EcsTaskError(f"the endpoint server has no Docker connection ({self._why_not or 'still connecting'})")
        return self._api

    def inspect(self, docker_names: Iterable[str]) -> Inspected:
        import docker.errors

        inspected: dict[str, Mapping[str, Any] | None] = {}
        for name in docker_names:
            try:
                inspected[name] = self._inspect_once_more_on_error(name)
            except docker.errors.NotFound:
                inspected[name] = None
        return inspected

    def _inspect_once_more_on_error(self, name: str) -> dict[str, Any]:
        """An engine may refuse an inspect while it restarts the container (Podman under load): asked again
        once, a moment later, before the answer is an error."""
        import docker.errors

        try:
            return dict(self.api.inspect_container(name))
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError:
            time.sleep(INSPECT_RETRY_SECONDS)
            return dict(self.api.inspect_container(name))

    def task_addresses(self, record: TaskRecord) -> set[str]:
        return task_addresses(record, self.inspect(record.network_owners()))

    def started_at_before_restart(self, docker_name: str) -> str | None:
        """Docker's StartedAt of an exited container, about to be started again: that of the run that ended."""
        info = self.inspect([docker_name]).get(docker_name) or {}
        state = info.get("State") or {}
        return None if state.get("Running") else docker_time(state.get("StartedAt"))

    def stats(self, docker_name: str, network_owner: str | None = None) -> dict[str, Any] | None:
        """A container's sample; under awsvpc, with the network counters of the pause container, whose
        namespace it shares (Docker counts none for a container on another's network, the agent gives the
        task's)."""
        stats = self._sample(docker_name)
        if stats is None or network_owner in (None, docker_name):
            return stats
        owner = self._sample(str(network_owner))
        return stats if owner is None else with_network_stats(stats, owner)

    def _sample(self, docker_name: str) -> dict[str, Any] | None:
        """One stats sample, with the previous one the server took of the container as ``precpu_stats``."""
        import docker.errors

        try:
            try:
                sample = dict(self.api.stats(docker_name, stream=False, one_shot=True))
            except docker.errors.APIError as exc:
                if isinstance(exc, docker.errors.NotFound):
                    raise
                sample = dict(self.api.stats(docker_name, stream=False))  # engines without one-shot stats
        except docker.errors.NotFound:
            return None
        except (docker.errors.APIError, ValueError):
            info = self.inspect([docker_name]).get(docker_name) or {}
            if not (info.get("State") or {}).get("Running"):  # Podman answers an exited container with no body
                return None
            raise
        stats = stats_response(sample, self._previous_stats.get(docker_name))
        self._previous_stats[docker_name] = stats
        return stats

    def task_stats(self, record: TaskRecord) -> dict[str, Any]:
        """Every container's sample, by Docker id; containers already gone are left out."""
        samples = {c.docker_name: self._sample(c.docker_name) for c in record.containers}
        all_stats = {}
        for c in record.containers:
            stats, owner = samples[c.docker_name], samples.get(record.network_owner(c))
            if stats is not None:
                stats = with_network_stats(stats, owner) if owner is not None and owner is not stats else stats
                all_stats[stats.get("id", c.docker_name)] = stats
        return all_stats


def engine_is_here(host: str) -> bool:
    """Whether the Docker engine reached at ``host`` runs on this machine, so its containers reach our server."""
    import socket

    if host in ("localhost", "127.0.0.1", "::1"):
        return True
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, socket.AF_INET)}
    except OSError:
        return False
    return any(_is_local(address) for address in addresses)


class EndpointServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # LISTEN_BACKLOG: the containers of several tasks may start at once

    def __init__(
        self, address: tuple[str, int], api: docker.APIClient | None, control_token: str, listening: int | None = None
    ) -> None:
        """``listening``: the descriptor of a socket bound and listening already (the run's process bound it)."""
        if listening is None:
            super().__init__(address, Handler)
        else:
            import socket

            super().__init__(address, Handler, bind_and_activate=False)
            self.socket.close()
            self.socket = socket.socket(fileno=listening)
            self.server_address = self.socket.getsockname()
        self.registry = Registry()
        self.docker = DockerReads(api)
        self.control_token = control_token
        self.anchor_image: str | None = None  # Podman: the image of the endpoint network's anchor
        self.health_lock = threading.Lock()
        self.health_seen: dict[str, Mapping[str, Any]] = {}  # the Health last answered, by Docker id
        self.announce: Path | None = None  # the announcement of the run that started it, while it is its
        # The runs it serves, by their leases (the one that started it, and those that adopted a task it
        # kept); and the tasks kept for a later run (--ecs-reuse): it serves them past the end of its runs.
        self.leases: list[str] = []
        self.kept: set[str] = set()
        self.closing = False  # decided to stop: a later run can no longer take it up
        self._kept_checked = 0.0
        self._kept_unknown = 0  # checks in a row in which Docker could not say whether the kept tasks run

    def keep(self, task_id: str) -> bool:
        """``task_id`` stays served after the run ends, until a later run adopts it or it is gone."""
        with self.registry.lock:
            if self.closing or task_id not in self.registry.tasks:
                return False
            self.kept.add(task_id)
        return True

    def adopt(self, task_id: str, lease: str) -> bool:
        """A later run took up a task kept here: served while that run lives, and after it while kept (the
        run removes the task, and tells so, when it does not keep it again). ``lease`` must be a run's lease
        in the lease directory: the server probes it for as long as it serves."""
        from pytest_ecstask.lifecycle import lease_dir

        candidate = Path(lease)
        if candidate.suffix != ".lease" or candidate.resolve().parent != lease_dir().resolve():
            return False
        with self.registry.lock:
            if self.closing or task_id not in self.kept:
                return False
            if lease not in self.leases:
                self.leases.append(lease)
        return True

    def forget(self, task_id: str) -> None:
        with self.registry.lock:
            self.kept.discard(task_id)
        self.registry.remove(task_id)

    def run_over(self) -> None:
        """Its run asks it to stop: it does, unless it keeps a task for a later run; then only the run's
        announcement goes (the run waits for that), and with the run's lease let go, its other tasks."""
        with self.registry.lock:
            keeping, announce = bool(self.kept), self.announce
            if keeping:
                self.announce = None  # no longer its run's: a later run of the same session writes its own
        if not keeping:
            threading.Thread(target=self.shutdown, daemon=True).start()
        elif announce is not None:
            with contextlib.suppress(OSError):
                announce.unlink()

    def needed(self) -> bool:
        """Whether to serve on: a run it serves lives, or a task kept for a later run is still up. Once it
        says no, it is closing: a run that would take it up meanwhile is refused, and serves the task itself."""
        from pytest_ecstask.lifecycle import lease_is_held

        with self.registry.lock:
            leases = list(self.leases)
        held = {lease: lease_is_held(lease, cleanup=False) for lease in leases}
        with self.registry.lock:  # leases proven free are probed no more
            self.leases = [lease for lease in self.leases if held.get(lease) is not False]
        if any(held.values()):
            return True
        with self.registry.lock:
            kept = set(self.kept)
        for task_id in set(self.registry.tasks) - kept:  # its runs are over
            self.registry.remove(task_id)
        if kept and time.monotonic() - self._kept_checked >= KEPT_CHECK_SECONDS:
            self._kept_checked = time.monotonic()
            for task_id in kept - self._still_running(kept):
                self.forget(task_id)
        with self.registry.lock:
            self.closing = not self.kept and not any(held.get(lease) is not False for lease in self.leases)
            return not self.closing

    def _still_running(self, task_ids: set[str]) -> set[str]:
        """Which of the kept tasks have a running container. While Docker cannot tell, all of them, for a
        minute at most: then none (a later run serves its task itself, on the port its containers were told)."""
        from pytest_ecstask.lifecycle import LABEL_TASK

        try:
            found = self.docker.api.containers(filters={"label": LABEL_TASK})
        except Exception:
            self._kept_unknown += 1
            return task_ids if self._kept_unknown * KEPT_CHECK_SECONDS < KEPT_UNKNOWN_SECONDS else set()
        self._kept_unknown = 0
        return {str((c.get("Labels") or {}).get(LABEL_TASK)) for c in found} & task_ids

    def answered(self, containers: Iterable[Mapping[str, Any]]) -> None:
        """Keep the Health each container was answered with: like the agent's, it changes with its status."""
        with self.health_lock:
            for c in containers:
                if c.get("DockerId") and "Health" in c:
                    self.health_seen[c["DockerId"]] = c["Health"]

    def seen(self) -> dict[str, Mapping[str, Any]]:
        with self.health_lock:
            return dict(self.health_seen)

    @staticmethod
    def is_local(client_address: tuple[Any, ...]) -> bool:
        """Whether a request comes from the engine's machine itself (a host-mode task, the test): the relay
        says so of the connections it carries (a third item), a local server checks the address."""
        if len(client_address) > 2:
            return bool(client_address[2])
        return _is_local(str(client_address[0]))


class Handler(BaseHTTPRequestHandler):
    server: EndpointServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # request lines may carry credential ids: nothing is logged

    def send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        parts = path.split("/")[1:]
        if len(parts) >= 2 and parts[0] == "v2" and parts[1] == "credentials":
            self.credentials(parts[2] if len(parts) > 2 else "")
        elif len(parts) >= 2 and parts[0] in ("v3", "v4"):
            self.metadata(parts[0] == "v4", parts[1], "/".join(parts[2:]))
        elif path == f"{CONTROL}/ping":
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, "404 page not found")

    def credentials(self, cid: str) -> None:
        prefix = "CredentialsV2Request: "
        if not cid:
            self.send_json(400, {"code": "NoIdInRequest", "message": prefix + "No Credential ID in the request"})
            return
        record = self.server.registry.task_of_credentials(cid)
        creds = record.credentials if record else None
        if record is None or creds is None:
            self.send_json(400, {"code": "InvalidIdInRequest", "message": prefix + "Credentials not found"})
            return
        token_ok = not creds.token or secrets.compare_digest(self.headers.get("Authorization", ""), creds.token)
        # Beyond ECS: the request must come from the task's own containers (or from this host: host-mode
        # tasks and the test itself), so a container of another task is refused even with the right id.
        source = self.client_address[0]
        from_task = self.server.is_local(self.client_address) or source in self.server.docker.task_addresses(record)
        if not token_ok or not from_task:
            self.send_json(400, {"code": "InvalidIdInRequest", "message": prefix + "Credentials not found"})
            return
        self.send_json(200, {"RoleArn": creds.role_arn, **creds.values})

    def metadata(self, v4: bool, mid: str, rest: str) -> None:
        found = self.server.registry.task_of_container(mid)
        if rest not in METADATA_PATHS:
            status, body = 404, "404 page not found"
        elif found is None:
            status, body = unknown_id(v4, rest, mid)
        else:
            try:
                status, body = self.metadata_answer(*found, v4, rest)
            except Exception:  # a Docker hiccup must not kill the server
                status, body = failed(v4, rest, *found)
        self.send_json(status, body)

    def metadata_answer(self, record: TaskRecord, container: ContainerRecord, v4: bool, rest: str) -> tuple[int, Any]:
        """The status and body for a metadata path below a container's URI (``rest``: "", "task", ...)."""
        reads = self.server.docker
        if rest == "":
            inspected = reads.inspect(record.to_inspect([container]))
            answer = container_response(record, container, inspected, v4, self.server.seen())
            self.server.answered([answer])
            return 200, answer
        if rest in ("task", "taskWithTags"):
            inspected = reads.inspect(record.to_inspect(record.containers))
            task = task_response(record, inspected, v4, rest == "taskWithTags", self.server.seen())
            self.server.answered(task.get("Containers") or [])
            return 200, task
        if rest == "stats":
            stats = reads.stats(container.docker_name, record.network_owner(container))
            return (200, stats) if stats is not None else failed(v4, rest, record, container)
        return 200, reads.task_stats(record)

    def authorized(self) -> bool:
        return secrets.compare_digest(self.headers.get("X-Ecstask-Token", ""), self.server.control_token)

    def do_POST(self) -> None:
        if not self.authorized():
            self.send_json(403, "forbidden")
            return
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != f"{CONTROL}/tasks":  # a request about a task: its registration on stdin is in first
            self.server.registry.await_handoff()
        if self.path == f"{CONTROL}/tasks":
            self.server.registry.add(TaskRecord.from_dict(body))
            self.send_json(200, {"ok": True})
            # The network that gives the engine's host 169.254.170.2 is there for each new task, also when
            # a run elsewhere removed it meanwhile (it cannot see this server's use of it). After the answer:
            # the run registers while it creates the task, and the server may still be connecting to Docker.
            with contextlib.suppress(Exception):
                ensure_network(self.server.docker.api, self.server.anchor_image)
        elif self.path.startswith(f"{CONTROL}/tasks/") and self.path.endswith("/restarts"):
            self.restarted(self.path.split("/")[-2], str(body.get("container")), int(body.get("restart_count", 0)))
        elif self.path == f"{CONTROL}/shutdown":
            self.send_json(200, {"ok": True})
            self.server.run_over()
        elif self.path == f"{CONTROL}/keep":
            done = self.server.keep(str(body.get("task_id")))
            self.send_json(200 if done else 404, {"ok": done})
        elif self.path == f"{CONTROL}/adopt":
            done = self.server.adopt(str(body.get("task_id")), str(body.get("lease")))
            self.send_json(200 if done else 404, {"ok": done})
        else:
            self.send_json(404, "404 page not found")

    def restarted(self, task_id: str, container: str, count: int) -> None:
        """The plugin process restarted a container in place, as the agent does under a restartPolicy.

        It says so before it starts the container again, so Docker's StartedAt is still the first run's,
        which the agent keeps reporting.
        """
        record = self.server.registry.tasks.get(task_id)
        first = None
        if record is not None and count == 1 and container in {c.name for c in record.containers}:
            first = self.server.docker.started_at_before_restart(record.container(container).docker_name)
        if self.server.registry.restarted(task_id, container, count, first):
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, f"no container {container!r} in task {task_id}")

    def do_DELETE(self) -> None:
        if not self.authorized():
            self.send_json(403, "forbidden")
            return
        if self.path.startswith(f"{CONTROL}/tasks/"):
            self.server.registry.await_handoff()
            self.server.forget(self.path.rsplit("/", 1)[1])
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, "404 page not found")


# -- the shared network ------------------------------------------------------------------------------------


def ensure_network(api: docker.APIClient, anchor_image: str | None = None) -> None:
    """Make the host own 169.254.170.2: one labelled network per engine, shared by every run.

    ``anchor_image`` (Podman): Podman brings a network's bridge, and its gateway address, up only while a
    container is on it, so a small container of that image stays on the network as its anchor.
    """
    import docker.errors

    if not api.networks(names=[NETWORK_NAME]):
        import docker.types

        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=ENDPOINT_IP)])
        try:
            api.create_network(NETWORK_NAME, driver="bridge", ipam=ipam, labels={NETWORK_LABEL: "1"})
        except docker.errors.APIError as exc:
            if "overlap" not in str(exc).lower() and "already exists" not in str(exc).lower():
                raise
            # Another network already holds the subnet (made by hand, or racing): the address is there anyway.
    if anchor_image:
        _ensure_anchor(api, anchor_image)


def _ensure_anchor(api: docker.APIClient, image: str) -> None:
    import docker.errors

    found = api.containers(all=True, filters={"name": ANCHOR_NAME})
    if found and found[0].get("State") == "running":
        return
    with contextlib.suppress(docker.errors.APIError):
        if found:
            api.remove_container(found[0]["Id"], force=True)
        api.create_container(
            image,
            name=ANCHOR_NAME,
            labels={NETWORK_LABEL: "anchor"},
            host_config=api.create_host_config(network_mode=NETWORK_NAME),
        )
    with contextlib.suppress(docker.errors.APIError):  # started by another run meanwhile
        api.start(ANCHOR_NAME)


def _remove_anchor(api: docker.APIClient) -> None:
    import docker.errors

    for c in api.containers(all=True, filters={"label": f"{NETWORK_LABEL}=anchor"}):
        with contextlib.suppress(docker.errors.APIError):
            api.remove_container(c["Id"], force=True)


def _announced_error(announce: Path) -> bool:
    try:
        return "error" in json.loads(announce.read_text())
    except (OSError, ValueError):
        return False  # being written: a server is starting


def listeners_on_endpoint_ip() -> set[int] | None:
    """Ports something listens on at 169.254.170.2 in this network namespace; None where it cannot be told."""
    wanted = "".join(f"{int(part):02X}" for part in reversed(ENDPOINT_IP.split(".")))
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    ports = set()
    for line in lines:
        fields = line.split()
        address, port = fields[1].split(":")
        if address == wanted and fields[3] == "0A":  # 0A: LISTEN
            ports.add(int(port, 16))
    return ports


def remove_network_if_unused(api: docker.APIClient, directory: Path, own_session: str, own_port: int = -1) -> None:
    """Removed when no other run's server needs it: none announced by a live run, none listening."""
    import docker.errors

    from pytest_ecstask.lifecycle import lease_is_held

    for info in directory.glob("*.d/endpoint.json"):
        session = info.parent.name[:-2]
        if session == own_session or _announced_error(info):
            continue  # a run whose server could not start needs no network
        if lease_is_held(str(directory / f"{session}.lease")):
            return
    # Runs with another lease directory are not in ours; their servers still listen on the address.
    listening = listeners_on_endpoint_ip()
    if listening is None or listening - {own_port}:
        return
    from pytest_ecstask.relaylink import relay_running

    if relay_running(api):  # runs of other machines, too, reach their containers through it
        return
    _remove_anchor(api)
    for net in api.networks(names=[NETWORK_NAME]):
        if (net.get("Labels") or {}).get(NETWORK_LABEL):
            with contextlib.suppress(docker.errors.APIError):
                api.remove_network(net["Id"])


def serve(
    session_dir: Path,
    lease_path: str,
    session_id: str,
    port: int = 0,
    mode: str = "local",
    relay_image: str = "",
    pull: str = "missing",
    listening: int | None = None,
) -> int:
    """The server process: listen, announce in ``endpoint.json``, serve until the run's lease is free.

    ``local``: the server binds 169.254.170.2 on this machine. ``relay``: the server listens on loopback for
    the run's own processes, and the engine's relay carries the containers' connections to it. ``listening``
    (local): the run's process made the network, bound the socket and announced it; the server takes it over
    with the token in PYTEST_ECSTASK_ENDPOINT_TOKEN (see ``_start_bound``).
    """
    from filelock import FileLock

    from pytest_ecstask.lifecycle import lease_dir

    directory = lease_dir()
    announce = session_dir / "endpoint.json"
    network_lock = FileLock(str(directory / "endpoint-network.lock"), thread_local=False)
    token = os.environ.pop(TOKEN_VARIABLE, "") or secrets.token_hex(24)
    log = _logger(session_dir / "endpoint.log")
    if listening is not None:  # serving at once; Docker is connected meanwhile
        server = EndpointServer((ENDPOINT_IP, 0), None, token, listening)
        server.registry.take_handoff(sys.stdin.buffer)

        def connect() -> docker.APIClient:
            from pytest_ecstask.runtime import Engine

            engine = Engine.connect()
            server.anchor_image = engine.pause_image() if engine.podman else None
            return engine.api

        # Not while the first task's containers start, unless a request needs it: importing the Docker
        # SDK takes a tenth of a second of CPU, which a small machine's engine needs then.
        server.docker.connect_in_background(connect, after=DOCKER_CONNECT_DELAY_SECONDS)
        return _serve_until_released(server, None, session_dir, lease_path, session_id, network_lock, log)
    from pytest_ecstask.runtime import Engine

    try:  # the engine the run uses, found the same way (DOCKER_HOST, tc.host, the Docker context)
        engine = Engine.connect()
        anchor = engine.pause_image() if engine.podman else None
    except EcsTaskError as exc:
        _announce(announce, {"error": str(exc), "mode": mode})
        return 1
    api = engine.api
    link = None
    if mode == "relay":
        from pytest_ecstask.relaylink import RelayUnavailable, ensure_image

        try:  # before the lock: a pull may take a while, and other runs' servers need the lock too
            ensure_image(api, relay_image, pull)
        except RelayUnavailable as exc:
            _announce(announce, {"error": f"the relay did not start: {exc}", "mode": mode})
            return 1
    with network_lock:
        try:
            ensure_network(api, anchor)
        except Exception as exc:
            _announce(announce, {"error": f"could not create the {SUBNET} network: {exc}", "mode": mode})
            return 1
        if mode == "relay":
            started = _relayed(api, token, session_id, port, relay_image, pull, log)
        else:
            started = _serve_local(api, token, port)
        if isinstance(started, str):
            _announce(announce, {"error": started, "mode": mode, "bind_failed": mode == "local"})
            remove_network_if_unused(api, directory, session_id)  # made for nothing (a remote engine)
            return 1
        server, link, announced = started
        server.anchor_image = anchor
        _announce(announce, {**announced, "token": token, "pid": os.getpid()})
    return _serve_until_released(server, link, session_dir, lease_path, session_id, network_lock, log)


def _serve_until_released(
    server: EndpointServer,
    link: Any,
    session_dir: Path,
    lease_path: str,
    session_id: str,
    network_lock: Any,
    log: Callable[[str], None],
) -> int:
    from pytest_ecstask.lifecycle import lease_dir

    server.announce = session_dir / "endpoint.json"
    server.leases.append(lease_path)

    def watch_lease() -> None:
        while server.needed():
            time.sleep(LEASE_POLL_SECONDS)
        server.shutdown()

    threading.Thread(target=watch_lease, daemon=True).start()
    try:
        server.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)
    finally:
        server.server_close()
        if link is not None:
            link.close()
        if server.announce is not None:  # still its run's
            with contextlib.suppress(OSError):
                server.announce.unlink()
        if link is not None:
            link.wait_relay_gone()  # the relay leaves within a second when this run was its last
        try:
            api = server.docker.api  # connected first, outside the lock other runs' servers need
            with network_lock:
                remove_network_if_unused(api, lease_dir(), session_id)
        except EcsTaskError as exc:  # no Docker connection: a later run's server or sweep removes it
            log(f"the endpoint network was left: {exc}")
    return 0


Started = tuple["EndpointServer", Any, dict[str, Any]]


def _serve_local(api: docker.APIClient, token: str, port: int) -> Started | str:
    """A server on 169.254.170.2 here; what goes wrong instead, as the error to announce."""
    bound = _bind_local(port)
    if isinstance(bound, str):
        return bound
    sock, refused = bound
    server = EndpointServer((ENDPOINT_IP, 0), api, token, sock.detach())
    return server, None, {"port": server.server_address[1], "port_refused": refused, "mode": "local"}


# Linux's IP_FREEBIND (not named by every Python's socket module): bind an address the host does not own yet.
IP_FREEBIND = 15


def _bind_local(port: int, ahead: bool = False) -> tuple[socket.socket, str] | str:
    """A socket listening on 169.254.170.2 at ``port``, else at any port (with why not ``port``); or why none.
    ``ahead``: before the address is the host's (the endpoint network is made after)."""
    import socket

    errors = []
    # Port 80 gives the exact ECS form, but it is asked for, not taken by default: a server on
    # 169.254.170.2:80 keeps any task from publishing hostPort 80 on all addresses.
    for candidate in dict.fromkeys((port, 0)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
            if ahead:
                sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            sock.bind((ENDPOINT_IP, candidate))
            sock.listen(LISTEN_BACKLOG)
        except OSError as exc:
            sock.close()
            errors.append(f"port {candidate or 'any'}: {exc.strerror or exc}")
            continue
        return sock, errors[0] if errors and port else ""
    return f"cannot bind {ENDPOINT_IP} ({'; '.join(errors)})"


def _relayed(
    api: docker.APIClient, token: str, session_id: str, port: int, image: str, pull: str, log: Callable[[str], None]
) -> Started | str:
    """A server on loopback for this run's processes, and the link that brings it the relay's connections."""
    from pytest_ecstask.relaylink import RelayLink, RelayUnavailable

    server = EndpointServer(("127.0.0.1", 0), api, token)
    link = RelayLink(
        api, server, image=image, port=port, pull=pull, run=session_id, routes=server.registry.ids, log=log
    )
    try:
        relay_port = link.start()
    except RelayUnavailable as exc:
        server.server_close()
        return f"the relay did not start: {exc}"
    server.registry.on_change = link.send_routes
    announced = {
        "port": relay_port,
        "port_refused": link.port_refused if port else "",
        "mode": "relay",
        "control_host": "127.0.0.1",
        "control_port": server.server_address[1],
    }
    return server, link, announced


def _logger(path: Path) -> Callable[[str], None]:
    """Lines for the server's log file (``endpoint.log`` in the run's directory), with the time."""
    lock = threading.Lock()

    def log(line: str) -> None:
        if not line:
            return
        stamp = time.strftime("%H:%M:%S")
        with lock, contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as out:  # the run removed it
            out.write(f"{stamp} {line}\n")

    return log


def _announce(path: Path, data: Mapping[str, Any]) -> None:
    from pytest_ecstask.lifecycle import write_private

    write_private(path, json.dumps(data))  # the control token is in it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pytest-ecstask metadata and credentials endpoint server")
    parser.add_argument("--session-dir", required=True)
    parser.add_argument("--lease", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=("local", "relay"), default="local")
    parser.add_argument("--relay-image", default="")
    parser.add_argument("--pull", default="missing")
    parser.add_argument("--listen-fd", type=int, default=None, help="a bound, listening socket to serve on")
    args = parser.parse_args(argv)
    return serve(
        Path(args.session_dir),
        args.lease,
        args.session,
        args.port,
        args.mode,
        args.relay_image,
        args.pull,
        args.listen_fd,
    )


# -- the client side: used by the processes of a run ---------------------------------------------------


class EndpointUnavailable(EcsTaskError):
    """169.254.170.2 cannot be served as asked (no privileges, the relay's image missing, ...)."""

    def __init__(self, message: str, bind_failed: bool = False) -> None:
        super().__init__(message)
        self.bind_failed = bind_failed  # a local server could not bind the address: the engine's is elsewhere


def ensure_server(
    session_dir: Path,
    lease_path: str,
    session_id: str,
    port: int = 0,
    relay: EndpointRequest | None = None,
    engine: Engine | None = None,
) -> EndpointInfo:
    """The run's server, started by the first process that needs it (under a file lock); ``relay`` given,
    one whose containers' connections come through the engine's relay. A local server for a process that
    has the ``engine`` is given a socket bound here (``_start_bound``), so the port is known at once."""
    from filelock import FileLock

    from pytest_ecstask.lifecycle import private_dir

    private_dir(session_dir)
    announce = session_dir / "endpoint.json"
    with FileLock(str(session_dir / "endpoint.lock"), thread_local=False):
        running = _announced_server(announce, "relay" if relay is not None else "local")
        if running is not None:
            return running
        if relay is None and engine is not None:
            return _start_bound(session_dir, lease_path, session_id, port, engine)
        extra = ("--mode", "relay", "--relay-image", relay.relay_image, "--pull", relay.pull) if relay else ()
        process = _spawn_server(session_dir, lease_path, session_id, port, extra)
        # A relay may need its image pulled first: that is not counted.
        deadline = time.monotonic() + STARTUP_TIMEOUT + (RELAY_START_TIMEOUT if relay is not None else 0)
        while not announce.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                text = (session_dir / "endpoint.log").read_text(errors="replace").strip().splitlines()
                raise EndpointUnavailable("the endpoint server did not start" + (f": {text[-1]}" if text else ""))
            time.sleep(0.02)
        data = json.loads(announce.read_text())
        if "error" in data:
            raise _unavailable(data)
        return _info(data)


def _announced_server(announce: Path, wanted: str) -> EndpointInfo | None:
    """The run's server, in whichever mode it was started, if one answers; its error, if it failed in the
    mode ``wanted``; None (the stale announcement removed) when one is to be started."""
    if not announce.exists():
        return None
    data = _network_settled(announce, json.loads(announce.read_text()))
    if "error" in data and data.get("mode", "local") == wanted:
        raise _unavailable(data)
    if "error" not in data and _answers(info := _info(data)):
        return info
    announce.unlink()
    return None


def _spawn_server(
    session_dir: Path,
    lease_path: str,
    session_id: str,
    port: int,
    extra: Iterable[str] = (),
    pass_fds: tuple[int, ...] = (),
    env: Mapping[str, str] | None = None,
    handoff: bool = False,
) -> subprocess.Popen[bytes]:
    with open(session_dir / "endpoint.log", "ab") as log:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "pytest_ecstask.endpoints", "--session-dir", str(session_dir)),
                *("--lease", lease_path, "--session", session_id, "--port", str(port), *extra),
            ],
            stdin=subprocess.PIPE if handoff else subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            pass_fds=pass_fds,
            env=None if env is None else {**os.environ, **env},
        )


def _start_bound(session_dir: Path, lease_path: str, session_id: str, port: int, engine: Engine) -> EndpointInfo:
    """A local server on a socket bound here: the network made and the address bound in this process, the
    server process started on that socket, announced at once. The port is known before the server process
    has even started, so the first task's containers are created while it does; what reaches the socket
    meanwhile waits in its backlog (the task registers before any container starts).

    When the network is still to be made on an engine whose networks are this machine's, the address is
    bound ahead of it (IP_FREEBIND) and the network is made in a thread (``_NetworkAfter``): the
    first task's registration waits for it, so no container starts before the address is the host's."""
    from filelock import FileLock

    from pytest_ecstask.lifecycle import lease_dir

    announce = session_dir / "endpoint.json"
    directory = lease_dir()
    anchor = engine.pause_image() if engine.podman else None
    with FileLock(str(directory / "endpoint-network.lock"), thread_local=False):
        ahead = anchor is None and _network_can_follow(engine)
        if not ahead:
            _make_network(engine.api, anchor, announce)
        bound = _bind_local(port, ahead)
        if isinstance(bound, str):
            data: dict[str, Any] = {"error": bound, "mode": "local", "bind_failed": True}
            _announce(announce, data)
            remove_network_if_unused(engine.api, directory, session_id)  # made for nothing (a remote engine)
            raise _unavailable(data)
        sock, refused = bound
        token = secrets.token_hex(24)
        with sock:
            listening = ("--listen-fd", str(sock.fileno()))
            env = {TOKEN_VARIABLE: token}
            process = _spawn_server(
                session_dir, lease_path, session_id, port, listening, (sock.fileno(),), env, handoff=True
            )
            data = {"port": sock.getsockname()[1], "port_refused": refused, "mode": "local"}
        data.update(token=token, pid=process.pid)
        if process.stdin is not None:
            with _handoffs_lock:
                _handoffs[process.pid] = process.stdin
        # Other processes of the run wait for "network": "pending" to go before they use the server.
        _announce(announce, {**data, "network": "pending", "maker": os.getpid()} if ahead else data)
    if ahead:  # once the lock is free for it
        with _handoffs_lock:
            _networks[process.pid] = _NetworkAfter(engine.api, announce, dict(data), process)
    return _info(data)


def _make_network(api: docker.APIClient, anchor: str | None, announce: Path) -> None:
    try:
        ensure_network(api, anchor)
    except Exception as exc:
        data = {"error": f"could not create the {SUBNET} network: {exc}", "mode": "local"}
        _announce(announce, data)
        raise _unavailable(data) from None


def _network_can_follow(engine: Engine) -> bool:
    """Whether the endpoint network may be made after the server's address is bound: it does not exist
    yet, the system can bind ahead (Linux), and the engine's networks are this machine's
    (``engine_networks_here``), so that the endpoint address will be this machine's too. Any doubt (an
    error asking): no."""
    if not engine_networks_here(engine):
        return False
    try:
        return not engine.api.networks(names=[NETWORK_NAME])
    except Exception:
        return False


def engine_networks_here(engine: Engine, when_unsure: bool = False) -> bool:
    """Whether the engine makes its networks in this process's network namespace (Linux only): it runs on
    this machine's kernel, not rootless (a rootless engine's, or Docker Desktop's, default bridge may have
    the same address as a local one), and its default bridge's gateway is a local address. An error asking
    gives ``when_unsure``."""
    import platform

    if not sys.platform.startswith("linux"):
        return False
    try:
        version = engine.version()
        components = " ".join(str(c.get("Name", "")) for c in version.get("Components") or []).lower()
        if str(version.get("KernelVersion") or "") != platform.release() or "rootless" in components:
            return False
        bridge = engine.api.inspect_network("bridge")
    except Exception:
        return when_unsure
    return any(_is_local(gateway) for gateway in _gateways(bridge))


def _gateways(network: Mapping[str, Any]) -> list[str]:
    """A network's gateway addresses: as configured, else (as Docker gives them) its subnet's first host."""
    import ipaddress

    found = []
    for config in (network.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway"):
            found.append(str(config["Gateway"]).split("/")[0])
        elif config.get("Subnet"):
            with contextlib.suppress(ValueError, StopIteration):
                found.append(str(next(ipaddress.ip_network(str(config["Subnet"]), strict=False).hosts())))
    return found


class _NetworkAfter:
    """The endpoint network, made in a thread after the server's address was bound ahead of it."""

    def __init__(self, api: docker.APIClient, announce: Path, data: Mapping[str, Any], process: Any) -> None:
        self.error = ""
        self._done = threading.Event()
        self._args = (api, announce, data, process)
        threading.Thread(target=self._make, name="ecstask-endpoint-network", daemon=True).start()

    def _make(self) -> None:
        from filelock import FileLock, Timeout

        from pytest_ecstask.lifecycle import lease_dir

        api, announce, data, process = self._args
        path, waited = lease_dir() / "endpoint-network.lock", NETWORK_WAIT_TIMEOUT - 30
        try:
            with FileLock(str(path), timeout=waited, thread_local=False):
                _make_network(api, None, announce)
                if not _address_is_here(ENDPOINT_IP):
                    failed = {
                        "error": f"the {SUBNET} network was made, but {ENDPOINT_IP} is not an address of this "
                        "machine: the engine's networks are elsewhere; --ecs-endpoints=relay reaches them",
                        "mode": "local",
                        "bind_failed": True,
                    }
                    _announce(announce, failed)
                    session, port = announce.parent.name[:-2], int(data["port"])
                    with contextlib.suppress(Exception):  # made for nothing; the error says what matters
                        remove_network_if_unused(api, lease_dir(), session, port)
                    raise _unavailable(failed)
            _announce(announce, data)
        except Timeout:
            self.error = (
                f"the engine-wide endpoint network lock ({path}) stayed taken for {waited:g} s: a sweep, or "
                "another run making or removing the network, holds it"
            )
            _announce(announce, {"error": self.error, "mode": "local"})  # the run's other processes stop waiting
        except Exception as exc:
            self.error = str(exc)
        finally:
            if self.error:
                with contextlib.suppress(OSError):
                    process.terminate()  # it serves nobody
            self._done.set()

    def wait(self) -> None:
        self._done.wait()
        if self.error:
            raise EndpointUnavailable(self.error)

    @property
    def failed(self) -> bool:
        return self._done.is_set() and bool(self.error)

    def settle(self) -> None:
        self._done.wait()


def _address_is_here(address: str) -> bool:
    """Whether ``address`` is this machine's now (``_is_local`` remembers its first answer)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


def network_failed(info: EndpointInfo) -> bool:
    """Whether the endpoint network made after ``info``'s server was bound could not be made (or did not
    make the address this machine's): a task asking for the endpoints now starts anew (in ``auto`` mode, with
    the relay)."""
    with _handoffs_lock:
        making = _networks.get(info.pid)
    return making is not None and making.failed


def _network_made(info: EndpointInfo) -> None:
    """Before a task registers, so before its containers start: the address is the host's (or why not)."""
    with _handoffs_lock:
        making = _networks.get(info.pid)
    if making is not None:
        making.wait()


def _network_settled(announce: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The announcement of a server whose network another process of the run (``maker``) is still making,
    once it is made. While the maker lives it is waited for, NETWORK_WAIT_TIMEOUT at most (it may wait for
    the engine-wide network lock, held by a sweep or another run's relay); a maker or server gone: the
    announcement as it is (a new server is started). Longer: an error, not a second server."""
    deadline = time.monotonic() + NETWORK_WAIT_TIMEOUT
    while data.get("network") == "pending":
        server, maker = int(data["pid"]), int(data.get("maker") or 0)
        if not _alive(server) or _exited(server) or not _alive(maker):
            return data
        if time.monotonic() > deadline:
            raise EndpointUnavailable(
                f"the run's endpoint server waits for its {SUBNET} network longer than {NETWORK_WAIT_TIMEOUT:.0f} s"
            )
        time.sleep(0.01)
        data = json.loads(announce.read_text())
    return data


# The stdin of each server this process started on a socket it bound: the first task registers there, so
# it needs not wait for the server process to start. Closed after that one, or at the run's end.
_handoffs: dict[int, IO[bytes]] = {}
# The endpoint networks this process makes after binding their servers' address ahead (by server pid).
_networks: dict[int, _NetworkAfter] = {}
_handoffs_lock = threading.Lock()


def _hand_over(info: EndpointInfo, record: TaskRecord) -> bool:
    """Register on the server's stdin, when this process started it and nothing was registered yet."""
    with _handoffs_lock:
        stream = _handoffs.pop(info.pid, None)
    if stream is None:
        return False
    try:
        with stream:
            stream.write(json.dumps(record.to_dict()).encode() + b"\n")
    except OSError:  # the server is gone: the request that follows says so
        return False
    return True


def close_handoffs() -> None:
    """At the run's end: servers it started and never registered a task with stop waiting for one; the
    endpoint networks it is making are made (so that the end removes them)."""
    with _handoffs_lock:
        streams = list(_handoffs.values())
        _handoffs.clear()
        making = list(_networks.values())
        _networks.clear()
    for network in making:  # made before the run's end removes it, not after
        network.settle()
    for stream in streams:
        with contextlib.suppress(OSError):
            stream.close()


def _unavailable(announced: Mapping[str, Any]) -> EndpointUnavailable:
    return EndpointUnavailable(str(announced["error"]), bool(announced.get("bind_failed")))


def _info(announced: Mapping[str, Any]) -> EndpointInfo:
    return EndpointInfo(
        int(announced["port"]),
        str(announced["token"]),
        int(announced["pid"]),
        str(announced.get("port_refused") or ""),
        str(announced.get("mode") or "local"),
        str(announced.get("control_host") or ENDPOINT_IP),
        int(announced.get("control_port") or 0),
    )


def _request(
    info: EndpointInfo,
    method: str,
    path: str,
    body: Any = None,
    timeout: float = 5.0,
    headers: Mapping[str, str] | None = None,
) -> Any:
    import http.client

    conn = http.client.HTTPConnection(*info.control_address, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        sent = {"X-Ecstask-Token": info.control_token, "Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise EndpointUnavailable(f"the endpoint server answered {response.status} to {method} {path}")
        return json.loads(payload or b"null")
    except (http.client.HTTPException, ValueError) as exc:  # not an answer of our server's
        raise EndpointUnavailable(
            f"the endpoint server gave no usable answer to {method} {path} ({type(exc).__name__})"
        ) from None
    finally:
        conn.close()


def _answers(info: EndpointInfo) -> bool:
    # A server whose process lives may still be starting on a socket bound for it: it answers once it has.
    try:
        _request(info, "GET", f"{CONTROL}/ping", timeout=STARTUP_TIMEOUT if _alive(info.pid) else 1.0)
        return True
    except (OSError, EndpointUnavailable):
        return False


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited and waits to be reaped (a server started by this very process)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's
    return True


def fetch_credentials(info: EndpointInfo, secret: str) -> dict[str, str] | None:
    """What a task's containers get from the credentials endpoint, as they would ask for it."""
    try:
        return dict(
            _request(
                info,
                "GET",
                f"/v2/credentials/{credentials_id(secret)}",
                headers={"Authorization": authorization_token(secret)},
            )
        )
    except (OSError, EndpointUnavailable):
        return None


def register(info: EndpointInfo, record: TaskRecord) -> None:
    """Tell the server of a task. Its process may still be starting (the socket was bound for it): the
    registration waits in the socket's backlog until it serves, STARTUP_TIMEOUT at most. The first task of
    the process that started the server is handed over on its stdin instead, without waiting."""
    _network_made(info)
    if _hand_over(info, record):
        return
    try:
        _request(info, "POST", f"{CONTROL}/tasks", record.to_dict(), timeout=STARTUP_TIMEOUT)
    except OSError as exc:
        raise EndpointUnavailable(
            f"the endpoint server at {ENDPOINT_IP}:{info.port} did not take the task's registration "
            f"({type(exc).__name__}: {exc}); its log is endpoint.log in the run's folder under the lease directory"
        ) from None


def restarted(info: EndpointInfo, task_id: str, container: str, restart_count: int) -> None:
    """Tell the server a restartPolicy restarted ``container`` (before it starts again): its RestartCount."""
    with contextlib.suppress(OSError, EndpointUnavailable):  # metadata must never break the task
        body = {"container": container, "restart_count": restart_count}
        _request(info, "POST", f"{CONTROL}/tasks/{task_id}/restarts", body, timeout=2.0)


def unregister(info: EndpointInfo, task_id: str) -> None:
    # When the server is gone already there is nothing to unregister from.
    with contextlib.suppress(OSError, EndpointUnavailable):
        _request(info, "DELETE", f"{CONTROL}/tasks/{task_id}")


def keep_served(info: EndpointInfo, task_id: str) -> bool:
    """Ask the server to serve ``task_id`` past the end of its run (--ecs-reuse); False when it cannot (a
    relay's server ends with its run: the next run serves the task on the port its containers were told)."""
    if info.mode != "local":
        return False
    try:
        _request(info, "POST", f"{CONTROL}/keep", {"task_id": task_id}, timeout=2.0)
    except (OSError, EndpointUnavailable):
        return False
    return True


def adopt_served(info: EndpointInfo, task_id: str, lease: str) -> bool:
    """Take up a task a server kept serving: it now serves while the run holding ``lease`` lives, too."""
    try:
        _request(info, "POST", f"{CONTROL}/adopt", {"task_id": task_id, "lease": lease}, timeout=2.0)
    except (OSError, EndpointUnavailable):
        return False
    return True


def release_kept(info: EndpointInfo, task_id: str) -> None:
    """The task a server kept serving is gone (replaced, or swept): the server stops, unless a run uses it,
    and is waited for (it removes the endpoint network as it goes, when no other server needs it)."""
    unregister(info, task_id)
    try:
        _request(info, "POST", f"{CONTROL}/shutdown", {}, timeout=2.0)
    except (OSError, EndpointUnavailable):
        return
    deadline = time.monotonic() + 10
    while _alive(info.pid) and not _exited(info.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def info_record(info: EndpointInfo) -> dict[str, Any]:
    """``info`` as data for a file of the run's (``info_from_record`` reads it back)."""
    return {
        **{"port": info.port, "token": info.control_token, "pid": info.pid, "mode": info.mode},
        **{"port_refused": info.port_refused, "control_host": info.control_host, "control_port": info.control_port},
    }


def info_from_record(data: Mapping[str, Any] | None) -> EndpointInfo | None:
    """A local server named in a run's file: only one on 169.254.170.2 is taken (its token goes there)."""
    try:
        info = None if not data else _info(data)
    except (KeyError, TypeError, ValueError):
        return None
    return info if info is not None and info.mode == "local" and info.control_host == ENDPOINT_IP else None


def served(session_dir: Path) -> str:
    """How the run's endpoints were served, for the summary; empty when no server started."""
    try:
        info = _info(json.loads((session_dir / "endpoint.json").read_text()))
    except (OSError, ValueError, KeyError):
        return ""
    if info.mode == "relay":
        return f"endpoints served through the engine's relay at {ENDPOINT_IP}:{info.port}"
    return f"endpoints served by a server on this machine at {ENDPOINT_IP}:{info.port}"


def stop_server(session_dir: Path) -> None:
    """Ask the run's server to stop (the run is over) and wait for it to go."""
    announce = session_dir / "endpoint.json"
    try:
        info = _info(json.loads(announce.read_text()))
    except (OSError, ValueError, KeyError):
        return
    try:
        _request(info, "POST", f"{CONTROL}/shutdown", {}, timeout=2.0)
    except (OSError, EndpointUnavailable):
        return
    deadline = time.monotonic() + 10
    while announce.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
