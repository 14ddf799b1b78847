"""Rewards (MnasNet soft and hard, weighted sum) and constraint violations, against hand-computed values."""

from __future__ import annotations

import optuna
import pytest

from nas.search.config import ConstraintConfig, ExperimentConfig, RewardConfig
from nas.search.objective import CandidateObjective
from nas.search.reward import reward
from nas.space import SearchSpace

SOFT = RewardConfig(type="mnasnet_soft", accuracy="val_auc", latency="latency_ms", target=10.0)
HARD = RewardConfig(type="mnasnet_hard", accuracy="val_auc", latency="latency_ms", target=10.0)


def metrics(acc: float, lat: float) -> dict[str, float]:
    return {"val_auc": acc, "latency_ms": lat, "params": 1e5}


@pytest.mark.parametrize(
    ("acc", "lat", "expected"),
    [
        (0.9, 10.0, 0.9),  # at the target: ACC
        (0.9, 20.0, 0.857374),  # 0.9 * 2 ** -0.07 = 0.9 * 0.952638
        (0.9, 5.0, 0.944745),  # 0.9 * 0.5 ** -0.07 = 0.9 * 1.049717
        (0.8, 40.0, 0.726015),  # 0.8 * 4 ** -0.07 = 0.8 * 0.952638 ** 2 = 0.8 * 0.907519
        (0.0, 20.0, 0.0),
    ],
)
def test_mnasnet_soft_reward(acc, lat, expected):
    assert reward(metrics(acc, lat), SOFT) == pytest.approx(expected, abs=1e-6)


def test_mnasnet_soft_reward_with_its_own_exponent():
    config = SOFT.model_copy(update={"w": -0.5})
    assert reward(metrics(0.9, 40.0), config) == pytest.approx(0.45)  # 0.9 * 4 ** -0.5


def test_soft_reward_trades_accuracy_for_latency_as_the_paper_says():
    # w = -0.07: twice the latency is worth about 5% accuracy (MnasNet, Section 3)
    slow_accurate = reward(metrics(0.9 * 1.05, 20.0), SOFT)
    fast = reward(metrics(0.9, 10.0), SOFT)
    assert slow_accurate == pytest.approx(fast, rel=0.003)


@pytest.mark.parametrize(
    ("acc", "lat", "expected"),
    [
        (0.9, 5.0, 0.9),  # under T: w = 0
        (0.9, 10.0, 0.9),  # at T: still w = 0
        (0.9, 20.0, 0.45),  # over T: w = -1, 0.9 * 10 / 20
        (0.6, 30.0, 0.2),  # 0.6 * 10 / 30
    ],
)
def test_mnasnet_hard_reward(acc, lat, expected):
    assert reward(metrics(acc, lat), HARD) == pytest.approx(expected)


def test_weighted_sum():
    config = RewardConfig(type="weighted_sum", weights={"val_auc": 2.0, "params": -1e-6, "macs": -1e-8})
    values = {"val_auc": 0.8, "params": 250_000.0, "macs": 3e7, "latency_ms": 99.0}
    # 2 * 0.8 - 1e-6 * 250000 - 1e-8 * 3e7 = 1.6 - 0.25 - 0.3
    assert reward(values, config) == pytest.approx(1.05)


def test_missing_metric_is_a_key_error():
    with pytest.raises(KeyError):
        reward({"val_auc": 0.9}, SOFT)
    with pytest.raises(KeyError):
        reward({"val_auc": 0.9}, RewardConfig(type="weighted_sum", weights={"params": -1.0}))


@pytest.mark.parametrize(
    ("bounds", "value", "expected"),
    [
        ({"max": 100.0}, 50.0, -0.5),  # satisfied: negative
        ({"max": 100.0}, 100.0, 0.0),  # at the bound: satisfied
        ({"max": 100.0}, 150.0, 0.5),  # broken: positive, relative to the bound
        ({"min": 10.0}, 20.0, -1.0),
        ({"min": 10.0}, 10.0, 0.0),
        ({"min": 10.0}, 5.0, 0.5),
        ({"min": 10.0, "max": 100.0}, 50.0, -0.5),  # the tighter of the two
        ({"min": 10.0, "max": 100.0}, 200.0, 1.0),
        ({"min": 10.0, "max": 100.0}, 2.0, 0.8),
        ({"min": -4.0}, -6.0, 0.5),  # relative to |bound|
    ],
)
def test_constraint_violation_signs(bounds, value, expected):
    constraint = ConstraintConfig(metric="params", **bounds)
    assert constraint.violation(value) == pytest.approx(expected)


def test_constraint_on_a_zero_bound_stays_finite_and_signed():
    constraint = ConstraintConfig(metric="val_ece", max=0.0)
    assert constraint.violation(0.0) == 0.0
    assert constraint.violation(1e-3) > 0 > constraint.violation(-1e-3)


def test_infeasible_candidate_scores_no_better_than_zero():
    config = ExperimentConfig(
        name="r",
        space="mnasnet_small",
        reward=RewardConfig(type="weighted_sum", weights={"params": 1e-6}),
        constraints=[ConstraintConfig(metric="macs", max=1e6)],
    )
    objective = CandidateObjective(config, SearchSpace.from_yaml("mnasnet_small"), 1, 2)
    study = optuna.create_study(direction="maximize")
    feasible, infeasible = study.ask(), study.ask()
    assert objective.values(feasible, {"params": 2e5, "macs": 5e5}) == pytest.approx(0.2)
    assert objective.values(infeasible, {"params": 2e5, "macs": 2e6}) == 0.0
    assert infeasible.user_attrs["constraints"] == [pytest.approx(1.0)]
    assert feasible.user_attrs["constraints"] == [pytest.approx(-0.5)]
    assert feasible.user_attrs["reward"] == pytest.approx(0.2)
