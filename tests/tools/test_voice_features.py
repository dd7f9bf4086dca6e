"""Voice feature extraction on a tiny synthetic corpus: the npz contract, loudness, f0, index, resume, errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("librosa")
pytest.importorskip("tqdm")
# pyworld warns (pkg_resources) on import, which filterwarnings=error turns into a failure: probe, don't import.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("pyworld") is None,
                                reason="pyworld is not installed (the 'train' extra)")

import soundfile as sf  # noqa: E402

from myna.text.phonemes import CURRENT  # noqa: E402
from voice.audio import AUDIO, log_mel  # noqa: E402
from voice.features import (FeatureError, load_wav, main, prepare, read_index, split_of,  # noqa: E402
                            speaker_order)

SR = AUDIO.sample_rate


def tone(f0: float, seconds: float, amplitude: float) -> np.ndarray:
    """A voiced-like harmonic signal (fundamental + decaying harmonics) with a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    x = x / np.sqrt(np.mean(x**2)) * amplitude / np.sqrt(2)
    return x + 1e-4 * np.random.default_rng(0).standard_normal(t.size)


def write_utt(corpus: Path, speaker: str, utt_id: str, audio: np.ndarray, phonemes: list[str]) -> None:
    folder = corpus / speaker
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    sf.write(folder / "wavs" / f"{utt_id}.wav", np.clip(audio, -1, 1), SR, subtype="PCM_16")
    rec = {"id": utt_id, "speaker": speaker, "phonemes": phonemes, "samples": int(audio.size), "sample_rate": SR}
    with (folder / "metadata.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Two speakers, three clips: a quiet 150 Hz voice, a 220 Hz voice, and noise with one loud click."""
    root = tmp_path / "corpus"
    silence = np.zeros(2000)
    write_utt(root, "joe", "utt-1", np.concatenate([silence, tone(150.0, 0.6, 0.02), silence]),
              ["HH", "AH0", " ", "L", "OW1", "."])
    write_utt(root, "bob", "utt-2", tone(220.0, 0.5, 0.3), ["S", "IY1", ","])
    clicky = 0.01 * np.random.default_rng(1).standard_normal(9001)
    clicky[4000] = 0.9
    write_utt(root, "bob", "utt-3", clicky, ["SH"])
    return root


def test_npz_contract_and_index(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "features"
    summary = prepare(corpus, out, progress=False)
    assert summary["extracted"] == 3 and summary["skipped"] == 0
    assert json.loads((out / "speakers.json").read_text())["speakers"] == ["joe", "bob"]
    rows = read_index(out)
    assert [(r["speaker"], r["id"]) for r in rows] == [("joe", "utt-1"), ("bob", "utt-2"), ("bob", "utt-3")]
    for row in rows:
        lines = (corpus / row["speaker"] / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
        rec = next(r for r in map(json.loads, lines) if r["id"] == row["id"])
        with np.load(out / row["speaker"] / f"{row['id']}.npz") as z:
            frames = rec["samples"] // AUDIO.hop_length + 1
            expected_ids = [CURRENT.id_of("^"), *(CURRENT.id_of(p) for p in rec["phonemes"]), CURRENT.id_of("$")]
            assert z["ids"].dtype == np.int32 and z["ids"].tolist() == expected_ids
            assert z["mel"].dtype == np.float32 and z["mel"].shape == (frames, 80)
            assert z["f0"].dtype == np.float32 and z["f0"].shape == (frames,)
            assert z["energy"].dtype == np.float32 and z["energy"].shape == (frames,)
            assert np.all(z["energy"] >= np.log(AUDIO.log_floor) - 1e-6)
            assert z["audio_peak"].dtype == np.float32 and 0 < float(z["audio_peak"]) <= 0.99 + 1e-6
            assert int(z["samples"]) == rec["samples"]
            # The vocoder reads the wav back through load_wav with the stored gain: it must be what the mel saw.
            audio = load_wav(corpus / row["speaker"] / "wavs" / f"{row['id']}.wav", float(z["gain"]))
            np.testing.assert_allclose(log_mel(audio), z["mel"], atol=1e-4)
            assert abs(np.max(np.abs(audio)) - float(z["audio_peak"])) < 1e-6
        assert row["frames"] == frames and row["n_ids"] == len(rec["phonemes"]) + 2
        assert row["split"] == split_of(row["speaker"], row["id"])
        assert row["seconds"] == pytest.approx(rec["samples"] / SR, abs=1e-4)


def test_f0_and_loudness(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "features"
    prepare(corpus, out, progress=False)
    with np.load(out / "joe" / "utt-1.npz") as z:
        f0, gain = z["f0"], float(z["gain"])
    voiced = f0 > 0
    assert 0.3 < voiced.mean() < 0.95  # the tone is voiced, the silence around it is not
    assert np.median(f0[voiced]) == pytest.approx(150.0, rel=0.05)
    assert not voiced[:3].any() and not voiced[-3:].any()
    # A quiet voice is brought up to −20 dBFS RMS over its voiced frames.
    audio = load_wav(corpus / "joe" / "wavs" / "utt-1.wav", gain)
    centre = audio[2000 + 1000 : 2000 + 12000]
    assert gain > 3 and 20 * np.log10(np.sqrt(np.mean(centre**2))) == pytest.approx(-20.0, abs=0.5)
    # A loud click limits the gain instead: the peak lands on 0.99.
    with np.load(out / "bob" / "utt-3.npz") as z:
        assert float(z["audio_peak"]) == pytest.approx(0.99, abs=1e-3)


def test_resume_skips_existing(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "features"
    prepare(corpus, out, progress=False)
    kept = out / "joe" / "utt-1.npz"
    stamp = kept.stat().st_mtime_ns
    (out / "bob" / "utt-2.npz").unlink()
    (out / "index.jsonl").write_text("")
    summary = prepare(corpus, out, progress=False)
    assert summary["extracted"] == 1 and summary["skipped"] == 2
    assert kept.stat().st_mtime_ns == stamp
    assert len(read_index(out)) == 3
    assert not list(out.rglob("*.tmp"))


def test_limit_and_speakers(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "features"
    assert main(["--corpus", str(corpus), "--out", str(out), "--speakers", "bob", "--limit", "1", "--no-progress"]) == 0
    assert [(r["speaker"], r["id"]) for r in read_index(out)] == [("bob", "utt-2")]
    assert json.loads((out / "speakers.json").read_text())["speakers"] == ["bob"]


def test_unknown_phoneme_names_the_utterance(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_utt(corpus, "bob", "utt-bad", tone(200.0, 0.2, 0.1), ["HH", "XX1"])
    out = tmp_path / "features"
    with pytest.raises(FeatureError, match=r"bob/utt-bad: phoneme 'XX1' is not in myna-arpabet"):
        prepare(corpus, out, progress=False)
    assert not out.exists()  # validated before any work
    assert main(["--corpus", str(corpus), "--out", str(out), "--no-progress"]) == 2
    assert "bob/utt-bad" in capsys.readouterr().err


def test_split_and_speaker_order() -> None:
    share = np.mean([split_of("spk", f"u{i}") == "valid" for i in range(5000)])
    assert 0.01 < share < 0.03
    assert split_of("joe", "carrier-000175") == split_of("joe", "carrier-000175")
    assert speaker_order(["flite-slt", "joe", "festival-kal"]) == ["joe", "festival-kal", "flite-slt"]
