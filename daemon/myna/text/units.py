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
class Word:
    """One spoken word as the normalizer produces it: ``5:45`` gives "five" and "forty" and "five"."""

    text: str
    """Spoken form: lower-case letters and apostrophes only (``"forty"``, ``"it's"``)."""
    span: WordSpan
    """The written text it came from; several spoken words may share one span."""
    phonemes: tuple[str, ...] | None = None
    """Explicit pronunciation (SSML ``<phoneme>``, letter names), bypassing the G2P."""
    spell: bool = False
    """Say it letter by letter (acronyms like ETA, SSML ``characters``)."""


@dataclass(frozen=True)
class Break:
    """A pause between words: a punctuation mark, or an SSML ``<break>`` with a length."""

    mark: str
    """One of ``,`` (clause), ``.`` (sentence), ``?``, ``!``."""
    span: WordSpan | None = None
    """Where it was written, if anywhere."""
    ms: int | None = None
    """Explicit length in milliseconds (SSML ``time``), else the mark's natural pause."""


Token = Word | Break
"""What the normalizer yields and the G2P and chunker consume."""


@dataclass(frozen=True)
class PhonemeChunk:
    """One streaming unit: at most the voice's phoneme bucket of ids, split only between words."""

    ids: tuple[int, ...]
    """Phoneme ids of the inventory the voice was trained on, boundary tokens included."""
    word_of: tuple[int, ...]
    """For each id, the index into ``words`` of the word it belongs to, or -1 (pause, boundary)."""
    words: tuple[WordSpan, ...]
    """The words of this chunk, in order."""
    rate: float = 1.0
    """Speaking-rate factor for this chunk alone (SSML ``<prosody rate>``), times the request's."""
    silence_after_ms: int = 0
    """Silence to play after this chunk (an SSML ``<break>`` longer than a pause token)."""

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.word_of):
            raise ValueError("ids and word_of differ in length")
