"""The one audio and mel-spectrogram definition shared by feature extraction, training and evaluation.

Frames are centred like the runtime vocoder's (frame t covers samples t*hop ± n_fft/2, reflect-padded),
so an utterance of ``n`` samples has ``n // hop + 1`` frames and the vocoder's overlap-add of those
frames gives back ``n`` samples.  The numpy version (features, evaluation) and the torch version
(losses) agree to float precision; a test pins that.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AudioConfig:
    """Signal parameters of every Myna voice (written into each pack's manifest ``audio``)."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    log_floor: float = 1e-5
    """Mel magnitudes are clamped here before the natural log (≈ −11.5)."""

    def frames(self, samples: int) -> int:
        """Centred frames of an utterance of ``samples`` samples."""
        return samples // self.hop_length + 1

    def manifest_audio(self) -> dict[str, int]:
        """The pack manifest's ``audio`` table."""
        return {"sample_rate": self.sample_rate, "hop_length": self.hop_length, "n_fft": self.n_fft,
                "win_length": self.win_length}


AUDIO = AudioConfig()


@functools.cache
def mel_basis(cfg: AudioConfig = AUDIO) -> np.ndarray:
    """Slaney-normalised mel filterbank [n_mels, n_fft // 2 + 1] (float32)."""
    import librosa

    return librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                               fmax=cfg.fmax).astype(np.float32)


def hann(cfg: AudioConfig = AUDIO) -> np.ndarray:
    """Periodic Hann window of ``win_length`` centred in ``n_fft`` (the runtime's window)."""
    n = np.arange(cfg.win_length)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.win_length)
    out = np.zeros(cfg.n_fft)
    start = (cfg.n_fft - cfg.win_length) // 2
    out[start : start + cfg.win_length] = w
    return out.astype(np.float32)


def stft_magnitude(audio: np.ndarray, cfg: AudioConfig = AUDIO) -> np.ndarray:
    """|STFT| [frames, n_fft // 2 + 1] of mono float audio, centred, reflect-padded."""
    audio = np.asarray(audio, np.float32)
    pad = cfg.n_fft // 2
    padded = np.pad(audio, (pad, pad), mode="reflect" if audio.size > pad else "constant")
    n = cfg.frames(audio.size)
    idx = np.arange(cfg.n_fft)[None, :] + cfg.hop_length * np.arange(n)[:, None]
    return np.abs(np.fft.rfft(padded[idx] * hann(cfg), axis=-1)).astype(np.float32)


def log_mel(audio: np.ndarray, cfg: AudioConfig = AUDIO) -> np.ndarray:
    """Natural-log mel spectrogram [frames, n_mels] (float32)."""
    mel = stft_magnitude(audio, cfg) @ mel_basis(cfg).T
    return np.log(np.maximum(mel, cfg.log_floor)).astype(np.float32)


def torch_log_mel(audio, cfg: AudioConfig = AUDIO):  # type: ignore[no-untyped-def]
    """Torch twin of :func:`log_mel` for losses: audio [B, n] → [B, frames, n_mels]."""
    import torch

    window = torch.from_numpy(hann(cfg)).to(audio.device)
    spec = torch.stft(audio, cfg.n_fft, cfg.hop_length, cfg.n_fft, window, center=True, pad_mode="reflect",
                      return_complex=True).abs()
    mel = torch.matmul(torch.from_numpy(mel_basis(cfg)).to(audio.device), spec)
    return torch.log(torch.clamp(mel, min=cfg.log_floor)).transpose(1, 2)
