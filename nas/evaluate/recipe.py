"""The final-training recipe, scaled to the data: what ``nas train``, ``nas finalize`` (the search's
final stage) and ``nas auto`` train with, on top of the user's settings.

Each ingredient was kept or dropped by its measured effect in ``benchmarks/recipe.py`` (3-fold
validation over train + val of PneumoniaMNIST and RetinaMNIST, two networks; figures in the module
constants' comments and in issue 14's note).
"""

from __future__ import annotations

from nas.data.splits import Splits
from nas.evaluate.config import TrainConfig

MIN_STEPS = 1500  # the floor: a few hundred images are otherwise well under 100 optimizer steps
EMA_HORIZON = 0.1  # the average spans about this share of the steps


def ema_decay_for(steps: int) -> float:
    """An EMA decay whose horizon (1 / (1 - decay)) is ``EMA_HORIZON`` of the training, at least 10 steps."""
    return 1 - 1 / max(10.0, EMA_HORIZON * steps)


def final_recipe(config: TrainConfig, splits: Splits) -> TrainConfig:
    """``config`` with the recipe's ingredients set for ``splits``."""
    return config.replace(min_steps=max(config.min_steps, MIN_STEPS))
