"""Running exported ONNX models with ONNX Runtime (sessions from ``nas.onnxrt``): class probabilities
on a split, and side-by-side timing.

Every session is single-threaded (the deployment target is a small CPU, and one thread keeps timings
comparable with the latency tables). Timing reuses the latency tables' interleaved loop
(``nas.latency.backends.timing.interleave``): the models run round-robin in shuffled order, so drift of
a shared machine hits them all alike, and a latency ratio is measured in one go, never across runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nas.data.splits import Split, model_input
from nas.latency.backends.base import Settings, Timing
from nas.latency.backends.timing import interleave
from nas.onnxrt import OUTPUT, runner, session

BATCH = 256


def logits(sess: Any, images01: np.ndarray) -> np.ndarray:
    """Logits of inputs as the model takes them (float32 NCHW images in [0, 1], or NCL signals), in
    batches."""
    name = sess.get_inputs()[0].name  # "image" or "signal"
    out = [sess.run([OUTPUT], {name: images01[i : i + BATCH]})[0] for i in range(0, len(images01), BATCH)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def probabilities(raw: np.ndarray, task: str) -> np.ndarray:
    """Sigmoid per label for multi-label tasks, softmax otherwise (as the trainer scores them)."""
    raw = raw.astype(np.float64)
    if task == "multi-label":
        return 1 / (1 + np.exp(-raw))
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def split_probs(sess: Any, split: Split, task: str) -> np.ndarray:
    """Class probabilities ``(N, K)`` of a split's images or signals through an exported model."""
    return probabilities(logits(sess, model_input(split.inputs)), task)


def onnx_runner(onnx_bytes: bytes, input_shape: tuple[int, ...]) -> Callable[[], None]:
    """A no-argument call running the model once (1 thread) on a fixed input of ``input_shape``."""
    return runner(session(onnx_bytes), np.random.default_rng(0).random(input_shape, dtype=np.float32))


def time_models(
    models: dict[str, bytes], input_shape: tuple[int, ...], settings: Settings | None = None
) -> dict[str, Timing]:
    """Batch-1 latency of each ONNX model (1 thread), all measured interleaved in this process."""
    runs = {name: onnx_runner(data, input_shape) for name, data in models.items()}
    return interleave(runs, settings or Settings())
