"""The one error tree of the runtime; every error carries a stable ``code``.

::

    MynaError                    code "Internal"
    ├── InvalidText              empty, not UTF-8, control characters, bad SSML
    ├── TextTooLong              over the board's text-length limit
    ├── UnknownVoice             no such voice installed
    ├── InvalidOption            unknown option name, wrong type or out of range
    ├── Busy                     the queue is full
    ├── BundleInvalid            a voice bundle is malformed (container, fields, tensors, path)
    ├── BundleUntrusted          a voice bundle is unsigned, signed by an unknown key, or tampered with
    ├── BundleIncompatible       a voice bundle does not fit the installed base model
    ├── VoiceNotRemovable        a pack's built-in voice or the default voice cannot be removed
    ├── BadRequest               socket only: malformed JSON, unknown op, line too long
    ├── ConfigError              daemon config or board profile is wrong (start-up)
    ├── VoicePackError           a voice pack fails validation (checksum, shape, version)
    ├── RuntimeUnavailable       no TFLite runtime can be imported
    ├── AudioError               the sink could not be opened or written
    ├── DBusUnavailable          the bus is unreachable or the name is taken (start-up)
    ├── SocketUnavailable        the socket path is in use or not writable (start-up)
    └── DaemonUnavailable        client side: mynad's socket cannot be reached

Front ends map ``code`` to ``org.myna.Speech1.Error.<code>`` on D-Bus and to
``{"event": "error", "code": ...}`` on the socket.  Codes that are not part of the
public D-Bus contract (ConfigError, VoicePackError, ...) surface as ``Internal``.
"""

from __future__ import annotations

PUBLIC_CODES = (
    "InvalidText", "TextTooLong", "UnknownVoice", "InvalidOption", "Busy", "Internal",
    "BundleInvalid", "BundleUntrusted", "BundleIncompatible", "VoiceNotRemovable",
)


class MynaError(Exception):
    """Root of every error Myna raises on purpose."""

    code: str = "Internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def public_code(self) -> str:
        """The code a client may see; internal failures collapse to ``Internal``."""
        return self.code if self.code in PUBLIC_CODES or self.code == "BadRequest" else "Internal"


class InvalidText(MynaError):
    """The text is empty, not valid UTF-8, or not valid SSML."""

    code = "InvalidText"


class TextTooLong(MynaError):
    """The text is longer than the board allows."""

    code = "TextTooLong"


class UnknownVoice(MynaError):
    """The requested voice is not installed."""

    code = "UnknownVoice"


class InvalidOption(MynaError):
    """An option is unknown, of the wrong type, or out of range."""

    code = "InvalidOption"


class Busy(MynaError):
    """The job queue is full; try again later."""

    code = "Busy"


class BundleInvalid(MynaError):
    """A voice bundle cannot be read: not a bundle, bad fields, wrong tensors, unsafe paths, too large."""

    code = "BundleInvalid"


class BundleUntrusted(MynaError):
    """A voice bundle is unsigned, signed by a key the device does not trust, or altered after signing."""

    code = "BundleUntrusted"


class BundleIncompatible(MynaError):
    """A voice bundle was made for another base model, or its voice id belongs to a built-in voice."""

    code = "BundleIncompatible"


class VoiceNotRemovable(MynaError):
    """The voice is built into a pack, or it is the daemon's default voice."""

    code = "VoiceNotRemovable"


class BadRequest(MynaError):
    """A socket request could not be parsed (bad JSON, unknown op, too long a line)."""

    code = "BadRequest"


class ConfigError(MynaError):
    """The daemon configuration or a board profile is invalid."""

    code = "ConfigError"


class VoicePackError(MynaError):
    """A voice pack failed validation."""

    code = "VoicePackError"


class RuntimeUnavailable(MynaError):
    """Neither LiteRT nor tflite-runtime can be imported."""

    code = "RuntimeUnavailable"


class AudioError(MynaError):
    """The audio sink failed."""

    code = "AudioError"


class DBusUnavailable(MynaError):
    """The bus cannot be reached, or the service name is already owned."""

    code = "DBusUnavailable"


class SocketUnavailable(MynaError):
    """The socket cannot be created: the path is in use, not a socket, or not writable."""

    code = "SocketUnavailable"


class DaemonUnavailable(MynaError):
    """Client side: the daemon's socket cannot be reached."""

    code = "Unavailable"
