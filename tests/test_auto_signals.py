"""``nas auto`` on 1-D signals: the same command picks the 1-D space, reference and published figures,
and refuses a 2-D reference network or latency table in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from test_signals_pipeline import signals

from nas import cli
from nas.auto import plan
from nas.auto.profile import DataProfile
from nas.auto.summary import published
from nas.latency.backends.base import Settings
from nas.latency.build import build_table
from nas.space import SearchSpace

pytest.importorskip("onnxruntime")

IMAGE_TABLE = "latency_tables/dev-epyc-2core/mnasnet_small-28.json"


def profile(modality: str = "signal", size: int = 64, name: str = "beats") -> DataProfile:
    return DataProfile(name, "multi-class", modality, 1, size, 3, ("0", "1", "2"), 60, 30, 30, (20, 20, 20))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 60), ("val", 30), ("test", 30)):
        arrays[f"{split}_signals"], arrays[f"{split}_labels"] = signals(n, rng)
    path = tmp_path_factory.mktemp("data") / "beats.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """A folder whose ``latency_tables/`` holds an mnasnet1d table at 1x64 that ``nas auto`` finds as one
    measured here with ORT: its blocks timed in torch (3 rounds, no ONNX export) so it builds in seconds
    instead of the minutes of a real build."""
    from nas.latency.backends.ort import OrtBackend

    class TorchTimed(OrtBackend):
        def runner(self, item):
            x = torch.randn(item.input_shape)
            return torch.no_grad()(lambda: item.module(x))

    root = tmp_path_factory.mktemp("tables")
    path = root / "latency_tables" / "test-signals" / "mnasnet1d-64.json"
    space = SearchSpace.from_yaml("mnasnet1d")
    measure = Settings(rounds=3, warmup_ms=0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 10 s; on two threads of a busy machine, 5 minutes
    try:
        build_table(space, 64, 1, 3, TorchTimed(), "test-signals", path, measure=measure, calibration_nets=4)
    finally:
        torch.set_num_threads(threads)
    return root


def refused(capsys, *argv) -> str:
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_signals_get_the_1d_space_reference_and_published_figures():
    signal, image = profile(), profile("image", 28, "retinamnist")
    assert (signal.dims, signal.shape, image.shape) == (1, "1x64", "1x28x28")
    assert "3 classes, 1x64, train/val/test 60/30/30" in signal.describe()
    assert signal.to_json()["modality"] == "signal" and signal.to_json()["shape"] == "1x64"
    assert plan.space_for(signal) == "mnasnet1d" and plan.space_for(profile("signal", 5000)) == "mnasnet1d"
    assert plan.space_for(image) == "mnasnet_small" and plan.space_for(profile("image", 128)) == "mnasnet"
    assert "built for signals of 100-1000 samples, these have 64" in plan.space_note(signal, "mnasnet1d")
    assert plan.space_note(profile("signal", 140), "mnasnet1d") is None
    assert (plan.reference_for(signal), plan.reference_for(image)) == ("resnet1d_wang", "resnet18_medmnist")
    ecg = published(profile("signal", 140, "ECG5000"))
    assert ecg["ResNet (Wang et al. 2017 / Fawaz et al. 2019)"] == {"accuracy": (0.931, 0.934)}
    assert ecg["FCN (Wang et al. 2017 / Fawaz et al. 2019)"] == {"accuracy": 0.940}
    assert published(profile("signal", 64, "ECG5000")) == {}  # other lengths: not the published task
    assert published(image) == {"ResNet-18 (28)": {"auc": 0.717, "accuracy": 0.524}}


def test_a_2d_reference_or_table_on_signals_is_a_one_line_error(tmp_path, capsys, data):
    out = tmp_path / "run"
    base = ["auto", "--data", data, "--budget", "1", "--out", out]
    err = refused(capsys, *base, "--reference", "resnet18")
    assert "--reference resnet18 is a 2-D network" in err and "resnet1d_wang" in err
    err = refused(capsys, *base, "--table", IMAGE_TABLE)
    assert "2-D space mnasnet_small" in err and "mnasnet1d" in err
    assert not out.exists()


def test_nas_auto_on_signals_end_to_end(tmp_path, capsys, data, tables, monkeypatch):
    monkeypatch.chdir(tables)  # its latency_tables/ holds the table nas auto finds
    out = tmp_path / "run"
    argv = ["auto", "--data", data, "--budget", "1", "--out", out, "--latency-ratio", "0.5"]
    assert cli.main([str(a) for a in argv]) == 0, capsys.readouterr().err
    said = capsys.readouterr().out
    assert "data: beats: multi-class, 3 classes, 1x64" in said and "table (found)" in said
    assert "space: mnasnet1d is built for signals of 100-1000 samples" in said
    experiment = yaml.safe_load((out / "experiment.yaml").read_text())
    assert experiment["space"] == "mnasnet1d" and experiment["input_size"] == 64
    assert experiment["dataset"] == {"path": str(data)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["modality"] == "signal" and summary["data"]["shape"] == "1x64"
    model = summary["model"]
    assert model["arch"].startswith("1d:") and model["params"] > 0
    assert {"accuracy", "macro_f1", "sensitivity_0"} <= set(model["test"])
    reference = summary["reference"]
    assert reference["name"] == "resnet1d_wang" and reference["published"] == {}
    assert summary["latency"]["model_ms"] > 0 and summary["latency"]["reference_ms"] > 0
    assert (out / "model" / "model.onnx").is_file()
