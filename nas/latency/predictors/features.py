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
``adapted`` predictor's terms): pointwise MACs weighted by the channels they reduce over, the number of
convolution layers and of operators, the elements squeeze-excite rescales, the convolutions' MACs with
channels padded to ``SIMD_LANES``, and the parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from nas.arch import ArchSpec, BlockSite
from nas.latency.keys import arch_keys, block_module, block_weights


def block_group(site: BlockSite) -> str:
    """``stem``, ``head``, or the block type, ``_se`` appended where the block has squeeze-excite."""
    if site.section in ("stem", "head"):
        return site.section
    block = site.block
    return f"{block.type}_se" if block.has("se") and block.se else block.type


def arch_features(arch: ArchSpec, settings: Mapping[str, Any]) -> dict[str, float]:
    """Named features of ``arch`` measured for a table's ``settings`` (input size, channels, classes)."""
    features: dict[str, float] = {"blocks": 0.0, "macs": 0.0}
    keys = arch_keys(arch, settings["in_chans"], settings["input_size"], settings["num_classes"])
    for key, site in keys:
        macs = _block_macs(key, site, settings["num_classes"])
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
    features.update({f"macs.{kind}": macs for kind, macs in layer_macs(arch, settings).items()})
    features.update({TERM_FEATURES[term]: value for term, value in cost_terms(arch, settings).items()})
    return features


LAYER_KINDS = ("pointwise", "depthwise", "other")
COST_TERMS = (
    "pointwise",
    "depthwise",
    "pointwise_x_cin",
    "conv_layers",
    "operators",
    "se_elements",
    "pointwise_padded",
    "depthwise_padded",
    "params",
)
COUNTS = ("conv_layers", "operators", "se_elements", "params")
TERM_UNITS = {  # what one of each cost term is
    "pointwise": "million MACs",
    "depthwise": "million MACs",
    "pointwise_x_cin": "million MACs x input channel",
    "conv_layers": "conv layer",
    "operators": "operator",
    "se_elements": "thousand elements",
    "pointwise_padded": "million padded MACs",
    "depthwise_padded": "million padded MACs",
    "params": "thousand parameters",
}
# each cost term's name among arch_features
TERM_FEATURES = {term: term if term in COUNTS else f"macs.{term}" for term in COST_TERMS}
# fp32 values in a 512-bit vector (AVX-512): ONNX Runtime's blocked layout (NCHWc) pads channels to it
SIMD_LANES = 16


def layer_macs(arch: ArchSpec, settings: Mapping[str, Any]) -> dict[str, float]:
    """The net's MACs (millions) in convolution and linear layers, by ``LAYER_KINDS``."""
    totals = dict.fromkeys(LAYER_KINDS, 0.0)
    for layer in _layers(arch, settings):
        totals[layer.kind] += layer.macs
    return totals


def cost_terms(arch: ArchSpec, settings: Mapping[str, Any]) -> dict[str, float]:
    """What a device's cost may follow beyond a table's blocks, by ``COST_TERMS``:

    - ``pointwise``, ``depthwise``: MACs (millions) of pointwise and of depthwise convolutions;
    - ``pointwise_x_cin``: pointwise MACs times the channels each reduces over (a naive, unscheduled 1x1
      conv reads its input strided across channels, so its cost per MAC grows with them: untuned TVM);
    - ``conv_layers``, ``operators``: the number of convolution layers, and of operators a runtime
      dispatches (every layer but BatchNorm, folded into its conv, plus residual adds and squeeze-excite
      rescales): a runtime's cost per op;
    - ``se_elements``: the elements (thousands) squeeze-excite pools and rescales, two passes over a
      block's widest tensor for almost no MACs;
    - ``pointwise_padded``, ``depthwise_padded``: the MACs with channels padded to ``SIMD_LANES``, what a
      runtime that vectorizes across channels computes (ONNX Runtime: a 24-channel conv costs about a
      32-channel one);
    - ``params``: the net's parameters (thousands), read from memory again once they outgrow the cache
      (``nas.latency.predict``).
    """
    terms = dict.fromkeys(COST_TERMS, 0.0)
    for profile in _profiles(arch, settings):
        for layer in profile.layers:
            if layer.kind in ("pointwise", "depthwise"):
                terms[layer.kind] += layer.macs
                terms[f"{layer.kind}_padded"] += layer.padded_macs
            if layer.kind == "pointwise":
                terms["pointwise_x_cin"] += layer.macs * layer.reduced_channels
            terms["conv_layers"] += int(layer.conv)
        terms["operators"] += profile.operators
        terms["se_elements"] += profile.se_elements
        terms["params"] += profile.params
    return terms


class Layer(NamedTuple):
    kind: str  # of LAYER_KINDS
    macs: float  # millions
    reduced_channels: int  # input channels each output sums over (in / groups; a linear layer's inputs)
    conv: bool  # else linear
    padded_macs: float  # millions, channels (in and out, per group) rounded up to SIMD_LANES


class BlockProfile(NamedTuple):
    layers: tuple[Layer, ...]  # each conv and linear layer
    operators: int
    se_elements: float  # thousands
    params: float  # thousands


def _layers(arch: ArchSpec, settings: Mapping[str, Any]) -> list[Layer]:
    return [layer for profile in _profiles(arch, settings) for layer in profile.layers]


def _profiles(arch: ArchSpec, settings: Mapping[str, Any]) -> list[BlockProfile]:
    keys = arch_keys(arch, settings["in_chans"], settings["input_size"], settings["num_classes"])
    return [_block_profile(key, site, settings["num_classes"]) for key, site in keys]


def _padded(channels: int) -> int:
    return -(-channels // SIMD_LANES) * SIMD_LANES


def _conv_layer(layer: Any, output: Any) -> Layer:
    groups, kernel = layer.groups, math.prod(layer.kernel_size)
    reduced = layer.in_channels // groups
    if groups > 1 and groups == layer.in_channels:
        kind, padded = "depthwise", _padded(layer.out_channels) * kernel
    else:
        kind = "pointwise" if kernel == 1 else "other"
        padded = groups * _padded(layer.out_channels // groups) * _padded(reduced) * kernel
    positions = output.numel() / layer.out_channels
    macs = output.numel() * reduced * kernel / 1e6
    return Layer(kind, macs, reduced, True, positions * padded / 1e6)


@lru_cache(maxsize=65536)
def _block_profile(key: str, site: BlockSite, num_classes: int) -> BlockProfile:
    """The block alone, from one forward pass: its conv and linear layers, operators, the elements its
    squeeze-excite rescales, and its parameters. Residual adds are counted where the block says it has
    one (``has_skip``, as ``ds`` and ``ir`` do)."""
    import torch
    from torch import nn

    from nas.blocks.layers import SqueezeExcite

    not_operators = (nn.Identity, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)  # BatchNorm: folded
    layers: list[Layer] = []
    counts = {"operators": 0, "se_elements": 0.0}

    def record(layer: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        if isinstance(layer, SqueezeExcite):
            counts["operators"] += 1  # the rescale, a product that is no layer
            counts["se_elements"] += output.numel() / 1e3
            return
        counts["operators"] += 1
        if isinstance(layer, nn.Linear):
            macs = output.numel() * layer.in_features / 1e6
            layers.append(Layer("other", macs, layer.in_features, False, macs))
        elif isinstance(layer, nn.Conv1d | nn.Conv2d):
            layers.append(_conv_layer(layer, output))

    module = block_module(site, num_classes)
    hooks = [
        m.register_forward_hook(record)
        for m in module.modules()
        if isinstance(m, SqueezeExcite) or (not any(m.children()) and not isinstance(m, not_operators))
    ]
    try:
        with torch.no_grad():
            module(torch.zeros(1, site.in_channels, *(site.in_size,) * site.dims))
    finally:
        for hook in hooks:
            hook.remove()
    operators = counts["operators"] + int(getattr(module, "has_skip", False))
    params = block_weights(key, site, num_classes) * 1e3
    return BlockProfile(tuple(layers), operators, counts["se_elements"], params)


@lru_cache(maxsize=65536)
def _block_macs(key: str, site: BlockSite, num_classes: int) -> float:
    """MACs (millions) of the block alone; cached by its key."""
    from nas.metrics.complexity import count_macs

    module = block_module(site, num_classes)
    return count_macs(module, site.in_channels, site.in_size, site.dims)[0] / 1e6
