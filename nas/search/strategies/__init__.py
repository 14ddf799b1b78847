"""Search strategies, every one an Optuna sampler, so storage, resume, pruning and workers are Optuna's."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial

from nas.search.config import StrategyConfig
from nas.space import SearchSpace


def distributions(space: SearchSpace) -> dict[str, CategoricalDistribution]:
    """The space's fixed set of categorical parameters as Optuna distributions."""
    return {p.name: CategoricalDistribution(list(p.choices)) for p in space.params}


def make_sampler(
    config: StrategyConfig,
    space: SearchSpace,
    seed: int,
    policy_seed: int | None = None,
) -> optuna.samplers.BaseSampler:
    """The sampler for a strategy name; ``seed`` differs per worker so workers don't draw alike.

    ``policy_seed`` (default ``seed``) initializes the mnasnet-rl controller: it must be the same on
    every worker and restart, so that each one replaying the study arrives at the same policy (its
    draws differ anyway: they are seeded by trial number)."""
    if config.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if config.name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=config.population, seed=seed)
    if config.name == "evolution":
        from nas.search.strategies.evolution import EvolutionSampler

        return EvolutionSampler(space, config.population, config.sample_size, seed)
    from nas.search.strategies.mnasnet_rl import MnasNetRLSampler

    return MnasNetRLSampler(space, seed if policy_seed is None else policy_seed, config.learning_rate)


def fitness(trial: FrozenTrial) -> float | None:
    """The scalar that evolution and the RL controller rank by: the trial's reward, None if it has none."""
    value = trial.user_attrs.get("reward")
    return float(value) if value is not None else None
