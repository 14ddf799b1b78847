"""ONNX export and ONNX Runtime sessions, shared by the latency tables and the exporter.

One exporter (torch's TorchScript one: it needs no onnxscript, exports a block in ~15 ms and keeps the
graph a plain opset-17 one that ONNX Runtime's quantizer understands), one way to open a session
(sequential, all graph optimizations, ``threads`` intra-op threads) and one timed call with its input and
output bound in advance (IOBinding), so that Python's overhead per run stays small.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

OPSET = 17
INPUT, OUTPUT = "image", "logits"  # the deployment contract's names
SIGNAL_INPUT = "signal"  # a 1-D model's input (batch, channels, length)


def input_name(input_shape: tuple[int, ...]) -> str:
    """The deployment contract's input name for a model taking ``input_shape`` (batch first)."""
    return SIGNAL_INPUT if len(input_shape) == 3 else INPUT


def export_onnx(
    module: torch.nn.Module,
    input_shape: tuple[int, ...],
    *,
    deployable: bool = False,
    metadata: dict[str, Any] | None = None,
) -> bytes:
    """The module as ONNX bytes, BatchNorm folded into the convs (as any deployment would).

    Not ``deployable``: the fixed ``input_shape`` graph the latency tables time. ``deployable``: the
    model the deployment contract describes: any batch size, ``metadata`` in its ``metadata_props``, and
    the graph checked by ``onnx.checker``.
    """
    if metadata is not None and not deployable:
        raise ValueError("metadata is written into deployable models only")
    buffer, name = io.BytesIO(), input_name(input_shape)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tracing runs the model; torch's thread pool stalls on a busy machine
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                (torch.zeros(input_shape),),
                buffer,
                dynamo=False,
                input_names=[name],
                output_names=[OUTPUT],
                dynamic_axes={name: {0: "batch"}, OUTPUT: {0: "batch"}} if deployable else None,
                opset_version=OPSET,
            )
    finally:
        torch.set_num_threads(threads)
    if not deployable:
        return buffer.getvalue()
    import onnx

    proto = onnx.load_from_string(buffer.getvalue())
    set_metadata(proto, metadata or {})
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def set_metadata(proto: Any, metadata: dict[str, Any]) -> None:
    """Replace the model's metadata_props: strings as they are, everything else as JSON."""
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)


def session(onnx_bytes: bytes, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session with all graph optimizations, ``threads`` intra-op threads.

    Its worker threads block when idle instead of spinning: every session has its own pool, and the
    idle workers of the sessions timed before the current one spun on the cores it needs (2 threads on
    2 cores, 40 mnasnet_small nets at 28x28 timed interleaved: single nets up to 35-50 ms instead of
    2 ms, the median net 0.32 ms; without spinning at most 2.2 ms, median 0.24 ms, the anchor's spread
    a third). With one thread there are no workers, and nothing changes.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def runner(sess: Any, x: np.ndarray) -> Callable[[], None]:
    """A no-argument call running a single-input model once on ``x``, input and output bound in advance."""
    import onnxruntime as ort

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
