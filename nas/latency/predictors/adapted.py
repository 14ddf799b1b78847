"""``adapted``: another device's table carried to a new device by a few networks measured there.

A global map of the source's predictions (``a + b * prediction``) cannot change their order, but
devices differ in what is relatively expensive (a depthwise conv on one, a squeeze-excite on another).
So each op group's blocks (``features.block_group``: stem, head, conv, ds, ir, with or without SE) get
their own factor ``r_g`` on the source table's block latencies:

    measured ~ a + b0 * (sum_g r_g * (source block sum of group g) + sum_k m_k * MACs_k) + c * blocks

with ``b0`` the source calibration's scale refitted on the measured nets, solved for ``a``, ``c``, the
``r_g`` and ``m_k`` by ridge on relative error with a prior ``r_g = 1``, ``m_k = 0`` (the source's
relative costs), its strength by leave-one-out (``ridge.py``), each factor ``>= 0``: a group the
measured nets say little about keeps the source's cost. The MACs terms (the net's multiply-accumulates
in pointwise and in depthwise convolutions, ``features.layer_macs``) are for a device whose cost per MAC
differs from the source's, and differs between the two kinds that an MBConv block mixes in proportions
a per-group factor cannot see: compute-bound where the source was overhead-bound, or a compiler whose
untuned kernels run in time proportional to their MACs.

Why the bounds: every net has one stem, whose block sum takes two values (stride 1 or 2), so its
factor trades against the intercept; unbounded, 150 mnasnet_small nets at 28x28 on the shipped table's
own device kind fitted stem x-0.84. Bounded it is 0 (the stem's cost moves to the intercept), and 100
held-out nets were predicted as well as before (89 % within ±10 %, tau 0.936).
The corrected block sums then get the tables' 3-term calibration (``nas.latency.predict``). The
predictor keeps the source's block latencies it uses, so it needs no other file.

Measured on mnasnet_small at 28x28 (the shipped ONNX Runtime table of an AMD EPYC as the source, 20
nets learned from, 3 random splits): on ONNX Runtime on an Intel Xeon, Kendall tau 0.87 -> 0.92 and
44 % -> 82-89 % of 140 held-out nets within ±10 % (source scaled vs adapted); a factor per op group and
input size, or per op group and block size, did worse (79 %, 74 %). On untuned TVM the factors alone
gain nothing (on that Xeon 23-34 % of 70 nets within ±10 %; on an EPYC, from the EPYC's own ONNX
Runtime table, tau 0.82 and 20 % of 200): untuned TVM's time follows MACs (log-log correlation 0.99
over 220 nets) more than ONNX Runtime's block costs. The MACs terms were chosen on
``benchmarks/latency_transfer.py``'s nets (20 learned, 200 held out, one EPYC host), as Kendall tau /
within ±10 % with no MACs term, one for all MACs, and the two kinds:

    ONNX Runtime 1 -> 2 threads        0.908 / 80 %   0.913 / 78 %   0.913 / 81 %
    ONNX Runtime 2 -> 1 threads        0.933 / 82 %   0.948 / 88 %   0.950 / 90 %
    the shipped table -> ORT here      0.941 / 86 %   0.953 / 92 %   0.954 / 92 %
    ONNX Runtime -> untuned TVM        0.818 / 20 %   0.898 / 38 %   0.909 / 42 %

A third term for the other layers' MACs (full convolutions, linear) did worse on ONNX Runtime (77-84 %).
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
from nas.latency.predictors.features import block_group, layer_macs
from nas.latency.table import LatencyTable

MATCH = ("space", "input_size", "in_chans", "num_classes", "dtype")
MAC_KINDS = ("pointwise", "depthwise")  # of features.LAYER_KINDS: see the module docstring


class AdaptedModel(BaseModel):
    """``predicted ms = calibration(sum of entries[key] * corrections[group of key]
    + sum of mac_ms[kind] * MACs of that kind, blocks)``."""

    model_config = ConfigDict(extra="forbid")

    source: dict[str, Any]  # the source table's provenance (device, backend, date, command)
    corrections: dict[str, float]
    calibration: dict[str, float]
    entries: dict[str, float]  # the source's block medians (ms)
    mac_ms: dict[str, float] = {}  # ms (source scale) per million MACs of each kind; {} before them
    lam: float
    loo_mape: float


class AdaptedPredictor(Predictor):
    name = "adapted"
    Model = AdaptedModel

    def __init__(self, record: Any) -> None:
        super().__init__(record)
        self.calibration = Calibration.from_json(self.model.calibration)  # type: ignore[attr-defined]

    def predict(self, arch: ArchSpec) -> float:
        m: Any = self.model
        total, blocks = 0.0, 0
        s = self.settings
        for key, site in arch_keys(arch, s["in_chans"], s["input_size"], s["num_classes"], s["dtype"]):
            if key not in m.entries:
                raise ConfigError(f"latency predictor has no entry for block '{key}'")
            total += m.entries[key] * m.corrections.get(block_group(site), 1.0)
            blocks += 1
        if m.mac_ms:
            macs = layer_macs(arch, s)
            total += sum(ms * macs[kind] for kind, ms in m.mac_ms.items())
        return self.calibration.apply(total, blocks)


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
    by_kind = [layer_macs(arch, table.settings) for arch in nets]
    macs = np.array([[kinds[k] for k in MAC_KINDS] for kinds in by_kind])
    # m_k = 1: that kind's MACs cost as much as the source's whole blocks, on average
    unit = s.sum(1).mean() / np.where(macs.mean(0) > 0, macs.mean(0), np.inf)
    b0 = calibrate(s.sum(1).tolist(), n.astype(int).tolist(), y.tolist()).b
    design = np.column_stack([np.ones(len(y)), n, b0 * s, b0 * unit * macs])
    terms = len(groups) + len(MAC_KINDS)
    prior = np.array([0.0, 0.0, *[1.0] * len(groups), *[0.0] * len(MAC_KINDS)])
    penalized = np.array([False, False, *[True] * terms])
    lower = np.array([-np.inf, -np.inf, *[0.0] * terms])  # no cost is less than nothing
    found = ridge.fit(design, y, prior, penalized, lower)
    factors, mac_ms = found.weights[2 : 2 + len(groups)], found.weights[2 + len(groups) :] * unit
    corrections = dict(zip(groups, factors.tolist(), strict=True))
    corrected = (s * factors).sum(1) + macs @ mac_ms
    calibration = calibrate(corrected.tolist(), n.astype(int).tolist(), y.tolist())
    model = AdaptedModel(
        source={k: table.provenance.get(k) for k in ("device", "backend", "threads", "date", "command")},
        corrections=corrections,
        calibration=calibration.to_json(),
        entries={k: e["median_ms"] for k, e in sorted(table.entries.items())},
        mac_ms=dict(zip(MAC_KINDS, mac_ms.tolist(), strict=True)),
        lam=found.lam,
        loo_mape=found.loo_mape,
    )
    settings = {**table.settings, "dims": wanted.get("dims", 2)}
    record = make_record("adapted", settings, measured, model)
    record.provenance["device"] = device
    return AdaptedPredictor(record)
