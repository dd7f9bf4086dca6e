"""Train the CTC G2P network on the CMUdict training split (torch CPU), with resume, early stopping and curves.

Run in the background and poll the log, e.g.::

    nohup .venv/bin/python tools/train_g2p.py --out out/g2p > out/g2p/train.log 2>&1 &
    nohup .venv/bin/python tools/train_g2p.py --out out/g2p --resume >> out/g2p/train.log 2>&1 &

Writes ``last.pt`` (full state, for ``--resume``) after every epoch, ``best.pt`` (weights only,
best validation WER = early stopping) and ``curves.png`` (training loss, validation PER/WER).
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

from .data import TRAIN, VALID, Entry, encode_word, load_entries, score, split_entries
from .model import G2PConfig, G2PNet, count_params, greedy_ctc

PHONE_ID = {p: i + 1 for i, p in enumerate(PHONEMES)}


def make_batches(entries: list[Entry], batch: int, rng: random.Random) -> list[list[Entry]]:
    """Length-bucketed batches in random order (less padding, same words every epoch)."""
    order = sorted(entries, key=lambda e: (len(e.word) + rng.random() * 2))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(batches)
    return batches


def tensors(batch: list[Entry], upsample: int) -> tuple[torch.Tensor, ...]:
    """ids [B, L], concatenated targets, input and target lengths (primary pronunciation as target)."""
    length = max(len(e.word) for e in batch)
    ids = torch.zeros(len(batch), length, dtype=torch.long)
    targets: list[int] = []
    tlen = []
    for i, e in enumerate(batch):
        ids[i, : len(e.word)] = torch.tensor(encode_word(e.word))
        t = [PHONE_ID[p] for p in e.prons[0]]
        targets += t
        tlen.append(len(t))
    ilen = torch.tensor([len(e.word) * upsample for e in batch])
    return ids, torch.tensor(targets), ilen, torch.tensor(tlen)


@torch.no_grad()
def predict(model: G2PNet, words: list[str], batch: int = 512) -> dict[str, tuple[str, ...]]:
    """Float greedy CTC predictions (model in eval mode)."""
    model.eval()
    out: dict[str, tuple[str, ...]] = {}
    up = model.cfg.upsample
    for i in range(0, len(words), batch):
        chunk = words[i : i + batch]
        length = max(len(w) for w in chunk)
        ids = torch.zeros(len(chunk), length, dtype=torch.long)
        for j, w in enumerate(chunk):
            ids[j, : len(w)] = torch.tensor(encode_word(w))
        best = model(ids).argmax(-1).numpy()
        for j, w in enumerate(chunk):
            out[w] = tuple(PHONEMES[k - 1] for k in greedy_ctc(best[j, : len(w) * up].tolist()))
    return out


def plot(history: dict, path: Path) -> None:
    """Save training-loss and validation PER/WER curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    if history["loss"]:
        steps, losses = zip(*history["loss"])
        a.plot(steps, losses, lw=0.8)
    a.set_xlabel("step"); a.set_ylabel("CTC loss (train, per phoneme)"); a.set_yscale("log"); a.grid(alpha=0.3)
    if history["valid"]:
        ep = [v["epoch"] for v in history["valid"]]
        b.plot(ep, [100 * v["per"] for v in history["valid"]], "o-", label="PER %")
        b.plot(ep, [100 * v["wer"] for v in history["valid"]], "s-", label="WER %")
        b.legend()
    b.set_xlabel("epoch"); b.set_ylabel("validation error (float)"); b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/g2p"))
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=45.0, help="stop after the epoch that crosses this")
    ap.add_argument("--limit-steps", type=int, default=0, help="debug: stop each epoch after N steps")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    splits = split_entries(load_entries())
    train, valid = splits[TRAIN], splits[VALID]
    cfg = G2PConfig()
    model = G2PNet(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / args.batch)
    total = args.epochs * steps_per_epoch
    warm = steps_per_epoch // 2

    def lr_at(step: int) -> float:
        if step < warm:
            return args.lr * (step + 1) / warm
        return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    history: dict = {"loss": [], "valid": [], "seconds": 0.0}
    epoch = step = 0
    best_wer = float("inf")
    last = args.out / "last.pt"
    if args.resume and last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        epoch, step, history, best_wer = state["epoch"], state["step"], state["history"], state["best_wer"]
        print(f"resumed at epoch {epoch}, step {step}, best valid WER {best_wer:.4f}", flush=True)
    print(f"params {count_params(model)}, train {len(train)} words, valid {len(valid)}, "
          f"{steps_per_epoch} steps/epoch, {args.epochs} epochs", flush=True)

    t_start = time.time() - history["seconds"]
    while epoch < args.epochs:
        model.train()
        rng = random.Random(args.seed * 1000 + epoch)
        running, t0 = [], time.time()
        for i, batch in enumerate(make_batches(train, args.batch, rng)):
            if args.limit_steps and i >= args.limit_steps:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            ids, targets, ilen, tlen = tensors(batch, cfg.upsample)
            logp = F.log_softmax(model(ids), -1).transpose(0, 1)
            loss = F.ctc_loss(logp, targets, ilen, tlen, blank=0, zero_infinity=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            running.append(loss.item())
            if step % 50 == 0:
                history["loss"].append((step, float(np.mean(running[-50:]))))
            if step % 100 == 0:
                rate = (time.time() - t0) / (i + 1)
                print(f"epoch {epoch + 1} step {step} loss {np.mean(running[-100:]):.4f} lr {lr_at(step):.2e} "
                      f"{rate:.3f} s/step elapsed {(time.time() - t_start) / 60:.1f} min", flush=True)
        epoch += 1
        preds = predict(model, [e.word for e in valid])
        per, wer, n = score(preds, valid)
        history["valid"].append({"epoch": epoch, "step": step, "per": per, "wer": wer})
        history["seconds"] = time.time() - t_start
        improved = wer < best_wer
        if improved:
            best_wer = wer
            torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "epoch": epoch,
                        "valid": {"per": per, "wer": wer}}, args.out / "best.pt")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "step": step,
                    "history": history, "best_wer": best_wer, "config": cfg.to_dict()}, last)
        (args.out / "history.json").write_text(json.dumps(history))
        plot(history, args.out / "curves.png")
        print(f"== epoch {epoch}: valid PER {per:.4f} WER {wer:.4f} ({n} words){' *best*' if improved else ''} "
              f"elapsed {history['seconds'] / 60:.1f} min", flush=True)
        if history["seconds"] / 60 > args.max_minutes:
            print("time budget reached; stopping", flush=True)
            break
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
