"""Trained networks reused by what made them: a directory ``train_final`` wrote is kept when a new
request has the same arch, data, input size, recipe and teacher arch, so that reruns (benchmarks train a
dozen networks for minutes each) skip the training. The recipe is read back from the directory's own
``arch.txt`` and ``metrics.json``; nothing else is stored.

``threads`` is not part of the recipe (it changes speed, not weights); a teacher counts by its arch
alone, not by how it was trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.arch import ArchSpec
from nas.data.splits import Splits
from nas.errors import ConfigError
from nas.evaluate.checkpoint import ARCH_FILE, METRICS_FILE, is_trained_dir
from nas.evaluate.config import TrainConfig
from nas.evaluate.train import Progress, train_final
from nas.zoo import resolve_arch


def cached_metrics(
    out_dir: str | Path,
    arch: ArchSpec | str,
    splits: Splits,
    config: TrainConfig,
    teacher: str | Path | None = None,
) -> dict[str, Any] | None:
    """``out_dir``'s metrics when ``train_final`` trained it with exactly this recipe, else None.

    ``arch`` and ``teacher`` are taken as ``train_final`` takes them (a teacher is a trained directory,
    a reference name or an arch string)."""
    metrics = _metrics(Path(out_dir))
    if metrics is None:
        return None
    teacher_arch = _teacher_arch(teacher)
    wanted = _recipe(_arch_str(arch), splits.name, splits.input_size, config.to_json(), teacher_arch)
    return metrics if _recorded_recipe(Path(out_dir), metrics) == wanted else None


def train_cached(
    arch: ArchSpec | str,
    splits: Splits,
    config: TrainConfig,
    out_dir: str | Path,
    teacher: str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], bool]:
    """``train_final``'s metrics, trained into ``out_dir`` only when ``cached_metrics`` finds none
    there; the flag says whether the directory was reused."""
    metrics = cached_metrics(out_dir, arch, splits, config, teacher)
    if metrics is not None:
        return metrics, True
    return train_final(arch, splits, config, out_dir, teacher=teacher, progress=progress), False


def _recipe(
    arch: str, dataset: str, input_size: int, config: dict[str, Any], teacher: str | None
) -> dict[str, Any]:
    settings = {k: v for k, v in config.items() if k not in ("threads", "device")}  # where, not what
    return {
        "arch": arch,
        "dataset": dataset,
        "input_size": input_size,
        "config": settings,
        "teacher": teacher,
    }


def _metrics(trained_dir: Path) -> dict[str, Any] | None:
    if not is_trained_dir(trained_dir):
        return None
    try:
        return json.loads((trained_dir / METRICS_FILE).read_text())
    except json.JSONDecodeError:
        return None


def _recorded_recipe(trained_dir: Path, metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The recipe a trained directory was made with; None when its files do not say."""
    try:
        arch = ArchSpec.from_str((trained_dir / ARCH_FILE).read_text().strip()).to_str()
        teacher = metrics.get("kd", {}).get("teacher", {}).get("arch")
        config = TrainConfig.from_json(metrics["config"]).to_json()  # settings added since: defaults
        return _recipe(arch, metrics["dataset"], metrics["input_size"], config, teacher)
    except (ValueError, KeyError, AttributeError, TypeError, ConfigError):
        return None


def _arch_str(arch: ArchSpec | str) -> str:
    return (arch if isinstance(arch, ArchSpec) else resolve_arch(arch)).to_str()


def _teacher_arch(teacher: str | Path | None) -> str | None:
    """The arch a teacher stands for: read from its trained directory, or resolved from its name."""
    if teacher is None:
        return None
    if is_trained_dir(teacher):
        return ArchSpec.from_str((Path(teacher) / ARCH_FILE).read_text().strip()).to_str()
    return _arch_str(str(teacher))
