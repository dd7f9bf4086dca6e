"""Write full-INT8 TFLite graphs (or their float32 twins) with the flatbuffers Builder, calibrated by a numpy float reference."""

from __future__ import annotations

import functools
import inspect
import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import flatbuffers
import numpy as np
import tflite

# Op versions as TFLite's op_version.cc assigns them for int8 kernels; a version newer than the
# runtime knows would make tflite-runtime 2.14 refuse the graph, an older one is never wrong to read.
_OP_VERSIONS: dict[int, int] = {
    tflite.BuiltinOperator.ADD: 2,
    tflite.BuiltinOperator.MUL: 2,
    tflite.BuiltinOperator.RESHAPE: 1,
    tflite.BuiltinOperator.GATHER: 2,
    tflite.BuiltinOperator.QUANTIZE: 2,
    tflite.BuiltinOperator.DEQUANTIZE: 2,
    tflite.BuiltinOperator.DEPTHWISE_CONV_2D: 3,
}
_FC_VERSION = 4
_FC_KEEP_DIMS_VERSION = 5
# The same table for float32 kernels: version 1 throughout, except the options that need a newer one.
_FLOAT_OP_VERSIONS: dict[int, int] = {code: 1 for code in _OP_VERSIONS}
_FLOAT_FC_VERSION = 1
_FLOAT_DILATED_DEPTHWISE_VERSION = 2

PRECISIONS = ("int8", "float32")
"""What a graph computes in: ``int8`` (full INT8 inside, float I/O) or ``float32`` (its unquantized twin)."""

RANGE_METHODS = ("minmax", "mse")
"""How an activation's INT8 range is chosen from its calibration values: ``minmax`` (the values' extremes, the
shipped default) or ``mse`` (the clipping range with the least expected squared quantization error)."""

_NUMPY_OF_TYPE = {
    tflite.TensorType.FLOAT32: np.dtype(np.float32),
    tflite.TensorType.INT32: np.dtype(np.int32),
    tflite.TensorType.INT8: np.dtype(np.int8),
}


@functools.cache
def field_slot(table: type, accessor: str) -> int:
    """Return the vtable slot of ``table.accessor``, read from the generated reader's ``Offset(4 + 2*slot)``."""
    source = inspect.getsource(getattr(table, accessor))
    match = re.search(r"self\._tab\.Offset\((\d+)\)", source)
    if match is None:
        raise LookupError(f"no vtable offset in {table.__name__}.{accessor}")
    return (int(match.group(1)) - 4) // 2


def _write_table(builder: flatbuffers.Builder, table: type, fields: Sequence[tuple[str, str, Any]]) -> int:
    """Write one table; ``fields`` are (reader accessor, kind, value) with offsets already built."""
    slots = [(field_slot(table, name), kind, value) for name, kind, value in fields]
    builder.StartObject(max((s for s, _, _ in slots), default=-1) + 1)
    for slot, kind, value in slots:
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "int8":
            builder.PrependInt8Slot(slot, value, 0)
        elif kind == "uint8":
            builder.PrependUint8Slot(slot, value, 0)
        elif kind == "int32":
            builder.PrependInt32Slot(slot, value, 0)
        elif kind == "uint32":
            builder.PrependUint32Slot(slot, value, 0)
        elif kind == "bool":
            builder.PrependBoolSlot(slot, value, False)
        else:
            raise ValueError(kind)
    return int(builder.EndObject())


def _vector(builder: flatbuffers.Builder, values: np.ndarray, alignment: int | None = None) -> int:
    array = np.ascontiguousarray(values)
    align = alignment or array.dtype.alignment
    builder.StartVector(array.itemsize, array.size, align)
    builder.head = builder.head - array.nbytes
    builder.Bytes[builder.head : builder.head + array.nbytes] = array.tobytes(order="C")
    builder.vectorNumElems = array.size
    return int(builder.EndVector())


def _offsets(builder: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    return int(builder.EndVector())


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0


@dataclass
class _Op:
    code: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options_type: int
    options: tuple[tuple[str, str, Any], ...]
    options_table: type | None
    version: int


@dataclass
class FlatModel:
    """A single-subgraph TFLite model under construction (tensors, constant buffers, operators)."""

    name: str
    tensors: list[_Tensor] = field(default_factory=list)
    buffers: list[bytes] = field(default_factory=lambda: [b""])
    ops: list[_Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    def tensor(
        self,
        name: str,
        shape: Sequence[int],
        type_: int,
        data: np.ndarray | None = None,
        scale: Sequence[float] = (),
        zero_point: Sequence[int] = (),
        quantized_dimension: int = 0,
    ) -> int:
        """Add a tensor (constant when ``data`` is given) and return its index."""
        buffer = 0
        if data is not None:
            expected = _NUMPY_OF_TYPE[type_]
            if data.dtype != expected or tuple(data.shape) != tuple(shape):
                raise ValueError(f"{name}: data {data.dtype}{data.shape} != {expected}{tuple(shape)}")
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buffer = len(self.buffers) - 1
        self.tensors.append(
            _Tensor(name, tuple(int(d) for d in shape), type_, buffer, tuple(float(s) for s in scale),
                    tuple(int(z) for z in zero_point), quantized_dimension)
        )
        return len(self.tensors) - 1

    def op(
        self,
        code: int,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options_table: type | None = None,
        options_type: int = 0,
        options: Sequence[tuple[str, str, Any]] = (),
        version: int | None = None,
    ) -> None:
        """Append an operator; ``options`` are (reader accessor, kind, value) of its options table."""
        self.ops.append(
            _Op(code, tuple(inputs), tuple(outputs), options_type, tuple(options), options_table,
                version if version is not None else _OP_VERSIONS[code])
        )

    def serialize(self) -> bytes:
        """Return the flatbuffer bytes (identifier ``TFL3``); deterministic for equal content."""
        b = flatbuffers.Builder(1024)
        codes: list[tuple[int, int]] = []
        for op in self.ops:
            if (op.code, op.version) not in codes:
                codes.append((op.code, op.version))

        buffer_offsets = []
        for data in self.buffers:
            fields: list[tuple[str, str, Any]] = []
            if data:
                # 16-byte alignment lets kernels (and XNNPACK packing) read weights in place.
                fields.append(("Data", "offset", _vector(b, np.frombuffer(data, np.uint8), 16)))
            buffer_offsets.append(_write_table(b, tflite.Buffer, fields))

        tensor_offsets = []
        for t in self.tensors:
            name = b.CreateString(t.name)
            shape = _vector(b, np.array(t.shape, np.int32))
            q_fields: list[tuple[str, str, Any]] = []
            if t.scale:
                q_fields = [
                    ("Scale", "offset", _vector(b, np.array(t.scale, np.float32))),
                    ("ZeroPoint", "offset", _vector(b, np.array(t.zero_point, np.int64))),
                    ("QuantizedDimension", "int32", t.quantized_dimension),
                ]
            quant = _write_table(b, tflite.QuantizationParameters, q_fields)
            tensor_offsets.append(
                _write_table(b, tflite.Tensor, [
                    ("Shape", "offset", shape),
                    ("Type", "int8", t.type),
                    ("Buffer", "uint32", t.buffer),
                    ("Name", "offset", name),
                    ("Quantization", "offset", quant),
                ])
            )

        op_offsets = []
        for op in self.ops:
            opt_fields: list[tuple[str, str, Any]] = []
            for accessor, kind, value in op.options:
                if kind == "int32_vector":
                    opt_fields.append((accessor, "offset", _vector(b, np.array(value, np.int32))))
                else:
                    opt_fields.append((accessor, kind, value))
            op_fields: list[tuple[str, str, Any]] = [
                ("OpcodeIndex", "uint32", codes.index((op.code, op.version))),
                ("Inputs", "offset", _vector(b, np.array(op.inputs, np.int32))),
                ("Outputs", "offset", _vector(b, np.array(op.outputs, np.int32))),
            ]
            if op.options_table is not None:
                options = _write_table(b, op.options_table, opt_fields)
                op_fields += [("BuiltinOptionsType", "uint8", op.options_type), ("BuiltinOptions", "offset", options)]
            op_offsets.append(_write_table(b, tflite.Operator, op_fields))

        subgraph = _write_table(b, tflite.SubGraph, [
            ("Tensors", "offset", _offsets(b, tensor_offsets)),
            ("Inputs", "offset", _vector(b, np.array(self.inputs, np.int32))),
            ("Outputs", "offset", _vector(b, np.array(self.outputs, np.int32))),
            ("Operators", "offset", _offsets(b, op_offsets)),
            ("Name", "offset", b.CreateString(self.name)),
        ])
        code_offsets = [
            _write_table(b, tflite.OperatorCode, [
                # Codes below 127 also go in the deprecated int8 field that old readers use.
                ("DeprecatedBuiltinCode", "int8", min(code, 127)),
                ("Version", "int32", version),
                ("BuiltinCode", "int32", code),
            ])
            for code, version in codes
        ]
        model = _write_table(b, tflite.Model, [
            ("Version", "uint32", 3),
            ("OperatorCodes", "offset", _offsets(b, code_offsets)),
            ("Subgraphs", "offset", _offsets(b, [subgraph])),
            ("Description", "offset", b.CreateString("myna tflite_builder")),
            ("Buffers", "offset", _offsets(b, buffer_offsets)),
        ])
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())


# ----------------------------------------------------------------------------------------------
# Quantized graph construction: every op computes its float reference on a calibration batch,
# takes its output range from it and emits the INT8 op, so calibration and export are one pass.
# With ``precision="float32"`` the same calls emit the same ops on float32 tensors and weights
# instead: the float twin that INT8 is measured against, from the one construction code.


def _round_up_range(value: float) -> float:
    """Round a range bound away from zero to 1/16 relative steps.

    Calibration goes through matmuls whose last bits depend on the BLAS build; a coarse grid keeps
    the exported bytes identical on every machine.
    """
    if value == 0.0:
        return 0.0
    mantissa, exponent = math.frexp(abs(value))
    return math.copysign(math.ceil(mantissa * 16.0) / 16.0 * 2.0**exponent, value)


_MSE_BINS = 2048
_MSE_STEPS = np.linspace(1.0, 0.25, 31)
"""Fractions of each extreme tried as a clipping bound by ``_mse_range``."""


def _mse_range(values: np.ndarray) -> tuple[float, float]:
    """The range [lo, hi] ∋ 0 whose INT8 grid has the least expected squared error over ``values``.

    Each bound is a fraction (``_MSE_STEPS``) of the values' extreme on its side.  The error is estimated
    from a histogram: s²/12 per value inside the range (uniform rounding noise, s = step), the exact squared
    distance to the nearer bound for a value outside it (clipping), so the search costs no pass over the data.
    """
    v = np.asarray(values, np.float64).ravel()
    lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
    if hi - lo <= 0.0:
        return lo, hi
    counts, edges = np.histogram(v, bins=_MSE_BINS, range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    total = float(counts.sum())
    best = (math.inf, lo, hi)
    # Ties (within rounding) keep the wider range, tried first.
    for a in _MSE_STEPS:
        for b in _MSE_STEPS:
            low, high = lo * a, hi * b
            step = (high - low) / 255.0
            below, above = centres < low, centres > high
            inside = total - counts[below].sum() - counts[above].sum()
            error = (inside * step * step / 12.0 + float(np.dot(counts[below], (centres[below] - low) ** 2))
                     + float(np.dot(counts[above], (centres[above] - high) ** 2)))
            if error < best[0] * (1.0 - 1e-9):
                best = (error, low, high)
    return best[1], best[2]


def _act_params(values: np.ndarray, min_range: float = 0.0, method: str = "minmax") -> tuple[float, int]:
    if method == "mse":
        lo, hi = _mse_range(values)
    else:
        lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    if hi - lo < min_range:
        # Widen around the values' centre: XNNPACK refuses an ADD whose input scale is under 1/1024 of
        # its output's, so a near-constant addend (an untrained FiLM β) needs a floor on its range.
        centre = 0.5 * (hi + lo)
        lo, hi = min(centre - 0.5 * min_range, 0.0), max(centre + 0.5 * min_range, 0.0)
    lo, hi = _round_up_range(lo), _round_up_range(hi)
    if hi - lo < 1e-6:
        hi = lo + 1e-6
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(round(-128.0 - lo / scale), -128, 127))
    return scale, zero_point


def _fake_quant(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    q = np.clip(np.round(values / scale) + zero_point, -128, 127)
    return (q - zero_point) * scale


@dataclass(frozen=True)
class QuantOptions:
    """Post-training INT8 choices of a ``QuantGraph``; the defaults write the shipped bytes."""

    per_channel_fc: bool = False
    """FULLY_CONNECTED weights get one scale per output row (quantized_dimension 0) instead of one per tensor."""
    range_method: str = "minmax"
    """How activation ranges come from the calibration batch: one of ``RANGE_METHODS``."""
    equalize: float = 0.0
    """Exponent of cross-layer channel equalization done by the graph's exporter before building (0: off,
    1: full; see ``voice.blocks.equalize_blocks``).  The builder itself does not read it."""

    def __post_init__(self) -> None:
        if self.range_method not in RANGE_METHODS:
            raise ValueError(f"range_method {self.range_method!r}: expected one of {RANGE_METHODS}")
        if not 0.0 <= self.equalize <= 1.0:
            raise ValueError(f"equalize {self.equalize}: expected 0..1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QuantOptions":
        """Build from ``to_dict`` output; unknown keys are an error."""
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON values."""
        return {"per_channel_fc": self.per_channel_fc, "range_method": self.range_method, "equalize": self.equalize}


@dataclass(frozen=True)
class Node:
    """A tensor of the graph plus its float reference values over the calibration batch."""

    index: int
    values: np.ndarray
    """Calibration values, shape (batch, *graph_shape[1:])."""
    shape: tuple[int, ...]
    scale: float = 0.0
    zero_point: int = 0


class QuantGraph:
    """Build a full-INT8 graph with float inputs/outputs (QUANTIZE in, DEQUANTIZE out), or its float32 twin.

    With ``precision="float32"`` every op writes float32 tensors and float32 weights (BatchNorm stays
    folded, the op types are the same), ``quantize`` is the identity and ``dequantize`` only names the
    graph output, so the twin has the INT8 graph's inputs, outputs, names and shapes.  Node values are
    then the float reference itself, with no quantization noise.
    """

    def __init__(self, name: str, precision: str = "int8", options: QuantOptions | None = None) -> None:
        """``precision``: one of ``PRECISIONS``; ``options``: INT8 choices (ignored by the float32 twin)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: expected one of {PRECISIONS}")
        self.model = FlatModel(name)
        self.precision = precision
        """``int8`` or ``float32``; the manifest's ``quantization`` of the graph."""
        self.options = options or QuantOptions()
        """Post-training INT8 choices."""
        self._count = 0

    @property
    def is_float(self) -> bool:
        """True for the float32 twin."""
        return self.precision == "float32"

    def _version(self, code: int) -> int:
        return (_FLOAT_OP_VERSIONS if self.is_float else _OP_VERSIONS)[code]

    def _float(self, stem: str, values: np.ndarray, shape: tuple[int, ...]) -> Node:
        index = self.model.tensor(self._name(stem), shape, tflite.TensorType.FLOAT32)
        return Node(index, values, shape)

    def _const(self, stem: str, data: np.ndarray) -> tuple[int, np.ndarray]:
        """A float32 constant and the values the graph really holds (float32-rounded), as float64."""
        array = np.ascontiguousarray(data, np.float32)
        return self.model.tensor(self._name(stem), array.shape, tflite.TensorType.FLOAT32, array), array.astype(np.float64)

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def _int8(self, stem: str, values: np.ndarray, shape: tuple[int, ...], min_range: float = 0.0) -> Node:
        if self.is_float:
            return self._float(stem, values, shape)
        scale, zp = _act_params(values, min_range, self.options.range_method)
        index = self.model.tensor(self._name(stem), shape, tflite.TensorType.INT8, scale=[scale], zero_point=[zp])
        return Node(index, _fake_quant(values, scale, zp), shape, scale, zp)

    def _int8_like(self, stem: str, source: Node, values: np.ndarray, shape: tuple[int, ...]) -> Node:
        if self.is_float:
            return self._float(stem, values, shape)
        index = self.model.tensor(self._name(stem), shape, tflite.TensorType.INT8,
                                  scale=[source.scale], zero_point=[source.zero_point])
        return Node(index, values, shape, source.scale, source.zero_point)

    def input(self, name: str, shape: Sequence[int], calibration: np.ndarray, dtype: int = tflite.TensorType.FLOAT32) -> Node:
        """Declare a graph input; ``calibration`` is a batch of representative values."""
        index = self.model.tensor(name, shape, dtype)
        self.model.inputs.append(index)
        return Node(index, calibration, tuple(shape))

    def quantize(self, x: Node) -> Node:
        """Float input → int8 at the range the calibration batch shows (the float twin: ``x`` itself)."""
        if self.is_float:
            return x
        out = self._int8("q", x.values, x.shape)
        self.model.op(tflite.BuiltinOperator.QUANTIZE, [x.index], [out.index],
                      tflite.QuantizeOptions, tflite.BuiltinOptions.QuantizeOptions)
        return out

    def dequantize(self, x: Node, name: str) -> Node:
        """Int8 → float graph output named ``name`` (the float twin: ``x``'s tensor renamed and made the output)."""
        if self.is_float:
            if x.index in self.model.inputs or x.index in self.model.outputs:
                raise ValueError(f"{name}: tensor {self.model.tensors[x.index].name!r} is already a graph input or output")
            self.model.tensors[x.index].name = name
            self.model.outputs.append(x.index)
            return x
        index = self.model.tensor(name, x.shape, tflite.TensorType.FLOAT32)
        self.model.op(tflite.BuiltinOperator.DEQUANTIZE, [x.index], [index],
                      tflite.DequantizeOptions, tflite.BuiltinOptions.DequantizeOptions)
        self.model.outputs.append(index)
        return Node(index, x.values, x.shape)

    def gather(self, table: np.ndarray, ids: Node) -> Node:
        """Embedding lookup; GATHER keeps the table's quantization for its output."""
        if self.is_float:
            t_index, table_f = self._const("embedding", table)
            out = self._float("gather", table_f[ids.values], (*ids.shape, table.shape[1]))
            self.model.op(tflite.BuiltinOperator.GATHER, [t_index, ids.index], [out.index],
                          tflite.GatherOptions, tflite.BuiltinOptions.GatherOptions, [("Axis", "int32", 0)],
                          version=self._version(tflite.BuiltinOperator.GATHER))
            return out
        scale, zp = _act_params(table)
        q_table = np.clip(np.round(table / scale) + zp, -128, 127).astype(np.int8)
        t_index = self.model.tensor(self._name("embedding"), table.shape, tflite.TensorType.INT8, q_table,
                                    scale=[scale], zero_point=[zp])
        deq = (q_table.astype(np.float64) - zp) * scale
        shape = (*ids.shape, table.shape[1])
        out = self._int8_like("gather", Node(t_index, deq, table.shape, scale, zp), deq[ids.values], shape)
        self.model.op(tflite.BuiltinOperator.GATHER, [t_index, ids.index], [out.index],
                      tflite.GatherOptions, tflite.BuiltinOptions.GatherOptions, [("Axis", "int32", 0)])
        return out

    def _weights(self, stem: str, w: np.ndarray) -> tuple[int, np.ndarray, float]:
        if self.is_float:
            index, values = self._const(stem, w)
            return index, values, 1.0
        scale = float(np.abs(w).max()) / 127.0 or 1.0
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        index = self.model.tensor(self._name(stem), w.shape, tflite.TensorType.INT8, q, scale=[scale], zero_point=[0])
        return index, q.astype(np.float64) * scale, scale

    def _bias(self, stem: str, b: np.ndarray, scale: float) -> tuple[int, np.ndarray]:
        if self.is_float:
            return self._const(stem, b)
        q = np.round(b / scale).astype(np.int32)
        index = self.model.tensor(self._name(stem), b.shape, tflite.TensorType.INT32, q, scale=[scale], zero_point=[0])
        return index, q.astype(np.float64) * scale

    def _fc_weights_per_channel(self, w: np.ndarray, b: np.ndarray, x_scale: float) -> tuple[int, np.ndarray, int, np.ndarray]:
        """Per-output-row INT8 weights [out, in] and their INT32 bias; (w index, w values, b index, b values).

        A row's scale is floored at 1/1024 of the largest row's, and high enough that its bias fits in
        2^30 steps, so a (near-)zero row neither overflows the bias nor asks for an absurd requantization.
        """
        largest = float(np.abs(w).max()) / 127.0 or 1.0
        w_scale = np.maximum(np.abs(w).max(axis=1) / 127.0, largest / 1024.0)
        w_scale = np.maximum(w_scale, np.abs(b) / (x_scale * 2.0**30))
        q = np.clip(np.round(w / w_scale[:, None]), -127, 127).astype(np.int8)
        rows = w.shape[0]
        w_index = self.model.tensor(self._name("fc_w"), w.shape, tflite.TensorType.INT8, q, scale=list(w_scale),
                                    zero_point=[0] * rows, quantized_dimension=0)
        b_scale = x_scale * w_scale
        qb = np.round(b / b_scale).astype(np.int32)
        b_index = self.model.tensor(self._name("fc_b"), b.shape, tflite.TensorType.INT32, qb, scale=list(b_scale),
                                    zero_point=[0] * rows, quantized_dimension=0)
        return w_index, q.astype(np.float64) * w_scale[:, None], b_index, qb * b_scale

    def fully_connected(self, x: Node, w: np.ndarray, b: np.ndarray, relu: bool = False, min_range: float = 0.0) -> Node:
        """y = x·wᵀ + b over the last axis (``w`` is [out, in]); keeps leading dims.

        ``min_range`` floors the output's quantization range (see ``_act_params``).
        """
        if self.options.per_channel_fc and not self.is_float:
            w_index, w_deq, b_index, b_deq = self._fc_weights_per_channel(w, b, x.scale)
        else:
            w_index, w_deq, w_scale = self._weights("fc_w", w)
            b_index, b_deq = self._bias("fc_b", b, x.scale * w_scale)
        values = x.values @ w_deq.T + b_deq
        if relu:
            values = np.maximum(values, 0.0)
        shape = (*x.shape[:-1], w.shape[0])
        out = self._int8("fc", values, shape, min_range)
        keep = len(x.shape) > 2
        self.model.op(
            tflite.BuiltinOperator.FULLY_CONNECTED, [x.index, w_index, b_index], [out.index],
            tflite.FullyConnectedOptions, tflite.BuiltinOptions.FullyConnectedOptions,
            [("FusedActivationFunction", "int8", tflite.ActivationFunctionType.RELU if relu else 0),
             ("KeepNumDims", "bool", keep)],
            version=_FC_KEEP_DIMS_VERSION if keep else _FLOAT_FC_VERSION if self.is_float else _FC_VERSION,
        )
        return out

    def _binary(self, code: int, table: type, opt_type: int, a: Node, b: Node, values: np.ndarray, relu: bool) -> Node:
        if relu:
            values = np.maximum(values, 0.0)
        shape = tuple(int(max(p, q)) for p, q in zip(a.shape, b.shape))
        out = self._int8("add" if code == tflite.BuiltinOperator.ADD else "mul", values, shape)
        self.model.op(code, [a.index, b.index], [out.index], table, opt_type,
                      [("FusedActivationFunction", "int8", tflite.ActivationFunctionType.RELU if relu else 0)],
                      version=self._version(code))
        return out

    def add(self, a: Node, b: Node, relu: bool = False) -> Node:
        """Broadcasting ADD (equal ranks)."""
        return self._binary(tflite.BuiltinOperator.ADD, tflite.AddOptions, tflite.BuiltinOptions.AddOptions,
                            a, b, a.values + b.values, relu)

    def mul(self, a: Node, b: Node, relu: bool = False) -> Node:
        """Broadcasting MUL (equal ranks)."""
        return self._binary(tflite.BuiltinOperator.MUL, tflite.MulOptions, tflite.BuiltinOptions.MulOptions,
                            a, b, a.values * b.values, relu)

    def reshape(self, x: Node, shape: Sequence[int]) -> Node:
        """RESHAPE with a constant shape tensor; quantization passes through unchanged."""
        shape = tuple(int(d) for d in shape)
        shape_index = self.model.tensor(self._name("shape"), (len(shape),), tflite.TensorType.INT32,
                                        np.array(shape, np.int32))
        values = x.values.reshape((x.values.shape[0], *shape[1:]))
        out = self._int8_like("reshape", x, values, shape)
        self.model.op(tflite.BuiltinOperator.RESHAPE, [x.index, shape_index], [out.index],
                      tflite.ReshapeOptions, tflite.BuiltinOptions.ReshapeOptions,
                      [("NewShape", "int32_vector", list(shape))], version=self._version(tflite.BuiltinOperator.RESHAPE))
        return out

    def depthwise_time_conv(self, x: Node, w: np.ndarray, b: np.ndarray, relu: bool = True) -> Node:
        """Depthwise conv along time of a [1, 1, T, C] tensor, kernel ``w`` [K, C], SAME padding."""
        kernel, channels = w.shape
        w_index, w_deq, w_scale = self._weights("dw_w", w.reshape(1, 1, kernel, channels))
        b_index, b_deq = self._bias("dw_b", b, x.scale * w_scale)
        taps = w_deq.reshape(kernel, channels)
        pad = (kernel - 1) // 2
        seq = x.values[:, 0]  # (batch, T, C)
        padded = np.pad(seq, ((0, 0), (pad, kernel - 1 - pad), (0, 0)))
        values = sum(padded[:, k : k + seq.shape[1]] * taps[k] for k in range(kernel)) + b_deq
        if relu:
            values = np.maximum(values, 0.0)
        out = self._int8("dwconv", values[:, None], x.shape)
        self.model.op(
            tflite.BuiltinOperator.DEPTHWISE_CONV_2D, [x.index, w_index, b_index], [out.index],
            tflite.DepthwiseConv2DOptions, tflite.BuiltinOptions.DepthwiseConv2DOptions,
            [("Padding", "int8", tflite.Padding.SAME), ("StrideW", "int32", 1), ("StrideH", "int32", 1),
             ("DepthMultiplier", "int32", 1),
             ("FusedActivationFunction", "int8", tflite.ActivationFunctionType.RELU if relu else 0),
             ("DilationWFactor", "int32", 1), ("DilationHFactor", "int32", 1)],
            version=self._version(tflite.BuiltinOperator.DEPTHWISE_CONV_2D),
        )
        return out

    def dilated_depthwise(self, x: Node, w: np.ndarray, b: np.ndarray, dilation: int) -> Node:
        """Depthwise conv of a [1, 1, T, C] tensor, kernel ``w`` [K, C], SAME padding, no activation.

        Weights are quantized per channel: a BatchNorm folded into the conv makes channel ranges differ
        by orders of magnitude, and one scale would flatten the small ones to zero.
        """
        kernel, channels = w.shape
        if self.is_float:
            w_index, taps = self._const("dw_w", w.reshape(1, 1, kernel, channels))
            taps = taps.reshape(kernel, channels)
            b_index, b_values = self._const("dw_b", b)
        else:
            w_scale = np.maximum(np.abs(w).max(axis=0), 1e-8) / 127.0
            q = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
            w_index = self.model.tensor(self._name("dw_w"), (1, 1, kernel, channels), tflite.TensorType.INT8,
                                        q.reshape(1, 1, kernel, channels), scale=list(w_scale),
                                        zero_point=[0] * channels, quantized_dimension=3)
            b_scale = x.scale * w_scale
            qb = np.round(b / b_scale).astype(np.int32)
            b_index = self.model.tensor(self._name("dw_b"), (channels,), tflite.TensorType.INT32, qb,
                                        scale=list(b_scale), zero_point=[0] * channels, quantized_dimension=0)
            taps = q.astype(np.float64) * w_scale
            b_values = qb * b_scale
        pad = dilation * (kernel - 1) // 2
        seq = x.values[:, 0]
        padded = np.pad(seq, ((0, 0), (pad, pad), (0, 0)))
        t = seq.shape[1]
        values = sum(padded[:, k * dilation : k * dilation + t] * taps[k] for k in range(kernel)) + b_values
        out = self._int8("dwconv", values[:, None], x.shape)
        self.model.op(
            tflite.BuiltinOperator.DEPTHWISE_CONV_2D, [x.index, w_index, b_index], [out.index],
            tflite.DepthwiseConv2DOptions, tflite.BuiltinOptions.DepthwiseConv2DOptions,
            [("Padding", "int8", tflite.Padding.SAME), ("StrideW", "int32", 1), ("StrideH", "int32", 1),
             ("DepthMultiplier", "int32", 1), ("FusedActivationFunction", "int8", 0),
             ("DilationWFactor", "int32", dilation), ("DilationHFactor", "int32", 1)],
            version=(_FLOAT_DILATED_DEPTHWISE_VERSION if dilation != 1 else 1) if self.is_float else None,
        )
        return out

    def serialize(self) -> bytes:
        """Return the finished model's bytes."""
        return self.model.serialize()
