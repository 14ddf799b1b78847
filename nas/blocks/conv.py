"""Plain convolution block (``conv``): conv, BatchNorm, activation. Stems, 1x1 projections."""

from __future__ import annotations

from torch import nn

from nas.blocks.base import (
    FLAG,
    INT,
    BlockType,
    Option,
    act_option,
    channels_option,
    declared_channels,
    kernel_option,
    stride_option,
)
from nas.blocks.layers import ConvBnAct


def build(spec, in_chs: int) -> nn.Module:
    return ConvBnAct(
        in_chs, spec.channels, spec.kernel, spec.stride, act=spec.act, padding=spec.padding, bn=not spec.nobn
    )


BLOCK = BlockType(
    name="conv",
    options=(
        kernel_option(),
        stride_option(),
        Option("p", "padding", INT, default=None, minimum=0),
        channels_option(),
        act_option(),
        Option("nobn", "nobn", FLAG, default=False),
    ),
    build=build,
    out_channels=declared_channels,
    summary="conv kxk, BatchNorm (or bias with nobn), activation",
)
