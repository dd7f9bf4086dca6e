"""Typed boundaries: per-request speech options and the daemon's configuration."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError, InvalidOption


class Priority(enum.Enum):
    """speech-dispatcher's SSIP priorities, highest first."""

    IMPORTANT = "important"
    MESSAGE = "message"
    TEXT = "text"
    NOTIFICATION = "notification"
    PROGRESS = "progress"

    @property
    def rank(self) -> int:
        """Lower rank is served first."""
        return _RANKS[self]


_RANKS = {
    Priority.IMPORTANT: 0,
    Priority.MESSAGE: 1,
    Priority.TEXT: 2,
    Priority.NOTIFICATION: 3,
    Priority.PROGRESS: 3,
}

# name -> (type, min, max); the whitelist of request options.
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "rate": (0.25, 4.0),
    "pitch": (0.5, 2.0),
    "volume": (0.0, 2.0),
}
MAX_VOICE_ID = 64


@dataclass(frozen=True)
class SpeakOptions:
    """Options of one Speak request, validated at the edge."""

    voice: str | None = None
    """Voice id; None means the daemon's default voice."""
    priority: Priority = Priority.TEXT
    """SSIP priority, which decides queueing and pre-emption."""
    rate: float = 1.0
    """Speaking rate multiplier (0.25–4; 2 is twice as fast)."""
    pitch: float = 1.0
    """Pitch multiplier (0.5–2)."""
    volume: float = 1.0
    """Linear gain (0–2); samples are clipped to 16 bits."""
    ssml: bool = False
    """Treat the text as SSML."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "SpeakOptions":
        """Validate a mapping of option names to plain values; raise InvalidOption."""
        if not isinstance(raw, Mapping):
            raise InvalidOption("options must be a mapping")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if not isinstance(name, str) or name not in known:
                raise InvalidOption(f"unknown option {str(name)[:40]!r}; known: {', '.join(sorted(known))}")
            values[name] = _check_option(name, value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Return plain values, the inverse of from_dict."""
        return {
            "voice": self.voice,
            "priority": self.priority.value,
            "rate": self.rate,
            "pitch": self.pitch,
            "volume": self.volume,
            "ssml": self.ssml,
        }


def _check_option(name: str, value: Any) -> Any:
    if name == "voice":
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > MAX_VOICE_ID:
            raise InvalidOption("voice must be a non-empty string of at most %d characters" % MAX_VOICE_ID)
        return value
    if name == "priority":
        try:
            return Priority(value)
        except ValueError:
            choices = ", ".join(p.value for p in Priority)
            raise InvalidOption(f"priority must be one of {choices}") from None
    if name == "ssml":
        if not isinstance(value, bool):
            raise InvalidOption("ssml must be a boolean")
        return value
    low, high = _FLOAT_RANGES[name]
    # bool is an int subclass; True as a rate is a client bug, not 1.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOption(f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidOption(f"{name} must be between {low:g} and {high:g}")
    return number


@dataclass(frozen=True)
class DaemonConfig:
    """The daemon's own settings, from /etc/myna/mynad.yaml and the command line."""

    board: str | None = None
    """Board profile name; None means detect it."""
    profile_dirs: tuple[Path, ...] = ()
    """Extra profile directories searched after the vendor one (later ones override)."""
    voice_dirs: tuple[Path, ...] = ()
    """Directories of voice packs; empty means the packaged models/ folder."""
    default_voice: str | None = None
    """Voice used when a request names none; None means the first voice of the first pack."""
    sink: str | None = None
    """Sink URI: ``alsa:DEVICE``, ``wav:PATH`` or ``null``; None means ALSA on the profile's device."""
    socket_path: str | None = None
    """Unix socket path; None means /run/myna/speech.sock; empty string disables the socket."""
    session_bus: bool = False
    """Serve on the session bus instead of the system bus (tests, desktops)."""
    dbus: bool = True
    """Serve D-Bus at all."""
    socket_group: str | None = None
    """Group that owns the socket (mode 0660), e.g. ``audio``."""
    voice_store_dir: Path | None = None
    """Where InstallVoice keeps installed voice bundles; None means /var/lib/myna/voices."""
    trusted_keys_dir: Path | None = None
    """Folder of ``*.pub`` keys whose bundle signatures are accepted; None means /etc/myna/trusted_keys."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "DaemonConfig":
        """Build from a YAML mapping; unknown keys are an error, not silently ignored."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError("the daemon config must be a mapping")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(map(str, unknown))}")
        values = dict(raw)
        for key in ("profile_dirs", "voice_dirs"):
            if key in values:
                values[key] = tuple(Path(p) for p in values[key])
        for key in ("voice_store_dir", "trusted_keys_dir"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> "DaemonConfig":
        """Read a YAML config file; a missing file means defaults."""
        if not path.exists():
            return cls()
        try:
            return cls.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Return plain values."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                out[f.name] = [str(p) for p in value]
            else:
                out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    def with_overrides(self, **changes: Any) -> "DaemonConfig":
        """Return a copy where the non-None keyword arguments win (command line over file)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        return DaemonConfig(**values)


