"""Text normalization: written text → spoken words with spans, per language.

A language is one module exposing a class that satisfies ``Normalizer``; ``_LANGUAGES`` maps
language tags to it.  Adding a language is adding a module and a line here.

    >>> normalizer_for("en-US").spoken("Turn left in 300 m onto Main St.")
    'turn left in three hundred meters onto main street'
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

from ...errors import InvalidOption
from ..units import Token


@runtime_checkable
class Normalizer(Protocol):
    """Turns written text into spoken words (``Word``) and pauses (``Break``)."""

    def tokens(self, text: str, base: int = 0) -> list[Token]:
        """Normalize ``text``; spans are code-point offsets into ``text`` plus ``base``."""
        ...

    def spoken(self, text: str) -> str:
        """The spoken words, lower-case, joined by single spaces (what ``myna normalize`` prints)."""
        ...


# tag → (module, class, keyword arguments).  Tags are compared lower-case with "_" read as "-".
_LANGUAGES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "en": (".en", "EnglishNormalizer", {"language": "en-US"}),
    "en-us": (".en", "EnglishNormalizer", {"language": "en-US"}),
    "en-gb": (".en", "EnglishNormalizer", {"language": "en-GB", "day_first": True, "say_and": True}),
}


def languages() -> tuple[str, ...]:
    """The language tags that have a normalizer."""
    return tuple(_LANGUAGES)


def normalizer_for(language: str) -> Normalizer:
    """Return the normalizer of a language tag ("en", "en-US", "en-GB"); raise InvalidOption if none.

    A tag with an unknown region falls back to its language ("en-AU" → "en").
    """
    if not isinstance(language, str):
        raise InvalidOption("language must be a string such as 'en-US'")
    tag = language.strip().replace("_", "-").lower()
    entry = _LANGUAGES.get(tag) or _LANGUAGES.get(tag.split("-", 1)[0])
    if entry is None or not tag:
        raise InvalidOption(f"no text normalizer for language {language!r}; known: {', '.join(languages())}")
    module_name, class_name, options = entry
    # Imported on demand, so a language costs nothing until it is asked for.
    module = importlib.import_module(module_name, __name__)
    normalizer: Normalizer = getattr(module, class_name)(**options)
    return normalizer


__all__ = ["Normalizer", "languages", "normalizer_for"]
