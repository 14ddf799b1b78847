"""ONNX Runtime CPU backend: each module exported to ONNX (torch's TorchScript exporter, which needs no
onnxscript and exports a block in ~15 ms), one single-threaded-by-default sequential session each,
timed interleaved with pre-bound inputs and outputs (IOBinding) to keep Python overhead per run small.
Export, session and bound call are ``nas.onnxrt``'s, which the exporter uses too.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nas.errors import ConfigError
from nas.latency.backends.base import Item, Settings, Timing
from nas.latency.backends.timing import interleave
from nas.onnxrt import OPSET, export_onnx, runner, session


class OrtBackend:
    """Times modules with ONNX Runtime's CPU execution provider."""

    name = "ort"
    dtypes = ("fp32",)
    options: tuple[str, ...] = ()

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime

        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self.version = onnxruntime.__version__

    def runner(self, item: Item) -> Callable[[], None]:
        """A no-argument call that runs the item once, its input and output buffers bound in advance."""
        x = np.random.default_rng(0).standard_normal(item.input_shape).astype(np.float32)
        return runner(session(export_onnx(item.module, item.input_shape), self.threads), x)

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
