"""Wang et al.'s time-series residual block (``res3``), the conv block's ``bias`` flag, and 'same' padding
for even kernels (Keras' Conv1D kernel 8), in 1-D and 2-D."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.arch import ArchSpec, parse_block
from nas.blocks.layers import ConvBnAct, spatial_dims
from nas.builder import build_model


def build(token: str, in_chs: int, dims: int) -> nn.Module:
    spec, _ = parse_block(token)
    spec.kind.check(spec, in_chs)
    with spatial_dims(dims):
        return spec.kind.build(spec, in_chs).eval()


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize(
    ("token", "in_chs", "conv_shortcut"),
    [("res3_c16", 8, True), ("res3_c16", 16, False), ("res3_k3_c16_aswish_bias", 4, True)],
)
def test_res3_builds_in_both_dims(token, in_chs, conv_shortcut, dims):
    block = build(token, in_chs, dims)
    conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d)
    assert all(not isinstance(m, nn.Conv1d | nn.Conv2d) or isinstance(m, conv) for m in block.modules())
    if conv_shortcut:
        assert isinstance(block.shortcut, ConvBnAct) and block.shortcut[0].kernel_size == (1,) * dims
    else:
        assert isinstance(block.shortcut, bn)
    x = torch.randn(2, in_chs, *(9,) * dims)
    assert tuple(block(x).shape) == (2, 16, *(9,) * dims)


def test_res3_kernels_and_params():
    block = build("res3_c8", 4, 1)
    assert [c[0].kernel_size for c in (block.conv1, block.conv2, block.conv3)] == [(8,), (5,), (3,)]
    assert [len(c) for c in (block.conv1, block.conv2, block.conv3)] == [3, 3, 2]  # no act on the third
    # no biases: 3 convs + 1x1 shortcut, 4 BatchNorms
    assert n_params(block) == 4 * 8 * 8 + 8 * 8 * 5 + 8 * 8 * 3 + 4 * 8 + 4 * 2 * 8
    assert all(c[0].bias is None for c in (block.conv1, block.conv2, block.conv3, block.shortcut))
    # bias: one more per output channel in each of the four convs
    biased = build("res3_c8_bias", 4, 1)
    assert n_params(biased) == n_params(block) + 4 * 8
    assert all(c[0].bias is not None for c in (biased.conv1, biased.conv2, biased.conv3, biased.shortcut))
    # same channels: the shortcut is a BatchNorm (2C) instead of a 1x1 conv-BN
    same = build("res3_c8", 8, 1)
    assert n_params(same) == 8 * 8 * 8 + 8 * 8 * 5 + 8 * 8 * 3 + 4 * 2 * 8


def test_res3_activation_after_the_sum():
    block = build("res3_c8", 8, 1)
    with torch.no_grad():
        block.conv3[1].weight.zero_()
        block.conv3[1].bias.zero_()
    x = torch.randn(2, 8, 11)
    expected = torch.relu(block.shortcut(x))
    torch.testing.assert_close(block(x), expected)


def test_res3_rejects_a_stride():
    spec, _ = parse_block("res3_s2_c8")
    with pytest.raises(ValueError, match="s2"):
        spec.kind.check(spec, 8)
    with pytest.raises(ValueError, match="res3"):
        ArchSpec.from_str("1d:conv_k3_c8:res3_s2_c8:head")


@pytest.mark.parametrize(
    "text",
    [
        "1d:res3_c64_bias:res3_r2_c128_bias:head",
        "1d:conv_k8_c128_bias:conv_k5_c256_bias,conv_k3_c128_bias:head",
        "conv_k3_c8_bias:res3_k5_c16_ahswish:head",
        "conv_k3_s2_c8_arelu6_bias:head",
    ],
)
def test_bias_and_res3_round_trip(text):
    arch = ArchSpec.from_str(text)
    assert arch.to_str() == text
    assert ArchSpec.from_json(arch.to_json()) == arch


def test_conv_bias_flag():
    plain, biased = build("conv_k3_c8", 4, 1), build("conv_k3_c8_bias", 4, 1)
    assert plain[0].bias is None and biased[0].bias is not None
    assert [type(m) for m in biased] == [nn.Conv1d, nn.BatchNorm1d, nn.ReLU]
    assert n_params(biased) == n_params(plain) + 8
    assert parse_block("conv_k3_c8")[0].bias is False
    spec, _ = parse_block("conv_k3_c8_nobn_bias")
    with pytest.raises(ValueError, match="nobn"):
        spec.kind.check(spec, 4)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 140])
def test_even_kernels_keep_the_size_at_stride_1(size, dims):
    # Keras 'same': kernel 8 pads 3 left and 4 right; walk() must agree with the tensors
    text = ("1d:" if dims == 1 else "") + "conv_k8_c8:conv_k4_c8,basic_k2_c8,ir_k6_e2_c8,ds_k4_c8:head"
    arch = ArchSpec.from_str(text)
    model = build_model(arch, 3, 2, input_size=size).eval()
    sites = list(arch.walk(3, size))
    assert [s.out_size for s in sites[:-1]] == [size] * 5
    x = model.stem(torch.randn(1, 3, *(size,) * dims))
    assert tuple(x.shape[2:]) == (size,) * dims
    for block in model.stages[0]:
        x = block(x)
        assert tuple(x.shape[2:]) == (size,) * dims


def test_keras_same_padding_is_asymmetric():
    # an impulse at the first sample is seen by kernel taps 3 (left pad 3): Keras/TF pad the extra sample
    # on the right
    conv = build("conv_k8_c1_nobn", 1, 1)[0]
    with torch.no_grad():
        conv.weight.copy_(torch.arange(8.0).view(1, 1, 8))
        conv.bias.zero_()
        out = conv(torch.eye(1, 10).view(1, 1, 10))
    assert out[0, 0, 0] == 3.0


def test_strided_and_explicit_padding_unchanged():
    # even kernels at stride 2 keep torch's k//2; an explicit p stays p (k4_p2 at stride 1 is not 'same')
    assert [s.out_size for s in ArchSpec.from_str("1d:conv_k4_s2_c8:head").walk(3, 8)] == [5, 1]
    arch = ArchSpec.from_str("1d:conv_k4_p2_c8:head")
    assert arch.to_str() == "1d:conv_k4_p2_c8:head"
    assert [s.out_size for s in arch.walk(3, 8)] == [9, 1]
    assert tuple(build_model(arch, 3, 2, input_size=8).stem(torch.randn(1, 3, 8)).shape) == (1, 8, 9)


def test_even_pool_at_stride_1_needs_a_padding():
    with pytest.raises(ValueError, match="k2"):
        ArchSpec.from_str("conv_k3_c8:maxpool_k2_s1:head")
    arch = ArchSpec.from_str("conv_k3_c8:maxpool_k2_s1_p1:head")
    assert arch.to_str() == "conv_k3_c8:maxpool_k2_p1:head"
    assert [s.out_size for s in arch.walk(3, 6)][1] == 7
