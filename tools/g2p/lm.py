"""Count the phoneme n-gram that the G2P beam search uses, on the training split only, and write it.

Interpolated absolute discounting (D = 0.75): for a context seen ``tot`` times with ``types`` distinct
followers, ``P(w | ctx) = max(c(ctx, w) − D, 0) / tot + D · types / tot · P(w | ctx[1:])``; the unigram is
add-0.01.  Every pronunciation of every training word counts, padded with ``order − 1`` boundary ids in
front and one at the end.  The file stores, per seen n-gram, that interpolated log-probability and per
seen context its back-off weight ``log(D · types / tot)``, which is exactly what
``myna.text.g2p_lm.PhonemeLM`` needs to recompute ``P`` for unseen n-grams.

    python tools/build_g2p_lm.py --order 5 --out models/g2p-en/phoneme_lm.npz
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from myna.text.g2p_lm import BOUNDARY, FORMAT_VERSION
from myna.text.phonemes import PHONEMES

from .data import PHONE_ID, TRAIN, Entry, load_entries, split_entries

DISCOUNT = 0.75
SCALE = 16.0
"""uint8 step of the stored log-probabilities: 1/16 nat."""


def build(entries: list[Entry], order: int) -> dict[str, np.ndarray]:
    """Arrays of the ``phoneme_lm.npz`` format from the pronunciations of ``entries``."""
    vocab = len(PHONEMES) + 1
    counts: list[dict[tuple[int, ...], dict[int, int]]] = [defaultdict(lambda: defaultdict(int)) for _ in range(order)]
    for e in entries:
        for pron in e.prons:
            seq = [BOUNDARY] * (order - 1) + [PHONE_ID[p] for p in pron] + [BOUNDARY]
            for i in range(order - 1, len(seq)):
                for n in range(order):
                    counts[n][tuple(seq[i - n : i])][seq[i]] += 1
    unigram = counts[0][()]
    total = sum(unigram.values())
    logp: dict[tuple[int, ...], float] = {}  # (ctx..., w) → log P, all orders

    def prob(ctx: tuple[int, ...], w: int) -> float:
        if not ctx:
            return (unigram.get(w, 0) + 0.01) / (total + 0.01 * vocab)
        seen = counts[len(ctx)].get(ctx)
        lower = prob(ctx[1:], w)
        if not seen:
            return lower
        tot = sum(seen.values())
        return max(seen.get(w, 0) - DISCOUNT, 0) / tot + DISCOUNT * len(seen) / tot * lower

    bows: dict[tuple[int, ...], float] = {}
    for w in range(vocab):
        logp[(w,)] = math.log(prob((), w))
    for n in range(1, order):
        for ctx, followers in counts[n].items():
            tot = sum(followers.values())
            bows[ctx] = math.log(DISCOUNT * len(followers) / tot)
            for w in followers:
                logp[ctx + (w,)] = math.log(prob(ctx, w))
    # The trie needs every prefix as a node; the boundary padding makes prefixes such as (0, 0, 0, 0) that
    # are contexts but never events: give them their model probability too.
    for gram in list(logp):
        for cut in range(1, len(gram)):
            if gram[:cut] not in logp:
                logp[gram[:cut]] = math.log(prob(gram[: cut - 1], gram[cut - 1]))
    return to_trie(logp, bows, order, vocab)


def to_trie(logp: dict[tuple[int, ...], float], bows: dict[tuple[int, ...], float], order: int,
            vocab: int) -> dict[str, np.ndarray]:
    """Lay the n-grams out level by level in id order (the ``phoneme_lm.npz`` trie)."""
    levels = [sorted(k for k in logp if len(k) == n) for n in range(1, order + 1)]
    if levels[0] != [(w,) for w in range(vocab)]:
        raise ValueError("level 1 must hold every id")
    arrays: dict[str, np.ndarray] = {"format_version": np.array(FORMAT_VERSION), "order": np.array(order),
                                     "vocab": np.array(vocab), "scale": np.array(SCALE)}

    def quant(values: list[float]) -> np.ndarray:
        return np.clip(np.round(-np.array(values) * SCALE), 0, 255).astype(np.uint8)

    for n, grams in enumerate(levels, 1):
        arrays[f"ids_{n}"] = np.array([g[-1] for g in grams], np.uint8)
        arrays[f"logp_{n}"] = quant([logp[g] for g in grams])
        if n < order:
            kids: dict[tuple[int, ...], int] = defaultdict(int)
            for g in levels[n]:
                kids[g[:-1]] += 1
            if any(k not in logp for k in kids):
                raise ValueError(f"an {n + 1}-gram extends an unseen {n}-gram")
            arrays[f"children_{n}"] = np.array([kids.get(g, 0) for g in grams], np.uint8)
            arrays[f"bow_{n}"] = quant([bows.get(g, 0.0) for g in grams])
    return arrays


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    arrays = build(split_entries(load_entries())[TRAIN], args.order)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(args.out)
    grams = sum(len(arrays[f"ids_{n}"]) for n in range(1, args.order + 1))
    print(f"{args.out}: order {args.order}, {grams} n-grams, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
