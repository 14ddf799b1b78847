"""Depthwise-separable block (``ds``): depthwise kxk, optional SE, linear 1x1 projection.

The MobileNetV2 / MnasNet "SepConv": no expansion conv, an identity residual when shapes allow.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks.base import (
    FLAG,
    FLOAT,
    BlockType,
    Option,
    act_option,
    channels_option,
    declared_channels,
    kernel_option,
    stride_option,
)
from nas.blocks.layers import ConvBnAct, check_single_se, squeeze_excite


class DepthwiseSeparable(nn.Module):
    def __init__(self, spec, in_chs: int) -> None:
        super().__init__()
        self.dw = ConvBnAct(in_chs, in_chs, spec.kernel, spec.stride, groups=in_chs, act=spec.act)
        self.se = squeeze_excite(spec, in_chs, in_chs)
        self.project = ConvBnAct(in_chs, spec.channels, 1, act=None)
        self.has_skip = has_residual(spec, in_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.dw(x)))
        return out + x if self.has_skip else out


def has_residual(spec, in_chs: int) -> bool:
    """Identity residual: only where input and output shapes match, and not switched off."""
    return spec.stride == 1 and in_chs == spec.channels and not spec.noskip


def se_options() -> tuple[Option, Option]:
    return (
        Option("se", "se", FLOAT, default=0.0, minimum=0.0),
        Option("hse", "hse", FLOAT, default=0.0, minimum=0.0),
    )


BLOCK = BlockType(
    name="ds",
    options=(
        kernel_option(),
        stride_option(),
        channels_option(),
        *se_options(),
        act_option(),
        Option("noskip", "noskip", FLAG, default=False),
    ),
    build=DepthwiseSeparable,
    out_channels=declared_channels,
    check=check_single_se,
    summary="depthwise kxk, SE, linear 1x1 (MobileNet SepConv)",
)
