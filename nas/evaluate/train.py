"""Candidate evaluation for the search, and final training (with optional knowledge distillation).

``evaluate_candidate`` trains briefly and reads only the validation split; the test split is touched
once, by ``train_final``, after the best epoch has been selected on validation.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from nas.arch import ArchSpec
from nas.builder import build_model
from nas.data.splits import Splits
from nas.errors import ConfigError, DataError, NasError
from nas.evaluate.checkpoint import TrainedModel, is_trained_dir, load_trained, save_trained
from nas.evaluate.config import TrainConfig
from nas.evaluate.loop import FitResult, Teacher, fit, predict_probs, split_metrics, to_tensor
from nas.metrics.clinical import clinical_metrics
from nas.outdir import writable_dir
from nas.zoo import resolve_arch

Report = Callable[[int, dict[str, float]], None]
Progress = Callable[[str, int, dict[str, float]], None]
KD_REPORT = "kd_report.json"


@contextmanager
def torch_settings(config: TrainConfig) -> Iterator[None]:
    """Threads and deterministic kernels for the duration of one training, restored afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _arch(arch: ArchSpec | str) -> ArchSpec:
    return arch if isinstance(arch, ArchSpec) else resolve_arch(arch)


def _model(arch: ArchSpec, splits: Splits, seed: int) -> torch.nn.Module:
    if arch.dims != splits.dims:
        raise ConfigError(
            f"'{arch}' is a {arch.dims}-D network but '{splits.name}' holds {splits.modality}s "
            f"({splits.describe_shape()}): use a {splits.dims}-D arch or space"
        )
    torch.manual_seed(seed)  # weight init (and dropout) follow the seed
    return build_model(arch, splits.n_channels, splits.num_classes, splits.input_size)


def _summary(result: FitResult) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "history": result.history,
        "train_seconds": result.train_seconds,
        "images_per_second": result.images_per_second,
        "threads": result.threads,
        "normalization": {"mean": result.mean, "std": result.std},
    }


def evaluate_candidate(
    arch: ArchSpec | str,
    splits: Splits,
    config: TrainConfig,
    report: Report | None = None,
    val_probs: bool = False,
) -> dict[str, Any]:
    """Short training of a candidate, scored on validation only.

    ``report(epoch, val_metrics)`` is called after every epoch (the search reports to Optuna there and
    raises ``optuna.TrialPruned``; the exception propagates). ``score`` is the best epoch's
    ``config.select_metric``; ``val`` all metrics of that epoch. With ``val_probs`` the best epoch's
    validation probabilities are returned too (``val_probs``, for out-of-fold pooling). Raises
    ``TrainingDiverged`` on NaN/inf.
    """
    arch = _arch(arch)
    with torch_settings(config):
        model = _model(arch, splits, config.seed)
        result = fit(model, splits, config, report)
        if val_probs:
            model.load_state_dict(result.best_state)
            x = to_tensor(splits.val, config.torch_device())
            probs = predict_probs(model, x, result.mean, result.std, splits.task, config.channels_last)
    best = result.history[result.best_epoch - 1]
    found = {"arch": arch.to_str(), "score": best[config.select_metric], "val": best, **_summary(result)}
    return found | ({"val_probs": probs} if val_probs else {})


def train_final(
    arch: ArchSpec | str,
    splits: Splits,
    config: TrainConfig,
    out_dir: str | Path,
    teacher: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train on train, select the best epoch on val, evaluate once on test; write ``metrics.json``,
    ``weights.pt`` and ``arch.txt`` to ``out_dir`` and return the metrics.

    With ``teacher`` (a directory written by this function, or a reference name / arch string, trained
    first into ``out_dir/teacher``) the student is trained twice, without KD into ``out_dir/no_kd`` and
    with KD into ``out_dir``, and both are compared in ``kd_report.json`` and ``metrics["kd"]``.
    ``progress(phase, epoch, val_metrics)`` is called after every epoch.
    """
    arch = _arch(arch)
    # what is refused is refused before anything is written: a device this machine lacks, a net that
    # does not fit the data (a 1-D net on images), a teacher that is neither a model nor an arch
    config.torch_device()
    _model(arch, splits, config.seed)
    source = None if teacher is None else _teacher_source(teacher, splits)
    out_dir = writable_dir(out_dir, "the trained model")  # a bad --out fails now, not after the training
    if source is None:
        return _train_one(arch, splits, config, out_dir, None, _phase(progress, "train"))
    trained_teacher = _teacher(source, splits, config, out_dir, progress)
    plain = _train_one(arch, splits, config, out_dir / "no_kd", None, _phase(progress, "student"))
    distilled_teacher = Teacher(trained_teacher.model, trained_teacher.mean, trained_teacher.std)
    metrics = _train_one(arch, splits, config, out_dir, distilled_teacher, _phase(progress, "student+kd"))
    kd = {
        "teacher": {
            "arch": trained_teacher.arch.to_str(),
            "val": trained_teacher.metrics["val"],
            "test": trained_teacher.metrics["test"],
        },
        "kd_temperature": config.kd_temperature,
        "kd_alpha": config.kd_alpha,
        "without_kd": {"val": plain["val"], "test": plain["test"]},
        "with_kd": {"val": metrics["val"], "test": metrics["test"]},
        "test_auc_gain": metrics["test"]["auc"] - plain["test"]["auc"],
    }
    metrics["kd"] = kd
    (out_dir / KD_REPORT).write_text(json.dumps(kd, indent=2) + "\n")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _phase(progress: Progress | None, phase: str) -> Report | None:
    if progress is None:
        return None
    return lambda epoch, metrics: progress(phase, epoch, metrics)


def _teacher_source(teacher: str | Path, splits: Splits) -> TrainedModel | ArchSpec:
    """A trained teacher directory fit for this data, or the arch of a teacher to train here first."""
    if is_trained_dir(teacher):
        trained = load_trained(teacher)
        shape = (trained.metrics["in_chans"], trained.metrics["num_classes"], trained.metrics["task"])
        if shape != (splits.n_channels, splits.num_classes, splits.task):
            raise DataError(
                f"teacher {teacher} was trained for {shape[0]} channel(s), {shape[1]} classes ({shape[2]}), "
                f"the data has {splits.n_channels}, {splits.num_classes} ({splits.task})"
            )
        return trained
    try:
        teacher_arch = resolve_arch(str(teacher))
    except NasError:
        raise DataError(
            f"teacher '{teacher}' is neither a trained model directory (arch.txt, weights.pt, metrics.json) "
            f"nor a reference name or arch string"
        ) from None
    _model(teacher_arch, splits, 0)
    return teacher_arch


def _teacher(
    source: TrainedModel | ArchSpec,
    splits: Splits,
    config: TrainConfig,
    out_dir: Path,
    progress: Progress | None,
) -> TrainedModel:
    """The teacher ``_teacher_source`` found, trained here first (same data and settings) when an arch."""
    if isinstance(source, TrainedModel):
        return source
    _train_one(source, splits, config, out_dir / "teacher", None, _phase(progress, "teacher"))
    return load_trained(out_dir / "teacher")


def _train_one(
    arch: ArchSpec,
    splits: Splits,
    config: TrainConfig,
    out_dir: Path,
    teacher: Teacher | None,
    report: Report | None,
) -> dict[str, Any]:
    with torch_settings(config):
        model = _model(arch, splits, config.seed)
        selected = result = fit(model, splits, config, report, teacher)
        model.load_state_dict(result.best_state)
        model.to(memory_format=torch.contiguous_format)  # as a reloaded model runs: same numbers
        val_probs = predict_probs(
            model, to_tensor(splits.val, config.torch_device()), result.mean, result.std, splits.task
        )
        val = split_metrics(splits.val.labels, val_probs, splits.task, config)
        if config.refit:
            model, result, refit = _refit(arch, splits, config, selected, teacher, report)
        test_probs = predict_probs(
            model, to_tensor(splits.test, config.torch_device()), result.mean, result.std, splits.task
        )
    test = clinical_metrics(splits.test.labels, test_probs, val.get("threshold"))
    metrics = {
        "arch": arch.to_str(),
        "dataset": splits.name,
        "task": splits.task,
        "class_names": list(splits.class_names),
        "input_size": splits.input_size,
        "in_chans": splits.n_channels,
        "num_classes": splits.num_classes,
        "threshold": val.get("threshold"),
        "val": val,
        "test": test,
        "config": config.to_json(),
        "distilled": teacher is not None,
        **_summary(selected),
        "normalization": {"mean": result.mean, "std": result.std},  # the kept model's (a refit's)
        **({"refit": refit} if config.refit else {}),
    }
    save_trained(out_dir, arch, result.best_state, metrics)
    return metrics


def _refit(
    arch: ArchSpec,
    splits: Splits,
    config: TrainConfig,
    selected: FitResult,
    teacher: Teacher | None,
    report: Report | None,
) -> tuple[torch.nn.Module, FitResult, dict[str, Any]]:
    """The network trained again, same seed, on train + val for as many passes as the selected weights
    had (their optimizer steps scaled by the larger set), the schedule fitted to that length; the last
    weights are kept, since no data is left to choose an epoch on. Val metrics and the operating
    threshold stay the selection run's: on the refit model they would be measured on its training data."""
    n_train, n_all = len(splits.train), len(splits.train) + len(splits.val)
    total = config.total_steps(n_train)
    steps = round(selected.best_epoch * total // config.epochs * n_all / n_train)
    merged = dataclasses.replace(splits, train=splits.train_and_val())
    again = config.replace(epochs=selected.best_epoch, min_steps=steps)
    model = _model(arch, merged, config.seed)
    result = fit(model, merged, again, report, teacher, select_best=False)
    model.load_state_dict(result.best_state)
    model.to(memory_format=torch.contiguous_format)
    refit = {
        "train_examples": n_all,
        "selected_epoch": selected.best_epoch,
        "steps": again.total_steps(n_all),
        "train_seconds": result.train_seconds,
    }
    return model, result, refit
