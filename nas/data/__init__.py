"""Datasets as one ``Splits`` value: MedMNIST ``.npz`` files and folders of images."""

from __future__ import annotations

from pathlib import Path

from nas.data.folder import load_folder
from nas.data.medmnist import DATASETS, load_medmnist, load_npz
from nas.data.splits import Split, Splits


def load_dataset(name_or_path: str | Path, size: int = 28) -> Splits:
    """A MedMNIST name (``pneumoniamnist``), a ``.npz`` file in MedMNIST's layout, a folder of images
    with one sub-folder per class, or ``synthetic`` (the generated demo task, seed 0)."""
    text = str(name_or_path)
    if text == "synthetic":
        from nas.data.synthetic import synthetic_splits

        return synthetic_splits(size)
    if text.lower() in DATASETS:
        return load_medmnist(text.lower(), size)
    path = Path(text).expanduser()
    if path.is_dir():
        return load_folder(path, size)
    if path.suffix == ".npz":
        splits = load_npz(path)
        if splits.input_size != size:
            raise ValueError(
                f"{path} holds {splits.input_size}x{splits.input_size} images, not {size}x{size}"
            )
        return splits
    raise ValueError(
        f"'{text}' is neither a MedMNIST dataset ({', '.join(DATASETS)}), a .npz file, a folder of images, "
        "nor 'synthetic'"
    )


__all__ = ["DATASETS", "Split", "Splits", "load_dataset", "load_folder", "load_medmnist", "load_npz"]
