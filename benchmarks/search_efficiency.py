"""Search efficiency: hypervolume of each strategy against random search, at equal trial budgets.

Objectives (cheap, so many seeds fit in minutes): table latency on this machine (minimize) and a fixed,
training-free accuracy predictor, the NASWOT score (Mellor et al., "Neural Architecture Search without
Training", ICML 2021: log-determinant of the kernel of ReLU activation patterns over one batch of
images; it correlates with trained accuracy). Every strategy runs as the search runs it (its Optuna
sampler, ``SearchSpace.suggest``); nsga2 optimizes both objectives, evolution and mnasnet-rl the MnasNet
soft reward on them (tpe is run on the same reward), random ignores them. Hypervolume is measured in
objective space scaled by the range of all points any run found, against two reference points: the
worst corner of all points (every candidate counts) and the median random network (only candidates
better than a typical random one on both objectives count).

    python benchmarks/search_efficiency.py [--trials 100] [--seeds 5] [--table PATH]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from pathlib import Path

import optuna
import torch
import zero_cost

from nas.arch import ArchSpec
from nas.builder import build_model
from nas.data.splits import model_input
from nas.data.synthetic import synthetic_splits
from nas.latency.table import LatencyTable
from nas.search.config import RewardConfig, StrategyConfig
from nas.search.hypervolume import Comparison, compare_hypervolumes
from nas.search.reward import reward
from nas.search.strategies import make_sampler
from nas.space import SearchSpace

STRATEGIES = ("random", "tpe", "nsga2", "evolution", "mnasnet-rl")
DEFAULT_TABLE = "latency_tables/dev-epyc-2core/mnasnet_small-28.json"


def naswot(arch: ArchSpec, images: torch.Tensor) -> float:
    """NASWOT score of the untrained ``arch`` on ``images`` (``zero_cost.naswot``, the paper's definition)."""
    torch.manual_seed(0)
    model = build_model(arch, in_chans=images.shape[1], num_classes=2)
    return zero_cost.naswot(model, (images, None, None))


class Objectives:
    """Cached (latency ms, NASWOT score) of an arch."""

    def __init__(self, table: LatencyTable, images: torch.Tensor) -> None:
        self.table, self.images, self.cache = table, images, {}

    def __call__(self, arch: ArchSpec) -> tuple[float, float]:
        key = arch.to_str()
        if key not in self.cache:
            self.cache[key] = (self.table.predict(arch), naswot(arch, self.images))
        return self.cache[key]


def run(strategy: str, seed: int, trials: int, space: SearchSpace, objectives: Objectives, target: float):
    """One search; the (latency, score) of every trial."""
    pareto = strategy == "nsga2"
    config = StrategyConfig(name=strategy, population=20, sample_size=5)
    sampler = make_sampler(config, space, seed)
    directions = ["minimize", "maximize"] if pareto else ["maximize"]
    study = optuna.create_study(directions=directions, sampler=sampler)
    soft = RewardConfig(type="mnasnet_soft", target=target)  # MnasNet's soft reward on the proxy accuracy
    points = []

    def objective(trial: optuna.Trial):
        latency, score = objectives(space.suggest(trial))
        points.append((latency, score))
        value = reward({soft.accuracy: score, soft.latency: latency}, soft)
        trial.set_user_attr("reward", value)
        return (latency, score) if pareto else value

    study.optimize(objective, n_trials=trials)
    return points


def times(comparison: Comparison, strategy: str) -> str:
    """``strategy``'s mean hypervolume as a multiple of random search's."""
    ratio = comparison.ratio(strategy, "random")
    return "-" if ratio is None else f"{ratio:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mnasnet_small")
    parser.add_argument("--table", default=DEFAULT_TABLE)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    space = SearchSpace.from_yaml(args.space)
    table = LatencyTable.load(Path(args.table))
    splits = synthetic_splits(table.input_size, n_train=64, n_val=8, n_test=8, seed=0)
    images = torch.from_numpy(model_input(splits.train.inputs))
    objectives = Objectives(table, images)
    rng = random.Random(12345)
    target = statistics.median(objectives(space.sample(rng))[0] for _ in range(30))  # MnasNet's T
    start = time.time()
    runs = {
        s: [run(s, seed, args.trials, space, objectives, target) for seed in range(args.seeds)]
        for s in STRATEGIES
    }
    comparisons = compare_hypervolumes(runs, "random")
    labels = {"worst": "worst corner of all points", "median": "median random net"}
    print(f"space {space.name}, {args.trials} trials x {args.seeds} seeds, table {args.table}")
    print(
        f"objectives: table latency (ms, min) and NASWOT score (max); {len(objectives.cache)} distinct nets"
    )
    for key, comparison in comparisons.items():
        reference = comparison.reference
        where = f"latency {reference[0]:.3f} ms, score {reference[1]:.1f}"
        print(f"\nhypervolume, reference point: {labels[key]} ({where})")
        print(f"{'strategy':<12} {'mean':>8} {'std':>8} {'vs random':>10}")
        for strategy, values in comparison.volumes.items():
            mean, std = comparison.mean(strategy), statistics.stdev(values) if len(values) > 1 else math.nan
            print(f"{strategy:<12} {mean:>8.4f} {std:>8.4f} {times(comparison, strategy):>10}")
        best = max((s for s in STRATEGIES if s != "random"), key=comparison.mean)
        print(f"best strategy: {best}, {times(comparison, best)} random (goal >= 1.2x)")
    print(f"wall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
