"""PneumoniaMNIST benchmark: the networks a search found against same-recipe baselines, measured in one run.

    .venv/bin/python benchmarks/pneumoniamnist.py --run runs/pneumoniamnist_pareto \\
        --random-run runs/pneumoniamnist_random [--epochs 15] [--rounds 300] [--out runs/pneumoniamnist_bench]

1. Found networks, from the search run's Pareto front over (val AUC up, table latency down), up to
   ``--found`` distinct ones. After ``nas finalize`` the front is that of the finalized trials, each
   with the mean val AUC of its full-recipe trainings (``final.json``) instead of the search's proxy
   figure, which on a small split cannot rank the front (issue 13); "fastest" then means the fastest
   finalist (finalized with ``--pick best``, the front's slowest members). They are picked in this
   order: the highest-val-AUC member whose latency is at most ``--max-latency-ratio`` (1/50) of
   ``resnet18_medmnist``'s, the fastest member, the highest-val-AUC member overall, then the rest by
   val AUC. The latency screen times untrained ONNX exports of every
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
   chosen on val (the same threshold for int8). ``--committed DIR`` (a ``nas export`` directory) adds
   that model's fp32 and int8 files to the same timing, with its card's test figures.
4. Printed: the table, the issue's goal per found network (test AUC >= 0.98, ACC >= 0.93, measured
   latency <= 1/50 of ResNet-18) and what fails, whether each found network Pareto-dominates
   MobileNetV2-0.35 and MnasNet-A1 on (test AUC, measured latency) and which comes closest, and the
   hypervolume of the search against the random run over feasible completed trials (val AUC, table
   latency; the search's own figures, finalized or not), and with ``--committed`` which found networks
   beat that model on both test AUC and fp32 latency (issue 13 allows replacing it only then).
   Written: ``--out/results.json`` (every row) and ``--out/results.md`` (the table). The tables and
   verdicts are ``pneumoniamnist_report.py``'s.

Smoke test (a minute or two): ``--run runs/quickstart --random-run runs/quickstart --data synthetic
--epochs 1 --max-train-samples 64 --rounds 20``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from pneumoniamnist_report import COMMITTED, markdown, print_hypervolume, print_table, print_verdicts

from nas.arch import ArchSpec, scale_width
from nas.argtypes import positive_int
from nas.console import console
from nas.data import load_dataset
from nas.data.splits import Splits
from nas.errors import NasError
from nas.evaluate import TrainConfig
from nas.evaluate.cache import train_cached
from nas.latency.backends.base import Settings
from nas.search.config import ExperimentConfig, load_experiment
from nas.search.final import FINAL_FILE, read_final
from nas.search.hypervolume import compare_hypervolumes
from nas.search.pareto import non_dominated
from nas.search.summary import SUMMARY_FILE, SearchSummary, read_summary
from nas.zoo import resolve_arch

REFERENCE = "resnet18_medmnist"
out = console()


def refuse(message: str) -> NoReturn:
    """A user's mistake (a wrong run or directory): one line on stderr, exit status 2."""
    print(f"pneumoniamnist.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


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
    parser.add_argument(
        "--committed",
        type=Path,
        help="an exported model directory (nas export: model.onnx, model.int8.onnx, model_card.json) timed "
        "with the rest; which found networks beat it on test AUC and fp32 latency",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/pneumoniamnist_bench"))
    return parser.parse_args()


# ---------------------------------------------------------------- search runs


@dataclass(frozen=True)
class Trial:
    """A feasible completed trial of a search run with both objectives: what the front and the
    hypervolume are over."""

    number: int
    arch: str
    val_auc: float
    latency_ms: float  # the table's


def read_run(run_dir: Path) -> tuple[SearchSummary, ExperimentConfig]:
    """A finished search run's summary and resolved experiment (its ``config.yaml``)."""
    for name in (SUMMARY_FILE, "config.yaml"):
        if not (run_dir / name).is_file():
            refuse(f"{run_dir} is not a finished search run: {name} is missing")
    try:
        return read_summary(run_dir), load_experiment(run_dir / "config.yaml")
    except NasError as exc:
        refuse(str(exc))


def check_random_run(run_dir: Path, search: ExperimentConfig) -> SearchSummary:
    """The random run's summary; a different table or space would make its latencies incomparable."""
    summary, config = read_run(run_dir)
    for key in ("space", "input_size", "latency"):
        if getattr(config, key) != getattr(search, key):
            refuse(f"{run_dir} differs from the search run in '{key}': hypervolumes not comparable")
    if config.strategy.name != "random":
        out.print(f"[yellow]note: {run_dir} used strategy {config.strategy.name}, not random[/yellow]")
    return summary


def completed(summary: SearchSummary) -> list[Trial]:
    trials = []
    for t in summary.trials:
        metrics = t.model_extra or {}
        auc, ms = metrics.get("val_auc"), metrics.get("latency_ms")
        if t.state == "COMPLETE" and t.feasible and auc is not None and ms is not None:
            trials.append(Trial(t.number, t.arch, auc, ms))
    return trials


def finalized(run_dir: Path, trials: list[Trial]) -> list[Trial] | None:
    """The run's finalized ``trials`` with their final val AUC (mean over seeds); None if not finalized."""
    try:
        record = read_final(run_dir)
    except NasError as exc:
        refuse(str(exc))
    if record is None:
        return None
    final_auc = {t.number: t.val.get("val_auc") for t in record.trials}
    front = [replace(t, val_auc=final_auc[t.number]) for t in trials if final_auc.get(t.number) is not None]
    if not front:
        refuse(
            f"{run_dir / FINAL_FILE}: none of its {len(record.trials)} trials has a val AUC and is a "
            "feasible completed trial of the run: run nas finalize again"
        )
    if len(front) < len(record.trials):
        left_out = len(record.trials) - len(front)
        out.print(f"  note: {left_out} finalized trials left out (no val AUC, or not feasible and completed)")
    return front


def pareto_front(trials: list[Trial]) -> list[Trial]:
    """The trials no other dominates on (val AUC up, table latency down), one per arch, by val AUC."""
    front = non_dominated(trials, lambda t: (-t.val_auc, t.latency_ms))
    return sorted({t.arch: t for t in front}.values(), key=lambda t: t.val_auc)


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


def pick_found(front: list[Trial], screened: dict[str, float], args: argparse.Namespace) -> list[Model]:
    """The rule of the module docstring: within budget, fastest, best, then the rest by val AUC."""
    budget = args.max_latency_ratio * screened[REFERENCE]
    by_auc = sorted(front, key=lambda t: -t.val_auc)
    within = [t for t in by_auc if screened[f"t{t.number}"] <= budget]
    ranked = [
        (within[:1], f"best val AUC within 1/{1 / args.max_latency_ratio:.0f} of ResNet-18"),
        ([min(front, key=lambda t: t.latency_ms)], "fastest on the front"),
        (by_auc[:1], "best val AUC"),
        (by_auc, "Pareto front"),
    ]
    found: dict[int, Model] = {}
    for trials, role in ranked:
        for t in trials:
            if t.number in found:
                if role != "Pareto front":
                    found[t.number].role += f"; {role}"
                continue
            if len(found) < args.found:
                search = {"trial": t.number, "val_auc": t.val_auc, "table_ms": t.latency_ms}
                found[t.number] = Model(f"nas_t{t.number}", ArchSpec.from_str(t.arch), role, search)
    if not within:
        out.print(f"  no front member is within the budget ({budget:.3f} ms untrained, screened)")
    return list(found.values())


# ---------------------------------------------------------------- training (cached)


def ensure_trained(model: Model, splits: Splits, config: TrainConfig, root: Path) -> None:
    """Train ``model`` into ``root/<name>`` unless a model with the same recipe is already there."""
    model.trained_dir = root / model.name
    teacher = model.teacher.trained_dir if model.teacher else None
    start, started = time.time(), False

    def progress(phase: str, epoch: int, metrics: dict[str, float]) -> None:
        nonlocal started
        if not started:  # only a cache miss trains
            out.print(f"  {model.name}: training ({model.arch.to_str()[:80]}...)")
            started = True
        out.print(
            f"  {model.name}: epoch {epoch}/{config.epochs}  val AUC {metrics['auc']:.4f}  "
            f"loss {metrics.get('loss', float('nan')):.4f}  ({time.time() - start:.0f} s)"
        )

    result, reused = train_cached(model.arch, splits, config, model.trained_dir, teacher, progress)
    if reused:
        out.print(f"  {model.name}: trained, reused from {model.trained_dir}")
    else:
        out.print(
            f"  {model.name}: done in {time.time() - start:.0f} s, test AUC {result['test']['auc']:.4f}"
        )


# ---------------------------------------------------------------- measurement (one process)


Committed = tuple[list[dict[str, Any]], dict[str, bytes]]  # its rows and its ONNX files


def peak_kb(fp32_peak_bytes: int, precision: str) -> float:
    """Peak activation KB of a variant: measured at 4 bytes per activation; int8 stores 1
    (``nas.metrics.memory``)."""
    return fp32_peak_bytes / 1024 / (1 if precision == "fp32" else 4)


def read_committed(export_dir: Path, input_size: int) -> Committed:
    """An exported model's rows, with its card's test figures (not scored again), and its ONNX files;
    read before anything is trained, so that a wrong directory costs nothing."""
    try:
        card = json.loads((export_dir / "model_card.json").read_text())
        shape = card["deployment_contract"]["input"]["shape"]
        if shape[-1] != input_size:
            raise ValueError(f"its input is {shape}, not {input_size} px")
        files = {precision: f["file"] for precision, f in card["files"].items()}
        onnx = {f"{COMMITTED}/{p}": (export_dir / name).read_bytes() for p, name in files.items()}
        c = card["complexity"]
        rows = [
            {
                "name": COMMITTED,
                "role": f"the committed model ({export_dir})",
                "precision": precision,
                "arch": card["arch"],
                "params": c["params"],
                "macs": c["macs"],
                "peak_activation_kb": peak_kb(c["peak_activation_bytes"], precision),
                "onnx_bytes": len(onnx[f"{COMMITTED}/{precision}"]),
                "threshold": card["threshold"],
                "search": {},
                "test": card["clinical"][precision]["test"],
                "predicted": {},
                "predicted_ms": None,
            }
            for precision in files
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        refuse(f"--committed {export_dir}: not an exported model with its card ({exc})")
    return rows, onnx


def measure_all(
    models: list[Model], args: argparse.Namespace, table: Path | None, committed: Committed | None
) -> list[dict[str, Any]]:
    """Complexity, prediction, export and test score per model, then one interleaved timing of all."""
    from nas.export.format import ExportOptions
    from nas.export.predicted import predict, timing_settings
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
                    "peak_activation_kb": peak_kb(c.peak_activation_bytes, precision),
                    "onnx_bytes": len(data),
                    "threshold": source.threshold,
                    "search": model.search,
                    "pytorch_test": source.trained["test"],
                    "test": test,
                }
            )
    shape = source.input_shape
    if committed is not None:
        rows += committed[0]
        onnx.update(committed[1])
    out.print(f"  timing {len(onnx)} models + {len(references)} table references, {args.rounds} rounds")
    settings = timing_settings(predictions.values(), args.rounds, args.seed)
    timings = time_models({**onnx, **references}, shape, settings)
    reference_ms = timings[f"{REFERENCE}/fp32"].median_ms
    for row in rows:
        timing = timings[f"{row['name']}/{row['precision']}"]
        if row["name"] in predictions:  # the committed model is timed only
            predicted = predictions[row["name"]].result(timings)
            row["predicted"] = predicted
            row["predicted_ms"] = predicted.get("ms_drift_corrected", predicted.get("ms"))
        row["measured_ms"], row["spread_ms"] = timing.median_ms, timing.spread_ms
        row["ratio_to_resnet18"] = timing.median_ms / reference_ms
    return rows


# ---------------------------------------------------------------- search quality


def run_hypervolume(search: SearchSummary, random: SearchSummary | None) -> dict[str, Any]:
    """Hypervolume of both runs' feasible completed trials on (table latency down, val AUC up), scaled by
    the union's ranges, against a shared reference: the union's worst corner and the median random trial."""
    runs = {
        name: [[(t.latency_ms, t.val_auc) for t in completed(s)]]
        for name, s in (("search", search), ("random", random))
        if s is not None
    }
    labels = {"worst": "worst corner of all trials", "median": "median random trial"}
    result: dict[str, Any] = {"trials": {k: len(v[0]) for k, v in runs.items()}, "references": {}}
    for key, c in compare_hypervolumes(runs, "random").items():
        volumes = {run: v for run, (v,) in c.volumes.items()}
        result["references"][labels[key]] = {
            "point": c.reference,
            **volumes,
            "ratio": c.ratio("search", "random"),
        }
    return result


def main() -> None:
    args = parse_args()
    summary, config = read_run(args.run)
    random_summary = check_random_run(args.random_run, config) if args.random_run else None
    table = args.table or (Path(config.latency.table) if config.latency else None)
    committed = read_committed(args.committed, summary.input_size) if args.committed else None
    splits = load_dataset(args.data, summary.input_size)
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
    trials = completed(summary)
    final = finalized(args.run, trials)
    front = pareto_front(trials if final is None else final)
    if not front:
        refuse(f"{args.run} has no feasible completed trial: nothing was found")
    fidelity = "search" if final is None else "finalized"
    out.print(
        f"[bold]1. Found networks[/bold]: {len(front)} on the {fidelity} front of {args.run}, latency screen"
    )
    screen_archs = {
        REFERENCE: resolve_arch(REFERENCE),
        **{f"t{t.number}": ArchSpec.from_str(t.arch) for t in front},
    }
    screened = screen_latency(screen_archs, splits, args.rounds, args.seed)
    found = pick_found(front, screened, args)
    for m in found:
        s = m.search
        s["front"] = fidelity  # whose val AUC this is: the search's proxy or finalize's mean over seeds
        figures = f"{fidelity} val AUC {s['val_auc']:.4f}, table {s['table_ms']:.3f} ms"
        out.print(f"  {m.name}: {m.role}; {figures}")
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
    rows = measure_all(models, args, table, committed)
    caption = (
        f"{splits.name} test split ({len(splits.test)} images), epochs {args.epochs}, same recipe; "
        f"ONNX Runtime 1 thread batch 1, median of {args.rounds} interleaved rounds; "
        f"pred ms: table {table}, drift-corrected"
    )
    print_table(rows, caption)
    verdicts = print_verdicts(rows, {m.name: m.role for m in found + distilled}, args.max_latency_ratio)
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
        "front": fidelity,  # whose val AUC picked the found networks: the search's proxy or finalize's
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
