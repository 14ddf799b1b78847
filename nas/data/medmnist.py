"""MedMNIST v2 / MedMNIST+ ``.npz`` files: the 12 2D datasets at 28, 64, 128 and 224 pixels.

Nothing is downloaded: a file is looked up in an explicit folder or path, ``$MEDMNIST_ROOT``,
``~/.medmnist/`` and the repository's CI data folder (``../shared/data`` beside the repo); a missing
file raises a one-line ``DataError`` naming where to put it and where to get it.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from nas.data.splits import Split, Splits
from nas.errors import DataError

SIZES = (28, 64, 128, 224)
URL = "https://zenodo.org/records/10519652/files/{file}?download=1"
_ORGAN = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)


@dataclass(frozen=True)
class DatasetInfo:
    task: str
    n_channels: int
    labels: tuple[str, ...]


# MedMNIST v2 (Yang et al. 2023), Table 3: ResNet-18 (28) test figures, what a 28 px model is held to.
PUBLISHED_RESNET18: dict[str, dict[str, float]] = {
    "pneumoniamnist": {"auc": 0.944, "accuracy": 0.854},
    "retinamnist": {"auc": 0.717, "accuracy": 0.524},
}

# From MedMNIST's INFO (medmnist/info.py). RetinaMNIST is ordinal regression; like MedMNIST's own
# baselines it is trained and scored as multi-class.
DATASETS: dict[str, DatasetInfo] = {
    "pathmnist": DatasetInfo(
        "multi-class",
        3,
        (
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ),
    ),
    "chestmnist": DatasetInfo(
        "multi-label",
        1,
        (
            "atelectasis",
            "cardiomegaly",
            "effusion",
            "infiltration",
            "mass",
            "nodule",
            "pneumonia",
            "pneumothorax",
            "consolidation",
            "edema",
            "emphysema",
            "fibrosis",
            "pleural",
            "hernia",
        ),
    ),
    "dermamnist": DatasetInfo(
        "multi-class",
        3,
        (
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ),
    ),
    "octmnist": DatasetInfo(
        "multi-class", 1, ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal")
    ),
    "pneumoniamnist": DatasetInfo("binary", 1, ("normal", "pneumonia")),
    "retinamnist": DatasetInfo("multi-class", 3, ("0", "1", "2", "3", "4")),
    "breastmnist": DatasetInfo("binary", 1, ("malignant", "normal, benign")),
    "bloodmnist": DatasetInfo(
        "multi-class",
        3,
        (
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes (myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ),
    ),
    "tissuemnist": DatasetInfo(
        "multi-class",
        1,
        (
            "Collecting Duct, Connecting Tubule",
            "Distal Convoluted Tubule",
            "Glomerular endothelial cells",
            "Interstitial endothelial cells",
            "Leukocytes",
            "Podocytes",
            "Proximal Tubule Segments",
            "Thick Ascending Limb",
        ),
    ),
    "organamnist": DatasetInfo("multi-class", 1, _ORGAN),
    "organcmnist": DatasetInfo("multi-class", 1, _ORGAN),
    "organsmnist": DatasetInfo("multi-class", 1, _ORGAN),
}


MEDMNIST_CITATION = (
    "Yang, J., Shi, R., Wei, D., Liu, Z., Zhao, L., Ke, B., Pfister, H., Ni, B. MedMNIST v2 - A large-scale "
    "lightweight benchmark for 2D and 3D biomedical image classification. Scientific Data 10, 41 (2023)."
)
SOURCE_CITATIONS = {
    "pneumoniamnist": "Kermany, D. S. et al. Identifying medical diagnoses and treatable diseases by "
    "image-based deep learning. Cell 172(5), 1122-1131 (2018).",
}


@dataclass(frozen=True)
class MedMnist:
    """One MedMNIST dataset as a ``nas.data`` registry entry: loads any of its sizes, knows its licence."""

    name: str

    @property
    def info(self) -> DatasetInfo:
        return DATASETS[self.name]

    def load(self, size: int) -> Splits:
        return load_medmnist(self.name, size)

    def shape(self) -> tuple[int, int]:
        """Input channels and classes, known without reading the file."""
        return self.info.n_channels, len(self.info.labels)

    def card(self) -> dict[str, Any]:
        licence = "CC BY-NC 4.0" if self.name == "dermamnist" else "CC BY 4.0"
        extra = [SOURCE_CITATIONS[self.name]] if self.name in SOURCE_CITATIONS else []
        return {"collection": "MedMNIST v2", "licence": licence, "citation": [MEDMNIST_CITATION, *extra]}


MEDMNIST = SimpleNamespace(**{name: MedMnist(name) for name in DATASETS})
"""The registry's targets: ``nas.data.medmnist:MEDMNIST.pneumoniamnist``."""


def file_name(name: str, size: int = 28) -> str:
    """MedMNIST's naming: ``pneumoniamnist.npz`` at 28 pixels, ``pneumoniamnist_64.npz`` above."""
    if size not in SIZES:
        raise DataError(f"MedMNIST comes in sizes {', '.join(map(str, SIZES))}, not {size}")
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def search_dirs(root: str | Path | None = None) -> list[Path]:
    """Where files are looked for, in order: ``root``, ``$MEDMNIST_ROOT``, ``~/.medmnist``, the CI folder."""
    dirs = [Path(root)] if root is not None else []
    if os.environ.get("MEDMNIST_ROOT"):
        dirs.append(Path(os.environ["MEDMNIST_ROOT"]))
    dirs.append(Path.home() / ".medmnist")
    dirs.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    return dirs


def find_file(name: str, size: int = 28, root: str | Path | None = None) -> Path:
    """The path of a MedMNIST file, or a one-line ``DataError`` saying where to put it."""
    name = name.lower()
    if name not in DATASETS:
        raise DataError(f"unknown MedMNIST dataset '{name}' (known: {', '.join(DATASETS)})")
    file = file_name(name, size)
    dirs = search_dirs(root)
    for folder in dirs:
        if (folder / file).is_file():
            return folder / file
    target = dirs[0] / file
    raise DataError(
        f"{file} not found in {', '.join(map(str, dirs))}: put it at {target} (or set MEDMNIST_ROOT); "
        f"nothing is downloaded, get it from {URL.format(file=file)}"
    )


def load_medmnist(name: str, size: int = 28, root: str | Path | None = None) -> Splits:
    """A MedMNIST dataset by name (``pneumoniamnist``) and image size."""
    return load_npz(find_file(name, size, root))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a .npz file. A file that is not one (a renamed text file, a cut download) or that
    holds object arrays (loading those would run pickled code) is a one-line ``DataError``."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not a .npz archive (numpy.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path} holds object arrays, which are not loaded: save numbers") from None
        raise DataError(f"{path} is not a readable .npz file: {exc}") from None


def load_npz(path: str | Path) -> Splits:
    """A file in MedMNIST's layout (``{train,val,test}_{images,labels}``); the dataset is recognized by
    its file name (``pneumoniamnist_64.npz``), otherwise the task is inferred from the labels."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no MedMNIST .npz file at {path}")
    arrays = read_npz(path)
    missing = [f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")]
    missing = [key for key in missing if key not in arrays]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)} (MedMNIST layout expected)")
    name = path.stem.rsplit("_", 1)[0] if path.stem.rsplit("_", 1)[-1].isdigit() else path.stem
    labels = {s: np.asarray(arrays[f"{s}_labels"]) for s in ("train", "val", "test")}
    for split, values in labels.items():
        _check_class_indices(values, f"{path}: {split}_labels")
    images = {s: _nhwc(arrays[f"{s}_images"], path) for s in labels}
    channels = images["train"].shape[3]
    info = DATASETS.get(name.lower()) or _infer_info(labels, channels)
    if info.n_channels != channels:
        raise DataError(f"{path}: {name} has {info.n_channels} channel(s), the file has {channels}")
    splits = {s: Split(images[s], _labels(labels[s], info.task)) for s in labels}
    return Splits(name, info.task, info.labels, splits["train"], splits["val"], splits["test"])


def _nhwc(images: np.ndarray, path: Path) -> np.ndarray:
    if images.dtype != np.uint8:
        raise DataError(f"{path}: images must be uint8, got {images.dtype}")
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)):
        raise DataError(f"{path}: images must be (N, H, W) or (N, H, W, 3), got {images.shape}")
    if images.shape[1] != images.shape[2]:  # networks, tables and exports take one side
        raise DataError(f"{path}: images are {images.shape[1]}x{images.shape[2]}; resize or crop them square")
    return images[..., None] if images.ndim == 3 else images


def _check_class_indices(values: np.ndarray, where: str) -> None:
    """Labels are class indices 0, 1, ... (whole floats too); a fraction or a negative one would be
    truncated or shifted into another class silently."""
    if not values.size:
        return
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise DataError(f"{where} must be class indices 0, 1, ..., not {values.dtype}")
    wrong = values[(values != np.round(values)) | (values < 0)]
    if wrong.size:
        raise DataError(f"{where} must be class indices 0, 1, ...; found {wrong.flat[0]:g}")


def _labels(labels: np.ndarray, task: str) -> np.ndarray:
    if task == "multi-label":
        return labels.astype(np.int64).reshape(len(labels), -1)
    return labels.astype(np.int64).reshape(-1)


def _infer_info(labels: dict[str, np.ndarray], n_channels: int) -> DatasetInfo:
    """A file that is not one of MedMNIST's: several label columns are multi-label, else classes 0 to
    the largest label of any split (``check_splits`` then names a label that only one split has)."""
    train_labels = labels["train"]
    if train_labels.ndim == 2 and train_labels.shape[1] > 1:
        task, count = "multi-label", train_labels.shape[1]
    else:
        count = max((int(v.max()) for v in labels.values() if v.size), default=1) + 1
        task = "binary" if count == 2 else "multi-class"
    return DatasetInfo(task, n_channels, tuple(str(i) for i in range(count)))
