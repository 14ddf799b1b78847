"""TVM export: the host library against PyTorch and ONNX Runtime, its loader script, the aarch64 library
(an AArch64 ELF whose kernels run under qemu), MetaSchedule tuning, and the one-line errors.

The aarch64 tests need ``aarch64-linux-gnu-gcc`` and ``qemu-aarch64`` (apt ``gcc-aarch64-linux-gnu``,
``qemu-user``); they skip where those are missing, and ``.ci/run`` installs them so that CI runs them.
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from export_helpers import SMALL, options

from nas import cli
from nas.export import tvm_replay
from nas.export.onnx import PARITY_TOLERANCE, Normalized
from nas.export.pipeline import run_export
from nas.export.source import from_arch
from nas.export.tvm import build, check, prepare, target_spec
from nas.export.variants import model_logits

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.extra("tvm")]
CROSS_CC, QEMU = "aarch64-linux-gnu-gcc", "qemu-aarch64"
needs_cross = pytest.mark.skipif(
    shutil.which(CROSS_CC) is None, reason=f"{CROSS_CC} not installed (apt install gcc-aarch64-linux-gnu)"
)
needs_qemu = pytest.mark.skipif(
    shutil.which(QEMU) is None or shutil.which(CROSS_CC) is None,
    reason=f"{QEMU} or {CROSS_CC} not installed (apt install qemu-user gcc-aarch64-linux-gnu)",
)
HOST_MACHINE = {"x86_64": "x86-64", "aarch64": "AArch64"}.get(platform.machine(), platform.machine())


def lively_source():
    """SMALL, untrained, with weights and BatchNorm statistics that make its logits depend on the image:
    at initialization the signal fades layer by layer, the logits of any two images agree to 1e-4 and
    so would those of a runtime that ignored the image."""
    source = from_arch(SMALL, None, None, None, None)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in source.network.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=generator)
                m.running_var.uniform_(0.5, 2.0, generator=generator)
                m.weight.uniform_(0.5, 1.5, generator=generator)
            elif isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                m.weight.mul_(3)
    return source


def normalized(source) -> Normalized:
    return Normalized(source.network, source.mean, source.std).eval()


def images(n: int, seed: int = 0) -> np.ndarray:
    """Noise, each image's top half dimmed by its own factor (pure noise images all pool alike)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    x[:, :, :14] *= rng.random((n, 1, 1, 1), dtype=np.float32)
    return x


@pytest.fixture(scope="module")
def host(tmp_path_factory, single_thread):
    out = tmp_path_factory.mktemp("tvm-host")
    return out, run_export(lively_source(), options(out, format="tvm")).to_json()


@pytest.fixture(scope="module")
def aarch64(tmp_path_factory, single_thread):
    if shutil.which(CROSS_CC) is None:
        pytest.skip(f"{CROSS_CC} not installed (apt install gcc-aarch64-linux-gnu)")
    out = tmp_path_factory.mktemp("tvm-aarch64")
    return out, run_export(lively_source(), options(out, format="tvm", target="aarch64")).to_json()


def test_host_library_matches_pytorch_and_is_timed_against_onnxruntime(host):
    out, card = host
    t = card["tvm"]
    names = {"model_tvm.so", "run_tvm.py", "model_tvm.json", "tvm_target.json", "model.onnx", "model_card.md"}
    assert names <= {p.name for p in out.iterdir()}
    assert t["files"]["library"]["machine"] == HOST_MACHINE == tvm_replay.elf_machine(out / "model_tvm.so")
    assert t["parity"]["images"] == 5 and 0 <= t["parity"]["max_abs_diff"] < PARITY_TOLERANCE
    lat = t["latency"]
    assert lat["onnxruntime_ms"]["rounds"] == lat["tvm_untuned_ms"]["rounds"] == 5
    ratio = lat["tvm_untuned_ms"]["median_ms"] / lat["onnxruntime_ms"]["median_ms"]
    assert lat["untuned_vs_onnxruntime"] == pytest.approx(ratio) and "tvm_tuned_ms" not in lat
    assert not t["tuned"] and t["tuning"] is None and t["qemu"] is None and t["cross_compiler"] is None
    written = str(out / "tvm_target.json")
    assert json.loads((out / "tvm_target.json").read_text()) == t["target"] == target_spec(written)
    check(written, 4)  # the written target is accepted back, tuning included
    meta = json.loads((out / "model_tvm.json").read_text())
    assert meta["input_shape"] == [1, 1, 28, 28] and meta["class_names"] == ["class_0", "class_1"]
    md = (out / "model_card.md").read_text()
    assert "## TVM" in md and f"(x{lat['untuned_vs_onnxruntime']:.2f} ORT)" in md


def test_loader_script_runs_the_library_on_its_own(host, tmp_path):
    out, _ = host
    x = images(3, seed=5)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(
        [sys.executable, str(out / "run_tvm.py"), "x.npy", "--out", "y.npy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = model_logits(normalized(lively_source()), x)
    assert np.abs(np.load(tmp_path / "y.npy") - expected).max() < PARITY_TOLERANCE
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["0", "1", "2"]
    assert all("-> class_" in line for line in done.stdout.splitlines())


@needs_cross
def test_aarch64_library_is_a_cross_compiled_elf_with_its_loader(aarch64):
    out, card = aarch64
    t = card["tvm"]
    assert t["files"]["library"]["machine"] == "AArch64" and t["cross_compiler"] == CROSS_CC
    if shutil.which("file"):
        described = subprocess.run(["file", str(out / "model_tvm.so")], capture_output=True, text=True)
        assert "ARM aarch64" in described.stdout and "shared object" in described.stdout
    assert t["target"]["mtriple"] == "aarch64-linux-gnu" and t["target"]["mcpu"] == "cortex-a72"
    assert t["parity"]["max_abs_diff"] is None and "another CPU" in t["parity"]["where"]
    assert t["latency"] is None and (out / "run_tvm.py").is_file()
    assert "cross-compiled with aarch64-linux-gnu-gcc" in (out / "model_card.md").read_text()


@needs_qemu
def test_aarch64_kernels_run_under_qemu_and_match_pytorch(aarch64):
    out, card = aarch64
    q = card["tvm"]["qemu"]
    assert q["ran"] and QEMU in q["emulator"], q
    assert q["images"] == 3 and 0 <= q["max_abs_diff"] < PARITY_TOLERANCE
    assert q["kernel_calls"] >= 10 and q["host_filled_buffers"] < q["buffers"]
    assert "max abs logit difference" in (out / "model_card.md").read_text().split("## TVM")[1]


def test_replay_computes_every_value_itself(tmp_path):
    """The replay harness (natively here) reproduces the VM's logits from the kernels alone, and a
    kernel left out shows: what it should have written stays NaN-poisoned, or holds another kernel's
    values (the VM reuses storage), and the logits go wrong."""
    import tvm_ffi.libinfo

    from nas.latency.backends.tvm import import_module, load_tvm, resolve_target

    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc)")
    tvm = load_tvm(1)
    source = lively_source()
    model = normalized(source)
    executable = build(tvm, prepare(tvm, import_module(model, source.input_shape)), resolve_target(tvm, None))
    executable.export_library(str(tmp_path / "lib.so"))
    x = images(2, seed=9)
    expected = model_logits(model, x)
    assert np.abs(expected[0] - expected[1]).max() > 0.05  # logits that tell the images apart
    trace, _ = tvm_replay.record(tvm, executable, x[:1])
    include = tvm_ffi.libinfo.find_include_path()
    native = tvm_replay.Emulator(cc="cc")
    got, counts = tvm_replay.replay(native, tmp_path / "lib.so", include, trace, x)
    assert np.abs(got - expected).max() < PARITY_TOLERANCE and counts["kernel_calls"] == len(trace.calls)
    calls = list(trace.calls)
    for left_out in (0, len(calls) // 2, len(calls) - 1):  # normalization, a middle kernel, the logits'
        trace.calls = calls[:left_out] + calls[left_out + 1 :]
        wrong = tvm_replay.replay(native, tmp_path / "lib.so", include, trace, x)[0]
        assert np.isnan(wrong).any() or np.abs(wrong - expected).max() > 1e-3, calls[left_out][0]


def test_missing_emulator_is_reported_with_the_packages(monkeypatch):
    monkeypatch.setattr(tvm_replay.shutil, "which", lambda name: None if name.startswith("qemu") else name)
    emulator, why = tvm_replay.emulator_for(CROSS_CC, "aarch64-linux-gnu")
    assert emulator is None and why.startswith("qemu-aarch64 not found")
    assert "apt install qemu-user gcc-aarch64-linux-gnu" in why


def test_tuning_with_a_few_trials_is_reported_against_untuned_and_onnxruntime(tmp_path):
    card = run_export(
        from_arch(SMALL, None, None, None, None), options(tmp_path, format="tvm", tune=2)
    ).to_json()
    t = card["tvm"]
    tuning, lat = t["tuning"], t["latency"]
    assert t["tuned"] and tuning["trials"] == 2 and tuning["tasks"] >= 10
    assert 1 <= tuning["measured_candidates"] <= 2 and 1 <= tuning["tasks_with_measured_candidates"] <= 2
    records = (tmp_path / "tvm_tuning" / "database_tuning_record.json").read_text().splitlines()
    assert len(records) == tuning["measured_candidates"] and (tmp_path / "tvm_tuning" / "logs").is_dir()
    assert max(t["parity"]["max_abs_diff"], t["parity"]["untuned_max_abs_diff"]) < PARITY_TOLERANCE
    tuned, untuned, ort = (lat[k]["median_ms"] for k in ("tvm_tuned_ms", "tvm_untuned_ms", "onnxruntime_ms"))
    assert lat["tuned_vs_onnxruntime"] == pytest.approx(tuned / ort)
    assert lat["tuned_vs_untuned"] == pytest.approx(tuned / untuned)
    assert "MetaSchedule trials" in (tmp_path / "model_card.md").read_text()


def one_line_error(*argv) -> str:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = cli.main(["export", "--arch", SMALL, "--format", "tvm", *map(str, argv)])
    err = stderr.getvalue()
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_targets_and_options_are_one_line(tmp_path):
    def target_file(name: str, text: str) -> str:
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)

    assert "unknown target 'riscv'" in one_line_error("--target", "riscv")
    assert "cannot read target JSON" in one_line_error("--target", target_file("bad.json", "{not json"))
    not_cpu = target_file("gpu.json", '{"kind": "cuda"}')
    assert '"kind": "llvm"' in one_line_error("--target", not_cpu)
    bad_attr = target_file("attr.json", '{"kind": "llvm", "num-cores": "two"}')
    assert "bad TVM target" in one_line_error("--target", bad_attr)
    assert "--tune times candidates on this machine" in one_line_error("--target", "aarch64", "--tune", "2")
    assert "--int8 applies to --format onnx only" in one_line_error("--int8")
    if shutil.which("riscv64-linux-gnu-gcc") is None:
        riscv = target_file("riscv.json", '{"kind": "llvm", "mtriple": "riscv64-linux-gnu"}')
        assert "cross compiler riscv64-linux-gnu-gcc not found" in one_line_error("--target", riscv)
