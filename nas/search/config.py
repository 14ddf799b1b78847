"""Experiment files (``experiments/*.yaml``): one validated value that says everything a search does.

Keys (see ``experiments/quickstart.yaml`` for a commented example):

    name          run name
    space         search-space file or bundled name (``nas space show --help`` lists them)
    dataset       {name, path}: a MedMNIST name (pneumoniamnist), ``synthetic`` (generated data), or a
                  path to a MedMNIST-layout .npz file or a folder of class sub-folders
    input_size    input resolution; in_chans and classes follow the dataset
    latency       {table: PATH, verify: N} a latency table or predictor for the space at input_size
                  (``latency_ms``); verify N > 0: at the end (after finalize), time the top N nets (the
                  finalists first) whole on the table's own backend and settings and record measured
                  beside predicted latency (``nas.search.verify``; default 0, off)
    training      short candidate training: any ``nas.evaluate.config.TrainConfig`` field (epochs, lr, ...)
    evaluation    {protocol: holdout | kfold, folds: K, repeats: R}: how a candidate's validation score is
                  measured (``nas.evaluate.protocols``); default holdout, kfold's folds default 5
    mode          ``reward`` (one scalar, maximized) or ``pareto`` (the ``objectives``, jointly)
    reward        {type: mnasnet_soft|mnasnet_hard|weighted_sum, accuracy, latency, target, w, weights};
                  default in reward mode {type: weighted_sum, weights: {val_auc: 1}}; optional in
                  pareto mode (evolution and mnasnet-rl rank by it)
    objectives    [{metric, direction}] for pareto mode
    constraints   [{metric, min|max}]: on cheap metrics they reject a candidate before training
    microcontroller  a named budget (``cortex-m4``: 256 KB SRAM, 1 MB flash; ``cortex-m7``: 512 KB,
                  2 MB) or {sram_kb, flash_kb}: constraints int8_peak_activation_kb <= SRAM and
                  int8_weight_kb <= flash, beside the ``constraints``
    strategy      {name: a registered strategy (listed below), population, sample_size,
                  learning_rate, options: {a plugin strategy's own settings}}
    pruner        {name: none | median | hyperband | successive_halving, min_epochs, reduction_factor,
                  startup_trials}: multi-fidelity (``nas.search.rungs``). Reward mode: Optuna's pruner of
                  that name on the reward; pareto mode: successive halving (hyperband: in brackets)
                  promoting by non-dominated rank at each rung. Default: median (reward), none (pareto).
                  No candidate is judged before ``min_epochs`` (default half the epochs, rounded up)
    trials        total finished trials of the study (re-running finishes the remainder)
    timeout       seconds for this invocation (optional)
    storage       Optuna storage URL (default sqlite:///<out>/study.db)
    workers       processes sharing the study (default: one per GPU when CUDA is present, else one per
                  CPU core)
    seed          base seed (worker k uses seed + k)
    out           run directory
    finalize      {top: N, seeds: R, epochs: E, recipe: final | plain, min_steps: S, pick: best | spread}:
                  at the end, train the top N of the front (pareto mode; ``spread``: N members spread
                  over it) or of the reward with the full recipe on R seeds, as ``nas finalize`` does
                  (default: off; top 3, seeds 3, epochs 50, recipe final, min_steps 1500, pick best
                  when given). ``final`` adds the data-scaled recipe (``nas.evaluate.recipe``: at
                  least S optimizer steps, ...) to the training settings for E epochs; ``plain`` does not

Metrics: ``params``, ``macs``, ``peak_activation_kb`` (fp32), ``int8_peak_activation_kb`` (SRAM of the
int8 model), ``int8_weight_kb`` (its flash), ``energy_mj``, ``latency_ms`` (cheap, known before
training) and ``val_auc``, ``val_accuracy``, ``val_sensitivity``, ``val_specificity``,
``val_balanced_accuracy``, ``val_ece``, ``val_logloss``, ``val_brier`` (need training; ece, logloss and
brier are lower-is-better). With kfold or repeats each is the mean over the runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nas.errors import ConfigError, first_problem
from nas.evaluate.protocols import EvaluationConfig
from nas.evaluate.recipe import MIN_STEPS, final_recipe
from nas.resources import bundled_experiments, find_experiment

if TYPE_CHECKING:
    from nas.data.splits import Splits
    from nas.evaluate.config import TrainConfig
    from nas.search.strategies import Strategy

CHEAP_METRICS = (
    "params",
    "macs",
    "peak_activation_kb",
    "int8_peak_activation_kb",
    "int8_weight_kb",
    "energy_mj",
    "latency_ms",
)
# Named microcontroller budgets: (SRAM KB, flash KB) of a typical board of the class: Nordic nRF52840
# (Cortex-M4F, 256 KB SRAM, 1 MB flash) and ST STM32F767 (Cortex-M7, 512 KB SRAM, 2 MB flash).
MICROCONTROLLERS = {"cortex-m4": (256.0, 1024.0), "cortex-m7": (512.0, 2048.0)}
TRAINED_METRICS = (
    "val_auc",
    "val_accuracy",
    "val_sensitivity",
    "val_specificity",
    "val_balanced_accuracy",
    "val_ece",
    "val_logloss",
    "val_brier",
)
METRICS = CHEAP_METRICS + TRAINED_METRICS
LOWER_IS_BETTER = {*CHEAP_METRICS, "val_ece", "val_logloss", "val_brier"}

Metric = Literal[METRICS]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Strict):
    name: str = "synthetic"
    path: str | None = None

    @property
    def ref(self) -> str:
        """What ``load_dataset`` takes: the path when given, else the name."""
        return self.path or self.name

    @model_validator(mode="after")
    def _known(self) -> DatasetConfig:
        """A misspelt name fails here, before a run directory records it (a path may stand in 'name')."""
        from nas.data import DATASETS

        if (
            self.path is None
            and self.name.lower() not in DATASETS
            and not Path(self.name).expanduser().exists()
        ):
            raise ValueError(
                f"unknown dataset '{self.name}' (known: {', '.join(DATASETS)}); a .npz file or an image "
                "folder goes in 'path'"
            )
        return self


class LatencyConfig(_Strict):
    table: str
    verify: int = Field(default=0, ge=0)  # nets re-measured after the search; 0: none


class RewardConfig(_Strict):
    type: Literal["mnasnet_soft", "mnasnet_hard", "weighted_sum"] = "mnasnet_soft"
    accuracy: Metric = "val_auc"
    latency: Metric = "latency_ms"
    target: float | None = Field(default=None, gt=0)
    w: float = -0.07
    weights: dict[Metric, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> RewardConfig:
        if self.type.startswith("mnasnet"):
            if self.target is None:
                raise ValueError(f"a {self.type} reward needs 'target' (the latency budget T)")
            if self.accuracy in LOWER_IS_BETTER:
                raise ValueError(
                    f"'accuracy' is {self.accuracy}, lower-is-better: ACC x (LAT/T)^w needs a quality"
                )
            if self.latency not in CHEAP_METRICS:
                raise ValueError(
                    f"'latency' is {self.latency}: the cost LAT is one of {', '.join(CHEAP_METRICS)}"
                )
        if self.type == "weighted_sum" and not self.weights:
            raise ValueError("a weighted_sum reward needs 'weights' (metric: weight)")
        return self


class ObjectiveConfig(_Strict):
    metric: Metric
    direction: Literal["minimize", "maximize"] | None = None

    @property
    def resolved_direction(self) -> str:
        return self.direction or ("minimize" if self.metric in LOWER_IS_BETTER else "maximize")


class ConstraintConfig(_Strict):
    metric: Metric
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> ConstraintConfig:
        if self.min is None and self.max is None:
            raise ValueError("a constraint needs 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: no candidate could meet it")
        return self

    def violation(self, value: float) -> float:
        """Relative distance past the bound: <= 0 when satisfied (Optuna's ``Trial.set_constraint`` form)."""
        excess = []
        if self.max is not None:
            excess.append((value - self.max) / max(abs(self.max), 1e-12))
        if self.min is not None:
            excess.append((self.min - value) / max(abs(self.min), 1e-12))
        return max(excess)


class StrategyConfig(_Strict):
    name: str = "tpe"  # a name in nas.search.strategies.STRATEGIES
    population: int = Field(default=20, ge=2)
    sample_size: int = Field(default=5, ge=1)
    learning_rate: float = Field(default=0.003, gt=0)  # mnasnet-rl Adam step (0.05 collapsed it)
    options: dict[str, Any] = Field(default_factory=dict)  # a plugin strategy's own settings

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from nas.search.strategies import STRATEGIES

        STRATEGIES.get(name)  # an unknown name: the registry's one-line error, listing the known ones
        return name

    @model_validator(mode="after")
    def _options_fit(self) -> StrategyConfig:
        check = self.strategy().check
        if check is not None:
            check(self)
        return self

    def strategy(self) -> Strategy:
        from nas.search.strategies import STRATEGIES

        return STRATEGIES.get(self.name)


def default_workers() -> int:
    """One worker per GPU when CUDA is present (each trains on its own), else one per CPU core (each on
    one thread: the fastest way to use a small CPU, ``benchmarks/training_throughput.py``)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else (os.cpu_count() or 1)


class PrunerConfig(_Strict):
    """The ``pruner`` key: which multi-fidelity rule stops candidates early, and how cautiously."""

    name: Literal["none", "median", "hyperband", "successive_halving"] | None = None  # None: by mode
    min_epochs: int | None = Field(default=None, ge=1)  # None: half the training epochs, rounded up
    reduction_factor: int = Field(default=3, ge=2)  # 1 in reduction_factor goes on at each rung
    startup_trials: int = Field(default=5, ge=1)  # trials that reach a step before any is stopped there


class MicrocontrollerConfig(_Strict):
    """The ``microcontroller`` key: a board's SRAM and flash, by name or in KB."""

    sram_kb: float = Field(gt=0)
    flash_kb: float = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in MICROCONTROLLERS:
                raise ValueError(f"unknown microcontroller '{value}' (named: {', '.join(MICROCONTROLLERS)})")
            sram, flash = MICROCONTROLLERS[value]
            return {"sram_kb": sram, "flash_kb": flash}
        return value

    def constraints(self) -> list[ConstraintConfig]:
        return [
            ConstraintConfig(metric="int8_peak_activation_kb", max=self.sram_kb),
            ConstraintConfig(metric="int8_weight_kb", max=self.flash_kb),
        ]


Pick = Literal["best", "spread"]
PICKS: tuple[str, ...] = get_args(Pick)


class FinalizeConfig(_Strict):
    """The ``finalize`` key: what ``nas search`` finalizes at its end (``nas.search.finalize``)."""

    top: int = Field(default=3, ge=1)
    seeds: int = Field(default=3, ge=1)
    epochs: int = Field(default=50, ge=1)  # the final recipe's epochs (``nas train``'s default)
    recipe: Literal["final", "plain"] = "final"  # plain: the training settings as they are
    min_steps: int = Field(default=MIN_STEPS, ge=0)  # the final recipe's step floor
    pick: Pick = "best"  # pareto mode: the front's top N, or N spread over it

    def train_config(self, training: TrainConfig, splits: Splits) -> TrainConfig:
        """The final trainings' settings: ``training`` for ``epochs`` epochs, with the recipe scaled to
        ``splits`` (``nas.evaluate.recipe``) unless ``recipe`` is ``plain``."""
        base = training.replace(epochs=self.epochs)
        return final_recipe(base, splits, self.min_steps) if self.recipe == "final" else base


class ExperimentConfig(_Strict):
    name: str
    space: str
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    input_size: int = Field(default=28, ge=8)
    latency: LatencyConfig | None = None
    training: dict[str, Any] = Field(default_factory=dict)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    mode: Literal["reward", "pareto"] = "reward"
    reward: RewardConfig | None = None
    objectives: list[ObjectiveConfig] = Field(default_factory=list)
    constraints: list[ConstraintConfig] = Field(default_factory=list)
    microcontroller: MicrocontrollerConfig | None = None
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)
    trials: int = Field(default=20, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    storage: str | None = None
    workers: int = Field(default_factory=lambda: default_workers(), ge=1)
    seed: int = 0
    out: str = "runs/experiment"
    finalize: FinalizeConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        # model-level errors have no location of their own: each message names its key
        try:
            self.train_config()  # the trainer's own validation of the 'training' keys
        except (TypeError, ValueError) as exc:
            raise ValueError(f"key 'training': {exc}") from None
        if self.mode == "pareto" and len(self.objectives) < 2:
            raise ValueError("key 'objectives': pareto mode needs at least two objectives")
        named = [o.metric for o in self.objectives]
        if len(set(named)) < len(named):
            twice = sorted({m for m in named if named.count(m) > 1})
            raise ValueError(f"key 'objectives': {', '.join(twice)} given more than once")
        if self.reward is None and self.mode == "reward":
            self.reward = RewardConfig(type="weighted_sum", weights={"val_auc": 1.0})
        if self.pruner.name is None:
            self.pruner.name = "median" if self.mode == "reward" else "none"
        if self.mode == "reward" and self.finalize is not None and self.finalize.pick == "spread":
            raise ValueError("key 'finalize.pick': spread picks along a Pareto front; give mode: pareto")
        if self.mode == "pareto" and self.pruner.name == "median":
            raise ValueError(
                "key 'pruner.name': median compares one value per trial (reward mode); pareto mode "
                "promotes by non-dominated rank with successive_halving or hyperband"
            )
        strategy = self.strategy.strategy()
        if self.reward is None and strategy.ranks_by_reward:
            raise ValueError(
                f"key 'reward': strategy {self.strategy.name} ranks candidates by a reward; give one"
            )
        used = set(self.metrics_used())
        if "latency_ms" in used and self.latency is None:
            raise ValueError("key 'latency': latency_ms is used but no 'latency: {table: ...}' is given")
        if self.mode not in strategy.modes:
            modes = " or ".join(strategy.modes)
            raise ValueError(f"key 'strategy.name': strategy {self.strategy.name} needs mode: {modes}")
        if self.strategy.name == "nsga2" and self.pruner.name != "none":
            raise ValueError(
                "key 'pruner.name': nsga2 makes each generation of completed trials only, so with a pruner "
                "most candidates never complete and the search stays in its random first generation; use "
                "strategy tpe (it learns from stopped candidates) or pruner none"
            )
        return self

    def metrics_used(self) -> list[str]:
        metrics = [o.metric for o in self.objectives] + [c.metric for c in self.all_constraints()]
        if self.reward is not None and self.reward.type == "weighted_sum":
            metrics += list(self.reward.weights)
        elif self.reward is not None:
            metrics += [self.reward.accuracy, self.reward.latency]
        return list(dict.fromkeys(metrics))

    def all_constraints(self) -> list[ConstraintConfig]:
        """The ``constraints`` and the microcontroller's SRAM and flash."""
        board = self.microcontroller.constraints() if self.microcontroller else []
        return [*self.constraints, *board]

    def train_config(self):
        """The ``training`` mapping as the trainer's ``TrainConfig`` (its keys, its validation)."""
        from nas.evaluate.config import TrainConfig

        return TrainConfig.from_json({"seed": self.seed, **self.training})

    def fidelity(self) -> dict[str, Any]:
        """What the trained metrics of this experiment's trials are measured at (``trials.csv`` columns)."""
        train = self.train_config()
        return self.evaluation.fidelity(train.epochs, train.seed)

    def min_epochs(self) -> int:
        """The first step at which a candidate may be stopped (``pruner.min_epochs``, else half the
        training epochs rounded up): a small, noisy validation split is not judged on one epoch."""
        return self.pruner.min_epochs or math.ceil(self.train_config().epochs / 2)

    def needs_training(self) -> bool:
        return any(m in TRAINED_METRICS for m in self.metrics_used())


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate an experiment file, or a bundled one by name (``quickstart``); any problem is a
    one-line ``ConfigError`` naming file and key."""
    path = find_experiment(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        hint = f" (bundled: {', '.join(bundled_experiments())})" if isinstance(exc, FileNotFoundError) else ""
        raise ConfigError(f"{path}: cannot read: {exc.strerror}{hint}") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise ConfigError(f"{path}: not a valid YAML file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of experiment keys (see nas search --help)")
    return experiment_from(data, overrides, source=str(path))


def experiment_from(
    data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None, source: str = "experiment"
) -> ExperimentConfig:
    """Validate experiment keys (``overrides`` that are not None replace them); any problem is a one-line
    ``ConfigError`` naming ``source`` and the key."""
    data = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        keys, problem = first_problem(exc)
        where = f"key '{keys}': " if keys else ""
        raise ConfigError(f"{source}: {where}{problem}") from None
