"""The Unix-socket front end, driven by blocking clients over a real socket."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from myna.api import const
from myna.api.socket import SocketFrontEnd, SocketUnavailable

if TYPE_CHECKING:
    # Annotations only: tests/ has no __init__.py, so conftest is not importable as a package.
    from conftest import LoopThread, RecordingEngine

Serve = Callable[..., SocketFrontEnd]


class Client:
    """A blocking JSON-lines client, as an appliance would write it."""

    def __init__(self, path: Path | str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, request: dict[str, Any]) -> None:
        self.send_raw(json.dumps(request).encode() + b"\n")

    def recv(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        event = json.loads(line)
        assert isinstance(event, dict)
        return event

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        self.send(request)
        return self.recv()

    def until_finished(self, job: int) -> list[dict[str, Any]]:
        events = []
        while True:
            event = self.recv()
            events.append(event)
            if event.get("event") == "finished" and event.get("job") == job:
                return events


@pytest.fixture
def serve(loop_thread: LoopThread, short_tmp: Path) -> Iterator[Serve]:
    """Start SocketFrontEnds on the test loop; stop them afterwards."""
    started: list[SocketFrontEnd] = []

    def start(engine: RecordingEngine, path: Path | None = None, **kwargs: Any) -> SocketFrontEnd:
        front = SocketFrontEnd(engine, path or short_tmp / "speech.sock", **kwargs)
        loop_thread.run(front.start())
        started.append(front)
        return front

    yield start
    for front in reversed(started):
        loop_thread.run(front.stop())


@pytest.fixture
def client(serve: Serve, engine: RecordingEngine) -> Iterator[Client]:
    """A client of a server on the default engine double."""
    front = serve(engine)
    c = Client(front.path)
    yield c
    c.close()


def assert_still_serving(c: Client) -> None:
    """The connection answers the next request."""
    event = c.call({"id": "next", "op": "status"})
    assert event["id"] == "next" and event["event"] == "result", event


# -- the happy path ------------------------------------------------------------------------


def test_speak_streams_queued_started_words_finished(client: Client) -> None:
    queued = client.call({"id": "r1", "op": "speak", "text": "hello big world", "options": {"priority": "message"}})
    assert queued == {"id": "r1", "event": "queued", "job": queued["job"]}
    job = queued["job"]
    assert isinstance(job, int) and job >= 1
    events = client.until_finished(job)
    assert [e["event"] for e in events] == ["started", "word", "word", "word", "finished"]
    assert all(e["id"] == "r1" and e["job"] == job for e in events)
    assert [(e["offset"], e["length"]) for e in events if e["event"] == "word"] == [(0, 5), (6, 3), (10, 5)]
    assert events[-1]["outcome"] == "done"


def test_options_reach_the_engine_validated(client: Client, engine: RecordingEngine) -> None:
    job = client.call({"id": 1, "op": "speak", "text": "hi", "options": {"voice": "joe", "rate": 2, "ssml": False}})["job"]
    client.until_finished(job)
    text, options = engine.calls[-1][1]
    assert text == "hi" and options.voice == "joe" and options.rate == 2.0 and options.ssml is False


def test_voices_and_status_results(client: Client) -> None:
    voices = client.call({"id": 7, "op": "voices"})
    assert voices == {
        "id": 7,
        "event": "result",
        "voices": [{"id": "amy", "name": "Amy", "language": "en-US"}, {"id": "joe", "name": "Joe", "language": "en-GB"}],
    }
    status = client.call({"id": 8.5, "op": "status"})
    assert status["id"] == 8.5 and status["event"] == "result"
    assert status["status"]["queue_max"] == 8 and status["status"]["busy"] is False


def test_request_without_id_is_answered_with_null_id(client: Client) -> None:
    assert client.call({"op": "voices"})["id"] is None


def test_stop_one_job_and_all(serve: Serve, make_engine: Callable[..., RecordingEngine]) -> None:
    engine = make_engine(hold=True)
    c = Client(serve(engine).path)
    try:
        first = c.call({"id": "a", "op": "speak", "text": "one"})["job"]
        second = c.call({"id": "b", "op": "speak", "text": "two"})["job"]
        assert c.call({"id": "s1", "op": "stop", "job": first}) == {"id": "s1", "event": "result", "stopped": True}
        assert c.recv() == {"id": "a", "event": "finished", "job": first, "outcome": "cancelled"}
        assert c.call({"id": "s2", "op": "stop", "job": 999})["stopped"] is False
        assert c.call({"id": "s3", "op": "stop", "all": True}) == {"id": "s3", "event": "result", "stopped": True}
        assert c.recv() == {"id": "b", "event": "finished", "job": second, "outcome": "cancelled"}
    finally:
        c.close()


def test_crlf_and_blank_lines_are_tolerated(client: Client) -> None:
    client.send_raw(b"\n  \r\n" + b'{"id": 1, "op": "voices"}\r\n')
    assert client.recv()["id"] == 1


# -- bad input: each answered with its error, and the connection keeps working ---------------

BAD_REQUESTS: list[tuple[str, bytes, Any, str]] = [
    ("malformed json", b'{"id": 1, "op": ', None, "BadRequest"),
    ("not an object", b"[1, 2]", None, "BadRequest"),
    ("a bare string", b'"speak"', None, "BadRequest"),
    ("NaN is not JSON", b'{"id": NaN, "op": "status"}', None, "BadRequest"),
    ("id of wrong type", b'{"id": {"a": 1}, "op": "status"}', None, "BadRequest"),
    ("id as boolean", b'{"id": true, "op": "status"}', None, "BadRequest"),
    ("missing op", b'{"id": 1}', 1, "BadRequest"),
    ("unknown op", b'{"id": 2, "op": "dance"}', 2, "BadRequest"),
    ("op of wrong type", b'{"id": 3, "op": ["speak"]}', 3, "BadRequest"),
    ("missing text", b'{"id": 4, "op": "speak"}', 4, "BadRequest"),
    ("text of wrong type", b'{"id": 5, "op": "speak", "text": 5}', 5, "BadRequest"),
    ("options not an object", b'{"id": 6, "op": "speak", "text": "hi", "options": ["rate"]}', 6, "BadRequest"),
    ("unknown field", b'{"id": 7, "op": "speak", "txt": "hi"}', 7, "BadRequest"),
    ("stop without job", b'{"id": 8, "op": "stop"}', 8, "BadRequest"),
    ("stop job as string", b'{"id": 9, "op": "stop", "job": "1"}', 9, "BadRequest"),
    ("stop job as boolean", b'{"id": 10, "op": "stop", "job": true}', 10, "BadRequest"),
    ("stop both job and all", b'{"id": 11, "op": "stop", "job": 1, "all": true}', 11, "BadRequest"),
    ("invalid utf-8 in text", b'{"id": 12, "op": "speak", "text": "caf\xe9 \xff"}', 12, "InvalidText"),
    ("invalid utf-8 in id", b'{"id": "\xff", "op": "speak", "text": "hi"}', None, "InvalidText"),
    ("empty text", b'{"id": 13, "op": "speak", "text": ""}', 13, "InvalidText"),
    ("blank text", b'{"id": 14, "op": "speak", "text": "  \\n "}', 14, "InvalidText"),
    ("lone surrogate in text", b'{"id": 15, "op": "speak", "text": "\\ud800"}', 15, "InvalidText"),
    ("text too long", json.dumps({"id": 16, "op": "speak", "text": "a" * 5000}).encode(), 16, "TextTooLong"),
    ("unknown voice", b'{"id": 17, "op": "speak", "text": "hi", "options": {"voice": "nobody"}}', 17, "UnknownVoice"),
    ("unknown option", b'{"id": 18, "op": "speak", "text": "hi", "options": {"speed": 2}}', 18, "InvalidOption"),
    ("rate as string", b'{"id": 19, "op": "speak", "text": "hi", "options": {"rate": "fast"}}', 19, "InvalidOption"),
    ("rate out of range", b'{"id": 20, "op": "speak", "text": "hi", "options": {"rate": 40}}', 20, "InvalidOption"),
    ("bogus priority", b'{"id": 21, "op": "speak", "text": "hi", "options": {"priority": "bogus"}}', 21, "InvalidOption"),
    ("ssml as string", b'{"id": 22, "op": "speak", "text": "hi", "options": {"ssml": "yes"}}', 22, "InvalidOption"),
]


@pytest.mark.parametrize(("line", "request_id", "code"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_gets_error_and_connection_survives(client: Client, line: bytes, request_id: Any, code: str) -> None:
    client.send_raw(line + b"\n")
    event = client.recv()
    assert event["event"] == "error" and event["code"] == code, event
    assert event["id"] == request_id
    assert isinstance(event["message"], str) and event["message"]
    assert_still_serving(client)


def test_line_too_long_is_rejected_before_its_end_and_skipped(client: Client) -> None:
    # The error arrives while the line is still open: the server never waits to buffer it whole.
    head = b'{"id": 1, "op": "speak", "text": "' + b"a" * (const.MAX_LINE_BYTES + 10)
    client.send_raw(head)
    event = client.recv()
    assert event == {"id": None, "event": "error", "code": "BadRequest", "message": event["message"]}
    client.send_raw(b"b" * (1024 * 1024) + b'"}\n')
    assert_still_serving(client)


def test_line_too_long_within_one_block(serve: Serve, engine: RecordingEngine) -> None:
    c = Client(serve(engine, max_line=100).path)
    try:
        c.send_raw(json.dumps({"id": 1, "op": "speak", "text": "x" * 200}).encode() + b"\n" + b'{"id": 2, "op": "voices"}\n')
        assert c.recv()["code"] == "BadRequest"
        assert c.recv()["id"] == 2
    finally:
        c.close()


def test_line_of_exactly_max_bytes_is_accepted(serve: Serve, engine: RecordingEngine) -> None:
    c = Client(serve(engine, max_line=100).path)
    try:
        request = b'{"id": 1, "op": "voices"}'
        c.send_raw(request + b" " * (100 - len(request)) + b"\n")
        assert c.recv()["event"] == "result"
    finally:
        c.close()


def test_flood_past_queue_bound_is_busy(serve: Serve, make_engine: Callable[..., RecordingEngine]) -> None:
    engine = make_engine(hold=True, queue_max=3)
    c = Client(serve(engine).path)
    try:
        for i in range(3):
            assert c.call({"id": i, "op": "speak", "text": f"job {i}"})["event"] == "queued"
        busy = c.call({"id": "over", "op": "speak", "text": "one too many"})
        assert busy["event"] == "error" and busy["code"] == "Busy" and busy["id"] == "over"
        assert_still_serving(c)
    finally:
        c.close()


def test_unexpected_engine_failure_is_internal_without_details(
    client: Client, engine: RecordingEngine, caplog: pytest.LogCaptureFixture
) -> None:
    engine.fail_with = RuntimeError("secret detail at /opt/myna/engine.py line 42")
    with caplog.at_level(logging.ERROR):
        for op in ("speak", "voices", "status"):
            request: dict[str, Any] = {"id": op, "op": op}
            if op == "speak":
                request["text"] = "hi"
            event = client.call(request)
            assert event["event"] == "error" and event["code"] == "Internal" and event["id"] == op
            assert "secret" not in json.dumps(event) and "RuntimeError" not in json.dumps(event)
    assert "secret detail" in caplog.text  # the operator still sees it in the log
    engine.fail_with = None
    assert_still_serving(client)


# -- connections -----------------------------------------------------------------------------


def test_socket_file_mode_is_0660(serve: Serve, engine: RecordingEngine) -> None:
    front = serve(engine)
    st = os.stat(front.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660


def test_socket_group_is_applied(serve: Serve, engine: RecordingEngine) -> None:
    gid = os.getgid()
    front = serve(engine, group=gid)
    assert os.stat(front.path).st_gid == gid


def test_unknown_group_is_a_clear_error(loop_thread: LoopThread, engine: RecordingEngine, short_tmp: Path) -> None:
    front = SocketFrontEnd(engine, short_tmp / "g.sock", group="no-such-group-myna")
    with pytest.raises(SocketUnavailable, match="no-such-group-myna"):
        loop_thread.run(front.start())
    assert not (short_tmp / "g.sock").exists()


def test_two_clients_get_only_their_own_job_events(serve: Serve, engine: RecordingEngine) -> None:
    path = serve(engine).path
    a, b = Client(path), Client(path)
    try:
        job_a = a.call({"id": "a", "op": "speak", "text": "alpha beta"})["job"]
        job_b = b.call({"id": "b", "op": "speak", "text": "gamma"})["job"]
        events_a = a.until_finished(job_a)
        events_b = b.until_finished(job_b)
        assert {e["job"] for e in events_a} == {job_a} and {e["id"] for e in events_a} == {"a"}
        assert {e["job"] for e in events_b} == {job_b} and {e["id"] for e in events_b} == {"b"}
        # Nothing of the other job is waiting behind: the next answer is the next request's.
        assert_still_serving(a)
        assert_still_serving(b)
    finally:
        a.close()
        b.close()


def test_client_leaving_mid_job_does_not_hurt_the_server(
    serve: Serve, make_engine: Callable[..., RecordingEngine], loop_thread: LoopThread
) -> None:
    engine = make_engine(hold=True)
    path = serve(engine).path
    leaver = Client(path)
    leaver.call({"id": 1, "op": "speak", "text": "nobody will hear this"})
    leaver.close()
    time.sleep(0.1)
    engine.release()  # its events now have nowhere to go
    stayer = Client(path)
    try:
        job = stayer.call({"id": 2, "op": "speak", "text": "still here"})["job"]
        engine.release()
        assert stayer.until_finished(job)[-1]["outcome"] == "done"
    finally:
        stayer.close()
    assert not loop_thread.errors


def test_slow_reader_is_dropped_not_buffered(
    serve: Serve, engine: RecordingEngine, caplog: pytest.LogCaptureFixture
) -> None:
    path = serve(engine, max_outbound=16 * 1024).path
    slow = Client(path)
    request = b'{"id": 1, "op": "voices"}\n'
    with caplog.at_level(logging.WARNING):
        try:
            # Far more answers than the kernel's socket buffers hold, and this client reads none.
            for _ in range(200):
                slow.send_raw(request * 200)
        except OSError:
            pass  # dropped while still sending: that is the point
        with pytest.raises((EOFError, ConnectionResetError)):
            while True:
                slow.recv()
    slow.close()
    assert "dropping socket client" in caplog.text
    fresh = Client(path)
    try:
        assert_still_serving(fresh)
    finally:
        fresh.close()


# -- the socket file -------------------------------------------------------------------------


def test_stale_socket_file_is_replaced(serve: Serve, engine: RecordingEngine, short_tmp: Path) -> None:
    path = short_tmp / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: what a crashed daemon leaves
    c = Client(serve(engine, path=path).path)
    try:
        assert_still_serving(c)
    finally:
        c.close()


def test_live_socket_is_not_stolen(serve: Serve, engine: RecordingEngine, loop_thread: LoopThread) -> None:
    first = serve(engine)
    second = SocketFrontEnd(engine, first.path)
    with pytest.raises(SocketUnavailable, match="another process is listening"):
        loop_thread.run(second.start())
    c = Client(first.path)
    try:
        assert_still_serving(c)
    finally:
        c.close()


def test_regular_file_is_never_clobbered(loop_thread: LoopThread, engine: RecordingEngine, short_tmp: Path) -> None:
    path = short_tmp / "precious"
    path.write_text("keep me")
    front = SocketFrontEnd(engine, path)
    with pytest.raises(SocketUnavailable, match="not a socket"):
        loop_thread.run(front.start())
    assert path.read_text() == "keep me"


def test_stop_closes_clients_unlinks_and_unsubscribes(
    loop_thread: LoopThread, engine: RecordingEngine, short_tmp: Path
) -> None:
    path = short_tmp / "s.sock"
    front = SocketFrontEnd(engine, path)
    loop_thread.run(front.start())
    assert engine.subscriber_count == 1
    c = Client(path)
    assert_still_serving(c)
    loop_thread.run(front.stop())
    with pytest.raises((EOFError, ConnectionResetError)):
        c.recv()
    c.close()
    assert not path.exists()
    assert engine.subscriber_count == 0
