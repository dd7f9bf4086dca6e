"""The TFLite shim and Graph: real LiteRT inference on the generated placeholder graphs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from myna import errors
from myna.inference import runtime
from myna.voices import GRAPH_ROLES, VoicePack

REPO = Path(__file__).resolve().parents[2]


def test_committed_placeholder_is_byte_identical_to_a_fresh_generation(generated_pack: Path) -> None:
    committed = REPO / "models" / "placeholder"
    names = sorted(p.name for p in committed.iterdir())
    assert names == sorted(p.name for p in generated_pack.iterdir())
    for name in names:
        assert (committed / name).read_bytes() == (generated_pack / name).read_bytes(), name


def test_regenerating_gives_identical_bytes(generated_pack: Path, pack_generator: Callable[[Path], Path], tmp_path: Path) -> None:
    again = pack_generator(tmp_path / "again")
    for path in generated_pack.iterdir():
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def test_whole_pack_is_under_500_kb(generated_pack: Path) -> None:
    assert sum(p.stat().st_size for p in generated_pack.iterdir()) < 500_000


def test_graphs_are_full_int8_inside_with_float_io(generated_pack: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    pack = VoicePack.load(generated_pack)
    for tier in pack.manifest.tiers:
        for role in GRAPH_ROLES:
            interp = Interpreter(
                model_path=str(pack.graph_path(tier, role)),
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
            io = {d["index"] for d in interp.get_input_details() + interp.get_output_details()}
            inside = [d for d in interp.get_tensor_details() if d["index"] not in io]
            floats = [d["name"] for d in inside if d["dtype"] == np.float32]
            assert floats == [], f"{tier}/{role} has float tensors inside: {floats}"
            assert {np.dtype(d["dtype"]) for d in inside} <= {np.dtype(np.int8), np.dtype(np.int32)}
            ops = {op["op_name"] for op in interp._get_ops_details()}
            assert ops <= {"QUANTIZE", "DEQUANTIZE", "GATHER", "FULLY_CONNECTED", "ADD", "MUL", "RESHAPE", "DEPTHWISE_CONV_2D"}


def test_xnnpack_partitions_are_counted(generated_pack: Path) -> None:
    pack = VoicePack.load(generated_pack)
    tier = pack.manifest.tiers["tiny"]
    counts = {role: runtime.Graph(pack.graph_path("tiny", role), tier.graphs[role]).delegate_partitions() for role in GRAPH_ROLES}
    # Decoder and vocoder run in one XNNPACK partition; the encoder's GATHER splits it in two.
    assert counts == {"encoder": 2, "decoder": 1, "vocoder": 1}


def test_graph_runs_into_its_preallocated_buffers(generated_pack: Path) -> None:
    pack = VoicePack.load(generated_pack)
    graph = runtime.Graph(pack.graph_path("tiny", "decoder"), pack.manifest.tiers["tiny"].graphs["decoder"])
    mel = graph.outputs["mel"]
    graph.inputs["frames"][...] = 0.5
    graph.inputs["speaker"][...] = pack.adapters["placeholder"]["speaker"]
    graph.run()
    first = mel.copy()
    graph.run()
    assert graph.outputs["mel"] is mel
    assert np.array_equal(first, mel) and np.any(mel != 0)


def test_graph_rejects_a_manifest_that_disagrees_with_the_file(generated_pack: Path) -> None:
    pack = VoicePack.load(generated_pack)
    spec = pack.manifest.tiers["tiny"].graphs["decoder"]
    wrong = dataclasses.replace(spec.inputs[0], dtype="int8")
    bad = dataclasses.replace(spec, inputs=(wrong, *spec.inputs[1:]))
    with pytest.raises(errors.VoicePackError, match="manifest says int8"):
        runtime.Graph(pack.graph_path("tiny", "decoder"), bad)


def test_missing_runtimes_raise_runtime_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    with pytest.raises(errors.RuntimeUnavailable, match="no TFLite runtime"):
        runtime.interpreter_class()


def test_litert_is_preferred() -> None:
    assert runtime.interpreter_class()[0] is runtime.Backend.LITERT


def test_importing_the_runtime_does_not_import_torch() -> None:
    code = (
        "import sys, myna.inference.pipeline, myna.inference.runtime, myna.voices;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    env_path = str(REPO / "daemon")
    subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=50,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
