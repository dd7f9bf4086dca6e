"""Experiment: where does a tier's INT8-vs-float MCD come from (graphs, encoder outputs, the metric itself)?

    python tools/experiments/int8_attribution.py --int8 models/myna-en --float out/myna-en-s4-float --tier small \
        --reference out/eval/s4-int8f/small-float --out out/eval/int8-attribution

``--reference`` holds the float pack's own renderings of the sentences (``evaluate.py --render-only
--save-wavs``).  Each variant renders the sentences through the device runtime and is scored with
``evaluate.py``'s MCD against them:

- ``only-<role>-int8``: the float pack with one INT8 graph; ``only-<role>-float``: the INT8 pack with one float graph;
- ``encoder-<output>-int8``: the float pack with one encoder output (durations, pitch, hidden) from the INT8 encoder;
- ``int8-float-durations``: the INT8 pack with the float encoder's durations (INT8's error at equal timing);
- ``shift-<n>``: the reference itself delayed by n samples, and ``noise-<d>``: the reference plus white
  noise at d dBFS (what the metric makes of audio that did not audibly change);
- ``grid-<outputs>``: the float pack with those graph outputs snapped to the INT8 graphs' output grids
  (the int8 step each output leaves its INT8 graph on), nothing else quantized.

``--only`` runs some groups: ``all`` (the shipped INT8), ``graphs``, ``encoder``, ``shift``, ``noise``, ``grid``.

Prints one line per variant and writes ``attribution.json``.  Nothing here is a product path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "daemon")]

import evaluate  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from myna.inference import acoustic  # noqa: E402
from myna.inference.runtime import Graph  # noqa: E402
from myna.voices import GRAPH_ROLES, VoicePack  # noqa: E402
from workbench import metrics  # noqa: E402

ROLES = GRAPH_ROLES


def hybrid(base: Path, donor: Path, tier: str, role: str, out: Path) -> Path:
    """A copy of pack ``base`` whose ``tier``/``role`` graph (file, checksum, I/O, quantization) is ``donor``'s."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base, out)
    manifest = json.loads((out / "manifest.json").read_text())
    theirs = json.loads((donor / "manifest.json").read_text())["tiers"][tier]["graphs"][role]
    graph = manifest["tiers"][tier]["graphs"][role]
    shutil.copy(donor / theirs["file"], out / graph["file"])
    graph.update({k: theirs[k] for k in ("inputs", "outputs", "quantization")},
                 sha256=hashlib.sha256((out / graph["file"]).read_bytes()).hexdigest())
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def encoder_donor(pack: Path, tier: str, output: str, voice: str) -> Callable[[], None]:
    """Patch ``Encoder.run`` so one output comes from ``pack``'s encoder; returns the undo."""
    donor_pack = VoicePack.load(pack)
    graph = Graph(donor_pack.graph_path(tier, "encoder"), donor_pack.manifest.tiers[tier].graphs["encoder"], 1)
    speaker = donor_pack.adapters[voice]["speaker"]
    original = acoustic.Encoder.run

    def run(self: acoustic.Encoder, ids: tuple[int, ...], rate: float, pitch_factor: float) -> acoustic.Alignment:
        own = original(self, ids, rate, pitch_factor)
        graph.inputs["phoneme_ids"].fill(0)
        graph.inputs["phoneme_ids"][0, : len(ids)] = ids
        np.copyto(graph.inputs["speaker"], speaker)
        graph.run()
        out = graph.outputs
        if output == "durations":
            d = np.clip(np.rint(np.exp(out["log_duration"][0].astype(np.float64)) / rate), 0,
                        acoustic.MAX_FRAMES_PER_PHONEME).astype(np.int64)
            d[len(ids):] = 0
            return acoustic.Alignment(hidden=own.hidden, pitch=own.pitch, durations=d, ends=np.cumsum(d))
        if output == "pitch":
            pitch = (out["pitch"][0] * np.float32(pitch_factor)).astype(np.float32)
            return acoustic.Alignment(hidden=own.hidden, pitch=pitch, durations=own.durations, ends=own.ends)
        return acoustic.Alignment(hidden=out["hidden"][0].copy(), pitch=own.pitch, durations=own.durations, ends=own.ends)

    acoustic.Encoder.run = run  # type: ignore[method-assign]
    return lambda: setattr(acoustic.Encoder, "run", original)


GRIDS = {"all-outputs": ("hidden", "log_duration", "pitch", "mel", "log_magnitude", "phase_x", "phase_y"),
         "log_duration": ("log_duration",), "pitch": ("pitch",), "hidden": ("hidden",), "mel": ("mel",),
         "vocoder": ("log_magnitude", "phase_x", "phase_y")}


def output_grids(pack: Path, tier: str) -> dict[str, tuple[float, int]]:
    """(scale, zero point) of the int8 tensor each output of ``pack``'s INT8 graphs is dequantized from."""
    from myna.inference.runtime import make_interpreter

    loaded = VoicePack.load(pack)
    grids = {}
    for role in ROLES:
        _, interp = make_interpreter(loaded.graph_path(tier, role))
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
        outputs = {d["index"]: d["name"] for d in interp.get_output_details()}
        for op in interp._get_ops_details():
            if op["op_name"] == "DEQUANTIZE" and op["outputs"][0] in outputs:
                scale, zero = tensors[op["inputs"][0]]["quantization"]
                grids[outputs[op["outputs"][0]]] = (float(scale), int(zero))
    return grids


def snap_outputs(grids: dict[str, tuple[float, int]], names: tuple[str, ...]) -> Callable[[], None]:
    """Patch ``Graph.run`` so the outputs ``names`` land on their int8 grids (``grids``); returns the undo."""
    original = Graph.run

    def run(self: Graph) -> None:
        original(self)
        for name, buffer in self.outputs.items():
            if name in names:
                scale, zero = grids[name]
                np.copyto(buffer, (np.clip(np.rint(buffer / scale) + zero, -128, 127) - zero) * scale)

    Graph.run = run  # type: ignore[method-assign]
    return lambda: setattr(Graph, "run", original)


def render(pack: Path, tier: str, voice: str, sentences: list[str], out: Path) -> Path:
    """The sentences through the device runtime into ``out``/NNN.wav."""
    speak = evaluate.myna_renderer(voice, tier, 1, [pack], None)
    out.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(sentences, 1):
        audio, sr = speak(i, text)
        sf.write(str(out / evaluate.wav_name(i)), audio, sr, subtype="PCM_16")
    return out


def mcd_against(reference: Path, wavs: Path, count: int, shift: int = 0, noise_dbfs: float | None = None) -> float:
    """Mean MCD (evaluate.py's metric) of ``wavs`` against ``reference``, the former delayed by ``shift`` samples
    and with white noise at ``noise_dbfs`` added (seeded)."""
    rng = np.random.default_rng(0)
    values = []
    for i in range(1, count + 1):
        ref, sr = sf.read(str(reference / evaluate.wav_name(i)))
        syn, sr2 = sf.read(str(wavs / evaluate.wav_name(i)))
        if noise_dbfs is not None:
            syn = syn + rng.normal(size=syn.size) * 10.0 ** (noise_dbfs / 20.0)
        values.append(metrics.mcd(ref, sr, np.concatenate([np.zeros(shift), syn]), sr2))
    return float(np.mean(values))


def plot(results: dict[str, float], path: Path, budget: float = 0.85) -> None:
    """Horizontal bars of every variant's MCD with the issue's budget (floor 0.35 + 0.5 dB) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    colours = ["tab:red" if n == "all-int8" else "tab:grey" if n.startswith(("shift", "noise")) else "tab:blue" for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(names) + 1.2))
    labels = [n.replace("noise--", "noise −").replace("shift-", "shift ") for n in names]
    ax.barh(labels[::-1], [results[n] for n in names][::-1], color=colours[::-1])
    ax.axvline(budget, color="k", linestyle="--", linewidth=1)
    ax.text(budget, len(names) - 0.4, f" budget {budget} dB", va="bottom", fontsize=8)
    ax.set_xlabel("MCD against the float pack's rendering (dB)")
    ax.set_title("INT8 vs float MCD by part (grey: unchanged audio, delayed n samples or + noise dBFS)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Render every variant and print its MCD against the float reference."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--int8", type=Path, required=True)
    ap.add_argument("--float", dest="float_pack", type=Path, required=True)
    ap.add_argument("--tier", default="small")
    ap.add_argument("--voice", default="joe")
    ap.add_argument("--reference", type=Path, required=True, help="the float pack's renderings (NNN.wav)")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--shifts", default="1,64,128,256")
    ap.add_argument("--noise-dbfs", default="-90,-80,-70")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", nargs="*", default=["all", "graphs", "encoder", "shift", "noise", "grid"])
    args = ap.parse_args(argv)
    sentences = evaluate.read_sentences(Path("/work/shared/eval/sentences.txt"))[: args.limit]
    n = len(sentences)
    results: dict[str, Any] = {}

    def report(name: str, value: float) -> None:
        results[name] = value
        print(f"{name:28s} MCD {value:.2f} dB", flush=True)

    if "all" in args.only:
        report("all-int8", mcd_against(args.reference, render(args.int8, args.tier, args.voice, sentences, args.out / "all-int8"), n))
    for role in ROLES if "graphs" in args.only else ():
        for name, base, donor in ((f"only-{role}-int8", args.float_pack, args.int8), (f"only-{role}-float", args.int8, args.float_pack)):
            pack = hybrid(base, donor, args.tier, role, args.out / "packs" / name)
            report(name, mcd_against(args.reference, render(pack, args.tier, args.voice, sentences, args.out / name), n))
    for output in ("durations", "pitch", "hidden") if "encoder" in args.only else ():
        undo = encoder_donor(args.int8, args.tier, output, args.voice)
        try:
            wavs = render(args.float_pack, args.tier, args.voice, sentences, args.out / f"encoder-{output}-int8")
        finally:
            undo()
        report(f"encoder-{output}-int8", mcd_against(args.reference, wavs, n))
    if "encoder" in args.only:
        undo = encoder_donor(args.float_pack, args.tier, "durations", args.voice)
        try:
            wavs = render(args.int8, args.tier, args.voice, sentences, args.out / "int8-float-durations")
        finally:
            undo()
        report("int8-float-durations", mcd_against(args.reference, wavs, n))
    for shift in (int(s) for s in args.shifts.split(",") if s and "shift" in args.only):
        report(f"shift-{shift}", mcd_against(args.reference, args.reference, n, shift))
    for level in (float(d) for d in args.noise_dbfs.split(",") if d and "noise" in args.only):
        report(f"noise-{level:g}", mcd_against(args.reference, args.reference, n, noise_dbfs=level))
    if "grid" in args.only:
        grids = output_grids(args.int8, args.tier)
        for label, names in GRIDS.items():
            undo = snap_outputs(grids, names)
            try:
                wavs = render(args.float_pack, args.tier, args.voice, sentences, args.out / f"grid-{label}")
            finally:
                undo()
            report(f"grid-{label}", mcd_against(args.reference, wavs, n))
    (args.out / "attribution.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out / "attribution.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
