"""Rewards: how a candidate's metrics become the one number a reward-mode search maximizes.

MnasNet (Tan et al., CVPR 2019, Eq. 2): ``ACC * (LAT / T) ** w``; the soft constraint uses w = -0.07
everywhere, the hard constraint w = 0 under the target T and w = -1 over it. ``weighted_sum`` is
``sum(weight * metric)``: give lower-is-better metrics negative weights.
"""

from __future__ import annotations

from collections.abc import Mapping

from nas.search.config import RewardConfig


def reward(metrics: Mapping[str, float], config: RewardConfig) -> float:
    """The reward of one candidate; a metric the reward needs but ``metrics`` lacks is a ``KeyError``."""
    if config.type == "weighted_sum":
        return sum(weight * metrics[name] for name, weight in config.weights.items())
    accuracy, latency = metrics[config.accuracy], metrics[config.latency]
    assert config.target is not None  # validated by RewardConfig
    exponent = config.w if config.type == "mnasnet_soft" else 0.0 if latency <= config.target else -1.0
    return accuracy * (latency / config.target) ** exponent
