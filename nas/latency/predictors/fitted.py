"""``fitted``: a latency model learned from measured whole networks alone, with no table.

Whole-network latency is modelled as linear in the arch features (``features.py``: per op group the
block count and the sums of kernel, expansion, activations and MACs; the net's MACs, parameters and
blocks), features scaled to unit spread, fitted by ridge on relative error (``ridge.py``), strength by
leave-one-out. Chosen by measurement: 160 random mnasnet_small nets at 28x28 timed with ONNX Runtime
(1 thread) on this machine, 5 random splits, held-out Kendall tau / within ±10 %:

    train nets   linear ridge, relative error   ridge on log latency   gradient boosting on log latency
    20           0.88 / 69 %                    0.83 / 49 %            0.78 / 41 %
    60           0.92 / 91 %                    0.85 / 58 %            0.84 / 63 %

The net's MACs by layer kind (pointwise, depthwise, other; ``features.layer_macs``) were added later,
chosen on ``benchmarks/latency_transfer.py``'s nets (20 learned, 200 held out, one EPYC host): ONNX
Runtime 1 thread tau 0.833 -> 0.851 (52 % -> 55 % within ±10 %), 2 threads 0.815 -> 0.830 (61 % ->
66 %), untuned TVM 0.837 -> 0.867 (28 % -> 30 %). Then ``features.cost_terms``' pointwise MACs x input
channels and conv layer count, on the same nets, mean of 10 random draws of 20 learned nets judged on
the other 200: untuned TVM 0.863 -> 0.902 (35 % -> 49 % within), ONNX Runtime 1 thread 0.877 -> 0.879
(66 %, unchanged), 2 threads 0.844 -> 0.859 (63 % -> 65 %).

That model has some 40 features for 20 nets, and a runtime's cost is not in them: ONNX Runtime's per
operator and per channel-padded MAC, untuned TVM's per MAC x channel reduced over. So a second design
fits the cost terms alone (``features.cost_terms`` and the block count, each cost ``>= 0``, ridge as
above), and the two are mixed by their leave-one-out predictions (``features_weight`` is the first's
share; ``ridge.mix``), into one linear model on the same features. On the same nets in 2 ms samples
(ONNX Runtime) and single runs (TVM), 20 learned, mean of 5 sets each timed on its own, tau / within
±10 % on 200 others: ONNX Runtime 1 thread 0.867 / 47 % -> 0.969 / 92 %, 2 threads 0.787 / 38 % ->
0.925 / 67 %, untuned TVM 0.897 / 47 % -> 0.961 / 86 %; with the parameters as a cost term, 0.973 /
95 %, 0.926 / 67 %, 0.958 / 83 %, and on the MnasNet space at 64 px (ONNX Runtime 1 thread) 83 % -> 88 %.

Latency adds up over blocks, which a linear model on summed features keeps and a log or tree model
does not; scikit-learn is therefore not needed. A linear model extrapolates, though: a net far smaller
than every measured one could come out at or below 0 ms and win any search on a latency it cannot have,
so no prediction goes below half the fastest measured net (``floor_ms``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from nas.arch import ArchSpec
from nas.latency.predictors import ridge
from nas.latency.predictors.base import Predictor, make_record
from nas.latency.predictors.features import TERM_FEATURES, arch_features

# a net's cost as blocks and features.cost_terms, each of which costs >= 0
COST_FEATURES = ("blocks", *TERM_FEATURES.values())


class FittedModel(BaseModel):
    """``predicted ms = max(floor_ms, intercept + sum_k coef_k * feature_k / scale_k)``."""

    model_config = ConfigDict(extra="forbid")

    features: list[str]
    scale: list[float]
    coef: list[float]
    intercept: float
    lam: float
    loo_mape: float
    floor_ms: float = 0.0  # files fitted before the floor existed load unchanged
    # the share of the fit on every feature in the mix with the cost terms' (1: files before the mix)
    features_weight: float = 1.0
    loo_mape_by_design: dict[str, float] = {}  # "features", "costs", "mixed"

    @model_validator(mode="after")
    def _same_lengths(self) -> FittedModel:
        if not len(self.features) == len(self.scale) == len(self.coef):
            raise ValueError("features, scale and coef need the same length")
        return self


class FittedPredictor(Predictor):
    name = "fitted"
    Model = FittedModel

    def predict(self, arch: ArchSpec) -> float:
        m: Any = self.model
        found = arch_features(arch, self.settings)
        x = np.array([found.get(k, 0.0) for k in m.features]) / np.array(m.scale)
        return max(m.floor_ms, float(m.intercept + x @ np.array(m.coef)))


def fit_predictor(measured: Any) -> FittedPredictor:
    """Fit on a measured set (``nas.latency.measured.Measured``); its archs must be of its space."""
    space = measured.space()
    settings = measured.sidecar.settings
    for arch, _ in measured.nets:
        space.encode(arch)  # a ConfigError naming the stage that cannot be
    rows = [arch_features(arch, settings) for arch, _ in measured.nets]
    names = sorted({k for row in rows for k in row})
    x = np.array([[row.get(k, 0.0) for k in names] for row in rows])
    varies = np.ptp(x, axis=0) > 0  # a feature constant over the nets is the intercept's
    names, x = [k for k, v in zip(names, varies, strict=True) if v], x[:, varies]
    y = np.array([ms for _, ms in measured.nets])
    scale = x.std(0)
    every = ridge.fit(
        np.column_stack([np.ones(len(y)), x / scale]),
        y,
        np.zeros(len(names) + 1),
        np.array([False, *[True] * len(names)]),
    )
    costs = [i for i, name in enumerate(names) if name in COST_FEATURES]
    by_costs = _fit_costs(x[:, costs], y)
    w, loo_mixed = ridge.mix(every.loo_predicted, by_costs.loo_predicted, y)
    coef = w * every.weights[1:]
    coef[costs] += (1 - w) * by_costs.weights[1:] * scale[costs]  # on the features' scale
    model = FittedModel(
        features=names,
        scale=scale.tolist(),
        coef=coef.tolist(),
        intercept=float(w * every.weights[0] + (1 - w) * by_costs.weights[0]),
        lam=every.lam,
        loo_mape=loo_mixed,
        floor_ms=float(y.min()) / 2,
        features_weight=w,
        loo_mape_by_design={"features": every.loo_mape, "costs": by_costs.loo_mape, "mixed": loo_mixed},
    )
    return FittedPredictor(make_record("fitted", settings, measured, model))


def _fit_costs(x: np.ndarray, y: np.ndarray) -> ridge.Ridge:
    """Ridge over ``[1, cost features]``, every cost ``>= 0``, each feature in units that cost the mean
    net's latency (so one prior, 0, and one strength fit them all); weights returned per feature unit."""
    unit = y.mean() / x.mean(0)
    found = ridge.fit(
        np.column_stack([np.ones(len(y)), x * unit]),
        y,
        np.zeros(x.shape[1] + 1),
        np.array([False, *[True] * x.shape[1]]),
        np.array([-np.inf, *[0.0] * x.shape[1]]),
    )
    return replace(found, weights=np.concatenate([found.weights[:1], found.weights[1:] * unit]))
