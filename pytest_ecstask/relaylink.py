"""A run's end of the relay (``relay``): the relay container, and the stream that carries its connections.

The run's endpoint server (in ``endpoints``) uses this in relay mode. It makes sure the engine runs the
relay, opens the stream through the Docker API (an exec of the relay's ``connect``, attached to its stdin
and stdout: no port is published and no route from the engine back to this machine is needed), tells the
relay which ids the run serves, and hands each connection the relay sends to the server's handlers over a
socket pair, with the container's address, so that the answers are those of a local server.

When the stream ends while the run goes on (the relay died, or was removed), the link starts a relay again
and reconnects; meanwhile the relay, or the closed port, fails requests at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_ecstask import relay
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.leftovers import Resource
from pytest_ecstask.lifecycle import LABEL_CREATED, LABEL_PREFIX, now_rfc3339

if TYPE_CHECKING:
    import docker

LABEL_RELAY = f"{LABEL_PREFIX}.relay"
RELAY_PATH = "/pytest-ecstask-relay.py"
START_TIMEOUT = 30.0  # for the relay to run and take the stream (an image pull is not counted)
HELLO_TIMEOUT = 15.0  # for a relay to answer a run that connects
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0)
LEFT_BEHIND_AFTER = 60.0  # seconds: a relay container that is not running by then is a leftover
CREATED_GRACE = 10.0  # seconds a run has to start the relay it created before another run replaces it


class RelayUnavailable(EcsTaskError):
    """The relay could not be started or reached: its image, its port, or the engine refused."""


class RelayFailed(RelayUnavailable):
    """The relay runs but cannot listen on 169.254.170.2: waiting will not change it."""


class Server(Protocol):
    """What the link needs of the endpoint server: to handle a connection as its own."""

    def finish_request(self, request: Any, client_address: Any) -> None: ...

    def shutdown_request(self, request: Any) -> None: ...


def relay_source() -> bytes:
    return Path(relay.__file__).read_bytes()


def relay_name() -> str:
    """One relay per engine and relay program: plugins of another version run their own, beside it."""
    return f"pytest-ecstask-relay-{hashlib.sha256(relay_source()).hexdigest()[:12]}"


def _container(api: docker.APIClient, name: str) -> dict[str, Any] | None:
    import docker.errors

    try:
        return dict(api.inspect_container(name))
    except docker.errors.NotFound:
        return None


def ensure_image(api: docker.APIClient, image: str, pull: str) -> None:
    import docker.errors

    try:
        api.inspect_image(image)
        return
    except docker.errors.ImageNotFound:
        if pull == "never":
            raise RelayUnavailable(
                f"the relay image {image} is not on the engine, and --ecs-pull=never forbids pulling it. "
                "Set --ecs-relay-image (ini ecs_relay_image) to an image with python3 that the engine has"
            ) from None
    from pytest_ecstask.runtime import pull_image

    try:
        pull_image(api, image)
    except docker.errors.APIError as exc:
        raise RelayUnavailable(
            f"the relay image {image} is not on the engine and could not be pulled ({exc.explanation or exc}). "
            "Set --ecs-relay-image (ini ecs_relay_image) to an image with python3 that the engine has"
        ) from None


def _script_archive() -> bytes:
    source = relay_source()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(RELAY_PATH.lstrip("/"))
        info.size = len(source)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(source))
    return buf.getvalue()


def ensure_relay(api: docker.APIClient, image: str, port: int, pull: str, restarted: bool = False) -> str:
    """The engine's relay, running: started here unless another run's is. Returns its container name.

    ``restarted``: it replaces a relay that died, whose runs are reconnecting.
    """
    import docker.errors

    name = relay_name()
    found = _container(api, name)
    if found is not None and ((found.get("State") or {}).get("Running") or _being_started(found, engine_now(api))):
        return name
    if found is not None:  # over, and not yet removed by Docker: make room for a new one (this one, by its id)
        with contextlib.suppress(docker.errors.APIError):
            api.remove_container(found["Id"], force=True)
        _wait_gone(api, found["Id"])
    ensure_image(api, image, pull)
    try:
        api.create_container(
            image,
            entrypoint=["python3", RELAY_PATH],
            command=["serve", "--port", str(port), *(["--restarted"] if restarted else [])],
            name=name,
            labels={LABEL_RELAY: "1", LABEL_CREATED: now_rfc3339()},
            host_config=api.create_host_config(network_mode="host", auto_remove=True),
        )
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # another run made it a moment ago: it starts it too
            return name
        raise RelayUnavailable(f"the engine refused to create the relay container: {exc.explanation or exc}") from None
    try:
        api.put_archive(name, "/", _script_archive())
        api.start(name)
    except docker.errors.APIError as exc:
        with contextlib.suppress(docker.errors.APIError):
            api.remove_container(name, force=True)
        raise RelayUnavailable(f"the relay container did not start: {exc.explanation or exc}") from None
    return name


def docker_seconds(text: str) -> float | None:
    """A Docker timestamp (nanoseconds, ``Z`` or an offset) as seconds; Python 3.10 reads 6 digits at most."""
    import re
    from datetime import datetime

    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text.strip())
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    return datetime.fromisoformat(f"{whole}.{((fraction or '') + '000000')[:6]}{zone}").timestamp()


def engine_now(api: docker.APIClient) -> float:
    """The engine's clock: runs on several machines share a relay, and their clocks may disagree."""
    try:
        told = docker_seconds(str(api.info().get("SystemTime", "")))
    except Exception:
        told = None
    return told if told is not None else time.time()


def _being_started(found: dict[str, Any], now: float) -> bool:
    """Created by a run a moment ago (by the engine's clock), and not started yet: that run starts it."""
    if (found.get("State") or {}).get("Status") != "created":
        return False
    created = docker_seconds(str(found.get("Created", "")))
    return created is not None and now - created < CREATED_GRACE


def _wait_gone(api: docker.APIClient, name: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _container(api, name) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def relay_logs(api: docker.APIClient, name: str) -> str:
    """The relay's last words, for an error: why it could not listen, say."""
    import docker.errors

    try:
        text = api.logs(name, stdout=True, stderr=True, tail=5).decode(errors="replace").strip()
    except docker.errors.APIError:
        return ""
    return text.splitlines()[-1] if text else ""


def relay_leftovers(api: docker.APIClient, now: float | None = None) -> list[Resource]:
    """Relay containers that do not run (one never started, or not removed by Docker), for the sweep."""

    found = []
    listed = [c for c in api.containers(all=True, filters={"label": LABEL_RELAY}) if c.get("State") != "running"]
    now = engine_now(api) if listed and now is None else (now or 0.0)
    for c in listed:
        labels = c.get("Labels") or {}
        if now - float(c.get("Created") or 0) < LEFT_BEHIND_AFTER:
            continue  # being started by a run right now (the engine's own creation time)
        found.append(Resource("container", c["Id"], (c.get("Names") or [c["Id"]])[0].lstrip("/"), labels))
    return found


def relay_running(api: docker.APIClient) -> bool:
    return bool(api.containers(filters={"label": LABEL_RELAY, "status": "running"}))


def _sendall(stream: Any, data: bytes) -> None:
    """Write to the stream docker-py hands back: a socket, or a SocketIO around one (a local socket)."""
    target: Any = stream._sock if isinstance(stream, socket.SocketIO) else stream  # type: ignore[attr-defined]
    target.sendall(data)


def _close(stream: Any) -> None:
    """Close the connection itself: docker-py's response keeps a SocketIO's socket open after close()."""
    target: Any = stream._sock if isinstance(stream, socket.SocketIO) else stream  # type: ignore[attr-defined]
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        stream.close()


class Channel:
    """One relayed connection: our end of the socket pair whose other end the server's handler holds."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.sent_eof = False  # the handler is done writing: EOF went to the relay
        self.got_eof = False  # the container is done writing

    def done(self) -> bool:
        return self.sent_eof and self.got_eof


class RelayLink:
    """The run's stream to the relay, and the connections it carries."""

    def __init__(
        self,
        api: docker.APIClient,
        server: Server,
        *,
        image: str,
        port: int,
        pull: str,
        run: str,
        routes: Callable[[], Iterable[str]],
        log: Callable[[str], None],
    ) -> None:
        self.api = api
        self.server = server
        self.image = image
        self.port = port
        self.pull = pull
        self.run = run
        self.routes = routes
        self.log = log
        self.name = relay_name()
        self.relay_port = 0
        self.port_refused = ""
        self.stream: Any = None
        self._pending: Iterable[tuple[int, int, bytes]] = ()
        self.write_lock = threading.Lock()
        self.routes_lock = threading.Lock()
        self.channels: dict[int, Channel] = {}
        self.stopping = False
        self.connected = threading.Event()

    # -- connecting

    def start(self, timeout: float = START_TIMEOUT) -> int:
        """Run the relay, connect, and keep the stream up from a thread; returns the port the relay listens on."""
        self._connect(timeout)
        threading.Thread(target=self._keep_up, name="relay-link", daemon=True).start()
        return self.relay_port

    def _connect(self, timeout: float, restarted: bool = False) -> None:
        deadline = time.monotonic() + timeout
        # Once known, the relay's port is the one to keep: the run's containers were told it.
        port = self.relay_port or self.port
        while True:
            try:
                ensure_relay(self.api, self.image, port, self.pull, restarted)
                self._open()
                return
            except RelayFailed:
                raise
            except (OSError, RelayUnavailable, relay.ProtocolError, ValueError) as exc:
                # Not up yet, or going: a relay just started has no socket yet, and an exec in a container
                # that stops is answered with an error text instead of a stream.
                why = str(exc)
            if time.monotonic() > deadline:
                last = relay_logs(self.api, self.name)
                raise RelayUnavailable(f"could not connect to the relay {self.name}: {last or why}")
            time.sleep(0.2)

    def _open(self) -> None:
        """An exec of ``connect`` in the relay, greeted: its port is then known."""
        import docker.errors

        try:
            exec_id = self.api.exec_create(
                self.name, ["python3", RELAY_PATH, "connect"], stdin=True, stdout=True, stderr=True, tty=False
            )["Id"]
            stream = self.api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as exc:
            raise RelayUnavailable(str(exc.explanation or exc)) from None
        frames = self._frames(stream)
        # A relay that never answers must not hold the run: the stream is shut after a while.
        watchdog = threading.Timer(HELLO_TIMEOUT, _close, args=(stream,))
        watchdog.start()
        try:
            hello = self._hello(stream, frames)
        except BaseException:
            _close(stream)  # its connect process must go, or the relay would wait for it
            raise
        finally:
            watchdog.cancel()
        if hello.get("error"):
            _close(stream)
            raise RelayFailed(f"the relay {self.name} {hello['error']}")
        if self.relay_port and int(hello["port"]) != self.relay_port:
            self.log(
                f"the relay now listens on port {hello['port']}, not {self.relay_port}: this run's containers "
                "cannot reach their endpoints until it listens there again"
            )
        else:
            self.relay_port, self.port_refused = int(hello["port"]), str(hello.get("port_refused") or "")
        self.stream, self._pending = stream, frames
        self.send_routes()
        self.connected.set()

    def _hello(self, stream: Any, frames: Iterable[tuple[int, int, bytes]]) -> dict[str, Any]:
        _sendall(stream, relay.json_frame(relay.HELLO, 0, {"run": self.run}))
        for kind, _, payload in frames:
            if kind == relay.HELLO:
                return dict(json.loads(payload))
        raise RelayUnavailable("the relay closed the stream before it answered")

    def _frames(self, stream: Any) -> Iterable[tuple[int, int, bytes]]:
        """The relay's frames from the exec's stdout; its stderr (``connect`` failing) goes to the log."""
        from docker.utils.socket import frames_iter

        reader = relay.FrameReader()
        for kind, data in frames_iter(stream, tty=False):
            if kind == 2:
                self.log(data.decode(errors="replace").strip())
                continue
            yield from reader.feed(data)

    def _keep_up(self) -> None:
        """Serve the stream; when it ends while the run goes on, start a relay again and reconnect."""
        while not self.stopping:
            try:
                for kind, channel, payload in self._pending:
                    self._on_frame(kind, channel, payload)
            except Exception as exc:  # the stream broke: the link reconnects below
                self.log(f"the stream to the relay broke: {type(exc).__name__}: {exc}")
            self.connected.clear()
            self._drop_channels()
            if self.stopping:
                return
            self.log(f"the relay {self.name} went away: starting it again")
            for delay in (*RECONNECT_DELAYS, *[RECONNECT_DELAYS[-1]] * 1000):
                if self.stopping:
                    return
                try:
                    self._connect(timeout=delay, restarted=True)
                    self.log(f"reconnected to the relay on port {self.relay_port}")
                    break
                except Exception as exc:  # whatever the engine says, the link goes on trying while the run lasts
                    self.log(f"could not reach the relay: {type(exc).__name__}: {exc}")
                    time.sleep(delay)

    def wait_relay_gone(self, timeout: float = relay.IDLE_EXIT + 3.0) -> bool:
        """After ``close``: whether the relay left (this run was its last), waiting a little for it."""
        deadline = time.monotonic() + timeout
        while relay_running(self.api):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def close(self) -> None:
        """The run is over: close the stream (the relay forgets the run, and exits if it was the last)."""
        self.stopping = True
        stream, self.stream = self.stream, None
        if stream is not None:
            _close(stream)
        self._drop_channels()

    # -- frames both ways

    def _send(self, data: bytes) -> bool:
        stream = self.stream
        if stream is None:
            return False
        try:
            with self.write_lock:
                _sendall(stream, data)
            return True
        except OSError:
            return False

    def send_routes(self) -> None:
        """Tell the relay every id the run serves now (after each change of the server's tasks).

        Read and sent under one lock: two registrations at once must not leave the older list last.
        """
        with self.routes_lock:
            self._send(relay.json_frame(relay.ROUTES, 0, sorted(self.routes())))

    def _on_frame(self, kind: int, channel: int, payload: bytes) -> None:
        if kind == relay.OPEN:
            self._open_channel(channel, json.loads(payload))
            return
        found = self.channels.get(channel)
        if found is None:
            return
        if kind == relay.DATA:
            try:
                found.sock.sendall(payload)
            except OSError:
                self._send(relay.frame(relay.CLOSE, channel))
                self._forget(channel)
        elif kind == relay.EOF:
            with found.lock:
                found.got_eof = True
                with contextlib.suppress(OSError):
                    found.sock.shutdown(socket.SHUT_WR)
            self._forget_if_done(channel)
        elif kind == relay.CLOSE:
            self._forget(channel)

    def _open_channel(self, channel: int, opened: dict[str, Any]) -> None:
        ours, theirs = socket.socketpair()
        self.channels[channel] = Channel(ours)
        # The server sees the container's address, and whether it is the engine host's own (a host-mode task).
        address = (str(opened.get("peer", "")), int(opened.get("port", 0)), bool(opened.get("local")))
        threading.Thread(target=self._handle, args=(theirs, address), daemon=True).start()
        threading.Thread(target=self._pump, args=(channel, ours), daemon=True).start()

    def _handle(self, request: socket.socket, address: tuple[str, int, bool]) -> None:
        try:
            self.server.finish_request(request, address)
        except Exception:  # the handler failed: the connection closes, the server goes on
            pass
        finally:
            self.server.shutdown_request(request)

    def _pump(self, channel: int, sock: socket.socket) -> None:
        """The handler's bytes to the relay, as DATA frames, then EOF."""
        while True:
            try:
                data = sock.recv(relay.MAX_PAYLOAD)
            except OSError:
                data = b""
            if not data:
                break
            if not self._send(relay.frame(relay.DATA, channel, data)):
                self._forget(channel)
                return
        found = self.channels.get(channel)
        if found is None:
            return
        with found.lock:
            found.sent_eof = True
        self._send(relay.frame(relay.EOF, channel))
        self._forget_if_done(channel)

    def _forget_if_done(self, channel: int) -> None:
        found = self.channels.get(channel)
        if found is not None and found.done():
            self._forget(channel)

    def _forget(self, channel: int) -> None:
        found = self.channels.pop(channel, None)
        if found is not None:
            with contextlib.suppress(OSError):
                found.sock.shutdown(socket.SHUT_RDWR)  # wakes the pump and the handler, which a close would not
            with contextlib.suppress(OSError):
                found.sock.close()

    def _drop_channels(self) -> None:
        for channel in list(self.channels):
            self._forget(channel)
