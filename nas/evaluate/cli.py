"""``nas train``: final training of one architecture, from a search run or given directly.

``add_train_command(subparsers)`` declares the command; ``nas.cli`` wires it in. Bad input raises a
``NasError``, which ``nas.cli.main`` prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.argtypes import finite_float, positive_int
from nas.errors import UsageError
from nas.evaluate.augment import FLIPS
from nas.evaluate.config import CLASS_WEIGHTING, OPTIMIZERS
from nas.evaluate.recipe import MIN_STEPS
from nas.search.summary import read_search_run

if TYPE_CHECKING:
    from nas.data.splits import Splits

DEFAULT_EPOCHS = 50


def add_train_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``nas train`` on the ``nas`` command's subparsers."""
    train = subparsers.add_parser(
        "train",
        help="train one architecture fully, select on val, evaluate once on test",
        description="Either RUN_DIR with --trial N or --best (a search run), or --arch with --data.",
    )
    train.add_argument(
        "run_dir", nargs="?", metavar="RUN_DIR", help="a search run directory (with summary.json)"
    )
    pick = train.add_mutually_exclusive_group()
    pick.add_argument("--trial", type=int, metavar="N", help="the trial number to train from RUN_DIR")
    pick.add_argument(
        "--best",
        action="store_true",
        help="train RUN_DIR's best trial (by the final val figures once 'nas finalize' ran)",
    )
    train.add_argument(
        "--arch", metavar="ARCH_OR_NAME", help="a reference network name (see 'nas zoo') or an arch string"
    )
    train.add_argument(
        "--data",
        metavar="NAME_OR_PATH",
        help="a registered dataset name (pneumoniamnist, synthetic, a plugin's: see 'nas plugins'), a .npz "
        "file in MedMNIST's layout or an image folder",
    )
    train.add_argument(
        "--input-size", type=positive_int, metavar="N", help="image side (default 28, or the run's)"
    )
    train.add_argument(
        "--epochs", type=positive_int, default=DEFAULT_EPOCHS, help=f"default {DEFAULT_EPOCHS}"
    )
    train.add_argument("--batch-size", type=positive_int, default=128, help="default 128")
    train.add_argument("--lr", type=finite_float, default=1e-3, help="learning rate (default 1e-3)")
    train.add_argument("--weight-decay", type=finite_float, default=1e-4, help="default 1e-4")
    train.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS, help="default adamw")
    train.add_argument(
        "--class-weighting",
        default="none",
        choices=CLASS_WEIGHTING,
        help="imbalance: loss weights or a balanced sampler",
    )
    train.add_argument(
        "--recipe",
        choices=("final", "plain"),
        default="final",
        help="final (default): these settings plus the recipe scaled to the data (a step floor; class "
        "weights for a balanced metric on imbalanced data: nas.evaluate.recipe), each only where left at "
        "its default; plain: these settings as they are",
    )
    train.add_argument(
        "--min-steps",
        type=int,
        default=MIN_STEPS,
        metavar="S",
        help=f"the final recipe's floor of optimizer steps for small sets (default {MIN_STEPS})",
    )
    train.add_argument(
        "--flips",
        default="none",
        choices=FLIPS,
        help="mirror training images (default none: a flip swaps a patient's left and right)",
    )
    train.add_argument("--no-augment", action="store_true", help="no augmentation at all")
    train.add_argument(
        "--refit",
        action="store_true",
        help="once val has chosen the epoch, train again on train + val for as many passes and keep that "
        "model (val figures and threshold stay the first training's)",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--threads", type=positive_int, help="torch threads (default: all cores)")
    train.add_argument(
        "--device", default="auto", help="torch device: auto (CUDA when present, else cpu), cpu, cuda, cuda:N"
    )
    train.add_argument(
        "--teacher",
        metavar="ARCH_OR_DIR",
        help="knowledge distillation: a trained model directory or an arch/name",
    )
    train.add_argument("--kd-temperature", type=finite_float, default=4.0, help="default 4")
    train.add_argument(
        "--kd-alpha", type=finite_float, default=0.9, help="weight of the soft loss (default 0.9)"
    )
    train.add_argument(
        "--out", metavar="DIR", help="output directory (default runs/train/... or RUN_DIR/final/...)"
    )
    train.set_defaults(func=cmd_train)
    return train


def _resolve(args: argparse.Namespace) -> tuple[str, str, int, Path | None]:
    """(arch, data, input size, output directory) from either form of the command; the directory is None
    when it is named after the data (``default_out``)."""
    if args.run_dir is not None:
        if args.arch is not None:
            raise UsageError("give either RUN_DIR (with --trial N or --best) or --arch, not both")
        run = read_search_run(args.run_dir, args.trial, args.best)
        data = args.data or run["dataset"]
        size = args.input_size or run["input_size"]
        out = Path(args.out or Path(args.run_dir) / "final" / f"trial_{run['number']}")
        return run["arch"], data, size, out
    if args.trial is not None or args.best:
        raise UsageError("--trial and --best need a search RUN_DIR")
    if args.arch is None or args.data is None:
        raise UsageError(
            "give RUN_DIR with --trial N or --best, or --arch ARCH_OR_NAME with --data NAME_OR_PATH"
        )
    return args.arch, args.data, args.input_size or 28, Path(args.out) if args.out else None


def default_out(arch: str, data: str, splits: Splits) -> Path:
    """``runs/train/<data>_<side or length>/<reference name or arch hash>``."""
    from nas.zoo import REFERENCES

    label = arch if arch in REFERENCES else "arch-" + hashlib.sha1(arch.encode()).hexdigest()[:10]
    return Path("runs") / "train" / f"{Path(data).stem}_{splits.input_size}" / label


def cmd_train(args: argparse.Namespace) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nas.data import load_dataset
    from nas.evaluate.config import TrainConfig
    from nas.evaluate.recipe import final_recipe
    from nas.evaluate.train import train_final
    from nas.zoo import resolve_arch

    arch_text, data, size, out = _resolve(args)
    arch = resolve_arch(arch_text)  # bad arch fails before the data is read
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        class_weighting=args.class_weighting,
        augment=not args.no_augment,
        flips=args.flips,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        kd_temperature=args.kd_temperature,
        kd_alpha=args.kd_alpha,
        refit=args.refit,
    )
    splits = load_dataset(data, size)
    out = out or default_out(arch_text, data, splits)
    if args.recipe == "final":
        config = final_recipe(config, splits, args.min_steps)
    from nas.console import console as make_console

    console = make_console()
    console.print(
        f"[bold]{splits.name}[/] {splits.task}, {splits.describe_shape()}, train/val/test "
        f"{len(splits.train)}/{len(splits.val)}/{len(splits.test)}; arch {arch.to_str()}"
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("{task.fields[status]}"), console=console) as progress:
        tasks: dict[str, Any] = {}

        def on_epoch(phase: str, epoch: int, metrics: dict[str, float]) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=config.epochs, status="")
            status = (
                f"loss {metrics['loss']:.4f}  val AUC {metrics['auc']:.4f}  ACC {metrics['accuracy']:.4f}"
            )
            progress.update(tasks[phase], completed=epoch, status=status)

        metrics = train_final(arch, splits, config, out, teacher=args.teacher, progress=on_epoch)
    _print_result(console, metrics, out)


def _print_result(console: Any, metrics: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    rows = [("", metrics)]
    if "kd" in metrics:
        kd = metrics["kd"]
        rows = [("teacher ", kd["teacher"]), ("no KD ", kd["without_kd"]), ("with KD ", kd["with_kd"])]
    names = ("auc", "accuracy", "sensitivity", "specificity", "balanced_accuracy", "ece")
    table = Table(
        title=f"best epoch {metrics['best_epoch']}, threshold chosen on val: {metrics['threshold']}"
    )
    table.add_column("split")
    for name in names:
        table.add_column(name, justify="right")
    for label, source in rows:
        for split in ("val", "test"):
            values = source[split]
            table.add_row(label + split, *(f"{values[n]:.4f}" if n in values else "-" for n in names))
    console.print(table)
    console.print(
        f"{metrics['images_per_second']:.0f} images/s on {metrics['threads']} thread(s); wrote {out}"
    )
