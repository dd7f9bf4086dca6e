"""Phoneme and diphone coverage of ARPAbet sequences (stress kept for phonemes, dropped for diphones)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from myna.text.phonemes import ARPABET_V1, CONSONANTS, STRESSES, VOWELS

BASE_PHONEMES: tuple[str, ...] = VOWELS + CONSONANTS
"""The 39 ARPAbet phonemes without stress."""
STRESSED_PHONEMES: tuple[str, ...] = tuple(f"{v}{s}" for v in VOWELS for s in STRESSES) + CONSONANTS
"""The 69 phoneme symbols of ``myna-arpabet`` v1 (vowels with stress)."""
_ALL = set(ARPABET_V1.symbols)


def base(symbol: str) -> str:
    """``AH0`` → ``AH``; consonants unchanged."""
    return symbol[:-1] if symbol[-1:].isdigit() else symbol


@dataclass
class Coverage:
    """Counts over a set of utterances; ``add`` one phoneme sequence at a time."""

    phonemes: Counter[str] = field(default_factory=Counter)
    """Stressed phoneme symbol → count."""
    diphones: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(left, right) stress-free pairs, across word boundaries but not across pauses."""

    def add(self, symbols: Sequence[str]) -> None:
        """Count one utterance: inventory symbols, word breaks (" ") and pause marks allowed."""
        previous: str | None = None
        for symbol in symbols:
            if symbol == " ":
                continue
            if symbol not in STRESSED_PHONEMES:
                previous = None  # a pause, boundary or unknown symbol breaks the chain
                continue
            self.phonemes[symbol] += 1
            current = base(symbol)
            if previous is not None:
                self.diphones[(previous, current)] += 1
            previous = current

    def update(self, sequences: Iterable[Sequence[str]]) -> "Coverage":
        """Add many utterances; return self."""
        for sequence in sequences:
            self.add(sequence)
        return self

    def summary(self, rare_below: int = 5) -> dict[str, Any]:
        """JSON-ready numbers: seen/possible, missing phonemes, rare counts."""
        base_counts: Counter[str] = Counter()
        for symbol, count in self.phonemes.items():
            base_counts[base(symbol)] += count
        possible_diphones = len(BASE_PHONEMES) ** 2
        return {
            "phonemes_seen": sum(1 for p in BASE_PHONEMES if base_counts[p]),
            "phonemes_possible": len(BASE_PHONEMES),
            "phonemes_missing": [p for p in BASE_PHONEMES if not base_counts[p]],
            "stressed_seen": sum(1 for p in STRESSED_PHONEMES if self.phonemes[p]),
            "stressed_possible": len(STRESSED_PHONEMES),
            "stressed_missing": [p for p in STRESSED_PHONEMES if not self.phonemes[p]],
            "diphones_seen": len(self.diphones),
            "diphones_possible": possible_diphones,
            "diphones_seen_5_plus": sum(1 for c in self.diphones.values() if c >= rare_below),
            "rarest_phonemes": sorted(((p, base_counts[p]) for p in BASE_PHONEMES), key=lambda x: x[1])[:8],
            "phoneme_tokens": sum(self.phonemes.values()),
        }
