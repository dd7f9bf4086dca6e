"""WAV file sink: 16-bit PCM through a preallocated write buffer; the file is valid after close."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import soundfile

from myna.audio.sink import check_samples
from myna.errors import AudioError

_LOGGER = logging.getLogger(__name__)


class WavSink:
    """Write int16 mono audio to one WAV file (PCM_16).

    Samples are copied into a buffer of ``buffer_frames`` allocated at ``open`` and
    written to the file each time it fills, and on ``drain``/``close``.  The header is
    final after ``close``.

    Rates: one WAV file holds one rate.  ``open`` at another rate before any sample was
    written simply restarts the file at that rate; once samples are in it, ``open`` at
    another rate raises AudioError rather than silently overwriting them.  ``open`` after
    ``close`` starts the file afresh (truncating it).

    ``drop`` discards only the samples still in the buffer; whatever already reached the
    file stays (at most ``buffer_frames`` samples are ever pending).
    """

    def __init__(self, path: str | Path, buffer_frames: int = 1024) -> None:
        if buffer_frames <= 0:
            raise AudioError(f"WAV buffer must be positive, got {buffer_frames}")
        self.path = Path(path)
        self.buffer_frames = buffer_frames
        self.sample_rate: int | None = None
        self.frames_written = 0
        """Samples that reached the file since it was (re)started."""
        self.first_write_at: float | None = None
        self._armed = True
        self._file: soundfile.SoundFile | None = None
        self._buffer = np.zeros(0, dtype=np.int16)
        self._fill = 0

    def open(self, sample_rate: int, channels: int = 1) -> None:
        """Create the file at this rate; a no-op if already open at this rate."""
        if channels != 1:
            raise AudioError(f"WAV sink writes mono only, asked for {channels} channels")
        if sample_rate <= 0:
            raise AudioError(f"invalid sample rate {sample_rate}")
        if self._file is not None:
            if sample_rate == self.sample_rate:
                return
            if self.frames_written or self._fill:
                raise AudioError(
                    f"WAV sink {str(self.path)!r} already holds {self.sample_rate} Hz audio; "
                    f"cannot append {sample_rate} Hz (use one file per rate)"
                )
            self._close_file()
        try:
            self._file = soundfile.SoundFile(
                self.path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16", format="WAV"
            )
        except (OSError, RuntimeError) as exc:  # LibsndfileError is a RuntimeError
            raise AudioError(f"cannot create WAV file {str(self.path)!r}: {exc}") from exc
        if self._buffer.shape[0] != self.buffer_frames:
            self._buffer = np.zeros(self.buffer_frames, dtype=np.int16)
        self.sample_rate = sample_rate
        self.frames_written = 0
        self._fill = 0

    def write(self, samples: np.ndarray) -> None:
        """Copy samples into the buffer, writing it to the file whenever it fills."""
        if self._file is None:
            raise AudioError(f"WAV sink {str(self.path)!r} is not open")
        src = check_samples(samples)
        total = src.shape[0]
        if total and self._armed:
            # The file has no playback clock: "device write" is the moment audio arrives.
            self.first_write_at = time.monotonic()
            self._armed = False
        pos = 0
        size = self.buffer_frames
        while pos < total:
            take = min(size - self._fill, total - pos)
            self._buffer[self._fill : self._fill + take] = src[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == size:
                self._flush_buffer()

    def drain(self) -> None:
        """Write the buffered samples and flush the file."""
        if self._file is None:
            return
        self._flush_buffer()
        try:
            self._file.flush()
        except (OSError, RuntimeError) as exc:
            raise AudioError(f"cannot flush WAV file {str(self.path)!r}: {exc}") from exc

    def drop(self) -> None:
        """Discard the samples still buffered."""
        self._fill = 0

    def close(self) -> None:
        """Write what is buffered and finish the file (its header becomes final)."""
        if self._file is None:
            return
        try:
            self._flush_buffer()
        finally:
            self._close_file()

    def mark(self) -> None:
        """Clear ``first_write_at``; the next non-empty write stamps it."""
        self.first_write_at = None
        self._armed = True

    def _flush_buffer(self) -> None:
        if not self._fill or self._file is None:
            return
        try:
            self._file.write(self._buffer[: self._fill])
        except (OSError, RuntimeError) as exc:
            raise AudioError(f"cannot write WAV file {str(self.path)!r}: {exc}") from exc
        self.frames_written += self._fill
        self._fill = 0

    def _close_file(self) -> None:
        file, self._file = self._file, None
        self.sample_rate = None
        self._fill = 0
        if file is not None:
            try:
                file.close()
            except (OSError, RuntimeError) as exc:
                raise AudioError(f"cannot finish WAV file {str(self.path)!r}: {exc}") from exc
