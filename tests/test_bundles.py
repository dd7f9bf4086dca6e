"""Voice bundles: the container, signature, manifest and base-model checks, the atomic store, install and removal."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from myna import bundles, errors
from myna.audio.null import NullSink
from myna.bundles import (
    ADAPTER_MEMBER,
    BundleFiles,
    Consent,
    Provenance,
    Signature,
    TrustedKey,
    VoiceStore,
    key_id_of,
    pack_bundle,
    parse_public_key_line,
    public_key_line,
    unpack_bundle,
    verify_bundle,
)
from myna.cache import AudioCache, Rendering
from myna.catalog import SynthCatalog
from myna.engine import Engine
from myna.voices import VoicePack, VoiceRegistry
from voice.bundle import adapter_bytes, make_bundle
from voice.signing import raw_public

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDER = REPO / "models" / "placeholder"
CREATED = "2025-03-04T05:06:07Z"
CONSENT = Consent("Anna Example", "2025-03-01", "I agree that my voice is cloned for the Myna announcer in my car.")
PROVENANCE = Provenance("tests/test_bundles.py", 12, 61.5, "synthetic adapter")


@pytest.fixture(scope="module")
def pack() -> VoicePack:
    """The shipped placeholder pack, whose graphs take ``speaker`` float32 [1, 16]."""
    return VoicePack.load(PLACEHOLDER)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    """The signing key the device trusts."""
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def trusted(key: Ed25519PrivateKey) -> dict[str, TrustedKey]:
    """The device's trusted keys: ``key`` only."""
    parsed = parse_public_key_line(public_key_line(raw_public(key), "vendor"))
    return {parsed.key_id: parsed}


def speaker(seed: int) -> dict[str, np.ndarray]:
    """A speaker vector of the placeholder's shape."""
    return {"speaker": np.random.default_rng(seed).normal(size=(1, 16)).astype(np.float32)}


def build(pack: VoicePack, key: Ed25519PrivateKey | None, voice_id: str = "anna", seed: int = 1, **kw: Any) -> bytes:
    """A bundle made by the workstation tool."""
    return make_bundle(adapter=speaker(seed), base_pack=pack, voice_id=voice_id, name=voice_id.title(), language="en-US",
                       consent=CONSENT, provenance=PROVENANCE, key=key, created=CREATED, **kw)  # fmt: skip


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The signature member for ``manifest`` bytes."""
    return Signature(key_id_of(raw_public(key)), key.sign(manifest)).to_bytes()


def resigned(files: BundleFiles, key: Ed25519PrivateKey, edit: Callable[[dict[str, Any]], None], adapter: bytes | None = None) -> BundleFiles:
    """Edit the manifest (and maybe the adapter, updating its checksum), then sign it properly."""
    raw = json.loads(files.manifest)
    if adapter is not None:
        raw["files"][ADAPTER_MEMBER] = {"sha256": hashlib.sha256(adapter).hexdigest(), "bytes": len(adapter)}
    edit(raw)
    manifest = json.dumps(raw, indent=2).encode()
    return BundleFiles(manifest, adapter if adapter is not None else files.adapter, sign(manifest, key))


def packs_of(pack: VoicePack) -> dict[str, VoicePack]:
    return {pack.manifest.pack_id: pack}


# ------------------------------------------------------------------------------ verification


def test_a_good_bundle_verifies_and_round_trips(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    data = build(pack, key)
    assert data == build(pack, key)  # same inputs, same bytes: reproducible and idempotent to push
    verified = verify_bundle(unpack_bundle(data), trusted, packs_of(pack))
    assert verified.manifest.voice_id == "anna" and verified.key_id == key_id_of(raw_public(key))
    assert verified.manifest.speaker.consent == CONSENT and verified.manifest.speaker.provenance == PROVENANCE
    assert verified.manifest.base.compatibility == pack.manifest.compatibility_hash()
    np.testing.assert_array_equal(verified.adapter["speaker"], speaker(1)["speaker"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == list(bundles.MEMBERS)


def test_tampered_adapter_is_refused(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    files = unpack_bundle(build(pack, key))
    other = adapter_bytes(speaker(2))
    with pytest.raises(errors.BundleUntrusted, match="altered after signing"):
        verify_bundle(dataclasses.replace(files, adapter=other), trusted, packs_of(pack))


def test_tampered_manifest_is_refused(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    files = unpack_bundle(build(pack, key))
    edited = files.manifest.replace(b'"Anna"', b'"Mallory"')
    assert edited != files.manifest
    with pytest.raises(errors.BundleUntrusted, match="does not match bundle.json"):
        verify_bundle(dataclasses.replace(files, manifest=edited), trusted, packs_of(pack))


def test_unsigned_bundle_is_refused(pack: VoicePack, trusted: dict[str, TrustedKey]) -> None:
    data = build(pack, None)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == [bundles.MANIFEST_MEMBER, ADAPTER_MEMBER]
    with pytest.raises(errors.BundleUntrusted, match="not signed"):
        verify_bundle(unpack_bundle(data), trusted, packs_of(pack))


def test_bundle_signed_by_an_unknown_key_is_refused(pack: VoicePack, trusted: dict[str, TrustedKey]) -> None:
    stranger = Ed25519PrivateKey.generate()
    files = unpack_bundle(build(pack, stranger))
    with pytest.raises(errors.BundleUntrusted, match=f"key {key_id_of(raw_public(stranger))}, which this device does not trust"):
        verify_bundle(files, trusted, packs_of(pack))
    with pytest.raises(errors.BundleUntrusted, match="no trusted keys are installed"):
        verify_bundle(files, {}, packs_of(pack))


def test_signature_of_another_key_under_a_trusted_id_is_refused(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    files = unpack_bundle(build(pack, key))
    forged = Signature(key_id_of(raw_public(key)), Ed25519PrivateKey.generate().sign(files.manifest)).to_bytes()
    with pytest.raises(errors.BundleUntrusted, match="altered after signing"):
        verify_bundle(dataclasses.replace(files, signature=forged), trusted, packs_of(pack))


@pytest.mark.parametrize("member", [b"not json", b'{"algorithm": "rsa", "key_id": "00", "signature": ""}', b"{}"])
def test_malformed_signature_member_is_untrusted(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey], member: bytes) -> None:
    files = unpack_bundle(build(pack, key))
    with pytest.raises(errors.BundleUntrusted):
        verify_bundle(dataclasses.replace(files, signature=member), trusted, packs_of(pack))


def test_wrong_base_model_is_incompatible(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    files = unpack_bundle(build(pack, key))

    def other_hash(raw: dict[str, Any]) -> None:
        raw["base"]["compatibility"] = "0" * 64

    with pytest.raises(errors.BundleIncompatible, match="another version of base model 'placeholder'"):
        verify_bundle(resigned(files, key, other_hash), trusted, packs_of(pack))

    def other_pack(raw: dict[str, Any]) -> None:
        raw["base"]["pack_id"] = "myna-de"

    with pytest.raises(errors.BundleIncompatible, match="'myna-de', which is not installed"):
        verify_bundle(resigned(files, key, other_pack), trusted, packs_of(pack))


def test_compatibility_hash_names_the_graphs(pack: VoicePack) -> None:
    manifest = pack.manifest
    assert manifest.compatibility_hash() == VoicePack.load(PLACEHOLDER, verify_graphs=False).manifest.compatibility_hash()
    tier = next(iter(manifest.tiers))
    graphs = dict(manifest.tiers[tier].graphs)
    graphs["vocoder"] = dataclasses.replace(graphs["vocoder"], sha256="f" * 64)
    retrained = dataclasses.replace(manifest, tiers={**manifest.tiers, tier: dataclasses.replace(manifest.tiers[tier], graphs=graphs)})
    assert retrained.compatibility_hash() != manifest.compatibility_hash()
    assert dataclasses.replace(manifest, pack_id="x").compatibility_hash() != manifest.compatibility_hash()


def test_adapter_of_the_wrong_shape_is_incompatible(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    files = unpack_bundle(build(pack, key))
    small = adapter_bytes({"speaker": np.zeros((1, 8), np.float32)})

    def declare(raw: dict[str, Any]) -> None:
        raw["tensors"] = {"speaker": {"dtype": "float32", "shape": [1, 8]}}

    with pytest.raises(errors.BundleIncompatible, match=r"expected float32\[1, 16\]"):
        verify_bundle(resigned(files, key, declare, adapter=small), trusted, packs_of(pack))
    # Declared shapes must also be the shapes inside the .npz.
    with pytest.raises(errors.BundleInvalid, match="declares"):
        verify_bundle(resigned(files, key, lambda raw: None, adapter=small), trusted, packs_of(pack))
    with pytest.raises(errors.BundleIncompatible, match="graphs need"):
        extra = adapter_bytes({**speaker(1), "style": np.zeros((1, 4), np.float32)})

        def declare_extra(raw: dict[str, Any]) -> None:
            raw["tensors"]["style"] = {"dtype": "float32", "shape": [1, 4]}

        verify_bundle(resigned(files, key, declare_extra, adapter=extra), trusted, packs_of(pack))


def test_a_bundle_may_give_one_graph_its_own_vector(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    # A clone keeps a base voice's vector in the encoder (clarity) and its own in the decoder (timbre).
    adapter = {**speaker(1), "decoder.speaker": speaker(2)["speaker"]}
    data = make_bundle(adapter=adapter, base_pack=pack, voice_id="anna", name="Anna", language="en-US",
                       consent=CONSENT, provenance=PROVENANCE, key=key, created=CREATED)  # fmt: skip
    verified = verify_bundle(unpack_bundle(data), trusted, packs_of(pack))
    assert sorted(verified.adapter) == ["decoder.speaker", "speaker"]
    assert verified.manifest.tensors["decoder.speaker"].shape == (1, 16)
    for bad in ({**speaker(1), "postnet.speaker": speaker(2)["speaker"]},
                {**speaker(1), "decoder.speaker": np.zeros((1, 8), np.float32)},
                {"decoder.speaker": speaker(2)["speaker"]}):  # an override never replaces the shared vector
        with pytest.raises(errors.BundleIncompatible):
            make_bundle(adapter=bad, base_pack=pack, voice_id="anna", name="Anna", language="en-US",
                        consent=CONSENT, provenance=PROVENANCE, key=key, created=CREATED)  # fmt: skip


def test_a_bundle_may_carry_the_voices_pitch_scale(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    # A clone that keeps the base voice's rhythm speaks at its recordings' pitch level.
    def bundle(scale: float) -> bytes:
        return make_bundle(adapter={**speaker(1), "pitch_scale": np.array([scale], np.float32)}, base_pack=pack,
                           voice_id="anna", name="Anna", language="en-US", consent=CONSENT, provenance=PROVENANCE,
                           key=key, created=CREATED)  # fmt: skip

    verified = verify_bundle(unpack_bundle(bundle(0.85)), trusted, packs_of(pack))
    assert verified.manifest.tensors["pitch_scale"].shape == (1,)
    assert float(verified.adapter["pitch_scale"][0]) == pytest.approx(0.85)
    with pytest.raises(errors.BundleIncompatible, match="outside 0.5–2"):
        bundle(0.1)


def test_pickled_npz_is_refused(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    files = unpack_bundle(build(pack, key))
    out = io.BytesIO()
    np.savez(out, speaker=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(errors.BundleInvalid, match="without pickles"):
        verify_bundle(resigned(files, key, lambda raw: None, adapter=out.getvalue()), trusted, packs_of(pack))


def test_npz_that_promises_more_than_it_holds_is_refused(pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey]) -> None:
    # A header claiming 2**40 floats in a 64-byte member would make np.load allocate terabytes.
    files = unpack_bundle(build(pack, key))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1, 1 << 40)})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("speaker.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(errors.BundleInvalid, match="promises more data"):
        verify_bundle(resigned(files, key, lambda raw: None, adapter=out.getvalue()), trusted, packs_of(pack))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda raw: raw.update(voice_id="../etc"), "voice_id"),
        (lambda raw: raw.update(voice_id="Anna"), "voice_id"),
        (lambda raw: raw.update(language="english please"), "language"),
        (lambda raw: raw.update(created="yesterday"), "created"),
        (lambda raw: raw.update(format_version=2), "format_version"),
        (lambda raw: raw.update(extra=1), "unknown fields"),
        (lambda raw: raw["speaker"].pop("consent"), "consent"),
        (lambda raw: raw["speaker"]["consent"].update(given_by=""), "given_by"),
        (lambda raw: raw["speaker"]["consent"].update(date="March"), "date"),
        (lambda raw: raw["speaker"]["provenance"].update(recordings=-1), "provenance"),
        (lambda raw: raw["files"].update({"recording.wav": {"sha256": "0" * 64, "bytes": 1}}), "files"),
    ],
    ids=["traversal-id", "uppercase-id", "language", "created", "version", "unknown-field", "no-consent",
         "empty-consent", "consent-date", "provenance", "extra-file"],
)  # fmt: skip
def test_malformed_manifest_fields_are_invalid(
    pack: VoicePack, key: Ed25519PrivateKey, trusted: dict[str, TrustedKey], edit: Callable[[dict[str, Any]], None], match: str
) -> None:
    files = unpack_bundle(build(pack, key))
    with pytest.raises(errors.BundleInvalid, match=match):
        verify_bundle(resigned(files, key, edit), trusted, packs_of(pack))


# ------------------------------------------------------------------------------ the container


def _zip(members: list[tuple[str, bytes]], mode: int = stat.S_IFREG | 0o644) -> bytes:
    out = io.BytesIO()
    # zipfile warns about a duplicate name, which is exactly the hostile archive wanted here.
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)
        for name, data in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.create_system = 3
            archive.writestr(info, data)
    return out.getvalue()


def test_container_refuses_paths_links_extras_and_order(pack: VoicePack, key: Ed25519PrivateKey) -> None:
    files = unpack_bundle(build(pack, key))
    good = [("bundle.json", files.manifest), ("adapter.npz", files.adapter), ("signature", files.signature or b"")]
    assert unpack_bundle(_zip(good)) == files
    cases = {
        "traversal": [("../bundle.json", files.manifest), *good[1:]],
        "absolute": [("/etc/myna/bundle.json", files.manifest), *good[1:]],
        "subfolder": [("x/bundle.json", files.manifest), *good[1:]],
        "extra": [*good, ("recording.wav", b"RIFF")],
        "duplicate": [*good, ("signature", b"x")],
        "order": [good[1], good[0], good[2]],
        "empty": [],
    }
    for name, members in cases.items():
        with pytest.raises(errors.BundleInvalid, match="must hold exactly"):
            unpack_bundle(_zip(members))
        assert name
    with pytest.raises(errors.BundleInvalid, match="not a regular file"):
        unpack_bundle(_zip(good, mode=stat.S_IFLNK | 0o777))
    with pytest.raises(errors.BundleInvalid, match="not a zip"):
        unpack_bundle(b"#!/bin/sh\nrm -rf /\n")


def test_container_caps_member_sizes(pack: VoicePack, key: Ed25519PrivateKey) -> None:
    files = unpack_bundle(build(pack, key))
    huge = files.manifest + b" " * bundles.MAX_MANIFEST_BYTES
    with pytest.raises(errors.BundleInvalid, match="larger than"):
        unpack_bundle(pack_bundle(dataclasses.replace(files, manifest=huge)))
    with pytest.raises(errors.BundleInvalid, match="larger than"):
        unpack_bundle(b"\0" * (bundles.MAX_BUNDLE_BYTES + 1))


def test_read_bundle_file_checks_the_path(tmp_path: Path) -> None:
    with pytest.raises(errors.BundleInvalid, match="absolute"):
        bundles.read_bundle_file("relative.mynavoice")
    with pytest.raises(errors.BundleInvalid, match="cannot open"):
        bundles.read_bundle_file(str(tmp_path / "missing.mynavoice"))
    with pytest.raises(errors.BundleInvalid, match="not a regular file"):
        bundles.read_bundle_file(str(tmp_path))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(errors.BundleInvalid, match="not a regular file"):
        bundles.read_bundle_file(str(fifo))


def test_public_key_lines_and_trusted_folder(tmp_path: Path, key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture) -> None:
    raw = raw_public(key)
    line = public_key_line(raw, "vendor 2025")
    parsed = parse_public_key_line(line)
    assert (parsed.raw, parsed.comment, parsed.key_id) == (raw, "vendor 2025", hashlib.sha256(raw).hexdigest()[:16])
    (tmp_path / "vendor.pub").write_text("# provisioning 2025\n" + line + "\n")
    (tmp_path / "broken.pub").write_text("ssh-rsa AAAA\n")
    (tmp_path / "notes.txt").write_text(line)  # not *.pub: ignored
    with caplog.at_level(logging.ERROR, logger="myna.bundles"):
        keys = bundles.load_trusted_keys(tmp_path)
    assert list(keys) == [parsed.key_id]
    assert "broken.pub" in caplog.text
    assert bundles.load_trusted_keys(tmp_path / "missing") == {}


# ------------------------------------------------------------------------------ store, install, remove


@pytest.fixture
def device(tmp_path: Path, key: Ed25519PrivateKey) -> dict[str, Path]:
    """A device's folders: trusted keys (with ``key``), the voice store, an incoming folder."""
    folders = {name: tmp_path / name for name in ("trusted", "store", "incoming")}
    for folder in folders.values():
        folder.mkdir()
    (folders["trusted"] / "vendor.pub").write_text(public_key_line(raw_public(key), "vendor") + "\n")
    return folders


def catalog_for(device: dict[str, Path], default_voice: str | None = None) -> SynthCatalog:
    """A daemon's catalog: the placeholder pack plus whatever the store holds."""
    return SynthCatalog.from_dirs(
        [PLACEHOLDER], tier="tiny", threads=1, default_voice=default_voice,
        store=VoiceStore(device["store"]), trusted_keys_dir=device["trusted"],
    )  # fmt: skip


def drop(device: dict[str, Path], data: bytes, name: str = "anna.mynavoice") -> str:
    path = device["incoming"] / name
    path.write_bytes(data)
    return str(path)


def test_install_binds_to_the_base_synthesizer_and_lists_the_voice(device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey) -> None:
    catalog = catalog_for(device)
    assert catalog.install_voice(drop(device, build(pack, key))) == "anna"
    assert ("anna", "Anna", "en-US") in [(v.id, v.name, v.language) for v in catalog.listing()]
    bound, base = catalog.bind("anna"), catalog.bind("placeholder")
    assert bound.renderer is base.renderer  # the pack's interpreters, not new ones
    np.testing.assert_array_equal(bound.speaker["speaker"], speaker(1)["speaker"])
    assert sorted(p.name for p in device["store"].iterdir()) == ["anna.mynavoice"]


def test_installing_the_same_bundle_twice_is_a_no_op(device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey) -> None:
    catalog = catalog_for(device)
    path = drop(device, build(pack, key))
    catalog.install_voice(path)
    before = (device["store"] / "anna.mynavoice").stat()
    assert catalog.install_voice(path) == "anna"
    after = (device["store"] / "anna.mynavoice").stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_a_new_bundle_for_the_same_voice_replaces_it(device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey) -> None:
    catalog = catalog_for(device)
    catalog.install_voice(drop(device, build(pack, key, seed=1)))
    catalog.install_voice(drop(device, build(pack, key, seed=2)))
    np.testing.assert_array_equal(catalog.bind("anna").speaker["speaker"], speaker(2)["speaker"])
    assert catalog_for(device).bind("anna").speaker["speaker"].tolist() == speaker(2)["speaker"].tolist()


@pytest.mark.parametrize("kind", ["tampered", "unsigned", "untrusted"])
def test_refused_bundles_leave_installed_voices_alone(
    device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey, kind: str
) -> None:
    catalog = catalog_for(device)
    catalog.install_voice(drop(device, build(pack, key)))
    stored = (device["store"] / "anna.mynavoice").read_bytes()
    files = unpack_bundle(build(pack, key, seed=7))
    bad = {
        "tampered": pack_bundle(dataclasses.replace(files, adapter=adapter_bytes(speaker(8)))),
        "unsigned": build(pack, None, seed=7),
        "untrusted": build(pack, Ed25519PrivateKey.generate(), seed=7),
    }[kind]
    with pytest.raises(errors.BundleUntrusted):
        catalog.install_voice(drop(device, bad, "bad.mynavoice"))
    assert (device["store"] / "anna.mynavoice").read_bytes() == stored
    np.testing.assert_array_equal(catalog.bind("anna").speaker["speaker"], speaker(1)["speaker"])
    assert sorted(p.name for p in device["store"].iterdir()) == ["anna.mynavoice"]


def test_a_bundle_cannot_take_a_built_in_voice_id(device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey) -> None:
    catalog = catalog_for(device)
    with pytest.raises(errors.BundleIncompatible, match="built-in pack 'placeholder'"):
        catalog.install_voice(drop(device, build(pack, key, voice_id="placeholder")))
    assert list(device["store"].iterdir()) == []


def test_failure_between_write_and_rename_keeps_the_previous_bundle(
    device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_for(device)
    catalog.install_voice(drop(device, build(pack, key, seed=1)))
    stored = (device["store"] / "anna.mynavoice").read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundles.os, "replace", crash)
    with pytest.raises(errors.MynaError, match="No space left"):
        catalog.install_voice(drop(device, build(pack, key, seed=2)))
    monkeypatch.undo()
    assert (device["store"] / "anna.mynavoice").read_bytes() == stored
    assert sorted(p.name for p in device["store"].iterdir()) == ["anna.mynavoice"]  # the temp file is gone
    np.testing.assert_array_equal(catalog.bind("anna").speaker["speaker"], speaker(1)["speaker"])


CRASH_SCRIPT = """
import os, signal, sys
from pathlib import Path
from myna import bundles
store = bundles.VoiceStore(Path(sys.argv[1]))
def die(src, dst):
    os.kill(os.getpid(), signal.SIGKILL)  # power cut: after the temp file is written, before the rename
bundles.os.replace = die
store.write("anna", Path(sys.argv[2]).read_bytes())
"""


def test_a_crash_mid_install_leaves_the_previous_state_and_restart_ignores_the_leftover(
    device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey
) -> None:
    catalog_for(device).install_voice(drop(device, build(pack, key, seed=1)))
    stored = (device["store"] / "anna.mynavoice").read_bytes()
    new = drop(device, build(pack, key, seed=2), "new.mynavoice")
    result = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(device["store"]), new], timeout=60, check=False)
    assert result.returncode == -signal.SIGKILL
    names = sorted(p.name for p in device["store"].iterdir())
    assert names[-1] == "anna.mynavoice" and len(names) == 2 and names[0].startswith(bundles.TMP_PREFIX)
    assert (device["store"] / "anna.mynavoice").read_bytes() == stored
    restarted = catalog_for(device)
    assert [v.id for v in restarted.listing()] == ["anna", "placeholder", "placeholder-alt"]
    np.testing.assert_array_equal(restarted.bind("anna").speaker["speaker"], speaker(1)["speaker"])
    # A later install removes a leftover once it is stale.
    leftover = device["store"] / names[0]
    os.utime(leftover, (0, 0))
    restarted.install_voice(new)
    assert not leftover.exists()


def test_restart_reverifies_and_a_revoked_key_unloads_its_voices(
    device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    catalog_for(device).install_voice(drop(device, build(pack, key)))
    assert "anna" in [v.id for v in catalog_for(device, default_voice="anna").listing()]
    (device["trusted"] / "vendor.pub").unlink()
    with caplog.at_level(logging.ERROR, logger="myna.catalog"):
        restarted = catalog_for(device)
    assert [v.id for v in restarted.listing()] == ["placeholder", "placeholder-alt"]
    assert "not loading installed voice" in caplog.text and "does not trust" in caplog.text


def test_remove_voice(device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey) -> None:
    catalog = catalog_for(device)
    catalog.install_voice(drop(device, build(pack, key)))
    catalog.install_voice(drop(device, build(pack, key, voice_id="bob"), "bob.mynavoice"))
    with pytest.raises(errors.VoiceNotRemovable, match="built into pack"):
        catalog.remove_voice("placeholder-alt")
    with pytest.raises(errors.UnknownVoice):
        catalog.remove_voice("carol")
    bound = catalog.bind("anna")
    catalog.remove_voice("anna")
    assert "anna" not in [v.id for v in catalog.listing()]
    assert not (device["store"] / "anna.mynavoice").exists()
    with pytest.raises(errors.UnknownVoice):
        catalog.bind("anna")
    assert bound.speaker["speaker"].shape == (1, 16)  # a job bound before the removal keeps its voice
    with_default = catalog_for(device, default_voice="bob")
    with pytest.raises(errors.VoiceNotRemovable, match="default voice"):
        with_default.remove_voice("bob")


def test_registry_never_lets_a_bundle_replace_a_pack_voice(pack: VoicePack) -> None:
    registry = VoiceRegistry([PLACEHOLDER])
    builtin = registry.get("placeholder")
    fake = dataclasses.replace(builtin, info=dataclasses.replace(builtin.info, from_bundle=True))
    with pytest.raises(errors.BundleIncompatible):
        registry.put(fake)


def test_engine_install_clears_the_cache(device: dict[str, Path], pack: VoicePack, key: Ed25519PrivateKey) -> None:
    cache = AudioCache(1 << 20)
    engine = Engine(catalog_for(device), NullSink(), cache=cache)
    cache.put(("anna", "hello"), Rendering(np.zeros(10, np.int16), ()))
    assert engine.install_voice(drop(device, build(pack, key))) == "anna"
    assert len(cache) == 0 and "anna" in [v.id for v in engine.voices()]
    cache.put(("anna", "hello"), Rendering(np.zeros(10, np.int16), ()))
    engine.remove_voice("anna")
    assert len(cache) == 0 and "anna" not in [v.id for v in engine.voices()]
