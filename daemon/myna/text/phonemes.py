"""The versioned symbol inventory shared by the runtime and the training tools.

Version 1 is the placeholder inventory: graphemes rather than phonemes, used until the
G2P frontend lands.  A voice pack names the inventory and version it was trained on and
the loader refuses a mismatch, because ids of another version mean other sounds.
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

CURRENT = GRAPHEMES_V1
