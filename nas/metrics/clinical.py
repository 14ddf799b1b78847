"""Clinical metrics of a classifier's probabilities, in numpy and scipy (no scikit-learn dependency).

ROC AUC is the Mann-Whitney statistic with average ranks for ties (equal to the trapezoidal ROC area).
Sensitivity and specificity are taken at an operating threshold chosen on the validation split
(``choose_threshold``) and then applied unchanged to the test split, as a deployed model would be.
ECE is Guo et al. (2017): 15 equal-width confidence bins, top-label confidence.
Log loss and the Brier score are proper scoring rules (lower is better) that keep separating models
after AUC saturates near 1: binary ``logloss = -mean(y log p + (1-y) log(1-p))`` and
``brier = mean((p - y)^2)`` on the positive-class probability (scikit-learn's forms); multi-class
``logloss = -mean(log p[y])`` and ``brier = mean(sum_k (p_k - [y = k])^2)`` (Brier 1950); multi-label the
binary forms averaged over every label. Probabilities are clipped to ``[1e-15, 1 - 1e-15]`` for the log.

Shapes: binary ``y_true (N,)`` 0/1 with ``probs (N,)`` for the positive class or ``(N, 2)``; multi-class
``y_true (N,)`` with ``probs (N, K)``; multi-label ``y_true (N, K)`` 0/1 with ``probs (N, K)``.
"""

from __future__ import annotations

import math

import numpy as np

from nas.errors import DataError

ECE_BINS = 15
LOG_EPS = 1e-15


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Binary ROC AUC; ``nan`` when only one class is present (AUC is undefined)."""
    y = np.asarray(y_true).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    from scipy.stats import rankdata  # average ranks for ties; imported on first use (~0.5 s)

    ranks = rankdata(scores)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Macro ROC AUC over columns: one-vs-rest for multi-class labels ``(N,)``, per label for ``(N, K)``.

    Columns whose AUC is undefined (a class absent from ``y_true``) are left out of the mean."""
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true)
    onehot = y if y.ndim == 2 else (y[:, None] == np.arange(probs.shape[1])[None, :])
    aucs = [roc_auc(onehot[:, k], probs[:, k]) for k in range(probs.shape[1])]
    defined = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(defined)) if defined else math.nan


def expected_calibration_error(correct: np.ndarray, confidence: np.ndarray, bins: int = ECE_BINS) -> float:
    """``sum_b |B_b|/N * |acc(B_b) - conf(B_b)|`` over equal-width bins ``(lo, hi]`` of the confidence."""
    correct = np.asarray(correct, dtype=np.float64).ravel()
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    if len(confidence) == 0:
        return math.nan
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def log_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels (shapes as ``clinical_metrics``); ``nan`` when empty."""
    y, p = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if len(y) == 0:
        return math.nan
    if y.ndim == 2 or p.ndim == 1 or p.shape[1] == 2:  # binary or per-label binary
        p = np.clip(positive_scores(p) if y.ndim == 1 else p, LOG_EPS, 1 - LOG_EPS)
        y = y.astype(np.float64).reshape(p.shape)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y.astype(np.int64)], LOG_EPS, 1.0))))


def brier_score(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean squared error of the probabilities (shapes and forms as ``log_loss``); ``nan`` when empty."""
    y, p = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if len(y) == 0:
        return math.nan
    if y.ndim == 2 or p.ndim == 1 or p.shape[1] == 2:
        p = positive_scores(p) if y.ndim == 1 else p
        return float(np.mean((p - y.astype(np.float64).reshape(p.shape)) ** 2))
    onehot = y.astype(np.int64)[:, None] == np.arange(p.shape[1])[None, :]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def positive_scores(probs: np.ndarray) -> np.ndarray:
    """The positive-class probability of a binary task, from ``(N,)`` or ``(N, 2)``."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 2:
        if probs.shape[1] != 2:
            raise ValueError(f"binary probabilities must be (N,) or (N, 2), got {probs.shape}")
        return probs[:, 1]
    return probs


def choose_threshold(
    y_true: np.ndarray,
    probs: np.ndarray,
    method: str = "youden",
    target_sensitivity: float = 0.95,
    target_specificity: float = 0.9,
) -> float:
    """The operating threshold of a binary classifier (positive when ``p >= threshold``), chosen on
    validation: ``youden`` maximizes sensitivity + specificity - 1; ``sensitivity`` is the highest
    threshold whose sensitivity reaches ``target_sensitivity`` (so specificity is as high as it allows);
    ``specificity`` the lowest whose specificity keeps ``target_specificity`` (sensitivity as high as it
    allows: the sensitivity at that specificity), or above every score when none does."""
    y = np.asarray(y_true).astype(bool).ravel()
    scores = positive_scores(probs)
    if y.all() or not y.any():
        raise DataError("choosing a threshold needs both classes in the validation labels")
    order = np.argsort(-scores, kind="mergesort")  # descending: sensitivity grows along the list
    ordered, hits = scores[order], y[order]
    last = np.r_[ordered[1:] != ordered[:-1], True]  # the last of each run of tied scores
    candidates = ordered[last]
    true_pos, false_pos = np.cumsum(hits)[last], np.cumsum(~hits)[last]
    n_pos, n_neg = int(hits.sum()), int((~hits).sum())
    if method == "youden":  # J * n_pos * n_neg, in integers so tied thresholds compare exactly
        return _between(candidates, int(np.argmax(true_pos * n_neg - false_pos * n_pos)))
    if method == "sensitivity":
        if not 0 < target_sensitivity <= 1:
            raise ValueError(f"target sensitivity must be in (0, 1], got {target_sensitivity}")
        return _between(candidates, int(np.argmax(true_pos >= math.ceil(target_sensitivity * n_pos - 1e-9))))
    if method == "specificity":
        if not 0 < target_specificity <= 1:
            raise ValueError(f"target specificity must be in (0, 1], got {target_specificity}")
        keeps = np.flatnonzero(false_pos <= math.floor((1 - target_specificity) * n_neg + 1e-9))
        if not keeps.size:
            return float(np.nextafter(candidates[0], np.inf))
        return _between(candidates, int(keeps[-1]))
    raise ValueError(f"threshold method must be 'youden', 'sensitivity' or 'specificity', got '{method}'")


def _between(candidates: np.ndarray, i: int) -> float:
    """Halfway from the chosen score to the next lower one: the same decisions on validation, but not
    on the edge of a validation score, where the float noise of another runtime (ONNX Runtime, int8)
    would flip decisions the threshold was chosen to make."""
    lower = candidates[i + 1] if i + 1 < len(candidates) else 0.0
    return float((candidates[i] + lower) / 2)


def clinical_metrics(
    y_true: np.ndarray, probs: np.ndarray, threshold: float | None = None
) -> dict[str, float]:
    """All metrics of one split; the task follows from the shapes (see the module docstring).

    ``accuracy`` is at argmax (threshold 0.5 for binary), MedMNIST's ACC; binary sensitivity,
    specificity and balanced accuracy are at ``threshold`` (0.5 if not given), which is reported too.
    Multi-class sensitivity/specificity are one-vs-rest macro averages of the argmax decision, with
    ``macro_f1`` and each class's sensitivity (``sensitivity_<k>``, k the output index) beside them: on
    imbalanced sets (ECG5000's rare beats) the average hides the class a model misses."""
    y = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if len(y) != len(probs):
        raise ValueError(f"{len(y)} labels but {len(probs)} predictions")
    if y.ndim == 2:
        return _multi_label(y.astype(bool), probs, 0.5 if threshold is None else threshold)
    if probs.ndim == 1 or probs.shape[1] == 2:
        return _binary(y.astype(bool), positive_scores(probs), 0.5 if threshold is None else threshold)
    return _multi_class(y.astype(np.int64), probs)


def _binary(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    at = p >= threshold
    sensitivity = _ratio((at & y).sum(), y.sum())
    specificity = _ratio((~at & ~y).sum(), (~y).sum())
    predicted = p >= 0.5
    return {
        "auc": roc_auc(y, p),
        "accuracy": float((predicted == y).mean()),
        "threshold": float(threshold),
        "accuracy_at_threshold": float((at == y).mean()),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "balanced_accuracy": (sensitivity + specificity) / 2,
        "ppv": _ratio((at & y).sum(), at.sum()),
        "npv": _ratio((~at & ~y).sum(), (~at).sum()),
        "ece": expected_calibration_error(predicted == y, np.maximum(p, 1 - p)),
        "logloss": log_loss(y, p),
        "brier": brier_score(y, p),
    }


def _multi_class(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    predicted = probs.argmax(axis=1)
    classes = [k for k in range(probs.shape[1]) if (y == k).any()]
    recall = [_ratio(((predicted == k) & (y == k)).sum(), (y == k).sum()) for k in classes]
    specificity = [_ratio(((predicted != k) & (y != k)).sum(), (y != k).sum()) for k in classes]
    precision = [_ratio(((predicted == k) & (y == k)).sum(), (predicted == k).sum()) for k in classes]
    f1 = [
        2 * p * r / (p + r) if p + r > 0 else 0.0
        for p, r in zip(np.nan_to_num(precision), recall, strict=True)
    ]
    return {
        "auc": macro_auc(y, probs),
        "accuracy": float((predicted == y).mean()),
        "sensitivity": float(np.nanmean(recall)),
        "specificity": float(np.nanmean(specificity)),
        "balanced_accuracy": float(np.nanmean(recall)),
        "macro_f1": float(np.mean(f1)),
        **{f"sensitivity_{k}": r for k, r in zip(classes, recall, strict=True)},
        "ece": expected_calibration_error(predicted == y, probs.max(axis=1)),
        "logloss": log_loss(y, probs),
        "brier": brier_score(y, probs),
    }


def _multi_label(y: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
    at = probs >= threshold
    sensitivity = np.nanmean([_ratio((at & y)[:, k].sum(), y[:, k].sum()) for k in range(y.shape[1])])
    specificity = np.nanmean([_ratio((~at & ~y)[:, k].sum(), (~y)[:, k].sum()) for k in range(y.shape[1])])
    predicted = probs >= 0.5
    return {
        "auc": macro_auc(y, probs),
        "accuracy": float((predicted == y).mean()),
        "threshold": float(threshold),
        "sensitivity": float(sensitivity),
        "specificity": float(specificity),
        "balanced_accuracy": float((sensitivity + specificity) / 2),
        "ece": expected_calibration_error(predicted == y, np.maximum(probs, 1 - probs)),
        "logloss": log_loss(y, probs),
        "brier": brier_score(y, probs),
    }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else math.nan
