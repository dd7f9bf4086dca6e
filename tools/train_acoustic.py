"""Train the acoustic model of one tier on a features directory (torch CPU), with resume, validation and curves.

Run in the background and poll the log, e.g.::

    mkdir -p out/acoustic-small
    nohup .venv/bin/python tools/train_acoustic.py --features out/features --tier small \\
        --max-minutes 600 > out/acoustic-small/train.log 2>&1 &
    # later, to continue where it stopped (same flags plus --resume):
    nohup .venv/bin/python tools/train_acoustic.py --features out/features --tier small \\
        --max-minutes 600 --resume >> out/acoustic-small/train.log 2>&1 &

Writes into ``--out`` (default ``out/acoustic-<tier>``): ``last.pt`` (full state for ``--resume``) at
every validation, ``best.pt`` (weights only: config, speakers, state_dict; best teacher-forced valid
loss), ``final.pt`` (weights only, the last step), ``history.json``, ``curves.png`` and
``mels/step_<N>.png`` (teacher-forced valid mels, target above prediction).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

_TOOLS = Path(__file__).resolve().parent
# Run from a checkout without installing: the workbench lives under tools/, the runtime under daemon/.
for _path in (_TOOLS, _TOOLS.parent / "daemon"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from voice import checkpoint_io  # noqa: E402
from voice.acoustic import (  # noqa: E402
    AcousticConfig, AcousticModel, Corpus, Item, collate, count_params, cycle_batches, losses,
)

LOSS_KEYS = ("total", "mel", "duration", "pitch", "energy")


def batch_of(corpus: Corpus, items: Sequence[Item], cfg: AcousticConfig) -> Any:
    """Load and pad ``items``."""
    return collate([corpus.example(i) for i in items], [i.speaker for i in items], cfg)


@torch.no_grad()
def validate(model: AcousticModel, corpus: Corpus, items: list[Item], batch: int) -> tuple[dict[str, float], Any]:
    """Teacher-forced losses averaged over ``items`` (weighted by utterance) and the first batch's mels."""
    model.eval()
    sums = dict.fromkeys(LOSS_KEYS, 0.0)
    first = None
    ordered = sorted(items, key=lambda i: i.frames)
    for start in range(0, len(ordered), batch):
        chunk = ordered[start : start + batch]
        b = batch_of(corpus, chunk, model.cfg)
        for k, v in losses(model, b).items():
            sums[k] += float(v) * len(chunk)
        if first is None:
            _, mel = model(b)
            first = (b, mel)
    model.train()
    return {k: v / max(len(items), 1) for k, v in sums.items()}, first


def plot_mels(first: Any, path: Path, count: int = 2) -> None:
    """Target (top) and teacher-forced prediction (bottom) of the first ``count`` valid utterances."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch, pred = first
    n = min(count, batch.mel.shape[0])
    fig, axes = plt.subplots(2, n, figsize=(6 * n, 5), squeeze=False)
    for j in range(n):
        frames = int(batch.frame_mask[j].sum())
        for row, (mel, title) in enumerate(((batch.mel[j], "target"), (pred[j], "predicted"))):
            ax = axes[row][j]
            ax.imshow(mel[:frames].numpy().T, origin="lower", aspect="auto", vmin=-11.5, vmax=2.0, cmap="magma")
            ax.set_title(f"valid {j}: {title}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_curves(history: dict[str, Any], path: Path) -> None:
    """Training losses (per component) and validation losses against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for side, key in ((axes[0], "train"), (axes[1], "valid")):
        rows = history[key]
        if rows:
            steps = [r["step"] for r in rows]
            for k in LOSS_KEYS:
                side.plot(steps, [r[k] for r in rows], lw=0.9, label=k)
            side.legend()
        side.set_xlabel("step"); side.set_ylabel(f"{key} loss"); side.set_yscale("log"); side.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def weights_only(model: AcousticModel, speakers: list[str], step: int, valid: dict[str, float]) -> dict[str, Any]:
    """The shipped-checkpoint form: config, speakers and state_dict (plus where it came from)."""
    return {"config": model.cfg.to_dict(), "speakers": speakers, "model": model.state_dict(), "step": step,
            "valid": valid}


def main(argv: list[str] | None = None) -> int:
    """Parse flags and train."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, default=Path("out/features"))
    ap.add_argument("--tier", choices=("tiny", "small", "base"), default="small")
    ap.add_argument("--out", type=Path, default=None, help="default out/acoustic-<tier>")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=1000, help="linear warm-up steps")
    ap.add_argument("--steps", type=int, default=200_000, help="cosine schedule length in steps")
    ap.add_argument("--max-minutes", type=float, default=600.0,
                    help="wall-clock budget: cosine progress = max(step share, time share), so the LR reaches "
                         "zero and training stops on time (counted across resumes)")
    ap.add_argument("--session-minutes", type=float, default=0.0,
                    help="stop this run after N minutes (saving last.pt and final.pt) without shortening the "
                         "--max-minutes schedule, so a later --resume carries on where the LR left off")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--valid-every", type=int, default=1000)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--max-frames", type=int, default=1600, help="skip longer training utterances (memory)")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from a weights-only checkpoint (e.g. checkpoints/myna-en/acoustic-small.pt, fp16 is "
                         "fine) with a fresh optimizer and --init-step as the schedule position; ignored with --resume")
    ap.add_argument("--init-step", type=int, default=0, help="schedule step to start at with --init")
    ap.add_argument("--speaker-table", type=Path, default=None,
                    help="freeze the speaker rows to another checkpoint's (weights-only .pt, e.g. "
                         "checkpoints/myna-en/acoustic-small.pt): every tier of a pack shares one vector per voice")
    args = ap.parse_args(argv)
    out: Path = args.out or Path("out") / f"acoustic-{args.tier}"
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    corpus = Corpus(args.features)
    train = [i for i in corpus.split("train") if i.frames <= args.max_frames]
    valid = corpus.split("valid")
    skipped = len(corpus.split("train")) - len(train)
    if not train:
        raise SystemExit(f"{args.features}: no training utterances")
    last = out / "last.pt"
    state = None
    if args.resume and last.exists():
        state = torch.load(last, map_location="cpu", weights_only=True)
        cfg = AcousticConfig.from_dict(state["config"])
        if list(state["speakers"]) != corpus.speakers:
            raise SystemExit(f"{last}: trained on speakers {state['speakers']}, features have {corpus.speakers}")
        mel_mean = None
    elif args.init is not None:
        init = torch.load(args.init, map_location="cpu", weights_only=True)
        cfg = AcousticConfig.from_dict(init["config"])
        if list(init["speakers"]) != corpus.speakers:
            raise SystemExit(f"{args.init}: trained on speakers {init['speakers']}, features have {corpus.speakers}")
        mel_mean = None
    else:
        stats = corpus.statistics(train, seed=args.seed)
        cfg = AcousticConfig.for_tier(args.tier, n_speakers=len(corpus.speakers), dropout=args.dropout,
                                      energy_mean=stats["energy_mean"], energy_std=stats["energy_std"])
        mel_mean = stats["mel_mean"]
    model = AcousticModel(cfg, mel_mean)
    if args.speaker_table is not None:
        # A voice's adapter is one speaker vector used by every tier, so a new tier learns to read the
        # vectors the shipped tier already defines instead of inventing its own.
        donor = torch.load(args.speaker_table, map_location="cpu", weights_only=True)
        if list(donor["speakers"]) != corpus.speakers:
            raise SystemExit(f"{args.speaker_table}: speakers {donor['speakers']}, features have {corpus.speakers}")
        rows = donor["model"]["speakers.weight"].float()
        if rows.shape != model.speakers.weight.shape:
            raise SystemExit(f"--speaker-table rows {tuple(rows.shape)}, this tier wants {tuple(model.speakers.weight.shape)}")
        with torch.no_grad():
            model.speakers.weight.copy_(rows)
        model.speakers.weight.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.98),
                            weight_decay=0.01)
    history: dict[str, Any] = {"train": [], "valid": [], "seconds": 0.0}
    step, best = 0, math.inf
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, history, best = int(state["step"]), state["history"], float(state["best"])
        print(f"resumed at step {step}, best valid {best:.4f}", flush=True)
    elif args.init is not None:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init["model"].items()})
        step = args.init_step
        print(f"initialised from {args.init} at schedule step {step}", flush=True)
    budget_s = args.max_minutes * 60.0
    t_start = time.time() - float(history["seconds"])

    def progress() -> float:
        p = (step - args.warmup) / max(1, args.steps - args.warmup)
        return min(1.0, max(0.0, p, (time.time() - t_start) / budget_s if budget_s > 0 else 0.0))

    def lr_now() -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        return args.lr * 0.5 * (1.0 + math.cos(math.pi * progress()))

    def checkpoint(valid_losses: dict[str, float], first: Any) -> None:
        nonlocal best
        history["valid"].append({"step": step, **valid_losses})
        history["seconds"] = time.time() - t_start
        improved = valid_losses["total"] < best
        if improved:
            best = valid_losses["total"]
            checkpoint_io.save(weights_only(model, corpus.speakers, step, valid_losses), out / "best.pt")
        checkpoint_io.save({"config": cfg.to_dict(), "speakers": corpus.speakers, "model": model.state_dict(),
                            "opt": opt.state_dict(), "step": step, "history": history, "best": best}, last)
        (out / "history.json").write_text(json.dumps(history))
        plot_curves(history, out / "curves.png")
        if first is not None:
            plot_mels(first, out / "mels" / f"step_{step:07d}.png")
        print(f"== step {step}: valid " + " ".join(f"{k} {valid_losses[k]:.4f}" for k in LOSS_KEYS)
              + f"{' *best*' if improved else ''} elapsed {history['seconds'] / 60:.1f} min", flush=True)

    print(f"config {cfg.to_dict()}", flush=True)
    print(f"params {count_params(model)}, speakers {len(corpus.speakers)}, train {len(train)} utterances "
          f"({skipped} over {args.max_frames} frames skipped), valid {len(valid)}, decoder context "
          f"±{cfg.decoder_context} frames", flush=True)
    model.train()
    running: list[dict[str, float]] = []
    t_log = t_session = time.time()
    valid_items = valid or train[: args.batch]
    stop_requested: list[bool] = []
    first_step = step
    # SIGTERM (systemd, kill, a session ending) stops after the current step and saves like a normal end.
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
    for epoch, items in cycle_batches(train, args.batch, args.seed, step):
        if step >= args.steps or (step >= args.warmup and progress() >= 1.0):
            break
        over_time = args.session_minutes > 0 and time.time() - t_session > args.session_minutes * 60
        if stop_requested or (over_time and step > first_step):  # a run always makes progress
            print(f"stopping this run at step {step} ({'SIGTERM' if stop_requested else '--session-minutes'}); "
                  "--resume continues the schedule", flush=True)
            break
        for g in opt.param_groups:
            g["lr"] = lr_now()
        parts = losses(model, batch_of(corpus, items, cfg))
        opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        running.append({k: float(v.detach()) for k, v in parts.items()})
        if step % args.log_every == 0:
            mean = {k: float(np.mean([r[k] for r in running])) for k in LOSS_KEYS}
            history["train"].append({"step": step, **mean})
            rate = (time.time() - t_log) / len(running)
            print(f"epoch {epoch + 1} step {step} " + " ".join(f"{k} {mean[k]:.4f}" for k in LOSS_KEYS)
                  + f" lr {lr_now():.2e} {rate:.3f} s/step elapsed {(time.time() - t_start) / 60:.1f} min", flush=True)
            running, t_log = [], time.time()
        if step % args.valid_every == 0:
            checkpoint(*validate(model, corpus, valid_items, args.batch))
            t_log = time.time()
    if running:
        mean = {k: float(np.mean([r[k] for r in running])) for k in LOSS_KEYS}
        history["train"].append({"step": step, **mean})
    final_valid, first = validate(model, corpus, valid_items, args.batch)
    if not history["valid"] or history["valid"][-1]["step"] != step:
        checkpoint(final_valid, first)
    checkpoint_io.save(weights_only(model, corpus.speakers, step, final_valid), out / "final.pt")
    print(f"done at step {step}: final.pt valid total {final_valid['total']:.4f}, best {best:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
