"""Calibration: from the sum of isolated block latencies to a whole-network prediction.

A sum of isolated block timings misses what a whole network adds or saves: one runtime call instead of
one per block, activations handed from block to block in cache, weights competing for cache. The fit is

    measured = a + b * block_sum + c * n_blocks + d * weights

with ``a`` the per-network overhead, ``b`` a scale, ``c`` the cost each isolated block timing adds (its
own call, a cold input) or misses, and ``d`` the cost per million weights (parameters) of the net. It
is least squares on relative error (rows weighted by 1 / measured), since relative error is what the
fidelity figures judge. Why three terms and not two: on the MnasNet space at 64x64 the error of ``a + b
* sum`` grows with the number of blocks (-9 % at 14 blocks, +11 % at 24); adding ``c`` took 50 held-out
nets from 96 % to 100 % within ±10 % and Kendall tau from 0.91 to 0.94 (``c`` came out at -13 us a
block). A separate scale per block family (ir, ds, with or without SE) did no better on held-out nets
(tau 0.89). A space whose nets all have one depth leaves ``c`` undetermined; the minimum-norm solution
then still fits.

Why the weights: a block timed back to back (warm samples) keeps its weights in cache, a whole net's
blocks evict each other's. On the MnasNet space at 64x64 with ONNX Runtime (1 thread, 2 ms samples,
nets of 0.5-5.6 M parameters), measured over predicted rose with the net's parameters (correlation
0.82 over 200 held-out nets): refitted on the same 30 calibration nets with ``d``, the table's
leave-one-out error went from 6.7 % to 2.3 % and the held-out nets from 78 % to 94 % within ±10 %
(Kendall tau 0.877 -> 0.938); with 2 threads 58 % -> 57 % (what limits that table is not this). On
mnasnet_small at 28x28 (0.02-0.34 M parameters) 99 % -> 100 % and 90 % -> 90 %, untuned TVM 100 %
either way. ``d`` is kept only where it lowers the leave-one-out error, and is 0 in tables fitted
before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.errors import DataError


@dataclass(frozen=True)
class Calibration:
    a: float
    b: float
    c: float
    loo_mape: float = float("nan")  # leave-one-out mean absolute relative error on the calibration nets
    n: int = 0  # calibration nets
    d: float = 0.0  # ms per million weights of the net; 0 where it did not help, and in older files

    def apply(self, block_sum_ms: float, n_blocks: int, weights_m: float = 0.0) -> float:
        """The net's latency from its block sum, block count and weights (millions; only read where
        ``d`` is not 0, see ``uses_weights``)."""
        return self.a + self.b * block_sum_ms + self.c * n_blocks + self.d * weights_m

    @property
    def uses_weights(self) -> bool:
        return self.d != 0.0

    def to_json(self) -> dict[str, Any]:
        weights = {"d": self.d} if self.uses_weights else {}  # files without it read as before
        return {"a": self.a, "b": self.b, "c": self.c, **weights, "loo_mape": self.loo_mape, "n": self.n}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            float(data["a"]),
            float(data["b"]),
            float(data["c"]),
            float(data["loo_mape"]),
            int(data["n"]),
            float(data.get("d", 0.0)),
        )


def fit(
    sums: Sequence[float],
    blocks: Sequence[int],
    measured: Sequence[float],
    weights_m: Sequence[float] | None = None,
) -> Calibration:
    """Fit on (block sum ms, block count, measured ms) of the calibration nets, and with their weights
    (millions) where given and it lowers the leave-one-out error; report that error."""
    n = len(sums)
    if not n == len(blocks) == len(measured) or n < 4:
        raise DataError(f"calibration needs at least 4 nets with a block sum, count and measurement, got {n}")
    if min(sums) <= 0 or min(measured) <= 0:
        raise DataError("calibration latencies must be positive")
    if weights_m is not None and len(weights_m) != n:
        raise DataError(f"calibration has {n} nets but {len(weights_m)} weight counts")
    x = np.column_stack([np.ones(n), np.asarray(sums, float), np.asarray(blocks, float)])
    y = np.asarray(measured, float)
    (a, b, c), error = _fit_loo(x, y)
    if weights_m is None:
        return Calibration(a, b, c, error, n)
    (wa, wb, wc, wd), with_weights = _fit_loo(np.column_stack([x, np.asarray(weights_m, float)]), y)
    if with_weights < error:
        return Calibration(wa, wb, wc, with_weights, n, wd)
    return Calibration(a, b, c, error, n)


def _fit_loo(x: np.ndarray, y: np.ndarray) -> tuple[list[float], float]:
    """Least squares on relative error, and its leave-one-out mean absolute relative error."""
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        errors.append(abs(x[i] @ _solve(x[keep], y[keep]) / y[i] - 1))
    return [float(v) for v in _solve(x, y)], float(np.mean(errors))


def _solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(x / y[:, None], np.ones_like(y), rcond=None)[0]
