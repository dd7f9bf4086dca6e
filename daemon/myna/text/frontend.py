"""Placeholder text frontend: validate, tokenize with spans, chunk, map graphemes to ids.

This is the interim frontend of the placeholder voice (inventory ``myna-graphemes`` v1):
it spells words as letters and digits.  The real normalizer and G2P replace the word →
symbols step; validation, spans and chunking stay the engine's contract.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterator, Protocol

from ..errors import InvalidText, TextTooLong
from . import phonemes
from .phonemes import Inventory
from .ssml import strip_ssml
from .units import PhonemeChunk, WordSpan

# A word is a run of letters/digits/apostrophes; a pause is clause or sentence punctuation.
_TOKEN = re.compile(r"(?P<word>[^\W_]+(?:'[^\W_]+)*)|(?P<pause>[,;:.?!\u2026]+)")
_SENTENCE_END = frozenset(".?!")


@dataclass(frozen=True)
class _Token:
    symbols: tuple[str, ...]
    span: WordSpan | None  # None for pauses


def validate_text(text: object, max_chars: int) -> str:
    """Return the text if it can be spoken; raise InvalidText or TextTooLong."""
    if not isinstance(text, str):
        raise InvalidText("text must be a string")
    if len(text) > max_chars:
        raise TextTooLong(f"text has {len(text)} characters; this board accepts at most {max_chars}")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        # Lone surrogates come from broken decoders; they cannot be encoded back to UTF-8.
        raise InvalidText("text contains unpaired UTF-16 surrogates")
    if not text.strip():
        raise InvalidText("text is empty")
    return text


class Frontend(Protocol):
    """Text → phoneme-id chunks for one symbol inventory."""

    @property
    def inventory(self) -> Inventory:
        """The inventory the ids refer to."""
        ...

    def chunks(self, text: str, bucket: int, ssml: bool = False) -> Iterator[PhonemeChunk]:
        """Yield chunks of at most ``bucket`` ids; raise InvalidText when nothing is speakable."""
        ...


class GraphemeFrontend:
    """Turns validated text into phoneme-id chunks that fit a voice's bucket."""

    def __init__(self, inventory: Inventory = phonemes.GRAPHEMES_V1) -> None:
        self._inventory = inventory

    @property
    def inventory(self) -> Inventory:
        """The symbol inventory ids refer to."""
        return self._inventory

    def chunks(self, text: str, bucket: int, ssml: bool = False) -> Iterator[PhonemeChunk]:
        """Yield chunks of at most ``bucket`` ids, split at sentences and else between words."""
        if bucket < 8:
            raise ValueError("phoneme bucket too small")
        segments = strip_ssml(text) if ssml else [(text, 0)]
        tokens = [tok for seg, base in segments for tok in self._tokens(seg, base)]
        if not any(tok.span for tok in tokens):
            raise InvalidText("text contains nothing speakable")
        yield from self._pack(tokens, bucket)

    def _tokens(self, text: str, base: int) -> Iterator[_Token]:
        for match in _TOKEN.finditer(text):
            if match.group("word"):
                symbols = tuple(s for s in _fold(match.group("word")) if s in self._inventory._index)
                if symbols:
                    yield _Token(symbols, WordSpan(base + match.start(), match.end() - match.start()))
            else:
                mark = match.group("pause")
                pause = next((c for c in mark if c in "?!"), "." if "." in mark or "\u2026" in mark else ",")
                yield _Token((pause,), None)

    def _pack(self, tokens: list[_Token], bucket: int) -> Iterator[PhonemeChunk]:
        inv = self._inventory
        # Room for BOS and EOS around every chunk.
        room = bucket - 2
        ids: list[int] = []
        word_of: list[int] = []
        words: list[WordSpan] = []

        def flush() -> PhonemeChunk | None:
            if not words:
                ids.clear()
                word_of.clear()
                return None
            chunk = PhonemeChunk(
                ids=(inv.id_of(phonemes.BOS), *ids, inv.id_of(phonemes.EOS)),
                word_of=(-1, *word_of, -1),
                words=tuple(words),
            )
            ids.clear()
            word_of.clear()
            words.clear()
            return chunk

        for token in tokens:
            if token.span is None:
                if ids and ids[-1] == inv.id_of(phonemes.WORD_BREAK):
                    # A pause replaces the word break before it.
                    ids.pop()
                    word_of.pop()
                if len(ids) < room:
                    ids.append(inv.id_of(token.symbols[0]))
                    word_of.append(-1)
                if token.symbols[0] in _SENTENCE_END:
                    done = flush()
                    if done:
                        yield done
                continue
            # A word longer than a whole chunk is cut into bucket-sized pieces rather than refused;
            # each piece that lands in a new chunk carries the word's span again.
            step = room - 1
            for start in range(0, len(token.symbols), step):
                piece = token.symbols[start : start + step]
                if len(ids) + len(piece) + 1 > room:
                    done = flush()
                    if done:
                        yield done
                if not words or words[-1] is not token.span:
                    words.append(token.span)
                index = len(words) - 1
                ids.extend(inv.id_of(s) for s in piece)
                word_of.extend([index] * len(piece))
                ids.append(inv.id_of(phonemes.WORD_BREAK))
                word_of.append(-1)
        done = flush()
        if done:
            yield done


def _fold(word: str) -> str:
    """Lower-case and strip accents so that 'Café' spells as c-a-f-e."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def make_frontend(inventory: Inventory, threads: int = 1) -> Frontend:
    """Build the frontend that produces ids of ``inventory`` (lexicon and models load here, once)."""
    if inventory == phonemes.GRAPHEMES_V1:
        return GraphemeFrontend(inventory)
    if inventory == phonemes.ARPABET_V1:
        from .english import EnglishFrontend  # lazy: the lexicon and G2P model load only when needed

        return EnglishFrontend.load(threads=threads)
    raise ValueError(f"no frontend for inventory {inventory.name} v{inventory.version}")
