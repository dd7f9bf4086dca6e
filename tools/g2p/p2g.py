"""Train the reverse (phonemes → letters) CTC model that rescores the G2P decoder's candidates.

Why a reverse model: the forward G2P beam often holds the right pronunciation in second or third place
(validation: the true one is in the top 4 for 85 % of words, top 1 for 70 %).  A candidate that drops
or invents a sound leaves letters unexplained, which ``P(letters | phonemes)`` sees and
``P(phonemes | letters)`` does not (the noisy-channel view).  Same network as the G2P (``G2PNet``) with
the vocabularies swapped; small, because it only has to rank a few candidates.

    python tools/train_p2g.py --out out/p2g --threads 1 --max-minutes 25
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from myna.text.phonemes import PHONEMES

from .data import (
    LETTERS,
    PHONE_ID,
    TRAIN,
    VALID,
    Entry,
    encode_word,
    load_entries,
    split_entries,
)
from .model import G2PConfig, G2PNet, count_params

N_IN = len(PHONEMES) + 1
N_OUT = len(LETTERS) + 1


def pairs(entries: list[Entry]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(phoneme ids, letter ids) for every pronunciation of every word."""
    return [(tuple(PHONE_ID[p] for p in pron), tuple(encode_word(e.word))) for e in entries for pron in e.prons]


def batches(data: list, batch: int, rng: random.Random) -> list[list]:
    """Length-bucketed batches in random order."""
    order = sorted(data, key=lambda d: len(d[0]) + rng.random() * 2)
    out = [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(out)
    return out


def tensors(batch: list, upsample: int) -> tuple[torch.Tensor, ...]:
    """ids [B, L], concatenated letter targets, input and target lengths."""
    length = max(len(p) for p, _ in batch)
    ids = torch.zeros(len(batch), length, dtype=torch.long)
    for i, (p, _) in enumerate(batch):
        ids[i, : len(p)] = torch.tensor(p)
    targets = torch.tensor([c for _, w in batch for c in w])
    ilen = torch.tensor([len(p) * upsample for p, _ in batch])
    tlen = torch.tensor([len(w) for _, w in batch])
    return ids, targets, ilen, tlen


def ctc_scores(model: G2PNet, data: list, batch: int = 512) -> np.ndarray:
    """Per-pair CTC negative log-likelihood of the letters given the phonemes (float, eval mode)."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(data), batch):
            chunk = data[i : i + batch]
            ids, targets, ilen, tlen = tensors(chunk, model.cfg.upsample)
            logp = F.log_softmax(model(ids), -1).transpose(0, 1)
            out.append(F.ctc_loss(logp, targets, ilen, tlen, blank=0, reduction="none", zero_infinity=True).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/p2g"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=25.0, help="the cosine schedule ends on this wall-time budget")
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--ffn", type=int, default=192)
    ap.add_argument("--dilations", default="1,2,4,1,2")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--limit-steps", type=int, default=0, help="debug: stop each epoch after N steps")
    ap.add_argument("--valid-pairs", type=int, default=0, help="debug: score only the first N validation pairs")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    splits = split_entries(load_entries())
    train, valid = pairs(splits[TRAIN]), pairs(splits[VALID])
    if args.valid_pairs:
        valid = valid[: args.valid_pairs]
    cfg = G2PConfig(n_letters=N_IN, n_out=N_OUT, dim=args.dim, ffn=args.ffn,
                    dilations=tuple(int(d) for d in args.dilations.split(",")), dropout=0.1)
    model = G2PNet(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    last = args.out / "last.pt"
    history: dict = {"loss": [], "valid": [], "seconds": 0.0}
    epoch = step = 0
    if args.resume and last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        epoch, step, history = state["epoch"], state["step"], state["history"]
        print(f"resumed at epoch {epoch}, step {step}", flush=True)
    t_start = time.time() - history["seconds"]
    budget = args.max_minutes * 60
    warm = 200
    print(f"P2G config {cfg.to_dict()} params {count_params(model)}; train {len(train)} pairs, valid {len(valid)}", flush=True)
    done = False
    while epoch < args.epochs and not done:
        model.train()
        running: list[float] = []
        for i, b in enumerate(batches(train, args.batch, random.Random(args.seed * 1000 + epoch))):
            if args.limit_steps and i >= args.limit_steps:
                break
            p = min(1.0, (time.time() - t_start) / budget)
            if p >= 1.0:
                done = True
                break
            for g in opt.param_groups:
                g["lr"] = args.lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * p))
            ids, targets, ilen, tlen = tensors(b, cfg.upsample)
            logp = F.log_softmax(model(ids), -1).transpose(0, 1)
            loss = (F.ctc_loss(logp, targets, ilen, tlen, blank=0, reduction="none", zero_infinity=True)
                    / tlen.clamp(min=1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            running.append(loss.item())
            if step % 100 == 0:
                history["loss"].append((step, float(np.mean(running[-100:]))))
                print(f"epoch {epoch + 1} step {step} loss {np.mean(running[-100:]):.4f} "
                      f"elapsed {(time.time() - t_start) / 60:.1f} min", flush=True)
        epoch += 1
        nll = float(ctc_scores(model, valid).mean())
        history["valid"].append({"epoch": epoch, "step": step, "nll": nll})
        history["seconds"] = time.time() - t_start
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "step": step,
                    "history": history, "config": cfg.to_dict()}, last)
        torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "epoch": epoch, "valid_nll": nll},
                   args.out / "final.pt")
        (args.out / "history.json").write_text(json.dumps(history))
        print(f"== epoch {epoch}: valid letters NLL {nll:.4f} elapsed {history['seconds'] / 60:.1f} min", flush=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
