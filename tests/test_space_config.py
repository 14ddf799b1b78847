"""Search-space YAML validation: every mistake is one line naming the file, the stage and the key.

Also the README's extension examples: the tiny_xray space and the ghost block type.
"""

from __future__ import annotations

import random
import re
import textwrap
from pathlib import Path

import pytest
import torch

import nas.blocks
from nas.arch import ArchSpec
from nas.builder import build_model
from nas.space import SearchSpace
from nas.space_config import SpaceError

README = Path(__file__).resolve().parents[1] / "README.md"

HEADER = "name: t\nstem: conv_k3_c16\nhead: head\nstages:\n"
GOOD = "  - {name: a, stride: 1, channels: 16, ops: [ir_e6], kernel: [3, 5]}\n"
STEM_STRIDES = HEADER.replace("head: head\n", "stem_stride: {}\nhead: head\n")


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_yaml(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


# (stage line(s), the stage and key the message must name, what else it must say)
STAGE_ERRORS = {
    "unknown key": (
        "  - {name: a, channels: 16, ops: [ir_e6], kernal: [3]}",
        "stage 'a': key 'kernal'",
        "unknown key",
    ),
    "wrong type": (
        "  - {name: a, channels: 16, ops: [ir_e6], kernel: [three]}",
        "stage 'a': key 'kernel'",
        "valid integer",
    ),
    "missing channels": (
        "  - {name: a, stride: 2, ops: [ir_k3_e6]}",
        "stage 'a': key 'channels'",
        "required",
    ),
    "non-positive channels": (
        "  - {name: a, channels: 0, ops: [ir_k3_e6]}",
        "stage 'a': key 'channels'",
        ">|greater",
    ),
    "layers min above max": (
        "  - {name: a, channels: 16, layers: {min: 3, max: 2}, ops: [ir_k3_e6]}",
        "stage 'a': key 'layers'",
        "min 3 is above max 2",
    ),
    "layers max 0": (
        "  - {name: a, channels: 16, layers: {min: 0, max: 0}, ops: [ir_k3_e6]}",
        "stage 'a': key 'layers.max'",
        "greater than or equal to 1",
    ),
    "layers unknown key": (
        "  - {name: a, channels: 16, layers: {min: 1, max: 2, most: 3}, ops: [ir_k3_e6]}",
        "stage 'a': key 'layers.most'",
        "unknown key",
    ),
    "layers zero": (
        "  - {name: a, channels: 16, layers: 0, ops: [ir_k3_e6]}",
        "stage 'a': key 'layers'",
        "greater than or equal to 1",
    ),
    "layers not a number": (
        "  - {name: a, channels: 16, layers: two, ops: [ir_k3_e6]}",
        "stage 'a': key 'layers'",
        "valid integer",
    ),
    "stride-2 stage with min 0 layers": (
        "  - {name: a, stride: 2, channels: 16, layers: {min: 0, max: 2}, ops: [ir_k3_e6]}",
        "stage 'a': key 'layers'",
        "stride-2 stage needs min >= 1",
    ),
    "stride zero": (
        "  - {name: a, stride: 0, channels: 16, ops: [ir_k3_e6]}",
        "stage 'a': key 'stride'",
        "greater than or equal to 1",
    ),
    "stride choice zero": (
        "  - {name: a, stride: [0, 2], channels: 16, ops: [ir_k3_e6]}",
        "stage 'a': key 'stride'",
        "greater than or equal to 1",
    ),
    "duplicate stride choice": (
        "  - {name: a, stride: [2, 2], channels: 16, ops: [ir_k3_e6]}",
        "stage 'a': key 'stride'",
        "choice 2 is listed twice",
    ),
    "no stride choices": (
        "  - {name: a, stride: [], channels: 16, ops: [ir_k3_e6]}",
        "stage 'a': key 'stride'",
        "at least 1 item",
    ),
    "stride choice not a number": (
        "  - {name: a, stride: [1, two], channels: 16, ops: [ir_k3_e6]}",
        "stage 'a': key 'stride'",
        "valid integer",
    ),
    "stride choice 2 with min 0 layers": (
        "  - {name: a, stride: [1, 2], channels: 16, layers: {min: 0, max: 2}, ops: [ir_k3_e6]}",
        "stage 'a': key 'layers'",
        "stride-2 stage needs min >= 1",
    ),
    "channels given as a list": (
        "  - {name: a, channels: [16, 24], ops: [ir_k3_e6]}",
        "stage 'a': key 'channels'",
        "valid integer",
    ),
    "op sets channels": (
        "  - {name: a, channels: 16, ops: [ir_k3_e6_c32]}",
        "stage 'a': key 'ops'",
        "'ir_k3_e6_c32' must not set channels",
    ),
    "op sets stride": (
        "  - {name: a, stride: 2, channels: 16, ops: [ir_k3_s2_e6]}",
        "stage 'a': key 'ops'",
        "'ir_k3_s2_e6' must not set stride",
    ),
    "op of unknown block type": (
        "  - {name: a, channels: 16, ops: [ghostly_k3]}",
        "stage 'a': key 'ops'",
        "unknown block type 'ghostly'",
    ),
    "op with a bad token": (
        "  - {name: a, channels: 16, ops: [ir_e6_zz3], kernel: [3]}",
        "stage 'a': key 'ops'",
        "bad token 'zz3'",
    ),
    "op with a bad value": (
        "  - {name: a, channels: 16, ops: [ir_k3_ex]}",
        "stage 'a': key 'ops'",
        "bad token 'ex'",
    ),
    "op that repeats": (
        "  - {name: a, channels: 16, ops: [ir_r2_k3_e6]}",
        "stage 'a': key 'ops'",
        "cannot repeat",
    ),
    "op that is a head": (
        "  - {name: a, channels: 16, ops: [head]}",
        "stage 'a': key 'ops'",
        "output channels",
    ),
    "op that cannot downsample": (
        "  - {name: a, stride: 2, channels: 16, ops: [fire_sq8]}",
        "stage 'a': key 'ops'",
        "cannot downsample",
    ),
    "op that cannot downsample at a stride choice": (
        "  - {name: a, stride: [1, 2], channels: 16, ops: [ir_k3_e6, fire_sq8]}",
        "stage 'a': key 'ops'",
        "'fire_sq8' cannot downsample",
    ),
    "op missing a required option": (
        "  - {name: a, channels: 16, ops: [ir_e6]}",
        "stage 'a': key 'ops'",
        "needs option 'k'",
    ),
    "choice no op takes": (
        "  - {name: a, channels: 16, ops: [ds_k3, ds_k5], expand: [3, 6]}",
        "stage 'a': key 'expand'",
        "none of the ops takes this choice",
    ),
    "op fixes a dim given as a choice": (
        "  - {name: a, channels: 16, ops: [ir_k3_e6], kernel: [3, 5]}",
        "stage 'a': key 'kernel'",
        "op 'ir_k3_e6' already sets it",
    ),
    "choice out of range": (
        "  - {name: a, channels: 16, ops: [ir_e6], kernel: [0, 3]}",
        "stage 'a': key 'ops'",
        "'kernel' must be >= 1",
    ),
    "duplicate choice": (
        "  - {name: a, channels: 16, ops: [ir_e6], kernel: [3, 3]}",
        "stage 'a': key 'kernel'",
        "listed twice",
    ),
    "duplicate op": (
        "  - {name: a, channels: 16, ops: [ir_k3_e6, ir_k3_e6]}",
        "stage 'a': key 'ops'",
        "listed twice",
    ),
    "non-positive width": (
        "  - {name: a, channels: 16, ops: [ir_k3_e6], width: [0.0, 1.0]}",
        "stage 'a': key 'width'",
        "greater than 0",
    ),
    "unknown activation": (
        "  - {name: a, channels: 16, act: gelu, ops: [ir_k3_e6]}",
        "stage 'a': key 'act'",
        "'relu'",
    ),
    "se and hse together": (
        "  - {name: a, channels: 16, ops: [ir_k3_e6], se: [0.0, 0.25], hse: [0.0, 0.25]}",
        "stage 'a': key 'ops'",
        "cannot both be set",
    ),
    "odd channels for grouped op": (
        "  - {name: a, channels: 9, ops: [ir_e1_g2], kernel: [3]}",
        "stage 'a': key 'ops'",
        "not divisible by groups g2",
    ),
    "grouped op after odd channels": (
        "  - {name: a, channels: 9, ops: [ir_k3_e1]}\n  - {name: b, channels: 16, ops: [ir_k3_e1_g2]}",
        "stage 'b': key 'ops'",
        "input channels 9 are not divisible by groups g2",
    ),
    "zero groups": (
        "  - {name: a, channels: 16, ops: [ir_k3_e1_g0]}",
        "stage 'a': key 'ops'",
        "'groups' must be >= 1",
    ),
    "duplicate stage names": (
        "  - {name: a, channels: 16, ops: [ir_k3_e6]}\n  - {name: a, channels: 24, ops: [ir_k3_e6]}",
        "stage 'a': key 'name'",
        "unique",
    ),
    "unnamed stage is named by position": (
        "  - {channels: 16, ops: [ir_k3_e6]}\n  - {channels: 24, ops: [ir_e6], kernel: [x]}",
        "stage 's2': key 'kernel'",
        "valid integer",
    ),
    "stage not a mapping": ("  - 5", "stage 's1'", "dictionary"),
}


@pytest.mark.parametrize("case", list(STAGE_ERRORS))
def test_stage_errors_are_one_line_naming_file_stage_key(tmp_path, case):
    stages, where, what = STAGE_ERRORS[case]
    path = write(tmp_path, HEADER + stages + "\n")
    message = load_error(path)
    assert f": {where}: " in message, message
    assert re.search(what, message), message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\nstem: conv_k3_c16\nhead: head\nstages: [\n", "not valid YAML at line"),
        ("name: t\n\tstem: x\n", "not valid YAML at line 2"),
        ("- a\n- b\n", "expected a mapping"),
        ("just a string\n", "expected a mapping"),
        ("", "expected a mapping"),
        ("name: t\nhead: head\nstages: []\n", "key 'stem': Field required"),
        ("name: t\nstem: conv_k3_c16\nhead: head\nstages: []\n", "key 'stages'"),
        (HEADER.replace("name: t\n", "name: t\ncolour: red\n") + GOOD, "key 'colour': unknown key"),
        (HEADER.replace("conv_k3_c16", "conv_k3") + GOOD, "key 'stem': bad block 'conv_k3'"),
        (
            HEADER.replace("stem: conv_k3_c16", "stem: head") + GOOD,
            "key 'stem': 'head' is not a single stem block",
        ),
        (HEADER.replace("head: head", "head: conv_k1_c8") + GOOD, "key 'head'"),
        (HEADER.replace("conv_k3_c16", "conv_r2_k3_c16") + GOOD, "key 'stem'"),
        (HEADER.replace("stem: conv_k3_c16", "stem: [conv_k3_c16, conv_k3_s2_c16]") + GOOD, "key 'stem'"),
        (
            STEM_STRIDES.format("[0, 1]") + GOOD,
            "key 'stem_stride': Input should be greater than or equal to 1",
        ),
        (STEM_STRIDES.format("[1, 1]") + GOOD, "key 'stem_stride': choice 1 is listed twice"),
        (STEM_STRIDES.format("[]") + GOOD, "key 'stem_stride': List should have at least 1 item"),
        (
            STEM_STRIDES.format("[2, 4]") + GOOD,
            "key 'stem_stride': must include the stride of stem 'conv_k3_c16' (1)",
        ),
        (
            STEM_STRIDES.format("[1, 2]").replace("conv_k3_c16", "fire_sq8_c16") + GOOD,
            "key 'stem_stride': stem 'fire_sq8_c16' has no stride to choose",
        ),
        (
            STEM_STRIDES.format("[1, 2]") + GOOD.replace("name: a", "name: stem"),
            "stage 'stem': key 'name': 'stem' would clash with the parameter 'stem.stride'",
        ),
    ],
)
def test_file_errors_are_one_line(tmp_path, text, expected):
    message = load_error(write(tmp_path, text))
    assert expected in message, message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_yaml(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "no such space file" in message
    assert "mnasnet" in message  # lists the bundled spaces


def test_missing_bundled_name():
    with pytest.raises(SpaceError, match="no such space file"):
        SearchSpace.from_yaml("nasnet")


def test_non_utf8_file(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00name: t")
    message = load_error(path)
    assert "cannot read" in message


def test_space_errors_are_value_errors(tmp_path):
    # the CLI reports ValueError as a one-line usage error
    assert issubclass(SpaceError, ValueError)


def test_good_space_loads(tmp_path):
    space = SearchSpace.from_yaml(write(tmp_path, HEADER + GOOD))
    assert space.name == "t"
    assert [p.name for p in space.params] == ["a.l0.kernel"]
    assert space.source == str(tmp_path / "space.yaml")


def test_stride_choices_are_parameters_and_single_values_constants(tmp_path):
    text = STEM_STRIDES.format("[1, 2]") + GOOD.replace("stride: 1", "stride: [2, 1]")
    space = SearchSpace.from_yaml(write(tmp_path, text))
    assert [(p.name, p.choices) for p in space.params] == [
        ("stem.stride", (1, 2)),
        ("a.stride", (2, 1)),
        ("a.l0.kernel", (3, 5)),
    ]
    # one choice, as a list or a number, is a constant: the space is the one without stem_stride
    for fixed in ("[1]", "1"):
        space = SearchSpace.from_yaml(write(tmp_path, STEM_STRIDES.format(fixed) + GOOD))
        assert [p.name for p in space.params] == ["a.l0.kernel"]
    # a space without stem_stride stores its config as before (latency tables embed it)
    dumped = SearchSpace.from_yaml(write(tmp_path, HEADER + GOOD)).config.model_dump(mode="json")
    assert "stem_stride" not in dumped and dumped["stages"][0]["stride"] == 1


def test_space_without_choices_cannot_mutate(tmp_path):
    space = SearchSpace.from_yaml(write(tmp_path, HEADER + "  - {channels: 16, ops: [ir_k3_e6]}\n"))
    assert space.params == ()
    arch = space.sample(random.Random(0))
    assert arch.to_str() == "conv_k3_c16:ir_k3_e6_c16:head"
    assert space.log10_size() == 0.0
    with pytest.raises(ValueError, match="no choices"):
        space.mutate(arch, random.Random(0))


# ---- the README's examples -------------------------------------------------------------------


def readme_block(language: str, marker: str) -> str:
    """The README's fenced ``language`` code block containing ``marker``, dedented."""
    text = README.read_text()
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", text, flags=re.DOTALL | re.MULTILINE)
    found = [textwrap.dedent(body) for _, body in blocks if marker in body]
    assert len(found) == 1, f"README has {len(found)} {language} blocks with {marker!r}"
    return found[0]


def test_readme_tiny_xray_space(tmp_path):
    yaml_text = readme_block("yaml", "name: tiny_xray")
    path = write(tmp_path, yaml_text, "tiny_xray.yaml")
    space = SearchSpace.from_yaml(path)
    assert space.name == "tiny_xray"
    assert [s.name for s in space.stages] == ["s1", "s2", "s3"]
    rng = random.Random(0)
    for _ in range(5):
        arch = space.sample(rng)
        assert space.decode(space.encode(arch)) == arch
        with torch.no_grad():
            out = build_model(arch, in_chans=1, num_classes=2, input_size=28).eval()(
                torch.randn(1, 1, 28, 28)
            )
        assert out.shape == (1, 2)
    # the README's example error message
    broken = write(
        tmp_path, yaml_text.replace("kernel: [3, 5], se:", "kernel: [three, 5], se:"), "broken.yaml"
    )
    assert load_error(broken) == f"{broken}: stage 's2': key 'kernel': " + (
        "Input should be a valid integer, unable to parse string as an integer"
    )


@pytest.fixture
def ghost():
    """The README's ghost block type, registered for one test."""
    namespace: dict = {}
    exec(compile(readme_block("python", "class Ghost"), "README ghost.py", "exec"), namespace)
    block = namespace["BLOCK"]
    assert block.name == "ghost"
    nas.blocks.BLOCKS.register("ghost", block)
    yield block
    nas.blocks.BLOCKS.unregister("ghost")


def test_readme_ghost_block(ghost):
    arch = ArchSpec.from_str("conv_k3_c16:ghost_s2_c32:head")
    assert arch.to_str() == "conv_k3_c16:ghost_s2_c32:head"
    assert ArchSpec.from_str(arch.to_str()) == arch
    assert ArchSpec.from_json(arch.to_json()) == arch
    assert ArchSpec.from_str("conv_k3_c16:ghost_k3_s2_c32:head") == arch  # k3 is the default
    assert arch.stages[0][0].kernel == 3
    model = build_model(arch, in_chans=1, num_classes=2, input_size=28).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert model.stages(model.stem(x)).shape == (2, 32, 14, 14)
        assert model(x).shape == (2, 2)
    # as an op in a space, with the stage's kernel choice
    space_text = (
        HEADER
        + "  - {stride: 2, channels: 32, layers: {min: 1, max: 2}, ops: [ghost, ir_e6], kernel: [3, 5]}\n"
    )
    space = SearchSpace(read_config(space_text), "<ghost space>")
    seen = set()
    rng = random.Random(0)
    for _ in range(30):
        sample = space.sample(rng)
        seen.update(b.type for b in sample.stages[0])
        assert space.decode(space.encode(sample)) == sample
    assert seen == {"ghost", "ir"}


def test_ghost_block_is_unknown_without_registration():
    with pytest.raises(ValueError, match="unknown block type 'ghost'"):
        ArchSpec.from_str("conv_k3_c16:ghost_s2_c32:head")


def read_config(text: str):
    import yaml

    from nas.space_config import SpaceConfig

    return SpaceConfig.model_validate(yaml.safe_load(text))
