"""Learned speaker-independent text-to-mel aligner (RAD-TTS style) and the durations it writes for training.

The model is the alignment module of "One TTS Alignment To Rule Them All" (Badlani et al., 2022): a text
encoder (id embedding + convolutions) and a mel encoder (convolutions over the per-utterance normalised
log-mel) map both sides into one space; the soft alignment of frame t to id n is a log-softmax over n of
``−scale·‖q_t − k_n‖²`` plus the log of a beta-binomial prior that favours the diagonal.  It is trained
with the forward-sum loss: the likelihood of all monotonic paths through the ids, summed by CTC with the
ids as the target sequence (1..N) and a blank column of constant log-probability.  Hard durations come
from monotonic alignment search (Viterbi) over the soft alignment: every id gets at least one frame and
they add up to the mel's frames.

Train in the background and poll the log, e.g.::

    nohup .venv/bin/python tools/train_aligner.py --features out/features --out out/aligner > out/aligner.log 2>&1 &
    nohup .venv/bin/python tools/train_aligner.py --features out/features --out out/aligner --resume >> out/aligner.log 2>&1 &
    .venv/bin/python tools/train_aligner.py --features out/features --out out/aligner --align
    .venv/bin/python tools/train_aligner.py --features out/features --out out/aligner --check-joe 500 --corpus corpus

Writes ``last.pt`` (full state for ``--resume``, also at the time limit mid-epoch), ``best.pt`` (weights and
config only, lowest validation loss), ``history.json`` and ``curves.png``; ``--align`` writes
``<features>/<speaker>/<id>.dur.npy`` (int32 [N]) for every indexed utterance.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from myna.text.phonemes import CURRENT, PAUSES, WORD_BREAK
from torch import nn

from .audio import AUDIO
from .features import read_index

MASKED = -1e4
"""Logit of a padded text position: exp() is 0 in float32 yet gradients stay finite (unlike −inf)."""
MEL_STD_FLOOR = 0.5
"""Per-channel std floor (log units) of the utterance normalisation, so near-constant channels stay quiet."""


@dataclass(frozen=True)
class AlignerConfig:
    """Shape and loss settings of the aligner (stored in every checkpoint)."""

    n_symbols: int = CURRENT.size
    """Rows of the id embedding (the inventory the features were encoded with)."""
    text_dim: int = 128
    """Id embedding and text convolution width."""
    text_layers: int = 2
    """Kernel-3 ReLU convolutions of the text encoder (before the 1×1 projection)."""
    n_mels: int = AUDIO.n_mels
    """Mel channels of the input."""
    mel_dim: int = 256
    """Mel encoder hidden width."""
    att_dim: int = 80
    """Dimension of the shared space the distances are measured in."""
    temperature: float = 1.0
    """Initial scale of the squared distance.  The paper's fixed 0.0005 suits its unnormalised mel and wide
    text encoder; with normalised mels it starts near-uniform and learned ~2.5× slower here (joe boundary
    error 77 vs 32 ms after the same 1.5 CPU-minutes on 400 utterances)."""
    learn_scale: bool = True
    """Learn the distance scale (log-parametrised) instead of keeping the paper's constant."""
    prior_scale: float = 1.0
    """Beta-binomial prior scaling factor ω (the paper's 1.0); the prior stays on throughout."""
    blank_logprob: float = -1.0
    """Log-probability of the CTC blank column before the forward-sum softmax (as RAD-TTS)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlignerConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so old checkpoints keep loading."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class Aligner(nn.Module):
    """Text and mel encoders whose scaled negative squared distances are the alignment logits."""

    def __init__(self, cfg: AlignerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_symbols, cfg.text_dim, padding_idx=0)
        text: list[nn.Module] = []
        for _ in range(cfg.text_layers):
            text += [nn.Conv1d(cfg.text_dim, cfg.text_dim, 3, padding=1), nn.ReLU()]
        self.text = nn.Sequential(*text, nn.Conv1d(cfg.text_dim, cfg.att_dim, 1))
        self.mel = nn.Sequential(
            nn.Conv1d(cfg.n_mels, cfg.mel_dim, 3, padding=1), nn.ReLU(),
            nn.Conv1d(cfg.mel_dim, cfg.mel_dim, 1), nn.ReLU(),
            nn.Conv1d(cfg.mel_dim, cfg.att_dim, 1),
        )
        self.log_scale = nn.Parameter(torch.tensor(math.log(cfg.temperature)), requires_grad=cfg.learn_scale)

    def forward(self, ids: torch.Tensor, n_ids: torch.Tensor, mel: torch.Tensor,
                log_prior: torch.Tensor | None = None) -> torch.Tensor:
        """Log soft alignment [B, T, N] (log-softmax over ids, plus the log prior when given).

        ``ids`` [B, N] (0-padded), ``n_ids`` [B], ``mel`` [B, T, n_mels] normalised per utterance.
        """
        keys = self.text(self.embed(ids).transpose(1, 2)).transpose(1, 2)  # [B, N, D]
        queries = self.mel(mel.transpose(1, 2)).transpose(1, 2)  # [B, T, D]
        # ‖q − k‖² through a matmul: the [B, T, N, D] difference tensor would not fit long utterances.
        dist = (queries.pow(2).sum(-1, keepdim=True) + keys.pow(2).sum(-1).unsqueeze(1)
                - 2.0 * queries @ keys.transpose(1, 2)).clamp(min=0.0)
        logits = -self.log_scale.exp() * dist
        text_mask = torch.arange(ids.shape[1], device=ids.device)[None, :] < n_ids[:, None]  # [B, N]
        logits = logits.masked_fill(~text_mask[:, None, :], MASKED)
        logp = F.log_softmax(logits, dim=-1)
        if log_prior is not None:
            logp = logp + log_prior
        return logp.masked_fill(~text_mask[:, None, :], MASKED)


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def beta_binomial_log_prior(n_ids: int, frames: int, scale: float = 1.0) -> torch.Tensor:
    """log P(id | frame) [frames, n_ids] of the paper's prior: frame t ~ BetaBinomial(N−1, ω·t, ω·(T+1−t))."""
    n = n_ids - 1
    k = torch.arange(n_ids, dtype=torch.float64)[None, :]
    t = torch.arange(1, frames + 1, dtype=torch.float64)[:, None]
    a, b = scale * t, scale * (frames + 1 - t)

    def lbeta(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y)

    log_choose = math.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
    return (log_choose + lbeta(k + a, n - k + b) - lbeta(a, b)).float()


def forward_sum_loss(logp: torch.Tensor, n_ids: torch.Tensor, frames: torch.Tensor,
                     blank_logprob: float = -1.0) -> torch.Tensor:
    """RAD-TTS forward-sum loss: CTC of target 1..N over the soft alignment with a blank column prepended.

    Mean over the batch of the per-id negative log-likelihood (``F.ctc_loss`` "mean" reduction).
    """
    b, _, n = logp.shape
    padded = F.pad(logp, (1, 0), value=blank_logprob)
    text_mask = torch.arange(n + 1, device=logp.device)[None, :] <= n_ids[:, None]  # blank + real ids
    padded = padded.masked_fill(~text_mask[:, None, :], MASKED)
    padded = F.log_softmax(padded, dim=-1)
    targets = torch.arange(1, n + 1, device=logp.device).expand(b, n)
    return F.ctc_loss(padded.transpose(0, 1), targets, frames, n_ids, blank=0, reduction="mean",
                      zero_infinity=True)


def mas(logp: np.ndarray) -> np.ndarray:
    """Monotonic alignment search: frames per id (int32 [N], each ≥ 1, sum T) of the best path through ``logp`` [N, T].

    Viterbi over paths that start at (0, 0), end at (N−1, T−1) and at each frame stay or move one id on;
    O(N·T) with the id axis vectorised.  ValueError when T < N (no such path).
    """
    n, t = logp.shape
    if t < n:
        raise ValueError(f"{t} frames cannot hold {n} ids at one frame each")
    value = np.full(n, -np.inf)
    value[0] = logp[0, 0]
    moved = np.zeros((t, n), dtype=bool)
    for j in range(1, t):
        from_prev = np.concatenate(([-np.inf], value[:-1]))
        moved[j] = from_prev > value
        value = np.maximum(value, from_prev) + logp[:, j]
    durations = np.zeros(n, np.int32)
    i = n - 1
    for j in range(t - 1, -1, -1):
        durations[i] += 1
        if j > 0 and moved[j, i]:
            i -= 1
    assert i == 0, "backtrack must end at the first id"
    return durations


# -- data -------------------------------------------------------------------------------------------


def normalise_mel(mel: np.ndarray) -> np.ndarray:
    """Per-utterance, per-channel mean and (floored) std normalisation: removes the speaker's spectral tilt and level."""
    mean = mel.mean(axis=0, keepdims=True)
    std = np.maximum(mel.std(axis=0, keepdims=True), MEL_STD_FLOOR)
    return ((mel - mean) / std).astype(np.float32)


@dataclass(frozen=True)
class Item:
    """One indexed utterance."""

    speaker: str
    id: str
    frames: int
    n_ids: int
    split: str


def load_items(features: Path) -> list[Item]:
    """Index rows whose utterance can be aligned (at least one frame per id)."""
    items = [Item(r["speaker"], r["id"], r["frames"], r["n_ids"], r["split"]) for r in read_index(features)]
    return [it for it in items if it.frames >= it.n_ids]


def batches_by_length(items: Sequence[Item], batch: int, rng: random.Random | None) -> list[list[Item]]:
    """Batches of similar length (little padding); shuffled (with jitter in the sort) when ``rng`` is given."""
    if rng is None:
        order = sorted(items, key=lambda it: it.frames)
    else:
        order = sorted(items, key=lambda it: it.frames * (1.0 + 0.1 * rng.random()))
    out = [list(order[i : i + batch]) for i in range(0, len(order), batch)]
    if rng is not None:
        rng.shuffle(out)
    return out


@dataclass
class Batch:
    """Padded tensors of a batch."""

    items: list[Item]
    ids: torch.Tensor
    n_ids: torch.Tensor
    mel: torch.Tensor
    frames: torch.Tensor
    log_prior: torch.Tensor


def collate(features: Path, items: list[Item], prior_scale: float) -> Batch:
    """Load and pad a batch: ids [B, N], normalised mel [B, T, 80], log prior [B, T, N]."""
    n_max, t_max = max(it.n_ids for it in items), max(it.frames for it in items)
    ids = torch.zeros(len(items), n_max, dtype=torch.long)
    mel = torch.zeros(len(items), t_max, AUDIO.n_mels)
    prior = torch.zeros(len(items), t_max, n_max)
    for i, it in enumerate(items):
        with np.load(features / it.speaker / f"{it.id}.npz") as z:
            ids[i, : it.n_ids] = torch.from_numpy(z["ids"].astype(np.int64))
            mel[i, : it.frames] = torch.from_numpy(normalise_mel(z["mel"]))
        prior[i, : it.frames, : it.n_ids] = beta_binomial_log_prior(it.n_ids, it.frames, prior_scale)
    return Batch(items, ids, torch.tensor([it.n_ids for it in items]), mel,
                 torch.tensor([it.frames for it in items]), prior)


def batch_loss(model: Aligner, b: Batch) -> torch.Tensor:
    """Forward-sum loss of one batch."""
    return forward_sum_loss(model(b.ids, b.n_ids, b.mel, b.log_prior), b.n_ids, b.frames, model.cfg.blank_logprob)


@torch.no_grad()
def evaluate(model: Aligner, features: Path, items: list[Item], batch: int) -> float:
    """Mean forward-sum loss over ``items`` (weighted by batch size)."""
    model.eval()
    total, count = 0.0, 0
    for chunk in batches_by_length(items, batch, None):
        total += batch_loss(model, collate(features, chunk, model.cfg.prior_scale)).item() * len(chunk)
        count += len(chunk)
    model.train()
    return total / max(1, count)


@torch.no_grad()
def durations(model: Aligner, features: Path, items: list[Item], batch: int = 16) -> Iterator[tuple[Item, np.ndarray]]:
    """(item, frames per id) for every item: MAS over the soft alignment, prior included."""
    model.eval()
    for chunk in batches_by_length(items, batch, None):
        b = collate(features, chunk, model.cfg.prior_scale)
        logp = model(b.ids, b.n_ids, b.mel, b.log_prior).numpy()
        for i, it in enumerate(chunk):
            yield it, mas(logp[i, : it.frames, : it.n_ids].T.astype(np.float64))


# -- training ---------------------------------------------------------------------------------------


def plot(history: dict[str, Any], path: Path) -> None:
    """Save the training and validation forward-sum loss curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if history["loss"]:
        steps, losses = zip(*history["loss"])
        ax.plot(steps, losses, lw=0.8, label="train")
    if history["valid"]:
        ax.plot([v["step"] for v in history["valid"]], [v["loss"] for v in history["valid"]], "o-", label="valid")
    ax.set_xlabel("step"); ax.set_ylabel("forward-sum loss (per id)"); ax.grid(alpha=0.3); ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_model(path: Path) -> Aligner:
    """An aligner from a ``best.pt`` / ``last.pt`` checkpoint, in eval mode."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = Aligner(AlignerConfig.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train (or resume) until ``--epochs`` or ``--max-minutes``; returns the history."""
    args.out.mkdir(parents=True, exist_ok=True)
    items = load_items(args.features)
    train_items = [it for it in items if it.split == "train"]
    valid_items = [it for it in items if it.split == "valid"]
    if not valid_items:  # a tiny smoke set can have no valid utterance; score a training batch instead
        print("warning: no valid-split utterance; the valid loss is measured on training utterances", flush=True)
        valid_items = train_items[: args.batch]
    last = args.out / "last.pt"
    state = torch.load(last, map_location="cpu", weights_only=True) if args.resume and last.exists() else None
    cfg = AlignerConfig.from_dict(state["config"]) if state else AlignerConfig(
        text_dim=args.text_dim, att_dim=args.att_dim, mel_dim=args.mel_dim, temperature=args.temperature,
        learn_scale=not args.fixed_scale)
    torch.manual_seed(args.seed)
    model = Aligner(cfg)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train_items) / args.batch)
    total = max(1, args.epochs * steps_per_epoch)
    history: dict[str, Any] = {"loss": [], "valid": [], "seconds": 0.0}
    epoch = offset = step = 0
    best = float("inf")
    if state:
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        epoch, offset, step, history, best = state["epoch"], state["offset"], state["step"], state["history"], state["best"]
        print(f"resumed at epoch {epoch + 1} batch {offset}, step {step}, best valid {best:.4f}", flush=True)
    t_start = time.time() - history["seconds"]

    def lr_at(s: int) -> float:
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (s - args.warmup) / max(1, total - args.warmup)))))

    def checkpoint(valid: float) -> None:
        nonlocal best
        history["seconds"] = time.time() - t_start
        history["valid"].append({"epoch": epoch, "step": step, "loss": valid})
        improved = valid < best
        if improved:
            best = valid
            torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "step": step, "valid": valid},
                       args.out / "best.pt")
        torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
                    "offset": offset, "step": step, "history": history, "best": best}, last)
        (args.out / "history.json").write_text(json.dumps(history))
        plot(history, args.out / "curves.png")
        print(f"== step {step} (epoch {epoch + offset / steps_per_epoch:.2f}): valid loss {valid:.4f}{' *best*' if improved else ''} "
              f"scale {model.log_scale.exp().item():.2e} elapsed {history['seconds'] / 60:.1f} min", flush=True)

    print(f"config {cfg.to_dict()}", flush=True)
    print(f"params {count_params(model)}, train {len(train_items)} utterances, valid {len(valid_items)}, "
          f"{steps_per_epoch} steps/epoch, {args.epochs} epochs, limit {args.max_minutes} min", flush=True)
    model.train()
    out_of_time = False
    while epoch < args.epochs and not out_of_time:
        batches = batches_by_length(train_items, args.batch, random.Random(args.seed * 1000 + epoch))
        running: list[float] = []
        t0 = time.time()
        while offset < len(batches):
            if args.max_steps and step >= args.max_steps or (time.time() - t_start) / 60 >= args.max_minutes:
                out_of_time = True
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss = batch_loss(model, collate(args.features, batches[offset], cfg.prior_scale))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            offset += 1
            running.append(loss.item())
            if step % args.log_every == 0:
                history["loss"].append((step, float(np.mean(running[-args.log_every :]))))
                print(f"epoch {epoch + 1} step {step} loss {np.mean(running[-args.log_every:]):.4f} "
                      f"lr {lr_at(step):.2e} {(time.time() - t0) / len(running):.3f} s/step "
                      f"elapsed {(time.time() - t_start) / 60:.1f} min", flush=True)
        if not out_of_time:
            epoch, offset = epoch + 1, 0
            checkpoint(evaluate(model, args.features, valid_items, args.batch))
    if out_of_time:
        print("time or step limit reached; saving", flush=True)
        checkpoint(evaluate(model, args.features, valid_items, args.batch))
    return history


# -- durations and their check ----------------------------------------------------------------------


def write_durations(model: Aligner, features: Path, progress: bool = True) -> int:
    """Write ``<speaker>/<id>.dur.npy`` for every alignable indexed utterance; the count written."""
    from tqdm import tqdm

    items = load_items(features)
    skipped = len(read_index(features)) - len(items)
    if skipped:
        print(f"warning: {skipped} utterances have fewer frames than ids and get no durations", flush=True)
    count = 0
    for it, dur in tqdm(durations(model, features, items), total=len(items), unit="utt", disable=not progress):
        path = features / it.speaker / f"{it.id}.dur.npy"
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            np.save(fh, dur)
        os.replace(tmp, path)
        count += 1
    return count


BREAK_IDS = frozenset(CURRENT.id_of(s) for s in (WORD_BREAK, *PAUSES))


def myna_boundaries(ids: Sequence[int], dur: Sequence[int]) -> list[tuple[float, float]]:
    """(onset of the next word, middle of the break) in frames for each word break of an id sequence.

    A word break is a " " or a pause that is followed by more speech (a pause replaces the " " in the
    corpus metadata); the final pause before EOS ends the sentence and is not a break.
    """
    ends = np.cumsum(dur)
    eos = CURRENT.id_of("$")
    out = []
    for i, tok in enumerate(ids):
        if tok in BREAK_IDS and i + 1 < len(ids) and ids[i + 1] != eos and ids[i + 1] not in BREAK_IDS:
            out.append((float(ends[i]), float(ends[i] - dur[i] / 2)))
    return out


def piper_boundaries(symbols: Sequence[str], dur: Sequence[int]) -> list[tuple[float, float]]:
    """(onset of the next word, middle of the break) in frames for each " " of Piper's pad-interleaved symbols.

    The break region runs from the end of the previous word's last phone to the start of the next
    word: the pads and pause symbols around the " " and the " " itself.
    """
    ends = np.cumsum(dur)
    out = []
    for i, s in enumerate(symbols):
        if s != WORD_BREAK:
            continue
        start = i
        while start > 0 and (symbols[start - 1] == "_" or symbols[start - 1] in PAUSES):
            start -= 1
        stop = i
        while stop + 1 < len(symbols) and symbols[stop + 1] == "_":
            stop += 1
        begin = float(ends[start - 1]) if start > 0 else 0.0
        out.append((float(ends[stop]), (begin + float(ends[stop])) / 2))
    return out


def boundary_errors(cases: Iterable[tuple[Sequence[int], Sequence[int], Sequence[str], Sequence[int]]]) -> dict[str, float]:
    """Word-boundary error statistics of (ids, aligner durations, Piper symbols, Piper durations) cases.

    Only cases with as many word breaks on both sides are scored (compound spellings can differ);
    ValueError when none is.  The uniform baseline spreads each utterance's frames evenly over its ids.
    """
    ms = 1000.0 * AUDIO.hop_length / AUDIO.sample_rate
    onset, middle, uniform, signed = [], [], [], []
    seen = scored = 0
    for ids, dur, symbols, teacher in cases:
        seen += 1
        ours, theirs = myna_boundaries(ids, dur), piper_boundaries(symbols, teacher)
        if len(ours) != len(theirs) or not ours:
            continue
        scored += 1
        even = np.full(len(ids), sum(dur) / len(ids))
        for (o, m), (to, tm), (uo, _) in zip(ours, theirs, myna_boundaries(ids, even.tolist())):
            onset.append(abs(o - to) * ms)
            signed.append((o - to) * ms)
            middle.append(abs(m - tm) * ms)
            uniform.append(abs(uo - to) * ms)
    if not onset:
        raise ValueError("no utterance with Piper durations and matching word breaks")
    return {"utterances": float(scored), "of": float(seen), "boundaries": float(len(onset)),
            "onset_mae_ms": float(np.mean(onset)), "onset_within_20ms": float(np.mean(np.array(onset) <= 20.0)),
            "middle_mae_ms": float(np.mean(middle)), "middle_within_20ms": float(np.mean(np.array(middle) <= 20.0)),
            "onset_bias_ms": float(np.mean(signed)), "uniform_onset_mae_ms": float(np.mean(uniform))}


def check_joe(model: Aligner, features: Path, corpus: Path, limit: int) -> dict[str, float]:
    """Word-boundary error of the aligner against the Piper teacher's durations on ``limit`` joe utterances."""
    meta = {}
    with (corpus / "joe" / "metadata.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if "durations" in rec:
                meta[rec["id"]] = rec
    items = [it for it in load_items(features) if it.speaker == "joe" and it.id in meta][:limit]

    def cases() -> Iterator[tuple[list[int], list[int], list[str], list[int]]]:
        for it, dur in durations(model, features, items):
            with np.load(features / "joe" / f"{it.id}.npz") as z:
                ids = z["ids"].tolist()
            yield ids, dur.tolist(), meta[it.id]["piper_symbols"], meta[it.id]["durations"]

    return boundary_errors(cases())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, default=Path("out/features"))
    ap.add_argument("--out", type=Path, default=Path("out/aligner"))
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--max-minutes", type=float, default=60.0, help="save and stop when training has run this long")
    ap.add_argument("--max-steps", type=int, default=0, help="debug: stop after N steps in all")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200, help="linear warm-up steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--text-dim", type=int, default=AlignerConfig.text_dim)
    ap.add_argument("--mel-dim", type=int, default=AlignerConfig.mel_dim)
    ap.add_argument("--att-dim", type=int, default=AlignerConfig.att_dim)
    ap.add_argument("--temperature", type=float, default=AlignerConfig.temperature)
    ap.add_argument("--fixed-scale", action="store_true", help="keep the distance scale at --temperature")
    ap.add_argument("--align", action="store_true", help="no training: write <id>.dur.npy with --checkpoint")
    ap.add_argument("--check-joe", type=int, default=0, metavar="N",
                    help="no training: word-boundary error against Piper's durations on N joe utterances")
    ap.add_argument("--corpus", type=Path, default=Path("corpus"), help="corpus with joe/metadata.jsonl (--check-joe)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="for --align/--check-joe (default OUT/best.pt)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.align or args.check_joe):
        train(args)
        print("done", flush=True)
        return 0
    ckpt = args.checkpoint or args.out / "best.pt"
    model = load_model(ckpt)
    if args.check_joe:
        r = check_joe(model, args.features, args.corpus, args.check_joe)
        print(f"joe word boundaries vs Piper ({ckpt}): {int(r['boundaries'])} boundaries in {int(r['utterances'])} "
              f"of {int(r['of'])} utterances; next-word onset MAE {r['onset_mae_ms']:.1f} ms, "
              f"{100 * r['onset_within_20ms']:.1f} % within 20 ms, mean signed {r['onset_bias_ms']:+.1f} ms; break-middle MAE {r['middle_mae_ms']:.1f} ms, "
              f"{100 * r['middle_within_20ms']:.1f} % within 20 ms (uniform-duration baseline onset MAE "
              f"{r['uniform_onset_mae_ms']:.1f} ms)", flush=True)
    if args.align:
        t0 = time.time()
        n = write_durations(model, args.features, progress=not args.no_progress and sys.stderr.isatty())
        print(f"wrote {n} duration files in {time.time() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
