"""Experiment: a features folder whose F0 comes from WORLD's harvest instead of DIO, for chosen speakers.

    python tools/experiments/harvest_f0_features.py --features out/features --corpus /work/corpus-run \
        --speakers joe --out out/features-harvest --workers 2

DIO doubles 40 % of joe's voiced frames (``docs/eval/f0-octaves-session8.md``), and the acoustic model
learns its pitch targets from those frames.  This writes a copy of ``--features`` in which each named
speaker's ``f0`` arrays are harvest's (60–600 Hz, at the voice's hop, the same frame count), and every
other array and file is the original (other speakers' folders and the index are symlinked).  Mel,
energy and loudness gain stay as they were, so a model trained on the copy differs only in its
pitch targets.  Nothing here is a product path.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "daemon")]

import numpy as np  # noqa: E402

HARVEST_RANGE_HZ = (60.0, 600.0)


def harvest_f0(audio: np.ndarray, frames: int) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) per mel frame by harvest, cut or zero-padded to ``frames`` (as ``world_f0``)."""
    import pyworld as pw
    from voice.audio import AUDIO

    period = 1000.0 * AUDIO.hop_length / AUDIO.sample_rate
    f0, _ = pw.harvest(np.ascontiguousarray(audio, np.float64), AUDIO.sample_rate, f0_floor=HARVEST_RANGE_HZ[0],
                       f0_ceil=HARVEST_RANGE_HZ[1], frame_period=period)
    out = np.zeros(frames, np.float32)
    out[: min(frames, f0.size)] = f0[:frames]
    return out


def _one(job: tuple[Path, Path, Path]) -> str:
    source, wav, target = job
    from voice.features import read_audio, write_npz

    if target.exists():
        return "kept"
    with np.load(source, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyworld imports pkg_resources
        arrays["f0"] = harvest_f0(read_audio(wav), arrays["f0"].size)
    write_npz(target, arrays)
    return "written"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, required=True, help="the corpus the features came from (<speaker>/wavs/<id>.wav)")
    ap.add_argument("--speakers", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Path, Path, Path]] = []
    for entry in sorted(args.features.iterdir()):
        target = args.out / entry.name
        if entry.is_dir() and entry.name in args.speakers:
            target.mkdir(exist_ok=True)
            for f in sorted(entry.iterdir()):
                if f.name.endswith(".npz"):
                    jobs.append((f, args.corpus / entry.name / "wavs" / f"{f.stem}.wav", target / f.name))
                elif not (target / f.name).exists():
                    shutil.copy2(f, target / f.name)
        elif not target.exists():
            os.symlink(entry.resolve(), target)
    t0, done = time.time(), 0
    with multiprocessing.Pool(args.workers) as pool:
        for _ in pool.imap_unordered(_one, jobs, chunksize=8):
            done += 1
            if done % 200 == 0 or done == len(jobs):
                print(f"{done}/{len(jobs)} utterances, {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
