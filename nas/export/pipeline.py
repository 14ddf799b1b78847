"""One export, end to end: prune (optional), export ONNX and check it, quantize (optional), time every
variant side by side, score every variant on the data, hand the model to the chosen format, and write
the files and the model card.

ONNX fp32 is always written: it is the reference every other figure is measured against (parity,
INT8 deltas, pruning deltas, the latency of other formats). Formats are plugins (``nas.export.FORMATS``,
``nas.export.format.ExportFormat``): this module knows none by name. Everything is written into a staging
folder beside the output folder and moved into place only once every step has succeeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.errors import UsageError
from nas.export import FORMATS
from nas.export.format import FORMAT_OPTIONS, ExportFormat, ExportOptions, Reference
from nas.export.onnx import Normalized, export_onnx, parity, weight_bytes
from nas.export.predicted import predict
from nas.export.source import Source
from nas.export.staging import staged
from nas.latency.backends.base import Settings

FP32_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
PARITY_IMAGES = 5


def check_format(options: ExportOptions) -> ExportFormat:
    """The format ``options`` name, once it has accepted them: one-line ``NasError``s for an unknown
    format, an option it does not take, or one it cannot use (before anything is loaded or built)."""
    fmt = FORMATS.get(options.format)
    for name in FORMAT_OPTIONS:
        if getattr(options, name) not in (None, False) and name not in fmt.options:
            takers = [other for other in FORMATS if name in FORMATS.get(other).options]
            listed = " or ".join([", ".join(takers[:-1]), takers[-1]] if len(takers) > 1 else takers)
            raise UsageError(f"--{name} applies to --format {listed} only, not {options.format}")
    fmt.check(options)
    return fmt


def run_export(source: Source, options: ExportOptions) -> dict[str, Any]:
    """Export ``source`` as ``options`` say; returns the model card (also written beside the files)."""
    from nas.export import card, runtime

    fmt = check_format(options)
    table = predict(source, options.table, pruned=options.prune is not None)  # a bad table fails early
    splits = source.splits
    network, threshold, pruning = source.network, source.threshold, None
    if options.prune is not None:
        network, threshold, pruning = _pruned(source, options)
    meta = _metadata(source, threshold, options.prune)
    model = Normalized(network, source.mean, source.std).eval()
    fp32 = export_onnx(model, source.input_shape, {**meta, "precision": "fp32"})
    check = parity_images(source)
    parities = {"fp32_max_abs_diff": max(parity(model, fp32, check[:1]), parity(model, fp32, check))}
    models = {"fp32": fp32}
    calibration = None
    if options.int8:
        models["int8"], calibration = _quantized(fp32, source, options, {**meta, "precision": "int8"})
        parities["int8_vs_fp32_max_abs_logit_diff"] = float(
            np.abs(runtime.logits(runtime.session(models["int8"]), check) - model_logits(model, check)).max()
        )
    if pruning is not None:
        original = Normalized(source.network, source.mean, source.std).eval()
        models["unpruned_fp32"] = export_onnx(original, source.input_shape, meta)
    settings = Settings(rounds=options.rounds, seed=options.seed)
    measured = runtime.time_models({**models, **table.models()}, source.input_shape, settings)
    timings = {k: measured[k].to_json() for k in models}
    clinical = _clinical(source, models, threshold) if splits is not None else None
    files = {"fp32": FP32_FILE, **({"int8": INT8_FILE} if "int8" in models else {})}
    sizes = {key: (len(data), weight_bytes(data)) for key, data in models.items()}
    reference = Reference(fp32, check, source.input_shape, source.class_names, source.task)
    with staged(Path(options.out_dir or source.default_out)) as out:
        for key, name in files.items():
            (out / name).write_bytes(models[key])
        with torch.no_grad():
            section = fmt.export(model, reference, options, out)
        result = card.build_card(
            source=source,
            options=options,
            complexity=module_complexity(network, source),
            threshold=threshold,
            files=files,
            sizes=sizes,
            timings=timings,
            predicted=table.result(measured),
            parity=parities,
            clinical=clinical,
            calibration=calibration,
            pruning=pruning,
            unpruned_complexity=module_complexity(source.network, source) if pruning is not None else None,
            formats={fmt.name: section} if section is not None else {},
        )
        card.write_card(result, out)
    return result.to_json()


def _quantized(
    fp32: bytes, source: Source, options: ExportOptions, meta: dict[str, Any]
) -> tuple[bytes, dict[str, Any]]:
    """The INT8 model, calibrated on training images (generated ones when there is no data)."""
    from nas.export.quantize import calibration_images, quantize_int8

    train = source.splits.train.images if source.splits is not None else None
    images = calibration_images(train, options.calibration_images, source.input_shape[1:], options.seed)
    int8 = quantize_int8(fp32, images, options.calibration_method, meta)
    return int8, {
        "images": len(images),
        "source": "training split" if train is not None else "generated images (no data)",
        "method": options.calibration_method,
    }


def model_logits(model: nn.Module, images01: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(images01)).numpy()


def _pruned(source: Source, options: ExportOptions) -> tuple[nn.Module, float | None, dict[str, Any]]:
    """The pruned (and, with data, fine-tuned) network, its operating threshold, and what was done."""
    from nas.export.prune import finetune, finetune_config, prune_channels

    network = prune_channels(
        source.network, options.prune, source.in_chans, source.input_size, options.round_to
    )
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
    return network, threshold, info


def _widths(network: nn.Module) -> list[int]:
    """Output channels of every conv in order: what the pruned network looks like, as a list."""
    return [m.out_channels for m in network.modules() if isinstance(m, nn.Conv2d)]


def _val_threshold(network: nn.Module, source: Source, config: Any) -> float | None:
    from nas.evaluate.loop import predict_probs, split_metrics, to_tensor

    assert source.splits is not None
    val = source.splits.val
    probs = predict_probs(network, to_tensor(val, "cpu"), source.mean, source.std, source.task)
    return split_metrics(val.labels, probs, source.task, config).get("threshold")


def _metadata(source: Source, threshold: float | None, pruned: float | None) -> dict[str, Any]:
    """What a deployment reads from the file itself (the ONNX metadata_props)."""
    return {
        "arch": source.arch.to_str(),
        "class_names": source.class_names,
        "threshold": threshold,
        "task": source.task,
        "input": f"float32 NCHW [batch, {source.in_chans}, {source.input_size}, {source.input_size}], [0, 1]",
        "normalization": {"mean": source.mean, "std": source.std, "inside_graph": True},
        "output": "logits",
        "pruned_channel_ratio": pruned,
        "not_a_medical_device": "research prototype; not for clinical decisions",
    }


def parity_images(source: Source) -> np.ndarray:
    """Images for parity checks: real test images when there is data, else generated ones."""
    from nas.export.quantize import calibration_images
    from nas.export.runtime import to_input

    if source.splits is not None:
        return to_input(source.splits.test.images[:PARITY_IMAGES])
    return calibration_images(None, PARITY_IMAGES, source.input_shape[1:], seed=1)


def _clinical(source: Source, models: dict[str, bytes], threshold: float | None) -> dict[str, Any]:
    """Every clinical metric of every exported variant on val and test, run through ONNX Runtime at the
    exported threshold (the unpruned reference at its own, original threshold)."""
    from nas.export.runtime import session, split_probs
    from nas.metrics.clinical import clinical_metrics

    assert source.splits is not None
    result: dict[str, Any] = {}
    for name, data in models.items():
        sess = session(data)
        at = source.threshold if name == "unpruned_fp32" else threshold
        result[name] = {
            split: clinical_metrics(
                getattr(source.splits, split).labels,
                split_probs(sess, getattr(source.splits, split), source.task),
                at,
            )
            for split in ("val", "test")
        }
    return result


def module_complexity(network: nn.Module, source: Source) -> dict[str, Any]:
    """Params, fvcore MACs, peak activation memory and the energy estimates of a (possibly pruned)
    module, measured as ``nas.metrics.measure`` measures an arch."""
    from nas.metrics import count_macs, count_params, energy_estimate_mj, profile, trace

    network = network.eval()
    params = count_params(network)
    macs, _, _ = count_macs(network, source.in_chans, source.input_size)
    activations = profile(trace(network, source.in_chans, source.input_size), bytes_per_element=4)
    traffic = activations.traffic_bytes
    return {
        "params": params,
        "macs": macs,
        "peak_activation_bytes": activations.peak_bytes,
        "activation_traffic_bytes": traffic,
        "energy_mj_estimate_fp32": energy_estimate_mj(macs, params, traffic, dtype="fp32"),
        "energy_mj_estimate_int8": energy_estimate_mj(macs, params, traffic, dtype="int8"),
    }
