"""A 1-D signal dataset through the same commands as images: ``nas latency build``, ``nas search``,
``nas train``, in process through ``nas.cli.main``, on generated signals and a tiny 1-D space."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import yaml

from nas import cli
from nas.latency.table import LatencyTable

LENGTH, CLASSES = 64, 3
SPACE_YAML = """
name: tiny1d
dims: 1
stem: conv_k5_s2_c8
head: head_c16
stages:
  - {stride: 1, channels: 8, layers: {min: 0, max: 1}, choose_per: stage, ops: [ir_e3, ds], kernel: [3, 9]}
  - {stride: 2, channels: 16, layers: {min: 1, max: 1}, choose_per: stage, ops: [ds], kernel: [3, 7]}
"""


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def signals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sines whose frequency is the class: learnable in a few steps."""
    labels = np.arange(n) % CLASSES
    t = np.linspace(0, 1, LENGTH, dtype=np.float32)
    waves = np.sin(2 * np.pi * (2 + 3 * labels[:, None]) * t + rng.uniform(0, 6, (n, 1)))
    return (waves[:, None, :] + 0.2 * rng.standard_normal((n, 1, LENGTH))).astype(np.float32), labels


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 60), ("val", 30), ("test", 30)):
        arrays[f"{split}_signals"], arrays[f"{split}_labels"] = signals(n, rng)
    path = tmp_path / "beats.npz"
    np.savez(path, **arrays)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_table_search_and_train_on_signals(tmp_path, data, capsys):
    space = tmp_path / "tiny1d.yaml"
    space.write_text(SPACE_YAML)
    table_path = tmp_path / "tiny1d.json"
    rc, _, err = run(
        capsys, "latency", "build", "--space", space, "--input-size", LENGTH, "--in-chans", 1,
        "--num-classes", CLASSES, "--device", "here", "--rounds", 5, "--calibration-nets", 4,
        "--out", table_path,
    )  # fmt: skip
    assert rc == 0, err
    table = LatencyTable.load(table_path)
    sizes = {key.split("|")[2] for key in table.entries}
    assert sizes == {str(LENGTH), str(LENGTH // 2), str(LENGTH // 4)}  # 1-D keys: a length, not HxW

    experiment = {
        "name": "beats",
        "space": str(space),
        "dataset": {"path": str(data)},
        "input_size": LENGTH,
        "latency": {"table": str(table_path)},
        "training": {"epochs": 1, "batch_size": 16, "threads": 1},
        "mode": "pareto",
        "objectives": [
            {"metric": "val_accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "microcontroller": "cortex-m4",
        "trials": 3,
        "workers": 1,
        "out": str(tmp_path / "run"),
    }
    (tmp_path / "beats.yaml").write_text(yaml.safe_dump(experiment))
    rc, _, err = run(capsys, "search", tmp_path / "beats.yaml")
    assert rc == 0, err
    with open(tmp_path / "run" / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(row["arch"].startswith("1d:") for row in rows)
    assert all(0 < float(row["int8_weight_kb"]) < 1024 for row in rows)
    assert all(
        float(row["int8_peak_activation_kb"]) * 4 == pytest.approx(float(row["peak_activation_kb"]))
        for row in rows
    )

    with open(tmp_path / "run" / "pareto.csv") as f:
        front = list(csv.DictReader(f))
    out = tmp_path / "final"
    rc, _, err = run(
        capsys, "train", tmp_path / "run", "--trial", front[0]["number"], "--epochs", 1, "--min-steps", 0,
        "--out", out,
    )  # fmt: skip
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"macro_f1", "sensitivity_0", "sensitivity_2"} <= set(metrics["test"])
    assert metrics["in_chans"] == 1 and metrics["input_size"] == LENGTH


def test_a_2d_space_on_signals_is_a_one_line_error(tmp_path, data, capsys):
    experiment = {
        "name": "wrong",
        "space": "mnasnet_small",
        "dataset": {"path": str(data)},
        "input_size": LENGTH,
        "training": {"epochs": 1},
        "trials": 1,
        "workers": 1,
        "out": str(tmp_path / "run"),
    }
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(experiment))
    rc, _, err = run(capsys, "search", tmp_path / "wrong.yaml")
    assert rc == 2 and err.count("\n") == 1 and "mnasnet1d" in err
    assert not (tmp_path / "run").exists()


def test_a_2d_arch_on_signals_is_a_one_line_error(data, tmp_path, capsys):
    rc, _, err = run(capsys, "train", "--arch", "conv_k3_c8:head", "--data", data, "--out", tmp_path / "t")
    assert rc == 2 and err.count("\n") == 1 and "1-D" in err
