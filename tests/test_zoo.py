"""Reference networks: canonical strings, and the published parameter counts and measured MACs.

Sources of the figures below:

* parameters: torchvision's published counts (the ``num_params`` of each model's weights meta,
  ``torchvision.models.<name>.<Weights>.IMAGENET1K_V1.meta["num_params"]``);
* MACs: fvcore 0.1.5 ``FlopCountAnalysis(...).total()`` measured on torchvision 0.29.1's own models, in
  eval mode, on a 1x3x224x224 input (fvcore counts one multiply-add as one "flop", and also counts
  BatchNorm, pooling and the SE rescale).

Both are held to 0.5 %. In fact every count matches exactly but the two MNASNet MAC figures:
torchvision's MNASNet pools with ``x.mean([2, 3])``, which fvcore does not count, while ours pools with
``nn.AdaptiveAvgPool2d``, which fvcore counts as 1280 * 7 * 7 = 62,720 more, within tolerance.
"""

from __future__ import annotations

import functools
import logging
import warnings

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from nas.arch import ArchSpec
from nas.blocks.layers import ConvBnAct
from nas.builder import build_model
from nas.zoo import REFERENCES, resolve_arch

TOLERANCE = 0.005

# name: (torchvision published parameters, fvcore MACs of torchvision's model at 3x224x224)
PUBLISHED = {
    "mobilenet_v2": (3_504_872, 314_193_216),
    "mobilenet_v3_large": (5_483_032, 226_033_824),
    "mobilenet_v3_small": (2_542_856, 59_649_536),
    "efficientnet_b0": (5_288_548, 401_659_392),
    "mnasnet1_0": (4_383_312, 325_329_152),  # ours +62,720: pooling counted, see above
    "mnasnet0_5": (2_218_512, 110_586_848),  # ours +62,720: pooling counted, see above
    "squeezenet1_1": (1_235_496, 349_320_936),
    "resnet18": (11_689_512, 1_819_065_856),
}
# torchvision mobilenet_v2(width_mult=0.35): parameters counted on the model, MACs by fvcore as above
MOBILENET_V2_035 = (1_677_128, 65_074_080)

# MnasNet-A1 (Tan et al. 2019, "MnasNet: Platform-Aware Neural Architecture Search for Mobile", Table 1):
# 3.9 M parameters, 312 M multiply-adds.
MNASNET_A1_PARAMS = 3_900_000
MNASNET_A1_MULT_ADDS = 312_000_000


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@functools.cache
def measure(name: str, width_mult: float = 1.0) -> tuple[int, int, tuple[int, ...]]:
    """Parameters, fvcore MACs and output shape of a reference network at 3x224x224, 1000 classes.

    Cached: each network is built and counted once per test session.
    """
    model = build_model(REFERENCES[name].arch, in_chans=3, num_classes=1000, width_mult=width_mult).eval()
    x = torch.zeros(1, 3, 224, 224)
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            flops = FlopCountAnalysis(model, x)
            flops.unsupported_ops_warnings(False)
            flops.uncalled_modules_warnings(False)
            macs = int(flops.total())
            shape = tuple(model(x).shape)
    finally:
        logger.setLevel(level)
    return n_params(model), macs, shape


def assert_close(actual: int, expected: int, what: str) -> None:
    assert abs(actual - expected) <= TOLERANCE * expected, f"{what}: {actual:,} vs {expected:,}"


@pytest.mark.parametrize("name", list(REFERENCES))
def test_reference_string_is_canonical(name):
    text = REFERENCES[name].arch
    assert ArchSpec.from_str(text).to_str() == text
    assert REFERENCES[name].source
    assert resolve_arch(name) == ArchSpec.from_str(text)


IMAGENET = [
    n for n in REFERENCES if n != "resnet18_medmnist" and ArchSpec.from_str(REFERENCES[n].arch).dims == 2
]


@pytest.mark.parametrize("name", IMAGENET)
def test_reference_builds_and_runs_at_224(name):
    _, _, shape = measure(name)
    assert shape == (1, 1000)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_matches_published_figures(name):
    params, macs, _ = measure(name)
    expected_params, expected_macs = PUBLISHED[name]
    assert_close(params, expected_params, f"{name} parameters")
    assert_close(macs, expected_macs, f"{name} MACs")


def test_exact_parameter_counts():
    # The builds are exact, not merely within tolerance.
    for name, (expected_params, _) in PUBLISHED.items():
        assert measure(name)[0] == expected_params, name


def test_mobilenet_v2_width_035():
    params, macs, shape = measure("mobilenet_v2", 0.35)
    assert_close(params, MOBILENET_V2_035[0], "mobilenet_v2 x0.35 parameters")
    assert_close(macs, MOBILENET_V2_035[1], "mobilenet_v2 x0.35 MACs")
    assert shape == (1, 1000)


def test_mnasnet_a1_matches_paper():
    params, macs, _ = measure("mnasnet_a1")
    assert abs(params - MNASNET_A1_PARAMS) <= 0.02 * MNASNET_A1_PARAMS, params
    # The paper's 312 M multiply-adds count the convolutions and the classifier only; fvcore also
    # counts BatchNorm (and the pools and SE rescales), so its total is somewhat above 312 M
    # (measured 324.7 M, +4.1 %): require it to lie between 312 M and 5 % above.
    assert MNASNET_A1_MULT_ADDS <= macs <= 1.05 * MNASNET_A1_MULT_ADDS, macs


def test_resnet18_medmnist():
    arch = resolve_arch("resnet18_medmnist")
    model = build_model(arch, in_chans=1, num_classes=2, input_size=28).eval()
    # MedMNIST v2 ResNet-18 (28), counted by hand for in_chans=1, num_classes=2:
    #   stem      3x3 conv 1->64 no bias                      576
    #             BN 64                                       128    ->        704
    #   stage 1   2 x (2 x (3x3 64->64 = 36,864) + 2 BN 128)         ->    147,968
    #   stage 2   3x3 64->128 73,728 + 3x3 128->128 147,456 + 2 BN 512
    #             + 1x1 64->128 8,192 + BN 256                = 230,144
    #             + (2 x 147,456 + 2 BN 512)                  = 295,424  ->  525,568
    #   stage 3   3x3 128->256 294,912 + 3x3 256->256 589,824 + 2 BN 1,024
    #             + 1x1 128->256 32,768 + BN 512              = 919,040
    #             + (2 x 589,824 + 2 BN 1,024)                = 1,180,672 -> 2,099,712
    #   stage 4   3x3 256->512 1,179,648 + 3x3 512->512 2,359,296 + 2 BN 2,048
    #             + 1x1 256->512 131,072 + BN 1,024           = 3,673,088
    #             + (2 x 2,359,296 + 2 BN 2,048)              = 4,720,640 -> 8,393,728
    #   head      linear 512->2 + bias                                  ->      1,026
    #   total     704 + 147,968 + 525,568 + 2,099,712 + 8,393,728 + 1,026 = 11,168,706
    assert n_params(model) == 11_168_706
    sites = list(arch.walk(1, 28))
    assert sites[0].block.kernel == 3 and sites[0].block.stride == 1
    assert not any(s.block.type == "maxpool" for s in sites)
    # no max-pool and a stride-1 stem: 28x28 through the whole first stage
    assert [s.out_size for s in sites if s.section == "stem" or s.stage == 0] == [28, 28, 28]
    assert [s.out_size for s in sites if s.section == "stage"][-1] == 4
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert tuple(model.stages[0](model.stem(x)).shape) == (2, 64, 28, 28)
        assert tuple(model(x).shape) == (2, 2)


# Wang et al. 2017's time-series baselines as dl-4-tsc builds them in Keras, for 1 input channel and
# 5 classes (trainable parameters: Conv1D weights + bias, BatchNorm gamma + beta, Dense weights + bias).
WANG_1D = {
    #   conv k8   1->128:     1*128*8 + 128 =   1,152  + BN 256 ->   1,408
    #   conv k5 128->256:   128*256*5 + 256 = 164,096  + BN 512 -> 164,608
    #   conv k3 256->128:   256*128*3 + 128 =  98,432  + BN 256 ->  98,688
    #   dense   128->5:         128*5 + 5   =     645
    #   total  1,408 + 164,608 + 98,688 + 645 = 265,349
    "fcn1d_wang": 265_349,
    #   block 1 (1->64):    k8 1*64*8+64 = 576, k5 64*64*5+64 = 20,544, k3 64*64*3+64 = 12,352,
    #                       shortcut k1 1*64+64 = 128, 4 BN x 128 = 512            ->  34,112
    #   block 2 (64->128):  k8 64*128*8+128 = 65,664, k5 128*128*5+128 = 82,048,
    #                       k3 128*128*3+128 = 49,280, shortcut k1 64*128+128 = 8,320,
    #                       4 BN x 256 = 1,024                                      -> 206,336
    #   block 3 (128->128): k8 128*128*8+128 = 131,200, k5 82,048, k3 49,280,
    #                       shortcut BN only, 4 BN x 256 = 1,024                    -> 263,552
    #   dense 128->5: 645
    #   total  34,112 + 206,336 + 263,552 + 645 = 504,645
    "resnet1d_wang": 504_645,
}


@pytest.mark.parametrize("name", list(WANG_1D))
def test_wang_time_series_baselines(name):
    arch = resolve_arch(name)
    assert arch.dims == 1
    model = build_model(arch, in_chans=1, num_classes=5, input_size=140).eval()
    assert n_params(model) == WANG_1D[name]
    assert not any(isinstance(m, nn.Conv2d | nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(2, 1, 140)
    with torch.no_grad():
        assert tuple(model(x).shape) == (2, 5)
        # Keras 'same' padding keeps the length through every block, even kernel 8 included
        sites = list(arch.walk(1, 140))
        x = model.stem(x)
        assert tuple(x.shape[1:]) == (sites[0].out_channels, sites[0].out_size) == (x.shape[1], 140)
        blocks = [b for stage in model.stages for b in stage]
        for block, site in zip(blocks, sites[1:-1], strict=True):
            x = block(x)
            assert tuple(x.shape[1:]) == (site.out_channels, site.out_size), site.block
            assert site.out_size == 140


def test_resnet1d_wang_shortcuts():
    # dl-4-tsc: a 1x1 conv-BN shortcut where the channels change (blocks 1, 2), BatchNorm alone in block 3
    model = build_model(resolve_arch("resnet1d_wang"), in_chans=1, num_classes=5, input_size=140)
    blocks = [model.stem, *model.stages[0]]
    assert [type(b.shortcut) for b in blocks] == [ConvBnAct, ConvBnAct, nn.BatchNorm1d]
    assert [b.conv1[0].kernel_size for b in blocks] == [(8,)] * 3


def test_resolve_arch():
    text = "conv_k3_c8:head"
    assert resolve_arch(f"  {text} ") == ArchSpec.from_str(text)
    assert resolve_arch(" resnet18 ") == ArchSpec.from_str(REFERENCES["resnet18"].arch)
    with pytest.raises(ValueError, match="neither a reference network"):
        resolve_arch("resnet19")
    with pytest.raises(ValueError, match="'zz'"):
        resolve_arch("conv_k3_c8_zz:head")
