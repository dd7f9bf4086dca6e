"""A dependency-free sd_notify client: readiness, status, stopping and watchdog pings for systemd."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

READY = "READY=1"
RELOADING = "RELOADING=1"
STOPPING = "STOPPING=1"
WATCHDOG = "WATCHDOG=1"


def status(text: str) -> str:
    """Return a STATUS= line; newlines are flattened so the text cannot inject other assignments."""
    return "STATUS=" + " ".join(text.splitlines())


def extend_timeout(seconds: float) -> str:
    """Return an EXTEND_TIMEOUT_USEC= line that asks for more start/stop time (slow model loads)."""
    return f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}"


def _socket_address(value: str) -> str | None:
    """Map NOTIFY_SOCKET to an AF_UNIX address, or None when it is a kind this client does not speak."""
    if value.startswith("@"):
        # systemd writes abstract-namespace sockets with a leading '@' for the NUL byte.
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # "vsock:..." is for VMs talking to a host; a Pi or head unit never gets it.
    return None


def notify(*lines: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``KEY=VALUE`` lines to the service manager; return whether a datagram was sent.

    A no-op (False) when NOTIFY_SOCKET is unset, so the daemon runs the same by hand, in tests
    and under systemd. Send errors are logged, never raised: losing a STATUS line must not take
    the daemon down, and a missed WATCHDOG ping is exactly what the watchdog is there to catch.
    """
    for line in lines:
        if "\n" in line or "=" not in line:
            raise ValueError(f"not a single KEY=VALUE line: {line!r}")
    environ = os.environ if env is None else env
    value = environ.get("NOTIFY_SOCKET", "")
    if not value or not lines:
        return False
    address = _socket_address(value)
    if address is None:
        _LOGGER.debug("Unsupported NOTIFY_SOCKET %r; not notifying", value)
        return False
    payload = "\n".join(lines).encode("utf-8")
    try:
        # A fresh socket per message, like libsystemd: nothing to keep alive, and a daemon that
        # pings every ten seconds does not care about one extra socket() call.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(payload, address)
    except OSError as err:
        _LOGGER.warning("sd_notify to %s failed: %s", value, err)
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Return the watchdog timeout systemd enforces (WATCHDOG_USEC) in seconds, or None if off.

    None also when WATCHDOG_PID names another process: the variables were inherited from a
    parent that is the one being watched (the same rule as sd_watchdog_enabled()).
    """
    environ = os.environ if env is None else env
    usec_text = environ.get("WATCHDOG_USEC", "")
    if not usec_text:
        return None
    try:
        usec = int(usec_text)
    except ValueError:
        _LOGGER.warning("Ignoring malformed WATCHDOG_USEC=%r", usec_text)
        return None
    if usec <= 0:
        return None
    pid_text = environ.get("WATCHDOG_PID", "")
    if pid_text:
        try:
            pid = int(pid_text)
        except ValueError:
            _LOGGER.warning("Ignoring malformed WATCHDOG_PID=%r", pid_text)
            return None
        if pid != os.getpid():
            return None
    return usec / 1_000_000


@dataclass(frozen=True)
class Watchdog:
    """The watchdog contract for this process; the app owns the timer and calls ``ping``."""

    timeout: float
    """Seconds without a ping after which systemd kills and restarts the service."""
    period: float
    """Seconds between pings: half the timeout, as sd_watchdog_enabled(3) recommends."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Watchdog | None:
        """Return the watchdog for this process, or None when systemd does not watch it."""
        timeout = watchdog_interval(env)
        if timeout is None:
            return None
        return cls(timeout=timeout, period=timeout / 2)

    def ping(self, env: Mapping[str, str] | None = None) -> bool:
        """Tell systemd the daemon is alive; call only from code that proves it (the event loop)."""
        return notify(WATCHDOG, env=env)
