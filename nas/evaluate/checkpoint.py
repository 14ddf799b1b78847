"""A trained model on disk: ``arch.txt``, ``weights.pt`` (a plain state dict, loaded with
``weights_only=True``; no pickled objects) and ``metrics.json`` (which also holds what is needed to use
the weights: input shape, classes, the normalization that export puts inside the graph)."""

from __future__ import annotations

import json
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
    """The model ``train_final`` wrote to ``run_dir``; a missing or broken file raises ``DataError`` (a
    malformed arch file, ``ConfigError``)."""
    run_dir = Path(run_dir)
    if not is_trained_dir(run_dir):
        raise DataError(
            f"{run_dir} is not a trained model directory ({ARCH_FILE}, {WEIGHTS_FILE}, {METRICS_FILE})"
        )
    arch = ArchSpec.from_str((run_dir / ARCH_FILE).read_text().strip())
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        model = build_model(arch, metrics["in_chans"], metrics["num_classes"], metrics["input_size"])
        model.load_state_dict(torch.load(run_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    except (json.JSONDecodeError, KeyError, RuntimeError) as exc:
        raise DataError(f"cannot load the model in {run_dir}: {' '.join(str(exc).split())}") from None
    return TrainedModel(arch, model.eval(), metrics)
