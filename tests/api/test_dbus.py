"""The D-Bus front end on a private bus, called by busctl, gdbus and dbus-monitor (clients nobody here wrote)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from myna.api import const
from myna.api.dbus import DBusFrontEnd, DBusUnavailable, options_from_variants, status_to_variants
from myna.errors import InvalidOption

if TYPE_CHECKING:
    # Annotations only: tests/ has no __init__.py, so conftest is not importable as a package.
    from conftest import LoopThread, RecordingEngine

SNAPSHOT = Path(__file__).with_name("introspection.xml")

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("dbus-daemon", "busctl", "gdbus", "dbus-monitor")),
    reason="needs dbus-daemon, busctl, gdbus and dbus-monitor",
)

Serve = Callable[..., DBusFrontEnd]


def run(*args: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    """Run a client; never raise on its exit status."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def busctl(address: str, method: str, *args: str, json_out: bool = False) -> subprocess.CompletedProcess[str]:
    """``busctl call`` one method of the service."""
    extra = ["--json=short"] if json_out else []
    return run("busctl", f"--address={address}", *extra, "call", const.BUS_NAME, const.OBJECT_PATH, const.INTERFACE, method, *args)


def gdbus(address: str, method: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``gdbus call`` one method; arguments are GVariant text."""
    return run(
        "gdbus", "call", "--address", address, "--dest", const.BUS_NAME, "--object-path", const.OBJECT_PATH,
        "--method", f"{const.INTERFACE}.{method}", *args,
    )  # fmt: skip


def error_name(result: subprocess.CompletedProcess[str]) -> str:
    """The D-Bus error name gdbus printed (``Error: GDBus.Error:<name>: <message>``)."""
    assert result.returncode != 0, result.stdout
    prefix = "GDBus.Error:"
    start = result.stderr.index(prefix) + len(prefix)
    return result.stderr[start:].split(":", 1)[0]


@pytest.fixture
def serve(loop_thread: LoopThread, bus_address: str) -> Iterator[Serve]:
    """Start DBusFrontEnds on the private bus; stop them afterwards."""
    started: list[DBusFrontEnd] = []

    def start(engine: RecordingEngine) -> DBusFrontEnd:
        front = DBusFrontEnd(engine, address=bus_address)
        loop_thread.run(front.start())
        started.append(front)
        return front

    yield start
    for front in reversed(started):
        loop_thread.run(front.stop())


@pytest.fixture
def service(serve: Serve, engine: RecordingEngine) -> DBusFrontEnd:
    """The service on the default engine double."""
    return serve(engine)


def assert_still_answers(address: str) -> None:
    result = busctl(address, "ListVoices")
    assert result.returncode == 0 and result.stdout.startswith("a(sss) 2"), result


# -- methods -------------------------------------------------------------------------------


def test_speak_with_busctl_returns_job_id(service: DBusFrontEnd, bus_address: str, engine: RecordingEngine) -> None:
    result = busctl(bus_address, "Speak", "sa{sv}", "hello world", "2", "priority", "s", "message", "rate", "d", "1.5")
    assert result.returncode == 0, result.stderr
    kind, job = result.stdout.split()
    assert kind == "t" and int(job) >= 1
    text, options = engine.calls[-1][1]
    assert text == "hello world" and options.priority.value == "message" and options.rate == 1.5


def test_speak_with_gdbus_accepts_integer_for_double_options(service: DBusFrontEnd, bus_address: str, engine: RecordingEngine) -> None:
    # GVariant text <2> is an int32; clients send whole numbers like that, so it counts as 2.0.
    result = gdbus(bus_address, "Speak", "'hi'", "{'rate': <2>, 'volume': <uint32 1>, 'pitch': <1.25>, 'ssml': <false>}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("(uint64 ")
    options = engine.calls[-1][1][1]
    assert (options.rate, options.volume, options.pitch, options.ssml) == (2.0, 1.0, 1.25, False)


def test_list_voices(service: DBusFrontEnd, bus_address: str) -> None:
    result = busctl(bus_address, "ListVoices")
    assert result.stdout.strip() == 'a(sss) 2 "amy" "Amy" "en-US" "joe" "Joe" "en-GB"'


def test_get_status_types(service: DBusFrontEnd, bus_address: str) -> None:
    result = busctl(bus_address, "GetStatus", json_out=True)
    assert result.returncode == 0, result.stderr
    (status,) = json.loads(result.stdout)["data"]
    assert status["version"] == {"type": "s", "data": "test"}
    assert status["queue_max"] == {"type": "x", "data": 8}
    assert status["busy"] == {"type": "b", "data": False}
    assert status["rtf"]["type"] == "d" and status["rtf"]["data"] == pytest.approx(0.25)


def test_stop_and_stop_all(serve: Serve, make_engine: Callable[..., RecordingEngine], bus_address: str) -> None:
    engine = make_engine(hold=True)
    serve(engine)
    job = busctl(bus_address, "Speak", "sa{sv}", "wait for me", "0").stdout.split()[1]
    assert busctl(bus_address, "Stop", "t", job).stdout.strip() == "b true"
    assert busctl(bus_address, "Stop", "t", job).stdout.strip() == "b false"
    busctl(bus_address, "Speak", "sa{sv}", "and me", "0")
    result = busctl(bus_address, "StopAll")
    assert result.returncode == 0 and result.stdout.strip() == ""
    assert engine.calls[-1] == ("stop_all", None)
    assert engine.status()["queue_length"] == 0


# -- errors --------------------------------------------------------------------------------

BAD_CALLS: list[tuple[str, list[str], str]] = [
    ("empty text", ["''", "@a{sv} {}"], "InvalidText"),
    ("blank text", ["'  '", "@a{sv} {}"], "InvalidText"),
    ("text too long", ["'" + "a" * 100_000 + "'", "@a{sv} {}"], "TextTooLong"),
    ("unknown voice", ["'hi'", "{'voice': <'nobody'>}"], "UnknownVoice"),
    ("unknown option", ["'hi'", "{'speed': <2.0>}"], "InvalidOption"),
    ("rate as string", ["'hi'", "{'rate': <'fast'>}"], "InvalidOption"),
    ("rate as boolean", ["'hi'", "{'rate': <true>}"], "InvalidOption"),
    ("rate out of range", ["'hi'", "{'rate': <40.0>}"], "InvalidOption"),
    ("rate not finite", ["'hi'", "{'rate': <inf>}"], "InvalidOption"),
    ("bogus priority", ["'hi'", "{'priority': <'bogus'>}"], "InvalidOption"),
    ("priority as integer", ["'hi'", "{'priority': <1>}"], "InvalidOption"),
    ("voice as integer", ["'hi'", "{'voice': <7>}"], "InvalidOption"),
    ("ssml as integer", ["'hi'", "{'ssml': <1>}"], "InvalidOption"),
]


@pytest.mark.parametrize(("args", "code"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_speak_gets_documented_error(service: DBusFrontEnd, bus_address: str, args: list[str], code: str) -> None:
    assert error_name(gdbus(bus_address, "Speak", *args)) == const.ERROR_PREFIX + code
    assert_still_answers(bus_address)


def test_busctl_sees_the_message_of_a_myna_error(service: DBusFrontEnd, bus_address: str) -> None:
    result = busctl(bus_address, "Speak", "sa{sv}", "hi", "1", "voice", "s", "nobody")
    assert result.returncode != 0 and "nobody" in result.stderr
    assert_still_answers(bus_address)


def test_wrong_signature_is_refused_by_the_bus_layer(service: DBusFrontEnd, bus_address: str) -> None:
    assert error_name(gdbus(bus_address, "Speak", "'hi'")) == "org.freedesktop.DBus.Error.UnknownMethod"
    assert_still_answers(bus_address)


def test_busy_when_the_queue_is_full(serve: Serve, make_engine: Callable[..., RecordingEngine], bus_address: str) -> None:
    serve(make_engine(hold=True, queue_max=2))
    for _ in range(2):
        assert busctl(bus_address, "Speak", "sa{sv}", "queued", "0").returncode == 0
    assert error_name(gdbus(bus_address, "Speak", "'one too many'", "@a{sv} {}")) == const.ERROR_PREFIX + "Busy"
    assert_still_answers(bus_address)


@pytest.mark.parametrize(
    ("method", "args"),
    [("Speak", ["'hi'", "@a{sv} {}"]), ("Stop", ["uint64 1"]), ("StopAll", []), ("GetStatus", [])],
)
def test_unexpected_failure_is_internal_without_details(
    service: DBusFrontEnd, bus_address: str, engine: RecordingEngine, method: str, args: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    engine.fail_with = RuntimeError("secret detail at /opt/myna/engine.py line 42")
    result = gdbus(bus_address, method, *args)
    assert error_name(result) == const.ERROR_PREFIX + "Internal"
    assert "secret" not in result.stderr and "RuntimeError" not in result.stderr and "Traceback" not in result.stderr
    assert "secret detail" in caplog.text  # logged for the operator
    engine.fail_with = None
    assert_still_answers(bus_address)


def test_one_megabyte_text_is_too_long(service: DBusFrontEnd, bus_address: str, loop_thread: LoopThread) -> None:
    # 1 MB is far under the bus's message limit (128 MiB session, 32 MiB system) but over any
    # board's text limit; argv cannot carry it, so a dbus-fast client sends it.
    async def call() -> Message:
        bus = await MessageBus(bus_address=bus_address).connect()
        try:
            return await bus.call(
                Message(
                    destination=const.BUS_NAME, path=const.OBJECT_PATH, interface=const.INTERFACE,
                    member="Speak", signature="sa{sv}", body=["a" * 1_000_000, {}],
                )
            )  # fmt: skip
        finally:
            bus.disconnect()
            await bus.wait_for_disconnect()

    reply = loop_thread.run(call())
    assert reply.message_type is MessageType.ERROR
    assert reply.error_name == const.ERROR_PREFIX + "TextTooLong"
    assert_still_answers(bus_address)


# -- signals -------------------------------------------------------------------------------


def test_job_signals_seen_by_dbus_monitor(service: DBusFrontEnd, bus_address: str) -> None:
    monitor = subprocess.Popen(
        ["dbus-monitor", "--address", bus_address, f"type='signal',interface='{const.INTERFACE}'"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert monitor.stdout is not None
    try:
        # A monitor loses its unique name when it becomes one: after that line it sees everything.
        while "member=NameLost" not in monitor.stdout.readline():
            pass
        job = int(busctl(bus_address, "Speak", "sa{sv}", "hello there", "0").stdout.split()[1])
        seen: list[tuple[str, list[str]]] = []
        for line in monitor.stdout:
            if line.startswith("signal ") and f"interface={const.INTERFACE};" in line:
                seen.append((line.rsplit("member=", 1)[1].strip(), []))
            elif seen and line.startswith("   "):
                seen[-1][1].append(line.strip())
            if seen and seen[-1][0] == "JobFinished" and len(seen[-1][1]) == 2:
                break
    finally:
        monitor.terminate()
        monitor.wait(5)
        monitor.stdout.close()
    assert seen == [
        ("JobStarted", [f"uint64 {job}"]),
        ("WordBoundary", [f"uint64 {job}", "uint32 0", "uint32 5"]),
        ("WordBoundary", [f"uint64 {job}", "uint32 6", "uint32 5"]),
        ("JobFinished", [f"uint64 {job}", 'string "done"']),
    ]


def test_cancelled_job_signal_with_dbus_fast_client(
    serve: Serve, make_engine: Callable[..., RecordingEngine], bus_address: str, loop_thread: LoopThread
) -> None:
    serve(make_engine(hold=True))

    async def scenario() -> list[tuple[str, list[Any]]]:
        bus = await MessageBus(bus_address=bus_address).connect()
        seen: list[tuple[str, list[Any]]] = []
        try:
            introspection = await bus.introspect(const.BUS_NAME, const.OBJECT_PATH)
            speech = bus.get_proxy_object(const.BUS_NAME, const.OBJECT_PATH, introspection).get_interface(const.INTERFACE)
            speech.on_job_finished(lambda job, outcome: seen.append(("JobFinished", [job, outcome])))  # type: ignore[attr-defined]
            # Same connection: the bus handles our AddMatch before this call, so no signal is missed.
            job = await speech.call_speak("hold on", {"priority": Variant("s", "important")})  # type: ignore[attr-defined]
            assert await speech.call_stop(job) is True  # type: ignore[attr-defined]
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.02)
            return [(name, args) for name, args in seen if args[0] == job]
        finally:
            bus.disconnect()
            await bus.wait_for_disconnect()

    assert loop_thread.run(scenario()) == [("JobFinished", [1, "cancelled"])]


# -- the service's lifecycle -----------------------------------------------------------------


def test_name_already_owned_is_a_clear_error(service: DBusFrontEnd, engine: RecordingEngine, bus_address: str, loop_thread: LoopThread) -> None:
    second = DBusFrontEnd(engine, address=bus_address)
    with pytest.raises(DBusUnavailable, match="already owned"):
        loop_thread.run(second.start())
    assert engine.subscriber_count == 1
    assert_still_answers(bus_address)


def test_unreachable_bus_is_a_clear_error(engine: RecordingEngine, loop_thread: LoopThread, tmp_path: Path) -> None:
    front = DBusFrontEnd(engine, address=f"unix:path={tmp_path}/no-bus")
    with pytest.raises(DBusUnavailable, match="cannot connect"):
        loop_thread.run(front.start())


def test_stop_releases_the_name_and_unsubscribes(engine: RecordingEngine, bus_address: str, loop_thread: LoopThread) -> None:
    front = DBusFrontEnd(engine, address=bus_address)
    loop_thread.run(front.start())
    assert engine.subscriber_count == 1
    loop_thread.run(front.stop())
    assert engine.subscriber_count == 0
    assert error_name(gdbus(bus_address, "GetStatus")) == "org.freedesktop.DBus.Error.ServiceUnknown"
    again = DBusFrontEnd(engine, address=bus_address)
    loop_thread.run(again.start())
    assert_still_answers(bus_address)
    loop_thread.run(again.stop())


# -- the public contract ---------------------------------------------------------------------


def _interface_xml(document: str) -> str:
    """The org.myna.Speech1 interface element, canonical: attribute order and whitespace do not matter."""
    root = ET.fromstring(document)
    found = root if root.tag == "interface" else root.find(f"interface[@name='{const.INTERFACE}']")
    assert found is not None, document
    return ET.canonicalize(ET.tostring(found, encoding="unicode"), strip_text=True)


def test_introspection_matches_snapshot(service: DBusFrontEnd, bus_address: str) -> None:
    result = run("gdbus", "introspect", "--xml", "--address", bus_address, "--dest", const.BUS_NAME, "--object-path", const.OBJECT_PATH)
    assert result.returncode == 0, result.stderr
    live = _interface_xml(result.stdout)
    if os.environ.get("MYNA_UPDATE_SNAPSHOTS") == "1":
        element = ET.fromstring(live)
        ET.indent(element)
        SNAPSHOT.write_text(ET.tostring(element, encoding="unicode") + "\n", encoding="utf-8")
    # Changing the public API means regenerating this file on purpose (MYNA_UPDATE_SNAPSHOTS=1).
    assert live == _interface_xml(SNAPSHOT.read_text(encoding="utf-8"))


# -- translation helpers, without a bus ------------------------------------------------------


def test_options_from_variants_checks_types_before_values() -> None:
    options = options_from_variants({"voice": Variant("s", "amy"), "rate": Variant("x", 3), "ssml": Variant("b", True)})
    assert (options.voice, options.rate, options.ssml) == ("amy", 3.0, True)
    with pytest.raises(InvalidOption, match="'d'"):
        options_from_variants({"pitch": Variant("s", "1.0")})
    with pytest.raises(InvalidOption, match="unknown option"):
        options_from_variants({"Rate": Variant("d", 1.0)})


def test_status_to_variants_keeps_bool_apart_from_int() -> None:
    wrapped = status_to_variants({"a": True, "b": 3, "c": 0.5, "d": "x"})
    assert {k: v.signature for k, v in wrapped.items()} == {"a": "b", "b": "x", "c": "d", "d": "s"}
