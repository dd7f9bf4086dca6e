"""Vocoder training data: the compact pack, teacher-forced (ground-truth-aligned) mels, and a run from a pack."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sf = pytest.importorskip("soundfile")
librosa = pytest.importorskip("librosa")

from voice.acoustic import AcousticConfig, AcousticModel  # noqa: E402
from voice.audio import AUDIO, log_mel, mel_basis  # noqa: E402
from voice.vocoder_data import (  # noqa: E402
    choose_rows,
    from_features,
    read_pack,
    teacher_forced_mels,
    write_pack,
)

SR = AUDIO.sample_rate
SPEAKERS = ["joe", "other"]


def _corpus(root: Path, gain: float = 0.7) -> tuple[Path, Path, list[dict]]:
    """Two speakers × three utterances with audio, features and aligner durations (the real layout)."""
    rng = np.random.default_rng(0)
    corpus, features = root / "corpus", root / "features"
    rows = []
    for s, speaker in enumerate(SPEAKERS):
        (corpus / speaker / "wavs").mkdir(parents=True)
        (features / speaker).mkdir(parents=True)
        for u in range(3):
            n = int((0.9 + 0.3 * u) * SR)
            t = np.arange(n) / SR
            raw = 0.3 * np.sin(2 * np.pi * (120 + 60 * s) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.normal(size=n)
            sf.write(str(corpus / speaker / "wavs" / f"u{u}.wav"), raw, SR, subtype="PCM_16")
            audio = (sf.read(str(corpus / speaker / "wavs" / f"u{u}.wav"), dtype="float64")[0] * gain).astype(np.float32)
            mel = log_mel(audio)
            frames = mel.shape[0]
            ids = rng.integers(1, 40, size=7).astype(np.int32)
            cuts = np.sort(rng.choice(np.arange(1, frames), size=6, replace=False))
            durations = np.diff(np.concatenate([[0], cuts, [frames]])).astype(np.int64)
            f0 = np.where(np.arange(frames) % 5 == 0, 0.0, 120.0 + 60 * s).astype(np.float32)
            energy = mel.mean(axis=1).astype(np.float32)
            np.savez(features / speaker / f"u{u}.npz", ids=ids, mel=mel, f0=f0, energy=energy, gain=np.float32(gain))
            np.save(features / speaker / f"u{u}.dur.npy", durations)
            rows.append({"speaker": speaker, "id": f"u{u}", "frames": frames, "n_ids": 7, "seconds": n / SR,
                         "split": "valid" if u == 2 else "train"})
    (features / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (features / "speakers.json").write_text(json.dumps({"speakers": SPEAKERS}))
    return corpus, features, rows


def _acoustic(path: Path) -> AcousticModel:
    torch.manual_seed(0)
    cfg = AcousticConfig(n_speakers=len(SPEAKERS), hidden=32, ffn=64, dropout=0.0)
    model = AcousticModel(cfg).eval()
    torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "speakers": SPEAKERS}, path)
    return model


def test_the_numpy_mel_filterbank_is_librosas_slaney_filterbank() -> None:
    expected = librosa.filters.mel(sr=SR, n_fft=AUDIO.n_fft, n_mels=AUDIO.n_mels, fmin=AUDIO.fmin, fmax=AUDIO.fmax)
    np.testing.assert_allclose(mel_basis(), expected, atol=1e-7)


def test_a_pack_gives_back_the_features_audio_mels_and_alignments_exactly(tmp_path: Path) -> None:
    corpus, features, rows = _corpus(tmp_path)
    summary = write_pack(tmp_path / "pack.npz", features, corpus, rows, SPEAKERS, progress=False)
    assert summary["utterances"] == 6
    speakers, splits = read_pack(tmp_path / "pack.npz")
    assert speakers == SPEAKERS and len(splits["train"]) == 4 and len(splits["valid"]) == 2
    direct = from_features(features, corpus, [r for r in rows if r["split"] == "train"], SPEAKERS, with_alignment=True)
    for i in range(4):
        packed, original = splits["train"].clip(i), direct.clip(i)
        assert packed.name == original.name and packed.speaker == original.speaker
        np.testing.assert_array_equal(packed.audio, original.audio)
        np.testing.assert_allclose(packed.mel, original.mel, atol=1e-5)
        for field in ("ids", "durations", "f0", "energy"):
            np.testing.assert_array_equal(getattr(packed.alignment, field), getattr(original.alignment, field))


def test_a_truncated_pack_is_refused(tmp_path: Path) -> None:
    corpus, features, rows = _corpus(tmp_path)
    write_pack(tmp_path / "pack.npz", features, corpus, rows, SPEAKERS, progress=False)
    with np.load(tmp_path / "pack.npz") as z:
        arrays = {k: z[k] for k in z}
    arrays["f0"] = arrays["f0"][:-3]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="do not match"):
        read_pack(tmp_path / "bad.npz")


def test_rows_are_chosen_by_minutes_per_speaker_plus_validation_rows() -> None:
    rows = [{"speaker": s, "id": f"{s}{i}", "split": "train", "seconds": 6.0, "frames": 500} for s in ("a", "b") for i in range(40)]
    rows += [{"speaker": "a", "id": f"v{i}", "split": "valid", "seconds": 6.0, "frames": 500} for i in range(5)]
    chosen = choose_rows(rows, {"a": 1.0, "*": 0.25}, {"a": 3})
    assert sum(r["seconds"] for r in chosen if r["speaker"] == "a" and r["split"] == "train") == 60.0
    assert sum(r["seconds"] for r in chosen if r["speaker"] == "b") == 18.0  # 15 s reached on the third clip
    assert [r["id"] for r in chosen if r["split"] == "valid"] == ["v0", "v1", "v2"]


def test_teacher_forced_mels_are_the_acoustic_models_own_output_whatever_the_batch(tmp_path: Path) -> None:
    corpus, features, rows = _corpus(tmp_path)
    model = _acoustic(tmp_path / "acoustic.pt")
    clips = from_features(features, corpus, rows, SPEAKERS, with_alignment=True).all()
    truth = [c.mel.copy() for c in clips]
    one_by_one = [c for c in from_features(features, corpus, rows, SPEAKERS, with_alignment=True).all()]
    teacher_forced_mels(model, clips, batch=4)
    for clip in one_by_one:
        teacher_forced_mels(model, [clip], batch=1)
    for clip, alone, real in zip(clips, one_by_one, truth):
        assert clip.mel.shape == real.shape and clip.mel.dtype == np.float32
        np.testing.assert_allclose(clip.mel, alone.mel, atol=1e-4)
        assert np.abs(clip.mel - real).mean() > 0.1  # an untrained model: clearly not the true mel


def test_a_time_boxed_gan_fine_tune_from_a_pack_runs_on_teacher_forced_mels(tmp_path: Path) -> None:
    import slim_checkpoint
    import train_vocoder

    corpus, features, rows = _corpus(tmp_path)
    write_pack(tmp_path / "pack.npz", features, corpus, rows, SPEAKERS, progress=False)
    _acoustic(tmp_path / "acoustic.pt")
    first = tmp_path / "first"
    base = ["--tier", "tiny", "--pack", str(tmp_path / "pack.npz"), "--batch", "2", "--segment", "32",
            "--warmup", "1", "--log-every", "2", "--valid-every", "4", "--valid-utts", "1", "--threads", "1"]
    assert train_vocoder.main(base + ["--out", str(first), "--steps", "4", "--adv-start", "2"]) == 0
    assert slim_checkpoint.main([str(first / "last.pt"), str(tmp_path / "init.pt"), "--keep-disc"]) == 0
    assert "disc" in torch.load(tmp_path / "init.pt", weights_only=True)
    second = tmp_path / "second"
    assert train_vocoder.main(base + ["--out", str(second), "--init", str(tmp_path / "init.pt"), "--gta",
                                      str(tmp_path / "acoustic.pt"), "--adv-start", "1", "--steps", "1000000",
                                      "--schedule", "time", "--max-minutes", "0.05"]) == 0
    history = json.loads((second / "history.json").read_text())
    assert history["train"] and "adv" in history["train"][-1]
    assert (second / "final.pt").is_file() and history["seconds"] < 30


def test_a_time_schedule_needs_a_time_budget() -> None:
    import train_vocoder

    with pytest.raises(SystemExit):
        train_vocoder.parse_args(["--schedule", "time"])


@pytest.mark.skipif(importlib.util.find_spec("speechmos") is None, reason="speechmos not installed (the 'train' extra)")
def test_eval_vocoder_scores_the_recordings_and_each_vocoder_on_true_and_teacher_forced_mels(tmp_path: Path) -> None:
    import eval_vocoder
    import train_vocoder

    corpus, features, rows = _corpus(tmp_path)
    _acoustic(tmp_path / "acoustic.pt")
    run = tmp_path / "run"
    assert train_vocoder.main(["--tier", "tiny", "--features", str(features), "--corpus", str(corpus), "--out", str(run),
                               "--batch", "2", "--segment", "32", "--steps", "2", "--threads", "1"]) == 0
    for extra in ([], ["--gta", str(tmp_path / "acoustic.pt")]):
        out = tmp_path / f"scores{len(extra)}.json"
        assert eval_vocoder.main(["--features", str(features), "--corpus", str(corpus), "--speaker", "joe",
                                  "--vocoder", f"v={run / 'final.pt'}", "--json", str(out)] + extra) == 0
        report = json.loads(out.read_text())
        assert report["utterances"] == 1 and set(report["results"]) == {"recordings", "v"}
        assert all(1.0 <= r["p808"] <= 5.0 for r in report["results"].values())
        assert ("teacher-forced" in report["input"]) == bool(extra)


def test_the_device_script_fine_tunes_both_tiers_and_returns_their_checkpoints(tmp_path: Path) -> None:
    """scripts/device-vocoder-gta.sh end to end on the CPU (the GPU run is the same command with DEVICE=cuda)."""
    import os
    import subprocess
    import sys

    import train_vocoder

    corpus, features, rows = _corpus(tmp_path)
    write_pack(tmp_path / "pack.npz", features, corpus, rows, SPEAKERS, progress=False)
    _acoustic(tmp_path / "acoustic.pt")
    assert train_vocoder.main(["--tier", "tiny", "--pack", str(tmp_path / "pack.npz"), "--out", str(tmp_path / "init"),
                               "--batch", "2", "--segment", "32", "--steps", "2", "--adv-start", "1", "--threads", "1"]) == 0
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DEVICE": "cpu", "PY": sys.executable, "MINUTES": "0.02", "CHECK_AFTER": "1", "BATCH": "2",
           "PACK": str(tmp_path / "pack.npz"), "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"),
           "SMALL_ACOUSTIC": str(tmp_path / "acoustic.pt"), "TINY_ACOUSTIC": str(tmp_path / "acoustic.pt"),
           "SMALL_INIT": str(tmp_path / "init" / "final.pt"), "TINY_INIT": str(tmp_path / "init" / "final.pt")}
    result = subprocess.run(["bash", "scripts/device-vocoder-gta.sh"], cwd=repo, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = tmp_path / "out"
    for tier in ("small", "tiny"):
        assert torch.load(out / f"{tier}-final.pt", weights_only=True)["step"] > 0
        assert "disc" in torch.load(out / f"{tier}-last-disc.pt", weights_only=True)
    assert (out / "logs.tar.gz").stat().st_size > 0
    # A run that dies while loading stops the script at the first check, with its log.
    env.update(SMALL_INIT=str(tmp_path / "missing.pt"), MINUTES="1", CHECK_AFTER="8", OUT=str(tmp_path / "out2"),
               WORK=str(tmp_path / "work2"))
    failed = subprocess.run(["bash", "scripts/device-vocoder-gta.sh"], cwd=repo, env=env, capture_output=True,
                            text=True, timeout=60)
    assert failed.returncode == 1 and "missing.pt" in failed.stdout
