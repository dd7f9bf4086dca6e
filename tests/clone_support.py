"""Test support for voice cloning: synthetic recordings, tiny base models and a features folder to pack them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

SPEAKERS = ["joe", "other"]
BASE_HZ = 120.0
TEXTS = ["hello there", "this is a test", "the cat sat on the mat", "good morning to you", "we like green apples"]


def speech(seconds: float, f0: float, sr: int, seed: int) -> np.ndarray:
    """Syllable-like harmonic bursts with gaps of near silence (so trimming, f0 and SNR have something to see)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 1.3 * t))) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None) ** 0.5
    audio = 0.2 * tone * envelope + 1e-4 * rng.normal(size=t.size)
    pad = np.zeros(int(0.3 * sr))
    return np.concatenate([pad, audio, pad])


def write_recordings(folder: Path, sr: int = 16000, stereo: bool = True, texts: bool = True, clip: bool = False,
                     noise: float = 0.0) -> Path:
    """Five takes of ``speech`` at 150–190 Hz in ``folder``, with a transcript each (``texts``)."""
    folder.mkdir(parents=True)
    for i, text in enumerate(TEXTS):
        audio = speech(1.4 + 0.2 * i, 150.0 + 10 * i, sr, i)
        if noise:
            audio = audio + noise * np.random.default_rng(100 + i).normal(size=audio.size)
        if clip:
            audio = np.clip(audio * 8.0, -1.0, 1.0)
        data = np.stack([audio, 0.9 * audio], axis=1) if stereo else audio
        sf.write(str(folder / f"take{i}.wav"), np.clip(data, -1, 1), sr, subtype="PCM_16")
        if texts:
            (folder / f"take{i}.txt").write_text(text + "\n")
    return folder


def make_base_models(root: Path) -> dict[str, Path]:
    """Tiny acoustic model, vocoder and aligner under ``root`` with trained-looking statistics (FiLMs that respond to
    the speaker); the base voice predicts about ``BASE_HZ`` on every phoneme, so a pitch match has a known answer."""
    import torch
    from voice.acoustic import AcousticConfig, AcousticModel
    from voice.aligner import Aligner, AlignerConfig
    from voice.vocoder import TIERS, Vocoder

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    acoustic = AcousticModel(AcousticConfig.for_tier("tiny", n_speakers=len(SPEAKERS), dropout=0.0),
                             mel_mean=[-6.0] * 80)
    vocoder = Vocoder(TIERS["tiny"])
    for model in (acoustic, vocoder):
        with torch.no_grad():
            for name, t in model.state_dict().items():
                if name.endswith("bn.running_var"):
                    t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
                elif name.endswith(("film.weight", "film.bias", "fc2.weight")):
                    t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
    with torch.no_grad():
        acoustic.pitch.out.weight.mul_(1e-4)  # not exactly constant, which the pack's INT8 check could not correlate
        acoustic.pitch.out.bias.fill_(BASE_HZ / 100.0)
    paths = {"acoustic": root / "acoustic.pt", "vocoder": root / "vocoder.pt", "aligner": root / "aligner.pt"}
    torch.save({"config": acoustic.cfg.to_dict(), "speakers": SPEAKERS, "model": acoustic.state_dict()}, paths["acoustic"])
    torch.save({"config": vocoder.cfg.to_dict(), "model": vocoder.state_dict(), "speakers": SPEAKERS,
                "speaker_table": torch.randn(len(SPEAKERS), 64, generator=gen) * 0.3}, paths["vocoder"])
    aligner = Aligner(AlignerConfig(text_dim=32, mel_dim=32, att_dim=16))
    torch.save({"config": aligner.cfg.to_dict(), "model": aligner.state_dict()}, paths["aligner"])
    return paths


def features_for_pack(root: Path, aligner_path: Path) -> tuple[Path, Path]:
    """A features folder of both base speakers (synthetic speech, this tool's own features and alignment) and a data card."""
    from voice import clone
    from voice.aligner import load_model

    aligner, frontend = load_model(aligner_path), clone.TextFrontend()
    features = root / "features"
    rows = []
    for s, speaker in enumerate(SPEAKERS):
        (features / speaker).mkdir(parents=True)
        for u, text in enumerate(TEXTS[:3]):
            words, ids = frontend(text, text)
            audio = clone.metrics.resample(speech(1.2 + 0.2 * u, 120.0 + 60 * s, 16000, 10 * s + u), 16000, 22050)
            c = clone.make_clip(f"u{u}", " ".join(words), ids, audio)
            c.durations = clone.align(aligner, c)
            np.savez(features / speaker / f"u{u}.npz", ids=c.ids, mel=c.mel, f0=c.f0, energy=c.energy,
                     audio_peak=np.float32(np.abs(c.audio).max()), gain=np.float32(c.gain), samples=np.int64(c.audio.size))
            np.save(features / speaker / f"u{u}.dur.npy", c.durations)
            rows.append({"speaker": speaker, "id": f"u{u}", "frames": int(c.mel.shape[0]), "n_ids": int(c.ids.size),
                         "split": "valid" if u == 2 else "train", "seconds": c.seconds})
    (features / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (features / "speakers.json").write_text(json.dumps({"speakers": SPEAKERS}))
    card = root / "datacard.json"
    card.write_text(json.dumps({"generated": "2026-01-01T00:00:00Z", "sources": {},
                                "speakers": {s: {"engine": "test", "voice": s, "hours": 0.001, "utterances": 3,
                                                 "licence": "CC0", "provenance": "test"} for s in SPEAKERS}}))
    return features, card
