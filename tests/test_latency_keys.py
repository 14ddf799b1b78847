"""Latency keys come from the arch value alone; a space's keys are enumerated exactly."""

from __future__ import annotations

import random

import pytest
import torch

from nas.arch import ArchSpec, parse_block
from nas.latency.keys import arch_keys, block_key, block_module, block_site, input_shape
from nas.latency.space_keys import space_keys
from nas.space import SearchSpace
from nas.zoo import REFERENCES

MNV2 = ArchSpec.from_str(REFERENCES["mobilenet_v2"].arch)


def test_keys_follow_the_walk():
    keys = [k for k, _ in arch_keys(MNV2, 3, 224, 1000)]
    assert keys[0] == "conv_k3_s2_c32_arelu6|in3|224x224|fp32"
    assert keys[1] == "ds_k3_c16_arelu6|in32|112x112|fp32"
    assert keys[2] == "ir_k3_s2_e6_c24_arelu6|in16|112x112|fp32"
    assert keys[3] == "ir_k3_e6_c24_arelu6|in24|56x56|fp32"
    assert keys[-1] == "head_c1280_arelu6_d0.2|in320|7x7|n1000|fp32"
    assert len(keys) == len(list(MNV2.walk(3, 224)))


def test_key_changes_with_input_and_dtype_not_with_position():
    keys = dict(arch_keys(MNV2, 1, 28, 2, "int8"))
    assert next(iter(keys)) == "conv_k3_s2_c32_arelu6|in1|28x28|int8"
    sites = [s for _, s in arch_keys(MNV2, 3, 224, 10)]
    repeated = [block_key(s) for s in sites if s.block.to_str() == "ir_k3_e6_c24_arelu6"]
    assert len(repeated) == 1  # ir_r2: the second block is the only stride-1 copy
    assert block_key(sites[0]) != block_key(sites[0], "fp16")


def test_head_key_needs_classes_and_dtype_is_checked():
    head = list(MNV2.walk(3, 64))[-1]
    with pytest.raises(ValueError, match="num_classes"):
        block_key(head)
    with pytest.raises(ValueError, match="unknown dtype"):
        block_key(head, "fp64", 10)
    assert block_key(head, num_classes=2).endswith("|2x2|n2|fp32")


def test_block_site_matches_the_site_inside_a_network():
    for site in MNV2.walk(3, 96):
        alone = block_site(site.block, site.in_channels, site.in_size)
        assert (alone.block, alone.in_channels, alone.out_channels, alone.in_size, alone.out_size) == (
            site.block,
            site.in_channels,
            site.out_channels,
            site.in_size,
            site.out_size,
        )


@pytest.mark.parametrize("text", ["ir_k5_s2_e6_c40_se0.25", "ds_k3_c16", "conv_k3_s2_c32", "head_c64_d0.2"])
def test_block_module_output_shape(text):
    block, _ = parse_block(text)
    site = block_site(block, 16, 20)
    module = block_module(site, num_classes=7)
    assert not module.training
    with torch.no_grad():
        out = module(torch.randn(input_shape(site)))
    expected = (1, 7) if site.block.kind.is_head else (1, site.out_channels, site.out_size, site.out_size)
    assert tuple(out.shape) == expected


@pytest.mark.parametrize(
    ("name", "size"), [("mnasnet", 64), ("fbnet", 64), ("mobilenetv3", 224), ("mnasnet_small", 28)]
)
def test_space_keys_cover_every_sampled_net(name, size):
    space = SearchSpace.from_yaml(name)
    keys = space_keys(space, 3, size, 10)
    rng = random.Random(1)
    for _ in range(150):
        for key, _site in arch_keys(space.sample(rng), 3, size, 10):
            assert key in keys


def test_space_keys_of_a_tiny_space_exactly(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "name: tiny\nstem: conv_k3_s2_c8\nhead: head\nstages:\n"
        "  - {stride: 2, channels: 16, layers: {min: 1, max: 2}, choose_per: stage,\n"
        "     ops: [ds], kernel: [3, 5]}\n"
    )
    keys = space_keys(SearchSpace.from_yaml(path), 1, 32, 2)
    assert sorted(keys) == sorted(
        [
            "conv_k3_s2_c8|in1|32x32|fp32",
            "ds_k3_s2_c16|in8|16x16|fp32",
            "ds_k5_s2_c16|in8|16x16|fp32",
            "ds_k3_c16|in16|8x8|fp32",
            "ds_k5_c16|in16|8x8|fp32",
            "head|in16|8x8|n2|fp32",
        ]
    )


def test_space_keys_cover_every_stride_choice(tmp_path):
    """A stride choice multiplies the sizes a stage sees: each (input, stride) pair is its own key."""
    path = tmp_path / "strided.yaml"
    path.write_text(
        "name: strided\nstem: conv_k3_s2_c8\nstem_stride: [1, 2]\nhead: head\nstages:\n"
        "  - {stride: [1, 2], channels: 16, layers: {min: 1, max: 2}, choose_per: stage, ops: [ds_k3]}\n"
    )
    keys = space_keys(SearchSpace.from_yaml(path), 1, 16, 2)
    assert sorted(keys) == sorted(
        [
            "conv_k3_c8|in1|16x16|fp32",
            "conv_k3_s2_c8|in1|16x16|fp32",
            "ds_k3_c16|in8|16x16|fp32",  # first layer, stride 1, after the stride-1 stem
            "ds_k3_c16|in8|8x8|fp32",
            "ds_k3_s2_c16|in8|16x16|fp32",
            "ds_k3_s2_c16|in8|8x8|fp32",
            "ds_k3_c16|in16|16x16|fp32",  # the second layer at every size the first can leave
            "ds_k3_c16|in16|8x8|fp32",
            "ds_k3_c16|in16|4x4|fp32",
            "head|in16|16x16|n2|fp32",
            "head|in16|8x8|n2|fp32",
            "head|in16|4x4|n2|fp32",
        ]
    )
