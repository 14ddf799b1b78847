"""Two-objective hypervolume: how much of objective space a set of candidates dominates.

The measure used to compare whole searches rather than their single best networks (a search that finds
a better trade-off curve covers more area). Objectives are a cost to minimize (latency) and a score to
maximize (AUC); the area is counted against a reference point (a cost, a score) that every counted
candidate must beat on both, and in units of ``scale`` so that the two objectives weigh alike.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Point = tuple[float, float]  # (cost, score)


def hypervolume(
    points: Iterable[Point],
    reference: Point,
    scale: tuple[float, float] = (1.0, 1.0),
) -> float:
    """Area dominated by ``points`` (cost, score) inside the box bounded by ``reference`` (cost, score),
    divided by ``scale[0] * scale[1]``. Points not strictly better than the reference on both objectives
    add nothing, nor do dominated points; no points give 0."""
    ref_cost, ref_score = reference
    inside = sorted((c, s) for c, s in points if c < ref_cost and s > ref_score)
    volume, best = 0.0, ref_score
    for i, (cost, score) in enumerate(inside):
        best = max(best, score)
        next_cost = inside[i + 1][0] if i + 1 < len(inside) else ref_cost
        volume += (next_cost - cost) * (best - ref_score)
    return volume / (scale[0] * scale[1])


def comparison_frame(
    points: Sequence[Point], baseline: Sequence[Point] = ()
) -> tuple[tuple[float, float], dict[str, Point]]:
    """The common ground on which several runs' hypervolumes compare: ``scale``, the range of all the
    runs' ``points`` per objective (1 where it is flat), and two reference points, ``worst`` (their worst
    corner: every candidate counts) and, given ``baseline`` points (a random search's), ``median`` (its
    median on each objective: only candidates better than a typical baseline one count)."""
    costs, scores = [c for c, _ in points], [s for _, s in points]
    scale = (max(costs) - min(costs) or 1.0, max(scores) - min(scores) or 1.0)
    references = {"worst": (max(costs), min(scores))}
    if baseline:
        references["median"] = (
            statistics.median(c for c, _ in baseline),
            statistics.median(s for _, s in baseline),
        )
    return scale, references


@dataclass(frozen=True)
class Comparison:
    """Several runs' hypervolumes against one reference point: per run, one volume per repeat (seed)."""

    reference: Point
    volumes: dict[str, list[float]]

    def mean(self, run: str) -> float:
        return statistics.mean(self.volumes[run])

    def ratio(self, run: str, baseline: str) -> float | None:
        """``run``'s mean volume over ``baseline``'s; None without a baseline volume to divide by."""
        base = self.mean(baseline) if baseline in self.volumes else 0.0
        return self.mean(run) / base if base else None


def compare_hypervolumes(
    runs: Mapping[str, Sequence[Sequence[Point]]], baseline: str
) -> dict[str, Comparison]:
    """Every run's hypervolume (``runs``: name to repeats, each a list of points) in one
    :func:`comparison_frame` over all their points, ``baseline``'s (when present) giving the ``median``
    reference; keyed like the frame's references."""
    every = [p for repeats in runs.values() for points in repeats for p in points]
    scale, references = comparison_frame(every, [p for points in runs.get(baseline, ()) for p in points])
    return {
        key: Comparison(
            ref, {run: [hypervolume(p, ref, scale) for p in repeats] for run, repeats in runs.items()}
        )
        for key, ref in references.items()
    }
