"""What serves HTTP: the task metadata (v3, v4) and credentials endpoints at 169.254.170.2.

One server per run, in a small process of its own, so that every process of the run (the xdist controller
and its workers) registers its tasks with the same server, and the server outlives whichever worker
finishes first. It lives until the run's lease is released, however the run ends.

How containers reach it: a Docker network with the subnet 169.254.170.0/24 and gateway 169.254.170.2 makes
the engine's host own 169.254.170.2 on that network's bridge. Containers need not join that network: their
packets to 169.254.170.2 leave through their own network's gateway, the host, which owns the address. So
containers of every network mode reach it (awsvpc through the pause container's network, bridge, host),
and AWS SDKs accept it, since 169.254.170.2 is the ECS address they trust for plain-http credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_ecstask.errors import EcsTaskError

if TYPE_CHECKING:
    import docker

ENDPOINT_IP = "169.254.170.2"
SUBNET = "169.254.170.0/24"
NETWORK_NAME = "pytest-ecstask-endpoints"
NETWORK_LABEL = "pytest-ecstask.endpoints"
CONTROL = "/_ecstask"
STARTUP_TIMEOUT = 20.0
LEASE_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class EndpointInfo:
    """Where the run's server listens, and the secret its own processes use to register tasks."""

    port: int
    control_token: str = field(repr=False)  # whoever holds it can register tasks and read their credentials
    pid: int
    port_refused: str = ""  # why the port asked for could not be bound, when the server took another

    @property
    def base_url(self) -> str:
        return f"http://{ENDPOINT_IP}" if self.port == 80 else f"http://{ENDPOINT_IP}:{self.port}"

    @property
    def relative_credentials(self) -> bool:
        """The exact ECS form (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) needs the server on port 80."""
        return self.port == 80


# -- ids: derived from a per-task secret, so they are unguessable and the same in every process --------


def derive(secret: str, *parts: str) -> str:
    return hashlib.sha256(":".join((secret, *parts)).encode()).hexdigest()[:32]


def metadata_id(secret: str, container: str) -> str:
    return derive(secret, "metadata", container)


def credentials_id(secret: str) -> str:
    return derive(secret, "credentials")


def authorization_token(secret: str) -> str:
    return derive(secret, "authorization") + derive(secret, "authorization", "2")


def container_environment(info: EndpointInfo, secret: str, container: str, role_arn: str | None) -> dict[str, str]:
    """The variables the ECS agent sets in a container for its endpoints."""
    mid = metadata_id(secret, container)
    env = {
        "ECS_CONTAINER_METADATA_URI_V4": f"{info.base_url}/v4/{mid}",
        "ECS_CONTAINER_METADATA_URI": f"{info.base_url}/v3/{mid}",
    }
    if role_arn:
        # One of the two, never both: SDKs disagree on which wins.
        path = f"/v2/credentials/{credentials_id(secret)}"
        if info.relative_credentials:
            env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = path
        else:
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"{info.base_url}{path}"
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = authorization_token(secret)
    return env


# -- the server --------------------------------------------------------------------------------------------


class Registry:
    """Registered tasks, by the ids containers present."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[str, dict[str, Any]] = {}
        self.by_metadata_id: dict[str, tuple[str, str]] = {}  # id -> (task id, container name)
        self.by_credentials_id: dict[str, str] = {}

    def add(self, record: dict[str, Any]) -> None:
        with self.lock:
            task_id = record["task_id"]
            self.tasks[task_id] = record
            for c in record["containers"]:
                if c.get("metadata_id"):
                    self.by_metadata_id[c["metadata_id"]] = (task_id, c["name"])
            creds = record.get("credentials")
            if creds:
                self.by_credentials_id[creds["id"]] = task_id

    def remove(self, task_id: str) -> None:
        with self.lock:
            record = self.tasks.pop(task_id, None)
            if record is None:
                return
            for c in record["containers"]:
                self.by_metadata_id.pop(c.get("metadata_id", ""), None)
            creds = record.get("credentials")
            if creds:
                self.by_credentials_id.pop(creds["id"], None)


def _docker_time(value: Any) -> str | None:
    text = str(value or "")
    return None if not text or text.startswith("0001-01-01") else text


def _known_status(state: Mapping[str, Any], pause: bool) -> str:
    if state.get("Running"):
        return "RESOURCES_PROVISIONED" if pause else "RUNNING"
    if _docker_time(state.get("StartedAt")):
        return "STOPPED"
    return "CREATED"


class Metadata:
    """Builds metadata responses from a task's record and live Docker state."""

    def __init__(self, api: docker.APIClient) -> None:
        self.api = api
        self._previous_stats: dict[str, dict[str, Any]] = {}

    def inspect(self, docker_name: str) -> Mapping[str, Any] | None:
        import docker.errors

        try:
            return dict(self.api.inspect_container(docker_name))
        except docker.errors.NotFound:
            return None

    def container(self, record: Mapping[str, Any], c: Mapping[str, Any], v4: bool, info: Any = None) -> dict[str, Any]:
        info = info if info is not None else self.inspect(c["docker_name"])
        pause = c.get("type") == "CNI_PAUSE"
        state = (info or {}).get("State") or {}
        known = _known_status(state, pause) if info else "STOPPED"
        desired = "RESOURCES_PROVISIONED" if pause else ("RUNNING" if known in ("CREATED", "RUNNING") else "STOPPED")
        out: dict[str, Any] = {
            "DockerId": (info or {}).get("Id", ""),
            "Name": c["name"],
            "DockerName": c["docker_name"],
            "Image": c["image"],
            "ImageID": (info or {}).get("Image", "") if not pause else "",
            "Labels": {
                k: v
                for k, v in ((info or {}).get("Config", {}).get("Labels") or {}).items()
                if k.startswith("com.amazonaws.ecs.")
            },
            "DesiredStatus": desired,
            "KnownStatus": known,
            "Limits": c.get("limits", {"CPU": 0, "Memory": 0}),
        }
        if known == "STOPPED" and info:
            out["ExitCode"] = int(state.get("ExitCode", 0))
        for key, docker_key in (("CreatedAt", None), ("StartedAt", "StartedAt"), ("FinishedAt", "FinishedAt")):
            value = _docker_time((info or {}).get("Created") if docker_key is None else state.get(docker_key))
            if value and not (key == "FinishedAt" and known != "STOPPED"):
                out[key] = value
        out["Type"] = c.get("type", "NORMAL")
        if c.get("health_check") and state.get("Health"):
            health = state["Health"]
            log = health.get("Log") or []
            last = log[-1] if log else {}
            status = str(health.get("Status", "")).upper()
            out["Health"] = {
                # Docker's "starting" is not an ECS value: ECS says UNKNOWN until the first verdict.
                "status": status if status in ("HEALTHY", "UNHEALTHY") else "UNKNOWN",
                "statusSince": last.get("End", ""),
                "exitCode": last.get("ExitCode"),
                "output": str(last.get("Output", "")).strip(),
            }
            if not log:
                out["Health"] = {"status": "UNKNOWN"}
        if v4:
            if c.get("log_driver"):
                out["LogDriver"] = c["log_driver"]
                out["LogOptions"] = c.get("log_options", {})
            out["ContainerARN"] = c["container_arn"]
        out["Networks"] = self.networks(record, c, info, v4)
        if v4:
            ports = self.ports(record, c, info)
            if ports:
                out["Ports"] = ports
        return out

    def networks(self, record: Mapping[str, Any], c: Mapping[str, Any], info: Any, v4: bool) -> list[dict[str, Any]]:
        mode = record["network_mode"]
        owner = info
        if mode == "awsvpc" and record.get("pause_docker_name"):
            owner = self.inspect(record["pause_docker_name"])
        networks = ((owner or {}).get("NetworkSettings") or {}).get("Networks") or {}
        entry: dict[str, Any] = {"NetworkMode": mode, "IPv4Addresses": []}
        task_network = record.get("network_name")
        net = networks.get(task_network) if task_network else None
        if net and net.get("IPAddress"):
            entry["IPv4Addresses"] = [net["IPAddress"]]
            if v4:
                entry["AttachmentIndex"] = 0
                if net.get("MacAddress"):
                    entry["MACAddress"] = net["MacAddress"]
                if net.get("IPPrefixLen") and net.get("Gateway"):
                    entry["IPv4SubnetCIDRBlock"] = _cidr(net["IPAddress"], int(net["IPPrefixLen"]))
                    entry["SubnetGatewayIpv4Address"] = f"{net['Gateway']}/{net['IPPrefixLen']}"
        if mode == "none":
            return []
        return [entry]

    def ports(self, record: Mapping[str, Any], c: Mapping[str, Any], info: Any) -> list[dict[str, Any]]:
        if record["network_mode"] == "awsvpc" and record.get("pause_docker_name"):
            info = self.inspect(record["pause_docker_name"])
        published = ((info or {}).get("NetworkSettings") or {}).get("Ports") or {}
        out = []
        for port in c.get("ports", []):
            key = f"{port['containerPort']}/{port['protocol']}"
            if record["network_mode"] == "host":
                out.append(
                    {
                        "ContainerPort": port["containerPort"],
                        "Protocol": port["protocol"],
                        "HostPort": port["containerPort"],
                    }
                )
                continue
            for binding in published.get(key) or []:
                out.append(
                    {
                        "ContainerPort": port["containerPort"],
                        "Protocol": port["protocol"],
                        "HostPort": int(binding["HostPort"]),
                        "HostIp": binding.get("HostIp") or "0.0.0.0",
                    }
                )
                break
        return out

    def task(self, record: Mapping[str, Any], v4: bool, with_tags: bool) -> dict[str, Any]:
        containers = [self.container(record, c, v4) for c in record["containers"]]
        normal = [c for c in containers if c["Type"] == "NORMAL"]
        essential = {c["name"] for c in record["containers"] if c.get("essential")}
        if normal and all(c["KnownStatus"] == "STOPPED" for c in normal):
            known = "STOPPED"
        elif any(c["KnownStatus"] == "STOPPED" for c in normal if c["Name"] in essential):
            known = "STOPPING"
        elif all(c["KnownStatus"] == "RUNNING" for c in normal if c["Name"] in essential):
            known = "RUNNING"
        else:
            known = "PENDING"
        out: dict[str, Any] = {
            "Cluster": record["cluster"],
            "TaskARN": record["task_arn"],
            "Family": record["family"],
            "Revision": str(record["revision"]),
            "DesiredStatus": "RUNNING" if known in ("PENDING", "RUNNING") else "STOPPED",
            "KnownStatus": known,
            "Containers": containers,
        }
        if record.get("limits"):
            out["Limits"] = record["limits"]
        if record.get("pull_started_at"):
            out["PullStartedAt"] = record["pull_started_at"]
            out["PullStoppedAt"] = record["pull_stopped_at"]
        out["AvailabilityZone"] = record["availability_zone"]
        if v4:
            out["LaunchType"] = record["launch_type"]
        if with_tags:
            out["TaskTags"] = record.get("task_tags", {})
            out["ContainerInstanceTags"] = {}
        return out

    def task_addresses(self, record: Mapping[str, Any]) -> set[str]:
        """The IPv4 addresses of a task's containers on its own network."""
        names = (
            [record["pause_docker_name"]]
            if record.get("pause_docker_name")
            else [c["docker_name"] for c in record["containers"]]
        )
        addresses: set[str] = set()
        for name in names:
            networks = ((self.inspect(name) or {}).get("NetworkSettings") or {}).get("Networks") or {}
            addresses.update(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
        return addresses

    def stats(self, docker_name: str) -> dict[str, Any] | None:
        import docker.errors

        try:
            stats = dict(self.api.stats(docker_name, stream=False, one_shot=True))
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError:
            stats = dict(self.api.stats(docker_name, stream=False))  # engines without one-shot stats
        # A one-shot sample has no previous one; the agent keeps the last sample, and so do we.
        previous = self._previous_stats.get(docker_name)
        if not (stats.get("precpu_stats") or {}).get("system_cpu_usage"):
            stats["precpu_stats"] = (previous or stats).get("cpu_stats", {})
            stats["preread"] = (previous or stats).get("read", stats.get("read"))
        self._previous_stats[docker_name] = stats
        stats.setdefault("network_rate_stats", {"rx_bytes_per_sec": 0, "tx_bytes_per_sec": 0})
        return stats


_local: dict[str, bool] = {}


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


def _is_local(address: str) -> bool:
    """Whether ``address`` belongs to this host: only a local address can be bound."""
    import socket

    if address not in _local:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind((address, 0))
            _local[address] = True
        except OSError:
            _local[address] = False
        finally:
            probe.close()
    return _local[address]


def _cidr(ip: str, prefix: int) -> str:
    import ipaddress

    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class EndpointServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: docker.APIClient, control_token: str) -> None:
        super().__init__(address, Handler)
        self.registry = Registry()
        self.metadata = Metadata(api)
        self.control_token = control_token


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
        registry = self.server.registry
        with registry.lock:
            task_id = registry.by_credentials_id.get(cid)
            record = registry.tasks.get(task_id or "")
        creds = record.get("credentials") if record else None
        if record is None or not creds:
            self.send_json(400, {"code": "InvalidIdInRequest", "message": prefix + "Credentials not found"})
            return
        token_ok = not creds.get("token") or secrets.compare_digest(
            self.headers.get("Authorization", ""), creds["token"]
        )
        # Beyond ECS: the request must come from the task's own containers (or from this host: host-mode
        # tasks and the test itself), so a container of another task is refused even with the right id.
        source = self.client_address[0]
        if not token_ok or not (_is_local(source) or source in self.server.metadata.task_addresses(record)):
            self.send_json(400, {"code": "InvalidIdInRequest", "message": prefix + "Credentials not found"})
            return
        self.send_json(200, {"RoleArn": creds["role_arn"], **creds["values"]})

    def metadata(self, v4: bool, mid: str, rest: str) -> None:
        version = "V4" if v4 else "V3"
        registry = self.server.registry
        with registry.lock:
            task_id, name = registry.by_metadata_id.get(mid, ("", ""))
            record = registry.tasks.get(task_id)
        if record is None:
            self.send_json(
                404,
                f"{version} container metadata handler: unable to get task arn from request: "
                f"unable to get container metadata for {mid}",
            )
            return
        container = next(c for c in record["containers"] if c["name"] == name)
        md = self.server.metadata
        try:
            if rest == "":
                self.send_json(200, md.container(record, container, v4))
            elif rest in ("task", "taskWithTags"):
                self.send_json(200, md.task(record, v4, with_tags=rest == "taskWithTags"))
            elif rest == "stats":
                stats = md.stats(container["docker_name"])
                self.send_json(
                    200 if stats is not None else 404,
                    stats or f"{version} container stats handler: unable to get stats",
                )
            elif rest == "task/stats":
                all_stats = {}
                for c in record["containers"]:
                    stats = md.stats(c["docker_name"])
                    if stats is not None:
                        all_stats[stats.get("id", c["docker_name"])] = stats
                self.send_json(200, all_stats)
            else:
                self.send_json(404, "404 page not found")
        except Exception as exc:  # a Docker hiccup must not kill the server
            self.send_json(500, f"failed to get {version.lower()} metadata: {type(exc).__name__}")

    def authorized(self) -> bool:
        return secrets.compare_digest(self.headers.get("X-Ecstask-Token", ""), self.server.control_token)

    def do_POST(self) -> None:
        if not self.authorized():
            self.send_json(403, "forbidden")
            return
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == f"{CONTROL}/tasks":
            self.server.registry.add(body)
            self.send_json(200, {"ok": True})
        elif self.path == f"{CONTROL}/shutdown":
            self.send_json(200, {"ok": True})
            threading.Thread(target=self.server.shutdown, daemon=True).start()
        else:
            self.send_json(404, "404 page not found")

    def do_DELETE(self) -> None:
        if not self.authorized():
            self.send_json(403, "forbidden")
            return
        if self.path.startswith(f"{CONTROL}/tasks/"):
            self.server.registry.remove(self.path.rsplit("/", 1)[1])
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, "404 page not found")


# -- the shared network ------------------------------------------------------------------------------------


def ensure_network(api: docker.APIClient) -> None:
    """Make the host own 169.254.170.2: one labelled network per engine, shared by every run."""
    import docker.errors

    if api.networks(names=[NETWORK_NAME]):
        return
    import docker.types

    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=ENDPOINT_IP)])
    try:
        api.create_network(NETWORK_NAME, driver="bridge", ipam=ipam, labels={NETWORK_LABEL: "1"})
    except docker.errors.APIError as exc:
        if "overlap" not in str(exc).lower() and "already exists" not in str(exc).lower():
            raise
        # Another network already holds the subnet (made by hand, or racing): the address is there anyway.


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
        if session != own_session and lease_is_held(str(directory / f"{session}.lease")):
            return
    # Runs with another lease directory are not in ours; their servers still listen on the address.
    listening = listeners_on_endpoint_ip()
    if listening is None or listening - {own_port}:
        return
    for net in api.networks(names=[NETWORK_NAME]):
        if (net.get("Labels") or {}).get(NETWORK_LABEL):
            with contextlib.suppress(docker.errors.APIError):
                api.remove_network(net["Id"])


def serve(session_dir: Path, lease_path: str, session_id: str, port: int = 0) -> int:
    """The server process: bind, announce in ``endpoint.json``, serve until the run's lease is free."""
    import docker
    from filelock import FileLock

    from pytest_ecstask.lifecycle import lease_dir, lease_is_held

    api = docker.from_env().api
    directory = lease_dir()
    announce = session_dir / "endpoint.json"
    network_lock = FileLock(str(directory / "endpoint-network.lock"), thread_local=False)
    token = secrets.token_hex(24)
    with network_lock:
        try:
            ensure_network(api)
        except Exception as exc:
            _announce(announce, {"error": f"could not create the {SUBNET} network: {exc}"})
            return 1
        server = None
        errors = []
        # Port 80 gives the exact ECS form, but it is asked for, not taken by default: a server on
        # 169.254.170.2:80 keeps any task from publishing hostPort 80 on all addresses.
        for candidate in dict.fromkeys((port, 0)):
            try:
                server = EndpointServer((ENDPOINT_IP, candidate), api, token)
                break
            except OSError as exc:
                errors.append(f"port {candidate or 'any'}: {exc.strerror or exc}")
        if server is None:
            _announce(announce, {"error": f"cannot bind {ENDPOINT_IP} ({'; '.join(errors)})"})
            remove_network_if_unused(api, directory, session_id)  # made for nothing (a remote engine)
            return 1
        refused = errors[0] if errors and port else ""
        _announce(
            announce, {"port": server.server_address[1], "token": token, "pid": os.getpid(), "port_refused": refused}
        )

    def watch_lease() -> None:
        while lease_is_held(lease_path):
            time.sleep(LEASE_POLL_SECONDS)
        server.shutdown()

    threading.Thread(target=watch_lease, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        with network_lock:
            with contextlib.suppress(OSError):
                announce.unlink()
            remove_network_if_unused(api, directory, session_id)
    return 0


def _announce(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.chmod(0o600)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pytest-ecstask metadata and credentials endpoint server")
    parser.add_argument("--session-dir", required=True)
    parser.add_argument("--lease", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    return serve(Path(args.session_dir), args.lease, args.session, args.port)


# -- the client side: used by the processes of a run ---------------------------------------------------


class EndpointUnavailable(EcsTaskError):
    """169.254.170.2 cannot be served from here (a remote engine, a Docker Desktop VM, no privileges)."""


def ensure_server(session_dir: Path, lease_path: str, session_id: str, port: int = 0) -> EndpointInfo:
    """The run's server, started by the first process that needs it (under a file lock)."""
    from filelock import FileLock

    session_dir.mkdir(parents=True, exist_ok=True)
    announce = session_dir / "endpoint.json"
    with FileLock(str(session_dir / "endpoint.lock"), thread_local=False):
        if announce.exists():
            data = json.loads(announce.read_text())
            if "error" in data:
                raise EndpointUnavailable(data["error"])
            info = _info(data)
            if _answers(info):
                return info
            announce.unlink()
        with open(session_dir / "endpoint.log", "ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest_ecstask.endpoints",
                    "--session-dir",
                    str(session_dir),
                    "--lease",
                    lease_path,
                    "--session",
                    session_id,
                    "--port",
                    str(port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not announce.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                text = (session_dir / "endpoint.log").read_text(errors="replace").strip().splitlines()
                raise EndpointUnavailable("the endpoint server did not start" + (f": {text[-1]}" if text else ""))
            time.sleep(0.02)
        data = json.loads(announce.read_text())
        if "error" in data:
            raise EndpointUnavailable(data["error"])
        return _info(data)


def _info(announced: Mapping[str, Any]) -> EndpointInfo:
    return EndpointInfo(
        int(announced["port"]),
        str(announced["token"]),
        int(announced["pid"]),
        str(announced.get("port_refused") or ""),
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

    conn = http.client.HTTPConnection(ENDPOINT_IP, info.port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        sent = {"X-Ecstask-Token": info.control_token, "Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise EndpointUnavailable(f"the endpoint server answered {response.status} to {method} {path}")
        return json.loads(payload or b"null")
    finally:
        conn.close()


def _answers(info: EndpointInfo) -> bool:
    try:
        _request(info, "GET", f"{CONTROL}/ping", timeout=1.0)
        return True
    except (OSError, EndpointUnavailable):
        return False


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


def register(info: EndpointInfo, record: Mapping[str, Any]) -> None:
    _request(info, "POST", f"{CONTROL}/tasks", dict(record))


def unregister(info: EndpointInfo, task_id: str) -> None:
    # When the server is gone already there is nothing to unregister from.
    with contextlib.suppress(OSError, EndpointUnavailable):
        _request(info, "DELETE", f"{CONTROL}/tasks/{task_id}")


def stop_server(session_dir: Path) -> None:
    """Ask the run's server to stop (the run is over) and wait for it to go."""
    announce = session_dir / "endpoint.json"
    try:
        data = json.loads(announce.read_text())
        info = EndpointInfo(int(data["port"]), str(data["token"]), int(data["pid"]))
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
