"""Attach the beam decoder to a G2P model directory: the phoneme n-gram, the INT8 reverse model, the settings.

Writes ``phoneme_lm.npz`` (``tools/g2p/lm.py``) and ``p2g.tflite`` (the phonemes → letters checkpoint from
``tools/train_p2g.py``, exported with the same INT8 writer as the G2P graph) beside ``g2p.tflite`` and a
``decoder`` section into ``manifest.json``; the G2P graph itself is not touched.  The weights were chosen
on the validation split (``tools/eval_g2p.py --split valid --sweep``), never on the test split.

    python tools/g2p_decoder.py --rescorer out/p2g/final.pt --lm-order 5
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .data import PHONE_ID, TRAIN, load_entries, split_entries
from .export import build_graph, checkpoint_params, numpy_weights, sha256
from .lm import build as build_lm

LM_FILE = "phoneme_lm.npz"
RESCORER_FILE = "p2g.tflite"
MAX_PHONEMES = 32
"""Reverse-model input length: longer than any piece's pronunciation (pieces have ≤ 24 letters)."""


def rescorer_calibration(n: int, seed: int = 0) -> np.ndarray:
    """Padded phoneme ids of ``n`` random training pronunciations (deterministic)."""
    train = split_entries(load_entries())[TRAIN]
    prons = [e.prons[0] for e in random.Random(seed).sample(train, n) if len(e.prons[0]) <= MAX_PHONEMES]
    ids = np.zeros((len(prons), MAX_PHONEMES), np.int64)
    for i, p in enumerate(prons):
        ids[i, : len(p)] = [PHONE_ID[s] for s in p]
    return ids


def export_rescorer(checkpoint: Path, out_dir: Path, calibration: int = 800) -> dict[str, Any]:
    """Write the INT8 reverse-model graph; return its manifest graph entry."""
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    cfg = ckpt["config"]
    data = build_graph(numpy_weights(ckpt["model"], cfg), cfg, rescorer_calibration(calibration),
                       input_name="phonemes", name="p2g_en")
    path = out_dir / RESCORER_FILE
    path.write_bytes(data)
    return {"graph": {"file": RESCORER_FILE, "sha256": sha256(path), "quantization": "int8",
                      "inputs": [{"name": "phonemes", "dtype": "int32", "shape": [1, MAX_PHONEMES]}],
                      "outputs": [{"name": "logits", "dtype": "float32",
                                   "shape": [1, 1, MAX_PHONEMES * cfg["upsample"], cfg["n_out"]]}]},
            "max_phonemes": MAX_PHONEMES, "upsample": cfg["upsample"],
            "parameters": checkpoint_params(ckpt["model"]),
            "config": cfg, "checkpoint": str(checkpoint)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=Path("models/g2p-en"))
    ap.add_argument("--lm-order", type=int, default=5)
    ap.add_argument("--rescorer", type=Path, default=None, help="reverse-model checkpoint (tools/train_p2g.py)")
    ap.add_argument("--beam", type=int, default=8)
    ap.add_argument("--lm-weight", type=float, default=0.4)
    ap.add_argument("--insertion-bonus", type=float, default=0.5)
    ap.add_argument("--prune", type=float, default=-7.0)
    ap.add_argument("--rescore-weight", type=float, default=0.3)
    ap.add_argument("--rescore-candidates", type=int, default=4)
    ap.add_argument("--tuning-note", default="", help="how the weights were chosen (recorded in the manifest)")
    args = ap.parse_args(argv)
    out = args.model_dir
    lm_path = out / LM_FILE
    np.savez_compressed(lm_path, **build_lm(split_entries(load_entries())[TRAIN], args.lm_order))
    decoder: dict[str, Any] = {
        "kind": "beam", "beam": args.beam, "lm_weight": args.lm_weight, "insertion_bonus": args.insertion_bonus,
        "prune": args.prune,
        "lm": {"file": LM_FILE, "sha256": sha256(lm_path), "order": args.lm_order,
               "built_by": "tools/g2p_decoder.py (tools/g2p/lm.py: interpolated absolute discounting on the training split)"},
        "rescorer": None,
        "tuning": args.tuning_note or "defaults",
    }
    if args.rescorer is not None:
        decoder["rescorer"] = export_rescorer(args.rescorer, out)
        decoder["rescorer"].update(weight=args.rescore_weight, candidates=args.rescore_candidates)
        history = args.rescorer.parent / "history.json"
        if history.exists():
            h = json.loads(history.read_text())
            decoder["rescorer"]["training"] = {"tool": "tools/train_p2g.py", "epochs": len(h["valid"]),
                                               "wall_minutes": round(h["seconds"] / 60, 1),
                                               "valid_letters_nll": round(h["valid"][-1]["nll"], 4)}
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["decoder"] = decoder
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.suffix in (".tflite", ".npz")}
    print(f"decoder attached to {out}: " + ", ".join(f"{k} {v} bytes" for k, v in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
