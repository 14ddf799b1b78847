"""``--format tvm``: the network compiled by TVM for this machine's CPU or cross-compiled for a board.

torch.export -> Relax (``nas.latency.backends.tvm.import_module``), BatchNorm decomposed for inference,
operators legalized and fused, then built by MetaSchedule's ``compile_relax`` with an empty database
(untuned: TVM's default loop nests) or with the database ``--tune TRIALS`` filled. The files, beside
the ONNX ones: ``model_tvm.so`` (the library: kernels, VM bytecode and weights), ``run_tvm.py`` (a
loader that needs only numpy and the TVM runtime), ``model_tvm.json`` (input shape, classes, target,
versions) and ``tvm_target.json`` (the target, which ``--target`` accepts back). The deployment contract
is the ONNX one (float32 [0, 1] NCHW in, or the raw NCL signal for a 1-D arch; normalization inside;
logits out) at a static batch of 1.

For the host the library is checked against PyTorch (``PARITY_TOLERANCE``) and timed against ONNX
Runtime, interleaved in this process, 1 thread each. A cross-compiled library cannot run here; its
kernels are run under qemu instead (``nas.export.tvm_replay``), and its logits checked the same way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import ConfigError
from nas.export.format import ExportOptions, Reference, input_kind
from nas.extras import require

AARCH64 = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon"], "mcpu": "cortex-a72"}
LIBRARY, LOADER, META, TARGET_FILE, TUNING_DIR = (
    "model_tvm.so",
    "run_tvm.py",
    "model_tvm.json",
    "tvm_target.json",
    "tvm_tuning",
)
THREADS = 1  # as ONNX Runtime in every timing here: a small board's single core
QEMU_IMAGES = 3


def target_spec(target: str | None) -> dict[str, Any] | None:
    """None for this machine, the aarch64 preset, or a TARGET_JSON file's object (a CPU target)."""
    if target is None or target == "host":
        return None
    if target == "aarch64":
        return dict(AARCH64)
    path = Path(target)
    if path.suffix != ".json" or not path.is_file():
        raise ConfigError(f"unknown target '{target}' (host, aarch64, or a target JSON file)")
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read target JSON {target}: {' '.join(str(exc).split())}") from None
    if not isinstance(spec, dict) or spec.get("kind") != "llvm":
        raise ConfigError(f'target JSON {target} must be an object with "kind": "llvm" (a CPU target)')
    return spec


def cross_compiler_of(spec: dict[str, Any] | None) -> str | None:
    """The cross compiler a target needs (None: it is this machine's architecture)."""
    from nas.latency.backends.rpc import cross_compiler

    return cross_compiler(str((spec or {}).get("mtriple", "")))


def check(target: str | None, tune: int | None) -> None:
    """One-line ``NasError``s for a missing TVM or a target this export cannot use, before anything is
    built."""
    from nas.latency.backends.tvm import load_tvm, resolve_target

    require("tvm")
    spec = target_spec(target)
    cc = cross_compiler_of(spec)
    if tune is not None and cc is not None:
        arch = str(spec["mtriple"]).split("-")[0]  # type: ignore[index]
        raise ConfigError(
            f"--tune times candidates on this machine, which cannot run {arch} code: export for {arch} "
            "untuned (tuning on the board is not supported)"
        )
    if cc is not None and shutil.which(cc) is None:
        raise ConfigError(
            f"cross compiler {cc} not found: install it (Debian/Ubuntu: apt install "
            f"gcc-{cc.removesuffix('-gcc')})"
        )
    resolve_target(load_tvm(THREADS), spec)  # TVM's own check of the target's attributes


def prepare(tvm: Any, mod: Any) -> Any:
    """BatchNorm as plain arithmetic (fused into the convolutions' kernels), bindings cleaned up."""
    from tvm import relax

    passes = [relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings()]
    return tvm.transform.Sequential(passes)(mod)


def build(tvm: Any, mod: Any, target: Any, database: Any = None) -> Any:
    """The executable, operators scheduled from ``database`` (None: untuned)."""
    from tvm.s_tir import meta_schedule as ms

    database = ms.database.MemoryDatabase() if database is None else database
    return ms.relax_integration.compile_relax(database, mod, target, None)


def tvm_logits(tvm: Any, executable: Any, images: np.ndarray) -> np.ndarray:
    """Logits of an executable built for this machine, one input at a time (batch 1)."""
    vm = tvm.relax.VirtualMachine(executable, tvm.cpu())
    rows = []
    for image in images:
        out = vm["main"](tvm.runtime.tensor(np.ascontiguousarray(image[None]), tvm.cpu()))
        rows.append((out if hasattr(out, "numpy") else out[0]).numpy()[0])
    return np.stack(rows)


def _host(
    tvm: Any,
    model: Any,
    reference: Reference,
    untuned: Any,
    mod: Any,
    target: Any,
    out: Path,
    options: ExportOptions,
) -> dict[str, Any]:
    """Tune (optionally), write the library, check parity and time it against ONNX Runtime."""
    from nas.export.onnx import PARITY_TOLERANCE, compare_logits
    from nas.export.runtime import onnx_runner
    from nas.export.tvm_replay import elf_machine
    from nas.latency.backends.base import Settings
    from nas.latency.backends.timing import interleave
    from nas.latency.backends.tvm import vm_runner

    tuned, tuning = None, None
    if options.tune is not None:
        from nas.export.tvm_tune import tune

        database, tuning = tune(tvm, mod, target, options.tune, out / TUNING_DIR, options.seed)
        tuning["work_dir"] = TUNING_DIR
        tuned = build(tvm, mod, target, database)
    shipped = tuned or untuned
    shipped.export_library(str(out / LIBRARY))
    images = reference.images
    parity: dict[str, Any] = {"images": len(images), "tolerance": PARITY_TOLERANCE, "where": "this machine"}
    parity["max_abs_diff"] = compare_logits(model, images, tvm_logits(tvm, shipped, images), "TVM")
    if tuned is not None:
        untuned_logits = tvm_logits(tvm, untuned, images)
        parity["untuned_max_abs_diff"] = compare_logits(model, images, untuned_logits, "TVM untuned")
    shape = reference.input_shape
    runs = {
        "onnxruntime": onnx_runner(reference.onnx_fp32, shape),
        "tvm_untuned": vm_runner(tvm, untuned, shape),
        **({"tvm_tuned": vm_runner(tvm, tuned, shape)} if tuned is not None else {}),
    }
    timed = interleave(runs, Settings(rounds=options.rounds, seed=options.seed))
    ort = timed["onnxruntime"].median_ms
    latency: dict[str, Any] = {f"{k}_ms": v.to_json() for k, v in timed.items()}
    latency["untuned_vs_onnxruntime"] = timed["tvm_untuned"].median_ms / ort
    if tuned is not None:
        latency["tuned_vs_onnxruntime"] = timed["tvm_tuned"].median_ms / ort
        latency["tuned_vs_untuned"] = timed["tvm_tuned"].median_ms / timed["tvm_untuned"].median_ms
    latency["how"] = (
        f"batch 1, 1 thread each (TVM_NUM_THREADS={THREADS}, ONNX Runtime intra-op 1), interleaved "
        f"round-robin in one process, median of {options.rounds} rounds; TVM called through the Relax VM "
        "from Python, ONNX Runtime through IO binding; ratio > 1: slower than ONNX Runtime"
    )
    return {
        "cross_compiler": None,
        "tuned": tuned is not None,
        "tuning": tuning,
        "files": {"library": _library_entry(out / LIBRARY, elf_machine)},
        "parity": parity,
        "latency": latency,
        "qemu": None,
    }


def _cross(
    tvm: Any, model: Any, reference: Reference, untuned: Any, mod: Any, cc: str, out: Path
) -> dict[str, Any]:
    """Link the library with the cross compiler and run its kernels under qemu where qemu is installed."""
    from tvm.support import cc as tvm_cc

    from nas.export.tvm_replay import elf_machine

    try:
        untuned.export_library(str(out / LIBRARY), fcompile=tvm_cc.cross_compiler(cc))
    except Exception as exc:
        last = [line for line in str(exc).splitlines() if line.strip()]
        raise ConfigError(f"cannot link {LIBRARY} with {cc}: {last[-1] if last else exc}") from None
    return {
        "cross_compiler": cc,
        "tuned": False,
        "tuning": None,
        "files": {"library": _library_entry(out / LIBRARY, elf_machine)},
        "parity": {
            "max_abs_diff": None,
            "where": "not on this machine: the library is for another CPU (see qemu for its kernels)",
        },
        "latency": None,
        "latency_note": "not measured: the library runs on the board (nas latency build --backend tvm-rpc "
        "times blocks there)",
        "qemu": _qemu(tvm, model, reference.images[:QEMU_IMAGES], mod, cc, out / LIBRARY),
    }


def _qemu(tvm: Any, model: Any, images: np.ndarray, mod: Any, cc: str, library: Path) -> dict[str, Any]:
    """The exported library's kernels run under qemu on ``images``, checked against PyTorch."""
    import tvm_ffi.libinfo

    from nas.export.onnx import compare_logits
    from nas.export.tvm_replay import emulator_for, record, replay
    from nas.latency.backends.tvm import resolve_target, target_dict

    triple = str(target_dict(resolve_target(tvm, None)).get("mtriple", ""))
    emulator, how = emulator_for(cc, cc.removesuffix("-gcc"))
    if emulator is None:
        return {"ran": False, "note": f"not run: {how}"}
    host = build(tvm, mod, resolve_target(tvm, None))  # same IRModule, same kernels and VM program
    trace, _ = record(tvm, host, images[:1])
    got, counts = replay(emulator, library, tvm_ffi.libinfo.find_include_path(), trace, images)
    diff = compare_logits(model, images, got, "TVM (qemu)")
    return {
        "ran": True,
        "emulator": how,
        "images": len(images),
        "max_abs_diff": diff,
        **counts,
        "checked": "the exported library, loaded with dlopen by a C harness built with "
        f"{cc} and run by {emulator.qemu}: all its kernel calls for each image, in the order the Relax VM "
        f"makes them (recorded on this {triple.split('-')[0]} machine from a host build of the same "
        "IRModule), on the image and the model's weights, every other byte poisoned with NaN; logits "
        "compared with PyTorch",
        "not_checked": "the TVM runtime's VM interpreter on the board (its bytecode and memory plan are "
        "target-independent and were run here; the board's TVM install provides the interpreter)",
    }


def _library_entry(path: Path, elf_machine: Any) -> dict[str, Any]:
    return {"file": path.name, "bytes": path.stat().st_size, "machine": elf_machine(path)}


def _write_support(reference: Reference, section: dict[str, Any], out: Path) -> dict[str, str]:
    """The loader script, the target and the library's description beside the library."""
    shutil.copyfile(Path(__file__).with_name("tvm_loader.py"), out / LOADER)
    (out / TARGET_FILE).write_text(json.dumps(section["target"], indent=2) + "\n")
    kind = input_kind(reference.input_shape)
    meta = {
        "library": LIBRARY,
        "input_shape": section["input_shape"],
        "input": f"float32 {kind.layout}, {kind.words}; normalized inside the library",
        "output": "logits",
        "class_names": reference.class_names,
        "task": reference.task,
        "threshold": "see model_card.json (deployment_contract.threshold)",
        "target": section["target"],
        "tvm": section["tvm"],
        "tuned": section["tuned"],
    }
    (out / META).write_text(json.dumps(meta, indent=2) + "\n")
    return {"loader": LOADER, "metadata": META, "target": TARGET_FILE}


class TvmFormat:
    """``--format tvm``: see the module docstring."""

    name = "tvm"
    options = ("target", "tune")

    def check(self, options: ExportOptions) -> None:
        check(options.target, options.tune)

    def export(
        self, model: Any, reference: Reference, options: ExportOptions, out_dir: Path
    ) -> dict[str, Any]:
        """Compile ``model`` (the normalized network, eval mode) for ``options.target``, write the files to
        ``out_dir`` and check them; returns the model card's ``tvm`` section."""
        from nas.latency.backends.tvm import import_module, load_tvm, resolve_target, target_dict

        spec = target_spec(options.target)
        cc = cross_compiler_of(spec)
        tvm = load_tvm(THREADS)
        target = resolve_target(tvm, spec)
        if cc is None and "num-cores" not in target_dict(target):  # MetaSchedule schedules for this many
            target = tvm.target.Target({**target_dict(target), "num-cores": THREADS})
        shape = reference.input_shape
        mod = prepare(tvm, import_module(model, shape))
        untuned = build(tvm, mod, target)
        section: dict[str, Any] = {
            "target": target_dict(target),
            "target_name": options.target or "host",
            "tvm": tvm.__version__,
            "input_shape": list(shape),
            "pipeline": "torch.export -> Relax; BatchNorm decomposed, operators legalized and fused; "
            "MetaSchedule compile_relax (empty database: TVM's default schedules)",
        }
        out = Path(out_dir)
        if cc is None:
            section.update(_host(tvm, model, reference, untuned, mod, target, out, options))
        else:
            section.update(_cross(tvm, model, reference, untuned, mod, cc, out))
        section["files"].update(_write_support(reference, section, out))
        return section

    def card_lines(self, t: dict[str, Any]) -> list[str]:
        """The ``tvm`` section of ``model_card.md``."""
        lib, files = t["files"]["library"], t["files"]
        target = ", ".join(f"{k} {v}" for k, v in t["target"].items() if k in ("mtriple", "mcpu", "mattr"))
        lines = [
            "",
            "## TVM",
            "",
            f"- Target: {t['target_name']} ({target}); TVM {t['tvm']}"
            + (f", cross-compiled with {t['cross_compiler']}" if t["cross_compiler"] else ""),
            f"- Files: `{lib['file']}` ({lib['bytes']:,} bytes, {lib['machine']}), "
            f"loader `{files['loader']}`, `{files['metadata']}`, target `{files['target']}`; "
            f"input {t['input_shape']} (batch 1)",
        ]
        parity = t["parity"]
        if parity["max_abs_diff"] is not None:
            lines.append(
                f"- Parity vs PyTorch on {parity['where']}: max abs logit difference "
                f"{parity['max_abs_diff']:.2e} over {parity['images']} images "
                f"(tolerance {parity['tolerance']:g})"
            )
        else:
            lines.append(f"- Parity: {parity['where']}")
        qemu = t.get("qemu")
        if qemu is not None:
            if qemu["ran"]:
                lines.append(
                    f"- Under {qemu['emulator']}: max abs logit difference {qemu['max_abs_diff']:.2e} "
                    f"over {qemu['images']} images, {qemu['kernel_calls']} kernel calls each. Checked: "
                    f"{qemu['checked']}. Not checked: {qemu['not_checked']}."
                )
            else:
                lines.append(f"- Under qemu: {qemu['note']}")
        lat = t.get("latency")
        if lat is not None:
            text = (
                f"- Latency: ONNX Runtime {lat['onnxruntime_ms']['median_ms']:.3f} ms, TVM untuned "
                f"{lat['tvm_untuned_ms']['median_ms']:.3f} ms (x{lat['untuned_vs_onnxruntime']:.2f} ORT)"
            )
            if "tvm_tuned_ms" in lat:
                text += (
                    f", TVM tuned {lat['tvm_tuned_ms']['median_ms']:.3f} ms "
                    f"(x{lat['tuned_vs_onnxruntime']:.2f} ORT, x{lat['tuned_vs_untuned']:.2f} untuned)"
                )
            lines.append(f"{text}; {lat['how']}")
        else:
            lines.append(f"- Latency: {t['latency_note']}")
        tuning = t.get("tuning")
        if tuning is not None:
            lines.append(
                f"- Tuning: {tuning['trials']} MetaSchedule trials, "
                f"{tuning['measured_candidates']} candidates measured for "
                f"{tuning['tasks_with_measured_candidates']} of {tuning['tasks']} operators "
                f"in {tuning['seconds']:.0f} s; database and logs in `{tuning['work_dir']}/`"
            )
        return lines

    def summary(self, t: dict[str, Any]) -> str:
        """What ``nas export`` prints about the TVM library."""
        line = (
            f"tvm ({t['target_name']}, {t['files']['library']['machine']}): {t['files']['library']['file']}"
        )
        if t["parity"]["max_abs_diff"] is not None:
            line += f", parity {t['parity']['max_abs_diff']:.2e}"
        if t["qemu"] is not None:
            q = t["qemu"]
            line += f", under qemu: parity {q['max_abs_diff']:.2e}" if q["ran"] else f", qemu {q['note']}"
        if t["latency"] is not None:
            lat = t["latency"]
            line += f", latency x{lat['untuned_vs_onnxruntime']:.2f} vs ORT untuned"
            if "tuned_vs_onnxruntime" in lat:
                line += f", x{lat['tuned_vs_onnxruntime']:.2f} tuned ({t['tuning']['trials']} trials)"
        return line


FORMAT = TvmFormat()
