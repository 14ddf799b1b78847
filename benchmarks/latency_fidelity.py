"""Latency-table fidelity: ORT, 1 thread, MnasNet space, 64x64 and 224x224, 50 held-out nets each.

Builds each table (or finishes / reuses it: builds resume) under ``latency_tables/<device>/``, then
validates it on held-out random nets timed whole, interleaved with the anchor network, twice. Prints
the drift-corrected headline (>= 95 % within ±10 %, Kendall tau >= 0.90 is the goal), the absolute
figure and the noise floor beside it.

    .venv/bin/python benchmarks/latency_fidelity.py [--device NAME] [--sizes 64 224] [--nets 50]
"""

from __future__ import annotations

import argparse
import time

from nas.latency.backends import make_backend
from nas.latency.build import build_table
from nas.latency.table import default_table_path
from nas.latency.validate import format_report, validate
from nas.space import SearchSpace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="dev-epyc-2core", help="table folder name for this machine")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--nets", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-classes", type=int, default=10, help="MedMNIST-like (default 10)")
    args = parser.parse_args()

    space = SearchSpace.from_yaml("mnasnet")
    backend = make_backend("ort", threads=1)
    for size in args.sizes:
        path = default_table_path(args.device, space.name, size)
        start = time.perf_counter()
        table = build_table(space, size, 3, args.num_classes, backend, args.device, path)
        built = time.perf_counter() - start
        start = time.perf_counter()
        report = validate(table, nets=args.nets, seed=args.seed, backend=backend)
        checked = time.perf_counter() - start
        cal = table.calibration
        print(
            f"== mnasnet {size}x{size}, ORT {backend.version}, 1 thread, {args.num_classes} classes: {path}"
        )
        print(f"table: {len(table.entries)} blocks, build/resume {built:.0f} s; validation {checked:.0f} s")
        print(f"calibration: leave-one-out MAPE {cal.loo_mape:.1%} on {cal.n} nets")
        print(f"held-out nets: {report['n']} (seed {args.seed})")
        print(format_report(report), flush=True)


if __name__ == "__main__":
    main()
