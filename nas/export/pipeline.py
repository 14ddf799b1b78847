"""One export, end to end: prune (optional), export ONNX and check it, quantize (optional) (both in
``nas.export.variants``), time every variant side by side, score every variant on the data, hand the
model to the chosen format, and write the files and the model card.

ONNX fp32 is always written: it is the reference every other figure is measured against (parity,
INT8 deltas, pruning deltas, the latency of other formats). Formats are plugins (``nas.export.FORMATS``,
``nas.export.format.ExportFormat``): this module knows none by name. Everything is written into a staging
folder (``nas.export.staging``), made before the work starts so that an unwritable destination fails
first, and moved into place only once every step has succeeded.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nas import extras
from nas.errors import UsageError
from nas.export import FORMATS
from nas.export.format import FORMAT_OPTION_DEFAULTS, FORMAT_OPTIONS, ExportFormat, ExportOptions, Reference
from nas.export.onnx import weight_bytes
from nas.export.predicted import TablePrediction, predict, timing_settings
from nas.export.source import Source
from nas.export.staging import staged
from nas.export.variants import clinical_scores, deployment_metadata, export_variants, normalized
from nas.onnxrt import export_onnx

if TYPE_CHECKING:
    from nas.export.card import ModelCard

FP32_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"


def check_format(options: ExportOptions) -> ExportFormat:
    """The format ``options`` name, once it has accepted them: one-line ``NasError``s for an unknown
    format, an option it does not take, one it cannot use, or a missing extra that ``--prune`` needs
    (before anything is loaded or built)."""
    fmt = FORMATS.get(options.format)
    for name in FORMAT_OPTIONS:
        if _given(options, name) and name not in fmt.options:
            takers = _takers(name)
            if not takers:
                raise UsageError(f"--{name} does not apply to --format {options.format} (no format takes it)")
            raise UsageError(f"--{name} applies to --format {_either(takers)} only, not {options.format}")
    if options.prune is not None and not extras.available("prune"):
        raise extras.missing_extra("prune")
    fmt.check(options)
    return fmt


def _given(options: ExportOptions, name: str) -> bool:
    """Whether a format option is set: not None or False, nor the value that means the same as leaving it
    out (``--target host``)."""
    value = getattr(options, name)
    return value is not None and value is not False and value != FORMAT_OPTION_DEFAULTS.get(name)


def _takers(option: str) -> list[str]:
    """The registered formats that take ``option``. One that fails to load is left out: it must not turn
    the message about a mistyped option into a crash (it fails in its own right when it is chosen)."""
    takers = []
    for name in FORMATS:
        try:
            takes = option in FORMATS.get(name).options
        except Exception:  # a plugin's import may raise anything
            continue
        if takes:
            takers.append(name)
    return takers


def _either(names: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def run_export(source: Source, options: ExportOptions, fmt: ExportFormat | None = None) -> ModelCard:
    """Export ``source`` as ``options`` say; returns the model card (also written beside the files).

    ``fmt``: what ``check_format(options)`` returned, for a caller that checked before loading
    ``source`` (the check imports the format, and TVM's starts a thread pool: once is enough); None:
    checked here."""
    fmt = check_format(options) if fmt is None else fmt
    if source.trained is not None and source.splits is None and (options.int8 or options.prune):
        raise UsageError(f"--int8 and --prune of a trained model need its data ({source.data_note})")
    table = predict(source, options.table, pruned=options.prune is not None)  # a bad table fails early
    with staged(Path(options.out_dir or source.default_out)) as out:  # an unwritable --out fails here too
        return _export(source, options, fmt, table, out)


def _export(
    source: Source, options: ExportOptions, fmt: ExportFormat, table: TablePrediction, out: Path
) -> ModelCard:
    """``run_export`` once everything is checked: the files and the card, written into ``out``."""
    from nas.export import card, runtime

    target, pruning = source, None
    if options.prune is not None:
        target, pruning = _pruned(source, options)
    variants = export_variants(target, options)
    models = dict(variants.onnx)
    if pruning is not None:
        metadata = deployment_metadata(target, options.prune)
        models["unpruned_fp32"] = export_onnx(
            normalized(source), source.input_shape, deployable=True, metadata=metadata
        )
    settings = timing_settings([table], options.rounds, options.seed)
    measured = runtime.time_models({**models, **table.models()}, source.input_shape, settings)
    timings = {k: measured[k].to_json() for k in models}
    clinical = None
    if source.splits is not None:  # every variant at the exported threshold, the unpruned one at its own
        clinical = {
            name: clinical_scores(
                data, source.splits, source.task, (source if name == "unpruned_fp32" else target).threshold
            )
            for name, data in models.items()
        }
    files = {"fp32": FP32_FILE, **({"int8": INT8_FILE} if "int8" in models else {})}
    sizes = {key: (len(data), weight_bytes(data)) for key, data in models.items()}
    reference = Reference(
        variants.onnx["fp32"], variants.images, source.input_shape, source.class_names, source.task
    )
    for key, name in files.items():
        (out / name).write_bytes(models[key])
    with torch.no_grad():
        section = fmt.export(variants.model, reference, options, out)
    result = card.build_card(
        source=source,
        options=options,
        complexity=module_complexity(target.network, source),
        threshold=target.threshold,
        files=files,
        sizes=sizes,
        timings=timings,
        predicted=table.result(measured),
        parity=variants.parity,
        clinical=clinical,
        calibration=variants.calibration,
        pruning=pruning,
        unpruned_complexity=module_complexity(source.network, source) if pruning is not None else None,
        formats={options.format: section} if section is not None else {},
    )
    card.write_card(result, out)
    return result


def _pruned(source: Source, options: ExportOptions) -> tuple[Source, dict[str, Any]]:
    """The pruned (and, with data, fine-tuned) network with its operating threshold, and what was done."""
    from nas.export.prune import finetune, finetune_config, prune_channels

    network = prune_channels(source.network, options.prune, source.input_shape, options.round_to)
    info: dict[str, Any] = {
        "ratio": options.prune,
        "round_to": options.round_to,
        "conv_widths": [_widths(source.network), _widths(network)],
        "finetune": None,
    }
    threshold = source.threshold
    if source.splits is not None and options.finetune_epochs > 0:
        config = finetune_config(source.trained, options.finetune_epochs, options.threads, options.seed)
        info["finetune"] = finetune(network, source.splits, config)
        if source.task == "binary":  # a different model: its operating point is chosen again on val
            threshold = _val_threshold(network, source, config)
    return replace(source, network=network, threshold=threshold), info


def _widths(network: nn.Module) -> list[int]:
    """Output channels of every conv in order: what the pruned network looks like, as a list."""
    return [m.out_channels for m in network.modules() if isinstance(m, nn.Conv1d | nn.Conv2d)]


def _val_threshold(network: nn.Module, source: Source, config: Any) -> float | None:
    from nas.evaluate.loop import predict_probs, split_metrics, to_tensor

    assert source.splits is not None
    val = source.splits.val
    probs = predict_probs(network, to_tensor(val, "cpu"), source.mean, source.std, source.task)
    return split_metrics(val.labels, probs, source.task, config).get("threshold")


def module_complexity(network: nn.Module, source: Source) -> dict[str, Any]:
    """Params, fvcore MACs, peak activation memory and the energy estimates of a (possibly pruned)
    module, measured as ``nas.metrics.measure`` measures an arch."""
    from nas.metrics import count_macs, count_params, energy_estimate_mj, profile, trace

    network, shape = network.eval(), (source.in_chans, source.input_size, source.arch.dims)
    params = count_params(network)
    macs, _, _ = count_macs(network, *shape)
    activations = profile(trace(network, *shape), bytes_per_element=4)
    traffic = activations.traffic_bytes
    return {
        "params": params,
        "macs": macs,
        "peak_activation_bytes": activations.peak_bytes,
        "activation_traffic_bytes": traffic,
        "energy_mj_estimate_fp32": energy_estimate_mj(macs, params, traffic, dtype="fp32"),
        "energy_mj_estimate_int8": energy_estimate_mj(macs, params, traffic, dtype="int8"),
    }
