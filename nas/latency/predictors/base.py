"""Predictor files: a latency model for one device, space and data shape, used wherever a table is.

A predictor file is ``PredictorFile``: ``schema_version``, its ``kind`` (a name in ``PREDICTORS``:
``fitted``, ``adapted``), the table settings it answers for, the provenance of the measured networks it
learned from (their sidecar's: device, backend, target, threads, date), those networks (the anchor
and the measured nets, which ``nas latency validate`` re-times to divide out drift, as a table's
calibration nets) and the kind's ``model``: plain JSON, never a pickle.

A ``Predictor`` offers what the search, validation and reports ask of a ``LatencyTable``:
``settings``, ``provenance``, ``anchor``, ``calibration_nets``, ``space()`` and ``predict(arch)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from nas.arch import ArchSpec
from nas.errors import ConfigError, first_problem
from nas.latency.table import TableSettings
from nas.outdir import write_shared
from nas.space import SearchSpace
from nas.space_config import SpaceConfig

SCHEMA_VERSION = 1
_SETTINGS = TypeAdapter(TableSettings)


class PredictorFile(BaseModel):
    """The file; ``model`` is checked by the kind's own ``Model``."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1]
    kind: str
    settings: dict[str, Any]  # a table's settings (TableSettings) plus dims
    provenance: dict[str, Any]
    anchor: dict[str, Any] | None = None
    calibration_nets: list[dict[str, Any]] = []
    model: dict[str, Any]


class Predictor:
    """A loaded predictor; a kind subclasses it with ``name``, ``Model`` and ``predict``."""

    name: ClassVar[str]
    Model: ClassVar[type[BaseModel]]  # the kind's ``model`` record

    def __init__(self, record: PredictorFile) -> None:
        self.record = record
        self.model = self.Model.model_validate(record.model)

    @property
    def settings(self) -> dict[str, Any]:
        return self.record.settings

    @property
    def provenance(self) -> dict[str, Any]:
        return self.record.provenance

    @property
    def anchor(self) -> dict[str, Any] | None:
        return self.record.anchor

    @property
    def calibration_nets(self) -> list[dict[str, Any]]:
        return self.record.calibration_nets

    @property
    def input_size(self) -> int:
        return self.settings["input_size"]

    def space(self) -> SearchSpace:
        config = SpaceConfig.model_validate(self.settings["space_config"])
        return SearchSpace(config, f"latency predictor settings.space_config (space '{config.name}')")

    def predict(self, arch: ArchSpec) -> float:
        """Predicted whole-network latency (ms)."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {**self.record.model_dump(mode="json"), "model": self.model.model_dump(mode="json")}

    def save(self, path: str | Path) -> None:
        """Write atomically; a path that cannot be written is a one-line ``DataError``."""
        write_shared(path, json.dumps(self.to_json(), indent=1) + "\n", "latency predictor")


def make_record(kind: str, settings: dict[str, Any], measured: Any, model: BaseModel) -> PredictorFile:
    """The file of a predictor of ``kind`` learned from the measured set ``measured``
    (``nas.latency.measured.Measured``): its provenance, anchor and nets."""
    side = measured.sidecar
    return PredictorFile(
        schema_version=SCHEMA_VERSION,
        kind=kind,
        settings=settings,
        provenance={**side.provenance, "measured_nets": len(measured.nets)},
        anchor=side.anchor,
        calibration_nets=[{"arch": a.to_str(), "median_ms": ms} for a, ms in measured.nets],
        model=model.model_dump(mode="json"),
    )


def from_json(data: Any) -> Predictor:
    """A predictor from a file's content; any problem is a one-line ``ConfigError`` naming the field."""
    from nas.latency.predictors import PREDICTORS

    if not isinstance(data, dict):
        raise ConfigError("not a latency predictor (expected a JSON object)")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(
            f"unknown latency predictor schema_version {data.get('schema_version')!r} "
            f"(this version reads {SCHEMA_VERSION})"
        )
    kind = data.get("kind")
    if kind not in PREDICTORS:
        raise ConfigError(f"unknown latency predictor kind {kind!r} (known: {', '.join(PREDICTORS.names())})")
    prefix = ""
    try:
        record = PredictorFile.model_validate(data)
        prefix = "settings."
        _SETTINGS.validate_python(record.settings)
        prefix = "model."
        return PREDICTORS.get(kind)(record)
    except ValidationError as exc:
        where, problem = first_problem(exc)
        raise ConfigError(f"malformed latency predictor: field '{prefix}{where}': {problem}") from None
