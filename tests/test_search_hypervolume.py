"""Two-objective hypervolume (cost down, score up), on fronts small enough to compute by hand."""

from __future__ import annotations

import pytest

from nas.search.hypervolume import compare_hypervolumes, comparison_frame, hypervolume


def test_single_point_is_its_box():
    assert hypervolume([(1.0, 3.0)], (4.0, 1.0)) == pytest.approx(3.0 * 2.0)


def test_two_point_front_is_the_union_of_boxes():
    # boxes 3x2 and 2x4 overlap in 2x2: 6 + 8 - 4
    assert hypervolume([(1.0, 3.0), (2.0, 5.0)], (4.0, 1.0)) == pytest.approx(10.0)


def test_order_and_dominated_points_do_not_matter():
    front = [(2.0, 5.0), (1.0, 3.0)]
    dominated = [(3.0, 2.0), (2.5, 4.0), (2.0, 5.0)]
    assert hypervolume(front + dominated, (4.0, 1.0)) == pytest.approx(10.0)


def test_three_point_staircase():
    # steps at cost 0, 1, 3 with scores 1, 2, 4 against (4, 0): 1*1 + 2*2 + 1*4
    assert hypervolume([(0.0, 1.0), (1.0, 2.0), (3.0, 4.0)], (4.0, 0.0)) == pytest.approx(9.0)


def test_points_not_beating_the_reference_add_nothing():
    reference = (4.0, 1.0)
    outside = [(4.0, 3.0), (5.0, 9.0), (1.0, 1.0), (0.5, 0.0)]
    assert hypervolume(outside, reference) == 0.0
    assert hypervolume([*outside, (1.0, 3.0)], reference) == pytest.approx(6.0)


def test_no_points_is_zero():
    assert hypervolume([], (1.0, 0.0)) == 0.0


def test_scale_divides_the_area():
    assert hypervolume([(1.0, 3.0), (2.0, 5.0)], (4.0, 1.0), scale=(2.0, 0.5)) == pytest.approx(10.0)
    assert hypervolume([(0.002, 0.9)], (0.01, 0.5), scale=(0.01, 0.5)) == pytest.approx(0.008 * 0.4 / 0.005)


def test_comparison_frame():
    points = [(1.0, 0.5), (3.0, 0.9), (2.0, 0.7)]
    scale, references = comparison_frame(points, baseline=[(2.0, 0.6), (4.0, 0.8)])
    assert scale == pytest.approx((2.0, 0.4))
    assert references == {"worst": (3.0, 0.5), "median": pytest.approx((3.0, 0.7))}
    assert comparison_frame([(1.0, 0.5)]) == ((1.0, 1.0), {"worst": (1.0, 0.5)})  # flat: unit scale


def test_compare_hypervolumes_puts_every_run_in_one_frame():
    runs = {"search": [[(1.0, 0.9)], [(2.0, 0.9)]], "random": [[(3.0, 0.5), (2.0, 0.7)]]}
    worst, median = compare_hypervolumes(runs, "random").values()
    assert worst.reference == (3.0, 0.5) and median.reference == pytest.approx((2.5, 0.6))
    scale = 2.0 * 0.4  # the range of all points
    assert worst.volumes["search"] == pytest.approx([2.0 * 0.4 / scale, 1.0 * 0.4 / scale])
    assert worst.volumes["random"] == pytest.approx([1.0 * 0.2 / scale])
    assert worst.ratio("search", "random") == pytest.approx(0.75 / 0.25)
    assert median.ratio("search", "random") == pytest.approx(((1.5 * 0.3 + 0.5 * 0.3) / 2) / (0.5 * 0.1))


def test_compare_hypervolumes_without_the_baseline():
    (worst,) = compare_hypervolumes({"search": [[(1.0, 0.9), (2.0, 0.5)]]}, "random").values()
    assert worst.reference == (2.0, 0.5) and worst.mean("search") == pytest.approx(1.0)
    assert worst.ratio("search", "random") is None
