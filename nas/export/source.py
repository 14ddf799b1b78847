"""What is being exported: a trained run (directly, or a trial of a search run) or an untrained arch,
named by a ``SourceRequest`` (checked before anything is loaded) and loaded as a ``Source``.

Everything downstream (ONNX, INT8, pruning, the model card) reads this one value: the network, its
input shape, the normalization that goes inside the graph, class names, the operating threshold and,
when it can be loaded, the dataset (for calibration, fine-tuning and clinical metrics).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.arch import ArchSpec
from nas.data.splits import Splits
from nas.errors import DataError, NasError, UsageError

UNTRAINED_NORMALIZATION = {2: (0.5, 0.5), 1: (0.0, 1.0)}  # mean, std by dims: images in [0, 1], raw signals
UNTRAINED_SEED = 0
SHAPE_OPTIONS = ("input_size", "in_chans", "num_classes")  # an untrained arch's; a run has its own


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
    def input_shape(self) -> tuple[int, ...]:
        """``(1, C, H, W)``, or ``(1, C, L)`` for a 1-D arch: the arch says which, never the data."""
        return self.arch.input_shape(self.in_chans, self.input_size)


@dataclass(frozen=True)
class SourceRequest:
    """Which network to export, as ``nas export`` and ``nas.export`` name it: a run directory (a trained
    model, or a search run with ``trial``/``best``) or an untrained ``arch`` (with its shape). Building it
    checks the combination (one-line ``UsageError``s, in the CLI's words) and that the directory exists,
    reading nothing, so that a wrong call fails before the format is checked and anything is loaded."""

    run_dir: Path | None = None
    arch: str | None = None
    trial: int | None = None
    best: bool = False
    data: str | None = None
    input_size: int | None = None
    in_chans: int | None = None
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if self.run_dir is None:
            if self.trial is not None or self.best:
                raise UsageError("--trial and --best need a search RUN_DIR")
            if self.arch is None:
                raise UsageError(
                    "give RUN_DIR (a trained run, or a search run with --trial N/--best) or --arch"
                )
            return
        if self.arch is not None:
            raise UsageError("give either RUN_DIR or --arch, not both")
        shape = [f"--{n.replace('_', '-')}" for n in SHAPE_OPTIONS if getattr(self, n) is not None]
        if shape:
            verb = "applies" if len(shape) == 1 else "apply"
            raise UsageError(f"{', '.join(shape)} {verb} to --arch only; a run's model has its own")
        if self.trial is not None and self.best:
            raise UsageError("give either --trial N or --best, not both")
        _existing_dir(self.run_dir)

    def load(self) -> Source:
        """The network, its weights (or seeded init) and its data."""
        if self.run_dir is not None:
            return from_run_dir(self.run_dir, self.trial, self.best, self.data)
        assert self.arch is not None  # __post_init__
        return from_arch(self.arch, self.input_size, self.in_chans, self.num_classes, self.data)


def run_dir_or_arch(model: str | Path) -> tuple[Path | None, str | None]:
    """``nas.export``'s one positional as ``(run_dir, arch)``. A ``Path``, or a string with a path separator
    (arch strings have none), is a directory, and one that does not exist is said to be missing, not taken
    for an arch; a reference name is the network even if a folder of that name is in the working directory;
    any other string is a directory if one of that name exists, else an arch string."""
    from nas.zoo import REFERENCES

    if isinstance(model, Path) or any(sep and sep in model for sep in (os.sep, os.altsep)):
        return Path(model), None
    if model.strip() not in REFERENCES and Path(model).is_dir():
        return Path(model), None
    return None, model


def _existing_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a ``Path``; a one-line ``DataError`` if there is no such directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"no such run directory: {run_dir}")
    return run_dir


def from_run_dir(run_dir: str | Path, trial: int | None, best: bool, data: str | None) -> Source:
    """A trained model directory (``nas train --out DIR``), or trial N / the best trial of a search run,
    whose weights ``nas train RUN_DIR --trial N`` wrote to ``RUN_DIR/final/trial_N``."""
    from nas.evaluate.checkpoint import is_trained_dir, load_trained

    run_dir = _existing_dir(run_dir)
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
        summary_data = run["dataset"]
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

    Without data: 1 channel, 28 pixels a side (or samples for a 1-D arch), 2 classes unless given,
    normalization mean 0.5 std 0.5 (signals: 0 and 1). With ``data``: its channels, classes, class names,
    training-set normalization and, for signals (which are never resampled), length.
    """
    from nas.builder import build_model
    from nas.zoo import REFERENCES, resolve_arch

    arch = resolve_arch(arch_text)
    size = input_size or 28
    splits = None
    if data is not None:
        from nas.data import load_dataset

        splits = load_dataset(data, input_size if arch.dims == 1 else size)
        _check_modality(arch, splits, data)
        for name, given, actual in (
            ("--input-size", input_size, splits.input_size),  # signals load at their own length
            ("--in-chans", in_chans, splits.n_channels),
            ("--num-classes", num_classes, splits.num_classes),
        ):
            if given is not None and given != actual:
                raise DataError(f"{name} {given} contradicts the data '{data}', which has {actual}")
        chans, classes, size = splits.n_channels, splits.num_classes, splits.input_size
        mean, std = splits.normalization()
        names, task = list(splits.class_names), splits.task
    else:
        chans, classes = in_chans or 1, num_classes or 2
        mean, std = ([v] * chans for v in UNTRAINED_NORMALIZATION[arch.dims])
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


def _check_modality(arch: ArchSpec, splits: Splits, data: str) -> None:
    """A one-line ``DataError`` when the data's inputs are not what the arch takes (images for 2-D archs,
    signals for 1-D ones)."""
    if splits.dims != arch.dims:
        wanted = "signal" if arch.dims == 1 else "image"
        raise DataError(
            f"data '{data}' holds {splits.modality}s ({splits.describe_shape()}) but the arch is "
            f"{arch.dims}-D: export a {splits.dims}-D arch, or give {wanted} data"
        )


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
    _check_modality(source.arch, splits, given or recorded)
    shape = (splits.n_channels, splits.num_classes, splits.task, splits.input_size)
    expected = (source.in_chans, source.num_classes, source.task, source.input_size)
    if shape != expected:  # a signal set loads at its own length, which may not be the model's
        raise DataError(
            f"data '{given or recorded}' has {shape[0]} channel(s), {shape[1]} classes ({shape[2]}), "
            f"size {shape[3]}; the model was trained for {expected[0]}, {expected[1]} ({expected[2]}), "
            f"size {expected[3]}"
        )
    source.splits, source.data_note = splits, f"'{given or recorded}'"
