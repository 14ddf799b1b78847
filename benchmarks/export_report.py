"""Export figures for the issue: the best PneumoniaMNIST network and MobileNetV2, fp32 vs INT8 (size and
latency ratios, every clinical metric's change on test), channel pruning (params, latency and AUC
deltas after a short fine-tune) and TVM for this CPU, untuned and tuned (``--tune-trials`` MetaSchedule
trials), vs ONNX Runtime. ONNX Runtime and TVM 1 thread, batch 1, variants timed interleaved.

    .venv/bin/python benchmarks/export_report.py --run-dir RUNS/search --best
    .venv/bin/python benchmarks/export_report.py --arch ARCH_STRING [--epochs 20] [--table TABLE.json]

A run directory is a ``nas train`` output or a search run (with ``--best`` / ``--trial N``); without one,
``--arch`` is trained first (``train_final``, same recipe as MobileNetV2 here). Writes every model card
under ``--out`` and a summary ``export_report.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from nas.data import load_dataset
from nas.evaluate import TrainConfig
from nas.evaluate.cache import train_cached
from nas.export.format import ExportOptions
from nas.export.pipeline import run_export
from nas.export.source import from_run_dir


def trained(name: str, arch: str, args: argparse.Namespace) -> Path:
    """A trained model directory for ``arch`` under ``--out`` (reused if trained with this recipe)."""
    out = args.out / "trained" / name
    config = TrainConfig(epochs=args.epochs, batch_size=128, threads=args.threads, seed=args.seed)
    train_cached(arch, load_dataset(args.data, args.input_size), config, out)
    return out


def report(name: str, source_dir: Path, args: argparse.Namespace, trial: int | None, best: bool) -> dict:
    def options(kind: str, **changes: Any) -> ExportOptions:
        return ExportOptions(
            out_dir=args.out / name / kind, rounds=args.rounds, threads=args.threads, **changes
        )

    int8 = run_export(
        from_run_dir(source_dir, trial, best, args.data), options("int8", int8=True, table=args.table)
    ).to_json()
    pruned = run_export(
        from_run_dir(source_dir, trial, best, args.data),
        options("pruned", prune=args.prune, finetune_epochs=args.finetune_epochs),
    ).to_json()
    tvm = run_export(
        from_run_dir(source_dir, trial, best, args.data),
        options("tvm", format="tvm", tune=args.tune_trials or None),
    ).to_json()["tvm"]
    q, p = int8["int8"], pruned["pruning"]
    return {
        "name": name,
        "arch": int8["arch"],
        "params": int8["complexity"]["params"],
        "fp32_ms": int8["latency"]["measured_ms"]["fp32"]["median_ms"],
        "int8_ms": int8["latency"]["measured_ms"]["int8"]["median_ms"],
        "size_ratio": q["size_ratio"],
        "weight_size_ratio": q["weight_size_ratio"],
        "latency_ratio": q["latency_ratio"],
        "test_auc_fp32": int8["clinical"]["fp32"]["test"]["auc"],
        "predicted": int8["latency"]["predicted"],
        "int8_test_deltas": q["metric_deltas"]["test"],
        "prune_ratio": args.prune,
        "pruned_params_ratio": p["params_ratio"],
        "pruned_latency_ratio": p["latency_ratio"],
        "pruned_test_auc_delta": p["metric_deltas"]["test"]["auc"],
        "pruned_finetune_epochs": args.finetune_epochs,
        "tvm_parity_max_abs_diff": tvm["parity"]["max_abs_diff"],
        "tvm_untuned_vs_ort": tvm["latency"]["untuned_vs_onnxruntime"],
        "tvm_tuned_vs_ort": tvm["latency"].get("tuned_vs_onnxruntime"),
        "tvm_tuning": tvm["tuning"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="trained run, or search run with --best/--trial")
    parser.add_argument("--best", action="store_true")
    parser.add_argument("--trial", type=int)
    parser.add_argument("--arch", help="the found network's arch string, trained here if no --run-dir")
    parser.add_argument("--data", default="pneumoniamnist")
    parser.add_argument("--input-size", type=int, default=28)
    parser.add_argument("--epochs", type=int, default=20, help="training epochs where training is needed")
    parser.add_argument("--prune", type=float, default=0.3)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for (fine-)training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", type=Path, help="latency table of the found network's space")
    parser.add_argument(
        "--tune-trials", type=int, default=64, help="MetaSchedule trials per network (0: TVM untuned only)"
    )
    parser.add_argument(
        "--mobilenet-dir",
        type=Path,
        help="a trained MobileNetV2 (e.g. benchmarks/pneumoniamnist.py's) to reuse",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/export_report"))
    args = parser.parse_args()
    if args.run_dir is None and args.arch is None:
        parser.error("give --run-dir (a trained or search run) or --arch")
    torch.set_num_threads(args.threads)

    rows = []
    if args.run_dir is not None:
        rows.append(report("found", args.run_dir, args, args.trial, args.best))
    else:
        rows.append(report("found", trained("found", args.arch, args), args, None, False))
    mobilenet = args.mobilenet_dir or trained("mobilenet_v2", "mobilenet_v2", args)
    rows.append(report("mobilenet_v2", mobilenet, args, None, False))

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "export_report.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"== {args.data} {args.input_size}x{args.input_size}; ONNX Runtime, 1 thread, batch 1, interleaved")
    print(
        f"{'network':<14}{'params':>10}{'fp32 ms':>9}{'int8 ms':>9}{'size x':>8}{'lat x':>7}{'AUC':>8}"
        f"{'int8 dAUC':>11}{'prune p x':>11}{'prune lat x':>13}{'prune dAUC':>12}"
    )
    for r in rows:
        print(
            f"{r['name']:<14}{r['params']:>10,}{r['fp32_ms']:>9.3f}{r['int8_ms']:>9.3f}{r['size_ratio']:>8.3f}"
            f"{r['latency_ratio']:>7.3f}{r['test_auc_fp32']:>8.4f}{r['int8_test_deltas']['auc']:>+11.4f}"
            f"{r['pruned_params_ratio']:>11.3f}{r['pruned_latency_ratio']:>13.3f}"
            f"{r['pruned_test_auc_delta']:>+12.4f}"
        )
    for r in rows:
        print(f"{r['name']}: {r['arch']}")
        print(f"  int8 weights (initializers) x{r['weight_size_ratio']:.3f} of fp32's")
        p = r["predicted"]
        if p.get("ms") is not None:
            corrected = p.get("ms_drift_corrected")
            print(
                f"  table predicts {p['ms']:.3f} ms as built"
                + (f", {corrected:.3f} ms drift-corrected" if corrected is not None else "")
                + f"; measured {r['fp32_ms']:.3f} ms"
            )
        else:
            print(f"  table: {p['note']}")
        print("  int8 test deltas: " + ", ".join(f"{k} {v:+.4f}" for k, v in r["int8_test_deltas"].items()))
        line = f"  TVM (this CPU, 1 thread) vs ORT: untuned x{r['tvm_untuned_vs_ort']:.2f}"
        if r["tvm_tuning"] is not None:
            t = r["tvm_tuning"]
            line += (
                f", tuned x{r['tvm_tuned_vs_ort']:.2f} ({t['trials']} trials on "
                f"{t['tasks_with_measured_candidates']} of {t['tasks']} operators, {t['seconds']:.0f} s)"
            )
        print(line + f"; parity {r['tvm_parity_max_abs_diff']:.1e}")
    print(f"wrote {args.out / 'export_report.json'} and the model cards under {args.out}")


if __name__ == "__main__":
    main()
