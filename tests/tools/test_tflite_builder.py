"""The flatbuffer writer: INT8 bytes that must not drift, and the float32 twin the same calls emit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite")
litert = pytest.importorskip("ai_edge_litert.interpreter")

import tflite  # noqa: E402
from workbench.placeholder_voice import build_pack  # noqa: E402
from workbench.tflite_builder import QuantGraph  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
T, D, F, V = 24, 16, 40, 12

# sha256 of ``_every_op_graph("int8")``: bytes written before the float32 twin existed. A change here
# changes every shipped graph; rebuild and re-measure the packs before updating it.
EVERY_OP_INT8_SHA256 = "fac5e6de0baeac2ccb97fbb8e051998a8d2d3504ae328b2ef7b6f115a4e574a0"


def _every_op_graph(precision: str, feeds: dict[str, np.ndarray] | None = None) -> tuple[QuantGraph, dict[str, np.ndarray]]:
    """A graph that calls every builder method, with numpy-only (seeded) weights and calibration.

    Returns the graph and its outputs' float reference values over the calibration batch, or over
    ``feeds`` when given (the weights stay the same).
    """
    rng = np.random.default_rng(0)
    calib = {"ids": rng.integers(0, V, (8, T)), "speaker": rng.normal(0.0, 1.0, (8, 8))}
    calib.update(feeds or {})
    g = QuantGraph("every_op", precision)
    ids = g.input("ids", (1, T), calib["ids"], dtype=tflite.TensorType.INT32)
    x = g.reshape(g.gather(rng.normal(0.0, 1.0, (V, D)), ids), (1, 1, T, D))
    spk = g.quantize(g.input("speaker", (1, 8), calib["speaker"]))
    h = g.dilated_depthwise(x, rng.normal(0.0, 0.5, (5, D)) * rng.uniform(0.01, 3.0, D), rng.normal(0.0, 0.1, D), 2)
    h = g.depthwise_time_conv(h, rng.normal(0.0, 0.5, (3, D)), rng.normal(0.0, 0.1, D))
    gamma = g.reshape(g.fully_connected(spk, rng.normal(0.0, 0.2, (D, 8)), 1.0 + rng.normal(0.0, 0.1, D)), (1, 1, 1, D))
    beta = g.fully_connected(spk, rng.normal(0.0, 1e-4, (D, 8)), np.zeros(D), min_range=0.5)
    h = g.add(g.mul(h, gamma), g.reshape(beta, (1, 1, 1, D)))
    h = g.fully_connected(g.fully_connected(h, rng.normal(0.0, 0.3, (F, D)), rng.normal(0.0, 0.1, F), relu=True),
                          rng.normal(0.0, 0.3, (D, F)), rng.normal(0.0, 0.1, D))
    y = g.add(x, h, relu=True)
    outputs = {"y": g.dequantize(g.reshape(y, (1, T, D)), "y").values,
               "square": g.dequantize(g.reshape(g.mul(x, x), (1, T, D)), "square").values}
    return g, outputs


def test_int8_bytes_are_unchanged() -> None:
    assert hashlib.sha256(_every_op_graph("int8")[0].serialize()).hexdigest() == EVERY_OP_INT8_SHA256


def test_placeholder_pack_regenerates_to_the_committed_int8_graphs(tmp_path: Path) -> None:
    manifest = json.loads((REPO / "models" / "placeholder" / "manifest.json").read_text())
    build_pack(tmp_path)
    for tier in manifest["tiers"].values():
        for graph in tier["graphs"].values():
            assert hashlib.sha256((tmp_path / graph["file"]).read_bytes()).hexdigest() == graph["sha256"], graph["file"]


def test_float_twin_runs_every_op_in_one_partition_and_matches_its_reference() -> None:
    twin, _ = _every_op_graph("float32")
    interp = litert.Interpreter(model_content=twin.serialize(), num_threads=1)
    interp.allocate_tensors()
    # GATHER has no XNNPACK kernel in either precision; everything after it is one delegate partition.
    assert [op["op_name"] for op in interp._get_ops_details()].count("DELEGATE") == 1
    assert {d["dtype"] for d in interp.get_output_details()} == {np.float32}
    rng = np.random.default_rng(1)
    ids, spk = rng.integers(0, V, (1, T)).astype(np.int32), rng.normal(0.0, 1.0, (1, 8)).astype(np.float32)
    inputs = {d["name"]: d["index"] for d in interp.get_input_details()}
    interp.set_tensor(inputs["ids"], ids)
    interp.set_tensor(inputs["speaker"], spk)
    interp.invoke()
    outputs = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    # The builder's own float reference on these inputs (its values over a one-item calibration batch).
    _, reference = _every_op_graph("float32", {"ids": ids, "speaker": spk})
    assert set(outputs) == set(reference) == {"y", "square"}
    for name, value in reference.items():
        np.testing.assert_allclose(outputs[name], value, rtol=1e-5, atol=1e-5 * float(np.abs(value).max()))


def test_float_twin_refuses_an_input_as_output_and_unknown_precisions() -> None:
    with pytest.raises(ValueError, match="precision"):
        QuantGraph("x", "int4")
    g = QuantGraph("x", "float32")
    x = g.quantize(g.input("x", (1, 4), np.zeros((2, 4))))
    with pytest.raises(ValueError, match="already a graph input"):
        g.dequantize(x, "y")
