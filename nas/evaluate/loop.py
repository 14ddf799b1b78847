"""The training loop shared by candidate evaluation, final training and distillation.

Arrays fit in memory, so batches are plain tensor slices (no DataLoader workers to fork or pickle);
torch's intra-op threads use the cores. Every random choice (weight init, data order, shifts, the
class-balanced sampler) comes from the config's seed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from nas.data.splits import Split, Splits
from nas.errors import ConfigError, DataError
from nas.evaluate.config import TrainConfig, TrainingDiverged
from nas.metrics.clinical import choose_threshold, clinical_metrics

EVAL_BATCH = 512


@dataclass(frozen=True)
class Teacher:
    """A trained network used as the soft-target source, with its own input normalization."""

    model: nn.Module
    mean: list[float]
    std: list[float]


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    history: list[dict[str, float]]
    train_seconds: float
    images_seen: int
    threads: int
    mean: list[float]
    std: list[float]

    @property
    def images_per_second(self) -> float:
        return self.images_seen / self.train_seconds if self.train_seconds > 0 else math.nan


def to_tensor(split: Split, device: str) -> torch.Tensor:
    """Images: uint8 NHWC numpy -> uint8 NCHW tensor (floats are made per batch, to keep memory at 1 byte a
    pixel); signals: the float32 (N, C, L) array as a tensor."""
    if split.inputs.dtype != np.uint8:
        return torch.from_numpy(np.ascontiguousarray(split.inputs)).to(device)
    return torch.from_numpy(np.ascontiguousarray(split.inputs)).permute(0, 3, 1, 2).contiguous().to(device)


def as_float(batch: torch.Tensor) -> torch.Tensor:
    """A batch of ``to_tensor`` as the network's input scale: uint8 images to [0, 1], signals unchanged."""
    return batch.float().div_(255) if batch.dtype == torch.uint8 else batch.float()


def normalize(x01: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    shape = (1, -1) + (1,) * (x01.dim() - 2)
    m = torch.tensor(mean, dtype=x01.dtype, device=x01.device).view(shape)
    s = torch.tensor(std, dtype=x01.dtype, device=x01.device).view(shape)
    return (x01 - m) / s


def probabilities(logits: torch.Tensor, task: str) -> torch.Tensor:
    return torch.sigmoid(logits) if task == "multi-label" else torch.softmax(logits, dim=1)


@torch.inference_mode()
def predict_probs(
    model: nn.Module,
    images: torch.Tensor,
    mean: list[float],
    std: list[float],
    task: str,
    channels_last: bool = False,
) -> np.ndarray:
    """Class probabilities ``(N, K)`` of a ``to_tensor`` batch, in eval mode."""
    model.eval()
    out = []
    for start in range(0, len(images), EVAL_BATCH):
        x = normalize(as_float(images[start : start + EVAL_BATCH]), mean, std)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        out.append(probabilities(model(x).float(), task).cpu())
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, 0))


def split_metrics(labels: np.ndarray, probs: np.ndarray, task: str, config: TrainConfig) -> dict[str, float]:
    """Clinical metrics of a split with the operating threshold chosen on that same split (validation)."""
    threshold = None
    if task == "binary" and 0 < labels.sum() < len(labels):
        threshold = choose_threshold(
            labels, probs, config.threshold_method, config.target_sensitivity, config.target_specificity
        )
    return clinical_metrics(labels, probs, threshold)


def make_criterion(splits: Splits, config: TrainConfig, device: str) -> Callable[..., torch.Tensor]:
    """The hard-label loss: softmax cross-entropy (binary too, two logits, as MedMNIST), BCE multi-label."""
    smoothing = config.label_smoothing
    weights = None
    if config.class_weighting == "loss":
        weights = torch.tensor(splits.class_weights(), dtype=torch.float32, device=device)
    if splits.task == "multi-label":

        def bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = y.float() * (1 - smoothing) + 0.5 * smoothing
            return F.binary_cross_entropy_with_logits(logits, target, pos_weight=weights)

        return bce
    return lambda logits, y: F.cross_entropy(logits, y, weight=weights, label_smoothing=smoothing)


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float, multi_label: bool
) -> torch.Tensor:
    """Hinton et al. (2015): ``T^2 * KL(softmax(t/T) || softmax(s/T))``; multi-label logits are read as
    per-label two-class distributions."""
    if multi_label:
        student = torch.stack([torch.zeros_like(student), student], dim=-1).flatten(0, 1)
        teacher = torch.stack([torch.zeros_like(teacher), teacher], dim=-1).flatten(0, 1)
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * temperature**2


def _batches(n: int, config: TrainConfig, sample_weights: np.ndarray | None, generator: torch.Generator):
    """Training batches without end: pass after pass, each in a fresh order (or drawn class-balanced)."""
    while True:
        if sample_weights is not None:
            order = torch.multinomial(
                torch.from_numpy(sample_weights), n, replacement=True, generator=generator
            )
        else:
            order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) >= 2:  # batch norm cannot train on one example
                yield batch


def _train_subset(splits: Splits, config: TrainConfig) -> Splits:
    """The proxy's subset of the training split (a seeded random sample), or the whole split."""
    n = len(splits.train)
    if config.max_train_samples is None or config.max_train_samples >= n:
        return splits
    keep = np.sort(np.random.default_rng(config.seed).permutation(n)[: config.max_train_samples])
    return dataclasses.replace(splits, train=splits.train.subset(keep))


def fit(
    model: nn.Module,
    splits: Splits,
    config: TrainConfig,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    teacher: Teacher | None = None,
    select_best: bool = True,
) -> FitResult:
    """Train on train, score every epoch on val, keep the weights of the best val epoch (of the last one
    when not ``select_best``: a refit, whose val is part of its training data).

    ``on_epoch(epoch, val_metrics)`` runs after each epoch; its exceptions (a pruner's) propagate."""
    splits = _train_subset(splits, config)
    if len(splits.train) < 2:
        raise DataError(
            f"'{splits.name}' has {len(splits.train)} training example(s): training needs at least 2"
        )
    device = config.torch_device()
    mixed = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))
    mean, std = splits.normalization()
    train_x, train_y = to_tensor(splits.train, device), torch.from_numpy(splits.train.labels).to(device)
    val_x = to_tensor(splits.val, device)
    sample_weights = splits.sample_weights() if config.class_weighting == "sampler" else None
    generator = torch.Generator().manual_seed(config.seed)
    criterion = make_criterion(splits, config, device)
    channels_last = config.channels_last and splits.dims == 2  # a layout of 4-D tensors only
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    if teacher is not None:
        teacher.model.to(device).eval()
    optimizer = _optimizer(model, config)
    total = config.total_steps(len(train_x))
    schedule = _schedule(optimizer, config, total)
    batches = _batches(len(train_x), config, sample_weights, generator)
    ema = _ema(model, config.ema_decay)
    augment = config.augmentation()
    if splits.dims == 1 and augment.image_only():
        raise ConfigError(
            f"{', '.join(augment.image_only())} only apply to images; '{splits.name}' holds signals"
        )
    history: list[dict[str, float]] = []
    best_state, best_epoch, best_score = _copy_state(model), 0, -math.inf
    seconds, seen = 0.0, 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        start, losses = time.perf_counter(), []
        for step in range(epoch * total // config.epochs - (epoch - 1) * total // config.epochs):
            batch = next(batches)
            x01 = augment(as_float(train_x[batch]), generator)
            with mixed:
                logits = model(normalize(x01, mean, std).contiguous(memory_format=memory_format)).float()
                loss = criterion(logits, train_y[batch])
                if teacher is not None:
                    with torch.no_grad():
                        soft = teacher.model(normalize(x01, teacher.mean, teacher.std)).float()
                    kd = distillation_loss(logits, soft, config.kd_temperature, splits.task == "multi-label")
                    loss = config.kd_alpha * kd + (1 - config.kd_alpha) * loss
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"training loss became {value} at epoch {epoch}, step {step + 1} (lr {config.lr:g})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(value)
            seen += len(batch)
        seconds += time.perf_counter() - start
        scored = model if ema is None else ema.module
        probs = predict_probs(scored, val_x, mean, std, splits.task, channels_last)
        if not np.isfinite(probs).all():
            raise TrainingDiverged(
                f"validation outputs are not finite after epoch {epoch} (lr {config.lr:g})"
            )
        metrics = split_metrics(splits.val.labels, probs, splits.task, config)
        metrics.update(epoch=epoch, loss=float(np.mean(losses)) if losses else math.nan)
        history.append(metrics)
        score = metrics[config.select_metric]
        if math.isfinite(score) and score > best_score:
            best_state, best_epoch, best_score = _copy_state(scored), epoch, score
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    if best_epoch == 0 or not select_best:  # never defined (one class in val), or a refit: the last epoch
        best_state, best_epoch = _copy_state(scored), config.epochs
    return FitResult(best_state, best_epoch, history, seconds, seen, torch.get_num_threads(), mean, std)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.momentum > 0,
        )
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, steps: int) -> Any:
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def _ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """The weights' exponential moving average (batch-norm statistics averaged too), or None."""
    if decay == 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
