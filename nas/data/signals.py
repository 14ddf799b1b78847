"""1-D signal datasets (ECG and other biosignals) as ``Splits``: UCR 2018 ``.tsv`` pairs, UEA/UCR ``.ts``
pairs (sktime's format) and ``.npz`` files with ``{train,val,test}_signals``.

UCR/UEA pairs come without a validation split, so one is drawn out of train (stratified, seeded) and
recorded in ``Splits.provenance``. Nothing is resampled: a length other than the data's is a ``DataError``.
Labels keep their original names: sorted (as numbers when all are numbers), they become classes 0..K-1.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.data.medmnist import read_npz, search_dirs
from nas.data.splits import SIGNAL, Split, Splits
from nas.errors import DataError

VAL_FRACTION = 0.2
VAL_SEED = 0
SUFFIXES = (".tsv", ".ts")
ROLES = ("_TRAIN", "_TEST")
ECG5000_URL = "https://www.timeseriesclassification.com/description.php?Dataset=ECG5000"


@dataclass(frozen=True)
class _Part:
    """One file's cases: float32 (N, C, L) signals, labels as written, and where each case is (for errors)."""

    inputs: np.ndarray
    labels: list[str]
    places: list[str]


def is_signals(path: Path) -> bool:
    """Whether ``load_dataset`` hands ``path`` to this module rather than to the image loaders."""
    if path.is_dir():
        return bool(_pairs_in(path))
    if path.suffix.lower() == ".npz":
        return "train_signals" in _npz_names(path)
    return path.suffix in SUFFIXES


def load_signals(path: str | Path, length: int | None = None) -> Splits:
    """A ``NAME_TRAIN``/``NAME_TEST`` ``.tsv`` or ``.ts`` pair (either file, or the folder holding one pair)
    or a signals ``.npz``; ``length`` None takes the data's own, another length is refused, not resampled."""
    path = Path(path).expanduser()
    splits = _load_npz(path) if path.suffix.lower() == ".npz" else _load_pair(*find_pair(path))
    if length is not None and splits.input_size != length:
        raise DataError(
            f"{path} holds signals of length {splits.input_size}, not {length}: signals are not resampled, "
            f"ask for {splits.input_size} (or none)"
        )
    return splits


def find_pair(path: Path) -> tuple[Path, Path]:
    """The train and test files named by either of them, or by the folder that holds exactly one pair."""
    if path.is_dir():
        pairs = sorted(_pairs_in(path))
        if not pairs:
            raise DataError(f"{path} holds no NAME_TRAIN.tsv/NAME_TEST.tsv (or .ts) pair: add one")
        if len(pairs) > 1:
            names = ", ".join(f"{name}{suffix}" for name, suffix in pairs)
            raise DataError(f"{path} holds several pairs ({names}): give the path of one of their files")
        (name, suffix), folder = pairs[0], path
    elif not path.is_file():
        raise DataError(f"no file at {path}")
    else:
        role = next((r for r in ROLES if path.stem.endswith(r)), None)
        if role is None or path.suffix not in SUFFIXES:
            raise DataError(f"{path}: name it NAME_TRAIN.tsv / NAME_TEST.tsv (or .ts), next to its partner")
        name, suffix, folder = path.stem.removesuffix(role), path.suffix, path.parent
    train, test = (folder / f"{name}{role}{suffix}" for role in ROLES)
    for file, other in ((train, test), (test, train)):
        if not file.is_file():
            raise DataError(f"no {file.name} beside {other}: UCR/UEA data comes as a TRAIN/TEST pair, add it")
    return train, test


def split_val(
    train: Split, source: str, fraction: float = VAL_FRACTION, seed: int = VAL_SEED
) -> tuple[Split, Split, str]:
    """Train, validation and how it was drawn: per class ``round(fraction * n)`` cases (at least one, and
    never the last, so a class with a single case stays in train), picked by a seeded shuffle."""
    rng = np.random.default_rng(seed)
    picked = []
    for label in np.unique(train.labels):
        members = np.flatnonzero(train.labels == label)
        take = min(len(members) - 1, max(1, round(fraction * len(members))))
        picked.append(rng.permutation(members)[:take])
    val = np.sort(np.concatenate(picked))
    keep = np.setdiff1d(np.arange(len(train)), val)
    note = (
        f"validation: {fraction:.0%} of {source}, stratified by class, seed {seed} "
        f"({len(val)} of {len(train)})"
    )
    return train.subset(keep), train.subset(val), note


@dataclass(frozen=True)
class _Classes:
    """The training labels in class order, and how a label (train or test) becomes its class index."""

    names: tuple[str, ...]
    numeric: bool

    @property
    def task(self) -> str:
        return "binary" if len(self.names) == 2 else "multi-class"

    @classmethod
    def of(cls, labels: list[str]) -> _Classes:
        distinct = set(labels)
        numeric = all(_is_number(x) for x in distinct)
        keys = sorted({float(x) for x in distinct}) if numeric else sorted(distinct)
        return cls(tuple(_name(k) for k in keys), numeric)

    def encode(self, part: _Part) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.names)}
        codes = [index.get(_name(float(x)) if self.numeric and _is_number(x) else x, -1) for x in part.labels]
        if -1 in codes:
            bad = codes.index(-1)
            raise DataError(
                f"labels outside the class set: {part.places[bad]} has label '{part.labels[bad]}', training "
                f"has {', '.join(self.names)}: fix that label or drop the case"
            )
        return np.asarray(codes, dtype=np.int64)


def _load_pair(train_path: Path, test_path: Path) -> Splits:
    read = _read_tsv if train_path.suffix == ".tsv" else _read_ts
    train, test = read(train_path), read(test_path)
    if train.inputs.shape[1:] != test.inputs.shape[1:]:
        raise DataError(
            f"{train_path.name} holds (channels, length) {train.inputs.shape[1:]}, {test_path.name} "
            f"{test.inputs.shape[1:]}: both files need the same"
        )
    classes = _Classes.of(train.labels)
    fit, val, note = split_val(Split(train.inputs, classes.encode(train)), train_path.name)
    test_split = Split(test.inputs, classes.encode(test))
    name = train_path.stem.removesuffix("_TRAIN")
    return Splits(name, classes.task, classes.names, fit, val, test_split, provenance=note)


def _load_npz(path: Path) -> Splits:
    """``{split}_signals`` (N, channels, length) or (N, length) and ``{split}_labels`` (N,), as given."""
    arrays = _npz_arrays(path)
    missing = [f"{s}_{k}" for s in ("train", "val", "test") for k in ("signals", "labels")]
    missing = [key for key in missing if key not in arrays]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}: a signals .npz needs all six arrays")
    parts = {s: _npz_part(arrays, s, path) for s in ("train", "val", "test")}
    classes = _Classes.of(parts["train"].labels)
    splits = [Split(part.inputs, classes.encode(part)) for part in parts.values()]
    return Splits(path.stem, classes.task, classes.names, *splits)


def _read_tsv(path: Path) -> _Part:
    """UCR 2018: a case a line, the class label then the series' values, tab-separated."""
    lines = _lines(path)
    rows = [text.split("\t") for _, text in lines]
    places = [f"{path.name} line {n}" for n, _ in lines]
    for row, place in zip(rows, places, strict=True):
        if len(row) != len(rows[0]):
            raise DataError(
                f"ragged rows: {place} has {len(row) - 1} values but {places[0]} has {len(rows[0]) - 1}: "
                "every series needs the same length"
            )
    if len(rows[0]) < 2:
        raise DataError(f"{places[0]} holds a label but no values: expected LABEL<tab>value<tab>value...")
    values = _floats([row[1:] for row in rows], places)
    return _Part(values[:, None, :], [row[0].strip() for row in rows], places)


def _read_ts(path: Path) -> _Part:
    """sktime's ``.ts``: ``@`` header lines, ``#`` comments, then a case a line: dimensions split by ``:``,
    values by ``,``, the class label last."""
    lines = [(n, text) for n, text in _lines(path) if not text.startswith("#")]
    start = next((i for i, (_, text) in enumerate(lines) if text.lower().startswith("@data")), None)
    if start is None:
        raise DataError(f"{path} has no @data line: is it a .ts file?")
    header = {t.split()[0].lower(): t.split()[1:] for _, t in lines[:start] if t.startswith("@")}
    if header.get("@timestamps", ["false"])[0].lower() == "true":
        raise DataError(f"{path}: timestamped series are not supported, write plain values")
    if header.get("@classlabel", ["false"])[0].lower() != "true":
        raise DataError(f"{path} has no @classLabel true line: only classification is supported")
    body = lines[start + 1 :]
    if not body:
        raise DataError(f"{path} has no cases after @data")
    rows, labels, places, shapes = [], [], [], []
    for n, text in body:
        *dims, label = text.split(":")
        place = f"{path.name} line {n}"
        series = [dim.split(",") for dim in dims]
        if any("?" in dim for dim in dims):
            raise DataError(f"{place} has missing values ('?'): fill or drop them")
        shapes.append((len(series), len(series[0]) if series else 0))
        if not series or len({len(s) for s in series}) > 1 or shapes[-1] != shapes[0]:
            raise DataError(
                f"{place}: unequal lengths or dimensions (first case {shapes[0][0]}x{shapes[0][1]}): "
                "only equal-length series are supported, pad or resample them first"
            )
        rows.append([value for s in series for value in s])
        labels.append(label.strip())
        places.append(place)
    return _Part(_floats(rows, places).reshape(len(rows), *shapes[0]), labels, places)


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers; an unreadable or empty file is a ``DataError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as text: {exc}") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise DataError(f"{path} is empty: it needs one case a line")
    return lines


def _floats(rows: list[list[str]], places: list[str]) -> np.ndarray:
    """Equal-length rows of text as float32; the first non-numeric or non-finite row is named."""
    try:
        values = np.array(rows, dtype=np.float64).astype(np.float32)
    except ValueError:
        bad = next(i for i, row in enumerate(rows) if not all(map(_is_number, row)))
        raise DataError(f"{places[bad]} holds a value that is not a number: fix or drop that case") from None
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        raise DataError(
            f"{places[int(np.argmin(finite))]} holds NaN or infinite values (UCR pads variable-length "
            "series with NaN): fill or drop that case"
        )
    return values


def _npz_part(arrays: dict[str, np.ndarray], split: str, path: Path) -> _Part:
    signals, labels = arrays[f"{split}_signals"], arrays[f"{split}_labels"]
    if not np.issubdtype(signals.dtype, np.number) or signals.ndim not in (2, 3):
        raise DataError(f"{path}: {split}_signals must be numbers (N, length) or (N, channels, length)")
    if labels.ndim > 1 and labels.shape[1:] != (1,):
        raise DataError(f"{path}: {split}_labels must be (N,) class labels, got {labels.shape}")
    inputs = (signals[:, None, :] if signals.ndim == 2 else signals).astype(np.float32)
    names = [str(v) for v in labels.reshape(-1).tolist()]
    return _Part(inputs, names, [f"{path.name} {split}_labels[{i}]" for i in range(len(names))])


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"no signals .npz file at {path}")
    return read_npz(path)


def _npz_names(path: Path) -> set[str]:
    """The arrays a .npz holds, read from its zip directory without loading them (none if unreadable)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {Path(name).stem for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile):
        return set()


def _pairs_in(folder: Path) -> set[tuple[str, str]]:
    """(NAME, suffix) of every ``NAME_TRAIN``/``NAME_TEST`` file in ``folder``, paired or not."""
    return {
        (file.stem.removesuffix(role), file.suffix)
        for file in folder.iterdir()
        for role in ROLES
        if file.suffix in SUFFIXES and file.stem.endswith(role)
    }


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _name(key: float | str) -> str:
    """A label as a class name: ``1.0`` and ``1`` are both ``"1"``."""
    return str(int(key)) if isinstance(key, float) and key.is_integer() else str(key)


class Ecg5000:
    """ECG5000 (UCR archive) as a registry entry: 5,000 heartbeats of 140 samples, 5 classes, read from
    ``ecg5000/`` in the folders MedMNIST files are looked up in; nothing is downloaded."""

    modality = SIGNAL  # tells ``load_dataset`` that ``size`` is a length, not an image side

    def load(self, size: int | None) -> Splits:
        return load_signals(self.find(), size)

    def find(self) -> Path:
        dirs = [folder / "ecg5000" for folder in search_dirs()]
        for folder in dirs:
            if (folder / "ECG5000_TRAIN.tsv").is_file():
                return folder / "ECG5000_TRAIN.tsv"
        raise DataError(
            f"ECG5000_TRAIN.tsv not found in {', '.join(map(str, dirs))}: put ECG5000_TRAIN.tsv and "
            f"ECG5000_TEST.tsv in {dirs[0]} (or set MEDMNIST_ROOT); nothing is downloaded, get them from "
            f"{ECG5000_URL}"
        )

    def shape(self) -> tuple[int, int]:
        return 1, 5

    def card(self) -> dict[str, Any]:
        return {
            "collection": "UCR time series classification archive (2018)",
            "licence": "UCR archive terms: free for research use, cite the archive and the data's source",
            "source": "BIDMC Congestive Heart Failure Database (chf07), PhysioNet",
            "citation": [
                "Dau, H. A. et al. The UCR Time Series Classification Archive (2018). "
                "https://www.cs.ucr.edu/~eamonn/time_series_data_2018/",
                "Goldberger, A. L. et al. PhysioBank, PhysioToolkit, and PhysioNet: components of a new "
                "research resource for complex physiologic signals. Circulation 101(23), e215-e220 (2000).",
            ],
        }


ECG5000 = Ecg5000()
"""The registry's target: ``nas.data.signals:ECG5000``."""
