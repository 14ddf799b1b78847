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
