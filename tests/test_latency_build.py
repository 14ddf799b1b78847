"""Table building with a fake backend: every key, drift scaling, resume after a kill, validation."""

from __future__ import annotations

import math
import random
import zlib

import pytest
import torch

from nas.arch import ArchSpec
from nas.errors import DataError, UsageError
from nas.latency.backends.base import Item, Settings, Timing
from nas.latency.build import ANCHOR, SENTINEL, build_table
from nas.latency.keys import arch_keys
from nas.latency.space_keys import space_keys
from nas.latency.table import LatencyTable
from nas.latency.validate import fidelity, kendall_tau, validate
from nas.space import SearchSpace

SPACE_YAML = """
name: tiny
stem: conv_k3_s2_c8
head: head_c32
stages:
  - {stride: 1, channels: 8, layers: {min: 0, max: 2}, choose_per: stage, ops: [ir_e3, ds], kernel: [3, 5]}
  - {stride: 2, channels: 16, layers: {min: 1, max: 2}, choose_per: stage, ops: [ds_k3],
     residual: [true, false], width: [1.0, 2.0]}
"""
SIZE, CHANS, CLASSES = 16, 1, 3
A, B, C = 0.1, 0.9, -0.002  # the fake device: whole net = A + B * block sum + C * blocks


def block_ms(key: str) -> float:
    return 0.01 + (zlib.crc32(key.encode()) % 1000) / 1e4


def net_ms(arch: ArchSpec) -> float:
    keys = [k for k, _ in arch_keys(arch, CHANS, SIZE, CLASSES)]
    return A + B * sum(block_ms(k) for k in keys) + C * len(keys)


class FakeBackend:
    """Deterministic 'measurements', all scaled by ``scale * (1 + drift * calls so far)``."""

    name, version, threads = "fake", "0", 1

    def __init__(self, fail_after: int | None = None, scale: float = 1.0, drift: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.settings: list[Settings] = []
        self.fail_after, self.scale, self.drift = fail_after, scale, drift

    def measure(self, items: list[Item], settings: Settings) -> dict[str, Timing]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        scale = self.scale * (1 + self.drift * len(self.calls))
        self.calls.append([item.name for item in items])
        self.settings.append(settings)
        out = {}
        for item in items:
            name = item.name.removeprefix(SENTINEL)
            ms = 1.0 if name == ANCHOR else block_ms(name) if "|" in name else net_ms(ArchSpec.from_str(name))
            out[item.name] = Timing(ms * scale, 0.01 * ms, settings.rounds)
        return out

    def provenance(self) -> dict:
        return {"backend": self.name, "backend_version": self.version, "threads": self.threads}


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPACE_YAML)
    return SearchSpace.from_yaml(path)


def build(space, backend, path, **kwargs):
    measure = Settings(rounds=3)
    return build_table(space, SIZE, CHANS, CLASSES, backend, "test-device", path, measure=measure, **kwargs)


def test_build_measures_every_key_and_calibrates(space, tmp_path):
    backend = FakeBackend(drift=0.1)  # the machine slows down by 10 % with every call
    table = build(space, backend, tmp_path / "t.json", batch_size=8, calibration_nets=6)
    keys = space_keys(space, CHANS, SIZE, CLASSES)
    assert set(table.entries) == set(keys)
    batches = -(-len(keys) // 8)
    assert len(backend.calls) == 1 + batches + 1  # nets, blocks, nets again
    nets = {ANCHOR} | {n["arch"] for n in table.calibration_nets}
    assert set(backend.calls[0]) == nets == set(backend.calls[-1]) and len(nets) == 7
    sentinels = {k for k, _ in arch_keys(ArchSpec.from_str(table.anchor["arch"]), CHANS, SIZE, CLASSES)}
    assert set(backend.calls[1]) >= sentinels  # the anchor's blocks first, then re-timed in every batch
    assert all({f"{SENTINEL}{k}" for k in sentinels} <= set(call) for call in backend.calls[2:-1])
    for key, entry in table.entries.items():  # drift divided out: every entry at the first batch's scale
        assert entry["median_ms"] == pytest.approx(1.1 * block_ms(key))
    nets_scale = (1 + 1 + 0.1 * (batches + 1)) / 2  # the two passes over the nets, averaged
    assert table.anchor["passes_ms"] == pytest.approx([1.0, 1 + 0.1 * (batches + 1)])
    cal = table.calibration
    assert (cal.a, cal.b, cal.c) == pytest.approx((A * nets_scale, B * nets_scale / 1.1, C * nets_scale))
    assert table.provenance["device"] == "test-device" and table.provenance["backend"] == "fake"
    assert LatencyTable.load(tmp_path / "t.json") == table


def test_a_table_of_a_strided_space_predicts_every_net_of_it(tmp_path):
    """Stride choices reach more input sizes; the table has a key for each, so no sample is unpriced."""
    path = tmp_path / "strided.yaml"
    path.write_text(
        SPACE_YAML.replace("head: head_c32", "stem_stride: [1, 2]\nhead: head_c32").replace(
            "stride: 2,", "stride: [1, 2],"
        )
    )
    strided = SearchSpace.from_yaml(path)
    assert {p.name for p in strided.params} >= {"stem.stride", "s2.stride"}
    table = build(strided, FakeBackend(), tmp_path / "t.json", batch_size=64, calibration_nets=6)
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        arch = strided.sample(rng)
        seen.add((arch.stem.stride, arch.stages[1][0].stride))
        expected = table.calibration.apply(sum(block_ms(k) for k in table.keys(arch)), len(table.keys(arch)))
        assert table.predict(arch) == pytest.approx(expected)
    assert seen == {(1, 1), (1, 2), (2, 1), (2, 2)}


def test_killed_build_resumes_with_the_missing_keys_only(space, tmp_path):
    path = tmp_path / "t.json"
    with pytest.raises(KeyboardInterrupt):
        build(space, FakeBackend(fail_after=3), path, batch_size=5, calibration_nets=5)
    partial = LatencyTable.load(path)
    assert len(partial.entries) == 10 and partial.anchor is not None and partial.calibration is None
    with pytest.raises(ValueError, match="unfinished"):
        validate(partial, backend=FakeBackend())
    backend = FakeBackend()
    table = build(space, backend, path, batch_size=5, calibration_nets=5)
    blocks = [name for call in backend.calls[:-1] for name in call if not name.startswith(SENTINEL)]
    assert sorted(blocks) == sorted(set(table.entries) - set(partial.entries))
    assert ANCHOR in backend.calls[-1]  # the second pass over the nets
    assert table.calibration is not None
    again = FakeBackend()
    build(space, again, path, batch_size=5, calibration_nets=5)
    assert again.calls == []


def test_a_table_for_other_settings_is_not_resumed(space, tmp_path):
    path = tmp_path / "t.json"
    with pytest.raises(UsageError, match="measures fp32, not int8"):
        build(space, FakeBackend(), path, dtype="int8")
    build(space, FakeBackend(), path, calibration_nets=4)
    with pytest.raises(ValueError, match="other settings"):
        build_table(space, SIZE * 2, CHANS, CLASSES, FakeBackend(), "test-device", path, calibration_nets=4)


def test_a_table_is_timed_and_re_timed_in_the_regime_it_records(space, tmp_path, monkeypatch):
    """Single-run samples and warm ones differ by cache effects: a resumed build, a derived shape,
    validation and whole-net measurements all read the regime the table recorded, not today's default."""
    import nas.latency.validate as validate_module
    from nas.latency.build import shape_base_measure

    path, cold = tmp_path / "t.json", Settings(rounds=3, sample_ms=0.0)
    with pytest.raises(KeyboardInterrupt):
        build_table(
            space,
            SIZE,
            CHANS,
            CLASSES,
            FakeBackend(fail_after=2),
            "test-device",
            path,
            measure=cold,
            calibration_nets=5,
        )
    resumed = FakeBackend()
    table = build(space, resumed, path, calibration_nets=5)  # asks for 2 ms samples: the table says 0
    assert resumed.settings and {s.sample_ms for s in resumed.settings} == {0.0}
    assert table.provenance["measure"]["sample_ms"] == 0.0
    assert shape_base_measure(table) == (cold, 5)
    validating = FakeBackend()
    validate(table, nets=4, backend=validating)
    assert {(s.rounds, s.sample_ms) for s in validating.settings} == {(3, 0.0)}
    monkeypatch.setattr(validate_module, "backend_from_provenance", lambda provenance: validating)
    net = space.sample(random.Random(1))
    validate_module.measure_nets(table, {net.to_str(): net}, rounds=7)
    assert (validating.settings[-1].rounds, validating.settings[-1].sample_ms) == (7, 0.0)
    assert Settings.recorded(None) == Settings() and Settings().sample_ms > 0
    assert Settings.recorded({"rounds": 9, "from_a_plugin": 1}) == Settings(rounds=9)


def test_an_out_path_that_cannot_be_written_fails_before_any_timing(space, tmp_path):
    (tmp_path / "afile").write_text("")
    backend = FakeBackend()
    with pytest.raises(DataError, match=r"cannot write the latency table to .*afile"):
        build(space, backend, tmp_path / "afile" / "t.json")
    assert backend.calls == []


def test_the_table_records_the_backends_name_and_threads_itself(space, tmp_path):
    """A plugin's provenance() may leave them out: the table still says how to rebuild the backend."""

    class Terse(FakeBackend):
        name, threads = "terse", 2

        def provenance(self) -> dict:
            return {"backend_version": self.version}

    table = build(space, Terse(), tmp_path / "t.json", calibration_nets=4)
    assert (table.provenance["backend"], table.provenance["threads"]) == ("terse", 2)
    build(space, Terse(fail_after=0), tmp_path / "t.json", calibration_nets=4)  # done: resumes, times nothing


def test_validate_reports_drift_corrected_and_absolute_figures(space, tmp_path):
    table = build(space, FakeBackend(), tmp_path / "t.json", calibration_nets=5)
    report = validate(table, nets=8, seed=3, backend=FakeBackend(scale=1.3), measure=Settings(rounds=2))
    assert report["n"] == 8
    assert report["within_10pct"] == 1.0 and report["mape"] == pytest.approx(0.0, abs=1e-9)
    assert report["kendall_tau"] == pytest.approx(1.0)
    assert report["within_10pct_absolute"] == 0.0  # every net 30 % slower than at build time
    assert report["noise_within_10pct"] == 1.0
    assert report["anchor_drift"] == pytest.approx(1.3)
    calibration = {n["arch"] for n in table.calibration_nets}
    assert not calibration & {n["arch"] for n in report["nets"]}


def test_fidelity_figures_and_kendall_tau():
    report = fidelity([1.0, 2.1, 2.9, 5.0], [1.0, 2.0, 3.0, 4.0])
    assert report["within_10pct"] == 0.75
    assert report["max_ape"] == pytest.approx(0.25)
    assert report["bias"] == pytest.approx((0 + 0.05 - 1 / 30 + 0.25) / 4)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # tau-b with ties: 5 concordant, 0 discordant, 1 tie in x only -> 5 / sqrt(5 * 6)
    assert kendall_tau([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9128709291752769)
    assert math.isnan(kendall_tau([1.0], [2.0])) and math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


class ShapedBackend(FakeBackend):
    """The fake device for any data shape: a whole net's time from its own keys (channels from the input
    shape, classes from the head's last layer)."""

    def measure(self, items: list[Item], settings: Settings) -> dict[str, Timing]:
        self.calls.append([item.name for item in items])
        out = {}
        for item in items:
            name = item.name.removeprefix(SENTINEL)
            if "|" in name:
                ms = block_ms(name)
            else:
                linear = [m for m in item.module.modules() if isinstance(m, torch.nn.Linear)]
                classes = linear[-1].out_features
                arch = ArchSpec.from_str(name) if name != ANCHOR else self.anchor
                keys = [k for k, _ in arch_keys(arch, item.input_shape[1], SIZE, classes)]
                ms = A + B * sum(block_ms(k) for k in keys) + C * len(keys)
            out[item.name] = Timing(ms * self.scale, 0.01 * ms, settings.rounds)
        return out


def test_a_table_for_another_data_shape_times_only_its_stem_and_head(space, tmp_path):
    """RGB and 5 classes from a 1-channel, 3-class table: body blocks copied, stem and head timed on the
    base's scale (the machine now runs 1.5x slower), anchor and calibration nets timed whole again."""
    base = build(space, FakeBackend(), tmp_path / "gray.json", calibration_nets=6)
    backend = ShapedBackend(scale=1.5)
    backend.anchor = ArchSpec.from_str(base.anchor["arch"])
    rgb = build_table(
        space, SIZE, 3, 5, backend, "test-device", tmp_path / "rgb.json",
        measure=Settings(rounds=3), calibration_nets=6, base=base,
    )  # fmt: skip
    keys = space_keys(space, 3, SIZE, 5)
    assert set(rgb.entries) == set(keys)
    timed = {n for call in backend.calls[1:-1] for n in call if not n.startswith(SENTINEL)}
    new = {k for k in keys if k not in base.entries}
    assert timed == new and new and all(k.startswith(("conv", "head")) for k in new)
    for key in keys:
        expected = base.entries[key]["median_ms"] if key in base.entries else block_ms(key)
        assert rgb.entries[key]["median_ms"] == pytest.approx(expected)  # the base's scale
    assert rgb.provenance["shape_base"]["in_chans"] == 1 and rgb.calibration.n == 6
    arch = space.sample(random.Random(5))
    keys_of = [k for k, _ in arch_keys(arch, 3, SIZE, 5)]
    measured = (A + B * sum(block_ms(k) for k in keys_of) + C * len(keys_of)) * 1.5
    assert rgb.predict(arch) == pytest.approx(measured, rel=1e-6)  # the refit absorbs the 1.5x


def test_a_base_of_another_size_or_device_is_refused_and_found_only_when_it_fits(space, tmp_path):
    from nas.latency.build import find_shape_base, table_settings

    base = build(space, FakeBackend(), tmp_path / "gray.json", calibration_nets=4)
    with pytest.raises(DataError, match="cannot seed this one: it differs in input_size"):
        build_table(space, SIZE * 2, 3, 5, FakeBackend(), "test-device", tmp_path / "big.json", base=base)
    with pytest.raises(DataError, match="it differs in device"):
        build_table(space, SIZE, 3, 5, FakeBackend(), "other", tmp_path / "o.json", base=base)
    provenance = {"device": "test-device", "backend": "fake", "threads": 1}
    assert find_shape_base(tmp_path, table_settings(space, SIZE, 3, 5), provenance) == tmp_path / "gray.json"
    assert find_shape_base(tmp_path, table_settings(space, SIZE * 2, 3, 5), provenance) is None
    assert find_shape_base(tmp_path, table_settings(space, SIZE, 3, 5), provenance | {"threads": 2}) is None
    cold = provenance | {"measure": {"sample_ms": 0.0}}  # gray.json was timed in 2 ms samples
    assert find_shape_base(tmp_path, table_settings(space, SIZE, 3, 5), cold) is None
    with pytest.raises(DataError, match=r"timed in 2 ms samples, this table in 0 \(--sample-ms 2 fits it\)"):
        build_table(
            space, SIZE, 3, 5, FakeBackend(), "test-device", tmp_path / "w.json",
            measure=Settings(rounds=3, sample_ms=0.0), base=base,
        )  # fmt: skip
    assert not (tmp_path / "w.json").exists()
