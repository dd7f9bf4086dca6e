"""A bounded LRU of rendered audio, so repeated prompts ("Turn left") play without synthesis."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable

import numpy as np


@dataclass(frozen=True)
class Rendering:
    """The int16 samples of one whole request and where each word starts in them."""

    samples: np.ndarray
    """Mono int16 samples at the voice's rate (read-only)."""
    words: tuple[tuple[int, int, int], ...]
    """(sample offset, char offset, char length) of each word, in order."""

    @property
    def nbytes(self) -> int:
        """Memory the rendering holds."""
        return int(self.samples.nbytes) + 24 * len(self.words)


class AudioCache:
    """Least-recently-used map from a request key to its Rendering, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max(0, max_bytes)
        self._items: OrderedDict[Hashable, Rendering] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def max_bytes(self) -> int:
        """The bound."""
        return self._max_bytes

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Rendering | None:
        """Return the rendering for ``key`` and mark it recent, or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: Hashable, rendering: Rendering) -> bool:
        """Store a rendering, evicting the oldest; False when it alone exceeds the bound."""
        size = rendering.nbytes
        if size > self._max_bytes:
            return False
        rendering.samples.flags.writeable = False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            while self._items and self._bytes + size > self._max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes
            self._items[key] = rendering
            self._bytes += size
        return True

    def clear(self) -> None:
        """Forget everything (e.g. when voices change)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
