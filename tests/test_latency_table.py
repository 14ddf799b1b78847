"""Table files: round trip, atomic save, one-line errors; the calibration fit."""

from __future__ import annotations

import json
import re

import pytest

from nas.arch import ArchSpec
from nas.builder import build_model
from nas.errors import ConfigError, DataError
from nas.latency.keys import arch_keys
from nas.latency.predict import Calibration, fit
from nas.latency.predictors import load_latency
from nas.latency.table import SCHEMA_VERSION, TABLES_DIR, LatencyTable, default_table_path, safe_name
from nas.space import SearchSpace
from nas.zoo import resolve_arch

ARCH = ArchSpec.from_str("conv_k3_s2_c16:ds_k3_c16,ir_k3_s2_e3_c24:head_c64")


def make_table() -> LatencyTable:
    space = SearchSpace.from_yaml("mnasnet")
    settings = {
        "space": space.name,
        "space_config": space.config.model_dump(mode="json"),
        "input_size": 32,
        "in_chans": 1,
        "num_classes": 2,
        "dtype": "fp32",
    }
    entries = {
        k: {"median_ms": 0.1 * (i + 1), "spread_ms": 0.01, "rounds": 9}
        for i, (k, _) in enumerate(arch_keys(ARCH, 1, 32, 2))
    }
    return LatencyTable(
        settings, {"device": "test", "backend": "fake"}, entries, {"arch": ARCH.to_str(), "median_ms": 1.0}
    )


def test_round_trip_and_atomic_save(tmp_path):
    table = make_table()
    table.calibration = Calibration(0.5, 2.0, -0.01, 0.02, 30)
    path = tmp_path / "dev" / "mnasnet-32.json"
    table.save(path)
    loaded = LatencyTable.load(path)
    assert loaded == table
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert [p.name for p in path.parent.iterdir()] == ["mnasnet-32.json"]  # no temporary left behind
    assert loaded.space().name == "mnasnet"


def test_predict_sums_blocks_and_applies_calibration():
    table = make_table()
    assert table.block_sum(ARCH) == pytest.approx(0.1 + 0.2 + 0.3 + 0.4)
    assert table.predict(ARCH) == pytest.approx(1.0)
    table.calibration = Calibration(0.5, 2.0, -0.01, 0.0, 4)
    assert table.predict(ARCH) == pytest.approx(0.5 + 2.0 * 1.0 - 0.01 * 4)
    with pytest.raises(ValueError, match="no entry for block 'ir_k3_s2_e3_c32"):
        table.predict(ArchSpec.from_str("conv_k3_s2_c16:ir_k3_s2_e3_c32:head_c64"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"schema_version": 99}', "unknown latency table schema_version 99"),
        ('{"schema_version": 1, "settings": {}}', "missing or bad field 'provenance'"),
        ('{"schema_version": 1, "settings": {}, "provenance": {}, "entries": {}}', "settings lack space"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        LatencyTable.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_binary_file_is_a_one_line_config_error(tmp_path, capsys):
    from nas.cli import main

    path = tmp_path / "t.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: not JSON"):
        LatencyTable.load(path)
    assert main(["latency", "show", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_saving_where_no_file_can_go_is_a_one_line_data_error(tmp_path):
    (tmp_path / "afile").write_text("")
    for path in (tmp_path / "afile" / "t.json", tmp_path):  # under a file; a folder in the table's place
        with pytest.raises(DataError, match=f"^cannot write latency table {re.escape(str(path))}: ") as info:
            make_table().save(path)
        assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no temporary left behind


def test_committed_tables_name_their_backend():
    """Every table and predictor this package ships names its backend, so validation never has to guess
    one."""
    for path in sorted(TABLES_DIR.glob("*/*.json")):
        assert load_latency(path).provenance["backend"] == "ort", path


def test_a_table_without_a_backend_cannot_be_rebuilt():
    from nas.latency.validate import backend_from_provenance

    with pytest.raises(ConfigError, match="does not name its backend"):
        backend_from_provenance({"threads": 1})


def test_a_plugin_backend_needs_no_options_from_provenance():
    from nas.latency.backends import BACKENDS
    from nas.latency.validate import backend_from_provenance

    class Plain:
        name, options, version = "plain-test", (), "0"

        def __init__(self, threads: int = 1) -> None:
            self.threads = threads

    BACKENDS.register("plain-test", Plain)
    try:
        rebuilt = backend_from_provenance({"backend": "plain-test", "threads": 3})
    finally:
        BACKENDS.unregister("plain-test")
    assert isinstance(rebuilt, Plain) and rebuilt.threads == 3


def test_a_backend_must_carry_its_registered_name_and_threads():
    from nas.latency.backends import BACKENDS, make_backend

    class Nameless:
        options = ()

        def __init__(self, threads: int = 1) -> None:
            self.threads = threads

    class Threadless:
        name, options = "threadless-test", ()

        def __init__(self, threads: int = 1) -> None:
            pass

    BACKENDS.register("nameless-test", Nameless)
    BACKENDS.register("threadless-test", Threadless)
    try:
        with pytest.raises(ConfigError, match="'nameless-test' must have name = 'nameless-test'"):
            make_backend("nameless-test")
        with pytest.raises(ConfigError, match=r"'threadless-test' .* keep its threads"):
            make_backend("threadless-test")
    finally:
        BACKENDS.unregister("nameless-test")
        BACKENDS.unregister("threadless-test")


def test_committed_tables_load_and_save_unchanged(tmp_path):
    paths = sorted(TABLES_DIR.glob("*/*.json"))
    assert paths
    for path in paths:
        load_latency(path).save(tmp_path / path.name)
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path


def test_bad_fields_are_named(tmp_path):
    data = make_table().to_json()
    data["settings"]["input_size"] = "big"
    data["calibration"] = {"a": "x", "b": 1.0, "c": 0.0}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"missing or bad field 'settings\.input_size'"):
        LatencyTable.load(path)
    data["settings"]["input_size"] = 32
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"missing or bad field 'calibration\.a'"):
        LatencyTable.load(path)


def test_bad_entry_and_missing_file(tmp_path):
    data = make_table().to_json()
    data["entries"]["x"] = {"median_ms": "fast"}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="entry 'x' needs numbers"):
        LatencyTable.load(path)
    with pytest.raises(ValueError, match="cannot read latency table"):
        LatencyTable.load(tmp_path / "missing.json")


def test_paths():
    assert str(default_table_path("pi 4/arm", "mnasnet", 64)) == "latency_tables/pi-4-arm/mnasnet-64.json"
    with pytest.raises(ValueError):
        safe_name("//")


def test_calibration_recovers_known_coefficients():
    sums = [1.0, 2.0, 3.5, 5.0, 8.0, 2.5, 4.0]
    blocks = [10, 14, 12, 20, 18, 16, 11]
    measured = [0.3 + 0.9 * s - 0.02 * n for s, n in zip(sums, blocks, strict=True)]
    cal = fit(sums, blocks, measured)
    assert (cal.a, cal.b, cal.c) == pytest.approx((0.3, 0.9, -0.02), abs=1e-9)
    assert cal.loo_mape == pytest.approx(0.0, abs=1e-9)
    assert cal.n == 7
    assert Calibration.from_json(cal.to_json()) == cal


def test_calibration_learns_what_a_nets_weights_cost_only_where_they_do():
    """Nets whose weights evict each other from cache cost more than their blocks timed warm: ``d``
    recovers that cost; where the weights explain nothing it stays 0 and the file keeps its old form."""
    sums = [1.0, 2.0, 3.5, 5.0, 8.0, 2.5, 4.0, 6.0]
    blocks = [10, 14, 12, 20, 18, 16, 11, 15]
    weights = [0.5, 3.0, 1.2, 2.2, 0.8, 4.1, 2.9, 1.7]
    paying = [0.3 + 0.9 * s - 0.02 * n + 0.15 * w for s, n, w in zip(sums, blocks, weights, strict=True)]
    cal = fit(sums, blocks, paying, weights)
    assert (cal.a, cal.b, cal.c, cal.d) == pytest.approx((0.3, 0.9, -0.02, 0.15), abs=1e-9)
    assert fit(sums, blocks, paying).loo_mape > 0.01 > cal.loo_mape  # three terms cannot express it
    assert Calibration.from_json(cal.to_json()) == cal and cal.to_json()["d"] == pytest.approx(0.15)
    free = [0.3 + 0.9 * s - 0.02 * n for s, n in zip(sums, blocks, strict=True)]
    cal = fit(sums, blocks, free, weights)
    assert cal.d == 0.0 and not cal.uses_weights and "d" not in cal.to_json()
    with pytest.raises(ValueError, match="8 nets but 2 weight counts"):
        fit(sums, blocks, free, [1.0, 2.0])


def test_a_table_whose_calibration_costs_weights_predicts_from_the_nets_parameters(tmp_path):
    table = make_table()
    params = table.weights_m(ARCH)
    assert params * 1e6 == sum(p.numel() for p in build_model(ARCH, 1, 2, 32).parameters())
    table.calibration = Calibration(0.5, 2.0, -0.01, 0.0, 4, d=0.3)
    assert table.predict(ARCH) == pytest.approx(0.5 + 2.0 * 1.0 - 0.01 * 4 + 0.3 * params)
    table.save(tmp_path / "t.json")
    assert LatencyTable.load(tmp_path / "t.json").predict(ARCH) == pytest.approx(table.predict(ARCH))


def test_calibration_with_one_depth_still_fits_and_rejects_bad_input():
    sums, blocks = [1.0, 2.0, 3.0, 4.0], [5, 5, 5, 5]
    cal = fit(sums, blocks, [0.2 + 1.1 * s for s in sums])
    assert cal.apply(2.5, 5) == pytest.approx(0.2 + 1.1 * 2.5)
    with pytest.raises(ValueError, match="at least 4"):
        fit([1.0], [3], [1.0])
    with pytest.raises(ValueError, match="positive"):
        fit([1.0, 2.0, 3.0, 0.0], blocks, [1.0] * 4)


def test_validate_rebuilds_the_backend_the_table_names(monkeypatch):
    """A tvm-rpc table is validated on the same board and target it was built with."""
    from nas.latency import validate

    calls = []
    monkeypatch.setattr(
        validate, "make_backend", lambda name, threads, **options: calls.append((name, threads, options))
    )
    provenance = {
        "backend": "tvm-rpc",
        "threads": 1,
        "target": {"kind": "llvm", "mtriple": "aarch64-linux-gnu"},
        "rpc": {"host": "10.0.0.7", "port": 9090, "key": None},
    }
    validate.backend_from_provenance(provenance)
    validate.backend_from_provenance({"backend": "ort", "threads": 2})
    assert calls == [
        ("tvm-rpc", 1, {"target": provenance["target"], "rpc_host": "10.0.0.7", "rpc_port": 9090}),
        ("ort", 2, {}),
    ]


def test_measured_networks_are_put_on_the_table_scale(monkeypatch):
    """A network the table cannot price is measured beside the anchor and scaled by the anchor's drift."""
    from nas.latency import validate
    from nas.latency.backends.base import Timing

    class HalfSpeedMachine:  # everything runs 2x slower than when the table was built
        def measure(self, items, settings):
            return {i.name: Timing(2.0 if i.name == "anchor" else 3.0, 0.0, settings.rounds) for i in items}

    monkeypatch.setattr(validate, "backend_from_provenance", lambda provenance: HalfSpeedMachine())
    table = LatencyTable(
        settings={
            "space": "mnasnet_small",
            "space_config": {},
            "input_size": 28,
            "in_chans": 1,
            "num_classes": 2,
            "dtype": "fp32",
        },
        provenance={"backend": "ort", "threads": 1},
        anchor={"arch": "conv_k3_s2_c8:ds_k3_c8:head", "median_ms": 1.0, "spread_ms": 0.0, "rounds": 5},
    )
    measured = validate.measure_nets(table, {"mnasnet0_5": resolve_arch("mnasnet0_5")})
    assert measured == {"mnasnet0_5": pytest.approx(1.5)}
    with pytest.raises(ValueError, match="no anchor"):
        validate.measure_nets(LatencyTable(table.settings, table.provenance), {})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("dtype", "bf16", r"'settings\.dtype': unknown dtype 'bf16' \(choose from fp32, fp16, int8\)"),
        ("num_classes", 0, r"'settings\.num_classes': Input should be greater than or equal to 1"),
        ("in_chans", 0, r"'settings\.in_chans'"),
        ("input_size", -3, r"'settings\.input_size'"),
        ("space_config", {"name": "x"}, r"'settings\.space_config': stem: Field required"),
    ],
)
def test_bad_settings_are_one_line_config_errors(tmp_path, key, value, message):
    """Caught on load, naming file and field, not later as a bug where the value is first used."""
    data = make_table().to_json()
    data["settings"][key] = value
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message) as info:
        LatencyTable.load(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_cli_reports_a_bad_table_as_the_users_problem(tmp_path, capsys):
    from nas.cli import main

    data = make_table().to_json()
    data["settings"]["dtype"] = "bf16"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    assert main(["latency", "show", str(path)]) == 2
    assert "settings.dtype" in capsys.readouterr().err


def test_unknown_settings_survive_load_and_save(tmp_path):
    """A table written by a newer version keeps its extra settings when this version re-saves it."""
    data = make_table().to_json()
    data["settings"]["layout"] = "nhwc"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    LatencyTable.load(path).save(path)
    assert json.loads(path.read_text())["settings"] == data["settings"]


def test_space_the_table_cannot_rebuild_is_a_config_error():
    table = make_table()
    table.settings["space_config"]["stages"][0]["ops"] = ["nope"]
    with pytest.raises(ConfigError, match=r"^latency table settings\.space_config \(space 'mnasnet'\)"):
        table.space()
    table.settings["space_config"] = {}  # stored without its space: it prices archs, cannot sample them
    assert table.predict(ARCH) > 0
    with pytest.raises(ConfigError, match="no space stored"):
        table.space()
