"""ExecuTorch export (``--format executorch``): the normalized network as a ``.pte`` program for the
ExecuTorch runtime (the successor of PyTorch Mobile), lowered to the XNNPACK CPU delegate.

The deployment contract is ONNX's: raw images, float32 in [0, 1], NCHW (a 1-D arch: the raw signal,
float32 NCL); normalization inside the program; logits out. The batch is static, 1 (what an edge device
runs): a dynamic batch does export, but XNNPACK then leaves the flatten before the classifier outside the
delegate (two delegated subgraphs), and the memory planner bounds the batch far below the declared
maximum (15 when asked for 256), so larger batches fail at run time. Class names and the threshold are
not in the ``.pte``: they travel in the model card.

The export is checked by loading the written file with ``executorch.runtime`` and comparing its logits
with PyTorch's on the same images (the ONNX tolerance, 1e-4, fp32), then timed through the Python runtime
interleaved with the ONNX fp32 model under ONNX Runtime in the same process, both on one thread.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.export.format import ExportOptions, Reference
from nas.export.onnx import PARITY_TOLERANCE, Normalized, compare_logits
from nas.extras import available, missing_extra, require

PTE_FILE = "model.pte"
BATCH = 1


def lower(model: Normalized, shape: tuple[int, ...]) -> tuple[bytes, dict[str, Any]]:
    """``torch.export`` -> edge dialect -> XNNPACK partitions -> ``.pte`` bytes, and how many operators
    went to XNNPACK and how many were left to ExecuTorch's portable kernels (``getitem`` not counted)."""
    with _quiet():
        require("executorch", "executorch.exir")
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.devtools.backend_debug import get_delegation_info
        from executorch.exir import to_edge_transform_and_lower

        exported = torch.export.export(model.eval(), (torch.zeros(shape),))
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        info = get_delegation_info(edge.exported_program().graph_module)
        program = edge.to_executorch().buffer
    ops = {k: v for k, v in info.delegation_by_operator.items() if k != "getitem"}  # tuple unpacking
    delegation = {
        "delegated_subgraphs": info.num_delegated_subgraphs,
        "delegated_ops": sum(v.delegated for v in ops.values()),
        "non_delegated_ops": sum(v.non_delegated for v in ops.values()),
        "non_delegated_op_types": sorted(k for k, v in ops.items() if v.non_delegated),
    }
    return bytes(program), delegation


def load(path: Path) -> Any:
    """The ``forward`` method of a ``.pte`` file, loaded by the ExecuTorch runtime, XNNPACK on one thread
    (as ONNX Runtime runs here)."""
    with _native_log_held():
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        portable_lib._unsafe_reset_threadpool(1)
        return Runtime.get().load_program(path).load_method("forward")


def logits(method: Any, images01: np.ndarray) -> np.ndarray:
    """Logits of inputs as the model takes them, one per call (the program's batch is 1)."""
    out = [method.execute((torch.from_numpy(images01[i : i + 1]),))[0].numpy() for i in range(len(images01))]
    return np.concatenate(out)


def parity(model: Normalized, method: Any, images01: np.ndarray) -> float:
    """Max abs difference of the logits of PyTorch and the ``.pte``; ``ParityError`` above the tolerance."""
    return compare_logits(model, images01, logits(method, images01), "ExecuTorch")


def time_vs_onnx(
    method: Any, onnx_fp32: bytes, shape: tuple[int, ...], options: ExportOptions
) -> dict[str, Any]:
    """The ``.pte`` and the ONNX fp32 model timed interleaved (round-robin, median of rounds)."""
    from nas.export.runtime import onnx_runner
    from nas.latency.backends.base import Settings
    from nas.latency.backends.timing import interleave

    runs = {"executorch": _runner(method, shape), "onnx_fp32": onnx_runner(onnx_fp32, shape)}
    timed = interleave(runs, Settings(rounds=options.rounds, seed=options.seed))
    return {
        "executorch_ms": timed["executorch"].to_json(),
        "onnx_fp32_ms": timed["onnx_fp32"].to_json(),
        "ratio_vs_onnx": timed["executorch"].median_ms / timed["onnx_fp32"].median_ms,
        "how": "ExecuTorch Python runtime (executorch.runtime; the Python call overhead is included, so "
        "this overstates on-device ExecuTorch latency) vs ONNX Runtime with bound buffers; XNNPACK and "
        f"ONNX Runtime on 1 thread, batch 1, interleaved round-robin, median of {options.rounds} rounds",
    }


def _runner(method: Any, shape: tuple[int, ...]) -> Callable[[], None]:
    inputs = (torch.from_numpy(np.random.default_rng(0).random(shape, dtype=np.float32)),)

    def run() -> None:
        method.execute(inputs)

    return run


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("executorch")
    except PackageNotFoundError:
        return None


@contextmanager
def _quiet():
    """Lowering warns a lot (deprecations inside torch.export, torchao's optional CUDA kernels): none of
    it is about this model."""
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def _native_log_held():
    """The runtime's C++ log of its CPU probing and thread pool (``[cpuinfo_utils.cpp:87] Failed to open
    midr file ...`` on every x86 start) goes to file descriptor 2: held back, and printed only when
    loading fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class ExecutorchFormat:
    """``--format executorch``: see the module docstring."""

    name = "executorch"
    options = ()

    def check(self, options: ExportOptions) -> None:
        if not available("executorch"):  # importing it takes seconds: ``lower`` does, when it runs
            raise missing_extra("executorch")

    def export(
        self, model: Normalized, reference: Reference, options: ExportOptions, out_dir: Path
    ) -> dict[str, Any]:
        """Write ``out_dir/model.pte``, check it against PyTorch and time it against the ONNX fp32 model;
        returns the model card's ``executorch`` section."""
        shape = (BATCH, *reference.input_shape[1:])
        program, delegation = lower(model, shape)
        path = Path(out_dir) / PTE_FILE
        path.write_bytes(program)
        method = load(path)
        diff = parity(model, method, reference.images)
        timing = time_vs_onnx(method, reference.onnx_fp32, shape, options)
        return {
            "file": PTE_FILE,
            "bytes": len(program),
            "executorch": _version(),
            "delegate": "XNNPACK",
            "batch": BATCH,
            "input_shape": list(shape),
            "metadata": "class names and threshold are not in the .pte, only in this card",
            "parity": {"max_abs_diff": diff, "tolerance": PARITY_TOLERANCE, "vs": "PyTorch fp32"},
            "delegation": delegation,
            "latency": timing,
        }

    def card_lines(self, et: dict[str, Any]) -> list[str]:
        lat, d = et["latency"], et["delegation"]
        left = f" ({', '.join(d['non_delegated_op_types'])})" if d["non_delegated_op_types"] else ""
        return [
            "",
            "## ExecuTorch",
            "",
            f"- File: `{et['file']}` ({et['bytes']:,} bytes), ExecuTorch {et['executorch']}, "
            f"{et['delegate']} delegate, static batch {et['batch']}, input {et['input_shape']}; "
            f"{et['metadata']}.",
            f"- Parity vs PyTorch (fp32): max abs logit difference {et['parity']['max_abs_diff']:.2e} "
            f"(tolerance {et['parity']['tolerance']:g})",
            f"- Delegation: {d['delegated_ops']} ops in {d['delegated_subgraphs']} XNNPACK subgraph(s), "
            f"{d['non_delegated_ops']} left to portable kernels{left}",
            f"- Latency: {lat['executorch_ms']['median_ms']:.3f} ms vs ONNX Runtime "
            f"{lat['onnx_fp32_ms']['median_ms']:.3f} ms, ratio {lat['ratio_vs_onnx']:.2f}x ({lat['how']})",
        ]

    def summary(self, et: dict[str, Any]) -> str:
        return (
            f"executorch: {et['file']}, parity {et['parity']['max_abs_diff']:.2e}, latency "
            f"x{et['latency']['ratio_vs_onnx']:.3f} vs ORT (Python runtime overhead included)"
        )


FORMAT = ExecutorchFormat()
