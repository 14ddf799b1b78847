"""``nas auto --data NAME_OR_PATH --budget MINUTES --out DIR``: the whole pipeline in one command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nas.argtypes import positive_float, positive_int

TEST_SHOWN = (
    "auc",
    "accuracy",
    "accuracy_at_threshold",
    "balanced_accuracy",
    "macro_f1",
    "sensitivity",
    "specificity",
)


def add_auto_command(commands: Any) -> None:
    from nas.latency.backends import BACKENDS

    auto = commands.add_parser(
        "auto",
        help="your data in, a deployable hardware-aware model out, within a time budget",
        description="Inspect the data, get a latency table for the device and data shape, search under "
        "the latency budget, finalize the best candidates, export the best with its model card, re-measure "
        "it on the device against a reference network, and print one summary. The experiment it runs is "
        "written to DIR/experiment.yaml; --resume goes on with a killed run.",
    )
    auto.add_argument(
        "--data",
        required=True,
        metavar="NAME_OR_PATH",
        help="a registered name (a MedMNIST set, ecg5000), .npz, image folder or UCR/UEA signal files",
    )
    auto.add_argument(
        "--budget", required=True, type=positive_float, metavar="MINUTES", help="wall time for it all"
    )
    auto.add_argument("--out", required=True, type=Path, metavar="DIR", help="the run directory")
    device = auto.add_mutually_exclusive_group()
    device.add_argument(
        "--table", type=Path, help="a latency table or predictor (its space and input size are used)"
    )
    device.add_argument("--backend", choices=BACKENDS.names(), help="measure on this backend (default ort)")
    auto.add_argument("--device", help="device name of the table (default: this CPU, backend and threads)")
    auto.add_argument("--threads", type=positive_int, default=1, help="inference threads (default 1)")
    auto.add_argument("--target", help="TVM target: 'host' or a JSON object (tvm, tvm-rpc)")
    auto.add_argument("--rpc-host", help="TVM RPC server or tracker host (tvm-rpc)")
    auto.add_argument("--rpc-port", type=positive_int, help="TVM RPC port (tvm-rpc)")
    auto.add_argument("--rpc-key", help="TVM RPC tracker key of the board (tvm-rpc)")
    budget = auto.add_mutually_exclusive_group()
    budget.add_argument("--max-latency-ms", type=positive_float, metavar="X", help="latency budget in ms")
    budget.add_argument(
        "--latency-ratio",
        type=positive_float,
        metavar="R",
        help="latency budget: R x the reference network's latency on the device (default 0.05 for images, "
        "0.2 for signals)",
    )
    auto.add_argument(
        "--reference",
        metavar="NET",
        help="reference network (default resnet18_medmnist for images, resnet1d_wang for signals)",
    )
    auto.add_argument(
        "--objective",
        default="auc",
        help="validation metric to maximize: auc (default), accuracy, balanced_accuracy, or "
        "sensitivity@spec=0.9 (binary: sensitivity at the threshold keeping that specificity)",
    )
    auto.add_argument(
        "--input-size",
        type=positive_int,
        metavar="R",
        help="square side images are resized to, or the signals' length (checked, never resampled); default: "
        "the table's, a .npz file's or a signal's own, else 28",
    )
    auto.add_argument("--int8", action="store_true", help="also export an INT8 model")
    auto.add_argument("--format", default="onnx", help="export format (onnx, tvm, executorch; default onnx)")
    auto.add_argument("--resume", action="store_true", help="go on with the run in DIR")
    auto.set_defaults(func=cmd_auto)


def cmd_auto(args: argparse.Namespace) -> None:
    from nas.auto.device import DeviceRequest
    from nas.auto.run import AutoRequest, run_auto
    from nas.console import console
    from nas.search.cli import final_progress

    options = {
        "target": args.target,
        "rpc_host": args.rpc_host,
        "rpc_port": args.rpc_port,
        "rpc_key": args.rpc_key,
    }
    request = AutoRequest(
        data=args.data,
        budget_minutes=args.budget,
        out=args.out,
        objective=args.objective,
        max_latency_ms=args.max_latency_ms,
        latency_ratio=args.latency_ratio,
        reference=args.reference,
        int8=args.int8,
        format=args.format,
        input_size=args.input_size,
        device=DeviceRequest(
            table=args.table,
            backend=args.backend or "ort",
            device=args.device,
            threads=args.threads,
            options=tuple((k, v) for k, v in options.items() if v is not None),
        ),
        resume=args.resume,
    )
    say = console().print
    shown: dict[str, int] = {}

    def table_progress(phase: str, done: int, total: int) -> None:
        """A line per tenth of each build phase (a full table takes minutes)."""
        tenth = done * 10 // max(total, 1)
        if shown.get(phase) != tenth:
            shown[phase] = tenth
            say(f"  latency table: {phase} {done}/{total}", markup=False)

    summary = run_auto(
        request,
        say=lambda text: say(text, markup=False),
        final_progress=final_progress,
        table_progress=table_progress,
    )
    print_summary(summary)


def print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    from nas.console import console

    model, latency, budget = summary["model"], summary["latency"], summary["budget"]
    test = model["test"]
    table = Table(title="nas auto", show_header=False)
    data = summary["data"]
    table.add_row("data", f"{data['name']} ({data['task']}, {data['classes']} classes, {data['shape']})")
    table.add_row("model", f"trial {model['trial']}: {model['arch']}")
    table.add_row("size", f"{model['params']:,} params, {model['weight_bytes'] / 1024:.1f} KB weights, "
                  f"peak activation {model['peak_activation_kb']:.1f} KB")  # fmt: skip
    table.add_row(
        "test", ", ".join(f"{k} {test[k]:.4f}" for k in TEST_SHOWN if isinstance(test.get(k), float))
    )
    reference = summary["reference"]
    if reference["trained"]:
        ref = reference["test"]
        shown = ", ".join(f"{k} {ref[k]:.4f}" for k in TEST_SHOWN if isinstance(ref.get(k), float))
        table.add_row(f"{reference['name']}, same recipe", shown)
    else:
        table.add_row(
            f"{reference['name']}",
            f"not trained: about {reference['estimate_s'] / 60:.0f} min, too long for the budget",
        )
    for net, figures in reference["published"].items():
        table.add_row(f"published {net}", ", ".join(f"{k} {_figure(v)}" for k, v in figures.items()))
    table.add_row(
        "latency",
        f"{latency['model_ms']:.3f} ms vs {summary['reference']['name']} {latency['reference_ms']:.3f} ms: "
        f"1/{1 / latency['ratio']:.0f} (budget {summary['latency_budget_ms']:.3f} ms)",
    )
    table.add_row("time", f"{budget['spent_minutes']:.1f} of {budget['minutes']:g} minutes")
    for what, path in summary["files"].items():
        table.add_row(what, path)
    console().print(table)


def _figure(value: float | list[float]) -> str:
    """A published figure, or the range of several reports (``0.931-0.934``)."""
    return "-".join(f"{v:.3f}" for v in value) if isinstance(value, list | tuple) else f"{value:.3f}"
