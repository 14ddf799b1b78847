"""Search spaces: YAML data (``search_spaces/*.yaml``) turned into a fixed set of categorical choices.

Every space is a fixed-length vector of categorical parameters, the same for every candidate: one set per
stage (``choose_per: stage``, MnasNet's factorized hierarchical space) or per layer slot (``choose_per:
layer``, FBNet), plus a boolean ``<stage>.l<j>.skip`` per optional layer slot that encodes depth. Nothing
is conditional, so Optuna's TPE and NSGA-II model every parameter jointly.

Strides can be choices too (``stem_stride``, a stage's ``stride: [1, 2]``): ``stem.stride`` and
``<stage>.stride`` are ordinary categorical parameters, present in every candidate, so small inputs (28 px)
can keep their resolution where ImageNet spaces halve it.

The ``skip`` op is FBNet's: identity where the slot keeps the shape, else a 1x1 conv-BN-ReLU with the
slot's stride and channels.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from nas.arch import ArchSpec, BlockSpec, canonical_block, parse_block, parse_fields
from nas.blocks.base import BlockType
from nas.blocks.layers import make_divisible
from nas.errors import ConfigError
from nas.resources import bundled_names, find_shipped
from nas.space_config import SpaceConfig, SpaceError, StageConfig, read_space_config

SKIP_OP = "skip"
STEM_STRIDE = "stem.stride"  # the parameter of the stem's stride choices
DIMS = ("kernel", "expand", "se", "hse", "residual")  # per-op choices, in parameter order


@dataclass(frozen=True)
class Param:
    """One categorical parameter: an Optuna distribution, one slot of a choice vector."""

    name: str
    choices: tuple[Any, ...]


@dataclass(frozen=True)
class Op:
    """An op template from the YAML (``ir_e6``): its block type and the options it fixes."""

    token: str
    kind: BlockType | None  # None for the skip op
    fields: tuple[tuple[str, Any], ...]

    def applies(self, dim: str) -> bool:
        field = "noskip" if dim == "residual" else dim
        return self.kind is not None and self.kind.option(field) is not None


class Stage:
    """One stage of a space: its fixed shape, its choices, and how choices become blocks."""

    def __init__(self, config: StageConfig, index: int) -> None:
        self.config = config
        self.name = config.name or f"s{index + 1}"
        self.ops = tuple(_parse_op(token) for token in config.ops)
        self.dims = {dim: tuple(getattr(config, dim)) for dim in DIMS if getattr(config, dim) is not None}
        self.widths = tuple(config.width or (1.0,))
        self.strides = config.strides
        self.min_layers, self.max_layers = config.min_layers, config.max_layers

    @cached_property
    def combos(self) -> tuple[dict[str, Any], ...]:
        """Every op with every value of the other choices: what one layer can be."""
        names = list(self.choice_dims)
        return tuple(dict(zip(names, c, strict=True)) for c in itertools.product(*self.choice_dims.values()))

    @cached_property
    def choice_dims(self) -> dict[str, tuple[Any, ...]]:
        return {"op": tuple(op.token for op in self.ops), **self.dims}

    def params(self) -> list[Param]:
        """This stage's parameters; single-valued choices are constants, not parameters."""
        params = [Param(f"{self.name}.stride", self.strides)] if len(self.strides) > 1 else []
        params += [Param(f"{self.name}.width", self.widths)] if len(self.widths) > 1 else []
        per_stage = self.config.choose_per == "stage"
        if per_stage:
            params += [Param(f"{self.name}.{d}", c) for d, c in self.choice_dims.items() if len(c) > 1]
        for j in range(self.max_layers):
            if j >= self.min_layers:
                params.append(Param(f"{self.name}.l{j}.skip", (False, True)))
            if not per_stage:
                params += [
                    Param(f"{self.name}.l{j}.{d}", c) for d, c in self.choice_dims.items() if len(c) > 1
                ]
        return params

    def out_channels(self, width: float, divisor: int) -> int:
        return self.config.channels if width == 1.0 else make_divisible(self.config.channels * width, divisor)

    def realize(self, combo: Mapping[str, Any], stride: int, in_chs: int, out_chs: int) -> BlockSpec | None:
        """The block one layer becomes, or None where it is an identity skip."""
        op = next(o for o in self.ops if o.token == combo["op"])
        if op.kind is None:
            if stride == 1 and in_chs == out_chs:
                return None
            return BlockSpec.make("conv", kernel=1, stride=stride, channels=out_chs, act=self.config.act)
        fields = dict(op.fields)
        fields["channels"] = out_chs
        if op.kind.option("stride") is not None:
            fields["stride"] = stride
        if self.config.act and op.kind.option("act") is not None and "act" not in fields:
            fields["act"] = self.config.act
        for dim, value in combo.items():
            if dim != "op" and op.applies(dim):
                fields["noskip" if dim == "residual" else dim] = (not value) if dim == "residual" else value
        block = BlockSpec.make(op.kind.name, **fields)
        op.kind.check(block, in_chs)
        return canonical_block(block, in_chs)

    def decode(self, pick, in_chs: int, divisor: int) -> tuple[BlockSpec, ...]:
        out = self.out_channels(pick(f"{self.name}.width", self.widths), divisor)
        blocks: list[BlockSpec] = []
        stride, chs = pick(f"{self.name}.stride", self.strides), in_chs
        for j in range(self.max_layers):
            if j >= self.min_layers and pick(f"{self.name}.l{j}.skip", (False, True)):
                continue
            block = self.realize(self._combo(pick, j), stride, chs, out)
            if block is not None:
                blocks.append(block)
                stride, chs = 1, out
        return tuple(blocks)

    def _combo(self, pick, slot: int) -> dict[str, Any]:
        scope = "" if self.config.choose_per == "stage" else f".l{slot}"
        return {dim: pick(f"{self.name}{scope}.{dim}", c) for dim, c in self.choice_dims.items()}

    def encode(self, blocks: tuple[BlockSpec, ...], in_chs: int, divisor: int) -> dict[str, Any] | None:
        """Some choices that decode to ``blocks`` (there may be several), or None if there are none."""
        for stride, width in itertools.product(self.strides, self.widths):
            out = self.out_channels(width, divisor)
            found = self._match(blocks, stride, in_chs, out)
            if found is not None:
                return {f"{self.name}.stride": stride, f"{self.name}.width": width, **found}
        return None

    def _match(
        self, blocks: tuple[BlockSpec, ...], stride: int, in_chs: int, out: int
    ) -> dict[str, Any] | None:
        if self.config.choose_per == "layer":
            return self._assign(blocks, stride, in_chs, out, self.combos)
        # one combo for the whole stage: the first block alone may not pin it (residual at stride 2)
        return next(
            (f for c in self.combos if (f := self._assign(blocks, stride, in_chs, out, [c])) is not None),
            None,
        )

    def _assign(self, blocks, stride: int, in_chs: int, out: int, candidates) -> dict[str, Any] | None:
        """Fill the slots in order, each with the first candidate that yields the next block."""
        found: dict[str, Any] = {}
        scope = "" if self.config.choose_per == "stage" else ".l{}"
        chs, used = in_chs, 0
        for j in range(self.max_layers):
            target = blocks[used] if used < len(blocks) else None
            if j >= self.min_layers:
                found[f"{self.name}.l{j}.skip"] = target is None
                if target is None:
                    continue
            combo = next((c for c in candidates if self.realize(c, stride, chs, out) == target), None)
            if combo is None:
                return None
            found.update({f"{self.name}{scope.format(j)}.{dim}": value for dim, value in combo.items()})
            if target is not None:
                used, stride, chs = used + 1, 1, out
        return found if used == len(blocks) else None

    def count(self) -> int:
        """Distinct choice assignments that shape this stage (a skipped slot's choices don't count)."""
        per_layer = sum(math.prod(len(c) for d, c in self.dims.items() if op.applies(d)) for op in self.ops)
        total = 0
        for depth in range(self.min_layers, self.max_layers + 1):
            layers = depth if self.config.choose_per == "layer" else min(depth, 1)
            total += 1 if depth == 0 else len(self.strides) * len(self.widths) * per_layer**layers
        return total


class SearchSpace:
    """A space loaded from YAML: sample, mutate, suggest (Optuna) and size, all in ``ArchSpec`` values."""

    def __init__(self, config: SpaceConfig, source: str = "<space>") -> None:
        self.config = config
        self.name = config.name
        self.source = source
        self.stem = _parse_single(config.stem, source, "stem")
        self.head = _parse_single(config.head, source, "head")
        self.stem_strides = _stem_strides(self.stem, config.stem_stride, source)
        self.stages = tuple(_make_stage(stage, i, source) for i, stage in enumerate(config.stages))
        stem_params = [Param(STEM_STRIDE, self.stem_strides)] if len(self.stem_strides) > 1 else []
        self.params = tuple(stem_params + [p for stage in self.stages for p in stage.params()])
        self._validate()

    @property
    def stems(self) -> tuple[BlockSpec, ...]:
        """The stem at each of its stride choices, in choice order."""
        return tuple(self._stem_at(s) for s in self.stem_strides)

    def _stem_at(self, stride: int) -> BlockSpec:
        return self.stem if len(self.stem_strides) == 1 else self.stem.replace(stride=stride)

    @classmethod
    def from_yaml(cls, path_or_name: str | Path) -> SearchSpace:
        """Load a space file, or a bundled space by name (``mnasnet``)."""
        path = find_space_file(path_or_name)
        return cls(read_space_config(path), str(path))

    def decode(self, choices: Mapping[str, Any]) -> ArchSpec:
        """The architecture a full choice vector describes."""

        def pick(name: str, options: tuple[Any, ...]) -> Any:
            if len(options) == 1:
                return options[0]
            if name not in choices:
                raise ConfigError(f"space '{self.name}': no value for parameter '{name}'")
            return choices[name]

        stem = self._stem_at(pick(STEM_STRIDE, self.stem_strides))
        chs = stem.channels
        stages = []
        for stage in self.stages:
            blocks = stage.decode(pick, chs, self.config.channel_divisor)
            stages.append(blocks)
            chs = blocks[-1].channels if blocks else chs
        return ArchSpec(stem, tuple(stages), self.head, self.config.dims)

    def encode(self, arch: ArchSpec) -> dict[str, Any]:
        """A choice vector that decodes to ``arch``; ``ConfigError`` if the arch is not in this space."""
        if arch.stem not in self.stems or arch.head != self.head or len(arch.stages) != len(self.stages):
            raise ConfigError(f"arch is not in space '{self.name}' (stem, head or stage count differ)")
        if arch.dims != self.config.dims:
            raise ConfigError(f"arch is {arch.dims}-D, space '{self.name}' is {self.config.dims}-D")
        found = {p.name: p.choices[0] for p in self.params}
        if STEM_STRIDE in found:
            found[STEM_STRIDE] = self.stem_strides[self.stems.index(arch.stem)]
        chs = self.stem.channels
        for stage, blocks in zip(self.stages, arch.stages, strict=True):
            part = stage.encode(blocks, chs, self.config.channel_divisor)
            if part is None:
                raise ConfigError(
                    f"arch is not in space '{self.name}': stage '{stage.name}' cannot be '{blocks}'"
                )
            found.update({k: v for k, v in part.items() if k in found})
            chs = blocks[-1].channels if blocks else chs
        return found

    def sample_choices(self, rng: random.Random) -> dict[str, Any]:
        return {p.name: rng.choice(p.choices) for p in self.params}

    def sample(self, rng: random.Random) -> ArchSpec:
        """A uniformly random choice vector, decoded."""
        return self.decode(self.sample_choices(rng))

    def suggest(self, trial: Any) -> ArchSpec:
        """Ask an Optuna trial for every parameter (always the same set) and decode the answers."""
        return self.decode({p.name: trial.suggest_categorical(p.name, list(p.choices)) for p in self.params})

    def mutate(self, arch: ArchSpec, rng: random.Random, attempts: int = 100) -> ArchSpec:
        """Change one parameter of ``arch`` so that the network changes (regularized evolution's step)."""
        choices = self.encode(arch)
        if not self.params:
            raise ConfigError(f"space '{self.name}' has no choices to mutate")
        for _ in range(attempts):
            param = rng.choice(self.params)
            child = self.decode(
                {**choices, param.name: rng.choice([c for c in param.choices if c != choices[param.name]])}
            )
            if child != arch:
                return child
        raise ConfigError(f"space '{self.name}': no mutation of '{arch}' changes the network")

    def log10_size(self) -> float:
        """log10 of the number of distinct choice assignments that shape a network."""
        return math.log10(len(self.stem_strides)) + sum(math.log10(stage.count()) for stage in self.stages)

    def _validate(self) -> None:
        """Realize every op with every choice once, so a bad space fails on load, not mid-search."""
        divisor = self.config.channel_divisor
        in_options = {self.stem.channels}
        names = [s.name for s in self.stages]
        for stage in self.stages:
            where = f"{self.source}: stage '{stage.name}'"
            if names.count(stage.name) > 1:
                raise SpaceError(f"{where}: key 'name': stage names must be unique")
            if stage.name == "stem" and len(self.stem_strides) > 1:
                raise SpaceError(
                    f"{where}: key 'name': 'stem' would clash with the parameter '{STEM_STRIDE}'"
                )
            if max(stage.strides) != 1 and stage.min_layers == 0:
                raise SpaceError(f"{where}: key 'layers': a stride-{max(stage.strides)} stage needs min >= 1")
            for op in stage.ops:
                _check_op(op, stage, where)
            for dim in stage.dims:
                if not any(op.applies(dim) for op in stage.ops):
                    raise SpaceError(f"{where}: key '{dim}': none of the ops takes this choice")
            outs = {stage.out_channels(w, divisor) for w in stage.widths}
            strides = {*stage.strides, 1}  # the first layer's choices; later layers run at stride 1
            for combo, stride, in_chs, out in itertools.product(
                stage.combos, strides, in_options | outs, outs
            ):
                try:
                    stage.realize(combo, stride, in_chs, out)
                except ValueError as exc:
                    raise SpaceError(f"{where}: key 'ops': op '{combo['op']}' with {combo}: {exc}") from None
            in_options = outs | (in_options if stage.min_layers == 0 else set())


def _stem_strides(stem: BlockSpec, choices: int | list[int] | None, source: str) -> tuple[int, ...]:
    """The stem's stride choices: ``stem_stride``, or the stem's own stride when that is absent."""
    own = stem.stride if stem.has("stride") else 1
    if choices is None:
        return (own,)
    strides = tuple(choices) if isinstance(choices, list) else (choices,)
    if strides != (own,) and not stem.has("stride"):
        raise SpaceError(f"{source}: key 'stem_stride': stem '{stem}' has no stride to choose")
    if own not in strides:
        raise SpaceError(f"{source}: key 'stem_stride': must include the stride of stem '{stem}' ({own})")
    return strides


def _make_stage(config: StageConfig, index: int, source: str) -> Stage:
    try:
        return Stage(config, index)
    except ValueError as exc:  # an op token that does not parse
        raise SpaceError(f"{source}: stage '{config.name or f's{index + 1}'}': key 'ops': {exc}") from None


def _parse_op(token: str) -> Op:
    if token == SKIP_OP:
        return Op(token, None, ())
    kind, fields, repeat = parse_fields(token)
    if repeat != 1:
        raise ConfigError(f"op '{token}' cannot repeat; use 'layers'")
    return Op(token, kind, tuple(fields.items()))


def _check_op(op: Op, stage: Stage, where: str) -> None:
    if op.kind is None:
        return
    fields = dict(op.fields)
    if op.kind.is_head or op.kind.option("channels") is None:
        raise SpaceError(f"{where}: key 'ops': op '{op.token}' must be a block with output channels")
    for fixed in ("channels", "stride"):
        if fixed in fields:
            raise SpaceError(f"{where}: key 'ops': op '{op.token}' must not set {fixed} (the stage does)")
    if max(stage.strides) != 1 and op.kind.option("stride") is None:
        raise SpaceError(f"{where}: key 'ops': op '{op.token}' cannot downsample")
    for dim in stage.dims:
        field = "noskip" if dim == "residual" else dim
        if field in fields:
            raise SpaceError(f"{where}: key '{dim}': op '{op.token}' already sets it")


def _parse_single(text: str, source: str, key: str) -> BlockSpec:
    try:
        block, repeat = parse_block(text)
    except ValueError as exc:
        raise SpaceError(f"{source}: key '{key}': {exc}") from None
    if repeat != 1 or block.kind.is_head != (key == "head"):
        raise SpaceError(f"{source}: key '{key}': '{text}' is not a single {key} block")
    return block


def find_space_file(path_or_name: str | Path) -> Path:
    """A space file by path (from the working directory, else the shipped copy) or a bundled space by name."""
    path = find_shipped(path_or_name, "search_spaces")
    if path.is_file():
        return path
    what = "is a folder, not a space file" if path.is_dir() else "no such space file"
    raise SpaceError(f"{path}: {what} (bundled spaces: {', '.join(list_bundled())})")


def list_bundled() -> list[str]:
    return bundled_names("search_spaces")
