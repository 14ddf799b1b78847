"""Import published per-layer latency tables for the FBNet space, so a search can target a device nobody
here owns (the phones and boards of FBNet's and HW-NAS-Bench's lookup tables).

Accepted layouts, milliseconds for one input image:

* CSV with a header row ``layer,op,latency_ms`` and optionally a ``device`` column (then ``--device``
  picks the rows). ``layer`` is ``0``..``21`` (FBNet's 22 searchable layers in network order, as
  ``search_spaces/fbnet.yaml`` lays them out), ``stem`` (the first 3x3 conv) or ``head`` (last 1x1 conv,
  pooling and classifier); ``op`` is FBNet's name: ``k3_e1``, ``k3_e1_g2``, ``k3_e3``, ``k3_e6``,
  ``k5_e1``, ``k5_e1_g2``, ``k5_e3``, ``k5_e6``, ``skip`` (ignored on the stem and head rows).
* JSON, as lookup tables are usually shipped: ``{"<layer>": {"<op>": ms}}`` or, for several devices,
  ``{"<device>": {"<layer>": {"<op>": ms}}}``; layers may also be written ``layer_0`` .. ``layer_21``, and
  the stem and head as ``{"stem": ms}`` or ``{"stem": {"conv": ms}}``.

Every op of every layer must be present (a ``skip`` that is an identity costs nothing and may be left
out). Layers whose blocks are identical share one table entry: their mean, with the range as spread.
An imported table has no calibration (nobody here measured whole networks on that device), so it
predicts the plain sum of layers, which is how these tables were published to be used.
"""

from __future__ import annotations

import csv
import json
import shlex
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from nas.latency.keys import block_key, block_site
from nas.latency.table import LatencyTable
from nas.space import SearchSpace

FBNET_OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
FIXED_LAYERS = ("stem", "head")


def import_fbnet_table(
    path: str | Path,
    device: str,
    input_size: int = 224,
    in_chans: int = 3,
    num_classes: int = 1000,
    space: str = "fbnet",
) -> LatencyTable:
    """Read a per-layer FBNet table (layouts above) into this project's table format."""
    path = Path(path)
    rows = read_layer_table(path, device)
    fbnet = SearchSpace.from_yaml(space)
    samples: dict[str, list[float]] = defaultdict(list)

    def add(site, layer: str, op: str) -> None:
        if (layer, op) not in rows:
            raise ConfigError(f"{path}: no latency for layer {layer} op {op}")
        samples[block_key(site, "fp32", num_classes)].append(rows[(layer, op)])

    if len(fbnet.stem_strides) > 1:
        raise ConfigError(f"space '{fbnet.name}' chooses its stem stride; FBNet tables have one stem")
    stem = block_site(fbnet.stem, in_chans, input_size)
    add(stem, "stem", "")
    chs, size, layer = stem.out_channels, stem.out_size, 0
    for stage in fbnet.stages:
        if (
            len(stage.widths) > 1
            or len(stage.strides) > 1
            or stage.dims
            or stage.min_layers != stage.max_layers
        ):
            raise ConfigError(f"space '{fbnet.name}' stage '{stage.name}' is not a per-layer op choice")
        out, after = stage.config.channels, size
        for slot in range(stage.max_layers):
            stride, in_chs, in_size = (stage.strides[0], chs, size) if slot == 0 else (1, out, after)
            for op in stage.ops:
                block = stage.realize({"op": op.token}, stride, in_chs, out)
                if block is None:
                    continue  # an identity skip: no block, no cost
                site = block_site(block, in_chs, in_size)
                add(site, str(layer), op.token.removeprefix("ir_"))
                after = site.out_size
            layer += 1
        chs, size = out, after
    add(block_site(fbnet.head, chs, size), "head", "")
    if layer != 22 and space == "fbnet":
        raise ConfigError(f"space '{space}' has {layer} searchable layers, FBNet tables have 22")
    entries = {
        key: {"median_ms": sum(v) / len(v), "spread_ms": max(v) - min(v), "rounds": len(v)}
        for key, v in samples.items()
    }
    settings = {
        "space": fbnet.name,
        "space_config": fbnet.config.model_dump(mode="json"),
        "input_size": input_size,
        "in_chans": in_chans,
        "num_classes": num_classes,
        "dtype": "fp32",
    }
    provenance = {
        "device": device,
        "backend": "imported",
        "source": str(path),
        "source_layout": "FBNet per-layer table (layer, op, ms)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(sys.argv),
        "calibrated": False,
    }
    return LatencyTable(settings, provenance, entries)


def read_layer_table(path: Path, device: str) -> dict[tuple[str, str], float]:
    """``(layer, op) -> ms`` from a CSV or JSON file; stem and head rows have op ``''``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    raw = _read_json(path, text, device) if path.suffix.lower() == ".json" else _read_csv(path, text, device)
    rows: dict[tuple[str, str], float] = {}
    for layer, op, value in raw:
        layer = layer.strip().removeprefix("layer_")
        op = "" if layer in FIXED_LAYERS else op.strip()
        if layer not in FIXED_LAYERS and not (layer.isdigit() and int(layer) < 22):
            raise ConfigError(f"{path}: unknown layer '{layer}' (0-21, stem or head)")
        if op and op not in FBNET_OPS:
            raise ConfigError(
                f"{path}: unknown op '{op}' at layer {layer} (FBNet ops: {', '.join(FBNET_OPS)})"
            )
        try:
            ms = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: latency '{value}' of layer {layer} op {op} is not a number") from None
        if not ms >= 0:
            raise ConfigError(f"{path}: latency of layer {layer} op {op} must be >= 0, got {value}")
        rows[(str(int(layer)) if layer.isdigit() else layer, op)] = ms
    return rows


def _read_csv(path: Path, text: str, device: str) -> list[tuple[str, str, Any]]:
    reader = csv.DictReader(text.splitlines())
    missing = {"layer", "op", "latency_ms"} - set(reader.fieldnames or [])
    if missing:
        raise ConfigError(
            f"{path}: CSV needs columns layer, op, latency_ms (missing {', '.join(sorted(missing))})"
        )
    rows = [r for r in reader if "device" not in r or r["device"] == device]
    if not rows:
        raise ConfigError(f"{path}: no rows for device '{device}'")
    return [(r["layer"], r["op"] or "", r["latency_ms"]) for r in rows]


def _read_json(path: Path, text: str, device: str) -> list[tuple[str, str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of layers")
    if device in data and isinstance(data[device], dict):
        data = data[device]
    rows = []
    for layer, ops in data.items():
        if isinstance(ops, dict):
            rows += [(layer, op, ms) for op, ms in ops.items()]
        else:
            rows.append((layer, "", ops))
    return rows
