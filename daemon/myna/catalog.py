"""Binds installed voices to their pack's synthesizer, built once per pack at the board's tier.

Packs are searched in the order of the voice directories (the config's ``voice_dirs``, else the shipped
``models/`` then ``/var/lib/myna/voices``), packs inside one directory by folder name.  The voice a
request without ``voice`` gets is, first match wins:

1. the config's ``default_voice`` (an error at start-up if it is not installed);
2. the ``default_voice`` of the first pack whose manifest is not marked ``"placeholder": true``
   (so a trained pack, e.g. ``models/myna-en``, beats the shipped placeholder once installed);
3. the placeholder's ``default_voice`` when nothing else is installed.

The placeholder's voices stay installed and selectable by id either way.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable, Sequence

from .engine import BoundVoice, VoiceListing
from .datadirs import shipped_dir, shipped_dir_candidates
from .errors import UnknownVoice, VoicePackError
from .inference.pipeline import Synthesizer
from .text import phonemes
from .text.frontend import Frontend, make_frontend
from .voices import MANIFEST_NAME, VoiceRegistry, choose_tier

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

    def __init__(self, registry: VoiceRegistry, *, tier: str, threads: int, default_voice: str | None = None) -> None:
        self._registry = registry
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
        if default_voice is not None:
            registry.get(default_voice)
        self._default = default_voice or registry.default_id

    @classmethod
    def from_dirs(cls, dirs: Sequence[Path], *, tier: str, threads: int, default_voice: str | None = None) -> "SynthCatalog":
        """Load every pack found under ``dirs``."""
        return cls(VoiceRegistry(find_packs(dirs)), tier=tier, threads=threads, default_voice=default_voice)

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
