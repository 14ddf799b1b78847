"""``nas search EXPERIMENT.yaml``: run or resume a search and write its reports."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from nas.errors import UsageError
from nas.search import config as config_module
from nas.search.config import ExperimentConfig, load_experiment

# What must not change between a run and its resumption (trials, timeout and workers may).
IDENTITY_KEYS = (
    "training",
    "name",
    "space",
    "dataset",
    "input_size",
    "latency",
    "mode",
    "reward",
    "objectives",
    "constraints",
)
REFERENCES = ("mnasnet_a1", "mobilenet_v2", "mnasnet0_5")


def add_search_command(commands: Any) -> None:
    search = commands.add_parser(
        "search",
        help="run (or resume) a search described by an experiment YAML file",
        description="Run a search; running the same command again resumes it.",
        epilog="Experiment YAML keys:\n" + (config_module.__doc__ or "").split("Keys", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument(
        "experiment",
        help="experiment file, or a bundled experiment's name (quickstart, demo, pneumoniamnist)",
    )
    search.add_argument("--trials", type=int, help="total finished trials of the study")
    search.add_argument("--timeout", type=float, help="seconds for this invocation")
    search.add_argument("--storage", help="Optuna storage URL (default sqlite:///<out>/study.db)")
    search.add_argument("--workers", type=int, help="worker processes sharing the study")
    search.add_argument("--out", help="run directory")
    search.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> None:
    overrides = {k: getattr(args, k) for k in ("trials", "timeout", "storage", "workers", "out")}
    config = load_experiment(args.experiment, overrides)
    out = Path(config.out)
    record_config(config, out)
    from nas.search.factory import default_objective

    default_objective(config)  # fail here, in the parent, on a bad table or missing data
    study = _run_with_progress(config)
    _print_results(config, out, study)


def record_config(config: ExperimentConfig, out: Path) -> None:
    """Write the resolved config; refuse a run directory that holds a different experiment."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.yaml"
    resolved = config.model_dump(mode="json")
    if path.exists():
        previous = yaml.safe_load(path.read_text()) or {}
        changed = [k for k in IDENTITY_KEYS if previous.get(k) != resolved.get(k)]
        if changed:
            raise UsageError(
                f"{out} holds another experiment ({', '.join(changed)} differ); use another --out"
            )
    path.write_text(yaml.safe_dump(resolved, sort_keys=False))


def _run_with_progress(config: ExperimentConfig):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from nas.search.factory import default_objective
    from nas.search.run import FINISHED, run_search

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best reward {task.fields[best]}"),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task(config.name, total=config.trials, best="-")

        def update(study, trial) -> None:
            trials = study.get_trials(deepcopy=False, states=FINISHED)
            rewards = [t.user_attrs["reward"] for t in trials if t.user_attrs.get("reward") is not None]
            progress.update(task, completed=len(trials), best=f"{max(rewards):.4f}" if rewards else "-")

        return run_search(config, default_objective, callbacks=[update])


def _print_results(config: ExperimentConfig, out: Path, study) -> None:
    from rich.console import Console
    from rich.table import Table

    from nas.search.report import write_report

    summary = write_report(study, config, out, reference_metrics(config))
    axes = summary.pareto_axes
    table = Table(title=f"Pareto front ({' vs '.join(axes)})")
    for column in ("trial", *axes, "reward", "arch"):
        table.add_column(column, overflow="fold")
    for row in summary.pareto:
        table.add_row(
            str(row.number),
            *(f"{getattr(row, a):.4g}" for a in axes),
            "-" if row.reward is None else f"{row.reward:.4f}",
            row.arch,
        )
    console = Console()
    console.print(table)
    console.print(f"trials: {json.dumps(summary.counts)}")
    for name in ("trials.csv", "pareto.csv", "pareto.png", "summary.json", "config.yaml"):
        console.print(f"  {out / name}")
    console.print(f"storage: {summary.storage}  (optuna-dashboard {summary.storage})")


def reference_metrics(config: ExperimentConfig) -> dict[str, dict[str, float]]:
    """Cheap metrics of a few reference networks, for the plot. Their latency is the table's prediction
    where it can price them, else measured here on the table's scale (see ``measure_nets``)."""
    from nas.latency.validate import measure_nets
    from nas.search.factory import dataset_shape, latency_table
    from nas.search.objective import cheap_metrics
    from nas.zoo import resolve_arch

    in_chans, num_classes = dataset_shape(config, None)
    table = latency_table(config)
    found, unpriced = {}, {}
    for name in REFERENCES:
        arch = resolve_arch(name)
        try:
            found[name] = cheap_metrics(arch, in_chans, config.input_size, num_classes, None)
        except ValueError:
            continue  # an input too small for the network
        if table is not None:
            try:
                found[name]["latency_ms"] = table.predict(arch)
            except ValueError:  # blocks outside the table's space
                unpriced[name] = arch
    if unpriced:
        for name, ms in measure_nets(table, unpriced).items():
            found[f"{name} (measured)"] = {**found.pop(name), "latency_ms": ms}
    return found
