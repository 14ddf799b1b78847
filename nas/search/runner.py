"""One experiment end to end: record its config in the run directory, run (or resume) the study, write
the reports. ``nas search`` adds a progress bar and the printed front; ``nas.search(...)`` calls it bare."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from nas.errors import DataError, NasError, UsageError
from nas.evaluate.protocols import EvaluationConfig
from nas.outdir import writable_dir
from nas.search.config import ExperimentConfig
from nas.search.summary import SearchSummary, read_summary
from nas.space import SearchSpace

if TYPE_CHECKING:
    from nas.search.run import TrialCallback

# What must not change between a run and its resumption (trials, timeout and workers may).
IDENTITY_KEYS = (
    "training",
    "evaluation",
    "name",
    "space",
    "dataset",
    "input_size",
    "latency",
    "mode",
    "reward",
    "objectives",
    "constraints",
    "microcontroller",
)
PLOT_REFERENCES = {2: ("mnasnet_a1", "mobilenet_v2", "mnasnet0_5"), 1: ("resnet1d_wang", "fcn1d_wang")}
CONFIG_FILE = "config.yaml"

Monitor = Callable[[ExperimentConfig], AbstractContextManager[list["TrialCallback"]]]

log = logging.getLogger(__name__)


def run_experiment(
    config: ExperimentConfig,
    monitor: Monitor | None = None,
    finalize_progress: Callable[[int, int, bool], None] | None = None,
) -> SearchSummary:
    """Run ``config`` to its ``trials`` (or timeout) and return the summary written to ``summary.json``.
    ``monitor(config)`` (the CLI's progress bar) is entered around the trials and gives their callbacks.
    With a ``finalize`` key the run is then finalized (``nas.search.finalize``; ``finalize_progress`` is
    called after each final training) and the summary carries the final figures; with ``latency.verify``
    the top nets are then measured on the table's backend (``nas.search.verify``)."""
    from nas.search.factory import default_objective
    from nas.search.report import write_report
    from nas.search.run import open_storage, run_search, storage_url

    out = Path(config.out)
    check_run_dir(config, out)
    default_objective(config)  # fail here, in the parent, on a bad table or missing data ...
    config.train_config().torch_device()  # ... or a device this machine lacks ...
    if config.storage or (out / "study.db").exists():
        open_storage(storage_url(config))  # ... or a storage that cannot be opened ...
    record_config(config, out)  # ... so a typo leaves no record that would refuse the corrected rerun
    with monitor(config) if monitor is not None else nullcontext([]) as callbacks:
        study = run_search(config, default_objective, callbacks)
    summary = write_report(study, config, out, reference_metrics(config))
    if config.finalize is not None:
        from nas.search.finalize import finalize_run

        finalize_run(out, **config.finalize.model_dump(), progress=finalize_progress, workers=config.workers)
        summary = read_summary(out)
    if config.latency is not None and config.latency.verify:
        from nas.search.verify import verify_run

        verify_run(out, config.latency.verify)
        summary = read_summary(out)
    return summary


def check_run_dir(config: ExperimentConfig, out: Path) -> None:
    """Refuse a run directory that is a file, or holds a different experiment (or an unreadable
    record of one); writes nothing."""
    if out.exists() and not out.is_dir():
        raise DataError(f"run directory {out} is a file; use another --out")
    path = out / CONFIG_FILE
    if not path.exists():
        return
    try:
        previous = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise DataError(f"{path} is not a readable experiment record; use another --out") from None
    if not isinstance(previous, dict | None):
        raise DataError(f"{path} is not an experiment record (not a mapping); use another --out")
    resolved = config.model_dump(mode="json")
    previous = {"evaluation": EvaluationConfig().model_dump(mode="json")} | (previous or {})  # older runs
    changed = [k for k in IDENTITY_KEYS if _identity(previous, k) != _identity(resolved, k)]
    if changed:
        raise UsageError(f"{out} holds another experiment ({', '.join(changed)} differ); use another --out")


def _identity(record: dict, key: str) -> object:
    """``record[key]`` as far as it defines the experiment: how many nets are verified does not."""
    value = record.get(key)
    if key == "latency" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "verify"}
    return value


def record_config(config: ExperimentConfig, out: Path) -> None:
    """Write the resolved config to ``out/config.yaml``; refuse a run directory that holds a different
    experiment (``check_run_dir``)."""
    check_run_dir(config, out)
    writable_dir(out, "the search run")
    try:
        (out / CONFIG_FILE).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    except OSError as exc:
        raise DataError(f"cannot write {out / CONFIG_FILE}: {exc.strerror or exc}") from None


def reference_metrics(config: ExperimentConfig) -> dict[str, dict[str, float]]:
    """Cheap metrics of a few reference networks, for the plot. Their latency is the table's prediction
    where it can price them, else measured here on the table's scale (see ``measure_nets``), else left
    out with a logged warning: a reference never costs the run its report."""
    from nas.latency.validate import measure_nets
    from nas.search.factory import dataset_shape, latency_table
    from nas.search.objective import cheap_metrics
    from nas.zoo import resolve_arch

    in_chans, num_classes = dataset_shape(config, None)
    table = latency_table(config)
    found, unpriced = {}, {}
    for name in PLOT_REFERENCES[SearchSpace.from_yaml(config.space).config.dims]:
        arch = resolve_arch(name)
        try:
            found[name] = cheap_metrics(arch, in_chans, config.input_size, num_classes, None)
        except NasError:
            continue  # an input too small for the network
        if table is not None:
            try:
                found[name]["latency_ms"] = table.predict(arch)
            except NasError:  # blocks outside the table's space
                unpriced[name] = arch
    if unpriced:
        try:
            measured = measure_nets(table, unpriced)
        except NasError as exc:  # an imported table (no anchor), a board out of reach: keep the report
            names = ", ".join(unpriced)
            log.warning("note: reference networks %s have no latency in the report: %s", names, exc)
            return found
        for name, ms in measured.items():
            found[f"{name} (measured)"] = {**found.pop(name), "latency_ms": ms}
    return found
