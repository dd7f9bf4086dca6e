"""The TFLite runtime shim (LiteRT first, tflite-runtime second) and a fixed-shape, preallocated Graph."""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .. import errors

if TYPE_CHECKING:
    from ..voices import GraphSpec, TensorSpec

_LOGGER = logging.getLogger(__name__)


class Backend(enum.Enum):
    """Which Python package provides the TFLite interpreter."""

    LITERT = "ai_edge_litert"
    TFLITE_RUNTIME = "tflite_runtime"


def interpreter_class(backend: Backend | None = None) -> tuple[Backend, type]:
    """Import and return an ``Interpreter`` class; LiteRT first unless ``backend`` names one."""
    order = [backend] if backend is not None else [Backend.LITERT, Backend.TFLITE_RUNTIME]
    failures = []
    for choice in order:
        # Imports stay inside the branches so a missing optional package fails only when it is asked for.
        try:
            if choice is Backend.LITERT:
                from ai_edge_litert.interpreter import Interpreter
            else:
                from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        except ImportError as exc:
            failures.append(f"{choice.value}: {exc}")
            continue
        return choice, Interpreter
    raise errors.RuntimeUnavailable(
        "no TFLite runtime could be imported (install ai-edge-litert, or tflite-runtime with numpy<2 on armv7l): "
        + "; ".join(failures)
    )


def make_interpreter(path: Path, num_threads: int = 1, backend: Backend | None = None) -> tuple[Backend, Any]:
    """Create an interpreter for ``path`` (not yet allocated)."""
    chosen, cls = interpreter_class(backend)
    try:
        return chosen, cls(model_path=str(path), num_threads=num_threads)
    except ValueError as exc:
        raise errors.VoicePackError(f"{path.name}: the TFLite runtime cannot load it: {exc}") from None


def _dtype_name(dtype: Any) -> str:
    return np.dtype(dtype).name


def read_io(path: Path) -> tuple[tuple["TensorSpec", ...], tuple["TensorSpec", ...]]:
    """Return the graph's (inputs, outputs) as TensorSpecs; raise VoicePackError for dynamic shapes."""
    from ..voices import TensorSpec

    _, interp = make_interpreter(path)
    result = []
    for details in (interp.get_input_details(), interp.get_output_details()):
        specs = []
        for d in details:
            signature = d.get("shape_signature", d["shape"])
            if any(int(x) < 0 for x in signature):
                raise errors.VoicePackError(f"{path.name}: tensor {d['name']!r} has a dynamic shape {list(signature)}")
            specs.append(TensorSpec(d["name"], _dtype_name(d["dtype"]), tuple(int(x) for x in d["shape"])))
        result.append(tuple(specs))
    return result[0], result[1]


def count_delegate_partitions(interpreter: Any) -> int:
    """Number of delegate partitions (XNNPACK) the interpreter runs; 0 means plain kernels."""
    return sum(1 for op in interpreter._get_ops_details() if op.get("op_name") == "DELEGATE")


class _Quant:
    """Scale and zero point of an integer I/O tensor, with a preallocated integer staging buffer."""

    def __init__(self, scale: float, zero_point: int, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.scale = scale
        self.zero_point = zero_point
        info = np.iinfo(dtype)
        self.low, self.high = info.min, info.max
        self.staging = np.zeros(shape, dtype)
        self.scratch = np.zeros(shape, np.float32)


class Graph:
    """One fixed-shape TFLite graph with preallocated numpy I/O.

    Fill ``inputs[name]`` in place, call ``run()``, read ``outputs[name]``.  Buffers are created once;
    int8/int16 I/O tensors are exposed as float32 and converted with their (scale, zero_point).
    Not thread-safe: one Graph serves one worker thread.
    """

    def __init__(self, path: Path, spec: "GraphSpec", num_threads: int = 1, backend: Backend | None = None) -> None:
        """Load ``path``, check it against ``spec`` (names, dtypes, shapes) and preallocate its buffers."""
        self.path = Path(path)
        self.backend, self._interp = make_interpreter(self.path, num_threads, backend)
        self._interp.allocate_tensors()
        in_details = {d["name"]: d for d in self._interp.get_input_details()}
        out_details = {d["name"]: d for d in self._interp.get_output_details()}
        self.inputs: dict[str, np.ndarray] = {}
        """Input name → buffer to fill before ``run()``."""
        self.outputs: dict[str, np.ndarray] = {}
        """Output name → buffer ``run()`` overwrites."""
        self._in: list[tuple[int, np.ndarray, _Quant | None]] = []
        self._out: list[tuple[int, np.ndarray, _Quant | None]] = []
        for kind, declared, details, buffers, plan in (
            ("input", spec.inputs, in_details, self.inputs, self._in),
            ("output", spec.outputs, out_details, self.outputs, self._out),
        ):
            if {t.name for t in declared} != set(details):
                raise errors.VoicePackError(
                    f"{self.path.name}: {kind}s are {sorted(details)}, manifest declares {sorted(t.name for t in declared)}"
                )
            for t in declared:
                d = details[t.name]
                dtype = np.dtype(d["dtype"])
                shape = tuple(int(x) for x in d["shape"])
                if dtype.name != t.dtype or shape != t.shape:
                    raise errors.VoicePackError(
                        f"{self.path.name}: {kind} {t.name!r} is {dtype.name}{list(shape)}, manifest says {t.dtype}{list(t.shape)}"
                    )
                quant = None
                scale, zero_point = d.get("quantization", (0.0, 0))
                if dtype in (np.dtype(np.int8), np.dtype(np.int16)) and scale:
                    quant = _Quant(float(scale), int(zero_point), dtype, shape)
                    buffer = np.zeros(shape, np.float32)
                else:
                    buffer = np.zeros(shape, dtype)
                buffers[t.name] = buffer
                plan.append((int(d["index"]), buffer, quant))
        _LOGGER.debug(
            "loaded %s with %s, %d threads, %d delegate partitions",
            self.path.name, self.backend.value, num_threads, self.delegate_partitions(),
        )

    def run(self) -> None:
        """Copy the input buffers in, invoke, and copy the outputs into the output buffers."""
        interp = self._interp
        for index, buffer, quant in self._in:
            if quant is None:
                interp.set_tensor(index, buffer)
            else:
                np.divide(buffer, quant.scale, out=quant.scratch)
                np.rint(quant.scratch, out=quant.scratch)
                quant.scratch += quant.zero_point
                np.clip(quant.scratch, quant.low, quant.high, out=quant.scratch)
                np.copyto(quant.staging, quant.scratch, casting="unsafe")
                interp.set_tensor(index, quant.staging)
        interp.invoke()
        for index, buffer, quant in self._out:
            # tensor(index)() is a view of internal memory: used within this statement only, so no
            # reference outlives the call (a live view would block any later resize/reallocation).
            if quant is None:
                np.copyto(buffer, interp.tensor(index)())
            else:
                np.copyto(buffer, interp.tensor(index)(), casting="unsafe")
                buffer -= quant.zero_point
                buffer *= quant.scale

    def delegate_partitions(self) -> int:
        """How many delegate (XNNPACK) partitions this graph runs in."""
        return count_delegate_partitions(self._interp)

    def op_names(self) -> list[str]:
        """Names of the ops the interpreter executes (DELEGATE for a delegated partition)."""
        return [str(op.get("op_name")) for op in self._interp._get_ops_details()]

    def input_details(self) -> Mapping[str, Any]:
        """The interpreter's input details by name (quantization included)."""
        return {d["name"]: d for d in self._interp.get_input_details()}
