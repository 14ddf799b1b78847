"""``kfold``: stratified K folds over train + val pooled (the test split is not touched); each fold is
trained on the other K - 1 and scored on itself. The score is the mean over folds; AUC, log loss and Brier
are also computed on the pooled out-of-fold probabilities (``<metric>_oof``). With ``repeats: R`` the fold
assignment is drawn again per repeat from ``seed + r``.

Stratification deals each class's examples, shuffled, round-robin into the folds, so every fold holds
each class in the proportion of the whole (within one example). Multi-label data is split by a plain
shuffle (no single class to stratify on).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from nas.data.splits import Split, Splits
from nas.errors import DataError
from nas.evaluate.protocols import EvaluationConfig, Protocol, Report, RunningReport, aggregate

if TYPE_CHECKING:
    from nas.arch import ArchSpec
    from nas.evaluate.config import TrainConfig

DEFAULT_FOLDS = 5
POOLED = ("auc", "logloss", "brier")  # threshold-free metrics worth computing on the pooled predictions


def folds_of(evaluation: EvaluationConfig) -> int:
    return evaluation.folds or DEFAULT_FOLDS  # a plugin may hand over an unvalidated config


def fold_assignment(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of every example: per class, shuffled by ``seed`` and dealt round-robin."""
    rng = np.random.default_rng(seed)
    assigned = np.empty(len(labels), dtype=np.int64)
    if labels.ndim == 2:  # multi-label: no single class to stratify on
        assigned[rng.permutation(len(labels))] = np.arange(len(labels)) % folds
        return assigned
    start = 0  # each class continues the round-robin where the previous one stopped: folds stay even
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        assigned[members] = (start + np.arange(len(members))) % folds
        start = (start + len(members)) % folds
    return assigned


def fold_splits(splits: Splits, data: Split, assigned: np.ndarray, fold: int) -> Splits:
    """Fold ``fold`` as validation, the others as training; the test split is an empty one."""
    empty = Split(data.inputs[:0], data.labels[:0])
    held = assigned == fold
    return Splits(
        splits.name,
        splits.task,
        splits.class_names,
        data.subset(np.flatnonzero(~held)),
        data.subset(np.flatnonzero(held)),
        empty,
    )


def check_data(splits: Splits, evaluation: EvaluationConfig) -> None:
    """Binary and multi-label: every class needs an example in every fold, or a fold's AUC is undefined.
    Multi-class: two examples of every class are enough (each fold then trains on one; macro AUC leaves
    a class a fold lacks out), so a set with a very rare class (ECG5000's 2 beats of class 5) can be
    cross-validated."""
    folds = folds_of(evaluation)
    labels = splits.train_and_val().labels
    counts = labels.sum(axis=0) if labels.ndim == 2 else np.bincount(labels, minlength=splits.num_classes)
    needed = 2 if splits.task == "multi-class" else folds
    if len(labels) < 2 * folds or counts.min() < needed:
        k = int(counts.argmin())
        raise DataError(
            f"kfold with {folds} folds needs at least {needed} examples of every class in train + val; "
            f"class '{splits.class_names[k]}' has {int(counts[k])}"
        )


def run(
    arch: ArchSpec,
    splits: Splits,
    train_config: TrainConfig,
    evaluation: EvaluationConfig,
    report: Report | None = None,
) -> dict[str, float]:
    from nas.evaluate.train import evaluate_candidate
    from nas.metrics.clinical import clinical_metrics

    folds = folds_of(evaluation)
    data = splits.train_and_val()
    reports = RunningReport(report, train_config.epochs)
    oof_runs = []
    for r in range(evaluation.repeats):
        seed = train_config.seed + r
        config = train_config if r == 0 else replace(train_config, seed=seed)
        assigned = fold_assignment(data.labels, folds, seed)
        probs: np.ndarray | None = None
        for fold in range(folds):
            result = evaluate_candidate(
                arch,
                fold_splits(splits, data, assigned, fold),
                config,
                report=reports.for_run(r * folds + fold),
                val_probs=True,
            )
            if probs is None:
                probs = np.zeros((len(data), *result["val_probs"].shape[1:]))
            probs[assigned == fold] = result["val_probs"]
            reports.finished(result["val"])
        whole = clinical_metrics(data.labels, probs)
        oof_runs.append({f"{m}_oof": whole[m] for m in POOLED})
    metrics = aggregate(reports.runs)
    return metrics | {k: v for k, v in aggregate(oof_runs).items() if not k.endswith("_std")}


def check(evaluation: EvaluationConfig) -> None:
    if evaluation.folds is None or evaluation.folds < 2:
        raise ValueError("kfold needs 'folds' >= 2")


PROTOCOL = Protocol(run=run, default_folds=DEFAULT_FOLDS, check=check, check_data=check_data)
