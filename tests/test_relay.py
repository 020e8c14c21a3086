"""The relay program on its own: frames, routing, and a relay on loopback with runs played by the test.

No Docker: the relay listens on 127.0.0.1 instead of 169.254.170.2, and each "run" is a connection to its
socket that speaks frames, as a run's exec stream does through ``connect``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_ecstask import relay
from pytest_ecstask.relay import CLOSE, DATA, EOF, HELLO, OPEN, ROUTES, FrameReader, ProtocolError, frame

# -- frames and routing --------------------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(relay.KINDS)), st.integers(0, 2**32 - 1), st.binary(max_size=300)),
        max_size=8,
    ),
    st.lists(st.integers(1, 50), min_size=1, max_size=20),
)
def test_frames_come_out_as_they_went_in_whatever_the_pieces(frames: list[Any], cuts: list[int]) -> None:
    stream = b"".join(frame(*f) for f in frames)
    reader, got, at = FrameReader(), [], 0
    for cut in cuts * (len(stream) // max(sum(cuts), 1) + 1):
        got += reader.feed(stream[at : at + cut])
        at += cut
    got += reader.feed(stream[at:])
    assert got == frames and reader.buffer == b""


def test_a_stream_that_is_not_frames_is_refused() -> None:
    with pytest.raises(ProtocolError, match="kind 71"):
        FrameReader().feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(ProtocolError, match="length"):
        FrameReader().feed(relay.HEADER.pack(DATA, 1, relay.MAX_PAYLOAD + 1))
    with pytest.raises(ValueError, match="at most"):
        frame(DATA, 1, b"x" * (relay.MAX_PAYLOAD + 1))
    assert relay.data_frames(3, b"x" * (relay.MAX_PAYLOAD + 1)).count(relay.HEADER.pack(DATA, 3, 1)) == 1


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("/v4/abc", "abc"),
        ("/v4/abc/task", "abc"),
        ("/v4/abc/taskWithTags?x=1", "abc"),
        ("/v3/def/stats", "def"),
        ("/v2/credentials/ghi", "ghi"),
        ("/v2/credentials/", None),
        ("/v2/credentials", None),
        ("/v4/", None),
        ("/", None),
        ("/_ecstask/ping", None),
    ],
)
def test_the_id_that_routes_a_request(path: str, wanted: str | None) -> None:
    assert relay.route_id(path) == wanted


def test_request_lines_and_control_paths() -> None:
    assert relay.request_path(b"GET /v4/x HTTP/1.1\r\nHost: a\r\n") == "/v4/x"
    assert relay.request_path(b"GET /v4/x HTTP/1.1") is None  # not yet complete
    assert relay.request_path(b"GET /v4/x HTTP/1.0\nHost: a\n") == "/v4/x"
    assert relay.request_path(b"\r\n") == ""
    assert relay.is_control("/_ecstask/tasks") and relay.is_control("/_ecstask?x") and not relay.is_control("/v4/x")


# -- a relay on loopback ---------------------------------------------------------------------------------------


class PlayedRun:
    """A run's end of the stream, played by the test: it answers each connection with a fixed body."""

    def __init__(self, socket_path: str, name: str, routes: list[str], answer: bytes = b"") -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(socket_path)
        self.name = name
        self.answer = answer or f"HTTP/1.1 200 OK\r\nContent-Length: {len(name)}\r\n\r\n{name}".encode()
        self.reader = FrameReader()
        self.opened: list[dict[str, Any]] = []
        self.received: dict[int, bytes] = {}
        self.eofs: set[int] = set()
        self.closed: set[int] = set()
        self.auto_answer = True
        self.sock.sendall(relay.json_frame(HELLO, 0, {"run": name}))
        kind, _, payload = self.next_frame()
        assert kind == HELLO
        self.hello = json.loads(payload)
        self.sock.sendall(relay.json_frame(ROUTES, 0, routes))
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def next_frame(self) -> tuple[int, int, bytes]:
        while True:
            frames = self.reader.feed(b"")
            if frames:
                self.reader.buffer = b"".join(frame(*f) for f in frames[1:]) + self.reader.buffer
                return frames[0]
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.reader.buffer += data

    def serve(self) -> None:
        try:
            while True:
                kind, channel, payload = self.next_frame()
                if kind == OPEN:
                    self.opened.append(json.loads(payload))
                    self.received[channel] = b""
                elif kind == DATA:
                    self.received[channel] += payload
                    if self.auto_answer and b"\r\n\r\n" in self.received[channel]:
                        self.sock.sendall(relay.data_frames(channel, self.answer) + frame(EOF, channel))
                elif kind == EOF:
                    self.eofs.add(channel)
                elif kind == CLOSE:
                    self.closed.add(channel)
        except (EOFError, OSError):
            return

    def leave(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread reading it: a close alone would wait for it
        self.sock.close()


@pytest.fixture
def loopback_relay(tmp_path: Path) -> Iterator[tuple[relay.Relay, str]]:
    path = str(tmp_path / "relay.sock")
    served = relay.Relay("127.0.0.1", 0, path, idle_exit=0.3)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(served.serve()), daemon=True)
    thread.start()
    yield served, path
    served.stopping = True
    thread.join(5)


def ask(port: int, path: str, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 169.254.170.2\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_each_connection_goes_to_the_run_that_serves_its_id(loopback_relay: Any) -> None:
    served, path = loopback_relay
    first = PlayedRun(path, "first", ["m1", "c1"])
    second = PlayedRun(path, "second", ["m2"])
    assert first.hello == {"port": served.port, "version": relay.VERSION, "port_refused": "", "error": ""}
    assert ask(served.port, "/v4/m2/task").endswith(b"second")
    assert ask(served.port, "/v2/credentials/c1").endswith(b"first")
    assert ask(served.port, "/v3/m1").endswith(b"first")
    # The run is told where the connection came from, and that it is this host's own address.
    assert first.opened[0] == {"peer": "127.0.0.1", "port": first.opened[0]["port"], "local": True}
    assert [len(r.opened) for r in (first, second)] == [2, 1]
    # New routes replace the old ones.
    first.sock.sendall(relay.json_frame(ROUTES, 0, ["m3"]))
    wait_for(lambda: any(r.routes == {"m3"} for r in served.runs))
    assert ask(served.port, "/v4/m3").endswith(b"first")


def test_the_request_reaches_the_run_byte_for_byte_and_half_closes_both_ways(loopback_relay: Any) -> None:
    served, path = loopback_relay
    run = PlayedRun(path, "only", ["m1"])
    run.auto_answer = False
    request = b"POST /v4/m1 HTTP/1.1\r\nContent-Length: 70000\r\n\r\n" + bytes(range(256)) * 273 + b"tail"
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)  # the container is done writing: the run gets EOF, the answer still comes
        wait_for(lambda: run.eofs)
        (channel,) = run.received
        assert run.received[channel] == request
        run.sock.sendall(relay.data_frames(channel, b"answer") + frame(EOF, channel))
        assert conn.recv(100) == b"answer" and conn.recv(100) == b""
    wait_for(lambda: not served.clients)


def test_an_unknown_id_goes_to_a_run_and_control_paths_never_leave_the_relay(loopback_relay: Any) -> None:
    served, path = loopback_relay
    run = PlayedRun(path, "only", ["m1"])
    assert ask(served.port, "/v4/nobody-knows").endswith(b"only")  # the run answers as the agent does
    refused = ask(served.port, "/_ecstask/tasks")
    assert refused.startswith(b"HTTP/1.1 404") and b"404 page not found" in refused
    assert len(run.opened) == 1


def test_without_a_run_a_request_fails_at_once(loopback_relay: Any) -> None:
    served, _ = loopback_relay
    started = time.monotonic()
    answer = ask(served.port, "/v4/m1")
    assert answer.startswith(b"HTTP/1.1 503") and b"no run is connected" in answer
    assert time.monotonic() - started < 1.0


def test_a_run_that_leaves_drops_its_connections_and_the_last_one_out_ends_the_relay(tmp_path: Path) -> None:
    path = str(tmp_path / "relay.sock")
    served = relay.Relay("127.0.0.1", 0, path, idle_exit=0.3)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(served.serve()), daemon=True)
    thread.start()
    run = PlayedRun(path, "only", ["m1"])
    run.auto_answer = False
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(b"GET /v4/m1 HTTP/1.1\r\n\r\n")
        wait_for(lambda: run.opened)
        run.leave()
        assert conn.recv(100) == b""  # closed, not left hanging
    thread.join(5)
    assert result == [0] and not thread.is_alive()


def test_a_container_that_goes_away_is_closed_at_the_run(loopback_relay: Any) -> None:
    served, path = loopback_relay
    run = PlayedRun(path, "only", ["m1"])
    run.auto_answer = False
    conn = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    conn.sendall(b"GET /v4/m1 HTTP/1.1\r\n\r\n")
    wait_for(lambda: run.opened)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset on close
    conn.close()
    wait_for(lambda: run.closed or run.eofs)


def test_a_relay_that_cannot_listen_tells_every_run_why(tmp_path: Path) -> None:
    served = relay.Relay("192.0.2.1", 0, str(tmp_path / "relay.sock"))  # TEST-NET-1: not this host's
    thread = threading.Thread(target=served.serve, daemon=True)
    thread.start()
    try:
        run = PlayedRun(str(tmp_path / "relay.sock"), "only", [])
        assert run.hello["port"] == 0 and "cannot listen on 192.0.2.1:any port" in run.hello["error"]
    finally:
        served.stopping = True
        thread.join(5)


def test_a_port_taken_falls_back_to_any_port_and_says_why(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        served = relay.Relay("127.0.0.1", port, str(tmp_path / "relay.sock"))
        try:
            assert served.port not in (0, port) and f"cannot listen on 127.0.0.1:{port}" in served.port_refused
            assert not served.error
        finally:
            assert served.listener is not None
            served.listener.close()


def test_the_relay_program_runs_on_any_python3_from_3_8_with_the_standard_library_alone() -> None:
    import ast
    import sys

    source = Path(relay.__file__).read_text()
    tree = ast.parse(source, feature_version=(3, 8))  # refuses newer syntax (match, except*, ...)
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)
    # Methods of newer releases than 3.8, which a syntax check cannot see.
    assert not [name for name in (".removeprefix(", ".removesuffix(", "strict=") if name in source]


def test_a_relay_another_run_just_created_is_left_for_it_to_start() -> None:
    from pytest_ecstask.relaylink import _being_started, docker_seconds

    def container(status: str, created: str) -> dict[str, Any]:
        return {"State": {"Status": status, "Running": status == "running"}, "Created": created}

    now = docker_seconds("2026-12-06T10:00:05.5Z")
    assert now is not None
    # By the engine's clock, whatever this machine's says.
    assert _being_started(container("created", "2026-12-06T10:00:00.123456789Z"), now)
    assert not _being_started(container("created", "2026-12-06T09:59:00Z"), now)  # never started: replaced
    assert not _being_started(container("exited", "2026-12-06T10:00:00Z"), now)
    assert not _being_started(container("created", ""), now)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-12-06T10:00:00Z", 1796551200.0),
        ("2026-12-06T10:00:00.123456789Z", 1796551200.123456),
        ("2026-12-06T11:00:00.5+01:00", 1796551200.5),
        ("2026-12-06T10:00:00", 1796551200.0),
        ("not a time", None),
        ("", None),
    ],
)
def test_docker_times_are_read_with_nanoseconds_and_offsets(text: str, seconds: float | None) -> None:
    from pytest_ecstask.relaylink import docker_seconds

    assert docker_seconds(text) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    "path", ["/_ecstask/ping", "//_ecstask/ping", "/./_ecstask/tasks", "/%5Fecstask/ping", "/_ECSTASK"]
)
def test_control_paths_are_refused_however_spelled(path: str) -> None:
    assert relay.is_control(path)


def test_the_log_shows_no_ids() -> None:
    assert relay.shown("/v2/credentials/secret-id?x") == "/v2/credentials"
    assert relay.shown("/v4/metadata-id/task") == "/v4"


def test_a_run_that_sends_a_frame_it_cannot_read_is_dropped_and_the_relay_goes_on(loopback_relay: Any) -> None:
    served, path = loopback_relay
    good = PlayedRun(path, "good", ["m1"])
    for payload in (b"5", b"not json", b'{"x": 1}'):
        bad = PlayedRun(path, "bad", [])
        bad.sock.sendall(frame(ROUTES, 0, payload))
        wait_for(lambda: len(served.runs) == 1)
    assert ask(served.port, "/v4/m1").endswith(b"good") and good.hello["error"] == ""


def test_a_connection_that_sends_too_much_is_dropped(loopback_relay: Any) -> None:
    served, path = loopback_relay
    run = PlayedRun(path, "only", ["m1"])
    run.auto_answer = False
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(b"GET /v4/m1 HTTP/1.1\r\n")
        wait_for(lambda: run.opened)
        with pytest.raises(OSError):
            for _ in range(2 * relay.MAX_REQUEST // 65536 + 10):
                conn.sendall(b"x" * 65536)
            conn.recv(1)  # closed by the relay
            raise ConnectionResetError
    wait_for(lambda: run.closed)
    assert max(len(b) for b in run.received.values()) <= relay.MAX_REQUEST + 65536


def test_a_relay_that_replaces_one_that_died_keeps_unknown_ids_for_the_runs_that_reconnect(tmp_path: Path) -> None:
    path = str(tmp_path / "relay.sock")
    served = relay.Relay("127.0.0.1", 0, path, restarted=True)
    thread = threading.Thread(target=served.serve, daemon=True)
    thread.start()
    try:
        first_back = PlayedRun(path, "first", ["m1"])
        answer = ask(served.port, "/v4/m2")  # another run's, not back yet: not "unknown" from the first
        assert answer.startswith(b"HTTP/1.1 503") and b"reconnecting" in answer and not first_back.opened
        assert ask(served.port, "/v4/m1").endswith(b"first")
    finally:
        served.stopping = True
        thread.join(5)


def test_while_a_run_reconnects_its_ids_are_not_answered_by_another_run(loopback_relay: Any) -> None:
    served, path = loopback_relay
    away = PlayedRun(path, "away", ["m1"])
    other = PlayedRun(path, "other", ["m2"])
    away.leave()
    wait_for(lambda: len(served.runs) == 1)
    answer = ask(served.port, "/v4/m1/task")
    assert answer.startswith(b"HTTP/1.1 503") and b"reconnecting" in answer and not other.opened
    assert ask(served.port, "/v4/never-served").endswith(b"other")  # unknown ids still go to a run
    back = PlayedRun(path, "back", ["m1"])
    assert back.hello["error"] == ""
    assert ask(served.port, "/v4/m1/task").endswith(b"back") and not served.left
