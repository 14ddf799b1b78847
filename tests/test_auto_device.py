"""``nas auto``'s latency table: found when this machine measured one, derived for another data shape
(stem and head timed only), built when there is none, refused when it cannot price the data."""

from __future__ import annotations

import pytest
from test_latency_cli import SPACE_YAML  # the same tiny space

from nas.auto.device import DeviceRequest, resolve_table
from nas.errors import ConfigError
from nas.latency.backends.base import Settings
from nas.latency.build import build_table
from nas.latency.table import LatencyTable
from nas.space import SearchSpace

pytest.importorskip("onnxruntime")


@pytest.fixture
def space(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # latency_tables/ here is where tables are looked up
    (tmp_path / "tiny.yaml").write_text(SPACE_YAML)
    return SearchSpace.from_yaml(tmp_path / "tiny.yaml")


def test_found_then_derived_for_another_shape_then_built(space, tmp_path, monkeypatch):
    from nas.auto import device

    monkeypatch.setattr(device, "ROUNDS", 5)  # a test, not a measurement
    monkeypatch.setattr(device, "CALIBRATION_NETS", 4)
    request = DeviceRequest(device="ci")
    built = resolve_table(request, space, 16, 1, 2, tmp_path / "run1" / "latency")
    assert built.how == "built" and LatencyTable.load(built.path).provenance["device"] == "ci"
    assert LatencyTable.load(built.path).provenance["measure"]["rounds"] == 5  # auto's own ROUNDS
    (tmp_path / "latency_tables" / "ci").mkdir(parents=True)
    built.path.rename(tmp_path / "latency_tables" / "ci" / "tiny-16.json")

    found = resolve_table(request, space, 16, 1, 2, tmp_path / "run2" / "latency")
    assert found.how == "found" and found.path.name == "tiny-16.json"
    derived = resolve_table(request, space, 16, 3, 5, tmp_path / "run3" / "latency")
    assert derived.how == "derived" and derived.path.name == "tiny-16-3ch-5cls.json"
    table = LatencyTable.load(derived.path)
    assert (table.settings["in_chans"], table.settings["num_classes"]) == (3, 5)
    assert table.provenance["shape_base"]["in_chans"] == 1
    assert resolve_table(DeviceRequest(device="other"), space, 16, 3, 5, tmp_path / "run4").how == "built"


def test_a_given_table_of_another_size_is_refused(space, tmp_path):
    from nas.latency.backends import make_backend

    path = tmp_path / "t.json"
    build_table(
        space, 16, 1, 2, make_backend("ort"), "ci", path, measure=Settings(rounds=3), calibration_nets=4
    )
    with pytest.raises(ConfigError, match="cannot price this data: it differs in input_size"):
        resolve_table(DeviceRequest(table=path), space, 32, 1, 2, tmp_path / "run")


def test_a_1d_table_is_derived_for_another_signal_shape(tmp_path, monkeypatch):
    from test_signals_pipeline import SPACE_YAML as SPACE_1D

    from nas.auto import device

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(device, "ROUNDS", 5)
    monkeypatch.setattr(device, "CALIBRATION_NETS", 4)
    (tmp_path / "tiny1d.yaml").write_text(SPACE_1D)
    space = SearchSpace.from_yaml(tmp_path / "tiny1d.yaml")
    built = resolve_table(DeviceRequest(device="ci"), space, 64, 1, 3, tmp_path / "latency_tables" / "ci")
    derived = resolve_table(DeviceRequest(device="ci"), space, 64, 2, 5, tmp_path / "run")
    assert (built.how, derived.how) == ("built", "derived")
    base, table = LatencyTable.load(built.path), LatencyTable.load(derived.path)
    body = {k for k in table.entries if k.startswith(("ir", "ds"))}
    assert body and all(table.entries[k] == base.entries[k] for k in body)  # 1-D body keys reused
    assert {k.split("|")[2] for k in table.entries} <= {"64", "32", "16", "8"}  # lengths, not HxW
    assert table.settings["in_chans"] == 2 and table.settings["num_classes"] == 5
