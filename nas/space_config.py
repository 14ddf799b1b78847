"""The YAML schema of a search space, validated on load with one-line errors naming file, stage, key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from nas.blocks.base import ACTIVATIONS
from nas.errors import ConfigError

ActName = Literal[ACTIVATIONS]  # type: ignore[valid-type]


class SpaceError(ConfigError):
    """A search-space file that cannot be used; the message is one line naming file, stage and key."""


class LayerRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: int = Field(ge=0)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> LayerRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


# ``layers`` is a count or a {min, max} mapping; the discriminator picks the branch, so errors name one
LayerCount = Annotated[
    Annotated[int, Field(ge=1), Tag("count")] | Annotated[LayerRange, Tag("range")],
    Discriminator(lambda v: "range" if isinstance(v, dict | LayerRange) else "count"),
]


def _distinct_choices(values: list[Any] | None) -> list[Any] | None:
    if values is not None:
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:
            raise ValueError(f"choice {repeated[0]!r} is listed twice")
    return values


# ``stride`` is one value or a list of choices; the discriminator picks the branch, so errors name one
StrideChoices = Annotated[
    Annotated[int, Field(ge=1), Tag("one")]
    | Annotated[
        list[Annotated[int, Field(ge=1)]],
        Field(min_length=1),
        AfterValidator(_distinct_choices),
        Tag("choices"),
    ],
    Discriminator(lambda v: "choices" if isinstance(v, list) else "one"),
]
UNION_TAGS = ("count", "range", "one", "choices")  # branch names pydantic puts into an error's location


class StageConfig(BaseModel):
    """One stage: its stride (fixed, or a choice), base channels, and the choices its layers draw from."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    stride: StrideChoices = 1
    channels: int = Field(ge=1)
    act: ActName | None = None
    layers: LayerCount = 1
    choose_per: Literal["stage", "layer"] = "layer"
    ops: list[str] = Field(min_length=1)
    kernel: list[int] | None = Field(default=None, min_length=1)
    expand: list[float] | None = Field(default=None, min_length=1)
    se: list[float] | None = Field(default=None, min_length=1)
    hse: list[float] | None = Field(default=None, min_length=1)
    residual: list[bool] | None = Field(default=None, min_length=1)
    width: list[Annotated[float, Field(gt=0)]] | None = Field(default=None, min_length=1)

    @field_validator("ops", "kernel", "expand", "se", "hse", "residual", "width")
    @classmethod
    def _distinct(cls, values: list[Any] | None) -> list[Any] | None:
        return _distinct_choices(values)

    @property
    def strides(self) -> tuple[int, ...]:
        """The stride choices of the stage's first layer (one when the stride is fixed)."""
        return tuple(self.stride) if isinstance(self.stride, list) else (self.stride,)

    @property
    def min_layers(self) -> int:
        return self.layers if isinstance(self.layers, int) else self.layers.min

    @property
    def max_layers(self) -> int:
        return self.layers if isinstance(self.layers, int) else self.layers.max


class SpaceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    stem: str
    # choices for the stem's stride; absent (and left out of a dump, so stored configs keep their form):
    # the stem block's own stride
    stem_stride: StrideChoices | None = Field(default=None, exclude_if=lambda v: v is None)
    head: str
    # 1 for signal networks (1-D layers, a size is a length); 2, the default, is left out of a dump
    dims: Literal[1, 2] = Field(default=2, exclude_if=lambda v: v == 2)
    channel_divisor: int = Field(default=8, ge=1)
    stages: list[StageConfig] = Field(min_length=1)


def read_space_config(path: Path) -> SpaceConfig:
    """Read and validate a space file; every failure is a ``SpaceError`` with a one-line message."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpaceError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SpaceError(f"{path}: cannot read: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpaceError(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise SpaceError(f"{path}: expected a mapping with name, stem, head and stages")
    try:
        return SpaceConfig.model_validate(data)
    except ValidationError as exc:
        raise SpaceError(f"{path}: {_describe(exc.errors()[0], data)}") from None


def _describe(error: dict[str, Any], data: dict[str, Any]) -> str:
    loc = list(error["loc"])
    where = []
    if len(loc) >= 2 and loc[0] == "stages" and isinstance(loc[1], int):
        stages = data.get("stages") or []
        stage = stages[loc[1]] if loc[1] < len(stages) else {}
        name = stage.get("name") if isinstance(stage, dict) else None
        where.append(f"stage '{name or f's{loc[1] + 1}'}'")
        loc = loc[2:]
    keys = [str(part) for part in loc if not isinstance(part, int) and part not in UNION_TAGS]
    if keys:
        where.append(f"key '{'.'.join(keys)}'")
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown key"
    return ": ".join([*where, msg])
