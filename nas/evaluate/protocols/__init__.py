"""Evaluation protocols: how a search candidate's validation score is measured (experiment key
``evaluation``). The names are contracts; each protocol is one module plus one line in ``PROTOCOLS`` (or,
from another package, an entry point ``protocol.<name>`` in the group ``nas.plugins``).

- ``holdout`` (the default): train on train, score on val, as a search always did.
- ``kfold``: stratified ``folds`` over train + val pooled; the score is the **mean over folds**.
- ``repeats: R`` on either: the whole protocol R times with seeds ``seed .. seed + R - 1`` (weights, data
  order and, for kfold, the fold assignment); the score is the mean over every run.

A protocol returns the trainer's metric names (``auc``, ``logloss``, ...): the mean over its runs under
the plain name, the sample standard deviation (ddof 1) as ``<name>_std`` when there are two runs or more,
and, for kfold, ``<name>_oof`` for AUC, log loss and Brier computed on the pooled out-of-fold
probabilities (the mean over repeats of one pooled figure per repeat). The score the search ranks by is
the plain name, the per-run mean; the pooled figures are reported beside it.

Pruning: the first run reports every epoch, as holdout does, so a hopeless candidate still stops early;
each later run reports once, at step ``k * epochs`` after its ``k``-th run, the running mean of the runs so
far. Steps then mean the same in every trial of a study (epoch e of the first run; mean of k runs), which
is what Optuna's median and Hyperband pruners compare. Reporting every epoch of every fold instead would put
a weak fold's first epoch next to another trial's fifth epoch of the first fold.

The test split is never read: kfold hands its trainings splits without the test images.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nas.registry import Registry

if TYPE_CHECKING:
    from nas.arch import ArchSpec
    from nas.data.splits import Splits
    from nas.evaluate.config import TrainConfig

Report = Callable[[int, dict[str, float]], None]
RunProtocol = Callable[
    ["ArchSpec", "Splits", "TrainConfig", "EvaluationConfig", "Report | None"], dict[str, float]
]
NOT_AVERAGED = ("epoch",)  # kept from the first run: the best epoch is reported as-is


@dataclass(frozen=True)
class Protocol:
    """``run(arch, splits, train_config, evaluation, report)`` returns the metrics described above.
    ``check(evaluation)`` raises ``ValueError`` for settings that do not fit the protocol (experiment
    validation calls it); ``check_data(splits, evaluation)`` raises ``DataError`` for data it cannot use
    (called once, when the search loads the data)."""

    run: RunProtocol
    default_folds: int | None = None  # what an evaluation without 'folds' gets (recorded as given)
    check: Callable[[EvaluationConfig], None] | None = None
    check_data: Callable[[Splits, EvaluationConfig], None] | None = None


PROTOCOLS: Registry[Protocol] = Registry(
    "protocol",
    {
        "holdout": "nas.evaluate.protocols.holdout:PROTOCOL",
        "kfold": "nas.evaluate.protocols.kfold:PROTOCOL",
    },
    label="evaluation protocol",
)


class EvaluationConfig(BaseModel):
    """The experiment's ``evaluation`` key: ``{protocol: holdout | kfold, folds: K, repeats: R}``."""

    model_config = ConfigDict(extra="forbid")

    protocol: str = "holdout"
    folds: int | None = Field(default=None, ge=2)  # None: the protocol's default_folds (kfold: 5)
    repeats: int = Field(default=1, ge=1)

    @field_validator("protocol")
    @classmethod
    def _known(cls, name: str) -> str:
        PROTOCOLS.get(name)  # an unknown name: the registry's one-line error, listing the known ones
        return name

    @model_validator(mode="after")
    def _fits(self) -> EvaluationConfig:
        protocol = PROTOCOLS.get(self.protocol)
        if self.folds is None:
            self.folds = protocol.default_folds
        if protocol.check is not None:
            protocol.check(self)
        return self

    def runs(self) -> int:
        """Trainings per candidate: ``folds`` per repeat when the protocol has folds, else one."""
        return self.repeats * (self.folds or 1)

    def fidelity(self, epochs: int, seed: int) -> dict[str, Any]:
        """What a trial's figures were measured at: the structured columns of ``trials.csv`` (``seed``:
        the first run's, which also draws kfold's folds) and their summary, e.g. ``holdout e5`` or
        ``kfold5 x2 e5``."""
        name = f"{self.protocol}{self.folds or ''}"
        label = " ".join([name] + ([f"x{self.repeats}"] if self.repeats > 1 else []) + [f"e{epochs}"])
        return {
            "fidelity": label,
            "protocol": self.protocol,
            "folds": self.folds,
            "repeats": self.repeats,
            "epochs": epochs,
            "seed": seed,
        }


def run_protocol(
    arch: ArchSpec,
    splits: Splits,
    train_config: TrainConfig,
    evaluation: EvaluationConfig,
    report: Report | None = None,
) -> dict[str, float]:
    """The candidate's validation metrics under ``evaluation`` (see the module docstring)."""
    return PROTOCOLS.get(evaluation.protocol).run(arch, splits, train_config, evaluation, report)


def check_data(splits: Splits, evaluation: EvaluationConfig) -> None:
    check = PROTOCOLS.get(evaluation.protocol).check_data
    if check is not None:
        check(splits, evaluation)


def aggregate(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of every numeric metric over ``runs`` and, with two runs or more, its sample std
    (``<name>_std``); a run whose metric is undefined (nan) is left out of that metric."""
    if len(runs) == 1:
        return {k: float(v) for k, v in runs[0].items() if isinstance(v, int | float)}
    out: dict[str, float] = {}
    for key, first in runs[0].items():
        if not isinstance(first, int | float):
            continue
        if key in NOT_AVERAGED:
            out[key] = float(first)
            continue
        values = np.array([float(run[key]) for run in runs if key in run], dtype=np.float64)
        defined = values[~np.isnan(values)]
        out[key] = float(defined.mean()) if len(defined) else math.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[f"{key}_std"] = float(defined.std(ddof=1)) if len(defined) > 1 else math.nan
    return out


class RunningReport:
    """The pruning reports described in the module docstring: every epoch of the first run, then the
    running mean of the scores after each later run, at step ``k * epochs``."""

    def __init__(self, report: Report | None, epochs: int) -> None:
        self.report, self.epochs, self.runs = report, epochs, []

    def for_run(self, index: int) -> Report | None:
        """The per-epoch callback of run ``index`` (0-based)."""
        return self.report if index == 0 else None

    def finished(self, metrics: dict[str, float]) -> None:
        self.runs.append(metrics)
        if self.report is not None and len(self.runs) > 1:
            self.report(len(self.runs) * self.epochs, aggregate(self.runs))
