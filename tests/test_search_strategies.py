"""Search strategies: one conformance test every sampler passes, then evolution's and the MnasNet
controller's own properties (mutation, ageing, determinism, resume, learning)."""

from __future__ import annotations

import random
import statistics

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from nas.arch import ArchSpec
from nas.search.config import StrategyConfig
from nas.search.strategies import distributions, make_sampler
from nas.space import SearchSpace

SPACE = SearchSpace.from_yaml("mnasnet_small")
NAMES = {p.name for p in SPACE.params}
OPS = [p.name for p in SPACE.params if p.name.endswith(".op")]


@pytest.fixture(autouse=True, scope="module")
def quiet_single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    torch.set_num_threads(threads)


def ds_share(params: dict) -> float:
    """A cheap synthetic reward: the share of stages whose op is ``ds`` (chance: 1/3)."""
    return sum(params[name] == "ds" for name in OPS) / len(OPS)


def first_share(params: dict) -> float:
    return sum(params[p.name] == p.choices[0] for p in SPACE.params) / len(SPACE.params)


def objective(trial: optuna.Trial, pareto: bool = False):
    """What the search's objective does, minus the metrics: suggest, decode, record arch and reward."""
    arch = SPACE.suggest(trial)
    trial.set_user_attr("arch", arch.to_str())
    score = ds_share(trial.params)
    trial.set_user_attr("reward", score)
    return (score, first_share(trial.params)) if pareto else score


def run_study(strategy: str, trials: int, seed: int = 0, **strategy_options) -> optuna.Study:
    pareto = strategy == "nsga2"
    config = StrategyConfig(name=strategy, **strategy_options)
    study = optuna.create_study(
        directions=["maximize", "maximize"] if pareto else ["maximize"],
        sampler=make_sampler(config, SPACE, seed),
    )
    study.optimize(lambda t: objective(t, pareto), n_trials=trials)
    return study


def is_one_mutation(parent: ArchSpec, child: ArchSpec) -> bool:
    """Whether changing one parameter of ``parent``'s choices gives ``child`` (the space's ``mutate``)."""
    choices = SPACE.encode(parent)
    return any(
        SPACE.decode({**choices, p.name: value}) == child
        for p in SPACE.params
        for value in p.choices
        if value != choices[p.name]
    )


STRATEGY_CASES = [
    ("random", {}),
    ("tpe", {}),
    ("nsga2", {"population": 6}),
    ("evolution", {"population": 6, "sample_size": 3}),
    ("mnasnet-rl", {}),
]


@pytest.mark.parametrize(("strategy", "options"), STRATEGY_CASES, ids=[s for s, _ in STRATEGY_CASES])
def test_every_strategy_conforms(strategy, options):
    study = run_study(strategy, trials=18, seed=1, **options)
    trials = study.trials
    assert len(trials) == 18 and all(t.state == TrialState.COMPLETE for t in trials)
    expected = distributions(SPACE)
    for trial in trials:
        assert set(trial.params) == NAMES  # exactly the space's parameters, every time
        assert trial.distributions == expected
        for name, value in trial.params.items():
            assert value in expected[name].choices
        arch = ArchSpec.from_str(trial.user_attrs["arch"])
        assert SPACE.decode(trial.params) == arch
        assert SPACE.decode(SPACE.encode(arch)) == arch  # the arch belongs to the space
    # not stuck on one candidate
    assert len({t.user_attrs["arch"] for t in trials}) >= 10
    # the same seed draws the same candidates
    again = run_study(strategy, trials=8, seed=1, **options)
    assert [t.params for t in again.trials] == [t.params for t in trials[:8]]


def test_make_sampler_kinds():
    assert isinstance(make_sampler(StrategyConfig(name="random"), SPACE, 0), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler(StrategyConfig(name="tpe"), SPACE, 0), optuna.samplers.TPESampler)
    assert isinstance(make_sampler(StrategyConfig(name="nsga2"), SPACE, 0), optuna.samplers.NSGAIISampler)
    assert all(isinstance(d, CategoricalDistribution) for d in distributions(SPACE).values())


# ---- evolution -------------------------------------------------------------------------------


def test_evolution_children_are_one_mutation_of_the_recent_population():
    population = 5
    study = run_study("evolution", trials=14, seed=2, population=population, sample_size=2)
    archs = [ArchSpec.from_str(t.user_attrs["arch"]) for t in study.trials]
    for n in range(population, len(archs)):
        window = archs[n - population : n]  # the most recent finished trials
        assert all(archs[n] != parent for parent in window if is_one_mutation(parent, archs[n]))
        assert any(is_one_mutation(parent, archs[n]) for parent in window), f"trial {n}"


def add_trial(study: optuna.Study, params: dict, reward: float) -> None:
    study.add_trial(
        optuna.create_trial(
            params=params,
            distributions=distributions(SPACE),
            value=reward,
            user_attrs={"arch": SPACE.decode(params).to_str(), "reward": reward},
        )
    )


def propose(study: optuna.Study) -> ArchSpec:
    trial = study.ask()
    arch = SPACE.suggest(trial)
    study.tell(trial, 0.0)
    return arch


def test_evolution_ages_out_the_oldest_whatever_its_fitness():
    # sample_size == population: the parent is always the best member, so who is a member shows
    sampler = make_sampler(StrategyConfig(name="evolution", population=4, sample_size=4), SPACE, 0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    first = {p.name: p.choices[0] for p in SPACE.params}
    last = {p.name: p.choices[-1] for p in SPACE.params}
    rng = random.Random(0)
    add_trial(study, first, 100.0)  # the best ever, and the oldest
    add_trial(study, SPACE.sample_choices(rng), 1.0)
    add_trial(study, SPACE.sample_choices(rng), 2.0)
    add_trial(study, last, 3.0)
    old, runner_up = SPACE.decode(first), SPACE.decode(last)

    child = propose(study)  # trial 4: trial 0 is still a member, and the best
    assert is_one_mutation(old, child) and child != old
    child = propose(study)  # trial 5: trial 0 has aged out, trial 3 is the best member
    assert is_one_mutation(runner_up, child) and child != runner_up
    assert not is_one_mutation(old, child)


def test_evolution_first_generation_is_random_and_needs_a_sane_sample_size():
    study = run_study("evolution", trials=4, seed=0, population=4, sample_size=2)
    archs = {t.user_attrs["arch"] for t in study.trials}
    assert len(archs) == 4
    from nas.search.strategies.evolution import EvolutionSampler

    with pytest.raises(ValueError, match="exceeds population"):
        EvolutionSampler(SPACE, population=3, sample_size=4)


def test_evolution_works_from_params_alone():
    """An objective that records no ``arch`` (a benchmark's) still gets mutations, not random draws."""
    sampler = make_sampler(StrategyConfig(name="evolution", population=3, sample_size=3), SPACE, 0)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def bare(trial):
        SPACE.suggest(trial)
        score = ds_share(trial.params)
        trial.set_user_attr("reward", score)
        return score

    study.optimize(bare, n_trials=6)
    archs = [SPACE.decode(t.params) for t in study.trials]
    for n in range(3, 6):
        assert any(is_one_mutation(parent, archs[n]) for parent in archs[n - 3 : n])


# ---- MnasNet RL controller -------------------------------------------------------------------


def rl_sampler(seed: int, **options) -> optuna.samplers.BaseSampler:
    return make_sampler(StrategyConfig(name="mnasnet-rl", **options), SPACE, seed)


def test_controller_is_deterministic_for_a_seed_and_a_history():
    a = optuna.create_study(direction="maximize", sampler=rl_sampler(5))
    b = optuna.create_study(direction="maximize", sampler=rl_sampler(5))
    a.optimize(objective, n_trials=10)
    b.optimize(objective, n_trials=10)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    c = optuna.create_study(direction="maximize", sampler=rl_sampler(6))
    c.optimize(objective, n_trials=3)
    assert [t.params for t in c.trials] != [t.params for t in a.trials[:3]]


def test_a_fresh_controller_replaying_the_study_proposes_the_same():
    """The resume property: a restarted process (or another worker) rebuilds the same policy."""
    original = optuna.create_study(direction="maximize", sampler=rl_sampler(3))
    original.optimize(objective, n_trials=12)
    replayed = optuna.create_study(direction="maximize", sampler=rl_sampler(3))
    replayed.add_trials(original.trials)
    # run_worker gives every worker and restart its own seed, but the same policy seed
    other_worker = make_sampler(StrategyConfig(name="mnasnet-rl"), SPACE, seed=3 + 7919, policy_seed=3)
    worker = optuna.create_study(direction="maximize", sampler=other_worker)
    worker.add_trials(original.trials)
    proposal = propose(original)
    assert propose(replayed) == proposal
    assert propose(worker) == proposal
    assert proposal != ArchSpec.from_str(original.trials[11].user_attrs["arch"])


def test_controller_learns_from_rewards_without_collapsing():
    # seeds 0-7 all gain 0.25 to 0.6 here; a learning rate that collapses the policy gains far less
    study = optuna.create_study(direction="maximize", sampler=rl_sampler(1))
    study.optimize(objective, n_trials=80)
    rewards = [t.value for t in study.trials]
    archs = [t.user_attrs["arch"] for t in study.trials]
    first, last = statistics.mean(rewards[:20]), statistics.mean(rewards[-20:])
    assert last > first + 0.2, (first, last)
    assert len(set(archs[:20])) == 20 and len(set(archs[-20:])) >= 15, "the policy collapsed"


def test_controller_learns_from_rejected_candidates_and_skips_unscored_ones():
    sampler = rl_sampler(0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    rng = random.Random(1)
    add_trial(study, SPACE.sample_choices(rng), 0.5)
    rejected = SPACE.sample_choices(rng)
    study.add_trial(
        optuna.create_trial(
            params=rejected,
            distributions=distributions(SPACE),
            state=TrialState.PRUNED,
            user_attrs={"rejected": "params 1e+06 not <= 1e+05"},
        )
    )
    study.add_trial(
        optuna.create_trial(
            params=SPACE.sample_choices(rng), distributions=distributions(SPACE), state=TrialState.PRUNED
        )
    )
    propose(study)
    # two policy-gradient steps: the rejected one is learned from (as the lowest reward), the merely
    # pruned one is not
    steps = {int(state["step"]) for state in sampler._optimizer.state.values()}
    assert steps == {2}
    assert sampler._lowest == 0.5
