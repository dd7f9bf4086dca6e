"""Cloning end to end, small and fast: synthetic recordings → clone_voice.py (signed bundle) → push_voice.py
--to local → the real mynad installs it on its base pack → Speak plays the clone into the ALSA file PCM.

The base pack is built here from tiny untrained models (``clone_support``), so the voices sound like
nothing; what is tested is that every real piece hands the clone on: the fit, the bundle and its
signature, the push, the daemon's checks, the store and the synthesis.
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("librosa")
pytest.importorskip("matplotlib")
pytest.importorskip("pyworld")
pytest.importorskip("tflite")
pytest.importorskip("ai_edge_litert.interpreter")

from clone_support import features_for_pack, make_base_models, write_recordings  # noqa: E402
from mynad_harness import SAMPLE_RATE, PrivateBus, VoiceDevice, tool  # noqa: E402
from myna.bundles import pack_bundle, unpack_bundle  # noqa: E402

VOICE_ID = "test-clone"


@dataclasses.dataclass
class Cloned:
    device: VoiceDevice
    bundle: Path


@pytest.fixture(scope="module")
def cloned() -> Iterator[Cloned]:
    """A base pack from tiny models, a clone of five synthetic takes as a signed bundle, a daemon that trusts the key."""
    import clone_voice
    from voice.pack import TierSource, build_voice_pack

    folder = Path(tempfile.mkdtemp(prefix="myna-c-", dir="/tmp"))  # short: the daemon's socket path is limited
    bus = PrivateBus()
    device: VoiceDevice | None = None
    try:
        base = make_base_models(folder)
        features, card = features_for_pack(folder, base["aligner"])
        pack = build_voice_pack("myna-test", folder / "pack", features, [TierSource("tiny", base["acoustic"], base["vocoder"])],
                                card, calib_chunks=4, vocoder_windows=8, measure_windows=2)
        (folder / "dev").mkdir()
        device = VoiceDevice(folder / "dev", bus, voice_dirs=(pack,))
        keys = tool("voice_keys", "generate", "--out", str(folder / "keys"), "--name", "vendor")
        assert keys.returncode == 0, keys.stderr
        public = tool("voice_keys", "public", str(folder / "keys" / "vendor.key"))
        (device.trusted / "vendor.pub").write_text(public.stdout)  # device provisioning
        out = folder / "clone"
        assert clone_voice.main([
            "--recordings", str(write_recordings(folder / "recordings")), "--acoustic", str(base["acoustic"]),
            "--vocoder", str(base["vocoder"]), "--aligner", str(base["aligner"]), "--base-pack", str(pack),
            "--voice-id", VOICE_ID, "--name", "Test Clone", "--out", str(out), "--steps", "10", "--threads", "1",
            "--no-report", "--no-progress", "--key", str(folder / "keys" / "vendor.key"),
            "--consent-by", "Test Speaker", "--consent-date", "2026-01-01", "--consent-statement", "I agree to this test.",
        ]) == 0  # fmt: skip
        device.start()
        yield Cloned(device, out / f"{VOICE_ID}.mynavoice")
    finally:
        if device is not None:
            device.stop()
        bus.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.timeout(120)
def test_a_clone_of_synthetic_recordings_is_pushed_installed_and_speaks(cloned: Cloned) -> None:
    device = cloned.device
    assert device.voices() == ["joe", "other"]  # the base pack's own voices
    base = device.say("joe")
    result = device.push(cloned.bundle, "--to", "local")
    assert (result.returncode, result.stdout) == (0, f"local: installed {VOICE_ID}\n"), result.stderr
    assert device.voices() == ["joe", "other", VOICE_ID]
    with np.load(io.BytesIO(unpack_bundle(cloned.bundle.read_bytes()).adapter), allow_pickle=False) as adapter:
        # The fitted vectors and the recordings' pitch level travelled inside the signed bundle.
        assert sorted(adapter.files) == ["decoder.speaker", "encoder.speaker", "pitch_scale", "speaker"]
    played = device.say(VOICE_ID)
    assert played.size > SAMPLE_RATE // 4 and np.any(played != 0)
    assert played.shape != base.shape or not np.array_equal(played, base), "the clone sounds like the base voice"


@pytest.mark.timeout(60)
def test_a_tampered_clone_is_refused_and_the_installed_clone_still_speaks(cloned: Cloned) -> None:
    device = cloned.device
    before = device.say(VOICE_ID)
    files = unpack_bundle(cloned.bundle.read_bytes())
    other = dataclasses.replace(files, adapter=files.adapter.replace(b"\x00", b"\x01", 1))
    tampered = cloned.bundle.with_name("tampered.mynavoice")
    tampered.write_bytes(pack_bundle(other))
    result = device.push(tampered, "--to", "local")
    assert result.returncode == 1
    assert re.fullmatch(r"local: failed: BundleUntrusted: adapter\.npz does not match the signed checksum .*\n", result.stdout), result.stdout
    np.testing.assert_array_equal(device.say(VOICE_ID), before)
    assert "Traceback" not in device.daemon.stderr_text()
