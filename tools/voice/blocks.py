"""The one block type of every voice graph (torch ``FiLMBlock``) and its INT8 export with ``QuantGraph``.

Block: ``x → depthwise conv (kernel k, dilation d, same padding) → BatchNorm → FiLM(speaker) →
Linear+ReLU (ffn) → Linear → residual add → × mask``, with FiLM ``h·(1+γ)+β`` and ``γ, β =
Linear(speaker)`` (docs/design/voice-training.md).  Every op maps to one TFLite builtin that XNNPACK
runs in INT8 (DEPTHWISE_CONV_2D, FULLY_CONNECTED, RESHAPE, MUL, ADD), so a graph of these blocks stays
in one delegate partition.

API:
- ``FiLMBlock(dim, ffn, kernel, dilation, speaker_dim)``; ``block(x [B,T,D], speaker [B,S], mask [B,T,1] | None)``.
- ``numpy_block_weights(state_dict, prefix)`` → float64 numpy weights, BatchNorm folded into the conv.
- ``export_film_block(graph, x, speaker, mask, weights)`` → the block's output Node; ``x`` is an INT8
  node of shape [1, 1, T, D], ``speaker`` an INT8 node [1, S], ``mask`` an INT8 node [1, 1, T, 1] or None.
- ``equalize_blocks(blocks, x, speaker, mask, alpha)`` → the same function with rescaled channels (INT8 only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
if TYPE_CHECKING:  # the export half only: training runs where the tflite schema package is absent
    from workbench.tflite_builder import Node, QuantGraph

BN_EPS = 1e-5
ADD_RANGE_RATIO = 64.0
"""An ADD input's INT8 range is at least the other input's range over this (XNNPACK needs ≥ 1/1024 of the output's)."""


class FiLMBlock(nn.Module):
    """Depthwise conv + BN + speaker FiLM + FFN, residual, masked; input and output [B, T, D]."""

    def __init__(self, dim: int, ffn: int, kernel: int, dilation: int, speaker_dim: int, dropout: float = 0.0) -> None:
        """``kernel`` must be odd (same padding on both sides, as the exported SAME conv pads)."""
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"kernel must be odd, got {kernel}")
        self.dw = nn.Conv1d(dim, dim, kernel, groups=dim, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.bn = nn.BatchNorm1d(dim, eps=BN_EPS)
        self.film = nn.Linear(speaker_dim, 2 * dim)
        self.fc1 = nn.Linear(dim, ffn)
        self.fc2 = nn.Linear(ffn, dim)
        self.drop = nn.Dropout(dropout)
        # The dilation travels in the state dict so the exporter cannot pair weights with a wrong one.
        self.register_buffer("dilation", torch.tensor(dilation, dtype=torch.int64))
        # FiLM starts as the identity (γ = β = 0) and the residual branch starts small, so a deep
        # stack begins close to its input and every speaker starts from the same network.
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        nn.init.normal_(self.fc2.weight, std=0.02)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor, speaker: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D], speaker [B, S], mask [B, T, 1] (1 = real frame) or None → [B, T, D]."""
        h = self.bn(self.dw(x.transpose(1, 2))).transpose(1, 2)
        gamma, beta = self.film(speaker).unsqueeze(1).chunk(2, dim=-1)
        h = h * (1.0 + gamma) + beta
        h = self.fc2(torch.relu(self.fc1(h)))
        out = x + self.drop(h)
        return out * mask if mask is not None else out


def numpy_block_weights(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, Any]:
    """Float64 numpy weights of the FiLMBlock at ``prefix`` (e.g. ``"blocks.3."``), BatchNorm folded.

    Keys: ``dw_w`` [K, D], ``dw_b`` [D], ``dilation``, ``gamma_w`` [D, S], ``gamma_b`` [D] (the FiLM's
    ``1 +`` already added), ``beta_w`` [D, S], ``beta_b`` [D], ``fc1_w`` [F, D], ``fc1_b``, ``fc2_w`` [D, F], ``fc2_b``.
    """
    s = {k[len(prefix):]: v.detach().cpu() for k, v in state_dict.items() if k.startswith(prefix)}
    f = {k: v.double().numpy() for k, v in s.items() if v.dtype.is_floating_point}
    g = f["bn.weight"] / np.sqrt(f["bn.running_var"] + BN_EPS)
    dim = g.shape[0]
    return {
        "dilation": int(s["dilation"]),
        "dw_w": f["dw.weight"][:, 0, :].T * g,
        "dw_b": (f["dw.bias"] - f["bn.running_mean"]) * g + f["bn.bias"],
        "gamma_w": f["film.weight"][:dim], "gamma_b": f["film.bias"][:dim] + 1.0,
        "beta_w": f["film.weight"][dim:], "beta_b": f["film.bias"][dim:],
        "fc1_w": f["fc1.weight"], "fc1_b": f["fc1.bias"],
        "fc2_w": f["fc2.weight"], "fc2_b": f["fc2.bias"],
    }


def _block_parts(x: np.ndarray, speaker: np.ndarray, mask: np.ndarray | None,
                 w: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every intermediate of one block (``dw``, ``film`` = after γ and β, ``ffn`` = after fc1+ReLU, ``out``)."""
    kernel = w["dw_w"].shape[0]
    d = w["dilation"]
    pad = d * (kernel - 1) // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    t = x.shape[1]
    dw = sum(padded[:, k * d : k * d + t] * w["dw_w"][k] for k in range(kernel)) + w["dw_b"]
    gamma = speaker @ w["gamma_w"].T + w["gamma_b"]
    beta = speaker @ w["beta_w"].T + w["beta_b"]
    film = dw * gamma[:, None] + beta[:, None]
    ffn = np.maximum(film @ w["fc1_w"].T + w["fc1_b"], 0.0)
    out = x + ffn @ w["fc2_w"].T + w["fc2_b"]
    return {"dw": dw, "film": film, "ffn": ffn, "out": out * mask if mask is not None else out}


def numpy_film_block(x: np.ndarray, speaker: np.ndarray, mask: np.ndarray | None, w: Mapping[str, Any]) -> np.ndarray:
    """Float numpy reference of one block on x [B, T, D], speaker [B, S], mask [B, T, 1] (eval mode)."""
    return _block_parts(x, speaker, mask, w)["out"]


def channel_ranges(values: np.ndarray) -> np.ndarray:
    """Per-channel (last axis) width of the INT8 range that holds ``values`` and 0."""
    flat = values.reshape(-1, values.shape[-1])
    return np.maximum(flat.max(axis=0), 0.0) - np.minimum(flat.min(axis=0), 0.0)


def equalizing_scales(ranges: np.ndarray, alpha: float) -> np.ndarray:
    """Per-channel factors ``(R / r_c)^alpha`` (R = the widest range) that bring channel ranges together.

    ``alpha`` 1 gives every channel the widest one's range (per-tensor INT8 then resolves each channel as
    finely as per-channel would); smaller values leave part of the spread.  Dead channels keep factor 1.
    """
    widest = float(ranges.max()) if ranges.size else 0.0
    live = ranges > widest * 1e-6
    scales = np.ones_like(ranges, dtype=np.float64)
    scales[live] = (widest / ranges[live]) ** alpha
    return scales


def scale_block(w: Mapping[str, Any], s_in: np.ndarray, s_out: np.ndarray, t: np.ndarray, u: np.ndarray,
                v: np.ndarray) -> dict[str, Any]:
    """The block that maps ``x·s_in`` to ``out·s_out`` with its ``dw``, ``film`` and ``ffn`` scaled by t, u, v.

    The same float function up to those channel scales (all positive; ReLU commutes with them), so only
    the INT8 ranges change.  A block's residual add needs ``s_in == s_out``.
    """
    if not np.allclose(s_in, s_out):
        raise ValueError("a residual block keeps its channel scale: s_in must equal s_out")
    return {
        **w,
        "dw_w": w["dw_w"] * (t / s_in), "dw_b": w["dw_b"] * t,
        "gamma_w": w["gamma_w"] * (u / t)[:, None], "gamma_b": w["gamma_b"] * (u / t),
        "beta_w": w["beta_w"] * u[:, None], "beta_b": w["beta_b"] * u,
        "fc1_w": w["fc1_w"] / u[None, :] * v[:, None], "fc1_b": w["fc1_b"] * v,
        "fc2_w": w["fc2_w"] * s_out[:, None] / v[None, :], "fc2_b": w["fc2_b"] * s_out,
    }


def residual_ranges(blocks: Sequence[Mapping[str, Any]], x: np.ndarray, speaker: np.ndarray,
                    mask: np.ndarray | None) -> np.ndarray:
    """Per-channel range of a block chain's residual stream (its input and every block's output), in float."""
    ranges = channel_ranges(x)
    for w in blocks:
        x = numpy_film_block(x, speaker, mask, w)
        ranges = np.maximum(ranges, channel_ranges(x))
    return ranges


def equalize_blocks(blocks: Sequence[Mapping[str, Any]], x: np.ndarray, speaker: np.ndarray, mask: np.ndarray | None,
                    alpha: float, residual: np.ndarray | None = None) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Rescale the channels inside a chain of blocks so per-tensor INT8 ranges fit every channel (cross-layer equalization).

    ``x`` [B, T, D] is the float input of the first block over the calibration batch, as the original
    ``blocks`` see it.  The new chain takes ``x·residual`` and returns ``out·residual`` (``residual``: the
    residual stream's per-channel scale, default 1; whoever writes and reads the stream applies it).  Each
    block's depthwise output, FiLM output and ReLU'd fc1 output get the factors ``equalizing_scales(ranges,
    alpha)`` and the following weights undo them.  Returns the new blocks and the original chain's float
    output ``out`` (for a head that follows).
    """
    s = np.ones(x.shape[-1]) if residual is None else residual
    out = []
    for w in blocks:
        parts = _block_parts(x, speaker, mask, w)
        t = equalizing_scales(channel_ranges(parts["dw"]), alpha)
        # γ multiplies the depthwise output: FiLM's range is (dw·t)·(γ·u/t), so u evens out FiLM's spread.
        u = equalizing_scales(channel_ranges(parts["film"]), alpha)
        v = equalizing_scales(channel_ranges(parts["ffn"]), alpha)
        out.append(scale_block(w, s, s, t, u, v))
        x = parts["out"]
    return out, x


def export_film_block(graph: QuantGraph, x: Node, speaker: Node, mask: Node | None, weights: Mapping[str, Any]) -> Node:
    """Emit one block on an INT8 [1, 1, T, D] node; return its INT8 [1, 1, T, D] output node.

    γ and β are FULLY_CONNECTED ops on the [1, S] speaker node, reshaped to [1, 1, 1, D] so MUL and
    ADD broadcast them over time (FiLM's ``1 +`` lives in γ's bias).
    """
    dim = x.shape[-1]
    h = graph.dilated_depthwise(x, weights["dw_w"], weights["dw_b"], weights["dilation"])
    gamma = graph.reshape(graph.fully_connected(speaker, weights["gamma_w"], weights["gamma_b"]), (1, 1, 1, dim))
    h = graph.mul(h, gamma)
    # An addend whose range is far below the sum's (β of a barely trained FiLM, a quiet residual branch)
    # gets a range floor: XNNPACK declines an ADD with an input/output scale ratio under 1/1024, which
    # would split the graph into one delegate partition per block.
    beta = graph.fully_connected(speaker, weights["beta_w"], weights["beta_b"], min_range=_range(h) / ADD_RANGE_RATIO)
    h = graph.add(h, graph.reshape(beta, (1, 1, 1, dim)))
    h = graph.fully_connected(h, weights["fc1_w"], weights["fc1_b"], relu=True)
    h = graph.fully_connected(h, weights["fc2_w"], weights["fc2_b"], min_range=_range(x) / ADD_RANGE_RATIO)
    out = graph.add(x, h)
    return graph.mul(out, mask) if mask is not None else out


def _range(node: Node) -> float:
    return node.scale * 255.0
