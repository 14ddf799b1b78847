"""Regularized (aging) evolution (Real et al., AAAI 2019) as an Optuna sampler.

The population is the ``population`` most recent finished trials; each new candidate mutates the best of
``sample_size`` members drawn at random, with the space's ``mutate`` (one parameter changed so that the
network changes). The oldest member leaves as a new one arrives, whatever its fitness: that ageing is
what keeps the search from collapsing onto one lucky early network. State lives only in the study, so
the sampler resumes and runs on any number of workers as it is.
"""

from __future__ import annotations

import random
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from nas.search.strategies import Strategy, distributions, fitness
from nas.space import SearchSpace


class EvolutionSampler(BaseSampler):
    def __init__(self, space: SearchSpace, population: int = 20, sample_size: int = 5, seed: int = 0) -> None:
        _check_sizes(population, sample_size)
        self._space = space
        self._population = population
        self._sample_size = sample_size
        self._seed = seed
        self._random = RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(distributions(self._space))

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        names = [p.name for p in self._space.params]
        finished = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if all(name in t.params for name in names)
        ]
        if len(finished) < self._population:
            return {}  # the first generation is random (sample_independent)
        rng = random.Random(f"{self._seed}-{trial.number}")
        population = sorted(finished, key=lambda t: t.number)[-self._population :]
        contenders = rng.sample(population, self._sample_size)
        parent = max(contenders, key=lambda t: _rank(fitness(t)))
        child = self._space.mutate(self._space.decode(parent.params), rng)  # params: any objective's
        return self._space.encode(child)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)


def _rank(value: float | None) -> float:
    return float("-inf") if value is None else value


def _check_sizes(population: int, sample_size: int) -> None:
    if sample_size > population:
        raise ValueError(f"sample_size {sample_size} exceeds population {population}")


STRATEGY = Strategy(
    make=lambda config, space, seed, policy_seed: EvolutionSampler(
        space, config.population, config.sample_size, seed
    ),
    ranks_by_reward=True,
    check=lambda config: _check_sizes(config.population, config.sample_size),
)
