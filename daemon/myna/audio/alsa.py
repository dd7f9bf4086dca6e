"""ALSA playback through pyalsaaudio: a preallocated ring of int16 periods, xrun recovery, fast drop."""

from __future__ import annotations

import errno
import logging
import os
import time

import alsaaudio
import numpy as np

from myna.audio.sink import check_samples
from myna.errors import AudioError

_LOGGER = logging.getLogger(__name__)

# pyalsaaudio words its errors with snd_strerror(), which is strerror() for errno values.
_EPIPE_TEXT = os.strerror(errno.EPIPE)


class AlsaSink:
    """Blocking-mode ALSA playback of int16 mono audio.

    Samples are copied into a ring of period-sized int16 buffers allocated once at
    ``open``; each full period goes to ``PCM.write`` as is, so steady-state writes
    allocate no sample memory.  A partial period waits for more samples, and ``drain``
    writes exactly that tail (no silence padding), so a file PCM receives exactly the
    samples written.

    How pyalsaaudio reports an underrun (read from its source and checked against the
    0.11.0 binary): ``PCM.write`` calls ``snd_pcm_writei``; on ``-EPIPE`` it calls
    ``snd_pcm_prepare`` itself and *returns* ``-EPIPE`` without raising and without
    having written the data.  pyalsaaudio 0.10 instead raised ``ALSAAudioError("Broken
    pipe [dev]")``.  Both are counted in ``xruns`` and the same samples are written
    again.  Any other ``ALSAAudioError`` (a suspend, ``-ESTRPIPE``; an I/O error) gets a
    reset: ``PCM.drop()`` moves the stream to SETUP and pyalsaaudio's next ``write``
    re-prepares it.  More than ``max_retries`` failures in a row raise AudioError.

    Not thread-safe: one worker thread calls every method.
    """

    def __init__(
        self,
        device: str,
        period_frames: int = 256,
        periods: int = 4,
        max_retries: int = 8,
    ) -> None:
        self.device = device
        """ALSA PCM name, e.g. ``default``, ``plughw:CARD=Headphones``."""
        self.requested_period_frames = period_frames
        self.periods = periods
        self.max_retries = max_retries
        self.period_frames = period_frames
        """The period size ALSA granted at the last ``open`` (what the ring uses)."""
        self.buffer_frames = period_frames * periods
        """The device buffer ALSA granted at the last ``open``."""
        self.sample_rate: int | None = None
        self.xruns = 0
        """Underruns recovered since construction."""
        self.resets = 0
        """Other write errors recovered by drop + re-prepare since construction."""
        self.first_write_at: float | None = None
        self._armed = True
        self._pcm: alsaaudio.PCM | None = None
        self._ring: list[np.ndarray] = []
        self._slot = 0
        self._fill = 0

    # -- Sink protocol -------------------------------------------------------------

    def open(self, sample_rate: int, channels: int = 1) -> None:
        """Open the PCM at this rate; a no-op if already open so, else drain and reopen."""
        if channels != 1:
            raise AudioError(f"ALSA sink plays mono only, asked for {channels} channels")
        if sample_rate <= 0:
            raise AudioError(f"invalid sample rate {sample_rate}")
        if self._pcm is not None:
            if sample_rate == self.sample_rate:
                return
            _LOGGER.info("ALSA %r: reopening at %d Hz (was %s)", self.device, sample_rate, self.sample_rate)
            self.close()
        try:
            pcm = alsaaudio.PCM(
                alsaaudio.PCM_PLAYBACK,
                alsaaudio.PCM_NORMAL,
                rate=sample_rate,
                channels=1,
                format=alsaaudio.PCM_FORMAT_S16_LE,
                periodsize=self.requested_period_frames,
                periods=self.periods,
                device=self.device,
            )
        except alsaaudio.ALSAAudioError as exc:
            raise AudioError(f"cannot open ALSA device {self.device!r} at {sample_rate} Hz: {exc}") from exc
        self._configure(pcm, sample_rate)

    def write(self, samples: np.ndarray) -> None:
        """Copy samples into the period ring, sending each period as it fills."""
        self._require_open()
        src = check_samples(samples)
        total = src.shape[0]
        pos = 0
        period = self.period_frames
        while pos < total:
            buf = self._ring[self._slot]
            take = min(period - self._fill, total - pos)
            buf[self._fill : self._fill + take] = src[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == period:
                self._send(buf)
                self._advance()

    def drain(self) -> None:
        """Send the partial period as is and block until the device has played everything."""
        pcm = self._require_open()
        if self._fill:
            self._send(self._ring[self._slot][: self._fill])
            self._advance()
        try:
            # Leaves the stream in SETUP; pyalsaaudio's next write() prepares it again.
            pcm.drain()
        except alsaaudio.ALSAAudioError as exc:
            raise AudioError(f"ALSA device {self.device!r} failed to drain: {exc}") from exc

    def drop(self) -> None:
        """Forget the partial period and stop the device now, discarding its buffer."""
        self._fill = 0
        if self._pcm is None:
            return
        try:
            # snd_pcm_drop() stops at once; the stream goes to SETUP and pyalsaaudio's
            # next write() re-prepares it, so the next job needs no extra call.
            self._pcm.drop()
        except alsaaudio.ALSAAudioError as exc:
            raise AudioError(f"ALSA device {self.device!r} failed to drop: {exc}") from exc

    def close(self) -> None:
        """Drain what is pending and release the device (call ``drop`` first to stop fast)."""
        pcm = self._pcm
        if pcm is None:
            return
        try:
            if self._fill:
                self._send(self._ring[self._slot][: self._fill])
        finally:
            self._pcm = None
            self._fill = 0
            self.sample_rate = None
            try:
                # pyalsaaudio's close() drains a playback stream before closing it.
                pcm.close()
            except alsaaudio.ALSAAudioError as exc:
                _LOGGER.warning("ALSA %r: error on close: %s", self.device, exc)

    def mark(self) -> None:
        """Clear ``first_write_at``; the next period sent to the device stamps it."""
        self.first_write_at = None
        self._armed = True

    # -- internals -----------------------------------------------------------------

    def _configure(self, pcm: alsaaudio.PCM, sample_rate: int) -> None:
        """Read back what ALSA granted and size the ring to the real period."""
        info = pcm.info()
        granted_period = int(info.get("period_size", self.requested_period_frames))
        granted_rate = int(info.get("rate", sample_rate))
        self.buffer_frames = int(info.get("buffer_size", granted_period * self.periods))
        if granted_period != self.requested_period_frames:
            _LOGGER.warning(
                "ALSA %r granted a period of %d frames, asked for %d",
                self.device,
                granted_period,
                self.requested_period_frames,
            )
        if granted_rate != sample_rate:
            pcm.close()
            raise AudioError(
                f"ALSA device {self.device!r} runs at {granted_rate} Hz, not {sample_rate} Hz; "
                "use a plug device (e.g. 'plughw:...' or 'default') to resample"
            )
        _LOGGER.info(
            "ALSA %r open: %d Hz, period %d frames, buffer %d frames",
            self.device,
            sample_rate,
            granted_period,
            self.buffer_frames,
        )
        if granted_period != self.period_frames or not self._ring:
            # Allocated here only: write() reuses these for the life of this format.
            self._ring = [np.zeros(granted_period, dtype=np.int16) for _ in range(max(2, self.periods))]
        self.period_frames = granted_period
        self._pcm = pcm
        self.sample_rate = sample_rate
        self._slot = 0
        self._fill = 0

    def _require_open(self) -> alsaaudio.PCM:
        if self._pcm is None:
            raise AudioError(f"ALSA sink {self.device!r} is not open")
        return self._pcm

    def _advance(self) -> None:
        self._fill = 0
        self._slot = (self._slot + 1) % len(self._ring)

    def _send(self, frames: np.ndarray) -> None:
        """Write frames to the PCM, recovering from underruns and transient errors."""
        pcm = self._require_open()
        total = frames.shape[0]
        done = 0
        failures = 0
        while done < total:
            try:
                # A blocking writei can return short when an xrun or signal cuts it off.
                res = pcm.write(frames if done == 0 else frames[done:])
            except alsaaudio.ALSAAudioError as exc:
                failures += 1
                if str(exc).startswith(_EPIPE_TEXT):
                    self.xruns += 1
                    _LOGGER.warning("ALSA %r: underrun (%d so far)", self.device, self.xruns)
                else:
                    self.resets += 1
                    _LOGGER.warning("ALSA %r: write failed (%s); resetting the stream", self.device, exc)
                if failures > self.max_retries:
                    raise AudioError(f"ALSA device {self.device!r} keeps failing: {exc}") from exc
                self._reset(pcm)
                continue
            if res > 0:
                if self._armed:
                    self.first_write_at = time.monotonic()
                    self._armed = False
                done += res
                failures = 0
                continue
            failures += 1
            if res == -errno.EPIPE:
                # pyalsaaudio already re-prepared the stream; the data was not taken.
                self.xruns += 1
                _LOGGER.warning("ALSA %r: underrun (%d so far)", self.device, self.xruns)
            elif res < 0:
                self.resets += 1
                _LOGGER.warning("ALSA %r: write returned %d; resetting the stream", self.device, res)
                self._reset(pcm)
            # res == 0 is -EAGAIN, which a blocking stream should never give; retry.
            if failures > self.max_retries:
                raise AudioError(
                    f"ALSA device {self.device!r} keeps failing to accept audio "
                    f"(last result {res}: {os.strerror(-res) if res < 0 else 'no progress'})"
                )

    def _reset(self, pcm: alsaaudio.PCM) -> None:
        """Move the stream to SETUP so pyalsaaudio's next write() prepares it afresh."""
        try:
            pcm.drop()
        except alsaaudio.ALSAAudioError as exc:
            _LOGGER.warning("ALSA %r: drop during recovery failed: %s", self.device, exc)
