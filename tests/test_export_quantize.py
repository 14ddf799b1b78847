"""INT8: static QDQ quantization calibrated on training images; size, latency and metric deltas."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from export_helpers import SMALL, data_file, options, trained_run

from nas.export.onnx import Normalized, read_metadata
from nas.export.pipeline import run_export
from nas.export.quantize import ImageReader, calibration_images, quantize_int8
from nas.export.runtime import logits
from nas.export.source import from_arch, from_run_dir
from nas.onnxrt import export_onnx, session

# big enough that weights, not quantization parameters, dominate the file
WIDE = "conv_k3_s2_c16:ir_k3_e6_c64:ir_k3_s2_e6_c96:head_c256"


pytestmark = pytest.mark.usefixtures("single_thread")


def test_calibration_images_are_training_images_or_smooth_generated_ones():
    train = np.random.default_rng(0).integers(0, 256, (50, 28, 28, 1), dtype=np.uint8)
    picked = calibration_images(train, 20, (1, 28, 28))
    assert picked.shape == (20, 1, 28, 28) and picked.dtype == np.float32
    train01 = train.transpose(0, 3, 1, 2).astype(np.float32) / 255
    assert all(any(np.array_equal(img, t) for t in train01) for img in picked)
    generated = calibration_images(None, 8, (3, 16, 16))
    assert generated.shape == (8, 3, 16, 16) and generated.min() >= 0 and generated.max() <= 1
    reader = ImageReader(picked, batch=8)
    batches = [b["image"].shape[0] for b in iter(reader.get_next, None)]
    assert batches == [8, 8, 4] and reader.get_next() is None
    reader.rewind()
    assert reader.get_next() is not None


def test_int8_model_is_smaller_runs_and_stays_close():
    source = from_arch(WIDE, None, None, None, None)
    fp32 = export_onnx(
        Normalized(source.network, source.mean, source.std), source.input_shape, deployable=True
    )
    x = calibration_images(None, 32, (1, 28, 28))
    int8 = quantize_int8(fp32, x, metadata={"precision": "int8", "threshold": 0.4})
    ops = {node.op_type for node in onnx.load_from_string(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert len(int8) < 0.4 * len(fp32)
    assert read_metadata(int8)["precision"] == "int8"
    out32, out8 = logits(session(fp32), x[:5]), logits(session(int8), x[:5])
    assert out8.shape == (5, 2) and np.abs(out8 - out32).max() < 0.1 * np.abs(out32).max() + 1e-3


def test_unknown_calibration_method():
    source = from_arch(SMALL, None, None, None, None)
    fp32 = export_onnx(
        Normalized(source.network, source.mean, source.std), source.input_shape, deployable=True
    )
    with pytest.raises(ValueError, match="calibration method"):
        quantize_int8(fp32, calibration_images(None, 4, (1, 28, 28)), method="magic")


def test_trained_int8_export_reports_every_metric_delta(tmp_path):
    source = from_run_dir(trained_run(), None, False, str(data_file()))
    card = run_export(source, options(tmp_path, int8=True)).to_json()
    assert (tmp_path / "model.int8.onnx").is_file()
    q = card["int8"]
    assert q["calibration"]["source"] == "training split" and q["calibration"]["images"] == 32
    assert q["size_ratio"] == pytest.approx(card["files"]["int8"]["bytes"] / card["files"]["fp32"]["bytes"])
    assert q["weight_size_ratio"] < q["size_ratio"] and q["latency_ratio"] > 0
    fp32_test = card["clinical"]["fp32"]["test"]
    assert set(q["metric_deltas"]["test"]) == set(fp32_test) - {"threshold"}
    assert card["clinical"]["int8"]["test"]["threshold"] == fp32_test["threshold"]  # same operating point
    delta = card["clinical"]["int8"]["test"]["auc"] - fp32_test["auc"]
    assert q["metric_deltas"]["test"]["auc"] == pytest.approx(delta)
