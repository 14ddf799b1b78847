"""``holdout``: train on the train split, score on the validation split (the search's original
protocol). With ``repeats: R`` the candidate is trained R times, seeds ``seed .. seed + R - 1``; the score
is the mean."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from nas.evaluate.protocols import EvaluationConfig, Protocol, Report, RunningReport, aggregate

if TYPE_CHECKING:
    from nas.arch import ArchSpec
    from nas.data.splits import Splits
    from nas.evaluate.config import TrainConfig


def check(evaluation: EvaluationConfig) -> None:
    if evaluation.folds is not None:
        raise ValueError("the holdout protocol takes no 'folds' (use protocol: kfold)")


def run(
    arch: ArchSpec,
    splits: Splits,
    train_config: TrainConfig,
    evaluation: EvaluationConfig,
    report: Report | None = None,
) -> dict[str, float]:
    from nas.evaluate.train import evaluate_candidate

    reports = RunningReport(report, train_config.epochs)
    for r in range(evaluation.repeats):
        config = train_config if r == 0 else replace(train_config, seed=train_config.seed + r)
        reports.finished(evaluate_candidate(arch, splits, config, report=reports.for_run(r))["val"])
    return aggregate(reports.runs)


PROTOCOL = Protocol(run=run, check=check)
