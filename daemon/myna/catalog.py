"""Binds installed voices to their pack's synthesizer, built once per pack at the board's tier.

Packs are searched in the order of the voice directories (the config's ``voice_dirs``, else the shipped
``models/`` then ``/var/lib/myna/voices``), packs inside one directory by folder name.  The voice a
request without ``voice`` gets is, first match wins:

1. the config's ``default_voice`` (an error at start-up if it is not installed);
2. the ``default_voice`` of the first pack whose manifest is not marked ``"placeholder": true``
   (so a trained pack, e.g. ``models/myna-en``, beats the shipped placeholder once installed);
3. the placeholder's ``default_voice`` when nothing else is installed.

The placeholder's voices stay installed and selectable by id either way.

Voices installed from signed bundles (``InstallVoice``, see myna.bundles) live in the voice store
and bind to their base pack's synthesizer: an installed voice is an adapter, never a new
interpreter.  They are loaded (and re-verified: a key removed from the trusted folder revokes its
voices) after the packs, so ``default_voice`` in the config may name one.  Installing and removing
swap the registry's entries; a job already queued or speaking keeps the voice it was bound to and
finishes, so removing a voice never cuts an utterance short.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Iterable, Sequence

from . import bundles
from .engine import BoundVoice, VoiceListing
from .datadirs import shipped_dir, shipped_dir_candidates
from .errors import BundleIncompatible, BundleInvalid, MynaError, UnknownVoice, VoiceNotRemovable, VoicePackError
from .inference.pipeline import Synthesizer
from .text import phonemes
from .text.frontend import Frontend, make_frontend
from .voices import MANIFEST_NAME, Voice, VoiceInfo, VoiceRegistry, choose_tier

_LOGGER = logging.getLogger(__name__)


def packaged_voice_dir() -> Path:
    """The shipped `models/` folder of voice packs (see datadirs for the install styles)."""
    found = shipped_dir("models")
    if found is None:
        raise VoicePackError("no shipped models directory found; looked in " + ", ".join(map(str, shipped_dir_candidates("models"))))
    return found


def find_packs(dirs: Iterable[Path]) -> list[Path]:
    """Each dir is a pack (has a manifest) or a folder of packs; return the voice-pack roots in order.

    models/ also holds the frontend's lexicon and G2P model, whose manifests declare no voices.
    """
    packs: list[Path] = []
    for folder in dirs:
        if (folder / MANIFEST_NAME).is_file():
            packs.append(folder)
        elif folder.is_dir():
            packs.extend(sorted(p for p in folder.iterdir() if _declares_voices(p / MANIFEST_NAME)))
    return packs


def _declares_voices(manifest: Path) -> bool:
    try:
        raw = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        # Not readable as JSON: let the pack loader report it precisely if it is a voice pack at all.
        return manifest.is_file()
    return isinstance(raw, dict) and "voices" in raw


class SynthCatalog:
    """The engine's view of the voices: listing and binding, interpreters built up front."""

    def __init__(
        self,
        registry: VoiceRegistry,
        *,
        tier: str,
        threads: int,
        default_voice: str | None = None,
        store: bundles.VoiceStore | None = None,
        trusted_keys_dir: Path | None = None,
    ) -> None:
        """Build a synthesizer per pack, then load the installed bundles from ``store`` (if any)."""
        self._registry = registry
        self._store = store
        self._trusted_keys_dir = trusted_keys_dir
        # Serialises installs and removals; reads (bind, listing) see the registry's current snapshot.
        self._lock = threading.Lock()
        self._synths: dict[str, Synthesizer] = {}
        self._frontends: dict[str, Frontend] = {}
        by_inventory: dict[tuple[str, int], Frontend] = {}
        # Interpreters are built here, at start-up, so the first request pays no load time.
        for info in registry.list():
            voice = registry.get(info.id)
            pack_id = info.pack_id
            if pack_id not in self._synths:
                chosen = choose_tier(voice.pack, tier)
                self._synths[pack_id] = Synthesizer(voice.pack, chosen, num_threads=threads)
                spec = voice.pack.manifest.phoneme_inventory
                key = (spec.name, spec.version)
                if key not in by_inventory:
                    by_inventory[key] = make_frontend(phonemes.inventory(*key), threads=threads)
                self._frontends[pack_id] = by_inventory[key]
                _LOGGER.info("voice pack %s: tier %s, %d threads", pack_id, chosen, threads)
        if store is not None:
            self._load_installed(store)
        if default_voice is not None:
            registry.get(default_voice)
        self._default = default_voice or registry.default_id

    @classmethod
    def from_dirs(
        cls,
        dirs: Sequence[Path],
        *,
        tier: str,
        threads: int,
        default_voice: str | None = None,
        store: bundles.VoiceStore | None = None,
        trusted_keys_dir: Path | None = None,
    ) -> "SynthCatalog":
        """Load every pack found under ``dirs``, then the bundles installed in ``store``."""
        return cls(
            VoiceRegistry(find_packs(dirs)), tier=tier, threads=threads, default_voice=default_voice,
            store=store, trusted_keys_dir=trusted_keys_dir,
        )  # fmt: skip

    # -- installed voices --------------------------------------------------------------------

    def _trusted(self) -> dict[str, bundles.TrustedKey]:
        # Read on every use: adding or removing a key in /etc needs no restart.
        return bundles.load_trusted_keys(self._trusted_keys_dir) if self._trusted_keys_dir is not None else {}

    def _verify(self, data: bytes, trusted: dict[str, bundles.TrustedKey]) -> bundles.VerifiedBundle:
        verified = bundles.verify_bundle(bundles.unpack_bundle(data), trusted, self._registry.packs())
        if verified.pack.manifest.pack_id not in self._synths:
            raise BundleIncompatible(f"base model {verified.pack.manifest.pack_id!r} has no loaded synthesizer")
        return verified

    def _register(self, verified: bundles.VerifiedBundle) -> None:
        m = verified.manifest
        pack = verified.pack
        info = VoiceInfo(m.voice_id, m.name, m.language, pack.manifest.pack_id, tuple(pack.manifest.tiers), from_bundle=True)
        self._registry.put(Voice(info, pack, verified.adapter))

    def _load_installed(self, store: bundles.VoiceStore) -> None:
        trusted = self._trusted()
        for voice_id, path in store.entries():
            try:
                verified = self._verify(bundles.read_bundle_file(path.resolve()), trusted)
                if verified.manifest.voice_id != voice_id:
                    raise BundleInvalid(f"the file holds voice {verified.manifest.voice_id!r}")
                self._register(verified)
            except MynaError as exc:
                # One bad or revoked bundle must not keep the daemon (and every other voice) down.
                _LOGGER.error("not loading installed voice %s: %s", path, exc.message)
                continue
            _LOGGER.info("installed voice %s on %s (signed by %s)", voice_id, verified.pack.manifest.pack_id, verified.key_id)

    def install_voice(self, path: str) -> str:
        """Verify the bundle at ``path`` completely, store it atomically, make it speakable; return its id.

        Installing the very bytes that are installed already changes nothing and succeeds.
        """
        if self._store is None:
            raise MynaError("this daemon has no voice store; installing voices is disabled")
        data = bundles.read_bundle_file(path)
        verified = self._verify(data, self._trusted())
        voice_id = verified.manifest.voice_id
        with self._lock:
            try:
                current = self._registry.get(voice_id)
            except UnknownVoice:
                current = None
            if current is not None and not current.info.from_bundle:
                raise BundleIncompatible(
                    f"voice id {voice_id!r} belongs to built-in pack {current.info.pack_id!r}; choose another voice id"
                )
            if current is not None and self._store.read(voice_id) == data:
                _LOGGER.info("voice %s: this bundle is installed already", voice_id)
                return voice_id
            self._store.write(voice_id, data)
            self._register(verified)
        _LOGGER.info(
            "installed voice %s (%s) on %s, signed by %s, consent by %s on %s",
            voice_id, verified.manifest.name, verified.pack.manifest.pack_id, verified.key_id,
            verified.manifest.speaker.consent.given_by, verified.manifest.speaker.consent.date,
        )  # fmt: skip
        return voice_id

    def remove_voice(self, voice_id: str) -> None:
        """Uninstall a bundle voice; built-in and default voices are refused with VoiceNotRemovable."""
        with self._lock:
            voice = self._registry.get(voice_id)
            if not voice.info.from_bundle:
                raise VoiceNotRemovable(
                    f"voice {voice_id!r} is built into pack {voice.info.pack_id!r}; only installed voices can be removed"
                )
            if voice_id == self._default:
                raise VoiceNotRemovable(f"voice {voice_id!r} is the default voice; change default_voice in the config first")
            if self._store is not None:
                self._store.remove(voice_id)
            self._registry.remove(voice_id)
        _LOGGER.info("removed voice %s", voice_id)

    @property
    def default_voice(self) -> str:
        """Voice used when a request names none."""
        return self._default

    def listing(self) -> Sequence[VoiceListing]:
        """Installed voices for ListVoices."""
        return [VoiceListing(v.id, v.name, v.language) for v in self._registry.list()]

    def bind(self, voice_id: str) -> BoundVoice:
        """Return the voice ready to speak; UnknownVoice if it is not installed."""
        voice = self._registry.get(voice_id)
        synth = self._synths.get(voice.info.pack_id)
        if synth is None:
            raise UnknownVoice(f"voice {voice_id[:64]!r} has no loaded model")
        return BoundVoice(voice_id, synth, voice.adapter, self._frontends[voice.info.pack_id])

    def tier_summary(self) -> str:
        """Tiers in use, e.g. ``placeholder:small``."""
        return ",".join(f"{pack}:{synth.tier}" for pack, synth in sorted(self._synths.items()))
