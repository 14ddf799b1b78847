"""Fidelity of a table on this machine: predicted vs measured latency of held-out random nets.

The nets are drawn from a seed stream other than the calibration set's, and timed whole, interleaved
with the table's anchor network and a few calibration nets, in two passes. Dividing each pass by how
much slower those references run now than at build time removes the machine's drift since the build
(the headline figures); the raw figures are reported too, and the two passes against each other give
the measurement noise floor.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nas.arch import ArchSpec
from nas.errors import ConfigError
from nas.latency.backends import BACKENDS, make_backend
from nas.latency.backends.base import Backend, Settings
from nas.latency.build import ANCHOR, net_item, sample_distinct
from nas.latency.table import LatencyTable

if TYPE_CHECKING:
    from nas.latency.predictors.base import Predictor

TOLERANCE = 0.10


def backend_from_provenance(provenance: dict[str, Any]) -> Backend:
    """The backend that built a table, set up as it was (a TVM target, a board's RPC address). Every
    table this package ever wrote names its backend; one that does not cannot be re-measured."""
    name = provenance.get("backend")
    if not isinstance(name, str) or not name:
        raise ConfigError("latency table does not name its backend (provenance.backend)")
    rebuild = getattr(BACKENDS.get(name), "options_from_provenance", None)  # optional for a plugin
    options = rebuild(provenance) if rebuild is not None else {}
    given = {key: value for key, value in options.items() if value is not None}
    return make_backend(name, threads=provenance.get("threads", 1), **given)


def measure_nets(
    table: LatencyTable | Predictor, archs: dict[str, ArchSpec], rounds: int = 50
) -> dict[str, float]:
    """Whole-network latency (ms) on this machine with the table's backend, timed interleaved with the
    table's anchor and scaled by its drift since the build, so it sits on the table's scale: the
    figure for networks the table cannot price (reference networks outside its space)."""
    if not table.anchor:
        raise ConfigError("latency table has no anchor network; it cannot place measurements on its scale")
    backend = backend_from_provenance(table.provenance)
    items = [net_item(ANCHOR, ArchSpec.from_str(table.anchor["arch"]), table.settings)]
    items += [net_item(name, arch, table.settings) for name, arch in archs.items()]
    measure = dataclasses.replace(Settings.recorded(table.provenance.get("measure")), rounds=rounds)
    timings = backend.measure(items, measure)
    scale = table.anchor["median_ms"] / timings[ANCHOR].median_ms
    return {name: timings[name].median_ms * scale for name in archs}


def validation_nets(table: LatencyTable | Predictor, n: int, seed: int) -> list[ArchSpec]:
    """``n`` random nets of the table's space, never the anchor or a calibration net."""
    seen = {
        ArchSpec.from_str(net["arch"])
        for net in [*([table.anchor] if table.anchor else []), *table.calibration_nets]
    }
    return sample_distinct(table.space(), n, f"nas-latency-validate-{seed}", seen)


def validate(
    table: LatencyTable | Predictor,
    nets: int = 50,
    seed: int = 0,
    backend: Backend | None = None,
    measure: Settings | None = None,
    reference_nets: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Measure ``nets`` held-out nets twice and compare them with the table's (or a predictor's)
    predictions; a predictor's measured nets serve as the calibration nets.

    Drift is read off the anchor and the first ``reference_nets`` calibration nets, all measured at
    build time in the same rounds, re-timed here among the held-out nets: the median of their
    (now / at build) ratios. On this shared 2-core machine, in one pass, the anchor moved +8 %, the
    calibration nets +4 % (median) and the held-out nets +1 %: contention from other processes does
    not slow every network alike, and the median of several references is steadier than one.
    """
    if table.anchor is None or (isinstance(table, LatencyTable) and table.calibration is None):
        raise ConfigError("latency table is unfinished (no calibration); run its 'nas latency build' again")
    if backend is None:
        backend = backend_from_provenance(table.provenance)
    measure = measure or Settings.recorded(table.provenance.get("measure"))
    archs = validation_nets(table, nets, seed)
    predicted = [table.predict(a) for a in archs]
    references = {ANCHOR: table.anchor, **{n["arch"]: n for n in table.calibration_nets[:reference_nets]}}
    items = [
        net_item(name, ArchSpec.from_str(ref["arch"]), table.settings) for name, ref in references.items()
    ]
    items += [net_item(a.to_str(), a, table.settings) for a in archs]
    passes, now = [], {name: [] for name in references}
    for p in range(2):
        timings = backend.measure(items, dataclasses.replace(measure, seed=measure.seed + seed * 2 + p + 1))
        for name in references:
            now[name].append(timings[name].median_ms)
        drift = statistics.median(now[name][-1] / ref["median_ms"] for name, ref in references.items())
        passes.append(([timings[a.to_str()].median_ms for a in archs], drift))
        if progress:
            progress(p + 1, 2)
    (first, drift1), (second, drift2) = passes
    corrected1, corrected2 = [m / drift1 for m in first], [m / drift2 for m in second]
    measured = [(x + y) / 2 for x, y in zip(corrected1, corrected2, strict=True)]
    absolute = [(x + y) / 2 for x, y in zip(first, second, strict=True)]
    return {
        **fidelity(predicted, measured),
        "within_10pct_absolute": within(predicted, absolute),
        "noise_within_10pct": within(corrected1, corrected2),
        "noise_kendall_tau": kendall_tau(corrected1, corrected2),
        "anchor_drift": (drift1 + drift2) / 2,
        "references": [
            {"arch": ref["arch"], "build_ms": ref["median_ms"], "now_ms": now[name]}
            for name, ref in references.items()
        ],
        "seed": seed,
        "nets": [
            {"arch": a.to_str(), "predicted_ms": p, "measured_ms": m, "absolute_ms": r}
            for a, p, m, r in zip(archs, predicted, measured, absolute, strict=True)
        ],
    }


def fidelity(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, Any]:
    """n, MAPE, worst error, fraction within ±10 %, Kendall tau-b and mean signed error (bias)."""
    errors = [(p - m) / m for p, m in zip(predicted, measured, strict=True)]
    return {
        "n": len(errors),
        "mape": statistics.fmean(abs(e) for e in errors),
        "max_ape": max(abs(e) for e in errors),
        "within_10pct": within(predicted, measured),
        "kendall_tau": kendall_tau(predicted, measured),
        "bias": statistics.fmean(errors),
    }


def within(predicted: Sequence[float], measured: Sequence[float], tolerance: float = TOLERANCE) -> float:
    """Fraction of pairs whose relative difference to ``measured`` is at most ``tolerance``."""
    hits = [abs(p - m) <= tolerance * m for p, m in zip(predicted, measured, strict=True)]
    return sum(hits) / len(hits)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (``scipy.stats.kendalltau``); NaN where it is undefined (fewer than two (x, y)
    pairs, or one side constant), without scipy's small-sample warning."""
    from scipy.stats import kendalltau

    return float(kendalltau(x, y).statistic) if len(x) >= 2 else math.nan


def format_report(report: dict[str, Any]) -> str:
    """The headline figures on one line each."""
    return "\n".join(
        [
            f"within ±10 % (drift-corrected): {report['within_10pct']:.0%}   absolute: "
            f"{report['within_10pct_absolute']:.0%}   noise floor: {report['noise_within_10pct']:.0%}",
            f"Kendall tau: {report['kendall_tau']:.3f}   (noise floor: {report['noise_kendall_tau']:.3f})",
            f"MAPE: {report['mape']:.1%}   max: {report['max_ape']:.1%}   bias: {report['bias']:+.1%}   "
            f"drift since build: {report['anchor_drift']:.3f}",
        ]
    )
