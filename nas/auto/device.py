"""The latency table ``nas auto`` prices candidates with: the one given (``--table``, a table or a
latency predictor for exactly this data), else a finished
table measured on this very machine with the chosen backend (looked up in ``latency_tables/``, the
working directory's and the shipped one), else one built now into ``DIR/latency``. A table for another
data shape of the same space and size is not rebuilt: its body blocks are reused and only the stem and
head are timed (``nas.latency.build``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError, NasError
from nas.latency.backends.base import Backend, Settings
from nas.latency.build import (
    CALIBRATION_NETS,
    build_table,
    shape_base_measure,
    shape_base_problem,
    table_settings,
)
from nas.latency.table import TABLES_DIR, LatencyTable, cpu_model, safe_name
from nas.resources import bundled_dir
from nas.space import SearchSpace

if TYPE_CHECKING:
    from nas.latency.predictors.base import Predictor

Progress = Callable[[str, int, int], None]
# rounds of a table built here, out of the run's budget (``nas latency build`` takes 100): in 2 ms samples
# 30 did as well, mnasnet_small at 28 px on ONNX Runtime, 1 thread: 97 % and 100 % of 100 held-out nets
# within ±10 % (tau 0.983, 0.981) against the shipped 100-round table's 97 % and 96 % (0.973, 0.974),
# built in 4 minutes instead of 10 on a 2-core EPYC
ROUNDS = 30


@dataclass(frozen=True)
class DeviceRequest:
    """Where the model will run: a table file, or a backend (with its options) on a named device."""

    table: Path | None = None
    backend: str = "ort"
    device: str | None = None
    threads: int = 1
    options: tuple[tuple[str, Any], ...] = ()  # target, rpc_host, rpc_port, rpc_key

    def make_backend(self) -> Backend:
        from nas.latency.backends import make_backend

        return make_backend(self.backend, threads=self.threads, **dict(self.options))

    def device_name(self) -> str:
        return self.device or safe_name(f"{cpu_model()}-{self.backend}-{self.threads}t").lower()


@dataclass(frozen=True)
class TableChoice:
    path: Path
    how: str  # given | found | derived | built
    note: str


def given_table(request: DeviceRequest) -> LatencyTable | Predictor:
    """``--table``, a table or a predictor file, loaded (a one-line ``ConfigError`` for a bad file)."""
    from nas.latency.predictors import load_latency

    assert request.table is not None
    return load_latency(request.table)


def resolve_table(
    request: DeviceRequest,
    space: SearchSpace,
    size: int,
    chans: int,
    classes: int,
    folder: Path,
    progress: Progress | None = None,
) -> TableChoice:
    """A finished table for ``space`` at ``size`` for this data shape on the requested device: given,
    found, derived from another shape's table, or built (into ``folder``)."""
    settings = table_settings(space, size, chans, classes)
    if request.table is not None:
        table = given_table(request)
        if _same(table.settings, settings):
            return TableChoice(request.table, "given", f"{request.table}")
        if not isinstance(table, LatencyTable):
            differ = ", ".join(k for k, v in settings.items() if table.settings.get(k) != v)
            raise ConfigError(
                f"latency predictor {request.table} cannot price this data: it differs in {differ} "
                "(measure nets of this shape and run 'nas latency adapt' or 'fit' again)"
            )
        problem = shape_base_problem(table, settings, table.provenance)
        if problem is not None:
            raise ConfigError(f"latency table {request.table} cannot price this data: {problem}")
        return _derive(table, request.table, space, size, chans, classes, folder, progress)
    backend = request.make_backend()
    wanted = {**backend.provenance(), "backend": backend.name, "threads": backend.threads}
    here = (cpu_model(), os.cpu_count())
    fitting = [(path, t) for path, t in _tables() if _fits(t, settings, wanted, request.device, here)]
    exact = [(path, t) for path, t in fitting if _same(t.settings, settings)]
    if exact:
        return TableChoice(exact[0][0], "found", f"{exact[0][0]} (measured on this machine)")
    if fitting:
        path, base = max(fitting, key=lambda pt: len(pt[1].entries))
        return _derive(base, path, space, size, chans, classes, folder, progress)
    out = folder / f"{safe_name(space.name)}-{size}.json"
    build_table(
        space, size, chans, classes, backend, request.device_name(), out,
        measure=Settings(rounds=ROUNDS), calibration_nets=CALIBRATION_NETS, progress=progress,
    )  # fmt: skip
    return TableChoice(out, "built", f"{out} (no table of this machine and backend: measured now)")


def _derive(
    base: LatencyTable,
    base_path: Path,
    space: SearchSpace,
    size: int,
    chans: int,
    classes: int,
    folder: Path,
    progress: Progress | None,
) -> TableChoice:
    from nas.latency.validate import backend_from_provenance

    out = folder / f"{safe_name(space.name)}-{size}-{chans}ch-{classes}cls.json"
    measure, calibration_nets = shape_base_measure(base)
    build_table(
        space, size, chans, classes, backend_from_provenance(base.provenance), base.provenance["device"],
        out, measure=measure, calibration_nets=calibration_nets, progress=progress, base=base,
    )  # fmt: skip
    return TableChoice(out, "derived", f"{out} (body blocks of {base_path}, stem and head timed now)")


def _same(found: dict[str, Any], settings: dict[str, Any]) -> bool:
    return all(found.get(k) == v for k, v in settings.items())


def _fits(
    table: LatencyTable,
    settings: dict[str, Any],
    wanted: dict[str, Any],
    device: str | None,
    here: tuple[str, int | None],
) -> bool:
    """A finished table of this space and size, measured by this backend setup on this machine (same
    CPU model and core count; a board over RPC: the same address), and of ``device`` when named."""
    p = table.provenance
    if shape_base_problem(
        table, settings, {**p, **{k: wanted.get(k) for k in ("backend", "threads", "target")}}
    ):
        return False
    if device is not None and p.get("device") != device:
        return False
    if wanted["backend"] == "tvm-rpc":
        return p.get("rpc") == wanted.get("rpc")
    return (p.get("cpu_model"), p.get("cpu_count")) == here


def _tables() -> list[tuple[Path, LatencyTable]]:
    """Every readable table under ``latency_tables/<device>/``: the working directory's, then shipped."""
    found, seen = [], set()
    for root in (TABLES_DIR, bundled_dir("latency_tables")):
        for path in sorted(Path(root).glob("*/*.json")):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                found.append((path, LatencyTable.load(path)))
            except NasError:
                continue
    return found
