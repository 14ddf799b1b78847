"""Training settings as one value, and the error a diverged run raises."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from typing import Any, TypeVar

import torch
from pydantic import ConfigDict, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from nas.errors import ConfigError, NasError
from nas.evaluate.augment import FLIPS, Augmentation

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "onecycle", "constant")
CLASS_WEIGHTING = ("none", "loss", "sampler")
SELECT_METRICS = ("auc", "accuracy", "balanced_accuracy")
THRESHOLD_METHODS = ("youden", "sensitivity", "specificity")


class TrainingDiverged(NasError):
    """The loss became NaN or infinite: the recipe (lr, batch size) does not suit this network and data;
    the message says where. The search marks the trial failed.

    A ``NasError`` (one line, exit 2) rather than a bug because the fix is the user's recipe: a lower lr
    or a larger batch. Not a ``ConfigError``: every setting was valid, the run itself went wrong.
    ``nas --debug`` shows its traceback."""


T = TypeVar("T")


def _config_errors(cls: type[T]) -> type[T]:
    """pydantic validates in ``__init__`` (also under ``dataclasses.replace``) and raises its
    ``ValidationError``; a user's bad setting is reported as a one-line ``ConfigError`` instead."""
    validate = cls.__init__

    @functools.wraps(validate)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            validate(self, *args, **kwargs)
        except ValidationError as exc:
            raise ConfigError(_one_line(exc)) from None

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


@_config_errors
@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class TrainConfig:
    """How one network is trained. The defaults are a short candidate evaluation (search proxy).

    The binary operating threshold is chosen on validation by ``threshold_method`` (Youden's J, the
    highest threshold reaching ``target_sensitivity``, or the lowest keeping ``target_specificity``).
    ``epochs`` passes over the training split, each followed by a validation; on a small split each
    epoch is stretched to several passes until ``min_steps`` optimizer steps are taken in all (a few
    hundred images are otherwise well under 100 steps). ``schedule``: cosine
    decay, one-cycle (warm-up then cosine decay, torch's ``OneCycleLR``) or constant. ``ema_decay`` > 0
    validates and keeps an exponential moving average of the weights (and batch-norm buffers).
    ``augment`` turns on random shifts of up to ``max_shift`` of the side, rotations up to
    ``max_rotate`` degrees, zooms up to ``max_scale``, ``color_jitter`` and ``flips``; flips are off by
    default, as they would swap laterality in chest X-rays (``nas.evaluate.augment``).
    ``class_weighting``: ``loss`` weighs the loss by inverse class frequency, ``sampler`` draws
    class-balanced batches. ``device`` ``auto`` trains on CUDA when present (bfloat16 autocast), else on
    the CPU. ``threads`` None keeps torch's setting (all cores); ``channels_last`` memory
    format trains the depthwise-conv candidates about 2x faster on CPU. ``kd_*`` apply only
    when training with a teacher: loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE.
    ``refit`` (final training only, ``train_final``): once validation has chosen the epoch, train again
    from the same seed on train + val for as many passes, and keep that model (``nas.evaluate.train``).

    A frozen pydantic dataclass, so ``dataclasses.replace``, ``asdict`` and ``fields`` keep working.
    Constructing one (``replace`` included) validates it: a bad or unknown setting is a one-line
    ``ConfigError``.
    """

    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    momentum: float = 0.9
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    augment: bool = True
    max_shift: float = 1 / 14
    max_rotate: float = 0.0
    max_scale: float = 0.0
    color_jitter: float = 0.0
    flips: str = "none"
    min_steps: int = 0
    ema_decay: float = 0.0
    max_train_samples: int | None = None
    class_weighting: str = "none"
    select_metric: str = "auc"
    threshold_method: str = "youden"
    target_sensitivity: float = 0.95
    target_specificity: float = 0.9
    threads: int | None = None
    seed: int = 0
    device: str = "auto"
    channels_last: bool = True
    kd_temperature: float = 4.0
    kd_alpha: float = 0.9
    refit: bool = False

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        for name, value in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.weight_decay < 0 or not 0 <= self.label_smoothing < 1 or not 0 <= self.max_shift < 0.5:
            raise ValueError("weight_decay must be >= 0, label_smoothing in [0, 1), max_shift in [0, 0.5)")
        for name, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("class_weighting", self.class_weighting, CLASS_WEIGHTING),
            ("select_metric", self.select_metric, SELECT_METRICS),
            ("threshold_method", self.threshold_method, THRESHOLD_METHODS),
            ("flips", self.flips, FLIPS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got '{value}'")
        if not 0 <= self.max_rotate <= 180 or not 0 <= self.max_scale < 1 or not 0 <= self.color_jitter < 1:
            raise ValueError(
                f"max_rotate must be in [0, 180], max_scale and color_jitter in [0, 1), got "
                f"{self.max_rotate}, {self.max_scale}, {self.color_jitter}"
            )
        if self.min_steps < 0 or not 0 <= self.ema_decay < 1:
            raise ValueError(
                f"min_steps must be >= 0 and ema_decay in [0, 1), got {self.min_steps}, {self.ema_decay}"
            )
        if self.max_train_samples is not None and self.max_train_samples < 2:
            raise ValueError(f"max_train_samples must be >= 2, got {self.max_train_samples}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got '{self.device}'")
        for name in ("target_sensitivity", "target_specificity"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not self.kd_temperature > 0 or not 0 <= self.kd_alpha <= 1:
            raise ValueError(
                f"kd_temperature must be > 0 and kd_alpha in [0, 1], got {self.kd_temperature}, "
                f"{self.kd_alpha}"
            )
        return self

    def torch_device(self) -> str:
        """Where training runs: ``auto`` is CUDA when present (the current GPU, which each search worker
        sets), else CPU; a device this machine lacks is a one-line ``ConfigError``."""
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(self.device.partition(":")[2] or 0)
        if self.device.startswith("cuda") and index >= gpus:
            raise ConfigError(f"device '{self.device}': this machine has {gpus} CUDA GPU(s); use auto or cpu")
        if self.device == "mps" and not torch.backends.mps.is_available():
            raise ConfigError("device 'mps': this machine has no Apple GPU; use auto or cpu")
        return self.device

    def steps_per_pass(self, n_train: int) -> int:
        """Optimizer steps in one pass over ``n_train`` images (a last batch of one is dropped: batch
        norm cannot train on it)."""
        return max(1, n_train // self.batch_size + (n_train % self.batch_size >= 2))

    def total_steps(self, n_train: int) -> int:
        """``epochs`` passes over ``n_train`` images, or ``min_steps`` when that is more (the epochs, the
        number of validations, then share them evenly)."""
        return max(self.epochs * self.steps_per_pass(n_train), self.min_steps)

    def augmentation(self) -> Augmentation:
        if not self.augment:
            return Augmentation()
        return Augmentation(self.max_shift, self.max_rotate, self.max_scale, self.color_jitter, self.flips)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes``, validated again (as ``dataclasses.replace`` does)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**data)


def _one_line(exc: ValidationError) -> str:
    """Unknown settings all at once; else the first problem, as the check that found it words it."""
    errors = exc.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "unexpected_keyword_argument")
    if unknown:
        return f"unknown training setting(s): {', '.join(unknown)}"
    error = errors[0]
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    name = ".".join(str(part) for part in error["loc"])
    return f"{name}: {error['msg']}, got {error['input']!r}"
