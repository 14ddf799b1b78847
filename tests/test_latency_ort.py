"""The ONNX Runtime backend on real (tiny) modules, and the backend registry."""

from __future__ import annotations

import pytest
from torch import nn

from nas.errors import ConfigError
from nas.latency.backends import make_backend
from nas.latency.backends.base import Item, Settings, summarize

pytest.importorskip("onnxruntime")


def test_two_small_modules_timed_interleaved():
    backend = make_backend("ort", threads=1)
    small = Item("small", nn.Conv2d(8, 8, 3, padding=1).eval(), (1, 8, 8, 8))
    large = Item("large", nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.ReLU()).eval(), (1, 32, 32, 32))
    timings = backend.measure([small, large], Settings(rounds=30, warmup_ms=2.0))
    assert set(timings) == {"small", "large"}
    assert all(t.rounds == 30 and t.median_ms > 0 and t.spread_ms >= 0 for t in timings.values())
    assert timings["large"].median_ms > 3 * timings["small"].median_ms
    provenance = backend.provenance()
    assert provenance["backend"] == "ort" and provenance["threads"] == 1
    assert provenance["onnxruntime"] == backend.version


def test_exported_model_is_valid_onnx():
    onnx = pytest.importorskip("onnx")
    from nas.latency.backends.ort import export_onnx

    model = onnx.load_from_string(
        export_onnx(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval(), (1, 3, 8, 8))
    )
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Conv"]  # BatchNorm folded into the conv


def test_backend_registry_errors():
    with pytest.raises(ValueError, match="unknown latency backend 'cuda'"):
        make_backend("cuda")
    with pytest.raises(ConfigError, match="threads"):
        make_backend("ort", threads=0)


def test_summarize_median_and_iqr():
    timing = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (timing.median_ms, timing.spread_ms, timing.rounds) == (3.0, 2.0, 5)
