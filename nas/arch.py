"""The architecture value: what every module of the project passes around.

An ``ArchSpec`` is a stem block, stages of blocks, and a head, written as one canonical string::

    conv_k3_s2_c32:ds_k3_c16:ir_r2_k3_s2_e6_c24:...:head_c1280_d0.2

Sections are separated by ``:`` (stem, each stage, head); blocks of a stage by ``,``. A block token is
``<type>_<option>_<option>...`` with options from the block type's grammar (``nas.blocks``); options at
their default are left out. ``r<N>`` repeats a block N times, the repeats at stride 1 (timm's
convention). ``to_str`` prints one canonical form, so equal networks give equal strings.

A network for 1-D signals (ECG and other biosignals) starts with a ``1d`` section
(``1d:conv_k9_s2_c16:ir_k7_e4_c24:head_c128``): the same block types then build as 1-D layers, and a
size is a signal's length where for 2-D networks it is an image's side.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nas.blocks import block_type
from nas.blocks.base import BlockType, Option, conv_out_size
from nas.errors import ConfigError

SECTION_SEP = ":"
DIMS = {"1d": 1, "2d": 2}
BLOCK_SEP = ","
OPTION_SEP = "_"


@dataclass(frozen=True)
class BlockSpec:
    """One block: its type name and the value of every option, in the type's option order."""

    type: str
    values: tuple[Any, ...]

    @classmethod
    def make(cls, type: str, **options: Any) -> BlockSpec:
        """Build a block from field names (``kernel=3, channels=24``), defaults filled in, checked."""
        kind = block_type(type)
        unknown = set(options) - {o.field for o in kind.options}
        if unknown:
            raise ConfigError(f"block '{type}' has no option(s) {', '.join(sorted(unknown))}")
        values = []
        for opt in kind.options:
            if opt.field in options and options[opt.field] is not None:
                values.append(opt.coerce(options[opt.field]))
            elif opt.required:
                raise ConfigError(f"block '{type}' needs option '{opt.key}' ({opt.field})")
            else:
                values.append(opt.default)
        return cls(type, tuple(values))

    @property
    def kind(self) -> BlockType:
        return block_type(self.type)

    def __getattr__(self, field: str) -> Any:
        if field.startswith("__"):
            raise AttributeError(field)
        kind = block_type(self.type)
        for opt, value in zip(kind.options, self.values, strict=True):
            if opt.field == field:
                return value
        raise AttributeError(f"block '{self.type}' has no option '{field}'")

    def options(self) -> dict[str, Any]:
        """Every option by field name, defaults included."""
        return {o.field: v for o, v in zip(self.kind.options, self.values, strict=True)}

    def has(self, field: str) -> bool:
        return self.kind.option(field) is not None

    def replace(self, **changes: Any) -> BlockSpec:
        return BlockSpec.make(self.type, **{**self.options(), **changes})

    def to_str(self) -> str:
        tokens = [self.type]
        for opt, value in zip(self.kind.options, self.values, strict=True):
            if value != opt.default and value is not None:
                tokens.append(opt.format(value))
        return OPTION_SEP.join(tokens)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **self.options()}

    def __str__(self) -> str:
        return self.to_str()


@dataclass(frozen=True)
class BlockSite:
    """Where a block sits in a network: what the builder, the metrics and the latency table need."""

    section: str  # "stem", "stage", or "head"
    stage: int  # stage index, -1 for stem and head
    index: int  # index within the stage
    block: BlockSpec
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    dims: int = 2


@dataclass(frozen=True)
class ArchSpec:
    """A whole network as a value: frozen, hashable, comparable by structure. ``dims`` is 2 for images
    (NCHW input), 1 for signals (NCL input)."""

    stem: BlockSpec
    stages: tuple[tuple[BlockSpec, ...], ...]
    head: BlockSpec
    dims: int = 2

    def __post_init__(self) -> None:
        if self.dims not in DIMS.values():
            raise ConfigError(f"an arch is 1-D or 2-D, not {self.dims}-D")
        if self.stem.kind.is_head:
            raise ConfigError(f"stem block '{self.stem}' cannot be a head")
        if not self.head.kind.is_head:
            raise ConfigError(f"last section '{self.head}' must be a head block")
        for stage in self.stages:
            for block in stage:
                if block.kind.is_head:
                    raise ConfigError(f"head block '{block}' can only be the last section")
        object.__setattr__(self, "stages", tuple(tuple(s) for s in self.stages))
        canonical = tuple(
            tuple(canonical_block(b, c) for b, c in stage) for stage in self._with_in_channels()
        )
        object.__setattr__(self, "stages", canonical)
        object.__setattr__(self, "stem", _drop_no_ops(self.stem))
        object.__setattr__(self, "head", _drop_no_ops(self.head))

    def _with_in_channels(self) -> Iterator[list[tuple[BlockSpec, int]]]:
        _check(self.stem, 0)
        chs = self.stem.kind.out_channels(self.stem, 0)
        for stage in self.stages:
            pairs = []
            for block in stage:
                _check(block, chs)
                pairs.append((block, chs))
                chs = block.kind.out_channels(block, chs)
            yield pairs
        _check(self.head, chs)

    @classmethod
    def from_str(cls, text: str) -> ArchSpec:
        """Parse an arch string; a malformed one raises ``ConfigError`` naming the bad token."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("empty arch string")
        sections = text.strip().split(SECTION_SEP)
        dims = DIMS[sections.pop(0)] if sections[0] in DIMS else 2
        if len(sections) < 2:
            raise ConfigError(f"arch '{text}' needs at least a stem and a head, separated by ':'")
        stem = _parse_stage(sections[0])
        if len(stem) != 1:
            raise ConfigError(f"stem '{sections[0]}' must be exactly one block")
        head = _parse_stage(sections[-1])
        if len(head) != 1:
            raise ConfigError(f"head '{sections[-1]}' must be exactly one block")
        stages = tuple(_parse_stage(s) for s in sections[1:-1])
        return cls(stem[0], stages, head[0], dims)

    def to_str(self) -> str:
        parts = [self.stem.to_str(), *(_format_stage(s) for s in self.stages), self.head.to_str()]
        return SECTION_SEP.join(["1d", *parts] if self.dims == 1 else parts)

    def input_shape(self, in_chans: int, input_size: int, batch: int = 1) -> tuple[int, ...]:
        """The network's input tensor shape: ``(batch, C, H, W)``, or ``(batch, C, L)`` for a 1-D arch."""
        return (batch, in_chans, *(input_size,) * self.dims)

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.to_str(),
            "dims": self.dims,
            "stem": self.stem.to_json(),
            "stages": [[b.to_json() for b in stage] for stage in self.stages],
            "head": self.head.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> ArchSpec:
        """Inverse of ``to_json``; also accepts its text. The structured fields win over ``arch``."""
        if isinstance(data, str):
            data = json.loads(data)

        def block(d: dict[str, Any]) -> BlockSpec:
            fields = dict(d)
            return BlockSpec.make(fields.pop("type"), **fields)

        try:
            return cls(
                block(data["stem"]),
                tuple(tuple(map(block, s)) for s in data["stages"]),
                block(data["head"]),
                data.get("dims", 2),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"malformed arch JSON: {exc}") from None

    def blocks(self) -> Iterator[BlockSpec]:
        yield self.stem
        for stage in self.stages:
            yield from stage
        yield self.head

    def walk(self, in_chans: int = 3, input_size: int = 224) -> Iterator[BlockSite]:
        """Every block in execution order with its input and output channels and size (an image's
        side, a signal's length).

        The one place the arch is walked; the builder, metrics and latency keys all use it.
        """
        chs, size = in_chans, input_size
        sections = [("stem", -1, [self.stem])]
        sections += [("stage", i, list(stage)) for i, stage in enumerate(self.stages)]
        sections.append(("head", -1, [self.head]))
        for section, stage_index, blocks in sections:
            for index, block in enumerate(blocks):
                out_chs = block.kind.out_channels(block, chs)
                out_size = 1 if block.kind.is_head else _out_size(block, size)
                if out_size < 1:
                    what = "x".join([str(input_size)] * self.dims)
                    raise ConfigError(
                        f"input {what} is too small: block '{block}' gets {'x'.join([str(size)] * self.dims)}"
                    )
                yield BlockSite(section, stage_index, index, block, chs, out_chs, size, out_size, self.dims)
                chs, size = out_chs, out_size

    def __str__(self) -> str:
        return self.to_str()


def _out_size(block: BlockSpec, size: int) -> int:
    if not block.has("kernel"):
        return size
    padding = block.padding if block.has("padding") else None
    ceil = block.ceil if block.has("ceil") else False
    return conv_out_size(size, block.kernel, block.stride, padding, ceil)


def _check(block: BlockSpec, in_chs: int) -> None:
    """The block type's own check, its message naming the block."""
    try:
        block.kind.check(block, in_chs)
    except ValueError as exc:
        raise ConfigError(f"bad block '{block}': {exc}") from None


def _drop_no_ops(block: BlockSpec) -> BlockSpec:
    """Options that change nothing go back to their default: a padding equal to the default 'same'
    padding (``k3_p1``; not ``k4_p2`` at stride 1, where 'same' pads 1 left and 2 right), and the act
    of a head with neither a 1x1 conv nor a hidden layer."""
    if block.has("padding") and block.padding == block.kernel // 2 and (block.kernel % 2 or block.stride > 1):
        block = block.replace(padding=None)
    if block.kind.is_head and not block.channels and not block.hidden:
        block = block.replace(act=block.kind.option("act").default)
    return block


def canonical_block(block: BlockSpec, in_chs: int) -> BlockSpec:
    """One network, one value: drop ``noskip`` where no residual was possible anyway, and no-op options."""
    block = _drop_no_ops(block)
    if block.has("noskip") and block.noskip and (block.stride != 1 or in_chs != block.channels):
        return block.replace(noskip=False)
    return block


def parse_block(token: str) -> tuple[BlockSpec, int]:
    """Parse one block token into the block and its repeat count (``r``)."""
    kind, fields, repeat = parse_fields(token)
    try:
        return BlockSpec.make(kind.name, **fields), repeat
    except ValueError as exc:
        raise ConfigError(f"bad block '{token}': {exc}") from None


def parse_fields(token: str) -> tuple[BlockType, dict[str, Any], int]:
    """Parse a block token into its type, the options it sets, and its repeat count.

    Required options may be missing: search spaces use such partial tokens (``ir_e6``) as templates.
    """
    parts = token.split(OPTION_SEP)
    if not parts[0]:
        raise ConfigError(f"empty block type in '{token}'")
    kind = block_type(parts[0])
    repeat = 0
    found: dict[str, Any] = {}
    for part in parts[1:]:
        if part.startswith("r") and part[1:].isascii() and part[1:].isdigit():
            if repeat:
                raise ConfigError(f"bad token '{part}' in block '{token}': option 'r' given twice")
            repeat = int(part[1:])
            if repeat < 1:
                raise ConfigError(f"bad token '{part}' in block '{token}': repeat must be >= 1")
            continue
        opt = _match_option(kind, part)
        if opt is None:
            raise ConfigError(f"bad token '{part}' in block '{token}': '{kind.name}' has no such option")
        if opt.field in found:
            raise ConfigError(f"bad token '{part}' in block '{token}': option '{opt.key}' given twice")
        try:
            found[opt.field] = opt.parse(part[len(opt.key) :])
        except ValueError as exc:
            raise ConfigError(f"bad token '{part}' in block '{token}': {exc}") from None
    return kind, found, repeat or 1


def _match_option(kind: BlockType, part: str) -> Option | None:
    """The option whose key is the longest prefix of ``part`` (``se0.25`` is ``se``, not ``s``)."""
    candidates = [o for o in kind.options if part.startswith(o.key)]
    flags = [o for o in candidates if o.kind == "flag" and part == o.key]
    if flags:
        return flags[0]
    valued = [o for o in candidates if o.kind != "flag"]
    return max(valued, key=lambda o: len(o.key), default=None)


def _parse_stage(text: str) -> tuple[BlockSpec, ...]:
    if not text:
        return ()
    blocks: list[BlockSpec] = []
    for token in text.split(BLOCK_SEP):
        block, repeat = parse_block(token)
        blocks.append(block)
        follower = block.replace(stride=1) if block.has("stride") else block
        blocks.extend([follower] * (repeat - 1))
    return tuple(blocks)


def _format_stage(stage: tuple[BlockSpec, ...]) -> str:
    """Compress runs (first block at any stride, then copies at stride 1) into ``r<N>`` tokens."""
    tokens: list[str] = []
    i = 0
    while i < len(stage):
        first = stage[i]
        follower = first.replace(stride=1) if first.has("stride") else first
        run = 1
        while i + run < len(stage) and stage[i + run] == follower:
            run += 1
        text = first.to_str()
        if run > 1:
            name, _, rest = text.partition(OPTION_SEP)
            text = OPTION_SEP.join(filter(None, [name, f"r{run}", rest]))
        tokens.append(text)
        i += run
    return BLOCK_SEP.join(tokens)


def scale_width(arch: ArchSpec, multiplier: float, divisor: int = 8) -> ArchSpec:
    """MobileNet's width multiplier: every channel count times ``multiplier``, rounded to ``divisor``.

    The head's widths are only ever scaled up (MobileNetV2 keeps its 1280 features below 1.0).
    """
    if multiplier <= 0:
        raise ConfigError(f"width multiplier must be positive, got {multiplier:g}")
    from nas.blocks.layers import make_divisible

    def scaled(block: BlockSpec, mult: float) -> BlockSpec:
        changes = {
            field: make_divisible(getattr(block, field) * mult, divisor)
            for field in ("channels", "squeeze", "hidden")
            if block.has(field) and getattr(block, field)
        }
        return block.replace(**changes)

    return ArchSpec(
        scaled(arch.stem, multiplier),
        tuple(tuple(scaled(b, multiplier) for b in stage) for stage in arch.stages),
        scaled(arch.head, max(1.0, multiplier)),
        arch.dims,
    )
