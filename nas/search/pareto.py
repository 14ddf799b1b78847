"""Pareto dominance over any number of objectives: the one definition the search report and the
benchmarks share.

Objectives are compared as costs (lower is better); ``costs`` turns a row of metrics and its
``(metric, "minimize" | "maximize")`` axes into that form by negating what is maximized.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def costs(row: Mapping[str, Any], axes: Sequence[tuple[str, str]]) -> tuple[float, ...]:
    """``row``'s values on ``axes``, negated where the direction is ``maximize``."""
    return tuple(row[metric] if direction == "minimize" else -row[metric] for metric, direction in axes)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Costs ``a`` are at least as good as ``b`` everywhere and better somewhere (NaN never dominates)."""
    pairs = list(zip(a, b, strict=True))
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def non_dominated(items: Sequence[T], cost: Callable[[T], Sequence[float]]) -> list[T]:
    """The items no other item dominates, in their order (equal costs do not dominate each other)."""
    points = [cost(item) for item in items]
    pairs = zip(items, points, strict=True)
    return [item for item, mine in pairs if not any(dominates(p, mine) for p in points)]


def shortfall(a: Sequence[float], b: Sequence[float]) -> float:
    """How far costs ``a`` are from dominating ``b``: the largest relative excess ``(a - b) / |b|`` over
    the objectives; <= 0 when ``a`` is at least as good everywhere.

    Against a zero cost the ratio's limit is used: 0 when ``a`` is also 0, else +inf or -inf by the sign
    of ``a`` (any excess over nothing is unboundedly large), so a zero never divides.
    """
    return max(_relative_excess(x, y) for x, y in zip(a, b, strict=True))


def _relative_excess(x: float, y: float) -> float:
    if y == 0:
        return 0.0 if x == 0 else math.copysign(math.inf, x)
    return (x - y) / abs(y)


def promotion_order(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of cost vectors ``points``, best first, as NSGA-II ranks them: by non-dominated front
    (the front, then the front of the rest, ...), within a front by crowding distance, largest first
    (the ends of a front and isolated points before crowded ones); ties keep index order."""
    remaining = list(range(len(points)))
    order: list[int] = []
    while remaining:
        front = non_dominated(remaining, lambda i: points[i])
        crowding = _crowding([points[i] for i in front])
        order += [i for _, i in sorted(zip(crowding, front, strict=True), key=lambda p: -p[0])]
        remaining = [i for i in remaining if i not in front]
    return order


def _crowding(front: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II's crowding distance of each point of one front: per objective, the normalized gap
    between its two neighbours, summed; the extremes of any objective get infinity."""
    distance = [0.0] * len(front)
    for k in range(len(front[0]) if front else 0):
        ranked = sorted(range(len(front)), key=lambda i: front[i][k])
        low, high = front[ranked[0]][k], front[ranked[-1]][k]
        distance[ranked[0]] = distance[ranked[-1]] = math.inf
        if high == low:
            continue
        for before, i, after in zip(ranked, ranked[1:], ranked[2:], strict=False):  # the interior
            distance[i] += (front[after][k] - front[before][k]) / (high - low)
    return distance
