"""Experiment: how often does the training features' F0 (WORLD DIO + StoneMask) jump an octave, per speaker?

    python tools/experiments/f0_octaves.py --corpus /work/corpus-run --files 10 \
        --folder librivox=/usr/share/pocketsphinx/test/data/librivox --json out/eval/f0-octaves.json

``voice.features.world_f0`` (DIO + StoneMask at the voice's hop) gives the acoustic model its pitch
targets and ``voice.clone`` its recordings' pitch.  Each file is also tracked with WORLD's harvest
(F0 60–600 Hz), which follows a voice's period more reliably at a higher cost (about 7× real time
here against DIO's 250×).  On the frames both call voiced, the ratio DIO / harvest sorts each frame: within 10 %,
about double (1.8–2.2: DIO took the second harmonic), about half (0.45–0.55), or elsewhere.  Nothing
here is a product path.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1]),
               str(Path(__file__).resolve().parents[2] / "daemon")]

import numpy as np  # noqa: E402


def classify(dio: np.ndarray, harvest: np.ndarray) -> dict[str, float]:
    """Shares of the frames voiced in both tracks by the ratio DIO / harvest, and each track's median F0 there."""
    n = min(dio.size, harvest.size)
    dio, harvest = np.asarray(dio[:n], np.float64), np.asarray(harvest[:n], np.float64)
    both = (dio > 0) & (harvest > 0)
    if not both.any():
        return {"frames": 0}
    ratio = dio[both] / harvest[both]
    return {
        "frames": int(both.sum()),
        "dio_median_hz": float(np.median(dio[both])),
        "harvest_median_hz": float(np.median(harvest[both])),
        "harvest_p10_hz": float(np.percentile(harvest[both], 10)),
        "harvest_p90_hz": float(np.percentile(harvest[both], 90)),
        "same": float(np.mean(np.abs(ratio - 1.0) <= 0.1)),
        "double": float(np.mean((ratio >= 1.8) & (ratio <= 2.2))),
        "half": float(np.mean((ratio >= 0.45) & (ratio <= 0.55))),
    }


def tracks(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(DIO as the training features take it, harvest) per mel frame of one file, resampled to the voice's rate."""
    import librosa
    import soundfile as sf
    from harvest_f0_features import harvest_f0
    from voice.audio import AUDIO
    from voice.features import world_f0

    audio, sr = sf.read(str(path), dtype="float64", always_2d=True)
    audio = np.ascontiguousarray(librosa.resample(audio.mean(axis=1), orig_sr=sr, target_sr=AUDIO.sample_rate)
                                 if sr != AUDIO.sample_rate else audio.mean(axis=1))
    frames = audio.size // AUDIO.hop_length + 1
    harvest = harvest_f0(audio, frames)
    return world_f0(audio, frames), harvest


def pooled(paths: Sequence[Path]) -> dict[str, float]:
    """``classify`` over the concatenated frames of several files."""
    pairs = [tracks(p) for p in paths]
    n = [min(a.size, b.size) for a, b in pairs]
    return classify(np.concatenate([a[:k] for (a, _), k in zip(pairs, n)]), np.concatenate([b[:k] for (_, b), k in zip(pairs, n)]))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, help="a corpus folder: <speaker>/wavs/*.wav")
    ap.add_argument("--folder", action="append", default=[], metavar="LABEL=DIR", help="any folder of WAVs, as one speaker")
    ap.add_argument("--files", type=int, default=10, help="files per speaker (the first N by name)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    groups: dict[str, list[Path]] = {}
    if args.corpus is not None:
        for wavs in sorted(args.corpus.glob("*/wavs")):
            groups[wavs.parent.name] = sorted(wavs.glob("*.wav"))[: args.files]
    for item in args.folder:
        label, _, folder = item.partition("=")
        groups[label] = sorted(Path(folder).glob("*.wav"))[: args.files]
    results: dict[str, dict[str, float]] = {}
    print("| speaker | frames | DIO median Hz | harvest median Hz | harvest p10–p90 Hz | same (±10 %) | DIO double | DIO half |")
    print("|---|---|---|---|---|---|---|---|")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyworld imports pkg_resources
        for label, paths in groups.items():
            if not paths:
                continue
            r = results[label] = pooled(paths)
            if r["frames"]:
                print(f"| {label} | {r['frames']} | {r['dio_median_hz']:.0f} | {r['harvest_median_hz']:.0f} | "
                      f"{r['harvest_p10_hz']:.0f}–{r['harvest_p90_hz']:.0f} | "
                      f"{100 * r['same']:.0f} % | {100 * r['double']:.0f} % | {100 * r['half']:.0f} % |", flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
