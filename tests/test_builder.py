"""build_model: ArchSpec -> torch module, for medical (1x28x28, 2 classes) and ImageNet shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.arch import ArchSpec, scale_width
from nas.builder import Network, build_model
from nas.zoo import REFERENCES


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


SMALL_ARCHS = [
    "conv_k3_c8:head",
    "conv_k3_s2_c16_ahswish:ds_k3_c16_hse0.25:ir_r2_k3_s2_e4_c24_ahswish,ir_k5_e3_c24_se0.25:head_c64_f128_ahswish",
    "conv_k3_c16:ir_k3_e6_c16_g2,ir_k3_s2_e3_c32_g4:head_d0.2",
    "conv_k3_p0_c32_nobn:maxpool_k3_s2_p0_ceil,fire_r2_sq8_c64:head_d0.5_convcls",
    "conv_k3_c16:basic_c16,basic_s2_c32:avgpool_k2_s2_p0:head",
    REFERENCES["resnet18_medmnist"].arch,
    REFERENCES["mobilenet_v2"].arch,
    REFERENCES["squeezenet1_1"].arch,
]


@pytest.mark.parametrize("text", SMALL_ARCHS)
def test_build_medmnist_shape(text):
    model = build_model(text, in_chans=1, num_classes=2, input_size=28).eval()
    assert isinstance(model, Network)
    arch = ArchSpec.from_str(text)
    assert len(model.stages) == len(arch.stages)
    assert [len(stage) for stage in model.stages] == [len(stage) for stage in arch.stages]
    first_conv = next(m for m in model.stem.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 1
    with torch.no_grad():
        out = model(torch.randn(3, 1, 28, 28))
    assert tuple(out.shape) == (3, 2)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("text", [SMALL_ARCHS[1], SMALL_ARCHS[3], REFERENCES["mobilenet_v3_small"].arch])
def test_build_imagenet_shape(text):
    model = build_model(text, in_chans=3, num_classes=1000, input_size=224).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert tuple(out.shape) == (1, 1000)


def test_network_output_follows_walk():
    text = SMALL_ARCHS[1]
    model = build_model(text, in_chans=3, num_classes=5, input_size=32).eval()
    sites = list(ArchSpec.from_str(text).walk(3, 32))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        x = model.stem(x)
        assert tuple(x.shape[1:]) == (sites[0].out_channels, sites[0].out_size, sites[0].out_size)
        stage_sites = [s for s in sites if s.section == "stage"]
        blocks = [b for stage in model.stages for b in stage]
        for block, site in zip(blocks, stage_sites, strict=True):
            x = block(x)
            assert tuple(x.shape[1:]) == (site.out_channels, site.out_size, site.out_size)
        assert tuple(model.head(x).shape) == (2, 5)


def test_training_step_runs():
    model = build_model(SMALL_ARCHS[2], in_chans=1, num_classes=2, input_size=28).train()
    out = model(torch.randn(4, 1, 28, 28))
    nn.functional.cross_entropy(out, torch.tensor([0, 1, 0, 1])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)


def test_string_and_spec_build_the_same_model():
    text = SMALL_ARCHS[1]
    a = build_model(text, 3, 10)
    b = build_model(ArchSpec.from_str(text), 3, 10)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_in_chans_and_num_classes_change_only_first_conv_and_classifier():
    text = REFERENCES["resnet18"].arch
    base = n_params(build_model(text, 3, 1000))
    assert base == 11_689_512
    # stem conv 7x7x64 per input channel; fc 512 weights + 1 bias per class
    assert n_params(build_model(text, 1, 1000)) == base - 2 * 7 * 7 * 64
    assert n_params(build_model(text, 3, 2)) == base - 998 * 513


def test_width_mult():
    text = REFERENCES["mobilenet_v2"].arch
    model = build_model(text, width_mult=0.35)
    assert n_params(model) == 1_677_128  # torchvision mobilenet_v2(width_mult=0.35)
    assert model.stem[0].out_channels == 16
    assert model.head.layers[0][0].out_channels == 1280
    expected = build_model(scale_width(ArchSpec.from_str(text), 0.35))
    assert n_params(expected) == n_params(model)
    assert n_params(build_model(text, width_mult=1.0)) == n_params(build_model(text)) == 3_504_872
    model = build_model(text, in_chans=1, num_classes=2, input_size=28, width_mult=0.5).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(2, 1, 28, 28)).shape) == (2, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_chans": 0}, "in_chans"),
        ({"in_chans": -3}, "in_chans"),
        ({"num_classes": 0}, "num_classes"),
        ({"width_mult": 0.0}, "width multiplier"),
        ({"width_mult": -0.5}, "width multiplier"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model("conv_k3_c8:head", **kwargs)


def test_bad_arch_string_raises():
    with pytest.raises(ValueError, match="'zz'"):
        build_model("conv_k3_c8_zz:head")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("conv_k3_s2_p0_c8:head", 2),
        ("conv_k3_c8:head", 0),
        (REFERENCES["squeezenet1_1"].arch, 16),  # 16 -> 7 -> 3 -> 1, then the last pool has nothing
    ],
)
def test_too_small_input_raises(text, size):
    with pytest.raises(ValueError, match="too small"):
        build_model(text, input_size=size)


def test_input_size_is_only_checked():
    model = build_model(SMALL_ARCHS[1], in_chans=1, num_classes=2, input_size=28).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 1, 64, 64)).shape) == (1, 2)
        assert tuple(model(torch.randn(1, 1, 20, 36)).shape) == (1, 2)
