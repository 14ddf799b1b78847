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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

FORMAT_OPTIONS = ("target", "tune", "int8")
"""Options that only some formats take (each is the ``--`` flag of the same name); a format lists the ones
it takes in its ``options``, and giving one to another format is a one-line error."""


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


@dataclass(frozen=True)
class Reference:
    """What a format's output is checked and timed against, and what its files must say about the model."""

    onnx_fp32: bytes  # the fp32 ONNX model, as written to model.onnx
    images: np.ndarray  # parity images: float32 NCHW in [0, 1], real test images when there is data
    input_shape: tuple[int, ...]  # (1, channels, size, size)
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
