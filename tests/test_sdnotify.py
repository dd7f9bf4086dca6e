"""sd_notify client against real AF_UNIX datagram sockets, and watchdog environment parsing."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from myna import sdnotify


def _receive(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    return sock.recv(4096)


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A listening datagram socket in the file system, as systemd's /run/systemd/notify."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield str(path), sock


@pytest.fixture
def abstract_socket() -> Iterator[tuple[str, socket.socket]]:
    """A listening datagram socket in the abstract namespace, named the way systemd writes it."""
    name = f"myna-test-notify-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        yield "@" + name, sock


def test_notify_reaches_path_socket(path_socket: tuple[str, socket.socket]) -> None:
    address, sock = path_socket
    env = {"NOTIFY_SOCKET": address}
    sent = sdnotify.notify(sdnotify.READY, sdnotify.status("2 voices loaded"), env=env)
    assert sent is True
    assert _receive(sock) == b"READY=1\nSTATUS=2 voices loaded"


def test_notify_reaches_abstract_socket(abstract_socket: tuple[str, socket.socket]) -> None:
    address, sock = abstract_socket
    assert sdnotify.notify(sdnotify.STOPPING, env={"NOTIFY_SOCKET": address}) is True
    assert _receive(sock) == b"STOPPING=1"


def test_notify_reads_process_environment(
    path_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, sock = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert sdnotify.notify(sdnotify.READY) is True
    assert _receive(sock) == b"READY=1"


def test_notify_is_noop_without_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify(sdnotify.READY) is False
    assert sdnotify.notify(sdnotify.READY, env={"NOTIFY_SOCKET": ""}) is False


def test_notify_with_no_lines_sends_nothing(path_socket: tuple[str, socket.socket]) -> None:
    address, sock = path_socket
    assert sdnotify.notify(env={"NOTIFY_SOCKET": address}) is False
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


def test_notify_ignores_unsupported_address() -> None:
    assert sdnotify.notify(sdnotify.READY, env={"NOTIFY_SOCKET": "vsock:2:1234"}) is False


def test_notify_logs_instead_of_raising_when_nobody_listens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}
    with caplog.at_level(logging.WARNING, logger="myna.sdnotify"):
        assert sdnotify.notify(sdnotify.WATCHDOG, env=env) is False
    assert "sd_notify" in caplog.text


@pytest.mark.parametrize("line", ["READY=1\nSTATUS=x", "READY", ""])
def test_notify_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ValueError):
        sdnotify.notify(line, env={})


def test_status_flattens_newlines() -> None:
    assert sdnotify.status("voice failed:\nbad checksum\r\n") == "STATUS=voice failed: bad checksum"


def test_extend_timeout_is_in_microseconds() -> None:
    assert sdnotify.extend_timeout(1.5) == "EXTEND_TIMEOUT_USEC=1500000"
    assert sdnotify.extend_timeout(-1) == "EXTEND_TIMEOUT_USEC=0"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": ""}, None),
        ({"WATCHDOG_USEC": "20000000"}, 20.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 20.0),
        # Inherited from the parent that systemd actually watches: not ours to ping.
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getppid())}, None),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "not-a-pid"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "twenty"}, None),
        ({"WATCHDOG_PID": str(os.getpid())}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert sdnotify.watchdog_interval(env) == expected


def test_watchdog_interval_reads_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 3.0


def test_watchdog_pings_at_half_the_timeout(path_socket: tuple[str, socket.socket]) -> None:
    address, sock = path_socket
    env = {"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid()), "NOTIFY_SOCKET": address}
    watchdog = sdnotify.Watchdog.from_env(env)
    assert watchdog == sdnotify.Watchdog(timeout=20.0, period=10.0)
    assert watchdog.ping(env) is True
    assert _receive(sock) == b"WATCHDOG=1"


def test_watchdog_absent_when_not_watched() -> None:
    assert sdnotify.Watchdog.from_env({}) is None
