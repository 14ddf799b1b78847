"""The ONNX models every export makes of a network, and their clinical scores through ONNX Runtime.

The fp32 model (normalization inside the graph, checked against PyTorch) and, when asked for, its INT8
version (calibrated on training inputs, checked against the fp32 logits), both carrying the deployment
metadata. ``nas export`` (``nas.export.pipeline``) writes them; benchmarks that compare many networks
make and score them the same way here, so that their figures are the ones an export would report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.data.splits import Splits
from nas.export.format import ExportOptions, input_kind
from nas.export.onnx import Normalized, parity
from nas.export.source import Source
from nas.onnxrt import export_onnx, session

PARITY_IMAGES = 5
SPLITS = ("val", "test")


@dataclass(frozen=True)
class Variants:
    """A network's ONNX models and what they were checked and calibrated with."""

    model: nn.Module  # the network behind its normalization, eval mode: what the graphs compute
    onnx: dict[str, bytes]  # "fp32", and "int8" when asked for
    images: np.ndarray  # the parity inputs, as the model takes them
    parity: dict[str, float]  # the model card's parity entry
    calibration: dict[str, Any] | None  # how the INT8 model was calibrated (None: no INT8)


def export_variants(source: Source, options: ExportOptions) -> Variants:
    """``source``'s fp32 ONNX model and, with ``options.int8``, its INT8 one, each with the deployment
    metadata (``options.prune``: the pruned channel ratio it records); raises ``ParityError`` when the
    fp32 model differs from PyTorch."""
    from nas.export.runtime import logits

    meta = deployment_metadata(source, options.prune)
    model = normalized(source)
    fp32 = export_onnx(model, source.input_shape, deployable=True, metadata={**meta, "precision": "fp32"})
    images = parity_images(source)
    parities = {"fp32_max_abs_diff": max(parity(model, fp32, images[:1]), parity(model, fp32, images))}
    onnx = {"fp32": fp32}
    calibration = None
    if options.int8:
        onnx["int8"], calibration = _quantized(fp32, source, options, {**meta, "precision": "int8"})
        int8_logits = logits(session(onnx["int8"]), images)
        parities["int8_vs_fp32_max_abs_logit_diff"] = float(
            np.abs(int8_logits - model_logits(model, images)).max()
        )
    return Variants(model, onnx, images, parities, calibration)


def normalized(source: Source) -> Normalized:
    """``source``'s network behind its normalization, for its arch's input rank, in eval mode."""
    return Normalized(source.network, source.mean, source.std, source.arch.dims).eval()


def deployment_metadata(source: Source, pruned: float | None = None) -> dict[str, Any]:
    """What a deployment reads from the file itself (the ONNX metadata_props), less the precision."""
    kind, dims = input_kind(source.input_shape), ", ".join(map(str, source.input_shape[1:]))
    return {
        "arch": source.arch.to_str(),
        "class_names": source.class_names,
        "threshold": source.threshold,
        "task": source.task,
        "input": f"float32 {kind.layout} [batch, {dims}], {kind.short}",
        "normalization": {"mean": source.mean, "std": source.std, "inside_graph": True},
        "output": "logits",
        "pruned_channel_ratio": pruned,
        "not_a_medical_device": "research prototype; not for clinical decisions",
    }


def clinical_scores(
    onnx_bytes: bytes, splits: Splits, task: str, threshold: float | None, names: tuple[str, ...] = SPLITS
) -> dict[str, dict[str, Any]]:
    """Every clinical metric of an exported model on the splits ``names``, run through ONNX Runtime at
    ``threshold`` (the operating point chosen on val)."""
    from nas.export.runtime import split_probs
    from nas.metrics.clinical import clinical_metrics

    sess = session(onnx_bytes)
    return {
        name: clinical_metrics(
            getattr(splits, name).labels, split_probs(sess, getattr(splits, name), task), threshold
        )
        for name in names
    }


def parity_images(source: Source) -> np.ndarray:
    """Inputs for parity checks: real test images (or signals) when there is data, else generated ones."""
    from nas.data.splits import model_input
    from nas.export.quantize import calibration_images

    if source.splits is not None:
        return model_input(source.splits.test.inputs[:PARITY_IMAGES])
    return calibration_images(None, PARITY_IMAGES, source.input_shape[1:], seed=1)


def model_logits(model: nn.Module, images01: np.ndarray) -> np.ndarray:
    """PyTorch's logits of inputs as the model takes them (float32 NCHW in [0, 1], or NCL signals)."""
    with torch.no_grad():
        return model.eval()(torch.from_numpy(images01)).numpy()


def _quantized(
    fp32: bytes, source: Source, options: ExportOptions, meta: dict[str, Any]
) -> tuple[bytes, dict[str, Any]]:
    """The INT8 model, calibrated on training inputs (generated ones when there is no data)."""
    from nas.export.quantize import calibration_images, quantize_int8

    train = source.splits.train.inputs if source.splits is not None else None
    images = calibration_images(train, options.calibration_images, source.input_shape[1:], options.seed)
    int8 = quantize_int8(fp32, images, options.calibration_method, meta)
    return int8, {
        "images": len(images),
        "source": "training split"
        if train is not None
        else f"generated {'signals' if source.arch.dims == 1 else 'images'} (no data)",
        "method": options.calibration_method,
    }
