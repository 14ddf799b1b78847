"""A new device from 20 measured networks (issue 16's figures): another device's table carried over
(``nas latency adapt``), a predictor fitted with no table (``nas latency fit``), the source table only
rescaled, and a full table built on the target, each judged on held-out networks timed on the target.

The devices are what this machine offers as distinct targets (``--targets``): ``ort1`` (ONNX Runtime
fp32, 1 thread), ``ort2`` (2 threads) and ``tvm`` (TVM untuned, LLVM, 1 thread). For each target it
times ``--learn-sets`` sets of ``--learn`` random nets, each set on its own (what a user measures on a
new device, and how much it matters which nets and when), then ``--held-out`` other random nets, each
set whole and interleaved with the space's anchor (``nas latency measure``'s code), and builds the full
table (``nas latency build``'s code, resumable). For each ordered pair ``SOURCE:TARGET`` (``--pairs``)
it prints, on the held-out nets, Kendall tau and the share within ±10 % of:

- ``source scaled``: the source's table times one factor fitted on the learned nets (its order is the
  source's: what no adaptation gives);
- ``adapted``: ``adapt(source table, learned nets)``;
- ``fitted``: ``fit_predictor(learned nets)``, no table;
- ``target table``: the full table built on the target.

The first three are learned from each set in turn: the mean over the sets is printed, their range
beside it. Held-out timings are drift-corrected as ``nas latency validate`` does: put on each
predictor's scale by the anchor (timed with them, and with the learned set or at the table's build).
Printed beside: device seconds spent measuring the first learned set against building the target's
table, as a ratio. Goal: tau >= 0.85 and >= 80 % within ±10 % from 20 nets (the mean over the sets),
for at least four pairs including ort1:tvm and tvm:ort1.

Everything lands in ``--cache`` (``<target>-<timing>.json`` tables, ``<target>-learn<n>-<timing>.csv``,
``<target>-learn<n>-s<i>-<timing>.csv`` for the other learned sets and ``<target>-held<n>-<timing>.csv``
with their sidecars, ``seconds.json``; ``<timing>`` is ``r<rounds>-w<sample ms>``, or ``r<rounds>`` for
single-run samples) and is reused by a rerun with the same sizes and timing; ``results.json`` holds the
figures.

    python benchmarks/latency_transfer.py                  # mnasnet_small, 28x28, 1 channel, 2 classes
    python benchmarks/latency_transfer.py --sample-ms 2 tvm=0   # the README's figures: TVM single runs
    python benchmarks/latency_transfer.py --targets ort1 ort2 --pairs ort1:ort2 ort2:ort1 \\
        --learn 8 --learn-sets 2 --held-out 20 --rounds 20 --cache /tmp/lt   # smoke run, minutes

How long (2 cores, nothing else running): an ONNX Runtime table of mnasnet_small at 28x28 (2,258
blocks) takes 10 minutes in 2 ms samples (2 minutes one run at a time); TVM compiles every block, about
an hour; the net sets take seconds on ONNX Runtime and a few minutes on TVM (one compile per net). Run
it on a quiet machine: the targets are timed one after another, so load that comes and goes moves one
target's figures and not another's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nas.arch import ArchSpec
from nas.argtypes import non_negative_float, positive_int
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
RUN_SETTINGS = (
    "space", "input_size", "in_chans", "num_classes", "learn", "learn_sets", "held_out", "rounds", "sample_ms"
)  # fmt: skip


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
        "--sample-ms",
        nargs="+",
        default=[],
        metavar="MS|TARGET=MS",
        help=f"timed sample length as build's, for every target or one (default {Settings.sample_ms:g}; "
        "0: single runs, cold in cache)",
    )
    parser.add_argument(
        "--learn-sets", type=positive_int, default=5, help="sets of --learn nets, each timed on its own"
    )
    parser.add_argument("--cache", type=Path, default=Path("runs/latency_transfer"))
    args = parser.parse_args()
    pairs = args.pairs or [p for p in DEFAULT_PAIRS if set(p.split(":")) <= set(args.targets)]
    for pair in pairs:
        source, _, target = pair.partition(":")
        if source not in args.targets or target not in args.targets or source == target:
            parser.error(f"pair '{pair}' must be SOURCE:TARGET, two different --targets")
    args.pairs = pairs
    args.sample_ms = sample_lengths(parser, args.sample_ms, args.targets)
    return args


def sample_lengths(parser: argparse.ArgumentParser, given: list[str], targets: list[str]) -> dict[str, float]:
    """``--sample-ms 2 tvm=0`` as ``{target: ms}``: a bare value for every target, ``TARGET=MS`` for one."""
    default, lengths = Settings.sample_ms, {}
    for text in given:
        target, _, value = text.rpartition("=")
        if target and target not in targets:
            parser.error(f"--sample-ms {text}: '{target}' is not one of --targets")
        try:
            ms = non_negative_float(value)
        except argparse.ArgumentTypeError as error:
            parser.error(f"--sample-ms {text}: {error}")
        if target:
            lengths[target] = ms
        else:
            default = ms
    return {name: lengths.get(name, default) for name in targets}


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


def net_sets(
    space: SearchSpace, learn: int, held_out: int, learn_sets: int
) -> tuple[list[list[ArchSpec]], list[ArchSpec]]:
    """Learned sets and held-out nets: distinct, never the anchor, the same for every target."""
    anchor = anchor_arch(space)
    learned = [sample_distinct(space, learn, "latency-transfer-learn", {anchor})]
    held = sample_distinct(space, held_out, "latency-transfer-held", {anchor, *learned[0]})
    for i in range(1, learn_sets):
        taken = {anchor, *held, *(arch for archs in learned for arch in archs)}
        learned.append(sample_distinct(space, learn, f"latency-transfer-learn-{i}", taken))
    return learned, held


def device_data(
    name: str, space: SearchSpace, args: argparse.Namespace, cache: Cache
) -> tuple[LatencyTable, list[measured.Measured], measured.Measured]:
    """The target's full table, learned sets and held-out nets: measured now unless cached, each set on
    its own, as a user would time 20 nets on a new device. The nets come first: on TVM they take minutes
    and the table an hour, and the pairs into a target need only its nets."""
    backend, settings = TARGETS[name](), Settings(rounds=args.rounds, sample_ms=args.sample_ms[name])
    shape = (args.input_size, args.in_chans, args.num_classes)
    learned, held = net_sets(space, args.learn, args.held_out, args.learn_sets)
    named = [(f"learn{len(archs)}" + (f"-s{i}" if i else ""), archs) for i, archs in enumerate(learned)]
    sets = []
    for label, archs in [*named, (f"held{len(held)}", held)]:
        path = cache.root / f"{name}-{label}-{timing_tag(args, name)}.csv"
        if not path.is_file():
            print(f"  {name}: timing {len(archs)} nets ({label})", flush=True)
            cache.timed(
                path.stem,
                lambda archs=archs, path=path: measured.save(
                    measured.measure_archs(space, archs, *shape, backend, f"bench-{name}", settings), path
                ),
            )
        found = measured.load(path)
        if [arch for arch, _ in found.nets] != archs:
            raise SystemExit(
                f"{path} holds other nets than this run's (other --learn or --held-out?): use another --cache"
            )
        sets.append(found)
    table_path = cache.root / f"{name}-{timing_tag(args, name)}.json"
    table = LatencyTable.load(table_path) if table_path.is_file() else None
    if table is None or table.calibration is None:  # a killed build resumes where it stopped
        print(f"  {name}: building the full table", flush=True)
        cache.timed(
            table_path.stem,
            lambda: build_table(space, *shape, backend, f"bench-{name}", table_path, measure=settings),
        )
        table = LatencyTable.load(table_path)
    return table, sets[:-1], sets[-1]


def timing_tag(args: argparse.Namespace, target: str) -> str:
    """``r100-w2`` (100 rounds of 2 ms warm samples) in cache names; ``r100`` for single runs."""
    ms = args.sample_ms[target]
    return f"r{args.rounds}" + (f"-w{ms:g}" if ms else "")


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
    source: LatencyTable,
    target: tuple[LatencyTable, list[measured.Measured], measured.Measured],
    target_name: str,
) -> dict[str, dict[str, Any]]:
    """Kendall tau and the share within ±10 % on the held-out nets, for each predictor: per learned set
    (``per_set``, and their mean, min and max), and for the target's table."""
    table, learned_sets, held = target
    found: dict[str, list[tuple[float, float]]] = {"source scaled": [], "adapted": [], "fitted": []}
    for learned in learned_sets:
        truth = on_scale(held, learned.sidecar.anchor["median_ms"])
        predictors = {
            "source scaled": scaled(source, learned),
            "adapted": adapt(source, learned, target_name).predict,
            "fitted": fit_predictor(learned).predict,
        }
        for label, predict in predictors.items():
            found[label].append(judge(predict, truth))
    found["target table"] = [judge(table.predict, on_scale(held, table.anchor["median_ms"]))]
    rows = {}
    for label, figures in found.items():
        tau, share = np.array(figures).T
        rows[label] = {
            "tau": float(tau.mean()),
            "within_10pct": float(share.mean()),
            "tau_range": [float(tau.min()), float(tau.max())],
            "within_10pct_range": [float(share.min()), float(share.max())],
            "per_set": [{"tau": float(t), "within_10pct": float(w)} for t, w in figures],
        }
    return rows


def judge(predict: Callable[[ArchSpec], float], truth: dict[ArchSpec, float]) -> tuple[float, float]:
    archs = list(truth)
    predicted, measured_ms = [predict(a) for a in archs], [truth[a] for a in archs]
    return kendall_tau(predicted, measured_ms), within(predicted, measured_ms)


def shown(row: dict[str, Any]) -> str:
    """``tau 0.912 (0.890-0.930)   within ±10 % 80% (70-86%)``; no range for a single figure."""
    tau, share = row["tau_range"], row["within_10pct_range"]
    spread = tau[0] != tau[1] or share[0] != share[1]
    tau_range = f" ({tau[0]:.3f}-{tau[1]:.3f})" if spread else ""
    share_range = f" ({share[0] * 100:.0f}-{share[1]:.0%})" if spread else ""
    return f"tau {row['tau']:.3f}{tau_range}   within ±10 % {row['within_10pct']:.0%}{share_range}"


def main() -> None:
    args = parse_args()
    space = SearchSpace.from_yaml(find_shipped(args.space, "search_spaces"))
    cache = Cache(args.cache)
    print(
        f"latency_transfer: {space.name} at {args.input_size}px, {args.in_chans} channel(s), "
        f"{args.num_classes} classes; targets {', '.join(args.targets)}; {args.learn_sets} sets of "
        f"{args.learn} nets learned from, each timed on its own; judged on {args.held_out} others; "
        f"{args.rounds} rounds; samples (ms, 0: single runs) {args.sample_ms}; "
        f"cache {args.cache}",
        flush=True,
    )
    data = {name: device_data(name, space, args, cache) for name in args.targets}
    figures, lines = {}, []
    for pair in args.pairs:
        source_name, _, target_name = pair.partition(":")
        rows = pair_rows(data[source_name][0], data[target_name], target_name)
        learn_s, table_s = (
            cache.seconds.get(f"{target_name}-learn{args.learn}-{timing_tag(args, target_name)}"),
            cache.seconds.get(f"{target_name}-{timing_tag(args, target_name)}"),
        )
        cost = f"{learn_s / table_s:.4f}" if learn_s and table_s else "n/a (measured in an earlier run)"
        met = rows["adapted"]["tau"] >= GOAL_TAU and rows["adapted"]["within_10pct"] >= GOAL_WITHIN
        figures[pair] = {**rows, "device_seconds": {"learn": learn_s, "table": table_s}, "adapted_met": met}
        lines.append(f"\n{pair}  (device time, {args.learn} nets / full table: {cost})")
        lines += [f"  {label:14s} {shown(r)}" for label, r in rows.items()]
        goal = f"goal (adapted, mean over the learned sets: tau >= {GOAL_TAU}, >= {GOAL_WITHIN:.0%} within)"
        lines.append(f"  {goal}: {'met' if met else 'NOT met'}")
    run = {k: getattr(args, k) for k in RUN_SETTINGS}
    (args.cache / "results.json").write_text(json.dumps({"run": run, "pairs": figures}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
