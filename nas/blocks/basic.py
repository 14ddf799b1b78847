"""ResNet basic block (``basic``): two kxk conv-BN layers and a shortcut (1x1 conv-BN when the shape
changes), activation after the sum. The baseline medical papers compare against."""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks.base import (
    BlockType,
    act_option,
    channels_option,
    declared_channels,
    kernel_option,
    stride_option,
)
from nas.blocks.layers import ConvBnAct, activation


class BasicBlock(nn.Module):
    def __init__(self, spec, in_chs: int) -> None:
        super().__init__()
        self.conv1 = ConvBnAct(in_chs, spec.channels, spec.kernel, spec.stride, act=spec.act)
        self.conv2 = ConvBnAct(spec.channels, spec.channels, spec.kernel, act=None)
        reshape = spec.stride != 1 or in_chs != spec.channels
        self.shortcut = (
            ConvBnAct(in_chs, spec.channels, 1, spec.stride, act=None) if reshape else nn.Identity()
        )
        self.act = activation(spec.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


BLOCK = BlockType(
    name="basic",
    options=(kernel_option(default=3), stride_option(), channels_option(), act_option()),
    build=BasicBlock,
    out_channels=declared_channels,
    summary="ResNet basic block: two kxk convs + shortcut",
)
