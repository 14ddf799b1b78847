"""``latency build | show | validate`` end to end on a tiny space with real ONNX Runtime timing."""

from __future__ import annotations

import argparse
import json

import pytest

from nas.latency.cli import add_latency_commands
from nas.latency.table import LatencyTable

pytest.importorskip("onnxruntime")

SPACE_YAML = """
name: tiny
stem: conv_k3_s2_c8
head: head_c32
stages:
  - {stride: 2, channels: 16, layers: {min: 1, max: 2}, choose_per: stage, ops: [ds, ir_e3], kernel: [3, 5]}
"""


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="nas")
    add_latency_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


def test_build_show_validate(tmp_path, capsys):
    space = tmp_path / "tiny.yaml"
    space.write_text(SPACE_YAML)
    out = tmp_path / "tables" / "tiny-16.json"
    common = ["--space", str(space), "--input-size", "16", "--in-chans", "1", "--num-classes", "2"]
    run(
        [
            "latency",
            "build",
            *common,
            "--device",
            "ci",
            "--rounds",
            "5",
            "--calibration-nets",
            "4",
            "--out",
            str(out),
        ]
    )
    table = LatencyTable.load(out)
    assert len(table.entries) == 10 and table.calibration is not None
    assert table.provenance["backend"] == "ort" and table.provenance["threads"] == 1
    assert table.provenance["cpu_model"]
    capsys.readouterr()

    run(["latency", "build", *common, "--device", "ci", "--rounds", "9", "--out", str(out)])  # done: resumes
    assert "it keeps the timing it was started with (5 rounds, 2 ms samples)" in capsys.readouterr().out
    assert LatencyTable.load(out) == table

    run(["latency", "show", str(out)])
    shown = capsys.readouterr().out
    assert "entries" in shown and "leave-one-out" in shown

    run(["latency", "validate", str(out), "--nets", "3", "--seed", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 3 and 0 <= report["within_10pct"] <= 1
    for key in ("mape", "max_ape", "within_10pct_absolute", "noise_within_10pct", "kendall_tau", "bias"):
        assert key in report


def test_another_data_shape_reuses_the_body_blocks(tmp_path, capsys, monkeypatch):
    """--from takes the table's settings; without it a fitting table in the output folder is found;
    the default file name says the shape when the plain name holds another one."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(SPACE_YAML)
    gray = ["--space", "tiny.yaml", "--input-size", "16", "--in-chans", "1", "--num-classes", "2"]
    timing = ["--rounds", "5", "--sample-ms", "0.5", "--calibration-nets", "4"]
    run(["latency", "build", *gray, "--device", "ci", *timing])
    base = LatencyTable.load("latency_tables/ci/tiny-16.json")
    capsys.readouterr()

    run(
        [
            "latency",
            "build",
            "--from",
            "latency_tables/ci/tiny-16.json",
            "--in-chans",
            "3",
            "--num-classes",
            "5",
        ]
    )
    rgb = LatencyTable.load("latency_tables/ci/tiny-16-3ch-5cls.json")
    shared = set(rgb.entries) & set(base.entries)
    assert shared and all(rgb.entries[k] == base.entries[k] for k in shared)
    assert len(rgb.calibration_nets) == 4 and rgb.provenance["measure"]["rounds"] == 5
    assert rgb.provenance["measure"]["sample_ms"] == 0.5  # stem and head timed as the body blocks were
    assert "wrote latency_tables/ci/tiny-16-3ch-5cls.json" in capsys.readouterr().out

    rgb4 = ["--space", "tiny.yaml", "--input-size", "16", "--in-chans", "3", "--num-classes", "4"]
    run(["latency", "build", *rgb4, "--device", "ci", "--rounds", "5", "--calibration-nets", "4"])
    assert "reusing the body blocks of latency_tables/ci/tiny-16" in capsys.readouterr().out
    assert LatencyTable.load("latency_tables/ci/tiny-16-3ch-4cls.json").provenance["shape_base"]
