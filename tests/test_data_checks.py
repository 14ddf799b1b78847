"""Data no model could learn and be scored on is refused at load, for ``nas train`` and ``nas search``
alike, in one line that names the problem."""

from __future__ import annotations

import numpy as np
import pytest
from medmnist_data import experiment_dict, make_arrays, write_experiment

from nas import cli
from nas.data import load_dataset
from nas.data.checks import check_splits
from nas.data.splits import Split, Splits
from nas.errors import DataError


def write(path, labels: dict[str, list[int]]):
    """A user's binary-looking .npz (not a MedMNIST name) with the given labels per split."""
    arrays = {}
    for seed, (split, values) in enumerate(labels.items()):
        images, _ = make_arrays(max(len(values), 2), seed=seed)
        arrays[f"{split}_images"] = images[: len(values)]
        arrays[f"{split}_labels"] = np.array(values, dtype=np.uint8).reshape(-1, 1)
    np.savez(path, **arrays)
    return path


GOOD = {"train": [0, 1] * 8, "val": [0, 1] * 4, "test": [0, 1] * 4}


def test_a_clean_file_loads(tmp_path):
    splits = load_dataset(write(tmp_path / "xray.npz", GOOD))
    assert (splits.task, splits.num_classes, len(splits.train)) == ("binary", 2, 16)


def test_a_stray_training_label_is_named_not_trained_as_eight_classes(tmp_path):
    labels = GOOD | {"train": [0, 1] * 8 + [7]}
    with pytest.raises(DataError) as err:
        load_dataset(write(tmp_path / "xray.npz", labels))
    message = str(err.value)
    assert "label 7 occurs only in train (1 example(s))" in message
    assert "class(es) 2, 3, 4, 5, 6 have no training example" in message
    assert "\n" not in message


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_an_empty_split_is_refused(tmp_path, split):
    with pytest.raises(DataError, match=f"the {split} split of 'xray' is empty"):
        load_dataset(write(tmp_path / "xray.npz", GOOD | {split: []}))


def test_a_class_without_training_examples_is_refused(tmp_path):
    labels = {"train": [0, 1] * 8, "val": [0, 1, 2, 2], "test": [0, 1, 2, 2]}
    with pytest.raises(DataError, match=r"class\(es\) 2 have no training example"):
        load_dataset(write(tmp_path / "xray.npz", labels))


def test_a_single_class_is_refused_not_trained_with_an_undefined_auc(tmp_path, capsys):
    data = write(tmp_path / "xray.npz", {"train": [0] * 8, "val": [0] * 4, "test": [0] * 4})
    rc = cli.main(["train", "--arch", "mnasnet_a1", "--data", str(data), "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "'xray' has one class only (0): a classifier needs examples of 2 or more" in err
    assert not (tmp_path / "t").exists()


def test_named_classes_and_multi_label_columns():
    images = np.zeros((4, 8, 8, 1), np.uint8)
    split = Split(images, np.array([0, 0, 1, 1]))
    named = Splits("retina", "multi-class", ("none", "mild", "severe"), split, split, split)
    with pytest.raises(DataError, match=r"class\(es\) 2 \(severe\) have no training example"):
        check_splits(named)
    multi = Split(images, np.array([[1, 0], [1, 0], [0, 0], [1, 0]]))
    with pytest.raises(DataError, match=r"label column\(s\) 1 \(b\) of 'chest' have no positive"):
        check_splits(Splits("chest", "multi-label", ("a", "b"), multi, multi, multi))


def test_train_and_search_refuse_it_in_one_line(tmp_path, capsys):
    data = write(tmp_path / "xray.npz", GOOD | {"train": [0, 1] * 8 + [7]})
    rc = cli.main(["train", "--arch", "mnasnet_a1", "--data", str(data), "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "label 7 occurs only in train" in err
    write_experiment(tmp_path / "x.yaml", experiment_dict(data, tmp_path / "run"))
    rc = cli.main(["search", str(tmp_path / "x.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "label 7 occurs only in train" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "t").exists()
