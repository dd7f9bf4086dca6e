"""The G2P network in torch: letters → ×2 upsampled embedding → dilated depthwise-conv blocks → CTC logits.

Why this shape: it is non-autoregressive (one fixed-shape graph call per word, greedy CTC decode in
numpy) and uses only ops the hand-written INT8 writer emits and XNNPACK runs in one partition
(GATHER, RESHAPE, DEPTHWISE_CONV_2D, FULLY_CONNECTED+ReLU, ADD, MUL).  Each block is
depthwise conv (dilated) → BatchNorm (folded into the conv at export) → FC+ReLU → FC → residual add,
then a multiply by the letter mask so padded positions stay exactly zero; this makes the output for a
word independent of how far it is padded, so training can pad to the batch's longest word while the
exported graph pads to ``max_letters``.  Dilations 1,2,4,1,2,4 with kernel 5 see ±28 positions
(±14 letters), enough for stress placement across the whole word.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class G2PConfig:
    """Hyper-parameters; stored in every checkpoint and in the shipped manifest."""

    n_letters: int = 28
    """Letter ids incl. padding 0."""
    n_out: int = 70
    """CTC blank (0) + the 69 ARPAbet phonemes of ``phonemes.PHONEMES``."""
    dim: int = 176
    ffn: int = 352
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4, 1, 2, 4)
    upsample: int = 2
    dropout: float = 0.1
    emb_dropout: float = 0.0
    """Dropout on the upsampled letter embedding (training only; a no-op in the exported graph)."""

    def to_dict(self) -> dict:
        """Plain JSON values."""
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, raw: dict) -> G2PConfig:
        """Inverse of :meth:`to_dict`."""
        raw = dict(raw)
        raw["dilations"] = tuple(raw["dilations"])
        return cls(**raw)  # fields missing from older checkpoints take their defaults


class Block(nn.Module):
    """Dilated depthwise conv + BN + FFN, residual, masked."""

    def __init__(self, cfg: G2PConfig, dilation: int) -> None:
        super().__init__()
        self.dw = nn.Conv1d(cfg.dim, cfg.dim, cfg.kernel, groups=cfg.dim, dilation=dilation,
                            padding=dilation * (cfg.kernel - 1) // 2)
        self.bn = nn.BatchNorm1d(cfg.dim)
        self.fc1 = nn.Linear(cfg.dim, cfg.ffn)
        self.fc2 = nn.Linear(cfg.ffn, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        nn.init.normal_(self.fc2.weight, std=0.02)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.dw(x.transpose(1, 2))).transpose(1, 2)
        h = self.fc2(torch.relu(self.fc1(h)))
        return (x + self.drop(h)) * mask


class G2PNet(nn.Module):
    """ids [B, L] (0 pads) → logits [B, L·upsample, n_out]."""

    def __init__(self, cfg: G2PConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.n_letters, cfg.upsample * cfg.dim)
        self.emb_drop = nn.Dropout(cfg.emb_dropout)
        self.blocks = nn.ModuleList(Block(cfg, d) for d in cfg.dilations)
        self.out = nn.Linear(cfg.dim, cfg.n_out)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        b, length = ids.shape
        up = self.cfg.upsample
        mask = (ids > 0).repeat_interleave(up, dim=1).unsqueeze(-1).to(torch.float32)
        x = self.emb_drop(self.emb(ids).view(b, length * up, self.cfg.dim)) * mask
        for block in self.blocks:
            x = block(x, mask)
        return self.out(x)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm affine included; running stats not)."""
    return sum(p.numel() for p in model.parameters())
