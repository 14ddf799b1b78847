"""Every shipped experiment file loads, and names a space and latency table (or adapted predictor, which
keeps its source table's blocks) that fit each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.latency.space_keys import space_keys
from nas.latency.table import LatencyTable
from nas.search.config import load_experiment
from nas.search.factory import latency_table
from nas.space import SearchSpace

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_loads_with_a_matching_table_from_any_directory(path, monkeypatch, tmp_path):
    """By its bundled name, from a directory outside the checkout: its space and table are shipped too."""
    monkeypatch.chdir(tmp_path)
    config = load_experiment(path.stem)
    space = SearchSpace.from_yaml(config.space)
    table = latency_table(config)
    if config.latency is not None:
        assert table is not None and table.settings["space"] == space.name
        assert table.settings["input_size"] == config.input_size
        settings = table.settings
        keys = space_keys(space, settings["in_chans"], config.input_size, settings["num_classes"])
        entries = table.entries if isinstance(table, LatencyTable) else table.model.entries  # adapted
        missing = sorted(set(keys) - set(entries))
        assert not missing, f"{len(missing)} blocks of {space.name} have no latency, e.g. {missing[0]}"


def test_the_quickstart_and_the_real_experiment_are_shipped():
    assert {"quickstart", "pneumoniamnist", "pneumoniamnist_pareto"} <= {p.stem for p in EXPERIMENTS}


def test_the_committed_pneumoniamnist_model_keeps_the_deployment_contract():
    """experiments/results/pneumoniamnist/: raw [0, 1] NCHW in, logits out, the card's threshold in the
    ONNX metadata, and the card's architecture is the network in the file."""
    import json

    import numpy as np
    import onnxruntime

    from nas.export.onnx import read_metadata

    results = Path(__file__).resolve().parents[1] / "experiments" / "results" / "pneumoniamnist"
    card = json.loads((results / "model_card.json").read_text())
    data = (results / "model.onnx").read_bytes()
    assert 0 < card["threshold"] < 1 and card["deployment_contract"]["class_names"] == ["normal", "pneumonia"]
    assert json.loads(read_metadata(data)["threshold"]) == pytest.approx(card["threshold"])
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert image.name == "image" and image.shape[1:] == [1, 28, 28]
    logits = session.run(None, {"image": np.random.default_rng(0).random((3, 1, 28, 28), np.float32)})[0]
    assert logits.shape == (3, 2) and np.isfinite(logits).all()
    assert card["clinical"]["fp32"]["test"]["auc"] > 0.95  # what the README reports


def test_the_committed_ecg5000_model_keeps_the_deployment_contract():
    """experiments/results/ecg5000/: the raw heartbeat, float32 (batch, 1, 140), in as ``signal``, five
    logits out in the order of the card's ``classes`` (the UCR labels), within the microcontroller budget."""
    import json

    import numpy as np
    import onnxruntime

    from nas.export.onnx import weight_bytes

    results = Path(__file__).resolve().parents[1] / "experiments" / "results" / "ecg5000"
    card = json.loads((results / "model_card.json").read_text())
    assert card["classes"] == ["1", "2", "3", "4", "5"] == card["deployment_contract"]["class_names"]
    assert (
        card["complexity"]["params"] <= 50_000
        and card["complexity"]["peak_activation_bytes"] / 4 <= 32 * 1024
    )
    assert weight_bytes((results / "model.int8.onnx").read_bytes()) <= 64 * 1024  # flash
    for name in ("model.onnx", "model.int8.onnx"):
        session = onnxruntime.InferenceSession(
            (results / name).read_bytes(), providers=["CPUExecutionProvider"]
        )
        (signal,) = session.get_inputs()
        assert signal.name == "signal" and signal.shape == ["batch", 1, 140]
        beats = np.random.default_rng(0).standard_normal((3, 1, 140), np.float32)
        logits = session.run(None, {"signal": beats})[0]
        assert logits.shape == (3, 5) and np.isfinite(logits).all()
    assert card["clinical"]["fp32"]["test"]["accuracy"] > 0.93  # what the README reports
