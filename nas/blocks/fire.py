"""SqueezeNet Fire module (``fire``): 1x1 squeeze, then 1x1 and 3x3 expands concatenated.

As in SqueezeNet: convolutions with bias, no BatchNorm; the two expands each give half of ``c``.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks.base import INT, BlockType, Option, act_option, channels_option, declared_channels
from nas.blocks.layers import ConvBnAct
from nas.errors import ConfigError


class Fire(nn.Module):
    def __init__(self, spec, in_chs: int) -> None:
        super().__init__()
        half = spec.channels // 2
        self.squeeze = ConvBnAct(in_chs, spec.squeeze, 1, act=spec.act, bn=False)
        self.expand1x1 = ConvBnAct(spec.squeeze, half, 1, act=spec.act, bn=False)
        self.expand3x3 = ConvBnAct(spec.squeeze, half, 3, act=spec.act, bn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.expand1x1(s), self.expand3x3(s)], 1)


def check(spec, in_chs: int) -> None:
    if spec.channels % 2:
        raise ConfigError(f"fire output channels c{spec.channels} must be even (two equal expands)")


BLOCK = BlockType(
    name="fire",
    options=(Option("sq", "squeeze", INT, required=True, minimum=1), channels_option(), act_option()),
    build=Fire,
    out_channels=declared_channels,
    check=check,
    summary="SqueezeNet Fire: 1x1 squeeze, 1x1 + 3x3 expand",
)
