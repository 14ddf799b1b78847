"""ONNX export: the deployment contract, checker, dynamic batch, metadata and parity with PyTorch."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from export_helpers import SMALL, data_file, options, trained_run

from nas.export.onnx import PARITY_TOLERANCE, Normalized, ParityError, parity, read_metadata
from nas.export.pipeline import run_export
from nas.export.runtime import logits
from nas.export.source import from_arch, from_run_dir
from nas.onnxrt import export_onnx, session

pytestmark = pytest.mark.usefixtures("single_thread")


def images(n: int, chans: int = 1, size: int = 28) -> np.ndarray:
    return np.random.default_rng(n).random((n, chans, size, size), dtype=np.float32)


def test_untrained_export_is_checked_dynamic_and_matches_pytorch():
    source = from_arch(SMALL, None, None, None, None)
    model = Normalized(source.network, source.mean, source.std)
    data = export_onnx(
        model,
        source.input_shape,
        deployable=True,
        metadata={"class_names": source.class_names, "threshold": None},
    )
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch" and proto.graph.input[0].name == "image"
    sess = session(data)
    for n in (1, 5):
        assert logits(sess, images(n)).shape == (n, 2)
        assert parity(model, data, images(n)) < PARITY_TOLERANCE


def test_only_a_deployable_export_has_a_dynamic_batch_and_metadata():
    """Not deployable: the fixed-shape graph a latency table times; metadata there is a caller's bug."""
    source = from_arch(SMALL, None, None, None, None)
    model = Normalized(source.network, source.mean, source.std)
    proto = onnx.load_from_string(export_onnx(model, source.input_shape))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1 and not proto.metadata_props
    with pytest.raises(ValueError, match="deployable models only"):
        export_onnx(model, source.input_shape, metadata={"threshold": None})


def test_normalization_is_inside_the_graph_and_metadata_travels():
    source = from_arch(SMALL, 32, 3, 4, None)
    mean, std = [0.2, 0.4, 0.6], [0.1, 0.2, 0.3]
    with torch.no_grad():  # make the network sensitive to its input scale: non-trivial BN statistics
        for m in source.network.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    meta = {"class_names": ["a", "b", "c", "d"], "threshold": 0.25, "note": "text"}
    data = export_onnx(Normalized(source.network, mean, std), (1, 3, 32, 32), deployable=True, metadata=meta)
    x = images(3, 3, 32)
    m, s = np.array(mean, np.float32).reshape(1, 3, 1, 1), np.array(std, np.float32).reshape(1, 3, 1, 1)
    with torch.no_grad():
        expected = source.network.eval()(torch.from_numpy((x - m) / s)).numpy()
    assert np.abs(logits(session(data), x) - expected).max() < PARITY_TOLERANCE
    stored = read_metadata(data)
    assert json.loads(stored["class_names"]) == ["a", "b", "c", "d"]
    assert json.loads(stored["threshold"]) == 0.25 and stored["note"] == "text"


def test_parity_failure_is_loud():
    a = from_arch(SMALL, None, None, None, None)
    b = from_arch(SMALL, None, None, None, None)
    with torch.no_grad():
        for p in b.network.parameters():
            p.add_(0.5)
    data = export_onnx(Normalized(a.network, a.mean, a.std), a.input_shape, deployable=True)
    with pytest.raises(ParityError, match="parity failed"):
        parity(Normalized(b.network, b.mean, b.std), data, images(2))


def test_trained_run_exports_with_its_contract(tmp_path):
    source = from_run_dir(trained_run(), None, False, str(data_file()))
    card = run_export(source, options(tmp_path)).to_json()
    meta = read_metadata((tmp_path / "model.onnx").read_bytes())
    trained = source.trained
    assert json.loads(meta["class_names"]) == trained["class_names"]
    assert json.loads(meta["threshold"]) == pytest.approx(trained["threshold"])
    assert json.loads(meta["normalization"])["mean"] == pytest.approx(trained["normalization"]["mean"])
    assert card["parity"]["fp32_max_abs_diff"] < PARITY_TOLERANCE
    # the exported graph scores the test split as the PyTorch model did in training
    for split in ("val", "test"):
        assert card["clinical"]["fp32"][split]["auc"] == pytest.approx(trained[split]["auc"], abs=1e-6)
        assert card["clinical"]["fp32"][split]["sensitivity"] == pytest.approx(trained[split]["sensitivity"])
