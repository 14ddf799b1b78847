"""TVM RPC backend: blocks compiled (cross-compiled for a board) on this host, timed on a remote device.

The board runs ``python -m tvm.exec.rpc_server`` (directly, or registered with an RPC tracker under a
key). Each item is compiled untuned for ``target``, exported as a shared library (with
``aarch64-linux-gnu-gcc`` and the like when the target's architecture is not this host's), uploaded
and loaded on the board. Without a target, the board's own CPU is used, as its LLVM reports it.

Timing is TVM's remote ``time_evaluator``, so the network round trip is not measured. One call per
item per round, the item order shuffled every round (the discipline of ``timing.interleave``), median
and interquartile range over rounds. The evaluator runs the function once untimed before its timed
run, so without help the timed run would find the block's weights hot in cache; it therefore flushes
``FLUSH_BYTES`` (larger than the last-level cache of a Raspberry Pi 4/5 or a Jetson Nano) first, so a
one-run sample (``sample_ms`` 0) is cold as the in-process loop's is (on loopback, five blocks timed
this way were 0.91-1.07x the in-process ``tvm`` backend's medians; unflushed, 0.79-1.11x); a longer
sample repeats the run after the flush, back to back, as the in-process loop does.
The board's runtime thread count is fixed when its server starts (``TVM_NUM_THREADS``) and checked.
"""

from __future__ import annotations

import math
import platform
import random
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nas.errors import ConfigError
from nas.extras import require
from nas.latency.backends.base import Item, Settings, Timing, summarize
from nas.latency.backends.tvm import TargetSpec, compile_module, resolve_target, sample_input, target_dict

FLUSH_BYTES = 4 << 20
SESSION_TIMEOUT_S = 0  # no limit: a table build holds one session for minutes


class TvmRpcBackend:
    """Times modules on a board reached through TVM RPC, directly or through a tracker."""

    name = "tvm-rpc"
    options = ("rpc_host", "rpc_port", "rpc_key", "target", "cc")

    @staticmethod
    def options_from_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
        """The same board (host, port, tracker key), target and cross compiler as at build time."""
        rpc = {f"rpc_{key}": value for key, value in (provenance.get("rpc") or {}).items()}
        return {**rpc, "target": provenance.get("target"), "cc": provenance.get("cross_compiler")}

    def __init__(
        self,
        threads: int = 1,
        rpc_host: str | None = None,
        rpc_port: int = 9090,
        rpc_key: str | None = None,
        target: TargetSpec = None,
        cc: str | None = None,
    ) -> None:
        """``target`` None: the board's own CPU, asked over RPC; ``cc``: the cross compiler to link with."""
        if not rpc_host:
            raise ConfigError("the tvm-rpc backend needs the board's address (rpc_host, --rpc-host)")
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        tvm = require("tvm")
        rpc = require("tvm", "tvm.rpc")

        self._tvm = tvm
        self.threads = threads
        self.version = tvm.__version__
        self.rpc_host, self.rpc_port, self.rpc_key = rpc_host, int(rpc_port), rpc_key
        if target is not None:
            self._set_target(target, cc)  # a bad target or missing compiler fails before connecting
        self.remote = self._connect(rpc)
        self._loaded = 0
        self._check_threads()
        if target is None:
            self._set_target(self._board_target(), cc)

    def _set_target(self, target: TargetSpec, cc: str | None) -> None:
        self.target = resolve_target(self._tvm, target)
        self.cc = cc or cross_compiler(str(self.target.attrs.get("mtriple", "")))
        if self.cc is not None and shutil.which(self.cc) is None:
            raise ConfigError(
                f"cross compiler {self.cc} not found: install it (Debian/Ubuntu: apt install "
                f"gcc-{self.cc.removesuffix('-gcc')}) or pass cc"
            )

    def _connect(self, rpc: Any) -> Any:
        where = f"{self.rpc_host}:{self.rpc_port}"
        if self.rpc_key is None:
            try:
                return rpc.connect(self.rpc_host, self.rpc_port, session_timeout=SESSION_TIMEOUT_S)
            except Exception as exc:
                raise ConfigError(f"cannot reach TVM RPC server at {where}: {_last_line(exc)}") from None
        try:
            socket.create_connection((self.rpc_host, self.rpc_port), timeout=10).close()  # TVM retries 60 s
            tracker = rpc.connect_tracker(self.rpc_host, self.rpc_port)
            keys = {s["key"] for s in tracker.summary()["server_info"]}
        except Exception as exc:
            raise ConfigError(f"cannot reach TVM RPC tracker at {where}: {_last_line(exc)}") from None
        if not any(k.split(":")[-1] == self.rpc_key for k in keys):
            raise ConfigError(
                f"no device with key '{self.rpc_key}' at the TVM RPC tracker at {where} "
                f"(registered: {', '.join(sorted(keys)) or 'none'})"
            )
        try:
            return tracker.request(self.rpc_key, priority=1, session_timeout=SESSION_TIMEOUT_S)
        except Exception as exc:
            raise ConfigError(
                f"cannot reach TVM RPC server with key '{self.rpc_key}' via {where}: {_last_line(exc)}"
            ) from None

    def _check_threads(self) -> None:
        """The board's thread pool is sized when its server starts; check it matches ``threads``."""
        running = int(self.remote.get_function("runtime.NumThreads")())
        if running != self.threads:
            raise ConfigError(
                f"the board's TVM runtime runs {running} threads, not {self.threads}: start its server "
                f"as TVM_NUM_THREADS={self.threads} python -m tvm.exec.rpc_server ..."
            )

    def _board_target(self) -> dict[str, Any]:
        """The board's CPU as LLVM on the board sees it (its TVM wheel ships LLVM)."""
        try:
            triple = self.remote.get_function("target.llvm_get_system_triple")()
            cpu = self.remote.get_function("target.llvm_get_system_cpu")()
        except Exception:
            raise ConfigError(
                "the board's TVM cannot describe its CPU (built without LLVM): pass target (--target)"
            ) from None
        return {"kind": "llvm", "mtriple": str(triple), "mcpu": str(cpu)}

    def _fcompile(self) -> Any:
        """None (TVM's default: this host's compiler), else the cross compiler for the board."""
        if self.cc is None:
            return None
        from tvm.support import cc

        return cc.cross_compiler(self.cc)

    def load(self, item: Item, workdir: Path) -> Callable[[int], float]:
        """Compile, upload and load ``item`` on the board; a call timing ``number`` runs (mean ms)."""
        tvm = self._tvm
        executable = compile_module(tvm, item.module, item.input_shape, self.target)
        self._loaded += 1  # a fresh name: the board's dlopen would reuse an earlier library by name
        path = workdir / f"nas_item{self._loaded}.so"
        try:
            executable.export_library(str(path), fcompile=self._fcompile())
        except Exception as exc:
            raise ConfigError(
                f"cannot link for {self.target.attrs.get('mtriple')} with "
                f"{self.cc or 'the host compiler'}: {_last_line(exc)}"
            ) from None
        self.remote.upload(str(path))
        library = self.remote.load_module(path.name)
        self.remote.remove(path.name)  # loaded; keeps the board's session folder small in long builds
        device = self.remote.cpu()
        vm = tvm.relax.VirtualMachine(library, device)
        x = tvm.runtime.tensor(sample_input(item.input_shape), device)
        evaluators: dict[int, Any] = {}

        def time_ms(number: int) -> float:
            if number not in evaluators:
                evaluators[number] = vm.module.time_evaluator(
                    "main", device, number=number, repeat=1, cache_flush_bytes=FLUSH_BYTES
                )
            return evaluators[number](x).mean * 1e3

        return time_ms

    def measure(self, items: list[Item], settings: Settings) -> dict[str, Timing]:
        with tempfile.TemporaryDirectory(prefix="nas-tvm-rpc-") as tmp:
            loaded = {item.name: self.load(item, Path(tmp)) for item in items}
        number = {}
        for name, time_ms in loaded.items():
            spent = last = time_ms(1)
            while spent < settings.warmup_ms:
                last = time_ms(1)
                spent += last
            number[name] = max(1, math.ceil(settings.sample_ms / max(last, 1e-3)))
        samples: dict[str, list[float]] = {name: [] for name in loaded}
        order = list(loaded)
        rng = random.Random(settings.seed)
        for _ in range(settings.rounds):
            rng.shuffle(order)
            for name in order:
                samples[name].append(loaded[name](number[name]))
        return {name: summarize(values) for name, values in samples.items()}

    def provenance(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "backend_version": self.version,
            "threads": self.threads,
            "target": target_dict(self.target),
            "tuned": False,
            "rpc": {"host": self.rpc_host, "port": self.rpc_port, "key": self.rpc_key},
            "cross_compiler": self.cc,
            "cache_flush_bytes": FLUSH_BYTES,
            "tvm": self.version,
            "torch": torch.__version__,
            "python": platform.python_version(),
        }


def cross_compiler(triple: str) -> str | None:
    """The usual Debian/Ubuntu cross gcc for ``triple``'s architecture; None on this host's own."""
    arch = triple.split("-")[0]
    if not arch or arch == platform.machine():
        return None
    if arch.startswith("arm"):
        return "arm-linux-gnueabihf-gcc"
    return f"{arch}-linux-gnu-gcc"  # aarch64, riscv64, ... (an LLVM triple may name a vendor: conda)


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
