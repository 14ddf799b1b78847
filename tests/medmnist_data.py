"""Tiny generated MedMNIST-layout datasets with a learnable signal: class 1 images carry a bright square."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nas.data.splits import Split, Splits


def make_arrays(n: int, size: int = 28, channels: int = 1, seed: int = 0, positive: float = 0.5):
    """``n`` noisy images; the positives (a ``positive`` fraction) get a 6x6 bright square somewhere."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 120, size=(n, size, size, channels), dtype=np.uint8)
    labels = (rng.random(n) < positive).astype(np.int64)
    labels[:2] = [0, 1]  # both classes in every split
    for i in np.flatnonzero(labels):
        y, x = rng.integers(0, size - 6, size=2)
        images[i, y : y + 6, x : x + 6] = 150
    return (images[..., 0] if channels == 1 else images), labels


def write_npz(
    path: Path, sizes=(64, 32, 32), size: int = 28, channels: int = 1, positive: float = 0.5
) -> Path:
    arrays = {}
    for seed, (split, n) in enumerate(zip(("train", "val", "test"), sizes, strict=True)):
        images, labels = make_arrays(n, size, channels, seed, positive)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels[:, None].astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def tiny_splits(sizes=(64, 32, 32), positive: float = 0.5) -> Splits:
    parts = []
    for seed, n in enumerate(sizes):
        images, labels = make_arrays(n, seed=seed, positive=positive)
        parts.append(Split(images[..., None], labels))
    return Splits("tiny", "binary", ("normal", "square"), *parts)


def experiment_dict(data: Path, out: Path, **keys: Any) -> dict[str, Any]:
    """A one-trial, one-epoch ``mnasnet_small`` search of the .npz ``data`` into ``out``; ``keys`` added."""
    return {
        "name": Path(data).stem,
        "space": "mnasnet_small",
        "dataset": {"path": str(data)},
        "input_size": 28,
        "training": {"epochs": 1},
        "trials": 1,
        "out": str(out),
    } | keys


def write_experiment(path: Path, experiment: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(experiment))
    return path
