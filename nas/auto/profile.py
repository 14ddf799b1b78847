"""What ``nas auto`` needs to know about a dataset before planning: its modality and shape, task, split
sizes and class balance. Loading goes through ``load_dataset``, so bad data is the same one-line error as
for ``nas train``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nas.data import Splits, load_dataset
from nas.data.splits import IMAGE, imbalance


@dataclass(frozen=True)
class DataProfile:
    name: str
    task: str
    modality: str  # image | signal
    channels: int
    size: int  # an image's side, a signal's length
    classes: int
    class_names: tuple[str, ...]
    train: int
    val: int
    test: int
    class_counts: tuple[int, ...]  # training examples per class

    @property
    def imbalance(self) -> float:
        return imbalance(self.class_counts)

    @property
    def dims(self) -> int:
        """The dimensions a network for this data convolves over: 2 for images, 1 for signals."""
        return 2 if self.modality == IMAGE else 1

    @property
    def shape(self) -> str:
        """``CxHxW`` for images, ``CxL`` for signals (``Splits.describe_shape``)."""
        extent = f"{self.size}x{self.size}" if self.dims == 2 else f"{self.size}"
        return f"{self.channels}x{extent}"

    def size_text(self) -> str:
        return f"{self.size} px" if self.dims == 2 else f"length {self.size}"

    def describe(self) -> str:
        counts = "/".join(str(c) for c in self.class_counts)
        return (
            f"{self.name}: {self.task}, {self.classes} classes, {self.shape}, "
            f"train/val/test {self.train}/{self.val}/{self.test}, training classes {counts} "
            f"(imbalance {self.imbalance:.1f}:1)"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"dims": self.dims, "shape": self.shape, "imbalance": self.imbalance}


def profile_splits(splits: Splits) -> DataProfile:
    return DataProfile(
        name=splits.name,
        task=splits.task,
        modality=splits.modality,
        channels=splits.n_channels,
        size=splits.input_size,
        classes=splits.num_classes,
        class_names=splits.class_names,
        train=len(splits.train),
        val=len(splits.val),
        test=len(splits.test),
        class_counts=tuple(int(c) for c in splits.class_counts()),
    )


def load_profile(data: str, size: int | None) -> DataProfile:
    """The profile of ``data`` (a registered name, .npz, image folder or signal files) at ``size`` (pixels,
    or a signal length, which is checked, never resampled); ``size`` None takes a .npz file's or a
    signal's own size and 28 px for the rest."""
    return profile_splits(load_dataset(data, size))
