"""Import of published per-layer FBNet latency tables (CSV and JSON layouts)."""

from __future__ import annotations

import csv
import json
import random

import pytest

from nas.cli import main
from nas.latency.importers import FBNET_OPS, import_fbnet_table
from nas.latency.table import LatencyTable
from nas.space import SearchSpace


def layer_ms(layer: int, op: str) -> float:
    """A made-up but distinct latency per (layer, op): identical blocks in different layers differ."""
    return round(0.1 + 0.01 * layer + 0.001 * FBNET_OPS.index(op), 6)


def write_csv(path, device="s8", drop=None):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["device", "layer", "op", "latency_ms"])
        writer.writerow([device, "stem", "conv", 0.5])
        writer.writerow(["other-phone", "stem", "conv", 99.0])
        for layer in range(22):
            for op in FBNET_OPS:
                if (layer, op) != drop:
                    writer.writerow([device, layer, op, layer_ms(layer, op)])
        writer.writerow([device, "head", "", 0.7])
    return path


def layer_ops(space: SearchSpace, arch) -> list[str]:
    """FBNet op name of each of the 22 layers of a sampled arch."""
    choices = space.encode(arch)
    return [
        choices[f"{s.name}.l{j}.op"].removeprefix("ir_") for s in space.stages for j in range(s.max_layers)
    ]


def test_csv_import_predicts_the_sum_of_the_chosen_layers(tmp_path):
    table = import_fbnet_table(write_csv(tmp_path / "s8.csv"), "s8", input_size=224)
    space = SearchSpace.from_yaml("fbnet")
    rng = random.Random(3)
    for _ in range(20):
        arch = space.sample(rng)
        predicted = table.predict(arch)
        # identical blocks in several layers share one entry: their mean; so compare to within the spread
        exact = (
            0.5
            + 0.7
            + sum(layer_ms(i, op) for i, op in enumerate(layer_ops(space, arch)) if _costs(space, arch, i))
        )
        assert predicted == pytest.approx(exact, abs=0.04)
    assert table.calibration is None and table.provenance["backend"] == "imported"
    assert table.settings["space"] == "fbnet" and table.settings["input_size"] == 224


def _costs(space, arch, layer):
    """Whether a layer is a real block (an identity skip costs nothing)."""
    return layer_ops(space, arch)[layer] != "skip" or layer in (1, 5, 9, 13, 17, 21)


def test_a_layer_alone_is_priced_exactly(tmp_path):
    """The first layer of a stage has its own context, so its entry is that layer's number exactly."""
    table = import_fbnet_table(write_csv(tmp_path / "s8.csv"), "s8")
    space = SearchSpace.from_yaml("fbnet")
    choices = {p.name: p.choices[0] for p in space.params}  # k3_e1 everywhere
    base = table.block_sum(space.decode(choices))
    choices["s2.l0.op"] = "ir_k5_e6"
    changed = table.block_sum(space.decode(choices))
    assert changed - base == pytest.approx(layer_ms(1, "k5_e6") - layer_ms(1, "k3_e1"))


def test_json_layouts_import_the_same_table(tmp_path):
    layers = {f"layer_{i}": {op: layer_ms(i, op) for op in FBNET_OPS} for i in range(22)}
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"stem": 0.5, **layers, "head": {"fc": 0.7}}))
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"pixel3": {"stem": 0.5, **layers, "head": 0.7}}))
    from_csv = import_fbnet_table(write_csv(tmp_path / "a.csv", device="pixel3"), "pixel3").entries
    assert import_fbnet_table(flat, "pixel3").entries == from_csv
    assert import_fbnet_table(nested, "pixel3").entries == from_csv


def test_cli_import_writes_a_loadable_table(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert (
        main(["latency", "import", str(write_csv(tmp_path / "s8.csv")), "--device", "s8", "--out", str(out)])
        == 0
    )
    assert LatencyTable.load(out).provenance["device"] == "s8"
    assert "uncalibrated" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("layer,op,latency_ms\nstem,,0.5\n", "no latency for layer 0 op k3_e1"),
        ("layer,op,latency_ms\n7,k7_e6,0.5\n", "unknown op 'k7_e6'"),
        ("layer,op,latency_ms\n30,k3_e1,0.5\n", "unknown layer '30'"),
        ("layer,op,latency_ms\n3,k3_e1,fast\n", "is not a number"),
        ("layer,op,latency_ms\n3,k3_e1,-1\n", "must be >= 0"),
        ("layer,latency\n3,1\n", "CSV needs columns"),
        ("device,layer,op,latency_ms\nx,stem,,1\n", "no rows for device 's8'"),
    ],
)
def test_bad_tables_fail_with_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["latency", "import", str(path), "--device", "s8", "--out", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_missing_op_is_named(tmp_path):
    with pytest.raises(ValueError, match="no latency for layer 4 op k5_e1_g2"):
        import_fbnet_table(write_csv(tmp_path / "s8.csv", drop=(4, "k5_e1_g2")), "s8")
