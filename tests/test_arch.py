"""The arch value: canonical grammar, JSON, equality, walk() and the width multiplier."""

from __future__ import annotations

import itertools
import json

import pytest

from nas.arch import ArchSpec, BlockSpec, parse_block, scale_width
from nas.blocks.layers import make_divisible
from nas.zoo import REFERENCES

# Canonical strings covering every block type and option kind (int, float, act, flag, repeat).
CANONICAL = [
    *(ref.arch for ref in REFERENCES.values()),
    "conv_k3_c8:ir_k3_e6_c8_g2,ir_k3_e1_c8_noskip:head",
    "conv_k5_s2_p0_c16_arelu6_nobn:avgpool_k2_s2_p0,maxpool_k3_s2_ceil:fire_sq4_c32_aswish:head_f64_ahswish",
    "conv_k3_c8:ds_k5_c8_hse0.5_noskip,ds_r3_k3_s2_c16_se0.25:basic_k5_c24_arelu6:head_c32_d0.1_convcls",
    "conv_k3_c8:ir_r2_k3_e3.667_c8_aswish,ir_k3_s2_e2.5_c16:head_c16",
    "conv_k3_c8:head",
]


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_string_round_trips_exactly(text):
    arch = ArchSpec.from_str(text)
    assert arch.to_str() == text
    assert str(arch) == text
    assert ArchSpec.from_str(arch.to_str()) == arch


@pytest.mark.parametrize("text", CANONICAL)
def test_json_round_trip(text):
    arch = ArchSpec.from_str(text)
    data = arch.to_json()
    assert data["arch"] == text
    assert ArchSpec.from_json(data) == arch
    # and through real JSON text, both as a dict and as the text itself
    assert ArchSpec.from_json(json.loads(json.dumps(data))) == arch
    assert ArchSpec.from_json(json.dumps(data)) == arch


def test_json_lists_every_option_with_defaults():
    data = ArchSpec.from_str("conv_k3_c8:ir_k5_e6_c8:head").to_json()
    assert data["stem"] == {
        "type": "conv",
        "kernel": 3,
        "stride": 1,
        "padding": None,
        "channels": 8,
        "act": "relu",
        "nobn": False,
        "bias": False,
    }
    assert data["stages"][0][0] == {
        "type": "ir",
        "kernel": 5,
        "stride": 1,
        "expand": 6.0,
        "channels": 8,
        "se": 0.0,
        "hse": 0.0,
        "act": "relu",
        "groups": 1,
        "noskip": False,
    }
    assert data["head"]["type"] == "head"


def test_json_structured_fields_win_over_arch_text():
    data = ArchSpec.from_str("conv_k3_c8:ir_k3_e6_c8:head").to_json()
    data["arch"] = "conv_k3_c99:head"
    assert ArchSpec.from_json(data).to_str() == "conv_k3_c8:ir_k3_e6_c8:head"


@pytest.mark.parametrize(
    "data",
    [
        {"stem": {"type": "conv", "kernel": 3, "channels": 8}, "stages": []},  # no head
        {"stem": {"kernel": 3, "channels": 8}, "stages": [], "head": {"type": "head"}},  # no type
        {"stem": {"type": "conv", "kernel": 3, "channels": 8}, "stages": 5, "head": {"type": "head"}},
        {
            "stem": {"type": "conv", "kernel": 3, "channels": 8, "bogus": 1},
            "stages": [],
            "head": {"type": "head"},
        },
        "{not json",
    ],
)
def test_malformed_json_raises_value_error(data):
    with pytest.raises(ValueError):
        ArchSpec.from_json(data)


def test_equality_and_hash_follow_structure():
    a = ArchSpec.from_str("conv_k3_c8:ir_r2_k3_e6_c8:head")
    b = ArchSpec.from_str("conv_k3_s1_c8_arelu:ir_k3_e6.0_c8,ir_k3_e6_c8:head_d0")
    c = ArchSpec.from_str("conv_k3_c8:ir_r2_k5_e6_c8:head")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert {a: 1}[b] == 1
    # frozen: a value, not a mutable object
    with pytest.raises(AttributeError):
        a.head = c.head  # type: ignore[misc]


def test_block_spec_value_semantics():
    x = BlockSpec.make("ir", kernel=3, expand=6, channels=24)
    y, repeat = parse_block("ir_c24_e6.0_k3")
    assert repeat == 1
    assert x == y and hash(x) == hash(y)
    assert x.expand == 6.0 and isinstance(x.expand, float)
    assert x.kernel == 3 and isinstance(x.kernel, int)
    assert x.stride == 1 and x.act == "relu" and x.groups == 1 and x.noskip is False
    assert x.options()["channels"] == 24
    assert x.has("groups") and not x.has("padding")
    assert x.replace(stride=2).to_str() == "ir_k3_s2_e6_c24"
    assert x.to_str() == "ir_k3_e6_c24"
    with pytest.raises(AttributeError, match="no option 'padding'"):
        _ = x.padding


def test_block_spec_make_checks_options():
    with pytest.raises(ValueError, match="bogus"):
        BlockSpec.make("conv", kernel=3, channels=8, bogus=1)
    with pytest.raises(ValueError, match="'c'"):
        BlockSpec.make("conv", kernel=3)
    with pytest.raises(ValueError, match="integer"):
        BlockSpec.make("conv", kernel=3.5, channels=8)
    with pytest.raises(ValueError, match="unknown block type 'nope'"):
        BlockSpec.make("nope")


# --- repeats -----------------------------------------------------------------------------------


def test_repeat_expands_with_stride_on_first_block_only():
    arch = ArchSpec.from_str("conv_k3_c16:ir_r3_k5_s2_e6_c24_se0.25:head")
    (stage,) = arch.stages
    assert len(stage) == 3
    assert [b.stride for b in stage] == [2, 1, 1]
    for block in stage:
        assert (block.type, block.kernel, block.expand, block.channels, block.se) == ("ir", 5, 6.0, 24, 0.25)
    assert stage[1] == stage[2] == stage[0].replace(stride=1)


def test_repeat_on_stride_free_blocks():
    (stage,) = ArchSpec.from_str("conv_k3_c16:fire_r3_sq4_c16:head").stages
    assert len(stage) == 3 and stage[0] == stage[1] == stage[2]


def test_runs_compress_to_repeat_tokens():
    explicit = "conv_k3_c16:ir_k3_s2_e6_c24,ir_k3_e6_c24,ir_k3_e6_c24,ir_k3_e6_c32:head"
    assert ArchSpec.from_str(explicit).to_str() == "conv_k3_c16:ir_r3_k3_s2_e6_c24,ir_k3_e6_c32:head"


def test_built_from_blocks_prints_the_same_string():
    first = BlockSpec.make("ir", kernel=3, stride=2, expand=6, channels=24)
    arch = ArchSpec(
        BlockSpec.make("conv", kernel=3, channels=16),
        ((first, first.replace(stride=1), first.replace(stride=1)),),
        BlockSpec.make("head"),
    )
    assert arch.to_str() == "conv_k3_c16:ir_r3_k3_s2_e6_c24:head"
    assert arch == ArchSpec.from_str(arch.to_str())


def test_identical_blocks_merge():
    merged = ArchSpec.from_str("conv_k3_c8:ir_r1_k3_e6_c8,ir_k3_e6_c8:head")
    assert merged.to_str() == "conv_k3_c8:ir_r2_k3_e6_c8:head"
    assert merged == ArchSpec.from_str("conv_k3_c8:ir_r2_k3_e6_c8:head")
    two_runs = ArchSpec.from_str("conv_k3_c8:ir_r2_k3_e6_c8,ir_r3_k3_e6_c8:head")
    assert two_runs.to_str() == "conv_k3_c8:ir_r5_k3_e6_c8:head"


def test_second_stride_two_block_starts_a_new_run():
    text = "conv_k3_c8:ir_k3_s2_e6_c8,ir_k3_s2_e6_c8:head"
    arch = ArchSpec.from_str(text)
    assert [b.stride for b in arch.stages[0]] == [2, 2]
    assert arch.to_str() == text


def test_runs_do_not_cross_stages():
    text = "conv_k3_c8:ir_k3_e6_c8:ir_k3_e6_c8:head"
    arch = ArchSpec.from_str(text)
    assert len(arch.stages) == 2
    assert arch.to_str() == text
    assert arch != ArchSpec.from_str("conv_k3_c8:ir_r2_k3_e6_c8:head")


# --- canonical form ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        # defaults left out, options in grammar order
        (
            "conv_k3_s1_c8_arelu:ir_k3_s1_e6_c8_g1_se0_hse0.0:head_c0_f0_arelu_d0",
            "conv_k3_c8:ir_k3_e6_c8:head",
        ),
        ("conv_c8_k3:ir_c8_aswish_e6_k3:head_d0.2_c16", "conv_k3_c8:ir_k3_e6_c8_aswish:head_c16_d0.2"),
        ("conv_k3_c8:fire_c16_sq4:head", "conv_k3_c8:fire_sq4_c16:head"),
        # noskip: dropped where no residual is possible (stride 2, or channels change), kept elsewhere
        ("conv_k3_c8:ir_k3_s2_e6_c8_noskip:head", "conv_k3_c8:ir_k3_s2_e6_c8:head"),
        ("conv_k3_c8:ds_k3_c16_noskip:head", "conv_k3_c8:ds_k3_c16:head"),
        ("conv_k3_c8:ir_k3_e6_c8_noskip:head", "conv_k3_c8:ir_k3_e6_c8_noskip:head"),
        (
            "conv_k3_c8:ir_r3_k3_s2_e6_c16_noskip:head",
            "conv_k3_c8:ir_k3_s2_e6_c16,ir_r2_k3_e6_c16_noskip:head",
        ),
        ("conv_k3_c8:ir_k3_s2_e6_c8_noskip,ir_k3_e6_c8:head", "conv_k3_c8:ir_r2_k3_s2_e6_c8:head"),
        # a padding equal to the default 'same' padding is the default
        ("conv_k3_p1_c8:maxpool_k3_s2_p1:head", "conv_k3_c8:maxpool_k3_s2:head"),
        ("conv_k5_p2_c8:head", "conv_k5_c8:head"),
        # a head with no 1x1 conv and no hidden layer has no activation to choose
        ("conv_k3_c8:head_arelu6_d0.2", "conv_k3_c8:head_d0.2"),
        ("conv_k3_c8:head_d0.5_convcls_aswish", "conv_k3_c8:head_d0.5_convcls"),
        ("conv_k3_c8:head_c16_arelu6", "conv_k3_c8:head_c16_arelu6"),
        # floats print their shortest form
        ("conv_k3_c8:ir_k3_e6.00_c8:head", "conv_k3_c8:ir_k3_e6_c8:head"),
        ("conv_k3_c8:ir_k3_e3.6670_c8_se.25:head", "conv_k3_c8:ir_k3_e3.667_c8_se0.25:head"),
        # surrounding whitespace
        ("  conv_k3_c8:head\n", "conv_k3_c8:head"),
    ],
)
def test_non_canonical_input_normalizes(given, canonical):
    arch = ArchSpec.from_str(given)
    assert arch.to_str() == canonical
    assert arch == ArchSpec.from_str(canonical)
    assert hash(arch) == hash(ArchSpec.from_str(canonical))


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("ir_k3_e6_c8", "ir_k3_e6_c8"),
        ("ir_k3_e6.0_c8", "ir_k3_e6_c8"),
        ("ir_k3_e3.667_c8", "ir_k3_e3.667_c8"),
        ("ir_k3_e2.5_c8", "ir_k3_e2.5_c8"),
        ("ir_k3_e1_c8", "ir_k3_e1_c8"),
        ("ir_k3_e0.5_c8", "ir_k3_e0.5_c8"),
        ("ir_k3_e6_c8_se0.25", "ir_k3_e6_c8_se0.25"),
        ("ir_k3_e6_c8_se1", "ir_k3_e6_c8_se1"),
        ("ds_k3_c8_hse0.125", "ds_k3_c8_hse0.125"),
        ("head_d0.2", "head_d0.2"),
    ],
)
def test_float_formatting(token, expected):
    block, _ = parse_block(token)
    assert block.to_str() == expected
    assert "e6.0" not in block.to_str()


def test_noskip_kept_where_a_residual_exists_drops_it():
    arch = ArchSpec.from_str("conv_k3_c8:ir_k3_e6_c8_noskip,ir_k3_s2_e6_c8_noskip:head")
    assert [b.noskip for b in arch.stages[0]] == [True, False]


# --- malformed strings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", ["empty"]),
        ("   ", ["empty"]),
        ("conv_k3_c8", ["conv_k3_c8", "':'"]),
        ("conv_k3_c8:ir_k3_e6_c8_zz:head", ["'zz'", "ir_k3_e6_c8_zz"]),
        ("conv_k3_c8_x3:head", ["'x3'"]),
        ("conv_k3_c8_abad:head", ["'abad'", "unknown activation 'bad'"]),
        ("conv_k3_c8:ir_k3_e6_c8_agelu:head", ["'agelu'"]),
        ("conv_k3:head", ["conv_k3", "'c'"]),
        ("conv_k3_c8:ir_k3_c8:head", ["ir_k3_c8", "'e'"]),
        ("conv_k3_c8:fire_c8:head", ["fire_c8", "'sq'"]),
        ("foo_k3_c8:head", ["'foo'"]),
        ("conv_k3_c8:ir_k3_e6_c8:bar", ["'bar'"]),
        ("conv_k3_c8:head:ir_k3_e6_c8", ["ir_k3_e6_c8", "head"]),
        ("conv_k3_c8:head_c8:head", ["head_c8", "last section"]),
        ("conv_k3_c8:conv_k3_c8", ["conv_k3_c8", "head"]),
        ("head:head", ["stem", "head"]),
        ("conv_k3_c8,conv_k3_c8:head", ["conv_k3_c8,conv_k3_c8", "one block"]),
        ("conv_k3_c8:head,head", ["head,head", "one block"]),
        ("conv_k3_k5_c8:head", ["'k5'", "given twice"]),
        ("conv_k3_c8:ir_k3_e6_e3_c8:head", ["'e3'", "given twice"]),
        ("conv_k3_c8:ir_k3_e6_c8_noskip_noskip:head", ["'noskip'", "given twice"]),
        ("conv_k3_c8:ir_r2_r3_k3_e6_c8:head", ["'r3'", "given twice"]),
        ("conv_k3_c8:ir_k3_e6_c8_se0.25_hse0.25:head", ["ir_k3_e6_c8_se0.25_hse0.25", "'se'", "'hse'"]),
        ("conv_k3_c8:ds_k3_c8_se0.25_hse0.25:head", ["ds_k3_c8_se0.25_hse0.25"]),
        ("conv_k3_c8:ir_k3_e3_c12_g3:head", ["ir_k3_e3_c12_g3", "g3"]),
        ("conv_k3_c12:ir_k3_e6_c8_g3:head", ["ir_k3_e6_c8_g3", "output channels 8", "g3"]),
        ("conv_k3_c8:ir_k3_e6_c12_g2,ir_k3_e1.5_c12_g8:head", ["ir_k3_e1.5_c12_g8", "g8"]),
        ("conv_k3_c8:fire_sq4_c9:head", ["fire_sq4_c9", "c9"]),
        ("conv_k3_c8:ir_r0_k3_e6_c8:head", ["'r0'"]),
        ("conv_k3_c8:ir_k3.5_e6_c8:head", ["'k3.5'"]),
        ("conv_k3_c8:ir_k3_ex_c8:head", ["'ex'"]),
        ("conv_k3_c8:ir_k3_e0.05_c8:head", ["'e0.05'"]),
        ("conv_k3_c8:ir_k3_e6_c8_se-1:head", ["'se-1'"]),
        ("conv_k3_c0:head", ["'c0'"]),
        ("conv_k0_c8:head", ["'k0'"]),
        ("conv_k3_c8:ir_k3_e6_c8_noskipx:head", ["'noskipx'"]),
        ("conv_k3_c8_nobn1:head", ["'nobn1'"]),
        ("conv_k3_c8:_k3:head", ["empty block type"]),
        ("conv_k3_c8:ir_k3_e6_c8,:head", ["empty block type"]),
        ("conv_k3_c8:maxpool_k3_p2:head", ["maxpool_k3_p2", "p2"]),
        ("conv_k3_c8:head_convcls_f10", ["head_f10_convcls", "'f'"]),
        ("conv_k3_c8:head_d1", ["head_d1", "d1"]),
        ("conv_k3_c8:head_noskip", ["'noskip'"]),
    ],
)
def test_malformed_strings_raise_value_error_naming_the_token(text, names):
    with pytest.raises(ValueError) as info:
        ArchSpec.from_str(text)
    message = str(info.value)
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"


def test_non_string_input_raises_value_error():
    with pytest.raises(ValueError, match="empty"):
        ArchSpec.from_str(None)  # type: ignore[arg-type]


def test_constructor_checks_sections():
    conv = BlockSpec.make("conv", kernel=3, channels=8)
    head = BlockSpec.make("head")
    with pytest.raises(ValueError, match="cannot be a head"):
        ArchSpec(head, (), head)
    with pytest.raises(ValueError, match="must be a head"):
        ArchSpec(conv, (), conv)
    with pytest.raises(ValueError, match="only be the last section"):
        ArchSpec(conv, ((head,),), head)


# --- walk --------------------------------------------------------------------------------------


def _sizes(arch: ArchSpec, in_chans: int = 3, size: int = 224):
    return [(s.in_size, s.out_size) for s in arch.walk(in_chans, size)]


def test_walk_resnet18_ends_at_7x7():
    arch = ArchSpec.from_str(REFERENCES["resnet18"].arch)
    sites = list(arch.walk(3, 224))
    assert [s.section for s in sites] == ["stem"] + ["stage"] * 9 + ["head"]
    assert (sites[0].in_channels, sites[0].out_channels, sites[0].in_size, sites[0].out_size) == (
        3,
        64,
        224,
        112,
    )
    maxpool = sites[1]
    assert maxpool.block.type == "maxpool"
    assert (maxpool.in_channels, maxpool.out_channels, maxpool.out_size) == (64, 64, 56)
    stage_ends = {}
    for s in sites:
        if s.section == "stage":
            stage_ends[s.stage] = (s.out_channels, s.out_size)
    assert stage_ends == {0: (64, 56), 1: (128, 28), 2: (256, 14), 3: (512, 7)}
    head = sites[-1]
    assert (head.in_channels, head.in_size, head.out_size) == (512, 7, 1)
    assert [(s.stage, s.index) for s in sites[1:-1]] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (2, 0),
        (2, 1),
        (3, 0),
        (3, 1),
    ]


def test_walk_squeezenet_ceil_mode_pools():
    arch = ArchSpec.from_str(REFERENCES["squeezenet1_1"].arch)
    sites = list(arch.walk(3, 224))
    assert (sites[0].in_size, sites[0].out_size) == (224, 111)
    pools = [(s.in_size, s.out_size) for s in sites if s.block.type == "maxpool"]
    assert pools == [(111, 55), (55, 27), (27, 13)]
    fires = [(s.in_channels, s.out_channels) for s in sites if s.block.type == "fire"]
    assert fires == [
        (64, 128),
        (128, 128),
        (128, 256),
        (256, 256),
        (256, 384),
        (384, 384),
        (384, 512),
        (512, 512),
    ]
    assert sites[-1].in_size == 13


def test_walk_mobilenet_v2_channels():
    arch = ArchSpec.from_str(REFERENCES["mobilenet_v2"].arch)
    sites = list(arch.walk(3, 224))
    assert len(sites) == 1 + 17 + 1
    outs = [s.out_channels for s in sites[:-1]]
    assert outs == [32, 16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320]
    # every block's input is the previous block's output
    for prev, cur in itertools.pairwise(sites):
        assert cur.in_channels == prev.out_channels
        assert cur.in_size == prev.out_size
    assert (sites[-1].in_channels, sites[-1].in_size) == (320, 7)


def test_walk_uses_in_chans_and_input_size():
    arch = ArchSpec.from_str(REFERENCES["resnet18_medmnist"].arch)
    sites = list(arch.walk(1, 28))
    assert sites[0].in_channels == 1 and sites[0].out_size == 28
    assert [s.out_size for s in sites if s.stage == 0] == [28, 28]
    assert sites[-1].in_size == 4  # 28 -> 14 -> 7 -> 4


@pytest.mark.parametrize(
    ("text", "size", "expected"),
    [
        ("conv_k3_s2_c8:head", 7, [(7, 4), (4, 1)]),
        ("conv_k3_s2_p0_c8:head", 7, [(7, 3), (3, 1)]),
        ("conv_k4_s2_p1_c8:head", 8, [(8, 4), (4, 1)]),
        ("conv_k3_c8:maxpool_k2_s2_p0:head", 7, [(7, 7), (7, 3), (3, 1)]),
        ("conv_k3_c8:maxpool_k2_s2_p0_ceil:head", 7, [(7, 7), (7, 4), (4, 1)]),
        ("conv_k3_c8:maxpool_k3_s2_ceil:head", 6, [(6, 6), (6, 4), (4, 1)]),
        ("conv_k3_c8:maxpool_k3_s2:head", 6, [(6, 6), (6, 3), (3, 1)]),
        # a ceil-mode window that would start in the right padding is dropped, as in torch
        ("conv_k3_c8:maxpool_k2_s2_p1_ceil:head", 5, [(5, 5), (5, 3), (3, 1)]),
        ("conv_k3_c8:avgpool_k3_s2:head", 5, [(5, 5), (5, 3), (3, 1)]),
        ("conv_k3_c8:fire_sq4_c8,basic_s2_c8:head", 5, [(5, 5), (5, 5), (5, 3), (3, 1)]),
    ],
)
def test_walk_spatial_sizes(text, size, expected):
    assert _sizes(ArchSpec.from_str(text), 3, size) == expected


def test_walk_sizes_match_torch():
    import torch

    from nas.builder import build_model

    text = (
        "conv_k3_s2_p0_c8:maxpool_k3_s2_p0_ceil,fire_sq4_c8:avgpool_k2_s2_p0_ceil,ir_k5_s2_e2_c8"
        ":maxpool_k2_s2_ceil,basic_s2_c8:head"
    )
    for size in (9, 10, 17, 23, 30):
        model = build_model(text, 3, 2, input_size=size).eval()
        sites = list(ArchSpec.from_str(text).walk(3, size))
        x = torch.zeros(1, 3, size, size)
        x = model.stem(x)
        assert x.shape[-1] == sites[0].out_size
        blocks = [b for stage in model.stages for b in stage]
        for block, site in zip(blocks, sites[1:-1], strict=True):
            x = block(x)
            assert x.shape[-1] == site.out_size, (size, site.block)
            assert x.shape[1] == site.out_channels


def test_walk_raises_when_input_too_small():
    arch = ArchSpec.from_str("conv_k3_s2_p0_c8:head")
    with pytest.raises(ValueError, match="too small"):
        list(arch.walk(3, 2))
    assert _sizes(arch, 3, 3) == [(3, 1), (1, 1)]


# --- width multiplier --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (32 * 0.35, 16),
        (16 * 0.35, 8),
        (24 * 0.35, 8),
        (320 * 0.35, 112),
        (32 * 1.4, 48),
        (96 * 0.5, 48),
        (18, 24),
    ],
)
def test_make_divisible_mobilenet_rounding(value, expected):
    assert make_divisible(value, 8) == expected


def test_scale_width_mobilenet_v2():
    arch = ArchSpec.from_str(REFERENCES["mobilenet_v2"].arch)
    small = scale_width(arch, 0.35)
    assert small.stem.channels == 16  # 11.2 rounds to 8, more than 10 % low, so 16
    assert [b.channels for b in small.stages[0]] == [8]
    assert small.stages[-1][0].channels == 112
    assert small.head.channels == 1280  # the head only ever scales up
    assert small.head.act == "relu6" and small.head.dropout == 0.2
    # expansion ratios, kernels, strides untouched
    for a, b in zip((b for s in arch.stages for b in s), (b for s in small.stages for b in s), strict=True):
        assert (a.type, a.kernel, a.stride) == (b.type, b.kernel, b.stride)
        if a.type == "ir":
            assert a.expand == b.expand
    big = scale_width(arch, 1.4)
    assert big.stem.channels == 48
    assert big.head.channels == 1792
    assert scale_width(arch, 1.0) == arch


def test_scale_width_head_widths_only_scale_up():
    arch = ArchSpec.from_str(REFERENCES["mobilenet_v3_small"].arch)
    small = scale_width(arch, 0.5)
    assert (small.head.channels, small.head.hidden) == (576, 1024)
    big = scale_width(arch, 2.0)
    assert (big.head.channels, big.head.hidden) == (1152, 2048)
    plain = scale_width(ArchSpec.from_str("conv_k3_c16:head"), 2.0)
    assert (plain.head.channels, plain.head.hidden) == (0, 0)


def test_scale_width_scales_fire_squeeze():
    arch = ArchSpec.from_str(REFERENCES["squeezenet1_1"].arch)
    half = scale_width(arch, 0.5)
    fires = [b for s in half.stages for b in s if b.type == "fire"]
    assert [(b.squeeze, b.channels) for b in fires][:2] == [(8, 64), (8, 64)]
    assert half.stem.channels == 32


def test_scale_width_result_is_canonical():
    arch = ArchSpec.from_str("conv_k3_c16:ir_k3_e6_c16_noskip,ir_k3_e6_c24:head")
    scaled = scale_width(arch, 0.5)
    assert ArchSpec.from_str(scaled.to_str()) == scaled


@pytest.mark.parametrize("mult", [0, -1.0])
def test_scale_width_rejects_non_positive(mult):
    arch = ArchSpec.from_str("conv_k3_c16:head")
    with pytest.raises(ValueError, match="positive"):
        scale_width(arch, mult)
