"""What ``nas auto`` is asked to do (``AutoRequest``, recorded in ``DIR/auto.json`` so ``--resume`` asks for
the same), and the checks that refuse a request that cannot work before anything is written."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.arch import ArchSpec
from nas.auto import plan
from nas.auto.device import DeviceRequest
from nas.auto.profile import DataProfile
from nas.errors import UsageError
from nas.space import SearchSpace


@dataclass(frozen=True)
class AutoRequest:
    data: str
    budget_minutes: float
    out: Path
    objective: str = "auc"
    max_latency_ms: float | None = None
    latency_ratio: float | None = None
    reference: str | None = None  # None: plan.reference_for the data
    int8: bool = False
    format: str = "onnx"
    input_size: int | None = None  # None: the table's, else a .npz file's or a signal's own, else 28
    device: DeviceRequest = field(default_factory=DeviceRequest)
    resume: bool = False

    def record(self) -> dict[str, Any]:
        """What identifies the run (``--resume`` must ask for the same), plus the budget."""
        device = {
            k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self.device).items()
        }
        device["options"] = dict(self.device.options)
        return {
            "data": self.data,
            "budget_minutes": self.budget_minutes,
            "objective": self.objective,
            "max_latency_ms": self.max_latency_ms,
            "latency_ratio": self.latency_ratio,
            "reference": self.reference,
            "int8": self.int8,
            "format": self.format,
            "input_size": self.input_size,
            "device": device,
        }


def check_request(request: AutoRequest) -> None:
    """One-line ``UsageError``s for options that cannot work, before anything is loaded."""
    from nas.export.format import ExportOptions
    from nas.export.pipeline import check_format

    if request.budget_minutes <= 0:
        raise UsageError(f"--budget must be > 0 minutes, got {request.budget_minutes}")
    plan.objective_settings(request.objective)
    if request.max_latency_ms is not None and request.latency_ratio is not None:
        raise UsageError("give --max-latency-ms or --latency-ratio, not both")
    for name, value in (
        ("--max-latency-ms", request.max_latency_ms),
        ("--latency-ratio", request.latency_ratio),
    ):
        if value is not None and value <= 0:
            raise UsageError(f"{name} must be > 0, got {value}")
    check_format(ExportOptions(format=request.format, int8=request.int8))


def check_dims(profile: DataProfile, space: SearchSpace, request: AutoRequest, reference: ArchSpec) -> None:
    """One-line ``UsageError``s for a space (a given table's) or a reference network made for the other
    kind of data: a 2-D network cannot read signals, nor a 1-D one images."""
    from nas.zoo import REFERENCES

    data = f"{profile.name} holds {profile.modality}s ({profile.shape})"
    if space.config.dims != profile.dims:
        raise UsageError(
            f"latency table {request.device.table} is for the {space.config.dims}-D space {space.name} but "
            f"{data}: give a table of a {profile.dims}-D space ({plan.space_for(profile)}) or no --table"
        )
    if reference.dims != profile.dims:
        names = [n for n, r in REFERENCES.items() if ArchSpec.from_str(r.arch).dims == profile.dims]
        arch = " or a '1d:...' arch string" if profile.dims == 1 else " or an arch string"
        raise UsageError(
            f"--reference {request.reference} is a {reference.dims}-D network but {data}: give a "
            f"{profile.dims}-D one ({', '.join(names)}){arch}"
        )
