"""Null sink: discards audio, optionally pacing writes at real time like a sound card."""

from __future__ import annotations

import logging
import time

import numpy as np

from myna.audio.sink import check_samples
from myna.errors import AudioError

_LOGGER = logging.getLogger(__name__)


class NullSink:
    """Count and discard int16 mono samples.

    With ``realtime=True`` the sink behaves like a device with a ``lead_s`` buffer:
    ``write`` blocks while more than ``lead_s`` of audio is "unplayed", and ``drain``
    waits until all of it would have been played.  Off by default, so tests run fast.
    """

    def __init__(self, realtime: bool = False, lead_s: float = 0.05) -> None:
        self.realtime = realtime
        self.lead_s = lead_s
        self.sample_rate: int | None = None
        self.frames_written = 0
        """Samples written since ``open`` (dropped ones included)."""
        self.first_write_at: float | None = None
        self._armed = True
        self._play_end = 0.0  # monotonic time at which the paced "device" runs dry

    def open(self, sample_rate: int, channels: int = 1) -> None:
        """Remember the rate (pacing needs it)."""
        if channels != 1:
            raise AudioError(f"null sink takes mono only, asked for {channels} channels")
        if sample_rate <= 0:
            raise AudioError(f"invalid sample rate {sample_rate}")
        if sample_rate != self.sample_rate:
            _LOGGER.debug("null sink at %d Hz (realtime=%s)", sample_rate, self.realtime)
            self.sample_rate = sample_rate
            self.frames_written = 0
            self._play_end = 0.0

    def write(self, samples: np.ndarray) -> None:
        """Discard the samples, sleeping first when pacing says the buffer is full."""
        if self.sample_rate is None:
            raise AudioError("null sink is not open")
        count = check_samples(samples).shape[0]
        if not count:
            return
        if self._armed:
            self.first_write_at = time.monotonic()
            self._armed = False
        self.frames_written += count
        if self.realtime:
            now = time.monotonic()
            self._play_end = max(self._play_end, now) + count / self.sample_rate
            ahead = self._play_end - now - self.lead_s
            if ahead > 0:
                time.sleep(ahead)

    def drain(self) -> None:
        """Wait until the paced audio would have finished playing (instant when not pacing)."""
        if self.realtime:
            left = self._play_end - time.monotonic()
            if left > 0:
                time.sleep(left)

    def drop(self) -> None:
        """Forget the paced backlog."""
        self._play_end = 0.0

    def close(self) -> None:
        """Drain and forget the format."""
        self.drain()
        self.sample_rate = None

    def mark(self) -> None:
        """Clear ``first_write_at``; the next non-empty write stamps it."""
        self.first_write_at = None
        self._armed = True
