"""The value every dataset loader returns: train/val/test inputs and labels, with what the trainer needs
to know about the task.

Two modalities share it. Images stay ``uint8`` NHWC (channels last, as stored by MedMNIST and PIL) so even
224x224 sets fit in memory; the trainer converts each batch to float in [0, 1]. Signals (ECG and other
biosignals) are ``float32`` ``(N, channels, length)``, used as they are. ``model_input`` is the one place
that turns either into what a network (and an exported model) takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nas.errors import DataError

TASKS = ("binary", "multi-class", "multi-label")
IMAGE, SIGNAL = "image", "signal"


def modality(inputs: np.ndarray) -> str:
    """``image`` for uint8 (N, H, W, C), ``signal`` for float32 (N, C, L); else a ``DataError``."""
    if inputs.dtype == np.uint8 and inputs.ndim == 4:
        return IMAGE
    if inputs.dtype == np.float32 and inputs.ndim == 3:
        return SIGNAL
    raise DataError(
        "inputs must be uint8 images (N, H, W, C) or float32 signals (N, C, L), "
        f"got {inputs.dtype} {inputs.shape}"
    )


def model_input(inputs: np.ndarray) -> np.ndarray:
    """Stored inputs as the network takes them: images become float32 NCHW in [0, 1], signals stay."""
    if modality(inputs) == IMAGE:
        return np.ascontiguousarray(inputs.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)
    return np.ascontiguousarray(inputs)


def imbalance(class_counts: Sequence[int]) -> float:
    """The largest class's training count over the smallest's (1.0 for a balanced set)."""
    return max(class_counts) / max(min(class_counts), 1) if len(class_counts) else 1.0


@dataclass(frozen=True)
class Split:
    """Inputs (uint8 images ``(N, H, W, C)`` or float32 signals ``(N, C, L)``) and labels: ``(N,)`` int64
    class indices, or ``(N, K)`` 0/1 for multi-label."""

    inputs: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        modality(self.inputs)
        if len(self.labels) != len(self.inputs):
            raise DataError(f"{len(self.inputs)} inputs but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, indices: np.ndarray) -> Split:
        return Split(self.inputs[indices], self.labels[indices])


@dataclass(frozen=True)
class Splits:
    """A dataset: its three splits, its task and class names; ``provenance`` says how a split the source
    did not provide was made (a validation split drawn out of train), so a report can say so."""

    name: str
    task: str
    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    provenance: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"task '{self.task}' is not one of {', '.join(TASKS)}")
        if self.task == "binary" and len(self.class_names) != 2:
            raise DataError(f"a binary task needs 2 class names, got {len(self.class_names)}")
        shapes = {(s.inputs.dtype.name, s.inputs.shape[1:]) for s in (self.train, self.val, self.test)}
        if len(shapes) != 1:
            raise DataError(f"splits of '{self.name}' have different input shapes: {sorted(shapes)}")
        parts = (self.train, self.val, self.test)
        if self.modality == SIGNAL and not all(np.isfinite(s.inputs).all() for s in parts):
            raise DataError(f"signals of '{self.name}' hold NaN or infinite values: fill or drop them")
        for split in (self.train, self.val, self.test):
            if self.task == "multi-label":
                if split.labels.ndim != 2 or split.labels.shape[1] != self.num_classes:
                    raise DataError(f"multi-label labels must be (N, {self.num_classes})")
            elif len(split) and (split.labels.min() < 0 or split.labels.max() >= self.num_classes):
                raise DataError(f"labels of '{self.name}' fall outside 0..{self.num_classes - 1}")

    @property
    def num_classes(self) -> int:
        """Network outputs: one logit per class (2 for binary, trained with softmax like MedMNIST)."""
        return len(self.class_names)

    @property
    def modality(self) -> str:
        return modality(self.train.inputs)

    @property
    def dims(self) -> int:
        """Spatial dimensions of a network's input: 2 for images, 1 for signals."""
        return 2 if self.modality == IMAGE else 1

    @property
    def n_channels(self) -> int:
        return int(self.train.inputs.shape[3] if self.modality == IMAGE else self.train.inputs.shape[1])

    @property
    def input_size(self) -> int:
        """An image's side or a signal's length."""
        return int(self.train.inputs.shape[1] if self.modality == IMAGE else self.train.inputs.shape[2])

    def describe_shape(self) -> str:
        """``1x28x28`` for images, ``1x140`` (channels x samples) for signals."""
        side = self.input_size
        return f"{self.n_channels}x{side}x{side}" if self.modality == IMAGE else f"{self.n_channels}x{side}"

    def train_and_val(self) -> Split:
        """Train and val as one split: what k-fold protocols draw their folds from, and what a refit
        trains on."""
        return Split(
            np.concatenate([self.train.inputs, self.val.inputs]),
            np.concatenate([self.train.labels, self.val.labels]),
        )

    def class_counts(self) -> np.ndarray:
        """Training examples per class (positives per label for multi-label)."""
        if self.task == "multi-label":
            return self.train.labels.sum(axis=0).astype(np.int64)
        return np.bincount(self.train.labels, minlength=self.num_classes)

    def class_weights(self) -> np.ndarray:
        """Inverse-frequency loss weights, ``n / (k * count)`` (mean 1 over examples), so a 3:1 set
        weighs the minority class 3x; for multi-label, BCE ``pos_weight`` = negatives / positives."""
        counts = np.maximum(self.class_counts(), 1).astype(np.float64)
        if self.task == "multi-label":
            return (len(self.train) - counts) / counts
        return len(self.train) / (self.num_classes * counts)

    def sample_weights(self) -> np.ndarray:
        """Per-training-example weights for a class-balanced sampler (single-label tasks)."""
        if self.task == "multi-label":
            raise DataError("a class-balanced sampler needs a single-label task, not multi-label")
        counts = np.maximum(self.class_counts(), 1).astype(np.float64)
        return 1.0 / counts[self.train.labels]

    def normalization(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training inputs as the network takes them (images in [0, 1],
        signals raw); export puts them into the graph."""
        if self.modality == SIGNAL:
            values = self.train.inputs.transpose(0, 2, 1).reshape(-1, self.n_channels).astype(np.float64)
            return values.mean(axis=0).tolist(), np.maximum(values.std(axis=0), 1e-3).tolist()
        pixels = self.train.inputs.reshape(-1, self.n_channels)
        total = np.zeros(self.n_channels)
        total_sq = np.zeros(self.n_channels)
        for start in range(0, len(pixels), 1 << 22):  # chunks keep 224x224 sets from doubling memory
            chunk = pixels[start : start + (1 << 22)].astype(np.float64) / 255.0
            total += chunk.sum(axis=0)
            total_sq += (chunk**2).sum(axis=0)
        mean = total / max(len(pixels), 1)
        std = np.sqrt(np.maximum(total_sq / max(len(pixels), 1) - mean**2, 0.0))
        return mean.tolist(), np.maximum(std, 1e-3).tolist()
