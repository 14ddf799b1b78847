"""Wang et al.'s residual block for time series (``res3``; Wang, Yan & Oates 2017, as in Fawaz et al.'s
dl-4-tsc): three conv-BN layers with kernels k, 5 and 3 (8, 5, 3 in the paper), the activation after
the first two and after the sum. The shortcut is a 1x1 conv-BN where the channels change and a
BatchNorm alone where they don't (dl-4-tsc's third block). It keeps the length (or image size):
downsampling is another block's job, so a stride other than 1 is rejected rather than ignored.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks.base import (
    FLAG,
    BlockType,
    Option,
    act_option,
    channels_option,
    declared_channels,
    kernel_option,
    stride_option,
)
from nas.blocks.layers import ConvBnAct, activation, nd
from nas.errors import ConfigError


class Res3Block(nn.Module):
    def __init__(self, spec, in_chs: int) -> None:
        super().__init__()
        chs, bias = spec.channels, spec.bias
        self.conv1 = ConvBnAct(in_chs, chs, spec.kernel, act=spec.act, bias=bias)
        self.conv2 = ConvBnAct(chs, chs, 5, act=spec.act, bias=bias)
        self.conv3 = ConvBnAct(chs, chs, 3, act=None, bias=bias)
        self.shortcut = (
            ConvBnAct(in_chs, chs, 1, act=None, bias=bias) if in_chs != chs else nd("BatchNorm")(chs)
        )
        self.act = activation(spec.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


def _check(spec, in_chs: int) -> None:
    if spec.stride != 1:
        raise ConfigError(
            f"'res3' keeps the size: stride s{spec.stride} is not supported (downsample with a pool)"
        )


BLOCK = BlockType(
    name="res3",
    options=(
        kernel_option(default=8),
        stride_option(),
        channels_option(),
        act_option(),
        Option("bias", "bias", FLAG, default=False),
    ),
    build=Res3Block,
    out_channels=declared_channels,
    check=_check,
    summary="Wang et al.'s time-series residual block: convs k, 5, 3 + shortcut",
)
