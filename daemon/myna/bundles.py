"""Voice bundles: the signed file a cloned voice travels in, its verification, and the device's store.

A bundle (``<voice_id>.mynavoice``) is an uncompressed zip holding exactly three members, in this
order and nothing else:

``bundle.json``
    the manifest (``BundleManifest``): voice id, name, language, the base model it fits (pack id and
    ``Manifest.compatibility_hash``), the sha256 and size of every other file, the adapter's tensor
    names/dtypes/shapes, the creation time, and the speaker's consent and provenance.
``adapter.npz``
    the adapter tensors (float32, no pickles), keyed by graph input name, e.g. ``speaker``.
``signature``
    JSON ``{"algorithm": "ed25519", "key_id": ..., "signature": base64}``: ed25519 over the exact
    bytes of ``bundle.json``. The manifest holds the adapter's sha256, so the signature covers all.

Recordings never enter a bundle: the member set is fixed and the adapter may hold only the tensors,
of the shapes, that the base model's graphs take.  Verification order: container → signature
(against ``/etc/myna/trusted_keys/*.pub``) → manifest fields → checksums → tensors → base model.
Nothing is written before all of it passed; ``VoiceStore.write`` then replaces the voice's file
atomically (temp file, fsync, rename), so a crash leaves either the old or the new bundle.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import hashlib
import io
import json
import logging
import math
import os
import re
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import errors
from .voices import GRAPH_ROLES, MAX_ADAPTER_BYTES, DTYPES, VoicePack, adapter_inputs, adapter_overrides, check_adapter

_LOGGER = logging.getLogger(__name__)

FORMAT = "myna-voice-bundle"
FORMAT_VERSION = 1
SUFFIX = ".mynavoice"
MANIFEST_MEMBER = "bundle.json"
ADAPTER_MEMBER = "adapter.npz"
SIGNATURE_MEMBER = "signature"
MEMBERS = (MANIFEST_MEMBER, ADAPTER_MEMBER, SIGNATURE_MEMBER)
SIGNATURE_ALGORITHM = "ed25519"
KEY_SUFFIX = ".pub"
KEY_TYPE = "ed25519"

MAX_MANIFEST_BYTES = 64 << 10
MAX_SIGNATURE_BYTES = 1 << 10
MAX_BUNDLE_BYTES = MAX_ADAPTER_BYTES + MAX_MANIFEST_BYTES + MAX_SIGNATURE_BYTES + (8 << 10)
MAX_PATH_CHARS = 4096
_MAX_TEXT = 256
_MAX_STATEMENT = 4096
# Stale temp files from a crashed install are deleted by a later install once they are this old.
_STALE_TMP_SECONDS = 3600.0
TMP_PREFIX = ".tmp-"

# Voice ids become file names and D-Bus strings: lowercase letters, digits, inner hyphens, ≤ 64 chars.
VOICE_ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
# A graph input name, optionally for one graph role only (``decoder.speaker``: see voices.adapter_overrides).
_TENSOR_NAME = re.compile(rf"(?:(?:{'|'.join(GRAPH_ROLES)})\.)?[A-Za-z_][A-Za-z0-9_]{{0,63}}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def key_id_of(raw_public_key: bytes) -> str:
    """The id of a public key: the first 16 hex digits of the sha256 of its 32 raw bytes."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def is_voice_id(value: object) -> bool:
    """True when ``value`` is a well-formed voice id for installed voices."""
    return isinstance(value, str) and VOICE_ID_PATTERN.fullmatch(value) is not None


# ---------------------------------------------------------------------------------- the manifest


def _get(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise errors.BundleInvalid(f"{where}: expected an object")
    if key not in raw:
        raise errors.BundleInvalid(f"{where}: missing field {key!r}")
    value = raw[key]
    # bool is an int in Python; "recordings": true is still wrong.
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise errors.BundleInvalid(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _only(raw: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(raw) - keys)
    if unknown:
        raise errors.BundleInvalid(f"{where}: unknown fields {unknown}")


def _text(raw: Mapping[str, Any], key: str, where: str, limit: int = _MAX_TEXT) -> str:
    value = _get(raw, key, str, where)
    if not value.strip() or len(value) > limit or _CONTROL.search(value):
        raise errors.BundleInvalid(f"{where}.{key}: must be 1-{limit} characters without control characters")
    return str(value)


def _date(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(raw, key, where)
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise errors.BundleInvalid(f"{where}.{key}: {value!r} is not a date YYYY-MM-DD") from None
    if len(value) != 10:
        raise errors.BundleInvalid(f"{where}.{key}: {value!r} is not a date YYYY-MM-DD")
    return value


def _timestamp(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(raw, key, where)
    try:
        if not value.endswith("Z"):
            raise ValueError
        datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise errors.BundleInvalid(f"{where}.{key}: {value!r} is not a UTC time YYYY-MM-DDTHH:MM:SSZ") from None
    return value


@dataclass(frozen=True)
class Consent:
    """The speaker's consent to having this voice made and used."""

    given_by: str
    """Who consented: the speaker, or their legal representative (name as on the consent form)."""
    date: str
    """When consent was given, ``YYYY-MM-DD``."""
    statement: str
    """What was consented to, in the words the speaker agreed to."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "Consent":
        """Parse and check the consent object."""
        _only(raw, {"given_by", "date", "statement"}, where)
        return cls(_text(raw, "given_by", where), _date(raw, "date", where), _text(raw, "statement", where, _MAX_STATEMENT))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"given_by": self.given_by, "date": self.date, "statement": self.statement}


@dataclass(frozen=True)
class Provenance:
    """How the adapter was made; the recordings themselves stay on the workstation."""

    tool: str
    """The cloning tool and its version, e.g. ``clone_voice.py 0.1``."""
    recordings: int
    """Number of recorded utterances the adapter was fitted on."""
    recorded_seconds: float
    """Their total duration in seconds."""
    notes: str = ""
    """Anything else worth keeping with the voice (operator, session, microphone)."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "Provenance":
        """Parse and check the provenance object."""
        _only(raw, {"tool", "recordings", "recorded_seconds", "notes"}, where)
        recordings = _get(raw, "recordings", int, where)
        seconds = raw.get("recorded_seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise errors.BundleInvalid(f"{where}.recorded_seconds: expected a number")
        if not math.isfinite(seconds) or seconds < 0 or recordings < 0:
            raise errors.BundleInvalid(f"{where}: recordings and recorded_seconds must be non-negative numbers")
        notes = raw.get("notes", "")
        if not isinstance(notes, str) or len(notes) > _MAX_STATEMENT or _CONTROL.search(notes):
            raise errors.BundleInvalid(f"{where}.notes: must be text of at most {_MAX_STATEMENT} characters")
        return cls(_text(raw, "tool", where), int(recordings), float(seconds), notes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"tool": self.tool, "recordings": self.recordings, "recorded_seconds": self.recorded_seconds, "notes": self.notes}


@dataclass(frozen=True)
class Speaker:
    """Who the voice belongs to, as far as the device needs to keep it: consent and provenance."""

    consent: Consent
    """The speaker's consent."""
    provenance: Provenance
    """How the adapter was made."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "Speaker":
        """Parse the speaker object."""
        _only(raw, {"consent", "provenance"}, where)
        return cls(
            Consent.from_dict(_get(raw, "consent", dict, where), f"{where}.consent"),
            Provenance.from_dict(_get(raw, "provenance", dict, where), f"{where}.provenance"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"consent": self.consent.to_dict(), "provenance": self.provenance.to_dict()}


@dataclass(frozen=True)
class BaseModel:
    """The installed base model an adapter is made for."""

    pack_id: str
    """Voice pack id, e.g. ``myna-en``."""
    compatibility: str
    """``Manifest.compatibility_hash()`` of that pack when the adapter was made."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "BaseModel":
        """Parse the base object."""
        _only(raw, {"pack_id", "compatibility"}, where)
        compatibility = _get(raw, "compatibility", str, where)
        if not _SHA256.fullmatch(compatibility):
            raise errors.BundleInvalid(f"{where}.compatibility: not a lowercase hex sha256")
        return cls(_text(raw, "pack_id", where), compatibility)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"pack_id": self.pack_id, "compatibility": self.compatibility}


@dataclass(frozen=True)
class FileEntry:
    """Checksum and size of one bundle member."""

    sha256: str
    """Lowercase hex sha256 of the member's bytes."""
    bytes: int
    """Size in bytes."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "FileEntry":
        """Parse one files entry."""
        _only(raw, {"sha256", "bytes"}, where)
        sha = _get(raw, "sha256", str, where)
        size = _get(raw, "bytes", int, where)
        if not _SHA256.fullmatch(sha) or size < 0:
            raise errors.BundleInvalid(f"{where}: need a lowercase hex sha256 and a non-negative size")
        return cls(sha, size)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True)
class TensorEntry:
    """Declared dtype and shape of one adapter tensor."""

    dtype: str
    """Element type; adapters are float32."""
    shape: tuple[int, ...]
    """Fixed shape, batch first."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "TensorEntry":
        """Parse one tensors entry."""
        _only(raw, {"dtype", "shape"}, where)
        dtype = _get(raw, "dtype", str, where)
        shape = _get(raw, "shape", list, where)
        if dtype not in DTYPES or not shape or len(shape) > 8 or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 20 for d in shape
        ):
            raise errors.BundleInvalid(f"{where}: need a dtype of {', '.join(DTYPES)} and a list of positive dims")
        return cls(dtype, tuple(shape))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class BundleManifest:
    """``bundle.json``: what the voice is, what it fits, what the bundle holds, and whose voice it is."""

    voice_id: str
    """Id used in requests and as the installed file's name (``VOICE_ID_PATTERN``)."""
    name: str
    """Human-readable name for ListVoices."""
    language: str
    """BCP-47 language tag, e.g. ``en-US``."""
    base: BaseModel
    """The base model the adapter fits."""
    files: Mapping[str, FileEntry]
    """Member name → checksum and size; exactly ``adapter.npz``."""
    tensors: Mapping[str, TensorEntry]
    """Adapter tensor name → dtype and shape."""
    created: str
    """When the bundle was made, UTC ``YYYY-MM-DDTHH:MM:SSZ``."""
    speaker: Speaker
    """Consent and provenance."""
    format: str = FORMAT
    """Always ``myna-voice-bundle``."""
    format_version: int = FORMAT_VERSION
    """This runtime reads version 1."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "BundleManifest":
        """Parse and check every field; raise BundleInvalid naming the bad one."""
        where = MANIFEST_MEMBER
        if not isinstance(raw, Mapping):
            raise errors.BundleInvalid(f"{where}: expected a JSON object")
        _only(raw, {f.name for f in dataclasses.fields(cls)}, where)
        if _get(raw, "format", str, where) != FORMAT:
            raise errors.BundleInvalid(f"{where}.format: not a {FORMAT}")
        version = _get(raw, "format_version", int, where)
        if version != FORMAT_VERSION:
            raise errors.BundleInvalid(f"{where}.format_version: {version} is not supported (expected {FORMAT_VERSION})")
        voice_id = _get(raw, "voice_id", str, where)
        if not is_voice_id(voice_id):
            raise errors.BundleInvalid(
                f"{where}.voice_id: {voice_id[:70]!r} must be 1-64 lowercase letters, digits and inner hyphens"
            )
        language = _text(raw, "language", where)
        if not _LANGUAGE.fullmatch(language):
            raise errors.BundleInvalid(f"{where}.language: {language!r} is not a BCP-47 tag such as en-US")
        files_raw = _get(raw, "files", dict, where)
        if set(files_raw) != {ADAPTER_MEMBER}:
            raise errors.BundleInvalid(f"{where}.files: must list exactly {ADAPTER_MEMBER!r}, got {sorted(files_raw)[:8]}")
        tensors_raw = _get(raw, "tensors", dict, where)
        if not tensors_raw or len(tensors_raw) > 16 or not all(_TENSOR_NAME.fullmatch(k) for k in tensors_raw):
            raise errors.BundleInvalid(f"{where}.tensors: must declare 1-16 tensors named like graph inputs")
        return cls(
            voice_id=voice_id,
            name=_text(raw, "name", where),
            language=language,
            base=BaseModel.from_dict(_get(raw, "base", dict, where), f"{where}.base"),
            files={k: FileEntry.from_dict(v, f"{where}.files.{k}") for k, v in files_raw.items()},
            tensors={k: TensorEntry.from_dict(v, f"{where}.tensors.{k}") for k, v in tensors_raw.items()},
            created=_timestamp(raw, "created", where),
            speaker=Speaker.from_dict(_get(raw, "speaker", dict, where), f"{where}.speaker"),
            format=FORMAT,
            format_version=version,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, the inverse of from_dict."""
        return {
            "format": self.format,
            "format_version": self.format_version,
            "voice_id": self.voice_id,
            "name": self.name,
            "language": self.language,
            "base": self.base.to_dict(),
            "files": {k: v.to_dict() for k, v in self.files.items()},
            "tensors": {k: v.to_dict() for k, v in self.tensors.items()},
            "created": self.created,
            "speaker": self.speaker.to_dict(),
        }

    def to_bytes(self) -> bytes:
        """The bytes a bundle tool writes (and signs): sorted keys, two-space indent, UTF-8, final newline."""
        return (json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Signature:
    """The ``signature`` member."""

    key_id: str
    """``key_id_of`` the signing key's public half."""
    signature: bytes
    """64 raw ed25519 signature bytes over ``bundle.json``."""
    algorithm: str = SIGNATURE_ALGORITHM
    """Always ``ed25519``."""

    @classmethod
    def from_bytes(cls, data: bytes) -> "Signature":
        """Parse the member; raise BundleUntrusted when it is not a well-formed ed25519 signature."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise errors.BundleUntrusted(f"{SIGNATURE_MEMBER}: not a JSON signature object") from None
        if not isinstance(raw, dict) or set(raw) != {"algorithm", "key_id", "signature"}:
            raise errors.BundleUntrusted(f"{SIGNATURE_MEMBER}: expected exactly algorithm, key_id and signature")
        if raw["algorithm"] != SIGNATURE_ALGORITHM:
            raise errors.BundleUntrusted(f"{SIGNATURE_MEMBER}: algorithm {str(raw['algorithm'])[:20]!r} is not {SIGNATURE_ALGORITHM}")
        key_id, sig = raw["key_id"], raw["signature"]
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id) or not isinstance(sig, str):
            raise errors.BundleUntrusted(f"{SIGNATURE_MEMBER}: malformed key_id or signature")
        try:
            decoded = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise errors.BundleUntrusted(f"{SIGNATURE_MEMBER}: signature is not base64") from None
        if len(decoded) != 64:
            raise errors.BundleUntrusted(f"{SIGNATURE_MEMBER}: an ed25519 signature has 64 bytes, not {len(decoded)}")
        return cls(key_id, decoded)

    def to_bytes(self) -> bytes:
        """The member's bytes."""
        body = {"algorithm": self.algorithm, "key_id": self.key_id, "signature": base64.b64encode(self.signature).decode("ascii")}
        return (json.dumps(body, sort_keys=True, indent=2) + "\n").encode("ascii")


# ---------------------------------------------------------------------------------- the container


@dataclass(frozen=True)
class BundleFiles:
    """The raw members of a bundle file, read through the container checks but not yet trusted."""

    manifest: bytes
    """``bundle.json`` exactly as signed."""
    adapter: bytes
    """``adapter.npz``."""
    signature: bytes | None
    """The ``signature`` member; None for an unsigned bundle."""


def pack_bundle(files: BundleFiles) -> bytes:
    """Write the container: members in the fixed order, stored, fixed timestamps (same input, same bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        members = [(MANIFEST_MEMBER, files.manifest), (ADAPTER_MEMBER, files.adapter)]
        if files.signature is not None:
            members.append((SIGNATURE_MEMBER, files.signature))
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3  # Unix, so the mode above means what it says
            archive.writestr(info, data)
    return out.getvalue()


def unpack_bundle(data: bytes) -> BundleFiles:
    """Read the members; refuse anything but the fixed member list (no paths, links, extras, bombs)."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise errors.BundleInvalid(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise errors.BundleInvalid("not a voice bundle (not a zip container)") from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        # Checked before any name is used: "../x", "/etc/x", "a/b", duplicates and extras all fail here.
        if names not in (list(MEMBERS), list(MEMBERS[:2])):
            got = [n[:40] for n in names[:8]]
            raise errors.BundleInvalid(f"bundle must hold exactly {', '.join(MEMBERS)} in that order, got {got}")
        limits = {MANIFEST_MEMBER: MAX_MANIFEST_BYTES, ADAPTER_MEMBER: MAX_ADAPTER_BYTES, SIGNATURE_MEMBER: MAX_SIGNATURE_BYTES}
        found: dict[str, bytes] = {}
        for info in infos:
            mode = info.external_attr >> 16
            if info.is_dir() or (mode and not stat.S_ISREG(mode)):
                raise errors.BundleInvalid(f"bundle member {info.filename} is not a regular file")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                raise errors.BundleInvalid(f"bundle member {info.filename}: unsupported compression or encryption")
            limit = limits[info.filename]
            if info.file_size > limit:
                raise errors.BundleInvalid(f"bundle member {info.filename} is larger than {limit} bytes")
            try:
                with archive.open(info) as member:
                    # Read one byte past the limit: a header that lies about the size cannot inflate us.
                    content = member.read(limit + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
                raise errors.BundleInvalid(f"bundle member {info.filename} cannot be read: {exc}") from None
            if len(content) > limit:
                raise errors.BundleInvalid(f"bundle member {info.filename} is larger than {limit} bytes")
            found[info.filename] = content
    return BundleFiles(found[MANIFEST_MEMBER], found[ADAPTER_MEMBER], found.get(SIGNATURE_MEMBER))


def read_bundle_file(path: str | Path) -> bytes:
    """Read a bundle file named by a caller: absolute path, regular file, size-capped."""
    text = str(path)
    if not text or len(text) > MAX_PATH_CHARS or "\x00" in text or not os.path.isabs(text):
        raise errors.BundleInvalid("the bundle path must be an absolute path")
    try:
        # O_NONBLOCK: a FIFO named by mistake must not hang the install; fstat then refuses it.
        fd = os.open(text, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise errors.BundleInvalid(f"cannot open {text[:200]}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise errors.BundleInvalid(f"{text[:200]} is not a regular file")
        if info.st_size > MAX_BUNDLE_BYTES:
            raise errors.BundleInvalid(f"{text[:200]} is larger than {MAX_BUNDLE_BYTES} bytes")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise errors.BundleInvalid(f"cannot read {text[:200]}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BUNDLE_BYTES:
        raise errors.BundleInvalid(f"{text[:200]} is larger than {MAX_BUNDLE_BYTES} bytes")
    return data


# ---------------------------------------------------------------------------------- trust


@dataclass(frozen=True)
class TrustedKey:
    """One public key from the trusted-keys folder."""

    key_id: str
    """``key_id_of(raw)``."""
    raw: bytes
    """The 32 raw ed25519 public-key bytes."""
    comment: str
    """Free text after the key on its line (who holds the private half)."""


def parse_public_key_line(line: str) -> TrustedKey:
    """Parse ``ed25519 <base64 of 32 bytes> [comment]``; raise BundleUntrusted when malformed."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2 or parts[0] != KEY_TYPE:
        raise errors.BundleUntrusted(f"not a '{KEY_TYPE} <base64> [comment]' line")
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise errors.BundleUntrusted("the key is not base64") from None
    if len(raw) != 32:
        raise errors.BundleUntrusted(f"an ed25519 public key has 32 bytes, not {len(raw)}")
    return TrustedKey(key_id_of(raw), raw, parts[2] if len(parts) > 2 else "")


def public_key_line(raw: bytes, comment: str = "") -> str:
    """The ``.pub`` line for a raw public key (the inverse of parse_public_key_line)."""
    line = f"{KEY_TYPE} {base64.b64encode(raw).decode('ascii')}"
    return f"{line} {comment}" if comment else line


def load_trusted_keys(directory: Path) -> dict[str, TrustedKey]:
    """Every ``*.pub`` in ``directory`` by key id; unreadable or malformed files are logged and skipped."""
    keys: dict[str, TrustedKey] = {}
    try:
        paths = sorted(p for p in Path(directory).iterdir() if p.name.endswith(KEY_SUFFIX) and not p.name.startswith("."))
    except OSError:
        return keys
    for path in paths:
        try:
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
            if len(lines) != 1:
                raise errors.BundleUntrusted("expected exactly one key line")
            key = parse_public_key_line(lines[0])
        except (OSError, UnicodeDecodeError, errors.BundleUntrusted) as exc:
            _LOGGER.error("ignoring trusted key %s: %s", path, getattr(exc, "message", exc))
            continue
        keys[key.key_id] = key
    return keys


def _check_signature(files: BundleFiles, trusted: Mapping[str, TrustedKey]) -> str:
    if files.signature is None:
        raise errors.BundleUntrusted("the bundle is not signed")
    signature = Signature.from_bytes(files.signature)
    key = trusted.get(signature.key_id)
    if key is None:
        raise errors.BundleUntrusted(
            f"signed by key {signature.key_id}, which this device does not trust"
            + ("" if trusted else " (no trusted keys are installed)")
        )
    # Lazy: the cryptography bindings are loaded only when a bundle is actually checked.
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(key.raw).verify(signature.signature, files.manifest)
    except InvalidSignature:
        raise errors.BundleUntrusted(
            f"the signature by key {signature.key_id} does not match {MANIFEST_MEMBER}: the bundle was altered after signing"
        ) from None
    return signature.key_id


# ---------------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle that passed every check against this device's keys and base models."""

    manifest: BundleManifest
    """The parsed, signed manifest."""
    key_id: str
    """The trusted key that signed it."""
    adapter: Mapping[str, np.ndarray]
    """Read-only float32 arrays by graph input name."""
    pack: VoicePack
    """The base pack the adapter binds to."""


def _check_npz_members(data: bytes) -> None:
    """Refuse what np.load would trust blindly: many members, huge inflated sizes, headers promising more than they hold."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if not infos or len(infos) > 16:
            raise ValueError("expected an .npz of 1-16 arrays")
        for info in infos:
            if not info.filename.endswith(".npy") or info.file_size > MAX_ADAPTER_BYTES:
                raise ValueError(f"member {info.filename[:40]!r} is not a small .npy array")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = reader(member)
                if dtype.hasobject:
                    raise ValueError(f"{info.filename[:40]!r} holds Python objects (pickles)")
                # np.load allocates what the header promises before it reads: check the promise first.
                if math.prod(shape) * dtype.itemsize > info.file_size:
                    raise ValueError(f"{info.filename[:40]!r} promises more data than it holds")


def _load_npz(data: bytes) -> dict[str, np.ndarray]:
    try:
        _check_npz_members(data)
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {key: np.array(archive[key]) for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError, NotImplementedError) as exc:
        raise errors.BundleInvalid(f"{ADAPTER_MEMBER} is not a readable .npz without pickles: {exc}") from None


def verify_bundle(files: BundleFiles, trusted: Mapping[str, TrustedKey], packs: Mapping[str, VoicePack]) -> VerifiedBundle:
    """Check signature, manifest, checksums, tensors and base model; return the bundle ready to bind."""
    key_id = _check_signature(files, trusted)
    try:
        raw = json.loads(files.manifest.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.BundleInvalid(f"{MANIFEST_MEMBER} is not valid JSON: {exc}") from None
    manifest = BundleManifest.from_dict(raw)
    entry = manifest.files[ADAPTER_MEMBER]
    actual = hashlib.sha256(files.adapter).hexdigest()
    if actual != entry.sha256 or len(files.adapter) != entry.bytes:
        raise errors.BundleUntrusted(
            f"{ADAPTER_MEMBER} does not match the signed checksum (sha256 {actual[:16]}…, {len(files.adapter)} bytes): "
            "the bundle was altered after signing"
        )
    arrays = _load_npz(files.adapter)
    declared = {name: (t.dtype, t.shape) for name, t in manifest.tensors.items()}
    found = {name: (str(a.dtype), tuple(a.shape)) for name, a in arrays.items()}
    if declared != found:
        raise errors.BundleInvalid(f"{ADAPTER_MEMBER} holds {found}, {MANIFEST_MEMBER} declares {declared}")
    pack = packs.get(manifest.base.pack_id)
    if pack is None:
        have = ", ".join(sorted(packs)) or "none"
        raise errors.BundleIncompatible(f"made for base model {manifest.base.pack_id!r}, which is not installed (installed: {have})")
    compatibility = pack.manifest.compatibility_hash()
    if compatibility != manifest.base.compatibility:
        raise errors.BundleIncompatible(
            f"made for another version of base model {manifest.base.pack_id!r} "
            f"(compatibility {manifest.base.compatibility[:16]}…, installed {compatibility[:16]}…)"
        )
    adapter = check_adapter(arrays, adapter_inputs(pack.manifest), ADAPTER_MEMBER, errors.BundleIncompatible,
                            optional=adapter_overrides(pack.manifest))
    return VerifiedBundle(manifest, key_id, adapter, pack)


# ---------------------------------------------------------------------------------- the store


class VoiceStore:
    """Installed bundles as ``<root>/<voice_id>.mynavoice`` files, replaced atomically.

    One file per voice, so one ``rename`` swaps old for new: there is no moment without a valid
    file, and a crash leaves the previous bundle plus at most a ``.tmp-*`` file that loading
    ignores and a later install deletes once it is stale.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, voice_id: str) -> Path:
        """The installed file of ``voice_id``."""
        if not is_voice_id(voice_id):
            raise errors.BundleInvalid(f"{voice_id[:70]!r} is not a valid voice id")
        return self.root / f"{voice_id}{SUFFIX}"

    def entries(self) -> list[tuple[str, Path]]:
        """``(voice_id, path)`` of every installed bundle, sorted; temp files and odd names are skipped."""
        try:
            names = sorted(os.listdir(self.root))
        except OSError:
            return []
        out = []
        for name in names:
            if name.startswith(".") or not name.endswith(SUFFIX):
                continue
            voice_id = name[: -len(SUFFIX)]
            if is_voice_id(voice_id):
                out.append((voice_id, self.root / name))
            else:
                _LOGGER.warning("ignoring %s: not a valid voice id", self.root / name)
        return out

    def read(self, voice_id: str) -> bytes | None:
        """The installed bundle's bytes, or None."""
        try:
            return self.path_of(voice_id).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, voice_id: str, data: bytes) -> None:
        """Install ``data`` as the bundle of ``voice_id``: temp file, fsync, rename, fsync the folder."""
        final = self.path_of(voice_id)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._prune_stale()
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=SUFFIX, dir=self.root)
        except OSError as exc:
            raise errors.MynaError(f"cannot write to the voice store {self.root}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException as exc:
            # Anything between the write and the rename (disk full, a signal) leaves the old bundle.
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise errors.MynaError(f"cannot write {final}: {exc.strerror}") from None
            raise
        self._sync_dir()

    def remove(self, voice_id: str) -> None:
        """Delete the installed bundle of ``voice_id`` (missing is fine)."""
        try:
            self.path_of(voice_id).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise errors.MynaError(f"cannot remove {self.path_of(voice_id)}: {exc.strerror}") from None
        self._sync_dir()

    def _sync_dir(self) -> None:
        # The rename/unlink is durable only once the directory entry is on disk.
        try:
            fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _prune_stale(self) -> None:
        now = time.time()
        for name in os.listdir(self.root):
            if not name.startswith(TMP_PREFIX):
                continue
            path = self.root / name
            try:
                if now - path.stat().st_mtime > _STALE_TMP_SECONDS:
                    path.unlink()
                    _LOGGER.info("removed %s, left over by an interrupted install", path)
            except OSError:
                pass
