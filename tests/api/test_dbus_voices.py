"""InstallVoice and RemoveVoice on the D-Bus front end: thin calls into the engine, errors by name."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING, Iterator

import pytest

from myna.api import const
from myna.api.dbus import DBusFrontEnd
from myna.errors import BundleIncompatible, BundleInvalid, BundleUntrusted

if TYPE_CHECKING:
    # Annotations only: tests/ has no __init__.py, so conftest is not importable as a package.
    from conftest import LoopThread, RecordingEngine

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("dbus-daemon", "busctl", "gdbus")), reason="needs dbus-daemon, busctl and gdbus"
)


def busctl(address: str, method: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``busctl call`` one method of the service."""
    return subprocess.run(
        ["busctl", f"--address={address}", "call", const.BUS_NAME, const.OBJECT_PATH, const.INTERFACE, method, *args],
        capture_output=True, text=True, timeout=15, check=False,
    )  # fmt: skip


def gdbus_error(address: str, method: str, *args: str) -> tuple[str, str]:
    """Call with gdbus; return the D-Bus error name and message it printed."""
    result = subprocess.run(
        ["gdbus", "call", "--address", address, "--dest", const.BUS_NAME, "--object-path", const.OBJECT_PATH,
         "--method", f"{const.INTERFACE}.{method}", *args],
        capture_output=True, text=True, timeout=15, check=False,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout
    name, _, message = result.stderr.split("GDBus.Error:", 1)[1].partition(": ")
    return name, message.strip()


@pytest.fixture
def service(loop_thread: LoopThread, bus_address: str, engine: RecordingEngine) -> Iterator[DBusFrontEnd]:
    """The front end over the engine double, on the module's private bus."""
    front = DBusFrontEnd(engine, address=bus_address)
    loop_thread.run(front.start())
    yield front
    loop_thread.run(front.stop())


def test_install_voice_returns_the_id_and_list_voices_shows_it(service: DBusFrontEnd, bus_address: str, engine: RecordingEngine) -> None:
    result = busctl(bus_address, "InstallVoice", "s", "/var/lib/myna/incoming/anna.mynavoice")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 's "anna"'
    assert engine.calls[-1] == ("install_voice", "/var/lib/myna/incoming/anna.mynavoice")
    assert '"anna" "Anna" "en-US"' in busctl(bus_address, "ListVoices").stdout


def test_remove_voice(service: DBusFrontEnd, bus_address: str, engine: RecordingEngine) -> None:
    busctl(bus_address, "InstallVoice", "s", "/x/anna.mynavoice")
    result = busctl(bus_address, "RemoveVoice", "s", "anna")
    assert result.returncode == 0 and result.stdout.strip() == "", result.stderr
    assert "anna" not in busctl(bus_address, "ListVoices").stdout
    assert gdbus_error(bus_address, "RemoveVoice", "anna")[0] == const.ERROR_PREFIX + "UnknownVoice"
    assert gdbus_error(bus_address, "RemoveVoice", "amy")[0] == const.ERROR_PREFIX + "VoiceNotRemovable"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BundleInvalid("bundle must hold exactly bundle.json, adapter.npz, signature"), "BundleInvalid"),
        (BundleUntrusted("the bundle is not signed"), "BundleUntrusted"),
        (BundleIncompatible("made for another version of base model 'placeholder'"), "BundleIncompatible"),
    ],
)
def test_refused_bundles_are_named_errors_with_the_reason(
    service: DBusFrontEnd, bus_address: str, engine: RecordingEngine, error: Exception, code: str
) -> None:
    engine.fail_with = error
    name, message = gdbus_error(bus_address, "InstallVoice", "/x/anna.mynavoice")
    assert name == const.ERROR_PREFIX + code
    assert message == str(error)


def test_unexpected_failure_is_internal_without_details(service: DBusFrontEnd, bus_address: str, engine: RecordingEngine) -> None:
    engine.fail_with = RuntimeError("secret /root/path")
    name, message = gdbus_error(bus_address, "InstallVoice", "/x/anna.mynavoice")
    assert name == const.ERROR_PREFIX + "Internal" and "secret" not in message


def test_empty_arguments_are_invalid_options(service: DBusFrontEnd, bus_address: str, engine: RecordingEngine) -> None:
    assert gdbus_error(bus_address, "InstallVoice", "''")[0] == const.ERROR_PREFIX + "InvalidOption"
    assert gdbus_error(bus_address, "RemoveVoice", "'" + "v" * 65 + "'")[0] == const.ERROR_PREFIX + "InvalidOption"
    assert [c for c in engine.calls if c[0] in ("install_voice", "remove_voice")] == []
