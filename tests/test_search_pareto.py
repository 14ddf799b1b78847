"""Pareto dominance, the non-dominated set and the shortfall, on points small enough to check by hand."""

from __future__ import annotations

import math

import pytest

from nas.search.pareto import costs, dominates, non_dominated, shortfall


def test_costs_negate_what_is_maximized():
    row = {"auc": 0.9, "ms": 2.0, "other": "x"}
    assert costs(row, [("auc", "maximize"), ("ms", "minimize")]) == (-0.9, 2.0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((1.0, 1.0), (2.0, 2.0), True),  # better on both
        ((1.0, 2.0), (2.0, 2.0), True),  # better on one, equal on the other
        ((1.0, 1.0), (1.0, 1.0), False),  # equal: neither dominates
        ((1.0, 3.0), (2.0, 2.0), False),  # a trade-off
        ((math.nan, 1.0), (2.0, 2.0), False),
    ],
)
def test_dominates(a, b, expected):
    assert dominates(a, b) is expected


def test_dominates_needs_the_same_objectives():
    with pytest.raises(ValueError):
        dominates((1.0,), (1.0, 2.0))


def test_non_dominated_keeps_order_and_ties():
    points = [(3.0, 1.0), (2.0, 2.0), (2.5, 2.5), (1.0, 3.0), (2.0, 2.0), (3.0, 3.0)]
    assert non_dominated(points, lambda p: p) == [(3.0, 1.0), (2.0, 2.0), (1.0, 3.0), (2.0, 2.0)]
    assert non_dominated([], lambda p: p) == []


def test_shortfall_is_the_largest_relative_excess():
    assert shortfall((-0.90, 1.5), (-0.95, 1.0)) == pytest.approx(0.5)  # AUC 0.90 vs 0.95, 1.5x latency
    assert shortfall((-0.90, 0.5), (-0.95, 1.0)) == pytest.approx(0.05 / 0.95)
    assert shortfall((-0.96, 0.5), (-0.95, 1.0)) < 0


def test_shortfall_against_a_zero_cost_is_the_ratios_limit():
    """A zero cost (0 ms, AUC 0 negated) never divides: equal is 0, any excess is +inf, any gain -inf."""
    assert shortfall((0.0, 1.0), (0.0, 1.0)) == 0
    assert shortfall((0.1, 0.5), (0.0, 1.0)) == math.inf
    assert shortfall((-0.1, 0.5), (0.0, 1.0)) == pytest.approx(-0.5)  # the other axis decides
    assert shortfall((-0.1,), (0.0,)) == -math.inf
