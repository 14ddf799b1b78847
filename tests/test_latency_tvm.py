"""TVM backends: local compile and timing, and the RPC path end to end against loopback servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from nas.arch import parse_block
from nas.extras import install_command
from nas.latency.backends import make_backend
from nas.latency.backends.base import Item, Settings, Timing
from nas.latency.backends.rpc import TvmRpcBackend, cross_compiler
from nas.latency.keys import block_module, block_site, input_shape

tvm = pytest.importorskip("tvm", reason=f"needs the 'tvm' extra: {install_command('tvm')}")
SETTINGS = Settings(rounds=15, warmup_ms=1.0)
T = TypeVar("T")


def tiny_item(token: str, dims: int = 2) -> Item:
    site = block_site(parse_block(token)[0], 8, 8 if dims == 2 else 64, dims)
    return Item(f"{dims}d:{token}", block_module(site, 10), input_shape(site))


def check(timings: dict[str, Timing], names: list[str]) -> None:
    assert sorted(timings) == sorted(names)
    for t in timings.values():
        assert t.median_ms > 0 and t.spread_ms >= 0 and t.rounds == SETTINGS.rounds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args: str) -> subprocess.Popen:
    """A TVM RPC process in its own process group (the server forks workers that must die with it)."""
    env = {**os.environ, "TVM_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    """Kill the process and its workers (its group), even if the process itself already died."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def retry(make: Callable[[], T], timeout_s: float = 40.0, error: type[Exception] = ValueError) -> T:
    """``make()`` once the server it needs is up: ``error`` means not yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return make()
        except error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    port = free_port()
    proc = start(
        "tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", str(port), "--port-end", str(port + 1)
    )
    try:
        yield port
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def tracker() -> Iterator[int]:
    port, server_port = free_port(), free_port()
    procs = [
        start("tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", str(port), "--port-end", str(port + 1))
    ]
    try:
        retry(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close(), error=OSError)
        procs.append(
            start(
                "tvm.exec.rpc_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(server_port),
                "--port-end",
                str(server_port + 1),
                "--tracker",
                f"127.0.0.1:{port}",
                "--key",
                "test",
            )
        )
        yield port
    finally:
        for proc in reversed(procs):
            stop(proc)


def test_tvm_backend_times_items_on_this_cpu() -> None:
    backend = make_backend("tvm")
    items = [tiny_item("ir_k3_e3_c8"), tiny_item("ir_k5_e3_c8"), tiny_item("ir_k9_e3_c8_se0.25", dims=1)]
    check(backend.measure(items, SETTINGS), [i.name for i in items])
    provenance = backend.provenance()
    assert (
        provenance["backend"] == "tvm" and provenance["threads"] == 1 and provenance["tvm"] == tvm.__version__
    )
    assert provenance["target"]["kind"] == "llvm" and provenance["target"]["mcpu"]


def test_rpc_backend_times_items_on_a_loopback_server(server: int) -> None:
    backend = retry(lambda: make_backend("tvm-rpc", rpc_host="127.0.0.1", rpc_port=server, target="host"))
    items = [tiny_item("ir_k3_e3_c8"), tiny_item("ir_k9_e3_c8", dims=1)]
    check(backend.measure(items, SETTINGS), [i.name for i in items])
    check(backend.measure(items[:1], SETTINGS), [items[0].name])  # a table build measures in batches
    assert backend.provenance()["rpc"] == {"host": "127.0.0.1", "port": server, "key": None}


def test_rpc_backend_requests_a_device_from_a_tracker(tracker: int) -> None:
    backend = retry(lambda: TvmRpcBackend(rpc_host="127.0.0.1", rpc_port=tracker, rpc_key="test"))
    item = tiny_item("ir_k3_e3_c8")
    check(backend.measure([item], SETTINGS), [item.name])
    target = backend.provenance()["target"]  # no target given: the board's CPU, asked over RPC
    assert target["mcpu"] == tvm.target.codegen.llvm_get_system_cpu() and backend.cc is None


def test_cross_compiler_follows_the_target_architecture() -> None:
    assert cross_compiler("aarch64-linux-gnu") == "aarch64-linux-gnu-gcc"
    assert cross_compiler("aarch64-conda-linux-gnu") == "aarch64-linux-gnu-gcc"
    assert cross_compiler("armv7l-linux-gnueabihf") == "arm-linux-gnueabihf-gcc"
    assert cross_compiler(tvm.target.codegen.llvm_get_system_triple()) is None
    assert cross_compiler("") is None


def test_rpc_errors_are_one_line() -> None:
    port = free_port()
    with pytest.raises(ValueError, match=f"^cannot reach TVM RPC server at 127.0.0.1:{port}: [^\n]*$"):
        TvmRpcBackend(rpc_host="127.0.0.1", rpc_port=port)
    with pytest.raises(ValueError, match=f"^cannot reach TVM RPC tracker at 127.0.0.1:{port}: [^\n]*$"):
        TvmRpcBackend(rpc_host="127.0.0.1", rpc_port=port, rpc_key="pi")
    aarch64 = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}
    with pytest.raises(ValueError, match=r"^cross compiler no-such-gcc not found"):
        TvmRpcBackend(rpc_host="127.0.0.1", rpc_port=port, target=aarch64, cc="no-such-gcc")
    with pytest.raises(ValueError, match="needs the board's address"):
        make_backend("tvm-rpc")
    with pytest.raises(ValueError, match="bad TVM target"):
        make_backend("tvm", target={"kind": "no-such-kind"})


def test_backends_import_tvm_lazily() -> None:
    code = "import sys, nas.cli, nas.latency.backends; assert 'tvm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
