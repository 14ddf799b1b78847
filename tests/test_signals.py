"""1-D signal datasets: UCR .tsv and UEA .ts pairs, signals .npz, the drawn validation split, label
mapping, one-line errors, ``load_dataset`` dispatch and the registered ``ecg5000``."""

from __future__ import annotations

import numpy as np
import pytest

from nas.data import DATASETS, dataset_card, load_dataset, load_signals, signals
from nas.data.medmnist import search_dirs
from nas.data.signals import ECG5000_URL, VAL_SEED, split_val
from nas.data.splits import Split
from nas.errors import DataError

COUNTS = {"1": 10, "2": 6, "10": 3, "4": 1}  # "10" after "4": labels sort as numbers


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No real ~/.medmnist or MEDMNIST_ROOT leaks into the tests."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDMNIST_ROOT", raising=False)


def tsv_lines(counts, length=8, seed=0):
    rng = np.random.default_rng(seed)
    return [
        "\t".join([label, *(f"{v:.5f}" for v in rng.normal(size=length))])
        for label, n in counts.items()
        for _ in range(n)
    ]


def write_tsv_pair(folder, name="HEART", train=None, test=None):
    folder.mkdir(parents=True, exist_ok=True)
    for role, lines in (("TRAIN", train or tsv_lines(COUNTS)), ("TEST", test or tsv_lines(COUNTS, seed=1))):
        (folder / f"{name}_{role}.tsv").write_text("\n".join(lines) + "\n")
    return folder / f"{name}_TRAIN.tsv"


def ts_text(cases, dims=1, length=5, label_set="a b"):
    header = [
        "# a comment",
        "@problemName Motion",
        f"@univariate {'true' if dims == 1 else 'false'}",
        "@equalLength true",
        f"@classLabel true {label_set}",
        "@data",
    ]
    rng = np.random.default_rng(len(cases))
    rows = [
        ":".join([*(",".join(f"{v:.3f}" for v in rng.normal(size=length)) for _ in range(dims)), label])
        for label in cases
    ]
    return "\n".join(header + rows) + "\n"


def write_ts_pair(folder, dims=1, train_text=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Motion_TRAIN.ts").write_text(train_text or ts_text(["a", "b"] * 5, dims))
    (folder / "Motion_TEST.ts").write_text(ts_text(["b", "a", "a"], dims))
    return folder / "Motion_TRAIN.ts"


def one_line_error(call, match):
    with pytest.raises(DataError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_tsv_pair_by_file_and_by_folder(tmp_path):
    train_file = write_tsv_pair(tmp_path / "heart")
    by_train, by_test = load_signals(train_file), load_signals(tmp_path / "heart" / "HEART_TEST.tsv")
    by_folder = load_signals(tmp_path / "heart")
    assert by_train.name == by_folder.name == "HEART"
    assert by_train.train.inputs.dtype == np.float32 and by_train.train.inputs.shape[1:] == (1, 8)
    assert len(by_train.train) + len(by_train.val) == 20 and len(by_train.test) == 20
    for other in (by_test, by_folder):
        assert np.array_equal(other.val.inputs, by_train.val.inputs)
    assert by_train.modality == "signal" and by_train.describe_shape() == "1x8"


def test_labels_sort_as_numbers_and_map_to_indices(tmp_path):
    splits = load_signals(write_tsv_pair(tmp_path))
    assert splits.class_names == ("1", "2", "4", "10") and splits.task == "multi-class"
    total = np.bincount(np.concatenate([splits.train.labels, splits.val.labels]), minlength=4)
    assert total.tolist() == [10, 6, 1, 3]


def test_float_and_string_labels(tmp_path):
    signed = {"-1.0": 4, "1": 4}
    splits = load_signals(write_tsv_pair(tmp_path / "a", train=tsv_lines(signed), test=tsv_lines(signed)))
    assert splits.class_names == ("-1", "1") and splits.task == "binary"
    words = {"normal": 4, "afib": 4}
    splits = load_signals(write_tsv_pair(tmp_path / "b", train=tsv_lines(words), test=tsv_lines(words)))
    assert splits.class_names == ("afib", "normal")


def test_validation_is_stratified_seeded_and_recorded(tmp_path):
    splits = load_signals(write_tsv_pair(tmp_path))
    val_counts = np.bincount(splits.val.labels, minlength=4).tolist()
    assert val_counts == [2, 1, 0, 1]  # 20% of 10, 6 and 3 (at least one); the single "4" stays in train
    assert (splits.class_counts() > 0).all()
    assert splits.provenance == (
        f"validation: 20% of HEART_TRAIN.tsv, stratified by class, seed {VAL_SEED} (4 of 20)"
    )
    again = load_signals(write_tsv_pair(tmp_path / "again"))
    assert np.array_equal(again.val.inputs, splits.val.inputs)


def test_split_val_seed_changes_the_draw():
    labels = np.repeat(np.arange(2), 20)
    train = Split(np.arange(40, dtype=np.float32).reshape(40, 1, 1), labels)
    _, a, _ = split_val(train, "x")
    _, b, note = split_val(train, "x", fraction=0.5, seed=1)
    assert len(a) == 8 and len(b) == 20 and "50% of x" in note and "seed 1" in note
    assert not np.array_equal(a.inputs, split_val(train, "x", seed=1)[1].inputs)


def test_ts_univariate_and_multivariate(tmp_path):
    uni = load_signals(write_ts_pair(tmp_path / "uni"))
    assert uni.name == "Motion" and uni.train.inputs.shape[1:] == (1, 5) and uni.class_names == ("a", "b")
    assert len(uni.test) == 3 and uni.task == "binary"
    multi = load_dataset(write_ts_pair(tmp_path / "multi", dims=3).parent)
    assert multi.describe_shape() == "3x5" and multi.n_channels == 3
    assert "Motion_TRAIN.ts" in multi.provenance


def test_npz_keeps_its_own_splits(tmp_path):
    rng = np.random.default_rng(0)
    labels = {"train": [0, 1] * 6, "val": [0, 1], "test": [1, 0, 1]}
    arrays = {f"{s}_labels": np.array(v) for s, v in labels.items()}
    arrays |= {f"{s}_signals": rng.normal(size=(len(v), 2, 16)) for s, v in labels.items()}
    arrays["val_signals"] = rng.normal(size=(2, 2, 16))
    np.savez(tmp_path / "ecg.npz", **arrays)
    splits = load_dataset(tmp_path / "ecg.npz")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 2, 3)
    assert splits.describe_shape() == "2x16" and splits.class_names == ("0", "1") and not splits.provenance
    flat = {k: (v[:, 0] if k.endswith("signals") else v) for k, v in arrays.items()}
    np.savez(tmp_path / "flat.npz", **flat)
    assert load_signals(tmp_path / "flat.npz").describe_shape() == "1x16"


def test_bad_files_are_one_line_errors(tmp_path):
    ragged = tsv_lines(COUNTS)
    ragged[3] += "\t0.5"
    one_line_error(
        lambda: load_signals(write_tsv_pair(tmp_path / "r", train=ragged)),
        "ragged rows: HEART_TRAIN.tsv line 4",
    )
    nan = tsv_lines(COUNTS)
    nan[2] = nan[2].rsplit("\t", 1)[0] + "\tNaN"
    one_line_error(lambda: load_signals(write_tsv_pair(tmp_path / "n", train=nan)), "line 3 holds NaN")
    word = tsv_lines(COUNTS)
    word[5] = word[5].rsplit("\t", 1)[0] + "\tabc"
    one_line_error(lambda: load_signals(write_tsv_pair(tmp_path / "w", train=word)), "line 6 .*not a number")
    stray = [*tsv_lines(COUNTS), "7\t" + "\t".join(["0.1"] * 8)]
    message = one_line_error(
        lambda: load_signals(write_tsv_pair(tmp_path / "s", test=stray)), "labels outside the class set"
    )
    assert "HEART_TEST.tsv line 21 has label '7'" in message


def test_missing_empty_and_unpaired_files(tmp_path):
    train = write_tsv_pair(tmp_path / "m")
    (tmp_path / "m" / "HEART_TEST.tsv").unlink()
    one_line_error(lambda: load_signals(train), "no HEART_TEST.tsv beside")
    one_line_error(lambda: load_signals(tmp_path / "m"), "no HEART_TEST.tsv beside")
    empty = write_tsv_pair(tmp_path / "e")
    empty.write_text("\n")
    one_line_error(lambda: load_signals(empty), "is empty")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("x")
    one_line_error(lambda: load_signals(tmp_path / "none"), "holds no NAME_TRAIN.tsv/NAME_TEST.tsv")
    write_tsv_pair(tmp_path / "two", name="A")
    write_tsv_pair(tmp_path / "two", name="B")
    one_line_error(lambda: load_signals(tmp_path / "two"), r"several pairs \(A.tsv, B.tsv\)")


def test_bad_ts_files_are_one_line_errors(tmp_path):
    unequal = ts_text(["a", "b"] * 3).replace(":a\n", ",0.5:a\n", 1)
    one_line_error(lambda: load_signals(write_ts_pair(tmp_path / "u", train_text=unequal)), "unequal lengths")
    missing = ts_text(["a", "b"] * 3).replace(":a\n", ",?:a\n", 1)
    one_line_error(lambda: load_signals(write_ts_pair(tmp_path / "q", train_text=missing)), r"missing values")
    headless = ts_text(["a", "b"]).replace("@data\n", "")
    one_line_error(lambda: load_signals(write_ts_pair(tmp_path / "h", train_text=headless)), "no @data line")


def test_size_is_the_length_and_the_image_default_means_any(tmp_path):
    folder = write_tsv_pair(tmp_path).parent
    assert load_dataset(folder).input_size == 8  # the default 28 is the image side, not a length
    assert load_dataset(folder, None).input_size == load_dataset(folder, 8).input_size == 8
    one_line_error(lambda: load_dataset(folder, 64), "length 8, not 64: signals are not resampled")


def test_load_dataset_dispatch(tmp_path):
    train = write_tsv_pair(tmp_path / "heart")
    for path in (train, train.parent, str(train)):
        assert load_dataset(path).name == "HEART"
    one_line_error(lambda: load_dataset(tmp_path / "nowhere"), "NAME_TRAIN/NAME_TEST .tsv or .ts")
    (tmp_path / "loose.tsv").write_text("1\t0.5\n")
    one_line_error(lambda: load_dataset(tmp_path / "loose.tsv"), "name it NAME_TRAIN.tsv")


def test_ecg5000_is_found_under_medmnist_root(tmp_path, monkeypatch):
    monkeypatch.setattr(signals, "search_dirs", lambda: search_dirs()[:-1])  # not the CI data folder
    assert "ECG5000" in DATASETS and DATASETS.get("ecg5000").shape() == (1, 5)
    message = one_line_error(lambda: load_dataset("ecg5000"), "ECG5000_TRAIN.tsv not found")
    assert ECG5000_URL in message and "ECG5000_TEST.tsv" in message
    counts = {str(k): 4 for k in range(1, 6)}
    lines = tsv_lines(counts, length=140)
    write_tsv_pair(tmp_path / "root" / "ecg5000", name="ECG5000", train=lines, test=lines)
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path / "root"))
    splits = load_dataset("ecg5000")
    assert splits.describe_shape() == "1x140" and splits.class_names == ("1", "2", "3", "4", "5")
    assert len(splits.val) == 5 and "ECG5000_TRAIN.tsv" in splits.provenance
    one_line_error(lambda: load_dataset("ecg5000", 100), "not 100")
    card = dataset_card("ecg5000")
    assert "UCR" in card["licence"] and any("Dau" in c for c in card["citation"])
