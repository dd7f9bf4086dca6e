"""Cut phonemized text into streaming chunks: whole sentences where they fit the bucket, never inside a word."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from . import phonemes
from .phonemes import Inventory
from .units import PhonemeChunk, WordSpan

# A break at least this long is silence played between chunks rather than a pause token.
LONG_BREAK_MS = 400


@dataclass(frozen=True)
class Item:
    """One phonemized token on its way into a chunk."""

    symbols: tuple[str, ...]
    """Phonemes of a word, or the one pause mark of a break."""
    span: WordSpan | None
    """The written word; None for a break."""
    rate: float = 1.0
    """Prosody rate in effect for this token."""
    break_ms: int | None = None
    """For a break: its explicit length, if any."""

    @property
    def is_break(self) -> bool:
        """True for a pause."""
        return self.span is None


class Chunker:
    """Packs items into PhonemeChunks of at most ``bucket`` ids (BOS and EOS included)."""

    def __init__(self, inventory: Inventory, bucket: int) -> None:
        if bucket < 8:
            raise ValueError("phoneme bucket too small")
        self._inv = inventory
        self._room = bucket - 2
        self._break_id = inventory.id_of(phonemes.WORD_BREAK)

    def chunks(self, items: Iterable[Item]) -> Iterator[PhonemeChunk]:
        """Yield the chunks of one request, in order."""
        for sentence in _sentences(items):
            for piece in self._split_sentence(sentence):
                chunk = self._build(piece)
                if chunk is not None:
                    yield chunk

    # -- splitting -------------------------------------------------------------------------

    def _split_sentence(self, sentence: list[Item]) -> Iterator[list[Item]]:
        """Split one sentence into pieces that fit the bucket; a sentence that fits stays whole.

        No shorter first piece: the encoder runs in a fixed-shape bucket, so fewer ids encode no faster
        and the first audio waits only for the first decoder/vocoder window either way, while a cut
        mid-sentence ends the piece with a sentence-final EOS and restarts at BOS with no pause, which
        listeners (and Whisper) hear as a break in the sentence.
        """
        pending = list(self._fit_long_words(sentence))
        while pending:
            if _ids_needed(pending) <= self._room and not _has_hard_cut(pending):
                yield pending
                return
            cut = self._cut_point(pending, self._room)
            yield pending[:cut]
            pending = pending[cut:]

    def _cut_point(self, items: list[Item], limit: int) -> int:
        """Index to cut before: a hard cut (long break, rate change) or the last clause break that fits."""
        used = 0
        last_clause = 0
        last_word = 0
        for index, item in enumerate(items):
            if index and (item.rate != items[index - 1].rate):
                return index
            used += len(item.symbols) + (0 if item.is_break else 1)
            if used > limit:
                break
            if item.is_break:
                if item.break_ms is not None and item.break_ms >= LONG_BREAK_MS:
                    return index + 1
                last_clause = index + 1
            else:
                last_word = index + 1
        # Prefer a clause boundary unless it leaves the chunk nearly empty of words.
        if last_clause and _words(items[:last_clause]) >= 2:
            return last_clause
        return max(1, last_word)

    def _fit_long_words(self, items: list[Item]) -> Iterator[Item]:
        """A word longer than a whole chunk is cut into chunk-sized pieces rather than refused."""
        step = self._room - 2
        for item in items:
            if item.is_break or len(item.symbols) <= step:
                yield item
                continue
            for start in range(0, len(item.symbols), step):
                yield Item(item.symbols[start : start + step], item.span, item.rate)

    # -- building --------------------------------------------------------------------------

    def _build(self, items: list[Item]) -> PhonemeChunk | None:
        inv = self._inv
        ids: list[int] = [inv.id_of(phonemes.BOS)]
        word_of: list[int] = [-1]
        words: list[WordSpan] = []
        silence = 0
        for item in items:
            if item.is_break:
                if item.break_ms is not None and item.break_ms >= LONG_BREAK_MS:
                    silence += item.break_ms
                if len(ids) > 1 and ids[-1] == self._break_id:
                    ids.pop()  # the pause replaces the word break before it
                    word_of.pop()
                if len(ids) > 1:
                    ids.append(inv.id_of(item.symbols[0]))
                    word_of.append(-1)
                continue
            assert item.span is not None
            # Spoken words of one written token ("$5" → five dollars) share one span and one index.
            if not words or words[-1] != item.span:
                words.append(item.span)
            index = len(words) - 1
            ids.extend(inv.id_of(s) for s in item.symbols)
            word_of.extend([index] * len(item.symbols))
            ids.append(self._break_id)
            word_of.append(-1)
        if not words:
            return None
        if ids[-1] == self._break_id:
            ids.pop()
            word_of.pop()
        ids.append(inv.id_of(phonemes.EOS))
        word_of.append(-1)
        rate = next((i.rate for i in items if not i.is_break), 1.0)
        return PhonemeChunk(tuple(ids), tuple(word_of), tuple(words), rate=rate, silence_after_ms=silence)


def _sentences(items: Iterable[Item]) -> Iterator[list[Item]]:
    sentence: list[Item] = []
    for item in items:
        sentence.append(item)
        if item.is_break and item.symbols[0] in ".?!":
            yield sentence
            sentence = []
    if sentence:
        yield sentence


def _ids_needed(items: list[Item]) -> int:
    return sum(len(i.symbols) + (0 if i.is_break else 1) for i in items)


def _has_hard_cut(items: list[Item]) -> bool:
    rates = {i.rate for i in items if not i.is_break}
    long_break = any(i.is_break and i.break_ms is not None and i.break_ms >= LONG_BREAK_MS for i in items[:-1])
    return len(rates) > 1 or long_break


def _words(items: list[Item]) -> int:
    return sum(1 for i in items if not i.is_break)
