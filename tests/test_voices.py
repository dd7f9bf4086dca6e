"""Voice packs: manifest validation, adapters, the registry and tier choice."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from myna import errors
from myna.voices import Manifest, VoicePack, VoiceRegistry, choose_tier, pitch_scale

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def source_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("voices") / "placeholder"
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_placeholder_voice.py"), "--out", str(out)],
        check=True, capture_output=True, timeout=50,
    )
    return out


@pytest.fixture
def pack_dir(source_pack: Path, tmp_path: Path) -> Path:
    """A private, editable copy of the generated pack."""
    return Path(shutil.copytree(source_pack, tmp_path / "pack"))


def edit_manifest(pack_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = pack_dir / "manifest.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


def test_generated_pack_loads_with_two_voices_and_two_tiers(pack_dir: Path) -> None:
    pack = VoicePack.load(pack_dir)
    assert set(pack.manifest.voices) == {"placeholder", "placeholder-alt"}
    assert list(pack.manifest.tiers) == ["tiny", "small"]
    assert pack.adapters["placeholder"]["speaker"].dtype == np.float32


def test_manifest_round_trips_through_dicts(pack_dir: Path) -> None:
    raw = json.loads((pack_dir / "manifest.json").read_text())
    assert Manifest.from_dict(raw).to_dict() == raw


def test_registry_lists_gets_and_defaults(pack_dir: Path) -> None:
    registry = VoiceRegistry([pack_dir])
    assert [v.id for v in registry.list()] == ["placeholder", "placeholder-alt"]
    assert registry.default_id == "placeholder"
    info = registry.get("placeholder-alt").info
    assert (info.pack_id, info.tiers, info.language) == ("placeholder", ("tiny", "small"), "en-US")


def test_unknown_voice_raises_unknown_voice(pack_dir: Path) -> None:
    with pytest.raises(errors.UnknownVoice):
        VoiceRegistry([pack_dir]).get("nobody")


def test_bad_sha256_is_refused(pack_dir: Path) -> None:
    edit_manifest(pack_dir, lambda m: m["tiers"]["tiny"]["graphs"]["encoder"].update(sha256="0" * 64))
    with pytest.raises(errors.VoicePackError, match="sha256 of tiny-encoder.tflite"):
        VoicePack.load(pack_dir)


def test_tampered_graph_file_is_refused(pack_dir: Path) -> None:
    path = pack_dir / "tiny-decoder.tflite"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(errors.VoicePackError, match="sha256"):
        VoicePack.load(pack_dir)


def test_missing_file_is_refused(pack_dir: Path) -> None:
    (pack_dir / "small-vocoder.tflite").unlink()
    with pytest.raises(errors.VoicePackError, match="not found"):
        VoicePack.load(pack_dir)


@pytest.mark.parametrize("name", ["../x", "../placeholder/tiny-encoder.tflite", "/etc/passwd", "sub/file", "..", ""])
def test_paths_outside_the_pack_are_refused(pack_dir: Path, name: str) -> None:
    edit_manifest(pack_dir, lambda m: m["tiers"]["tiny"]["graphs"]["encoder"].update(file=name))
    with pytest.raises(errors.VoicePackError, match="plain file name"):
        VoicePack.load(pack_dir)


def test_symlink_out_of_the_pack_is_refused(pack_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.npz"
    shutil.copy(pack_dir / "placeholder.npz", outside)
    (pack_dir / "placeholder.npz").unlink()
    (pack_dir / "placeholder.npz").symlink_to(outside)
    with pytest.raises(errors.VoicePackError, match="outside the pack"):
        VoicePack.load(pack_dir)


def test_shape_that_differs_from_the_graph_is_refused(pack_dir: Path) -> None:
    edit_manifest(pack_dir, lambda m: m["tiers"]["tiny"]["graphs"]["decoder"]["outputs"][0].update(shape=[1, 32, 21]))
    with pytest.raises(errors.VoicePackError, match="decoder"):
        VoicePack.load(pack_dir)


def test_shape_in_manifest_checked_against_graph_file(pack_dir: Path) -> None:
    # Consistent with the contract but not with the file: only reading the graph can catch it.
    def change(m: dict[str, Any]) -> None:
        m["tiers"]["tiny"]["graphs"]["decoder"]["inputs"][2]["shape"] = [1, 17]
        for role in ("encoder", "vocoder"):
            m["tiers"]["tiny"]["graphs"][role]["inputs"][1]["shape"] = [1, 17]

    edit_manifest(pack_dir, change)
    with pytest.raises(errors.VoicePackError, match="graph tiny-encoder.tflite has"):
        VoicePack.load(pack_dir)


def test_wrong_inventory_version_is_refused(pack_dir: Path) -> None:
    edit_manifest(pack_dir, lambda m: m["phoneme_inventory"].update(version=99))
    with pytest.raises(errors.VoicePackError, match="v99"):
        VoicePack.load(pack_dir)


def test_bad_adapter_shape_is_refused(pack_dir: Path) -> None:
    np.savez(pack_dir / "placeholder-alt.npz", speaker=np.zeros((1, 15), np.float32))
    with pytest.raises(errors.VoicePackError, match=r"placeholder-alt.npz\['speaker'\] is float32\[1, 15\]"):
        VoicePack.load(pack_dir)


def test_adapter_may_override_the_vector_of_one_graph(pack_dir: Path) -> None:
    alt = np.ones((1, 16), np.float32)
    np.savez(pack_dir / "placeholder-alt.npz", speaker=alt, **{"vocoder.speaker": 2 * alt})
    assert sorted(VoicePack.load(pack_dir).adapters["placeholder-alt"]) == ["speaker", "vocoder.speaker"]
    np.savez(pack_dir / "placeholder-alt.npz", speaker=alt, **{"vocoder.speaker": np.ones((1, 3), np.float32)})
    with pytest.raises(errors.VoicePackError, match=r"\['vocoder.speaker'\] is float32\[1, 3\]"):
        VoicePack.load(pack_dir)
    np.savez(pack_dir / "placeholder-alt.npz", speaker=alt, **{"postnet.speaker": alt})
    with pytest.raises(errors.VoicePackError, match="may also hold"):
        VoicePack.load(pack_dir)


def test_adapter_may_carry_a_pitch_scale_within_half_to_double(pack_dir: Path) -> None:
    alt = np.ones((1, 16), np.float32)
    np.savez(pack_dir / "placeholder-alt.npz", speaker=alt, pitch_scale=np.array([0.9], np.float32))
    adapter = VoicePack.load(pack_dir).adapters["placeholder-alt"]
    assert pitch_scale(adapter) == pytest.approx(0.9) and pitch_scale({"speaker": alt}) == 1.0
    np.savez(pack_dir / "placeholder-alt.npz", speaker=alt, pitch_scale=np.array([3.0], np.float32))
    with pytest.raises(errors.VoicePackError, match=r"\['pitch_scale'\] is 3, outside 0.5–2"):
        VoicePack.load(pack_dir)
    np.savez(pack_dir / "placeholder-alt.npz", speaker=alt, pitch_scale=np.array([0.9, 0.9], np.float32))
    with pytest.raises(errors.VoicePackError, match=r"\['pitch_scale'\] is float32\[2\], expected float32\[1\]"):
        VoicePack.load(pack_dir)


def test_adapter_with_pickles_is_refused(pack_dir: Path) -> None:
    np.savez(pack_dir / "placeholder.npz", speaker=np.array([{"a": 1}], dtype=object))
    with pytest.raises(errors.VoicePackError, match="without pickles"):
        VoicePack.load(pack_dir)


def test_pack_without_tiers_is_refused(pack_dir: Path) -> None:
    edit_manifest(pack_dir, lambda m: m.update(tiers={}))
    with pytest.raises(errors.VoicePackError, match="at least one tier"):
        VoicePack.load(pack_dir)


def test_missing_field_is_named(pack_dir: Path) -> None:
    edit_manifest(pack_dir, lambda m: m["audio"].pop("hop_length"))
    with pytest.raises(errors.VoicePackError, match="manifest.audio: missing field 'hop_length'"):
        VoicePack.load(pack_dir)


def test_tier_choice_takes_the_wanted_tier_if_present(pack_dir: Path) -> None:
    pack = VoicePack.load(pack_dir)
    assert choose_tier(pack, "tiny") == "tiny"
    assert choose_tier(pack, "small") == "small"


def test_tier_choice_falls_back_to_the_largest_smaller_tier(pack_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    pack = VoicePack.load(pack_dir)
    with caplog.at_level(logging.INFO, logger="myna.voices"):
        assert choose_tier(pack, "base") == "small"
    assert "no base tier; using small" in caplog.text


def test_tier_choice_falls_back_to_the_smallest_when_none_is_smaller(pack_dir: Path) -> None:
    edit_manifest(pack_dir, lambda m: m["tiers"].pop("tiny"))
    pack = VoicePack.load(pack_dir)
    assert choose_tier(pack, "tiny") == "small"


def test_broken_pack_is_skipped_when_not_strict(pack_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    registry = VoiceRegistry([tmp_path / "empty", pack_dir], strict=False)
    assert registry.default_id == "placeholder"
    with pytest.raises(errors.VoicePackError):
        VoiceRegistry([tmp_path / "empty", pack_dir])


def test_mel_floor_is_optional_and_checked(pack_dir: Path) -> None:
    assert VoicePack.load(pack_dir).manifest.audio.mel_floor == 0.0
    edit_manifest(pack_dir, lambda m: m["audio"].update(mel_floor=-11.5129))
    manifest = VoicePack.load(pack_dir).manifest
    assert manifest.audio.mel_floor == pytest.approx(-11.5129)
    assert manifest.to_dict()["audio"]["mel_floor"] == pytest.approx(-11.5129)
    edit_manifest(pack_dir, lambda m: m["audio"].update(mel_floor="quiet"))
    with pytest.raises(errors.VoicePackError, match="mel_floor"):
        VoicePack.load(pack_dir)


def test_a_trained_pack_beats_the_placeholder_as_default(pack_dir: Path, tmp_path: Path) -> None:
    assert VoicePack.load(pack_dir).manifest.placeholder
    trained = Path(shutil.copytree(pack_dir, tmp_path / "trained"))

    def as_trained(m: dict[str, Any]) -> None:
        del m["placeholder"]
        m.update(pack_id="trained", default_voice="bob")
        m["voices"] = {"amy": dict(m["voices"]["placeholder"], name="Amy"), "bob": dict(m["voices"]["placeholder-alt"], name="Bob")}

    edit_manifest(trained, as_trained)
    assert not VoicePack.load(trained).manifest.placeholder
    for order in ([pack_dir, trained], [trained, pack_dir]):
        assert VoiceRegistry(order).default_id == "bob"
        assert VoiceRegistry(order, default="placeholder").default_id == "placeholder"
    assert VoiceRegistry([pack_dir]).default_id == "placeholder"
    edit_manifest(pack_dir, lambda m: m.update(placeholder="yes"))
    with pytest.raises(errors.VoicePackError, match="manifest.placeholder"):
        VoicePack.load(pack_dir)
