"""The final-training recipe, scaled to the data: what ``nas train``, ``nas finalize`` (the search's
final stage) and ``nas auto`` train with, on top of the user's settings.

Each ingredient is filled in only where the user's setting is still at its default (a setting the user
chose is kept; the step floor is the larger of the two, since a search's proxy floor is no choice about
the final training), and each was kept or dropped by its measured effect in ``benchmarks/recipe.py``
(3-fold validation over train + val of PneumoniaMNIST and RetinaMNIST, two networks; the figures are
in README, "The final training recipe").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.data.splits import imbalance
from nas.errors import UsageError

if TYPE_CHECKING:  # the experiment file's checks read MIN_STEPS without loading torch
    from nas.data.splits import Splits
    from nas.evaluate.config import TrainConfig

MIN_STEPS = 1500  # the floor: a few hundred images are otherwise well under 100 optimizer steps
WEIGHTED_FROM = 3.0  # largest / smallest class count from which a balanced metric gets class weights


def final_recipe(config: TrainConfig, splits: Splits, min_steps: int = MIN_STEPS) -> TrainConfig:
    """``config`` with the recipe's ingredients filled in for ``splits`` where ``config`` left them at
    their defaults: at least ``min_steps`` optimizer steps, and loss class weights only when the classes
    are imbalanced and the epoch is chosen by balanced accuracy.

    Measured and left out (``benchmarks/recipe.py``): class weights for AUC or accuracy (RetinaMNIST:
    0.038 lower accuracy), label smoothing, one-cycle, rotations and zooms (lower AUC or accuracy), and
    weight EMA and colour jitter (each lowered RetinaMNIST's AUC once the class weights were gone). The
    training settings keep them (``ema_decay``, ``color_jitter``, ``max_rotate``, ...) for users."""
    if min_steps < 0:  # max() below would hide it
        raise UsageError(f"min_steps must be >= 0, got {min_steps}")
    weighting = config.class_weighting
    if weighting == "none":
        weighting = class_weighting_for(config.select_metric, imbalance(splits.class_counts()))
    return config.replace(min_steps=max(config.min_steps, min_steps), class_weighting=weighting)


def class_weighting_for(select_metric: str, imbalance: float) -> str:
    """Loss class weights when the metric weighs every class alike and the classes are imbalanced;
    otherwise none (weights trade accuracy and AUC for the minority classes' recall)."""
    return "loss" if select_metric == "balanced_accuracy" and imbalance >= WEIGHTED_FROM else "none"
