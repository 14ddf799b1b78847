"""ECG5000 benchmark (issue 15): the networks a search found against the 1-D ResNet and FCN of Wang et al.
(2017), trained with the same recipe and measured in one run.

    python benchmarks/ecg5000.py --run runs/ecg5000 [--archs ARCH ...] [--seeds 3] [--workers 2] \\
        [--rounds 300] [--out /tmp/bench/ecg5000]

1. Networks: the finalists of the run's ``final.json`` (best by final validation first; ``--archs`` adds
   more) and the references ``resnet1d_wang`` and ``fcn1d_wang`` (exact in parameters to Fawaz et al.'s
   Keras models).
2. Training: every network on seeds 0..R-1 with the run's final recipe (``final.json``'s
   ``train_config`` and seeds, or ``--recipe``'s; ``--min-steps``/``--epochs``/``--refit`` override it),
   each a ``train_final`` (epoch chosen on the 100 validation beats, with ``--refit`` then trained again
   on all 500 for as many passes, the 4,500 test beats scored once) in its own directory, reused
   when its recorded recipe matches (``nas.evaluate.cache``): a finalist's are the run's own finalize
   directories, the rest go under ``--out``; ``--workers`` one-thread processes side by side.
3. Measured in this process, seed 0's model of each network: params; int8 weights (the initializers of
   the INT8 QDQ ONNX model that ``nas export --int8`` writes, calibrated on training beats) and int8 peak
   activation (one byte per element, ``nas.metrics.memory``); ONNX Runtime fp32 latency, batch 1, 1
   thread, every model interleaved in one ``time_models`` call (median of ``--rounds`` rounds of 2 ms
   warm samples: one run per sample put the small nets at 0.038-0.048 of the ResNet in two passes of
   one process, warm samples at 0.0325-0.0328), as a ratio to ``resnet1d_wang``; the INT8 model's test
   accuracy.
4. Printed: per network the test accuracy, balanced accuracy and macro-F1 as mean +- std over seeds,
   per-class sensitivity (mean over seeds), and the costs; then the issue's goals for the best finalist
   (test accuracy >= 94.5 %, <= 50 k params, int8 weights <= 64 KB, int8 peak activation <= 32 KB,
   latency <= 1/20 of the ResNet's). Written: ``--out/results.json`` and the table as ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from nas.argtypes import positive_int
from nas.data import load_dataset
from nas.errors import NasError
from nas.evaluate import TrainConfig
from nas.latency.backends.base import Settings
from nas.search.final import read_final
from nas.zoo import resolve_arch

DATA = "ecg5000"
REFERENCES = ("resnet1d_wang", "fcn1d_wang")
GOALS = {"accuracy": 0.945, "params": 50_000, "int8_weight_kb": 64, "int8_peak_kb": 32, "ratio": 1 / 20}
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def train(arch: str, config: dict[str, Any], out: str) -> None:
    """One training into ``out`` (or its cached result there), in a one-thread worker."""
    from nas.evaluate.cache import train_cached

    train_cached(arch, load_dataset(DATA, None), TrainConfig.from_json(config), out)


def train_all(
    networks: dict[str, str], config: dict[str, Any], workers: int, dirs: dict[tuple[str, int], Path]
) -> dict[tuple[str, int], Path]:
    """Every (network, seed) of ``dirs`` trained into its directory; returns ``dirs``."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(train, networks[name], {**config, "seed": s, "threads": 1}, str(path)): (name, s)
            for (name, s), path in dirs.items()
        }
        for n, future in enumerate(as_completed(futures), 1):
            future.result()
            name, s = futures[future]
            print(f"  [{n}/{len(futures)}] trained {name} seed {s}", flush=True)
    return dirs


def measure(
    networks: dict[str, str], trained: dict[tuple[str, int], Path], seed: int, rounds: int
) -> dict[str, dict]:
    """Costs, INT8 accuracy and interleaved latency of each network's model of the first seed."""
    from nas.export.format import ExportOptions
    from nas.export.onnx import weight_bytes
    from nas.export.runtime import split_probs, time_models
    from nas.export.source import from_run_dir
    from nas.export.variants import export_variants
    from nas.metrics.clinical import clinical_metrics
    from nas.metrics.memory import peak_activation_bytes
    from nas.onnxrt import session

    rows, fp32 = {}, {}
    for name in networks:
        source = from_run_dir(trained[(name, seed)], None, False, DATA)
        variants = export_variants(source, ExportOptions(int8=True))
        test = source.splits.test
        int8 = clinical_metrics(test.labels, split_probs(session(variants.onnx["int8"]), test, source.task))
        peak = peak_activation_bytes(
            source.network, source.in_chans, source.input_size, 1, dims=source.arch.dims
        )
        rows[name] = {
            "params": sum(p.numel() for p in source.network.parameters()),
            "int8_weight_kb": weight_bytes(variants.onnx["int8"]) / 1024,
            "int8_peak_kb": peak / 1024,
            "int8_test_accuracy": int8["accuracy"],
        }
        fp32[name] = variants.onnx["fp32"]
    shape = resolve_arch(networks[REFERENCES[0]]).input_shape(1, source.input_size)
    timings = time_models(fp32, shape, Settings(rounds=rounds))
    for name, timing in timings.items():
        rows[name]["ms"] = timing.median_ms
        rows[name]["ratio"] = timing.median_ms / timings[REFERENCES[0]].median_ms
    return rows


def test_figures(name: str, seeds: list[int], trained: dict[tuple[str, int], Path]) -> dict[str, Any]:
    """Mean and std over seeds of the test metrics each training recorded."""
    tests = [json.loads((trained[(name, s)] / "metrics.json").read_text())["test"] for s in seeds]
    keys = [*METRICS, *sorted(k for k in tests[0] if k.startswith("sensitivity_"))]
    spread = statistics.stdev if len(seeds) > 1 else lambda values: 0.0
    return {
        k: {"mean": statistics.mean(t[k] for t in tests), "std": spread([t[k] for t in tests])} for k in keys
    }


def report(rows: dict[str, dict], finalists: list[str]) -> None:
    print(f"\n{'network':16} {'params':>8} {'int8 KB':>8} {'peak KB':>8} {'ms ratio':>9}  "
          f"{'test acc':>15} {'bal acc':>15} {'macro-F1':>15}  per-class sensitivity   int8 acc")  # fmt: skip
    for name, row in rows.items():
        t = row["test"]
        figures = "  ".join(f"{t[m]['mean']:.4f}+-{t[m]['std']:.4f}" for m in METRICS)
        per_class = " ".join(f"{t[k]['mean']:.2f}" for k in t if k.startswith("sensitivity_"))
        print(
            f"{name:16} {row['params']:>8} {row['int8_weight_kb']:>8.1f} {row['int8_peak_kb']:>8.1f} "
            f"{row['ratio']:>9.4f}  {figures}  {per_class:22}  {row['int8_test_accuracy']:.4f}"
        )
    if not finalists:
        return
    best = rows[finalists[0]]
    acc = best["test"]["accuracy"]["mean"]
    checks = {
        f"test accuracy {acc:.4f} >= {GOALS['accuracy']}": acc >= GOALS["accuracy"],
        f"params {best['params']} <= {GOALS['params']}": best["params"] <= GOALS["params"],
        f"int8 weights {best['int8_weight_kb']:.1f} KB <= 64": best["int8_weight_kb"]
        <= GOALS["int8_weight_kb"],
        f"int8 peak activation {best['int8_peak_kb']:.1f} KB <= 32": best["int8_peak_kb"]
        <= GOALS["int8_peak_kb"],
        f"latency ratio {best['ratio']:.4f} <= 1/20": best["ratio"] <= GOALS["ratio"],
    }
    print(f"\ngoals for {finalists[0]} ({best['arch']}):")
    for text, met in checks.items():
        print(f"  {'met ' if met else 'MISS'} {text}")


def markdown(rows: dict[str, dict], recipe: dict[str, Any], seeds: list[int]) -> str:
    """The figures of ``report`` as a Markdown table, for the committed results."""
    lines = [
        "| network | params | int8 KB | int8 peak KB | latency vs resnet1d_wang | test acc | bal acc | "
        "macro-F1 | per-class sensitivity | int8 acc |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        t = row["test"]
        figures = " | ".join(f"{t[m]['mean']:.4f} ± {t[m]['std']:.4f}" for m in METRICS)
        per_class = " / ".join(f"{t[k]['mean']:.2f}" for k in t if k.startswith("sensitivity_"))
        lines.append(
            f"| {name} | {row['params']:,} | {row['int8_weight_kb']:.1f} | {row['int8_peak_kb']:.1f} | "
            f"{row['ratio']:.4f} | {figures} | {per_class} | {row['int8_test_accuracy']:.4f} |"
        )
    steps = f"{recipe['epochs']} epochs, at least {recipe['min_steps']} optimizer steps"
    if recipe.get("refit"):
        steps += ", then trained again on train + val for as many passes"
    lines.append(
        f"\n{DATA} test split (4,500 beats), mean ± std over seeds {seeds}, {steps}, the same recipe for "
        "every network; ONNX Runtime fp32, 1 thread, batch 1, every model timed interleaved in one process "
        "(2 ms warm samples, the median of the rounds)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a finished, finalized ecg5000 search run")
    parser.add_argument("--archs", nargs="*", default=[], help="more networks (arch strings)")
    parser.add_argument("--seeds", type=positive_int, default=3)
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--rounds", type=positive_int, default=300)
    parser.add_argument("--min-steps", type=int, help="override the recipe's step floor")
    parser.add_argument("--epochs", type=positive_int, help="override the recipe's epochs")
    parser.add_argument(
        "--recipe",
        type=Path,
        help="train with the recipe of an earlier benchmark (its results.json, or benchmark.json)",
    )
    parser.add_argument(
        "--refit", action="store_true", help="train again on train + val once val has chosen the epoch"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench/ecg5000"))
    args = parser.parse_args()

    networks: dict[str, str] = {}
    config = TrainConfig(epochs=15, min_steps=1500, select_metric="accuracy").to_json()
    seeds, dirs = list(range(args.seeds)), {}
    overrides = {k: v for k, v in (("min_steps", args.min_steps), ("epochs", args.epochs)) if v is not None}
    overrides |= {"refit": True} if args.refit else {}
    if args.run is not None:
        final = read_final(args.run)
        if final is None:
            parser.error(f"{args.run} has no final.json: run 'nas finalize {args.run}' first")
        config, seeds = final.train_config, final.trials[0].seeds
        for trial in sorted(final.trials, key=lambda t: t.final_rank):
            networks[f"trial_{trial.number}"] = trial.arch
            if not overrides and args.recipe is None:  # the run's own trainings, never retrained over
                runs = zip(trial.seeds, trial.dirs, strict=True)
                dirs |= {(f"trial_{trial.number}", s): args.run / d for s, d in runs}
    if args.recipe is not None:
        try:
            config = TrainConfig.from_json(json.loads(args.recipe.read_text())["recipe"]).to_json()
        except (OSError, ValueError, KeyError, TypeError, NasError) as exc:
            parser.error(f"--recipe {args.recipe}: not a benchmark's results with a 'recipe' ({exc})")
    networks |= {f"arch_{i}": arch for i, arch in enumerate(args.archs)}
    finalists = list(networks)
    networks |= {name: resolve_arch(name).to_str() for name in REFERENCES}
    config |= overrides
    dirs = {(n, s): dirs.get((n, s), args.out / "trained" / n / f"seed{s}") for n in networks for s in seeds}
    print(f"recipe: {config}")
    trained = train_all(networks, config, args.workers, dirs)
    rows = measure(networks, trained, seeds[0], args.rounds)
    for name, arch in networks.items():
        rows[name] |= {"arch": arch, "test": test_figures(name, seeds, trained)}
    report(rows, finalists)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"recipe": config, "rows": rows}, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(rows, config, seeds))


if __name__ == "__main__":
    main()
