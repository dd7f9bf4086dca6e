"""Names that integrators rely on: bus name, object path, interface, error names, default paths."""

from __future__ import annotations

BUS_NAME = "org.myna.Speech1"
OBJECT_PATH = "/org/myna/Speech1"
INTERFACE = "org.myna.Speech1"
ERROR_PREFIX = "org.myna.Speech1.Error."

DEFAULT_SOCKET_PATH = "/run/myna/speech.sock"
SOCKET_MODE = 0o660
# One request per line; a line longer than this is answered with BadRequest and skipped.
MAX_LINE_BYTES = 256 * 1024

DEFAULT_CONFIG_PATH = "/etc/myna/mynad.yaml"
VENDOR_PROFILE_DIR = "board_profiles"
ETC_PROFILE_DIR = "/etc/myna/board_profiles"
ETC_VOICE_DIR = "/var/lib/myna/voices"


def dbus_error_name(code: str) -> str:
    """Return the D-Bus error name for a public error code."""
    return ERROR_PREFIX + code
