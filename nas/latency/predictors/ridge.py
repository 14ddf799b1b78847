"""Ridge regression on relative error, with a prior, its strength chosen by leave-one-out error.

Minimizes ``sum_i (x_i . w / y_i - 1)^2 + lam * n * sum_j penalized_j * (w_j - prior_j)^2``: rows
weighted by 1 / measured, as the tables' calibration (``nas.latency.predict``), since relative error is
what the fidelity figures judge. ``lam`` is the one of ``LAMBDAS`` with the lowest leave-one-out mean
absolute relative error. ``lower`` bounds weights from below (bounded least squares, ``scipy``): a cost
factor that the nets barely determine must not turn negative to fit noise. ``mix`` stacks two such
fits on their leave-one-out predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from nas.errors import DataError

LAMBDAS = tuple(float(v) for v in np.logspace(-5, 1, 13))
MIN_NETS = 4


@dataclass(frozen=True)
class Ridge:
    weights: np.ndarray
    lam: float
    loo_mape: float
    loo_predicted: np.ndarray  # each row's prediction by the fit without it, at ``lam``


def solve(
    x: np.ndarray,
    y: np.ndarray,
    lam: float,
    prior: np.ndarray,
    penalized: np.ndarray,
    lower: np.ndarray | None = None,
) -> np.ndarray:
    """The weights for one ``lam``, each at least ``lower`` where given."""
    rows = x / y[:, None]
    penalty = np.diag(np.sqrt(lam * len(y)) * penalized.astype(float))
    a = np.vstack([rows, penalty])
    b = np.concatenate([np.ones(len(y)), penalty @ prior])
    if lower is None:
        return np.linalg.lstsq(a, b, rcond=None)[0]
    return lsq_linear(a, b, bounds=(lower, np.inf)).x


def fit(
    x: np.ndarray, y: np.ndarray, prior: np.ndarray, penalized: np.ndarray, lower: np.ndarray | None = None
) -> Ridge:
    """Choose ``lam`` by leave-one-out over ``LAMBDAS``, then fit on every row."""
    if len(y) < MIN_NETS:
        raise DataError(f"a latency predictor needs at least {MIN_NETS} measured nets, got {len(y)}")
    best: tuple[float, float, np.ndarray] | None = None
    for lam in LAMBDAS:
        predicted = np.empty(len(y))
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            predicted[i] = x[i] @ solve(x[keep], y[keep], lam, prior, penalized, lower)
        error = float(np.mean(np.abs(predicted / y - 1)))
        if best is None or error < best[0]:
            best = (error, lam, predicted)
    assert best is not None
    error, lam, predicted = best
    return Ridge(solve(x, y, lam, prior, penalized, lower), lam, error, predicted)


def mix(first: np.ndarray, second: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The share ``w`` of ``first`` whose mix with ``second`` (two designs' leave-one-out predictions of
    ``y``) has the lowest mean absolute relative error, and that error: stacking, ``w`` to 0.01, a tie
    going to ``first``. Two fits linear in the same columns mix into one such fit."""
    shares = np.linspace(1.0, 0.0, 101)
    errors = [float(np.mean(np.abs((w * first + (1 - w) * second) / y - 1))) for w in shares]
    best = int(np.argmin(errors))
    return float(shares[best]), errors[best]
