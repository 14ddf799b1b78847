"""MedMNIST .npz loading: layouts, lookup order, one-line errors, class imbalance."""

from __future__ import annotations

import re

import numpy as np
import pytest
from medmnist_data import write_npz

from nas.data import load_dataset, load_medmnist, load_npz
from nas.data.medmnist import DATASETS, URL, file_name, find_file


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No real ~/.medmnist or MEDMNIST_ROOT leaks into the tests."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDMNIST_ROOT", raising=False)


def test_table_covers_the_twelve_2d_sets():
    assert len(DATASETS) == 12
    assert DATASETS["pneumoniamnist"].task == "binary"
    assert DATASETS["pneumoniamnist"].labels == ("normal", "pneumonia")
    assert DATASETS["chestmnist"].task == "multi-label" and len(DATASETS["chestmnist"].labels) == 14
    assert DATASETS["pathmnist"].n_channels == 3 and len(DATASETS["pathmnist"].labels) == 9


def test_file_names():
    assert file_name("pneumoniamnist") == "pneumoniamnist.npz"
    assert file_name("pneumoniamnist", 64) == "pneumoniamnist_64.npz"
    with pytest.raises(ValueError, match="28, 64, 128, 224"):
        file_name("pneumoniamnist", 32)


def test_load_grayscale_binary(tmp_path):
    path = write_npz(tmp_path / "pneumoniamnist.npz")
    splits = load_npz(path)
    assert splits.name == "pneumoniamnist" and splits.task == "binary"
    assert splits.class_names == ("normal", "pneumonia")
    assert splits.train.inputs.shape == (64, 28, 28, 1) and splits.train.inputs.dtype == np.uint8
    assert splits.train.labels.shape == (64,) and splits.train.labels.dtype == np.int64
    assert (len(splits.val), len(splits.test)) == (32, 32)
    assert (splits.n_channels, splits.input_size, splits.num_classes) == (1, 28, 2)


def test_load_rgb_multi_class_64(tmp_path):
    path = write_npz(tmp_path / "bloodmnist_64.npz", sizes=(8, 4, 4), size=64, channels=3)
    splits = load_npz(path)
    assert splits.name == "bloodmnist" and splits.task == "multi-class" and splits.num_classes == 8
    assert splits.train.inputs.shape == (8, 64, 64, 3)


def test_load_multi_label(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 6), ("val", 3), ("test", 3)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 14), dtype=np.uint8)
    np.savez(tmp_path / "chestmnist.npz", **arrays)
    splits = load_npz(tmp_path / "chestmnist.npz")
    assert splits.task == "multi-label" and splits.train.labels.shape == (6, 14)
    pos = arrays["train_labels"].sum(axis=0)
    assert np.allclose(splits.class_weights(), (6 - np.maximum(pos, 1)) / np.maximum(pos, 1))
    with pytest.raises(ValueError, match="single-label"):
        splits.sample_weights()


def test_unknown_file_infers_task(tmp_path):
    upper = write_npz(tmp_path / "scans.npz").rename(tmp_path / "SCANS.NPZ")
    assert load_dataset(upper).name == "SCANS"  # any case of the suffix
    splits = load_npz(write_npz(tmp_path / "my_xrays.npz"))
    assert splits.name == "my_xrays" and splits.task == "binary" and splits.class_names == ("0", "1")


def test_channel_mismatch(tmp_path):
    path = write_npz(tmp_path / "pathmnist.npz", sizes=(4, 2, 2))  # grayscale, but PathMNIST is RGB
    with pytest.raises(ValueError, match="pathmnist has 3 channel"):
        load_npz(path)


def test_lookup_order(tmp_path, monkeypatch):
    explicit = write_npz(tmp_path / "explicit" / "breastmnist.npz")
    env = write_npz(tmp_path / "env" / "breastmnist.npz")
    home = write_npz(tmp_path / "home" / ".medmnist" / "breastmnist.npz")
    assert find_file("breastmnist") == home
    monkeypatch.setenv("MEDMNIST_ROOT", str(env.parent))
    assert find_file("breastmnist") == env
    assert find_file("breastmnist", root=explicit.parent) == explicit
    splits = load_medmnist("breastmnist", root=explicit.parent)
    assert splits.class_names == ("malignant", "normal, benign")


def test_missing_file_says_where(tmp_path):
    with pytest.raises(ValueError) as info:
        load_medmnist("breastmnist", 128, root=tmp_path / "data")
    message = str(info.value)
    assert "\n" not in message
    assert f"put it at {tmp_path / 'data' / 'breastmnist_128.npz'}" in message
    assert URL.format(file="breastmnist_128.npz") in message
    assert "shared/data" in message  # the repo's CI folder is searched too


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown MedMNIST dataset 'foomnist'"):
        find_file("foomnist")


def test_bad_files(tmp_path):
    (tmp_path / "broken.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"broken\.npz is not a \.npz archive \(numpy\.savez writes one\)$"):
        load_npz(tmp_path / "broken.npz")
    np.savez(tmp_path / "objects.npz", train_images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="holds object arrays, which are not loaded"):  # no unpickling
        load_npz(tmp_path / "objects.npz")
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="lacks train_labels"):
        load_npz(tmp_path / "partial.npz")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"train_images": np.zeros((8, 28, 32), np.uint8)}, "images are 28x32; resize or crop them square"),
        (
            {"train_labels": np.array([0.5, 1.5] * 4)},
            "train_labels must be class indices 0, 1, ...; found 0.5",
        ),
        ({"val_labels": np.array([-1, 0] * 4)}, "val_labels must be class indices 0, 1, ...; found -1"),
        ({"test_labels": np.array(["a", "b"] * 4)}, "test_labels must be class indices 0, 1, ..., not <U1"),
    ],
)
def test_labels_and_images_that_would_be_misread_are_refused(tmp_path, change, words):
    """A fraction or a negative label would be truncated into another class; a 28x32 set priced as 28x28."""
    path = write_npz(tmp_path / "mine.npz", sizes=(8, 8, 8))
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(path, **(arrays | change))
    with pytest.raises(ValueError, match=re.escape(words)):
        load_npz(path)


def test_class_imbalance_weights(tmp_path):
    splits = load_npz(write_npz(tmp_path / "pneumoniamnist.npz", sizes=(400, 32, 32), positive=0.75))
    counts = splits.class_counts()
    assert counts.sum() == 400 and counts[1] > 2.5 * counts[0]
    weights = splits.class_weights()
    assert np.allclose(weights, 400 / (2 * counts))
    assert np.isclose((weights[splits.train.labels]).mean(), 1.0)  # the loss keeps its scale
    per_example = splits.sample_weights()
    assert np.isclose(
        per_example[splits.train.labels == 0].sum(), per_example[splits.train.labels == 1].sum()
    )


def test_normalization_matches_numpy(tmp_path):
    splits = load_npz(write_npz(tmp_path / "pneumoniamnist.npz"))
    mean, std = splits.normalization()
    pixels = splits.train.inputs.astype(np.float64) / 255
    assert mean == pytest.approx([pixels.mean()]) and std == pytest.approx([pixels.std()])


def test_load_dataset_dispatch(tmp_path, monkeypatch):
    path = write_npz(tmp_path / "pneumoniamnist.npz")
    assert load_dataset(path).name == "pneumoniamnist"
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path))
    assert len(load_dataset("PneumoniaMNIST").train) == 64
    with pytest.raises(ValueError, match="holds 28x28 images, not 64x64"):
        load_dataset(path, 64)
    with pytest.raises(ValueError, match="neither a known dataset"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"no MedMNIST \.npz file at"):
        load_dataset(tmp_path / "nowhere.npz")


def test_load_dataset_synthetic():
    splits = load_dataset("synthetic", 32)
    assert splits.name == "synthetic" and splits.input_size == 32 and splits.task == "binary"


def test_a_npz_file_loads_at_its_own_size_when_none_is_asked(tmp_path):
    from nas.errors import DataError

    path = write_npz(tmp_path / "scans.npz", size=32)
    assert load_dataset(path, None).input_size == 32
    with pytest.raises(DataError, match="holds 32x32 images, not 28x28"):
        load_dataset(path)
