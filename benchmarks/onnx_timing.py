"""Exported ONNX models timed against each other: batch 1, one thread, interleaved in one process.

A latency ratio holds only within one run on one machine (the timing regime and the machine's load move
absolute times: the same ResNet-18 took 4.8 ms on one machine and 10.4 ms on another). Whether a new
model beats a committed one on latency is therefore decided by timing both here, side by side, with the
models round-robin in shuffled order (``nas.export.runtime.time_models``, the settings of the latency
tables: 2 ms warm samples). Printed: per model its median, interquartile range and ratio to the first.

    .venv/bin/python benchmarks/onnx_timing.py resnet18=r18/model.onnx \\
        committed=experiments/results/pneumoniamnist/model.onnx new=export/model.onnx [--rounds 300]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pneumoniamnist_report import ratio_text

from nas.argtypes import positive_int
from nas.export.runtime import time_models
from nas.latency.backends.base import Settings
from nas.onnxrt import session


def named_model(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=PATH")
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such file")
    return name, Path(path)


def batch_one_shape(onnx_bytes: bytes) -> tuple[int, ...]:
    """The model's input shape with its (dynamic) batch dimension set to 1."""
    shape = session(onnx_bytes).get_inputs()[0].shape
    return (1, *shape[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=named_model, help="NAME=PATH.onnx; ratios are to the first")
    parser.add_argument("--rounds", type=positive_int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = [name for name, _ in args.models]
    if len(set(names)) < len(names):
        parser.error("each model needs its own NAME")
    models = {name: path.read_bytes() for name, path in args.models}
    shapes = {name: batch_one_shape(data) for name, data in models.items()}
    if len(set(shapes.values())) > 1:
        parser.error(f"the models take different inputs: {shapes}")
    timings = time_models(models, shapes[names[0]], Settings(rounds=args.rounds, seed=args.seed))
    first = timings[names[0]].median_ms
    print(f"ONNX Runtime, 1 thread, batch 1, input {shapes[names[0]]}, {args.rounds} interleaved rounds")
    print(f"| model | median ms | IQR ms | vs {names[0]} |\n|---|---:|---:|---:|")
    for name, path in args.models:
        t = timings[name]
        ratio = ratio_text(t.median_ms / first)
        print(f"| {name} ({path}) | {t.median_ms:.4f} | {t.spread_ms:.4f} | {ratio} |")


if __name__ == "__main__":
    main()
