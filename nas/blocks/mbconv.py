"""MBConv / inverted residual block (``ir``): 1x1 expansion, depthwise kxk, optional SE, linear 1x1
projection, identity residual when shapes allow.

``g`` groups the two 1x1 convs and shuffles channels after the first (FBNet's ``_g2`` ops). The
expansion conv is always present, also at ``e1`` (FBNet's k3_e1); MobileNetV2's first block, which has
none, is a ``ds`` block.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks.base import (
    FLAG,
    FLOAT,
    INT,
    BlockType,
    Option,
    act_option,
    channels_option,
    declared_channels,
    kernel_option,
    stride_option,
)
from nas.blocks.dsconv import has_residual, se_options
from nas.blocks.layers import ChannelShuffle, ConvBnAct, check_single_se, squeeze_excite
from nas.errors import ConfigError


def mid_channels(spec, in_chs: int) -> int:
    return max(1, round(in_chs * spec.expand))


class InvertedResidual(nn.Module):
    def __init__(self, spec, in_chs: int) -> None:
        super().__init__()
        mid = mid_channels(spec, in_chs)
        groups = spec.groups
        self.expand = ConvBnAct(in_chs, mid, 1, groups=groups, act=spec.act)
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.dw = ConvBnAct(mid, mid, spec.kernel, spec.stride, groups=mid, act=spec.act)
        self.se = squeeze_excite(spec, in_chs, mid)
        self.project = ConvBnAct(mid, spec.channels, 1, groups=groups, act=None)
        self.has_skip = has_residual(spec, in_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.dw(self.shuffle(self.expand(x)))))
        return out + x if self.has_skip else out


def check(spec, in_chs: int) -> None:
    check_single_se(spec, in_chs)
    mid = mid_channels(spec, in_chs)
    for name, chs in (("input", in_chs), ("expanded", mid), ("output", spec.channels)):
        if chs % spec.groups:
            raise ConfigError(f"{name} channels {chs} are not divisible by groups g{spec.groups}")


BLOCK = BlockType(
    name="ir",
    options=(
        kernel_option(),
        stride_option(),
        Option("e", "expand", FLOAT, required=True, minimum=0.1),
        channels_option(),
        *se_options(),
        act_option(),
        Option("g", "groups", INT, default=1, minimum=1),
        Option("noskip", "noskip", FLAG, default=False),
    ),
    build=InvertedResidual,
    out_channels=declared_channels,
    check=check,
    summary="1x1 expand, depthwise kxk, SE, linear 1x1 (MBConv)",
)
