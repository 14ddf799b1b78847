"""Whole networks measured on a device: ``MEASURED.csv`` (``arch,latency_ms``) and its sidecar
``MEASURED.json`` (what was measured, where, how, and the anchor network timed among them).

The networks are timed as the table build times its calibration nets: interleaved with the space's
anchor network (``nas.latency.build.anchor_arch``) in round-robin rounds. The anchor's time is kept,
so a later measurement on the same device can divide out the drift since. Nothing is written until
every network is timed; bad input is refused before any timing.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from nas.arch import ArchSpec
from nas.errors import DataError, NasError, first_problem
from nas.latency.backends.base import Backend, Settings
from nas.latency.build import ANCHOR, anchor_arch, net_item, table_settings
from nas.latency.table import TableSettings, host_provenance
from nas.outdir import writable_dir, write_shared
from nas.space import SearchSpace

SCHEMA_VERSION = 1
COLUMNS = ("arch", "latency_ms")
MEASURE_SEED = "nas-latency-measure-{seed}"
_SETTINGS = TypeAdapter(TableSettings)


class MeasuredSidecar(BaseModel):
    """``MEASURED.json``: the settings the nets were measured for (a table's, plus ``dims``), where and
    how (device, CPU, backend, target, threads, date, command), and the anchor's timing."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    settings: dict[str, Any]  # space, space_config, input_size, in_chans, num_classes, dtype, dims
    provenance: dict[str, Any]
    anchor: dict[str, Any]  # arch, median_ms, spread_ms, rounds
    nets: int = Field(ge=1)
    seed: int | None = None  # the --seed of random nets; None for an --archs file


@dataclasses.dataclass(frozen=True)
class Measured:
    """A measured set: (arch, ms) pairs and their sidecar."""

    nets: list[tuple[ArchSpec, float]]
    sidecar: MeasuredSidecar

    def space(self) -> SearchSpace:
        from nas.space_config import SpaceConfig

        config = SpaceConfig.model_validate(self.sidecar.settings["space_config"])
        return SearchSpace(config, f"measured set settings.space_config (space '{config.name}')")


def sidecar_path(csv_path: str | Path) -> Path:
    return Path(csv_path).with_suffix(".json")


def random_nets(space: SearchSpace, n: int, seed: int) -> list[ArchSpec]:
    """``n`` distinct random nets of ``space`` from ``seed``, never the anchor."""
    from nas.latency.build import sample_distinct

    return sample_distinct(space, n, MEASURE_SEED.format(seed=seed), {anchor_arch(space)})


def read_archs(path: str | Path, space: SearchSpace | None = None) -> list[ArchSpec]:
    """One canonical arch string per line (blank lines and ``#`` comments skipped; a CSV whose header
    starts with ``arch`` gives its first column); each must be of ``space`` where one is given."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise DataError(f"{path}: cannot read the archs file: {why}") from None
    rows = [(i, line.strip()) for i, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")]
    if rows and next(csv.reader([rows[0][1]]))[0] == "arch":  # a CSV: arch strings hold commas, quoted
        rows = [(i, next(csv.reader([line]))[0]) for i, line in rows[1:]]
    if not rows:
        raise DataError(f"{path}: no arch strings (one canonical arch string per line)")
    archs = []
    for number, text in rows:
        try:
            arch = ArchSpec.from_str(text)
            if space is not None:
                space.encode(arch)
        except NasError as exc:
            raise DataError(f"{path} line {number}: {exc}") from None
        archs.append(arch)
    return archs


def measure_archs(
    space: SearchSpace,
    archs: list[ArchSpec],
    input_size: int,
    in_chans: int,
    num_classes: int,
    backend: Backend,
    device: str,
    measure: Settings | None = None,
    seed: int | None = None,
) -> Measured:
    """Time ``archs`` whole, interleaved with the space's anchor, in one call of the backend (a TVM
    backend compiles every net once per call)."""
    measure = measure or Settings()
    settings = {**table_settings(space, input_size, in_chans, num_classes), "dims": space.config.dims}
    anchor = anchor_arch(space)
    items = [net_item(ANCHOR, anchor, settings)]
    items += [net_item(a.to_str(), a, settings) for a in dict.fromkeys(archs) if a != anchor]
    timings = backend.measure(items, measure)
    provenance = {
        **host_provenance(device),
        **backend.provenance(),
        "backend": backend.name,
        "threads": backend.threads,
        "measure": dataclasses.asdict(measure),
    }
    anchor_record = {"arch": anchor.to_str(), **timings[ANCHOR].to_json()}
    nets = [(a, timings[ANCHOR if a == anchor else a.to_str()].median_ms) for a in archs]
    sidecar = MeasuredSidecar(
        settings=settings, provenance=provenance, anchor=anchor_record, nets=len(nets), seed=seed
    )
    return Measured(nets, sidecar)


def check_free(path: str | Path) -> None:
    """Refuse an ``--out`` that exists or whose folder takes no files, before any work."""
    path = Path(path)
    if path.exists():
        raise DataError(f"{path} exists; choose another --out")
    writable_dir(path.parent, str(path))


def check_out(path: str | Path) -> None:
    """``check_free`` for a measured CSV and its sidecar."""
    path = Path(path)
    if path.suffix != ".csv":
        raise DataError(f"--out {path} must end in .csv (its sidecar is {sidecar_path(path).name})")
    check_free(sidecar_path(path))
    check_free(path)


def write_csv(path: str | Path, rows: list[tuple[str, float]]) -> None:
    """``arch,latency_ms`` rows, written atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows((arch, repr(float(ms))) for arch, ms in rows)
    write_shared(path, text.getvalue(), "measured latencies")


def save(measured: Measured, path: str | Path) -> None:
    """``path`` (the CSV) and its sidecar."""
    write_csv(path, [(a.to_str(), ms) for a, ms in measured.nets])
    sidecar = json.dumps(measured.sidecar.model_dump(mode="json"), indent=1) + "\n"
    write_shared(sidecar_path(path), sidecar, "measured latencies' sidecar")


def load(path: str | Path) -> Measured:
    """Read a measured CSV and its sidecar; any problem is a one-line ``DataError`` naming the file."""
    path, side = Path(path), sidecar_path(path)
    if not path.is_file():
        raise DataError(f"{path}: no measured set there (nas latency measure writes one)")
    where = ""
    try:
        sidecar = MeasuredSidecar.model_validate(json.loads(side.read_text()))
        where = "settings."
        _SETTINGS.validate_python(sidecar.settings)  # so that Measured.space cannot fail
    except OSError as exc:
        raise DataError(f"{side}: cannot read the measured set's sidecar: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"{side}: not JSON") from None
    except ValidationError as exc:
        field, problem = first_problem(exc)
        raise DataError(f"{side}: {where}{field}: {problem}") from None
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if not rows or tuple(rows[0]) != COLUMNS:
        raise DataError(f"{path}: expected the header {','.join(COLUMNS)}")
    nets = []
    for number, row in enumerate(rows[1:], 2):
        try:
            arch, ms = ArchSpec.from_str(row[0]), float(row[1])
        except (NasError, IndexError, ValueError) as exc:
            raise DataError(f"{path} line {number}: {exc or 'expected arch,latency_ms'}") from None
        if not ms > 0:
            raise DataError(f"{path} line {number}: latency {row[1]} is not positive")
        nets.append((arch, ms))
    if not nets:
        raise DataError(f"{path}: no measured networks")
    return Measured(nets, sidecar)
