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
from myna.text.g2p_neural import CtcDecoder
from myna.text.phonemes import PHONEMES

from .data import (
    PHONE_ID,
    TRAIN,
    VALID,
    Entry,
    encode_word,
    load_entries,
    score,
    split_entries,
)
from .model import G2PConfig, G2PNet, count_params

DECODER = CtcDecoder(("",) + tuple(PHONEMES))


def make_batches(entries: list[Entry], batch: int, rng: random.Random) -> list[list[Entry]]:
    """Length-bucketed batches in random order (less padding, same words every epoch)."""
    order = sorted(entries, key=lambda e: (len(e.word) + rng.random() * 2))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(batches)
    return batches


def tensors(batch: list[Entry], upsample: int, all_prons: bool = False) -> tuple[torch.Tensor, ...]:
    """ids [B, L], concatenated targets, input lengths, target lengths and the word row of each target.

    With ``all_prons`` every CMUdict pronunciation of a word is a target row (``rows`` maps it back to the
    word), so the loss can take the minimum over variants; otherwise only the primary one.
    """
    length = max(len(e.word) for e in batch)
    ids = torch.zeros(len(batch), length, dtype=torch.long)
    targets: list[int] = []
    tlen, rows = [], []
    for i, e in enumerate(batch):
        ids[i, : len(e.word)] = torch.tensor(encode_word(e.word))
        for pron in e.prons if all_prons else e.prons[:1]:
            t = [PHONE_ID[p] for p in pron]
            targets += t
            tlen.append(len(t))
            rows.append(i)
    rows_t = torch.tensor(rows)
    ilen = torch.tensor([len(e.word) * upsample for e in batch])[rows_t]
    return ids, torch.tensor(targets), ilen, torch.tensor(tlen), rows_t


def ctc_min_loss(logits: torch.Tensor, targets: torch.Tensor, ilen: torch.Tensor, tlen: torch.Tensor,
                 rows: torch.Tensor) -> torch.Tensor:
    """CTC loss per target (normalised by its length), minimum over each word's targets, mean over words.

    Why the minimum: CMUdict lists legitimate variants ("either", "route"); scoring against the primary
    one only punishes the model for a correct reading and blurs its choice between the two.
    """
    logp = F.log_softmax(logits, -1).transpose(0, 1)[:, rows]
    per_target = F.ctc_loss(logp, targets, ilen, tlen, blank=0, reduction="none", zero_infinity=True)
    per_target = per_target / tlen.clamp(min=1)
    best = torch.full((logits.shape[0],), float("inf")).scatter_reduce(0, rows, per_target, "amin")
    return best.mean()


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
        logp = F.log_softmax(model(ids), -1).numpy()
        for j, w in enumerate(chunk):
            out[w] = DECODER.decode(logp[j, : len(w) * up])
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


def recompute_bn(model: G2PNet, train: list[Entry], batch: int, n_batches: int, seed: int) -> None:
    """Re-estimate BatchNorm running stats (cumulative average) over training batches, dropout off."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        for i, b in enumerate(make_batches(train, batch, random.Random(seed))):
            if i >= n_batches:
                break
            model(tensors(b, model.cfg.upsample)[0])
    for m in bns:
        m.momentum = 0.1
    model.eval()


def average_snapshots(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Mean of the float weights of several epoch snapshots (SWA-style); BN stats to be recomputed."""
    states = [torch.load(p, map_location="cpu", weights_only=True)["model"] for p in paths]
    avg = {}
    for k, v in states[0].items():
        avg[k] = sum(s[k] for s in states) / len(states) if v.dtype.is_floating_point else v.clone()
    return avg


def finalize(args: argparse.Namespace, cfg: G2PConfig, train: list[Entry], valid: list[Entry]) -> None:
    """Pick the best of best.pt and averages of the last k epoch snapshots by validation WER → final.pt."""
    best = torch.load(args.out / "best.pt", map_location="cpu", weights_only=True)
    candidates = [("best single epoch %d" % best["epoch"], best["model"], best["valid"]["wer"], best["valid"]["per"], best["epoch"], [])]
    snaps = sorted(args.out.glob("snap_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    for k in args.avg:
        if k < 2 or k > len(snaps):
            continue
        used = snaps[-k:]
        model = G2PNet(cfg)
        model.load_state_dict(average_snapshots(used))
        recompute_bn(model, train, args.batch, args.bn_batches, seed=12345)
        per, wer, _ = score(predict(model, [e.word for e in valid]), valid)
        name = f"average of last {k} epoch snapshots"
        print(f"== {name} ({', '.join(p.stem for p in used)}): valid PER {per:.4f} WER {wer:.4f}", flush=True)
        candidates.append((name, model.state_dict(), wer, per, int(used[-1].stem.split("_")[1]),
                           [int(p.stem.split("_")[1]) for p in used]))
    name, state, wer, per, epoch, used = min(candidates, key=lambda c: (c[2], c[3]))
    torch.save({"config": cfg.to_dict(), "model": state, "epoch": epoch, "valid": {"per": per, "wer": wer},
                "averaged_epochs": used, "selection": name}, args.out / "final.pt")
    print(f"final.pt = {name}: valid PER {per:.4f} WER {wer:.4f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/g2p"))
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=45.0, help="stop after the epoch that crosses this")
    ap.add_argument("--time-schedule-minutes", type=float, default=0.0,
                    help="if > 0: cosine LR progress = max(step share, wall-time share of this budget); training "
                         "stops (mid-epoch if need be) when either reaches 1, so the LR reaches zero on time")
    ap.add_argument("--limit-steps", type=int, default=0, help="debug: stop each epoch after N steps")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--dim", type=int, default=G2PConfig.dim)
    ap.add_argument("--ffn", type=int, default=G2PConfig.ffn)
    ap.add_argument("--kernel", type=int, default=G2PConfig.kernel)
    ap.add_argument("--dilations", default=",".join(map(str, G2PConfig.dilations)))
    ap.add_argument("--dropout", type=float, default=G2PConfig.dropout)
    ap.add_argument("--emb-dropout", type=float, default=G2PConfig.emb_dropout)
    ap.add_argument("--avg", default="", help="e.g. 2,3,4: after training also try averages of the last k epoch "
                    "snapshots (BatchNorm stats recomputed) and keep the best on validation as final.pt")
    ap.add_argument("--bn-batches", type=int, default=120)
    ap.add_argument("--all-prons", action="store_true",
                    help="CTC loss = minimum over all CMUdict pronunciations of the word (default: primary only)")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from this checkpoint's weights and config (warm restart with a fresh schedule)")
    ap.add_argument("--warmup", type=float, default=0.5, help="linear warm-up length in epochs")
    args = ap.parse_args(argv)
    args.avg = [int(k) for k in args.avg.split(",") if k.strip()]

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    splits = split_entries(load_entries())
    train, valid = splits[TRAIN], splits[VALID]
    cfg = G2PConfig(dim=args.dim, ffn=args.ffn, kernel=args.kernel,
                    dilations=tuple(int(d) for d in args.dilations.split(",")),
                    dropout=args.dropout, emb_dropout=args.emb_dropout)
    last = args.out / "last.pt"
    state = None
    if args.resume and last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        cfg = G2PConfig.from_dict(state["config"])
    elif args.init is not None:
        init = torch.load(args.init, map_location="cpu", weights_only=True)
        cfg = G2PConfig.from_dict(init["config"])
    model = G2PNet(cfg)
    if state is None and args.init is not None:
        model.load_state_dict(init["model"])
        print(f"initialised from {args.init}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / args.batch)
    total = args.epochs * steps_per_epoch
    warm = max(1, int(steps_per_epoch * args.warmup))
    budget_s = args.time_schedule_minutes * 60

    history: dict = {"loss": [], "valid": [], "seconds": 0.0}
    epoch = step = 0
    best_wer = float("inf")
    if state is not None:
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        epoch, step, history, best_wer = state["epoch"], state["step"], state["history"], state["best_wer"]
        print(f"resumed at epoch {epoch}, step {step}, best valid WER {best_wer:.4f}", flush=True)
    t_start = time.time() - history["seconds"]

    def progress(step: int) -> float:
        p = (step - warm) / max(1, total - warm)
        if budget_s > 0:
            p = max(p, (time.time() - t_start) / budget_s)
        return min(1.0, max(0.0, p))

    def lr_at(step: int) -> float:
        if step < warm:
            return args.lr * (step + 1) / warm
        return args.lr * 0.5 * (1 + math.cos(math.pi * progress(step)))

    print(f"config {cfg.to_dict()}", flush=True)
    print(f"params {count_params(model)}, train {len(train)} words, valid {len(valid)}, "
          f"{steps_per_epoch} steps/epoch, {args.epochs} epochs"
          + (f", time-based schedule {args.time_schedule_minutes} min" if budget_s else ""), flush=True)

    stop = False
    while epoch < args.epochs and not stop:
        model.train()
        rng = random.Random(args.seed * 1000 + epoch)
        running, t0 = [], time.time()
        for i, batch in enumerate(make_batches(train, args.batch, rng)):
            if args.limit_steps and i >= args.limit_steps:
                break
            if budget_s > 0 and step >= warm and progress(step) >= 1.0:
                print(f"time-based schedule done at step {step} (epoch {epoch + 1}, batch {i})", flush=True)
                stop = True
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            ids, targets, ilen, tlen, rows = tensors(batch, cfg.upsample, args.all_prons)
            loss = ctc_min_loss(model(ids), targets, ilen, tlen, rows)
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
        if args.avg:
            torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "epoch": epoch,
                        "valid": {"per": per, "wer": wer}}, args.out / f"snap_{epoch}.pt")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "step": step,
                    "history": history, "best_wer": best_wer, "config": cfg.to_dict()}, last)
        (args.out / "history.json").write_text(json.dumps(history))
        plot(history, args.out / "curves.png")
        print(f"== epoch {epoch}: valid PER {per:.4f} WER {wer:.4f} ({n} words){' *best*' if improved else ''} "
              f"elapsed {history['seconds'] / 60:.1f} min", flush=True)
        if history["seconds"] / 60 > args.max_minutes:
            print("time budget reached; stopping", flush=True)
            break
    if args.avg:
        finalize(args, cfg, train, valid)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
