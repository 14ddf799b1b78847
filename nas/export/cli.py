"""``nas export``: a trained run, a trial of a search run, or an untrained arch, as deployable files and
a model card.

``add_export_command(subparsers)`` declares the command; ``nas.cli`` wires it in. Bad input raises a
``NasError``, which ``nas.cli.main`` prints as one line with exit code 2. Formats are plugins: what they
accept and what they print comes from them (``nas.export.format``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nas.argtypes import count, positive_int, ratio
from nas.export import FORMATS
from nas.export.format import CALIBRATION_METHODS

if TYPE_CHECKING:
    from nas.export.card import ModelCard


def add_export_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``nas export`` on the ``nas`` command's subparsers."""
    export = subparsers.add_parser(
        "export",
        help="export a trained or untrained network (ONNX, INT8, pruned) with a model card",
        description="Either RUN_DIR (a trained model directory, or a search run with --trial N or --best) "
        "or --arch for an untrained network (random init, seed 0).",
    )
    export.add_argument(
        "run_dir",
        nargs="?",
        type=Path,
        metavar="RUN_DIR",
        help="a 'nas train' output directory, or a search run directory (with summary.json)",
    )
    pick = export.add_mutually_exclusive_group()
    pick.add_argument("--trial", type=int, metavar="N", help="the trial of the search run RUN_DIR")
    pick.add_argument("--best", action="store_true", help="the best trial of the search run RUN_DIR")
    export.add_argument("--arch", metavar="ARCH_OR_NAME", help="an untrained arch string or reference name")
    export.add_argument(
        "--input-size", type=positive_int, metavar="R", help="--arch: image side or signal length (28)"
    )
    export.add_argument("--in-chans", type=positive_int, metavar="C", help="--arch: input channels (1)")
    export.add_argument("--num-classes", type=positive_int, metavar="K", help="--arch: classes (2)")
    export.add_argument(
        "--data",
        metavar="NAME_OR_PATH",
        help="dataset for calibration, fine-tuning and metrics (default: the one the run recorded)",
    )
    export.add_argument("--format", default="onnx", help=f"{' | '.join(FORMATS)} (default onnx)")
    export.add_argument(
        "--target", help="the CPU a compiling format builds for: host, aarch64 or a JSON file"
    )
    export.add_argument(
        "--tune", type=positive_int, metavar="TRIALS", help="tuning trials of a compiling format"
    )
    export.add_argument("--int8", action="store_true", help="also write an INT8 (static, QDQ) model")
    export.add_argument(
        "--calibration-images", type=positive_int, default=256, metavar="N", help="default 256"
    )
    export.add_argument(
        "--calibration-method",
        default="minmax",
        choices=CALIBRATION_METHODS,
        help="activation range calibration (default minmax)",
    )
    export.add_argument("--prune", type=ratio, metavar="RATIO", help="remove this share of channels")
    export.add_argument(
        "--finetune-epochs", type=count, default=3, metavar="N", help="after pruning (default 3)"
    )
    export.add_argument(
        "--round-to",
        type=positive_int,
        default=8,
        metavar="N",
        help="pruned widths: multiples of N (8; 1: exact)",
    )
    export.add_argument(
        "--table", type=Path, metavar="JSON", help="latency table or predictor for predicted latency"
    )
    export.add_argument("--rounds", type=positive_int, default=100, help="timing rounds (default 100)")
    export.add_argument("--threads", type=positive_int, help="torch threads for fine-tuning")
    export.add_argument("--seed", type=int, default=0, help="calibration sample and fine-tune seed")
    export.add_argument("--out", type=Path, metavar="DIR", help="output directory")
    export.set_defaults(func=cmd_export)
    return export


def cmd_export(args: argparse.Namespace) -> None:
    from nas.export.format import ExportOptions
    from nas.export.pipeline import check_format, run_export
    from nas.export.source import SourceRequest

    request = SourceRequest(  # cheap checks first: nothing is imported for the format or loaded yet
        run_dir=args.run_dir,
        arch=args.arch,
        trial=args.trial,
        best=args.best,
        data=args.data,
        input_size=args.input_size,
        in_chans=args.in_chans,
        num_classes=args.num_classes,
    )
    options = ExportOptions(
        out_dir=args.out,
        format=args.format,
        target=args.target,
        tune=args.tune,
        int8=args.int8,
        calibration_images=args.calibration_images,
        calibration_method=args.calibration_method,
        prune=args.prune,
        finetune_epochs=args.finetune_epochs,
        round_to=args.round_to,
        table=args.table,
        rounds=args.rounds,
        threads=args.threads,
        seed=args.seed,
    )
    fmt = check_format(options)  # before anything is loaded or built
    source = request.load()
    card = run_export(source, options, fmt)
    _print_summary(card, options.out_dir or source.default_out)


def _print_summary(card: ModelCard, out: Path) -> None:
    from nas.export.card import format_sections

    lat = card.latency.measured_ms
    lines = [
        f"exported {card.arch} ({card.complexity.params:,} params) to {out}",
        f"parity vs PyTorch: max abs diff {card.parity['fp32_max_abs_diff']:.2e}",
        "latency (ORT, 1 thread): " + ", ".join(f"{k} {v['median_ms']:.3f} ms" for k, v in lat.items()),
    ]
    if card.int8 is not None:
        q = card.int8
        line = f"int8: size x{q.size_ratio:.3f}, latency x{q.latency_ratio:.3f}"
        if q.metric_deltas:
            line += f", test AUC {q.metric_deltas['test']['auc']:+.4f}"
        lines.append(line)
    if card.pruning is not None:
        p = card.pruning
        line = f"pruned: params x{p.params_ratio:.3f}, latency x{p.latency_ratio:.3f}"
        if p.metric_deltas:
            line += f", test AUC {p.metric_deltas['test']['auc']:+.4f}"
        lines.append(line)
    for name, section in format_sections(card).items():
        lines.append(FORMATS.get(name).summary(section))
    print("\n".join(line for line in lines if line), file=sys.stdout)
