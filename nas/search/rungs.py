"""Multi-fidelity: at which steps a candidate's training may be stopped (the rungs), who goes on at each,
and how many candidates reached each rung.

Steps are what a trial reports (``nas.evaluate.protocols``): epochs 1..E of its first training, then
``k * E`` after its k-th training (kfold's folds, repeats). Rungs are successive halving's: the first
report step at or after ``min_epochs``, ``min_epochs * eta``, ``min_epochs * eta**2``, ... short of the
last step, where the trial is complete anyway (``eta`` is the pruner's ``reduction_factor``).

Reward mode hands these settings to Optuna's pruners (``make_pruner``). Pareto mode cannot use them:
Optuna prunes single-objective studies only. There ``ParetoPromotion`` does successive halving on the
study itself (ASHA's asynchronous rule): a trial reaching a rung records its objective values there in
its user attributes (``rungs``), in the study's storage, and goes on only if it ranks among the best
``1/eta`` of every trial that has reached that rung so far, ranked by non-dominated front and crowding
distance as NSGA-II ranks a population. Nobody is stopped at a rung before ``startup_trials`` trials have
reached it. With ``hyperband`` each trial belongs to bracket ``number % brackets``; bracket ``b`` skips
the first ``b`` rungs and is ranked only against its own bracket, so some candidates always train to
the end. Rung records live in the storage, so workers share them and a resumed search keeps them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.pareto import costs, promotion_order

if TYPE_CHECKING:
    from nas.search.config import ExperimentConfig

RUNG_ATTR = "rungs"  # user attribute: {str(step): {objective: value}} at each rung the trial reached
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
JUDGED = (TrialState.RUNNING, *FINISHED)  # a failed trial's rungs don't count


def report_steps(epochs: int, runs: int) -> list[int]:
    """Every step a trial reports: each epoch of its first training, then the end of each later one."""
    return list(range(1, epochs + 1)) + [k * epochs for k in range(2, runs + 1)]


def rung_steps(epochs: int, runs: int, min_epochs: int, eta: int) -> list[int]:
    """The rungs (see the module docstring); empty when the first rung would be the last step."""
    steps = report_steps(epochs, runs)
    rungs: list[int] = []
    target = min_epochs
    while True:
        step = next((s for s in steps if s >= target), None)
        if step is None or step == steps[-1]:
            return rungs
        if step not in rungs:
            rungs.append(step)
        target *= eta


def schedule(config: ExperimentConfig) -> tuple[list[int], int]:
    """The experiment's rungs and its last step."""
    epochs, runs = config.train_config().epochs, config.evaluation.runs()
    eta = config.pruner.reduction_factor
    return rung_steps(epochs, runs, config.min_epochs(), eta), epochs * runs


def make_pruner(config: ExperimentConfig) -> optuna.pruners.BasePruner:
    """Reward mode's Optuna pruner, judging no trial before ``min_epochs`` nor before ``startup_trials``
    trials reached the step (Optuna's successive halving alone would stop the second trial of a rung)."""
    pruner = config.pruner
    if config.mode == "pareto" or pruner.name == "none":
        return optuna.pruners.NopPruner()
    first, last = config.min_epochs(), schedule(config)[1]
    if pruner.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=pruner.startup_trials, n_warmup_steps=first, n_min_trials=pruner.startup_trials
        )
    if pruner.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=first,
            max_resource=last,
            reduction_factor=pruner.reduction_factor,
            bootstrap_count=pruner.startup_trials,
        )
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=first, reduction_factor=pruner.reduction_factor, bootstrap_count=pruner.startup_trials
    )


@dataclass(frozen=True)
class ParetoPromotion:
    """Successive halving by non-dominated rank (module docstring) over ``axes`` (metric, direction)."""

    rungs: tuple[int, ...]
    axes: tuple[tuple[str, str], ...]
    eta: int
    startup: int
    brackets: int = 1

    @classmethod
    def from_config(cls, config: ExperimentConfig) -> ParetoPromotion | None:
        if config.mode != "pareto" or config.pruner.name == "none":
            return None
        rungs = schedule(config)[0]
        axes = tuple((o.metric, o.resolved_direction) for o in config.objectives)
        brackets = len(rungs) + 1 if config.pruner.name == "hyperband" else 1
        return cls(tuple(rungs), axes, config.pruner.reduction_factor, config.pruner.startup_trials, brackets)

    def bracket(self, number: int) -> int:
        return number % self.brackets

    def judge(self, trial: optuna.Trial, step: int, point: Mapping[str, float]) -> str | None:
        """Record ``point``'s objectives (the trial's metrics at ``step``) if ``step`` is a rung, and return
        why the trial stops there, or None when it goes on."""
        if step not in self.rungs:
            return None
        recorded = dict(trial.user_attrs.get(RUNG_ATTR, {}))
        recorded[str(step)] = {m: point[m] for m, _ in self.axes if m in point}
        trial.set_user_attr(RUNG_ATTR, recorded)
        bracket = self.bracket(trial.number)
        if step not in self.rungs[bracket:] or not self._judgeable(point):
            return None
        peers = [
            t.user_attrs[RUNG_ATTR][str(step)]
            for t in trial.study.get_trials(deepcopy=False, states=JUDGED)
            if t.number != trial.number
            and self.bracket(t.number) == bracket
            and self._judgeable(t.user_attrs.get(RUNG_ATTR, {}).get(str(step), {}))
        ]
        points = [costs(p, self.axes) for p in [*peers, point]]
        if len(points) < self.startup:
            return None
        keep = math.ceil(len(points) / self.eta)
        place = promotion_order(points).index(len(points) - 1)
        if place < keep:
            return None
        return f"not promoted at step {step}: placed {place + 1} of {len(points)}, the best {keep} go on"

    def _judgeable(self, point: Mapping[str, Any]) -> bool:
        return all(isinstance(point.get(m), int | float) and math.isfinite(point[m]) for m, _ in self.axes)


def reached_step(trial: FrozenTrial, last_step: int) -> int | None:
    """How far a finished trial's training got: its last step when it completed training, else the last
    step it reported (to Optuna's pruner or at a rung); None when it never trained or did not finish (a
    failed trial's candidate is retried as another trial)."""
    attrs = trial.user_attrs
    if trial.state not in FINISHED or "rejected" in attrs or "cached_from" in attrs:
        return None
    if trial.state == TrialState.COMPLETE and "fidelity" in attrs:
        return last_step
    steps = [*trial.intermediate_values, *(int(s) for s in attrs.get(RUNG_ATTR, {}))]
    return max(steps, default=None)


def rung_counts(trials: list[FrozenTrial], config: ExperimentConfig) -> dict[str, int]:
    """How many candidates reached each rung and the last step: ``{"3": 40, "5": 12}`` (JSON keys)."""
    rungs, last = schedule(config)
    reached = [r for t in trials if (r := reached_step(t, last)) is not None]
    return {str(step): sum(r >= step for r in reached) for step in [*rungs, last]}
