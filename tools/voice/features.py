"""Extract the training features of every corpus utterance (ids, log-mel, f0, energy) into a features folder.

Run it once per corpus (resumable: utterances whose ``.npz`` exists are skipped), e.g.::

    .venv/bin/python tools/prepare_voice_data.py --corpus /work/corpus-run --out out/features --jobs 2

The layout is the contract of ``docs/design/voice-training.md``: ``DIR/<speaker>/<id>.npz`` holds ``ids``
int32 [N], ``mel`` float32 [T, 80], ``f0`` float32 [T], ``energy`` float32 [T], ``audio_peak`` float32,
plus ``gain`` float32 (the loudness gain applied to the wav; :func:`load_wav` applies it again for the
vocoder) and ``samples`` int64 (the wav's length, for the index).  ``DIR/index.jsonl`` and
``DIR/speakers.json`` are rewritten at the end of every run from the ``.npz`` files that exist.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import soundfile as sf
from myna.text.phonemes import BOS, CURRENT, EOS

from .audio import AUDIO, AudioConfig, log_mel, stft_magnitude

TARGET_DBFS = -20.0
"""Loudness target: RMS over voiced frames, in dB relative to full scale (a sample value of 1.0)."""
PEAK_LIMIT = 0.99
"""The gain is lowered until the loudest sample stays under this."""
MIN_VOICED_FRAMES = 5
"""Below this many voiced frames the RMS is taken over the whole utterance instead."""
VALID_MODULUS = 50
"""An utterance is in the valid split when sha1("speaker/id") % 50 == 0 (2 %)."""
FIRST_SPEAKER = "joe"
"""The teacher voice takes row 0 of every speaker table."""
INDEX = "index.jsonl"
SPEAKERS = "speakers.json"


class FeatureError(ValueError):
    """The corpus cannot be turned into features (unknown phoneme, wrong sample rate, missing wav)."""


@dataclass(frozen=True)
class Utterance:
    """One corpus utterance to extract."""

    speaker: str
    """Corpus speaker folder name."""
    id: str
    """Utterance id (the wav's stem)."""
    wav: Path
    """Path of the 16-bit mono wav."""
    ids: tuple[int, ...]
    """BOS + inventory ids of the metadata ``phonemes`` + EOS."""


def encode_phonemes(phonemes: Iterable[str], where: str = "") -> np.ndarray:
    """Ids of a metadata ``phonemes`` list framed by BOS and EOS; FeatureError names ``where`` on an unknown symbol."""
    out = [CURRENT.id_of(BOS)]
    for p in phonemes:
        try:
            out.append(CURRENT.id_of(p))
        except KeyError:
            raise FeatureError(f"{where}: phoneme {p!r} is not in {CURRENT.name} v{CURRENT.version}") from None
    out.append(CURRENT.id_of(EOS))
    return np.asarray(out, np.int32)


def split_of(speaker: str, utt_id: str) -> str:
    """``valid`` for a fixed 2 % of utterances (by hash, so it never changes as the corpus grows), else ``train``."""
    digest = int(hashlib.sha1(f"{speaker}/{utt_id}".encode()).hexdigest(), 16)
    return "valid" if digest % VALID_MODULUS == 0 else "train"


def speaker_order(names: Iterable[str]) -> list[str]:
    """Joe first, then the rest sorted: the fixed row order of every speaker table."""
    names = set(names)
    return ([FIRST_SPEAKER] if FIRST_SPEAKER in names else []) + sorted(names - {FIRST_SPEAKER})


def read_corpus(corpus: Path, speakers: list[str] | None = None, limit: int = 0) -> list[Utterance]:
    """Utterances of ``speakers`` (default: every folder with a metadata.jsonl), the first ``limit`` of each if > 0.

    Every phoneme is checked against the inventory before any work starts, so a bad corpus fails at once.
    """
    if speakers is None:
        speakers = [p.parent.name for p in corpus.glob("*/metadata.jsonl")]
    out: list[Utterance] = []
    for speaker in speaker_order(speakers):
        meta = corpus / speaker / "metadata.jsonl"
        if not meta.is_file():
            raise FeatureError(f"{meta}: no such metadata file")
        with meta.open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        for rec in records[:limit] if limit > 0 else records:
            where = f"{speaker}/{rec['id']}"
            ids = encode_phonemes(rec["phonemes"], where)
            out.append(Utterance(speaker, rec["id"], corpus / speaker / "wavs" / f"{rec['id']}.wav",
                                 tuple(int(i) for i in ids)))
    return out


def read_audio(path: Path, cfg: AudioConfig = AUDIO) -> np.ndarray:
    """The wav as float64 mono in [-1, 1]; FeatureError when its rate is not the voice rate."""
    audio, sr = sf.read(str(path), dtype="float64", always_2d=True)
    if sr != cfg.sample_rate:
        raise FeatureError(f"{path}: sample rate {sr}, expected {cfg.sample_rate}")
    return np.ascontiguousarray(audio.mean(axis=1))


def load_wav(path: Path, gain: float, cfg: AudioConfig = AUDIO) -> np.ndarray:
    """Read a corpus wav with the loudness gain stored in its features (float32 mono): what the mel saw."""
    return (read_audio(path, cfg) * gain).astype(np.float32)


def _pyworld() -> Any:
    with warnings.catch_warnings():
        # pyworld imports pkg_resources, which warns on import; not ours (and fatal under -W error).
        warnings.simplefilter("ignore")
        import pyworld

    return pyworld


def world_f0(audio: np.ndarray, frames: int, cfg: AudioConfig = AUDIO) -> np.ndarray:
    """f0 in Hz (0 = unvoiced) per mel frame: pyworld DIO + StoneMask at the hop, cut or zero-padded to ``frames``."""
    pw = _pyworld()
    x = np.ascontiguousarray(audio, np.float64)
    period = 1000.0 * cfg.hop_length / cfg.sample_rate
    f0, t = pw.dio(x, cfg.sample_rate, frame_period=period)
    f0 = np.asarray(pw.stonemask(x, f0, t, cfg.sample_rate), np.float32)
    out = np.zeros(frames, np.float32)
    out[: min(frames, f0.size)] = f0[:frames]
    return out


def loudness_gain(audio: np.ndarray, f0: np.ndarray, cfg: AudioConfig = AUDIO) -> float:
    """Gain bringing the RMS over voiced frames to TARGET_DBFS, lowered so the peak stays under PEAK_LIMIT.

    Voiced frames, not the whole clip, because engines pad with different amounts of silence and that
    would otherwise make the same voice louder or quieter from clip to clip.
    """
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 0.0:
        return 1.0
    # Sample s belongs to the centred frame nearest to it.
    frame_of = np.minimum((np.arange(audio.size) + cfg.hop_length // 2) // cfg.hop_length, f0.size - 1)
    voiced = f0[frame_of] > 0
    chosen = audio[voiced] if np.count_nonzero(f0 > 0) >= MIN_VOICED_FRAMES else audio
    rms = float(np.sqrt(np.mean(np.square(chosen))))
    gain = 10.0 ** (TARGET_DBFS / 20.0) / rms if rms > 0 else 1.0
    return min(gain, PEAK_LIMIT / peak)


def frame_energy(audio: np.ndarray, cfg: AudioConfig = AUDIO) -> np.ndarray:
    """Log of each frame's STFT-magnitude L2 norm, floored at the mel floor (float32 [T])."""
    norm = np.linalg.norm(stft_magnitude(audio, cfg), axis=-1)
    return np.log(np.maximum(norm, cfg.log_floor)).astype(np.float32)


def extract(utt: Utterance, cfg: AudioConfig = AUDIO) -> dict[str, np.ndarray]:
    """The feature arrays of one utterance (see the module docstring)."""
    if not utt.wav.is_file():
        raise FeatureError(f"{utt.speaker}/{utt.id}: missing wav {utt.wav}")
    raw = read_audio(utt.wav, cfg)
    frames = cfg.frames(raw.size)
    # DIO/StoneMask are scale-invariant, so f0 of the raw audio is f0 of the normalised audio too.
    f0 = world_f0(raw, frames, cfg)
    gain = loudness_gain(raw, f0, cfg)
    audio = (raw * gain).astype(np.float32)
    return {
        "ids": np.asarray(utt.ids, np.int32),
        "mel": log_mel(audio, cfg),
        "f0": f0,
        "energy": frame_energy(audio, cfg),
        "audio_peak": np.asarray(np.max(np.abs(audio)) if audio.size else 0.0, np.float32),
        "gain": np.asarray(gain, np.float32),
        "samples": np.asarray(raw.size, np.int64),
    }


def npz_path(out: Path, speaker: str, utt_id: str) -> Path:
    """Where an utterance's features live."""
    return out / speaker / f"{utt_id}.npz"


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write through a temporary file and rename, so an interrupted run never leaves a half file to skip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy stubs confuse **kwds with allow_pickle
    os.replace(tmp, path)


def _work(job: tuple[Utterance, Path]) -> str:
    utt, out = job
    write_npz(npz_path(out, utt.speaker, utt.id), extract(utt))
    return f"{utt.speaker}/{utt.id}"


def _run(jobs: list[tuple[Utterance, Path]], workers: int) -> Iterator[str]:
    if workers <= 1:
        yield from map(_work, jobs)
        return
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap_unordered(_work, jobs, chunksize=4)


def index_entries(out: Path) -> list[dict[str, Any]]:
    """One index row per ``.npz`` in ``out``: speakers in table order, ids sorted within a speaker."""
    rows: list[dict[str, Any]] = []
    speakers = [p.name for p in out.iterdir() if p.is_dir() and any(p.glob("*.npz"))] if out.is_dir() else []
    for speaker in speaker_order(speakers):
        for path in sorted((out / speaker).glob("*.npz")):
            with np.load(path) as z:
                rows.append({"speaker": speaker, "id": path.stem, "frames": int(z["f0"].shape[0]),
                             "n_ids": int(z["ids"].shape[0]), "split": split_of(speaker, path.stem),
                             "seconds": round(int(z["samples"]) / AUDIO.sample_rate, 4)})
    return rows


def write_index(out: Path) -> tuple[int, list[str]]:
    """Rewrite ``index.jsonl`` and ``speakers.json`` from the ``.npz`` files present; (rows, speakers)."""
    rows = index_entries(out)
    speakers = speaker_order({r["speaker"] for r in rows})
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (INDEX + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, out / INDEX)
    (out / SPEAKERS).write_text(json.dumps({"speakers": speakers}, indent=1) + "\n", encoding="utf-8")
    return len(rows), speakers


def read_index(features: Path) -> list[dict[str, Any]]:
    """The rows of ``features/index.jsonl``."""
    with (features / INDEX).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def prepare(corpus: Path, out: Path, speakers: list[str] | None = None, limit: int = 0, jobs: int = 1,
            progress: bool = True) -> dict[str, Any]:
    """Extract every missing utterance, then rewrite the index; a summary dict (counts and seconds)."""
    from tqdm import tqdm

    utts = read_corpus(corpus, speakers, limit)
    todo = [(u, out) for u in utts if not npz_path(out, u.speaker, u.id).exists()]
    skipped = len(utts) - len(todo)
    print(f"{len(utts)} utterances, {skipped} already extracted, {len(todo)} to do, {jobs} job(s)", flush=True)
    t0 = time.time()
    bar = tqdm(total=len(todo), unit="utt", disable=not progress, dynamic_ncols=True)
    for i, _ in enumerate(_run(todo, jobs), 1):
        bar.update()
        if not progress and (i % 250 == 0 or i == len(todo)):
            rate = (time.time() - t0) / i
            print(f"{i}/{len(todo)} utterances {rate:.3f} s/utt, {rate * (len(todo) - i) / 60:.1f} min left", flush=True)
    bar.close()
    seconds = time.time() - t0
    rows, names = write_index(out)
    print(f"index: {rows} utterances of {len(names)} speakers ({', '.join(names)}); "
          f"extraction {seconds:.1f} s ({seconds / max(1, len(todo)):.3f} s/utt)", flush=True)
    return {"utterances": len(utts), "extracted": len(todo), "skipped": skipped, "indexed": rows,
            "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True, help="folder of <speaker>/metadata.jsonl + wavs/")
    ap.add_argument("--out", type=Path, default=Path("out/features"))
    ap.add_argument("--speakers", default="", help="comma-separated (default: every speaker of the corpus)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--limit", type=int, default=0, help="at most N utterances per speaker (0 = all)")
    ap.add_argument("--no-progress", action="store_true", help="progress lines instead of a bar")
    args = ap.parse_args(argv)
    speakers = [s.strip() for s in args.speakers.split(",") if s.strip()] or None
    try:
        prepare(args.corpus, args.out, speakers, args.limit, args.jobs,
                progress=not args.no_progress and sys.stderr.isatty())
    except FeatureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
