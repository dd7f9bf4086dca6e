"""A deterministic placeholder voice pack: tiny random-weight INT8 graphs that hum, for tests and benches."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import tflite

from myna import voices
from myna.text import phonemes

from .tflite_builder import QuantGraph

_LOGGER = logging.getLogger(__name__)

SEED = 20240611
SAMPLE_RATE = 22050
HOP = 256
# The placeholder is driven by the English frontend (ARPAbet ids), like the trained voices.
INVENTORY = phonemes.ARPABET_V1
N_FFT = 1024
SPEAKER_DIM = 16
N_MELS = 20
CALIBRATION = 32
PACK_ID = "placeholder"
VOICES = {"placeholder": ("Placeholder", 1), "placeholder-alt": ("Placeholder (alt)", 2)}


@dataclass(frozen=True)
class TierDims:
    """Sizes of one tier of the placeholder."""

    phoneme_bucket: int
    hidden: int
    channels: int
    frame_chunk: int
    overlap: int
    kernel: int


TIERS = {
    "tiny": TierDims(phoneme_bucket=64, hidden=32, channels=32, frame_chunk=32, overlap=4, kernel=5),
    "small": TierDims(phoneme_bucket=128, hidden=48, channels=64, frame_chunk=64, overlap=4, kernel=5),
}

_TYPE_NAMES = {tflite.TensorType.FLOAT32: "float32", tflite.TensorType.INT32: "int32", tflite.TensorType.INT8: "int8"}


def _dense(rng: np.random.Generator, out_dim: int, in_dim: int, gain: float = 1.0) -> np.ndarray:
    # Uniform, not normal: the normal sampler calls libm in its tails, uniform is pure arithmetic,
    # so the weights are bit-identical on every machine.
    return rng.uniform(-1.0, 1.0, (out_dim, in_dim)) * (gain * np.sqrt(3.0 / in_dim))


def speaker_vector(index: int) -> np.ndarray:
    """The adapter vector of placeholder voice ``index`` (1-based)."""
    rng = np.random.default_rng([SEED, 1000 + index])
    return rng.uniform(-1.0, 1.0, (1, SPEAKER_DIM)).astype(np.float32)


def _speaker_calibration(rng: np.random.Generator) -> np.ndarray:
    known = np.concatenate([speaker_vector(i) for _, i in VOICES.values()])
    extra = rng.uniform(-1.0, 1.0, (CALIBRATION - len(known), SPEAKER_DIM))
    return np.concatenate([known, extra])


def _io(graph: QuantGraph) -> tuple[tuple[voices.TensorSpec, ...], tuple[voices.TensorSpec, ...]]:
    model = graph.model
    specs = []
    for indices in (model.inputs, model.outputs):
        specs.append(tuple(
            voices.TensorSpec(model.tensors[i].name, _TYPE_NAMES[model.tensors[i].type], model.tensors[i].shape)
            for i in indices
        ))
    return specs[0], specs[1]


def _film(g: QuantGraph, rng: np.random.Generator, x: "object", spk: "object", channels: int) -> "object":
    """x·γ(speaker) + β(speaker), ReLU: speaker conditioning that stays in one XNNPACK partition."""
    gamma = g.fully_connected(spk, _dense(rng, channels, SPEAKER_DIM, 0.3), np.ones(channels))
    beta = g.fully_connected(spk, _dense(rng, channels, SPEAKER_DIM, 0.3), np.zeros(channels))
    scaled = g.mul(x, g.reshape(gamma, (1, 1, channels)))  # type: ignore[arg-type]
    return g.add(scaled, g.reshape(beta, (1, 1, channels)), relu=True)  # type: ignore[arg-type]


def build_encoder(dims: TierDims, rng: np.random.Generator) -> tuple[QuantGraph, np.ndarray, np.ndarray]:
    """Return the encoder graph and its float reference (hidden, pitch) for the next calibration."""
    p, h, v = dims.phoneme_bucket, dims.hidden, INVENTORY.size
    ids = np.zeros((CALIBRATION, p), np.int64)
    for n in range(CALIBRATION):
        length = int(rng.integers(p // 4, p + 1))
        ids[n, :length] = rng.integers(1, v, length)
    g = QuantGraph("encoder")
    ids_node = g.input("phoneme_ids", (1, p), ids, tflite.TensorType.INT32)
    spk = g.quantize(g.input("speaker", (1, SPEAKER_DIM), _speaker_calibration(rng)))
    table = rng.uniform(-1.0, 1.0, (v, h))
    table[0] = 0.0
    emb = g.gather(table, ids_node)
    spk_h = g.reshape(g.fully_connected(spk, _dense(rng, h, SPEAKER_DIM, 0.5), np.zeros(h)), (1, 1, h))
    x = g.add(emb, spk_h, relu=True)
    hidden = g.fully_connected(x, _dense(rng, h, h, 1.5), rng.uniform(0.0, 0.2, h), relu=True)
    # Durations around exp(1.8) ≈ 6 frames (70 ms) and pitch around 1.2 (120 Hz), varying per symbol.
    log_dur = g.fully_connected(hidden, _dense(rng, 1, h, 0.25), np.array([1.8]))
    pitch = g.fully_connected(hidden, _dense(rng, 1, h, 0.15), np.array([1.2]))
    g.dequantize(hidden, "hidden")
    g.dequantize(g.reshape(log_dur, (1, p)), "log_duration")
    g.dequantize(g.reshape(pitch, (1, p)), "pitch")
    return g, hidden.values, pitch.values[..., 0]


def build_decoder(dims: TierDims, rng: np.random.Generator, hidden: np.ndarray, pitch: np.ndarray) -> tuple[QuantGraph, np.ndarray]:
    """Return the decoder graph and its float reference mel for the vocoder's calibration."""
    f, h, c = dims.frame_chunk, dims.hidden, dims.channels
    frames = np.zeros((CALIBRATION, f, h))
    frame_pitch = np.zeros((CALIBRATION, f, 1))
    for n in range(CALIBRATION):
        start, stop = sorted(int(x) for x in rng.integers(0, f + 1, 2))
        positions = np.sort(rng.integers(0, hidden.shape[1] // 4, stop - start))
        frames[n, start:stop] = hidden[n, positions]
        frame_pitch[n, start:stop, 0] = pitch[n, positions] * rng.uniform(0.5, 2.0)
    g = QuantGraph("decoder")
    x = g.quantize(g.input("frames", (1, f, h), frames))
    fp = g.quantize(g.input("frame_pitch", (1, f, 1), frame_pitch))
    spk = g.quantize(g.input("speaker", (1, SPEAKER_DIM), _speaker_calibration(rng)))
    y = g.add(g.fully_connected(x, _dense(rng, c, h), np.zeros(c)), g.fully_connected(fp, _dense(rng, c, 1, 0.5), np.zeros(c)))
    y = _film(g, rng, y, spk, c)
    y4 = g.reshape(y, (1, 1, f, c))  # type: ignore[attr-defined]
    y4 = g.depthwise_time_conv(y4, rng.uniform(-0.2, 0.6, (dims.kernel, c)), np.zeros(c))
    mel = g.fully_connected(g.reshape(y4, (1, f, c)), _dense(rng, N_MELS, c), rng.uniform(-0.5, 0.5, N_MELS))
    g.dequantize(mel, "mel")
    return g, mel.values


def build_vocoder(dims: TierDims, rng: np.random.Generator, mel: np.ndarray) -> QuantGraph:
    """Return the vocoder graph: its real STFT bins form an ~86 Hz pulse train (a hum), imag a faint buzz."""
    f, c, bins = dims.frame_chunk, dims.channels, N_FFT // 2 + 1
    g = QuantGraph("vocoder")
    x = g.quantize(g.input("mel", (1, f, N_MELS), mel))
    spk = g.quantize(g.input("speaker", (1, SPEAKER_DIM), _speaker_calibration(rng)))
    y = _film(g, rng, g.fully_connected(x, _dense(rng, c, N_MELS), np.zeros(c)), spk, c)
    y4 = g.depthwise_time_conv(g.reshape(y, (1, 1, f, c)), rng.uniform(-0.2, 0.6, (dims.kernel, c)), np.zeros(c))  # type: ignore[attr-defined]
    feats = g.reshape(y4, (1, f, c))
    k = np.arange(bins)
    envelope = 1.0 / (1.0 + k / 40.0)
    # Bins that are multiples of n_fft/hop complete whole cycles per hop, so positive real parts add up
    # coherently across frames: a steady pulse train at 4·sr/n_fft ≈ 86 Hz whose loudness follows the mel.
    harmonic = (k % (N_FFT // HOP) == 0) & (k > 0) & (k <= 160)
    w_real = np.where(harmonic[:, None], rng.uniform(0.0, 1.0, (bins, c)), rng.uniform(-0.02, 0.02, (bins, c)))
    w_real *= envelope[:, None]
    peak = float(np.max(np.abs(feats.values @ w_real.T).sum(-1))) * 2.0 / N_FFT * (4.0 / 3.0)
    w_real *= _quantized_gain(0.7 / max(peak, 1e-6))
    g.dequantize(g.fully_connected(feats, w_real, np.zeros(bins)), "stft_real")
    w_imag = rng.uniform(-0.02, 0.02, (bins, c)) * envelope[:, None] * float(np.max(np.abs(w_real)))
    g.dequantize(g.fully_connected(feats, w_imag, np.zeros(bins)), "stft_imag")
    return g


def _quantized_gain(gain: float) -> float:
    # A gain computed through a matmul is snapped to quarter-octave steps so the bytes do not depend
    # on the BLAS build's rounding.
    return float(2.0 ** (round(math.log2(gain) * 4.0) / 4.0))


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write an .npz with fixed zip timestamps so regenerating gives identical bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


MODEL_CARD = """# Placeholder voice pack (not speech)

This pack exists so the Myna daemon, its tests and its benchmarks have a real INT8 TFLite voice to
run before a trained voice ships. **It does not speak.** Its graphs have seeded random weights; the
vocoder's output is a deterministic robot buzz/hum (a ~86 Hz pulse train whose loudness follows the
phonemes), nothing more.

- Generated by `tools/make_placeholder_voice.py` (no torch, no TensorFlow: the flatbuffers are
  written directly and INT8-calibrated with a numpy float reference). Regenerating gives
  byte-identical files; a test checks this.
- Tiers: `tiny` (64-phoneme bucket, 32-frame chunks) and `small` (128 phonemes, 64 frames).
- Voices: `placeholder` (default) and `placeholder-alt`, which differ only in their speaker vector.
- The manifest says `"placeholder": true`: when a trained pack is installed too, its default voice
  is the daemon's default (this pack stays loadable by voice id).
- Audio: {sample_rate} Hz, hop {hop}, n_fft {n_fft}.
- Licence: Apache-2.0 (the same as the code that generates it). No training data was used.
"""


def build_pack(out_dir: Path) -> Path:
    """Generate the placeholder pack into ``out_dir`` (created if missing) and return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tiers: dict[str, voices.TierSpec] = {}
    for tier_index, (tier_name, dims) in enumerate(TIERS.items()):
        rng = np.random.default_rng([SEED, tier_index])
        encoder, hidden, pitch = build_encoder(dims, rng)
        decoder, mel = build_decoder(dims, rng, hidden, pitch)
        vocoder = build_vocoder(dims, rng, mel)
        graphs = {}
        for role, graph in (("encoder", encoder), ("decoder", decoder), ("vocoder", vocoder)):
            data = graph.serialize()
            file_name = f"{tier_name}-{role}.tflite"
            (out_dir / file_name).write_bytes(data)
            inputs, outputs = _io(graph)
            graphs[role] = voices.GraphSpec(file_name, hashlib.sha256(data).hexdigest(), "int8", inputs, outputs)
            _LOGGER.info("%s: %d bytes", file_name, len(data))
        tiers[tier_name] = voices.TierSpec(dims.phoneme_bucket, dims.frame_chunk, dims.overlap, graphs)
    voice_specs = {}
    for voice_id, (name, index) in VOICES.items():
        adapter = f"{voice_id}.npz"
        write_npz(out_dir / adapter, {"speaker": speaker_vector(index)})
        voice_specs[voice_id] = voices.VoiceSpec(name, "en-US", adapter)
    inventory = INVENTORY
    manifest = voices.Manifest(
        format_version=voices.FORMAT_VERSION,
        pack_id=PACK_ID,
        default_voice="placeholder",
        voices=voice_specs,
        audio=voices.AudioSpec(SAMPLE_RATE, HOP, N_FFT, N_FFT),
        phoneme_inventory=voices.InventorySpec(inventory.name, inventory.version, inventory.size),
        tiers=tiers,
        licence="Apache-2.0",
        provenance=f"tools/make_placeholder_voice.py, seed {SEED}: random weights, numpy-calibrated INT8; not trained, not speech",
        placeholder=True,
    )
    text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n"
    (out_dir / voices.MANIFEST_NAME).write_text(text, encoding="utf-8")
    (out_dir / "MODEL_CARD.md").write_text(MODEL_CARD.format(sample_rate=SAMPLE_RATE, hop=HOP, n_fft=N_FFT), encoding="utf-8")
    return out_dir
