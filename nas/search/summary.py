"""A search run's ``summary.json``: the record that ``nas train``, ``nas export`` and the benchmarks read.

``nas.search.report`` fills it from the study; this module alone writes and reads the file. Files from
before ``schema_version`` (and hand-written ones with only ``trials`` and ``dataset``) still load: the
other keys have defaults, and a reader that needs ``best`` says when it is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, field_validator

from nas.errors import UsageError
from nas.search.config import DatasetConfig
from nas.search.records import read_record, version_type, write_record
from nas.search.verified import VerifyRecord

SUMMARY_FILE = "summary.json"
SCHEMA_VERSION = 1
SummaryVersion = version_type(SCHEMA_VERSION)


class TrialRow(BaseModel):
    """One trial as ``trials.csv`` lists it; its metrics and ``constraint_<i>`` values are extra keys."""

    model_config = ConfigDict(extra="allow")

    number: int
    state: str | None = None  # an Optuna state name, REJECTED or SURPLUS (``shown_state``)
    arch: str
    reward: float | None = None
    feasible: bool | None = None
    rejected: str | None = None
    fail_reason: str | None = None
    cached_from: int | None = None


def shown_state(user_attrs: dict[str, Any], state: str) -> str:
    """A trial's state as reports show it: Optuna's ``state``, except REJECTED (a constraint failed before
    training; stored PRUNED) and SURPLUS (a second worker's start of the study's last trial, not run;
    stored FAIL, and no candidate's failure)."""
    if "rejected" in user_attrs:
        return "REJECTED"
    return "SURPLUS" if user_attrs.get("surplus") else state


class SearchSummary(BaseModel):
    """What a search found: trial counts, the best trial by reward, the Pareto front, every trial."""

    schema_version: SummaryVersion = SCHEMA_VERSION
    name: str | None = None
    space: str | None = None
    dataset: str  # a dataset name or path
    input_size: int = 28
    mode: str | None = None
    strategy: str | None = None
    storage: str | None = None
    counts: dict[str, int] = {}
    best: TrialRow | None = None  # None when no trial has a reward (none completed, or Pareto without one)
    pareto_axes: list[str] = []
    pareto: list[TrialRow] = []
    trials: list[TrialRow]
    # candidates whose training reached each rung and the last step (``nas.search.rungs``): {"3": 40}
    rungs: dict[str, int] = {}
    # After ``nas finalize`` (``final.json``): the trial ranked first by its final-fidelity validation
    # figures, with its ``final_*`` columns, and what it was ranked by ("reward" or a metric).
    final_best: TrialRow | None = None
    final_rank_by: str | None = None
    # After ``latency: {verify: N}`` (``verify.json``): the top nets' predicted and measured latency.
    verify: VerifyRecord | None = None

    @field_validator("dataset", mode="before")
    @classmethod
    def _from_config(cls, dataset: Any) -> Any:
        """Older runs wrote the experiment's ``{name, path}``: the path when given, else the name."""
        return DatasetConfig.model_construct(**dataset).ref if isinstance(dataset, dict) else dataset


class ChosenTrial(TypedDict):
    """What ``nas train`` and ``nas export`` need of one trial of a search run."""

    number: int
    arch: str
    dataset: str
    input_size: int


def write_summary(summary: SearchSummary, run_dir: Path) -> Path:
    """Write atomically, so a reader (``nas train``, another worker) never sees half a file. NaN and
    infinities are written as null: the file is strict JSON for any parser."""
    unfinalized = {"final_best", "final_rank_by"} if summary.final_rank_by is None else set()
    unverified = {"verify"} if summary.verify is None else set()
    text = summary.model_dump_json(
        indent=2, exclude=unfinalized | unverified
    )  # a search alone: keys as before
    return write_record(run_dir / SUMMARY_FILE, text)


def read_summary(run_dir: str | Path) -> SearchSummary:
    """The summary of the search run in ``run_dir``; a missing or broken file is a one-line error."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        raise UsageError(f"no search run at {run_dir} (expected {path})")
    return read_record(SearchSummary, path, "a search summary")


def read_search_run(run_dir: str | Path, trial: int | None, best: bool) -> ChosenTrial:
    """Trial ``trial`` of a search run, or its best trial (by the final validation figures once the run is
    finalized, else by the search's reward): its arch, and the run's dataset and input size."""
    summary = read_summary(run_dir)
    path = Path(run_dir) / SUMMARY_FILE
    if best and summary.final_best is not None:  # a finalized run: the best by the final val figures
        chosen = summary.final_best
    elif best:
        chosen = summary.best
        if "best" not in summary.model_fields_set:
            raise UsageError(f"{path} records no best trial (no 'best' key): pick one with --trial N")
        if chosen is None and summary.mode == "pareto":
            raise UsageError(
                f"{run_dir} is a Pareto search without a reward, so it has no single best: pick a "
                f"trial from {Path(run_dir) / 'pareto.csv'} with --trial N"
            )
        if chosen is None:
            raise UsageError(f"{path} has no best trial (no trial completed)")
    elif trial is None:
        raise UsageError(f"say which trial of {run_dir}: --trial N or --best")
    else:
        chosen = next((t for t in summary.trials if t.number == trial), None)
        if chosen is None:
            numbers = ", ".join(str(t.number) for t in summary.trials)
            raise UsageError(f"{path} has no trial {trial} (trials: {numbers or 'none'})")
    return {
        "number": chosen.number,
        "arch": chosen.arch,
        "dataset": summary.dataset,
        "input_size": summary.input_size,
    }
