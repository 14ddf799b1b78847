"""Two-objective hypervolume: how much of objective space a set of candidates dominates.

The measure used to compare whole searches rather than their single best networks (a search that finds
a better trade-off curve covers more area). Objectives are a cost to minimize (latency) and a score to
maximize (AUC); the area is counted against a reference point (a cost, a score) that every counted
candidate must beat on both, and in units of ``scale`` so that the two objectives weigh alike.
"""

from __future__ import annotations

from collections.abc import Iterable


def hypervolume(
    points: Iterable[tuple[float, float]],
    reference: tuple[float, float],
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
