"""The versioned symbol inventories shared by the runtime and the training tools.

``myna-arpabet`` v1 is the English phoneme inventory: the 39 ARPAbet phonemes of the CMU
Pronouncing Dictionary, vowels carrying their lexical stress (0 none, 1 primary, 2 secondary),
plus padding, boundary and pause tokens.  ``myna-graphemes`` v1 spells letters and is kept so
that packs built on it still load.  A voice pack names the inventory and version it was trained
on and the loader refuses a mismatch, because ids of another version mean other sounds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Inventory:
    """An ordered symbol table; a symbol's id is its index."""

    name: str
    version: int
    symbols: tuple[str, ...]

    @property
    def size(self) -> int:
        """Number of ids, padding included."""
        return len(self.symbols)

    def id_of(self, symbol: str) -> int:
        """Return the id of ``symbol``; KeyError when it is not in the inventory."""
        return self._index[symbol]

    @property
    def _index(self) -> dict[str, int]:
        # Cached on first use; the dataclass is frozen so go through object.__setattr__.
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {s: i for i, s in enumerate(self.symbols)}
            object.__setattr__(self, "_index_cache", cached)
        return cached


PAD = "<pad>"
BOS = "^"
EOS = "$"
WORD_BREAK = " "
# Pauses of increasing length: clause, sentence, question, exclamation.
PAUSES = (",", ".", "?", "!")

GRAPHEMES_V1 = Inventory(
    name="myna-graphemes",
    version=1,
    symbols=(PAD, BOS, EOS, WORD_BREAK, *PAUSES, "'", *"abcdefghijklmnopqrstuvwxyz", *"0123456789"),
)

VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
CONSONANTS = (
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P",
    "R", "S", "SH", "T", "TH", "V", "W", "Y", "Z", "ZH",
)
STRESSES = ("0", "1", "2")
PHONEMES = tuple(v + s for v in VOWELS for s in STRESSES) + CONSONANTS
"""The 69 ARPAbet symbols (15 vowels × 3 stresses + 24 consonants), in id order after the special tokens."""

ARPABET_V1 = Inventory(
    name="myna-arpabet",
    version=1,
    symbols=(PAD, BOS, EOS, WORD_BREAK, *PAUSES, *PHONEMES),
)

INVENTORIES = {(inv.name, inv.version): inv for inv in (GRAPHEMES_V1, ARPABET_V1)}
"""Every inventory this runtime can drive, by (name, version)."""

CURRENT = ARPABET_V1
"""The inventory new voices are trained on."""


def inventory(name: str, version: int) -> Inventory:
    """The inventory (name, version); KeyError when this runtime does not know it."""
    return INVENTORIES[(name, version)]


def is_vowel(symbol: str) -> bool:
    """True for a stressed or unstressed ARPAbet vowel."""
    return symbol[:2] in VOWELS and symbol[-1:] in STRESSES
