"""The real ``mynad`` as a board runs it, driven by clients nobody here wrote (busctl, gdbus) and over its socket.

One daemon serves the whole module (``mynad`` fixture, see conftest.py); the tests run in file
order but each one measures from the state it finds (job ids, counters, the raw file's length),
so any order or subset works.  A second daemon with ``queue_max: 2`` serves the flood test and
a third one is stopped with SIGTERM in the middle of a sentence.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from mynad_harness import (
    BOARD,
    PCM_NAME,
    QUEUE_MAX_OVERRIDE,
    REPO,
    SAMPLE_RATE,
    Daemon,
    PrivateBus,
    SignalMonitor,
    make_daemon,
    run,
    stop_daemon,
    venv_tool,
)
from myna.api import const
from myna.voices import VoicePack, choose_tier

SENTENCE = "Turn left in 300 meters, then keep right at the fork."
WORDS_SENTENCE = "Keep right at the next fork"
ERROR = const.ERROR_PREFIX
# A long utterance (for StopAll): rate 0.25 makes it four times longer still.
LONG_TEXT = " ".join(["Continue straight on the motorway for the next twelve kilometres."] * 60)


def myna(*args: str, cwd: Path | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the ``myna`` command line as a user would."""
    return run([*venv_tool("myna"), *args], cwd=cwd, timeout=timeout)


def render_with_cli(tmp_path: Path, config: Path, text: str, *say_args: str, board: str = BOARD) -> np.ndarray:
    """``myna --board B say -o out.wav TEXT``: in-process synthesis with the daemon's engine; the int16 samples."""
    out = tmp_path / f"cli-{board}-{len(list(tmp_path.iterdir()))}.wav"
    result = myna("--config", str(config), "--board", board, "say", *say_args, "-o", str(out), text)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    samples, rate = soundfile.read(out, dtype="int16")
    assert rate == SAMPLE_RATE and samples.ndim == 1, (rate, samples.shape)
    return np.asarray(samples)


def gdbus_error(result: subprocess.CompletedProcess[str]) -> str:
    """The D-Bus error name in gdbus's ``Error: GDBus.Error:NAME: message``."""
    assert result.returncode != 0, f"the call succeeded: {result.stdout}"
    match = re.search(r"GDBus\.Error:([\w.]+):", result.stderr)
    assert match, result.stderr
    return match.group(1)


def play_and_capture(daemon: Daemon, monitor: SignalMonitor, speak: Any) -> tuple[int, np.ndarray]:
    """Call ``speak()`` (returns a job id) on an idle daemon; return the job and the samples it played."""
    before = daemon.wait_idle()
    start = len(daemon.raw_samples())
    job = speak()
    finished = monitor.wait("JobFinished", job)
    assert finished.args == (job, "done"), finished
    after = daemon.wait_idle()
    assert after["jobs_done"] == before["jobs_done"] + 1, (before, after)
    return job, daemon.raw_samples()[start:]


# ---------------------------------------------------------------------------- 1. the audio path


def test_speak_over_dbus_plays_bit_exactly_what_myna_say_writes(
    mynad: Daemon, monitor: SignalMonitor, no_config: Path, tmp_path: Path
) -> None:
    job, played = play_and_capture(mynad, monitor, lambda: mynad.speak(SENTENCE))
    assert job >= 1
    expected = render_with_cli(tmp_path, no_config, SENTENCE)
    assert played.size > SAMPLE_RATE // 2 and np.abs(played).max() > 1000  # real audio, not silence
    assert played.shape == expected.shape, f"daemon played {played.size} samples, myna say wrote {expected.size}"
    np.testing.assert_array_equal(played, expected)


def test_daemon_and_cli_use_the_tier_the_board_sets(mynad: Daemon, no_config: Path, tmp_path: Path) -> None:
    board = myna("--config", str(no_config), "--board", BOARD, "board")
    assert board.returncode == 0, board.stderr
    fields = dict(re.findall(r"^(\w+):\s*(.*?)\s*$", board.stdout, re.M))
    assert fields["board"] == BOARD
    pack = VoicePack.load(REPO / "models" / "placeholder")
    tier = choose_tier(pack, fields["tier"])  # the board's tier, or the pack's next smaller one
    status = mynad.status()
    assert status["board"] == BOARD
    assert status["tier"] == f"placeholder:{tier}"
    # The bit-exact comparison above does tell tiers apart: another tier sounds different.
    other_board = "pi-zero-2-w"
    other = render_with_cli(tmp_path, no_config, SENTENCE, board=other_board)
    same = render_with_cli(tmp_path, no_config, SENTENCE)
    assert other.shape != same.shape or not np.array_equal(other, same)


def test_gdbus_speak_with_voice_and_priority_plays_what_myna_say_v_writes(
    mynad: Daemon, monitor: SignalMonitor, no_config: Path, tmp_path: Path
) -> None:
    text = "Battery at fifteen percent."

    def speak() -> int:
        result = mynad.gdbus_call("Speak", text, "{'voice': <'placeholder-alt'>, 'priority': <'message'>}")
        assert result.returncode == 0, result.stderr
        match = re.fullmatch(r"\(uint64 (\d+),\)", result.stdout.strip())
        assert match, result.stdout
        return int(match.group(1))

    _, played = play_and_capture(mynad, monitor, speak)
    expected = render_with_cli(tmp_path, no_config, text, "-v", "placeholder-alt")
    np.testing.assert_array_equal(played, expected)
    # ... and the other voice really is another voice.
    default = render_with_cli(tmp_path, no_config, text)
    assert default.shape != expected.shape or not np.array_equal(default, expected)


# ---------------------------------------------------------------------------- 2. signals


def test_signals_arrive_on_the_bus_in_order_with_word_offsets(mynad: Daemon, monitor: SignalMonitor) -> None:
    mynad.wait_idle()
    job = mynad.speak(WORDS_SENTENCE, "priority", "s", "message")
    monitor.wait("JobFinished", job)
    signals = monitor.of_job(job)
    members = [s.member for s in signals]
    assert members[0] == "JobStarted" and members[-1] == "JobFinished", members
    assert set(members[1:-1]) == {"WordBoundary"}, members
    assert signals[0].args == (job,)
    assert signals[-1].args == (job, "done")
    spans = [(int(s.args[1]), int(s.args[2])) for s in signals[1:-1]]
    words = [WORDS_SENTENCE[offset : offset + length] for offset, length in spans]
    assert words == WORDS_SENTENCE.split()


# ---------------------------------------------------------------------------- 3. bad input over D-Bus


def _speak_via_dbus_fast(address: str, text: str) -> tuple[str | None, Any]:
    """Speak with a 1 MB text: too long for any argv (one argument may be 128 KiB), so use dbus-fast."""
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    async def call() -> tuple[str | None, Any]:
        bus = await MessageBus(bus_address=address).connect()
        try:
            reply = await bus.call(
                Message(
                    destination=const.BUS_NAME,
                    path=const.OBJECT_PATH,
                    interface=const.INTERFACE,
                    member="Speak",
                    signature="sa{sv}",
                    body=[text, {}],
                )
            )
            assert reply is not None
            name = reply.error_name if reply.message_type is MessageType.ERROR else None
            return name, reply.body
        finally:
            bus.disconnect()
            await bus.wait_for_disconnect()

    return asyncio.run(call())


DBUS_BAD_SPEAKS = [
    ("empty-text", ("", "@a{sv} {}"), "InvalidText"),
    ("only-whitespace", (" \t\n ", "@a{sv} {}"), "InvalidText"),
    ("unknown-voice", ("Hello.", "{'voice': <'nobody'>}"), "UnknownVoice"),
    ("unknown-option", ("Hello.", "{'speed': <2.0>}"), "InvalidOption"),
    ("rate-as-a-string", ("Hello.", "{'rate': <'fast'>}"), "InvalidOption"),
    ("rate-out-of-range", ("Hello.", "{'rate': <9.0>}"), "InvalidOption"),
    ("unknown-priority", ("Hello.", "{'priority': <'urgent'>}"), "InvalidOption"),
]


@pytest.mark.parametrize(("args", "error"), [pytest.param(*case[1:], id=case[0]) for case in DBUS_BAD_SPEAKS])
def test_bad_speak_is_a_named_error_and_the_daemon_keeps_serving(
    mynad: Daemon, monitor: SignalMonitor, args: tuple[str, str], error: str
) -> None:
    assert gdbus_error(mynad.gdbus_call("Speak", *args)) == ERROR + error
    job = mynad.speak("Still here.")
    assert monitor.wait("JobFinished", job).args == (job, "done")


def test_one_megabyte_text_is_text_too_long(mynad: Daemon, monitor: SignalMonitor) -> None:
    limit = mynad.status()["max_text_chars"]
    text = "a" * (1 << 20)
    assert len(text) > limit
    name, body = _speak_via_dbus_fast(mynad.address, text)
    assert name == ERROR + "TextTooLong", (name, body)
    job = mynad.speak("Still here.")
    assert monitor.wait("JobFinished", job).args == (job, "done")


@pytest.mark.skipif(shutil.which("dbus-send") is None, reason="needs dbus-send")
def test_speak_with_the_wrong_signature_is_refused_by_the_dbus_layer(mynad: Daemon) -> None:
    result = run(
        ["dbus-send", f"--bus={mynad.address}", "--print-reply", f"--dest={const.BUS_NAME}",
         const.OBJECT_PATH, f"{const.INTERFACE}.Speak", "string:Hello"]
    )  # fmt: skip
    assert result.returncode != 0
    assert "org.freedesktop.DBus.Error.UnknownMethod" in result.stderr, result.stderr
    assert mynad.speak("Still here.") >= 1


def test_flooding_a_small_queue_answers_busy_and_the_daemon_recovers(small_queue_mynad: Daemon) -> None:
    daemon = small_queue_mynad
    status = daemon.status()
    assert status["queue_max"] == QUEUE_MAX_OVERRIDE  # the /etc-style override reached the board profile
    assert status["board"] == BOARD
    outcomes: list[str] = []
    for _ in range(10):
        result = daemon.gdbus_call("Speak", SENTENCE, "{'priority': <'message'>}")
        outcomes.append("ok" if result.returncode == 0 else gdbus_error(result))
    busy = outcomes.count(ERROR + "Busy")
    assert busy >= 1, outcomes
    assert set(outcomes) == {"ok", ERROR + "Busy"}, outcomes
    # The first two always fit (one may play while queue_max wait); the rest race the queue.
    assert outcomes[:2] == ["ok", "ok"], outcomes
    assert daemon.status()["queue_length"] <= QUEUE_MAX_OVERRIDE
    # Still answering: clear the queue and speak again.
    stop = daemon.busctl("StopAll")
    assert stop.returncode == 0, stop.stderr
    done_before = daemon.wait_idle()["jobs_done"]
    assert daemon.speak("OK.", "priority", "s", "message") >= 1
    assert daemon.wait_idle()["jobs_done"] == done_before + 1


# ---------------------------------------------------------------------------- 4. the socket


class JsonLines:
    """A client of the daemon's socket: bytes out, one JSON event per line in."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")

    def send(self, line: bytes) -> None:
        self.sock.sendall(line)

    def request(self, obj: dict[str, Any]) -> None:
        self.send(json.dumps(obj).encode("utf-8") + b"\n")

    def event(self) -> dict[str, Any]:
        line = self.reader.readline()
        assert line, "mynad closed the connection"
        event = json.loads(line)
        assert isinstance(event, dict)
        return event

    def until_finished(self, job: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while not (events and events[-1].get("event") == "finished" and events[-1].get("job") == job):
            events.append(self.event())
        return events

    def speak_and_check(self, req_id: str, text: str) -> int:
        self.request({"id": req_id, "op": "speak", "text": text})
        queued = self.event()
        assert queued["event"] == "queued" and queued["id"] == req_id, queued
        job = queued["job"]
        events = self.until_finished(job)
        assert all(e["id"] == req_id and e["job"] == job for e in events), events
        kinds = [e["event"] for e in events]
        assert kinds[0] == "started" and set(kinds[1:-1]) == {"word"}, kinds
        assert events[-1]["outcome"] == "done", events[-1]
        words = [text[e["offset"] : e["offset"] + e["length"]] for e in events[1:-1]]
        assert words == re.findall(r"\w+", text), words
        return int(job)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def client(mynad: Daemon) -> Any:
    conn = JsonLines(mynad.socket_path)
    yield conn
    conn.close()


def test_socket_speak_reports_queued_started_words_finished(client: JsonLines) -> None:
    client.speak_and_check("first", WORDS_SENTENCE)


SOCKET_BAD_LINES = [
    ("malformed-JSON", b'{"id": "m", "op": "speak", "text": \n', None, "BadRequest"),
    ("invalid-UTF-8", b'{"id": "u", "op": "speak", "text": "caf\xe9 \xff"}\n', "u", "InvalidText"),
    ("unknown-op", b'{"id": "o", "op": "sing", "text": "la"}\n', "o", "BadRequest"),
    ("unknown-option", b'{"id": "p", "op": "speak", "text": "Hi.", "options": {"speed": 2}}\n', "p", "InvalidOption"),
    ("rate-as-a-string", b'{"id": "r", "op": "speak", "text": "Hi.", "options": {"rate": "fast"}}\n', "r", "InvalidOption"),
    ("unknown-voice", b'{"id": "v", "op": "speak", "text": "Hi.", "options": {"voice": "nobody"}}\n', "v", "UnknownVoice"),
    ("one-megabyte-line", b'{"id": "big", "op": "speak", "text": "' + b"a" * (1 << 20) + b'"}\n', None, "BadRequest"),
    ("text-over-the-boards-limit", b'{"id": "t", "op": "speak", "text": "' + b"a" * 10_001 + b'"}\n', "t", "TextTooLong"),
]


@pytest.mark.parametrize(("line", "req_id", "code"), [pytest.param(*case[1:], id=case[0]) for case in SOCKET_BAD_LINES])
def test_socket_bad_request_is_a_documented_error_and_the_connection_keeps_working(
    client: JsonLines, line: bytes, req_id: str | None, code: str
) -> None:
    client.send(line)
    error = client.event()
    assert error["event"] == "error", error
    assert error["code"] == code, error
    assert error["id"] == req_id, error
    assert isinstance(error["message"], str) and error["message"], error
    client.request({"id": "after", "op": "status"})
    result = client.event()
    assert result["event"] == "result" and result["id"] == "after", result
    assert result["status"]["board"] == BOARD
    client.speak_and_check("again", "Still here")


def test_myna_say_over_the_socket_prints_the_job_id(mynad: Daemon) -> None:
    result = myna("--socket", str(mynad.socket_path), "say", "hello")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+", result.stdout.strip()), result.stdout


def test_myna_voices_over_the_socket_lists_both_placeholder_voices(mynad: Daemon) -> None:
    result = myna("--socket", str(mynad.socket_path), "voices")
    assert result.returncode == 0, result.stderr
    ids = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert ids == ["placeholder", "placeholder-alt"], result.stdout


def test_myna_status_over_the_socket_names_the_board(mynad: Daemon) -> None:
    result = myna("--socket", str(mynad.socket_path), "status")
    assert result.returncode == 0, result.stderr
    assert f"board: {BOARD}" in result.stdout.splitlines(), result.stdout


def test_myna_stop_over_the_socket_exits_0(mynad: Daemon) -> None:
    result = myna("--socket", str(mynad.socket_path), "stop")
    assert result.returncode == 0, result.stderr


def test_myna_without_a_daemon_fails_with_one_line_and_no_traceback(short_dir: Path) -> None:
    missing = short_dir / "nonexistent.sock"
    for path in ("/nonexistent", str(missing)):
        result = myna("--socket", path, "say", "hi", timeout=15)
        assert result.returncode != 0
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("myna: ") and path in lines[0], result.stderr


# ---------------------------------------------------------------------------- 5. StopAll


def test_stop_all_during_a_long_sentence_finishes_it_cancelled(
    mynad: Daemon, monitor: SignalMonitor, no_config: Path, tmp_path: Path
) -> None:
    before = mynad.wait_idle()
    job = mynad.speak(LONG_TEXT, "rate", "d", "0.25")
    monitor.wait("JobStarted", job)
    result = mynad.busctl("StopAll")
    assert result.returncode == 0 and result.stdout.strip() == "", (result.stdout, result.stderr)
    assert monitor.wait("JobFinished", job).args == (job, "cancelled")
    after = mynad.wait_idle()
    assert after["jobs_cancelled"] == before["jobs_cancelled"] + 1
    assert after["jobs_done"] == before["jobs_done"]
    # Nothing of the cancelled job leaks into the next one: it plays exactly what myna say writes.
    _, played = play_and_capture(mynad, monitor, lambda: mynad.speak(SENTENCE))
    np.testing.assert_array_equal(played, render_with_cli(tmp_path, no_config, SENTENCE))


def test_sigterm_while_speaking_exits_0_at_once_and_removes_the_socket(short_dir: Path, no_config: Path) -> None:
    bus = PrivateBus()
    daemon = make_daemon(short_dir / "term", bus.address, "sigterm")
    try:
        daemon.start("--config", str(no_config), "--sink", f"alsa:{PCM_NAME}")
        job = daemon.speak(LONG_TEXT, "rate", "d", "0.25")
        deadline = time.monotonic() + 10
        while daemon.status()["current_job"] != job:
            assert time.monotonic() < deadline, "the long job never started"
            time.sleep(0.01)
        started = time.monotonic()
        stop_daemon(daemon)  # SIGTERM: exit status 0, socket gone
        assert time.monotonic() - started < 3.0
    finally:
        if daemon.proc is not None and daemon.proc.returncode is None:
            daemon.proc.kill()
            daemon.proc.wait()
        bus.close()


# ---------------------------------------------------------------------------- 6. the README


def test_readme_first_command_writes_a_wav(tmp_path: Path) -> None:
    result = myna("say", "Turn left in 300 meters.", "-o", "hello.wav", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "hello.wav"
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16"), info
    samples, _ = soundfile.read(out, dtype="int16")
    assert samples.size > SAMPLE_RATE // 2
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 100.0
