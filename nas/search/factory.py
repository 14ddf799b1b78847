"""Everything an experiment file names, made real: the space, the latency table, the data and the
accuracy evaluator, assembled into the objective every worker runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas.arch import ArchSpec
from nas.errors import ConfigError
from nas.latency.table import LatencyTable
from nas.search.config import ExperimentConfig
from nas.search.objective import CandidateFailed, CandidateObjective, Report
from nas.space import SearchSpace

if TYPE_CHECKING:
    from nas.latency.predictors.base import Predictor


def load_splits(config: ExperimentConfig):
    """The experiment's dataset: ``synthetic`` (generated), a MedMNIST name, a .npz file or a folder;
    loaded as ``nas train`` loads it, so a final training sees the data the search saw."""
    from nas.data import load_dataset

    return load_dataset(config.dataset.ref, config.input_size)


class TrainingEvaluator:
    """Short training scored on validation by the experiment's evaluation protocol (holdout: train ->
    val; kfold: folds of train + val); the test split is never touched here."""

    def __init__(self, config: ExperimentConfig) -> None:
        from nas.evaluate.protocols import check_data

        self.splits = load_splits(config)
        self.train_config = config.train_config()
        self.evaluation = config.evaluation
        check_data(self.splits, self.evaluation)  # data the protocol cannot use fails before any trial

    def __call__(self, arch: ArchSpec, report: Report) -> dict[str, float]:
        from nas.evaluate.config import TrainingDiverged
        from nas.evaluate.protocols import run_protocol

        def report_val(step: int, metrics: dict[str, float]) -> None:
            report(step, _val(metrics))

        try:
            metrics = run_protocol(arch, self.splits, self.train_config, self.evaluation, report_val)
        except TrainingDiverged as exc:
            raise CandidateFailed(str(exc)) from None
        return _val(metrics)


def _val(metrics: dict[str, float]) -> dict[str, float]:
    """The trainer's validation metrics under the search's names (``auc`` -> ``val_auc``)."""
    return {
        (k if k.startswith("val_") else f"val_{k}"): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float)
    }


def default_objective(config: ExperimentConfig) -> CandidateObjective:
    """The objective for ``config``; module-level so spawned workers can rebuild it."""
    space = SearchSpace.from_yaml(config.space)
    evaluator = TrainingEvaluator(config) if config.needs_training() else None
    if evaluator is not None and evaluator.splits.dims != space.config.dims:
        splits = evaluator.splits
        raise ConfigError(
            f"space '{space.name}' is {space.config.dims}-D but '{splits.name}' holds {splits.modality}s "
            f"({splits.describe_shape()}): use a {splits.dims}-D space (e.g. "
            f"{'mnasnet1d' if splits.dims == 1 else 'mnasnet_small'})"
        )
    in_chans, num_classes = dataset_shape(config, evaluator)
    table = latency_table(config)
    if table is not None:
        wanted = {
            "space": space.name,
            "input_size": config.input_size,
            "in_chans": in_chans,
            "num_classes": num_classes,
        }
        found = {k: table.settings.get(k) for k in wanted}
        if found != wanted:
            raise ConfigError(
                f"latency table {config.latency.table} was built for {found}, this experiment needs "
                f"{wanted}; {table_fix(config, table, wanted)}"
            )
    return CandidateObjective(config, space, in_chans, num_classes, table, evaluator)


def table_fix(config: ExperimentConfig, table: LatencyTable | Predictor, wanted: dict[str, Any]) -> str:
    """The command that builds the table the experiment needs on the same device and backend, and where
    it will be: from the given table when only the data shape differs (seconds: body blocks reused)."""
    if not isinstance(table, LatencyTable):
        return (
            "a latency predictor answers for its own data only: measure nets of this shape with "
            "'nas latency measure' and run 'nas latency adapt' or 'fit' again"
        )
    from nas.latency.table import shape_table_path

    device = table.provenance.get("device", "DEVICE")
    shape = f"--in-chans {wanted['in_chans']} --num-classes {wanted['num_classes']}"
    if all(table.settings.get(k) == wanted[k] for k in ("space", "input_size")):
        command = f"nas latency build --from {config.latency.table} {shape}"
    else:
        backend = table.provenance.get("backend", "ort")
        command = (
            f"nas latency build --space {config.space} --input-size {wanted['input_size']} {shape} "
            f"--device {device} --backend {backend} --threads {table.provenance.get('threads', 1)}"
        )
    path = shape_table_path(
        device, wanted["space"], wanted["input_size"], wanted["in_chans"], wanted["num_classes"]
    )
    return f"build it with '{command}' and set latency.table to {path}"


def latency_table(config: ExperimentConfig) -> LatencyTable | Predictor | None:
    """The experiment's table or predictor (``nas.latency.predictors``): its path from the working
    directory, else the shipped file of that name."""
    from nas.latency.predictors import load_latency

    return load_latency(config.latency.table) if config.latency is not None else None


def dataset_shape(config: ExperimentConfig, evaluator: TrainingEvaluator | None) -> tuple[int, int]:
    """Input channels and classes, without loading the data when no training needs it."""
    if evaluator is not None:
        splits = evaluator.splits
        return splits.n_channels, splits.num_classes
    from nas.data import DATASETS

    if config.dataset.path is None and config.dataset.name.lower() in DATASETS:
        return DATASETS.get(config.dataset.name.lower()).shape()
    splits = load_splits(config)
    return splits.n_channels, splits.num_classes
