"""``nas search EXPERIMENT.yaml``: run or resume a search and write its reports."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.argtypes import positive_float, positive_int
from nas.resources import bundled_names
from nas.search import config as config_module
from nas.search.config import ExperimentConfig, load_experiment

if TYPE_CHECKING:
    from nas.search.run import TrialCallback
    from nas.search.summary import SearchSummary
    from nas.search.verified import VerifyRecord


def registered_names() -> str:
    """The names the registries hold now, plugins included (``nas plugins`` says where each comes from)."""
    from nas.data import DATASETS
    from nas.evaluate.protocols import PROTOCOLS
    from nas.search.strategies import STRATEGIES

    return (
        f"\nRegistered strategies: {', '.join(STRATEGIES)}.\nRegistered evaluation protocols: "
        f"{', '.join(PROTOCOLS)}.\nRegistered datasets: {', '.join(DATASETS)}.\n"
    )


def add_search_command(commands: Any) -> None:
    search = commands.add_parser(
        "search",
        help="run (or resume) a search described by an experiment YAML file",
        description="Run a search; running the same command again resumes it.",
        epilog="Experiment YAML keys:\n"
        + (config_module.__doc__ or "").split("Keys", 1)[1]
        + registered_names(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument(
        "experiment",
        help=f"experiment file, or a bundled experiment's name ({', '.join(bundled_names('experiments'))})",
    )
    search.add_argument("--trials", type=positive_int, help="total finished trials of the study")
    search.add_argument("--timeout", type=positive_float, help="seconds for this invocation")
    search.add_argument("--storage", help="Optuna storage URL (default sqlite:///<out>/study.db)")
    search.add_argument("--workers", type=positive_int, help="worker processes sharing the study")
    search.add_argument("--out", help="run directory")
    search.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> None:
    from nas.search.runner import run_experiment

    overrides = {k: getattr(args, k) for k in ("trials", "timeout", "storage", "workers", "out")}
    config = load_experiment(args.experiment, overrides)
    out = Path(config.out)
    summary = run_experiment(config, monitor=trial_progress, finalize_progress=final_progress)
    _print_results(out, summary)
    if config.finalize is not None:
        from nas.search.final import read_final

        record = read_final(out)
        if record is not None:
            _print_final(out, record)
    if summary.verify is not None:
        _print_verify(out, summary.verify)


def add_finalize_command(commands: Any) -> None:
    from nas.search.config import PICKS
    from nas.search.finalize import DEFAULTS

    finalize = commands.add_parser(
        "finalize",
        help="train a search run's best candidates with the full recipe on several seeds, rank them again",
        description="Train the top N of RUN's Pareto front (pareto mode; --pick spread: N members spread "
        "over it) or of its reward (reward mode) with the experiment's training settings for --epochs "
        "epochs on --seeds seeds, score them on val (and test, for the report only) and rank them again "
        "by the mean val figure. Writes RUN/final.json, "
        "final_* columns in pareto.csv and summary.json's final_best, which 'nas train RUN --best' then "
        "uses. Trained directories are reused: running it again trains nothing twice.",
    )
    finalize.add_argument("run_dir", metavar="RUN", help="a search run directory (with summary.json)")
    finalize.add_argument(
        "--top", type=int, default=DEFAULTS.top, metavar="N", help=f"candidates (default {DEFAULTS.top})"
    )
    finalize.add_argument(
        "--seeds", type=int, default=DEFAULTS.seeds, metavar="R", help=f"seeds (default {DEFAULTS.seeds})"
    )
    finalize.add_argument(
        "--epochs",
        type=int,
        default=DEFAULTS.epochs,
        metavar="E",
        help=f"final training epochs (default {DEFAULTS.epochs})",
    )
    finalize.add_argument(
        "--recipe",
        choices=("final", "plain"),
        default=DEFAULTS.recipe,
        help="final: the training settings plus the recipe scaled to the data (step floor, ...); plain: "
        f"the settings as they are (default {DEFAULTS.recipe})",
    )
    finalize.add_argument(
        "--min-steps",
        type=int,
        default=DEFAULTS.min_steps,
        metavar="S",
        help=f"the final recipe's floor of optimizer steps, for small sets (default {DEFAULTS.min_steps})",
    )
    finalize.add_argument(
        "--workers",
        type=positive_int,
        metavar="W",
        help="trainings at once, one single-threaded process each (default: the run's workers)",
    )
    finalize.add_argument(
        "--pick",
        choices=PICKS,
        default=DEFAULTS.pick,
        help="pareto mode: best, the front's top N by the reward when there is one, else its first trained "
        f"objective; spread, N members spread over the front, its best first (default {DEFAULTS.pick})",
    )
    finalize.set_defaults(func=cmd_finalize)


def cmd_finalize(args: argparse.Namespace) -> None:
    from nas.search.finalize import finalize_run

    record = finalize_run(
        args.run_dir,
        args.top,
        args.seeds,
        args.epochs,
        progress=final_progress,
        workers=args.workers,
        recipe=args.recipe,
        min_steps=args.min_steps,
        pick=args.pick,
    )
    _print_final(Path(args.run_dir), record)


def add_verify_command(commands: Any) -> None:
    from nas.search.verify import DEFAULT_TOP

    verify = commands.add_parser(
        "verify",
        help="time a search run's best nets whole on its latency table's backend, beside the prediction",
        description="Measure the top N nets of RUN (the finalists first when it was finalized, then the "
        "front or the reward) whole on the backend and settings its latency table was built with (this "
        "machine, or the board over RPC), drift-corrected by the table's anchor. Writes RUN/verify.json, "
        "measured_latency_ms in pareto.csv, summary.json's verify and the plot, as 'latency: {verify: N}' "
        "does at the end of a search. Nets already measured are not measured again.",
    )
    verify.add_argument("run_dir", metavar="RUN", help="a search run directory (with summary.json)")
    verify.add_argument(
        "--top",
        type=int,
        metavar="N",
        help=f"nets to measure (default: the experiment's latency.verify, else {DEFAULT_TOP})",
    )
    verify.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> None:
    from nas.search.verify import verify_run

    _print_verify(Path(args.run_dir), verify_run(args.run_dir, args.top))


def final_progress(number: int, seed: int, reused: bool) -> None:
    from nas.console import console

    console().print(f"final training: trial {number}, seed {seed}" + (" (reused)" if reused else ""))


def _print_final(out: Path, record: Any) -> None:
    from rich.table import Table

    from nas.console import console

    def pm(mean: float | None, std: float | None) -> str:
        return "-" if mean is None else f"{mean:.4f}" + ("" if std is None else f" ± {std:.4f}")

    table = Table(
        title=f"finalized ({record.pick} {len(record.trials)}): {record.epochs} epochs x {record.seeds} "
        f"seed(s), ranked by final {record.rank_by}"
    )
    own_score = record.rank_by != "val_auc"  # a reward: its final value gets a column of its own
    columns = ["rank", "search rank", "trial", f"search {record.rank_by}"]
    columns += [f"final {record.rank_by}"] if own_score else []
    for column in (*columns, "final val_auc", "final test_auc", "arch"):
        table.add_column(column, overflow="fold")
    for t in record.trials:
        score = ["-" if t.score is None else f"{t.score:.4f}"] if own_score else []
        table.add_row(
            str(t.final_rank),
            str(t.search_rank),
            str(t.number),
            "-" if t.search_score is None else f"{t.search_score:.4f}",
            *score,
            pm(t.val.get("val_auc"), t.val_std.get("val_auc")),
            pm(t.test.get("test_auc"), t.test_std.get("test_auc")),
            t.arch,
        )
    shown = console()
    shown.print(table)
    shown.print(f"  {out / 'final.json'}  (test figures are reported only; the ranking uses val)")


def _print_verify(out: Path, record: VerifyRecord) -> None:
    from rich.table import Table

    from nas.console import console

    where = f"{record.backend}" + (f", table of {record.device}" if record.device else "")
    table = Table(title=f"verified: the top {len(record.nets)} by {record.rank_by}, measured ({where})")
    for column in ("trial", "predicted ms", "measured ms", "measured / predicted", "arch"):
        table.add_column(column, overflow="fold")
    for net in record.nets:
        table.add_row(
            str(net.number), f"{net.predicted_ms:.4g}", f"{net.measured_ms:.4g}", f"{net.ratio:.3f}", net.arch
        )
    shown = console()
    shown.print(table)
    tau = "-" if record.kendall_tau is None else f"{record.kendall_tau:.3f}"
    shown.print(f"Kendall tau (predicted vs measured): {tau}")
    if record.order_changed:
        shown.print(
            "[bold yellow]warning:[/] the measured latency orders these nets otherwise than the table: "
            "re-rank them by measured_latency_ms (pareto.csv), or adapt the table to this device"
        )
    shown.print(f"  {out / 'verify.json'}")


@contextmanager
def trial_progress(config: ExperimentConfig) -> Iterator[list[TrialCallback]]:
    """A progress bar over the study's finished trials, with the best reward so far."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from nas.search.run import FINISHED

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

        yield [update]


def _print_results(out: Path, summary: SearchSummary) -> None:
    from rich.console import Console
    from rich.table import Table

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
    if summary.rungs:  # the last key is the last step: trained to the end
        steps = [f"step {step}: {n}" for step, n in summary.rungs.items()]
        console.print(f"candidates trained to (multi-fidelity rungs, then complete): {', '.join(steps)}")
    for name in ("trials.csv", "pareto.csv", "pareto.png", "summary.json", "config.yaml"):
        console.print(f"  {out / name}")
    console.print(f"storage: {summary.storage}  (optuna-dashboard {summary.storage})")
