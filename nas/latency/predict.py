"""Calibration: from the sum of isolated block latencies to a whole-network prediction.

A sum of isolated block timings misses what a whole network adds or saves: one runtime call instead of
one per block, activations handed from block to block in cache, weights competing for cache. The fit is

    measured = a + b * block_sum + c * n_blocks

with ``a`` the per-network overhead, ``b`` a scale, and ``c`` the cost each isolated block timing adds
(its own call, a cold input) or misses. It is least squares on relative error (rows weighted by
1 / measured), since relative error is what the fidelity figures judge. Why three terms and not two:
on the MnasNet space at 64x64 the error of ``a + b * sum`` grows with the number of blocks (-9 % at
14 blocks, +11 % at 24); adding ``c`` took 50 held-out nets from 96 % to 100 % within ±10 % and Kendall
tau from 0.91 to 0.94 (``c`` came out at -13 us a block). A separate scale per block family (ir, ds,
with or without SE) did no better on held-out nets (tau 0.89). A space whose nets all have one depth
leaves ``c`` undetermined; the minimum-norm solution then still fits.
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

    def apply(self, block_sum_ms: float, n_blocks: int) -> float:
        return self.a + self.b * block_sum_ms + self.c * n_blocks

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "c": self.c, "loo_mape": self.loo_mape, "n": self.n}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            float(data["a"]), float(data["b"]), float(data["c"]), float(data["loo_mape"]), int(data["n"])
        )


def _solve(sums: Sequence[float], blocks: Sequence[int], measured: Sequence[float]) -> np.ndarray:
    x = np.column_stack([np.ones(len(sums)), np.asarray(sums, float), np.asarray(blocks, float)])
    y = np.asarray(measured, float)
    return np.linalg.lstsq(x / y[:, None], np.ones_like(y), rcond=None)[0]


def fit(sums: Sequence[float], blocks: Sequence[int], measured: Sequence[float]) -> Calibration:
    """Fit on (block sum ms, block count, measured ms) of the calibration nets; report leave-one-out error."""
    n = len(sums)
    if not n == len(blocks) == len(measured) or n < 4:
        raise DataError(f"calibration needs at least 4 nets with a block sum, count and measurement, got {n}")
    if min(sums) <= 0 or min(measured) <= 0:
        raise DataError("calibration latencies must be positive")
    errors = []
    for i in range(n):
        keep = [j for j in range(n) if j != i]
        a, b, c = _solve([sums[j] for j in keep], [blocks[j] for j in keep], [measured[j] for j in keep])
        errors.append(abs(a + b * sums[i] + c * blocks[i] - measured[i]) / measured[i])
    a, b, c = (float(v) for v in _solve(sums, blocks, measured))
    return Calibration(a, b, c, float(np.mean(errors)), n)
