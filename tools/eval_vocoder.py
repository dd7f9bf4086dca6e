"""Score vocoders alone: DNSMOS P.808 and mel L1 of resynthesis from true or teacher-forced mels vs the recordings.

    python tools/eval_vocoder.py --features out/features --corpus /work/corpus-run --speaker joe --utts 30 \\
        --vocoder old=out/vocoder-small/final-29126.pt --vocoder gta=out/vocoder-gta/small-final.pt \\
        [--gta checkpoints/myna-en/acoustic-small.pt] [--json out/eval/vocoders.json]

It separates the vocoder's share of a voice's quality from the acoustic model's: with true mels
(copy synthesis) a vocoder is judged on its own; with ``--gta`` it is fed what the acoustic model
makes of the same utterance with its true durations, F0 and energy, the input it meets at run time
short of the predictors' errors.  Validation utterances of ``--speaker`` (never trained on).  Float
torch, one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "daemon")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from voice.audio import AUDIO, log_mel  # noqa: E402
from voice.export_vocoder import load_checkpoint as load_vocoder  # noqa: E402
from voice.features import read_index  # noqa: E402
from voice.vocoder import synthesize  # noqa: E402
from voice.vocoder_data import from_features, teacher_forced_mels  # noqa: E402
from workbench import metrics  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Print one row per system (recordings first); return 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, default=Path("out/features"))
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--speaker", default="joe")
    ap.add_argument("--utts", type=int, default=30, help="validation utterances scored")
    ap.add_argument("--vocoder", action="append", required=True, metavar="NAME=CKPT")
    ap.add_argument("--gta", type=Path, default=None, metavar="ACOUSTIC_CKPT", help="feed teacher-forced mels")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    speakers = json.loads((args.features / "speakers.json").read_text())["speakers"]
    rows = [r for r in read_index(args.features) if r["split"] == "valid" and r["speaker"] == args.speaker][: args.utts]
    if not rows:
        raise SystemExit(f"no validation utterances of {args.speaker!r} in {args.features}")
    clips = from_features(args.features, args.corpus, rows, speakers, with_alignment=args.gta is not None).all()
    if args.gta is not None:
        from voice.acoustic import load_checkpoint

        acoustic, acoustic_speakers, _ = load_checkpoint(args.gta)
        if acoustic_speakers != speakers:
            raise SystemExit(f"{args.gta}: speakers {acoustic_speakers}, the features have {speakers}")
        teacher_forced_mels(acoustic, clips)
    truth = [log_mel(c.audio) for c in clips]  # the recordings' mels, once for every vocoder
    results = {"recordings": {"p808": float(np.mean([metrics.dnsmos(c.audio, AUDIO.sample_rate).p808 for c in clips]))}}
    for spec in args.vocoder:
        name, _, path = spec.partition("=")
        model, table, vocoder_speakers = load_vocoder(Path(path))
        row = torch.from_numpy(table[vocoder_speakers.index(args.speaker)][None]).float()
        scores, errors = [], []
        with torch.no_grad():
            for clip, true_mel in zip(clips, truth):
                audio = synthesize(model, torch.from_numpy(clip.mel)[None], row)[0, : clip.audio.size].numpy()
                scores.append(metrics.dnsmos(np.clip(audio, -1, 1), AUDIO.sample_rate).p808)
                errors.append(float(np.mean(np.abs(log_mel(audio) - true_mel))))
        results[name] = {"checkpoint": path, "p808": float(np.mean(scores)), "mel_l1": float(np.mean(errors))}
    mels = "teacher-forced mels of " + str(args.gta) if args.gta else "true mels (copy synthesis)"
    print(f"{args.speaker}, {len(clips)} validation utterances, {mels}")
    for name, r in results.items():
        print(f"  {name:12s} DNSMOS P.808 {r['p808']:.3f}" + (f"  mel L1 vs recording {r['mel_l1']:.3f}" if "mel_l1" in r else ""))
    if args.json is not None:
        args.json.write_text(json.dumps({"speaker": args.speaker, "utterances": len(clips), "input": mels,
                                         "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
