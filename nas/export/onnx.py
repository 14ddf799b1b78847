"""ONNX export under the deployment contract, with its checks.

The contract: the model takes raw images, float32 in [0, 1], NCHW (a 1-D arch: the raw signal, float32
NCL), any batch size; it normalizes them itself (the training mean and std are constants in the graph),
and it outputs logits. Class names, the
operating threshold and the normalization travel in the model's ``metadata_props``, so a deployment
needs nothing but the ``.onnx`` file. The export (``nas.onnxrt.export_onnx``, ``deployable=True``) is checked
twice: ``onnx.checker`` on the graph, and parity against PyTorch on the same images
(``PARITY_TOLERANCE`` on the logits, fp32).

``--format onnx`` (``FORMAT``) adds nothing to what every export writes: the fp32 model, and with
``--int8``, which only this format takes, the INT8 one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.export.format import ExportOptions, Reference
from nas.export.runtime import logits
from nas.onnxrt import session

PARITY_TOLERANCE = 1e-4


class ParityError(RuntimeError):
    """The exported model's outputs differ from PyTorch's beyond the tolerance: the export is wrong."""


class Normalized(nn.Module):
    """The network behind its input normalization: what the ONNX graph computes from [0, 1] pixels (or,
    ``dims`` 1, from the raw signal). The per-channel buffers are shaped for the input's rank, so the
    graph holds them as broadcastable constants."""

    def __init__(self, network: nn.Module, mean: list[float], std: list[float], dims: int = 2) -> None:
        super().__init__()
        self.network = network
        shape = (1, -1, *(1,) * dims)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.network((image - self.mean) / self.std)


def weight_bytes(onnx_bytes: bytes) -> int:
    """Bytes of the model's initializers (weights, biases, quantization scales): the file size less the
    graph's structure and names, which weigh relatively more in a small quantized network."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(onnx_bytes).graph
    return sum(numpy_helper.to_array(t).nbytes for t in graph.initializer)


def read_metadata(onnx_bytes: bytes) -> dict[str, str]:
    """The metadata_props of an ONNX model, as stored (strings)."""
    return dict(session(onnx_bytes).get_modelmeta().custom_metadata_map)


def parity(model: nn.Module, onnx_bytes: bytes, images01: np.ndarray) -> float:
    """Max abs difference of the logits of PyTorch and ONNX Runtime on the same inputs ([0, 1] images or
    raw signals); raises ``ParityError`` above ``PARITY_TOLERANCE``."""
    return compare_logits(model, images01, logits(session(onnx_bytes), images01), "ONNX")


def compare_logits(model: nn.Module, images01: np.ndarray, got: np.ndarray, runtime: str) -> float:
    """Max abs difference between ``got`` (a runtime's logits) and PyTorch's on the same images;
    raises ``ParityError`` on another shape or above ``PARITY_TOLERANCE``."""
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(images01)).numpy()
    if got.shape != expected.shape:
        raise ParityError(f"{runtime} output shape {got.shape} differs from PyTorch's {expected.shape}")
    diff = float(np.abs(got - expected).max())
    if not diff < PARITY_TOLERANCE:
        raise ParityError(
            f"{runtime} parity failed: max abs logit difference {diff:.3g} >= {PARITY_TOLERANCE:g} vs PyTorch"
        )
    return diff


class OnnxFormat:
    """The ONNX files are written for every format (they are the reference): nothing to add here."""

    name = "onnx"
    options = ("int8",)

    def check(self, options: ExportOptions) -> None:
        return None

    def export(self, model: nn.Module, reference: Reference, options: ExportOptions, out_dir: Path) -> None:
        return None

    def card_lines(self, section: dict[str, Any]) -> list[str]:
        return []

    def summary(self, section: dict[str, Any]) -> str:
        return ""


FORMAT = OnnxFormat()
