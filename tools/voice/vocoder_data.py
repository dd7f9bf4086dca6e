"""The vocoder's training clips: from a features folder or a compact pack file, with optional teacher-forced mels.

A pack (``tools/pack_vocoder_data.py``) holds a chosen subset of the corpus in one file a few tens of MB
large, so a training run can travel to a machine that has neither the corpus nor soundfile/librosa: the
16-bit samples are delta-coded and LZMA-compressed (about 60 % of raw; FLAC would need libsndfile there),
and the mels are recomputed from the audio with the numpy definition in ``audio.py``. The pack also keeps
each utterance's alignment (phoneme ids, aligner durations, frame F0 and energy), so the vocoder can be
fine-tuned on *ground-truth-aligned* mels: the acoustic model's teacher-forced output, which has the
acoustic model's smoothing but the real audio's timing, so the vocoder learns to turn the mels it will
actually be given at run time into the real waveform.
"""

from __future__ import annotations

import itertools
import json
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .audio import AUDIO, log_mel

PACK_FORMAT = "myna-vocoder-pack/1"


@dataclass(frozen=True)
class Alignment:
    """What the acoustic model needs to reproduce an utterance's frames: ids, durations, frame F0 and energy."""

    ids: np.ndarray
    """int32 [N]."""
    durations: np.ndarray
    """int32 [N], summing to the mel frames."""
    f0: np.ndarray
    """float32 [T] Hz, 0 where unvoiced."""
    energy: np.ndarray
    """float32 [T]."""


@dataclass
class Clip:
    """One utterance held in memory: the vocoder's input mel and the audio it must produce."""

    speaker: int
    name: str
    mel: np.ndarray
    """float32 [T, n_mels]: the ground-truth log-mel, or the acoustic model's teacher-forced one."""
    audio: np.ndarray
    """float32 [samples], the features' loudness gain applied."""
    alignment: Alignment | None = None


class Clips:
    """The utterances of one split: ``rows`` (index rows with ``frames``) and a loader for each."""

    def __init__(self, rows: list[dict[str, Any]], speakers: Sequence[str], load: Any) -> None:
        self.rows = rows
        self.speakers = list(speakers)
        self.speaker_index = {name: i for i, name in enumerate(self.speakers)}
        self._load = load
        self._cache: dict[int, Clip] = {}
        self._cum_weights: dict[int, list[float]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def cum_weights(self, segment: int) -> list[float]:
        """Cumulative draw weights: the start positions a ``segment``-frame window has in each utterance."""
        if segment not in self._cum_weights:
            self._cum_weights[segment] = list(itertools.accumulate(max(0, r["frames"] - segment - 1) for r in self.rows))
        return self._cum_weights[segment]

    def clip(self, i: int) -> Clip:
        """Utterance ``i`` (loaded on first use, then kept)."""
        clip = self._cache.get(i)
        if clip is None:
            row = self.rows[i]
            clip = self._load(row)
            clip.speaker = self.speaker_index[row["speaker"]]
            if AUDIO.frames(clip.audio.size) != clip.mel.shape[0]:
                raise ValueError(f"{clip.name}: {clip.audio.size} samples do not give {clip.mel.shape[0]} frames")
            self._cache[i] = clip
        return clip

    def subset(self, rows: list[dict[str, Any]]) -> Clips:
        """Clips of ``rows`` (rows of this source) read the same way."""
        return Clips(rows, self.speakers, self._load)

    def all(self) -> list[Clip]:
        """Every clip, loaded."""
        return [self.clip(i) for i in range(len(self))]


def from_features(features: Path, corpus: Path, rows: list[dict[str, Any]], speakers: Sequence[str],
                  with_alignment: bool = False) -> Clips:
    """Clips read lazily from ``features/<speaker>/<id>.npz`` and ``corpus/<speaker>/wavs/<id>.wav``."""
    from .features import load_wav  # soundfile: only where the corpus itself is

    def load(row: dict[str, Any]) -> Clip:
        npz = features / row["speaker"] / f"{row['id']}.npz"
        with np.load(npz) as z:
            mel, gain = z["mel"].astype(np.float32), float(z["gain"])
            alignment = None
            if with_alignment:
                durations = np.load(npz.with_suffix(".dur.npy")).astype(np.int32)
                alignment = Alignment(z["ids"].astype(np.int32), durations, z["f0"].astype(np.float32),
                                      z["energy"].astype(np.float32))
        audio = load_wav(corpus / row["speaker"] / "wavs" / f"{row['id']}.wav", gain)
        return Clip(-1, f"{row['speaker']}_{row['id']}", mel, audio, alignment)

    return Clips(rows, speakers, load)


# -- pack files ----------------------------------------------------------------------------------


def _encode_samples(samples: np.ndarray) -> bytes:
    """int16 samples → LZMA of their first differences (speech is smooth, so the deltas compress well)."""
    delta = np.diff(samples.astype(np.int32), prepend=0).astype(np.int16)  # wraps; decoding wraps back
    return lzma.compress(delta.tobytes(), preset=6)


def _decode_samples(blob: bytes) -> np.ndarray:
    """Inverse of :func:`_encode_samples` (int16)."""
    delta = np.frombuffer(lzma.decompress(blob), np.int16)
    return np.cumsum(delta, dtype=np.int16)


def write_pack(path: Path, features: Path, corpus: Path, rows: list[dict[str, Any]], speakers: Sequence[str],
               progress: bool = True) -> dict[str, Any]:
    """Write the pack of ``rows`` (each with its ``split``); returns a summary (utterances, seconds, bytes)."""
    import soundfile as sf

    iterator: Any = rows
    if progress:
        from tqdm import tqdm

        iterator = tqdm(rows, desc="pack", unit="utt")
    meta_rows, samples, ids, durations, f0, energy = [], [], [], [], [], []
    for row in iterator:
        npz = features / row["speaker"] / f"{row['id']}.npz"
        with np.load(npz) as z:
            gain, frames = float(z["gain"]), int(z["mel"].shape[0])
            ids.append(z["ids"].astype(np.int32)); f0.append(z["f0"].astype(np.float32))
            energy.append(z["energy"].astype(np.float32))
        durations.append(np.load(npz.with_suffix(".dur.npy")).astype(np.int32))
        pcm, sr = sf.read(str(corpus / row["speaker"] / "wavs" / f"{row['id']}.wav"), dtype="int16", always_2d=True)
        if sr != AUDIO.sample_rate or pcm.shape[1] != 1:
            raise ValueError(f"{row['speaker']}/{row['id']}: {sr} Hz × {pcm.shape[1]} channels, expected mono "
                             f"{AUDIO.sample_rate} Hz")
        if AUDIO.frames(pcm.shape[0]) != frames or int(durations[-1].sum()) != frames:
            raise ValueError(f"{row['speaker']}/{row['id']}: audio, mel and durations disagree on the frame count")
        samples.append(pcm[:, 0])
        meta_rows.append({"speaker": row["speaker"], "id": row["id"], "split": row["split"], "frames": frames,
                          "samples": int(pcm.shape[0]), "n_ids": int(ids[-1].size), "gain": gain,
                          "seconds": pcm.shape[0] / AUDIO.sample_rate})
    blob = _encode_samples(np.concatenate(samples))
    meta = {"format": PACK_FORMAT, "speakers": list(speakers), "sample_rate": AUDIO.sample_rate, "rows": meta_rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), audio=np.frombuffer(blob, np.uint8),
             ids=np.concatenate(ids), durations=np.concatenate(durations), f0=np.concatenate(f0),
             energy=np.concatenate(energy))
    tmp.replace(path)
    return {"utterances": len(meta_rows), "seconds": sum(r["seconds"] for r in meta_rows), "bytes": path.stat().st_size}


def read_pack(path: Path) -> tuple[list[str], dict[str, Clips]]:
    """(speakers, clips per split) of a pack; mels are computed from the audio here, once per clip."""
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        if meta.get("format") != PACK_FORMAT or meta.get("sample_rate") != AUDIO.sample_rate:
            raise ValueError(f"{path}: not a {PACK_FORMAT} pack at {AUDIO.sample_rate} Hz")
        samples = _decode_samples(z["audio"].tobytes())
        ids, durations, f0, energy = z["ids"], z["durations"], z["f0"], z["energy"]
    rows = meta["rows"]
    starts = np.cumsum([0] + [r["samples"] for r in rows])
    id_starts = np.cumsum([0] + [r["n_ids"] for r in rows])
    frame_starts = np.cumsum([0] + [r["frames"] for r in rows])
    if starts[-1] != samples.size or id_starts[-1] != ids.size or frame_starts[-1] != f0.size:
        raise ValueError(f"{path}: arrays do not match the rows (truncated or corrupt pack)")
    position = {(r["speaker"], r["id"]): k for k, r in enumerate(rows)}

    def load(row: dict[str, Any]) -> Clip:
        k = position[(row["speaker"], row["id"])]
        audio = (samples[starts[k] : starts[k + 1]].astype(np.float64) / 32768.0 * row["gain"]).astype(np.float32)
        a, b, fa, fb = id_starts[k], id_starts[k + 1], frame_starts[k], frame_starts[k + 1]
        alignment = Alignment(ids[a:b].copy(), durations[a:b].copy(), f0[fa:fb].copy(), energy[fa:fb].copy())
        return Clip(-1, f"{row['speaker']}_{row['id']}", log_mel(audio), audio, alignment)

    splits = {name: Clips([r for r in rows if r["split"] == name], meta["speakers"], load) for name in ("train", "valid")}
    return list(meta["speakers"]), splits


def choose_rows(rows: list[dict[str, Any]], minutes: dict[str, float], valid: dict[str, int], seed: int = 0,
                min_frames: int = 0) -> list[dict[str, Any]]:
    """Random training utterances up to ``minutes[speaker]`` (``"*"`` = every other speaker) + ``valid`` ones."""
    rng = np.random.default_rng(seed)
    speakers = sorted({r["speaker"] for r in rows})
    chosen = []
    for speaker in speakers:
        budget = minutes.get(speaker, minutes.get("*", 0.0)) * 60.0
        train = [r for r in rows if r["speaker"] == speaker and r["split"] == "train" and r["frames"] > min_frames]
        total = 0.0
        for j in rng.permutation(len(train)):
            if total >= budget:
                break
            chosen.append(train[j]); total += train[j]["seconds"]
        chosen += [r for r in rows if r["speaker"] == speaker and r["split"] == "valid"][: valid.get(speaker, valid.get("*", 0))]
    return chosen


# -- ground-truth-aligned mels ---------------------------------------------------------------------


def teacher_forced_mels(acoustic: Any, clips: list[Clip], device: str = "cpu", batch: int = 16) -> None:
    """Replace each clip's mel by ``acoustic``'s teacher-forced output (true durations, F0 and energy).

    ``acoustic`` is a ``voice.acoustic.AcousticModel`` in eval mode whose speaker rows follow the clips'
    speaker indices.  Utterances are batched by length; padding never changes a real frame (the model's
    masks), so a clip's mel does not depend on its batch.
    """
    import torch

    from .acoustic import collate, make_example

    order = sorted(range(len(clips)), key=lambda i: clips[i].mel.shape[0])
    model = acoustic.to(device)
    with torch.no_grad():
        for start in range(0, len(order), batch):
            group = [clips[i] for i in order[start : start + batch]]
            examples = []
            for clip in group:
                if clip.alignment is None:
                    raise ValueError(f"{clip.name}: no alignment, so no teacher-forced mel")
                a = clip.alignment
                examples.append(make_example(a.ids, a.durations, a.f0, a.energy,
                                             np.zeros((clip.mel.shape[0], 1), np.float16)))
            b = collate(examples, [c.speaker for c in group], model.cfg)
            _, mel = model(type(b)(*(t.to(device) for t in b)))
            mel = mel.float().cpu().numpy()
            for k, clip in enumerate(group):
                clip.mel = np.ascontiguousarray(mel[k, : clip.mel.shape[0]], np.float32)
