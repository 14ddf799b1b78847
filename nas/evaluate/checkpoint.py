"""A trained model on disk: ``arch.txt``, ``weights.pt`` (a plain state dict, loaded with
``weights_only=True``; no pickled objects) and ``metrics.json`` (which also holds what is needed to use
the weights: input shape, classes, the normalization that export puts inside the graph)."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.arch import ArchSpec
from nas.builder import build_model
from nas.data.splits import Split
from nas.errors import DataError
from nas.evaluate.loop import predict_probs, to_tensor

ARCH_FILE = "arch.txt"
WEIGHTS_FILE = "weights.pt"
METRICS_FILE = "metrics.json"
REQUIRED_METRICS = ("in_chans", "num_classes", "input_size", "task", "class_names", "normalization")


@dataclass
class TrainedModel:
    """A network with its weights and input normalization, ready to predict."""

    arch: ArchSpec
    model: nn.Module
    metrics: dict[str, Any]

    @property
    def mean(self) -> list[float]:
        return self.metrics["normalization"]["mean"]

    @property
    def std(self) -> list[float]:
        return self.metrics["normalization"]["std"]

    def predict(self, split: Split) -> np.ndarray:
        """Class probabilities ``(N, K)`` of a split's images."""
        return predict_probs(self.model, to_tensor(split, "cpu"), self.mean, self.std, self.metrics["task"])


def save_trained(
    out_dir: Path, arch: ArchSpec, state: dict[str, torch.Tensor], metrics: dict[str, Any]
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ARCH_FILE).write_text(arch.to_str() + "\n")
    torch.save({k: v.cpu() for k, v in state.items()}, out_dir / WEIGHTS_FILE)
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")


def is_trained_dir(path: str | Path) -> bool:
    path = Path(path)
    return all((path / name).is_file() for name in (ARCH_FILE, WEIGHTS_FILE, METRICS_FILE))


def load_trained(run_dir: str | Path) -> TrainedModel:
    """The model ``train_final`` wrote to ``run_dir``; a missing, unreadable or inconsistent file raises a
    one-line ``DataError`` naming it (a malformed arch string, ``ConfigError``)."""
    run_dir = Path(run_dir)
    if not is_trained_dir(run_dir):
        raise DataError(
            f"{run_dir} is not a trained model directory ({ARCH_FILE}, {WEIGHTS_FILE}, {METRICS_FILE})"
        )
    arch = ArchSpec.from_str(_read_text(run_dir / ARCH_FILE).strip())
    metrics = _read_metrics(run_dir / METRICS_FILE)
    model = build_model(arch, metrics["in_chans"], metrics["num_classes"], metrics["input_size"])
    path = run_dir / WEIGHTS_FILE
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except pickle.UnpicklingError:
        raise DataError(f"cannot load {path}: not a plain state dict of tensors") from None
    except EOFError:
        raise DataError(f"cannot load {path}: the file is empty or cut short") from None
    except (OSError, RuntimeError, TypeError) as exc:  # a damaged archive, or weights of another network
        raise DataError(f"cannot load {path}: {' '.join(str(exc).split())}") from None
    return TrainedModel(arch, model.eval(), metrics)


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {' '.join(str(exc).split())}") from None


def _read_metrics(path: Path) -> dict[str, Any]:
    """``metrics.json``, with every key a reloaded model is used by (shape, task, classes, normalization)."""
    try:
        metrics = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"cannot read {path}: not JSON ({exc})") from None
    if not isinstance(metrics, dict):
        raise DataError(f"cannot read {path}: not a JSON object")
    missing = [key for key in REQUIRED_METRICS if key not in metrics]
    if missing:
        raise DataError(f"cannot read {path}: no {', '.join(repr(k) for k in missing)}")
    for key in ("in_chans", "num_classes", "input_size"):
        if not isinstance(metrics[key], int) or isinstance(metrics[key], bool) or metrics[key] < 1:
            raise DataError(f"cannot read {path}: '{key}' must be a positive integer, got {metrics[key]!r}")
    normalization = metrics["normalization"]
    if not isinstance(normalization, dict) or not {"mean", "std"} <= normalization.keys():
        raise DataError(f"cannot read {path}: 'normalization' must have 'mean' and 'std'")
    return metrics
