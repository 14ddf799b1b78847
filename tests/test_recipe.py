"""The final recipe: filled in from the data where the user left a setting at its default, kept where
the user chose."""

from __future__ import annotations

import numpy as np
import pytest
from medmnist_data import tiny_splits

from nas.data.splits import Split, Splits, imbalance
from nas.evaluate import TrainConfig
from nas.evaluate.recipe import (
    COLOUR,
    MIN_STEPS,
    WEIGHTED_FROM,
    class_weighting_for,
    ema_decay_for,
    final_recipe,
)


def colour(splits: Splits) -> Splits:
    rgb = [Split(np.repeat(s.images, 3, axis=3), s.labels) for s in (splits.train, splits.val, splits.test)]
    return Splits("rgb", splits.task, splits.class_names, *rgb)


def test_grey_data_gets_the_step_floor_and_the_ema_only():
    splits, base = tiny_splits(), TrainConfig(epochs=2, batch_size=16)
    recipe = final_recipe(base, splits)
    assert recipe.min_steps == MIN_STEPS and recipe.total_steps(64) == MIN_STEPS
    assert recipe.ema_decay == pytest.approx(ema_decay_for(MIN_STEPS))
    assert recipe.replace(min_steps=0, ema_decay=0.0) == base  # no smoothing, affine moves, flips, ...


def test_colour_data_gets_colour_jitter_and_a_smaller_floor_when_asked():
    recipe = final_recipe(TrainConfig(batch_size=16), colour(tiny_splits()), min_steps=40)
    assert {k: getattr(recipe, k) for k in COLOUR} == COLOUR
    assert recipe.min_steps == 40 and recipe.total_steps(64) == 40


def test_what_the_user_chose_is_kept():
    chosen = TrainConfig(
        label_smoothing=0.05, min_steps=10, ema_decay=0.5, max_rotate=3.0, class_weighting="sampler"
    )
    assert final_recipe(chosen, tiny_splits(sizes=(60, 30, 30), positive=0.1)) == chosen
    assert final_recipe(TrainConfig(augment=False), colour(tiny_splits())).color_jitter == 0


def test_class_weights_only_for_a_balanced_metric_on_imbalanced_data():
    balanced, skewed = tiny_splits(positive=0.5), tiny_splits(sizes=(100, 30, 30), positive=0.1)
    assert imbalance(balanced.class_counts()) < WEIGHTED_FROM <= imbalance(skewed.class_counts())
    by_balanced_accuracy = TrainConfig(select_metric="balanced_accuracy")
    assert final_recipe(by_balanced_accuracy, balanced).class_weighting == "none"
    assert final_recipe(by_balanced_accuracy, skewed).class_weighting == "loss"
    assert final_recipe(TrainConfig(), skewed).class_weighting == "none"  # AUC: weights cost AUC
    assert class_weighting_for("accuracy", 10.0) == "none"


def test_the_ema_horizon_follows_the_training_length():
    assert ema_decay_for(20) == pytest.approx(0.9)  # at least 10 steps
    assert ema_decay_for(10_000) == pytest.approx(1 - 1 / 1000)
