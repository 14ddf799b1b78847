"""Build a device's latency table for a space: every block key, the anchor, a calibration set.

The anchor network and the calibration nets are timed whole, together, twice: before the blocks and
after them, the two passes averaged (from one pass on a busy machine the calibration fit left 4 %
leave-one-out error while the held-out nets later came out at 2 %: the calibration nets were noisier
than the table).

In between, the blocks are timed in batches: the anchor's own blocks go first, and every later batch
re-times them as sentinels and is scaled by the median of (sentinel in the table / sentinel now), so
machine drift between batches does not leak into the table. Sentinels are blocks rather than the anchor
network because contention from other processes slows a whole network (weights streaming from memory)
differently from a block; the median of many is steadier than one. Keys are batched in a shuffled
order, so what is left of a batch's drift spreads over a network's blocks instead of hitting one
stage's blocks together.

The table is saved after every batch: a killed build, run again with the same arguments, measures only
what is still missing.

A table for another data shape (input channels, classes) of the same space, size, number type, device
and backend is a ``base``: only the stem and head depend on the shape, so every body block is copied
from it and only the stem and head are timed, against the copied blocks as sentinels, which puts them
on the base's scale. The anchor and calibration nets are timed whole for the new shape and the
calibration is fitted again: seconds instead of a full build.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from nas.arch import ArchSpec, BlockSite
from nas.builder import build_model
from nas.errors import DataError, NasError, UsageError
from nas.latency.backends.base import Backend, Item, Settings, Timing, backend_dtypes
from nas.latency.keys import block_module, input_shape
from nas.latency.predict import fit
from nas.latency.space_keys import space_keys
from nas.latency.table import LatencyTable, host_provenance
from nas.outdir import writable_dir
from nas.space import SearchSpace

ROUNDS, CALIBRATION_NETS = 100, 30  # nas latency build's defaults
ANCHOR = "anchor"
SENTINEL = "sentinel:"
ANCHOR_SEED = "nas-latency-anchor"
CALIBRATION_SEED = "nas-latency-calibration"
BATCH_SEED = "nas-latency-batches"

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def anchor_arch(space: SearchSpace) -> ArchSpec:
    """The fixed anchor network: one sample of the space from a fixed seed, so any space has one."""
    return space.sample(random.Random(ANCHOR_SEED))


def sample_distinct(
    space: SearchSpace, n: int, seed: str, exclude: Collection[ArchSpec] = ()
) -> list[ArchSpec]:
    """``n`` distinct random nets of ``space`` from the seed stream ``seed``, none of them in ``exclude``."""
    rng, found = random.Random(seed), dict[ArchSpec, None]()
    for _ in range(1000 * n):
        if len(found) == n:
            break
        arch = space.sample(rng)
        if arch not in exclude:
            found.setdefault(arch)
    return list(found)


def net_item(name: str, arch: ArchSpec, settings: dict[str, Any]) -> Item:
    """A whole network as a measurable item."""
    size, chans = settings["input_size"], settings["in_chans"]
    model = build_model(arch, in_chans=chans, num_classes=settings["num_classes"], input_size=size).eval()
    return Item(name, model, arch.input_shape(chans, size))


def build_table(
    space: SearchSpace,
    input_size: int,
    in_chans: int,
    num_classes: int,
    backend: Backend,
    device: str,
    out_path: str | Path,
    dtype: str = "fp32",
    measure: Settings | None = None,
    batch_size: int = 64,
    calibration_nets: int = CALIBRATION_NETS,
    progress: Progress | None = None,
    base: LatencyTable | None = None,
) -> LatencyTable:
    """Measure (or finish measuring) the table at ``out_path`` and return it, calibrated. A new table
    starts from ``base``'s blocks (``shape_base``); a refused base is a one-line ``DataError``."""
    measure = measure or Settings()
    if dtype not in backend_dtypes(backend):
        measured = ", ".join(backend_dtypes(backend))
        raise UsageError(f"latency backend '{backend.name}' measures {measured}, not {dtype}")
    settings = table_settings(space, input_size, in_chans, num_classes, dtype)
    keys = space_keys(space, in_chans, input_size, num_classes, dtype)
    writable_dir(Path(out_path).parent, "the latency table")  # before minutes of timing, not after
    table = _open(Path(out_path), settings, backend, device, measure)
    measure = Settings.recorded(table.provenance.get("measure"))  # a resumed table keeps its own regime
    if base is not None and not table.entries and table.anchor is None:
        _seed(table, base, keys)
    report = progress or (lambda phase, done, total: None)

    if table.anchor is None:
        anchor = anchor_arch(space)
        nets = sample_distinct(space, calibration_nets, CALIBRATION_SEED, {anchor})
        table.anchor = {"arch": anchor.to_str()}
        table.calibration_nets = [{"arch": n.to_str()} for n in nets]
        for record, timing in _time_nets(table, backend, measure, report, "calibration nets"):
            record.update(timing.to_json())
        table.save(out_path)

    _time_blocks(table, keys, backend, measure, batch_size, out_path, report)

    if table.calibration is None:  # a second pass, after the blocks, averaged with the first
        again = dataclasses.replace(measure, seed=measure.seed + 1)
        for record, timing in _time_nets(table, backend, again, report, "calibration nets, again"):
            passes = [record["median_ms"], timing.median_ms]
            record.update(median_ms=sum(passes) / 2, passes_ms=passes)
        nets = [ArchSpec.from_str(n["arch"]) for n in table.calibration_nets]
        sums, blocks = [table.block_sum(a) for a in nets], [len(table.keys(a)) for a in nets]
        measured = [n["median_ms"] for n in table.calibration_nets]
        table.calibration = fit(sums, blocks, measured, [table.weights_m(a) for a in nets])
        table.save(out_path)
    return table


def table_settings(
    space: SearchSpace, input_size: int, in_chans: int, num_classes: int, dtype: str = "fp32"
) -> dict[str, Any]:
    """What a table is measured for (``TableSettings``)."""
    return {
        "space": space.name,
        "space_config": space.config.model_dump(mode="json"),
        "input_size": input_size,
        "in_chans": in_chans,
        "num_classes": num_classes,
        "dtype": dtype,
    }


SHAPE = ("in_chans", "num_classes")
SAME_DEVICE = ("device", "backend", "threads", "target")


def shape_base_problem(
    base: LatencyTable, settings: dict[str, Any], provenance: dict[str, Any]
) -> str | None:
    """Why ``base`` cannot give its body blocks to a table of ``settings`` measured with ``provenance``
    (another space, size or number type; another device, backend, thread count or target; another
    timed-sample length, where ``provenance`` says one), or None."""
    differ = [k for k in settings if k not in SHAPE and base.settings.get(k) != settings[k]]
    differ += [k for k in SAME_DEVICE if base.provenance.get(k) != provenance.get(k)]
    if base.calibration is None:
        return "its build is unfinished"
    if differ:
        return f"it differs in {', '.join(differ)}"
    if "measure" not in provenance:
        return None
    ours, theirs = (Settings.recorded(p.get("measure")).sample_ms for p in (provenance, base.provenance))
    if ours != theirs:  # blocks timed warm and cold do not add up together
        return (
            f"it was timed in {theirs:g} ms samples, this table in {ours:g} (--sample-ms {theirs:g} fits it)"
        )
    return None


def find_shape_base(folder: Path, settings: dict[str, Any], provenance: dict[str, Any]) -> Path | None:
    """The finished table in ``folder`` that can seed a table of ``settings`` (``shape_base_problem``),
    the one with the most entries; unreadable files are skipped."""
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            table = LatencyTable.load(path)
        except NasError:
            continue
        if shape_base_problem(table, settings, provenance) is None:
            found.append((len(table.entries), path))
    return max(found)[1] if found else None


def shape_base_measure(base: LatencyTable) -> tuple[Settings, int]:
    """Timing settings and calibration nets of a table derived from ``base``: the base's own, so its
    stem and head are timed in the regime its body blocks were."""
    return Settings.recorded(base.provenance.get("measure")), len(base.calibration_nets) or CALIBRATION_NETS


def _seed(table: LatencyTable, base: LatencyTable, keys: dict[str, BlockSite]) -> None:
    """Copy ``base``'s entries for this table's keys (its body blocks); record where they came from."""
    problem = shape_base_problem(base, table.settings, table.provenance)
    if problem is not None:
        raise DataError(f"latency table for {base.settings['space']} cannot seed this one: {problem}")
    table.entries.update({k: dict(base.entries[k]) for k in keys if k in base.entries})
    table.provenance["shape_base"] = {
        **{k: base.settings[k] for k in SHAPE},
        "date": base.provenance.get("date"),
        "command": base.provenance.get("command"),
        "entries": len(table.entries),
    }


def _time_nets(
    table: LatencyTable, backend: Backend, measure: Settings, report: Progress, phase: str
) -> list[tuple[dict[str, Any], Timing]]:
    """Time the anchor and the calibration nets whole, interleaved: (their table record, timing)."""
    records = {ANCHOR: table.anchor, **{n["arch"]: n for n in table.calibration_nets}}
    report(phase, 0, len(records))
    items = [net_item(name, ArchSpec.from_str(r["arch"]), table.settings) for name, r in records.items()]
    timings = backend.measure(items, measure)
    report(phase, len(records), len(records))
    return [(record, timings[name]) for name, record in records.items()]


def _time_blocks(
    table: LatencyTable,
    keys: dict[str, BlockSite],
    backend: Backend,
    measure: Settings,
    batch_size: int,
    out_path: str | Path,
    report: Progress,
) -> None:
    """Time every block key the table lacks, in batches, each scaled by the anchor's blocks."""
    sentinels = list(dict.fromkeys(table.keys(ArchSpec.from_str(table.anchor["arch"]))))
    others = sorted(k for k in keys if k not in sentinels)
    random.Random(BATCH_SEED).shuffle(others)  # a net's blocks spread over many batches
    missing = [k for k in [*sentinels, *others] if k not in table.entries]
    done = len(keys) - len(missing)
    report("blocks", done, len(keys))
    num_classes = table.settings["num_classes"]

    def item(name: str, key: str) -> Item:
        return Item(name, block_module(keys[key], num_classes), input_shape(keys[key]))

    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        refs = [k for k in sentinels if k in table.entries]
        items = [item(k, k) for k in batch] + [item(f"{SENTINEL}{k}", k) for k in refs]
        timings = backend.measure(items, dataclasses.replace(measure, seed=measure.seed + done))
        ratios = [table.entries[k]["median_ms"] / timings[f"{SENTINEL}{k}"].median_ms for k in refs]
        scale = statistics.median(ratios) if ratios else 1.0
        for key in batch:
            t = timings[key]
            table.entries[key] = {
                "median_ms": t.median_ms * scale,
                "spread_ms": t.spread_ms * scale,
                "rounds": t.rounds,
            }
        table.save(out_path)
        done += len(batch)
        report("blocks", done, len(keys))


def _open(
    path: Path, settings: dict[str, Any], backend: Backend, device: str, measure: Settings
) -> LatencyTable:
    """The partial table at ``path`` to resume, or a new one; a table for other settings is an error.
    The backend's registered name and threads are recorded from the backend itself, whatever its
    ``provenance()`` says: validation rebuilds the backend from them."""
    provenance = {
        **host_provenance(device),
        **backend.provenance(),
        "backend": backend.name,
        "threads": backend.threads,
        "measure": dataclasses.asdict(measure),
    }
    if not path.exists():
        return LatencyTable(settings, provenance)
    table = LatencyTable.load(path)
    same = ("device", "backend", "threads")
    if table.settings != settings or any(table.provenance.get(k) != provenance[k] for k in same):
        raise DataError(f"{path} holds a table for other settings, device or backend; choose another --out")
    return table
