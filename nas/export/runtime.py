"""Running exported ONNX models with ONNX Runtime: sessions, class probabilities on a split, and
side-by-side timing.

Every session is single-threaded (the deployment target is a small CPU, and one thread keeps timings
comparable with the latency tables). Timing reuses the latency tables' interleaved loop
(``nas.latency.backends.timing.interleave``): the models run round-robin in shuffled order, so drift of
a shared machine hits them all alike, and a latency ratio is measured in one go, never across runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nas.data.splits import Split
from nas.latency.backends.base import Settings, Timing
from nas.latency.backends.timing import interleave

INPUT = "image"
OUTPUT = "logits"
BATCH = 256


def session(onnx_bytes: bytes, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session with all graph optimizations, ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def logits(sess: Any, images01: np.ndarray) -> np.ndarray:
    """Logits of float32 NCHW images in [0, 1], in batches."""
    out = [sess.run([OUTPUT], {INPUT: images01[i : i + BATCH]})[0] for i in range(0, len(images01), BATCH)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC images as the deployment contract's input: float32 NCHW in [0, 1]."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)


def probabilities(raw: np.ndarray, task: str) -> np.ndarray:
    """Sigmoid per label for multi-label tasks, softmax otherwise (as the trainer scores them)."""
    raw = raw.astype(np.float64)
    if task == "multi-label":
        return 1 / (1 + np.exp(-raw))
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def split_probs(sess: Any, split: Split, task: str) -> np.ndarray:
    """Class probabilities ``(N, K)`` of a split's images through an exported model."""
    return probabilities(logits(sess, to_input(split.images)), task)


def runner(sess: Any, input_shape: tuple[int, ...]) -> Callable[[], None]:
    """A no-argument call running a single-input model once on a fixed input, buffers bound in advance."""
    import onnxruntime as ort

    x = np.random.default_rng(0).random(input_shape, dtype=np.float32)
    name_in, name_out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    y = np.empty_like(sess.run([name_out], {name_in: x})[0])
    x_value, y_value = ort.OrtValue.ortvalue_from_numpy(x), ort.OrtValue.ortvalue_from_numpy(y)
    binding = sess.io_binding()
    binding.bind_ortvalue_input(name_in, x_value)
    binding.bind_ortvalue_output(name_out, y_value)

    def run() -> None:
        sess.run_with_iobinding(binding)

    run.buffers = (x, y, x_value, y_value)  # type: ignore[attr-defined]  # alive as long as run
    return run


def time_models(
    models: dict[str, bytes], input_shape: tuple[int, ...], settings: Settings | None = None
) -> dict[str, Timing]:
    """Batch-1 latency of each ONNX model (1 thread), all measured interleaved in this process."""
    runs = {name: runner(session(data), input_shape) for name, data in models.items()}
    return interleave(runs, settings or Settings())
