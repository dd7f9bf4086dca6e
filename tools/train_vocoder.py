"""Train the frame-rate vocoder on ground-truth log-mels and the corpus audio (torch CPU), with resume and curves.

Phase 1 reconstructs (multi-resolution STFT + log-mel L1); from ``--adv-start`` light spectrogram
discriminators join (LSGAN + feature matching).  Run in the background and poll the log, e.g.::

    nohup .venv/bin/python tools/train_vocoder.py --tier small --features out/features --corpus /work/corpus-run \\
        --out out/vocoder --steps 60000 --adv-start 40000 --max-minutes 600 > out/vocoder/train.log 2>&1 &
    # resume (same command plus --resume, appending to the log)

Writes ``last.pt`` (full state, for ``--resume``) every ``--save-every`` steps and on exit, ``best.pt``
(weights only, best validation mel L1), ``final.pt`` (weights only, last step), ``history.json``,
``curves.png`` and ``samples/step<N>_<speaker>_<id>.wav`` (two validation utterances per validation).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "daemon")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from voice import checkpoint_io  # noqa: E402
from voice.audio import AUDIO, log_mel, write_pcm16  # noqa: E402
from voice.vocoder import (  # noqa: E402
    TIERS,
    Discriminators,
    Vocoder,
    VocoderConfig,
    count_params,
    discriminator_loss,
    generator_losses,
    istft,
    mel_l1_loss,
    mr_stft_loss,
    phase_norm_loss,
    spectrum,
)
from voice.vocoder_data import Clips, from_features, read_pack, teacher_forced_mels  # noqa: E402


def batch(data: Clips, size: int, segment: int, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ``segment``-frame windows: mel [B, segment, M], audio [B, segment·hop], speaker ids [B].

    Utterances are drawn in proportion to their length, so every frame of the corpus is equally likely.
    Window frame ``s`` is centred on sample ``s·hop``, so the audio is samples [s·hop, (s+segment)·hop).
    """
    hop = AUDIO.hop_length
    picks = rng.choices(range(len(data)), cum_weights=data.cum_weights(segment), k=size)
    mels, audios, speakers = [], [], []
    for i in picks:
        clip = data.clip(i)
        start = rng.randrange(0, clip.mel.shape[0] - segment)
        mels.append(clip.mel[start : start + segment])
        audios.append(clip.audio[start * hop : (start + segment) * hop])
        speakers.append(clip.speaker)
    return torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(audios)), torch.tensor(speakers)


@torch.no_grad()
def validate(model: Vocoder, table: torch.Tensor, data: Clips, limit: int, wav_dir: Path | None,
             step: int, n_wavs: int = 2) -> dict[str, float]:
    """Float mel L1 and MR-STFT against the real audio over whole utterances; write a few wavs.

    The reference mel is the audio's own, so with teacher-forced input mels the score still says how
    close the output is to the recording, not to the acoustic model.
    """
    model.eval()
    device = table.device
    mel_errors, stft_errors = [], []
    for i in range(min(limit, len(data))):
        clip = data.clip(i)
        mel = torch.from_numpy(clip.mel)[None].to(device)
        audio = istft(spectrum(*model(mel, table[clip.speaker][None])), model.cfg)[0, : clip.audio.size].cpu().numpy()
        mel_errors.append(float(np.mean(np.abs(log_mel(audio) - log_mel(clip.audio)))))
        stft_errors.append(float(mr_stft_loss(torch.from_numpy(audio)[None], torch.from_numpy(clip.audio)[None])))
        if wav_dir is not None and i < n_wavs:
            wav_dir.mkdir(parents=True, exist_ok=True)
            write_pcm16(wav_dir / f"step{step}_{clip.name}.wav", audio)
    model.train()
    return {"mel_l1": float(np.mean(mel_errors)), "mr_stft": float(np.mean(stft_errors))}


def plot(history: dict[str, Any], path: Path) -> None:
    """Save training losses, adversarial losses and validation curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    train = history["train"]
    if train:
        steps = [h["step"] for h in train]
        for key in ("mr_stft", "mel"):
            axes[0].plot(steps, [h[key] for h in train], lw=0.8, label=key)
        adv = [h for h in train if "d" in h]
        for key in ("d", "adv", "fm"):
            if adv:
                axes[1].plot([h["step"] for h in adv], [h[key] for h in adv], lw=0.8, label=key)
    axes[0].set_ylabel("reconstruction (train)"); axes[0].set_yscale("log")
    axes[1].set_ylabel("adversarial (train)")
    if history["valid"]:
        steps = [v["step"] for v in history["valid"]]
        axes[2].plot(steps, [v["mel_l1"] for v in history["valid"]], "o-", label="mel L1")
        axes[2].plot(steps, [v["mr_stft"] for v in history["valid"]], "s-", label="MR-STFT")
    axes[2].set_ylabel("validation (float)")
    for ax in axes:
        ax.set_xlabel("step"); ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def weights_only(model: Vocoder, table: torch.Tensor, speakers: list[str], step: int, valid: dict[str, float] | None) -> dict[str, Any]:
    """The small checkpoint an exporter needs (no optimiser, no discriminators)."""
    return {"config": model.cfg.to_dict(), "model": {k: v.cpu() for k, v in model.state_dict().items()},
            "speaker_table": table.detach().cpu().clone(),
            "speakers": speakers, "step": step, "valid": valid}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, default=Path("out/features"))
    ap.add_argument("--corpus", type=Path, default=Path("corpus"), help="the corpus the features came from "
                    "(<speaker>/wavs/<id>.wav)")
    ap.add_argument("--out", type=Path, default=Path("out/vocoder"))
    ap.add_argument("--pack", type=Path, default=None,
                    help="train from this pack file (tools/pack_vocoder_data.py) instead of --features/--corpus")
    ap.add_argument("--gta", type=Path, default=None, metavar="ACOUSTIC_CKPT",
                    help="feed the acoustic model's teacher-forced mels (ground-truth-aligned) instead of the true ones")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    ap.add_argument("--tier", choices=sorted(TIERS), default="small")
    ap.add_argument("--steps", type=int, default=60000, help="length of the LR schedule (and the last step)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--segment", type=int, default=64, help="frames per training window (64 ≈ 0.74 s)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--adv-start", type=int, default=0, help="step at which discriminators join (0 = never)")
    ap.add_argument("--disc-channels", type=int, default=16)
    ap.add_argument("--mel-weight", type=float, default=1.0)
    ap.add_argument("--phase-weight", type=float, default=0.1, help="pull |(phase_x, phase_y)| to 1 (INT8 precision)")
    ap.add_argument("--adv-weight", type=float, default=1.0)
    ap.add_argument("--fm-weight", type=float, default=2.0)
    ap.add_argument("--speaker-table", type=Path, default=None,
                    help="frozen speaker rows (.npy [speakers, 64], e.g. the acoustic model's) instead of learned ones")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--schedule", choices=("steps", "time"), default="steps",
                    help="cosine LR decay over --steps, or over --max-minutes of wall time")
    ap.add_argument("--max-minutes", type=float, default=0.0, help="stop (saving last.pt) after this many minutes; 0 = no limit")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--valid-every", type=int, default=2000)
    ap.add_argument("--valid-utts", type=int, default=40)
    ap.add_argument("--save-every", type=int, default=1000)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from a weights-only checkpoint (e.g. checkpoints/myna-en/vocoder-small.pt, fp16 is "
                         "fine) with fresh optimizers and --init-step as the schedule position; ignored with --resume")
    ap.add_argument("--init-step", type=int, default=0, help="schedule step to start at with --init")
    args = ap.parse_args(argv)
    if args.schedule == "time" and not args.max_minutes:
        ap.error("--schedule time needs --max-minutes")
    return args


def load_clips(args: argparse.Namespace) -> tuple[Clips, Clips]:
    """(train, valid) clips from ``--pack`` or ``--features``/``--corpus``; with ``--gta``, teacher-forced mels."""
    if args.pack is not None:
        speakers, splits = read_pack(args.pack)
        train, valid = splits["train"], splits["valid"]
    else:
        from voice.features import read_index

        speakers = json.loads((args.features / "speakers.json").read_text())["speakers"]
        rows = read_index(args.features)
        train, valid = (from_features(args.features, args.corpus, [r for r in rows if r["split"] == split], speakers,
                                      with_alignment=args.gta is not None) for split in ("train", "valid"))
    # A training utterance must hold at least one whole window.
    train = train.subset([r for r in train.rows if r["frames"] > args.segment + 1])
    if not len(valid):
        print("no valid split in the data: validating on two training utterances", flush=True)
        valid = train.subset(train.rows[:2])
    if args.gta is not None:
        from voice.acoustic import load_checkpoint

        acoustic, acoustic_speakers, _ = load_checkpoint(args.gta)
        if acoustic_speakers != list(speakers):
            raise SystemExit(f"--gta {args.gta}: trained on speakers {acoustic_speakers}, the data has {speakers}")
        t0 = time.time()
        # Every clip is loaded and converted up front: the training loop then only slices arrays.
        clips = train.all() + valid.all()
        teacher_forced_mels(acoustic, clips, args.device)
        print(f"teacher-forced mels for {len(clips)} utterances in {time.time() - t0:.1f} s", flush=True)
    return train, valid


def main(argv: list[str] | None = None) -> int:
    """Train; return 0."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    train, valid = load_clips(args)
    speakers = train.speakers
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed window shapes: pick each conv's fastest kernel once

    last = args.out / "last.pt"
    state = torch.load(last, map_location="cpu", weights_only=False) if args.resume and last.exists() else None
    init = torch.load(args.init, map_location="cpu", weights_only=True) if args.init and state is None else None
    cfg = VocoderConfig.from_dict((state or init)["config"]) if (state or init) else TIERS[args.tier]
    model = Vocoder(cfg)
    table = torch.nn.Parameter(torch.randn(len(speakers), cfg.speaker_dim) * 0.3)
    if args.speaker_table is not None:
        rows_np = np.load(args.speaker_table).astype(np.float32)
        if rows_np.shape != (len(speakers), cfg.speaker_dim):
            raise SystemExit(f"--speaker-table shape {rows_np.shape}, expected {(len(speakers), cfg.speaker_dim)}")
        table = torch.nn.Parameter(torch.from_numpy(rows_np), requires_grad=False)
    disc = Discriminators(args.disc_channels)
    model.to(device); disc.to(device)
    table = torch.nn.Parameter(table.detach().to(device), requires_grad=table.requires_grad)
    params = list(model.parameters()) + ([table] if table.requires_grad else [])
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.8, 0.99), weight_decay=0.01)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=args.lr, betas=(0.8, 0.99), weight_decay=0.01)
    history: dict[str, Any] = {"train": [], "valid": [], "seconds": 0.0}
    step, best = 0, float("inf")
    if state is not None:
        model.load_state_dict(state["model"]); disc.load_state_dict(state["disc"])
        with torch.no_grad():
            table.copy_(state["speaker_table"])
        opt.load_state_dict(state["opt"]); opt_d.load_state_dict(state["opt_d"])
        step, history, best = state["step"], state["history"], state["best"]
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed at step {step}, best valid mel L1 {best:.4f}", flush=True)
    elif init is not None:
        if list(init["speakers"]) != list(speakers):
            raise SystemExit(f"{args.init}: trained on speakers {init['speakers']}, features have {speakers}")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init["model"].items()})
        with torch.no_grad():
            table.copy_(torch.as_tensor(init["speaker_table"]).float())
        if "disc" in init:  # a GAN fine-tune keeps its discriminators' experience
            disc.load_state_dict({k: v.float() for k, v in init["disc"].items()})
        step = args.init_step
        print(f"initialised from {args.init} at schedule step {step}"
              f"{' with its discriminators' if 'disc' in init else ''}", flush=True)
    t_start = time.time() - history["seconds"]

    def lr_at(s: int) -> float:
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        if args.schedule == "time":  # a time-boxed run (a lent GPU) decays over its budget, whatever its speed
            p = min(1.0, (time.time() - t_start) / (60.0 * args.max_minutes))
        else:
            p = min(1.0, (s - args.warmup) / max(1, args.steps - args.warmup))
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))  # cosine to 10 %

    def save() -> None:
        history["seconds"] = time.time() - t_start
        checkpoint_io.save({"config": cfg.to_dict(), "model": model.state_dict(), "speaker_table": table.detach(),
                            "disc": disc.state_dict(), "opt": opt.state_dict(), "opt_d": opt_d.state_dict(),
                            "step": step, "history": history, "best": best, "speakers": speakers,
                            "rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
                            "args": {k: str(v) for k, v in vars(args).items()}}, last)
        (args.out / "history.json").write_text(json.dumps(history))
        plot(history, args.out / "curves.png")

    print(f"config {cfg.to_dict()} receptive field ±{cfg.receptive_frames} frames", flush=True)
    print(f"vocoder params {count_params(model)}, discriminator params {count_params(disc)}; {len(speakers)} speakers; "
          f"train {len(train)} utterances ({sum(r['seconds'] for r in train.rows) / 3600:.2f} h), valid {len(valid)}; "
          f"batch {args.batch} × {args.segment} frames, {args.threads} threads, {device}"
          f"{f', teacher-forced mels from {args.gta}' if args.gta else ''}", flush=True)
    # `kill PID` (SIGTERM) stops like Ctrl-C: last.pt and final.pt are written before exiting.
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    model.train()
    running: list[dict[str, float]] = []
    t_log = time.time()
    stop_reason = "done"
    try:
        while step < args.steps:
            if args.max_minutes and (time.time() - t_start) / 60 >= args.max_minutes:
                stop_reason = "time budget reached"
                break
            lr = lr_at(step)
            for o in (opt, opt_d):
                for g in o.param_groups:
                    g["lr"] = lr
            mel, audio, spk = (t.to(device, non_blocking=True) for t in batch(train, args.batch, args.segment, rng))
            log_mag, px, py = model(mel, table[spk])
            fake = istft(spectrum(log_mag, px, py), cfg)
            stft_l, mel_l = mr_stft_loss(fake, audio), mel_l1_loss(fake, audio)
            loss = stft_l + args.mel_weight * mel_l + args.phase_weight * phase_norm_loss(px, py)
            logged = {"mr_stft": stft_l.item(), "mel": mel_l.item()}
            if args.adv_start and step >= args.adv_start:
                loss_d = discriminator_loss(disc(audio), disc(fake.detach()))
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                with torch.no_grad():
                    real_out = disc(audio)
                # The generator's backward needs no discriminator weight gradients (a third of its cost).
                disc.requires_grad_(False)
                adv, fm = generator_losses(real_out, disc(fake))
                disc.requires_grad_(True)
                loss = loss + args.adv_weight * adv + args.fm_weight * fm
                logged.update(d=loss_d.item(), adv=adv.item(), fm=fm.item())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            step += 1
            logged["loss"] = loss.item()
            running.append(logged)
            if step % args.log_every == 0:
                mean = {k: float(np.mean([r[k] for r in running if k in r])) for k in running[-1]}
                history["train"].append({"step": step, **mean})
                rate = (time.time() - t_log) / len(running)
                print(f"step {step} " + " ".join(f"{k} {v:.4f}" for k, v in mean.items())
                      + f" lr {lr:.2e} {rate:.3f} s/step elapsed {(time.time() - t_start) / 60:.1f} min", flush=True)
                running, t_log = [], time.time()
            if step % args.valid_every == 0 or step == args.steps:
                v = validate(model, table, valid, args.valid_utts, args.out / "samples", step)
                history["valid"].append({"step": step, **v})
                improved = v["mel_l1"] < best
                if improved:
                    best = v["mel_l1"]
                    checkpoint_io.save(weights_only(model, table, speakers, step, v), args.out / "best.pt")
                print(f"== step {step}: valid mel L1 {v['mel_l1']:.4f} MR-STFT {v['mr_stft']:.4f}"
                      f"{' *best*' if improved else ''}", flush=True)
                t_log = time.time()
            if step % args.save_every == 0:
                save()
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    save()
    checkpoint_io.save(weights_only(model, table, speakers, step, history["valid"][-1] if history["valid"] else None),
                       args.out / "final.pt")
    print(f"{stop_reason} at step {step}, {(time.time() - t_start) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
