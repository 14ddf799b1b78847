"""The public API for notebooks and scripts: thin calls over the library (``nas.load_space``,
``nas.build_model``, ``nas.search``, ``nas.export``), each importing torch only when called.

``nas.search`` and ``nas.export`` are also the names of subpackages, and importing any of their modules
sets the package as that attribute of ``nas``; so those two packages are made callable (``callable_package``),
and ``nas.search(...)`` is this module's ``search`` whether or not ``nas.search.config`` was imported first.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.search.config import ExperimentConfig
    from nas.search.summary import SearchSummary
    from nas.space import SearchSpace


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A search space: a bundled one by name (``mnasnet_small``) or a space YAML file."""
    from nas.space import SearchSpace

    return SearchSpace.from_yaml(name_or_path)


def search(experiment: str | Path | Mapping[str, Any] | ExperimentConfig, **overrides: Any) -> SearchSummary:
    """Run (or resume) a search and return its summary, as ``nas search`` does and writes to
    ``summary.json``. ``experiment``: a file, a bundled name (``quickstart``), a mapping of experiment keys
    or an ``ExperimentConfig``; ``overrides`` replace keys (``trials=5, out="runs/x"``)."""
    from nas.search.config import ExperimentConfig, experiment_from, load_experiment
    from nas.search.runner import run_experiment

    if isinstance(experiment, ExperimentConfig):
        experiment = experiment.model_dump()
    if isinstance(experiment, Mapping):
        return run_experiment(experiment_from(experiment, overrides))
    return run_experiment(load_experiment(experiment, overrides))


def export(
    model: str | Path,
    out: str | Path | None = None,
    *,
    trial: int | None = None,
    best: bool = False,
    data: str | None = None,
    input_size: int | None = None,
    in_chans: int | None = None,
    num_classes: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Export as ``nas export`` does and return the model card (also written beside the files).

    ``model``: a trained run directory (``nas train`` output), a search run directory with ``trial=N``
    or ``best=True``, or else an arch string or reference name (untrained; ``input_size``, ``in_chans``,
    ``num_classes`` apply to it only). A ``Path`` or a string with a ``/`` is always a directory, and a
    reference name always the network (``"./mobilenet_v2"`` is the folder). ``options`` are
    ``ExportOptions`` fields: ``format``, ``int8``, ``prune``, ``table``, ``target``, ...
    """
    from nas.export.format import ExportOptions
    from nas.export.pipeline import check_format, run_export
    from nas.export.source import SourceRequest, run_dir_or_arch

    run_dir, arch = run_dir_or_arch(model)
    request = SourceRequest(
        run_dir=run_dir,
        arch=arch,
        trial=trial,
        best=best,
        data=data,
        input_size=input_size,
        in_chans=in_chans,
        num_classes=num_classes,
    )
    settings = ExportOptions(out_dir=None if out is None else Path(out), **_export_options(options))
    fmt = check_format(settings)  # before anything is loaded or built
    return run_export(request.load(), settings, fmt).to_json()


def _export_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` if all are ``ExportOptions`` fields (``out_dir`` is ``out`` here); else one line."""
    from dataclasses import fields

    from nas.errors import UsageError
    from nas.export.format import ExportOptions

    valid = [f.name for f in fields(ExportOptions) if f.name != "out_dir"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UsageError(f"unknown export option(s) {', '.join(unknown)} (valid: {', '.join(valid)})")
    return options


class CallablePackage(ModuleType):
    """A package that, called, runs the function of its own name in this module."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return globals()[self.__name__.rpartition(".")[2]](*args, **kwargs)


def callable_package(name: str) -> None:
    """Make the imported package ``name`` (``nas.search``) callable as this module's function of that name."""
    sys.modules[name].__class__ = CallablePackage
