"""The final-training recipe, scaled to the data: what ``nas train``, ``nas finalize`` (the search's
final stage) and ``nas auto`` train with, on top of the user's settings.

Each ingredient is filled in only where the user's setting is still at its default (a setting the user
chose is kept), and each was kept or dropped by its measured effect in ``benchmarks/recipe.py``
(3-fold validation over train + val of PneumoniaMNIST and RetinaMNIST, two networks; the figures are
in README, "The final training recipe").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas.data.splits import imbalance

if TYPE_CHECKING:  # the experiment file's checks read MIN_STEPS without loading torch
    from nas.data.splits import Splits
    from nas.evaluate.config import TrainConfig

MIN_STEPS = 1500  # the floor: a few hundred images are otherwise well under 100 optimizer steps
EMA_HORIZON = 0.1  # the weight average spans about this share of the steps
COLOUR = {"color_jitter": 0.2}  # fundus, dermoscopy, pathology photographs: the camera's colour varies
WEIGHTED_FROM = 3.0  # largest / smallest class count from which a balanced metric gets class weights


def ema_decay_for(steps: int) -> float:
    """An EMA decay whose horizon (1 / (1 - decay)) is ``EMA_HORIZON`` of the training, at least 10 steps."""
    return 1 - 1 / max(10.0, EMA_HORIZON * steps)


def final_recipe(config: TrainConfig, splits: Splits, min_steps: int = MIN_STEPS) -> TrainConfig:
    """``config`` with the recipe's ingredients filled in for ``splits`` where ``config`` left them at
    their defaults: at least ``min_steps`` optimizer steps, a weight EMA over the last tenth of them,
    colour jitter for colour images, and loss class weights when the classes are imbalanced and the
    epoch is chosen by balanced accuracy.

    Measured and left out (``benchmarks/recipe.py``): label smoothing and one-cycle (lower AUC on both
    sets), rotations and zooms for grey images (lower AUC and accuracy on PneumoniaMNIST), class weights
    for AUC or accuracy (RetinaMNIST: 0.038 lower accuracy, 0.012 lower AUC)."""
    changes: dict[str, Any] = {}
    if config.min_steps == 0:
        changes["min_steps"] = min_steps
    if config.augment and splits.n_channels == 3 and not config.color_jitter:
        changes |= COLOUR
    if config.class_weighting == "none":
        changes["class_weighting"] = class_weighting_for(
            config.select_metric, imbalance(splits.class_counts())
        )
    scaled = config.replace(**changes)
    if config.ema_decay == 0:
        scaled = scaled.replace(ema_decay=ema_decay_for(scaled.total_steps(len(splits.train))))
    return scaled


def class_weighting_for(select_metric: str, imbalance: float) -> str:
    """Loss class weights when the metric weighs every class alike and the classes are imbalanced;
    otherwise none (weights trade accuracy and AUC for the minority classes' recall)."""
    return "loss" if select_metric == "balanced_accuracy" and imbalance >= WEIGHTED_FROM else "none"
