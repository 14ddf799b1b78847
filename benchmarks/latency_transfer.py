"""A new device from 20 measured networks (issue 16's figures): another device's table carried over
(``nas latency adapt``), a predictor fitted with no table (``nas latency fit``), the source table only
rescaled, and a full table built on the target, each judged on held-out networks timed on the target.

The devices are what this machine offers as distinct targets (``--targets``): ``ort1`` (ONNX Runtime
fp32, 1 thread), ``ort2`` (2 threads) and ``tvm`` (TVM untuned, LLVM, 1 thread). For each target it
builds the full table (``nas latency build``'s code, resumable), times ``--learn`` random nets (what a
user measures on a new device) and ``--held-out`` other random nets, each set whole and interleaved with
the space's anchor (``nas latency measure``'s code). For each ordered pair ``SOURCE:TARGET``
(``--pairs``) it prints, on the held-out nets, Kendall tau and the share within ±10 % of:

- ``source scaled``: the source's table times one factor fitted on the learned nets (its order is the
  source's: what no adaptation gives);
- ``adapted``: ``adapt(source table, learned nets)``;
- ``fitted``: ``fit_predictor(learned nets)``, no table;
- ``target table``: the full table built on the target.

Held-out timings are drift-corrected as ``nas latency validate`` does: put on each predictor's scale by
the anchor (timed with them, and with the learned nets or at the table's build). Printed beside: device
seconds spent measuring the learned nets against building the target's table, as a ratio. Goal: tau >=
0.85 and >= 80 % within ±10 % from 20 nets, for at least four pairs including ort1:tvm and tvm:ort1.

Everything lands in ``--cache`` (``<target>-r<rounds>.json`` tables, ``<target>-learn<n>-r<rounds>.csv``
and ``<target>-held<n>-r<rounds>.csv`` with their sidecars, ``seconds.json``) and is reused by a rerun
with the same sizes and rounds; ``results.json`` holds the figures.

    python benchmarks/latency_transfer.py                  # mnasnet_small, 28x28, 1 channel, 2 classes
    python benchmarks/latency_transfer.py --targets ort1 ort2 --pairs ort1:ort2 ort2:ort1 \\
        --learn 8 --held-out 20 --rounds 20 --cache /tmp/lt   # smoke run, about a minute

How long (2 cores, nothing else running): an ONNX Runtime table of mnasnet_small at 28x28 (2,258
blocks) takes minutes; TVM compiles every block, about an hour; the net sets take seconds on ONNX
Runtime and a few minutes on TVM (one compile per net). Run it on a quiet machine: the targets are timed
one after another, so load that comes and goes moves one target's figures and not another's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nas.arch import ArchSpec
from nas.argtypes import positive_int
from nas.latency import measured
from nas.latency.backends import make_backend
from nas.latency.backends.base import Backend, Settings
from nas.latency.build import anchor_arch, build_table, sample_distinct
from nas.latency.predictors.adapted import adapt
from nas.latency.predictors.fitted import fit_predictor
from nas.latency.table import LatencyTable
from nas.latency.validate import kendall_tau, within
from nas.resources import find_shipped
from nas.space import SearchSpace

TARGETS: dict[str, Callable[[], Backend]] = {
    "ort1": lambda: make_backend("ort", threads=1),
    "ort2": lambda: make_backend("ort", threads=2),
    "tvm": lambda: make_backend("tvm", threads=1),
}
DEFAULT_PAIRS = ("ort1:tvm", "tvm:ort1", "ort1:ort2", "ort2:ort1", "ort2:tvm", "tvm:ort2")
GOAL_TAU, GOAL_WITHIN = 0.85, 0.80


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mnasnet_small")
    parser.add_argument("--input-size", type=positive_int, default=28)
    parser.add_argument("--in-chans", type=positive_int, default=1)
    parser.add_argument("--num-classes", type=positive_int, default=2)
    parser.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=["ort1", "ort2", "tvm"])
    parser.add_argument("--pairs", nargs="+", default=None, help="SOURCE:TARGET (default: every pair)")
    parser.add_argument("--learn", type=positive_int, default=20, help="nets measured to learn from")
    parser.add_argument("--held-out", type=positive_int, default=200, help="nets to judge on")
    parser.add_argument("--rounds", type=positive_int, default=100, help="timing rounds (as build)")
    parser.add_argument(
        "--draws", type=int, default=30, help="other learned sets drawn from all measured nets (0: none)"
    )
    parser.add_argument("--cache", type=Path, default=Path("runs/latency_transfer"))
    args = parser.parse_args()
    pairs = args.pairs or [p for p in DEFAULT_PAIRS if set(p.split(":")) <= set(args.targets)]
    for pair in pairs:
        source, _, target = pair.partition(":")
        if source not in args.targets or target not in args.targets or source == target:
            parser.error(f"pair '{pair}' must be SOURCE:TARGET, two different --targets")
    args.pairs = pairs
    return args


class Cache:
    """The benchmark's files, and the device seconds each one took (``seconds.json``)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.seconds_path = root, root / "seconds.json"
        self.seconds = json.loads(self.seconds_path.read_text()) if self.seconds_path.is_file() else {}

    def timed(self, name: str, work: Callable[[], None]) -> None:
        start = time.time()
        work()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.time() - start
        self.seconds_path.write_text(json.dumps(self.seconds, indent=1) + "\n")


def net_sets(space: SearchSpace, learn: int, held_out: int) -> tuple[list[ArchSpec], list[ArchSpec]]:
    """Learned and held-out nets: distinct, never the anchor, the same for every target."""
    learned = sample_distinct(space, learn, "latency-transfer-learn", {anchor_arch(space)})
    held = sample_distinct(space, held_out, "latency-transfer-held", {anchor_arch(space), *learned})
    return learned, held


def device_data(
    name: str, space: SearchSpace, args: argparse.Namespace, cache: Cache
) -> tuple[LatencyTable, measured.Measured, measured.Measured]:
    """The target's full table, learned nets and held-out nets: measured now unless cached. The nets
    come first: on TVM they take minutes and the table an hour, and the pairs into a target need only
    its nets."""
    backend, settings = TARGETS[name](), Settings(rounds=args.rounds)
    shape = (args.input_size, args.in_chans, args.num_classes)
    learned, held = net_sets(space, args.learn, args.held_out)
    sets = []
    for label, archs in (("learn", learned), ("held", held)):
        path = cache.root / f"{name}-{label}{len(archs)}-r{args.rounds}.csv"
        if not path.is_file():
            print(f"  {name}: timing {len(archs)} {label} nets", flush=True)
            cache.timed(
                path.stem,
                lambda archs=archs, path=path: measured.save(
                    measured.measure_archs(space, archs, *shape, backend, f"bench-{name}", settings), path
                ),
            )
        sets.append(measured.load(path))
    table_path = cache.root / f"{name}-r{args.rounds}.json"
    table = LatencyTable.load(table_path) if table_path.is_file() else None
    if table is None or table.calibration is None:  # a killed build resumes where it stopped
        print(f"  {name}: building the full table", flush=True)
        cache.timed(
            table_path.stem,
            lambda: build_table(space, *shape, backend, f"bench-{name}", table_path, measure=settings),
        )
        table = LatencyTable.load(table_path)
    return table, sets[0], sets[1]


def on_scale(held: measured.Measured, anchor_ms: float) -> dict[ArchSpec, float]:
    """Held-out timings moved to a scale whose anchor took ``anchor_ms``: the drift correction."""
    drift = held.sidecar.anchor["median_ms"] / anchor_ms
    return {arch: ms / drift for arch, ms in held.nets}


def scaled(table: LatencyTable, learned: measured.Measured) -> Callable[[ArchSpec], float]:
    """The source table times one factor: least squares on relative error over the learned nets."""
    q = np.array([table.predict(arch) / ms for arch, ms in learned.nets])
    factor = float(np.sum(q) / np.sum(q**2))  # argmin_k sum_i (k * q_i - 1)^2
    return lambda arch: factor * table.predict(arch)


def pair_rows(
    source: LatencyTable, target: tuple[LatencyTable, measured.Measured, measured.Measured], target_name: str
) -> dict[str, dict[str, float]]:
    table, learned, held = target
    learned_scale = on_scale(held, learned.sidecar.anchor["median_ms"])
    table_scale = on_scale(held, table.anchor["median_ms"])
    predictors = {
        "source scaled": (scaled(source, learned), learned_scale),
        "adapted": (adapt(source, learned, target_name).predict, learned_scale),
        "fitted": (fit_predictor(learned).predict, learned_scale),
        "target table": (table.predict, table_scale),
    }
    rows = {}
    for label, (predict, truth) in predictors.items():
        archs = list(truth)
        predicted, measured_ms = [predict(a) for a in archs], [truth[a] for a in archs]
        rows[label] = {
            "tau": kendall_tau(predicted, measured_ms),
            "within_10pct": within(predicted, measured_ms),
        }
    return rows


def redrawn_rows(
    source: LatencyTable,
    target: tuple[LatencyTable, measured.Measured, measured.Measured],
    target_name: str,
    draws: int,
) -> dict[str, dict[str, float]]:
    """``adapted`` and ``fitted`` learned from ``draws`` other random sets of as many nets, drawn from all
    the target's measured nets (learned and held-out, on the learned anchor's scale), each judged on the
    rest: how much the figures depend on which nets a user happens to measure."""
    _, learned, held = target
    pool = list(learned.nets) + list(on_scale(held, learned.sidecar.anchor["median_ms"]).items())
    found: dict[str, list[tuple[float, float]]] = {"adapted": [], "fitted": []}
    for draw in range(draws):
        order = np.random.default_rng(draw).permutation(len(pool))
        chosen = measured.Measured([pool[i] for i in order[: len(learned.nets)]], learned.sidecar)
        judged = [pool[i] for i in order[len(learned.nets) :]]
        truth = [ms for _, ms in judged]
        for label, predictor in (
            ("adapted", adapt(source, chosen, target_name)),
            ("fitted", fit_predictor(chosen)),
        ):
            predicted = [predictor.predict(arch) for arch, _ in judged]
            found[label].append((kendall_tau(predicted, truth), within(predicted, truth)))
    rows = {}
    for label, figures in found.items():
        tau, share = np.array(figures).T
        rows[label] = {
            "tau_mean": float(tau.mean()),
            "tau_min": float(tau.min()),
            "within_10pct_mean": float(share.mean()),
            "within_10pct_std": float(share.std()),
            "within_10pct_min": float(share.min()),
        }
    return rows


def main() -> None:
    args = parse_args()
    space = SearchSpace.from_yaml(find_shipped(args.space, "search_spaces"))
    cache = Cache(args.cache)
    print(
        f"latency_transfer: {space.name} at {args.input_size}px, {args.in_chans} channel(s), "
        f"{args.num_classes} classes; targets {', '.join(args.targets)}; learn {args.learn} nets, "
        f"judge on {args.held_out}; {args.rounds} rounds; cache {args.cache}",
        flush=True,
    )
    data = {name: device_data(name, space, args, cache) for name in args.targets}
    figures, lines = {}, []
    for pair in args.pairs:
        source_name, _, target_name = pair.partition(":")
        rows = pair_rows(data[source_name][0], data[target_name], target_name)
        learn_s, table_s = (
            cache.seconds.get(f"{target_name}-learn{args.learn}-r{args.rounds}"),
            cache.seconds.get(f"{target_name}-r{args.rounds}"),
        )
        cost = f"{learn_s / table_s:.4f}" if learn_s and table_s else "n/a (measured in an earlier run)"
        met = rows["adapted"]["tau"] >= GOAL_TAU and rows["adapted"]["within_10pct"] >= GOAL_WITHIN
        figures[pair] = {**rows, "device_seconds": {"learn": learn_s, "table": table_s}, "adapted_met": met}
        lines.append(f"\n{pair}  (device time, {args.learn} nets / full table: {cost})")
        lines += [
            f"  {label:14s} tau {r['tau']:.3f}   within ±10 % {r['within_10pct']:.0%}"
            for label, r in rows.items()
        ]
        goal = f"goal (adapted: tau >= {GOAL_TAU}, >= {GOAL_WITHIN:.0%} within)"
        lines.append(f"  {goal}: {'met' if met else 'NOT met'}")
        if args.draws:
            drawn = redrawn_rows(data[source_name][0], data[target_name], target_name, args.draws)
            lines.append(f"  {args.draws} other draws of {args.learn} learned nets, each judged on the rest:")
            lines += [
                f"  {label:14s} tau {r['tau_mean']:.3f} (min {r['tau_min']:.3f})   within ±10 % "
                f"{r['within_10pct_mean']:.0%} ± {r['within_10pct_std']:.0%} "
                f"(min {r['within_10pct_min']:.0%})"
                for label, r in drawn.items()
            ]
            drawn_met = (
                drawn["adapted"]["tau_mean"] >= GOAL_TAU
                and drawn["adapted"]["within_10pct_mean"] >= GOAL_WITHIN
            )
            figures[pair].update(draws=drawn, adapted_met_on_average=drawn_met)
            lines.append(f"  {goal}, on average over the draws: {'met' if drawn_met else 'NOT met'}")
    (args.cache / "results.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
