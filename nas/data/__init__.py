"""Datasets as one ``Splits`` value: registered datasets by name (MedMNIST, ``ecg5000``, ``synthetic``),
``.npz`` files (MedMNIST's images or signals), folders of images, and UCR/UEA signal file pairs.

A dataset others can name is one module with an object that has ``load(size) -> Splits``,
``shape() -> (channels, classes)`` and ``card() -> {licence, citation, ...}`` (see ``Dataset``), plus one
line in ``DATASETS`` (or an entry point ``dataset.<name>`` in the group ``nas.plugins``). A signal dataset
also sets ``modality = "signal"``: its ``load`` then gets a length, or None for the data's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from nas.data.checks import check_splits
from nas.data.folder import load_folder
from nas.data.medmnist import DATASETS as MEDMNIST_INFO
from nas.data.medmnist import load_medmnist, load_npz
from nas.data.signals import is_signals, load_signals
from nas.data.splits import IMAGE, SIGNAL, Split, Splits
from nas.errors import DataError
from nas.registry import Registry


class Dataset(Protocol):
    def load(self, size: int) -> Splits:
        """The train/val/test splits at ``size`` pixels; a ``DataError`` says what is missing."""
        ...

    def shape(self) -> tuple[int, int]:
        """Input channels and classes, without loading the data."""
        ...

    def card(self) -> dict[str, Any]:
        """``licence`` (and ``collection``, ``citation``) for the model card."""
        ...


DATASETS: Registry[Dataset] = Registry(
    "dataset",
    {
        "synthetic": "nas.data.synthetic:DATASET",
        "ecg5000": "nas.data.signals:ECG5000",
        **{name: f"nas.data.medmnist:MEDMNIST.{name}" for name in MEDMNIST_INFO},
    },
    casefold=True,
)


IMAGE_SIZE = 28
"""The image side every caller passes when the user gave none."""


def load_dataset(name_or_path: str | Path, size: int | None = IMAGE_SIZE) -> Splits:
    """A registered name (``pneumoniamnist``, ``ecg5000``, ``synthetic``), a ``.npz`` file (MedMNIST's
    layout or ``{split}_signals``), a folder of images with one sub-folder per class, or a UCR/UEA
    ``NAME_TRAIN``/``NAME_TEST`` ``.tsv``/``.ts`` pair (either file, or the folder holding it).

    For images ``size`` is the side in pixels (None: a .npz file's own size, 28 for the rest). For signals
    it is the length, checked and never resampled; None and 28 both mean the data's own length, because
    28 is what callers pass when the user gave no size, so a signal set loads wherever an image set does.
    Data no model could learn and be scored on is a one-line ``DataError`` (``check_splits``)."""
    return check_splits(_load(name_or_path, size))


def _load(name_or_path: str | Path, size: int | None) -> Splits:
    text = str(name_or_path)
    if text in DATASETS:
        dataset = DATASETS.get(text)
        if getattr(dataset, "modality", IMAGE) == SIGNAL:
            return dataset.load(_length(size))
        return dataset.load(size or IMAGE_SIZE)
    path = Path(text).expanduser()
    if is_signals(path):
        return load_signals(path, _length(size))
    if path.is_dir():
        return load_folder(path, size or IMAGE_SIZE)
    if path.suffix.lower() == ".npz":
        splits = load_npz(path)
        if size is not None and splits.input_size != size:
            raise DataError(f"{path} holds {splits.input_size}x{splits.input_size} images, not {size}x{size}")
        return splits
    raise DataError(
        f"'{text}' is neither a known dataset ({', '.join(DATASETS.names())}), a .npz file, a folder of "
        "images, nor a NAME_TRAIN/NAME_TEST .tsv or .ts file (or their folder)"
    )


def _length(size: int | None) -> int | None:
    """A signal length asked for: none when ``size`` is None or the image default."""
    return None if size == IMAGE_SIZE else size


def dataset_card(name: str | None) -> dict[str, Any]:
    """The model card's ``dataset`` section: name, licence and citation, as far as they are known."""
    if name is None:
        return {"name": None, "licence": "no dataset (untrained network)"}
    if name in DATASETS:
        return {"name": name, **DATASETS.get(name).card()}
    return {"name": name, "licence": "user-supplied data: licence not recorded, check before sharing"}


__all__ = [
    "DATASETS",
    "Dataset",
    "Split",
    "Splits",
    "dataset_card",
    "load_dataset",
    "load_folder",
    "load_medmnist",
    "load_npz",
    "load_signals",
]
