"""Build a trained voice pack: per tier, the acoustic and vocoder checkpoints → INT8 graphs, adapters, manifest, card.

``precision="float32"`` builds the same pack with the graphs' float32 twins (same construction code and
calibration, no quantization; the manifest's ``quantization`` says ``float32``): the reference INT8 is
measured against, never shipped.

One speaker vector per voice drives all graphs of every tier: the adapters are rows of the acoustic
checkpoint's speaker table, and each vocoder gets a least-squares affine map from that table folded into
its FiLM layers (``export_vocoder.fold_speaker_map``).  Tiers therefore must come from acoustic
checkpoints with the same speaker table (the same file, or equal speakers and rows); anything else is
refused, since no single adapter could serve two tables.

Streaming geometry per tier (``daemon/myna/inference``): ``overlap`` covers the decoder's and the vocoder's
receptive fields; each run finishes ``frame_chunk - 2·overlap`` frames, at least ``MIN_HOP_FRAMES``, at
least ``overlap`` (the vocoder's right context comes from the next decoder run) and at least ``n_fft/hop``
frames; ``frame_chunk`` is rounded up to a multiple of 8 (64/12 for tiny and small, 72/16 for base).

Outputs in ``out``: ``<tier>-{encoder,decoder,vocoder}.tflite``, ``<voice>.npz`` (``speaker`` [1, S]
float32, fixed zip timestamps), ``manifest.json``, ``MODEL_CARD.md`` and ``export.json`` (every
measurement).  The same inputs give the same bytes.  The pack is built in ``<out>.partial`` and swapped in
at the end, so a failed build leaves the previous pack alone.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from myna import voices
from myna.text.phonemes import CURRENT
from workbench.placeholder_voice import write_npz
from workbench.tflite_builder import QuantOptions

from . import export_vocoder
from .acoustic import AcousticModel, load_checkpoint, speaker_table
from .audio import AUDIO, AudioConfig
from .export_acoustic import check_key, export_acoustic_graphs
from .features import read_index

_LOGGER = logging.getLogger(__name__)

MIN_HOP_FRAMES = 40
"""Frames each decoder/vocoder run finishes at least (≈ 0.46 s): fewer runs per second of audio."""
LANGUAGE = "en-US"
ENGINE_NAMES = {"flite": "Flite", "festival": "Festival", "kokoro": "Kokoro", "piper": "Piper"}
ENCODER_PARTS = frozenset({"emb", "encoder", "duration", "pitch", "energy", "energy_emb"})
DECODER_PARTS = frozenset({"pitch_emb", "decoder", "mel"})


class PackError(ValueError):
    """The inputs cannot make a consistent pack (the message says which and why)."""


@dataclass(frozen=True)
class TierSource:
    """The two checkpoints of one tier."""

    tier: str
    """Tier name (``myna.voices.TIER_ORDER``)."""
    acoustic: Path
    """Acoustic checkpoint (weights only, e.g. ``out/acoustic-small/best.pt``)."""
    vocoder: Path
    """Vocoder checkpoint (weights only, e.g. ``out/vocoder-small/final.pt``)."""

    @classmethod
    def parse(cls, text: str) -> "TierSource":
        """``small=out/acoustic-small/best.pt,out/vocoder-small/final.pt``."""
        tier, sep, paths = text.partition("=")
        parts = [p for p in paths.split(",") if p]
        if not sep or len(parts) != 2:
            raise PackError(f"--tier {text!r}: expected TIER=ACOUSTIC.pt,VOCODER.pt")
        if tier not in voices.TIER_ORDER:
            raise PackError(f"--tier {text!r}: unknown tier {tier!r} (known: {', '.join(voices.TIER_ORDER)})")
        return cls(tier, Path(parts[0]), Path(parts[1]))


def geometry(decoder_context: int, vocoder_receptive: int, audio: AudioConfig = AUDIO) -> tuple[int, int]:
    """``(frame_chunk, overlap)`` of a tier whose decoder sees ±``decoder_context`` and vocoder ±``vocoder_receptive`` frames."""
    overlap = max(decoder_context, vocoder_receptive)
    hop_frames = max(MIN_HOP_FRAMES, overlap, -(-audio.n_fft // audio.hop_length))
    return -(-(2 * overlap + hop_frames) // 8) * 8, overlap


def voice_name(speaker: str) -> str:
    """Readable name of a corpus speaker: ``joe`` → Joe, ``flite-slt`` → Flite SLT, ``kokoro-jf_alpha`` → Kokoro jf_alpha."""
    engine, sep, rest = speaker.partition("-")
    if not sep:
        return speaker.capitalize()
    if engine == "kokoro":
        return f"Kokoro {rest}"
    return f"{ENGINE_NAMES.get(engine, engine.capitalize())} {rest.replace('-', ' ').upper()}"


def acoustic_params(model: AcousticModel) -> dict[str, int]:
    """Trainable parameters of the float model behind each acoustic graph, and of the speaker table."""
    counts = {"encoder": 0, "decoder": 0, "speaker_table": 0}
    for name, p in model.named_parameters():
        head = name.split(".")[0]
        role = "encoder" if head in ENCODER_PARTS else "decoder" if head in DECODER_PARTS else "speaker_table"
        counts[role] += p.numel()
    return counts


def load_datacard(path: Path) -> dict[str, Any]:
    """The corpus data card (``make_corpus.py``'s ``datacard.json``)."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PackError(f"data card {path}: {exc.strerror}; pass --datacard <corpus>/datacard.json") from None
    if not isinstance(card, dict) or not isinstance(card.get("speakers"), dict):
        raise PackError(f"data card {path}: no 'speakers' table")
    return card


def training_summary(checkpoint: Path, raw: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Step and validation losses of a weights-only checkpoint, and its run's length from ``history.json`` beside it."""
    ckpt = raw if raw is not None else torch.load(checkpoint, map_location="cpu", weights_only=True)
    out: dict[str, Any] = {"checkpoint": str(checkpoint), "step": ckpt.get("step")}
    valid = ckpt.get("valid")
    if isinstance(valid, Mapping):
        out["valid"] = {k: float(v) for k, v in valid.items() if k != "step"}
    history = checkpoint.parent / "history.json"
    if history.is_file():
        h = json.loads(history.read_text())
        steps = [r["step"] for key in ("train", "valid") for r in h.get(key, [])]
        out["run_steps"] = max(steps) if steps else None
        out["run_minutes"] = round(float(h.get("seconds", 0.0)) / 60.0, 1)
    return out


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, tuples → lists, numpy scalars → Python."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def export_vocoder_tier(checkpoint: Path, out_dir: Path, tier: str, features: Path, speakers: Sequence[str],
                        table: np.ndarray, frame_chunk: int, overlap: int, *, voice_ids: Sequence[str] | None = None,
                        windows: int = 256, measure_windows: int = 32,
                        precision: str = "int8",
                        options: QuantOptions | None = None) -> tuple[voices.GraphSpec, dict[str, Any]]:
    """Write ``<tier>-vocoder.tflite`` taking the acoustic ``table``'s rows; return its manifest entry and measurements.

    ``speakers`` name the rows of ``table``; the map is fitted on those the vocoder was trained on, which must
    include every one of ``voice_ids`` (default: all of ``speakers``).
    """
    model, own, voc_speakers = export_vocoder.load_checkpoint(checkpoint)
    cfg = model.cfg
    if cfg.receptive_frames > overlap:
        raise PackError(f"{checkpoint}: vocoder sees ±{cfg.receptive_frames} frames, more than the overlap {overlap}")
    missing = [s for s in (voice_ids or speakers) if s not in voc_speakers]
    if missing:
        raise PackError(f"{checkpoint}: the vocoder was not trained on {missing}; its speaker map would be a guess")
    common = [s for s in voc_speakers if s in speakers]
    own_rows = own[[voc_speakers.index(s) for s in common]]
    target = np.asarray(table, np.float64)[[list(speakers).index(s) for s in common]]
    state, residual = export_vocoder.fold_speaker_map(model.state_dict(), own_rows, target)
    model.load_state_dict(state)
    mels, spk = export_vocoder.calibration_windows(features, target, common, windows, frame_chunk)
    graph = export_vocoder.build_graph(state, cfg, mels, spk, frame_chunk, precision, options)
    data = graph.serialize()
    path = out_dir / f"{tier}-vocoder.tflite"
    path.write_bytes(data)
    rows = read_index(features)
    split = "valid" if any(r["split"] == "valid" and r["speaker"] in common for r in rows) else "train"
    vm, vs = export_vocoder.calibration_windows(features, target, common, measure_windows, frame_chunk, seed=1, split=split)
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "speaker_map_residual": residual,
                              "receptive_frames": cfg.receptive_frames, "calibration_windows": windows,
                              "measured_on": split, "bytes": len(data)}
    report.update(export_vocoder.measure(model, data, vm, vs, cfg.receptive_frames))
    if report["xnnpack_partitions"] != 1:
        raise RuntimeError(f"{path.name}: {report['xnnpack_partitions']:.0f} XNNPACK partitions, expected 1")
    return export_vocoder.graph_spec(graph, path.name, data), report


def _shared(folder: Path, graph: voices.GraphSpec, written: dict[str, str]) -> voices.GraphSpec:
    """``graph``, or — when an earlier tier wrote the same bytes (e.g. one vocoder for two tiers) — its file
    deleted and the spec pointing at the earlier one: every device gets the whole pack, so a copy is wasted disk."""
    first = written.setdefault(graph.sha256, graph.file)
    if first == graph.file:
        return graph
    (folder / graph.file).unlink()
    return replace(graph, file=first)


def _prepare_out(out: Path, pack_id: str) -> Path:
    """A fresh ``<out>.partial`` folder; refuse to later replace ``out`` unless it is empty or this pack."""
    if out.exists():
        manifest = out / voices.MANIFEST_NAME
        previous = None
        if manifest.is_file():
            try:
                previous = json.loads(manifest.read_text(encoding="utf-8")).get("pack_id")
            except ValueError:
                previous = None
        if not out.is_dir() or (any(out.iterdir()) and previous != pack_id):
            raise PackError(f"{out} exists and is not a previous build of pack {pack_id!r}; choose another --out")
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    return partial


def build_voice_pack(pack_id: str, out: Path, features: Path, tiers: Iterable[TierSource], datacard: Path, *,
                     default_voice: str = "joe", voice_ids: Sequence[str] | None = None, licence: str = "Apache-2.0",
                     calib_chunks: int = 300, vocoder_windows: int = 256, measure_windows: int = 32,
                     precision: str = "int8", options: QuantOptions | None = None,
                     training_notes: Sequence[str] = ()) -> Path:
    """Export every tier and write the pack to ``out`` (replacing a previous build of the same pack); return ``out``.

    ``precision`` is ``int8`` (the shipped graphs) or ``float32`` (their unquantized twins); ``options`` are
    the INT8 choices (default: the shipped ones).  ``training_notes`` are lines of the run history a
    checkpoint cannot tell (a fine-tune elsewhere, its data); the model card lists them under Training.
    Nothing is written beside the checkpoints.
    """
    sources = sorted(tiers, key=lambda t: voices.TIER_ORDER.index(t.tier))
    if not sources:
        raise PackError("no --tier given")
    if len({s.tier for s in sources}) != len(sources):
        raise PackError(f"a tier is given twice: {[s.tier for s in sources]}")
    card = load_datacard(datacard)

    # Everything that can be refused is checked before the slow exports.
    loaded = {}
    for src in sources:
        model, speakers, raw = load_checkpoint(src.acoustic)
        cfg = model.cfg
        if tuple(cfg.inventory) != (CURRENT.name, CURRENT.version) or cfg.n_ids != CURRENT.size:
            raise PackError(f"{src.acoustic}: trained on inventory {cfg.inventory} with {cfg.n_ids} ids, "
                            f"the runtime's is {CURRENT.name} v{CURRENT.version} ({CURRENT.size} ids)")
        loaded[src.tier] = (model, speakers, speaker_table(model), raw)
    first = sources[0]
    _, speakers, table, _ = loaded[first.tier]
    for src in sources[1:]:
        _, other_speakers, other_table, _ = loaded[src.tier]
        if other_speakers != speakers or other_table.shape != table.shape or not np.array_equal(other_table, table):
            raise PackError(
                f"tiers {first.tier} ({first.acoustic}) and {src.tier} ({src.acoustic}) have different acoustic speaker "
                "tables: every tier of a pack takes the same speaker vector per voice, so build one pack per table "
                "or train the tiers' acoustic models on one shared table")
    chosen = list(voice_ids) if voice_ids else list(speakers)
    unknown = [v for v in chosen if v not in speakers]
    if unknown:
        raise PackError(f"voices {unknown} are not speakers of the acoustic checkpoints ({speakers})")
    if len(set(chosen)) != len(chosen):
        raise PackError(f"a voice is listed twice: {chosen}")
    if default_voice not in chosen:
        raise PackError(f"default voice {default_voice!r} is not one of the pack's voices {chosen}")
    no_card = [s for s in speakers if s not in card["speakers"]]
    if no_card:
        raise PackError(f"{datacard}: no entry for training speakers {no_card} (their licence is unknown)")

    partial = _prepare_out(out, pack_id)
    tier_specs: dict[str, voices.TierSpec] = {}
    reports: dict[str, Any] = {}
    written: dict[str, str] = {}  # sha256 → file name of every graph kept so far
    for src in sources:
        model, _, _, raw = loaded[src.tier]
        cfg = model.cfg
        voc_model = export_vocoder.load_checkpoint(src.vocoder)[0]
        voc_cfg = voc_model.cfg
        if (voc_cfg.n_mels, voc_cfg.speaker_dim) != (cfg.n_mels, cfg.speaker_dim):
            raise PackError(f"{src.vocoder}: {voc_cfg.n_mels} mels and speaker width {voc_cfg.speaker_dim}, the acoustic "
                            f"model has {cfg.n_mels} and {cfg.speaker_dim}")
        frame_chunk, overlap = geometry(cfg.decoder_context, voc_cfg.receptive_frames)
        _LOGGER.info("tier %s: bucket %d, frame_chunk %d, overlap %d", src.tier, cfg.phoneme_bucket, frame_chunk, overlap)
        entries, acoustic_report = export_acoustic_graphs(src.acoustic, partial, src.tier, features,
                                                          calib_chunks=calib_chunks, frame_chunk=frame_chunk,
                                                          overlap=overlap, precision=precision, options=options)
        vocoder_spec, vocoder_report = export_vocoder_tier(
            src.vocoder, partial, src.tier, features, speakers, table, frame_chunk, overlap, voice_ids=chosen,
            windows=vocoder_windows, measure_windows=measure_windows, precision=precision, options=options)
        graphs = {role: voices.GraphSpec.from_dict(entries[role], role) for role in ("encoder", "decoder")}
        graphs["vocoder"] = vocoder_spec
        graphs = {role: _shared(partial, g, written) for role, g in graphs.items()}
        tier_specs[src.tier] = voices.TierSpec(cfg.phoneme_bucket, frame_chunk, overlap, graphs)
        params = acoustic_params(model)
        reports[src.tier] = {
            "phoneme_bucket": cfg.phoneme_bucket, "frame_chunk": frame_chunk, "overlap": overlap,
            "decoder_context": cfg.decoder_context, "vocoder_receptive_frames": voc_cfg.receptive_frames,
            "acoustic_config": cfg.to_dict(), "vocoder_config": voc_cfg.to_dict(),
            "params": {"encoder": params["encoder"], "decoder": params["decoder"],
                       "vocoder": sum(p.numel() for p in voc_model.parameters())},
            "bytes": {role: (partial / g.file).stat().st_size for role, g in graphs.items()},
            "training": {"acoustic": training_summary(src.acoustic, raw), "vocoder": training_summary(src.vocoder)},
            check_key(precision): {"acoustic": acoustic_report.get(check_key(precision)), "vocoder": vocoder_report},
            "calibration": {"acoustic": acoustic_report.get("calibration"), "vocoder_windows": vocoder_windows},
        }
        if precision == "int8" and options is not None and options != QuantOptions():
            # Only a non-default build says so: the default export.json stays as it was.
            reports[src.tier]["int8_options"] = options.to_dict()

    voice_specs: dict[str, voices.VoiceSpec] = {}
    for voice_id in chosen:
        adapter = f"{voice_id}.npz"
        row = table[speakers.index(voice_id)].astype(np.float32).reshape(1, -1)
        write_npz(partial / adapter, {"speaker": row})
        voice_specs[voice_id] = voices.VoiceSpec(voice_name(voice_id), LANGUAGE, adapter)
    data = _data_summary(card, speakers, chosen)
    manifest = voices.Manifest(
        format_version=voices.FORMAT_VERSION,
        pack_id=pack_id,
        default_voice=default_voice,
        voices=voice_specs,
        audio=voices.AudioSpec.from_dict({**AUDIO.manifest_audio(), "mel_floor": float(np.log(AUDIO.log_floor))},
                                         "audio"),
        phoneme_inventory=voices.InventorySpec(CURRENT.name, CURRENT.version, CURRENT.size),
        tiers=tier_specs,
        licence=licence,
        provenance=_provenance(data, sources),
    )
    (partial / voices.MANIFEST_NAME).write_text(json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
    sizes = {p.name: p.stat().st_size for p in sorted(partial.iterdir())}
    export = _clean({"pack_id": pack_id, "default_voice": default_voice, "voices": chosen, "licence": licence,
                     "audio": manifest.audio.to_dict(), "tiers": reports, "data": data, "files": sizes,
                     "pack_bytes": sum(sizes.values()), "training_notes": list(training_notes)})
    (partial / "export.json").write_text(json.dumps(export, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (partial / "MODEL_CARD.md").write_text(model_card(manifest, export), encoding="utf-8")
    voices.VoicePack.load(partial)  # the runtime's own validation, before the pack replaces anything
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return out


def _data_summary(card: Mapping[str, Any], speakers: Sequence[str], chosen: Sequence[str]) -> dict[str, Any]:
    rows = {}
    for name in speakers:
        entry = card["speakers"][name]
        rows[name] = {"voice": name in chosen, "engine": entry.get("engine"), "engine_voice": entry.get("voice"),
                      "hours": entry.get("hours"), "utterances": entry.get("utterances"),
                      "licence": entry.get("licence"), "provenance": entry.get("provenance")}
    return {"datacard_generated": card.get("generated"), "hours": round(sum(float(r["hours"] or 0) for r in rows.values()), 4),
            "speakers": rows, "sources": card.get("sources", {})}


def _provenance(data: Mapping[str, Any], sources: Sequence[TierSource]) -> str:
    by_engine: dict[tuple[str, str], list[str]] = {}
    for row in data["speakers"].values():
        by_engine.setdefault((str(row["engine"]), str(row["licence"])), []).append(str(row["engine_voice"]))
    teachers = "; ".join(f"{engine} {', '.join(names)} ({lic})" for (engine, lic), names in by_engine.items())
    tiers = ", ".join(f"{s.tier}: {s.acoustic} + {s.vocoder}" for s in sources)
    return (f"Myna FiLM acoustic model + iSTFT vocoder trained from scratch on {data['hours']:.2f} h of teacher audio "
            f"(distillation; text and phonemes from Myna's frontend). Teachers: {teachers}. Checkpoints: {tiers}; "
            "packed by tools/make_voice_pack.py.")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _data_limits(manifest: voices.Manifest, data: Mapping[str, Any]) -> str:
    """The data-size and teacher caveats that apply to this pack's voices."""
    rows = {k: r for k, r in data["speakers"].items() if k in manifest.voices}
    little = {k: r for k, r in rows.items() if r["hours"] is not None and float(r["hours"]) < 1.0}
    text = ""
    if little:
        minutes = sorted(round(float(r["hours"]) * 60) for r in little.values())
        span = f"{minutes[0]}" if minutes[0] == minutes[-1] else f"{minutes[0]}–{minutes[-1]}"
        text += (f" {', '.join(f'`{k}`' for k in little)} learned from only {span} minutes of audio each: "
                 "expect less stable prosody and rarer sounds done worse than the voices with hours of data.")
    engines = {r["engine"] for r in rows.values()}
    if engines & {"flite", "festival"}:
        text += " The flite and Festival teachers are diphone, clustergen or HTS voices: buzzy timbre, flat prosody."
    if "kokoro" in engines:
        text += " The Kokoro teachers are Japanese voices reading English: expect a Japanese accent."
    return text


def model_card(manifest: voices.Manifest, export: Mapping[str, Any]) -> str:
    """MODEL_CARD.md of a built pack, from its manifest and export.json contents."""
    tiers = export["tiers"]
    data = export["data"]
    precision = next(g.quantization for t in manifest.tiers.values() for g in t.graphs.values())
    is_float = precision == "float32"
    lines = [
        f"# Myna voice pack `{manifest.pack_id}`",
        "",
        f"Trained English voices for the Myna daemon: {len(manifest.voices)} voices in "
        f"{len(manifest.tiers)} tier(s) ({', '.join(manifest.tiers)}), "
        f"{'float32 (unquantized reference, not shipped)' if is_float else 'full INT8'} TFLite graphs, "
        f"{manifest.audio.sample_rate} Hz. Default voice: `{manifest.default_voice}`. Built by "
        "`tools/make_voice_pack.py`; every figure below is in `export.json`.",
        "",
        "## Architecture",
        "",
        f"Three graphs per tier, each one XNNPACK partition, float I/O and {'float32' if is_float else 'INT8'} inside "
        "(`docs/design/voice-training.md`):",
        "",
        "- **encoder** (FastPitch-style): phoneme-id embedding → dilated depthwise-conv FiLM blocks → duration, "
        "pitch and energy predictors (FiLM blocks + linear); the runtime regulates lengths in numpy.",
        "- **decoder**: frame features + pitch embedding → FiLM conv blocks → 80-bin natural-log mel.",
        "- **vocoder** (Vocos-style): mel → FiLM conv blocks → STFT log-magnitude and phase vector per frame; "
        "the runtime does the inverse FFT and overlap-add.",
        "",
        "Every block is depthwise conv → BatchNorm (folded) → FiLM(speaker) → FFN → residual. A voice is one "
        "`speaker` vector [1, 64] (its adapter `.npz`), a row of the "
        "acoustic model's speaker table; the vocoder's own table is mapped onto it by a least-squares affine map "
        "folded into its FiLM layers, so one vector drives all three graphs.",
        "",
        "| tier | phoneme bucket | frame chunk / overlap | encoder params | decoder params | vocoder params "
        "| encoder bytes | decoder bytes | vocoder bytes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in tiers.items():
        p, b = t["params"], t["bytes"]
        lines.append(f"| {name} | {t['phoneme_bucket']} | {t['frame_chunk']} / {t['overlap']} | {p['encoder']:,} | "
                     f"{p['decoder']:,} | {p['vocoder']:,} | {b['encoder']:,} | {b['decoder']:,} | {b['vocoder']:,} |")
    lines += ["", f"Graphs, adapters and manifest: {export['pack_bytes']:,} bytes.", "",
              "## Training", "",
              "Acoustic and vocoder trained separately on CPU (torch), acoustic on the learned aligner's durations, "
              "vocoder on ground-truth mels and the corpus audio.", "",
              "| tier | model | checkpoint | checkpoint step | run steps | run minutes | validation |",
              "|---|---|---|---|---|---|---|"]
    for name, t in tiers.items():
        for model in ("acoustic", "vocoder"):
            s = t["training"][model]
            valid = ", ".join(f"{k} {v:.4f}" for k, v in (s.get("valid") or {}).items() if v is not None)
            lines.append(f"| {name} | {model} | `{s['checkpoint']}` | {_fmt(s.get('step'))} | {_fmt(s.get('run_steps'))} | "
                         f"{_fmt(s.get('run_minutes'), 1)} | {valid or '–'} |")
    if export.get("training_notes"):
        lines += [""] + [f"- {note}" for note in export["training_notes"]]
    lines += ["", f"### Data ({data['hours']:.2f} h, data card of {data['datacard_generated']})", "",
              "| speaker | voice in pack | teacher | hours | utterances | licence |", "|---|---|---|---|---|---|"]
    for speaker, row in data["speakers"].items():
        voice = f"`{speaker}` ({manifest.voices[speaker].name})" if speaker in manifest.voices else "no"
        lines.append(f"| {speaker} | {voice} | {row['engine']} {row['engine_voice']} | {_fmt(row['hours'], 2)} | "
                     f"{_fmt(row['utterances'])} | {row['licence']} |")
    if data.get("sources"):
        lines += ["", "Texts: " + "; ".join(f"{k} — {v.get('licence')}" for k, v in data["sources"].items()) + "."]
    key = check_key(precision)
    lines += ["", "## Float32 graphs versus the torch model" if is_float else "## INT8 versus float", "",
              "The exported graphs against the float model on held-out utterances through the runtime's own "
              "chunking (acoustic) and on mel windows (vocoder). Correlation r and mean absolute error.", "",
              "| tier | encoder hidden r | log-duration r / MAE | pitch r / MAE | decoder mel r (centred) / MAE "
              "| vocoder log-mag r / MAE | vocoder audio SNR dB | vocoder mel L1 | speaker-map residual |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, t in tiers.items():
        a = t[key]["acoustic"] or {}
        v = t[key]["vocoder"]

        def pair(key: str, field: str = "corr") -> str:
            entry = a.get(key) or {}
            return f"{_fmt(entry.get(field))} / {_fmt(entry.get('mae'))}"

        mel = a.get("mel") or {}
        lines.append(f"| {name} | {_fmt((a.get('hidden') or {}).get('corr'))} | {pair('log_duration')} | {pair('pitch')} | "
                     f"{_fmt(mel.get('corr'))} ({_fmt(mel.get('corr_centred'))}) / {_fmt(mel.get('mae'))} | "
                     f"{_fmt(v.get('corr_log_magnitude'))} / {_fmt(v.get('log_magnitude_mae'))} | "
                     f"{_fmt(v.get('audio_snr_db'), 1)} | {_fmt(v.get('mel_l1_int8_vs_float'))} | "
                     f"{_fmt(v.get('speaker_map_residual'), 6)} |")
    lines += ["", "## Provenance and licence", "",
              f"- Licence of the weights: {manifest.licence}.",
              f"- {manifest.provenance}",
              "- Teacher licences (from the data card): "
              + "; ".join(f"{k}: {row['licence']}" for k, row in data["speakers"].items()) + ".",
              "- GPL programs (espeak-ng, flite, festival) were only run as separate processes to make training "
              "audio; none of their code is in this pack.",
              "", "## Known limits", "",
              "- English only (ARPAbet inventory "
              f"{manifest.phoneme_inventory.name} v{manifest.phoneme_inventory.version}); every voice speaks through "
              "Myna's frontend, so it says what the lexicon and G2P say, not what its teacher engine would.",
              "- Distilled: no voice is better than its teacher, and each keeps its teacher's accent and "
              f"artefacts.{_data_limits(manifest, data)}",
              "- The teachers' own pronunciations differ from the phonemes the model was trained on wherever "
              "their G2P disagrees with Myna's, which blurs some words.",
              "- 22.05 kHz audio, mel up to 8 kHz; "
              + ("float32 graphs: larger and slower than the INT8 pack's, a reference for measuring it, not for devices."
                 if is_float else "INT8 adds a little noise (figures above)."),
              "- Speaker vectors are the training speakers' rows. Cloned voices (`tools/clone_voice.py`) are fitted "
              "vectors of the same size; how close each comes is in its own report (`docs/clone/`). Mixing voices "
              "is untested.",
              ""]
    return "\n".join(lines)
