"""TVM (Relax) backend: each module compiled untuned for the host CPU and timed in this process.

Items run through a Python ``perf_counter`` loop (``timing.interleave``, the loop the ORT backend
uses) rather than TVM's ``time_evaluator``: the evaluator runs the function once untimed before
every timed call, so even one-run samples (``sample_ms`` 0) would be hot in cache, while the Python
loop keeps each timing regime what ``Settings`` says (cold single runs, or runs back to back). The VM's
call overhead from Python is ~0.3 us (measured: 16.5 us loop vs 16.2 us evaluator median on an
8-channel block).

Compilation uses TVM's default Relax pipeline without tuning: kernels are plain loop nests, 1.1x
(8 channels at 8x8) to 47x (ir_k5_e6 on 24 channels at 32x32) slower than ONNX Runtime here, and
serial: with ``threads=2`` the pool runs 2 threads, yet a 1.9 ms block timed the same as with 1.
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nas.errors import ConfigError
from nas.extras import require
from nas.latency.backends.base import Item, Settings, Timing
from nas.latency.backends.timing import interleave

TargetSpec = str | dict[str, Any] | None


def load_tvm(threads: int) -> Any:
    """Import TVM with its runtime thread pool sized ``threads``, checked (the pool starts once)."""
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    os.environ["TVM_NUM_THREADS"] = str(threads)  # read when the runtime's thread pool starts
    tvm = require("tvm")

    running = tvm.runtime.num_threads()
    if running != threads:
        raise ConfigError(
            f"TVM's thread pool runs {running} threads, not {threads}: it started earlier in this "
            "process, or this machine has fewer cores"
        )
    return tvm


def resolve_target(tvm: Any, target: TargetSpec) -> Any:
    """A TVM target from a JSON dict or its JSON text; None or 'host' means this CPU (with its -mcpu)."""
    if target is None or target == "host":
        return tvm.target.Target.from_device(tvm.cpu())
    if isinstance(target, str):
        try:
            target = json.loads(target)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"target must be 'host' or a JSON object, got {target!r}: {exc}") from None
    try:
        return tvm.target.Target(target)
    except Exception as exc:
        raise ConfigError(f"bad TVM target {target!r}: {str(exc).splitlines()[-1]}") from None


def target_dict(target: Any) -> dict[str, Any]:
    """The target as a JSON dict (the form ``resolve_target`` accepts), for provenance."""
    return json.loads(str(target))


def import_module(module: torch.nn.Module, input_shape: tuple[int, ...]) -> Any:
    """The module in eval mode as a Relax IRModule (torch.export; parameters embedded as constants)."""
    from tvm.relax.frontend.torch import from_exported_program

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # export traces the model; torch's thread pool stalls on a busy machine
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.export.export(module.eval(), (torch.zeros(input_shape),))
            return from_exported_program(program, keep_params_as_input=False)
    finally:
        torch.set_num_threads(threads)


def compile_module(tvm: Any, module: torch.nn.Module, input_shape: tuple[int, ...], target: Any) -> Any:
    """A Relax executable of the module in eval mode (parameters embedded as constants)."""
    return tvm.compile(import_module(module, input_shape), target)


def vm_runner(tvm: Any, executable: Any, input_shape: tuple[int, ...]) -> Callable[[], None]:
    """A no-argument call that runs an executable's ``main`` once on an input set in its VM beforehand."""
    vm = tvm.relax.VirtualMachine(executable, tvm.cpu())
    vm.set_input("main", tvm.runtime.tensor(sample_input(input_shape), tvm.cpu()))
    invoke = vm["invoke_stateful"]
    invoke("main")

    def run() -> None:
        invoke("main")

    run.keep = vm  # type: ignore[attr-defined]
    return run


def sample_input(input_shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)


class TvmBackend:
    """Times modules compiled by TVM for this CPU."""

    name = "tvm"
    options = ("target",)

    @staticmethod
    def options_from_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
        return {"target": provenance.get("target")}

    def __init__(self, threads: int = 1, target: TargetSpec = None) -> None:
        self._tvm = load_tvm(threads)
        self.threads = threads
        self.version = self._tvm.__version__
        self.target = resolve_target(self._tvm, target)

    def runner(self, item: Item) -> Callable[[], None]:
        """A no-argument call that runs the item once on inputs set in the VM beforehand."""
        executable = compile_module(self._tvm, item.module, item.input_shape, self.target)
        return vm_runner(self._tvm, executable, item.input_shape)

    def measure(self, items: list[Item], settings: Settings) -> dict[str, Timing]:
        return interleave({item.name: self.runner(item) for item in items}, settings)

    def provenance(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "backend_version": self.version,
            "threads": self.threads,
            "target": target_dict(self.target),
            "tuned": False,
            "tvm": self.version,
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
