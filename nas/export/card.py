"""The model card written beside every export: ``model_card.json`` (every figure) and ``model_card.md``
(the same for people). It states what the model is, what it costs, how fast it measured against what
the latency table predicted, how well it classifies in fp32 and INT8, where the data came from and under
which licence, and what the model must not be used for.

``ModelCard`` is the record; this module is the one that builds, writes and reads it. Its JSON keys are a
contract (scripts read ``threshold`` and ``deployment_contract``): a field not given (``int8``,
``pruning``) is left out of the file, and every format adds its own section under the name it is
registered under in ``nas.export.FORMATS`` (``tvm``, ``executorch``), rendered by the format itself.
"""

from __future__ import annotations

import json
import math
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nas.data import dataset_card
from nas.errors import DataError, first_problem
from nas.export import FORMATS
from nas.export.format import ExportOptions, input_kind
from nas.export.source import Source
from nas.onnxrt import input_name

SCHEMA = "nas-model-card/1"
CARD_JSON, CARD_MD = "model_card.json", "model_card.md"
ENERGY_NOTE = "ESTIMATE from operation counts (Horowitz 2014, 45 nm), not a measurement"
INTENDED_USE = (
    "Research prototype for studying hardware-aware architecture search for edge medical imaging. "
    "Not a medical device; not for clinical decisions, diagnosis or triage."
)
LIMITATIONS = (
    "Trained and evaluated on one public benchmark at low resolution; no external or prospective validation.",
    "Metrics are from a single split and carry sampling uncertainty; subgroup performance was not assessed.",
    "The operating threshold was chosen on the validation split and may not transfer to other populations "
    "or scanners.",
    "The energy figure is a first-order estimate from operation counts (Horowitz 2014, 45 nm), not a "
    "measurement.",
)

Deltas = dict[str, dict[str, float]]  # split -> metric -> new - old


class FileEntry(BaseModel):
    file: str
    bytes: int
    weight_bytes: int  # initializers only (see nas.export.onnx.weight_bytes)


class DeploymentContract(BaseModel):
    """What a deployment feeds the model and reads from it."""

    input: dict[str, Any]
    normalization: dict[str, Any]
    output: dict[str, Any]
    probabilities: str
    class_names: list[str]
    threshold: float | None
    threshold_applies_to: str | None
    metadata: str


class Complexity(BaseModel):
    params: int
    macs: int
    peak_activation_bytes: int
    activation_traffic_bytes: int
    energy_mj_estimate_fp32: float
    energy_mj_estimate_int8: float
    energy_note: str


class Latency(BaseModel):
    measured_ms: dict[str, dict[str, Any]]  # variant -> Timing.to_json()
    how: str
    cpu: str
    machine: str
    predicted: dict[str, Any]  # ms (None: no prediction, then note), table, device, drift...


class Int8Section(BaseModel):
    calibration: dict[str, Any]
    size_ratio: float
    weight_size_ratio: float
    latency_ratio: float
    metric_deltas: Deltas | None


class PruningSection(BaseModel):
    ratio: float
    round_to: int | None
    conv_widths: list[list[int]]  # unpruned, pruned
    finetune: dict[str, Any] | None
    params: list[int]  # unpruned, pruned
    params_ratio: float
    macs: list[int]
    latency_ratio: float
    metric_deltas: Deltas | None


class ModelCard(BaseModel):
    """Every figure of one export; other top-level keys are format sections (a dict each). Only
    ``int8`` and ``pruning`` may be left out (exports without INT8 or pruning), and ``classes`` (cards
    written before it)."""

    model_config = ConfigDict(extra="allow", validate_by_name=True, validate_by_alias=True)
    __pydantic_extra__: dict[str, dict[str, Any]] = Field(init=False)

    schema_: str = Field(alias="schema")
    created: str
    arch: str
    origin: str
    pruned: bool
    threshold: float | None  # the operating point, also in deployment_contract: scripts read it here
    classes: list[str] | None = None  # the dataset's labels in output order, as it names them
    files: dict[str, FileEntry]
    deployment_contract: DeploymentContract
    complexity: Complexity
    latency: Latency
    parity: dict[str, float]
    clinical: dict[str, dict[str, dict[str, Any]]] | None  # variant -> split -> metric
    clinical_note: str | None
    training: dict[str, Any] | None
    dataset: dict[str, Any]
    intended_use: str
    limitations: list[str]
    int8: Int8Section | None = None
    pruning: PruningSection | None = None

    def to_json(self) -> dict[str, Any]:
        """The card as written to ``model_card.json`` (fields never given are left out)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


def format_sections(card: ModelCard) -> dict[str, dict[str, Any]]:
    """The sections formats added, by the name each format is registered under."""
    return dict(card.model_extra or {})


def build_card(
    *,
    source: Source,
    options: ExportOptions,
    complexity: dict[str, Any],
    threshold: float | None,
    files: dict[str, str],
    sizes: dict[str, tuple[int, int]],
    timings: dict[str, dict[str, Any]],
    predicted: dict[str, Any],
    parity: dict[str, float],
    clinical: dict[str, Any] | None,
    calibration: dict[str, Any] | None,
    pruning: dict[str, Any] | None,
    unpruned_complexity: dict[str, Any] | None,
    formats: dict[str, dict[str, Any]],
) -> ModelCard:
    """Every figure of one export, ``formats`` the sections the formats returned (by registered name)."""
    import onnxruntime

    from nas.latency.table import cpu_model

    positive = source.class_names[1] if source.task == "binary" else None
    trained = source.trained or {}
    dataset = trained.get("dataset") or (source.splits.name if source.splits is not None else None)
    card: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "arch": source.arch.to_str(),
        "origin": source.origin,
        "pruned": pruning is not None,
        "threshold": threshold,  # the operating point, also in deployment_contract: scripts read it here
        "classes": source.class_names,
        "files": {
            key: {"file": name, "bytes": sizes[key][0], "weight_bytes": sizes[key][1]}
            for key, name in files.items()
        },
        "deployment_contract": {
            "input": input_section(source.input_shape),
            "normalization": {"inside_graph": True, "mean": source.mean, "std": source.std},
            "output": {"name": "logits", "shape": ["batch", source.num_classes]},
            "probabilities": "sigmoid per label" if source.task == "multi-label" else "softmax of the logits",
            "class_names": source.class_names,
            "threshold": threshold,
            "threshold_applies_to": f"probability of class 1 ('{positive}')" if positive else None,
            "metadata": "class names, threshold, normalization and task are in the ONNX metadata_props",
        },
        "complexity": {**complexity, "energy_note": ENERGY_NOTE},
        "latency": {
            "measured_ms": timings,
            "how": f"ONNX Runtime {onnxruntime.__version__} CPU, 1 thread, batch 1, variants interleaved "
            f"round-robin, median of {options.rounds} rounds",
            "cpu": cpu_model(),
            "machine": platform.machine(),
            "predicted": predicted,
        },
        "parity": {**parity, "tolerance": 1e-4},
        "clinical": clinical,
        "clinical_note": None if clinical is not None else f"no data to score on: {source.data_note}",
        "training": {k: trained[k] for k in ("best_epoch", "val", "test", "config") if k in trained} or None,
        "dataset": dataset_card(dataset),
        "intended_use": INTENDED_USE,
        "limitations": list(LIMITATIONS),
    }
    if calibration is not None:
        card["int8"] = {
            "calibration": calibration,
            "size_ratio": sizes["int8"][0] / sizes["fp32"][0],
            "weight_size_ratio": sizes["int8"][1] / sizes["fp32"][1],
            "latency_ratio": _ratio(timings, "int8", "fp32"),
            "metric_deltas": _deltas(clinical, "int8", "fp32"),
        }
    if pruning is not None and unpruned_complexity is not None:
        card["pruning"] = {
            **pruning,
            "params": [unpruned_complexity["params"], complexity["params"]],
            "params_ratio": complexity["params"] / unpruned_complexity["params"],
            "macs": [unpruned_complexity["macs"], complexity["macs"]],
            "latency_ratio": _ratio(timings, "fp32", "unpruned_fp32"),
            "metric_deltas": _deltas(clinical, "fp32", "unpruned_fp32"),
        }
    taken = sorted(set(formats) & {*card, *ModelCard.model_fields})
    if taken:
        raise ValueError(f"format section(s) {', '.join(taken)} would replace the card's own")
    return ModelCard.model_validate({**card, **formats})


def input_section(input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The contract's input: images (``image``) float32 NCHW in [0, 1]; signals (``signal``) float32 NCL,
    raw (range None)."""
    kind = input_kind(input_shape)
    return {
        "name": input_name(input_shape),
        "dtype": "float32",
        "layout": kind.layout,
        "shape": ["batch", *input_shape[1:]],
        "range": kind.range,
        "values": kind.words,
    }


def _ratio(timings: dict[str, dict[str, Any]], num: str, den: str) -> float:
    return timings[num]["median_ms"] / timings[den]["median_ms"]


def _deltas(clinical: dict[str, Any] | None, new: str, old: str) -> dict[str, dict[str, float]] | None:
    """``new - old`` of every metric, per split (positive AUC delta: the new model is better)."""
    if clinical is None:
        return None
    return {
        split: {k: v - clinical[old][split][k] for k, v in clinical[new][split].items() if k != "threshold"}
        for split in ("val", "test")
    }


def write_card(card: ModelCard, out_dir: Path) -> None:
    """``model_card.json`` and ``model_card.md`` in ``out_dir``."""
    (out_dir / CARD_JSON).write_text(json.dumps(card.to_json(), indent=2, allow_nan=True) + "\n")
    (out_dir / CARD_MD).write_text(render_markdown(card))


def read_card(path: Path) -> ModelCard:
    """The card in ``path`` (a ``model_card.json`` or the folder holding one)."""
    path = Path(path)
    path = path / CARD_JSON if path.is_dir() else path
    try:
        return ModelCard.model_validate(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read model card {path}: {exc}") from None
    except ValidationError as exc:
        where, problem = first_problem(exc)
        raise DataError(f"{path} is not a model card ({where}: {problem})") from None


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def render_markdown(card: ModelCard) -> str:
    c, lat, contract = card.complexity, card.latency, card.deployment_contract
    lines = [
        "# Model card",
        "",
        f"**Intended use.** {card.intended_use}",
        "",
        f"- Architecture: `{card.arch}`" + (" (channel-pruned)" if card.pruned else ""),
        f"- Origin: {card.origin}",
        "- Files: " + ", ".join(f"`{f.file}` ({f.bytes:,} bytes)" for f in card.files.values()),
        "",
        "## Deployment contract",
        "",
        f"- Input `{contract.input['name']}`: float32, {contract.input['layout']} {contract.input['shape']}, "
        f"{input_kind(contract.input['shape']).words}.",
        f"- Normalization is inside the graph: (x - {contract.normalization['mean']}) / "
        f"{contract.normalization['std']}.",
        f"- Output `logits` {contract.output['shape']}; probabilities: {contract.probabilities}.",
        f"- Classes: {', '.join(contract.class_names)}.",
        f"- Operating threshold: {_num(contract.threshold)}"
        + (f" on the {contract.threshold_applies_to}." if contract.threshold_applies_to else "."),
        f"- {contract.metadata}.",
        "",
        "## Cost",
        "",
        f"- Parameters: {c.params:,}; MACs (fvcore): {c.macs:,}",
        f"- Peak activation memory: {c.peak_activation_bytes / 1024:,.1f} KiB (fp32)",
        f"- Energy per image, {c.energy_note}: {c.energy_mj_estimate_fp32:.4f} mJ fp32, "
        f"{c.energy_mj_estimate_int8:.4f} mJ int8",
        f"- Latency measured on this machine ({lat.cpu}; {lat.how}): "
        + ", ".join(f"{k} {v['median_ms']:.3f} ms" for k, v in lat.measured_ms.items()),
        "- Latency predicted by the table: "
        + (_predicted(lat.predicted) if lat.predicted["ms"] is not None else lat.predicted["note"]),
        f"- Parity vs PyTorch (fp32): max abs logit difference {card.parity['fp32_max_abs_diff']:.2e} "
        f"(tolerance {card.parity['tolerance']:g})",
    ]
    lines += _clinical_table(card)
    if card.int8 is not None:
        lines += _comparison(card.int8, "INT8 vs fp32")
    if card.pruning is not None:
        lines += _comparison(card.pruning, "Pruned vs unpruned")
    for name, section in format_sections(card).items():
        lines += FORMATS.get(name).card_lines(section)
    data = card.dataset
    lines += ["", "## Data", "", f"- Dataset: {data['name'] or 'none'}; licence: {data['licence']}"]
    lines += [f"- Cite: {text}" for text in data.get("citation", [])]
    lines += ["", "## Limitations", "", *(f"- {text}" for text in card.limitations), ""]
    return "\n".join(lines)


def _predicted(p: dict[str, Any]) -> str:
    text = f"{p['ms']:.3f} ms as built ({p['table']})"
    if "ms_drift_corrected" in p:
        text += (
            f"; {p['ms_drift_corrected']:.3f} ms with this machine's drift since ({p['drift_vs_build']:.2f}x)"
        )
    return text


def _clinical_table(card: ModelCard) -> list[str]:
    clinical = card.clinical
    if clinical is None:
        return ["", "## Clinical metrics", "", f"- {card.clinical_note}"]
    names = ("auc", "accuracy", "sensitivity", "specificity", "balanced_accuracy", "ppv", "npv", "ece")
    names = tuple(n for n in names if n in clinical["fp32"]["test"])
    lines = ["", "## Clinical metrics (ONNX Runtime)", "", "| model | split | " + " | ".join(names) + " |"]
    lines.append("|---" * (len(names) + 2) + "|")
    for model, splits in clinical.items():
        for split, values in splits.items():
            lines.append(f"| {model} | {split} | " + " | ".join(_num(values[n]) for n in names) + " |")
    return lines


def _comparison(section: Int8Section | PruningSection, title: str) -> list[str]:
    lines = ["", f"## {title}", ""]
    for key in ("size_ratio", "weight_size_ratio", "latency_ratio", "params_ratio"):
        if hasattr(section, key):
            lines.append(f"- {key.replace('_', ' ')}: {getattr(section, key):.3f}")
    deltas = section.metric_deltas
    if deltas:
        lines.append("- test deltas: " + ", ".join(f"{k} {v:+.4f}" for k, v in deltas["test"].items()))
    return lines
