"""Both front ends over the real Engine and the shipped placeholder voice (the null sink stands in for a card)."""

from __future__ import annotations

import json
import socket
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterator

import pytest

from myna.api import const
from myna.api.dbus import DBusFrontEnd
from myna.api.socket import SocketFrontEnd
from myna.audio.null import NullSink
from myna.catalog import SynthCatalog
from myna.engine import Engine, EngineLimits

if TYPE_CHECKING:
    from conftest import LoopThread


@pytest.fixture
def real_engine(placeholder_catalog: SynthCatalog) -> Iterator[Engine]:
    engine = Engine(placeholder_catalog, NullSink(), limits=EngineLimits(max_text_chars=200, queue_max=4))
    engine.start()
    yield engine
    engine.close()


def _events_until_finished(reader: BinaryIO) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    while not events or events[-1]["event"] != "finished":
        line = reader.readline()
        assert line, "server closed the connection"
        events.append(json.loads(line))
    return events


def test_socket_over_real_engine(real_engine: Engine, loop_thread: LoopThread, short_tmp: Path) -> None:
    front = SocketFrontEnd(real_engine, short_tmp / "real.sock")
    loop_thread.run(front.start())
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(front.path)
            reader = sock.makefile("rb")
            sock.sendall(b'{"id": "x", "op": "speak", "text": "Hello big world.", "options": {"rate": 1.2}}\n')
            events = _events_until_finished(reader)
            kinds = [e["event"] for e in events]
            assert kinds == ["queued", "started", "word", "word", "word", "finished"], events
            assert [(e["offset"], e["length"]) for e in events if e["event"] == "word"] == [(0, 5), (6, 3), (10, 5)]
            assert events[-1]["outcome"] == "done"
            sock.sendall(b'{"id": "y", "op": "speak", "text": "' + b"a" * 300 + b'"}\n' + b'{"id": "z", "op": "status"}\n')
            events = [json.loads(reader.readline()) for _ in range(2)]
            assert events[0]["code"] == "TextTooLong"
            assert events[1]["status"]["queue_max"] == 4
            reader.close()
    finally:
        loop_thread.run(front.stop())


@pytest.mark.skipif(not shutil.which("busctl"), reason="needs busctl")
def test_dbus_over_real_engine(real_engine: Engine, loop_thread: LoopThread, bus_address: str) -> None:
    front = DBusFrontEnd(real_engine, address=bus_address)
    loop_thread.run(front.start())
    try:
        base = ["busctl", f"--address={bus_address}", "call", const.BUS_NAME, const.OBJECT_PATH, const.INTERFACE]
        result = subprocess.run([*base, "Speak", "sa{sv}", "hello", "1", "voice", "s", "placeholder-alt"], capture_output=True, text=True, timeout=10)
        assert result.returncode == 0 and result.stdout.startswith("t "), result.stderr
        result = subprocess.run([*base, "Speak", "sa{sv}", "hello", "1", "voice", "s", "nobody"], capture_output=True, text=True, timeout=10)
        assert result.returncode != 0 and "nobody" in result.stderr
        result = subprocess.run([*base, "ListVoices"], capture_output=True, text=True, timeout=10)
        assert result.stdout.strip() == 'a(sss) 2 "placeholder" "Placeholder" "en-US" "placeholder-alt" "Placeholder (alt)" "en-US"'
    finally:
        loop_thread.run(front.stop())
