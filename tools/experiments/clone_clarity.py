"""Experiment: can a clone keep its likeness and speak as clearly as the base voice? (development sentences only)

    python tools/experiments/clone_clarity.py --out out/eval/clarity --variant span hull half kfold runtime runtime-energy \
        -- --recordings /usr/share/pocketsphinx/test/data/librivox --voice-id librivox-reader \
           --acoustic out/acoustic-small-ft/best.pt --vocoder out/vocoder-gta/small/final.pt \
           --aligner out/aligner/best.pt --base-pack models/myna-en --threads 1
    python tools/experiments/clone_clarity.py --out out/eval/band8k --narrowband 8000 --variant span fullband \
        -- --recordings /usr/share/pocketsphinx/test/data/librivox --voice-id librivox-reader \
           --acoustic out/acoustic-small-ft/best.pt --vocoder out/vocoder-gta/small/final.pt \
           --aligner out/aligner/best.pt --base-pack models/myna-en --threads 1
    python tools/experiments/clone_clarity.py --out out/eval/clarity --critic piper=out/eval/joe \
        joe=out/eval/wholechunk/joe-small clone=out/eval/wholechunk/clone-small-wavs
    python tools/experiments/clone_clarity.py --out out/eval/clarity --onsets piper=out/eval/joe \
        joe=out/eval/wholechunk/joe-small clone=out/eval/wholechunk/clone-small-wavs

The arguments after ``--`` go to ``clone_voice.py``.  Variants of the decoder (timbre) vector:

- ``span``: ``clone_voice.py`` as shipped (vectors in the affine span of the base rows);
- ``hull``: the vectors kept inside the rows' convex hull (softmax weights: a mix, never past a row);
- ``half``: the ``span`` fit moved half-way back to the base voice's row;
- ``kfold``: the mean of one fit per held-out clip;
- ``fullband``: the ``span`` fit on every mel bin, even those above the recordings' band edge;
- ``runtime``: the timbre fitted under the base voice's predicted energy and pitch (times the pitch
  scale), as a device's decoder hears them, instead of the recordings' own; ``runtime-energy``: energy only.

Each adapter speaks ``dev.txt`` (20 prompts and 20 prose lines of the joe corpus, none from
``../shared/eval/sentences.txt``) through the device runtime with ``evaluate.py`` (Whisper WER, resemblyzer
similarity to the recordings).  ``--critic`` scores rendered sentence folders (``001.wav`` … of the
evaluation sentences) with the aligner's forward-sum loss, to see whether it ranks clarity as Whisper does;
``--onsets`` measures how each rendering starts (Whisper misses the clone's first words most);
``--narrowband HZ`` clones from the recordings resampled to HZ (similarity is then scored against those).
Nothing here is a product path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "daemon")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from voice import clone  # noqa: E402

import clone_voice  # noqa: E402
import evaluate  # noqa: E402

TOOLS = Path(__file__).resolve().parents[1]
CORPUS_METADATA = Path("/work/corpus-run/joe/metadata.jsonl")


def dev_sentences(metadata: Path) -> list[str]:
    """40 corpus lines: every 67th prompt and every 65th prose line (20 each), a fixed choice."""
    rows = [json.loads(line) for line in metadata.read_text(encoding="utf-8").splitlines() if line.strip()]
    pick = [r["written"] for r in rows if r["source"] == "prompts"][::67][:20]
    pick += [r["written"] for r in rows if r["source"] == "prose"][::65][:20]
    return pick


class HullRow(nn.Module):
    """A one-row speaker table whose row stays ``softmax(logits) @ table`` (inside the rows' convex hull)."""

    def __init__(self, table: np.ndarray, start: np.ndarray) -> None:
        super().__init__()
        from scipy.optimize import nnls

        t = np.asarray(table, np.float64)
        # Non-negative weights summing to one nearest the start (the sum as one heavily weighted equation).
        w, _ = nnls(np.vstack([t.T, np.full((1, t.shape[0]), 100.0)]), np.concatenate([np.ravel(start), [100.0]]))
        self.register_buffer("table", torch.as_tensor(t, dtype=torch.float32))
        self.logits = nn.Parameter(torch.log(torch.as_tensor(w / max(w.sum(), 1e-12), dtype=torch.float32).clamp(min=1e-3)))

    @property
    def weight(self) -> torch.Tensor:
        return (torch.softmax(self.logits, 0) @ self.table)[None]

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.weight.expand(rows.shape[0], -1)


def fit(argv: Sequence[str], out: Path, voice_id: str) -> dict[str, np.ndarray]:
    assert clone_voice.main([*argv, "--out", str(out), "--no-report", "--no-progress"]) == 0
    with np.load(out / f"{voice_id}.npz") as z:
        return {k: z[k] for k in z.files}


def variant(name: str, argv: Sequence[str], out: Path, voice_id: str, base_row: np.ndarray) -> Path:
    """Write the variant's adapter under ``out`` and return its path."""
    path = out / f"{name}.npz"
    if name == "span":
        adapter = fit(argv, out / "span", voice_id)
    elif name == "fullband":
        # Every mel bin fitted, as before clone.recorded_band: no band edge is found, no sample rate caps one.
        saved = clone.BAND_GONE_DB, clone.native_band
        clone.BAND_GONE_DB, clone.native_band = -math.inf, lambda rate: math.inf  # type: ignore[assignment]
        try:
            adapter = fit(argv, out / "fullband", voice_id)
        finally:
            clone.BAND_GONE_DB, clone.native_band = saved
    elif name in ("runtime", "runtime-energy"):
        # The timbre fitted under what the decoder hears on a device: the base voice's predicted energy
        # (and, for ``runtime``, its predicted pitch times the pitch scale) instead of the recordings' own.
        saved_fit, saved_batch = clone.fit_timbre, clone._batch

        def fit_timbre(model: Any, table: Any, encoder_row: Any, start: Any, train: Any, held: Any, *rest: Any, **kw: Any) -> Any:
            matched = clone.match_pitch(model, encoder_row, [*train, *held])
            scale = matched[0] if matched else 1.0
            row = torch.as_tensor(np.asarray(encoder_row, np.float32)).reshape(1, -1)

            def batch(clips: Sequence[Any], m: Any) -> Any:
                b = saved_batch(clips, m)
                with torch.no_grad():
                    enc = clone.AcousticModel.encode(m, b.ids, row.expand(len(clips), -1))
                mask = b.id_mask.squeeze(-1)
                swap = {"energy": enc.energy * mask}
                if name == "runtime":
                    swap["pitch"] = enc.pitch * scale * mask
                return b._replace(**swap)

            clone._batch = batch  # type: ignore[assignment]
            try:
                return saved_fit(model, table, encoder_row, start, train, held, *rest, **kw)
            finally:
                clone._batch = saved_batch  # type: ignore[assignment]

        clone.fit_timbre = fit_timbre  # type: ignore[assignment]
        try:
            adapter = fit(argv, out / name, voice_id)
        finally:
            clone.fit_timbre = saved_fit  # type: ignore[assignment]
    elif name == "hull":
        # _descend builds ``_SpanRow(*table_span(table), start)``: with these two swapped it builds a HullRow.
        saved = clone.table_span, clone._SpanRow
        clone.table_span, clone._SpanRow = (lambda table: (table,)), HullRow  # type: ignore[assignment]
        try:
            adapter = fit(argv, out / "hull", voice_id)
        finally:
            clone.table_span, clone._SpanRow = saved
    elif name == "half":
        adapter = dict(np.load(out / "span.npz")) if (out / "span.npz").exists() else fit(argv, out / "span", voice_id)
        adapter["decoder.speaker"] = (base_row + 0.5 * (adapter["decoder.speaker"] - base_row)).astype(np.float32)
    elif name == "kfold":
        folds, saved = [], clone.holdout_split
        for k in range(5):
            def one_out(clips: Sequence[Any], fraction: float = 0.2, k: int = k) -> tuple[list[Any], list[Any]]:
                order = sorted(clips, key=lambda c: hashlib.sha1(c.name.encode()).hexdigest())
                held = order[k % len(order)].name
                return [c for c in clips if c.name != held], [c for c in clips if c.name == held]
            clone.holdout_split = one_out
            try:
                folds.append(fit(argv, out / f"fold{k}", voice_id))
            finally:
                clone.holdout_split = saved
        adapter = {n: np.mean([f[n] for f in folds], axis=0).astype(np.float32) for n in folds[0]}
    else:
        raise SystemExit(f"unknown variant {name!r}")
    np.savez(path, **adapter)
    return path


def speak_and_score(adapter: Path | None, sentences: Path, recordings: Path, out: Path, name: str) -> dict[str, float]:
    cmd = [sys.executable, str(TOOLS / "evaluate.py"), "--myna-voice", "joe", "--tier", "small", "--sentences", str(sentences),
           "--no-dnsmos", "--out", str(out), "--name", name, "--plot", "0"]
    cmd += ["--adapter", str(adapter), "--speaker-reference", str(recordings)] if adapter else []
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = json.loads((out / f"{name}.json").read_text())["summary"]
    return {"wer": summary["wer_corpus"], "similarity": summary.get("speaker_similarity")}


def critic(folders: Sequence[str], aligner_path: Path) -> None:
    """Mean aligner forward-sum loss of each ``label=folder`` of rendered evaluation sentences."""
    import soundfile as sf
    from voice import aligner as A
    from voice.audio import AUDIO, log_mel

    model = A.load_model(aligner_path).eval()
    frontend = clone.TextFrontend()
    texts = evaluate.read_sentences(evaluate.DEFAULT_SENTENCES)
    for label, folder in (f.split("=", 1) for f in folders):
        losses = []
        for i, text in enumerate(texts):
            wav = Path(folder) / evaluate.wav_name(i + 1)
            if not wav.exists():
                continue
            audio, sr = sf.read(wav, dtype="float32")
            assert sr == AUDIO.sample_rate, wav
            mel = torch.from_numpy(A.normalise_mel(log_mel(audio)))[None]
            _, ids = frontend(text, wav.name)
            n, frames = torch.tensor([ids.size]), torch.tensor([mel.shape[1]])
            prior = A.beta_binomial_log_prior(ids.size, mel.shape[1], model.cfg.prior_scale)[None]
            with torch.no_grad():
                logp = model(torch.from_numpy(ids.astype(np.int64))[None], n, mel, prior)
                losses.append(float(A.forward_sum_loss(logp, n, frames, model.cfg.blank_logprob)))
        print(f"{label}: aligner forward-sum loss {np.mean(losses):.3f} over {len(losses)} sentences", flush=True)


def onsets(folders: Sequence[str]) -> None:
    """How the renderings in each ``label=folder`` start, in 5 ms frames of level relative to the 95th percentile:
    the time from the first frame above −20 dB to the first above −10 dB, the first 50 ms's mean level, and
    the level of the leading silence (its first 40 ms)."""
    import soundfile as sf

    for label, folder in (f.split("=", 1) for f in folders):
        rows = []
        for wav in sorted(Path(folder).glob("[0-9][0-9][0-9].wav")):
            audio, sr = sf.read(wav)
            hop = int(sr * 0.005)
            n = len(audio) // hop
            level = 10 * np.log10((audio[: n * hop].reshape(n, hop) ** 2).mean(1) + 1e-12)
            peak = np.percentile(level, 95)
            start = int(np.argmax(level > peak - 20))
            rows.append((5 * int(np.argmax(level[start:] > peak - 10)), level[start : start + 10].mean() - peak,
                         np.median(level[:8]) - peak))
        r = np.array(rows)
        print(f"{label}: {len(r)} files; rise {r[:, 0].mean():.0f} ms, first 50 ms {r[:, 1].mean():.1f} dB, "
              f"leading silence {r[:, 2].mean():.1f} dB (re the 95th-percentile level)", flush=True)


def narrowband(recordings: Path, rate: int, out: Path) -> Path:
    """A copy of ``recordings`` as if recorded at ``rate`` Hz (resampled down; transcripts copied)."""
    import librosa
    import shutil

    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    for path in recordings.iterdir():
        if path.suffix.lower() in clone.AUDIO_EXTENSIONS:
            audio, sr = clone.read_audio_file(path)
            sf.write(out / f"{path.stem}.wav", librosa.resample(audio.mean(axis=1), orig_sr=sr, target_sr=rate), rate,
                     subtype="PCM_16")
        elif path.is_file():
            shutil.copy(path, out / path.name)
    return out


def main() -> int:
    argv = sys.argv[1:]
    ours, theirs = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--variant", nargs="*", default=[])
    ap.add_argument("--critic", nargs="*", default=[], metavar="LABEL=DIR")
    ap.add_argument("--onsets", nargs="*", default=[], metavar="LABEL=DIR")
    ap.add_argument("--aligner", type=Path, default=Path("out/aligner/best.pt"))
    ap.add_argument("--metadata", type=Path, default=CORPUS_METADATA)
    ap.add_argument("--narrowband", type=int, default=0, metavar="HZ",
                    help="clone from the recordings resampled to this rate (a phone line: 8000)")
    args = ap.parse_args(ours)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.critic:
        critic(args.critic, args.aligner)
    if args.onsets:
        onsets(args.onsets)
    if not args.variant:
        return 0
    sentences = args.out / "dev.txt"
    sentences.write_text("\n".join(dev_sentences(args.metadata)) + "\n", encoding="utf-8")
    parsed = clone_voice.parse_args([*theirs, "--out", str(args.out)])
    if args.narrowband:
        where = theirs.index("--recordings") + 1
        theirs[where] = str(narrowband(parsed.recordings, args.narrowband, args.out / f"recordings-{args.narrowband}"))
        parsed = clone_voice.parse_args([*theirs, "--out", str(args.out)])
    from myna.voices import VoicePack

    base_row = VoicePack.load(parsed.base_pack).adapters["joe"]["speaker"]
    joe = speak_and_score(None, sentences, parsed.recordings, args.out, "dev-joe")
    print(f"joe: WER {joe['wer']:.3f}", flush=True)
    for name in args.variant:
        scores = speak_and_score(variant(name, theirs, args.out, parsed.voice_id, base_row), sentences,
                                 parsed.recordings, args.out, f"dev-{name}")
        print(f"{name}: similarity {scores['similarity']:.3f}, WER {scores['wer']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
