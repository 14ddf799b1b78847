"""What a learned predictor sees of an arch: its blocks, walked as the tables walk them.

Every block of ``nas.latency.keys.arch_keys`` (the one walk tables use) falls in an op group: ``stem``,
``head``, or its block type with ``_se`` where it squeezes and excites (``ir``, ``ir_se``, ``ds``, ...).
Per group the features are the block count and the sums of kernel, expansion, output activations
(thousands of elements) and MACs (millions, fvcore's count of the block alone, ``nas.metrics``), with
the whole net's MACs, parameters and block count. A block's figures depend on its key only, so they are
computed once per key.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from nas.arch import ArchSpec, BlockSite
from nas.latency.keys import arch_keys, block_module


def block_group(site: BlockSite) -> str:
    """``stem``, ``head``, or the block type, ``_se`` appended where the block has squeeze-excite."""
    if site.section in ("stem", "head"):
        return site.section
    block = site.block
    return f"{block.type}_se" if block.has("se") and block.se else block.type


def arch_features(arch: ArchSpec, settings: Mapping[str, Any]) -> dict[str, float]:
    """Named features of ``arch`` measured for a table's ``settings`` (input size, channels, classes)."""
    features: dict[str, float] = {"blocks": 0.0, "macs": 0.0, "params": 0.0}
    keys = arch_keys(arch, settings["in_chans"], settings["input_size"], settings["num_classes"])
    for key, site in keys:
        macs, params = _block_cost(key, site, settings["num_classes"])
        group = block_group(site)
        block = site.block
        values = {
            "n": 1.0,
            "kernel": float(block.kernel or 0) if block.has("kernel") else 0.0,
            "expand": float(block.expand or 0) if block.has("expand") else 0.0,
            "act": site.out_channels * site.out_size**site.dims / 1e3,
            "macs": macs,
        }
        for name, value in values.items():
            features[f"{group}.{name}"] = features.get(f"{group}.{name}", 0.0) + value
        features["blocks"] += 1
        features["macs"] += macs
        features["params"] += params
    return features


@lru_cache(maxsize=65536)
def _block_cost(key: str, site: BlockSite, num_classes: int) -> tuple[float, float]:
    """MACs and parameters (millions, thousands) of the block alone; cached by its key."""
    from nas.metrics.complexity import count_macs, count_params

    module = block_module(site, num_classes)
    macs = count_macs(module, site.in_channels, site.in_size, site.dims)[0]
    return macs / 1e6, count_params(module) / 1e3
