"""The G2P beam decoder: the phoneme n-gram file, CTC prefix beam search with one primary stress, the CTC score."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from g2p.data import Entry
from g2p.lm import build
from myna import errors
from myna.text.g2p_lm import BeamConfig, BeamDecoder, PhonemeLM
from myna.text.g2p_neural import ctc_log_likelihood
from myna.text.phonemes import PHONEMES

SYMBOLS = ("",) + tuple(PHONEMES)
ID = {s: k for k, s in enumerate(SYMBOLS)}
PRIMARY = {k for k, s in enumerate(SYMBOLS) if s.endswith("1")}
VOWELS = {k for k, s in enumerate(SYMBOLS) if s[-1:].isdigit()}
LEXICON = [Entry("cat", (("K", "AE1", "T"),)), Entry("cats", (("K", "AE1", "T", "S"),)),
           Entry("cast", (("K", "AE1", "S", "T"),)), Entry("task", (("T", "AE1", "S", "K"),)),
           Entry("tack", (("T", "AE1", "K"),))]


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> PhonemeLM:
    path = tmp_path_factory.mktemp("lm") / "phoneme_lm.npz"
    np.savez_compressed(path, **build(LEXICON, order=3))
    return PhonemeLM(path)


def ids(*symbols: str) -> tuple[int, ...]:
    return tuple(ID[s] for s in symbols)


def test_probabilities_sum_to_one_after_seen_and_unseen_contexts(lm: PhonemeLM) -> None:
    for context in [(), ids("K"), ids("K", "AE1"), ids("T", "S"), ids("ZH", "OY2")]:
        total = sum(math.exp(lm.logp(context, w)) for w in range(len(SYMBOLS)))
        assert total == pytest.approx(1.0, abs=0.05), context  # uint8 log-probabilities: 1/16 nat steps


def test_sequences_seen_in_the_lexicon_are_likelier_than_unseen_ones(lm: PhonemeLM) -> None:
    assert lm.logp(ids("K", "AE1"), ID["T"]) > lm.logp(ids("K", "AE1"), ID["ZH"])
    assert lm.logp(ids("AE1", "T"), 0) > lm.logp(ids("AE1", "T"), ID["K"])  # "cat" ends after T


def test_a_corrupt_or_foreign_file_is_a_voice_pack_error(tmp_path: Path) -> None:
    bad = tmp_path / "lm.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(errors.VoicePackError):
        PhonemeLM(bad)
    arrays = build(LEXICON, order=3)
    arrays["children_1"] = arrays["children_1"][:-1]
    np.savez(bad, **arrays)
    with pytest.raises(errors.VoicePackError, match="child counts"):
        PhonemeLM(bad)


def frames(*picks: str, strength: float = 4.0) -> np.ndarray:
    """One logits row per pick: that symbol ``strength``, blank 0, everything else -6."""
    rows = np.full((len(picks), len(SYMBOLS)), -6.0)
    for t, symbol in enumerate(picks):
        rows[t, 0] = 0.0
        if symbol:
            rows[t, ID[symbol]] = strength
    return rows


def test_with_clear_logits_the_beam_gives_the_greedy_answer() -> None:
    best, _ = BeamDecoder(None, PRIMARY, VOWELS).nbest(frames("K", "K", "", "AE1", "T", "", "T"))[0]
    assert best == ids("K", "AE1", "T", "T")


def test_the_beam_allows_exactly_one_primary_stress() -> None:
    logits = frames("R", "IY1", "K", "AO1", "R", "D")
    logits[1, ID["IY2"]] = 3.5
    candidates = BeamDecoder(None, PRIMARY, VOWELS).nbest(logits)
    assert candidates[0][0] == ids("R", "IY2", "K", "AO1", "R", "D")
    assert all(sum(k in PRIMARY for k in c) == 1 for c, _ in candidates)


def test_the_lm_breaks_an_acoustic_tie_toward_a_real_sequence(lm: PhonemeLM) -> None:
    logits = frames("K", "AE1", "S", "T")
    logits[2, ID["Z"]] = logits[2, ID["S"]]  # S or Z: the acoustics cannot tell
    decoder = BeamDecoder(lm, PRIMARY, VOWELS, BeamConfig(lm_weight=1.0))
    assert decoder.nbest(logits)[0][0] == ids("K", "AE1", "S", "T")


def test_candidates_are_ranked_best_first() -> None:
    logits = frames("K", "AE1", "T")
    logits[2, ID["D"]] = 3.0
    candidates = BeamDecoder(None, PRIMARY, VOWELS, BeamConfig(beam=4)).nbest(logits)
    scores = [s for _, s in candidates]
    assert scores == sorted(scores, reverse=True) and candidates[1][0] == ids("K", "AE1", "D")


def brute_force_ctc(logp: np.ndarray, target: list[int]) -> float:
    """Sum over every frame path that collapses to ``target``."""
    total = 0.0
    for path in itertools.product(range(logp.shape[1]), repeat=logp.shape[0]):
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or k != path[i - 1])]
        if collapsed == target:
            total += math.exp(sum(logp[t, k] for t, k in enumerate(path)))
    return math.log(total)


@pytest.mark.parametrize("target", [[1], [1, 2], [2, 2], [1, 2, 1]])
def test_ctc_log_likelihood_is_the_sum_over_alignments(target: list[int]) -> None:
    logits = np.random.default_rng(len(target)).normal(size=(5, 3))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert ctc_log_likelihood(logits, target) == pytest.approx(brute_force_ctc(logp, target), abs=1e-9)


def test_a_target_too_long_for_the_frames_scores_the_floor() -> None:
    assert ctc_log_likelihood(np.zeros((3, 4)), [1, 1, 1]) == -1e4  # repeats need blanks between them
