"""Small torch layers shared by the block modules, and the switch that makes them 1-D or 2-D."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

from nas.errors import ConfigError

# torch warns at every first forward of an even 'same' kernel that it may copy the input to pad it:
# that is the intended behaviour here (Keras-exact sizes), not something a user can act on.
warnings.filterwarnings("ignore", "Using padding='same' with even kernel lengths", UserWarning)

_DIMS: ContextVar[int] = ContextVar("nas_spatial_dims", default=2)
TWO_D_ONLY = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


@contextmanager
def spatial_dims(dims: int) -> Iterator[None]:
    """Blocks built inside get ``dims``-D layers from ``nd`` (timm's ``set_layer_config`` pattern), so a
    block module is written once for images and signals and a block type's build signature stays as it is."""
    token = _DIMS.set(dims)
    try:
        yield
    finally:
        _DIMS.reset(token)


def nd(layer: str) -> type[nn.Module]:
    """The torch layer class for the dims being built: ``nd("Conv")`` is ``nn.Conv1d`` or ``nn.Conv2d``."""
    return getattr(nn, f"{layer}{_DIMS.get()}d")


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "swish": nn.SiLU,
}


def activation(name: str) -> nn.Module:
    """Not in-place: peak-memory accounting assumes every op writes a fresh tensor."""
    return _ACTIVATIONS[name]()


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` the way MobileNet does: never below the divisor,
    never more than 10 % below the exact value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBnAct(nn.Sequential):
    """Conv, then BatchNorm (or a conv bias when ``bn`` is off), then an optional activation.

    ``padding=None`` is 'same' (``conv_out_size``): k//2, or torch's ``"same"`` for an even kernel at
    stride 1, which pads one more on the right as Keras does. ``bias`` keeps a conv bias before the
    BatchNorm, as Keras' ``Conv1D`` has by default (exact parameter counts of Keras networks).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu",
        padding: int | None = None,
        bn: bool = True,
        bias: bool = False,
    ) -> None:
        pad: int | str = padding if padding is not None else kernel // 2
        if padding is None and stride == 1 and kernel % 2 == 0:
            pad = "same"
        layers: list[nn.Module] = [
            nd("Conv")(in_chs, out_chs, kernel, stride, pad, groups=groups, bias=bias or not bn)
        ]
        if bn:
            layers.append(nd("BatchNorm")(out_chs))
        if act is not None:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, reduce, activate, expand, gate, rescale."""

    def __init__(self, channels: int, reduced: int, act: str, hard_gate: bool) -> None:
        super().__init__()
        self.pool = nd("AdaptiveAvgPool")(1)
        self.reduce = nd("Conv")(channels, reduced, 1)
        self.act = activation(act)
        self.expand = nd("Conv")(reduced, channels, 1)
        self.gate = nn.Hardsigmoid() if hard_gate else nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale


def squeeze_excite(spec, in_chs: int, mid_chs: int) -> nn.Module:
    """The SE layer a block's options ask for, or Identity.

    ``se`` is the EfficientNet/MnasNet form (reduce from the block's input channels, block activation,
    sigmoid gate); ``hse`` is MobileNetV3's (reduce from the expanded channels rounded to 8, ReLU,
    hard-sigmoid gate).
    """
    if spec.se > 0:
        return SqueezeExcite(mid_chs, max(1, int(in_chs * spec.se)), spec.act, hard_gate=False)
    if spec.hse > 0:
        return SqueezeExcite(mid_chs, make_divisible(mid_chs * spec.hse, 8), "relu", hard_gate=True)
    return nn.Identity()


def check_single_se(spec, in_chs: int) -> None:
    if spec.se > 0 and spec.hse > 0:
        raise ConfigError("options 'se' and 'hse' cannot both be set")


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle, used after FBNet's grouped 1x1 convs."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.groups, -1)).transpose(1, 2).flatten(1, 2)  # 1-D and 2-D alike
