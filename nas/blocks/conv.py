"""Plain convolution block (``conv``): conv, BatchNorm, activation. Stems, 1x1 projections.

``bias`` keeps a conv bias before the BatchNorm, as Keras' ``Conv1D`` has by default, so Keras
networks (Wang et al.'s FCN) are exact in parameters.
"""

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
from nas.errors import ConfigError


def build(spec, in_chs: int) -> nn.Module:
    return ConvBnAct(
        in_chs,
        spec.channels,
        spec.kernel,
        spec.stride,
        act=spec.act,
        padding=spec.padding,
        bn=not spec.nobn,
        bias=spec.bias,
    )


def _check(spec, in_chs: int) -> None:
    if spec.nobn and spec.bias:
        raise ConfigError("a 'nobn' conv already has a bias: drop 'bias'")


BLOCK = BlockType(
    name="conv",
    options=(
        kernel_option(),
        stride_option(),
        Option("p", "padding", INT, default=None, minimum=0),
        channels_option(),
        act_option(),
        Option("nobn", "nobn", FLAG, default=False),
        Option("bias", "bias", FLAG, default=False),
    ),
    build=build,
    out_channels=declared_channels,
    check=_check,
    summary="conv kxk, BatchNorm (or bias with nobn), activation",
)
