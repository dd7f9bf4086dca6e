"""Make a signed voice bundle (``.mynavoice``) from adapter tensors, the base pack, metadata and consent.

The clone tool calls ``make_bundle`` with the adapter it fitted; ``tools/make_bundle.py`` is the
command line for an adapter already saved as ``.npz``.  The format is ``myna.bundles`` (the device
reads it with the same code); this module only writes it, checking everything the device will check
except trust, so a bundle that leaves the workstation is one a device with the key installs.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from myna.bundles import (
    ADAPTER_MEMBER,
    BaseModel,
    BundleFiles,
    BundleManifest,
    Consent,
    FileEntry,
    Provenance,
    Signature,
    Speaker,
    TensorEntry,
    key_id_of,
    pack_bundle,
    parse_public_key_line,
    public_key_line,
    unpack_bundle,
    verify_bundle,
)
from myna.errors import BundleIncompatible
from myna.voices import VoicePack, adapter_inputs, adapter_overrides, check_adapter

from .signing import raw_public


def adapter_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An ``.npz`` of float32 arrays that ``np.load`` reads; the same arrays always give the same bytes.

    Not ``np.savez``: it stamps each member with the current time, and a bundle made twice from one
    adapter should be byte-identical (pushing it again is then visibly a no-op on the device).
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key], dtype=np.float32), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return out.getvalue()


def utc_now() -> str:
    """Now as the manifest's ``created`` string."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_bundle(
    *,
    adapter: Mapping[str, np.ndarray],
    base_pack: Path | VoicePack,
    voice_id: str,
    name: str,
    language: str,
    consent: Consent,
    provenance: Provenance,
    key: Ed25519PrivateKey | None,
    created: str | None = None,
) -> bytes:
    """Return the bundle's bytes; ``key=None`` makes an unsigned bundle (devices refuse it; for tests).

    Raises ``myna.errors.MynaError`` (BundleInvalid/BundleIncompatible) when the adapter does not fit the
    base pack's graphs or a field is malformed: the same checks the device makes.
    """
    pack = base_pack if isinstance(base_pack, VoicePack) else VoicePack.load(Path(base_pack))
    arrays = {k: np.array(v) for k, v in adapter.items()}
    check_adapter(arrays, adapter_inputs(pack.manifest), "adapter", BundleIncompatible, optional=adapter_overrides(pack.manifest))
    blob = adapter_bytes(arrays)
    manifest = BundleManifest(
        voice_id=voice_id,
        name=name,
        language=language,
        base=BaseModel(pack.manifest.pack_id, pack.manifest.compatibility_hash()),
        files={ADAPTER_MEMBER: FileEntry(hashlib.sha256(blob).hexdigest(), len(blob))},
        tensors={k: TensorEntry("float32", tuple(int(d) for d in arrays[k].shape)) for k in sorted(arrays)},
        created=created or utc_now(),
        speaker=Speaker(consent, provenance),
    )
    text = manifest.to_bytes()
    # Round-trip through the device's parser: a malformed field fails here, not on the device.
    BundleManifest.from_dict(manifest.to_dict())
    signature = None
    if key is not None:
        raw = raw_public(key)
        signature = Signature(key_id_of(raw), key.sign(text)).to_bytes()
    data = pack_bundle(BundleFiles(text, blob, signature))
    if key is not None:
        # The device's own verification with this key as the only trusted one.
        trusted = parse_public_key_line(public_key_line(raw_public(key)))
        verify_bundle(unpack_bundle(data), {trusted.key_id: trusted}, {pack.manifest.pack_id: pack})
    return data


def load_adapter_npz(path: Path) -> dict[str, np.ndarray]:
    """Read an adapter ``.npz`` (no pickles)."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: np.array(archive[key]) for key in archive.files}
