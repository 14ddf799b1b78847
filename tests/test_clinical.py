"""Clinical metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.metrics.clinical import (
    choose_threshold,
    clinical_metrics,
    expected_calibration_error,
    macro_auc,
    roc_auc,
)


def test_auc_counts_correctly_ordered_pairs():
    # pairs (pos, neg): 0.35 > 0.1, 0.35 < 0.4, 0.8 > both: 3 of 4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_auc_ties_count_half():
    # pos 0.5 ties neg 0.5 (1/2), beats 0.2 (1); pos 0.9 beats both (2): 3.5 of 4
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    assert roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)


def test_auc_undefined_with_one_class():
    assert math.isnan(roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))


def test_auc_is_rank_invariant_and_perfect():
    y = np.array([0, 1, 1, 0, 1])
    s = np.array([0.1, 0.7, 0.9, 0.3, 0.8])
    assert roc_auc(y, s) == 1.0
    assert roc_auc(y, np.log(s)) == 1.0
    assert roc_auc(y, -s) == 0.0


def test_macro_auc_one_vs_rest():
    y = np.array([0, 1, 2, 2])
    probs = np.array([[0.6, 0.3, 0.1], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
    # class 0: pos 0.6 vs 0.5, 0.1, 0.3 -> 1; class 1: pos 0.3 vs 0.3 (tie), 0.2, 0.4 -> 1.5/3;
    # class 2: pos 0.7, 0.3 vs 0.1, 0.2 -> 1
    assert macro_auc(y, probs) == pytest.approx((1 + 0.5 + 1) / 3)


def test_macro_auc_skips_absent_class():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.3, 0.7, 0.0], [0.2, 0.8, 0.0]])
    assert macro_auc(y, probs) == 1.0


def test_ece_hand_computed():
    # confidences 0.9, 0.9 (one right): |0.5 - 0.9| * 2/4; 0.6 right: 0.4 * 1/4; 0.75 right: 0.25 * 1/4
    probs = np.array([0.9, 0.9, 0.6, 0.25])
    y = np.array([1, 0, 1, 0])
    assert clinical_metrics(y, probs)["ece"] == pytest.approx(0.2 + 0.1 + 0.0625)
    assert expected_calibration_error([1, 1, 0, 0], [1.0, 1.0, 0.5, 0.5]) == pytest.approx(0.25)


def test_youden_threshold():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.4, 0.7, 0.9])
    # t=0.4: sens 1, spec 2/3 -> J 2/3; t=0.7: sens 2/3, spec 1 -> J 2/3; first (highest) of the ties wins,
    # and the threshold sits halfway down to the next score (0.6), off the edge of any validation score
    assert choose_threshold(y, p) == pytest.approx(0.65)
    # t=0.9 gives sens 1/3; 0.7 gives 2/3; 0.4 reaches 1.0 (halfway to 0.3)
    assert choose_threshold(y, p, "sensitivity", target_sensitivity=0.95) == pytest.approx(0.35)
    assert choose_threshold(y, p, "sensitivity", target_sensitivity=0.6) == pytest.approx(0.65)
    assert choose_threshold(y, np.stack([1 - p, p], axis=1)) == pytest.approx(0.65)
    # the lowest score has nothing below it: halfway to 0
    assert choose_threshold([1, 0], [0.2, 0.1], "sensitivity", target_sensitivity=1.0) == pytest.approx(0.15)


def test_specificity_threshold_gives_the_sensitivity_at_that_specificity():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.4, 0.7, 0.9])
    # no false positive allowed: the lowest such threshold is below 0.7 (sens 2/3), halfway to 0.6
    assert choose_threshold(y, p, "specificity", target_specificity=1.0) == pytest.approx(0.65)
    # one false positive of three allowed (spec 2/3 >= 0.6): down to 0.4, sens 1
    t = choose_threshold(y, p, "specificity", target_specificity=0.6)
    assert t == pytest.approx(0.35)
    metrics = clinical_metrics(y, p, t)
    assert (metrics["sensitivity"], metrics["specificity"]) == pytest.approx((1.0, 2 / 3))
    # the top score is a negative: no threshold keeps specificity 1 but one above every score
    t = choose_threshold([0, 1], [0.9, 0.2], "specificity", target_specificity=1.0)
    assert t > 0.9 and clinical_metrics(np.array([0, 1]), np.array([0.9, 0.2]), t)["specificity"] == 1.0


def test_threshold_errors():
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold([1, 1], [0.2, 0.4])
    with pytest.raises(ValueError, match="youden"):
        choose_threshold([0, 1], [0.2, 0.4], method="f1")
    with pytest.raises(ValueError, match="target sensitivity"):
        choose_threshold([0, 1], [0.2, 0.4], method="sensitivity", target_sensitivity=1.5)


def test_binary_metrics_at_threshold():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.4, 0.7, 0.9])
    m = clinical_metrics(y, p, threshold=0.4)
    assert m["threshold"] == 0.4
    assert m["sensitivity"] == 1.0
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(5 / 6)
    assert m["ppv"] == pytest.approx(3 / 4) and m["npv"] == 1.0
    assert m["accuracy_at_threshold"] == pytest.approx(5 / 6)
    assert m["accuracy"] == pytest.approx(4 / 6)  # at 0.5: 0.6 and 0.4 are wrong
    assert m["auc"] == pytest.approx(8 / 9)
    assert clinical_metrics(y, np.stack([1 - p, p], axis=1), threshold=0.4) == m


def test_multi_class_metrics():
    y = np.array([0, 1, 2, 2])
    probs = np.array([[0.6, 0.3, 0.1], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
    m = clinical_metrics(y, probs)
    assert m["accuracy"] == 0.5  # argmax 0, 0, 2, 1
    assert m["balanced_accuracy"] == pytest.approx((1 + 0 + 0.5) / 3)
    # specificity per class: class 0: 2 of 3 negatives not called 0; class 1: 2 of 3; class 2: 2 of 2
    assert m["specificity"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["ece"] == pytest.approx(0.25 * (0.4 + 0.5 + 0.3 + 0.4))  # one prediction a bin


def test_multi_label_metrics():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = np.array([[0.8, 0.2], [0.3, 0.6], [0.7, 0.4], [0.1, 0.3]])
    m = clinical_metrics(y, probs)
    assert m["auc"] == 1.0
    assert m["accuracy"] == pytest.approx(7 / 8)
    assert m["sensitivity"] == pytest.approx((1 + 0.5) / 2)
    assert m["specificity"] == 1.0


def test_length_mismatch():
    with pytest.raises(ValueError, match="3 labels but 2"):
        clinical_metrics([0, 1, 1], [0.2, 0.5])


def test_auc_and_youden_match_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 40)
        y[:2] = [0, 1]
        p = rng.integers(0, 8, 40) / 8  # many ties
        pos, neg = p[y == 1], p[y == 0]
        pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        assert roc_auc(y, p) == pytest.approx(pairs / (len(pos) * len(neg)))

        def youden(t, y=y, p=p):
            return (p[y == 1] >= t).mean() + (p[y == 0] < t).mean() - 1

        best = max(youden(t) for t in np.unique(p))
        chosen = choose_threshold(y, p)
        assert youden(chosen) == pytest.approx(best)
        assert chosen == 0 or chosen not in set(p)  # never on a validation score (but 0: all positive)
