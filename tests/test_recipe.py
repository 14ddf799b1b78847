"""The final recipe: filled in from the data where the user left a setting at its default, kept where
the user chose."""

from __future__ import annotations

from medmnist_data import tiny_splits

from nas.data.splits import imbalance
from nas.evaluate import TrainConfig
from nas.evaluate.recipe import MIN_STEPS, WEIGHTED_FROM, class_weighting_for, final_recipe


def test_the_step_floor_is_added_and_nothing_else_for_balanced_data():
    base = TrainConfig(epochs=2, batch_size=16)
    recipe = final_recipe(base, tiny_splits())
    assert recipe.min_steps == MIN_STEPS and recipe.total_steps(64) == MIN_STEPS
    assert recipe.replace(min_steps=0) == base  # no smoothing, EMA, affine moves, jitter, flips, weights
    assert final_recipe(base, tiny_splits(), min_steps=40).total_steps(64) == 40


def test_what_the_user_chose_is_kept():
    chosen = TrainConfig(min_steps=2000, class_weighting="sampler", select_metric="balanced_accuracy")
    assert final_recipe(chosen, tiny_splits(sizes=(60, 30, 30), positive=0.1)) == chosen


def test_the_step_floor_is_the_larger_of_the_settings_and_the_recipes():
    proxy = TrainConfig(min_steps=300)  # a search's proxy floor, carried into its final training
    splits = tiny_splits(sizes=(60, 30, 30))
    assert final_recipe(proxy, splits).min_steps == MIN_STEPS
    assert final_recipe(proxy, splits, min_steps=0).min_steps == 300


def test_class_weights_only_for_a_balanced_metric_on_imbalanced_data():
    balanced, skewed = tiny_splits(positive=0.5), tiny_splits(sizes=(100, 30, 30), positive=0.1)
    assert imbalance(balanced.class_counts()) < WEIGHTED_FROM <= imbalance(skewed.class_counts())
    by_balanced_accuracy = TrainConfig(select_metric="balanced_accuracy")
    assert final_recipe(by_balanced_accuracy, balanced).class_weighting == "none"
    assert final_recipe(by_balanced_accuracy, skewed).class_weighting == "loss"
    assert final_recipe(TrainConfig(), skewed).class_weighting == "none"  # AUC: weights cost AUC
    assert class_weighting_for("accuracy", 10.0) == "none"
    assert imbalance([30, 10]) == 3.0 and imbalance([5, 0]) == 5.0
