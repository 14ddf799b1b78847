"""Every block type builds, runs, and is the layer its grammar promises."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.arch import parse_block
from nas.blocks import BLOCKS, block_type
from nas.blocks.layers import ChannelShuffle, ConvBnAct, SqueezeExcite, activation, make_divisible
from nas.errors import UsageError


def build(token: str, in_chs: int, num_classes: int | None = None) -> nn.Module:
    spec, repeat = parse_block(token)
    assert repeat == 1
    spec.kind.check(spec, in_chs)
    if num_classes is None:
        return spec.kind.build(spec, in_chs).eval()
    return spec.kind.build(spec, in_chs, num_classes).eval()


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_registry():
    assert set(BLOCKS) == {"conv", "ds", "ir", "fire", "basic", "res3", "maxpool", "avgpool", "head"}
    assert [name for name in BLOCKS if block_type(name).is_head] == ["head"]
    for name in BLOCKS:
        kind = block_type(name)
        assert kind is BLOCKS.get(name) and kind.name == name
        assert kind.summary
    with pytest.raises(UsageError, match=r"unknown block type 'nope' \(known: conv, ds, ir, "):
        block_type("nope")


@pytest.mark.parametrize(
    ("token", "in_chs", "size", "out_shape"),
    [
        ("conv_k3_c16", 3, 9, (2, 16, 9, 9)),
        ("conv_k3_s2_c16", 3, 9, (2, 16, 5, 5)),
        ("conv_k3_s2_p0_c16_nobn", 3, 9, (2, 16, 4, 4)),
        ("conv_k7_s2_c8_ahswish", 1, 28, (2, 8, 14, 14)),
        ("ds_k3_c16", 8, 8, (2, 16, 8, 8)),
        ("ds_k5_s2_c16_se0.25_aswish", 16, 8, (2, 16, 4, 4)),
        ("ds_k3_s2_c16_hse0.25", 16, 8, (2, 16, 4, 4)),
        ("ir_k3_e6_c24", 16, 8, (2, 24, 8, 8)),
        ("ir_k5_s2_e3_c40_hse0.25_ahswish", 24, 8, (2, 40, 4, 4)),
        ("ir_k3_e1_c16_se0.25", 16, 7, (2, 16, 7, 7)),
        ("ir_k3_e2_c16_g2", 8, 6, (2, 16, 6, 6)),
        ("fire_sq16_c128", 64, 13, (2, 128, 13, 13)),
        ("basic_c64", 64, 8, (2, 64, 8, 8)),
        ("basic_s2_c128", 64, 8, (2, 128, 4, 4)),
        ("basic_k5_c32_arelu6", 16, 8, (2, 32, 8, 8)),
        ("maxpool_k3_s2", 8, 112, (2, 8, 56, 56)),
        ("maxpool_k3_s2_p0_ceil", 8, 111, (2, 8, 55, 55)),
        ("avgpool_k2_s2_p0", 8, 9, (2, 8, 4, 4)),
    ],
)
def test_block_forward_shape(token, in_chs, size, out_shape):
    block = build(token, in_chs)
    out = block(torch.randn(2, in_chs, size, size))
    assert tuple(out.shape) == out_shape
    spec, _ = parse_block(token)
    assert spec.kind.out_channels(spec, in_chs) == out_shape[1]


@pytest.mark.parametrize(
    ("token", "in_chs", "residual"),
    [
        ("ds_k3_c16", 16, True),
        ("ds_k3_c16_noskip", 16, False),
        ("ds_k3_c16", 8, False),
        ("ds_k3_s2_c16", 16, False),
        ("ir_k3_e6_c16", 16, True),
        ("ir_k3_e6_c16_se0.25", 16, True),
        ("ir_k3_e6_c16_noskip", 16, False),
        ("ir_k3_e6_c16", 8, False),
        ("ir_k3_s2_e6_c16", 16, False),
        ("ir_k3_e2_c16_g2", 16, True),
    ],
)
def test_residual_exactly_when_shapes_match_and_not_noskip(token, in_chs, residual):
    block = build(token, in_chs)
    assert block.has_skip is residual
    # Zero the projection's BatchNorm: the block's own path then outputs exactly 0, so the output is
    # the input where a residual is added and 0 where not.
    bn = block.project[1]
    assert isinstance(bn, nn.BatchNorm2d)
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()
    x = torch.randn(2, in_chs, 6, 6)
    out = block(x)
    if residual:
        torch.testing.assert_close(out, x)
    else:
        assert torch.count_nonzero(out) == 0


def test_ds_layers():
    block = build("ds_k5_s2_c24_arelu6", 16)
    dw, project = block.dw[0], block.project[0]
    assert (dw.in_channels, dw.out_channels, dw.groups, dw.kernel_size, dw.stride) == (
        16,
        16,
        16,
        (5, 5),
        (2, 2),
    )
    assert dw.padding == (2, 2) and dw.bias is None
    assert isinstance(block.dw[2], nn.ReLU6)
    assert (project.in_channels, project.out_channels, project.kernel_size) == (16, 24, (1, 1))
    assert len(block.project) == 2  # linear projection: conv + BN, no activation
    assert isinstance(block.se, nn.Identity)


def test_ir_layers():
    block = build("ir_k3_s2_e6_c24_aswish", 16)
    expand, dw, project = block.expand[0], block.dw[0], block.project[0]
    assert (expand.in_channels, expand.out_channels, expand.kernel_size) == (16, 96, (1, 1))
    assert (dw.in_channels, dw.groups, dw.kernel_size, dw.stride) == (96, 96, (3, 3), (2, 2))
    assert (project.in_channels, project.out_channels) == (96, 24)
    assert isinstance(block.expand[2], nn.SiLU) and isinstance(block.dw[2], nn.SiLU)
    assert len(block.project) == 2
    assert isinstance(block.shuffle, nn.Identity)
    # MobileNetV3's e3.667 on 24 channels gives round(88.0) = 88 expanded channels
    assert build("ir_k3_e3.667_c24", 24).expand[0].out_channels == 88
    # the expansion conv is there also at e1
    assert build("ir_k3_e1_c16", 16).expand[0].out_channels == 16


def test_se_reduces_from_input_channels_with_block_act_and_sigmoid():
    block = build("ir_k5_e6_c40_se0.25_aswish", 24)
    se = block.se
    assert isinstance(se, SqueezeExcite)
    # MnasNet/EfficientNet: reduce to int(in_chs * ratio) = 6, not from the 144 expanded channels
    assert (se.reduce.in_channels, se.reduce.out_channels) == (144, 6)
    assert (se.expand.in_channels, se.expand.out_channels) == (6, 144)
    assert isinstance(se.act, nn.SiLU)
    assert isinstance(se.gate, nn.Sigmoid)
    assert se.reduce.bias is not None and se.expand.bias is not None
    ds = build("ds_k3_c16_se0.25_aswish", 32)
    assert (ds.se.reduce.in_channels, ds.se.reduce.out_channels) == (32, 8)
    assert build("ir_k3_e6_c8_se0.25", 2).se.reduce.out_channels == 1  # never below 1


def test_hse_rounds_expanded_channels_with_relu_and_hardsigmoid():
    block = build("ir_k5_s2_e3_c40_hse0.25_ahswish", 24)
    se = block.se
    assert isinstance(se, SqueezeExcite)
    # MobileNetV3: make_divisible(72 * 0.25 = 18, 8) = 24 (16 is more than 10 % below 18)
    assert make_divisible(72 * 0.25, 8) == 24
    assert (se.reduce.in_channels, se.reduce.out_channels) == (72, 24)
    assert isinstance(se.act, nn.ReLU)  # ReLU whatever the block's act
    assert isinstance(se.gate, nn.Hardsigmoid)
    ds = build("ds_k3_s2_c16_hse0.25", 16)
    assert (ds.se.reduce.in_channels, ds.se.reduce.out_channels) == (16, 8)


def test_squeeze_excite_rescales_channels():
    torch.manual_seed(0)
    se = SqueezeExcite(8, 2, "relu", hard_gate=False).eval()
    x = torch.randn(3, 8, 5, 5)
    pooled = x.mean(dim=(2, 3), keepdim=True)
    scale = torch.sigmoid(se.expand(torch.relu(se.reduce(pooled))))
    torch.testing.assert_close(se(x), x * scale)
    assert scale.shape == (3, 8, 1, 1)


def test_se_and_hse_together_rejected():
    spec, _ = parse_block("ir_k3_e6_c16_se0.25_hse0.25")
    with pytest.raises(ValueError, match="'se' and 'hse'"):
        spec.kind.check(spec, 16)


def test_grouped_ir_shuffles_channels():
    block = build("ir_k3_e6_c16_g2", 8)
    assert block.expand[0].groups == 2 and block.project[0].groups == 2
    assert block.dw[0].groups == 48
    assert isinstance(block.shuffle, ChannelShuffle) and block.shuffle.groups == 2
    grouped = n_params(block.expand) + n_params(block.project)
    plain = build("ir_k3_e6_c16", 8)
    assert grouped < n_params(plain.expand) + n_params(plain.project)
    assert tuple(block(torch.randn(2, 8, 5, 5)).shape) == (2, 16, 5, 5)


def test_channel_shuffle_order():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert ChannelShuffle(3)(x).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_grouped_ir_channels_must_divide():
    spec, _ = parse_block("ir_k3_e6_c16_g3")
    with pytest.raises(ValueError, match="g3"):
        spec.kind.check(spec, 9)  # input 9 divides, output 16 does not
    spec.kind.check(parse_block("ir_k3_e2_c12_g3")[0], 9)


def test_fire_concatenates_expands():
    block = build("fire_sq16_c128", 64)
    squeeze, e1, e3 = block.squeeze[0], block.expand1x1[0], block.expand3x3[0]
    assert (squeeze.in_channels, squeeze.out_channels, squeeze.kernel_size) == (64, 16, (1, 1))
    assert (e1.in_channels, e1.out_channels, e1.kernel_size) == (16, 64, (1, 1))
    assert (e3.in_channels, e3.out_channels, e3.kernel_size, e3.padding) == (16, 64, (3, 3), (1, 1))
    # SqueezeNet: convs with bias, no BatchNorm
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    assert all(c.bias is not None for c in convs(block))
    # torchvision Fire(64, 16, 64, 64): 64*16+16 + 16*64+64 + 16*64*9+64
    assert n_params(block) == 11_408
    x = torch.randn(2, 64, 5, 5)
    out = block(x)
    s = block.squeeze(x)
    torch.testing.assert_close(out[:, :64], block.expand1x1(s))
    torch.testing.assert_close(out[:, 64:], block.expand3x3(s))


def test_fire_needs_even_channels():
    spec, _ = parse_block("fire_sq4_c9")
    with pytest.raises(ValueError, match="c9"):
        spec.kind.check(spec, 8)


def test_basic_shortcut_conv_only_when_shape_changes():
    same = build("basic_c64", 64)
    assert isinstance(same.shortcut, nn.Identity)
    wider = build("basic_c128", 64)
    strided = build("basic_s2_c64", 64)
    for block, stride in ((wider, 1), (strided, 2)):
        conv = block.shortcut[0]
        assert isinstance(conv, nn.Conv2d)
        assert conv.kernel_size == (1, 1) and conv.stride == (stride, stride) and conv.bias is None
        assert isinstance(block.shortcut[1], nn.BatchNorm2d) and len(block.shortcut) == 2
    # torchvision BasicBlock(64, 64): two 3x3 convs + two BNs
    assert n_params(same) == 2 * (64 * 64 * 9 + 2 * 64)
    # with a 1x1 conv + BN downsample
    assert n_params(build("basic_s2_c128", 64)) == 64 * 128 * 9 + 128 * 128 * 9 + 64 * 128 + 3 * 2 * 128


def test_basic_activation_after_the_sum():
    block = build("basic_c8", 8)
    with torch.no_grad():
        block.conv2[1].weight.zero_()
        block.conv2[1].bias.zero_()
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_conv_block_options():
    conv = build("conv_k3_s2_c16_ahswish", 3)
    assert isinstance(conv, ConvBnAct)
    assert [type(m) for m in conv] == [nn.Conv2d, nn.BatchNorm2d, nn.Hardswish]
    assert conv[0].bias is None and conv[0].padding == (1, 1)
    nobn = build("conv_k3_s2_p0_c64_nobn", 3)
    assert [type(m) for m in nobn] == [nn.Conv2d, nn.ReLU]
    assert nobn[0].bias is not None and nobn[0].padding == (0, 0)
    assert n_params(nobn) == 3 * 64 * 9 + 64  # torchvision squeezenet1_1's first conv


def test_pool_blocks():
    maxpool = build("maxpool_k3_s2_p0_ceil", 64)
    assert isinstance(maxpool, nn.MaxPool2d) and maxpool.ceil_mode and maxpool.padding == 0
    avgpool = build("avgpool_k3_s2", 8)
    assert isinstance(avgpool, nn.AvgPool2d) and avgpool.padding == 1 and not avgpool.ceil_mode
    assert n_params(maxpool) == n_params(avgpool) == 0
    spec, _ = parse_block("maxpool_k3_s2")
    assert spec.kind.out_channels(spec, 17) == 17


def test_activations_are_not_in_place():
    for name, cls in (("relu", nn.ReLU), ("relu6", nn.ReLU6), ("hswish", nn.Hardswish), ("swish", nn.SiLU)):
        act = activation(name)
        assert isinstance(act, cls)
        assert not getattr(act, "inplace", False)


# --- heads -------------------------------------------------------------------------------------


def head_types(head: nn.Module) -> list[type]:
    return [type(m) for m in head.layers]


def test_plain_head():
    head = build("head", 512, 1000)
    assert head_types(head) == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Linear]
    assert n_params(head) == 512 * 1000 + 1000  # resnet18's fc
    assert tuple(head(torch.randn(2, 512, 7, 7)).shape) == (2, 1000)


def test_head_with_conv():
    head = build("head_c1280_arelu6_d0.2", 320, 1000)
    assert head_types(head) == [ConvBnAct, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Linear]
    conv = head.layers[0]
    assert (conv[0].in_channels, conv[0].out_channels, conv[0].kernel_size) == (320, 1280, (1, 1))
    assert isinstance(conv[2], nn.ReLU6)
    assert head.layers[3].p == 0.2
    assert head.layers[4].in_features == 1280
    assert tuple(head(torch.randn(2, 320, 7, 7)).shape) == (2, 1000)


def test_head_with_hidden_layer():
    head = build("head_c960_f1280_ahswish_d0.2", 160, 10)
    assert head_types(head) == [
        ConvBnAct,
        nn.AdaptiveAvgPool2d,
        nn.Flatten,
        nn.Linear,
        nn.Hardswish,
        nn.Dropout,
        nn.Linear,
    ]
    assert (head.layers[3].in_features, head.layers[3].out_features) == (960, 1280)
    assert (head.layers[6].in_features, head.layers[6].out_features) == (1280, 10)
    assert tuple(head(torch.randn(2, 160, 7, 7)).shape) == (2, 10)


def test_convcls_head():
    head = build("head_d0.5_convcls", 512, 1000)
    assert head_types(head) == [nn.Dropout, nn.Conv2d, nn.ReLU, nn.AdaptiveAvgPool2d, nn.Flatten]
    cls = head.layers[1]
    assert (cls.in_channels, cls.out_channels, cls.kernel_size) == (512, 1000, (1, 1))
    assert n_params(head) == 512 * 1000 + 1000
    out = head(torch.randn(2, 512, 13, 13))
    assert tuple(out.shape) == (2, 1000)
    assert bool((out >= 0).all())  # ReLU before the pool, as in SqueezeNet


def test_head_output_channels_and_checks():
    spec, _ = parse_block("head_c16")
    assert spec.kind.is_head
    assert spec.kind.out_channels(spec, 8) == 0
    for token, message in (("head_f8_convcls", "convcls"), ("head_d1", "below 1")):
        bad, _ = parse_block(token)
        with pytest.raises(ValueError, match=message):
            bad.kind.check(bad, 8)
