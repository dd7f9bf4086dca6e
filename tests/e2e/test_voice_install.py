"""Voice bundles end to end: make_bundle → push_voice → the real mynad installs it → Speak plays it into the ALSA file PCM.

One daemon of its own (placeholder pack, a voice store and a trusted-keys folder in a short /tmp
folder, named by a config YAML), on its own private session bus.  The tests run in file order and
build on each other: install, speak, push again, refusals, the remote (ssh) path, removal, restart.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from mynad_harness import REPO, SAMPLE_RATE, TEXT, PrivateBus, VoiceDevice, run, tool
from myna.api import const
from myna.bundles import pack_bundle, unpack_bundle

ERROR = const.ERROR_PREFIX
SPEAKER = {
    "consent": {"given_by": "Anna Example", "date": "2025-03-01", "statement": "I agree to my voice being used by this car."},
    "provenance": {"tool": "tests/e2e", "recordings": 0, "recorded_seconds": 0, "notes": "random adapter"},
}
# Stands in for ssh on "the device": drops ssh's options and the destination, runs the command here,
# so the remote script (mktemp in the stage dir, busctl InstallVoice, rm) runs for real against mynad.
FAKE_SSH = """#!/bin/sh
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
shift 2
exec sh -c "$1"
"""


@pytest.fixture(scope="module")
def device() -> Iterator[VoiceDevice]:
    """Keys, bundles and a running daemon that trusts the key."""
    folder = Path(tempfile.mkdtemp(prefix="myna-v-", dir="/tmp"))
    bus = PrivateBus()
    dev = VoiceDevice(folder, bus)
    try:
        result = tool("voice_keys", "generate", "--out", str(folder / "keys"), "--name", "vendor")
        assert result.returncode == 0, result.stderr
        public = tool("voice_keys", "public", str(folder / "keys" / "vendor.key"))
        (dev.trusted / "vendor.pub").write_text(public.stdout)  # device provisioning
        (folder / "speaker.json").write_text(json.dumps(SPEAKER))
        for voice_id, seed in (("anna", 1), ("bob", 2)):
            np.savez(folder / f"{voice_id}.npz", speaker=np.random.default_rng(seed).normal(size=(1, 16)).astype(np.float32))
            make(dev, voice_id, "--key", str(folder / "keys" / "vendor.key"))
        dev.start()
        yield dev
    finally:
        dev.stop()
        bus.close()
        shutil.rmtree(folder, ignore_errors=True)


def make(dev: VoiceDevice, voice_id: str, *extra: str, out: str | None = None) -> Path:
    """``make_bundle.py`` for the adapter ``<voice_id>.npz`` on the placeholder base."""
    path = dev.folder / (out or f"{voice_id}.mynavoice")
    result = tool(
        "make_bundle", "--adapter", str(dev.folder / f"{voice_id}.npz"), "--base", str(REPO / "models" / "placeholder"),
        "--voice-id", voice_id, "--name", voice_id.title(), "--language", "en-GB",
        "--speaker", str(dev.folder / "speaker.json"), "--out", str(path), *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return path


def test_push_to_local_installs_the_voice_and_it_speaks(device: VoiceDevice) -> None:
    base = device.say("placeholder")
    result = device.push(device.folder / "anna.mynavoice", "--to", "local")
    assert (result.returncode, result.stdout) == (0, "local: installed anna\n"), result.stderr
    assert device.voices() == ["anna", "placeholder", "placeholder-alt"]
    assert '"anna" "Anna" "en-GB"' in device.daemon.busctl("ListVoices").stdout
    played = device.say("anna")
    assert played.size > SAMPLE_RATE // 4 and np.abs(played).max() > 1000
    assert played.shape != base.shape or not np.array_equal(played, base), "the new voice sounds like the base voice"
    # `myna say` in-process with the same config loads the installed voice the same way.
    out = device.folder / "anna.wav"
    cli = run([sys.executable, "-m", "myna.cli", "--config", str(device.config), "--board", "generic-x86_64",
               "say", "-v", "anna", "-o", str(out), TEXT], timeout=60)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    expected, rate = soundfile.read(out, dtype="int16")
    assert rate == SAMPLE_RATE
    np.testing.assert_array_equal(played, expected)


def test_pushing_again_is_an_idempotent_success(device: VoiceDevice) -> None:
    installed = device.store / "anna.mynavoice"
    before = installed.stat()
    result = device.push(device.folder / "anna.mynavoice", "--to", "local")
    assert (result.returncode, result.stdout) == (0, "local: installed anna\n"), result.stderr
    after = installed.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert sorted(p.name for p in device.store.iterdir()) == ["anna.mynavoice"]


def test_tampered_and_unsigned_bundles_are_refused_and_earlier_voices_still_speak(device: VoiceDevice) -> None:
    before = {voice: device.say(voice) for voice in ("anna", "placeholder")}
    bob = unpack_bundle((device.folder / "bob.mynavoice").read_bytes())
    anna = unpack_bundle((device.folder / "anna.mynavoice").read_bytes())
    tampered = device.folder / "tampered.mynavoice"
    # bob's signed manifest with anna's adapter: every member well-formed, but not what the key signed.
    tampered.write_bytes(pack_bundle(dataclasses.replace(bob, adapter=anna.adapter)))
    unsigned = make(device, "bob", "--unsigned", out="unsigned.mynavoice")

    result = device.push(tampered, "--to", "local")
    assert result.returncode == 1
    reason = r"adapter\.npz does not match the signed checksum .*altered after signing"
    assert re.fullmatch(rf"local: failed: BundleUntrusted: {reason}\n", result.stdout), result.stdout
    name, message = device.gdbus_error("InstallVoice", str(tampered))
    assert name == ERROR + "BundleUntrusted" and "altered after signing" in message
    name, message = device.gdbus_error("InstallVoice", str(unsigned))
    assert (name, message) == (ERROR + "BundleUntrusted", "the bundle is not signed")
    name, _ = device.gdbus_error("InstallVoice", str(device.folder / "speaker.json"))
    assert name == ERROR + "BundleInvalid"

    assert device.voices() == ["anna", "placeholder", "placeholder-alt"]
    assert sorted(p.name for p in device.store.iterdir()) == ["anna.mynavoice"]
    for voice, samples in before.items():
        np.testing.assert_array_equal(device.say(voice), samples)
    assert "Traceback" not in device.daemon.stderr_text()


def test_push_over_ssh_and_one_line_per_target(device: VoiceDevice) -> None:
    fake_ssh = device.folder / "ssh"
    fake_ssh.write_text(FAKE_SSH)
    fake_ssh.chmod(fake_ssh.stat().st_mode | stat.S_IXUSR)
    remote = ["--ssh", str(fake_ssh), "--stage-dir", str(device.incoming)]
    result = device.push(device.folder / "bob.mynavoice", "--to", "tester@car-12", *remote)
    assert (result.returncode, result.stdout) == (0, "tester@car-12: installed bob\n"), result.stderr
    assert list(device.incoming.iterdir()) == []  # the staged copy is gone again
    assert "bob" in device.voices()
    # A device that refuses the bundle and one that cannot be reached: one line each, exit 1.
    result = device.push(device.folder / "tampered.mynavoice", "--to", "tester@car-12", *remote)
    assert result.returncode == 1
    assert re.fullmatch(r"tester@car-12: failed: adapter\.npz does not match the signed checksum .*\n", result.stdout), result.stdout
    assert list(device.incoming.iterdir()) == []
    if shutil.which("ssh") is not None:
        result = device.push(device.folder / "bob.mynavoice", "--to", "local", "--to", "nobody@127.0.0.1", "--ssh-option", "Port=1")
        assert result.returncode == 1
        first, second = result.stdout.splitlines()
        assert first == "local: installed bob"
        assert second.startswith("nobody@127.0.0.1: failed: ssh: connect to host 127.0.0.1 port 1")


def test_remove_voice(device: VoiceDevice) -> None:
    result = device.daemon.busctl("RemoveVoice", "s", "anna")
    assert result.returncode == 0, result.stderr
    assert device.voices() == ["bob", "placeholder", "placeholder-alt"]
    assert not (device.store / "anna.mynavoice").exists()
    name, _ = device.gdbus_error("RemoveVoice", "anna")
    assert name == ERROR + "UnknownVoice"
    name, message = device.gdbus_error("RemoveVoice", "placeholder")
    assert name == ERROR + "VoiceNotRemovable" and "built into pack" in message
    result = device.daemon.gdbus_call("Speak", TEXT, "{'voice': <'anna'>}")
    assert result.returncode != 0 and ERROR + "UnknownVoice" in result.stderr


def test_installed_voices_survive_a_restart(device: VoiceDevice) -> None:
    bob = device.say("bob")
    device.stop()
    device.start()
    assert device.voices() == ["bob", "placeholder", "placeholder-alt"]
    np.testing.assert_array_equal(device.say("bob", fresh=True), bob)
