"""The experiment ``nas auto`` runs for a dataset, and how it splits the time budget.

Choices follow what was measured in this project (README, "Which evaluation protocol"): a few hundred
to a couple of thousand train + val examples rank candidates by noise on one holdout split, so they are
scored by 5-fold cross-validation; larger sets use holdout. Candidates train 5 epochs, successive
halving stops two thirds of them after 3, the strategy is TPE (it learns from stopped candidates), and
the search maximizes the objective under the device's latency budget (MnasNet's hard constraint: the
reward is the objective itself within the budget), so finalize re-trains the best few by validation
whatever their latency and the final model is the best of them. A Pareto search against latency spent
its trials and its finalists on the fast corner, where the accuracy a budget pays for is not
(PneumoniaMNIST under a 0.24 ms budget: final model at 0.10 ms, test AUC 0.971; finalists at 0.25-0.41
ms of another run reached 0.976-0.978).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.auto.profile import DataProfile
from nas.errors import UsageError
from nas.latency.table import safe_name

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

OBJECTIVES = {"auc": "val_auc", "accuracy": "val_accuracy", "balanced_accuracy": "val_balanced_accuracy"}
SELECT = {"accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy"}  # the epoch kept; else AUC
SENSITIVITY_AT = re.compile(r"sensitivity@spec=(0?\.\d+|1|1\.0+)")
OBJECTIVE_FORMS = (*OBJECTIVES, "sensitivity@spec=S")
KFOLD_BELOW = 2000  # train + val examples
SIGNAL_LENGTHS = (100, 1000)  # what mnasnet1d is built for (search_spaces/mnasnet1d.yaml)
DEFAULT_REFERENCE = {2: "resnet18_medmnist", 1: "resnet1d_wang"}  # by the data's dims
# The default --latency-ratio by the data's dims: each admits most of its space's nets (measured here:
# 0.05 x resnet18_medmnist, 0.65 ms, admits 85 % of mnasnet_small at 1x28x28; 0.2 x resnet1d_wang, 0.40 ms,
# 88 % of mnasnet1d at 1x140, where 0.05 admitted 0.9 % and a 4-minute ECG5000 search trained none).
DEFAULT_RATIO = {2: 0.05, 1: 0.2}
SEARCH_EPOCHS, FINAL_EPOCHS, BATCH = 5, 15, 64
MOST_TOP, MOST_SEEDS = 5, 3
FULL_FLOOR_MINUTES = 30  # below this budget the final recipe's step floor shrinks in proportion
SEARCH_SHARE = 0.6  # of what is left after the table: the rest finalizes, exports and re-measures
FINISH_S = 90.0  # export with parity and the card, the interleaved re-measure, the summary


def objective_settings(objective: str, task: str | None = None) -> tuple[str, dict[str, Any]]:
    """The validation metric an ``--objective`` maximizes, and the training settings it needs: the
    epoch kept is the best by accuracy or balanced accuracy for those objectives (by AUC otherwise);
    ``sensitivity@spec=S`` is the sensitivity at the threshold that keeps specificity S on validation
    (binary tasks only). A bad form, or a task it does not suit, is a one-line ``UsageError``."""
    if objective in OBJECTIVES:
        return OBJECTIVES[objective], {"select_metric": SELECT[objective]} if objective in SELECT else {}
    match = SENSITIVITY_AT.fullmatch(objective)
    if match is None or not 0 < float(match[1]) <= 1:
        raise UsageError(
            f"--objective must be one of {', '.join(OBJECTIVE_FORMS)} (S in (0, 1]), got {objective}"
        )
    if task is not None and task != "binary":
        raise UsageError(f"--objective {objective} needs a binary task; this data is {task}")
    return "val_sensitivity", {"threshold_method": "specificity", "target_specificity": float(match[1])}


def space_for(profile: DataProfile) -> str:
    """``mnasnet1d`` for signals, whatever their length (``space_note`` says when it is outside the one
    the space is built for); for images ``mnasnet_small`` (built for 28-64 px inputs) up to 64 px, the
    full MnasNet space above."""
    if profile.dims == 1:
        return "mnasnet1d"
    return "mnasnet_small" if profile.size <= 64 else "mnasnet"


def space_note(profile: DataProfile, space: str) -> str | None:
    """A warning when the signals are outside the lengths ``mnasnet1d`` is built for (it is still used:
    no other 1-D space ships)."""
    low, high = SIGNAL_LENGTHS
    if space != "mnasnet1d" or low <= profile.size <= high:
        return None
    return f"{space} is built for signals of {low}-{high} samples, these have {profile.size}: searched anyway"


def reference_for(profile: DataProfile) -> str:
    """The default ``--reference``: MedMNIST's ResNet-18 (28) for images, Wang et al.'s 1-D ResNet for
    signals (the baseline time-series benchmarks report)."""
    return DEFAULT_REFERENCE[profile.dims]


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
    budget_minutes: float,
    out: Path,
) -> dict[str, Any]:
    """The experiment file (``DIR/experiment.yaml``): ``nas search`` on it reruns the search."""
    from nas.evaluate.recipe import class_weighting_for

    metric, settings = objective_settings(objective, profile.task)
    weighting = class_weighting_for(settings.get("select_metric", "auc"), profile.imbalance)
    budget = round(max_latency_ms, 6)
    training = {"epochs": SEARCH_EPOCHS, "batch_size": BATCH, "lr": 0.003, "class_weighting": weighting}
    training |= settings
    return {
        "name": f"auto-{safe_name(profile.name)}",
        "space": space,
        "dataset": dataset_entry(data),
        "input_size": profile.size,
        "latency": {"table": str(table)},
        "training": training,
        "evaluation": evaluation_for(profile),
        "mode": "reward",
        "reward": {"type": "mnasnet_hard", "accuracy": metric, "latency": "latency_ms", "target": budget},
        "constraints": [{"metric": "latency_ms", "max": budget}],
        "strategy": {"name": "tpe"},
        "pruner": {"name": "successive_halving", "min_epochs": 3},
        "trials": 100000,  # the timeout ends the search
        "timeout": round(search_seconds),
        "workers": os.cpu_count() or 1,
        "seed": 0,
        "out": str(out / "search"),
        "finalize": {  # top and seeds: the most; nas auto fits them to the time left
            "top": MOST_TOP,
            "seeds": MOST_SEEDS,
            "epochs": FINAL_EPOCHS,
            "recipe": "final",
            "min_steps": final_min_steps(budget_minutes),
        },
    }


def final_min_steps(budget_minutes: float) -> int:
    """The final recipe's step floor (``nas.evaluate.recipe.MIN_STEPS``), shrunk in proportion under
    ``FULL_FLOOR_MINUTES`` so that one final training of a small set stays a small part of the budget."""
    from nas.evaluate.recipe import MIN_STEPS

    return round(MIN_STEPS * min(1.0, budget_minutes / FULL_FLOOR_MINUTES))


def final_steps(train_images: int, min_steps: int) -> int:
    """Optimizer steps of one final training: ``FINAL_EPOCHS`` passes, or the floor when that is more."""
    from nas.evaluate.config import TrainConfig

    return TrainConfig(epochs=FINAL_EPOCHS, batch_size=BATCH, min_steps=min_steps).total_steps(train_images)


def fitted_floor(train_images: int, min_steps: int, share: float) -> int:
    """The step floor that makes a final training ``share`` as long as one at ``min_steps`` (its time
    goes with its steps), never below the steps of ``FINAL_EPOCHS`` passes, where a floor stops counting."""
    passes = final_steps(train_images, 0)
    return max(passes, min(min_steps, math.floor(share * final_steps(train_images, min_steps))))


def finish_seconds(budget_s: float) -> float:
    """Held back for the export, the re-measure and the summary: ``FINISH_S``, at most a fifth of a small
    budget."""
    return min(FINISH_S, 0.2 * budget_s)


def search_seconds(left: float, budget_s: float) -> float:
    """``SEARCH_SHARE`` of what is left once the finish is held back; at least 20 s."""
    return max(20.0, SEARCH_SHARE * (left - finish_seconds(budget_s)))


def epoch_images(profile: DataProfile) -> float:
    """Training images in one epoch of a search trial (``evaluation_for``): a fold's share of train + val
    under kfold, the train split under holdout."""
    evaluation = evaluation_for(profile)
    if evaluation["protocol"] == "kfold":
        folds = evaluation["folds"]
        return (profile.train + profile.val) * (folds - 1) / folds
    return float(profile.train)


def final_training_seconds(trials: list[FrozenTrial], epoch_images: float, final_images: int) -> float:
    """One final training's seconds estimated from the search's trials so far: the slowest time per
    training image among the trials trained furthest (the completed ones, once any are: the finalists
    come from them) times the final recipe's images; 0 with no trial to go by.

    A trial's last reported step counts the epochs it trained (``nas.search.rungs``). Trials train one
    thread each side by side, as final trainings do, and validate every epoch, as they do, so the time
    per image carries both; a trial stopped after a few epochs carries its start-up too, hence the
    furthest (on 64 training images under load: 154 s from a trial stopped at 3 epochs, 66 s from those
    at 10, where the final trainings took 25 s). Over all trials it errs short when the final model is
    larger than the nets completed so far: 14 s where a 0.40 ms net that completed later took 41 s
    (scaling each trial by the latency budget over its latency erred tenfold long on trials stopped
    early); ``nas auto`` estimates again from the final model's own trials before training it."""

    def seconds_per_image(trial: FrozenTrial) -> float:
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        return seconds / (max(trial.intermediate_values) * epoch_images)

    trained = [t for t in trials if t.intermediate_values and t.datetime_complete and t.datetime_start]
    furthest = max((max(t.intermediate_values) for t in trained), default=0)
    judged = [t for t in trained if max(t.intermediate_values) == furthest]
    return max(map(seconds_per_image, judged), default=0.0) * final_images


def most_final_trainings(candidates: int) -> int:
    """The most final trainings finalize could run: ``MOST_SEEDS`` seeds of each of the candidates it
    could take from the search, at most ``MOST_TOP`` of them (time they could not use goes to the search)."""
    return MOST_SEEDS * max(1, min(MOST_TOP, candidates))


def wave_size(workers: int) -> int:
    """How many final trainings of the search's best are timed side by side: one per worker, at most
    ``MOST_SEEDS`` (all of them are seeds finalize keeps)."""
    return max(1, min(workers, MOST_SEEDS))


def final_seconds(trainings: int, wave_seconds: float, workers: int) -> float:
    """Seconds ``trainings`` new final trainings take: waves of ``workers`` side by side (one thread
    each, as finalize runs them), each as long as the first one timed (``wave_seconds``). Counting each
    training at the wave's time over its size undercounted a lone last one: a PneumoniaMNIST subset's
    wave of two took 601 s, and the third training, alone, 591 s, not 301."""
    return math.ceil(max(trainings, 0) / max(workers, 1)) * wave_seconds


def finalize_size(wave_seconds: float, workers: int, left: float, done: int = 0) -> tuple[int, int]:
    """(top, seeds) of the final trainings whose new ones (``final_seconds``) fit in ``left`` seconds: 3
    seeds for as many of the top 5 as fit, else 2 seeds of at least two, else one seed of at least two,
    else the best alone on the seeds it already has (at least one: the final model). ``done``: trainings
    of the best already made (the timing wave: its first seeds, which finalize reuses); they cost
    nothing only while the seed count takes them in (one seed leaves the wave's second out)."""

    def fits(top: int, seeds: int) -> bool:
        return final_seconds(top * seeds - min(seeds, done), wave_seconds, workers) <= max(left, 0)

    for seeds in (MOST_SEEDS, 2, 1):
        top = max((t for t in range(2, MOST_TOP + 1) if fits(t, seeds)), default=0)
        if top:
            return top, seeds
    return 1, max(1, min(done, MOST_SEEDS))
