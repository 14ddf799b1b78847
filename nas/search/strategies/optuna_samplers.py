"""Optuna's own samplers as strategies: random sampling, TPE and NSGA-II."""

from __future__ import annotations

import optuna

from nas.search.strategies import Strategy

RANDOM = Strategy(make=lambda config, space, seed, policy_seed: optuna.samplers.RandomSampler(seed=seed))
TPE = Strategy(
    make=lambda config, space, seed, policy_seed: optuna.samplers.TPESampler(seed=seed, multivariate=True)
)
NSGA2 = Strategy(
    make=lambda config, space, seed, policy_seed: optuna.samplers.NSGAIISampler(
        population_size=config.population, seed=seed
    ),
    modes=("pareto",),
)
