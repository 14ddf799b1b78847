"""ONNX Runtime CPU backend: each module exported to ONNX (torch's TorchScript exporter, which needs no
onnxscript and exports a block in ~15 ms), one single-threaded-by-default sequential session each,
timed interleaved with pre-bound inputs and outputs (IOBinding) to keep Python overhead per run small.
"""

from __future__ import annotations

import io
import platform
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nas.latency.backends.base import Item, Settings, Timing
from nas.latency.backends.timing import interleave

OPSET = 17


def export_onnx(
    module: torch.nn.Module,
    input_shape: tuple[int, ...],
    input_name: str = "x",
    output_name: str = "y",
    dynamic_batch: bool = False,
) -> bytes:
    """The module as ONNX bytes (BatchNorm folded into convs, as any deployment would)."""
    buffer = io.BytesIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tracing runs the model; torch's thread pool stalls on a busy machine
    axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                (torch.zeros(input_shape),),
                buffer,
                dynamo=False,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes=axes,
                opset_version=OPSET,
            )
    finally:
        torch.set_num_threads(threads)
    return buffer.getvalue()


class OrtBackend:
    """Times modules with ONNX Runtime's CPU execution provider."""

    name = "ort"
    dtypes = ("fp32",)
    options: tuple[str, ...] = ()

    @staticmethod
    def options_from_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
        return {}

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime

        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self._ort = onnxruntime
        self.threads = threads
        self.version = onnxruntime.__version__

    def session(self, onnx_bytes: bytes) -> Any:
        ort = self._ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])

    def runner(self, item: Item) -> Callable[[], None]:
        """A no-argument call that runs the item once, its input and output buffers bound in advance."""
        session = self.session(export_onnx(item.module, item.input_shape))
        x = np.random.default_rng(0).standard_normal(item.input_shape).astype(np.float32)
        y = np.empty_like(session.run(None, {"x": x})[0])
        x_value, y_value = (self._ort.OrtValue.ortvalue_from_numpy(a) for a in (x, y))
        binding = session.io_binding()
        binding.bind_ortvalue_input("x", x_value)
        binding.bind_ortvalue_output("y", y_value)

        def run() -> None:
            session.run_with_iobinding(binding)

        run.buffers = (x, y, x_value, y_value)  # type: ignore[attr-defined]  # alive as long as run
        return run

    def measure(self, items: list[Item], settings: Settings) -> dict[str, Timing]:
        return interleave({item.name: self.runner(item) for item in items}, settings)

    def provenance(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "backend_version": self.version,
            "threads": self.threads,
            "onnx_opset": OPSET,
            "torch": torch.__version__,
            "onnxruntime": self.version,
            "python": platform.python_version(),
        }
