"""Export an acoustic checkpoint to the runtime's full-INT8 encoder and decoder graphs, calibrated on real features.

``--precision float32`` writes their float32 twins instead (same construction code, ops, names and shapes,
no quantization): what INT8 is measured against.

Graphs (``daemon/myna/inference/acoustic.py`` is the contract), built with ``workbench.tflite_builder``:

* ``<tier>-encoder.tflite``: ``phoneme_ids`` int32 [1, P], ``speaker`` float32 [1, S] → ``hidden``
  [1, P, H], ``log_duration`` [1, P], ``pitch`` [1, P].  GATHER of the id embedding and of a [vocab, 1]
  0/1 table (the id mask), FiLMBlocks, three heads, the predicted energy's Linear added to ``hidden``.
  ``exp`` is not in the builder, so ``log_duration`` leaves the graph as it is (the runtime takes exp).
* ``<tier>-decoder.tflite``: ``frames`` [1, F, H], ``frame_pitch`` [1, F, 1], ``speaker`` → ``mel``
  [1, F, 80].

Calibration runs the float model the runtime's way on a few hundred training utterances: encoder
chunks of the utterances' first P ids with their speaker's row, decoder windows (the runtime Decoder
fills them) from the float encoder's hidden and pitch laid out by the aligner's durations, a quarter
of them with the pitch raised 1.3× so the runtime's pitch factor stays inside the range.  The
float reference (``TorchEncoderGraph``/``TorchDecoderGraph``) runs through the same runtime classes,
so ``int8_check`` compares like with like.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tflite
import torch
from myna.inference.acoustic import Alignment, Decoder, Encoder
from workbench.tflite_builder import PRECISIONS, RANGE_METHODS, Node, QuantGraph, QuantOptions

from .acoustic import AcousticConfig, AcousticModel, Corpus, Item, TorchDecoderGraph, TorchEncoderGraph, load_checkpoint
from .blocks import equalize_blocks, export_film_block, numpy_block_weights

_LOGGER = logging.getLogger(__name__)

PITCH_CALIBRATION_FACTOR = 1.3
"""Every fourth decoder calibration window has its pitch raised by this, for the runtime's pitch factor."""


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def numpy_weights(model: AcousticModel) -> dict[str, Any]:
    """Float64 numpy weights of the whole model, BatchNorm folded in every block."""
    s = model.state_dict()
    cfg = model.cfg

    def head(name: str) -> dict[str, Any]:
        return {"blocks": [numpy_block_weights(s, f"{name}.blocks.{j}.") for j in range(cfg.predictor_blocks)],
                "out_w": _np(s[f"{name}.out.weight"]), "out_b": _np(s[f"{name}.out.bias"])}

    return {
        "emb": _np(s["emb.weight"]),
        "encoder": [numpy_block_weights(s, f"encoder.{i}.") for i in range(len(cfg.encoder_dilations))],
        "heads": {name: head(name) for name in ("duration", "pitch", "energy")},
        "energy_w": _np(s["energy_emb.weight"]), "energy_b": _np(s["energy_emb.bias"]),
        "pitch1_w": _np(s["pitch_emb.0.weight"]), "pitch1_b": _np(s["pitch_emb.0.bias"]),
        "pitch2_w": _np(s["pitch_emb.2.weight"]), "pitch2_b": _np(s["pitch_emb.2.bias"]),
        "decoder": [numpy_block_weights(s, f"decoder.{i}.") for i in range(cfg.decoder_blocks)],
        "mel_w": _np(s["mel.weight"]), "mel_b": _np(s["mel.bias"]),
    }


def equalize_encoder(w: dict[str, Any], ids: np.ndarray, speakers: np.ndarray, alpha: float) -> dict[str, Any]:
    """``w`` with the channels inside every encoder and head block equalized on the calibration ids (same function)."""
    mask = (ids != 0).astype(np.float64)[..., None]
    x = w["emb"][ids] * mask
    encoder, x = equalize_blocks(w["encoder"], x, speakers, mask, alpha)
    heads = {name: {**head, "blocks": equalize_blocks(head["blocks"], x, speakers, mask, alpha)[0]}
             for name, head in w["heads"].items()}
    return {**w, "encoder": encoder, "heads": heads}


def build_encoder(w: dict[str, Any], cfg: AcousticConfig, bucket: int, ids: np.ndarray, speakers: np.ndarray,
                  precision: str = "int8", options: QuantOptions | None = None) -> bytes:
    """INT8 (or float32) encoder graph bytes, calibrated on ``ids`` [N, P] and ``speakers`` [N, S]."""
    p, h = bucket, cfg.hidden
    g = QuantGraph(f"{cfg.tier}_encoder", precision, options)
    if g.options.equalize and not g.is_float:
        w = equalize_encoder(w, ids, speakers, g.options.equalize)
    id_node = g.input("phoneme_ids", (1, p), ids, dtype=tflite.TensorType.INT32)
    spk_input = g.input("speaker", (1, cfg.speaker_dim), speakers)
    mask_table = np.ones((cfg.n_ids, 1))
    mask_table[0] = 0.0
    # The two GATHERs (not delegated) come first in execution order: TFLite partitions greedily in that
    # order, so the speaker's FiLM ops, which do not depend on them, would otherwise be split off into a
    # second XNNPACK partition ahead of the GATHERs.
    mask_rows = g.gather(mask_table, id_node)
    emb_rows = g.gather(w["emb"], id_node)
    spk = g.quantize(spk_input)
    mask = g.reshape(mask_rows, (1, 1, p, 1))
    x = g.mul(g.reshape(emb_rows, (1, 1, p, h)), mask)
    for blk in w["encoder"]:
        x = export_film_block(g, x, spk, mask, blk)

    def head(name: str) -> Node:
        y = x
        for blk in w["heads"][name]["blocks"]:
            y = export_film_block(g, y, spk, mask, blk)
        return g.fully_connected(y, w["heads"][name]["out_w"], w["heads"][name]["out_b"])

    log_duration, pitch, energy = head("duration"), head("pitch"), head("energy")
    hidden = g.mul(g.add(x, g.fully_connected(energy, w["energy_w"], w["energy_b"])), mask)
    g.dequantize(g.reshape(hidden, (1, p, h)), "hidden")
    g.dequantize(g.reshape(log_duration, (1, p)), "log_duration")
    g.dequantize(g.reshape(pitch, (1, p)), "pitch")
    return g.serialize()


def build_decoder(w: dict[str, Any], cfg: AcousticConfig, frame_chunk: int, frames: np.ndarray, frame_pitch: np.ndarray,
                  speakers: np.ndarray, precision: str = "int8", options: QuantOptions | None = None) -> bytes:
    """INT8 (or float32) decoder graph bytes, calibrated on windows ``frames`` [N, F, H], ``frame_pitch`` [N, F, 1], ``speakers``."""
    f, h = frame_chunk, cfg.hidden
    g = QuantGraph(f"{cfg.tier}_decoder", precision, options)
    if g.options.equalize and not g.is_float:
        x0 = frames + np.maximum(frame_pitch @ w["pitch1_w"].T + w["pitch1_b"], 0.0) @ w["pitch2_w"].T + w["pitch2_b"]
        w = {**w, "decoder": equalize_blocks(w["decoder"], x0, speakers, None, g.options.equalize)[0]}
    x = g.reshape(g.quantize(g.input("frames", (1, f, h), frames)), (1, 1, f, h))
    fp = g.reshape(g.quantize(g.input("frame_pitch", (1, f, 1), frame_pitch)), (1, 1, f, 1))
    spk = g.quantize(g.input("speaker", (1, cfg.speaker_dim), speakers))
    pe = g.fully_connected(g.fully_connected(fp, w["pitch1_w"], w["pitch1_b"], relu=True), w["pitch2_w"], w["pitch2_b"])
    x = g.add(x, pe)
    for blk in w["decoder"]:
        x = export_film_block(g, x, spk, None, blk)
    mel = g.fully_connected(x, w["mel_w"], w["mel_b"])
    g.dequantize(g.reshape(mel, (1, f, cfg.n_mels)), "mel")
    return g.serialize()


class _Capture:
    """A decoder stand-in for the runtime Decoder: keeps a copy of every window it is asked to run."""

    def __init__(self, cfg: AcousticConfig, frame_chunk: int) -> None:
        self.inputs = {"frames": np.zeros((1, frame_chunk, cfg.hidden), np.float32),
                       "frame_pitch": np.zeros((1, frame_chunk, 1), np.float32)}
        self.outputs = {"mel": np.zeros((1, frame_chunk, cfg.n_mels), np.float32)}
        self.windows: list[tuple[np.ndarray, np.ndarray]] = []

    def run(self) -> None:
        self.windows.append((self.inputs["frames"][0].copy(), self.inputs["frame_pitch"][0].copy()))


def _speaker_rows(model: AcousticModel, ckpt_speakers: Sequence[str], corpus: Corpus) -> dict[int, np.ndarray]:
    """Corpus speaker row → the checkpoint's embedding row (speakers the model never saw are left out)."""
    table = model.speakers.weight.detach().numpy().astype(np.float32)
    return {i: table[ckpt_speakers.index(name)] for i, name in enumerate(corpus.speakers) if name in ckpt_speakers}


def true_alignment(encoder_graph: TorchEncoderGraph, ids: np.ndarray, durations: np.ndarray, speaker: np.ndarray,
                   pitch_factor: float = 1.0) -> Alignment:
    """Float encoder outputs for one chunk laid out with the aligner's ``durations`` (not the predicted ones)."""
    bucket = encoder_graph.bucket
    encoder_graph.inputs["phoneme_ids"].fill(0)
    encoder_graph.inputs["phoneme_ids"][0, : ids.size] = ids
    encoder_graph.inputs["speaker"][0] = speaker
    encoder_graph.run()
    d = np.zeros(bucket, np.int64)
    d[: durations.size] = durations
    return Alignment(encoder_graph.outputs["hidden"][0].copy(),
                     (encoder_graph.outputs["pitch"][0] * np.float32(pitch_factor)).astype(np.float32), d, np.cumsum(d))


def calibration_set(model: AcousticModel, ckpt_speakers: Sequence[str], features: Path, n: int, bucket: int,
                    frame_chunk: int, overlap: int, seed: int = 0, split: str = "train") -> dict[str, np.ndarray]:
    """Encoder chunks and decoder windows of up to ``n`` utterances of ``split``, the runtime's way."""
    corpus = Corpus(features)
    rows = _speaker_rows(model, ckpt_speakers, corpus)
    items: list[Item] = [i for i in corpus.split(split) if i.speaker in rows] or [i for i in corpus.items if i.speaker in rows]
    if not items:
        raise ValueError(f"{features}: no utterance of the checkpoint's speakers {list(ckpt_speakers)}")
    rng = random.Random(seed)
    chosen = rng.sample(items, min(n, len(items)))
    enc_graph = TorchEncoderGraph(model, bucket)
    capture = _Capture(model.cfg, frame_chunk)
    decoder = Decoder(capture, overlap)  # type: ignore[arg-type]
    ids_out, spk_out, win_spk = [], [], []
    for k, item in enumerate(chosen):
        ex = corpus.example(item)
        ids = ex.ids[:bucket].astype(np.int32)
        padded = np.zeros(bucket, np.int32)
        padded[: ids.size] = ids
        ids_out.append(padded)
        spk_out.append(rows[item.speaker])
        factor = PITCH_CALIBRATION_FACTOR if k % 4 == 3 else 1.0
        alignment = true_alignment(enc_graph, ids, ex.durations[:bucket], rows[item.speaker], factor)
        total = alignment.total_frames
        if total == 0:
            continue
        starts = list(range(0, total, decoder.hop_frames))
        # Each utterance's first window (zeros before the start) plus one more at random.
        for first in sorted({starts[0], rng.choice(starts)}):
            decoder.run(alignment, first)
            win_spk.append(rows[item.speaker])
    frames = np.stack([w[0] for w in capture.windows])
    pitch = np.stack([w[1] for w in capture.windows])
    return {"ids": np.stack(ids_out), "speakers": np.stack(spk_out).astype(np.float64),
            "frames": frames.astype(np.float64), "frame_pitch": pitch.astype(np.float64),
            "window_speakers": np.stack(win_spk).astype(np.float64)}


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def graph_entry(path: Path, inputs: Sequence[tuple[str, str, Sequence[int]]],
                outputs: Sequence[tuple[str, str, Sequence[int]]], quantization: str = "int8") -> dict[str, Any]:
    """A manifest ``graphs.<role>`` entry (the format of models/placeholder/manifest.json)."""
    def tensors(specs: Sequence[tuple[str, str, Sequence[int]]]) -> list[dict[str, Any]]:
        return [{"name": name, "dtype": dtype, "shape": list(shape)} for name, dtype, shape in specs]

    return {"file": path.name, "sha256": sha256(path), "quantization": quantization,
            "inputs": tensors(inputs), "outputs": tensors(outputs)}


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation; None where a side does not vary (a head whose INT8 output sits on one grid step)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def int8_check(model: AcousticModel, ckpt_speakers: Sequence[str], features: Path, entries: dict[str, Any],
               out_dir: Path, overlap: int, n: int = 24, seed: int = 1) -> dict[str, Any]:
    """Exported graphs (INT8 or float32) vs the float torch model through the runtime's Encoder/Decoder on valid utterances.

    The decoder is compared on identical inputs (the float encoder's alignment), so each number is that
    graph's own quantization error.  Also returns each graph's XNNPACK partition count.
    """
    from myna.inference.runtime import Graph
    from myna.voices import GraphSpec

    graphs = {role: Graph(out_dir / e["file"], GraphSpec.from_dict(e, role), num_threads=1) for role, e in entries.items()}
    bucket = int(graphs["encoder"].inputs["phoneme_ids"].shape[1])
    frame_chunk = int(graphs["decoder"].inputs["frames"].shape[1])
    corpus = Corpus(features)
    rows = _speaker_rows(model, ckpt_speakers, corpus)
    items = [i for i in corpus.split("valid") if i.speaker in rows] or [i for i in corpus.items if i.speaker in rows]
    chosen = random.Random(seed).sample(items, min(n, len(items)))
    f_enc, q_enc = Encoder(TorchEncoderGraph(model, bucket)), Encoder(graphs["encoder"])  # type: ignore[arg-type]
    f_dec = Decoder(TorchDecoderGraph(model, frame_chunk), overlap)  # type: ignore[arg-type]
    q_dec = Decoder(graphs["decoder"], overlap)
    got: dict[str, list[np.ndarray]] = {k: [] for k in ("hidden", "log_duration", "pitch", "mel")}
    ref: dict[str, list[np.ndarray]] = {k: [] for k in got}
    for item in chosen:
        ex = corpus.example(item)
        ids = tuple(int(i) for i in ex.ids[:bucket])
        for g in (graphs["encoder"], graphs["decoder"], f_enc.graph, f_dec.graph):
            g.inputs["speaker"][0] = rows[item.speaker]
        fa, qa = f_enc.run(ids, 1.0, 1.0), q_enc.run(ids, 1.0, 1.0)
        k = len(ids)
        ref["hidden"].append(fa.hidden[:k]); got["hidden"].append(qa.hidden[:k])
        ref["pitch"].append(fa.pitch[:k]); got["pitch"].append(qa.pitch[:k])
        ref["log_duration"].append(f_enc.graph.outputs["log_duration"][0, :k].copy())
        got["log_duration"].append(graphs["encoder"].outputs["log_duration"][0, :k].copy())
        truth = true_alignment(f_enc.graph, np.asarray(ids, np.int32), ex.durations[:bucket], rows[item.speaker])  # type: ignore[arg-type]
        for first in range(0, truth.total_frames, f_dec.hop_frames):
            valid = min(f_dec.hop_frames, truth.total_frames - first)
            ref["mel"].append(f_dec.run(truth, first)[:valid].copy())
            got["mel"].append(q_dec.run(truth, first)[:valid].copy())
    report: dict[str, Any] = {"utterances": len(chosen),
                              "partitions": {role: g.delegate_partitions() for role, g in graphs.items()}}
    for key in got:
        a, b = np.concatenate([x.ravel() for x in got[key]]), np.concatenate([x.ravel() for x in ref[key]])
        report[key] = {"corr": _corr(a, b), "mae": float(np.abs(a - b).mean()), "ref_std": float(b.std())}
    mel_q = np.concatenate(got["mel"]); mel_f = np.concatenate(ref["mel"])
    # Correlation of the deviations from each bin's mean: what the bias alone cannot explain.
    report["mel"]["corr_centred"] = _corr(mel_q - mel_f.mean(0), mel_f - mel_f.mean(0))
    return report


def check_key(precision: str) -> str:
    """The report key of the graphs-vs-torch measurement: ``int8_vs_float`` or ``float32_vs_float``."""
    return f"{precision}_vs_float"


def export_acoustic_graphs(checkpoint: Path, out_dir: Path, tier: str, calib_features_dir: Path, *,
                           calib_chunks: int = 300, frame_chunk: int | None = None, overlap: int | None = None,
                           check: bool = True, seed: int = 0, precision: str = "int8",
                           options: QuantOptions | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write ``<tier>-encoder.tflite`` and ``<tier>-decoder.tflite`` into ``out_dir``; return (entries, report).

    ``entries`` is ``{"encoder": entry, "decoder": entry}`` (file, sha256, quantization, inputs, outputs).  The
    tier's geometry is the checkpoint config's ``phoneme_bucket`` and ``frame_chunk`` (``frame_chunk``
    overrides it; it must equal the vocoder's) and ``overlap`` defaults to the decoder's context.  With
    ``check`` the graphs are loaded in LiteRT and compared with the float model (under ``check_key(precision)``
    in the report); a graph that is not one XNNPACK partition raises RuntimeError.  ``precision`` ``float32``
    writes the unquantized twins (same calibration, so the same construction path); ``options`` are the INT8
    choices (``QuantOptions``; the default writes the shipped bytes).  Nothing is written beside the checkpoint.
    """
    model, speakers, _ = load_checkpoint(checkpoint)
    cfg = model.cfg
    f = frame_chunk or cfg.frame_chunk
    o = cfg.decoder_context if overlap is None else overlap
    if o < cfg.decoder_context:
        raise ValueError(f"overlap {o} is below the decoder's receptive field of ±{cfg.decoder_context} frames")
    if f - 2 * o < o:
        raise ValueError(f"frame_chunk {f} too small for overlap {o} (the runtime needs frame_chunk >= 3·overlap)")
    p, h, s = cfg.phoneme_bucket, cfg.hidden, cfg.speaker_dim
    calib = calibration_set(model, speakers, calib_features_dir, calib_chunks, p, f, o, seed)
    weights = numpy_weights(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    enc_path, dec_path = out_dir / f"{tier}-encoder.tflite", out_dir / f"{tier}-decoder.tflite"
    enc_path.write_bytes(build_encoder(weights, cfg, p, calib["ids"], calib["speakers"], precision, options))
    dec_path.write_bytes(build_decoder(weights, cfg, f, calib["frames"], calib["frame_pitch"], calib["window_speakers"],
                                       precision, options))
    entries = {
        "encoder": graph_entry(enc_path, [("phoneme_ids", "int32", (1, p)), ("speaker", "float32", (1, s))],
                               [("hidden", "float32", (1, p, h)), ("log_duration", "float32", (1, p)),
                                ("pitch", "float32", (1, p))], precision),
        "decoder": graph_entry(dec_path, [("frames", "float32", (1, f, h)), ("frame_pitch", "float32", (1, f, 1)),
                                          ("speaker", "float32", (1, s))],
                               [("mel", "float32", (1, f, cfg.n_mels))], precision),
    }
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "tier": tier, "phoneme_bucket": p, "frame_chunk": f,
                              "overlap": o, "decoder_context": cfg.decoder_context, "speakers": speakers,
                              "calibration": {"encoder_chunks": int(calib["ids"].shape[0]),
                                              "decoder_windows": int(calib["frames"].shape[0])},
                              "bytes": {"encoder": enc_path.stat().st_size, "decoder": dec_path.stat().st_size}}
    if check:
        key = check_key(precision)
        report[key] = int8_check(model, speakers, calib_features_dir, entries, out_dir, o)
        bad = {r: n for r, n in report[key]["partitions"].items() if n != 1}
        if bad:
            raise RuntimeError(f"graphs not in one XNNPACK partition: {bad}")
    _LOGGER.info("exported %s (%s): %s", tier, precision, json.dumps(report))
    return entries, report


def export_acoustic(checkpoint: Path, out_dir: Path, tier: str, calib_features_dir: Path, *, calib_chunks: int = 300,
                    frame_chunk: int | None = None, overlap: int | None = None, check: bool = True,
                    seed: int = 0, precision: str = "int8", options: QuantOptions | None = None) -> dict[str, Any]:
    """``export_acoustic_graphs``, its measurements saved as ``<checkpoint dir>/export-<tier>.json``; return the entries.

    A float32 export's measurements go to ``export-<tier>-float32.json``.
    """
    entries, report = export_acoustic_graphs(checkpoint, out_dir, tier, calib_features_dir, calib_chunks=calib_chunks,
                                             frame_chunk=frame_chunk, overlap=overlap, check=check, seed=seed,
                                             precision=precision, options=options)
    suffix = "" if precision == "int8" else f"-{precision}"
    (checkpoint.parent / f"export-{tier}{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    return entries


def main(argv: list[str] | None = None) -> int:
    """Export from the command line; prints the manifest entries."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="e.g. out/acoustic-small/best.pt")
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--tier", required=True)
    ap.add_argument("--features", type=Path, default=Path("out/features"))
    ap.add_argument("--calib-chunks", type=int, default=300)
    ap.add_argument("--frame-chunk", type=int, default=None)
    ap.add_argument("--overlap", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=PRECISIONS, default="int8", help="int8 (shipped) or its float32 twin")
    ap.add_argument("--int8-fc-per-channel", action="store_true", help="per-output-row FULLY_CONNECTED weight scales")
    ap.add_argument("--int8-ranges", choices=RANGE_METHODS, default="minmax", help="activation range method")
    ap.add_argument("--int8-equalize", type=float, default=0.0, help="cross-layer channel equalization exponent (0 off)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    entries = export_acoustic(args.checkpoint, args.out_dir, args.tier, args.features, calib_chunks=args.calib_chunks,
                              frame_chunk=args.frame_chunk, overlap=args.overlap, precision=args.precision,
                              options=QuantOptions(per_channel_fc=args.int8_fc_per_channel, range_method=args.int8_ranges,
                                                   equalize=args.int8_equalize))
    print(json.dumps(entries, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
