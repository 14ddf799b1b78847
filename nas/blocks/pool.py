"""Pooling blocks (``maxpool``, ``avgpool``): a kxk window; channels pass through."""

from __future__ import annotations

from torch import nn

from nas.blocks.base import FLAG, INT, BlockType, Option, kernel_option, same_channels, stride_option
from nas.blocks.layers import nd
from nas.errors import ConfigError


def _options() -> tuple[Option, ...]:
    return (
        kernel_option(),
        stride_option(),
        Option("p", "padding", INT, default=None, minimum=0),
        Option("ceil", "ceil", FLAG, default=False),
    )


def _padding(spec) -> int:
    return spec.kernel // 2 if spec.padding is None else spec.padding


def _check(spec, in_chs: int) -> None:
    if spec.padding is None and spec.stride == 1 and spec.kernel % 2 == 0:
        # 'same' would pad one more on the right (conv_out_size); torch pools pad both sides alike
        raise ConfigError(f"an even window k{spec.kernel} at stride 1 needs an explicit padding p")
    if _padding(spec) > spec.kernel // 2:
        raise ConfigError(f"padding p{_padding(spec)} is more than half the kernel k{spec.kernel}")


def build_max(spec, in_chs: int) -> nn.Module:
    return nd("MaxPool")(spec.kernel, spec.stride, _padding(spec), ceil_mode=spec.ceil)


def build_avg(spec, in_chs: int) -> nn.Module:
    return nd("AvgPool")(spec.kernel, spec.stride, _padding(spec), ceil_mode=spec.ceil)


MAX_BLOCK = BlockType(
    name="maxpool",
    options=_options(),
    build=build_max,
    out_channels=same_channels,
    check=_check,
    summary="max pooling kxk",
)
AVG_BLOCK = BlockType(
    name="avgpool",
    options=_options(),
    build=build_avg,
    out_channels=same_channels,
    check=_check,
    summary="average pooling kxk",
)
