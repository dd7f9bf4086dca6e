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
# Installed voice bundles live beside the packs in the state directory, as <voice_id>.mynavoice files.
VOICE_STORE_DIR = ETC_VOICE_DIR
# Public keys (*.pub) whose signatures InstallVoice accepts; root-owned like the rest of /etc/myna.
TRUSTED_KEYS_DIR = "/etc/myna/trusted_keys"
# Where push_voice.py drops a bundle on the device before InstallVoice: the sandboxed daemon has a
# private /tmp and no /home, so the file must sit somewhere it can read (see systemd/myna.tmpfiles).
INCOMING_DIR = "/var/lib/myna/incoming"
# Group (systemd/myna.sysusers) whose members, besides root, may call InstallVoice and RemoveVoice.
ADMIN_GROUP = "myna-admin"


def dbus_error_name(code: str) -> str:
    """Return the D-Bus error name for a public error code."""
    return ERROR_PREFIX + code
