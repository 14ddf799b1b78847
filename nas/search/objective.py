"""One trial: suggest an arch, compute the cheap metrics, reject what breaks a hard constraint, train the
rest briefly, and turn the metrics into the study's value(s).

Cheap before expensive: parameters, MACs, peak memory, the energy estimate and table latency are known
in well under a second, so a candidate that breaks a constraint on any of them is never trained (its
trial ends PRUNED with a ``rejected`` reason). An arch that a finished trial already evaluated is not
evaluated again: its metrics are copied (``cached_from``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from nas.arch import ArchSpec
from nas.latency.table import LatencyTable
from nas.metrics import measure
from nas.search.config import CHEAP_METRICS, ExperimentConfig
from nas.search.reward import reward
from nas.search.rungs import ParetoPromotion, schedule
from nas.space import SearchSpace

Report = Callable[[int, dict[str, float]], None]


class CandidateFailed(Exception):
    """A candidate that cannot be scored (e.g. its training diverged): its trial fails with this reason
    and the search goes on."""


class AccuracyEvaluator(Protocol):
    """Trains a candidate briefly and returns validation metrics (``val_auc``, ...); calls ``report``
    after every epoch (it may raise ``optuna.TrialPruned``)."""

    def __call__(self, arch: ArchSpec, report: Report) -> dict[str, float]: ...


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def cheap_metrics(
    arch: ArchSpec, in_chans: int, input_size: int, num_classes: int, table: LatencyTable | None
) -> dict[str, float]:
    """Every metric known without training."""
    c = measure(arch, in_chans=in_chans, input_size=input_size, num_classes=num_classes)
    metrics = {
        "params": float(c.params),
        "macs": float(c.macs),
        "peak_activation_kb": c.peak_activation_bytes / 1024,
        "int8_peak_activation_kb": c.peak_activation_bytes / 4 / 1024,  # one byte per element
        "int8_weight_kb": c.int8_weight_bytes / 1024,
        "energy_mj": c.energy_mj_estimate,
    }
    if table is not None:
        metrics["latency_ms"] = table.predict(arch)
    return metrics


def cheap_rejection(config: ExperimentConfig, metrics: dict[str, float]) -> str | None:
    """Why a candidate with these cheap metrics is never trained (the first cheap constraint it breaks,
    e.g. ``params 412000 not <= 300000``); None when it would be trained."""
    for constraint in config.all_constraints():
        if constraint.metric in CHEAP_METRICS and constraint.violation(metrics[constraint.metric]) > 0:
            bound = f"<= {constraint.max:g}" if constraint.max is not None else f">= {constraint.min:g}"
            return f"{constraint.metric} {metrics[constraint.metric]:g} not {bound}"
    return None


@dataclass
class CandidateObjective:
    """The callable ``study.optimize`` runs: one candidate, start to finish."""

    config: ExperimentConfig
    space: SearchSpace
    in_chans: int
    num_classes: int
    table: LatencyTable | None = None
    evaluator: AccuracyEvaluator | None = None

    def __call__(self, trial: Trial) -> float | list[float]:
        trial.set_user_attr("worker", worker_id())  # first: a killed worker's trial is known at once
        arch = self.space.suggest(trial)
        trial.set_user_attr("arch", arch.to_str())
        cached = _finished_twin(trial, arch)
        if cached is not None:
            trial.set_user_attr("cached_from", cached.number)
            metrics = dict(cached.user_attrs["metrics"])
            if "fidelity" in cached.user_attrs:
                trial.set_user_attr("fidelity", cached.user_attrs["fidelity"])
        else:
            try:
                metrics = self.evaluate(trial, arch)
            except CandidateFailed as exc:
                trial.set_user_attr("fail_reason", str(exc))
                raise
        trial.set_user_attr("metrics", metrics)
        return self.values(trial, metrics)

    def evaluate(self, trial: Trial, arch: ArchSpec) -> dict[str, float]:
        metrics = cheap_metrics(arch, self.in_chans, self.config.input_size, self.num_classes, self.table)
        rejected = cheap_rejection(self.config, metrics)
        if rejected is not None:
            trial.set_user_attr("metrics", metrics)
            trial.set_user_attr("rejected", rejected)
            raise optuna.TrialPruned(rejected)
        if self.config.needs_training():
            if self.evaluator is None:
                raise ValueError("this experiment needs an accuracy evaluator (training)")
            trial.set_user_attr("fidelity", self.config.fidelity())  # before training: a pruned trial has it
            metrics.update(self.evaluator(arch, self._reporter(trial, dict(metrics))))
        return metrics

    def _reporter(self, trial: Trial, cheap: dict[str, float]) -> Report:
        """What a trial does at each step it reports (``nas.search.rungs``): in pareto mode, successive
        halving by non-dominated rank; in reward mode, the reward so far to Optuna's pruner. Either way
        a stopped trial keeps the metrics it was stopped with."""

        def stop(point: dict[str, float], why: str) -> None:
            trial.set_user_attr("metrics", point)
            raise optuna.TrialPruned(why)

        if self.config.mode == "pareto":
            promotion = ParetoPromotion.from_config(self.config)
            if promotion is None:
                return lambda step, values: None

            def promote(step: int, values: dict[str, float]) -> None:
                point = cheap | values
                verdict = promotion.judge(trial, step, point)
                if verdict is not None:
                    stop(point, verdict)

            return promote
        if self.config.pruner.name == "none" or self.config.reward is None:
            return lambda step, values: None

        last_step = schedule(self.config)[1]

        def report(step: int, values: dict[str, float]) -> None:
            point = cheap | values
            try:
                trial.report(reward(point, self.config.reward), step)
            except KeyError:  # a metric the reward needs is not measured at every step
                return
            if step < last_step and trial.should_prune():  # at the last step the training is done
                stop(point, f"pruned at step {step}")

        return report

    def values(self, trial: Trial, metrics: dict[str, float]) -> float | list[float]:
        violations = [c.violation(metrics[c.metric]) for c in self.config.all_constraints()]
        trial.set_user_attr("constraints", violations)
        if self.config.mode == "pareto":  # NSGA-II and TPE rank feasible trials first (reward mode folds
            for i, violation in enumerate(violations):  # violations into the reward instead)
                trial.set_constraint(f"constraint_{i}", violation)
        if self.config.reward is not None:
            score = reward(metrics, self.config.reward)
            if any(v > 0 for v in violations):
                score = min(score, 0.0)  # infeasible: never better than nothing
            trial.set_user_attr("reward", score)
        if self.config.mode == "pareto":
            return [metrics[o.metric] for o in self.config.objectives]
        return score


def _finished_twin(trial: Trial, arch: ArchSpec) -> FrozenTrial | None:
    text = arch.to_str()
    for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if other.user_attrs.get("arch") == text and "metrics" in other.user_attrs:
            return other
    return None


def summarize_metrics(trial: FrozenTrial) -> dict[str, Any]:
    """The flat row of one trial for reports: its arch, reward and every metric."""
    return {"arch": trial.user_attrs.get("arch", ""), "reward": trial.user_attrs.get("reward")} | dict(
        trial.user_attrs.get("metrics", {})
    )
