"""``adapted``: another device's table carried to a new device by a few networks measured there.

A global map of the source's predictions (``a + b * prediction``) cannot change their order, but
devices differ in what is relatively expensive (a depthwise conv on one, a squeeze-excite on another).
So each op group's blocks (``features.block_group``: stem, head, conv, ds, ir, with or without SE) get
their own factor ``r_g`` on the source table's block latencies, beside terms ``t_k`` of the net that a
device's cost may follow where the source's does not (``features.cost_terms``: MACs of pointwise and of
depthwise convolutions, pointwise MACs times the channels each reduces over, convolution layers,
operators, elements squeeze-excite rescales, the convs' MACs with channels padded to 16, parameters):

    measured ~ a + b0 * (sum_g r_g * (source block sum of group g) + sum_k m_k * t_k) + c * blocks

with ``b0`` the source calibration's scale refitted on the measured nets (the ratio of the means where
that comes out <= 0), solved for ``a``, ``c``, the ``r_g`` and ``m_k`` by ridge on relative error with
a prior ``r_g = 1``, ``m_k = 0`` (the source's relative costs), its strength by leave-one-out
(``ridge.py``), each factor ``>= 0``: a group the measured nets say little about keeps the source's
cost. Where the source is nothing like the device (ONNX Runtime's blocks against untuned TVM's naive
loops, 1.7x to 23x slower per block, in no fixed proportion), that prior only misleads; so the fit is
also made without the source's blocks (``r_g = 0``, the terms alone), and the two are mixed, ``w`` of
the first (``source_weight``), ``w`` chosen on their leave-one-out predictions (stacking). Both fits
are linear in the same columns, so the mix is one such model: factors ``w * r_g``, term costs
``w * m_k + (1 - w) * m'_k``.

Why the bounds: every net has one stem, whose block sum takes two values (stride 1 or 2), so its
factor trades against the intercept; unbounded, 150 mnasnet_small nets at 28x28 on the shipped table's
own device kind fitted stem x-0.84. Bounded it is 0 (the stem's cost moves to the intercept), and 100
held-out nets were predicted as well as before (89 % within ±10 %, tau 0.936).
The corrected block sums then get the tables' 3-term calibration (``nas.latency.predict``), refitted on
the measured nets in place of the fits' own intercept and block cost. The predictor keeps the source's
block latencies it uses, so it needs no other file.

Chosen by measurement on ``benchmarks/latency_transfer.py``'s nets (mnasnet_small at 28x28, one EPYC
host, ONNX Runtime then timed one run at a time): share within ±10 % of 200 held-out nets, mean over 5
sets of 20 learned nets each timed on its own, for the source's factors with the MACs of the two conv
kinds; with the first four terms; the design with the lower leave-one-out error, with the source or
the terms alone; and the mix (in brackets: 30 random draws of 20 from all 220 nets, judged on the other
200, which leaves out the timing sessions' differences):

    ONNX Runtime 1 thread -> untuned TVM     56 %   76 %   85 %   85 % (85 %)
    untuned TVM -> ONNX Runtime 1 thread     47 %   63 %   67 %   67 % (79 %)
    ONNX Runtime 1 -> 2 threads              73 %   72 %   72 %   71 % (88 %)
    ONNX Runtime 2 -> 1 thread               84 %   83 %   83 %   83 % (92 %)

Untuned TVM's 1x1 convs cost more per MAC the more channels they reduce over (14x14 inverted-residual
blocks: 0.37 ms per million MACs at 16 input channels, 0.80 at 72); ONNX Runtime's small blocks cost
per op. Also tried: a nonnegative intercept and block cost in the terms-alone fit (with the choice of
design, on the draws: 86 % and 77 % on the first two rows, no real change); mixing the two designs'
calibrated predictions instead (the draws: 85, 79, 88, 92 %, the same); earlier, on one draw, a factor
per op group and input size, or per op group and block size (ONNX Runtime 79 %, 74 % against 82-89 %),
and a term for the other layers' MACs (full convolutions, linear), all worse.

The next four terms came from ONNX Runtime's own full table (1 thread, 2 ms samples): a linear model of
each block's time on its MACs (by conv kind) and activations put 60 % of 870 blocks within ±10 %; the
ones it under-predicted had 24, 40 or 72 channels (padded to 32, 48, 80 by AVX-512's blocked layout) or
squeeze-excite in an inverted residual (two passes over the expanded tensor); with an operator count,
the SE elements and the padded MACs 90 %. On the same nets, ONNX Runtime now timed in 2 ms samples,
the mix with the first four terms -> all eight (brackets: 20 draws as above):

    ONNX Runtime 1 thread -> untuned TVM     84 % -> 84 % (84 %)
    untuned TVM -> ONNX Runtime 1 thread     66 % -> 91 % (96 %)
    ONNX Runtime 2 -> 1 thread               83 % -> 91 % (98 %)
    ONNX Runtime 2 threads -> untuned TVM    82 % -> 80 % (84 %)
    ONNX Runtime 1 -> 2 threads              66 % -> 68 % (68 %)
    untuned TVM -> ONNX Runtime 2 threads    56 % -> 68 % (64 %)

Keeping the first four terms beside the source's blocks (all eight in the terms alone) gave 84, 90, 93,
81, 65, 68 %: the same. The terms alone, without the mix, 84, 90, 90, 84, 65, 66 %: the source's blocks
help where its device is alike (ONNX Runtime 2 -> 1 thread) and the mix leaves them out elsewhere.

The last term, the net's parameters, is for nets whose weights outgrow the cache (``nas.latency.predict``
has the measurement): on the MnasNet space at 64 px, ONNX Runtime 2 -> 1 thread went from 68 % to 85 %
within ±10 %; the six pairs above, their tables' calibrations refitted with the same term, came out at
83, 96, 96, 83, 73 and 69 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from nas.arch import ArchSpec
from nas.errors import ConfigError
from nas.latency.keys import arch_keys
from nas.latency.predict import Calibration
from nas.latency.predict import fit as calibrate
from nas.latency.predictors import ridge
from nas.latency.predictors.base import Predictor, make_record
from nas.latency.predictors.features import COST_TERMS, block_group, cost_terms
from nas.latency.table import LatencyTable

MATCH = ("space", "input_size", "in_chans", "num_classes", "dtype")


class AdaptedModel(BaseModel):
    """``predicted ms = calibration(sum of entries[key] * corrections[group of key]
    + sum of mac_ms[term] * term + conv_ms * conv layers, blocks)``."""

    model_config = ConfigDict(extra="forbid")

    source: dict[str, Any]  # the source table's provenance (device, backend, date, command)
    corrections: dict[str, float]  # the fit with the source's factors, times source_weight
    calibration: dict[str, float]
    entries: dict[str, float]  # the source's block medians (ms)
    # ms (source scale) per unit (``features.TERM_UNITS``) of each cost term but conv layers (named for
    # the MACs terms that came first); {} in files written before the terms, fewer terms in older files
    mac_ms: dict[str, float] = {}
    conv_ms: float = 0.0  # ms (source scale) per convolution layer
    # the share of the fit with the source's blocks in the mix with the terms alone; 1 before the mix
    source_weight: float = 1.0
    loo_mape_by_design: dict[str, float] = {}  # "source" (its blocks and the terms), "terms", "mixed"
    lam: float  # the ridge strength of the fit with the source's blocks
    loo_mape: float  # of the mix (its weight chosen on the same left-out predictions)


class AdaptedPredictor(Predictor):
    name = "adapted"
    Model = AdaptedModel

    def __init__(self, record: Any) -> None:
        super().__init__(record)
        self.calibration = Calibration.from_json(self.model.calibration)  # type: ignore[attr-defined]

    def predict(self, arch: ArchSpec) -> float:
        m: Any = self.model
        total = 0.0
        s = self.settings
        sites = arch_keys(arch, s["in_chans"], s["input_size"], s["num_classes"], s["dtype"])
        for key, site in sites:
            if key not in m.entries:
                raise ConfigError(f"latency predictor has no entry for block '{key}'")
            # a group no learned net had kept its prior factor, 1, in the fit with the source
            total += m.entries[key] * m.corrections.get(block_group(site), m.source_weight)
        if m.mac_ms or m.conv_ms:
            terms = cost_terms(arch, s)
            total += sum(ms * terms[term] for term, ms in m.mac_ms.items()) + m.conv_ms * terms["conv_layers"]
        return self.calibration.apply(total, len(sites))


def group_sums(table: LatencyTable, arch: ArchSpec) -> tuple[dict[str, float], int]:
    """The source table's block latencies of ``arch`` summed per op group, and its block count."""
    sums: dict[str, float] = {}
    s = table.settings
    sites = arch_keys(arch, s["in_chans"], s["input_size"], s["num_classes"], s["dtype"])
    for key, site in sites:
        entry = table.entries.get(key)
        if entry is None:
            raise ConfigError(f"latency table has no entry for block '{key}'")
        sums[block_group(site)] = sums.get(block_group(site), 0.0) + entry["median_ms"]
    return sums, len(sites)


def adapt(table: LatencyTable, measured: Any, device: str) -> AdaptedPredictor:
    """The predictor for ``device`` from the source ``table`` and the measured set
    (``nas.latency.measured.Measured``) of the same space and data shape."""
    wanted = measured.sidecar.settings
    differ = [k for k in MATCH if table.settings.get(k) != wanted.get(k)]
    if differ:
        shown = ", ".join(f"{k} {table.settings.get(k)} vs {wanted.get(k)}" for k in differ)
        raise ConfigError(f"the table and the measured nets differ in {shown}")
    nets = [arch for arch, _ in measured.nets]
    y = np.array([ms for _, ms in measured.nets])
    rows = [group_sums(table, arch) for arch in nets]
    groups = sorted({g for sums, _ in rows for g in sums})
    s = np.array([[sums.get(g, 0.0) for g in groups] for sums, _ in rows])
    n = np.array([blocks for _, blocks in rows], float)
    terms = np.array([[net[t] for t in COST_TERMS] for net in (cost_terms(a, table.settings) for a in nets)])
    # a term's weight 1: it costs as much as the source's whole blocks, on average (0: no net has it)
    mean = terms.mean(0)
    unit = np.divide(s.sum(1).mean(), mean, out=np.zeros_like(mean), where=mean > 0)
    b0 = calibrate(s.sum(1).tolist(), n.astype(int).tolist(), y.tolist()).b
    if b0 <= 0:  # the source's block sums fall as the device's times rise: no scale to lend, so its mean's
        b0 = float(y.mean() / s.sum(1).mean())  # (a cost >= 0 times a scale <= 0 could fit nothing)
    with_source = _fit_design(b0 * s, b0 * unit * terms, n, y)
    alone = _fit_design(np.zeros((len(y), 0)), b0 * unit * terms, n, y)
    w, loo_mixed = ridge.mix(with_source.loo_predicted, alone.loo_predicted, y)  # a tie: the source
    factors = w * with_source.weights[2 : 2 + len(groups)]
    n_terms = len(COST_TERMS)
    term_ms = (w * with_source.weights[-n_terms:] + (1 - w) * alone.weights[-n_terms:]) * unit
    corrected = (s * factors).sum(1) + terms @ term_ms
    calibration = calibrate(corrected.tolist(), n.astype(int).tolist(), y.tolist())
    by_term = dict(zip(COST_TERMS, term_ms.tolist(), strict=True))
    conv_ms = by_term.pop("conv_layers")
    model = AdaptedModel(
        source={k: table.provenance.get(k) for k in ("device", "backend", "threads", "date", "command")},
        corrections=dict(zip(groups, factors.tolist(), strict=True)),
        calibration=calibration.to_json(),
        entries={k: e["median_ms"] for k, e in sorted(table.entries.items())},
        mac_ms=by_term,
        conv_ms=conv_ms,
        source_weight=w,
        loo_mape_by_design={
            "source": with_source.loo_mape,
            "terms": alone.loo_mape,
            "mixed": loo_mixed,
        },
        lam=with_source.lam,
        loo_mape=loo_mixed,
    )
    settings = {**table.settings, "dims": wanted.get("dims", 2)}
    record = make_record("adapted", settings, measured, model)
    record.provenance["device"] = device
    return AdaptedPredictor(record)


def _fit_design(source_sums: np.ndarray, terms: np.ndarray, blocks: np.ndarray, y: np.ndarray) -> ridge.Ridge:
    """Ridge over ``[1, blocks, source group sums (prior 1), cost terms (prior 0)]``, factors >= 0."""
    g, t = source_sums.shape[1], terms.shape[1]
    design = np.column_stack([np.ones(len(y)), blocks, source_sums, terms])
    prior = np.array([0.0, 0.0, *[1.0] * g, *[0.0] * t])
    penalized = np.array([False, False, *[True] * (g + t)])
    lower = np.array([-np.inf, -np.inf, *[0.0] * (g + t)])  # no cost is less than nothing
    return ridge.fit(design, y, prior, penalized, lower)
