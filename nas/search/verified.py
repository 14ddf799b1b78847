"""A search run's ``verify.json``: its finalists' predicted latency beside their latency measured on the
table's own backend after the search (``nas.search.verify``). This module alone writes and reads the file.

A table ranks networks by summing blocks; a device whose blocks fuse or overlap can order whole networks
otherwise. ``order_changed`` says whether it did among the verified nets: some pair is ordered one way by
the prediction and the other way by the measurement (ties on either side change nothing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, computed_field

from nas.search.records import read_record, version_type, write_record

VERIFY_FILE = "verify.json"
SCHEMA_VERSION = 1
VerifyVersion = version_type(SCHEMA_VERSION)


class VerifiedNet(BaseModel):
    """One re-measured trial: predicted and measured (drift-corrected, on the table's scale) ms."""

    number: int
    arch: str
    predicted_ms: float
    measured_ms: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratio(self) -> float:
        """Measured / predicted: above 1 where the device is slower than the table says."""
        return self.measured_ms / self.predicted_ms


class VerifyRecord(BaseModel):
    """The verified nets in the order they were chosen (finalists first, then by ``rank_by``), where they
    were measured, and how well the prediction ordered them."""

    schema_version: VerifyVersion = SCHEMA_VERSION
    table: str  # the experiment's latency.table
    backend: str
    device: str | None = None  # the table's device; the nets were measured on this machine
    rank_by: str  # "final" when finalists lead, then "reward" or the front's first metric
    nets: list[VerifiedNet]
    kendall_tau: float | None = None  # None under two nets (NaN is not JSON)
    order_changed: bool


def order_changed(predicted: Sequence[float], measured: Sequence[float]) -> bool:
    """Whether some pair is ordered one way by ``predicted`` and the other way by ``measured``."""
    pairs = list(zip(predicted, measured, strict=True))
    return any((p1 - p2) * (m1 - m2) < 0 for i, (p1, m1) in enumerate(pairs) for p2, m2 in pairs[i + 1 :])


def make_record(nets: list[VerifiedNet], **fields: Any) -> VerifyRecord:
    """The record of ``nets`` with its tau and order flag computed."""
    from nas.latency.validate import kendall_tau

    predicted, measured = [n.predicted_ms for n in nets], [n.measured_ms for n in nets]
    tau = kendall_tau(predicted, measured)
    return VerifyRecord(
        nets=nets,
        kendall_tau=tau if math.isfinite(tau) else None,
        order_changed=order_changed(predicted, measured),
        **fields,
    )


def write_verified(record: VerifyRecord, run_dir: str | Path) -> Path:
    return write_record(Path(run_dir) / VERIFY_FILE, record.model_dump_json(indent=2))


def read_verified(run_dir: str | Path) -> VerifyRecord | None:
    """The run's verify record, None when it was never verified; a broken file is a one-line error."""
    path = Path(run_dir) / VERIFY_FILE
    if not path.is_file():
        return None
    return read_record(VerifyRecord, path, "a verify record")


def merge_verified(rows: list[dict[str, Any]], record: VerifyRecord | None) -> None:
    """Give the verified ``rows`` their ``measured_latency_ms`` and ``latency_ratio`` (measured /
    predicted ``latency_ms``), in place; stale columns of the others are dropped."""
    nets = {n.number: n for n in record.nets} if record is not None else {}
    for row in rows:
        row.pop("measured_latency_ms", None)
        row.pop("latency_ratio", None)
        net = nets.get(row["number"])
        if net is not None and net.arch == row["arch"]:
            row.update(measured_latency_ms=net.measured_ms, latency_ratio=net.ratio)
