"""`nas demo`: the whole loop a new user should see once, on real data when it is here.

By default it is ``nas auto`` on PneumoniaMNIST with a five-minute budget (``--budget``): search, finalize,
export with the model card, re-measure, summary; running it again goes on with (or reprints) the same run.
Given an experiment or its knobs (``--experiment``, ``--trials``, ``--timeout``, ``--epochs``) it runs
that experiment step by step as the public commands a user would type next (``nas search``, ``nas train
--best``, ``nas export``), with the experiment written beside the results. Without the PneumoniaMNIST
file the demo says how to get it and runs on generated images.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from nas.argtypes import positive_float, positive_int
from nas.console import console
from nas.errors import DataError
from nas.outdir import writable_dir

REAL_DATA = "pneumoniamnist"


def add_demo_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    demo = subparsers.add_parser(
        "demo",
        help="search, retrain and export on PneumoniaMNIST (generated data if it is missing)",
        description="Search, retrain and export on PneumoniaMNIST (generated images if it is missing).",
    )
    demo.add_argument(
        "--experiment",
        help="run this experiment step by step instead of nas auto (file or bundled name; with --trials, "
        "--timeout or --epochs alone: experiments/demo.yaml, shipped with the package)",
    )
    demo.add_argument(
        "--data", metavar="NAME_OR_PATH", help="dataset (default: PneumoniaMNIST where it is found)"
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="default runs/demo")
    demo.add_argument("--trials", type=positive_int, help="search trials (default: the experiment's)")
    demo.add_argument("--timeout", type=positive_int, help="search seconds (default: the experiment's)")
    demo.add_argument("--epochs", type=positive_int, help="final training epochs (default 15)")
    demo.add_argument(
        "--budget", type=positive_float, default=5.0, metavar="MINUTES", help="nas auto's budget (default 5)"
    )
    demo.set_defaults(func=cmd_demo)
    return demo


def demo_dataset(data: str | None, size: int = 28) -> dict[str, str]:
    """The experiment's ``dataset`` entry: the one asked for, else PneumoniaMNIST where it is found,
    else generated images (after saying how to get the real file)."""
    if data is not None:
        from nas.data import DATASETS, load_dataset

        load_dataset(data, size)  # a bad name or path is the user's error: fail now, in one line
        return {"name": data} if data.lower() in DATASETS else {"path": data}
    from nas.data.medmnist import find_file

    try:
        console().print(f"[bold]data:[/] {find_file(REAL_DATA, size)}")
        return {"name": REAL_DATA}
    except DataError as exc:
        console().print(f"[yellow]PneumoniaMNIST is missing:[/] {exc}")
        console().print("[yellow]The demo goes on with generated X-ray-like images (dataset: synthetic).[/]")
        return {"name": "synthetic"}


def write_experiment(experiment: str, dataset: dict[str, str], out: Path) -> Path:
    """The demo experiment with its dataset and run folder filled in, written to ``out``."""
    from nas.resources import find_experiment

    data = yaml.safe_load(find_experiment(experiment).read_text())
    data.update({"dataset": dataset, "out": str(out / "search")})
    path = writable_dir(out, "the demo") / "experiment.yaml"
    try:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def cmd_demo(args: argparse.Namespace) -> None:
    if all(getattr(args, k) is None for k in ("experiment", "trials", "timeout", "epochs")):
        auto_demo(args)
    else:
        experiment_demo(args)


def auto_demo(args: argparse.Namespace) -> None:
    """``nas auto`` on the demo data into ``--out``, resuming (or reprinting) a demo already there."""
    from nas.auto.cli import print_summary
    from nas.auto.run import AutoRequest, run_auto
    from nas.search.cli import final_progress

    dataset = demo_dataset(args.data)
    writable_dir(args.out.parent, "the demo")
    if args.out.exists() and not args.out.is_dir():
        raise DataError(f"cannot write the demo to {args.out}: it is a file, not a folder")
    request = AutoRequest(
        data=dataset.get("name") or dataset["path"], budget_minutes=args.budget, out=args.out, resume=True
    )
    say = console().print
    print_summary(run_auto(request, say=lambda text: say(text, markup=False), final_progress=final_progress))


def experiment_demo(args: argparse.Namespace) -> None:
    from nas.cli import main as run

    args.experiment = args.experiment or "experiments/demo.yaml"
    args.epochs = args.epochs or 15
    out: Path = args.out
    from nas.search.config import load_experiment

    size = load_experiment(args.experiment).input_size  # a bad file: one line, before anything runs
    experiment = write_experiment(args.experiment, demo_dataset(args.data, size), out)
    search = ["search", str(experiment)]
    for flag, value in (("--trials", args.trials), ("--timeout", args.timeout)):
        if value is not None:
            search += [flag, str(value)]
    final, export = out / "final", out / "export"
    threads = str(os.cpu_count() or 1)  # the final training on every core
    steps = [
        ("search", search),
        (
            "train the best",
            [
                "train",
                str(out / "search"),
                "--best",
                "--epochs",
                str(args.epochs),
                "--threads",
                threads,
                "--out",
                str(final),
            ],
        ),
        ("export to ONNX", ["export", str(final), "--format", "onnx", "--out", str(export)]),
    ]
    for title, argv in steps:
        console().rule(f"[bold]{title}:[/] nas {' '.join(argv)}")
        code = run(["--debug", *argv] if args.debug else argv)  # each step as the user would type it
        if code != 0:
            raise SystemExit(code)
    console().rule("[bold]done")
    for what, path in (
        ("experiment", experiment),
        ("search results (trials.csv, pareto.csv, summary.json)", out / "search"),
        ("Pareto plot", out / "search" / "pareto.png"),
        ("trained best network (metrics.json, weights.pt)", final),
        ("ONNX model and model card", export),
    ):
        console().print(f"{what}: {path}")
