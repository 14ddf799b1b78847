"""What an export format is: the ``ExportFormat`` protocol, what it is given (``ExportOptions``, the
``Reference``), and nothing else, so that format modules and the pipeline depend on this module and not
on each other.

A format is one module with a ``FORMAT`` object plus one line in ``nas.export.FORMATS`` (or, from
another package, an entry point ``format.<name>`` in the group ``nas.plugins``)::

    class Tflite:
        name = "tflite"
        options = ()  # of FORMAT_OPTIONS: the ones it takes (tvm takes "target" and "tune")

        def check(self, options): ...           # one-line NasErrors, before anything is built
        def export(self, model, reference, options, out_dir): ...  # writes files, returns its card section
        def card_lines(self, section): ...      # its part of model_card.md
        def summary(self, section): ...         # its line in what ``nas export`` prints

    FORMAT = Tflite()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from nas.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

FORMAT_OPTIONS = ("target", "tune", "int8")
"""Options that only some formats take (each is the ``--`` flag of the same name); a format lists the ones
it takes in its ``options``, and giving one to another format is a one-line error. Unset is None or False,
or the value in ``FORMAT_OPTION_DEFAULTS``."""
FORMAT_OPTION_DEFAULTS = {"target": "host"}
"""Values that say what leaving the option out says, for every format: ``--target host`` is this machine."""
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")  # of INT8 activation ranges


@dataclass(frozen=True)
class ExportOptions:
    """How to export: format, INT8, pruning and fine-tuning, timing, and where the files go."""

    out_dir: Path | None = None  # None: the source's default (``Source.default_out``)
    format: str = "onnx"
    target: str | None = None
    tune: int | None = None  # MetaSchedule trials (tvm)
    int8: bool = False
    calibration_images: int = 256
    calibration_method: str = "minmax"
    prune: float | None = None
    finetune_epochs: int = 3
    round_to: int | None = 8  # pruned widths: multiples of 8 (see nas.export.prune)
    table: Path | None = None
    rounds: int = 100
    threads: int | None = None  # torch threads for fine-tuning; ONNX Runtime always runs on 1
    seed: int = 0

    def __post_init__(self) -> None:
        """The checks ``nas export``'s argument types make, for options built in Python (``nas.export``):
        one-line ``UsageError``s in the CLI's flag names."""
        for name, low in (("calibration_images", 1), ("finetune_epochs", 0), ("rounds", 1)):
            _check_int(name, getattr(self, name), low)
        for name in ("tune", "round_to", "threads"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        if not isinstance(self.int8, bool):
            raise UsageError(f"--int8 must be True or False, got {self.int8!r}")
        if self.calibration_method not in CALIBRATION_METHODS:
            raise UsageError(
                f"--calibration-method must be one of {', '.join(CALIBRATION_METHODS)}, "
                f"got {self.calibration_method!r}"
            )
        if self.prune is not None and not (_is_number(self.prune) and 0 < self.prune < 1):
            raise UsageError(f"--prune must be between 0 and 1 (exclusive), got {self.prune!r}")


def _check_int(name: str, value: Any, low: int) -> None:
    flag = f"--{name.replace('_', '-')}"
    if not (_is_number(value) and isinstance(value, int)):
        raise UsageError(f"{flag} must be an integer, got {value!r}")
    if value < low:
        raise UsageError(f"{flag} must be >= {low}, got {value}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class InputKind(NamedTuple):
    """The deployment contract's input of one kind of network, as every file words it."""

    layout: str
    short: str  # in the ONNX metadata, after the shape
    words: str  # in the model card and model_tvm.json
    range: list[float] | None  # None: unbounded


INPUT_KINDS = {
    2: InputKind("NCHW", "[0, 1]", "raw pixels in [0, 1]", [0.0, 1.0]),
    1: InputKind("NCL", "raw signal", "the raw signal", None),
}


def input_kind(input_shape: Sequence[Any]) -> InputKind:
    """The input of a model taking ``input_shape`` (batch first, from ``ArchSpec.input_shape``): images
    are float32 NCHW in [0, 1], signals (1-D archs) float32 NCL as recorded."""
    return INPUT_KINDS[len(input_shape) - 2]


@dataclass(frozen=True)
class Reference:
    """What a format's output is checked and timed against, and what its files must say about the model."""

    onnx_fp32: bytes  # the fp32 ONNX model, as written to model.onnx
    images: np.ndarray  # parity inputs as the model takes them (real test inputs when there is data)
    input_shape: tuple[int, ...]  # (1, channels, size, size), or (1, channels, length) for a 1-D arch
    class_names: list[str]
    task: str


class ExportFormat(Protocol):
    """One export format (see the module docstring)."""

    name: str
    options: tuple[str, ...]

    def check(self, options: ExportOptions) -> None:
        """Raise a one-line ``NasError`` for anything this format cannot do with ``options``."""
        ...

    def export(
        self, model: nn.Module, reference: Reference, options: ExportOptions, out_dir: Path
    ) -> dict[str, Any] | None:
        """Write this format's files for ``model`` (the normalized network, eval mode, under no_grad)
        into ``out_dir`` and check them; returns its model card section (None: it adds none)."""
        ...

    def card_lines(self, section: dict[str, Any]) -> list[str]:
        """The section as Markdown lines for ``model_card.md``."""
        ...

    def summary(self, section: dict[str, Any]) -> str:
        """The section as one line of what ``nas export`` prints."""
        ...
