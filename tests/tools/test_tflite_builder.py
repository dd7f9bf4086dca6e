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
from workbench.tflite_builder import QuantGraph, QuantOptions, _act_params, _mse_range  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
T, D, F, V = 24, 16, 40, 12

# sha256 of ``_every_op_graph("int8")``: bytes written before the float32 twin existed. A change here
# changes every shipped graph; rebuild and re-measure the packs before updating it.
EVERY_OP_INT8_SHA256 = "fac5e6de0baeac2ccb97fbb8e051998a8d2d3504ae328b2ef7b6f115a4e574a0"


def _every_op_graph(precision: str, feeds: dict[str, np.ndarray] | None = None,
                    options: QuantOptions | None = None) -> tuple[QuantGraph, dict[str, np.ndarray]]:
    """A graph that calls every builder method, with numpy-only (seeded) weights and calibration.

    Returns the graph and its outputs' float reference values over the calibration batch, or over
    ``feeds`` when given (the weights stay the same).
    """
    rng = np.random.default_rng(0)
    calib = {"ids": rng.integers(0, V, (8, T)), "speaker": rng.normal(0.0, 1.0, (8, 8))}
    calib.update(feeds or {})
    g = QuantGraph("every_op", precision, options)
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


def _run_litert(model: bytes, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    interp = litert.Interpreter(model_content=model, num_threads=1)
    interp.allocate_tensors()
    inputs = {d["name"]: d["index"] for d in interp.get_input_details()}
    for name, value in feeds.items():
        interp.set_tensor(inputs[name], value)
    interp.invoke()
    partitions = [op["op_name"] for op in interp._get_ops_details()].count("DELEGATE")
    return {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}, partitions


def test_default_options_are_the_shipped_bytes() -> None:
    def build(options: QuantOptions | None) -> bytes:
        g = QuantGraph("fc", options=options)
        x = g.quantize(g.input("x", (1, 4, 8), np.random.default_rng(0).normal(0.0, 1.0, (16, 4, 8))))
        g.dequantize(g.fully_connected(x, np.random.default_rng(1).normal(0.0, 1.0, (6, 8)), np.zeros(6)), "y")
        return g.serialize()

    assert build(None) == build(QuantOptions()) == build(QuantOptions.from_dict(QuantOptions().to_dict()))
    assert build(QuantOptions(per_channel_fc=True)) != build(None)
    with pytest.raises(ValueError, match="range_method"):
        QuantOptions(range_method="p99")
    with pytest.raises(ValueError, match="equalize"):
        QuantOptions(equalize=2.0)


def test_per_channel_fc_runs_in_one_partition_and_resolves_small_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (64, 10, 16))
    # Rows whose weights differ by 100x: one scale per tensor rounds the small rows to a few levels.
    w = rng.normal(0.0, 1.0, (24, 16)) * np.logspace(-2, 0, 24)[:, None]
    w[5] = 0.0  # a dead row with a bias must not overflow its INT32 bias
    b = rng.normal(0.0, 0.1, 24)
    feed = x[:1].astype(np.float32)
    errors = {}
    for per_channel in (False, True):
        g = QuantGraph("fc", options=QuantOptions(per_channel_fc=per_channel))
        y = g.fully_connected(g.quantize(g.input("x", (1, 10, 16), x)), w, b)
        g.dequantize(y, "y")
        out, partitions = _run_litert(g.serialize(), {"x": feed})
        assert partitions == 1
        # The runtime computes what the builder simulated (within one output step).
        np.testing.assert_allclose(out["y"], y.values[:1], atol=1.01 * y.scale)
        errors[per_channel] = float(np.abs(feed @ w[:12].T + b[:12] - out["y"][..., :12]).mean())
    tensor = next(t for t in g.model.tensors if t.name.startswith("fc_w"))
    assert len(tensor.scale) == 24 and tensor.quantized_dimension == 0
    assert errors[True] < errors[False]


def test_mse_ranges_clip_outliers_and_keep_zero() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.0, 1.0, 100_000), [40.0]])
    lo, hi = _mse_range(values)
    assert lo < 0.0 < hi < 40.0
    scale, zero_point = _act_params(values, method="mse")
    assert scale < _act_params(values)[0]
    assert -128 <= zero_point <= 127
    # Non-negative values (after a ReLU) keep 0 as their lower bound.
    assert _mse_range(np.abs(values))[0] == 0.0


def test_every_op_graph_with_all_options_stays_one_partition_and_close_to_float() -> None:
    """Per-channel FC and MSE ranges on every op: one partition, output still tracks the float twin."""
    options = QuantOptions(per_channel_fc=True, range_method="mse")
    rng = np.random.default_rng(5)
    feeds = {"ids": rng.integers(0, V, (1, T)).astype(np.int32), "speaker": rng.normal(0.0, 1.0, (1, 8)).astype(np.float32)}
    outputs = {}
    for precision, opts in (("float32", None), ("int8", options)):
        g, _ = _every_op_graph(precision, options=opts)
        outputs[precision], partitions = _run_litert(g.serialize(), feeds)
        assert partitions == 1
    for name in ("y", "square"):
        assert np.corrcoef(outputs["int8"][name].ravel(), outputs["float32"][name].ravel())[0, 1] > 0.99
