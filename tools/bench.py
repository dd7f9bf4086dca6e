#!/usr/bin/env python3
"""Myna against Piper en_US-joe-medium, side by side in one run: RTF, first audio, load, peak RSS, size.

Every figure is also given as a ratio to Piper measured in the same run on the same machine
(ratio = Myna / Piper; below 1 is better for Myna on every figure reported).

Each system runs in its own subprocess per thread count, so one system's memory never inflates the
other's; a worker reads its peak RSS (VmHWM) from /proc/self/status at its end.

What is timed:
- Myna: the whole request through the engine ``mynad`` builds (``SynthCatalog`` + ``Engine``) with
  a null sink that does not pace and no audio cache: from just before ``speak()`` (so the text
  frontend — normalization, lexicon, G2P, chunking — is included) until the job's FINISHED event.
  First audio = ``speak()`` → the sink's first write. The frontend alone is also timed.
- Piper: eSpeak NG runs as a long-lived separate process (``workbench.espeak``); its phonemization
  is timed apart from synthesis, and reported both ways: synthesis only (ids → audio in
  onnxruntime) and including eSpeak. Piper does not stream within a sentence, so its first audio is
  eSpeak on the whole text plus synthesis of the first sentence (the whole utterance for one sentence).

Warm: one unmeasured pass over all sentences, then ``--repeat`` measured passes. RTF of a pass =
total time / total audio duration; reported as the median over passes. Per-sentence figures (first
audio) are each sentence's median over passes, then the median and p90 over sentences.

Usage: python tools/bench.py [--board generic-x86_64] [--voice ID] [--tier small] [--sentences FILE]
                             [--voices PACK_DIR] [--repeat 5] [--json OUT.json] [--markdown OUT.md]

Graph mode (no Piper): ``--graphs PACK_DIR [PACK_DIR …]`` times every graph of the tier in each pack on
``--graph-threads`` threads (default 1), all in one process, the packs interleaved round by round so
drifting load hits them alike, and counts each graph's XNNPACK partitions; the first pack is the baseline
of the ratios (e.g. ``--graphs out/myna-en-float models/myna-en``: INT8 / float32).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SENTENCES = Path("/work/shared/eval/sentences.txt")
DEFAULT_BOARD = "generic-x86_64"
SYSTEMS = ("myna", "piper")


# -- pure helpers (tested on synthetic numbers) -------------------------------------------------


def read_sentences(path: Path) -> list[str]:
    """Non-empty lines that are not ``#`` comments."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in [0, 1]."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, p90, min, max and count."""
    return {"median": statistics.median(values), "p90": percentile(values, 0.9), "min": min(values),
            "max": max(values), "n": len(values)}


def rtf(seconds: Sequence[float], audio_seconds: Sequence[float]) -> float:
    """Real-time factor of a batch: total compute time / total audio duration."""
    total_audio = sum(audio_seconds)
    if total_audio <= 0:
        raise ValueError("no audio")
    return sum(seconds) / total_audio


def ratio(mine: float | None, baseline: float | None) -> float | None:
    """``mine / baseline``, None when either is missing or the baseline is zero."""
    if mine is None or baseline is None or baseline == 0:
        return None
    return mine / baseline


def per_sentence_medians(passes: Sequence[Sequence[float]]) -> list[float]:
    """``passes[p][s]`` → each sentence's median over the passes."""
    return [statistics.median(column) for column in zip(*passes)]


def pass_rtfs(passes: Sequence[Sequence[float]], audio_seconds: Sequence[float]) -> list[float]:
    """RTF of each pass over the sentences whose audio lasts ``audio_seconds``."""
    return [rtf(times, audio_seconds) for times in passes]


def summarize_worker(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a worker's raw timings into the figures of the report."""
    audio = raw["audio_s"]
    out: dict[str, Any] = {k: raw[k] for k in ("threads", "load_s", "vmhwm_kib", "vmrss_kib", "info", "cpu_s", "wall_s")
                           if k in raw}
    if raw.get("wall_s"):
        # CPU seconds per wall second: about the thread count when the worker had the cores to itself.
        out["cpu_per_wall"] = raw["cpu_s"] / raw["wall_s"]
    out["audio_s_total"] = sum(audio)
    for key, times in raw["timings"].items():
        out[f"rtf_{key}"] = statistics.median(pass_rtfs(times, audio))
    for key, times in raw.get("latencies", {}).items():
        out[f"{key}_ms"] = summarize([1000.0 * t for t in per_sentence_medians(times)])
    return out


# Figures compared, as (label, Myna key, Piper key); RTFs first, the like-for-like one leading.
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("RTF, Myna incl. frontend / Piper incl. eSpeak", "rtf_total", "rtf_total"),
    ("RTF, Myna incl. frontend / Piper synthesis only", "rtf_total", "rtf_synth"),
    ("RTF, Myna excl. frontend / Piper synthesis only", "rtf_synth", "rtf_synth"),
)


def compare(myna: Mapping[str, Any], piper: Mapping[str, Any]) -> dict[str, float | None]:
    """Ratios Myna / Piper for one thread count (below 1: Myna is faster, smaller or lighter)."""
    out: dict[str, float | None] = {}
    for label, mkey, pkey in COMPARISONS:
        out[label] = ratio(myna.get(mkey), piper.get(pkey))
    first_m = myna.get("first_audio_ms", {}).get("median")
    first_p = piper.get("first_audio_ms", {}).get("median")
    out["first audio (median)"] = ratio(first_m, first_p)
    out["load time"] = ratio(myna.get("load_s"), piper.get("load_s"))
    out["peak RSS (VmHWM)"] = ratio(myna.get("vmhwm_kib"), piper.get("vmhwm_kib"))
    return out


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, float)):
        return format(value, spec)
    return str(value)


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown, the command that made it at the top."""
    lines = ["# Myna vs Piper en_US-joe-medium", "", "```sh", report["command"], "```", ""]
    m = report["machine"]
    lines += [
        f"{report['date']} · {m['cpu']} · {m['cpu_count']} CPUs · load average {_fmt(m.get('loadavg_1min_before'), '.2f')} "
        f"before, {_fmt(m.get('loadavg_1min_after'), '.2f')} after · Python {m['python']} · "
        f"{report['sentences']['count']} sentences from `{report['sentences']['file']}` · "
        f"1 warm-up pass + {report['repeat']} measured passes.",
        "",
        f"Myna: board `{report['myna']['board']}`, voice `{report['myna']['voice']}`, tier "
        f"`{report['myna']['tier']}`; Piper: `{report['piper']['model']}` on onnxruntime "
        f"{report['piper'].get('onnxruntime', '?')}, noise_scale = noise_w = 0, phonemes from "
        f"{report['piper'].get('espeak_ng', 'espeak-ng').split(' Data at')[0].strip()}.",
        "",
        "Ratios are Myna / Piper measured in this run on this machine; below 1 is better for Myna.",
        "",
    ]
    threads = list(report["threads"])
    lines += ["| figure | " + " | ".join(f"Myna {t} thr | Piper {t} thr | ratio" for t in threads) + " |",
              "|---|" + "---:|---:|---:|" * len(threads)]

    def row(label: str, mkey: str, pkey: str, scale: float = 1.0, spec: str = ".3g", with_ratio: bool = True) -> None:
        cells = []
        for t in threads:
            mv = report["results"]["myna"][t].get(mkey)
            pv = report["results"]["piper"][t].get(pkey)
            mv = mv.get("median") if isinstance(mv, dict) else mv
            pv = pv.get("median") if isinstance(pv, dict) else pv
            cells.append(f"{_fmt(None if mv is None else mv * scale, spec)} | "
                         f"{_fmt(None if pv is None else pv * scale, spec)} | {_fmt(ratio(mv, pv) if with_ratio else None)}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("RTF: Myna incl. frontend vs Piper incl. eSpeak", "rtf_total", "rtf_total")
    row("RTF: Myna incl. frontend vs Piper synthesis only", "rtf_total", "rtf_synth")
    row("RTF: Myna excl. frontend vs Piper synthesis only", "rtf_synth", "rtf_synth")
    row("RTF of the text frontend alone (Myna) / eSpeak (Piper)", "rtf_frontend", "rtf_phonemize")
    row("first audio, median ms", "first_audio_ms", "first_audio_ms", spec=".1f")
    row("load s", "load_s", "load_s")
    row("peak RSS MiB (VmHWM)", "vmhwm_kib", "vmhwm_kib", scale=1 / 1024, spec=".1f")
    if any("cpu_per_wall" in report["results"][system][t] for system in SYSTEMS for t in threads):
        row("worker CPU s per wall s (cores it got)", "cpu_per_wall", "cpu_per_wall", spec=".2f", with_ratio=False)
    lines.append("")
    p90 = ", ".join(
        f"{t} thr: Myna {_fmt(report['results']['myna'][t]['first_audio_ms']['p90'], '.1f')} ms, "
        f"Piper {_fmt(report['results']['piper'][t]['first_audio_ms']['p90'], '.1f')} ms" for t in threads)
    lines += [f"First audio p90 over sentences — {p90}.", ""]
    size_m, size_p = report["myna"]["model_bytes"], report["piper"]["model_bytes"]
    lines += [
        f"Model size on disk: Myna {size_m / 1e6:.2f} MB ({', '.join(report['myna']['model_files'])}); "
        f"Piper {size_p / 1e6:.2f} MB (the .onnx); ratio {_fmt(ratio(size_m, size_p))}.",
        "",
        f"Audio per pass: Myna {_fmt(report['results']['myna'][threads[0]]['audio_s_total'], '.1f')} s, "
        f"Piper {_fmt(report['results']['piper'][threads[0]]['audio_s_total'], '.1f')} s. "
        f"Baseline RSS of a bare Python + numpy worker: {_fmt(report['baseline_vmhwm_kib'] / 1024, '.1f')} MiB.",
        "",
    ]
    lines += [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


# -- workers (each in its own subprocess) -----------------------------------------------------


def _proc_status() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    return out


def _passes(sentences: Sequence[str], repeat: int, once: Callable[[str], dict[str, float]]) -> dict[str, list[list[float]]]:
    for text in sentences:  # warm-up
        once(text)
    collected: dict[str, list[list[float]]] = {}
    for _ in range(repeat):
        results = [once(text) for text in sentences]
        for key in results[0]:
            collected.setdefault(key, []).append([r[key] for r in results])
    return collected


def voice_dirs(voices: Sequence[str] | None) -> list[Path]:
    """The ``--voices`` folders (a pack, or a folder of packs), or the shipped models/ when none is given."""
    from myna.catalog import packaged_voice_dir

    return [Path(v) for v in voices] if voices else [packaged_voice_dir()]


def worker_myna(sentences: Sequence[str], repeat: int, threads: int, board: str, voice: str | None,
                tier: str | None, voices: Sequence[str] | None = None) -> dict[str, Any]:
    """Time Myna's engine on the sentences (null sink, no cache, no pacing)."""
    from myna.app import detect_board
    from myna.audio.null import NullSink
    from myna.cache import AudioCache
    from myna.catalog import SynthCatalog
    from myna.config import DaemonConfig, SpeakOptions
    from myna.engine import Engine, EngineLimits, EventKind, JobEvent

    profile = detect_board(DaemonConfig(board=board)).profile
    t0 = time.perf_counter()
    catalog = SynthCatalog.from_dirs(voice_dirs(voices), tier=tier or profile.tier, threads=threads, default_voice=voice)
    sink = NullSink()
    limits = EngineLimits(max_text_chars=profile.max_text_chars, queue_max=profile.queue_max, write_frames=profile.period_frames)
    engine = Engine(catalog, sink, limits=limits, cache=AudioCache(0))
    engine.start()
    load_s = time.perf_counter() - t0
    bound = catalog.bind(voice or catalog.default_voice)
    finished: dict[int, float] = {}
    done = threading.Condition()

    def on_event(event: JobEvent) -> None:
        if event.kind is EventKind.FINISHED:
            with done:
                finished[event.job_id] = time.monotonic()
                done.notify_all()

    engine.subscribe(on_event)
    options = SpeakOptions(voice=voice)
    sample_rate = bound.renderer.sample_rate
    audio_s: dict[str, float] = {}

    def once(text: str) -> dict[str, float]:
        f0 = time.perf_counter()
        list(bound.frontend.chunks(text, bound.renderer.max_phonemes))
        frontend = time.perf_counter() - f0
        before = sink.frames_written
        start = time.monotonic()
        job = engine.speak(text, options)
        with done:
            if not done.wait_for(lambda: job in finished, 60):
                raise RuntimeError(f"job {job} did not finish")
            end = finished.pop(job)
        if sink.first_write_at is None:
            raise RuntimeError("no audio was written")
        audio_s[text] = (sink.frames_written - before) / sample_rate
        total = end - start
        return {"total": total, "frontend": frontend, "synth": total - frontend, "first_audio": sink.first_write_at - start}

    try:
        collected = _passes(sentences, repeat, once)
    finally:
        engine.close()
        sink.close()
    import myna

    return {
        "threads": threads, "load_s": load_s, "audio_s": [audio_s[s] for s in sentences],
        "timings": {"total": collected["total"], "synth": collected["synth"], "frontend": collected["frontend"]},
        "latencies": {"first_audio": collected["first_audio"]},
        "info": {"tier": catalog.tier_summary(), "voice": bound.voice_id, "sample_rate": sample_rate,
                 "myna_version": myna.__version__},
    }


def worker_piper(sentences: Sequence[str], repeat: int, threads: int) -> dict[str, Any]:
    """Time Piper joe: eSpeak NG (separate process) apart from onnxruntime synthesis."""
    import numpy as np
    import onnxruntime

    sys.path.insert(0, str(REPO / "tools"))
    from workbench.piper_teacher import PiperTeacher

    t0 = time.perf_counter()
    teacher = PiperTeacher(threads=threads, durations=False)
    load_s = time.perf_counter() - t0
    audio_s: dict[str, float] = {}

    def once(text: str) -> dict[str, float]:
        p0 = time.perf_counter()
        ids = [teacher.phoneme_ids(s) for s in teacher.phonemize(text)]
        phonemize = time.perf_counter() - p0
        synth = 0.0
        first = 0.0
        samples = 0
        for i, sentence_ids in enumerate(ids):
            s0 = time.perf_counter()
            audio, _ = teacher.synthesize_ids(sentence_ids)
            synth += time.perf_counter() - s0
            samples += len(audio)
            if i == 0:
                first = phonemize + synth
        audio_s[text] = samples / teacher.sample_rate
        return {"total": phonemize + synth, "synth": synth, "phonemize": phonemize, "first_audio": first}

    try:
        collected = _passes(sentences, repeat, once)
    finally:
        teacher.close()
    return {
        "threads": threads, "load_s": load_s, "audio_s": [audio_s[s] for s in sentences],
        "timings": {"total": collected["total"], "synth": collected["synth"], "phonemize": collected["phonemize"]},
        "latencies": {"first_audio": collected["first_audio"]},
        "info": {"model": teacher.files.model.name, "model_bytes": teacher.model_bytes, "sample_rate": teacher.sample_rate,
                 "onnxruntime": onnxruntime.__version__, "session_load_s": teacher.load_seconds,
                 "espeak_ng": subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip(),
                 "numpy": np.__version__},
    }


def worker_baseline() -> dict[str, Any]:
    """A bare interpreter with numpy: what both workers pay before loading anything of their own."""
    import numpy  # noqa: F401

    return {}


def run_worker(args: argparse.Namespace) -> int:
    wall0, cpu0 = time.perf_counter(), os.times()
    sentences = read_sentences(Path(args.sentences))
    if args.worker == "myna":
        raw = worker_myna(sentences, args.repeat, args.threads, args.board, args.voice, args.tier, args.voices)
    elif args.worker == "piper":
        raw = worker_piper(sentences, args.repeat, args.threads)
    else:
        raw = worker_baseline()
    cpu1 = os.times()  # children: the eSpeak process, waited for when the teacher closed
    raw["cpu_s"] = sum(cpu1[:4]) - sum(cpu0[:4])
    raw["wall_s"] = time.perf_counter() - wall0
    status = _proc_status()  # at the very end: the peak includes everything the run touched
    raw["vmhwm_kib"] = status["VmHWM"]
    raw["vmrss_kib"] = status["VmRSS"]
    Path(args.worker_out).write_text(json.dumps(raw), encoding="utf-8")
    return 0


# -- graph mode: per-graph invoke time and XNNPACK partitions of several packs --------------------


def _graph_feeds(pack: Any, tier: str, voice: str | None, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Input values per role: the voice's adapter for its inputs, valid phoneme ids, unit-normal frames."""
    import numpy as np

    rng = np.random.default_rng(seed)
    adapter = pack.adapters[voice or pack.manifest.default_voice]
    feeds: dict[str, dict[str, Any]] = {}
    for role, spec in pack.manifest.tiers[tier].graphs.items():
        feeds[role] = {}
        for t in spec.inputs:
            if t.name in adapter:
                feeds[role][t.name] = adapter[t.name]
            elif t.dtype == "int32":
                feeds[role][t.name] = rng.integers(1, pack.manifest.phoneme_inventory.size, t.shape).astype(np.int32)
            else:
                feeds[role][t.name] = rng.normal(0.0, 1.0, t.shape).astype(np.float32)
    return feeds


def graph_timings(pack_dirs: Sequence[Path], tier: str | None, voice: str | None, threads: int = 1, rounds: int = 15,
                  runs: int = 20, warmup: int = 10) -> dict[str, Any]:
    """Milliseconds per ``Graph.run()`` (inputs in, invoke, outputs out) of each pack's tier graphs, and partitions.

    Each round runs every graph of every pack ``runs`` times back to back, packs in turn, so load that
    drifts during the measurement reaches all of them; per graph, the median and the minimum over rounds
    of the mean time per run.  All packs get the same input values.
    """
    from myna.inference.runtime import Graph
    from myna.voices import VoicePack, choose_tier

    packs = [VoicePack.load(Path(d)) for d in pack_dirs]
    wanted = tier or next(iter(packs[0].manifest.tiers))
    loaded = []
    for folder, pack in zip(pack_dirs, packs):
        real = choose_tier(pack, wanted)
        graphs = {role: Graph(pack.graph_path(real, role), spec, num_threads=threads)
                  for role, spec in pack.manifest.tiers[real].graphs.items()}
        for role, values in _graph_feeds(pack, real, voice).items():
            for name, value in values.items():
                graphs[role].inputs[name][...] = value
        loaded.append((str(folder), pack, real, graphs))
    times: dict[str, dict[str, list[float]]] = {key: {role: [] for role in graphs} for key, _, _, graphs in loaded}
    for _, _, _, graphs in loaded:
        for graph in graphs.values():
            for _ in range(warmup):
                graph.run()
    load_before = os.getloadavg()[0]
    for _ in range(rounds):
        for key, _, _, graphs in loaded:
            for role, graph in graphs.items():
                t0 = time.perf_counter()
                for _ in range(runs):
                    graph.run()
                times[key][role].append((time.perf_counter() - t0) / runs * 1000.0)
    results: dict[str, dict[str, Any]] = {}
    for key, pack, real, graphs in loaded:
        specs = pack.manifest.tiers[real].graphs
        results[key] = {
            "pack_id": pack.manifest.pack_id, "tier": real,
            "graphs": {role: {"quantization": specs[role].quantization, "file": specs[role].file,
                              "bytes": pack.graph_path(real, role).stat().st_size,
                              "xnnpack_partitions": graph.delegate_partitions(), "backend": graph.backend.value,
                              "run_ms": {"median": statistics.median(times[key][role]), "min": min(times[key][role])}}
                       for role, graph in graphs.items()},
        }
    base = results[str(pack_dirs[0])]["graphs"]
    ratios = {key: {role: ratio(g["run_ms"]["median"], base[role]["run_ms"]["median"]) if role in base else None
                    for role, g in r["graphs"].items()} for key, r in results.items()}
    return {"threads": threads, "rounds": rounds, "runs_per_round": runs, "warmup_runs": warmup, "voice": voice,
            "packs": results, "ratio_to_first": ratios, "baseline": str(pack_dirs[0]),
            "loadavg_1min": {"before": load_before, "after": os.getloadavg()[0]}}


def render_graphs_markdown(report: Mapping[str, Any]) -> str:
    """The graph-mode report as Markdown."""
    packs = report["packs"]
    setup = (f"{report['date']} · {report['machine']['cpu']} · {report['threads']} thread(s) · {report['rounds']} rounds "
             f"× {report['runs_per_round']} runs per graph after {report['warmup_runs']} warm-up runs · load average "
             f"{_fmt(report['loadavg_1min']['before'], '.2f')} → {_fmt(report['loadavg_1min']['after'], '.2f')}. "
             f"Time = `Graph.run()` (inputs in, invoke, outputs out), ms per run, median (min) over rounds; "
             f"ratio = median / that of `{report['baseline']}`.")
    lines = ["# Per-graph run time and XNNPACK partitions", "", "```sh", report["command"], "```", "", setup, "",
             "| graph | pack | tier | quantization | ms per run, median | min | ratio | XNNPACK partitions | bytes |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    roles = list(next(iter(packs.values()))["graphs"])
    for role in roles:
        for key, p in packs.items():
            g = p["graphs"].get(role)
            if g is not None:
                lines.append(f"| {role} | `{key}` | {p['tier']} | {g['quantization']} | {g['run_ms']['median']:.3f} | "
                             f"{g['run_ms']['min']:.3f} | {_fmt(report['ratio_to_first'][key].get(role), '.2f')} | "
                             f"{g['xnnpack_partitions']} | {g['bytes']:,} |")
    return "\n".join(lines) + "\n"


def build_graphs_report(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Graph mode: ``graph_timings`` plus the command, date and machine."""
    report = graph_timings([Path(d) for d in args.graphs], args.tier, args.voice, threads=args.graph_threads,
                           rounds=args.rounds, runs=args.runs)
    return {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": {"cpu": _cpu_name(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()}, **report}


# -- the orchestrator ---------------------------------------------------------------------------


def _spawn(args: argparse.Namespace, system: str, threads: int, folder: Path) -> dict[str, Any]:
    out = folder / f"{system}-{threads}.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", system, "--worker-out", str(out),
            "--threads", str(threads), "--sentences", str(args.sentences), "--repeat", str(args.repeat),
            "--board", args.board]
    if args.voice:
        argv += ["--voice", args.voice]
    if args.tier:
        argv += ["--tier", args.tier]
    for folder_arg in args.voices or ():
        argv += ["--voices", str(folder_arg)]
    env = dict(os.environ)
    # The worker's own thread settings decide; keep numpy/BLAS from adding threads of their own.
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    subprocess.run(argv, check=True, env=env, cwd=REPO)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def myna_model_files(tier: str, voice: str | None, voices: Sequence[str] | None = None) -> list[Path]:
    """The files a board loads for Myna: pack manifest, the tier's graphs, the voice adapter, lexicon, G2P."""
    from myna.catalog import find_packs, packaged_voice_dir
    from myna.text.lexicon import default_lexicon_path
    from myna.voices import VoiceRegistry, choose_tier

    registry = VoiceRegistry(find_packs(voice_dirs(voices)))
    chosen = registry.get(voice or registry.default_id)
    pack = chosen.pack
    real_tier = choose_tier(pack, tier)
    files = [pack.root / "manifest.json"]
    files += [pack.graph_path(real_tier, role) for role in pack.manifest.tiers[real_tier].graphs]
    files.append(pack.root / pack.manifest.voices[chosen.info.id].adapter)
    lexicon = default_lexicon_path()
    if lexicon is not None:
        files.append(lexicon)
    g2p = packaged_voice_dir() / "g2p-en"
    if g2p.is_dir():
        files += sorted(p for p in g2p.iterdir() if p.is_file() and p.suffix in (".tflite", ".json", ".npz"))
    return files


def build_report(args: argparse.Namespace, command: str) -> dict[str, Any]:
    sentences = read_sentences(Path(args.sentences))
    load_before = os.getloadavg()[0]  # other work on the machine skews both systems; say how much there was
    thread_counts = sorted({1, os.cpu_count() or 1})
    results: dict[str, dict[str, Any]] = {s: {} for s in SYSTEMS}
    with tempfile.TemporaryDirectory(prefix="myna-bench-") as tmp:
        folder = Path(tmp)
        for threads in thread_counts:
            for system in SYSTEMS:
                print(f"bench: {system}, {threads} thread(s) …", file=sys.stderr, flush=True)
                results[system][str(threads)] = summarize_worker(_spawn(args, system, threads, folder))
        baseline = _spawn(args, "baseline", 1, folder)
    first = str(thread_counts[0])
    myna_info = results["myna"][first]["info"]
    piper_info = results["piper"][first]["info"]
    from myna.app import detect_board
    from myna.config import DaemonConfig

    tier = args.tier or detect_board(DaemonConfig(board=args.board)).profile.tier
    files = myna_model_files(tier, args.voice, args.voices)
    caveat = []
    if myna_info["tier"].startswith("placeholder:"):
        caveat = ["Myna's voice here is the placeholder pack: tiny random-weight INT8 graphs with the real tensor "
                  "contract that buzz instead of speaking. Its figures measure the runtime around the model "
                  "(frontend, engine, LiteRT calls, streaming), not a trained voice; rerun when one ships."]
    return {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpu": _cpu_name(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_1min_before": load_before,
                    "loadavg_1min_after": os.getloadavg()[0]},
        "sentences": {"file": str(args.sentences), "count": len(sentences)},
        "repeat": args.repeat,
        "threads": [str(t) for t in thread_counts],
        "myna": {"board": args.board, "voice": myna_info["voice"], "tier": myna_info["tier"],
                 "model_bytes": sum(p.stat().st_size for p in files),
                 "model_files": [str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in files],
                 "version": myna_info["myna_version"]},
        "piper": {"model": piper_info["model"], "model_bytes": piper_info["model_bytes"],
                  "onnxruntime": piper_info["onnxruntime"], "espeak_ng": piper_info["espeak_ng"]},
        "results": results,
        "ratios": {t: compare(results["myna"][t], results["piper"][t]) for t in results["myna"]},
        "baseline_vmhwm_kib": baseline["vmhwm_kib"],
        "notes": caveat + [
            "Myna is timed through the engine with a null sink (no pacing) and no audio cache, from before "
            "speak() — so its text frontend (normalize, lexicon, G2P, chunking) is included — to the FINISHED "
            "event; 'excl. frontend' subtracts the frontend timed alone on the same text.",
            "Piper: eSpeak NG runs as one long-lived separate process (GPL: never imported); its phonemization "
            "is timed apart from synthesis ('Piper synthesis only' = onnxruntime, ids → audio). Piper synthesizes "
            "sentence by sentence, so its first audio = eSpeak on the whole text + synthesis of the first sentence.",
            "Myna's audio includes the silence the engine adds after chunks; Piper's is the model output only.",
            "Warm means after one unmeasured pass: Myna's lexicon word cache holds the sentences' words, as in a "
            "daemon that has been running; onnxruntime sessions use intra-op threads = the thread count, inter-op 1.",
            "Piper's load time is building the onnxruntime session plus starting eSpeak NG; Myna's is the voice "
            "catalog (interpreters, lexicon, G2P) plus the engine.",
            "Each system and thread count runs in its own subprocess; peak RSS is that process's VmHWM at its end.",
            "Myna's size = the voice pack's manifest, the tier's graphs and the voice adapter, plus the lexicon "
            "and the G2P model; Piper's = its .onnx.",
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default=DEFAULT_BOARD, help="board profile (its tier; default %(default)s)")
    parser.add_argument("--voice", help="Myna voice id (default: the pack's default)")
    parser.add_argument("--tier", help="override the board's tier")
    parser.add_argument("--sentences", type=Path, default=DEFAULT_SENTENCES, help="one sentence a line; # comments")
    parser.add_argument("--repeat", type=int, default=5, help="measured passes after one warm-up pass")
    parser.add_argument("--voices", action="append", metavar="DIR",
                        help="voice pack dir(s) for Myna (a pack or a folder of packs; default: shipped models/)")
    parser.add_argument("--graphs", nargs="+", metavar="PACK_DIR",
                        help="graph mode: time each pack's tier graphs and count XNNPACK partitions (no Piper)")
    parser.add_argument("--graph-threads", type=int, default=1, help="graph mode: interpreter threads (default 1)")
    parser.add_argument("--rounds", type=int, default=15, help="graph mode: measured rounds")
    parser.add_argument("--runs", type=int, default=20, help="graph mode: runs of each graph per round")
    parser.add_argument("--json", type=Path, help="write the report as JSON")
    parser.add_argument("--markdown", type=Path, help="write the report as Markdown")
    parser.add_argument("--worker", choices=(*SYSTEMS, "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.worker:
        return run_worker(args)
    shown = list(sys.argv[1:] if argv is None else argv)
    command = "python tools/bench.py" + ("".join(" " + shlex.quote(a) for a in shown))
    if args.graphs:
        if min(args.rounds, args.runs, args.graph_threads) < 1:
            parser.error("--rounds, --runs and --graph-threads must be at least 1")
        graphs_report = build_graphs_report(args, command)
        return publish(args, graphs_report, render_graphs_markdown(graphs_report))
    if not read_sentences(Path(args.sentences)):
        parser.error(f"no sentences in {args.sentences}")
    report = build_report(args, command)
    return publish(args, report, render_markdown(report))


def publish(args: argparse.Namespace, report: dict[str, Any], text: str) -> int:
    """Write the report to --json / --markdown when asked and print the Markdown."""
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
