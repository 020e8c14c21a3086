"""The relay: a small program on the engine that carries connections to 169.254.170.2 back to the runs.

Used where no server on the machine that runs pytest can own 169.254.170.2 where the containers are: Docker
Desktop, a remote or SSH engine, a rootless engine. The relay runs in a container with the engine host's
network, where the endpoint network's bridge owns the address, and listens there as a local server would:
containers of every network mode reach it, and the SDKs trust the address.

It needs no route back to the test machine. Each run's endpoint server opens a stream to it through the
Docker API: an exec of this program's ``connect`` in the relay container, whose stdin and stdout it holds.
The relay sends each connection down the stream of the run that serves the id in the request's path, in
frames (``frame``, ``FrameReader``). The HTTP answers stay in the run, with its handlers, its live state and
its tokens; the relay carries bytes, and says where they came from.

One relay per engine, shared by the runs on it. It exits when its last run leaves (or when none comes), and
Docker removes it then: nothing of it outlives the runs.

Standalone: this file is copied into the relay container and run by the image's python3 (3.8 or newer), so
it imports the standard library only. The plugin imports it for the frame format and the routing rule.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time

VERSION = 1
ENDPOINT_IP = "169.254.170.2"
SOCKET_PATH = "/tmp/pytest-ecstask-relay.sock"  # where the runs' ``connect`` execs reach the relay
HEADER = struct.Struct("!BII")  # kind, channel, payload length
MAX_PAYLOAD = 1 << 16
MAX_HEAD = 16 << 10  # a request's line and headers: the relay reads no further to route it
MAX_BUFFERED = 8 << 20  # bytes held for a connection whose reader is slow: beyond it, it is dropped
MAX_REQUEST = 1 << 20  # bytes a container may send on one connection (metadata requests are small)
MAX_CLIENTS = 512  # connections at once; more are closed at once, so one container cannot starve the rest
IDLE_CONNECTION = 120.0  # seconds a connection may stay without traffic
HEAD_TIMEOUT = 10.0
IDLE_EXIT = 1.0  # seconds without a run, once one has been connected
FIRST_RUN_WAIT = 60.0  # seconds for the first run to connect, after the relay starts
RECONNECT_GRACE = 30.0  # seconds the ids of a run whose stream went stay its own (it reconnects)
FAILED_LINGER = 10.0  # seconds a relay that cannot listen stays, to tell the runs that connect why

# Frame kinds. Channel 0 is the stream itself: HELLO both ways, then ROUTES from the run.
HELLO = 1  # run -> relay {"run": name}; relay -> run {"port": port, "version": VERSION}
ROUTES = 2  # run -> relay: the ids it serves (a JSON list; replaces what it sent before)
OPEN = 3  # relay -> run: a connection {"peer": address, "port": port, "local": bool}; its bytes follow
DATA = 4  # both ways: bytes of a connection
EOF = 5  # both ways: the sender will send no more bytes on this connection
CLOSE = 6  # both ways: the connection is gone (reset, or dropped)
KINDS = {HELLO, ROUTES, OPEN, DATA, EOF, CLOSE}


class ProtocolError(Exception):
    """The stream carries something that is not a frame of this version: it cannot be trusted further."""


def frame(kind: int, channel: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a frame carries at most {MAX_PAYLOAD} bytes, not {len(payload)}")
    return HEADER.pack(kind, channel, len(payload)) + payload


def data_frames(channel: int, data: bytes) -> bytes:
    """``data`` as DATA frames of at most MAX_PAYLOAD bytes each."""
    return b"".join(frame(DATA, channel, data[i : i + MAX_PAYLOAD]) for i in range(0, len(data), MAX_PAYLOAD))


def json_frame(kind: int, channel: int, body: object) -> bytes:
    return frame(kind, channel, json.dumps(body).encode())


class FrameReader:
    """Frames out of a byte stream that arrives in pieces of any size."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """The frames ``data`` completes, as (kind, channel, payload); the rest waits for more bytes."""
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            kind, channel, length = HEADER.unpack_from(self.buffer)
            if kind not in KINDS or length > MAX_PAYLOAD:
                raise ProtocolError(f"not a relay frame (kind {kind}, length {length}): {self.buffer[:40]!r}")
            end = HEADER.size + length
            if len(self.buffer) < end:
                break
            frames.append((kind, channel, self.buffer[HEADER.size : end]))
            self.buffer = self.buffer[end:]
        return frames


def request_path(head: bytes) -> str | None:
    """The path of an HTTP request from its first bytes; None until the request line is complete."""
    line, found, _ = head.partition(b"\r\n")
    if not found:
        line, found, _ = head.partition(b"\n")
    if not found:
        return None
    parts = line.decode("latin-1").split()
    return parts[1] if len(parts) >= 2 else ""


def route_id(path: str) -> str | None:
    """The id that says which run serves a path: a metadata id (v3, v4) or a credentials id (v2)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "v2" and parts[1] == "credentials":
        return parts[2]
    if len(parts) >= 2 and parts[0] in ("v3", "v4"):
        return parts[1]
    return None


def is_control(path: str) -> bool:
    """Paths only the runs' own processes may use: never carried from a container, however spelled."""
    return "_ecstask" in path.lower() or "%5fecstask" in path.lower()


def shown(path: str) -> str:
    """A path for the log, without the id in it: credentials ids are secrets, and metadata ids lead to them."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    return "/" + "/".join(parts[:2] if parts[:2] == ["v2", "credentials"] else parts[:1])


def http_answer(status: int, reason: str, body: object) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + data


def listen(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    listener.setblocking(False)
    return listener


_local_addresses: dict[str, bool] = {}


def is_local(address: str) -> bool:
    """Whether ``address`` belongs to the host whose network the relay has: only a local one can be bound."""
    if address not in _local_addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        probe = socket.socket(family, socket.SOCK_DGRAM)
        try:
            probe.bind((address, 0))
            _local_addresses[address] = True
        except OSError:
            _local_addresses[address] = False
        finally:
            probe.close()
    return bool(_local_addresses[address])


def log(message: str) -> None:
    print(f"relay: {message}", file=sys.stderr, flush=True)


# -- the relay ----------------------------------------------------------------------------------------------


class Client:
    """A connection from a container: its head is read to route it, then its bytes go to one run."""

    def __init__(self, sock: socket.socket, peer: tuple[str, int], channel: int) -> None:
        self.sock = sock
        self.peer = peer
        self.channel = channel
        self.head = b""
        self.run: Run | None = None
        self.out = bytearray()  # bytes from the run, waiting for the container to read them
        self.received = 0
        self.eof_out = False  # the run sent EOF: shut the write side once ``out`` is written
        self.read_done = False
        self.write_done = False
        self.deadline = time.monotonic() + HEAD_TIMEOUT
        self.events = selectors.EVENT_READ  # what the selector watches for (0: unregistered)


class Run:
    """A run's stream: an exec of ``connect`` in this container, reached through the relay's socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.name = "?"
        self.reader = FrameReader()
        self.out = bytearray()
        self.routes: set[str] = set()
        self.greeted = False


class Relay:
    def __init__(
        self, address: str, port: int, socket_path: str, idle_exit: float = IDLE_EXIT, restarted: bool = False
    ) -> None:
        self.selector = selectors.DefaultSelector()
        self.address = address
        self.port_refused = ""  # why the port asked for could not be had, when another was taken
        self.error = ""  # why the relay cannot listen at all: every run that connects is told
        self.listener: socket.socket | None = None
        for candidate in (port, 0) if port else (0,):
            try:
                self.listener = listen(address, candidate)
                break
            except OSError as exc:
                reason = f"cannot listen on {address}:{candidate or 'any port'}: {exc.strerror or exc}"
                self.port_refused = self.port_refused or reason
                self.error = reason
        self.port = self.listener.getsockname()[1] if self.listener is not None else 0
        if self.listener is not None:
            self.error = ""
            self.selector.register(self.listener, selectors.EVENT_READ, "client")
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self.backend_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.backend_listener.bind(socket_path)
        self.backend_listener.listen(16)
        self.backend_listener.setblocking(False)
        self.selector.register(self.backend_listener, selectors.EVENT_READ, "run")
        self.clients: dict[int, Client] = {}
        self.runs: list[Run] = []
        self.next_channel = 1
        self.idle_exit = idle_exit
        self.started = time.monotonic()
        self.had_run = False
        self.last_run_left = 0.0
        self.stopping = False
        self.left: dict[str, float] = {}  # ids of runs whose stream went, until when they may come back
        # A relay that replaces one that died: until then, an id no run serves may be a reconnecting run's.
        self.restarted_until = self.started + RECONNECT_GRACE if restarted else 0.0
        self.accepting_from = 0.0  # accepting paused (out of file descriptors) until then

    # -- the loop

    def serve(self) -> int:
        if self.error:
            log(f"{self.error}: telling the runs that connect, for {FAILED_LINGER:.0f} seconds")
        else:
            refused = f" ({self.port_refused})" if self.port_refused else ""
            log(f"listening on {self.address}:{self.port}{refused} (protocol {VERSION})")
        while not self.stopping:
            for key, events in self.selector.select(timeout=0.5):
                self.dispatch(key, events)
            self.expire_heads()
            if self.idle():
                log("no run is connected any more: exiting")
                return 0
        return 0

    def idle(self) -> bool:
        if self.runs:
            return False
        now = time.monotonic()
        if self.error:
            return now - self.started > FAILED_LINGER
        if self.had_run:
            return now - self.last_run_left > self.idle_exit
        return now - self.started > FIRST_RUN_WAIT

    def dispatch(self, key: selectors.SelectorKey, events: int) -> None:
        what = key.data
        if what == "client":
            self.accept_client()
        elif what == "run":
            self.accept_run()
        elif isinstance(what, Client):
            if events & selectors.EVENT_WRITE:
                self.write_client(what)
            if events & selectors.EVENT_READ and what.channel in self.clients:
                self.read_client(what)
        elif isinstance(what, Run):
            if events & selectors.EVENT_WRITE:
                self.write_run(what)
            if events & selectors.EVENT_READ and what in self.runs:
                self.read_run(what)

    def expire_heads(self) -> None:
        """Drop connections that sent no request in time, or went quiet; take up accepting again."""
        now = time.monotonic()
        for client in list(self.clients.values()):
            if now > client.deadline:
                self.drop_client(client, tell_run=True)
        if self.listener is not None and self.accepting_from and now > self.accepting_from:
            self.accepting_from = 0.0
            self.selector.register(self.listener, selectors.EVENT_READ, "client")

    # -- containers' connections

    def accept_client(self) -> None:
        if self.listener is None:
            return
        try:
            sock, peer = self.listener.accept()
        except BlockingIOError:
            return
        except OSError as exc:  # out of file descriptors, say: pause, instead of spinning on a readable listener
            log(f"cannot accept connections ({exc}): pausing for a second")
            self.selector.unregister(self.listener)
            self.accepting_from = time.monotonic() + 1.0
            return
        if len(self.clients) >= MAX_CLIENTS:
            sock.close()
            return
        sock.setblocking(False)
        client = Client(sock, peer, self.next_channel)
        self.next_channel += 1
        self.clients[client.channel] = client
        self.selector.register(sock, selectors.EVENT_READ, client)

    def read_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(MAX_PAYLOAD)
        except BlockingIOError:
            return
        except OSError:
            self.drop_client(client, tell_run=True)
            return
        client.received += len(data)
        client.deadline = time.monotonic() + (IDLE_CONNECTION if client.run is not None else HEAD_TIMEOUT)
        if client.received > MAX_REQUEST:
            log(f"a connection from {client.peer[0]} sent more than {MAX_REQUEST} bytes: dropped")
            self.drop_client(client, tell_run=True)
            return
        if client.run is None:
            if not data:
                self.drop_client(client)
                return
            client.head += data
            self.route(client)
            return
        if not data:
            client.read_done = True
            self.send(client.run, frame(EOF, client.channel))
            self.update_client(client)
            return
        self.send(client.run, data_frames(client.channel, data))

    def route(self, client: Client) -> None:
        """Send the connection to the run that serves its path's id, once the request line is in."""
        path = request_path(client.head)
        if path is None:
            if len(client.head) > MAX_HEAD:
                self.answer(client, 400, "Bad Request", "the request line is too long")
            return
        if is_control(path):
            self.answer(client, 404, "Not Found", "404 page not found")
            return
        wanted = route_id(path)
        runs = [r for r in self.runs if r.greeted]
        serving = [r for r in runs if wanted in r.routes]
        now = time.monotonic()
        if not serving and wanted is not None and (self.left.get(wanted, 0.0) > now or now < self.restarted_until):
            # Its run's stream is down, or may be (this relay replaces one that died): the run reconnects, and
            # no other run may answer "unknown id" for it meanwhile.
            log(f"the run serving a request for {shown(path)} is away: answered 503 to {client.peer[0]}")
            self.answer(client, 503, "Service Unavailable", "pytest-ecstask relay: the task's run is reconnecting")
            return
        serving = serving or runs  # an unknown id: any run answers as ECS does
        if not serving:
            log(f"no run is connected: answered 503 to a request for {shown(path)} from {client.peer[0]}")
            self.answer(client, 503, "Service Unavailable", "pytest-ecstask relay: no run is connected")
            return
        client.run = serving[0]
        client.deadline = now + IDLE_CONNECTION
        opened = {"peer": client.peer[0], "port": client.peer[1], "local": is_local(client.peer[0])}
        self.send(client.run, json_frame(OPEN, client.channel, opened) + data_frames(client.channel, client.head))
        client.head = b""

    def answer(self, client: Client, status: int, reason: str, body: object) -> None:
        """The relay answers itself (no run can) and closes the connection once the answer is written."""
        client.run = None
        client.read_done = True
        client.out += http_answer(status, reason, body)
        client.eof_out = True
        client.deadline = time.monotonic() + HEAD_TIMEOUT
        self.update_client(client)

    def write_client(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.out)
        except BlockingIOError:
            return
        except OSError:
            self.drop_client(client, tell_run=True)
            return
        del client.out[:sent]
        self.update_client(client)

    def update_client(self, client: Client) -> None:
        """Shut the write side once the run's EOF is reached; forget the connection once both sides are done."""
        if not client.out and client.eof_out and not client.write_done:
            client.write_done = True
            with contextlib.suppress(OSError):
                client.sock.shutdown(socket.SHUT_WR)
        if client.read_done and client.write_done:
            self.drop_client(client)
            return
        events = 0 if client.read_done else selectors.EVENT_READ
        if client.out:
            events |= selectors.EVENT_WRITE
        if events == client.events:
            return
        if not client.events:
            self.selector.register(client.sock, events, client)
        elif not events:
            self.selector.unregister(client.sock)
        else:
            self.selector.modify(client.sock, events, client)
        client.events = events

    def drop_client(self, client: Client, tell_run: bool = False) -> None:
        if self.clients.pop(client.channel, None) is None:
            return
        if tell_run and client.run is not None and client.run in self.runs:
            self.send(client.run, frame(CLOSE, client.channel))
        if client.events:
            self.selector.unregister(client.sock)
        client.sock.close()

    # -- the runs' streams

    def accept_run(self) -> None:
        try:
            sock, _ = self.backend_listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        run = Run(sock)
        self.runs.append(run)
        self.had_run = True
        self.selector.register(sock, selectors.EVENT_READ, run)

    def read_run(self, run: Run) -> None:
        try:
            data = run.sock.recv(1 << 18)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop_run(run, "left")
            return
        try:
            frames = run.reader.feed(data)
        except ProtocolError as exc:
            self.drop_run(run, f"sent something else than frames ({exc})")
            return
        for kind, channel, payload in frames:
            try:
                self.on_frame(run, kind, channel, payload)
            except (ValueError, TypeError, AttributeError) as exc:  # not JSON, or not the JSON of a frame
                self.drop_run(run, f"sent a frame the relay cannot read ({type(exc).__name__}: {exc})")
                return

    def on_frame(self, run: Run, kind: int, channel: int, payload: bytes) -> None:
        if kind in (HELLO, ROUTES):
            self.on_stream_frame(run, kind, payload)
            return
        client = self.clients.get(channel)
        if client is None or client.run is not run:
            return  # a connection already gone
        if kind == DATA:
            client.out += payload
            if len(client.out) > MAX_BUFFERED:
                self.drop_client(client, tell_run=True)
                return
        elif kind == EOF:
            client.eof_out = True
        elif kind == CLOSE:
            self.drop_client(client)
            return
        self.update_client(client)

    def on_stream_frame(self, run: Run, kind: int, payload: bytes) -> None:
        """The run says who it is (HELLO), or which ids it serves (ROUTES)."""
        if kind == HELLO:
            hello = json.loads(payload.decode() or "{}")
            if not isinstance(hello, dict):
                raise TypeError(f"a hello must be an object, not {type(hello).__name__}")
            run.name = str(hello.get("run", "?"))
            run.greeted = True
            answer = {"port": self.port, "version": VERSION, "port_refused": self.port_refused, "error": self.error}
            self.send(run, json_frame(HELLO, 0, answer))
            if not self.error:
                log(f"run {run.name} connected ({len(self.runs)} connected)")
            return
        routes = json.loads(payload.decode() or "[]")
        if not isinstance(routes, list):
            raise TypeError(f"routes must be a list, not {type(routes).__name__}")
        run.routes = {str(i) for i in routes}
        now = time.monotonic()
        self.left = {i: until for i, until in self.left.items() if until > now and i not in run.routes}

    def send(self, run: Run, data: bytes) -> None:
        run.out += data
        self.write_run(run)

    def write_run(self, run: Run) -> None:
        if run.out:
            try:
                sent = run.sock.send(run.out)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.drop_run(run, "is unreachable")
                return
            del run.out[:sent]
        if run not in self.runs:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if run.out else 0)
        self.selector.modify(run.sock, events, run)

    def drop_run(self, run: Run, why: str) -> None:
        if run not in self.runs:
            return
        self.runs.remove(run)
        self.last_run_left = time.monotonic()
        self.left.update(dict.fromkeys(run.routes, self.last_run_left + RECONNECT_GRACE))
        for client in [c for c in self.clients.values() if c.run is run]:
            self.drop_client(client)
        self.selector.unregister(run.sock)
        run.sock.close()
        if run.greeted:
            log(f"run {run.name} {why} ({len(self.runs)} connected)")


# -- connect: a run's end of the stream, inside the relay container -----------------------------------------


def connect(socket_path: str) -> int:
    """Carry bytes between this process's stdin and stdout (the run's exec stream) and the relay's socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError as exc:
        log(f"cannot reach the relay at {socket_path}: {exc}")
        return 2

    def stdin_to_relay() -> None:
        while True:
            data = os.read(0, 1 << 16)
            if not data:
                break
            sock.sendall(data)
        os._exit(0)  # the run closed its stream: the relay sees this end go

    threading.Thread(target=stdin_to_relay, daemon=True).start()
    while True:
        data = sock.recv(1 << 16)
        if not data:
            return 0
        view = memoryview(data)
        while view:
            written = os.write(1, view)
            view = view[written:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pytest-ecstask relay for the task metadata and credentials")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("--address", default=ENDPOINT_IP)
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--socket", default=SOCKET_PATH)
    serve.add_argument("--restarted", action="store_true", help="it replaces a relay that died")
    linked = commands.add_parser("connect")
    linked.add_argument("--socket", default=SOCKET_PATH)
    args = parser.parse_args(argv)
    if args.command == "connect":
        return connect(args.socket)
    relay = Relay(args.address, args.port, args.socket, restarted=args.restarted)

    def stop(signum: int, frame: object) -> None:
        relay.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return relay.serve()


if __name__ == "__main__":
    sys.exit(main())
