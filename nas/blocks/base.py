"""What a block type is: its option grammar, and how it becomes a torch module.

A block type is plain data (``BlockType``) so the grammar in ``nas.arch`` can parse and print
any block without knowing its meaning; one module per block type fills one in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from nas.arch import BlockSpec

ACTIVATIONS = ("relu", "relu6", "hswish", "swish")

INT = "int"
FLOAT = "float"
ACT = "act"
FLAG = "flag"


@dataclass(frozen=True)
class Option:
    """One option of a block token, written ``<key><value>`` (``k3``, ``se0.25``, ``ahswish``) or
    ``<key>`` alone for flags (``noskip``)."""

    key: str
    field: str
    kind: str
    default: Any = None
    required: bool = False
    minimum: float | None = None

    def parse(self, text: str) -> Any:
        """Parse the value part of a token; raise ``ConfigError`` on anything malformed."""
        if self.kind == FLAG:
            if text:
                raise ConfigError(f"flag '{self.key}' takes no value")
            return True
        if self.kind == ACT:
            if text not in ACTIVATIONS:
                raise ConfigError(f"unknown activation '{text}' (choose from {', '.join(ACTIVATIONS)})")
            return text
        try:
            value = int(text) if self.kind == INT else float(text)
        except ValueError:
            raise ConfigError(f"'{text}' is not a valid {self.kind} for '{self.key}'") from None
        return self.coerce(value)

    def coerce(self, value: Any) -> Any:
        """Bring a Python value to the option's type and check its range."""
        if self.kind == FLAG:
            return bool(value)
        if self.kind == ACT:
            return self.parse(str(value))
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"option '{self.field}' must be a number, got {value!r}")
        if self.kind == INT:
            if float(value) != int(value):
                raise ConfigError(f"option '{self.field}' must be an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"option '{self.field}' must be >= {self.minimum:g}, got {value:g}")
        return value

    def format(self, value: Any) -> str:
        """The canonical token for a value (flags print their key only)."""
        if self.kind == FLAG:
            return self.key
        if self.kind == FLOAT:
            text = repr(float(value))
            return self.key + (text[:-2] if text.endswith(".0") else text)
        return f"{self.key}{value}"


@dataclass(frozen=True)
class BlockType:
    """A registered block: its token name, options, and the three functions the rest of the
    project needs from it."""

    name: str
    options: tuple[Option, ...]
    build: Callable[..., nn.Module]  # (spec, in_chs), heads also take num_classes
    out_channels: Callable[[BlockSpec, int], int]
    check: Callable[[BlockSpec, int], None] = lambda spec, in_chs: None
    is_head: bool = False
    summary: str = ""

    def option(self, field: str) -> Option | None:
        return next((o for o in self.options if o.field == field), None)


def conv_out_size(size: int, kernel: int, stride: int, padding: int | None, ceil: bool = False) -> int:
    """Output side of a conv or pool window, as torch computes it.

    ``padding=None`` is 'same': at stride 1 the size is kept for any kernel (an even kernel pads one more
    on the right, as Keras and torch's ``padding="same"`` do); a strided window pads k//2.
    """
    if padding is None and stride == 1:
        return size
    pad = kernel // 2 if padding is None else padding
    span = size + 2 * pad - kernel
    if span < 0:
        return 0
    steps = -(-span // stride) if ceil else span // stride
    out = steps + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1  # torch drops a last window that starts in the right padding
    return out


def channels_option(required: bool = True) -> Option:
    return Option("c", "channels", INT, required=required, minimum=1)


def kernel_option(default: int | None = None) -> Option:
    return Option("k", "kernel", INT, default=default, required=default is None, minimum=1)


def stride_option() -> Option:
    return Option("s", "stride", INT, default=1, minimum=1)


def act_option() -> Option:
    return Option("a", "act", ACT, default="relu")


def same_channels(spec: BlockSpec, in_chs: int) -> int:
    return in_chs


def declared_channels(spec: BlockSpec, in_chs: int) -> int:
    return spec.channels
