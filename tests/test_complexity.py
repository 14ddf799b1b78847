"""Parameters and fvcore MACs (``nas.metrics.complexity``), and the ``Complexity`` value ``measure`` gives.

The 224x224 figures are what fvcore reports for torchvision's own models (3x224x224 input, 1000
classes); the zoo's arch strings must reproduce them through our builder.
"""

from __future__ import annotations

import json

import pytest

from nas.arch import ArchSpec
from nas.builder import build_model
from nas.metrics import Complexity, count_macs, count_params, energy_estimate_mj, measure
from nas.zoo import resolve_arch

TINY = "conv_k3_c8:conv_k3_c16:head"  # at 1x8x8, 10 classes


@pytest.mark.parametrize(
    ("name", "macs", "skipped"),
    [
        (
            "mobilenet_v3_small",
            59_649_536,
            {"add": 6, "hardsigmoid": 9, "hardswish": 19, "mul": 9, "relu": 14},
        ),
        ("resnet18", 1_819_065_856, {"add": 8, "max_pool2d": 1, "relu": 17}),
        ("squeezenet1_1", 349_320_936, {"cat": 8, "max_pool2d": 3, "relu": 26}),
    ],
)
def test_fvcore_macs_match_torchvision(name: str, macs: int, skipped: dict[str, int]) -> None:
    model = build_model(resolve_arch(name))
    total, by_operator, fvcore_skipped = count_macs(model, 3, 224)
    assert total == macs
    assert sum(by_operator.values()) == total
    assert fvcore_skipped == skipped


def test_measure_mobilenet_v2() -> None:
    c = measure(resolve_arch("mobilenet_v2"))
    assert c.params == 3_504_872
    assert c.macs == 314_193_216
    assert c.macs_by_operator == {
        "conv": 299_494_272,
        "batch_norm": 13_356_224,
        "adaptive_avg_pool2d": 62_720,
        "linear": 1_280_000,
    }
    # ReLU6 is aten::hardtanh: 35 of them; 10 residual adds. Neither is in the MAC total.
    assert c.fvcore_skipped_ops == {"add": 10, "hardtanh": 35}
    assert c.peak_activation_bytes > 3 * 224 * 224 * 4  # more than the input alone
    assert c.activation_traffic_bytes > c.peak_activation_bytes
    assert c.energy_mj_estimate == pytest.approx(
        energy_estimate_mj(c.macs, c.params, c.activation_traffic_bytes)
    )


def test_params_resnet18() -> None:
    assert count_params(build_model(resolve_arch("resnet18"))) == 11_689_512


def test_tiny_net_by_hand() -> None:
    c = measure(ArchSpec.from_str(TINY), in_chans=1, input_size=8, num_classes=10)
    # conv 1->8 k3: 8 outputs x 64 pixels x 9 taps; conv 8->16 k3: 16 x 64 x (8 x 9); BN has no bias.
    assert c.macs_by_operator["conv"] == 8 * 64 * 9 + 16 * 64 * 72
    assert c.macs_by_operator["linear"] == 16 * 10
    assert c.macs_by_operator["adaptive_avg_pool2d"] == 16 * 64  # one op per input element
    assert c.macs == sum(c.macs_by_operator.values())
    # ReLU costs fvcore nothing and says nothing; we list it.
    assert c.fvcore_skipped_ops == {"relu": 2}
    # conv1 (9x1 + BN 2x8) + conv2 (9x8x16 + BN 2x16) + linear (16x10 + 10)
    assert c.params == 72 + 16 + 1152 + 32 + 170
    assert c.peak_activation_bytes == 8192  # worked out in tests/test_memory.py
    assert c.activation_traffic_bytes == 37_288


def test_tiny_1d_net_by_hand() -> None:
    """The same net in 1-D over 8 samples: each tap count and activation is the 2-D one over 8 x 8 pixels
    divided by 8 (one row instead of eight), and the energy estimate uses the 1-D counts."""
    c = measure(ArchSpec.from_str(f"1d:{TINY}"), in_chans=1, input_size=8, num_classes=10)
    assert c.macs_by_operator["conv"] == 8 * 8 * 3 + 16 * 8 * 24
    assert c.macs_by_operator["adaptive_avg_pool1d"] == 16 * 8
    assert c.macs_by_operator["linear"] == 16 * 10
    assert c.params == 24 + 16 + 384 + 32 + 170
    assert c.peak_activation_bytes == 8192 // 8
    # one byte per conv and linear weight, 8 per output channel (int32 bias, fp32 scale); BN folded away
    assert c.int8_weight_bytes == (24 + 8 * 8) + (384 + 8 * 16) + (160 + 8 * 10)
    assert c.energy_mj_estimate == pytest.approx(
        energy_estimate_mj(c.macs, c.params, c.activation_traffic_bytes)
    )


def test_count_macs_keeps_training_mode() -> None:
    model = build_model(TINY, in_chans=1, num_classes=10, input_size=8).train()
    count_macs(model, 1, 8)
    assert model.training


def test_complexity_json_round_trip() -> None:
    c = measure(ArchSpec.from_str(TINY), in_chans=1, input_size=8, num_classes=10)
    data = json.loads(json.dumps(c.to_json()))
    assert data["macs"] == c.macs
    assert data["fvcore_skipped_ops"] == {"relu": 2}
    assert Complexity.from_json(data) == c
    assert hash(c) == hash(Complexity.from_json(data))
