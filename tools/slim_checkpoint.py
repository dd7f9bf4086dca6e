"""Write the small weights-only form of a training checkpoint for git: fp16 weights, no optimizer state.

    python tools/slim_checkpoint.py out/acoustic-tiny/best.pt checkpoints/myna-en/acoustic-tiny.pt

Keeps ``config``, ``model``, ``speakers``, ``step``, ``valid`` and (vocoders) ``speaker_table``; floating
tensors become float16 (the trainers' ``--init`` and the pack builder cast them back), everything else is
kept as is.  ``--keep-disc`` also keeps a vocoder's discriminators (``disc``), so a GAN fine-tune started
with ``train_vocoder.py --init`` goes on against trained critics instead of fresh ones.  A pack built from the slim file differs from one built from the original only by fp16
rounding (measured on the small tier: 0.35 dB MCD float-vs-float).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

KEEP = ("config", "model", "speakers", "step", "valid", "speaker_table")


def slim(value: object) -> object:
    """fp16 copy of floating tensors inside dicts; other values unchanged."""
    if isinstance(value, torch.Tensor):
        return value.half() if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: slim(v) for k, v in value.items()}
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--keep-disc", action="store_true", help="keep the vocoder's discriminators (for --init)")
    args = ap.parse_args(argv)
    ckpt = torch.load(args.source, map_location="cpu", weights_only=True)
    if "model" not in ckpt:
        raise SystemExit(f"{args.source}: no 'model' state dict")
    keep = KEEP + (("disc",) if args.keep_disc else ())
    if args.keep_disc and "disc" not in ckpt:
        raise SystemExit(f"{args.source}: no discriminators to keep (use a trainer's last.pt)")
    out = {k: slim(ckpt[k]) for k in keep if k in ckpt}
    args.target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, args.target)
    print(f"{args.target}: {args.target.stat().st_size} bytes (step {out.get('step')}) from {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
