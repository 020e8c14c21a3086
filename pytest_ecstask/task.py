"""What a test holds: a live ECS task and its containers, and the way to start one outside pytest."""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_ecstask import __version__
from pytest_ecstask.credentials import TaskCredentials, from_mapping
from pytest_ecstask.endpointids import EndpointRequest
from pytest_ecstask.endpoints import (
    NETWORK_NAME,
    EndpointInfo,
    EndpointUnavailable,
    engine_is_here,
    engine_networks_here,
    ensure_server,
    metadata_id,
    network_failed,
    register,
    unregister,
)
from pytest_ecstask.errors import EcsTaskError, TaskFailedToStart
from pytest_ecstask.inputs import TaskSource as TaskSource  # re-exported: imported from here by earlier code
from pytest_ecstask.inputs import load_source as load_source
from pytest_ecstask.inputs import resolve_credentials, resolve_inputs
from pytest_ecstask.lifecycle import Owner, lease_dir, process_owner
from pytest_ecstask.options import TaskOptions, own_endpoint_variable
from pytest_ecstask.plan import TaskPlan, build_plan
from pytest_ecstask.runtime import LOG_TAIL_ON_FAILURE, Engine, TaskRunner, fetch_log_lines
from pytest_ecstask.secretvalues import SecretMask
from pytest_ecstask.settings import plan_options
from pytest_ecstask.taskdef import TaskDefinition
from pytest_ecstask.taskstate import ContainerState, LogLine, TimelineEntry


class Connections:
    """A Docker connection and the runs' endpoint servers, each opened on first use (never at import).

    The pytest plugin keeps one on each run object, so two runs in one process (pytester) share neither;
    outside pytest the process has its own (``get_engine``).
    """

    def __init__(self, own_endpoint: str | None = None) -> None:
        # The variable by which this process gets its own credentials from the endpoint subnet, read at the
        # run's start (``options.own_endpoint_variable``): its endpoint network would take the address.
        self.own_endpoint = own_endpoint
        self._engine: Engine | None = None
        self._endpoints: dict[str, EndpointInfo | None] = {}  # by session id; None: cannot be served
        self._lock = threading.Lock()  # the endpoints'
        self._engine_lock = threading.Lock()  # apart: a task needing no endpoint waits for none being started

    def engine(self) -> Engine:
        with self._engine_lock:
            if self._engine is None:
                self._engine = Engine.connect()
            return self._engine

    def endpoint(
        self, owner: Owner, request: EndpointRequest, engine_host: str, engine: Engine | None = None
    ) -> EndpointInfo | None:
        with self._lock:
            cached = self._endpoints.get(owner.session_id)
            if cached is not None and network_failed(cached):  # its task failed, saying why: try anew
                del self._endpoints[owner.session_id]
            if owner.session_id not in self._endpoints:
                self._endpoints[owner.session_id] = _serve_endpoints(
                    owner, request, engine_host, engine, self.own_endpoint
                )
            return self._endpoints[owner.session_id]


_process = Connections(own_endpoint_variable(os.environ))
_runs: dict[str, Connections] = {}  # session id -> the connections of a pytest run going on in this process


def use_connections(session_id: str, connections: Connections | None) -> None:
    """Tasks of ``session_id`` get their endpoint server from ``connections`` (a run's); None: no more."""
    if connections is None:
        _runs.pop(session_id, None)
    else:
        _runs[session_id] = connections


def get_engine() -> Engine:
    """The process's Docker connection, opened on first use (never when no test needs a task)."""
    return _process.engine()


class EndpointWarning(UserWarning):
    """The metadata and credentials endpoints cannot be served as asked: off, or on another port."""


class UnknownFieldWarning(UserWarning):
    """The task definition sets a field of a newer ECS model than this version knows: not reproduced."""


_unknown_fields_warned: set[tuple[str, str]] = set()  # (session id, field) pairs already warned about


def _warn_unknown_fields(plan: TaskPlan, source: str) -> None:
    """One warning per run for each field of the ECS model that the field-support list does not know."""
    import re
    import warnings

    # A field set in three containers is one field: its path without the list indexes.
    fields = dict.fromkeys(re.sub(r"\[\d+\]", "[]", path) for path in plan.not_reproduced)
    new = [f for f in fields if (plan.options.owner.session_id, f) not in _unknown_fields_warned]
    _unknown_fields_warned.update((plan.options.owner.session_id, f) for f in new)
    if new:
        what = "this field is" if len(new) == 1 else "these fields are"
        warnings.warn(
            UnknownFieldWarning(
                f"{source}: {', '.join(new)}: {what} in botocore's ECS model but not yet known to "
                f"pytest-ecstask {__version__}, so a local run does not reproduce them: a test can pass here "
                "and fail on ECS. --ecs-plan lists them."
            ),
            stacklevel=3,
        )


def endpoint_for(
    owner: Owner, request: EndpointRequest | None = None, engine_host: str = "localhost", engine: Engine | None = None
) -> EndpointInfo | None:
    """The run's endpoint server, started on first use; None (with one warning per run) where it cannot be.

    ``engine_host`` is where the engine's published ports are reached: an engine elsewhere runs its
    containers where a server on this machine cannot be reached at 169.254.170.2. With the ``engine``, a
    local server's network and socket are made in this process, so that the port is known at once.
    """
    connections = _runs.get(owner.session_id, _process)
    return connections.endpoint(owner, request or EndpointRequest(), engine_host, engine)


def _serve_endpoints(
    owner: Owner,
    request: EndpointRequest,
    engine_host: str,
    engine: Engine | None = None,
    own_endpoint: str | None = None,
) -> EndpointInfo | None:
    import warnings

    info: EndpointInfo | None = None
    taken = ""
    try:
        taken = _own_endpoint_taken(own_endpoint, request, engine)
        info = _start_endpoints(owner, request, engine_host, engine)
    except EndpointUnavailable as exc:
        warnings.warn(
            EndpointWarning(
                f"the task metadata and credentials endpoints are off: {exc}. Containers get no "
                "ECS_CONTAINER_METADATA_URI_V4 and no credentials variables. Another address would not "
                "help: botocore, the Go v2, JS v3 and Java v2 SDKs refuse a plain-http credentials URI "
                "whose host is not loopback, 169.254.170.2 or 169.254.170.23 (host.docker.internal "
                "included). --ecs-endpoints=off silences this."
            ),
            stacklevel=4,
        )
    if info is not None and taken:
        warnings.warn(EndpointWarning(taken), stacklevel=4)
    port = request.port
    if info is not None and port and info.port != port:
        warnings.warn(
            EndpointWarning(
                f"--ecs-endpoint-port={port}: {info.port_refused or 'the port is taken'}. The endpoints are "
                f"served on port {info.port} instead, so containers get AWS_CONTAINER_CREDENTIALS_FULL_URI "
                "and AWS_CONTAINER_AUTHORIZATION_TOKEN, not AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. Is "
                "another run on this engine using that port?"
            ),
            stacklevel=4,
        )
    return info


def _start_endpoints(
    owner: Owner, request: EndpointRequest, engine_host: str, engine: Engine | None = None
) -> EndpointInfo:
    """The server in the mode asked; ``auto``: a local one where the engine's networks are this machine's,
    else (another machine, Docker Desktop's virtual machine, a rootless engine) one behind the engine's relay."""
    session_dir = lease_dir() / f"{owner.session_id}.d"
    mode = request.mode
    if mode == "auto":
        mode = "local" if engine_is_here(engine_host) else "relay"
    elif mode == "local" and not engine_is_here(engine_host):
        raise EndpointUnavailable(
            f"the Docker engine is at {engine_host}, not on this machine, so its containers cannot reach a "
            "server here (--ecs-endpoints=local); the relay can reach them: --ecs-endpoints=auto or relay"
        )
    if mode == "local":
        try:
            return ensure_server(session_dir, owner.lease, owner.session_id, request.port, engine=engine)
        except EndpointUnavailable as exc:
            if request.mode != "auto" or not exc.bind_failed:
                raise
            # The engine's networks are not this machine's (Docker Desktop, a rootless engine): relay.
    return ensure_server(session_dir, owner.lease, owner.session_id, request.port, relay=request)


def _own_endpoint_taken(own_endpoint: str | None, request: EndpointRequest, engine: Engine | None) -> str:
    """Where this process gets its own AWS credentials or metadata from 169.254.170.0/24 (``own_endpoint``:
    CodeBuild, an ECS task, EKS Pod Identity) and a Docker engine makes its networks here (Docker in the
    same container or pod), making the endpoint network would take that address from this process while
    the run lasts. ``auto`` leaves the endpoints off (EndpointUnavailable); ``local`` and ``relay`` take it:
    the text of their warning (given once the endpoints are served), after the default boto3 session has
    fetched its credentials while it still can. "" otherwise. Never shows the variable's value."""
    if own_endpoint is None or engine is None or engine.podman:
        return ""
    if not engine_networks_here(engine, when_unsure=True):  # unsure: as if here, the safe side
        return ""
    try:
        if engine.api.networks(names=[NETWORK_NAME]):
            return ""  # another run took the address already: nothing more is taken
    except Exception:
        pass
    taken = (
        f"this process gets its own AWS credentials or task metadata from 169.254.170.0/24 ({own_endpoint} is "
        "set: CodeBuild, an ECS task or EKS Pod Identity), and the Docker engine makes its networks in this "
        "process's network, so the endpoint network would take that address from it while the run lasts: a "
        "test's own AWS call, a secret read from AWS, or another step of the job would find no credentials"
    )
    if request.mode == "auto":
        raise EndpointUnavailable(
            f"{taken}. --ecs-endpoints=local serves the endpoints anyway; a Docker engine in a container of its "
            "own (a dind service with its own network) avoids it"
        )
    fetched = "fetched its credentials first" if _fetch_own_credentials() else "had no credentials to fetch first"
    return f"{taken} (--ecs-endpoints={request.mode}: taken; boto3's default session {fetched})"


def _fetch_own_credentials() -> bool:
    """Have boto3's default session (the one the plugin assumes task roles, reads secrets and S3 environment
    files with) fetch this process's credentials now, while their address is reachable; it keeps them until
    they near expiry. False: no boto3, or no credentials it could fetch."""
    try:
        import boto3

        credentials = boto3._get_default_session().get_credentials()
        if credentials is None:
            return False
        credentials.get_frozen_credentials()
        return True
    except Exception:
        return False


def _is_status_strategy(strategy: Any) -> bool:
    try:
        from testcontainers.core.wait_strategies import ContainerStatusWaitStrategy
    except ImportError:  # older testcontainers releases have no such strategy
        return False
    return isinstance(strategy, ContainerStatusWaitStrategy)


class WaitTarget:
    """A container as testcontainers' wait strategies expect one (their WaitStrategyTarget protocol)."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def get_container_host_ip(self) -> str:
        return self._container.host

    def get_exposed_port(self, port: int) -> int:
        return self._container.port(port)

    def get_wrapped_container(self) -> Any:
        import docker
        from docker.models.containers import Container as DockerContainer

        client = docker.DockerClient.__new__(docker.DockerClient)
        client.api = self._container._task._engine.api
        # With its collection, reload() works: strategies that poll health or status call it.
        return DockerContainer(attrs=dict(self._container.inspect()), client=client, collection=client.containers)

    def exec(self, command: str | list[str]) -> ExecResult:
        """For ExecWaitStrategy: the command's exit code and output."""
        return self._container.exec(command)

    def get_logs(self) -> tuple[bytes, bytes]:
        lines = self._container.log_lines(raw=True)  # for a strategy to match on; it does not show them
        return tuple(  # type: ignore[return-value]
            "".join(f"{line.text}\n" for line in lines if line.stream == stream).encode()
            for stream in ("stdout", "stderr")
        )

    def reload(self) -> None:
        return None  # every call above reads Docker afresh

    @property
    def status(self) -> str:
        return str(self._container.inspect()["State"]["Status"])


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


class Container:
    """One container of a running task, by its task definition name."""

    def __init__(self, task: Task, state: ContainerState) -> None:
        self._task = task
        self._state = state
        self._ports: Mapping[str, Any] | None = None
        self._address: str | None = None  # on Podman, its address before disconnect()

    def __repr__(self) -> str:
        return f"<Container {self.name!r} {self.status} exit_code={self.exit_code}>"

    @property
    def name(self) -> str:
        return self._state.name

    @property
    def id(self) -> str | None:
        """The Docker container id."""
        return self._state.docker_id

    @property
    def docker_name(self) -> str:
        return self._state.plan.docker_name

    @property
    def image(self) -> str:
        return self._state.plan.image

    @property
    def essential(self) -> bool:
        return self._state.plan.essential

    @property
    def status(self) -> str:
        """ECS known status: PENDING, CREATED, RUNNING or STOPPED."""
        return self._state.status

    @property
    def exit_code(self) -> int | None:
        return self._state.exit_code

    @property
    def restart_count(self) -> int:
        """How many times its restartPolicy restarted it in place (0 without one)."""
        return self._state.restart_count

    @property
    def health(self) -> str:
        """UNKNOWN, HEALTHY or UNHEALTHY; only a task definition healthCheck makes it other than UNKNOWN."""
        return self._state.health

    @property
    def reason(self) -> str | None:
        """Why the container stopped or never started, when ECS would say."""
        return self._state.reason

    def wait_until_healthy(self, timeout: float = 60.0) -> Container:
        """Wait for the task definition's healthCheck to report HEALTHY.

        Raises ``EcsTaskError`` with the last health check outputs when the container turns UNHEALTHY,
        stops, or is not HEALTHY within ``timeout`` seconds, and when it has no healthCheck at all.
        """
        self._task._runner.wait_until_healthy(self.name, timeout)
        return self

    @property
    def metadata_uri(self) -> str | None:
        """The container's ECS_CONTAINER_METADATA_URI_V4 (None when the endpoints are off)."""
        return self._task._metadata_uri(self.name, "v4")

    @property
    def metadata_uri_v3(self) -> str | None:
        """The container's ECS_CONTAINER_METADATA_URI."""
        return self._task._metadata_uri(self.name, "v3")

    @property
    def host(self) -> str:
        """The address where this container's published ports are reached from the test."""
        return self._task._engine.host

    def port(self, container_port: int, protocol: str = "tcp") -> int:
        """The host port published for ``container_port`` (the same number in host network mode)."""
        plan = self._state.plan
        key = f"{int(container_port)}/{protocol}"
        if not any(p.key == key for p in plan.ports):
            mapped = ", ".join(p.key for p in plan.ports) or "none"
            raise EcsTaskError(f"container {self.name!r} has no portMapping for {key}; its portMappings: {mapped}")
        if self._task.network_mode == "host":
            return int(container_port)
        from pytest_ecstask.metadata import host_binding, network_owner, published_ports

        if self._ports is None:
            owner_state = network_owner(self._task.network_mode, self._state, self._task._runner.pause)
            if owner_state.docker_id is None:
                raise EcsTaskError(f"container {self.name!r} was never created, so {key} is not published")
            ports = published_ports(self._task._engine.api.inspect_container(owner_state.docker_id))
            if not ports:
                raise EcsTaskError(f"container {self.name!r}: {key} is not published (is the container running?)")
            self._ports = ports  # published ports do not change while the container lives
        binding = host_binding(self._ports, key)
        if binding is None:
            raise EcsTaskError(f"container {self.name!r}: {key} is not published (is the container running?)")
        return binding[0]

    def address(self, container_port: int, protocol: str = "tcp") -> tuple[str, int]:
        return self.host, self.port(container_port, protocol)

    def log_lines(self, *, raw: bool = False) -> list[LogLine]:
        """stdout and stderr lines so far, with Docker's timestamps; kept after the container is removed.

        Resolved secret values are masked; ``raw=True`` gives the text as the container wrote it.
        """
        lines = self._raw_log_lines()
        mask = self._task.mask
        if raw or not mask:
            return lines
        return [LogLine(line.time, line.stream, mask(line.text)) for line in lines]

    def _raw_log_lines(self) -> list[LogLine]:
        if self._state.logs is not None or self.id is None:
            return list(self._state.logs or [])
        import docker.errors

        try:
            return fetch_log_lines(self._task._engine.api, self.id)
        except docker.errors.APIError:
            return list(self._state.logs or [])  # being removed right now: what was kept, if anything

    def logs(self, *, raw: bool = False) -> str:
        """stdout and stderr so far, in time order; kept after the container is removed.

        Resolved secret values are masked, as in reports; ``raw=True`` gives the text as the container wrote it.
        """
        text = "".join(f"{line.text}\n" for line in self._raw_log_lines())
        return text if raw else self._task.mask(text)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30.0, *, raw: bool = False) -> str:
        """Wait for a log line matching ``pattern`` (a regular expression); returns the line.

        Follows the container's log stream (no polling); fails at once when the container exits first.
        The pattern is matched against the raw text; the line returned is masked unless ``raw=True``.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        shown: Callable[[str], str] = str if raw else self._task.mask
        for line in self._raw_log_lines():
            if regex.search(line.text):
                return shown(line.text)
        if self.id is None or self.status != "RUNNING":
            raise EcsTaskError(f"container {self.name!r} is {self.status}; no log line matched {regex.pattern!r}")
        api = self._task._engine.api
        found: list[str] = []
        stream = api.logs(self.id, stream=True, follow=True, since=int(time.time()) - 1)

        def follow() -> None:
            buffer = ""
            try:
                for chunk in stream:
                    buffer += chunk.decode("utf-8", "replace")
                    *complete, buffer = buffer.split("\n")
                    for text in complete:
                        if regex.search(text):
                            found.append(text)
                            return
                if buffer and regex.search(buffer):
                    found.append(buffer)
            except Exception:
                return  # closed on timeout

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        reader.join(timeout)
        with suppress(Exception):
            stream.close()
        if found:
            return shown(found[0])
        tail = "".join(f"    {line.text}\n" for line in self.log_lines()[-10:])
        state = f"it is {self.status}" + (f" (exit code {self.exit_code})" if self.exit_code is not None else "")
        raise TimeoutError(
            f"container {self.name!r}: no log line matched {regex.pattern!r} within {timeout:g} s; {state}; "
            f"its last log lines:\n{tail}"
        )

    # -- fault injection: ECS semantics follow (an essential container that stops stops the task) ------

    def _require_id(self) -> str:
        if self.id is None:
            raise EcsTaskError(f"container {self.name!r} was never created")
        return self.id

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` (default: the container's stop timeout)."""
        seconds = self._state.plan.stop_timeout if timeout is None else timeout
        running, exits = self._state.status == "RUNNING", self._state.exits
        self._task._engine.api.stop(self._require_id(), timeout=math.ceil(seconds))
        if running:  # its status says STOPPED on return
            self._task._runner.wait_for_exit(self.name, exits)

    def kill(self, signal: str | int = "SIGKILL") -> None:
        """Send ``signal`` (name or number) to the container's main process."""
        self._task._engine.api.kill(self._require_id(), signal=signal)

    def restart(self, timeout: float | None = None) -> None:
        """Stop and start again. For an essential container the task stops, as ECS would stop it."""
        seconds = self._state.plan.stop_timeout if timeout is None else timeout
        self._task._engine.api.restart(self._require_id(), timeout=math.ceil(seconds))

    def pause(self) -> None:
        """Freeze every process of the container (cgroup freezer)."""
        self._task._engine.api.pause(self._require_id())

    def unpause(self) -> None:
        self._task._engine.api.unpause(self._require_id())

    @property
    def paused(self) -> bool:
        return self._state.paused

    def disconnect(self) -> None:
        """Cut the container off its network (bridge: Docker's default bridge; awsvpc: the whole task)."""
        network, target = self._network_target()
        engine = self._task._engine
        if engine.podman:
            # Links on Podman are hosts entries naming the address a container had: it gets the same one back.
            attached = engine.api.inspect_container(target).get("NetworkSettings", {}).get("Networks") or {}
            self._address = next((n.get("IPAddress") for n in attached.values() if n.get("IPAddress")), None)
        engine.api.disconnect_container_from_network(target, network)

    def reconnect(self) -> None:
        """Join its network again; legacy links (bridge) are kept by Docker and come back with it."""
        network, target = self._network_target()
        endpoint = dict(
            self._state.plan.create_body.get("NetworkingConfig", {}).get("EndpointsConfig", {}).get(network, {})
        )
        engine = self._task._engine
        if engine.podman:
            engine.api.connect_container_to_network(
                target, network, aliases=endpoint.get("Aliases"), ipv4_address=self._address
            )
        else:
            engine.api.connect_container_to_network(
                target,
                network,
                aliases=endpoint.get("Aliases"),
                links=[tuple(link.split(":", 1)) for link in endpoint.get("Links", [])] or None,
            )
        self._ports = None  # published ports are bound again

    def _network_target(self) -> tuple[str, str]:
        plan = self._task.plan
        if plan.network is None:
            raise EcsTaskError(f"container {self.name!r}: network mode {plan.network_mode} has no task network")
        if plan.network_mode == "awsvpc":
            pause = self._task._runner.pause
            assert pause is not None and pause.docker_id is not None
            return plan.network.docker_name, pause.docker_id
        return plan.network.docker_name, self._require_id()

    def exec(self, cmd: str | list[str], *, user: str = "", workdir: str | None = None) -> ExecResult:
        """Run ``cmd`` inside the running container, as ``docker exec`` would."""
        if self.id is None or self.status != "RUNNING":
            raise EcsTaskError(f"container {self.name!r} is {self.status}; exec needs it RUNNING")
        api = self._task._engine.api
        exec_id = api.exec_create(self.id, cmd, user=user, workdir=workdir)["Id"]
        output = api.exec_start(exec_id)
        code = api.exec_inspect(exec_id)["ExitCode"]
        return ExecResult(int(code), output.decode("utf-8", "replace"))

    def inspect(self) -> Mapping[str, Any]:
        """Docker's own view of the container (``docker inspect``)."""
        if self.id is None:
            raise EcsTaskError(f"container {self.name!r} was never created")
        return dict(self._task._engine.api.inspect_container(self.id))


class Task:
    """A running (or stopped) ECS task. Use as a context manager to have it removed on exit."""

    def __init__(
        self,
        engine: Engine,
        taskdef: TaskDefinition,
        plan: TaskPlan,
        options: TaskOptions,
        credentials: TaskCredentials | None = None,
    ) -> None:
        self._engine = engine
        self._pull_times = ("", "")  # when its images were checked (PullStartedAt, PullStoppedAt)
        # Started here and not yet registered with its endpoint server: nothing to unregister then.
        self._registration_pending = False
        self.definition = taskdef
        self.plan = plan
        self.options = options
        self.credentials = credentials  # what the credentials endpoint serves (None without a taskRoleArn)
        # Every resolved secret value (json-key values and log secretOptions included) is masked in what
        # the task shows: logs, reasons, reports. show_secrets is for local debugging only.
        self.mask = SecretMask(() if options.show_secrets else plan.options.secret_values.values())
        self._runner = TaskRunner(
            engine,
            plan,
            pull=options.pull,
            on_provisioned=self._register,
            on_removed=self._unregister,
            mask=self.mask,
        )
        self.containers: Mapping[str, Container] = {
            name: Container(self, state) for name, state in self._runner.containers.items()
        }

    @property
    def endpoint(self) -> EndpointInfo | None:
        return self.plan.options.endpoint

    @property
    def progress(self) -> TaskRunner:
        """Where its timeline lines and events go as they happen: the live -v lines, the task event hook."""
        return self._runner

    def _metadata_uri(self, container: str, version: str) -> str | None:
        if self.endpoint is None:
            return None
        return f"{self.endpoint.base_url}/{version}/{metadata_id(self.plan.options.secret, container)}"

    @property
    def metadata_uri(self) -> str | None:
        """The v4 metadata URI of the first essential container; ``f"{task.metadata_uri}/task"`` is the task's."""
        first = next(c for c in self.plan.containers if c.essential)
        return self._metadata_uri(first.name, "v4")

    @property
    def credentials_uri(self) -> str | None:
        """Where the containers get their task-role credentials (None without a taskRoleArn or endpoints)."""
        if self.endpoint is None or self.credentials is None:
            return None
        from pytest_ecstask.endpoints import credentials_id

        return f"{self.endpoint.base_url}/v2/credentials/{credentials_id(self.plan.options.secret)}"

    def load_credentials_from_endpoint(self) -> None:
        """For a task another process started (the xdist session task): read what its containers get."""
        from pytest_ecstask.endpoints import fetch_credentials

        if self.credentials is not None or self.endpoint is None or not self.definition.task_role_arn:
            return
        body = fetch_credentials(self.endpoint, self.plan.options.secret)
        if body is not None:
            self.credentials = from_mapping(self.definition.task_role_arn, body, "the credentials endpoint")

    def _register(self, pull_started: str, pull_stopped: str) -> None:
        self._pull_times = (pull_started, pull_stopped)
        if self.endpoint is not None:
            if self._tell_restart not in self._runner.listeners:
                self._runner.listeners.append(self._tell_restart)
            register(self.endpoint, task_record(self, pull_started, pull_stopped))
        self._registration_pending = False

    def _tell_restart(self, kind: str, container: str | None, details: Mapping[str, Any]) -> None:
        """The endpoint server's RestartCount: Docker counts no restart the plugin makes in place."""
        from pytest_ecstask.endpoints import restarted

        if kind == "container_restarted" and container is not None and self.endpoint is not None:
            restarted(self.endpoint, self.id, container, int(details.get("restart_count", 0)))

    def _unregister(self) -> None:
        # A task that failed before it registered asks nothing: a server still waiting for its first task
        # would hold the request until it gave up waiting.
        if self.endpoint is not None and not self._registration_pending:
            unregister(self.endpoint, self.id)

    def __repr__(self) -> str:
        return f"<Task {self.family}:{self.revision} {self.id} {self.status}>"

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def arn(self) -> str:
        return self.plan.task_arn

    @property
    def id(self) -> str:
        return self.plan.task_id

    @property
    def family(self) -> str:
        return self.plan.family

    @property
    def revision(self) -> int:
        return self.plan.revision

    @property
    def network_mode(self) -> str:
        return self.plan.network_mode

    @property
    def status(self) -> str:
        """ECS last status: PROVISIONING, PENDING, RUNNING, STOPPING or STOPPED."""
        return self._runner.state.status

    @property
    def stop_code(self) -> str | None:
        """TaskFailedToStart, EssentialContainerExited or UserInitiated once the task stops."""
        return self._runner.state.stop_code

    @property
    def stopped_reason(self) -> str | None:
        return self._runner.state.stopped_reason

    @property
    def timeline(self) -> list[TimelineEntry]:
        """What happened when, in seconds since the task began."""
        return list(self._runner.state.timeline)

    def logs(self, name: str | None = None, *, raw: bool = False) -> str:
        """One container's logs; without a name, every container's, interleaved by time, each line prefixed.

        Resolved secret values are masked; ``raw=True`` gives the text as the containers wrote it.
        """
        if name is not None:
            return self.containers[name].logs(raw=raw)
        lines = sorted(
            ((line, c.name) for c in self.containers.values() for line in c.log_lines(raw=raw)),
            key=lambda x: x[0].time,
        )
        width = max((len(n) for n in self.containers), default=0)
        return "".join(f"{n:<{width}} | {line.text}\n" for line, n in lines)

    def wait_for_log(self, name: str, pattern: str | re.Pattern[str], timeout: float = 30.0) -> str:
        """Wait until container ``name`` logs a line matching ``pattern``; returns the line."""
        return self.containers[name].wait_for_log(pattern, timeout)

    @property
    def awslogs(self) -> dict[tuple[str, str], str]:
        """Logs of ``awslogs`` containers by the CloudWatch (group, stream) ECS would write them to."""
        from pytest_ecstask.metadata import log_options

        out = {}
        for c in self.plan.containers:
            log = self.definition.container(c.name).raw.get("logConfiguration") or {}
            if log.get("logDriver") != "awslogs":
                continue
            options = log_options(log, c.name, self.id)  # the stream as ECS names it, as the metadata says
            group = options.get("awslogs-group", "")
            # Without a prefix Docker names the stream after the container id.
            stream = options.get("awslogs-stream") or self.containers[c.name].id or ""
            out[(group, stream)] = self.containers[c.name].logs()
        return out

    def start(self) -> Task:
        self._registration_pending = True
        self._runner.start()
        if self.options.check and self.stop_code == "TaskFailedToStart":
            message = self.describe_failure()
            self.close()
            raise TaskFailedToStart(message)
        crashed = self._runner.machine.failed_during_startup()
        if self.options.check and crashed is not None:
            self.close()  # first, so that every container's status, exit code and output are final
            raise TaskFailedToStart(self.describe_failure() + _last_lines(self.containers[crashed.name]))
        for name, strategy in self.options.wait_for.items():
            self._runner.note(name, f"waiting for {type(strategy).__name__}")
            try:
                if _is_status_strategy(strategy):
                    # It only accepts testcontainers' own containers; what it waits for (running) is known here.
                    container = self.containers[name]
                    if container.status != "RUNNING":
                        raise RuntimeError(f"container status not valid for continuing: {container.status}")
                else:
                    strategy.wait_until_ready(WaitTarget(self.containers[name]))
            except Exception as exc:
                # A strategy may quote what it matched on: the container's raw output.
                message = (
                    f"container {name!r} of task {self.family}:{self.revision} did not get ready: {self.mask(str(exc))}"
                )
                self.close()
                raise TaskFailedToStart(message) from None
            self._runner.note(name, f"ready ({type(strategy).__name__})")
        return self

    def stop(self, reason: str = "Task stopped by the test") -> None:
        """Stop the task as ECS does: dependents first, SIGTERM then SIGKILL after each stopTimeout."""
        self._runner.stop(stop_code="UserInitiated", reason=reason)

    def wait(self, timeout: float | None = None) -> Task:
        """Wait for the task to reach STOPPED (a batch task finishing, an essential container exiting)."""
        if not self._runner.wait(timeout):
            running = ", ".join(c.name for c in self.containers.values() if c.status == "RUNNING")
            raise TimeoutError(f"task {self.family}:{self.revision} still running after {timeout} s ({running})")
        return self

    def close(self) -> None:
        """Stop the task if it runs, keep its logs, and remove every container, network and task volume."""
        self._runner.remove()

    def describe_failure(self) -> str:
        lines = [f"task {self.family}:{self.revision} ({self.id}) failed to start: {self.stopped_reason}"]
        for c in self.containers.values():
            code = "" if c.exit_code is None else f" exit code {c.exit_code}"
            why = f" - {c.reason}" if c.reason else ""
            lines.append(f"  {c.name}: {c.status}{code}{why}")
        return self.mask("\n".join(lines))


def _last_lines(c: Container) -> str:
    """A container's last lines of output, masked, as a failure message quotes them."""
    lines = c.logs().rstrip().splitlines()[-LOG_TAIL_ON_FAILURE:]
    return f"\n  last log lines of {c.name!r}:\n" + "\n".join("    " + line for line in lines) if lines else ""


def create_task(
    source: TaskSource,
    options: TaskOptions = TaskOptions(),
    *,
    owner: Owner | None = None,
    engine: Engine | None = None,
    base_dir: Path | None = None,
    task_id: str | None = None,
    created: str | None = None,
    secret: str | None = None,
    started_elsewhere: bool = False,
    served_by: EndpointInfo | None = None,
) -> Task:
    """A planned, not yet started task (nothing on the engine yet).

    ``owner`` is the run the task belongs to (its session and lease); outside pytest, the process's own.
    ``task_id``, ``created`` and ``secret`` give a task planned elsewhere, e.g. the session task another
    xdist worker starts; with ``started_elsewhere`` no credentials are asked for, the starter has them.
    ``served_by``: the endpoint server of a task an earlier run kept (--ecs-reuse), not the run's own.
    """
    # source -> render -> parse and validate (the hooks' adjustments and the overrides validated again)
    taskdef = load_source(source, base_dir=base_dir, options=options)
    # -> resolve inputs: everything that can be missing is looked for before the engine is asked for anything
    inputs = resolve_inputs(taskdef, options, base_dir)
    engine = engine or get_engine()
    owner = owner or process_owner()
    # -> plan: every Docker request decided; the settings made into plan options as --ecs-plan makes them
    plan = build_plan(
        taskdef,
        plan_options(
            taskdef,
            options,
            inputs,
            owner=owner,
            pause_image=engine.pause_image,
            serve_endpoints=lambda request: served_by or endpoint_for(owner, request, engine.host, engine),
            task_id=task_id,
            created=created,
            secret=secret,
        ),
    )
    _warn_unknown_fields(plan, taskdef.source)
    # The task role's credentials are what the endpoint serves: asked for only when there is one to serve them.
    credentials = None
    if taskdef.task_role_arn and not started_elsewhere and plan.options.endpoint is not None:
        credentials = resolve_credentials(taskdef.task_role_arn, options, plan.task_id, taskdef.family)
    # -> the runner and the Task a test holds
    task = Task(engine, taskdef, plan, options, credentials)
    task._runner.registry_auth = inputs.registry_auth
    return task


def task_record(task: Task, pull_started: str, pull_stopped: str) -> Any:
    """The task's ``metadata.TaskRecord``: what the endpoint server needs to answer for it."""
    from pytest_ecstask.metadata import build_task_record

    return build_task_record(task.plan, task.definition, task.credentials, pull_started, pull_stopped)


@contextmanager
def run_task(source: TaskSource, options: TaskOptions = TaskOptions(), *, owner: Owner | None = None) -> Iterator[Task]:
    """Start a task for the length of a ``with`` block, outside pytest; everything is removed on exit."""
    task = create_task(source, options, owner=owner)
    try:
        task.start()
        yield task
    finally:
        task.close()
