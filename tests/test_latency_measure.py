"""``nas latency measure``: whole nets timed with the anchor, the CSV and its sidecar, bad input refused."""

from __future__ import annotations

import csv
import json

import pytest
from test_latency_cli import SPACE_YAML  # the same tiny space

from nas.arch import ArchSpec
from nas.cli import main
from nas.errors import DataError
from nas.latency import measured
from nas.latency.backends.base import Item, Settings, Timing
from nas.latency.build import ANCHOR, anchor_arch
from nas.space import SearchSpace

COMMON = ["--input-size", "16", "--in-chans", "1", "--num-classes", "2", "--device", "ci"]


class FakeBackend:
    """A net's 'latency' is its arch string's length / 100 ms; the anchor is 1 ms."""

    name, version, threads = "fake", "0", 1

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def measure(self, items: list[Item], settings: Settings) -> dict[str, Timing]:
        self.calls.append([item.name for item in items])
        return {
            it.name: Timing(1.0 if it.name == ANCHOR else len(it.name) / 100, 0.01, settings.rounds)
            for it in items
        }

    def provenance(self) -> dict:
        return {"backend": self.name, "backend_version": self.version, "target": "nowhere"}


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPACE_YAML)
    return path


def test_measured_nets_round_trip_with_their_sidecar(space_file, tmp_path):
    space = SearchSpace.from_yaml(space_file)
    archs = measured.random_nets(space, 5, seed=3)
    assert len(set(archs)) == 5 and anchor_arch(space) not in archs
    assert archs == measured.random_nets(space, 5, seed=3)
    backend = FakeBackend()
    found = measured.measure_archs(space, archs, 16, 1, 2, backend, "ci", Settings(rounds=4), seed=3)
    assert len(backend.calls) == 1 and backend.calls[0][0] == ANCHOR and len(backend.calls[0]) == 6
    out = tmp_path / "m.csv"
    measured.save(found, out)
    with out.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["arch", "latency_ms"] and len(rows) == 6
    side = json.loads((tmp_path / "m.json").read_text())
    assert side["schema_version"] == 1 and side["seed"] == 3 and side["nets"] == 5
    assert side["provenance"]["backend"] == "fake" and side["provenance"]["target"] == "nowhere"
    for key in ("device", "cpu_model", "date", "threads", "measure"):
        assert key in side["provenance"]
    assert side["anchor"]["median_ms"] == 1.0 and side["anchor"]["arch"] == anchor_arch(space).to_str()
    s = side["settings"]
    assert (s["space"], s["input_size"], s["in_chans"], s["num_classes"], s["dims"]) == ("tiny", 16, 1, 2, 2)
    again = measured.load(out)
    assert [a for a, _ in again.nets] == archs
    assert [ms for _, ms in again.nets] == pytest.approx([len(a.to_str()) / 100 for a in archs])
    assert again.sidecar == found.sidecar and again.space().name == "tiny"
    assert measured.read_archs(out, space) == archs  # a measured CSV is an archs file too
    with pytest.raises(
        DataError, match=r"nope\.csv: no measured set there \(nas latency measure writes one\)"
    ):
        measured.load(tmp_path / "nope.csv")  # the mistyped CSV is named, not its sidecar
    twice = measured.measure_archs(space, [anchor_arch(space), archs[0], archs[0]], 16, 1, 2, backend, "ci")
    assert [ms for _, ms in twice.nets] == pytest.approx([1.0, *[len(archs[0].to_str()) / 100] * 2])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no arch strings"),
        ("\n# nothing\n", "no arch strings"),
        ("conv_k3_s2_c8:ds_k9_c16:::\n", "line 1"),
        ("conv_k3_s2_c8:zz_k3_c16:head_c32\n", "line 1"),
        ("conv_k3_s2_c8:ds_k3_s2_c16:head_c32\nconv_k3_s2_c8:ds_k7_s2_c16:head_c32\n", "line 2"),
    ],
)
def test_a_bad_archs_file_is_a_one_line_error_and_writes_nothing(
    space_file, tmp_path, capsys, content, message
):
    archs = tmp_path / "archs.txt"
    archs.write_text(content)
    out = tmp_path / "m.csv"
    code = main(
        ["latency", "measure", "--space", str(space_file), *COMMON, "--archs", str(archs), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "m.json").exists()


def test_an_unknown_space_or_an_existing_out_is_refused(space_file, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["latency", "measure", "--space", "nope", *COMMON, "--nets", "2", "--out", str(out)]) == 2
    assert "nope" in capsys.readouterr().err and not out.exists()
    out.write_text("keep me")
    assert (
        main(["latency", "measure", "--space", str(space_file), *COMMON, "--nets", "2", "--out", str(out)])
        == 2
    )
    assert "exists" in capsys.readouterr().err and out.read_text() == "keep me"
    assert not (tmp_path / "m.json").exists()


def test_a_garbled_measured_file_is_a_one_line_error(space_file, tmp_path):
    space = SearchSpace.from_yaml(space_file)
    found = measured.measure_archs(space, measured.random_nets(space, 2, 0), 16, 1, 2, FakeBackend(), "ci")
    out = tmp_path / "m.csv"
    measured.save(found, out)
    out.write_text(out.read_text().replace(",0.", ",-0.", 1))
    with pytest.raises(DataError, match="line 2: latency"):
        measured.load(out)
    side = json.loads((tmp_path / "m.json").read_text())
    side["settings"].pop("in_chans")
    (tmp_path / "m.json").write_text(json.dumps(side))
    with pytest.raises(DataError, match=r"m\.json: settings\.in_chans"):
        measured.load(out)
    (tmp_path / "m.json").write_text('{"schema_version": 2}')
    with pytest.raises(DataError, match=r"m\.json: schema_version"):
        measured.load(out)


def test_measure_times_real_nets_with_onnx_runtime(space_file, tmp_path, single_thread):
    pytest.importorskip("onnxruntime")
    archs = tmp_path / "archs.txt"
    net = ArchSpec.from_str("conv_k3_s2_c8:ds_k3_s2_c16:head_c32")
    archs.write_text(f"# one net\n{net}\n")
    out = tmp_path / "m.csv"
    argv = ["latency", "measure", "--space", str(space_file), *COMMON, "--rounds", "3"]
    assert main([*argv, "--archs", str(archs), "--out", str(out)]) == 0
    found = measured.load(out)
    assert found.nets[0][0] == net and found.nets[0][1] > 0 and found.sidecar.seed is None
    assert found.sidecar.provenance["backend"] == "ort" and found.sidecar.anchor["median_ms"] > 0
    assert found.sidecar.provenance["measure"]["sample_ms"] == Settings().sample_ms  # warm by default
    cold = tmp_path / "cold.csv"
    assert main([*argv, "--sample-ms", "0", "--archs", str(archs), "--out", str(cold)]) == 0
    assert measured.load(cold).sidecar.provenance["measure"]["sample_ms"] == 0.0


def test_a_negative_sample_length_is_a_one_line_error(space_file, tmp_path, capsys):
    out = tmp_path / "m.csv"
    argv = ["latency", "measure", "--space", str(space_file), *COMMON, "--nets", "2", "--out", str(out)]
    assert main([*argv, "--sample-ms", "-1"]) == 2
    assert "--sample-ms: -1 must be >= 0" in capsys.readouterr().err
    assert not out.exists()
