"""What the text frontend hands to inference: phoneme-id chunks that remember their words' spans."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WordSpan:
    """Where a spoken word came from in the caller's original text."""

    char_offset: int
    """Offset in Unicode code points into the original text."""
    char_length: int
    """Length in code points of the written form (``5:45`` is one span for two spoken words)."""


@dataclass(frozen=True)
class PhonemeChunk:
    """One streaming unit: at most the voice's phoneme bucket of ids, split only between words."""

    ids: tuple[int, ...]
    """Phoneme ids of the inventory the voice was trained on, boundary tokens included."""
    word_of: tuple[int, ...]
    """For each id, the index into ``words`` of the word it belongs to, or -1 (pause, boundary)."""
    words: tuple[WordSpan, ...]
    """The words of this chunk, in order."""

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.word_of):
            raise ValueError("ids and word_of differ in length")
