"""Score the shipped INT8 G2P model, run exactly as the runtime runs it, on the held-out test split.

PER = Σ edit distance(prediction, closest reference) / Σ len(that reference), over words.
WER = share of words whose prediction equals none of their CMUdict pronunciations.
``--float CHECKPOINT`` also scores the float torch model (same piece splitting) for comparison.
``--greedy`` scores plain greedy CTC (the decoder before the beam search) on the same graph.
``--sweep`` (validation split only) tries LM and rescorer weights around the manifest's and prints a table:
that is how the shipped weights were chosen, so the test split stays unseen.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    ap.add_argument("--greedy", action="store_true", help="also score greedy CTC decoding of the same graph")
    ap.add_argument("--sweep", action="store_true", help="validation split: grid over LM and rescorer weights")
    ap.add_argument("--lm-weights", default="0,0.2,0.3,0.4,0.5,0.6", help="--sweep grid")
    ap.add_argument("--rescore-weights", default="0,0.15,0.3,0.45,0.6", help="--sweep grid")
    args = ap.parse_args(argv)
    model_dir = args.model_dir or default_model_dir()
    entries = split_entries(load_entries())[args.split]
    g2p = NeuralG2P(model_dir, num_threads=1)
    words = [e.word for e in entries]
    if args.sweep:
        if args.split != VALID:
            ap.error("--sweep tunes weights: it runs on --split valid only")
        sweep(g2p, entries, [float(x) for x in args.lm_weights.split(",")],
              [float(x) for x in args.rescore_weights.split(",")])
        return 0

    t0 = time.perf_counter()
    preds = {w: g2p.predict(w) for w in words}
    per_word_ms = (time.perf_counter() - t0) / len(words) * 1000
    per, wer, n = score(preds, entries)
    size = (model_dir / g2p.manifest.graph.file).stat().st_size
    print(f"INT8 TFLite ({model_dir / g2p.manifest.graph.file}, {size} bytes) on {args.split} split, {n} words: "
          f"PER {100 * per:.2f} %  WER {100 * wer:.2f} %  ({per_word_ms:.3f} ms/word, 1 thread, incl. decode)")
    metrics = {"split": args.split, "words": n, "int8": {"per": round(per, 5), "wer": round(wer, 5)},
               "ms_per_word_1_thread": round(per_word_ms, 3)}
    if args.greedy:
        gpreds = {w: tuple(s for p in g2p.pieces(w) for s in g2p._decoder.decode(g2p.logits(p))) for w in words}
        gper, gwer, _ = score(gpreds, entries)
        print(f"same graph, greedy CTC decoding: PER {100 * gper:.2f} %  WER {100 * gwer:.2f} %")
        metrics["int8_greedy"] = {"per": round(gper, 5), "wer": round(gwer, 5)}

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
        cmd = ("python tools/eval_g2p.py" + (f" --float {args.float_ckpt}" if args.float_ckpt else "")
               + (" --greedy" if args.greedy else ""))
        manifest["metrics"]["command"] = cmd + " --update-manifest"
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"recorded in {path}")
    return 0


def sweep(g2p: NeuralG2P, entries: list, lm_weights: list[float], rescore_weights: list[float]) -> None:
    """Print validation PER/WER over a grid of LM weights × rescorer weights (logits computed once)."""
    spec = g2p.manifest.decoder
    if spec is None:
        raise SystemExit("the model has no beam decoder to tune")
    logits = {e.word: [(p, g2p.logits(p)) for p in g2p.pieces(e.word)] for e in entries}
    reverse: dict[tuple[str, tuple[int, ...]], float] = {}
    rescore_weights = rescore_weights if spec.rescorer else [0.0]
    print("lm_weight  rescore_weight  PER %   WER %")
    for lm_weight in lm_weights:
        beam = dataclasses.replace(spec.beam, lm_weight=lm_weight)
        nbest = {w: [(p, g2p.candidates(lg, beam)) for p, lg in pieces] for w, pieces in logits.items()}
        for weight in rescore_weights:
            preds = {}
            for w, pieces in nbest.items():
                best = [g2p.rerank(piece, cands, weight, reverse)[0][0] for piece, cands in pieces]
                preds[w] = tuple(s for ids in best for s in g2p.symbols(ids))
            per, wer, _ = score(preds, entries)
            print(f"{lm_weight:9.2f}  {weight:14.2f}  {100 * per:5.2f}  {100 * wer:6.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
