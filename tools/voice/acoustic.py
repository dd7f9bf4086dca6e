"""The speaker-conditioned acoustic model (FastPitch-style, FiLM blocks only), its data pipeline and its losses.

Why this shape: the runtime (``daemon/myna/inference/acoustic.py``) runs an encoder graph once per padded
phoneme chunk, regulates lengths in numpy and runs a decoder graph on overlapping frame windows, so
the network splits the same way and uses only the one ``FiLMBlock`` type that stays in a single INT8
XNNPACK partition:

* encoder: id embedding × mask → FiLMBlocks (dilated) → ``x``; three heads (duration, pitch, energy)
  of FiLMBlocks + Linear read ``x`` through a stop-gradient (FastPitch); ``hidden = (x +
  Linear(energy)) × mask`` with the true phoneme energy in training and the predicted one in the graph.
  Every block multiplies by the id mask, so padding never changes the outputs of real ids.
* decoder: ``frames + MLP(frame_pitch)`` → FiLMBlocks (kernel k, dilation 1) → Linear to mels.  It has
  no mask input: the runtime feeds zeros beyond the utterance, so training pads every sequence with
  ``context`` zero frames each side and runs the decoder unmasked — the frames it sees past an end are
  exactly those of inference, and a window with ``overlap >= context`` gives the same mel as training.

Targets: ``log_duration`` = ln(max(frames, DURATION_FLOOR)); ``pitch`` = mean F0 over the phoneme's
voiced frames in units of 100 Hz (0 when none is voiced); ``energy`` = mean frame energy over the
phoneme, normalised by the training set's mean and std.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from myna.text.phonemes import CURRENT
from torch import nn

from .blocks import FiLMBlock

SPEAKER_DIM = 64
"""Width of the ``speaker`` vector every graph takes (docs/design/voice-training.md)."""
N_MELS = 80
DURATION_FLOOR = 0.4
"""Frames a zero-length phoneme's target stands for: ln(0.4) ≈ −0.92 rounds back to 0 frames at rate 1."""
PITCH_UNIT_HZ = 100.0


@dataclass(frozen=True)
class TierShape:
    """Network size and streaming geometry of one tier."""

    hidden: int
    ffn: int
    encoder_dilations: tuple[int, ...]
    decoder_blocks: int
    phoneme_bucket: int
    """Encoder graph width P; the same as the placeholder pack's tiers."""
    frame_chunk: int
    """Decoder graph window F (context included); must equal the vocoder's."""


TIERS: dict[str, TierShape] = {
    "tiny": TierShape(128, 256, (1, 2, 4, 1), 4, phoneme_bucket=64, frame_chunk=48),
    "small": TierShape(192, 384, (1, 2, 4, 1), 6, phoneme_bucket=128, frame_chunk=72),
    "base": TierShape(256, 512, (1, 2, 4, 1, 2, 4), 6, phoneme_bucket=128, frame_chunk=72),
}


@dataclass(frozen=True)
class AcousticConfig:
    """Hyper-parameters and data statistics; stored in every checkpoint."""

    tier: str = "tiny"
    n_ids: int = CURRENT.size
    """Inventory size (id 0 pads)."""
    n_speakers: int = 1
    speaker_dim: int = SPEAKER_DIM
    hidden: int = 128
    ffn: int = 256
    kernel: int = 5
    encoder_dilations: tuple[int, ...] = (1, 2, 4, 1)
    predictor_blocks: int = 2
    decoder_blocks: int = 4
    n_mels: int = N_MELS
    dropout: float = 0.1
    phoneme_bucket: int = 64
    frame_chunk: int = 48
    energy_mean: float = 0.0
    """Mean phoneme energy of the training set (targets are normalised with it)."""
    energy_std: float = 1.0
    inventory: tuple[str, int] = (CURRENT.name, CURRENT.version)

    @property
    def decoder_context(self) -> int:
        """Frames the decoder sees on each side: the minimum ``overlap`` of a decoder window."""
        return (self.kernel - 1) // 2 * self.decoder_blocks

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        d = asdict(self)
        d["encoder_dilations"] = list(self.encoder_dilations)
        d["inventory"] = list(self.inventory)
        return d

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AcousticConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(raw)
        d["encoder_dilations"] = tuple(d["encoder_dilations"])
        d["inventory"] = (str(d["inventory"][0]), int(d["inventory"][1]))
        return cls(**d)

    @classmethod
    def for_tier(cls, tier: str, **overrides: Any) -> AcousticConfig:
        """The tier's shape plus ``overrides`` (speakers, statistics)."""
        t = TIERS[tier]
        return cls(tier=tier, hidden=t.hidden, ffn=t.ffn, encoder_dilations=t.encoder_dilations,
                   decoder_blocks=t.decoder_blocks, phoneme_bucket=t.phoneme_bucket, frame_chunk=t.frame_chunk,
                   **overrides)


# ------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Item:
    """One utterance of the features directory."""

    speaker: int
    """Row in speakers.json."""
    name: str
    """``speaker/id``."""
    npz: Path
    frames: int
    n_ids: int
    split: str


@dataclass
class Example:
    """Arrays of one utterance, phoneme-level targets already averaged."""

    ids: np.ndarray
    """int64 [N]."""
    durations: np.ndarray
    """int64 [N] frames per id."""
    pitch: np.ndarray
    """float32 [N] mean voiced F0 / 100 Hz, 0 if unvoiced."""
    energy: np.ndarray
    """float32 [N] mean frame energy (raw; normalised at batching)."""
    mel: np.ndarray
    """float16 [T, 80] (half precision keeps a whole corpus in memory)."""


def read_features(features: Path) -> tuple[list[str], list[Item]]:
    """Speakers in table order and every indexed utterance of a features directory."""
    speakers = list(json.loads((features / "speakers.json").read_text())["speakers"])
    row = {name: i for i, name in enumerate(speakers)}
    items = []
    with open(features / "index.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            e = json.loads(line)
            items.append(Item(row[e["speaker"]], f"{e['speaker']}/{e['id']}", features / e["speaker"] / f"{e['id']}.npz",
                              int(e["frames"]), int(e["n_ids"]), e["split"]))
    return speakers, items


def phoneme_means(values: np.ndarray, durations: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of frame ``values`` over each phoneme's frames; 0 where a phoneme has no weight."""
    w = np.ones_like(values, np.float64) if weights is None else weights.astype(np.float64)
    ends = np.cumsum(durations)
    starts = ends - durations
    sums = np.concatenate([[0.0], np.cumsum(values * w)])
    counts = np.concatenate([[0.0], np.cumsum(w)])
    total, n = sums[ends] - sums[starts], counts[ends] - counts[starts]
    return np.where(n > 0, total / np.maximum(n, 1e-9), 0.0).astype(np.float32)


def load_example(item: Item) -> Example:
    """Read an utterance and its aligner durations; ValueError when they disagree with the mel."""
    with np.load(item.npz) as z:
        ids, mel, f0, energy = z["ids"], z["mel"], z["f0"], z["energy"]
    durations = np.load(item.npz.with_suffix(".dur.npy")).astype(np.int64)
    if durations.shape != ids.shape or int(durations.sum()) != mel.shape[0] or f0.shape[0] != mel.shape[0]:
        raise ValueError(f"{item.name}: {ids.size} ids, {durations.size} durations summing to {durations.sum()}, "
                         f"{mel.shape[0]} mel frames, {f0.shape[0]} f0 frames")
    return make_example(ids, durations, f0, energy, mel)


def make_example(ids: np.ndarray, durations: np.ndarray, f0: np.ndarray, energy: np.ndarray, mel: np.ndarray) -> Example:
    """Training targets of one aligned utterance: phoneme-averaged pitch (voiced frames only) and energy."""
    durations = durations.astype(np.int64)
    return Example(
        ids=ids.astype(np.int64),
        durations=durations,
        pitch=phoneme_means(f0.astype(np.float64) / PITCH_UNIT_HZ, durations, f0 > 0),
        energy=phoneme_means(energy.astype(np.float64), durations),
        mel=mel.astype(np.float16),
    )


class Corpus:
    """Lazily loaded, cached examples of a features directory."""

    def __init__(self, features: Path) -> None:
        """Read the index (the arrays load on first use)."""
        self.features = features
        self.speakers, self.items = read_features(features)
        self._cache: dict[str, Example] = {}

    def split(self, name: str) -> list[Item]:
        """Items of the ``train`` or ``valid`` split."""
        return [i for i in self.items if i.split == name]

    def example(self, item: Item) -> Example:
        """The item's arrays (cached)."""
        ex = self._cache.get(item.name)
        if ex is None:
            ex = self._cache[item.name] = load_example(item)
        return ex

    def statistics(self, items: Sequence[Item], limit: int = 600, seed: int = 0) -> dict[str, Any]:
        """Energy mean/std over phonemes and the mean log-mel per bin, from up to ``limit`` items."""
        chosen = random.Random(seed).sample(list(items), min(limit, len(items)))
        energies, mel_sum, frames = [], np.zeros(N_MELS), 0
        for item in chosen:
            ex = self.example(item)
            energies.append(ex.energy[ex.durations > 0])
            mel_sum += ex.mel.astype(np.float64).sum(0)
            frames += ex.mel.shape[0]
        e = np.concatenate(energies) if energies else np.zeros(1)
        return {"energy_mean": float(e.mean()), "energy_std": float(max(e.std(), 1e-3)),
                "mel_mean": (mel_sum / max(frames, 1)).tolist()}


class Batch(NamedTuple):
    """Padded tensors of a batch (the decoder's zero context frames are added by the model)."""

    ids: torch.Tensor
    """int64 [B, N], 0 pads."""
    speaker: torch.Tensor
    """int64 [B] speaker rows."""
    id_mask: torch.Tensor
    """float [B, N, 1]."""
    log_duration: torch.Tensor
    """float [B, N] target ln(max(frames, DURATION_FLOOR))."""
    pitch: torch.Tensor
    """float [B, N] target, 100 Hz units."""
    energy: torch.Tensor
    """float [B, N] normalised target."""
    mel: torch.Tensor
    """float [B, T, 80] target."""
    frame_index: torch.Tensor
    """int64 [B, T] id slot of every frame (0 in padding)."""
    frame_mask: torch.Tensor
    """float [B, T, 1]."""


def collate(examples: Sequence[Example], speakers: Sequence[int], cfg: AcousticConfig) -> Batch:
    """Pad a list of examples into a Batch."""
    b = len(examples)
    n = max(e.ids.size for e in examples)
    t = max(e.mel.shape[0] for e in examples)
    ids = np.zeros((b, n), np.int64)
    log_dur = np.zeros((b, n), np.float32)
    pitch = np.zeros((b, n), np.float32)
    energy = np.zeros((b, n), np.float32)
    mel = np.zeros((b, t, cfg.n_mels), np.float32)
    frame_index = np.zeros((b, t), np.int64)
    frame_mask = np.zeros((b, t, 1), np.float32)
    for i, e in enumerate(examples):
        k, frames = e.ids.size, e.mel.shape[0]
        ids[i, :k] = e.ids
        log_dur[i, :k] = np.log(np.maximum(e.durations, DURATION_FLOOR))
        pitch[i, :k] = e.pitch
        energy[i, :k] = np.where(e.durations > 0, (e.energy - cfg.energy_mean) / cfg.energy_std, 0.0)
        mel[i, :frames] = e.mel
        frame_index[i, :frames] = np.repeat(np.arange(k), e.durations)
        frame_mask[i, :frames] = 1.0
    id_mask = (ids > 0).astype(np.float32)[..., None]
    return Batch(*(torch.from_numpy(a) for a in (ids, np.asarray(speakers, np.int64), id_mask, log_dur, pitch,
                                                 energy, mel, frame_index, frame_mask)))


def make_batches(items: Sequence[Item], batch: int, rng: random.Random) -> list[list[Item]]:
    """Length-bucketed batches (sorted by frames with a little noise) in random order."""
    order = sorted(items, key=lambda i: i.frames * (1.0 + 0.1 * rng.random()))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(batches)
    return batches


# ------------------------------------------------------------------------------------------------
# Model


class Predictor(nn.Module):
    """FiLMBlocks + Linear → one value per id."""

    def __init__(self, cfg: AcousticConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            FiLMBlock(cfg.hidden, cfg.ffn, cfg.kernel, 1, cfg.speaker_dim, cfg.dropout) for _ in range(cfg.predictor_blocks)
        )
        self.out = nn.Linear(cfg.hidden, 1)

    def forward(self, x: torch.Tensor, speaker: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, N, H] → [B, N]."""
        for block in self.blocks:
            x = block(x, speaker, mask)
        return self.out(x).squeeze(-1)


class EncoderOutput(NamedTuple):
    """What the encoder graph computes (plus the energy prediction it consumes)."""

    hidden: torch.Tensor
    """[B, N, H], zero at padding."""
    log_duration: torch.Tensor
    """[B, N]."""
    pitch: torch.Tensor
    """[B, N]."""
    energy: torch.Tensor
    """[B, N] predicted (normalised) energy."""


class AcousticModel(nn.Module):
    """ids + speaker → hidden, log_duration, pitch (encoder); frames + frame_pitch + speaker → mel (decoder)."""

    def __init__(self, cfg: AcousticConfig, mel_mean: Sequence[float] | None = None) -> None:
        """``mel_mean`` (per bin) starts the mel bias at the data's mean so early steps learn shape, not offset."""
        super().__init__()
        self.cfg = cfg
        h, s = cfg.hidden, cfg.speaker_dim
        self.emb = nn.Embedding(cfg.n_ids, h)
        self.speakers = nn.Embedding(cfg.n_speakers, s)
        # Rows of this table ship as the voices' adapters; a moderate scale keeps FiLM's input in range.
        nn.init.normal_(self.speakers.weight, std=0.5)
        self.encoder = nn.ModuleList(FiLMBlock(h, cfg.ffn, cfg.kernel, d, s, cfg.dropout) for d in cfg.encoder_dilations)
        self.duration = Predictor(cfg)
        self.pitch = Predictor(cfg)
        self.energy = Predictor(cfg)
        self.energy_emb = nn.Linear(1, h)
        self.pitch_emb = nn.Sequential(nn.Linear(1, h), nn.ReLU(), nn.Linear(h, h))
        self.decoder = nn.ModuleList(FiLMBlock(h, cfg.ffn, cfg.kernel, 1, s, cfg.dropout) for _ in range(cfg.decoder_blocks))
        self.mel = nn.Linear(h, cfg.n_mels)
        if mel_mean is not None:
            with torch.no_grad():
                self.mel.bias.copy_(torch.tensor(list(mel_mean), dtype=torch.float32))

    def encode(self, ids: torch.Tensor, speaker: torch.Tensor, energy: torch.Tensor | None = None) -> EncoderOutput:
        """ids [B, N] (0 pads), speaker vectors [B, S]; ``energy`` [B, N] true energy or None (use the prediction)."""
        mask = (ids > 0).unsqueeze(-1).to(torch.float32)
        x = self.emb(ids) * mask
        for block in self.encoder:
            x = block(x, speaker, mask)
        # Stop-gradient as FastPitch: the predictors learn from the encoder without steering it.
        h = x.detach()
        log_duration = self.duration(h, speaker, mask)
        pitch = self.pitch(h, speaker, mask)
        energy_pred = self.energy(h, speaker, mask)
        e = energy_pred if energy is None else energy
        hidden = (x + self.energy_emb(e.unsqueeze(-1))) * mask
        return EncoderOutput(hidden, log_duration, pitch, energy_pred)

    def decode(self, frames: torch.Tensor, frame_pitch: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """frames [B, F, H], frame_pitch [B, F, 1] (zeros outside the utterance) → mel [B, F, M], unmasked."""
        x = frames + self.pitch_emb(frame_pitch)
        for block in self.decoder:
            x = block(x, speaker)
        return self.mel(x)

    def forward(self, batch: Batch) -> tuple[EncoderOutput, torch.Tensor]:
        """Teacher-forced pass: true durations, pitch and energy → (encoder output, mel [B, T, M])."""
        speaker = self.speakers(batch.speaker)
        enc = self.encode(batch.ids, speaker, batch.energy)
        index = batch.frame_index
        frames = torch.gather(enc.hidden, 1, index.unsqueeze(-1).expand(-1, -1, enc.hidden.shape[-1])) * batch.frame_mask
        frame_pitch = torch.gather(batch.pitch, 1, index).unsqueeze(-1) * batch.frame_mask
        c = self.cfg.decoder_context
        # Zero frames on both sides: what the runtime's windows hold beyond the utterance's ends.
        mel = self.decode(F.pad(frames, (0, 0, c, c)), F.pad(frame_pitch, (0, 0, c, c)), speaker)
        return enc, mel[:, c : c + index.shape[1]]


def losses(model: AcousticModel, batch: Batch, mel_bins: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Masked losses: mel L1, and MSE of log-duration, pitch and energy on real ids; ``total`` sums them.

    ``mel_bins`` (float [B, 1, M], 1 or 0) limits the mel L1 to the bins each utterance's recording carries.
    """
    enc, mel = model(batch)
    fmask, imask = batch.frame_mask, batch.id_mask.squeeze(-1)
    n_ids = imask.sum().clamp(min=1.0)
    mmask = fmask.expand(-1, -1, mel.shape[-1]) if mel_bins is None else fmask * mel_bins
    out = {
        "mel": ((mel - batch.mel).abs() * mmask).sum() / mmask.sum().clamp(min=1.0),
        "duration": (((enc.log_duration - batch.log_duration) ** 2) * imask).sum() / n_ids,
        "pitch": (((enc.pitch - batch.pitch) ** 2) * imask).sum() / n_ids,
        "energy": (((enc.energy - batch.energy) ** 2) * imask).sum() / n_ids,
    }
    out["total"] = out["mel"] + out["duration"] + out["pitch"] + out["energy"]
    return out


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters())


def load_checkpoint(path: Path) -> tuple[AcousticModel, list[str], dict[str, Any]]:
    """A weights-only checkpoint → (model in eval mode, speakers, the raw checkpoint dict)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = AcousticModel(AcousticConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), list(ckpt["speakers"]), ckpt


def speaker_table(model: AcousticModel) -> np.ndarray:
    """[n_speakers, S] float32 speaker rows (a voice's adapter ``speaker`` is one row)."""
    return model.speakers.weight.detach().cpu().numpy().astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Float reference: the torch model behind the runtime Graph interface, so myna.inference.acoustic's
# Encoder/Decoder classes run it exactly as they run the INT8 graphs (padding, length regulation,
# windows with overlap).


@dataclass
class TorchEncoderGraph:
    """Duck-typed ``runtime.Graph`` for the encoder: inputs phoneme_ids [1, P], speaker [1, S]."""

    model: AcousticModel
    bucket: int
    inputs: dict[str, np.ndarray] = field(init=False)
    outputs: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.model.cfg
        self.inputs = {"phoneme_ids": np.zeros((1, self.bucket), np.int32),
                       "speaker": np.zeros((1, cfg.speaker_dim), np.float32)}
        self.outputs = {"hidden": np.zeros((1, self.bucket, cfg.hidden), np.float32),
                        "log_duration": np.zeros((1, self.bucket), np.float32),
                        "pitch": np.zeros((1, self.bucket), np.float32)}

    def run(self) -> None:
        """Run the float encoder on the input buffers."""
        with torch.no_grad():
            enc = self.model.eval().encode(torch.from_numpy(self.inputs["phoneme_ids"].astype(np.int64)),
                                           torch.from_numpy(self.inputs["speaker"]))
        self.outputs["hidden"][...] = enc.hidden.numpy()
        self.outputs["log_duration"][...] = enc.log_duration.numpy()
        self.outputs["pitch"][...] = enc.pitch.numpy()


@dataclass
class TorchDecoderGraph:
    """Duck-typed ``runtime.Graph`` for the decoder: frames [1, F, H], frame_pitch [1, F, 1], speaker [1, S]."""

    model: AcousticModel
    frame_chunk: int
    inputs: dict[str, np.ndarray] = field(init=False)
    outputs: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.model.cfg
        self.inputs = {"frames": np.zeros((1, self.frame_chunk, cfg.hidden), np.float32),
                       "frame_pitch": np.zeros((1, self.frame_chunk, 1), np.float32),
                       "speaker": np.zeros((1, cfg.speaker_dim), np.float32)}
        self.outputs = {"mel": np.zeros((1, self.frame_chunk, cfg.n_mels), np.float32)}

    def run(self) -> None:
        """Run the float decoder on one window (conv edges zero-padded like TFLite's SAME)."""
        with torch.no_grad():
            mel = self.model.eval().decode(*(torch.from_numpy(self.inputs[k]) for k in ("frames", "frame_pitch", "speaker")))
        self.outputs["mel"][...] = mel.numpy()


def cycle_batches(items: Sequence[Item], batch: int, seed: int, start_step: int) -> Iterator[tuple[int, list[Item]]]:
    """Endless (epoch, batch) pairs, reproducible from ``start_step`` (resume skips what was done)."""
    per_epoch = math.ceil(len(items) / batch)
    epoch, skip = divmod(start_step, per_epoch)
    while True:
        batches = make_batches(items, batch, random.Random(seed * 100003 + epoch))
        for b in batches[skip:]:
            yield epoch, b
        skip = 0
        epoch += 1
