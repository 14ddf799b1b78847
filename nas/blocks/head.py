"""Classifier head (``head``), the last section of every arch.

``c``: 1x1 conv-BN-act before pooling (MobileNetV2's 1280 features); ``f``: hidden linear layer after
pooling (MobileNetV3's 1280); ``d``: dropout before the classifier; ``convcls``: SqueezeNet's classifier,
a 1x1 conv with ReLU applied before pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks.base import ACT, FLAG, FLOAT, INT, BlockType, Option
from nas.blocks.layers import ConvBnAct, activation, nd
from nas.errors import ConfigError


class Head(nn.Module):
    def __init__(self, spec, in_chs: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chs = in_chs
        if spec.channels:
            layers.append(ConvBnAct(chs, spec.channels, 1, act=spec.act))
            chs = spec.channels
        if spec.convcls:
            layers += [nn.Dropout(spec.dropout), nd("Conv")(chs, num_classes, 1), nn.ReLU()]
        layers += [nd("AdaptiveAvgPool")(1), nn.Flatten(1)]
        if not spec.convcls:
            if spec.hidden:
                layers += [nn.Linear(chs, spec.hidden), activation(spec.act)]
                chs = spec.hidden
            layers += [nn.Dropout(spec.dropout), nn.Linear(chs, num_classes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _check(spec, in_chs: int) -> None:
    if spec.convcls and spec.hidden:
        raise ConfigError("a 'convcls' head has no hidden linear layer 'f'")
    if spec.dropout >= 1.0:
        raise ConfigError(f"dropout d{spec.dropout:g} must be below 1")


BLOCK = BlockType(
    name="head",
    options=(
        Option("c", "channels", INT, default=0, minimum=0),
        Option("f", "hidden", INT, default=0, minimum=0),
        Option("a", "act", ACT, default="relu"),
        Option("d", "dropout", FLOAT, default=0.0, minimum=0.0),
        Option("convcls", "convcls", FLAG, default=False),
    ),
    build=Head,
    out_channels=lambda spec, in_chs: 0,
    check=_check,
    is_head=True,
    summary="1x1 conv, global pool, hidden fc, classifier",
)
