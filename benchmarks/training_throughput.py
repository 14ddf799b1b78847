"""Training throughput on this machine's cores: one process with 1 thread, with all threads, and one
1-thread process per core running side by side (how `nas search --workers N` uses the cores).

Each setting trains the same sampled candidates on the same data with ``evaluate_candidate`` and reports
images per second (training only); the aggregate of the parallel processes is their sum.

    .venv/bin/python benchmarks/training_throughput.py [--data pneumoniamnist] [--nets 4] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from nas.data import load_dataset
from nas.evaluate import TrainConfig, evaluate_candidate
from nas.space import SearchSpace


def _throughputs(args: argparse.Namespace, threads: int) -> list[float]:
    """Images per second of each sampled candidate, trained with ``threads`` torch threads."""
    splits = load_dataset(args.data, args.input_size)
    space = SearchSpace.from_yaml(args.space)
    rng = random.Random(args.seed)
    archs = [space.sample(rng) for _ in range(args.nets)]
    config = TrainConfig(
        epochs=args.epochs,
        max_train_samples=args.samples,
        batch_size=args.batch_size,
        seed=args.seed,
        threads=threads,
    )
    return [evaluate_candidate(arch, splits, config)["images_per_second"] for arch in archs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="pneumoniamnist")
    parser.add_argument("--space", default="mnasnet_small")
    parser.add_argument("--input-size", type=int, default=28)
    parser.add_argument("--nets", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(
        f"== training throughput, {args.nets} {args.space} nets at {args.input_size}x{args.input_size}, "
        f"{cores} cores, batch {args.batch_size}"
    )
    one = _throughputs(args, 1)
    print(f"1 process x 1 thread:  {statistics.median(one):7.1f} images/s (median over nets)")
    many = _throughputs(args, cores)
    print(
        f"1 process x {cores} threads: {statistics.median(many):7.1f} images/s  "
        f"({statistics.median(m / o for m, o in zip(many, one, strict=True)):.2f}x one thread)"
    )
    with ProcessPoolExecutor(cores, mp_context=get_context("spawn")) as pool:
        runs = list(pool.map(_throughputs, [args] * cores, [1] * cores))
    aggregate = [sum(per_net) for per_net in zip(*runs, strict=True)]
    print(
        f"{cores} processes x 1 thread: {statistics.median(aggregate):7.1f} images/s aggregate  "
        f"({statistics.median(a / o for a, o in zip(aggregate, one, strict=True)):.2f}x one thread)"
    )


if __name__ == "__main__":
    main()
