"""The ONNX variants of a network (fp32, INT8) with their metadata and checks, and their clinical scores:
what ``nas export`` writes and what benchmarks compare networks with."""

from __future__ import annotations

import json

import pytest
from export_helpers import SMALL, data_file, trained_run

from nas.export.format import ExportOptions
from nas.export.onnx import read_metadata
from nas.export.source import from_arch, from_run_dir
from nas.export.variants import clinical_scores, export_variants

pytestmark = pytest.mark.usefixtures("single_thread")


def test_fp32_only_without_int8_with_the_deployment_metadata():
    source = from_arch(SMALL, None, None, None, None)
    variants = export_variants(source, ExportOptions())
    assert list(variants.onnx) == ["fp32"] and variants.calibration is None
    assert list(variants.parity) == ["fp32_max_abs_diff"]
    meta = read_metadata(variants.onnx["fp32"])
    assert meta["precision"] == "fp32" and meta["arch"] == source.arch.to_str()
    assert json.loads(meta["normalization"])["inside_graph"] is True
    assert variants.images.shape[1:] == source.input_shape[1:]


def test_trained_variants_are_calibrated_on_training_images_and_scored_on_any_split():
    source = from_run_dir(trained_run(), None, False, str(data_file()))
    variants = export_variants(source, ExportOptions(int8=True, calibration_images=16, prune=0.5))
    assert list(variants.onnx) == ["fp32", "int8"]
    assert variants.calibration == {"images": 16, "source": "training split", "method": "minmax"}
    assert variants.parity["int8_vs_fp32_max_abs_logit_diff"] >= 0
    meta = read_metadata(variants.onnx["int8"])
    assert meta["precision"] == "int8" and json.loads(meta["pruned_channel_ratio"]) == 0.5
    assert json.loads(meta["threshold"]) == pytest.approx(source.threshold)
    scores = clinical_scores(variants.onnx["fp32"], source.splits, source.task, source.threshold)
    assert list(scores) == ["val", "test"] and 0 <= scores["test"]["auc"] <= 1
    test = clinical_scores(variants.onnx["fp32"], source.splits, source.task, source.threshold, ("test",))
    assert test == {"test": scores["test"]}
