"""The committed D-Bus policy, enforced by a private system-type dbus-daemon, for root and nobody."""

from __future__ import annotations

import os
import pwd
import selectors
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from myna.api import const

POLICY_FILE = Path(__file__).resolve().parents[1] / "systemd" / "org.myna.Speech1.conf"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
TEST_INTERFACE = "org.myna.Test"

# The default-deny core of Debian's /usr/share/dbus-1/system.conf (trimmed of servicehelper,
# pidfile, syslog and the system.d includes), so the only holes are the ones our file punches.
SYSTEM_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""

# Stands in for mynad: the real interface name with GetStatus, plus a second interface that the
# policy must keep unreachable. Printed reply code 1 = PRIMARY_OWNER.
SERVICE_SCRIPT = f"""
import asyncio, sys
from dbus_fast import BusType
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method

class Speech(ServiceInterface):
    def __init__(self):
        super().__init__({const.INTERFACE!r})

    @method()
    def GetStatus(self) -> "s":
        return "idle"

class Secret(ServiceInterface):
    def __init__(self):
        super().__init__({TEST_INTERFACE!r})

    @method()
    def Secret(self) -> "s":
        return "leaked"

async def main(address):
    bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
    bus.export({const.OBJECT_PATH!r}, Speech())
    bus.export({const.OBJECT_PATH!r}, Secret())
    reply = await bus.request_name({const.BUS_NAME!r})
    print(reply.value, flush=True)
    await bus.wait_for_disconnect()

asyncio.run(main(sys.argv[1]))
"""

# A call without an interface field, which gdbus and busctl cannot send.
NO_INTERFACE_SCRIPT = f"""
import asyncio, sys
from dbus_fast import BusType, Message
from dbus_fast.aio import MessageBus

async def main(address):
    bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
    reply = await bus.call(Message(destination={const.BUS_NAME!r}, path={const.OBJECT_PATH!r},
                                   member="GetStatus"))
    print(reply.error_name or "OK", flush=True)
    bus.disconnect()

asyncio.run(main(sys.argv[1]))
"""


def _read_line(stream: IO[str], timeout: float) -> str:
    """Read one line from a child's stdout, failing instead of hanging if it never comes."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError("child process printed nothing")
    return stream.readline().strip()


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _unprivileged_prefix() -> list[str] | None:
    """Return a command prefix that drops root to nobody, or None if this system cannot."""
    candidates = [
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"],
        ["runuser", "-u", "nobody", "--"],
    ]
    for prefix in candidates:
        if shutil.which(prefix[0]) is None:
            continue
        probe = subprocess.run([*prefix, "id", "-u"], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() not in ("", "0"):
            return prefix
    return None


@dataclass(frozen=True)
class Bus:
    """A running private system bus and the ways to reach it."""

    address: str
    nobody: list[str]
    """Prefix that runs a command as the unprivileged user."""


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the policy grants ownership to root"),
    pytest.mark.skipif(
        shutil.which("dbus-daemon") is None or shutil.which("gdbus") is None,
        reason="needs dbus-daemon and gdbus",
    ),
]


@pytest.fixture(scope="module")
def bus() -> Iterator[Bus]:
    """Start a private system-type bus that includes the committed policy, and kill it after."""
    nobody = _unprivileged_prefix()
    if nobody is None:
        pytest.skip("cannot drop to user nobody (neither setpriv nor runuser works here)")
    # Not tmp_path: pytest's base temp dir is 0700, and nobody must reach the bus socket.
    directory = Path(tempfile.mkdtemp(prefix="myna-bus-"))
    directory.chmod(0o755)
    config = directory / "system.conf"
    config.write_text(SYSTEM_CONF.format(socket=directory / "bus.sock", policy=POLICY_FILE))
    with open(directory / "dbus-daemon.log", "w") as log:
        daemon = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1",
             "--nopidfile", "--nosyslog"],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
    try:
        assert daemon.stdout is not None
        address = _read_line(daemon.stdout, timeout=10).split(",guid=")[0]
        yield Bus(address=address, nobody=nobody)
    finally:
        _stop(daemon)
        shutil.rmtree(directory, ignore_errors=True)


def _start_service(bus: Bus, prefix: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-c", SERVICE_SCRIPT, bus.address],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    try:
        return proc, _read_line(proc.stdout, timeout=20)
    except BaseException:
        _stop(proc)
        raise


@pytest.fixture(scope="module")
def service(bus: Bus) -> Iterator[None]:
    """The stand-in daemon, run as root, owning org.myna.Speech1."""
    proc, reply = _start_service(bus, [])
    try:
        assert reply == "1", f"root could not become primary owner (reply {reply})"
        yield
    finally:
        _stop(proc)


def _gdbus(bus: Bus, dest: str, path: str, method: str, *args: str,
           as_nobody: bool) -> subprocess.CompletedProcess[str]:
    prefix = bus.nobody if as_nobody else []
    return subprocess.run(
        [*prefix, "gdbus", "call", "--address", bus.address, "--dest", dest,
         "--object-path", path, "--method", method, "--timeout", "10", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )


def _request_name(bus: Bus, name: str, *, as_nobody: bool) -> subprocess.CompletedProcess[str]:
    # Flag 4 = DO_NOT_QUEUE: an allowed request gets an answer at once instead of waiting in line.
    return _gdbus(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                  "org.freedesktop.DBus.RequestName", name, "4", as_nobody=as_nobody)


def _call_speech(bus: Bus, method: str, *args: str,
                 as_nobody: bool) -> subprocess.CompletedProcess[str]:
    return _gdbus(bus, const.BUS_NAME, const.OBJECT_PATH, method, *args, as_nobody=as_nobody)


def _assert_allowed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


def _assert_denied(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0
    assert ACCESS_DENIED in result.stderr, result.stderr


def test_policy_file_is_well_formed_and_narrow() -> None:
    root = ET.parse(POLICY_FILE).getroot()
    owners = {
        policy.get("user"): [rule.get("own") for rule in policy if rule.get("own")]
        for policy in root.iter("policy") if policy.get("user")
    }
    assert owners == {"myna": [const.BUS_NAME], "root": [const.BUS_NAME]}
    default = [policy for policy in root.iter("policy") if policy.get("context") == "default"]
    assert len(default) == 1
    rules = list(default[0])
    assert rules and all(rule.tag == "allow" for rule in rules)
    # Each hole names both our destination and one interface; nothing else is opened.
    assert {(rule.get("send_destination"), rule.get("send_interface")) for rule in rules} == {
        (const.BUS_NAME, const.INTERFACE),
        (const.BUS_NAME, "org.freedesktop.DBus.Introspectable"),
        (const.BUS_NAME, "org.freedesktop.DBus.Properties"),
        (const.BUS_NAME, "org.freedesktop.DBus.Peer"),
    }
    assert all(set(rule.attrib) == {"send_destination", "send_interface"} for rule in rules)


def test_nobody_cannot_own_the_name(bus: Bus) -> None:
    _assert_denied(_request_name(bus, const.BUS_NAME, as_nobody=True))


def test_root_cannot_own_other_names(bus: Bus) -> None:
    # Our file grants exactly one name; the default deny own="*" applies to root as well.
    _assert_denied(_request_name(bus, "org.myna.Other", as_nobody=False))


def test_myna_user_can_own_the_name(bus: Bus, service: None) -> None:
    try:
        pwd.getpwnam("myna")
    except KeyError:
        pytest.skip("no user 'myna' here (sysusers not applied); root ownership is tested instead")
    as_myna = ["setpriv", "--reuid=myna", "--regid=myna", "--clear-groups", "--"]
    proc, reply = _start_service(bus, as_myna)
    _stop(proc)
    # 2 = IN_QUEUE behind the root-owned stand-in: allowed, unlike nobody's AccessDenied.
    assert reply == "2"


@pytest.mark.parametrize("as_nobody", [True, False], ids=["nobody", "root"])
def test_anyone_can_call_the_speech_interface(bus: Bus, service: None, as_nobody: bool) -> None:
    result = _call_speech(bus, f"{const.INTERFACE}.GetStatus", as_nobody=as_nobody)
    _assert_allowed(result)
    assert "'idle'" in result.stdout


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("org.freedesktop.DBus.Introspectable.Introspect", ()),
        ("org.freedesktop.DBus.Properties.GetAll", (const.INTERFACE,)),
        ("org.freedesktop.DBus.Peer.Ping", ()),
    ],
)
def test_nobody_can_use_standard_interfaces(
    bus: Bus, service: None, method: str, args: tuple[str, ...]
) -> None:
    _assert_allowed(_call_speech(bus, method, *args, as_nobody=True))


@pytest.mark.parametrize("as_nobody", [True, False], ids=["nobody", "root"])
def test_other_interfaces_on_the_daemon_are_denied(bus: Bus, service: None, as_nobody: bool) -> None:
    _assert_denied(_call_speech(bus, f"{TEST_INTERFACE}.Secret", as_nobody=as_nobody))


def test_call_without_interface_is_denied(bus: Bus, service: None) -> None:
    result = subprocess.run(
        [*bus.nobody, sys.executable, "-c", NO_INTERFACE_SCRIPT, bus.address],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ACCESS_DENIED
