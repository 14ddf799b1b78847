"""Data a model cannot be trained, chosen and scored on is refused at load time, in one line that says
what to fix: an empty split, a single class, a class with no training example, a label that only one
split has (a stray label 7 in a binary file would otherwise train silently as an 8-class problem)."""

from __future__ import annotations

import numpy as np

from nas.data.splits import Splits
from nas.errors import DataError

SPLITS = ("train", "val", "test")


def check_splits(splits: Splits) -> Splits:
    """``splits`` unchanged if every split has examples and every class is learnable and scorable;
    otherwise a one-line ``DataError``."""
    name = splits.name
    for split in SPLITS:
        if len(getattr(splits, split)) == 0:
            raise DataError(
                f"the {split} split of '{name}' is empty: every split needs examples "
                "(train to learn, val to choose, test to score)"
            )
    if splits.task == "multi-label":
        absent = np.flatnonzero(splits.class_counts() == 0)
        if absent.size:
            raise DataError(
                f"label column(s) {_listed(splits, absent)} of '{name}' have no positive training example: "
                "drop those columns or add examples"
            )
        return splits
    if splits.num_classes < 2:
        raise DataError(
            f"'{name}' has one class only ({splits.class_names[0]}): a classifier needs examples of 2 or more"
        )
    counts = {s: np.bincount(getattr(splits, s).labels, minlength=splits.num_classes) for s in SPLITS}
    problems = []
    for label in range(splits.num_classes):
        present = [s for s in SPLITS if counts[s][label]]
        if len(present) == 1:
            n = int(counts[present[0]][label])
            problems.append(f"label {_named(splits, label)} occurs only in {present[0]} ({n} example(s))")
    absent = np.flatnonzero(counts["train"] == 0)
    if absent.size:
        problems.append(f"class(es) {_listed(splits, absent)} have no training example")
    if problems:
        raise DataError(
            f"'{name}': {'; '.join(problems)}: fix those labels or drop their examples "
            f"(classes 0..{splits.num_classes - 1} are taken from the largest label)"
        )
    return splits


def _named(splits: Splits, label: int) -> str:
    text = splits.class_names[label]
    return str(label) if text == str(label) else f"{label} ({text})"


def _listed(splits: Splits, labels: np.ndarray) -> str:
    return ", ".join(_named(splits, int(k)) for k in labels)
