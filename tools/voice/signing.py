"""Ed25519 signing keys for voice bundles: create a pair, load the private half, print the public line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from myna.bundles import key_id_of, public_key_line

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


class SigningKeyError(Exception):
    """A key file is missing, malformed, or would be overwritten."""


@dataclass(frozen=True)
class KeyPair:
    """Where ``generate`` put a new pair, and the id devices will know it by."""

    private: Path
    """PKCS#8 PEM, mode 0600: keep it on the signing workstation only."""
    public: Path
    """One ``ed25519 <base64> <comment>`` line: copy to ``/etc/myna/trusted_keys/`` on each device."""
    key_id: str
    """First 16 hex digits of sha256 of the raw public key (what a bundle's signature names)."""


def raw_public(private: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of the public half."""
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate(out_dir: Path, name: str = "myna-voice-signing", comment: str | None = None) -> KeyPair:
    """Create ``out_dir/NAME.key`` (0600) and ``out_dir/NAME.pub``; refuse to overwrite either."""
    if not name or "/" in name or name.startswith("."):
        raise SigningKeyError(f"bad key name {name!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path = out_dir / f"{name}{PRIVATE_SUFFIX}"
    public_path = out_dir / f"{name}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise SigningKeyError(f"{path} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # O_EXCL with the final mode: the secret is never readable by others, not even for a moment.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(private_path, 0o600)  # the umask may have taken bits away, never added; be explicit anyway
    line = public_key_line(raw_public(key), comment if comment is not None else name)
    fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as text:
        text.write(line + "\n")
    return KeyPair(private_path, public_path, key_id_of(raw_public(key)))


def load_private(path: Path) -> Ed25519PrivateKey:
    """Read a private key written by ``generate``."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"cannot read private key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an ed25519 private key")
    return key


def public_line(private_path: Path, comment: str | None = None) -> str:
    """The ``.pub`` line of a private key file (what device provisioning installs)."""
    key = load_private(private_path)
    return public_key_line(raw_public(key), comment if comment is not None else Path(private_path).stem)
