"""Folder-of-images datasets: classes from sub-folders, deterministic stratified split."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nas.data import load_dataset, load_folder


def write_folder(root, counts=(10, 20), mode="L", size=40):
    rng = np.random.default_rng(0)
    for name, count in zip(("normal", "pneumonia"), counts, strict=True):
        (root / name).mkdir(parents=True)
        for i in range(count):
            shape = (size, size + i % 3) if mode == "L" else (size, size + i % 3, 3)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(
                root / name / f"{i:03d}.png"
            )
    return root


def test_grayscale_folder(tmp_path):
    splits = load_folder(write_folder(tmp_path / "xrays"), size=28)
    assert splits.name == "xrays" and splits.task == "binary"
    assert splits.class_names == ("normal", "pneumonia")
    assert splits.train.inputs.shape[1:] == (28, 28, 1)
    # stratified: 20% test, 10% val of each class
    assert sorted(np.bincount(splits.test.labels).tolist()) == [2, 4]
    assert sorted(np.bincount(splits.val.labels).tolist()) == [1, 2]
    assert len(splits.train) + len(splits.val) + len(splits.test) == 30


def test_split_is_deterministic(tmp_path):
    root = write_folder(tmp_path / "xrays")
    a, b = load_folder(root), load_folder(root)
    assert np.array_equal(a.test.inputs, b.test.inputs)
    c = load_folder(root, seed=1)
    assert not np.array_equal(a.test.inputs, c.test.inputs)


def test_rgb_and_forced_channels(tmp_path):
    root = write_folder(tmp_path / "derm", mode="RGB")
    assert load_folder(root).n_channels == 3
    assert load_folder(root, channels=1).n_channels == 1


def test_sixteen_bit_images(tmp_path):
    root = tmp_path / "ct"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            values = np.full((20, 20), 1000 * (i + 1), dtype=np.uint16)
            values[:10] = 40000
            Image.fromarray(values).save(root / label / f"{i}.png")
    splits = load_folder(root, size=16, val_fraction=0.0, test_fraction=0.0)
    assert splits.n_channels == 1 and splits.train.inputs.max() == 255


def test_load_dataset_reads_folders(tmp_path):
    assert load_dataset(write_folder(tmp_path / "xrays"), 32).input_size == 32


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="no image folder"):
        load_folder(tmp_path / "missing")
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "one" / "only" / "a.png")
    with pytest.raises(ValueError, match="at least 2 sub-folders"):
        load_folder(tmp_path / "one")
    with pytest.raises(ValueError, match="split fractions"):
        load_folder(tmp_path / "one", val_fraction=0.5, test_fraction=0.5)


def test_unreadable_image(tmp_path):
    root = write_folder(tmp_path / "xrays", counts=(2, 2))
    (root / "normal" / "broken.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read an image under"):
        load_folder(root)
