"""The audio sink contract, the sink URI (``alsa:DEV``, ``alsa``, ``wav:PATH``, ``null``) and the backend selector."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from myna.errors import AudioError, ConfigError

_LOGGER = logging.getLogger(__name__)

# Only option the null sink takes: pace writes at real time, like a sound card would.
NULL_REALTIME = "realtime"


@runtime_checkable
class Sink(Protocol):
    """Where rendered audio goes: int16 mono samples in, sound (or a file) out.

    All methods are called from one thread (the engine's worker).  ``write`` may block
    for about one device buffer; the worker checks for cancellation between writes and
    calls ``drop`` to cut playback short.
    """

    first_write_at: float | None
    """``time.monotonic()`` of the first device write after the last ``mark()``; None until then."""

    def open(self, sample_rate: int, channels: int = 1) -> None:
        """Get ready for audio at this rate; a no-op if already open at this format."""

    def write(self, samples: np.ndarray) -> None:
        """Queue int16 mono samples of any length; the sink copies them, keeping no reference."""

    def drain(self) -> None:
        """Block until everything written has been played (or flushed to its file)."""

    def drop(self) -> None:
        """Discard what is buffered and not yet played, as fast as possible."""

    def close(self) -> None:
        """Drain what is pending and release the device; call ``drop`` first to stop fast."""

    def mark(self) -> None:
        """Clear ``first_write_at`` and stamp it again at the next real device write."""


class SinkKind(enum.Enum):
    """The sink backends."""

    ALSA = "alsa"
    WAV = "wav"
    NULL = "null"


def check_samples(samples: np.ndarray) -> np.ndarray:
    """Return ``samples`` unchanged if they are a 1-D int16 array, else raise ValueError.

    A wrong dtype is a caller bug, not a device failure, so it is not an AudioError; and
    converting silently would hide a float→int16 scaling mistake upstream.
    """
    if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 1:
        shape = getattr(samples, "shape", None)
        dtype = getattr(samples, "dtype", type(samples).__name__)
        raise ValueError(f"sink expects a 1-D int16 array, got {dtype} with shape {shape}")
    return samples


_USAGE = "expected 'alsa', 'alsa:DEVICE', 'wav:PATH', 'null' or 'null:realtime'"


@dataclass(frozen=True)
class SinkSpec:
    """A parsed sink URI."""

    kind: SinkKind
    """Which backend."""

    target: str | None = None
    """ALSA device name (None: the board profile's device), WAV path, or a null-sink option."""

    @classmethod
    def parse(cls, uri: str) -> SinkSpec:
        """Parse ``alsa``, ``alsa:DEVICE``, ``wav:PATH``, ``null`` or ``null:realtime``."""
        if not isinstance(uri, str):
            raise ConfigError(f"sink must be a string, got {type(uri).__name__}; {_USAGE}")
        text = uri.strip()
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
            raise ConfigError(f"sink {uri!r} contains control characters")
        scheme, sep, rest = text.partition(":")
        try:
            kind = SinkKind(scheme.lower())
        except ValueError:
            raise ConfigError(f"unknown sink {uri!r}; {_USAGE}") from None
        if not sep:
            if kind is SinkKind.WAV:
                raise ConfigError(f"sink {uri!r} needs a path: 'wav:PATH'")
            return cls(kind)
        if not rest:
            raise ConfigError(f"sink {uri!r} has an empty target; {_USAGE}")
        if kind is SinkKind.NULL and rest != NULL_REALTIME:
            raise ConfigError(f"unknown null-sink option in {uri!r}; {_USAGE}")
        # ALSA device names carry their own colons (``hw:0,0``), so only the first one splits.
        return cls(kind, rest)

    def to_uri(self) -> str:
        """Render back to the URI form ``parse`` accepts."""
        return self.kind.value if self.target is None else f"{self.kind.value}:{self.target}"

    def __str__(self) -> str:
        return self.to_uri()


def open_sink(
    spec: SinkSpec | str,
    period_frames: int,
    periods: int,
    default_alsa_device: str,
) -> Sink:
    """Build the sink a spec names, importing only the backend it needs.

    The sink is returned unopened: the engine calls ``open(rate)`` once it knows the voice.
    ``period_frames`` is the ALSA period (and the WAV write buffer); ``periods`` the ALSA
    buffer length in periods.
    """
    if isinstance(spec, str):
        spec = SinkSpec.parse(spec)
    if period_frames <= 0:
        raise ConfigError(f"period_frames must be positive, got {period_frames}")
    if periods < 2:
        raise ConfigError(f"periods must be at least 2, got {periods}")
    if spec.kind is SinkKind.ALSA:
        try:
            from myna.audio.alsa import AlsaSink
        except ImportError as exc:
            raise AudioError(
                "ALSA output needs the pyalsaaudio package (pip install pyalsaaudio, "
                f"or apt install python3-alsaaudio); it could not be imported: {exc}"
            ) from exc
        device = spec.target if spec.target is not None else default_alsa_device
        _LOGGER.debug("ALSA sink on %r, %d frames x %d periods", device, period_frames, periods)
        return AlsaSink(device, period_frames=period_frames, periods=periods)
    if spec.kind is SinkKind.WAV:
        from myna.audio.wav import WavSink

        assert spec.target is not None  # parse() guarantees a path
        return WavSink(spec.target, buffer_frames=period_frames)
    from myna.audio.null import NullSink

    return NullSink(realtime=spec.target == NULL_REALTIME)
