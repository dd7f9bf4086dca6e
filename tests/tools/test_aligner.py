"""The voice aligner: MAS against brute force, prior, batched forward-sum loss, training, durations, joe check."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("librosa")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from myna.text.phonemes import CURRENT  # noqa: E402
from voice.aligner import (Aligner, AlignerConfig, beta_binomial_log_prior, boundary_errors,  # noqa: E402
                           check_joe, evaluate, forward_sum_loss, load_items, load_model, main, mas, myna_boundaries,
                           piper_boundaries)
from voice.audio import AUDIO, log_mel  # noqa: E402
from voice.features import write_index, write_npz  # noqa: E402

SR, HOP = AUDIO.sample_rate, AUDIO.hop_length


def brute_force_path(logp: np.ndarray) -> tuple[int, ...]:
    """The best durations by trying every composition of T into N positive parts."""
    n, t = logp.shape
    best, best_score = (), -np.inf
    for cuts in itertools.combinations(range(1, t), n - 1):
        bounds = (0, *cuts, t)
        score = sum(logp[i, bounds[i] : bounds[i + 1]].sum() for i in range(n))
        if score > best_score:
            best, best_score = tuple(b - a for a, b in zip(bounds, bounds[1:])), score
    return best


def test_mas_follows_a_planted_path() -> None:
    truth = [1, 3, 2, 4]
    logp = np.full((4, 10), -5.0)
    start = 0
    for i, d in enumerate(truth):
        logp[i, start : start + d] = 0.0
        start += d
    assert mas(logp).tolist() == truth


@pytest.mark.parametrize("seed", range(5))
def test_mas_is_the_global_optimum(seed: int) -> None:
    logp = np.random.default_rng(seed).normal(size=(4, 11))
    dur = mas(logp)
    assert dur.dtype == np.int32 and dur.sum() == 11 and dur.min() >= 1
    assert tuple(dur.tolist()) == brute_force_path(logp)


def test_mas_edge_cases() -> None:
    assert mas(np.zeros((3, 3))).tolist() == [1, 1, 1]
    assert mas(np.zeros((1, 7))).tolist() == [7]
    with pytest.raises(ValueError, match="cannot hold"):
        mas(np.zeros((4, 3)))


def test_beta_binomial_prior() -> None:
    prior = beta_binomial_log_prior(6, 40)
    assert prior.shape == (40, 6)
    np.testing.assert_allclose(prior.exp().sum(-1).numpy(), 1.0, atol=1e-5)
    peaks = prior.argmax(-1).numpy()
    assert peaks[0] == 0 and peaks[-1] == 5 and np.all(np.diff(peaks) >= 0)
    assert torch.all(beta_binomial_log_prior(1, 5) == 0)


def test_forward_sum_loss_ignores_padding() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(1, 9, 4).log_softmax(-1), torch.randn(1, 6, 3).log_softmax(-1)
    batch = torch.full((2, 9, 4), -1e4)
    batch[0] = a[0]
    batch[1, :6, :3] = b[0]
    one = forward_sum_loss(a, torch.tensor([4]), torch.tensor([9]))
    two = forward_sum_loss(b, torch.tensor([3]), torch.tensor([6]))
    both = forward_sum_loss(batch, torch.tensor([4, 3]), torch.tensor([9, 6]))
    assert both.item() == pytest.approx((one.item() + two.item()) / 2, rel=1e-5)


def test_boundaries() -> None:
    sym = ["^", "HH", "AY1", " ", "DH", "EH1", "R", ",", "Y", "UW1", "."]
    ids = [CURRENT.id_of(s) for s in [*sym, "$"]]
    dur = [2, 3, 4, 1, 2, 2, 2, 6, 3, 3, 4, 1]
    # Breaks: the " " (ends at frame 10) and the mid-sentence "," (ends at 22); the final "." is not one.
    assert myna_boundaries(ids, dur) == [(10.0, 9.5), (22.0, 19.0)]
    piper = ["^", "_", "h", "_", "a", "_", " ", "_", "ð", "_", ",", "_", " ", "_", "j", "_", "$"]
    pdur = [2, 1, 2, 1, 3, 1, 1, 1, 4, 1, 3, 2, 2, 1, 4, 1, 1]
    # First break region: "_ ' ' _" after "a" (frames 9..12); second: "_ , _ ' ' _" after "ð" (frames 16..25).
    assert piper_boundaries(piper, pdur) == [(12.0, 10.5), (25.0, 20.5)]


# -- a tiny synthetic corpus in which every symbol has its own sound ----------------------------------

SOUNDS = {"AA1": 180.0, "S": -1.0, "M": 110.0, "IY1": 320.0}
"""Tone frequency per symbol; negative = white noise."""


def segment(symbol: str, frames: int, rng: np.random.Generator) -> np.ndarray:
    n = frames * HOP
    if symbol not in SOUNDS:  # BOS, EOS and word breaks are near-silence
        return 1e-3 * rng.standard_normal(n)
    f = SOUNDS[symbol]
    if f < 0:
        return 0.1 * rng.standard_normal(n)
    t = np.arange(n) / SR
    return 0.3 * sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 5))


def make_features(root: Path, n_utts: int = 12) -> tuple[Path, dict[str, list[int]]]:
    """Write a features folder of ``n_utts`` joe utterances; returns it and each utterance's true durations."""
    rng = np.random.default_rng(0)
    truth = {}
    for u in range(n_utts):
        sounds = rng.choice(list(SOUNDS), size=int(rng.integers(2, 4))).tolist()
        symbols = ["^", *[x for s in sounds for x in (s, " ")][:-1], "$"]
        dur = [int(rng.integers(6, 16)) if s in SOUNDS else int(rng.integers(2, 5)) for s in symbols]
        audio = np.concatenate([segment(s, d, rng) for s, d in zip(symbols, dur)]).astype(np.float32)
        dur[-1] += 1  # centred frames: n samples give n // hop + 1 frames
        uid = f"u{u:02d}"
        write_npz(root / "joe" / f"{uid}.npz", {
            "ids": np.array([CURRENT.id_of(s) for s in symbols], np.int32), "mel": log_mel(audio),
            "f0": np.zeros(audio.size // HOP + 1, np.float32), "samples": np.asarray(audio.size, np.int64)})
        truth[uid] = dur
    write_index(root)
    return root, truth


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, list[int]]]:
    """Features, and an aligner trained 20 steps on them."""
    features, truth = make_features(tmp_path_factory.mktemp("features"))
    out = tmp_path_factory.mktemp("aligner")
    args = ["--features", str(features), "--out", str(out), "--threads", "1", "--batch", "4", "--lr", "3e-3",
            "--warmup", "1", "--log-every", "5", "--mel-dim", "64", "--text-dim", "32", "--att-dim", "16"]
    assert main([*args, "--max-steps", "20"]) == 0
    return features, out, truth


def test_training_lowers_the_loss(trained: tuple[Path, Path, dict[str, list[int]]]) -> None:
    features, out, _ = trained
    history = json.loads((out / "history.json").read_text())
    losses = [loss for _, loss in history["loss"]]
    assert len(losses) == 4 and losses[-1] < losses[0]
    torch.manual_seed(0)  # the trainer's seed: the same initial weights
    fresh = Aligner(AlignerConfig(text_dim=32, mel_dim=64, att_dim=16))
    items = load_items(features)
    before = evaluate(fresh, features, items, 4)
    after = evaluate(load_model(out / "best.pt"), features, items, 4)
    assert after < before - 0.05
    assert (out / "curves.png").stat().st_size > 0


def test_resume_continues(trained: tuple[Path, Path, dict[str, list[int]]], tmp_path: Path) -> None:
    features, out, _ = trained
    copy = tmp_path / "aligner"
    copy.mkdir()
    (copy / "last.pt").write_bytes((out / "last.pt").read_bytes())
    assert main(["--features", str(features), "--out", str(copy), "--threads", "1", "--batch", "4", "--resume",
                 "--max-steps", "23", "--log-every", "1"]) == 0
    history = json.loads((copy / "history.json").read_text())
    assert [s for s, _ in history["loss"]][-3:] == [21, 22, 23]
    assert history["valid"][-1]["step"] == 23


def test_align_writes_durations(trained: tuple[Path, Path, dict[str, list[int]]]) -> None:
    features, out, truth = trained
    assert main(["--features", str(features), "--out", str(out), "--threads", "1", "--align", "--no-progress"]) == 0
    for uid, true in truth.items():
        dur = np.load(features / "joe" / f"{uid}.dur.npy")
        assert dur.dtype == np.int32 and dur.shape == (len(true),)
        assert dur.sum() == sum(true) and dur.min() >= 1


def test_boundary_errors() -> None:
    sym = ["^", "M", " ", "S", " ", "IY1", "$"]
    ids = [CURRENT.id_of(s) for s in sym]
    dur = [2, 10, 3, 8, 2, 9, 1]
    piper = [x for s in sym for x in (s, "_")][:-1]
    teacher = [x for d in dur for x in (d, 0)][:-1]
    exact = boundary_errors([(ids, dur, piper, teacher)])
    assert exact["onset_mae_ms"] == 0 and exact["onset_within_20ms"] == 1 and exact["boundaries"] == 2
    late = [2, 12, 3, 8, 2, 7, 1]  # both boundaries 2 frames (46 ms) late
    shifted = boundary_errors([(ids, late, piper, teacher), (ids[:3], [1, 1, 1], ["^", "_", "$"], [1, 0, 2])])
    assert shifted["utterances"] == 1 and shifted["of"] == 2  # the second has no break: not scored
    assert shifted["onset_mae_ms"] == pytest.approx(2 * 1000 * HOP / SR)
    assert shifted["onset_bias_ms"] == pytest.approx(2 * 1000 * HOP / SR) and shifted["onset_within_20ms"] == 0
    with pytest.raises(ValueError, match="no utterance"):
        boundary_errors([(ids[:3], [1, 1, 1], ["^", "_", "$"], [1, 0, 2])])


def test_check_joe_runs_the_aligner(trained: tuple[Path, Path, dict[str, list[int]]], tmp_path: Path) -> None:
    features, out, truth = trained
    corpus = tmp_path / "corpus"
    (corpus / "joe").mkdir(parents=True)
    lines = []
    for uid, dur in truth.items():
        # A teacher that agrees exactly with the planted durations: symbols interleaved with 0-frame pads.
        with np.load(features / "joe" / f"{uid}.npz") as z:
            symbols = [CURRENT.symbols[i] for i in z["ids"]]
        lines.append(json.dumps({"id": uid, "piper_symbols": [x for s in symbols for x in (s, "_")][:-1],
                                 "durations": [x for d in dur for x in (d, 0)][:-1]}))
    (corpus / "joe" / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    result = check_joe(load_model(out / "best.pt"), features, corpus, 100)
    breaks = sum(len(dur) // 2 - 1 for dur in truth.values())  # ^ a " " b " " c $: one fewer than sounds
    assert result["of"] == len(truth) and result["boundaries"] == breaks
    assert 0 <= result["onset_within_20ms"] <= 1 and np.isfinite(result["onset_mae_ms"])


def test_untrainable_utterances_are_left_out(tmp_path: Path) -> None:
    write_npz(tmp_path / "joe" / "short.npz", {"ids": np.arange(1, 6, dtype=np.int32),
                                               "mel": np.zeros((3, 80), np.float32),
                                               "f0": np.zeros(3, np.float32), "samples": np.asarray(600, np.int64)})
    write_index(tmp_path)
    assert load_items(tmp_path) == []
