"""Reference networks as arch strings, built faithfully from their papers and torchvision's source (the
1-D time-series baselines from the Keras code their benchmark ran).

Names resolve anywhere an arch is accepted (``nas arch info mobilenet_v2``). The figures the tests hold
them to (parameters, fvcore MACs) are stated in ``tests/test_zoo.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.arch import ArchSpec
from nas.errors import ConfigError


@dataclass(frozen=True)
class Reference:
    arch: str
    source: str


REFERENCES: dict[str, Reference] = {
    "mobilenet_v2": Reference(
        "conv_k3_s2_c32_arelu6:ds_k3_c16_arelu6:ir_r2_k3_s2_e6_c24_arelu6:ir_r3_k3_s2_e6_c32_arelu6"
        ":ir_r4_k3_s2_e6_c64_arelu6:ir_r3_k3_e6_c96_arelu6:ir_r3_k3_s2_e6_c160_arelu6:ir_k3_e6_c320_arelu6"
        ":head_c1280_arelu6_d0.2",
        "Sandler et al. 2018, MobileNetV2 (torchvision mobilenet_v2)",
    ),
    "mobilenet_v3_large": Reference(
        "conv_k3_s2_c16_ahswish:ds_k3_c16:ir_k3_s2_e4_c24,ir_k3_e3_c24:ir_r3_k5_s2_e3_c40_hse0.25"
        ":ir_k3_s2_e6_c80_ahswish,ir_k3_e2.5_c80_ahswish,ir_r2_k3_e2.3_c80_ahswish"
        ",ir_r2_k3_e6_c112_hse0.25_ahswish:ir_r3_k5_s2_e6_c160_hse0.25_ahswish:head_c960_f1280_ahswish_d0.2",
        "Howard et al. 2019, Searching for MobileNetV3 (torchvision mobilenet_v3_large)",
    ),
    "mobilenet_v3_small": Reference(
        "conv_k3_s2_c16_ahswish:ds_k3_s2_c16_hse0.25:ir_k3_s2_e4.5_c24,ir_k3_e3.667_c24"
        ":ir_k5_s2_e4_c40_hse0.25_ahswish,ir_r2_k5_e6_c40_hse0.25_ahswish,ir_r2_k5_e3_c48_hse0.25_ahswish"
        ":ir_r3_k5_s2_e6_c96_hse0.25_ahswish:head_c576_f1024_ahswish_d0.2",
        "Howard et al. 2019, Searching for MobileNetV3 (torchvision mobilenet_v3_small)",
    ),
    "efficientnet_b0": Reference(
        "conv_k3_s2_c32_aswish:ds_k3_c16_se0.25_aswish:ir_r2_k3_s2_e6_c24_se0.25_aswish"
        ":ir_r2_k5_s2_e6_c40_se0.25_aswish:ir_r3_k3_s2_e6_c80_se0.25_aswish:ir_r3_k5_e6_c112_se0.25_aswish"
        ":ir_r4_k5_s2_e6_c192_se0.25_aswish:ir_k3_e6_c320_se0.25_aswish:head_c1280_aswish_d0.2",
        "Tan & Le 2019, EfficientNet (torchvision efficientnet_b0)",
    ),
    "mnasnet1_0": Reference(
        "conv_k3_s2_c32:ds_k3_c16:ir_r3_k3_s2_e3_c24:ir_r3_k5_s2_e3_c40:ir_r3_k5_s2_e6_c80:ir_r2_k3_e6_c96"
        ":ir_r4_k5_s2_e6_c192:ir_k3_e6_c320:head_c1280_d0.2",
        "Tan et al. 2019, MnasNet-B1 depth 1.0 (torchvision mnasnet1_0)",
    ),
    "mnasnet0_5": Reference(
        "conv_k3_s2_c16:ds_k3_c8:ir_r3_k3_s2_e3_c16:ir_r3_k5_s2_e3_c24:ir_r3_k5_s2_e6_c40:ir_r2_k3_e6_c48"
        ":ir_r4_k5_s2_e6_c96:ir_k3_e6_c160:head_c1280_d0.2",
        "Tan et al. 2019, MnasNet-B1 depth 0.5, channels rounded as torchvision's _get_depths(0.5)",
    ),
    "mnasnet_a1": Reference(
        "conv_k3_s2_c32:ds_k3_c16:ir_r2_k3_s2_e6_c24:ir_r3_k5_s2_e3_c40_se0.25:ir_r4_k3_s2_e6_c80"
        ":ir_r2_k3_e6_c112_se0.25:ir_r3_k5_s2_e6_c160_se0.25:ir_k3_e6_c320:head_c1280_d0.2",
        "Tan et al. 2019, MnasNet-A1 (paper Figure 7)",
    ),
    "squeezenet1_1": Reference(
        "conv_k3_s2_p0_c64_nobn:maxpool_k3_s2_p0_ceil,fire_r2_sq16_c128:maxpool_k3_s2_p0_ceil,fire_r2_sq32_c256"
        ":maxpool_k3_s2_p0_ceil,fire_r2_sq48_c384,fire_r2_sq64_c512:head_d0.5_convcls",
        "Iandola et al. 2016, SqueezeNet v1.1 (torchvision squeezenet1_1)",
    ),
    "resnet18": Reference(
        "conv_k7_s2_c64:maxpool_k3_s2,basic_r2_c64:basic_r2_s2_c128:basic_r2_s2_c256:basic_r2_s2_c512:head",
        "He et al. 2016, ResNet-18 (torchvision resnet18)",
    ),
    "resnet18_medmnist": Reference(
        "conv_k3_c64:basic_r2_c64:basic_r2_s2_c128:basic_r2_s2_c256:basic_r2_s2_c512:head",
        "Yang et al. 2023, MedMNIST v2 ResNet-18 (28): 3x3 stride-1 stem, no max-pool (CIFAR style)",
    ),
    "fcn1d_wang": Reference(
        "1d:conv_k8_c128_bias:conv_k5_c256_bias,conv_k3_c128_bias:head",
        "Wang, Yan & Oates 2017, FCN for time series, as Fawaz et al. 2019 benchmark it (dl-4-tsc fcn.py,"
        " Keras: conv biases before BatchNorm, 'same' padding)",
    ),
    "resnet1d_wang": Reference(
        "1d:res3_c64_bias:res3_r2_c128_bias:head",
        "Wang, Yan & Oates 2017, ResNet for time series, as Fawaz et al. 2019 benchmark it (dl-4-tsc"
        " resnet.py, Keras: conv biases before BatchNorm, BatchNorm-only shortcut in the third block)",
    ),
}


def resolve_arch(name_or_arch: str) -> ArchSpec:
    """A reference name or an arch string, as an ``ArchSpec``; unknown input raises ``ConfigError``."""
    text = name_or_arch.strip()
    if text in REFERENCES:
        return ArchSpec.from_str(REFERENCES[text].arch)
    if ":" not in text:
        raise ConfigError(
            f"'{text}' is neither a reference network ({', '.join(REFERENCES)}) nor an arch string"
        )
    return ArchSpec.from_str(text)
