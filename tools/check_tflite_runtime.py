#!/usr/bin/env python3
"""Check that every shipped TFLite graph runs alike in LiteRT and in tflite-runtime 2.14.

Run it with the main venv (LiteRT).  A second venv with ``tflite-runtime==2.14.0`` and ``numpy<2``, and
without ``ai-edge-litert`` so that the engine there must take the fallback, runs the same graphs as a
subprocess; ``.ci/run`` builds it as ``.venv-tflite214``.  docs/runtime-compat.md has the results.

1. Graphs.  Every ``*.tflite`` under ``models/`` must be named by a manifest there (voice packs, G2P).
   The inputs are what the engine feeds them: the voice graphs' inputs are recorded while LiteRT speaks
   SENTENCE through ``Synthesizer`` with two of the pack's voices (frontend ids, adapter speakers,
   length-regulated frames, decoder mels); the G2P graph gets the letter ids of G2P_WORDS, its reverse
   model (the decoder's rescorer) the phoneme ids the G2P gives them.  Each runtime
   runs each graph through ``myna.inference.runtime.Graph`` on the same inputs (exchanged as ``.npz`` in
   a temporary folder).  LiteRT also runs them on its built-in reference kernels instead of XNNPACK.
2. ``--say``: ``myna say --local -o`` in both venvs speaks SENTENCE with the shipped voice; the WAVs are
   compared by length and by an MFCC distance (dB, the MCD formula, DTW-aligned).

The graphs are full INT8, and the two runtimes' kernels round some int8 values the other way (one step;
so do LiteRT's own XNNPACK and reference kernels), which deeper layers amplify.  So outputs are not
expected to be bit-identical, and the yardstick is LiteRT itself: an output passes when its RMS
difference from LiteRT is at most ``--factor`` times the RMS difference between LiteRT's two kernel
sets, or under ``--floor``, both relative to the RMS of the LiteRT output.

One line per graph; exit status 1 on a load failure, a wrong backend or a difference over the limit.

Usage: .venv/bin/python tools/check_tflite_runtime.py [--other-python .venv-tflite214/bin/python] [--say]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "daemon"))

import numpy as np

from myna.inference.runtime import Backend, Graph, interpreter_class
from myna.voices import GraphSpec

DEFAULT_OTHER = REPO / ".venv-tflite214" / "bin" / "python"
SENTENCE = "In 300 meters, turn left onto Main Street, then keep right at the fork for the airport."
G2P_WORDS = ("myna", "raspberry", "pronunciation", "quokka", "xylophone", "daemon", "synthesizer", "o'clock")
VOICES_PER_PACK = 2
"""Voices whose adapters feed the graphs: the pack's default, then the next one in the manifest."""
THREADS = 1
SAY_BOARD = "generic-armv7l"
"""The board profile of the `say` check: 32-bit Pi OS is where tflite-runtime is the only runtime."""
SAY_MAX_LENGTH_CHANGE = 0.05
SAY_MAX_MFCC_DB = 6.0
"""Measured: 2.4-2.8 dB between the runtimes and between LiteRT's kernel sets; 28-33 dB between voices."""
RUNS = ("litert", "litert-reference", "tflite-runtime")

Cases = list[dict[str, np.ndarray]]
Found = dict[str, tuple[Path, GraphSpec, Cases]]


# --- inputs (main venv) ----------------------------------------------------------------------------


def _voice_pack_cases(root: Path) -> Found:
    """Record every graph input the engine feeds while each tier of the pack speaks SENTENCE."""
    from myna.inference.pipeline import Synthesizer
    from myna.text import phonemes
    from myna.text.frontend import make_frontend
    from myna.voices import VoicePack

    pack = VoicePack.load(root)
    inv = pack.manifest.phoneme_inventory
    frontend = make_frontend(phonemes.inventory(inv.name, inv.version))
    default = pack.manifest.default_voice
    voices = [default] + [v for v in pack.manifest.voices if v != default]
    found: Found = {}
    for tier, tier_spec in pack.manifest.tiers.items():
        synth = Synthesizer(pack, tier, num_threads=THREADS, backend=Backend.LITERT)
        # Reaching into the synthesizer records exactly what the engine feeds each graph.
        for role, graph in synth._graphs.items():
            cases: Cases = []
            graph.run = _recording(graph, cases)  # type: ignore[method-assign]
            found[f"{root.name}/{tier_spec.graphs[role].file}"] = (graph.path, tier_spec.graphs[role], cases)
        for voice in voices[:VOICES_PER_PACK]:
            for chunk in frontend.chunks(SENTENCE, synth.max_phonemes):
                for _ in synth.render(chunk, pack.adapters[voice]).blocks():
                    pass
    return found


def _recording(graph: Graph, cases: Cases) -> Callable[[], None]:
    run = graph.run

    def record() -> None:
        cases.append({name: buffer.copy() for name, buffer in graph.inputs.items()})
        run()

    return record


def _g2p_cases(root: Path) -> Found:
    """The G2P graph on the letter ids of G2P_WORDS (1.. in the manifest's letter order, 0 pads)."""
    raw = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    spec = GraphSpec.from_dict(raw["graph"], f"{root.name}.graph")
    ids = {c: i + 1 for i, c in enumerate(raw["letters"])}
    cases: Cases = []
    for word in G2P_WORDS:
        letters = np.zeros(spec.inputs[0].shape, np.int32)
        letters[0, : len(word)] = [ids[c] for c in word]
        cases.append({spec.inputs[0].name: letters})
    found: Found = {f"{root.name}/{spec.file}": (root / spec.file, spec, cases)}
    rescorer = (raw.get("decoder") or {}).get("rescorer")
    if rescorer:
        # The reverse model reads the pronunciations the decoder proposes: the G2P's own output ids.
        from myna.text.g2p_neural import NeuralG2P

        g2p = NeuralG2P(root)
        out_id = {s: k + 1 for k, s in enumerate(raw["outputs"])}
        r_spec = GraphSpec.from_dict(rescorer["graph"], f"{root.name}.decoder.rescorer.graph")
        r_cases: Cases = []
        for word in G2P_WORDS:
            pron = [out_id[s] for s in g2p.predict(word)]
            phonemes = np.zeros(r_spec.inputs[0].shape, np.int32)
            phonemes[0, : len(pron)] = pron
            r_cases.append({r_spec.inputs[0].name: phonemes})
        found[f"{root.name}/{r_spec.file}"] = (root / r_spec.file, r_spec, r_cases)
    return found


def collect_cases(models: Path) -> Found:
    """Inputs for every graph a manifest under ``models`` names; exit if some .tflite is named by none."""
    found: Found = {}
    for manifest in sorted(models.glob("*/manifest.json")):
        raw = json.loads(manifest.read_text(encoding="utf-8"))
        if "tiers" in raw:
            found.update(_voice_pack_cases(manifest.parent))
        elif raw.get("format") == "myna-g2p":
            found.update(_g2p_cases(manifest.parent))
    missed = {f"{p.parent.name}/{p.name}" for p in models.glob("*/*.tflite")} - set(found)
    if missed:
        raise SystemExit(f"no manifest names {sorted(missed)}: this check would skip them")
    return found


# --- running (both venvs) --------------------------------------------------------------------------


class _ReferenceKernels:
    """A graph on the runtime's built-in kernels, without the default (XNNPACK) delegate."""

    def __init__(self, path: Path, spec: GraphSpec, backend: Backend) -> None:
        _, cls = interpreter_class(backend)
        resolver = sys.modules[cls.__module__].OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self._interp = cls(model_path=str(path), num_threads=THREADS, experimental_op_resolver_type=resolver)
        self._interp.allocate_tensors()
        if any(t.dtype not in ("float32", "int32") for t in spec.inputs + spec.outputs):
            raise ValueError("quantized graph I/O: compare through Graph only")
        self.inputs = {t.name: np.zeros(t.shape, t.dtype) for t in spec.inputs}
        self.outputs = {t.name: np.zeros(t.shape, t.dtype) for t in spec.outputs}

    def run(self) -> None:
        for d in self._interp.get_input_details():
            self._interp.set_tensor(d["index"], self.inputs[d["name"]])
        self._interp.invoke()
        for d in self._interp.get_output_details():
            np.copyto(self.outputs[d["name"]], self._interp.get_tensor(d["index"]))


def _versions(backend: Backend) -> dict[str, str]:
    package = "ai-edge-litert" if backend is Backend.LITERT else "tflite-runtime"
    return {
        "runtime": f"{package} {importlib.metadata.version(package)}",
        "numpy": np.__version__,
        "python": platform.python_version(),
        # Where LiteRT is absent the engine has no choice but the fallback.
        "litert_importable": str(importlib.util.find_spec("ai_edge_litert") is not None),
    }


def run_graphs(folder: Path, backend: Backend, reference: bool = False) -> None:
    """Run every graph of ``folder/job.json`` on its inputs; write outputs-<run>.npz and .json."""
    label = "litert" if backend is Backend.LITERT else "tflite-runtime"
    label += "-reference" if reference else ""
    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    outputs: dict[str, Any] = {}
    report: dict[str, Any] = {"versions": _versions(backend), "errors": {}, "partitions": {}}
    with np.load(folder / "inputs.npz") as inputs:
        for key, entry in job["graphs"].items():
            path, spec = REPO / entry["path"], GraphSpec.from_dict(entry["spec"], key)
            try:
                graph: Graph | _ReferenceKernels
                if reference:
                    graph = _ReferenceKernels(path, spec, backend)
                else:
                    graph = Graph(path, spec, THREADS, backend)
                    if graph.backend is not backend:
                        raise RuntimeError(f"ran on {graph.backend.value}, not {backend.value}")
                    report["partitions"][key] = graph.delegate_partitions()
                for case in range(entry["cases"]):
                    for name, buffer in graph.inputs.items():
                        np.copyto(buffer, inputs[f"{key}|{case}|{name}"])
                    graph.run()
                    for name, buffer in graph.outputs.items():
                        outputs[f"{key}|{case}|{name}"] = buffer.copy()
            except Exception as exc:  # noqa: BLE001 - a graph that fails to load or run is a result
                report["errors"][key] = f"{type(exc).__name__}: {exc}"
    np.savez(folder / f"outputs-{label}.npz", **outputs)
    (folder / f"outputs-{label}.json").write_text(json.dumps(report), encoding="utf-8")


# --- comparing (main venv) -------------------------------------------------------------------------


def _relative_rms(ref: np.ndarray, other: np.ndarray) -> float:
    scale = float(np.sqrt(np.mean(ref**2))) or 1.0
    return float(np.sqrt(np.mean((ref - other) ** 2))) / scale


def compare_graphs(other_python: Path, factor: float, floor: float, keep: Path | None = None) -> bool:
    """Record inputs, run both runtimes, print one line per graph; True when all pass."""
    cases = collect_cases(REPO / "models")
    job: dict[str, dict[str, Any]] = {
        key: {"path": str(path.relative_to(REPO)), "spec": spec.to_dict(), "cases": len(inputs)}
        for key, (path, spec, inputs) in cases.items()
    }
    results: dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]] = {}
    with tempfile.TemporaryDirectory(prefix="myna-tflite-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "job.json").write_text(json.dumps({"graphs": job}), encoding="utf-8")
        arrays: dict[str, Any] = {
            f"{key}|{i}|{name}": array
            for key, (_, _, inputs) in cases.items() for i, case in enumerate(inputs) for name, array in case.items()
        }
        np.savez(folder / "inputs.npz", **arrays)
        run_graphs(folder, Backend.LITERT)
        run_graphs(folder, Backend.LITERT, reference=True)
        subprocess.run(
            [str(other_python), str(Path(__file__).resolve()), "--worker", str(folder), "--backend", Backend.TFLITE_RUNTIME.value],
            check=True, cwd=REPO, timeout=600,
        )
        for run in RUNS:
            report = json.loads((folder / f"outputs-{run}.json").read_text(encoding="utf-8"))
            with np.load(folder / f"outputs-{run}.npz") as archive:
                results[run] = (report, {k: archive[k] for k in archive.files})
    for run in ("litert", "tflite-runtime"):
        print(f"{run}: " + ", ".join(f"{k} {v}" for k, v in results[run][0]["versions"].items()))
    ok = results["tflite-runtime"][0]["versions"]["litert_importable"] == "False"
    if not ok:
        print("FAIL  ai_edge_litert is importable in the other venv: its engine would not take the fallback")
    print(f"pass: RMS difference from LiteRT <= {factor:g} x LiteRT XNNPACK-vs-reference-kernels, or < {100 * floor:g}%")
    for key, entry in job.items():
        errors = {run: results[run][0]["errors"][key] for run in RUNS if key in results[run][0]["errors"]}
        if errors:
            print(f"FAIL  {key}: " + "; ".join(f"{run} failed: {error}" for run, error in errors.items()))
            ok = False
            continue
        parts, graph_ok = [], True
        for spec in entry["spec"]["outputs"]:
            a, r, b = (
                np.stack([results[run][1][f"{key}|{i}|{spec['name']}"] for i in range(entry["cases"])]).astype(np.float64)
                for run in RUNS
            )
            diff, rms, noise = float(np.max(np.abs(a - b))), _relative_rms(a, b), _relative_rms(a, r)
            graph_ok &= rms <= max(factor * noise, floor)
            parts.append(
                f"{spec['name']} identical" if diff == 0 else
                f"{spec['name']} max|d| {diff:.3g} of max|x| {float(np.max(np.abs(a))):.3g}, RMS {100 * rms:.2f}% "
                f"(LiteRT kernels {100 * noise:.2f}%), {100 * float(np.mean(a != b)):.1f}% elements differ"
            )
        ok &= graph_ok
        partitions = "/".join(str(results[run][0]["partitions"][key]) for run in ("litert", "tflite-runtime"))
        print(f"{'OK  ' if graph_ok else 'FAIL'}  {key} ({entry['cases']} runs, XNNPACK partitions {partitions}): " + "; ".join(parts))
    return ok


def mfcc(samples: np.ndarray, rate: int, n_fft: int = 1024, hop: int = 256, bands: int = 40, coeffs: int = 13) -> np.ndarray:
    """[frames, coeffs] cepstra of the log mel amplitude (Hann window, HTK mel, floor 60 dB under the peak)."""
    frames = 1 + max(0, len(samples) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(samples[index] * np.hanning(n_fft), axis=1)) ** 2
    edges = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + rate / 2 / 700), bands + 2) / 2595) - 1)
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    weights = np.maximum(0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))
    mel = power @ weights.T
    log_amplitude = 0.5 * np.log(np.maximum(mel, 1e-6 * mel.max()))
    n = np.arange(bands)
    dct = np.cos(np.pi / bands * (n[None, :] + 0.5) * np.arange(coeffs)[:, None]) * np.sqrt(2 / bands)
    return log_amplitude @ dct.T


def compare_say(other_python: Path) -> bool:
    """Speak SENTENCE with `myna say --local -o` in both venvs and compare the WAVs."""
    import soundfile

    sys.path.insert(0, str(REPO / "tools"))
    from workbench.metrics import mcd_from_cepstra

    wavs = {}
    with tempfile.TemporaryDirectory(prefix="myna-say-") as tmp:
        for name, python in (("litert", Path(sys.executable)), ("tflite-runtime", other_python)):
            wav = Path(tmp) / f"{name}.wav"
            subprocess.run(
                [str(python), "-m", "myna.cli", "--config", str(Path(tmp) / "none.yaml"), "--board", SAY_BOARD,
                 "--voices", str(REPO / "models" / "myna-en"), "say", "--local", "-o", str(wav), SENTENCE],
                check=True, cwd=REPO, timeout=300, stdout=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(REPO / "daemon")},
            )
            wavs[name] = soundfile.read(wav, dtype="float64")
    (a, rate), (b, rate_b) = wavs["litert"], wavs["tflite-runtime"]
    change = abs(len(a) - len(b)) / len(a)
    distance = mcd_from_cepstra(mfcc(a, rate), mfcc(b, rate_b))
    ok = rate == rate_b and change <= SAY_MAX_LENGTH_CHANGE and distance <= SAY_MAX_MFCC_DB
    same = "identical" if len(a) == len(b) and np.array_equal(a, b) else "not identical"
    print(
        f"{'OK  ' if ok else 'FAIL'}  say (myna-en default voice, {SAY_BOARD}): {len(a)} vs {len(b)} samples at {rate}/{rate_b} Hz "
        f"({100 * change:.2f}% length change, limit {100 * SAY_MAX_LENGTH_CHANGE:g}%), {same}, "
        f"MFCC distance {distance:.2f} dB (limit {SAY_MAX_MFCC_DB:g})"
    )
    return ok


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--other-python", type=Path, default=DEFAULT_OTHER, help="python of the tflite-runtime venv")
    parser.add_argument("--factor", type=float, default=3.0, help="limit as a multiple of LiteRT's own kernel difference")
    parser.add_argument("--floor", type=float, default=0.01, help="relative RMS difference that always passes")
    parser.add_argument("--say", action="store_true", help="also compare `myna say --local -o` WAVs of both venvs")
    parser.add_argument("--keep", type=Path, help="leave job.json, inputs.npz and the outputs in this folder")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=[b.value for b in Backend], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_graphs(args.worker, Backend(args.backend))
        return 0
    if not args.other_python.exists():
        print(f"{args.other_python} not found: create that venv as .ci/run does", file=sys.stderr)
        return 2
    ok = compare_graphs(args.other_python, args.factor, args.floor, args.keep)
    if args.say:
        ok &= compare_say(args.other_python)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
