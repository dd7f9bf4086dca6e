"""Vocos-style vocoder at frame rate: log-mel + speaker → FiLM blocks → STFT log-magnitude and phase → iSTFT.

Why this head: the graph is INT8 inside, and INT8 noise on a log-magnitude output is a relative (dB-uniform)
error on every bin, whereas INT8 on raw real/imag outputs would put a noise floor about 48 dB under the
loudest bin of the chunk.  The phase is a 2-D vector (``phase_x``, ``phase_y``) normalised to unit length,
so it has no wrap-around.  Spectrum = ``exp(min(log_magnitude, LOG_MAGNITUDE_MAX)) · (x + i·y) / sqrt(x² +
y² + PHASE_EPS)``, exactly what ``myna.inference.vocoder`` computes in numpy on the device.

The blocks use kernel 5 with dilation 1, so each output frame sees ±2 frames per block (±12 for six blocks,
±16 for eight): the runtime's ``overlap`` (context frames per side) must be at least ``receptive_frames``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from myna.inference.vocoder import LOG_MAGNITUDE_MAX, PHASE_EPS
from torch import nn

from .audio import AUDIO, hann, torch_log_mel
from .blocks import FiLMBlock


@dataclass(frozen=True)
class VocoderConfig:
    """Hyper-parameters of one vocoder tier; stored in every checkpoint."""

    dim: int = 192
    ffn: int = 576
    blocks: int = 6
    kernel: int = 5
    speaker_dim: int = 64
    n_mels: int = AUDIO.n_mels
    n_fft: int = AUDIO.n_fft
    hop_length: int = AUDIO.hop_length
    dropout: float = 0.0

    @property
    def bins(self) -> int:
        """STFT bins per frame (n_fft // 2 + 1)."""
        return self.n_fft // 2 + 1

    @property
    def receptive_frames(self) -> int:
        """Context frames each side that can change an output frame (the runtime's overlap must cover it)."""
        return self.blocks * (self.kernel - 1) // 2

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> VocoderConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**raw)


TIERS: dict[str, VocoderConfig] = {
    "tiny": VocoderConfig(dim=128, ffn=384, blocks=6),
    "small": VocoderConfig(dim=192, ffn=576, blocks=6),
    "base": VocoderConfig(dim=256, ffn=768, blocks=8),
}


class Vocoder(nn.Module):
    """mel [B, T, n_mels] + speaker [B, S] → (log_magnitude, phase_x, phase_y), each [B, T, bins]."""

    def __init__(self, cfg: VocoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Linear(cfg.n_mels, cfg.dim)
        self.blocks = nn.ModuleList(
            FiLMBlock(cfg.dim, cfg.ffn, cfg.kernel, 1, cfg.speaker_dim, cfg.dropout) for _ in range(cfg.blocks)
        )
        self.out = nn.Linear(cfg.dim, 3 * cfg.bins)
        with torch.no_grad():
            # Start quiet (|X| ≈ e^-4) rather than at e^0 on every bin: the first steps then shape the
            # spectrum instead of fighting loud white noise.
            self.out.bias[: cfg.bins].fill_(-4.0)

    def forward(self, mel: torch.Tensor, speaker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three graph outputs (float) for a batch of mel windows."""
        x = self.inp(mel)
        for block in self.blocks:
            x = block(x, speaker)
        log_magnitude, phase_x, phase_y = self.out(x).split(self.cfg.bins, dim=-1)
        return log_magnitude, phase_x, phase_y


def spectrum(log_magnitude: torch.Tensor, phase_x: torch.Tensor, phase_y: torch.Tensor) -> torch.Tensor:
    """Complex STFT [B, T, bins] from the head's outputs, the runtime's formula."""
    magnitude = torch.exp(torch.clamp(log_magnitude, max=LOG_MAGNITUDE_MAX))
    scale = magnitude * torch.rsqrt(phase_x * phase_x + phase_y * phase_y + PHASE_EPS)
    return torch.complex(phase_x * scale, phase_y * scale)


def istft(spec: torch.Tensor, cfg: VocoderConfig) -> torch.Tensor:
    """Audio [B, T·hop] of a spectrum [B, T, bins]: centred frames, periodic Hann, window-square normalised.

    Equals the runtime's overlap-add wherever all frames covering a sample exist (everything but the
    first and last n_fft/2 samples of an utterance, which the runtime fades); sample 0 is frame 0's centre.
    """
    window = torch.from_numpy(hann(AUDIO)).to(spec.device)
    frames = spec.shape[1]
    return torch.istft(spec.transpose(1, 2), cfg.n_fft, cfg.hop_length, cfg.n_fft, window, center=True,
                       length=frames * cfg.hop_length)


def synthesize(model: Vocoder, mel: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
    """mel [B, T, n_mels] → audio [B, T·hop] (float, differentiable)."""
    return istft(spectrum(*model(mel, speaker)), model.cfg)


def phase_norm_loss(phase_x: torch.Tensor, phase_y: torch.Tensor) -> torch.Tensor:
    """Pull the phase vector's length towards 1.

    The length is a free gauge (only the angle reaches the audio), but INT8 gives every output one
    absolute step size: a short vector would lose angle precision, a long one would waste range.
    """
    return torch.mean((torch.sqrt(phase_x * phase_x + phase_y * phase_y + PHASE_EPS) - 1.0) ** 2)


# ---------------------------------------------------------------------------------------------------
# Reconstruction losses

RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))
"""(n_fft, hop) of the multi-resolution STFT loss and of the spectrogram discriminators."""


def _magnitude(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=audio.device)
    spec = torch.stft(audio, n_fft, hop, n_fft, window, center=True, pad_mode="reflect", return_complex=True)
    return spec.abs().clamp(min=1e-5)


def mr_stft_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + L1 log magnitude (Parallel WaveGAN's loss)."""
    total = fake.new_zeros(())
    for n_fft, hop in RESOLUTIONS:
        f, r = _magnitude(fake, n_fft, hop), _magnitude(real, n_fft, hop)
        sc = torch.linalg.norm(r - f, dim=(1, 2)) / torch.linalg.norm(r, dim=(1, 2)).clamp(min=1e-5)
        total = total + sc.mean() + F.l1_loss(torch.log(f), torch.log(r))
    return total / len(RESOLUTIONS)


def mel_l1_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between log-mels of two audio batches (the audio.py definition)."""
    return F.l1_loss(torch_log_mel(fake), torch_log_mel(real))


# ---------------------------------------------------------------------------------------------------
# Light spectrogram discriminators (NOTES.md: 16 channels, stride 2 from the first layer, or a step costs 10×)


class SpectrogramDiscriminator(nn.Module):
    """2-D conv stack on log(1 + |STFT|) at one resolution; returns (logits, feature maps)."""

    def __init__(self, n_fft: int, hop: int, channels: int = 16) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        wn = nn.utils.parametrizations.weight_norm
        c = channels
        self.convs = nn.ModuleList([
            wn(nn.Conv2d(1, c, (3, 9), stride=(2, 2), padding=(1, 4))),
            wn(nn.Conv2d(c, c, (3, 9), stride=(2, 2), padding=(1, 4))),
            wn(nn.Conv2d(c, c, (3, 9), stride=(2, 1), padding=(1, 4))),
            wn(nn.Conv2d(c, c, (3, 3), stride=(1, 1), padding=(1, 1))),
        ])
        self.post = wn(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """audio [B, n] → logits [B, 1, F', T'] and the hidden feature maps."""
        x = torch.log1p(_magnitude(audio, self.n_fft, self.hop)).unsqueeze(1)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        return self.post(x), features


class Discriminators(nn.Module):
    """One SpectrogramDiscriminator per resolution of ``RESOLUTIONS``."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.discs = nn.ModuleList(SpectrogramDiscriminator(n, h, channels) for n, h in RESOLUTIONS)

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """Logits and features of every discriminator."""
        return [d(audio) for d in self.discs]


def discriminator_loss(real: list[tuple[torch.Tensor, list[torch.Tensor]]],
                       fake: list[tuple[torch.Tensor, list[torch.Tensor]]]) -> torch.Tensor:
    """LSGAN: mean over discriminators of E[(D(real) − 1)²] + E[D(fake)²]."""
    terms = [torch.mean((r - 1.0) ** 2) + torch.mean(f**2) for (r, _), (f, _) in zip(real, fake)]
    return torch.stack(terms).mean()


def generator_losses(real: list[tuple[torch.Tensor, list[torch.Tensor]]],
                     fake: list[tuple[torch.Tensor, list[torch.Tensor]]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(LSGAN adversarial E[(D(fake) − 1)²], feature matching L1), each a mean over discriminators and layers."""
    adv = torch.stack([torch.mean((f - 1.0) ** 2) for f, _ in fake]).mean()
    fm = torch.stack([F.l1_loss(ff, rf.detach()) for (_, rfs), (_, ffs) in zip(real, fake) for rf, ff in zip(rfs, ffs)]).mean()
    return adv, fm


def count_params(module: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
