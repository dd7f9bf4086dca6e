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


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's (Auditory Toolbox) mel scale: linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    linear = hz / (200.0 / 3.0)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3.0))


def mel_band_edges(cfg: AudioConfig = AUDIO) -> np.ndarray:
    """[n_mels + 2] Hz: mel filter k rises from edge k, peaks at edge k + 1 and is back to zero at edge k + 2."""
    return _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_mels + 2))


@functools.cache
def mel_basis(cfg: AudioConfig = AUDIO) -> np.ndarray:
    """Slaney-normalised mel filterbank [n_mels, n_fft // 2 + 1] (float32), librosa's default to 1e-6.

    numpy only, so training runs where librosa is not installed (a test pins it to librosa's).
    """
    bins = np.linspace(0.0, cfg.sample_rate / 2.0, cfg.n_fft // 2 + 1)
    edges = mel_band_edges(cfg)
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney area normalisation: each triangle integrates to the same value whatever its width.
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


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


def write_pcm16(path, audio: np.ndarray, cfg: AudioConfig = AUDIO) -> None:  # type: ignore[no-untyped-def]
    """Mono float audio → 16-bit PCM WAV with the stdlib ``wave`` (trainers run where soundfile may be absent)."""
    import wave

    pcm = (np.clip(np.asarray(audio, np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(cfg.sample_rate)
        fh.writeframes(pcm.tobytes())
