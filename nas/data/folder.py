"""A folder of images, one sub-folder per class: the user's own data in the same ``Splits`` value.

The train/val/test split is stratified and depends only on the file names and the seed, so it is the
same on every machine and every run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from nas.data.splits import Split, Splits
from nas.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def load_folder(
    root: str | Path,
    size: int = 28,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    channels: int | None = None,
) -> Splits:
    """Images under ``root/<class>/`` resized to ``size`` x ``size``.

    ``channels`` 1 or 3 forces grayscale or RGB; by default grayscale when every image is grayscale (X-rays),
    RGB otherwise. Two classes make a binary task, more a multi-class one.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no image folder at {root}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(f"bad split fractions: val {val_fraction}, test {test_fraction}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = {c: sorted(p for p in (root / c).rglob("*") if p.suffix.lower() in EXTENSIONS) for c in classes}
    classes = [c for c in classes if files[c]]
    if len(classes) < 2:
        raise DataError(
            f"{root} needs at least 2 sub-folders of images (one per class), found {len(classes)}"
        )
    opened = [(i, p) for i, c in enumerate(classes) for p in files[c]]
    try:
        channels = channels or _channels([p for _, p in opened])
        images = np.stack([_read(p, size, channels) for _, p in opened])
    except OSError as exc:  # PIL's UnidentifiedImageError included
        raise DataError(f"cannot read an image under {root}: {exc}") from None
    labels = np.array([i for i, _ in opened], dtype=np.int64)
    part = _assign(
        np.array([str(p.relative_to(root)) for _, p in opened]), labels, val_fraction, test_fraction, seed
    )
    splits = [Split(images[part == k], labels[part == k]) for k in range(3)]
    task = "binary" if len(classes) == 2 else "multi-class"
    return Splits(root.name, task, tuple(classes), *splits)


def _channels(paths: list[Path]) -> int:
    """1 when every image is grayscale (X-rays, CT), else 3."""
    from PIL import Image

    for path in paths:
        with Image.open(path) as img:
            if img.mode not in _GRAY_MODES:
                return 3
    return 1


def _read(path: Path, size: int, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        if img.mode in ("I", "I;16", "F"):  # 16-bit / float scans: scale to 8 bits before converting
            values = np.asarray(img, dtype=np.float64)
            span = max(values.max() - values.min(), 1e-12)
            img = Image.fromarray(((values - values.min()) / span * 255).astype(np.uint8))
        img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(img, dtype=np.uint8)
    return pixels[..., None] if channels == 1 else pixels


def _assign(names: np.ndarray, labels: np.ndarray, val: float, test: float, seed: int) -> np.ndarray:
    """0/1/2 = train/val/test per file: within each class, files ordered by a seeded hash of their name."""
    part = np.zeros(len(names), dtype=np.int64)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        keys = [hashlib.sha256(f"{seed}:{names[i]}".encode()).hexdigest() for i in idx]
        idx = idx[np.argsort(keys, kind="stable")]
        n_test = round(len(idx) * test)
        n_val = round(len(idx) * val)
        part[idx[:n_test]] = 2
        part[idx[n_test : n_test + n_val]] = 1
    return part
