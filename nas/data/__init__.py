"""Datasets as one ``Splits`` value: registered datasets by name (MedMNIST, ``synthetic``), MedMNIST-layout
``.npz`` files, and folders of images.

A dataset others can name is one module with an object that has ``load(size) -> Splits``,
``shape() -> (channels, classes)`` and ``card() -> {licence, citation, ...}`` (see ``Dataset``), plus one
line in ``DATASETS`` (or an entry point ``dataset.<name>`` in the group ``nas.plugins``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from nas.data.checks import check_splits
from nas.data.folder import load_folder
from nas.data.medmnist import DATASETS as MEDMNIST_INFO
from nas.data.medmnist import load_medmnist, load_npz
from nas.data.splits import Split, Splits
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
        **{name: f"nas.data.medmnist:MEDMNIST.{name}" for name in MEDMNIST_INFO},
    },
    casefold=True,
)


def load_dataset(name_or_path: str | Path, size: int | None = 28) -> Splits:
    """A registered name (``pneumoniamnist``, ``synthetic``), a ``.npz`` file in MedMNIST's layout, or a
    folder of images with one sub-folder per class, at ``size`` pixels (None: a .npz file's own size,
    28 for the rest); data no model could learn and be scored on is a one-line ``DataError``
    (``check_splits``)."""
    return check_splits(_load(name_or_path, size))


def _load(name_or_path: str | Path, size: int | None) -> Splits:
    text = str(name_or_path)
    if text in DATASETS:
        return DATASETS.get(text).load(size or 28)
    path = Path(text).expanduser()
    if path.is_dir():
        return load_folder(path, size or 28)
    if path.suffix == ".npz":
        splits = load_npz(path)
        if size is not None and splits.input_size != size:
            raise DataError(f"{path} holds {splits.input_size}x{splits.input_size} images, not {size}x{size}")
        return splits
    raise DataError(
        f"'{text}' is neither a known dataset ({', '.join(DATASETS.names())}), a .npz file, "
        "nor a folder of images"
    )


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
]
