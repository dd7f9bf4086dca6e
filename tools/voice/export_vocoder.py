"""Export a trained vocoder checkpoint to the pack's full-INT8 vocoder graph and measure it against float.

Graph I/O (``myna.inference.vocoder``'s polar convention): inputs ``mel`` float32 [1, F, 80] and ``speaker``
float32 [1, 64]; outputs ``log_magnitude``, ``phase_x``, ``phase_y`` float32 [1, F, 513], F = frame_chunk.
Every op is calibrated on a numpy float reference over real mel windows of the features folder, each
paired with its speaker's embedding row, so the graph is INT8 from the input QUANTIZE to the three
output DEQUANTIZEs and runs as one XNNPACK partition.

The float reference for INT8-vs-float measurements is the torch model itself; ``measure`` runs both on the
same windows.  ``--precision float32`` writes the graph's float32 twin instead (same construction code, no
quantization), which ``measure`` compares with torch the same way.

    .venv/bin/python tools/voice/export_vocoder.py --checkpoint out/vocoder/best.pt --features out/features \\
        --corpus /work/corpus-run --out out/vocoder/vocoder-int8.tflite
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any, Mapping

if __name__ == "__main__":  # run as a script: make ``voice``, ``workbench`` and ``myna`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "daemon")]

import numpy as np
import tflite
import torch
from myna.voices import GraphSpec, TensorSpec
from workbench.tflite_builder import PRECISIONS, RANGE_METHODS, QuantGraph, QuantOptions

from voice.audio import AUDIO, log_mel
from voice.blocks import equalize_blocks, equalizing_scales, export_film_block, numpy_block_weights, residual_ranges
from voice.features import read_index
from voice.vocoder import Vocoder, VocoderConfig, istft, spectrum

OUTPUTS = ("log_magnitude", "phase_x", "phase_y")
DEFAULT_FRAME_CHUNK = 64


def load_checkpoint(path: Path) -> tuple[Vocoder, np.ndarray, list[str]]:
    """The eval-mode torch vocoder, its speaker table [speakers, S] and the speaker names of a weights-only checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = Vocoder(VocoderConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt["speaker_table"].double().numpy(), list(ckpt["speakers"])


def fold_speaker_map(state: Mapping[str, torch.Tensor], own: np.ndarray, target: np.ndarray) -> tuple[dict[str, torch.Tensor], float]:
    """Rewrite every FiLM so the graph takes ``target``'s speaker rows (e.g. the acoustic model's) instead of ``own``.

    The speaker enters the vocoder only through the FiLM linears, so an affine map ``own ≈ target·P + c``
    (least squares over the training speakers; exact while speakers ≤ S + 1) folds into their weights:
    ``W·(Pᵀ·t + c) + b = (W·Pᵀ)·t + (W·c + b)``.  Returns the new state dict and the map's largest residual.
    """
    if own.shape != target.shape:
        raise ValueError(f"speaker tables differ in shape: {own.shape} vs {target.shape}")
    design = np.concatenate([target, np.ones((target.shape[0], 1))], axis=1)
    solution = np.linalg.lstsq(design, own, rcond=None)[0]
    p, c = solution[:-1], solution[-1]
    residual = float(np.abs(design @ solution - own).max())
    out = dict(state)
    for key in state:
        if key.endswith("film.weight"):
            w = state[key].double().numpy()
            b = state[key[: -len("weight")] + "bias"].double().numpy()
            out[key] = torch.from_numpy(w @ p.T).float()
            out[key[: -len("weight")] + "bias"] = torch.from_numpy(w @ c + b).float()
    return out, residual


def calibration_windows(features: Path, table: np.ndarray, speakers: list[str], count: int, frame_chunk: int,
                        seed: int = 0, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``count`` random real mel windows [count, F, M] of ``split`` and their speakers' rows [count, S].

    Utterances shorter than a window are padded with the log floor (silence), as their edges are at run time.
    """
    rows = [r for r in read_index(features) if r["split"] == split and r["speaker"] in speakers]
    if not rows:
        raise ValueError(f"{features}: no {split} utterances of speakers {speakers}")
    rng = random.Random(seed)
    picks = rng.choices(rows, weights=[r["frames"] for r in rows], k=count)
    mels = np.full((count, frame_chunk, AUDIO.n_mels), np.log(AUDIO.log_floor), np.float64)
    spk = np.zeros((count, table.shape[1]), np.float64)
    for i, row in enumerate(picks):
        with np.load(features / row["speaker"] / f"{row['id']}.npz") as z:
            mel = z["mel"]
        start = rng.randrange(0, max(1, mel.shape[0] - frame_chunk + 1))
        window = mel[start : start + frame_chunk]
        mels[i, : window.shape[0]] = window
        spk[i] = table[speakers.index(row["speaker"])]
    return mels, spk


def build_graph(state: Mapping[str, torch.Tensor], cfg: VocoderConfig, calib_mel: np.ndarray, calib_speaker: np.ndarray,
                frame_chunk: int = DEFAULT_FRAME_CHUNK, precision: str = "int8",
                options: QuantOptions | None = None) -> QuantGraph:
    """The INT8 (or float32) vocoder graph (call ``.serialize()`` for the bytes); ``options``: INT8 choices."""
    f, d, bins = frame_chunk, cfg.dim, cfg.bins
    s = {k: v.detach().cpu().double().numpy() for k, v in state.items() if v.dtype.is_floating_point}
    g = QuantGraph("vocoder", precision, options)
    blocks = [numpy_block_weights(state, f"blocks.{i}.") for i in range(cfg.blocks)]
    inp_w, inp_b, out_w = s["inp.weight"], s["inp.bias"], s["out.weight"]
    if g.options.equalize and not g.is_float:
        # The residual stream's channels are scaled by r: the input layer writes x·r, the heads read it back.
        x0 = calib_mel @ inp_w.T + inp_b
        r = equalizing_scales(residual_ranges(blocks, x0, calib_speaker, None), g.options.equalize)
        blocks, _ = equalize_blocks(blocks, x0, calib_speaker, None, g.options.equalize, residual=r)
        inp_w, inp_b, out_w = inp_w * r[:, None], inp_b * r, out_w / r[None, :]
    mel = g.quantize(g.input("mel", (1, f, cfg.n_mels), calib_mel))
    spk = g.quantize(g.input("speaker", (1, cfg.speaker_dim), calib_speaker))
    x = g.reshape(g.fully_connected(mel, inp_w, inp_b), (1, 1, f, d))
    for blk in blocks:
        x = export_film_block(g, x, spk, None, blk)
    x = g.reshape(x, (1, f, d))
    # One FULLY_CONNECTED per output so each gets its own INT8 range (log magnitude spans ~20, phase ~±2).
    for k, name in enumerate(OUTPUTS):
        rows = slice(k * bins, (k + 1) * bins)
        g.dequantize(g.fully_connected(x, out_w[rows], s["out.bias"][rows]), name)
    return g


def graph_spec(graph: QuantGraph, file_name: str, data: bytes) -> GraphSpec:
    """The manifest entry of an exported graph (``data`` = its serialized bytes, as written to ``file_name``)."""
    names = {tflite.TensorType.FLOAT32: "float32", tflite.TensorType.INT32: "int32", tflite.TensorType.INT8: "int8"}
    model = graph.model
    inputs, outputs = (tuple(TensorSpec(model.tensors[i].name, names[model.tensors[i].type], model.tensors[i].shape)
                             for i in indices) for indices in (model.inputs, model.outputs))
    return GraphSpec(file_name, hashlib.sha256(data).hexdigest(), graph.precision, inputs, outputs)


def run_litert(model: bytes, feeds: Mapping[str, np.ndarray], num_threads: int = 1) -> tuple[list[dict[str, np.ndarray]], int]:
    """Run a graph on a batch of feeds (each [N, *input shape[1:]]); per-item outputs and the XNNPACK partition count."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model, num_threads=num_threads)
    interp.allocate_tensors()
    partitions = sum(1 for op in interp._get_ops_details() if op.get("op_name") == "DELEGATE")
    inputs = {d["name"]: d["index"] for d in interp.get_input_details()}
    outputs = {d["name"]: d["index"] for d in interp.get_output_details()}
    n = len(next(iter(feeds.values())))
    results = []
    for i in range(n):
        for name, values in feeds.items():
            interp.set_tensor(inputs[name], values[i : i + 1].astype(np.float32))
        interp.invoke()
        results.append({name: interp.get_tensor(index)[0].copy() for name, index in outputs.items()})
    return results, partitions


def measure(model: Vocoder, graph: bytes, mels: np.ndarray, speakers: np.ndarray, trim: int) -> dict[str, float]:
    """INT8 (LiteRT) vs float (torch) on the same windows: output correlations and the audio they make.

    ``trim`` context frames each side are dropped, as the runtime drops them.  Audio SNR is of the INT8
    audio against the float audio (the quantisation noise), mel L1 between their log-mels.  A float32
    ``graph`` is measured the same way (the keys keep their ``int8`` names).
    """
    got, partitions = run_litert(graph, {"mel": mels, "speaker": speakers})
    with torch.no_grad():
        ref = model(torch.from_numpy(mels).float(), torch.from_numpy(speakers).float())
    keep = slice(trim, mels.shape[1] - trim)
    report: dict[str, float] = {"xnnpack_partitions": float(partitions)}
    for k, name in enumerate(OUTPUTS):
        a = np.stack([r[name] for r in got])[:, keep].ravel()
        b = ref[k][:, keep].numpy().ravel()
        report[f"corr_{name}"] = float(np.corrcoef(a, b)[0, 1])
    report["log_magnitude_mae"] = float(np.mean(np.abs(np.stack([r["log_magnitude"] for r in got])[:, keep]
                                                       - ref[0][:, keep].numpy())))
    to_t = lambda name: torch.from_numpy(np.stack([r[name] for r in got]))  # noqa: E731
    with torch.no_grad():
        int8_audio = istft(spectrum(to_t("log_magnitude"), to_t("phase_x"), to_t("phase_y")), model.cfg).numpy()
        float_audio = istft(spectrum(*ref), model.cfg).numpy()
    hop = model.cfg.hop_length
    cut = slice(trim * hop, (mels.shape[1] - trim) * hop)
    noise = int8_audio[:, cut] - float_audio[:, cut]
    report["audio_snr_db"] = float(10 * np.log10(np.sum(float_audio[:, cut] ** 2) / max(np.sum(noise**2), 1e-20)))
    report["mel_l1_int8_vs_float"] = float(np.mean([np.mean(np.abs(log_mel(a[cut]) - log_mel(b[cut])))
                                                    for a, b in zip(int8_audio, float_audio)]))
    return report


def main(argv: list[str] | None = None) -> int:
    """Export, then print and save the INT8-vs-float measurement beside the graph."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("out/vocoder/best.pt"))
    ap.add_argument("--features", type=Path, default=Path("out/features"))
    ap.add_argument("--out", type=Path, default=Path("out/vocoder/vocoder-int8.tflite"))
    ap.add_argument("--frame-chunk", type=int, default=DEFAULT_FRAME_CHUNK)
    ap.add_argument("--windows", type=int, default=256, help="calibration windows")
    ap.add_argument("--measure-windows", type=int, default=32, help="valid windows for the INT8-vs-float check")
    ap.add_argument("--precision", choices=PRECISIONS, default="int8", help="int8 (shipped) or its float32 twin")
    ap.add_argument("--int8-fc-per-channel", action="store_true", help="per-output-row FULLY_CONNECTED weight scales")
    ap.add_argument("--int8-ranges", choices=RANGE_METHODS, default="minmax", help="activation range method")
    ap.add_argument("--int8-equalize", type=float, default=0.0, help="cross-layer channel equalization exponent (0 off)")
    ap.add_argument("--speaker-table", type=Path, default=None,
                    help=".npy [speakers, S] of rows the graph must accept (the acoustic model's); folded into the FiLMs")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, table, speakers = load_checkpoint(args.checkpoint)
    state = model.state_dict()
    report: dict[str, Any] = {}
    if args.speaker_table is not None:
        target = np.load(args.speaker_table).astype(np.float64)
        state, residual = fold_speaker_map(state, table, target)
        model.load_state_dict(state)
        table = target
        report["speaker_map_residual"] = residual
    mels, spk = calibration_windows(args.features, table, speakers, args.windows, args.frame_chunk)
    options = QuantOptions(per_channel_fc=args.int8_fc_per_channel, range_method=args.int8_ranges,
                           equalize=args.int8_equalize)
    data = build_graph(state, model.cfg, mels, spk, args.frame_chunk, args.precision, options).serialize()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    split = "valid" if any(r["split"] == "valid" for r in read_index(args.features)) else "train"
    vm, vs = calibration_windows(args.features, table, speakers, args.measure_windows, args.frame_chunk, seed=1, split=split)
    report.update(measure(model, data, vm, vs, model.cfg.receptive_frames))
    report.update(bytes=len(data), frame_chunk=args.frame_chunk, checkpoint=str(args.checkpoint), measured_on=split)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
