"""The English frontend: SSML → normalize → G2P (lexicon, homographs, neural) → chunks of ARPAbet ids."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import InvalidText, MynaError, VoicePackError
from . import phonemes
from .chunk import Chunker, Item
from .g2p import G2P
from .lexicon import Lexicon, default_lexicon_path
from .normalize import Normalizer, normalizer_for, numbers
from .phonemes import Inventory
from .ssml import SsmlSegment, parse_ssml
from .units import Break, PhonemeChunk, Token, Word, WordSpan

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpokenWord:
    """One spoken word with where it came from and how it is said (for `myna phonemize`)."""

    written: str
    spoken: str
    phonemes: tuple[str, ...]


class EnglishFrontend:
    """Text → phoneme-id chunks of ``myna-arpabet`` v1."""

    inventory: Inventory = phonemes.ARPABET_V1

    def __init__(self, g2p: G2P, normalizer: Normalizer | None = None) -> None:
        self._g2p = g2p
        self._normalizer = normalizer or normalizer_for("en")

    @classmethod
    def load(cls, threads: int = 1, lexicon_path: Path | None = None, g2p_model_dir: Path | None = None) -> "EnglishFrontend":
        """Load the shipped lexicon and neural G2P (the latter optional: without it OOV words are spelled)."""
        path = lexicon_path or default_lexicon_path()
        if path is None:
            raise VoicePackError("the English lexicon (models/lexicon-en) is not installed")
        lexicon = Lexicon.load(path)
        neural = None
        try:
            from .g2p_neural import NeuralG2P, default_model_dir

            neural = NeuralG2P(g2p_model_dir or default_model_dir(), num_threads=threads)
        except (MynaError, OSError) as exc:
            # Without the model the daemon still speaks: unknown words are spelled, and we say so.
            _LOGGER.warning("no neural G2P (%s); unknown words will be spelled", exc)
        return cls(G2P(lexicon, neural))

    # -- what the engine calls -------------------------------------------------------------

    def chunks(self, text: str, bucket: int, ssml: bool = False) -> Iterator[PhonemeChunk]:
        """Yield chunks of at most ``bucket`` ids; raise InvalidText when nothing is speakable."""
        items = self._items(text, ssml)
        if not any(not item.is_break for item in items):
            raise InvalidText("text contains nothing speakable")
        return Chunker(self.inventory, bucket).chunks(items)

    # -- what the CLI calls ----------------------------------------------------------------

    def spoken(self, text: str, ssml: bool = False) -> str:
        """The spoken form, lower-case words separated by spaces (`myna normalize`)."""
        return " ".join(w.spoken for w in self.words(text, ssml))

    def words(self, text: str, ssml: bool = False) -> list[SpokenWord]:
        """Every spoken word with its written source and phonemes (`myna phonemize`)."""
        out = []
        for token, symbols, _ in self._phonemized(text, ssml):
            if isinstance(token, Word):
                start = token.span.char_offset
                out.append(SpokenWord(text[start : start + token.span.char_length], token.text, symbols))
        return out

    # -- internals -------------------------------------------------------------------------

    def _segments(self, text: str, ssml: bool) -> Sequence[SsmlSegment]:
        return parse_ssml(text) if ssml else [SsmlSegment(text=text, base=0)]

    def _phonemized(self, text: str, ssml: bool) -> list[tuple[Token, tuple[str, ...], SsmlSegment]]:
        result = []
        for segment in self._segments(text, ssml):
            for token, symbols in self._g2p.phonemize(self._tokens(segment)):
                result.append((token, symbols, segment))
        return result

    def _tokens(self, segment: SsmlSegment) -> list[Token]:
        if segment.is_break:
            token = segment.break_token()
            return [token] if token is not None else []
        if segment.phonemes is not None:
            return [Word(_letters(segment.text) or "phoneme", segment.span(), phonemes=segment.phonemes)]
        if segment.alias is not None:
            # <sub alias="…">: speak the alias, highlight the element's written content.
            whole = segment.span()
            return [_respan(t, whole) for t in self._normalizer.tokens(segment.alias)]
        say_as = (segment.say_as or "").lower()
        if say_as in ("characters", "spell-out"):
            return _spelled(segment)
        if say_as in ("cardinal", "ordinal", "telephone"):
            spoken = _number_words(segment.text, say_as)
            if spoken:
                whole = segment.span()
                return [Word(w, whole) for w in spoken]
        # Plain text (and say-as date, which the normalizer reads anyway): map spans through the
        # segment so entities and comments inside the text keep offsets into the original.
        return [_respan(t, segment.span(t.span.char_offset, t.span.char_length)) if isinstance(t, Word) else t
                for t in self._normalizer.tokens(segment.text)]

    def _items(self, text: str, ssml: bool) -> list[Item]:
        items = []
        for token, symbols, segment in self._phonemized(text, ssml):
            if isinstance(token, Break):
                items.append(Item((token.mark,), None, segment.rate, token.ms))
            elif symbols:
                items.append(Item(symbols, token.span, segment.rate))
        return items


def _respan(token: Token, span: WordSpan) -> Token:
    return replace(token, span=span) if isinstance(token, Word) else token


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if "a" <= c <= "z" or c == "'")


def _spelled(segment: SsmlSegment) -> list[Token]:
    """say-as characters: every letter by its name, every digit as a number word."""
    out: list[Token] = []
    for index, char in enumerate(segment.text):
        folded = char.lower()
        if "a" <= folded <= "z":
            out.append(Word(folded, segment.span(index, 1), spell=True))
        elif char.isdigit() and char.isascii():
            out.append(Word(numbers.digits(char)[0], segment.span(index, 1)))
    return out


def _number_words(text: str, say_as: str) -> tuple[str, ...]:
    digits = "".join(c for c in text if c.isascii() and c.isdigit())
    if not digits:
        return ()
    if say_as == "telephone":
        return numbers.digits(digits)
    # Cap the size: a 10,000-digit "cardinal" is not a number anyone wants read out.
    if len(digits) > 15:
        return numbers.digits(digits)
    value = int(digits)
    return numbers.ordinal(value) if say_as == "ordinal" else numbers.cardinal(value)
