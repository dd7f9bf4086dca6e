"""FiLMBlock: torch vs numpy reference vs the exported INT8 graph and its float32 twin in LiteRT (one XNNPACK partition)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tflite")
litert = pytest.importorskip("ai_edge_litert.interpreter")

import tflite  # noqa: E402
from voice.blocks import (  # noqa: E402
    FiLMBlock, equalize_blocks, equalizing_scales, export_film_block, numpy_block_weights, numpy_film_block,
    residual_ranges, scale_block,
)
from workbench.tflite_builder import FlatModel, QuantGraph  # noqa: E402

DIM, FFN, KERNEL, DILATION, SPK, T = 32, 96, 5, 2, 16, 48


def _random_block(seed: int = 0) -> FiLMBlock:
    torch.manual_seed(seed)
    block = FiLMBlock(DIM, FFN, KERNEL, DILATION, SPK)
    with torch.no_grad():
        # Trained-looking statistics and a FiLM that really depends on the speaker.
        block.bn.running_mean.uniform_(-0.3, 0.3)
        block.bn.running_var.uniform_(0.2, 3.0)
        block.bn.weight.uniform_(0.5, 1.5)
        block.bn.bias.uniform_(-0.2, 0.2)
        block.film.weight.normal_(0.0, 0.1)
        block.film.bias.normal_(0.0, 0.1)
        block.fc2.weight.normal_(0.0, 0.1)
    return block.eval()


def _inputs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.normal(0.0, 1.0, (n, T, DIM))
    spk = rng.normal(0.0, 1.0, (n, SPK))
    mask = np.ones((n, T, 1))
    for i in range(n):
        mask[i, T - int(rng.integers(0, T // 3)) :] = 0.0
    return x, spk, mask


def test_numpy_reference_matches_torch() -> None:
    block = _random_block()
    x, spk, mask = _inputs(np.random.default_rng(1), 3)
    with torch.no_grad():
        ref = block(torch.from_numpy(x).float(), torch.from_numpy(spk).float(), torch.from_numpy(mask).float()).numpy()
    got = numpy_film_block(x, spk, mask, numpy_block_weights(block.state_dict(), ""))
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_state_dict_carries_the_dilation() -> None:
    weights = numpy_block_weights({f"b.{k}": v for k, v in _random_block().state_dict().items()}, "b.")
    assert weights["dilation"] == DILATION
    assert weights["dw_w"].shape == (KERNEL, DIM)


def test_int8_graph_tracks_torch_in_one_partition() -> None:
    block = _random_block()
    rng = np.random.default_rng(2)
    cx, cspk, cmask = _inputs(rng, 64)
    g = QuantGraph("block")
    x = g.reshape(g.quantize(g.input("x", (1, T, DIM), cx)), (1, 1, T, DIM))
    spk = g.quantize(g.input("speaker", (1, SPK), cspk))
    mask = g.reshape(g.quantize(g.input("mask", (1, T, 1), cmask)), (1, 1, T, 1))
    y = export_film_block(g, x, spk, mask, numpy_block_weights(block.state_dict(), ""))
    g.dequantize(g.reshape(y, (1, T, DIM)), "y")
    interp = litert.Interpreter(model_content=g.serialize(), num_threads=1)
    interp.allocate_tensors()
    assert sum(op["op_name"] == "DELEGATE" for op in interp._get_ops_details()) == 1

    tx, tspk, tmask = _inputs(rng, 4)
    names = {d["name"]: d["index"] for d in interp.get_input_details()}
    out_index = interp.get_output_details()[0]["index"]
    got, ref = [], []
    for i in range(len(tx)):
        for name, value in (("x", tx[i]), ("speaker", tspk[i]), ("mask", tmask[i])):
            interp.set_tensor(names[name], value[None].astype(np.float32))
        interp.invoke()
        got.append(interp.get_tensor(out_index)[0].copy())
        with torch.no_grad():
            ref.append(block(*(torch.from_numpy(v[i : i + 1]).float() for v in (tx, tspk, tmask)))[0].numpy())
    got_a, ref_a = np.stack(got), np.stack(ref)
    assert np.corrcoef(got_a.ravel(), ref_a.ravel())[0, 1] > 0.99
    # The residual branch alone (what the block adds) also survives INT8, not just the skip path.
    branch_got, branch_ref = (got_a - tx * tmask).ravel(), (ref_a - tx * tmask).ravel()
    assert np.corrcoef(branch_got, branch_ref)[0, 1] > 0.95
    # Masked frames come out exactly zero.
    assert np.all(got_a[np.broadcast_to(tmask == 0.0, got_a.shape)] == 0.0)


def test_untrained_block_still_exports_to_one_partition() -> None:
    # A fresh FiLM gives β ≡ 0; without the builder's range floor its ADD leaves the delegate.
    block = FiLMBlock(DIM, FFN, KERNEL, DILATION, SPK).eval()
    cx, cspk, _ = _inputs(np.random.default_rng(4), 8)
    g = QuantGraph("block")
    x = g.reshape(g.quantize(g.input("x", (1, T, DIM), cx)), (1, 1, T, DIM))
    spk = g.quantize(g.input("speaker", (1, SPK), cspk))
    y = export_film_block(g, x, spk, None, numpy_block_weights(block.state_dict(), ""))
    y = export_film_block(g, y, spk, None, numpy_block_weights(block.state_dict(), ""))
    g.dequantize(y, "y")
    interp = litert.Interpreter(model_content=g.serialize(), num_threads=1)
    interp.allocate_tensors()
    assert sum(op["op_name"] == "DELEGATE" for op in interp._get_ops_details()) == 1


def test_even_kernel_is_refused() -> None:
    with pytest.raises(ValueError):
        FiLMBlock(8, 16, 4, 1, 4)


def test_graph_uses_only_xnnpack_int8_builtins() -> None:
    block = _random_block()
    cx, cspk, _ = _inputs(np.random.default_rng(3), 8)
    g = QuantGraph("block")
    x = g.reshape(g.quantize(g.input("x", (1, T, DIM), cx)), (1, 1, T, DIM))
    spk = g.quantize(g.input("speaker", (1, SPK), cspk))
    g.dequantize(export_film_block(g, x, spk, None, numpy_block_weights(block.state_dict(), "")), "y")
    codes = {op.code for op in g.model.ops}
    assert codes == {tflite.BuiltinOperator.QUANTIZE, tflite.BuiltinOperator.DEQUANTIZE, tflite.BuiltinOperator.RESHAPE,
                     tflite.BuiltinOperator.DEPTHWISE_CONV_2D, tflite.BuiltinOperator.FULLY_CONNECTED,
                     tflite.BuiltinOperator.MUL, tflite.BuiltinOperator.ADD}


def _block_graph(block: FiLMBlock, precision: str, cx: np.ndarray, cspk: np.ndarray, cmask: np.ndarray) -> QuantGraph:
    g = QuantGraph("block", precision)
    x = g.reshape(g.quantize(g.input("x", (1, T, DIM), cx)), (1, 1, T, DIM))
    spk = g.quantize(g.input("speaker", (1, SPK), cspk))
    mask = g.reshape(g.quantize(g.input("mask", (1, T, 1), cmask)), (1, 1, T, 1))
    y = export_film_block(g, x, spk, mask, numpy_block_weights(block.state_dict(), ""))
    g.dequantize(g.reshape(y, (1, T, DIM)), "y")
    return g


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
    interp = litert.Interpreter(model_content=model, num_threads=1)
    interp.allocate_tensors()
    partitions = sum(op["op_name"] == "DELEGATE" for op in interp._get_ops_details())
    names = {d["name"]: d["index"] for d in interp.get_input_details()}
    out_index = interp.get_output_details()[0]["index"]
    got = []
    for i in range(len(next(iter(feeds.values())))):
        for name, value in feeds.items():
            interp.set_tensor(names[name], value[i : i + 1].astype(np.float32))
        interp.invoke()
        got.append(interp.get_tensor(out_index)[0].copy())
    return np.stack(got), partitions


def test_float_twin_matches_the_numpy_reference_far_closer_than_int8() -> None:
    block = _random_block()
    rng = np.random.default_rng(5)
    calib = _inputs(rng, 64)
    tx, tspk, tmask = _inputs(rng, 4)
    ref = numpy_film_block(tx, tspk, tmask, numpy_block_weights(block.state_dict(), ""))
    errors = {}
    for precision in ("int8", "float32"):
        got, partitions = _run(_block_graph(block, precision, *calib).serialize(), {"x": tx, "speaker": tspk, "mask": tmask})
        assert partitions == 1, precision
        errors[precision] = float(np.abs(got - ref).max())
    assert errors["float32"] < 1e-4 * float(np.abs(ref).max())
    assert errors["float32"] < errors["int8"] / 100, errors


def test_float_twin_has_the_int8_graphs_io_and_ops_without_quantization() -> None:
    block = _random_block()
    calib = _inputs(np.random.default_rng(6), 16)
    int8, twin = (_block_graph(block, p, *calib).model for p in ("int8", "float32"))

    def io(model: FlatModel) -> list[tuple[str, int, tuple[int, ...]]]:
        return [(model.tensors[i].name, model.tensors[i].type, model.tensors[i].shape) for i in (*model.inputs, *model.outputs)]

    assert io(twin) == io(int8)
    assert {op.code for op in twin.ops} == {op.code for op in int8.ops} - {
        tflite.BuiltinOperator.QUANTIZE, tflite.BuiltinOperator.DEQUANTIZE}
    # Same ops in the same order, one for one, once the QUANTIZE/DEQUANTIZE ends are left out.
    assert [op.code for op in twin.ops] == [op.code for op in int8.ops if op.code not in (
        tflite.BuiltinOperator.QUANTIZE, tflite.BuiltinOperator.DEQUANTIZE)]
    # Float32 everywhere (int32 only for RESHAPE's shape constants), no quantization parameters.
    assert {t.type for t in twin.tensors} == {tflite.TensorType.FLOAT32, tflite.TensorType.INT32}
    assert all(not t.scale for t in twin.tensors)
    assert all(t.type == tflite.TensorType.FLOAT32 for t in twin.tensors if t.buffer and t.name.startswith(("fc_", "dw_")))


def test_float_twin_loads_in_the_runtime_graph_in_one_partition(tmp_path: Path) -> None:
    from myna.inference.runtime import Graph
    from voice.export_vocoder import graph_spec

    block = _random_block()
    calib = _inputs(np.random.default_rng(7), 16)
    graph = _block_graph(block, "float32", *calib)
    data = graph.serialize()
    path = tmp_path / "block.tflite"
    path.write_bytes(data)
    spec = graph_spec(graph, path.name, data)
    assert spec.quantization == "float32"
    loaded = Graph(path, spec, num_threads=1)
    assert loaded.delegate_partitions() == 1
    tx, tspk, tmask = _inputs(np.random.default_rng(8), 1)
    loaded.inputs["x"][...] = tx
    loaded.inputs["speaker"][...] = tspk
    loaded.inputs["mask"][...] = tmask
    loaded.run()
    ref = numpy_film_block(tx, tspk, tmask, numpy_block_weights(block.state_dict(), ""))
    np.testing.assert_allclose(loaded.outputs["y"], ref, atol=1e-4 * float(np.abs(ref).max()))


def test_equalized_blocks_compute_the_same_function_and_quantize_better() -> None:
    blocks = [numpy_block_weights(_random_block(seed).state_dict(), "") for seed in (0, 1)]
    rng = np.random.default_rng(7)
    # Channels an order of magnitude apart, as a folded BatchNorm leaves them.
    spread = np.logspace(-1, 1, DIM)
    for w in blocks:
        w["dw_w"] = w["dw_w"] * spread
    cx, cspk, cmask = _inputs(rng, 32)
    residual = equalizing_scales(residual_ranges(blocks, cx, cspk, cmask), 1.0)
    equalized, out = equalize_blocks(blocks, cx, cspk, cmask, 1.0, residual=residual)
    y = cx * residual
    for w in equalized:
        y = numpy_film_block(y, cspk, cmask, w)
    reference = cx
    for w in blocks:
        reference = numpy_film_block(reference, cspk, cmask, w)
    np.testing.assert_allclose(out, reference, atol=1e-9)
    np.testing.assert_allclose(y / residual, reference, rtol=1e-9, atol=1e-9)

    def snr(chain: list, scale: np.ndarray) -> float:
        g = QuantGraph("chain")
        x = g.reshape(g.quantize(g.input("x", (1, T, DIM), cx * scale)), (1, 1, T, DIM))
        spk = g.quantize(g.input("speaker", (1, SPK), cspk))
        mask = g.reshape(g.quantize(g.input("mask", (1, T, 1), cmask)), (1, 1, T, 1))
        for w in chain:
            x = export_film_block(g, x, spk, mask, w)
        got = x.values[:, 0] / scale
        return float(10 * np.log10(np.sum(reference**2) / np.sum((got - reference) ** 2)))

    assert snr(equalized, residual) > snr(blocks, np.ones(DIM)) + 1.0
    with pytest.raises(ValueError, match="s_in"):
        scale_block(blocks[0], np.ones(DIM), 2 * np.ones(DIM), np.ones(DIM), np.ones(DIM), np.ones(FFN))
