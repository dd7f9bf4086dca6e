"""Per-speaker metadata (``metadata.jsonl``): one JSON line per utterance, written after its wav is in place."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 22050
METADATA = "metadata.jsonl"
WAVS = "wavs"


@dataclass(frozen=True)
class Record:
    """One synthesized utterance."""

    id: str
    """Text id (``prose-000042``); the wav is ``wavs/<id>.wav``."""
    speaker: str
    """Speaker name (``joe``, ``flite-slt``, …)."""
    source: str
    """Text source (a key of ``corpus.text.SOURCES``)."""
    written: str
    """Text as written."""
    spoken: str
    """Myna-normalized spoken words."""
    speakable: str
    """What the engine read (spoken words with pause marks)."""
    phonemes: list[str]
    """``myna-arpabet`` v1 symbols from Myna's frontend; ``" "`` between words, pause marks kept."""
    samples: int
    """Length of the wav in samples at ``sample_rate``."""
    sample_rate: int = SAMPLE_RATE
    """Always 22050 (other engines are resampled)."""
    synth_seconds: float = 0.0
    """Wall time the engine took (one worker), for throughput."""
    piper_symbols: list[str] | None = None
    """Joe only: Piper's symbol per graph id (``^ _ p _ … $``, sentences concatenated)."""
    durations: list[int] | None = None
    """Joe only: frames (hop 256) per entry of ``piper_symbols``; sum × 256 = ``samples``."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Engine details (e.g. Kokoro's IPA)."""

    @property
    def seconds(self) -> float:
        """Audio length in seconds."""
        return self.samples / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (optional fields left out when empty)."""
        data: dict[str, Any] = {
            "id": self.id, "speaker": self.speaker, "source": self.source, "written": self.written,
            "spoken": self.spoken, "speakable": self.speakable, "phonemes": list(self.phonemes),
            "samples": self.samples, "sample_rate": self.sample_rate, "synth_seconds": round(self.synth_seconds, 4),
        }
        if self.piper_symbols is not None:
            data["piper_symbols"] = list(self.piper_symbols)
        if self.durations is not None:
            data["durations"] = [int(d) for d in self.durations]
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        """Inverse of ``to_dict``."""
        return cls(
            id=str(data["id"]), speaker=str(data["speaker"]), source=str(data["source"]),
            written=str(data["written"]), spoken=str(data["spoken"]), speakable=str(data.get("speakable", "")),
            phonemes=[str(p) for p in data["phonemes"]], samples=int(data["samples"]),
            sample_rate=int(data.get("sample_rate", SAMPLE_RATE)), synth_seconds=float(data.get("synth_seconds", 0.0)),
            piper_symbols=[str(s) for s in data["piper_symbols"]] if "piper_symbols" in data else None,
            durations=[int(d) for d in data["durations"]] if "durations" in data else None,
            extra=dict(data.get("extra", {})),
        )


def wav_path(speaker_dir: Path, utt_id: str) -> Path:
    """Where an utterance's wav lives."""
    return speaker_dir / WAVS / f"{os.path.basename(utt_id)}.wav"


def _wav_frames(path: Path) -> int | None:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError):
        return None
    return int(info.frames) if info.samplerate == SAMPLE_RATE and info.channels == 1 else None


def load_done(speaker_dir: Path, rewrite: bool = True) -> dict[str, Record]:
    """Records whose wav exists with the recorded length; with ``rewrite`` drop the other lines from disk.

    A line is invalid when it does not parse, its wav is missing, or the wav's length differs (a crash
    between the wav and its line can only leave a wav without a line, which is simply redone).
    """
    path = speaker_dir / METADATA
    if not path.is_file():
        return {}
    done: dict[str, Record] = {}
    bad = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = Record.from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        if _wav_frames(wav_path(speaker_dir, record.id)) != record.samples:
            bad += 1
            continue
        done[record.id] = record
    if bad and rewrite:
        _LOGGER.warning("%s: dropping %d invalid metadata lines", path, bad)
        write_all(speaker_dir, done.values())
    return done


def write_all(speaker_dir: Path, records: Any) -> None:
    """Replace ``metadata.jsonl`` atomically."""
    path = speaker_dir / METADATA
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class MetadataWriter:
    """Appends one line per finished utterance (single writer: the main process)."""

    def __init__(self, speaker_dir: Path) -> None:
        speaker_dir.mkdir(parents=True, exist_ok=True)
        self._fh = (speaker_dir / METADATA).open("a", encoding="utf-8")

    def append(self, record: Record) -> None:
        """Write and flush one line."""
        self._fh.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def write_wav(path: Path, audio: Any, sample_rate: int = SAMPLE_RATE) -> int:
    """Write 16-bit PCM atomically (temporary name, then rename); return the sample count."""
    import numpy as np
    import soundfile as sf

    data = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.wav")
    sf.write(str(tmp), data, sample_rate, subtype="PCM_16")
    os.replace(tmp, path)
    return len(data)
