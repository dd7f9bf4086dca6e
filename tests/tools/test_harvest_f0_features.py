"""The harvest-F0 features experiment: only the named speakers' f0 changes, everything else is the original."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyworld")
sf = pytest.importorskip("soundfile")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "experiments"))
import harvest_f0_features  # noqa: E402
from voice.audio import AUDIO  # noqa: E402


def test_the_named_speakers_get_harvest_f0_and_the_rest_is_untouched(tmp_path: Path) -> None:
    features, corpus, out = tmp_path / "features", tmp_path / "corpus", tmp_path / "out"
    sr = AUDIO.sample_rate
    t = np.arange(sr) / sr
    hum = 0.3 * sum(np.sin(2 * np.pi * 110.0 * k * t) / k for k in range(1, 6))
    (corpus / "joe" / "wavs").mkdir(parents=True)
    sf.write(str(corpus / "joe" / "wavs" / "u1.wav"), hum, sr)
    frames = sr // AUDIO.hop_length + 1
    original = {"ids": np.arange(5, dtype=np.int32), "mel": np.full((frames, 80), -5.0, np.float32),
                "f0": np.full(frames, 220.0, np.float32), "gain": np.asarray(1.5, np.float32)}
    for speaker in ("joe", "other"):
        (features / speaker).mkdir(parents=True)
        np.savez(features / speaker / "u1.npz", **original)
    np.save(features / "joe" / "u1.dur.npy", np.ones(5, np.int64))
    (features / "index.jsonl").write_text("{}\n")

    assert harvest_f0_features.main(["--features", str(features), "--corpus", str(corpus), "--speakers", "joe",
                                     "--out", str(out)]) == 0
    with np.load(out / "joe" / "u1.npz") as z:
        f0 = z["f0"]
        assert f0.shape == (frames,) and f0.dtype == np.float32
        assert np.median(f0[f0 > 0]) == pytest.approx(110.0, rel=0.03)  # the hum's own F0, not the old 220
        assert all(np.array_equal(z[k], original[k]) for k in ("ids", "mel", "gain"))
    assert (out / "joe" / "u1.dur.npy").is_file()
    assert (out / "other").is_symlink() and (out / "index.jsonl").is_symlink()
    # A second run keeps what is there.
    assert harvest_f0_features.main(["--features", str(features), "--corpus", str(corpus), "--speakers", "joe",
                                     "--out", str(out)]) == 0
