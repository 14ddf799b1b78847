"""Finalists re-measured: after the search (and its finalize stage), the top ``latency.verify`` networks
timed whole on the latency table's own backend and settings (``nas search`` at its end).

Who: the finalists by final rank when the run was finalized, then the pool ``nas.search.finalize``
ranks (the front in pareto mode, the completed trials in reward mode) by the reward when the experiment
has one, else by the front's first objective. They are timed as ``nas.latency.validate.measure_nets``
times networks a table cannot price: interleaved with the table's anchor and scaled by the anchor's
drift since the build, so measured and predicted share a scale. The results go to ``verify.json``
(``nas.search.verified``), ``measured_latency_ms`` in ``pareto.csv``, ``summary.json``'s ``verify`` and
``pareto.png``. A rerun whose chosen nets are already recorded measures nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.arch import ArchSpec
from nas.errors import NasError, UsageError
from nas.search.config import ExperimentConfig
from nas.search.final import FinalRecord, read_final
from nas.search.summary import SearchSummary, read_summary
from nas.search.verified import VerifiedNet, VerifyRecord, make_record, read_verified, write_verified

Row = dict[str, Any]


DEFAULT_TOP = 5  # for a run whose experiment asked for no verify


def verify_run(run_dir: str | Path, top: int | None = None) -> VerifyRecord:
    """Measure the top ``top`` nets of the search run in ``run_dir`` (see the module docstring; default:
    the experiment's ``latency.verify``, else ``DEFAULT_TOP``), unless ``verify.json`` already holds them;
    a backend that cannot run here is a one-line error that leaves the search's results as they are."""
    from nas.search.finalize import run_config
    from nas.search.report import front_axes, write_verify_report

    run_dir = Path(run_dir)
    config = run_config(run_dir)
    if config.latency is None:
        raise UsageError(f"{run_dir}'s experiment has no latency table to verify against")
    top = (config.latency.verify or DEFAULT_TOP) if top is None else top
    if top < 1:
        raise UsageError(f"--top must be >= 1, got {top}")
    rank_by, chosen = choose(read_summary(run_dir), config, read_final(run_dir))
    chosen = chosen[:top]
    if not chosen:
        raise UsageError(f"{run_dir} has no completed trial to verify")
    record = read_verified(run_dir)
    wanted = [(row["number"], row["arch"]) for row in chosen]
    if (
        record is None
        or record.table != config.latency.table
        or [(n.number, n.arch) for n in record.nets] != wanted
    ):
        record = measure(chosen, config, rank_by, run_dir)
        write_verified(record, run_dir)
    write_verify_report(run_dir, record, front_axes(config))
    return record


def measure(chosen: list[Row], config: ExperimentConfig, rank_by: str, run_dir: Path) -> VerifyRecord:
    """The chosen rows' predicted and measured latency."""
    from nas.latency.validate import measure_nets
    from nas.search.factory import latency_table

    archs = {row["arch"]: ArchSpec.from_str(row["arch"]) for row in chosen}
    try:
        table = latency_table(config)
        measured = measure_nets(table, archs)
    except NasError as exc:
        raise type(exc)(f"latency.verify: {exc} (the search's results in {run_dir} are kept)") from None
    nets = [
        VerifiedNet(
            number=row["number"],
            arch=row["arch"],
            predicted_ms=table.predict(archs[row["arch"]]),
            measured_ms=measured[row["arch"]],
        )
        for row in chosen
    ]
    return make_record(
        nets,
        table=config.latency.table,  # type: ignore[union-attr]  # verify_run checked it
        backend=str(table.provenance.get("backend")),
        device=table.provenance.get("device"),
        rank_by=rank_by,
    )


def choose(
    summary: SearchSummary, config: ExperimentConfig, final: FinalRecord | None
) -> tuple[str, list[Row]]:
    """What the nets are ranked by, and the nets best first, one per arch: the finalists by final rank
    (when ``final`` is given), then the rest of finalize's pool by the reward or the first objective."""
    from nas.search.finalize import candidates
    from nas.search.report import front_axes

    metric, direction = front_axes(config)[0]
    rank_by, descending = ("reward", True) if config.reward is not None else (metric, direction == "maximize")
    pool = candidates(summary, config, rank_by, descending)
    if final is None:
        return rank_by, pool
    rows = {row.number: row.model_dump() for row in summary.trials}
    finalists = [
        rows[t.number] for t in final.trials if t.number in rows and rows[t.number]["arch"] == t.arch
    ]
    seen = {row["arch"] for row in finalists}
    return f"final rank, then {rank_by}", finalists + [row for row in pool if row["arch"] not in seen]
