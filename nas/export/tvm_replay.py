"""Checking a cross-compiled TVM library by running its own code under user-mode emulation (qemu).

A Relax library is the model's kernels (machine code, one exported function per fused operator) plus
the VM's bytecode and constants, which the TVM runtime interprets. There is no TVM runtime for aarch64
on an x86 host, so the check splits the two: the VM runs on the host, on a host build of the same
IRModule (its bytecode and memory plan are target-independent), and ``record`` notes every kernel call
it makes for one image, with the bytes of every buffer read before any kernel writes it (the image and
the weights). ``tvm_replay.c`` (built with the board's cross compiler, run by ``qemu-<arch>``) then
loads the *exported* library with dlopen, poisons every other byte with 0xFF (NaN) and calls the
library's kernels in that order on each image, intermediate results staying in emulated memory; the
logits it writes are compared with PyTorch's. What this does not run on the emulated CPU is the VM's
interpreter loop itself: the TVM runtime's own code, which comes with the board's TVM install.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HARNESS = Path(__file__).with_name("tvm_replay.c")
MAGIC = b"NASTVMR1"
DL_CODES = {"i": 0, "u": 1, "f": 2, "b": 6}  # DLPack type codes by numpy kind (b: kDLBool)
ARG_TENSOR, ARG_INT, ARG_FLOAT = 0, 1, 2
TIMEOUT_S = 600


@dataclass
class Access:
    """One tensor argument of one kernel call: where it lives, what it held before, and if it changed."""

    ptr: int
    nbytes: int
    dtype: np.dtype
    shape: tuple[int, ...]
    before: bytes
    written: bool = False


@dataclass
class Trace:
    """The kernel calls of one inference, in order; arguments are ``Access`` or plain numbers."""

    calls: list[tuple[str, list[Any]]] = field(default_factory=list)
    input: tuple[int, int] = (0, 0)  # (ptr, nbytes)
    output: tuple[int, int] = (0, 0)
    allocated: list[tuple[int, int]] = field(default_factory=list)  # the VM's tensors of this run


def record(tvm: Any, executable: Any, image: np.ndarray) -> tuple[Trace, np.ndarray]:
    """Run ``executable``'s ``main`` on one image (shape = the model's input) on the host, noting every
    kernel call; returns the trace and the output."""
    vm = tvm.relax.VirtualMachine(executable, tvm.cpu())
    trace = Trace()
    pending: list[Access] = []

    def instrument(func: Any, symbol: str, before: bool, ret: Any, *args: Any) -> int:
        if str(symbol) == "vm.builtin.alloc_tensor" and not before:
            trace.allocated.append((ret.data_ptr(), _nbytes(ret)))
        if str(symbol).startswith("vm."):  # the VM's builtins: allocation, shape checks, views
            return 0
        if before:
            pending.clear()
            trace.calls.append((str(symbol), [_argument(a, pending) for a in args]))
        else:
            for access in pending:
                access.written = _bytes(access.ptr, access.nbytes) != access.before
        return 0

    vm.set_instrument(instrument)
    x = tvm.runtime.tensor(np.ascontiguousarray(image, dtype=np.float32), tvm.cpu())
    result = vm["main"](x)
    if not hasattr(result, "numpy"):
        if len(result) != 1:
            raise ValueError(f"the model returns {len(result)} outputs; the replay handles one")
        result = result[0]
    trace.input = (x.data_ptr(), x.numpy().nbytes)
    out = result.numpy()
    trace.output = (result.data_ptr(), out.nbytes)
    return trace, out


def _argument(arg: Any, pending: list[Access]) -> Any:
    if hasattr(arg, "data_ptr"):
        dtype, nbytes = np.dtype(str(arg.dtype)), _nbytes(arg)
        access = Access(arg.data_ptr(), nbytes, dtype, tuple(arg.shape), _bytes(arg.data_ptr(), nbytes))
        pending.append(access)
        return access
    if isinstance(arg, bool | int | float):
        return arg
    raise ValueError(f"kernel argument of type {type(arg).__name__} is not supported by the replay")


def _nbytes(tensor: Any) -> int:
    return int(np.prod(tensor.shape, dtype=np.int64)) * np.dtype(str(tensor.dtype)).itemsize


def _bytes(ptr: int, nbytes: int) -> bytes:
    import ctypes

    return ctypes.string_at(ptr, nbytes)


def write_trace(trace: Trace, path: Path) -> dict[str, int]:
    """The trace in ``tvm_replay.c``'s format; returns counts for the card: buffers, the ones filled
    from the host, kernel calls and distinct kernels.

    Filled from the host: the image, and the bytes of buffers that kernels read before any kernel
    wrote them, unless the VM allocated them during the run (those are the kernels' to compute; they
    stay poisoned): what remains are the VM's constants, the weights.
    """
    accesses = [a for _, args in trace.calls for a in args if isinstance(a, Access)]
    spans = sorted({(a.ptr, a.nbytes) for a in accesses} | {trace.input, trace.output, *trace.allocated})
    buffers: list[list[int]] = []  # [start, end] of merged, overlapping byte ranges
    for start, size in spans:
        if buffers and start < buffers[-1][1]:
            buffers[-1][1] = max(buffers[-1][1], start + size)
        else:
            buffers.append([start, start + size])
    starts = [b[0] for b in buffers]

    def locate(ptr: int) -> tuple[int, int]:
        index = int(np.searchsorted(starts, ptr, side="right")) - 1
        return index, ptr - buffers[index][0]

    segments: dict[int, dict[tuple[int, int], bytes]] = {}
    written = {locate(ptr)[0] for ptr, _ in trace.allocated} - {locate(trace.input[0])[0]}
    for _, args in trace.calls:
        touched = [(locate(a.ptr), a) for a in args if isinstance(a, Access)]
        for (index, offset), a in touched:
            if index not in written and not a.written:  # read before any kernel wrote its buffer
                segments.setdefault(index, {}).setdefault((offset, a.nbytes), a.before)
        written |= {index for (index, _), a in touched if a.written}
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<I", len(buffers)))
        for index, (start, end) in enumerate(buffers):
            own = segments.get(index, {})
            f.write(struct.pack("<QI", end - start, len(own)))
            for (offset, size), data in own.items():
                f.write(struct.pack("<QQ", offset, size) + data)
        (in_buf, in_off), (out_buf, out_off) = locate(trace.input[0]), locate(trace.output[0])
        f.write(struct.pack("<IIQQQQ", in_buf, out_buf, in_off, trace.input[1], out_off, trace.output[1]))
        f.write(struct.pack("<I", len(trace.calls)))
        for name, args in trace.calls:
            encoded = name.encode()
            f.write(struct.pack("<I", len(encoded)) + encoded + struct.pack("<I", len(args)))
            for a in args:
                f.write(_encode(a, locate))
    return {
        "buffers": len(buffers),
        "host_filled_buffers": len(segments),
        "kernel_calls": len(trace.calls),
        "kernels": len({name for name, _ in trace.calls}),
    }


def _encode(arg: Any, locate: Any) -> bytes:
    if isinstance(arg, Access):
        index, offset = locate(arg.ptr)
        code, bits = DL_CODES[arg.dtype.kind], arg.dtype.itemsize * 8
        head = struct.pack("<BIQBBHI", ARG_TENSOR, index, offset, code, bits, 1, len(arg.shape))
        return head + struct.pack(f"<{len(arg.shape)}q", *arg.shape)
    if isinstance(arg, float):
        return struct.pack("<Bd", ARG_FLOAT, arg)
    return struct.pack("<Bq", ARG_INT, int(arg))


@dataclass(frozen=True)
class Emulator:
    """How to build and run a program for the library's architecture: compiler, and (when it is not
    this machine's) the emulator and the target's system root."""

    cc: str
    qemu: str | None = None
    sysroot: str | None = None

    def command(self, program: Path) -> list[str]:
        if self.qemu is None:
            return [str(program)]
        return [self.qemu, *(["-L", self.sysroot] if self.sysroot else []), str(program)]


def emulator_for(cc: str | None, triple: str) -> tuple[Emulator | None, str]:
    """The emulator for a cross compiler's target (``qemu-<arch>``, sysroot ``/usr/<arch>-linux-gnu``),
    or None and the reason it cannot run here."""
    arch = triple.split("-")[0]
    if cc is None:
        return Emulator(cc="cc"), "native"
    qemu, sysroot = f"qemu-{arch}", Path("/usr") / cc.removesuffix("-gcc")
    missing = [tool for tool in (cc, qemu) if shutil.which(tool) is None]
    if missing:
        install = f"Debian/Ubuntu: apt install qemu-user {_gcc_package(cc)}"
        return None, f"{' and '.join(missing)} not found ({install})"
    if not sysroot.is_dir():
        return None, f"no {arch} system root at {sysroot} (Debian/Ubuntu: apt install {_gcc_package(cc)})"
    return Emulator(cc=cc, qemu=qemu, sysroot=str(sysroot)), f"{qemu} user-mode emulation"


def _gcc_package(cc: str) -> str:
    return f"gcc-{cc.removesuffix('-gcc')}"


def replay(
    emulator: Emulator, library: Path, tvm_ffi_include: str, trace: Trace, images: np.ndarray
) -> tuple[np.ndarray, dict[str, int]]:
    """Build the harness with ``emulator.cc``, run ``library``'s kernels on ``images`` (batch of model
    inputs, each of the traced input's size) and return the outputs, one row per image, and the trace's
    counts."""
    with tempfile.TemporaryDirectory(prefix="nas-tvm-replay-") as tmp:
        work = Path(tmp)
        program, trace_file, inputs, outputs = (work / n for n in ("replay", "trace.bin", "in", "out"))
        flags = ["-O1", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-I", tvm_ffi_include, "-rdynamic"]
        libs = ["-Wl,--no-as-needed", "-ldl", "-lm"]  # libm for the kernels (expf), which do not link it
        _run([emulator.cc, *flags, "-o", str(program), str(HARNESS), *libs], "building the harness")
        counts = write_trace(trace, trace_file)
        np.ascontiguousarray(images, dtype=np.float32).tofile(inputs)
        args = [str(library), str(trace_file), str(inputs), str(len(images)), str(outputs)]
        _run([*emulator.command(program), *args], "replaying the kernels")
        out = np.fromfile(outputs, dtype=np.float32)
    return out.reshape(len(images), -1), counts


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} timed out after {TIMEOUT_S} s ({' '.join(command[:2])} ...)") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit code {done.returncode}"
        raise RuntimeError(f"{what} failed ({' '.join(command[:2])} ...): {last}")


def elf_machine(path: Path) -> str:
    """The machine an ELF file is for, from its header (e_machine), as ``file`` would name it."""
    header = Path(path).read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return "not an ELF file"
    machine = struct.unpack("<H" if header[5] == 1 else ">H", header[18:20])[0]
    names = {3: "x86", 40: "ARM", 62: "x86-64", 183: "AArch64", 243: "RISC-V"}
    return names.get(machine, f"e_machine {machine}")
