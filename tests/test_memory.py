"""Peak activation memory and activation traffic (``nas.metrics.memory``) on hand-computable networks."""

from __future__ import annotations

from nas.builder import build_model
from nas.metrics import peak_activation_bytes, profile, profile_activations, trace
from nas.zoo import resolve_arch

F32 = 4


def test_plain_conv_net_by_hand() -> None:
    # "conv_k3_c8:conv_k3_c16:head" at 1x8x8, 10 classes, fp32. Tensors, in bytes:
    #   x 1x8x8 = 256; stem conv, BN, ReLU: 8x8x8 = 2048 each; stage conv, BN, ReLU: 16x8x8 = 4096 each;
    #   pool 16 -> 64; flatten, dropout(eval): views of the pool output, 0; linear 10 -> 40.
    # Peak while the second BN (or ReLU) runs: its input (conv/BN out, 4096) + its output (4096) = 8192.
    # x is dead by then (its only user is the first conv), so is the stem's ReLU output.
    model = build_model("conv_k3_c8:conv_k3_c16:head", in_chans=1, num_classes=10, input_size=8)
    p = profile_activations(model, 1, 8)
    assert p.peak_bytes == 4096 + 4096
    assert p.peak_node == "stages_0_0_1"  # the stage's BatchNorm: first node to reach the peak
    assert p.input_bytes == 256
    assert p.output_bytes == 40
    # Traffic: inputs + output of every compute op; views move nothing.
    traffic = (
        (256 + 2048)  # conv1
        + 2 * (2048 + 2048)  # BN1, ReLU1
        + (2048 + 4096)  # conv2
        + 2 * (4096 + 4096)  # BN2, ReLU2
        + (4096 + 64)  # adaptive avg pool
        + (64 + 40)  # linear
    )
    assert p.traffic_bytes == traffic == 37_288


def test_residual_keeps_skip_live() -> None:
    # "conv_k3_c8:ds_k3_c8:head" at 1x8x8: every tensor in the block is 8x8x8 fp32 = 2048 bytes.
    # The block input (stem ReLU output) is the skip: live from the stem ReLU until the final add.
    # While e.g. the depthwise BN runs: skip 2048 + dw conv out 2048 + BN out 2048 = 6144;
    # at the add: skip + projection BN out + sum = 6144. Without the residual only 2 tensors: 4096.
    residual = build_model("conv_k3_c8:ds_k3_c8:head", in_chans=1, num_classes=10, input_size=8)
    plain = build_model("conv_k3_c8:ds_k3_c8_noskip:head", in_chans=1, num_classes=10, input_size=8)
    with_skip = profile_activations(residual, 1, 8)
    without = profile_activations(plain, 1, 8)
    assert with_skip.peak_bytes == 3 * 2048
    assert without.peak_bytes == 2 * 2048
    # The add reads two tensors and writes one.
    assert with_skip.traffic_bytes - without.traffic_bytes == 3 * 2048


def test_views_alias_and_copies_count() -> None:
    # Channel shuffle: unflatten and transpose share storage with the expand output; the flatten after a
    # transpose must copy, so it is a tensor of its own. SE off: se is nn.Identity, an alias too.
    model = build_model("conv_k3_c8:ir_k3_e2_c16_g2:head", in_chans=1, num_classes=10, input_size=8)
    traced = trace(model, 1, 8)
    by_name = {n.name: n for n in traced.nodes}
    aliases = {n.name: a.name for n, a in traced.alias_of.items()}
    assert aliases["unflatten"] == "stages_0_0_expand_2"
    assert aliases["transpose"] == "unflatten"
    assert aliases["stages_0_0_se"] == "stages_0_0_dw_2"
    assert "flatten" not in aliases
    assert traced.numel[by_name["flatten"]] == 16 * 64
    # Peak: expand ReLU output (1024 el.) is live via its views while flatten writes its copy (1024).
    assert profile(traced).peak_bytes == 2 * 16 * 64 * F32


def test_peak_grows_with_resolution() -> None:
    model = build_model("conv_k3_s2_c16:ds_k3_c16,ir_k3_s2_e4_c24:head", input_size=16)
    peaks = [peak_activation_bytes(model, 3, size) for size in (16, 32, 64)]
    assert peaks[0] < peaks[1] < peaks[2]
    assert peaks[2] == 4 * peaks[1]  # every activation is 4x larger at twice the side


def test_bytes_per_element_scales() -> None:
    model = build_model("conv_k3_c8:ds_k3_c8:head", in_chans=1, num_classes=10, input_size=8)
    traced = trace(model, 1, 8)
    fp32, int8 = profile(traced, 4), profile(traced, 1)
    assert fp32.peak_bytes == 4 * int8.peak_bytes
    assert fp32.traffic_bytes == 4 * int8.traffic_bytes


def test_resnet18_medmnist_28() -> None:
    # 1x28x28, 9 classes. Peak in the first basic block (64 channels at 28x28, 200,704 bytes each):
    # the skip (block input), conv1's output and its BN's output.
    model = build_model(resolve_arch("resnet18_medmnist"), in_chans=1, num_classes=9, input_size=28)
    p = profile_activations(model, 1, 28)
    assert p.peak_bytes == 3 * 64 * 28 * 28 * F32 == 602_112
    assert p.peak_bytes < 1024 * 1024  # fits a 1 MB-SRAM microcontroller in fp32... barely
    assert model.training  # trace restores the mode it found
