"""Search strategies, every one an Optuna sampler, so storage, resume, pruning and workers are Optuna's.

A strategy is one module with a ``STRATEGY = Strategy(...)`` plus one line in ``STRATEGIES`` (or, from
another package, an entry point ``strategy.<name>`` in the group ``nas.plugins``). The experiment
schema, ``nas search --help`` and the error for an unknown name all read ``STRATEGIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.registry import Registry

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import FrozenTrial

    from nas.search.config import StrategyConfig
    from nas.space import SearchSpace

MakeSampler = Callable[["StrategyConfig", "SearchSpace", int, int], "optuna.samplers.BaseSampler"]


@dataclass(frozen=True)
class Strategy:
    """How to make a strategy's sampler and what experiments it can run.

    ``make(config, space, seed, policy_seed)``: ``seed`` differs per worker so workers don't draw alike;
    ``policy_seed`` is the same on every worker and restart, for a strategy whose state must be replayed
    identically from the study (the mnasnet-rl controller). ``modes``: the experiment modes it serves.
    ``ranks_by_reward``: it needs the experiment's reward (also in pareto mode). ``check(config)`` raises
    ``ValueError`` for options that do not go together; experiment validation calls it.
    """

    make: MakeSampler
    modes: tuple[str, ...] = ("reward", "pareto")
    ranks_by_reward: bool = False
    check: Callable[[StrategyConfig], None] | None = None


STRATEGIES: Registry[Strategy] = Registry(
    "strategy",
    {
        "random": "nas.search.strategies.optuna_samplers:RANDOM",
        "tpe": "nas.search.strategies.optuna_samplers:TPE",
        "nsga2": "nas.search.strategies.optuna_samplers:NSGA2",
        "evolution": "nas.search.strategies.evolution:STRATEGY",
        "mnasnet-rl": "nas.search.strategies.mnasnet_rl:STRATEGY",
    },
)


def make_sampler(
    config: StrategyConfig, space: SearchSpace, seed: int, policy_seed: int | None = None
) -> optuna.samplers.BaseSampler:
    """The sampler of the strategy ``config.name`` (``policy_seed`` defaults to ``seed``)."""
    strategy = STRATEGIES.get(config.name)
    return strategy.make(config, space, seed, seed if policy_seed is None else policy_seed)


def distributions(space: SearchSpace) -> dict[str, CategoricalDistribution]:
    """The space's fixed set of categorical parameters as Optuna distributions."""
    from optuna.distributions import CategoricalDistribution

    return {p.name: CategoricalDistribution(list(p.choices)) for p in space.params}


def fitness(trial: FrozenTrial) -> float | None:
    """The scalar that evolution and the RL controller rank by: the trial's reward, None if it has none."""
    value = trial.user_attrs.get("reward")
    return float(value) if value is not None else None
