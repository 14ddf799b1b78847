"""The ``nas`` command, in process through ``nas.cli.main`` and once or twice as a real process."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nas.arch import ArchSpec
from nas.builder import build_model
from nas.cli import main
from nas.space import SearchSpace
from nas.zoo import REFERENCES

REPORT_KEYS = {"arch", "params", "macs", "peak_activation_bytes", "energy_mj_estimate"}


pytestmark = pytest.mark.usefixtures("single_thread")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_usage_error(rc: int, out: str, err: str) -> str:
    assert rc == 2
    assert out == ""
    assert err.startswith("error: ")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# ---- success paths ---------------------------------------------------------------------------


def test_space_show(capsys):
    rc, out, err = run(capsys, "space", "show", "mnasnet")
    assert rc == 0 and err == ""
    assert "log10 size 16.00" in out  # 2 log10(145) + 5 log10(216), see tests/test_space.py
    assert "49 categorical parameters" in out
    assert "conv_k3_s2_c32" in out and "head_c1280_d0.2" in out
    for stage in ("s1", "s2", "s3", "s4", "s5", "s6", "s7"):
        assert stage in out


def test_space_show_file_path(capsys):
    path = Path(__file__).resolve().parents[1] / "search_spaces" / "fbnet.yaml"
    rc, out, _ = run(capsys, "space", "show", str(path))
    assert rc == 0
    assert "log10 size 20.99" in out  # 22 log10(9)


def test_space_show_stride_choices(capsys):
    rc, out, _ = run(capsys, "space", "show", "mnasnet_small")
    assert rc == 0
    assert "conv_k3_s2_c16 (stride {1, 2})" in out
    strides = dict(re.findall(r"│ (s\d) +│ ([^│]*?) +│", out))  # the stage and stride columns
    assert strides == {"s1": "1", "s2": "{1, 2}", "s3": "{1, 2}", "s4": "2", "s5": "1"}
    assert "37 categorical parameters, log10 size 11.93" in out


def test_space_sample(capsys):
    rc, out, err = run(capsys, "space", "sample", "mnasnet", "-n", "3", "--seed", "7")
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 3
    space = SearchSpace.from_yaml("mnasnet")
    for line in lines:
        arch = ArchSpec.from_str(line)
        assert arch.to_str() == line  # canonical
        assert space.decode(space.encode(arch)) == arch  # in the space
    rng = random.Random(7)
    assert lines == [space.sample(rng).to_str() for _ in range(3)]
    # deterministic for a seed, different for another
    assert run(capsys, "space", "sample", "mnasnet", "-n", "3", "--seed", "7")[1] == out
    assert run(capsys, "space", "sample", "mnasnet", "-n", "3", "--seed", "8")[1] != out


def test_space_sample_default_is_one(capsys):
    rc, out, _ = run(capsys, "space", "sample", "fbnet")
    assert rc == 0 and len(out.splitlines()) == 1


def test_arch_info_json_mobilenet_v2(capsys):
    rc, out, err = run(capsys, "arch", "info", "mobilenet_v2", "--json")
    assert rc == 0 and err == ""
    info = json.loads(out)
    assert isinstance(info, dict)
    assert set(info) >= REPORT_KEYS
    assert info["arch"] == REFERENCES["mobilenet_v2"].arch
    assert info["params"] == 3504872  # torchvision mobilenet_v2
    assert (info["input_size"], info["in_chans"], info["num_classes"]) == (224, 3, 1000)
    assert info["macs"] > 0 and info["peak_activation_bytes"] > 0 and info["energy_mj_estimate"] > 0


def test_arch_info_json_resnet18_medmnist(capsys):
    rc, out, _ = run(
        capsys,
        "arch",
        "info",
        "resnet18_medmnist",
        "--input-size",
        "28",
        "--in-chans",
        "1",
        "--num-classes",
        "2",
        "--json",
    )
    assert rc == 0
    info = json.loads(out)
    assert set(info) >= REPORT_KEYS
    # torchvision resnet18 (11,689,512) - 7x7x3x64 stem + 3x3x1x64 stem - 1000-way fc + 2-way fc
    assert info["params"] == 11_689_512 - 9408 + 576 - 513_000 + 1026
    assert (info["input_size"], info["in_chans"], info["num_classes"]) == (28, 1, 2)


def test_arch_info_arch_string(capsys):
    text = "conv_k3_c16:ir_r2_k3_s2_e4_c24:head"
    rc, out, _ = run(
        capsys, "arch", "info", text, "--input-size", "28", "--in-chans", "1", "--num-classes", "2", "--json"
    )
    assert rc == 0
    info = json.loads(out)
    assert info["arch"] == text
    # stem 1->16 (144 + 32 BN); ir 16->64->24 (1024+128, 576+128, 1536+48); ir 24->96->24
    # (2304+192, 864+192, 2304+48); linear 24->2 (50)
    assert info["params"] == 176 + 3440 + 5904 + 50
    model = build_model(text, in_chans=1, num_classes=2, input_size=28)
    assert info["params"] == sum(p.numel() for p in model.parameters())


def test_arch_info_width_mult(capsys):
    rc, out, _ = run(
        capsys, "arch", "info", "mobilenet_v2", "--width-mult", "0.5", "--input-size", "32", "--json"
    )
    assert rc == 0
    info = json.loads(out)
    assert info["arch"].startswith("conv_k3_s2_c16_arelu6:ds_k3_c8_arelu6:")
    assert info["arch"].endswith(":head_c1280_arelu6_d0.2")  # the head is never scaled down
    assert info["params"] < 3504872


def test_arch_info_table(capsys):
    rc, out, err = run(capsys, "arch", "info", "mobilenet_v2", "--input-size", "32")
    assert rc == 0 and err == ""
    assert "3,504,872" in out
    assert "3x32x32, 1000 classes" in out


def test_arch_info_tiny_input_that_fits(capsys):
    # every MobileNetV2 conv pads to 'same', so a 1x1 input stays 1x1 through the stride-2 blocks
    rc, out, _ = run(capsys, "arch", "info", "mobilenet_v2", "--input-size", "1", "--json")
    assert rc == 0
    assert json.loads(out)["params"] == 3504872


def test_zoo_json(capsys):
    rc, out, err = run(capsys, "zoo", "--input-size", "28", "--in-chans", "1", "--num-classes", "2", "--json")
    assert rc == 0 and err == ""
    rows = json.loads(out)
    assert isinstance(rows, list) and len(rows) == 12
    assert [row["name"] for row in rows] == list(REFERENCES)
    for row in rows:
        assert set(row) >= REPORT_KEYS
        assert row["arch"] == ArchSpec.from_str(REFERENCES[row["name"]].arch).to_str()
        assert (row["input_size"], row["in_chans"], row["num_classes"]) == (28, 1, 2)
    medmnist = next(row for row in rows if row["name"] == "resnet18_medmnist")
    assert medmnist["params"] == 11_168_706


def test_zoo_table(capsys):
    rc, out, _ = run(capsys, "zoo", "--input-size", "28", "--in-chans", "1", "--num-classes", "2")
    assert rc == 0
    for name in REFERENCES:
        assert name in out


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "usage: nas" in capsys.readouterr().out


# ---- error paths: exit code 2, exactly one line on stderr ------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: command"),
        (["space"], "required"),
        (["space", "sample"], "required: file"),
        (["arch", "info"], "required: arch"),
        (["zoo", "extra"], "unrecognized arguments: extra"),
        (["arch", "info", "mobilenet_v2", "--bogus"], "unrecognized arguments: --bogus"),
        (["arch", "info", "conv_k3_c16:zz_k3:head"], "unknown block type 'zz'"),
        (["arch", "info", "conv_k3_c16:ir_k3_q5_e6_c24:head"], "bad token 'q5'"),
        (["arch", "info", "conv_k3_c16:ir_k3_e6:head"], "needs option 'c'"),
        (["arch", "info", "conv_k3_c16:ir_k3_e6_c24"], "must be a head block"),
        (["arch", "info", ""], "neither a reference network"),
        (["arch", "info", "mobilenet_v9"], "'mobilenet_v9' is neither a reference network"),
        (["space", "sample", "nasnet"], "no such space file"),
        (["space", "sample", "mnasnet", "-n", "0"], "argument -n: 0 must be >= 1"),
        (["space", "sample", "mnasnet", "-n", "-2"], "argument -n"),
        (["space", "sample", "mnasnet", "--seed", "x"], "argument --seed"),
        (
            ["arch", "info", "mobilenet_v2", "--input-size", "abc"],
            "argument --input-size: 'abc' is not an integer",
        ),
        (["arch", "info", "mobilenet_v2", "--input-size", "0"], "argument --input-size"),
        (["zoo", "--in-chans", "0"], "argument --in-chans"),
        (["zoo", "--num-classes", "-1"], "argument --num-classes"),
        (["arch", "info", "squeezenet1_1", "--input-size", "2"], "input 2x2 is too small"),
        (["zoo", "--input-size", "2"], "too small"),
        (["arch", "info", "mobilenet_v2", "--width-mult", "0"], "argument --width-mult"),
        (["arch", "info", "mobilenet_v2", "--width-mult", "-1"], "argument --width-mult"),
        (["arch", "info", "mobilenet_v2", "--width-mult", "nan"], "argument --width-mult"),
        (["arch", "info", "mobilenet_v2", "--width-mult", "inf"], "argument --width-mult"),
        (["arch", "info", "mobilenet_v2", "--width-mult", "wide"], "'wide' is not a number"),
    ],
)
def test_usage_errors(capsys, argv, expected):
    err = assert_usage_error(*run(capsys, *argv))
    assert expected in err, err


def test_missing_space_file(capsys, tmp_path):
    path = tmp_path / "nope.yaml"
    err = assert_usage_error(*run(capsys, "space", "show", str(path)))
    assert f"{path}: no such space file" in err
    err = assert_usage_error(*run(capsys, "space", "show", str(tmp_path)))
    assert f"{tmp_path}: is a folder, not a space file" in err


def test_bad_yaml_file(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: t\nstages: [\n")
    err = assert_usage_error(*run(capsys, "space", "show", str(path)))
    assert f"{path}: not valid YAML" in err


def test_invalid_space_file(capsys, tmp_path):
    path = tmp_path / "invalid.yaml"
    path.write_text(
        "name: t\nstem: conv_k3_c16\nhead: head\nstages:\n"
        "  - {name: first, channels: 16, ops: [ir_e6], kernel: [three]}\n"
    )
    err = assert_usage_error(*run(capsys, "space", "sample", str(path), "-n", "2"))
    assert f"{path}: stage 'first': key 'kernel':" in err


# ---- real processes: nothing but one line reaches the terminal ------------------------------


def run_process(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "nas.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_process_error_is_one_line():
    proc = run_process("arch", "info", "conv_k3_c16:zz_k3:head")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_process_success(capsys):
    proc = run_process("space", "sample", "fbnet", "-n", "2", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == run(capsys, "space", "sample", "fbnet", "-n", "2", "--seed", "1")[1]
    assert len(proc.stdout.splitlines()) == 2


# ---- bugs: exit code 1, one line that says so; --debug shows the traceback -------------------


def planted_bug(*args, **kwargs):
    return {}["no such key"]


def test_internal_bug_is_one_line_exit_1(capsys, monkeypatch):
    monkeypatch.setattr("nas.zoo.resolve_arch", planted_bug)
    rc, out, err = run(capsys, "arch", "info", "mobilenet_v2")
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("internal error (a bug in nas or a library it calls) at ")
    assert f"{Path(main.__code__.co_filename)}:" in err and "KeyError: 'no such key'" in err
    assert err.rstrip().endswith("rerun with --debug for the traceback")


def test_debug_shows_the_traceback_of_a_bug(capsys, monkeypatch):
    monkeypatch.setattr("nas.zoo.resolve_arch", planted_bug)
    rc, _, err = run(capsys, "--debug", "arch", "info", "mobilenet_v2")
    assert rc == 1
    assert "Traceback (most recent call last)" in err and "in planted_bug" in err
    assert "rerun with --debug" not in err


def test_a_bare_value_error_is_a_bug_not_a_usage_error(capsys, monkeypatch):
    """numpy, torch and internal checks raise ValueError: only a NasError is the user's fault."""

    def internal(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr("nas.zoo.resolve_arch", internal)
    rc, _, err = run(capsys, "arch", "info", "mobilenet_v2")
    assert rc == 1 and "ValueError: operands could not be broadcast together" in err


def test_debug_keeps_usage_errors_exit_2_with_their_traceback(capsys):
    rc, _, err = run(capsys, "--debug", "arch", "info", "conv_k3_c16:zz_k3:head")
    assert rc == 2
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("error: ")


def test_version(capsys):
    from nas import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nas {__version__}"


def test_debug_works_anywhere_on_the_command_line(capsys, monkeypatch):
    """The bug message says "rerun with --debug": appending it to the command as typed must work."""
    monkeypatch.setattr("nas.zoo.resolve_arch", planted_bug)
    rc, _, err = run(capsys, "arch", "info", "mobilenet_v2", "--json", "--debug")
    assert rc == 1 and "Traceback (most recent call last)" in err


def test_an_os_error_on_a_users_path_is_one_line_exit_2(capsys, monkeypatch, tmp_path):
    """Paths, permissions and full disks are the user's to fix: one line naming the path, exit 2."""

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out"))

    monkeypatch.setattr("nas.zoo.resolve_arch", denied)
    rc, out, err = run(capsys, "arch", "info", "mobilenet_v2")
    assert rc == 2 and out == "" and err == f"error: {tmp_path / 'out'}: Permission denied\n"
