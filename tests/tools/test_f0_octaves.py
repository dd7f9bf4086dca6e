"""The F0 octave experiment: frames sorted by how DIO's F0 relates to harvest's."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "experiments"))
import f0_octaves  # noqa: E402


def test_frames_are_sorted_by_the_ratio_of_the_two_tracks() -> None:
    harvest = np.array([100.0, 100.0, 100.0, 100.0, 0.0, 100.0])
    dio = np.array([105.0, 200.0, 50.0, 150.0, 120.0, 0.0])
    r = f0_octaves.classify(dio, harvest)
    # Only the first four frames are voiced in both tracks.
    assert r["frames"] == 4
    assert (r["same"], r["double"], r["half"]) == (0.25, 0.25, 0.25)
    assert r["harvest_median_hz"] == 100.0 and r["dio_median_hz"] == pytest.approx(127.5)
    assert f0_octaves.classify(np.zeros(3), harvest[:3]) == {"frames": 0}


def test_a_steady_hum_is_tracked_alike_by_both(tmp_path: Path) -> None:
    pytest.importorskip("pyworld")
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    sr = 16000  # not the voice rate: the experiment resamples
    t = np.arange(sr) / sr
    hum = 0.3 * sum(np.sin(2 * np.pi * 120.0 * k * t) / k for k in range(1, 6))
    sf.write(str(tmp_path / "hum.wav"), hum, sr)
    r = f0_octaves.pooled([tmp_path / "hum.wav"])
    assert r["frames"] > 50 and r["same"] > 0.9 and r["double"] == 0.0
    assert r["harvest_median_hz"] == pytest.approx(120.0, rel=0.03)
