"""Score the shipped INT8 G2P model, run exactly as the runtime runs it, on the held-out test split.

PER = Σ edit distance(prediction, closest reference) / Σ len(that reference), over words.
WER = share of words whose prediction equals none of their CMUdict pronunciations.
``--float CHECKPOINT`` also scores the float torch model (same piece splitting) for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from myna.text.g2p_neural import NeuralG2P, default_model_dir

from .data import TEST, VALID, load_entries, score, split_entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--split", choices=(TEST, VALID), default=TEST)
    ap.add_argument("--float", dest="float_ckpt", type=Path, default=None, help="also score this torch checkpoint")
    ap.add_argument("--update-manifest", action="store_true", help="record the numbers in manifest.json")
    ap.add_argument("--show", type=int, default=0, help="print N wrong predictions")
    args = ap.parse_args(argv)
    model_dir = args.model_dir or default_model_dir()
    entries = split_entries(load_entries())[args.split]
    g2p = NeuralG2P(model_dir, num_threads=1)
    words = [e.word for e in entries]

    t0 = time.perf_counter()
    preds = {w: g2p.predict(w) for w in words}
    per_word_ms = (time.perf_counter() - t0) / len(words) * 1000
    per, wer, n = score(preds, entries)
    size = (model_dir / g2p.manifest.graph.file).stat().st_size
    print(f"INT8 TFLite ({model_dir / g2p.manifest.graph.file}, {size} bytes) on {args.split} split, {n} words: "
          f"PER {100 * per:.2f} %  WER {100 * wer:.2f} %  ({per_word_ms:.3f} ms/word, 1 thread, incl. decode)")
    metrics = {"split": args.split, "words": n, "int8": {"per": round(per, 5), "wer": round(wer, 5)},
               "ms_per_word_1_thread": round(per_word_ms, 3)}

    if args.float_ckpt is not None:
        import torch

        from .model import G2PConfig, G2PNet
        from .train import predict as float_predict

        ckpt = torch.load(args.float_ckpt, map_location="cpu", weights_only=True)
        model = G2PNet(G2PConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["model"])
        pieces = sorted({p for w in words for p in g2p.pieces(w)})
        piece_preds = float_predict(model, pieces)
        fpreds = {w: tuple(s for p in g2p.pieces(w) for s in piece_preds[p]) for w in words}
        fper, fwer, _ = score(fpreds, entries)
        print(f"float torch ({args.float_ckpt}) same split: PER {100 * fper:.2f} %  WER {100 * fwer:.2f} %")
        metrics["float"] = {"per": round(fper, 5), "wer": round(fwer, 5)}

    if args.show:
        shown = 0
        for e in entries:
            if preds[e.word] not in e.prons and shown < args.show:
                print(f"  {e.word:20s} got {' '.join(preds[e.word]):35s} want {' '.join(e.prons[0])}")
                shown += 1
    if args.update_manifest:
        path = model_dir / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest.setdefault("metrics", {})[args.split] = metrics
        cmd = "python tools/eval_g2p.py" + (f" --float {args.float_ckpt}" if args.float_ckpt else "")
        manifest["metrics"]["command"] = cmd + " --update-manifest"
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
