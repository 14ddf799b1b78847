"""PneumoniaMNIST benchmark: the networks a search found against same-recipe baselines, measured in one run.

    .venv/bin/python benchmarks/pneumoniamnist.py --run runs/pneumoniamnist_pareto \\
        --random-run runs/pneumoniamnist_random [--epochs 15] [--rounds 300] [--out runs/pneumoniamnist_bench]

1. Found networks, from the search run's Pareto front over (val AUC up, table latency down), up to
   ``--found`` distinct ones in this order: the highest-val-AUC member whose latency is at most
   ``--max-latency-ratio`` (1/50) of ``resnet18_medmnist``'s, the fastest member, the highest-val-AUC
   member overall, then the rest by val AUC. The latency screen times untrained ONNX exports of every
   front member and ResNet-18 interleaved, as the final measurement does (weights do not change speed);
   the table alone cannot price ResNet-18.
2. Baselines: ``resnet18_medmnist`` (MedMNIST v2's ResNet-18 at 28x28), MobileNetV2 at width 1.0 and
   0.35 (``nas.arch.scale_width``, torchvision's rounding) and MnasNet-A1. Every network, found or
   baseline, is trained from scratch with the same ``train_final`` recipe (epoch and threshold chosen on
   val) into ``--out/trained/<name>``; a directory whose recorded recipe matches is reused
   (``nas.evaluate.cache``). The first found network is also trained with knowledge distillation from
   the trained ResNet-18 (``<name>+kd``, ``train_final``'s soft-target loss; ``--no-kd`` skips it), as
   the deployment pipeline would.
3. One measurement, in this process: params, MACs, peak activation memory; the latency table's
   prediction (drift-corrected by re-timing the table's reference networks, ``nas.export.predicted``)
   where the table can price the arch; ONNX fp32 (normalization in the graph) and INT8 (static QDQ,
   calibrated on training images), made and scored as ``nas export --int8`` does
   (``nas.export.variants``); every fp32 and int8 model timed together in one interleaved
   ``time_models`` call (ONNX Runtime, batch 1, 1 thread, median), every latency ratio taken to
   ResNet-18 fp32 (int8 rows too); the test split scored once per variant at the operating threshold
   chosen on val (the same threshold for int8).
4. Printed: the table, the issue's goal per found network (test AUC >= 0.98, ACC >= 0.93, measured
   latency <= 1/50 of ResNet-18) and what fails, whether each found network Pareto-dominates
   MobileNetV2-0.35 and MnasNet-A1 on (test AUC, measured latency) and which comes closest, and the
   hypervolume of the search against the random run over feasible completed trials (val AUC, table
   latency). Written: ``--out/results.json`` (every row) and ``--out/results.md`` (the table).

Smoke test (a minute or two): ``--run runs/quickstart --random-run runs/quickstart --data synthetic
--epochs 1 --max-train-samples 64 --rounds 20``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from nas.arch import ArchSpec, scale_width
from nas.argtypes import positive_int
from nas.console import console
from nas.data import load_dataset
from nas.data.splits import Splits
from nas.errors import NasError
from nas.evaluate import TrainConfig, train_final
from nas.evaluate.cache import cached_metrics
from nas.latency.backends.base import Settings
from nas.search.hypervolume import comparison_frame, hypervolume
from nas.search.pareto import dominates, shortfall
from nas.search.report import pareto_front
from nas.search.summary import SUMMARY_FILE, read_summary
from nas.zoo import resolve_arch

REFERENCE = "resnet18_medmnist"
COMPARED = ("mobilenet_v2_0.35", "mnasnet_a1")  # the hand-designed baselines the goal names
GOAL_AUC, GOAL_ACC = 0.98, 0.93
AXES = [("val_auc", "maximize"), ("latency_ms", "minimize")]
out = console()


@dataclass
class Model:
    """One network of the benchmark: how it is named, why it is here, and (after training) where it is."""

    name: str
    arch: ArchSpec
    role: str
    search: dict[str, Any] = field(default_factory=dict)  # the trial's val AUC and table latency
    trained_dir: Path | None = None
    teacher: Model | None = None  # knowledge distillation from this (trained) model


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="search run directory (summary.json)")
    parser.add_argument("--random-run", type=Path, help="the same experiment with strategy random")
    parser.add_argument("--data", default="pneumoniamnist", help="MedMNIST name, .npz path or synthetic")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--no-kd",
        dest="kd",
        action="store_false",
        help="skip the first found network distilled from ResNet-18",
    )
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--class-weighting", default="loss", choices=("none", "loss", "sampler"))
    parser.add_argument("--max-train-samples", type=int, help="train on a subset (smoke tests only)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch training threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--found", type=positive_int, default=3, help="how many front members to train")
    parser.add_argument("--max-latency-ratio", type=float, default=1 / 50, help="of resnet18_medmnist")
    parser.add_argument("--rounds", type=int, default=300, help="interleaved timing rounds")
    parser.add_argument("--table", type=Path, help="latency table (default: the run's)")
    parser.add_argument("--out", type=Path, default=Path("runs/pneumoniamnist_bench"))
    return parser.parse_args()


# ---------------------------------------------------------------- search runs


def read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A finished search run's summary (``nas.search.summary``) and resolved config.yaml."""
    for name in (SUMMARY_FILE, "config.yaml"):
        if not (run_dir / name).is_file():
            raise SystemExit(f"{run_dir} is not a finished search run: {name} is missing")
    try:
        summary = read_summary(run_dir).model_dump()
    except NasError as exc:
        raise SystemExit(str(exc)) from None
    return summary, yaml.safe_load((run_dir / "config.yaml").read_text())


def check_random_run(run_dir: Path, search_config: dict[str, Any]) -> dict[str, Any]:
    """The random run's summary; a different table or space would make its latencies incomparable."""
    summary, config = read_run(run_dir)
    for key in ("space", "input_size", "latency"):
        if config.get(key) != search_config.get(key):
            raise SystemExit(f"{run_dir} differs from the search run in '{key}': hypervolumes not comparable")
    if config["strategy"]["name"] != "random":
        out.print(f"[yellow]note: {run_dir} used strategy {config['strategy']['name']}, not random[/yellow]")
    return summary


def completed(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Feasible completed trials with both objectives: what the front and the hypervolume are over."""
    return [
        t
        for t in summary["trials"]
        if t["state"] == "COMPLETE" and t["feasible"] and all(t.get(m) is not None for m, _ in AXES)
    ]


# ---------------------------------------------------------------- which networks


def baselines() -> list[Model]:
    mobilenet = resolve_arch("mobilenet_v2")
    return [
        Model(REFERENCE, resolve_arch(REFERENCE), "baseline (MedMNIST v2)"),
        Model("mobilenet_v2", mobilenet, "baseline"),
        Model("mobilenet_v2_0.35", scale_width(mobilenet, 0.35), "baseline"),
        Model("mnasnet_a1", resolve_arch("mnasnet_a1"), "baseline"),
    ]


def screen_latency(archs: dict[str, ArchSpec], splits: Splits, rounds: int, seed: int) -> dict[str, float]:
    """Median ms of untrained networks, timed interleaved with the latency tables' ONNX Runtime backend:
    enough to tell which front members fit the latency budget before anything is trained."""
    from nas.latency.backends import make_backend
    from nas.latency.build import net_item

    dims = {"in_chans": splits.n_channels, "input_size": splits.input_size, "num_classes": splits.num_classes}
    items = [net_item(name, arch, dims) for name, arch in archs.items()]
    timings = make_backend("ort", threads=1).measure(items, Settings(rounds=rounds, seed=seed))
    return {name: t.median_ms for name, t in timings.items()}


def pick_found(
    front: list[dict[str, Any]], screened: dict[str, float], args: argparse.Namespace
) -> list[Model]:
    """The rule of the module docstring: within budget, fastest, best, then the rest by val AUC."""
    budget = args.max_latency_ratio * screened[REFERENCE]
    by_auc = sorted(front, key=lambda t: -t["val_auc"])
    within = [t for t in by_auc if screened[f"t{t['number']}"] <= budget]
    ranked = [
        (within[:1], f"best val AUC within 1/{1 / args.max_latency_ratio:.0f} of ResNet-18"),
        ([min(front, key=lambda t: t["latency_ms"])], "fastest on the front"),
        (by_auc[:1], "best val AUC"),
        (by_auc, "Pareto front"),
    ]
    found: dict[int, Model] = {}
    for trials, role in ranked:
        for t in trials:
            if t["number"] in found:
                if role != "Pareto front":
                    found[t["number"]].role += f"; {role}"
                continue
            if len(found) < args.found:
                search = {"trial": t["number"], "val_auc": t["val_auc"], "table_ms": t["latency_ms"]}
                arch = ArchSpec.from_str(t["arch"])
                found[t["number"]] = Model(f"nas_t{t['number']}", arch, role, search)
    if not within:
        out.print(f"  no front member is within the budget ({budget:.3f} ms untrained, screened)")
    return list(found.values())


# ---------------------------------------------------------------- training (cached)


def ensure_trained(model: Model, splits: Splits, config: TrainConfig, root: Path) -> None:
    """Train ``model`` into ``root/<name>`` unless a model with the same recipe is already there."""
    model.trained_dir = root / model.name
    teacher = model.teacher.trained_dir if model.teacher else None
    if cached_metrics(model.trained_dir, model.arch, splits, config, teacher) is not None:
        out.print(f"  {model.name}: trained, reused from {model.trained_dir}")
        return
    start = time.time()

    def progress(phase: str, epoch: int, metrics: dict[str, float]) -> None:
        out.print(
            f"  {model.name}: epoch {epoch}/{config.epochs}  val AUC {metrics['auc']:.4f}  "
            f"loss {metrics.get('loss', float('nan')):.4f}  ({time.time() - start:.0f} s)"
        )

    out.print(f"  {model.name}: training ({model.arch.to_str()[:80]}...)")
    result = train_final(model.arch, splits, config, model.trained_dir, teacher=teacher, progress=progress)
    out.print(f"  {model.name}: done in {time.time() - start:.0f} s, test AUC {result['test']['auc']:.4f}")


# ---------------------------------------------------------------- measurement (one process)


def measure_all(models: list[Model], args: argparse.Namespace, table: Path | None) -> list[dict[str, Any]]:
    """Complexity, prediction, export and test score per model, then one interleaved timing of all."""
    from nas.export.format import ExportOptions
    from nas.export.predicted import predict
    from nas.export.runtime import time_models
    from nas.export.source import from_run_dir
    from nas.export.variants import clinical_scores, export_variants
    from nas.metrics import measure

    options = ExportOptions(int8=True, seed=args.seed)  # the deployment pipeline's INT8 calibration
    rows, onnx, predictions, references = [], {}, {}, {}
    for model in models:
        out.print(f"  {model.name}: complexity, ONNX fp32 + int8, test split")
        source = from_run_dir(model.trained_dir, None, False, args.data)
        c = measure(source.arch, source.in_chans, source.input_size, source.num_classes)
        predictions[model.name] = predict(source, table, pruned=False)
        references.update(predictions[model.name].models())
        for precision, data in export_variants(source, options).onnx.items():
            onnx[f"{model.name}/{precision}"] = data
            (test,) = clinical_scores(data, source.splits, source.task, source.threshold, ("test",)).values()
            rows.append(
                {
                    "name": model.name,
                    "role": model.role,
                    "precision": precision,
                    "arch": source.arch.to_str(),
                    "params": c.params,
                    "macs": c.macs,
                    # measured at 4 bytes per activation; int8 stores 1 (nas.metrics.memory)
                    "peak_activation_kb": c.peak_activation_bytes / 1024 / (1 if precision == "fp32" else 4),
                    "onnx_bytes": len(data),
                    "threshold": source.threshold,
                    "search": model.search,
                    "pytorch_test": source.trained["test"],
                    "test": test,
                }
            )
    shape = source.input_shape
    out.print(f"  timing {len(onnx)} models + {len(references)} table references, {args.rounds} rounds")
    timings = time_models({**onnx, **references}, shape, Settings(rounds=args.rounds, seed=args.seed))
    reference_ms = timings[f"{REFERENCE}/fp32"].median_ms
    for row in rows:
        timing = timings[f"{row['name']}/{row['precision']}"]
        predicted = predictions[row["name"]].result(timings)
        row["predicted"] = predicted
        row["predicted_ms"] = predicted.get("ms_drift_corrected", predicted.get("ms"))
        row["measured_ms"], row["spread_ms"] = timing.median_ms, timing.spread_ms
        row["ratio_to_resnet18"] = timing.median_ms / reference_ms
    return rows


# ---------------------------------------------------------------- verdicts


def goal_failures(row: dict[str, Any], max_ratio: float) -> list[str]:
    """What keeps ``row`` from the issue's goal; empty when it reaches it."""
    test, fails = row["test"], []
    if not test["auc"] >= GOAL_AUC:
        fails.append(f"test AUC {test['auc']:.4f} < {GOAL_AUC}")
    if not test["accuracy"] >= GOAL_ACC:
        fails.append(f"test ACC {test['accuracy']:.4f} < {GOAL_ACC}")
    if not row["ratio_to_resnet18"] <= max_ratio:
        fails.append(f"latency {ratio_text(row['ratio_to_resnet18'])} of ResNet-18 > {ratio_text(max_ratio)}")
    return fails


def measured(row: dict[str, Any]) -> tuple[float, float]:
    """A row's (test AUC, measured latency) as costs (``nas.search.pareto``: lower is better)."""
    return -row["test"]["auc"], row["measured_ms"]


def run_hypervolume(search: dict[str, Any], random: dict[str, Any] | None) -> dict[str, Any]:
    """Hypervolume of both runs' feasible completed trials on (table latency down, val AUC up), scaled by
    the union's ranges, against a shared reference: the union's worst corner and the median random trial."""
    points = {
        name: [(t["latency_ms"], t["val_auc"]) for t in completed(s)]
        for name, s in (("search", search), ("random", random))
        if s is not None
    }
    union = [p for ps in points.values() for p in ps]
    scale, references = comparison_frame(union, points.get("random", []))
    labels = {"worst": "worst corner of all trials", "median": "median random trial"}
    result: dict[str, Any] = {"trials": {k: len(v) for k, v in points.items()}, "references": {}}
    for key, ref in references.items():
        volumes = {k: hypervolume(v, ref, scale) for k, v in points.items()}
        ratio = volumes["search"] / volumes["random"] if volumes.get("random") else None
        result["references"][labels[key]] = {"point": ref, **volumes, "ratio": ratio}
    return result


# ---------------------------------------------------------------- printing and files


def ratio_text(ratio: float) -> str:
    return f"1/{1 / ratio:.0f}" if ratio < 1 else f"{ratio:.2f}x"


def predicted_text(row: dict[str, Any]) -> str:
    """The table's (fp32) prediction, or "-" where it cannot price the arch or the row is int8."""
    ms = row["predicted_ms"]
    return "-" if ms is None or row["precision"] != "fp32" else f"{ms:.3f}"


COLUMNS = [
    ("model", lambda r: r["name"]),
    ("prec", lambda r: r["precision"]),
    ("params", lambda r: f"{r['params']:,}"),
    ("MACs", lambda r: f"{r['macs'] / 1e6:.2f} M"),
    ("peak KB", lambda r: f"{r['peak_activation_kb']:.1f}"),
    ("pred ms", lambda r: predicted_text(r)),
    ("ms", lambda r: f"{r['measured_ms']:.3f}"),
    ("vs ResNet-18 fp32", lambda r: ratio_text(r["ratio_to_resnet18"])),
    ("ACC", lambda r: f"{r['test']['accuracy']:.4f}"),
    ("AUC", lambda r: f"{r['test']['auc']:.4f}"),
    ("sens", lambda r: f"{r['test']['sensitivity']:.4f}"),
    ("spec", lambda r: f"{r['test']['specificity']:.4f}"),
    ("ECE", lambda r: f"{r['test']['ece']:.4f}"),
]


def print_table(rows: list[dict[str, Any]], caption: str) -> None:
    table = Table(
        title="PneumoniaMNIST: found networks vs same-recipe baselines (test split)", caption=caption
    )
    for name, _ in COLUMNS:
        table.add_column(name, justify="left" if name in ("model", "prec") else "right")
    for row in rows:
        table.add_row(*(cell(row) for _, cell in COLUMNS))
    out.print(table)


def markdown(rows: list[dict[str, Any]], caption: str) -> str:
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r) for _, cell in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + f"\n\n{caption}\n"


def print_verdicts(rows: list[dict[str, Any]], found: list[Model], max_ratio: float) -> dict[str, Any]:
    """The goal per found network, and dominance over the hand-designed baselines; returned for the JSON."""
    fp32 = {r["name"]: r for r in rows if r["precision"] == "fp32"}
    int8 = {r["name"]: r for r in rows if r["precision"] == "int8"}
    goal = f"test AUC >= {GOAL_AUC}, ACC >= {GOAL_ACC}, latency <= {ratio_text(max_ratio)} of ResNet-18"
    out.print(f"\n[bold]Goal[/bold] ({goal}):")
    verdicts: dict[str, Any] = {"goal": {}, "dominance": {}}
    for m in found:
        fails = {p: goal_failures(table[m.name], max_ratio) for p, table in (("fp32", fp32), ("int8", int8))}
        verdicts["goal"][m.name] = fails
        for precision, failing in fails.items():
            text = "reaches it" if not failing else "fails: " + "; ".join(failing)
            out.print(f"  {m.name} {precision} ({m.role}): {text}")
    out.print("\n[bold]Pareto dominance[/bold] on (test AUC up, measured fp32 latency down):")
    for base in (b for b in COMPARED if b in fp32):
        base_costs = measured(fp32[base])
        winners = [m.name for m in found if dominates(measured(fp32[m.name]), base_costs)]
        closest = min(found, key=lambda m: shortfall(measured(fp32[m.name]), base_costs), default=None)
        verdicts["dominance"][base] = {"dominated_by": winners, "closest": closest and closest.name}
        out.print(f"  {base}: dominated by {', '.join(winners) or 'none'}")
        if closest is not None and not winners:
            r, b = fp32[closest.name], fp32[base]
            out.print(
                f"    closest: {closest.name} (AUC {r['test']['auc'] - b['test']['auc']:+.4f}, "
                f"latency {r['measured_ms'] / b['measured_ms']:.2f}x of {base})"
            )
    return verdicts


def print_hypervolume(result: dict[str, Any]) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in result["trials"].items())
    axes = "(table latency down, val AUC up), feasible completed trials"
    out.print(f"\n[bold]Hypervolume[/bold] on {axes} ({counts}):")
    for label, r in result["references"].items():
        line = (
            f"  reference {label} ({r['point'][0]:.3f} ms, AUC {r['point'][1]:.4f}): search {r['search']:.4f}"
        )
        if "random" in r:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            line += f", random {r['random']:.4f}, search/random {ratio}"
        out.print(line)


def main() -> None:
    args = parse_args()
    summary, config = read_run(args.run)
    random_summary = check_random_run(args.random_run, config) if args.random_run else None
    table = args.table or (Path(config["latency"]["table"]) if config.get("latency") else None)
    splits = load_dataset(args.data, summary.get("input_size", 28))
    train_config = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        class_weighting=args.class_weighting,
        max_train_samples=args.max_train_samples,
        seed=args.seed,
        threads=args.threads,
    )
    start = time.time()
    front = pareto_front(completed(summary), AXES)
    if not front:
        raise SystemExit(f"{args.run} has no feasible completed trial: nothing was found")
    out.print(f"[bold]1. Found networks[/bold]: {len(front)} on the front of {args.run}, latency screen")
    screen_archs = {
        REFERENCE: resolve_arch(REFERENCE),
        **{f"t{t['number']}": ArchSpec.from_str(t["arch"]) for t in front},
    }
    screened = screen_latency(screen_archs, splits, args.rounds, args.seed)
    found = pick_found(front, screened, args)
    for m in found:
        s = m.search
        out.print(f"  {m.name}: {m.role}; val AUC {s['val_auc']:.4f}, table {s['table_ms']:.3f} ms")
    references = baselines()
    first = found[0]  # distilling costs a ResNet-18 forward pass per batch: only the first pick
    kd_role = f"{first.name} distilled from {REFERENCE}"
    distilled = [Model(f"{first.name}+kd", first.arch, kd_role, first.search, teacher=references[0])]
    distilled = distilled if args.kd else []
    models = references + found + distilled  # the teacher is trained before its students
    out.print(
        f"[bold]2. Training[/bold] (epochs {args.epochs}, data {splits.name}) into {args.out / 'trained'}"
    )
    for model in models:
        ensure_trained(model, splits, train_config, args.out / "trained")
    out.print("[bold]3. Measuring[/bold] every model in this process")
    rows = measure_all(models, args, table)
    caption = (
        f"{splits.name} test split ({len(splits.test)} images), epochs {args.epochs}, same recipe; "
        f"ONNX Runtime 1 thread batch 1, median of {args.rounds} interleaved rounds; "
        f"pred ms: table {table}, drift-corrected"
    )
    print_table(rows, caption)
    verdicts = print_verdicts(rows, found + distilled, args.max_latency_ratio)
    hv = run_hypervolume(summary, random_summary)
    print_hypervolume(hv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "run": str(args.run),
        "random_run": args.random_run and str(args.random_run),
        "data": splits.name,
        "table": table and str(table),
        "recipe": train_config.to_json(),
        "rounds": args.rounds,
        "screened_untrained_ms": screened,
        "rows": rows,
        **verdicts,
        "hypervolume": hv,
        "wall_seconds": time.time() - start,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "results.md").write_text(markdown(rows, caption))
    out.print(
        f"\nwrote {args.out / 'results.json'} and {args.out / 'results.md'} ({time.time() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
