"""The English pronunciation lexicon: a compact CMUdict-derived file, bisected and decoded on demand.

The file format is described in ``tools/build_lexicon.py``.  Loading decompresses it, splits the
sorted word list once and accumulates the record offsets; a lookup bisects the list and decodes
just that word's record, and results are memoized in a bounded dict so hot words cost one dict hit.
"""

from __future__ import annotations

import gzip
import json
import logging
import struct
import threading
from array import array
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from itertools import accumulate
from pathlib import Path

from ..datadirs import shipped_dir
from .phonemes import ARPABET_V1, PHONEMES

_LOGGER = logging.getLogger(__name__)

MAGIC = b"MYNALEX1"
FILE_NAME = "lexicon.mlex"
_CACHE_LIMIT = 8192

Pronunciations = tuple[tuple[str, ...], ...]


class LexiconError(ValueError):
    """The lexicon file is missing, truncated or made for another inventory."""


def default_lexicon_path() -> Path | None:
    """The shipped ``models/lexicon-en/lexicon.mlex``, or None when this install has none."""
    models = shipped_dir("models")
    if models is None:
        return None
    path = models / "lexicon-en" / FILE_NAME
    return path if path.is_file() else None


class Lexicon:
    """Word → pronunciation variants (first = most common), stress digits kept."""

    def __init__(self, words: list[str], offsets: Sequence[int], prons: bytes, symbols: Sequence[str]) -> None:
        """Wrap decoded tables; use :meth:`load` or :meth:`from_entries` rather than calling this."""
        if len(offsets) != len(words) + 1:
            raise LexiconError("lexicon tables disagree in length")
        self._words = words
        self._offsets = offsets
        self._prons = prons
        # Index 0 is the variant separator and never looked up.
        self._symbols: tuple[str, ...] = ("", *symbols)
        self._cache: dict[str, Pronunciations] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """Read a ``lexicon.mlex`` file; raise LexiconError when it is unreadable or for another inventory."""
        try:
            data = gzip.decompress(Path(path).read_bytes())
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise LexiconError(f"cannot read lexicon {path}: {exc}") from exc
        try:
            return cls._parse(data)
        except (struct.error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise LexiconError(f"lexicon {path} is corrupt: {exc}") from exc

    @classmethod
    def _parse(cls, data: bytes) -> Lexicon:
        if data[:8] != MAGIC:
            raise LexiconError("not a MYNALEX1 lexicon")
        pos = 8
        (hlen,) = struct.unpack_from("<I", data, pos)
        header = json.loads(data[pos + 4 : pos + 4 + hlen].decode("utf-8"))
        pos += 4 + hlen
        symbols = tuple(header["symbols"])
        if (header["inventory"], header["inventory_version"]) != (ARPABET_V1.name, ARPABET_V1.version) or any(
            s not in PHONEMES for s in symbols
        ):
            raise LexiconError("lexicon is for another phoneme inventory")
        n, wlen = struct.unpack_from("<II", data, pos)
        pos += 8
        words = data[pos : pos + wlen].decode("ascii").split("\n") if n else []
        pos += wlen
        lengths = data[pos : pos + n]
        pos += n
        (plen,) = struct.unpack_from("<I", data, pos)
        pos += 4
        prons = data[pos : pos + plen]
        if len(words) != n or len(lengths) != n or len(prons) != plen or pos + plen != len(data):
            raise LexiconError("lexicon is truncated")
        offsets = array("I", accumulate(lengths, initial=0))
        if offsets[-1] != plen:
            raise LexiconError("lexicon record lengths do not add up")
        return cls(words, offsets, prons, symbols)

    @classmethod
    def from_entries(cls, entries: Mapping[str, Sequence[Sequence[str]]]) -> Lexicon:
        """Build an in-memory lexicon (tests, user additions); raise ValueError on unknown symbols."""
        ids = {s: i + 1 for i, s in enumerate(PHONEMES)}
        words = sorted(w.lower() for w in entries)
        lowered = {w.lower(): v for w, v in entries.items()}
        records = []
        for w in words:
            try:
                records.append(b"".join(bytes(ids[p] for p in pron) + b"\0" for pron in lowered[w]))
            except KeyError as exc:
                raise ValueError(f"{w!r}: unknown phoneme {exc}") from None
        offsets = array("I", accumulate(map(len, records), initial=0))
        return cls(words, offsets, b"".join(records), PHONEMES)

    def lookup(self, word: str) -> Pronunciations:
        """All pronunciations of ``word`` (case-insensitive), most common first; () when unknown."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        key = word.lower()
        words = self._words
        i = bisect_left(words, key)
        if i == len(words) or words[i] != key:
            result: Pronunciations = ()
        else:
            sym = self._symbols
            record = self._prons[self._offsets[i] : self._offsets[i + 1]]
            result = tuple(tuple(sym[b] for b in part) for part in record[:-1].split(b"\0"))
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = result
        return result

    def first(self, word: str) -> tuple[str, ...] | None:
        """The most common pronunciation of ``word``, or None when unknown."""
        variants = self.lookup(word)
        return variants[0] if variants else None

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and bool(self.lookup(word))

    def __len__(self) -> int:
        return len(self._words)

    @property
    def size(self) -> int:
        """Number of headwords."""
        return len(self._words)
