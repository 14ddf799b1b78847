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

    run(["latency", "show", str(out)])
    shown = capsys.readouterr().out
    assert "entries" in shown and "leave-one-out" in shown

    run(["latency", "validate", str(out), "--nets", "3", "--seed", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 3 and 0 <= report["within_10pct"] <= 1
    for key in ("mape", "max_ape", "within_10pct_absolute", "noise_within_10pct", "kendall_tau", "bias"):
        assert key in report
