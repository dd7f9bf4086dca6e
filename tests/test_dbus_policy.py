"""The committed D-Bus policy, enforced by a private system-type dbus-daemon, for root and nobody."""

from __future__ import annotations

import contextlib
import grp
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
ADMIN_METHODS = ("InstallVoice", "RemoveVoice")
ADMIN_CALLS = {"InstallVoice": ("/var/lib/myna/incoming/anna.mynavoice",), "RemoveVoice": ("anna",)}

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

    @method()
    def InstallVoice(self, path: "s") -> "s":
        return "anna"

    @method()
    def RemoveVoice(self, voice_id: "s"):
        pass

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


@contextlib.contextmanager
def _private_bus(policy: Path) -> Iterator[Bus]:
    """A private system-type bus that includes ``policy``; killed on exit."""
    nobody = _unprivileged_prefix()
    if nobody is None:
        pytest.skip("cannot drop to user nobody (neither setpriv nor runuser works here)")
    # Not tmp_path: pytest's base temp dir is 0700, and nobody must reach the bus socket.
    directory = Path(tempfile.mkdtemp(prefix="myna-bus-"))
    directory.chmod(0o755)
    config = directory / "system.conf"
    config.write_text(SYSTEM_CONF.format(socket=directory / "bus.sock", policy=policy))
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


@pytest.fixture(scope="module")
def bus() -> Iterator[Bus]:
    """Start a private system-type bus that includes the committed policy, and kill it after."""
    with _private_bus(POLICY_FILE) as private:
        yield private


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
    allows = [rule for rule in rules if rule.tag == "allow"]
    denies = [rule for rule in rules if rule.tag == "deny"]
    assert allows and len(allows) + len(denies) == len(rules)
    # Each hole names both our destination and one interface; nothing else is opened.
    assert {(rule.get("send_destination"), rule.get("send_interface")) for rule in allows} == {
        (const.BUS_NAME, const.INTERFACE),
        (const.BUS_NAME, "org.freedesktop.DBus.Introspectable"),
        (const.BUS_NAME, "org.freedesktop.DBus.Properties"),
        (const.BUS_NAME, "org.freedesktop.DBus.Peer"),
    }
    assert all(set(rule.attrib) == {"send_destination", "send_interface"} for rule in allows)
    # The administrative methods are closed again for everyone, after the allows (order matters) ...
    assert rules[-len(denies):] == denies
    admin = [(const.BUS_NAME, const.INTERFACE, member) for member in ADMIN_METHODS]
    member_rules = lambda rules: [  # noqa: E731
        (r.get("send_destination"), r.get("send_interface"), r.get("send_member")) for r in rules
    ]
    assert member_rules(denies) == admin
    # ... and opened for root and the admin group only.
    for attr, name in (("user", "root"), ("group", const.ADMIN_GROUP)):
        (policy,) = [p for p in root.iter("policy") if p.get(attr) == name]
        assert member_rules([r for r in policy if r.tag == "allow" and r.get("send_member")]) == admin
    assert {p.get("group") for p in root.iter("policy") if p.get("group")} == {const.ADMIN_GROUP}


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


@pytest.mark.parametrize("method", ADMIN_METHODS)
def test_nobody_cannot_install_or_remove_voices(bus: Bus, service: None, method: str) -> None:
    _assert_denied(_call_speech(bus, f"{const.INTERFACE}.{method}", *ADMIN_CALLS[method], as_nobody=True))


@pytest.mark.parametrize("method", ADMIN_METHODS)
def test_root_can_install_and_remove_voices(bus: Bus, service: None, method: str) -> None:
    _assert_allowed(_call_speech(bus, f"{const.INTERFACE}.{method}", *ADMIN_CALLS[method], as_nobody=False))


def _stand_in_group() -> tuple[str, int] | None:
    """An existing group that user nobody is not in, to stand in for myna-admin where sysusers never ran."""
    for name in ("daemon", "users", "adm", "staff"):
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            continue
        if gid != pwd.getpwnam("nobody").pw_gid:
            return name, gid
    return None


@pytest.mark.parametrize("method", ADMIN_METHODS)
def test_admin_group_can_install_and_remove_voices(method: str, tmp_path: Path) -> None:
    # The committed file with the group renamed to one that exists here (dbus-daemon drops a policy
    # for an unknown group): this checks that the group's allow beats the default context's deny.
    try:
        name, gid = const.ADMIN_GROUP, grp.getgrnam(const.ADMIN_GROUP).gr_gid
    except KeyError:
        stand_in = _stand_in_group()
        if stand_in is None:
            pytest.skip(f"no group {const.ADMIN_GROUP!r} and no stand-in group here")
        name, gid = stand_in
    policy = tmp_path / "policy.conf"
    policy.write_text(POLICY_FILE.read_text().replace(f'group="{const.ADMIN_GROUP}"', f'group="{name}"'))
    policy.chmod(0o644)
    with _private_bus(policy) as private:
        proc, reply = _start_service(private, [])
        try:
            assert reply == "1"
            # The bus reads the peer's supplementary groups (SO_PEERGROUPS) when it checks the rule.
            member = ["setpriv", "--reuid=nobody", "--regid=nogroup", f"--groups={gid}", "--"]
            for prefix, allowed in ((member, True), (private.nobody, False)):
                result = subprocess.run(
                    [*prefix, "gdbus", "call", "--address", private.address, "--dest", const.BUS_NAME, "--object-path",
                     const.OBJECT_PATH, "--method", f"{const.INTERFACE}.{method}", *ADMIN_CALLS[method]],
                    capture_output=True, text=True, timeout=30, check=False,
                )  # fmt: skip
                _assert_allowed(result) if allowed else _assert_denied(result)
        finally:
            _stop(proc)
