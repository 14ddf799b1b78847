"""What is being exported: a trained run (directly, or a trial of a search run) or an untrained arch.

Everything downstream (ONNX, INT8, pruning, the model card) reads this one value: the network, its
input shape, the normalization that goes inside the graph, class names, the operating threshold and,
when it can be loaded, the dataset (for calibration, fine-tuning and clinical metrics).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.arch import ArchSpec
from nas.data.splits import Splits
from nas.errors import DataError, NasError

UNTRAINED_MEAN, UNTRAINED_STD = 0.5, 0.5
UNTRAINED_SEED = 0


@dataclass
class Source:
    """A network ready to export, with everything the deployment contract and the card need."""

    arch: ArchSpec
    network: nn.Module
    in_chans: int
    input_size: int
    num_classes: int
    task: str
    class_names: list[str]
    mean: list[float]
    std: list[float]
    threshold: float | None
    origin: str
    default_out: Path
    trained: dict[str, Any] | None = None  # metrics.json of a trained run
    splits: Splits | None = None
    data_note: str = "untrained network and no --data"

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.in_chans, self.input_size, self.input_size)


def from_run_dir(run_dir: str | Path, trial: int | None, best: bool, data: str | None) -> Source:
    """A trained model directory (``nas train --out DIR``), or trial N / the best trial of a search run,
    whose weights ``nas train RUN_DIR --trial N`` wrote to ``RUN_DIR/final/trial_N``."""
    from nas.evaluate.checkpoint import is_trained_dir, load_trained

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"no such run directory: {run_dir}")
    summary_data = None
    if is_trained_dir(run_dir):
        if trial is not None or best:
            raise DataError(f"{run_dir} is a trained model, not a search run: drop --trial/--best")
        trained_dir, origin = run_dir, f"trained run {run_dir}"
    elif (run_dir / "summary.json").is_file():
        from nas.search.summary import read_search_run

        if trial is None and not best:
            raise DataError(f"say which trial of search run {run_dir} to export: --trial N or --best")
        run = read_search_run(run_dir, trial, best)
        trained_dir = run_dir / "final" / f"trial_{run['number']}"
        if not is_trained_dir(trained_dir):
            raise DataError(
                f"trial {run['number']} of {run_dir} has no trained weights in {trained_dir}: "
                f"run 'nas train {run_dir} --trial {run['number']}' first"
            )
        summary_data = _data_ref(run["dataset"])
        origin = f"trial {run['number']} of search run {run_dir}, trained in {trained_dir}"
    else:
        raise DataError(
            f"{run_dir} is neither a trained model directory (arch.txt, weights.pt, metrics.json) "
            "nor a search run (summary.json)"
        )
    model = load_trained(trained_dir)
    m = model.metrics
    source = Source(
        arch=model.arch,
        network=model.model.eval(),
        in_chans=m["in_chans"],
        input_size=m["input_size"],
        num_classes=m["num_classes"],
        task=m["task"],
        class_names=list(m["class_names"]),
        mean=list(model.mean),
        std=list(model.std),
        threshold=m.get("threshold"),
        origin=origin,
        default_out=trained_dir / "export",
        trained=m,
    )
    _attach_data(source, data, summary_data or m.get("data") or m.get("dataset"))
    return source


def from_arch(
    arch_text: str, input_size: int | None, in_chans: int | None, num_classes: int | None, data: str | None
) -> Source:
    """An untrained network (random init, seed 0): for testing the tool chain and for timing.

    Without data: 1 channel, 28x28, 2 classes unless given, normalization mean 0.5 std 0.5. With
    ``data``: its channels, classes, class names and training-set normalization.
    """
    from nas.builder import build_model
    from nas.zoo import REFERENCES, resolve_arch

    arch = resolve_arch(arch_text)
    size = input_size or 28
    splits = None
    if data is not None:
        from nas.data import load_dataset

        splits = load_dataset(data, size)
        for name, given, actual in (
            ("--in-chans", in_chans, splits.n_channels),
            ("--num-classes", num_classes, splits.num_classes),
        ):
            if given is not None and given != actual:
                raise DataError(f"{name} {given} contradicts the data '{data}', which has {actual}")
        chans, classes = splits.n_channels, splits.num_classes
        mean, std = splits.normalization()
        names, task = list(splits.class_names), splits.task
    else:
        chans, classes = in_chans or 1, num_classes or 2
        mean, std = [UNTRAINED_MEAN] * chans, [UNTRAINED_STD] * chans
        names = [f"class_{k}" for k in range(classes)]
        task = "binary" if classes == 2 else "multi-class"
    torch.manual_seed(UNTRAINED_SEED)
    network = build_model(arch, chans, classes, size).eval()
    label = (
        arch_text
        if arch_text in REFERENCES
        else "arch-" + hashlib.sha1(arch.to_str().encode()).hexdigest()[:10]
    )
    source = Source(
        arch=arch,
        network=network,
        in_chans=chans,
        input_size=size,
        num_classes=classes,
        task=task,
        class_names=names,
        mean=mean,
        std=std,
        threshold=None,
        origin=f"untrained (random init, seed {UNTRAINED_SEED})",
        default_out=Path("runs") / "export" / f"{label}_{chans}x{size}",
    )
    if splits is not None:
        source.splits, source.data_note = splits, f"'{data}'"
    return source


def _data_ref(dataset: str | dict[str, Any] | None) -> str | None:
    """A search summary's dataset, ``{"name", "path"}`` (the search config) or a plain string."""
    if isinstance(dataset, dict):
        return dataset.get("path") or dataset.get("name")
    return dataset


def _attach_data(source: Source, given: str | None, recorded: str | None) -> None:
    """Load the dataset of a trained model: ``--data`` if given (errors propagate), else the one the run
    recorded (if it cannot be found, the export goes on without data and the card says why)."""
    from nas.data import load_dataset

    if given is None and recorded is None:
        source.data_note = "no dataset recorded; pass --data"
        return
    try:
        splits = load_dataset(given or recorded, source.input_size)
    except NasError as exc:
        if given is not None:
            raise
        source.data_note = f"dataset '{recorded}' not found ({' '.join(str(exc).split())}); pass --data"
        return
    shape = (splits.n_channels, splits.num_classes, splits.task)
    expected = (source.in_chans, source.num_classes, source.task)
    if shape != expected:
        raise DataError(
            f"data '{given or recorded}' has {shape[0]} channel(s), {shape[1]} classes ({shape[2]}); "
            f"the model was trained for {expected[0]}, {expected[1]} ({expected[2]})"
        )
    source.splits, source.data_note = splits, f"'{given or recorded}'"
