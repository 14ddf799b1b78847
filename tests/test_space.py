"""The bundled search spaces: sampling, string/JSON round trips, encode/decode, mutation, Optuna, size."""

from __future__ import annotations

import functools
import json
import math
import random

import optuna
import pytest
import torch

from nas.arch import ArchSpec
from nas.builder import build_model
from nas.space import SearchSpace, list_bundled
from nas.zoo import REFERENCES

SPACES = ("mnasnet", "fbnet", "mobilenetv3", "mnasnet_small", "mnasnet1d")
N_SAMPLES = 1000
N_FORWARD_28 = 25
N_FORWARD_224 = 5

optuna.logging.set_verbosity(optuna.logging.WARNING)


pytestmark = pytest.mark.usefixtures("single_thread")


@functools.cache
def load(name: str) -> SearchSpace:
    return SearchSpace.from_yaml(name)


@functools.cache
def samples(name: str) -> tuple[ArchSpec, ...]:
    rng = random.Random(20240601)
    space = load(name)
    return tuple(space.sample(rng) for _ in range(N_SAMPLES))


def choice_vector(space: SearchSpace, arch: ArchSpec) -> tuple:
    choices = space.encode(arch)
    return tuple(choices[p.name] for p in space.params)


def test_bundled_spaces_are_listed():
    assert list_bundled() == sorted(SPACES)


@pytest.mark.parametrize("name", SPACES)
def test_samples_are_varied(name):
    archs = samples(name)
    assert len(archs) == N_SAMPLES
    assert len(set(archs)) > 0.95 * N_SAMPLES
    # sampling is deterministic for a seed
    assert [load(name).sample(random.Random(3)) for _ in range(2)] == [
        load(name).sample(random.Random(3)) for _ in range(2)
    ]


@pytest.mark.parametrize("name", SPACES)
def test_round_trip_string_and_json(name):
    for arch in samples(name):
        text = arch.to_str()
        again = ArchSpec.from_str(text)
        assert again == arch
        assert again.to_str() == text
        data = arch.to_json()
        assert data["arch"] == text
        assert ArchSpec.from_json(data) == arch
        assert ArchSpec.from_json(json.dumps(data)) == arch


@pytest.mark.parametrize("name", SPACES)
def test_encode_decodes_back(name):
    space = load(name)
    names = [p.name for p in space.params]
    choices_of = {p.name: p.choices for p in space.params}
    for arch in samples(name):
        choices = space.encode(arch)
        assert list(choices) == names
        assert all(choices[n] in choices_of[n] for n in names)
        assert space.decode(choices) == arch


@pytest.mark.parametrize("name", SPACES)
def test_parameters_fixed_length_categorical(name):
    space = load(name)
    names = [p.name for p in space.params]
    assert len(names) == len(set(names)) > 0
    for p in space.params:
        assert len(p.choices) >= 2, p
        assert len(set(p.choices)) == len(p.choices), p
    # every candidate is described by the same parameters and choices (nothing is conditional)
    rng = random.Random(5)
    for _ in range(200):
        choices = space.sample_choices(rng)
        assert list(choices) == names
    fresh = SearchSpace.from_yaml(name)
    assert fresh.params == space.params


@pytest.mark.parametrize("name", SPACES)
def test_sampled_archs_build_and_run_28(name):
    for arch in samples(name)[:N_FORWARD_28]:
        model = build_model(arch, in_chans=1, num_classes=2, input_size=28).eval()
        with torch.no_grad():
            out = model(torch.randn(arch.input_shape(1, 28)))
        assert out.shape == (1, 2), arch
        assert torch.isfinite(out).all(), arch


@pytest.mark.parametrize("name", SPACES)
def test_sampled_archs_build_and_run_224(name):
    for arch in samples(name)[-N_FORWARD_224:]:
        model = build_model(arch, in_chans=3, num_classes=1000, input_size=224).eval()
        with torch.no_grad():
            out = model(torch.randn(arch.input_shape(3, 224)))
        assert out.shape == (1, 1000), arch
        assert torch.isfinite(out).all(), arch


@pytest.mark.parametrize("name", SPACES)
def test_mutate_changes_one_parameter(name):
    space = load(name)
    rng = random.Random(11)
    parents = samples(name)[:40]
    single = 0
    for i, parent in enumerate(parents):
        child = space.mutate(parent, rng)
        assert child != parent
        parent_vec, child_vec = choice_vector(space, parent), choice_vector(space, child)  # child in space
        assert child_vec != parent_vec
        single += sum(a != b for a, b in zip(parent_vec, child_vec, strict=True)) == 1
        if i < 10:  # the child is one parameter away from the parent's encoding (slow check: a few)
            base = space.encode(parent)
            assert any(
                space.decode({**base, p.name: value}) == child
                for p in space.params
                for value in p.choices
                if value != base[p.name]
            )
    # encodings are not unique (a skipped slot's choices), but usually one parameter differs
    assert single >= 0.8 * len(parents)


@pytest.mark.parametrize("name", SPACES)
def test_mutate_is_deterministic(name):
    space = load(name)
    parent = samples(name)[0]
    assert space.mutate(parent, random.Random(4)) == space.mutate(parent, random.Random(4))


def test_encode_rejects_archs_outside_the_space():
    space = load("mnasnet")
    # MnasNet-B1 (mnasnet1_0) has 96 channels in stage 5; the space allows 88, 112 or 144 there
    with pytest.raises(ValueError, match="stage 's5'"):
        space.encode(ArchSpec.from_str(REFERENCES["mnasnet1_0"].arch))
    with pytest.raises(ValueError, match="not in space"):
        space.encode(samples("fbnet")[0])
    # MnasNet-A1 is a point of its own search space
    a1 = ArchSpec.from_str(REFERENCES["mnasnet_a1"].arch)
    assert space.decode(space.encode(a1)) == a1


@pytest.mark.parametrize("name", SPACES)
def test_suggest_with_optuna(name):
    space = load(name)
    names = [p.name for p in space.params]

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        trial.set_user_attr("arch", arch.to_str())
        model = build_model(arch, in_chans=1, num_classes=2, input_size=28)
        return float(sum(p.numel() for p in model.parameters()))

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=4))
    study.optimize(objective, n_trials=10)
    assert len(study.trials) == 10
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert list(trial.params) == names
        for p in space.params:
            assert trial.distributions[p.name].choices == p.choices
        assert space.decode(trial.params) == ArchSpec.from_str(trial.user_attrs["arch"])
    # same seed, same trials
    again = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=4))
    again.optimize(objective, n_trials=3)
    assert [t.params for t in again.trials] == [t.params for t in study.trials[:3]]


def test_1d_space_samples_1d_archs():
    space = load("mnasnet1d")
    archs = samples("mnasnet1d")[:50]
    assert all(a.dims == 1 and a.to_str().startswith("1d:") for a in archs)
    assert {b.kernel for a in archs for b in a.blocks() if b.has("kernel")} >= {3, 5, 7, 9}
    with pytest.raises(ValueError, match="1-D"):
        space.encode(ArchSpec.from_str(archs[0].to_str().removeprefix("1d:")))


def test_log10_size_fbnet():
    # 22 searchable layers (1 + 4 + 4 + 4 + 4 + 4 + 1), each one of 9 ops
    assert load("fbnet").log10_size() == pytest.approx(22 * math.log10(9), abs=1e-12)


def test_log10_size_mnasnet():
    # per stage: one op (3) x kernel (2) x SE (2) x residual (2) = 24 layer configs, times 3 width
    # multipliers, for each depth in base +- 1; a depth-0 stage is one choice whatever the rest
    per_depth = 3 * 2 * 2 * 2 * 3
    depths = [(0, 2), (1, 3), (2, 4), (3, 5), (2, 4), (2, 4), (0, 2)]
    expected = sum(
        math.log10(sum(1 if d == 0 else per_depth for d in range(lo, hi + 1))) for lo, hi in depths
    )
    assert load("mnasnet").log10_size() == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(2 * math.log10(145) + 5 * math.log10(216))


def test_log10_size_mobilenetv3():
    # stage 1 is fixed; five stages of 2-4 layers, each layer kernel {3,5,7} x expansion {3,4,6}
    per_stage = sum(9**depth for depth in (2, 3, 4))
    assert load("mobilenetv3").log10_size() == pytest.approx(5 * math.log10(per_stage), abs=1e-12)


def test_log10_size_mnasnet_small():
    # one op (3) x kernel (2) x SE (2) x residual (2) x width (3) per stage; the stem, s2 and s3 choose
    # stride 1 or 2; depths 0-1, 1-3, 1-3, 1-3, 0-2
    per_depth = 3 * 2 * 2 * 2 * 3
    expected = (
        math.log10(2)
        + math.log10(1 + per_depth)
        + 2 * math.log10(2 * 3 * per_depth)
        + math.log10(3 * per_depth)
        + math.log10(1 + 2 * per_depth)
    )
    assert load("mnasnet_small").log10_size() == pytest.approx(expected, abs=1e-12)


# the model that nas shipped for PneumoniaMNIST, found in mnasnet_small before its strides were choices
SHIPPED_PNEUMONIA = (
    "conv_k3_s2_c16::ir_k5_s2_e6_c24,ir_k5_e6_c24_noskip:ir_k3_s2_e6_c40_se0.25:"
    "ir_k3_s2_e3_c64,ir_r2_k3_e3_c64_noskip:ir_k3_e6_c72:head_c256_d0.1"
)


def test_mnasnet_small_strides_are_choices():
    space = load("mnasnet_small")
    strides = {p.name: p.choices for p in space.params if p.name.endswith(".stride")}
    assert strides == {"stem.stride": (1, 2), "s2.stride": (1, 2), "s3.stride": (1, 2)}
    seen = set()
    for arch in samples("mnasnet_small"):
        firsts = [stage[0].stride if stage else None for stage in arch.stages]
        seen.add((arch.stem.stride, firsts[1], firsts[2]))
        assert firsts[0] in (1, None) and firsts[3] == 2 and firsts[4] in (1, None)
        assert all(b.stride == 1 for stage in arch.stages for b in stage[1:])
    assert seen == {(a, b, c) for a in (1, 2) for b in (1, 2) for c in (1, 2)}
    # encode reads the strides back from the arch
    base = space.encode(samples("mnasnet_small")[0])
    keep = space.decode({**base, "stem.stride": 1, "s2.stride": 1, "s3.stride": 1})
    assert keep.stem.to_str() == "conv_k3_c16"
    assert {k: v for k, v in space.encode(keep).items() if k.endswith(".stride")} == {
        "stem.stride": 1,
        "s2.stride": 1,
        "s3.stride": 1,
    }
    # only s4 halves a 28 px input
    model = build_model(keep, in_chans=1, num_classes=2, input_size=28).eval()
    with torch.no_grad():
        assert model.stages(model.stem(torch.randn(1, 1, 28, 28))).shape[-2:] == (14, 14)


def test_mnasnet_small_keeps_every_arch_of_its_fixed_stride_version():
    space = load("mnasnet_small")
    config = space.config.model_copy(deep=True)
    config.stem_stride = None
    for stage in config.stages:
        stage.stride = max(stage.strides)
    fixed = SearchSpace(config)
    assert fixed.stem.to_str() == "conv_k3_s2_c16" and not any(".stride" in p.name for p in fixed.params)
    rng = random.Random(2)
    for arch in [ArchSpec.from_str(SHIPPED_PNEUMONIA), *(fixed.sample(rng) for _ in range(200))]:
        choices = space.encode(arch)
        assert (choices["stem.stride"], choices["s2.stride"], choices["s3.stride"]) == (2, 2, 2)
        assert space.decode(choices) == arch


def fbnet_choices(**ops: str) -> dict[str, str]:
    space = load("fbnet")
    choices = {p.name: "ir_k3_e6" for p in space.params}
    assert all(p.name.endswith(".op") for p in space.params) and len(space.params) == 22
    choices.update({name.replace("_", "."): op for name, op in ops.items()})
    return choices


def test_fbnet_skip_op():
    space = load("fbnet")
    plain = space.decode(fbnet_choices())
    assert [len(s) for s in plain.stages] == [1, 4, 4, 4, 4, 4, 1]
    arch = space.decode(
        fbnet_choices(s1_l0_op="skip", s2_l0_op="skip", s2_l2_op="skip", s5_l0_op="skip", s7_l0_op="skip")
    )
    # identity where the slot keeps the shape: it vanishes
    assert arch.stages[0] == ()
    assert len(arch.stages[1]) == 3
    # a 1x1 conv where it does not (stride 2, or new channels)
    assert arch.stages[1][0].to_str() == "conv_k1_s2_c24"
    assert arch.stages[1][1].to_str() == "ir_k3_e6_c24"
    assert arch.stages[4][0].to_str() == "conv_k1_c112"
    assert [b.to_str() for b in arch.stages[6]] == ["conv_k1_c352"]
    assert space.decode(space.encode(arch)) == arch
    assert ArchSpec.from_str(arch.to_str()) == arch
    with torch.no_grad():
        out = build_model(arch, in_chans=1, num_classes=2, input_size=28).eval()(torch.randn(1, 1, 28, 28))
    assert out.shape == (1, 2)


def test_fbnet_ops_are_the_papers():
    space = load("fbnet")
    ops = {
        "ir_k3_e1",
        "ir_k3_e1_g2",
        "ir_k3_e3",
        "ir_k3_e6",
        "ir_k5_e1",
        "ir_k5_e1_g2",
        "ir_k5_e3",
        "ir_k5_e6",
    }
    assert all(set(p.choices) == {*ops, "skip"} for p in space.params)
    arch = space.decode(fbnet_choices(s3_l1_op="ir_k5_e1_g2"))
    assert arch.stages[2][1].to_str() == "ir_k5_e1_c32_g2"


def test_mnasnet_depth_zero_stage_is_empty():
    space = load("mnasnet")
    choices = space.encode(samples("mnasnet")[1])
    choices.update({"s1.l0.skip": True, "s1.l1.skip": True, "s7.l0.skip": True, "s7.l1.skip": True})
    arch = space.decode(choices)
    assert len(arch.stages) == 7
    assert arch.stages[0] == () and arch.stages[6] == ()
    assert all(arch.stages[1:6])
    text = arch.to_str()
    assert text.startswith("conv_k3_s2_c32::") and text.endswith("::head_c1280_d0.2")
    assert ArchSpec.from_str(text) == arch
    assert space.decode(space.encode(arch)) == arch
    with torch.no_grad():
        out = build_model(arch, in_chans=1, num_classes=2, input_size=28).eval()(torch.randn(1, 1, 28, 28))
    assert out.shape == (1, 2)


def test_mnasnet_samples_respect_depths_and_channels():
    # base channels times {0.75, 1.0, 1.25}, rounded to a multiple of 8 (never below 90% of the exact value)
    widths = [
        {16, 24},
        {24, 32},
        {32, 40, 48},
        {64, 80, 104},
        {88, 112, 144},
        {120, 160, 200},
        {240, 320, 400},
    ]
    depths = [(0, 2), (1, 3), (2, 4), (3, 5), (2, 4), (2, 4), (0, 2)]
    seen_depths = [set() for _ in depths]
    seen_widths = [set() for _ in depths]
    for arch in samples("mnasnet"):
        for i, stage in enumerate(arch.stages):
            seen_depths[i].add(len(stage))
            for block in stage:
                assert block.channels % 8 == 0
                seen_widths[i].add(block.channels)
            # one op, kernel, SE for the whole stage
            assert len({(b.type, b.kernel, b.se) for b in stage}) <= 1
            if stage:
                assert len({b.channels for b in stage}) == 1
                assert stage[0].stride == (1 if i in (0, 4, 6) else 2)
                assert all(b.stride == 1 for b in stage[1:])
    assert seen_depths == [set(range(lo, hi + 1)) for lo, hi in depths]
    assert seen_widths == widths


def test_mobilenetv3_samples_follow_the_skeleton():
    acts = [None, "relu", "relu", "hswish", "hswish", "hswish"]
    for arch in samples("mobilenetv3")[:200]:
        assert [b.to_str() for b in arch.stages[0]] == ["ds_k3_c16"]
        for i, stage in enumerate(arch.stages[1:], start=1):
            assert 2 <= len(stage) <= 4
            for block in stage:
                assert block.type == "ir" and block.kernel in (3, 5, 7) and block.expand in (3.0, 4.0, 6.0)
                assert block.act == acts[i]
                assert block.hse == (0.25 if i in (2, 4, 5) else 0.0)
