"""The experiment ``nas auto`` runs for a dataset, and how it splits the time budget.

Choices follow what was measured in this project (README, "Which evaluation protocol"): a few hundred
to a couple of thousand train + val images rank candidates by noise on one holdout split, so they are
scored by 5-fold cross-validation; larger sets use holdout. Candidates train 5 epochs, successive
halving stops two thirds of them after 3, the strategy is TPE (it learns from stopped candidates), and
the search is Pareto (the objective against latency) under the device's latency budget, so finalize
re-trains the best few that fit and the final model is the best of them by validation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nas.auto.profile import DataProfile
from nas.errors import UsageError
from nas.latency.table import safe_name

OBJECTIVES = {"auc": "val_auc", "accuracy": "val_accuracy", "balanced_accuracy": "val_balanced_accuracy"}
SENSITIVITY_AT = re.compile(r"sensitivity@spec=(0?\.\d+|1|1\.0+)")
OBJECTIVE_FORMS = (*OBJECTIVES, "sensitivity@spec=S")
KFOLD_BELOW = 2000  # train + val images
SEARCH_EPOCHS, FINAL_EPOCHS, BATCH = 5, 15, 64
SEARCH_SHARE = 0.6  # of what is left after the table: the rest finalizes, exports and re-measures
FINISH_S = 90.0  # export with parity and the card, the interleaved re-measure, the summary


def objective_settings(objective: str, task: str | None = None) -> tuple[str, dict[str, Any]]:
    """The validation metric an ``--objective`` maximizes, and the training settings it needs:
    ``sensitivity@spec=S`` is the sensitivity at the threshold that keeps specificity S on validation
    (binary tasks only). A bad form, or a task it does not suit, is a one-line ``UsageError``."""
    if objective in OBJECTIVES:
        return OBJECTIVES[objective], {}
    match = SENSITIVITY_AT.fullmatch(objective)
    if match is None or not 0 < float(match[1]) <= 1:
        raise UsageError(
            f"--objective must be one of {', '.join(OBJECTIVE_FORMS)} (S in (0, 1]), got {objective}"
        )
    if task is not None and task != "binary":
        raise UsageError(f"--objective {objective} needs a binary task; this data is {task}")
    return "val_sensitivity", {"threshold_method": "specificity", "target_specificity": float(match[1])}


def space_for(size: int) -> str:
    """``mnasnet_small`` (built for 28-64 px inputs) up to 64 px, the full MnasNet space above."""
    return "mnasnet_small" if size <= 64 else "mnasnet"


def evaluation_for(profile: DataProfile) -> dict[str, Any]:
    if profile.train + profile.val < KFOLD_BELOW:
        return {"protocol": "kfold", "folds": 5}
    return {"protocol": "holdout"}


def dataset_entry(data: str) -> dict[str, str]:
    from nas.data import DATASETS

    if data.lower() in DATASETS:
        return {"name": data.lower()}
    return {"path": str(Path(data).expanduser().resolve())}


def experiment(
    profile: DataProfile,
    data: str,
    space: str,
    table: Path,
    objective: str,
    max_latency_ms: float,
    search_seconds: float,
    out: Path,
) -> dict[str, Any]:
    """The experiment file (``DIR/experiment.yaml``): ``nas search`` on it reruns the search."""
    metric, settings = objective_settings(objective, profile.task)
    training = {
        "epochs": SEARCH_EPOCHS,
        "batch_size": BATCH,
        "lr": 0.003,
        "class_weighting": "loss",
        **settings,
    }
    return {
        "name": f"auto-{safe_name(profile.name)}",
        "space": space,
        "dataset": dataset_entry(data),
        "input_size": profile.size,
        "latency": {"table": str(table)},
        "training": training,
        "evaluation": evaluation_for(profile),
        "mode": "pareto",
        "objectives": [
            {"metric": metric, "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "constraints": [{"metric": "latency_ms", "max": round(max_latency_ms, 6)}],
        "strategy": {"name": "tpe"},
        "pruner": {"name": "successive_halving", "min_epochs": 3},
        "trials": 100000,  # the timeout ends the search
        "timeout": round(search_seconds),
        "workers": os.cpu_count() or 1,
        "seed": 0,
        "out": str(out / "search"),
        "finalize": {"top": 5, "seeds": 3, "epochs": FINAL_EPOCHS},  # the most; nas auto fits it to time
    }


def finish_seconds(budget_s: float) -> float:
    """Held back for the export, the re-measure and the summary: ``FINISH_S``, at most a fifth of a small
    budget."""
    return min(FINISH_S, 0.2 * budget_s)


def search_seconds(left: float, budget_s: float) -> float:
    """``SEARCH_SHARE`` of what is left once the finish is held back; at least 20 s."""
    return max(20.0, SEARCH_SHARE * (left - finish_seconds(budget_s)))


MOST_TOP, MOST_SEEDS = 5, 3
MOST_FINAL_TRAININGS = MOST_TOP * MOST_SEEDS


def finalize_size(seconds_per_training: float, left: float) -> tuple[int, int]:
    """(top, seeds) of the final trainings that fit in ``left`` seconds: 3 seeds for as many of the top
    5 as fit, else 2, else one seed of the best; at least one training (the final model)."""
    fits = int(max(left, 0) // max(seconds_per_training, 1e-9))
    for seeds in (MOST_SEEDS, 2):
        if fits >= 2 * seeds:
            return min(MOST_TOP, fits // seeds), seeds
    return max(1, min(fits, MOST_TOP)), 1
