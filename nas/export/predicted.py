"""The latency table's prediction for the exported arch, corrected for machine drift.

A table's milliseconds hold for the machine as it was while the table was built; on a shared machine
that can be 2-3x off an hour later (measured here: the mnasnet_small-28 table's anchor network timed
0.19 ms at build under load, 0.07 ms idle). As ``nas.latency.validate`` does, the table's anchor and
first calibration networks are timed again, interleaved with the exported models and in the table's
own timing regime (``sample_ms``), and the median of their now / at-build ratios rescales the
prediction. Both figures go into the model card.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.arch import ArchSpec
from nas.errors import NasError
from nas.export.source import Source
from nas.latency.backends.base import Settings, Timing

REFERENCE_NETS = 3  # the anchor and two calibration nets, as nas.latency.validate


@dataclass
class TablePrediction:
    """The prediction, and the table's reference networks to re-time beside the exported models."""

    info: dict[str, Any]
    references: dict[str, tuple[bytes, float]] = field(default_factory=dict)  # name: (onnx, ms at build)
    sample_ms: float | None = None  # the table's timed-sample length: re-time its references alike

    def models(self) -> dict[str, bytes]:
        return {name: data for name, (data, _) in self.references.items()}

    def result(self, timings: dict[str, Timing]) -> dict[str, Any]:
        """The card's entry: raw prediction, drift now vs at build, and the drift-corrected prediction."""
        if not self.references:
            return self.info
        drift = statistics.median(timings[n].median_ms / ms for n, (_, ms) in self.references.items())
        return {**self.info, "drift_vs_build": drift, "ms_drift_corrected": self.info["ms"] * drift}


def timing_settings(predictions: Iterable[TablePrediction], rounds: int, seed: int) -> Settings:
    """How to time exported models beside the references of ``predictions`` (all of one table): in the
    table's own sample length where it has references to re-time, else the default."""
    regimes = {p.sample_ms for p in predictions if p.sample_ms is not None}
    return Settings(rounds=rounds, seed=seed, **({"sample_ms": regimes.pop()} if regimes else {}))


def predict(source: Source, table_path: Path | None, pruned: bool) -> TablePrediction:
    """What the table at ``table_path`` predicts for the source's arch, or why it predicts nothing."""
    if table_path is None:
        return TablePrediction(
            {"ms": None, "note": "no table (pass --table latency_tables/<device>/...json)"}
        )
    from nas.latency.build import net_item
    from nas.latency.predictors import load_latency
    from nas.onnxrt import export_onnx

    table = load_latency(table_path)  # a table or a predictor; a shipped one by its relative path too
    s = table.settings
    base = {"ms": None, "table": str(table_path), "device": table.provenance.get("device")}
    if pruned:
        return TablePrediction({**base, "note": "pruned widths are not in the table"})
    # a table that stores its space says its dims (none before 1-D spaces: 2); one without: its keys will
    dims = s["space_config"].get("dims", 2) if s["space_config"] else source.arch.dims
    shape = (s["in_chans"], s["input_size"], dims, s["num_classes"])
    if shape != (source.in_chans, source.input_size, source.arch.dims, source.num_classes):
        inputs = "x".join(map(str, [s["in_chans"], *[s["input_size"]] * dims]))
        kind = "signal" if dims == 1 else "image"
        return TablePrediction(
            {**base, "note": f"table is for {inputs} {kind} inputs and {shape[3]} classes"}
        )
    try:
        ms = table.predict(source.arch)
    except NasError as exc:
        return TablePrediction({**base, "note": str(exc)})
    info = {
        **base,
        "ms": ms,
        "backend": table.provenance.get("backend"),
        "threads": table.provenance.get("threads"),
    }
    refs = [table.anchor, *table.calibration_nets][:REFERENCE_NETS] if table.anchor else []
    references = {}
    for i, ref in enumerate(r for r in refs if r and "median_ms" in r):
        item = net_item(f"table_ref{i}", ArchSpec.from_str(ref["arch"]), s)
        references[item.name] = (export_onnx(item.module, item.input_shape), ref["median_ms"])
    sample_ms = Settings.recorded(table.provenance.get("measure")).sample_ms if references else None
    return TablePrediction(info, references, sample_ms)
