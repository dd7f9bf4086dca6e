"""Experiment: does a clone speak more clearly when each graph gets its own speaker vector (float torch only)?

    python tools/experiments/clone_split_vectors.py --adapter out/clones/shipped/librivox-reader.npz \
        --combo v,v,v --combo joe,v,v ... [--fit-timbre]

A combo names the vector fed to the encoder (durations, pitch, energy: rhythm and pronunciation), the
decoder (mel: timbre) and the vocoder: ``v`` is the clone's fitted vector, ``joe`` (or any base speaker)
its table row, ``mix:A`` a blend ``A·v + (1−A)·joe``, ``t`` a decoder vector fitted with the encoder fed
the base voice (``--fit-timbre``).  Each combo speaks the evaluation sentences; the figures are the
clone report's (resemblyzer similarity to the real recordings, Whisper tiny.en corpus WER).
The shipped graphs already take ``speaker`` per graph, so a split adapter needs no graph change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "daemon")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from voice import clone  # noqa: E402
from myna.inference.acoustic import MAX_FRAMES_PER_PHONEME  # noqa: E402
from voice.acoustic import load_checkpoint, losses, speaker_table  # noqa: E402
from voice.export_vocoder import load_checkpoint as load_vocoder  # noqa: E402
from voice.vocoder import synthesize as vocoder_synthesize  # noqa: E402
from workbench import metrics  # noqa: E402

SENTENCES = Path("/work/shared/eval/sentences.txt")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


@torch.no_grad()
def speak(voice: clone.FloatVoice, ids: np.ndarray, enc: np.ndarray, dec: np.ndarray, voc: np.ndarray) -> np.ndarray:
    """FloatVoice.speak with one vector per graph."""
    model = voice.acoustic
    s = {k: torch.from_numpy(np.asarray(v, np.float32).reshape(1, -1)) for k, v in (("e", enc), ("d", dec), ("v", voc))}
    out = model.encode(torch.from_numpy(np.asarray(ids, np.int64))[None], s["e"])
    dur = np.clip(np.rint(np.exp(out.log_duration[0].double().numpy())), 0, MAX_FRAMES_PER_PHONEME).astype(np.int64)
    index = torch.from_numpy(np.repeat(np.arange(dur.size), np.maximum(dur, 0)))
    c = model.cfg.decoder_context
    mel = model.decode(F.pad(out.hidden[0, index][None], (0, 0, c, c)), F.pad(out.pitch[0, index][None, :, None], (0, 0, c, c)), s["d"])
    audio = vocoder_synthesize(voice.vocoder, mel[:, c : c + index.numel()], s["v"])[0].numpy()
    return np.clip(audio, -1, 1).astype(np.float32)


def fit_timbre(model, clips, enc_row: np.ndarray, dec_init: np.ndarray, steps: int = 300, lr: float = 0.01) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A decoder-only vector: teacher-forced mel loss with the encoder conditioned on ``enc_row``."""
    train, held = clone.holdout_split(clips)
    enc_t = torch.from_numpy(enc_row.astype(np.float32))
    dec_p = torch.nn.Parameter(torch.from_numpy(dec_init.astype(np.float32).copy()))
    original_decode = model.decode

    def encode_with(ids, spk, *rest):  # type: ignore[no-untyped-def]
        return original_encode(ids, enc_t.expand(spk.shape[0], -1), *rest)

    def decode_with(frames, pitch, spk):  # type: ignore[no-untyped-def]
        return original_decode(frames, pitch, dec_p.expand(spk.shape[0], -1))

    original_encode = model.encode
    model.encode, model.decode = encode_with, decode_with
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    tb, hb = clone._batch(train, model), clone._batch(held, model)
    opt = torch.optim.Adam([dec_p], lr=lr)
    best, best_v, stale = float("inf"), dec_p.detach().clone(), 0
    for step in range(1, steps + 1):
        loss = losses(model, tb)["mel"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            with torch.no_grad():
                v = float(losses(model, hb)["mel"])
            if v < best:
                best, best_v, stale = v, dec_p.detach().clone(), 0
            else:
                stale += 1
            if stale >= 6:
                break
    model.encode, model.decode = original_encode, original_decode
    print(f"timbre vector: held-out mel {best:.4f} after {step} steps", flush=True)
    return best_v.numpy()


def main(argv: list[str] | None = None) -> int:
    """Render every combo and print similarity and WER."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acoustic", type=Path, default=Path("out/acoustic-small-ft/best.pt"))
    ap.add_argument("--vocoder", type=Path, default=Path("out/vocoder-gta/small/final.pt"))
    ap.add_argument("--aligner", type=Path, default=Path("out/aligner/best.pt"))
    ap.add_argument("--adapter", type=Path, required=True)
    ap.add_argument("--base", default="joe")
    ap.add_argument("--combo", action="append", required=True, help="ENC,DEC,VOC")
    ap.add_argument("--fit-timbre", action="store_true")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, names, _ = load_checkpoint(args.acoustic)
    table = speaker_table(model)
    vocoder, vtable, vnames = load_vocoder(args.vocoder)
    voice = clone.FloatVoice(model, names, vocoder, vtable, vnames, table)
    v = np.load(args.adapter)["speaker"].reshape(-1)
    vectors = {"v": v, **{n: table[i] for i, n in enumerate(names)}}
    frontend = clone.TextFrontend()
    texts = clone.read_transcripts(LIBRIVOX)
    recs = [clone.read_recording(p, texts.get(p.stem)) for p in clone.find_audio(LIBRIVOX)]
    targets = [(r.audio, clone.AUDIO.sample_rate) for r in recs]
    if args.fit_timbre:
        from voice import aligner as aligner_mod

        aligner = aligner_mod.load_model(args.aligner)
        clips = []
        for r in recs:
            words, ids = frontend(r.text, r.path.name)
            c = clone.make_clip(r.name, " ".join(words), ids, r.audio)
            c.durations = clone.align(aligner, c)
            clips.extend(clone.split_long(c, words, aligner))
        vectors["t"] = fit_timbre(model, clips, vectors[args.base], v)
    sentences = [s for s in SENTENCES.read_text().splitlines() if s.strip()][: args.limit]
    ids = [frontend(s, f"sentence {i}")[1] for i, s in enumerate(sentences)]
    results = []
    for combo in args.combo:
        parts = []
        for name in combo.split(","):
            if name.startswith("mix:"):
                a = float(name[4:])
                parts.append(a * v + (1 - a) * vectors[args.base])
            else:
                parts.append(vectors[name])
        t0 = time.time()
        audio = [speak(voice, x, *parts) for x in ids]
        sr = clone.AUDIO.sample_rate
        sim = metrics.speaker_similarity([(a, sr) for a in audio], targets)
        hyps = [metrics.transcribe(a, sr, threads=1) for a in audio]
        wer = clone._corpus_wer(sentences, hyps)
        row = {"combo": combo, "similarity": sim, "wer": wer, "seconds": time.time() - t0,
               "errors": [(s, h) for s, h in zip(sentences, hyps) if metrics.wer(s, h) > 0]}
        results.append(row)
        print(f"{combo:24s} similarity {sim:.3f}  WER {100 * wer:.1f} %  ({row['seconds']:.0f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
