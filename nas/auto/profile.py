"""What ``nas auto`` needs to know about a dataset before planning: its shape, task, split sizes and
class balance. Loading goes through ``load_dataset``, so bad data is the same one-line error as for
``nas train``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nas.data import Splits, load_dataset
from nas.data.splits import imbalance


@dataclass(frozen=True)
class DataProfile:
    name: str
    task: str
    channels: int
    size: int
    classes: int
    class_names: tuple[str, ...]
    train: int
    val: int
    test: int
    class_counts: tuple[int, ...]  # training examples per class

    @property
    def imbalance(self) -> float:
        return imbalance(self.class_counts)

    def describe(self) -> str:
        counts = "/".join(str(c) for c in self.class_counts)
        return (
            f"{self.name}: {self.task}, {self.classes} classes, {self.channels}x{self.size}x{self.size}, "
            f"train/val/test {self.train}/{self.val}/{self.test}, training classes {counts} "
            f"(imbalance {self.imbalance:.1f}:1)"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"imbalance": self.imbalance}


def profile_splits(splits: Splits) -> DataProfile:
    return DataProfile(
        name=splits.name,
        task=splits.task,
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
    """The profile of ``data`` (a registered name, .npz or image folder) at ``size`` pixels; ``size``
    None takes a .npz file's own size and 28 for the rest."""
    return profile_splits(load_dataset(data, size))
