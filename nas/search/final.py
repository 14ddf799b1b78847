"""A search run's ``final.json``: its best candidates trained again with the full recipe on several seeds
(``nas finalize``, ``nas.search.finalize``). This module alone writes and reads the file.

Each finalized trial keeps the mean and the sample standard deviation (ddof 1; None for one seed) over its
seeds of every validation metric (``val_auc``, ...) and test metric (``test_auc``, ...). The ranking uses
the validation figures only; the test figures are for reporting. ``final_columns`` is what the search's
``pareto.csv`` and ``summary.json`` rows gain from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from nas.search.config import Pick
from nas.search.records import read_record, version_type, write_record

FINAL_FILE = "final.json"
SCHEMA_VERSION = 1
COLUMN_PREFIX = "final_"
FinalVersion = version_type(SCHEMA_VERSION)


class FinalTrial(BaseModel):
    """One finalized trial: where it stood at search fidelity, and its figures and rank at final fidelity."""

    number: int
    arch: str
    search_rank: int  # its place in finalize's pool at search fidelity (1 = the best)
    final_rank: int  # 1 = the best of the final validation figures
    search_score: float | None = None
    score: float | None = None  # the ranking key (``rank_by``) at final fidelity, from val only
    pareto: bool | None = None  # pareto mode: non-dominated among the finalized on the final figures
    seeds: list[int]
    dirs: list[str]  # the trained directories, relative to the run directory
    val: dict[str, float | None]  # None: a seed's figure was not finite (e.g. AUC of a one-class split)
    val_std: dict[str, float | None]
    test: dict[str, float | None]
    test_std: dict[str, float | None]


class FinalRecord(BaseModel):
    """What ``nas finalize`` found: its settings and the finalized trials, best (by final val) first."""

    schema_version: FinalVersion = SCHEMA_VERSION
    top: int
    seeds: int
    epochs: int
    rank_by: str  # "reward", or the front's trained metric (maximized) the trials are ranked by
    train_config: dict[str, Any]  # the recipe of seed 0 (the others differ only in seed)
    pick: Pick = "best"  # how the finalists were chosen (``FinalizeConfig.pick``; best where no front)
    trials: list[FinalTrial]

    @property
    def best(self) -> FinalTrial | None:
        return min(self.trials, key=lambda t: t.final_rank, default=None)


def write_final(record: FinalRecord, run_dir: str | Path) -> Path:
    """Write atomically; NaN and infinities become null."""
    return write_record(Path(run_dir) / FINAL_FILE, record.model_dump_json(indent=2))


def read_final(run_dir: str | Path) -> FinalRecord | None:
    """The run's final record, None when it was never finalized; a broken file is a one-line error."""
    path = Path(run_dir) / FINAL_FILE
    if not path.is_file():
        return None
    return read_record(FinalRecord, path, "a final record")


def final_columns(trial: FinalTrial, record: FinalRecord) -> dict[str, Any]:
    """A finalized trial's report columns: ``final_val_auc``, ``final_val_auc_std``, ``final_test_auc``,
    ..., ``final_seeds``, ``final_epochs``, ``final_rank`` and ``final_score``."""
    columns: dict[str, Any] = {}
    for means, stds in ((trial.val, trial.val_std), (trial.test, trial.test_std)):
        for name, mean in means.items():
            columns[f"{COLUMN_PREFIX}{name}"] = mean
            columns[f"{COLUMN_PREFIX}{name}_std"] = stds.get(name)
    return columns | {
        "final_seeds": len(trial.seeds),
        "final_epochs": record.epochs,
        "final_rank": trial.final_rank,
        "final_score": trial.score,
        "final_pareto": trial.pareto,
    }
