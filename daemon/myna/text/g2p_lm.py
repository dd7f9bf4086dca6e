"""A back-off phoneme n-gram model and the CTC prefix beam search that uses it to decode G2P logits.

Why: greedy CTC picks each frame's best symbol on its own, so a word can come out with a sequence of
sounds no English word has ("K S T R"), or with two primary stresses.  A phoneme n-gram counted on the
dictionary's training words knows which sequences exist; the beam search keeps the few best prefixes
per frame, adds ``lm_weight`` × the n-gram log-probability and ``insertion_bonus`` per emitted phoneme,
and allows exactly one primary stress per word.  The model file is built by ``tools/g2p/lm.py``.

File format (``phoneme_lm.npz``, no pickles) — a trie, 2 bytes per n-gram: ``order`` (n), ``vocab``
(symbol count incl. the boundary id 0), ``scale``; then for each level L = 1..n the L-grams seen in
training sorted by their ids, as ``ids_L`` (uint8, the last id; level 1 holds every id in order),
``logp_L`` (uint8: ``−logp × scale`` rounded, the interpolated log-probability) and, below the top level,
``children_L`` (uint8, how many (L+1)-grams extend it; they follow in the same order) and ``bow_L``
(uint8: ``−log back-off weight × scale``).  Unseen n-grams back off: ``bow(ctx) + logp(w | ctx[1:])``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import errors

BOUNDARY = 0
"""Id that pads the context at the start of a word and ends it (the CTC blank id, never a phoneme)."""
FORMAT_VERSION = 1


class PhonemeLM:
    """Read-only back-off n-gram over phoneme ids; ``logp(context, w)`` with a small memo."""

    def __init__(self, path: Path) -> None:
        """Load and check ``path``; VoicePackError when it is not a phoneme LM this code can read."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format_version"]) != FORMAT_VERSION:
                    raise errors.VoicePackError(f"{path.name}: phoneme LM format {int(z['format_version'])}, "
                                                f"expected {FORMAT_VERSION}")
                self.order = int(z["order"])
                self.vocab = int(z["vocab"])
                scale = float(z["scale"])
                self._ids = [z[f"ids_{n}"].astype(np.int64) for n in range(1, self.order + 1)]
                self._logp = [z[f"logp_{n}"].astype(np.float64) / -scale for n in range(1, self.order + 1)]
                self._bow = [z[f"bow_{n}"].astype(np.float64) / -scale for n in range(1, self.order)]
                children = [z[f"children_{n}"].astype(np.int64) for n in range(1, self.order)]
        except (OSError, KeyError, ValueError) as exc:
            raise errors.VoicePackError(f"{path}: cannot read the phoneme LM ({exc})") from None
        if not (1 <= self.order <= 8 and 1 < self.vocab <= 256) or len(self._ids[0]) != self.vocab:
            raise errors.VoicePackError(f"{path.name}: order {self.order} / vocab {self.vocab} out of range")
        # start[L][i]: index in level L+1 of node i's first child (children are stored in parent order).
        self._start = []
        for n, count in enumerate(children):
            if count.sum() != len(self._ids[n + 1]) or len(count) != len(self._ids[n]):
                raise errors.VoicePackError(f"{path.name}: level {n + 1} child counts do not match level {n + 2}")
            self._start.append(np.concatenate(([0], np.cumsum(count))))
        self._memo: dict[tuple[tuple[int, ...], int], float] = {}

    def _node(self, ids: Sequence[int]) -> int:
        """Index of the n-gram ``ids`` in its level, or -1 when it was never seen."""
        if not 0 <= ids[0] < self.vocab:
            return -1
        node = int(ids[0])
        for level, symbol in enumerate(ids[1:]):
            lo, hi = int(self._start[level][node]), int(self._start[level][node + 1])
            if lo == hi:
                return -1
            kids = self._ids[level + 1]
            j = lo + int(np.searchsorted(kids[lo:hi], symbol))
            if j >= hi or kids[j] != symbol:
                return -1
            node = j
        return node

    def logp(self, context: Sequence[int], w: int) -> float:
        """Natural log P(w | the last order-1 ids of context), context padded with the boundary id."""
        ctx = tuple(context[-(self.order - 1):]) if self.order > 1 else ()
        if len(ctx) < self.order - 1:
            ctx = (BOUNDARY,) * (self.order - 1 - len(ctx)) + ctx
        key = (ctx, w)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        value = self._backoff(ctx, w)
        if len(self._memo) > 200_000:  # bound memory on a long-running daemon
            self._memo.clear()
        self._memo[key] = value
        return value

    def _backoff(self, ctx: tuple[int, ...], w: int) -> float:
        bow = 0.0
        while True:
            i = self._node(ctx + (w,))
            if i >= 0:
                return bow + float(self._logp[len(ctx)][i])
            if not ctx:
                return bow + math.log(1e-6)  # an id outside the vocabulary
            j = self._node(ctx)
            if j >= 0:
                bow += float(self._bow[len(ctx) - 1][j])
            ctx = ctx[1:]


@dataclass(frozen=True)
class BeamConfig:
    """Beam search settings; stored in the G2P manifest under ``decoder``."""

    beam: int = 8
    lm_weight: float = 0.4
    insertion_bonus: float = 0.5
    prune: float = -7.0
    """Symbols whose frame log-probability is below this are not expanded (speed; no measurable loss)."""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Float64 log-probabilities over the last axis (raw logits or already normalised ones)."""
    lp = logits.astype(np.float64)
    lp -= lp.max(-1, keepdims=True)
    return lp - np.log(np.exp(lp).sum(-1, keepdims=True))


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


class BeamDecoder:
    """CTC prefix beam search with a phoneme LM and one primary stress per word."""

    def __init__(self, lm: PhonemeLM | None, primary_ids: set[int], stressed_ids: set[int],
                 config: BeamConfig = BeamConfig(), blank: int = 0) -> None:
        """``primary_ids``: outputs that carry primary stress; ``stressed_ids``: every vowel output."""
        self.lm = lm
        self.cfg = config
        self.blank = blank
        self._primary = frozenset(primary_ids)
        self._vowels = frozenset(stressed_ids)

    def with_config(self, config: BeamConfig) -> BeamDecoder:
        """The same LM and stress sets with other settings (used to tune the weights)."""
        return BeamDecoder(self.lm, set(self._primary), set(self._vowels), config, self.blank)

    def nbest(self, logits: np.ndarray) -> list[tuple[tuple[int, ...], float]]:
        """Candidates (output ids, score), best first, for ``logits`` [steps, n_out] (raw or log-softmax)."""
        lp = log_softmax(logits)
        cfg, blank, primary = self.cfg, self.blank, self._primary
        # prefix → [log P(prefix, ending in blank), log P(prefix, ending in its last symbol)]
        beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
        extra: dict[tuple[int, ...], float] = {(): 0.0}  # LM + insertion score of each prefix
        has_primary: dict[tuple[int, ...], bool] = {(): False}
        for row in lp:
            expand = [k for k in np.flatnonzero(row > cfg.prune).tolist() if k != blank]
            nxt: dict[tuple[int, ...], list[float]] = {}
            for prefix, (p_b, p_nb) in beams.items():
                total = _logaddexp(p_b, p_nb)
                slot = nxt.setdefault(prefix, [-math.inf, -math.inf])
                slot[0] = _logaddexp(slot[0], total + row[blank])
                last = prefix[-1] if prefix else None
                for k in expand:
                    p = float(row[k])
                    if k == last:  # repeat without a blank in between: the same symbol continues
                        slot[1] = _logaddexp(slot[1], p_nb + p)
                        source = p_b
                    else:
                        source = total
                    if k in primary and has_primary[prefix]:
                        continue
                    grown = prefix + (k,)
                    if grown not in extra:
                        lm = self.lm.logp(prefix, k) if self.lm is not None else 0.0
                        extra[grown] = extra[prefix] + cfg.lm_weight * lm + cfg.insertion_bonus
                        has_primary[grown] = has_primary[prefix] or k in primary
                    g = nxt.setdefault(grown, [-math.inf, -math.inf])
                    g[1] = _logaddexp(g[1], source + p)
            ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]) + extra[kv[0]], reverse=True)
            beams = {prefix: (s[0], s[1]) for prefix, s in ranked[: cfg.beam]}

        def final(prefix: tuple[int, ...]) -> float:
            score = _logaddexp(*beams[prefix]) + extra[prefix]
            if self.lm is not None:
                score += cfg.lm_weight * self.lm.logp(prefix, BOUNDARY)
            return score

        # A word with vowels needs exactly one primary stress; fall back to all beams if none qualifies.
        legal = [p for p in beams if has_primary[p] or not any(k in self._vowels for k in p)]
        return sorted(((p, final(p)) for p in (legal or list(beams))), key=lambda c: c[1], reverse=True)
