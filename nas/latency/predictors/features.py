"""What a learned predictor sees of an arch: its blocks, walked as the tables walk them.

Every block of ``nas.latency.keys.arch_keys`` (the one walk tables use) falls in an op group: ``stem``,
``head``, or its block type with ``_se`` where it squeezes and excites (``ir``, ``ir_se``, ``ds``, ...).
Per group the features are the block count and the sums of kernel, expansion, output activations
(thousands of elements) and MACs (millions, fvcore's count of the block alone, ``nas.metrics``), with
the whole net's MACs (also by layer kind, and the cost terms below), parameters and block count. A
block's figures depend on its key only, so they are computed once per key.

``layer_macs`` splits a net's MACs by layer kind (pointwise and depthwise convolutions, the rest): an
MBConv block mixes the first two in proportions that vary with its kernel and expansion, and devices
differ most in what each costs per MAC. ``cost_terms`` adds what else a device's cost may follow (the
``adapted`` predictor's terms): pointwise MACs weighted by the channels they reduce over, and the
number of convolution layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

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
    features.update({f"macs.{kind}": macs for kind, macs in layer_macs(arch, settings).items()})
    terms = cost_terms(arch, settings)
    features.update({"macs.pointwise_x_cin": terms["pointwise_x_cin"], "conv_layers": terms["conv_layers"]})
    return features


LAYER_KINDS = ("pointwise", "depthwise", "other")
COST_TERMS = ("pointwise", "depthwise", "pointwise_x_cin", "conv_layers")


def layer_macs(arch: ArchSpec, settings: Mapping[str, Any]) -> dict[str, float]:
    """The net's MACs (millions) in convolution and linear layers, by ``LAYER_KINDS``."""
    totals = dict.fromkeys(LAYER_KINDS, 0.0)
    for layer in _layers(arch, settings):
        totals[layer.kind] += layer.macs
    return totals


def cost_terms(arch: ArchSpec, settings: Mapping[str, Any]) -> dict[str, float]:
    """What a device's cost may follow beyond a table's blocks, by ``COST_TERMS``: MACs (millions) of
    pointwise and of depthwise convolutions; pointwise MACs times the channels each reduces over
    (a naive, unscheduled 1x1 conv reads its input strided across channels, so its cost per MAC grows
    with them: untuned TVM); and the number of convolution layers (a runtime's cost per op)."""
    terms = dict.fromkeys(COST_TERMS, 0.0)
    for layer in _layers(arch, settings):
        if layer.kind in ("pointwise", "depthwise"):
            terms[layer.kind] += layer.macs
        if layer.kind == "pointwise":
            terms["pointwise_x_cin"] += layer.macs * layer.reduced_channels
        terms["conv_layers"] += int(layer.conv)
    return terms


class Layer(NamedTuple):
    kind: str  # of LAYER_KINDS
    macs: float  # millions
    reduced_channels: int  # input channels each output sums over (in / groups; a linear layer's inputs)
    conv: bool  # else linear


def _layers(arch: ArchSpec, settings: Mapping[str, Any]) -> list[Layer]:
    keys = arch_keys(arch, settings["in_chans"], settings["input_size"], settings["num_classes"])
    return [layer for key, site in keys for layer in _block_layers(key, site, settings["num_classes"])]


@lru_cache(maxsize=65536)
def _block_layers(key: str, site: BlockSite, num_classes: int) -> tuple[Layer, ...]:
    """Each conv and linear layer of the block alone, from one forward pass."""
    import torch
    from torch import nn

    found: list[Layer] = []

    def record(layer: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        if isinstance(layer, nn.Linear):
            found.append(Layer("other", output.numel() * layer.in_features / 1e6, layer.in_features, False))
            return
        assert isinstance(layer, nn.Conv1d | nn.Conv2d)
        per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        if layer.groups > 1 and layer.groups == layer.in_channels:
            kind = "depthwise"
        elif math.prod(layer.kernel_size) == 1:
            kind = "pointwise"
        else:
            kind = "other"
        found.append(Layer(kind, output.numel() * per_output / 1e6, layer.in_channels // layer.groups, True))

    module = block_module(site, num_classes)
    layers = [m for m in module.modules() if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear)]
    hooks = [layer.register_forward_hook(record) for layer in layers]
    try:
        with torch.no_grad():
            module(torch.zeros(1, site.in_channels, *(site.in_size,) * site.dims))
    finally:
        for hook in hooks:
            hook.remove()
    return tuple(found)


@lru_cache(maxsize=65536)
def _block_cost(key: str, site: BlockSite, num_classes: int) -> tuple[float, float]:
    """MACs and parameters (millions, thousands) of the block alone; cached by its key."""
    from nas.metrics.complexity import count_macs, count_params

    module = block_module(site, num_classes)
    macs = count_macs(module, site.in_channels, site.in_size, site.dims)[0]
    return macs / 1e6, count_params(module) / 1e3
