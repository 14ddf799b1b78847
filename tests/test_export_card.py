"""The model card: every figure the issue asks for, in JSON and in Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_helpers import SMALL, data_file, options, trained_run

from nas.data import dataset_card
from nas.errors import DataError
from nas.export.card import read_card, render_markdown
from nas.export.pipeline import run_export
from nas.export.source import from_arch, from_run_dir
from nas.latency.keys import arch_keys
from nas.latency.table import LatencyTable
from nas.metrics import measure

pytestmark = pytest.mark.usefixtures("single_thread")


def write_table(path, arch, in_chans=1, size=28, classes=2, anchor=None, measure=None):
    keys = [k for k, _ in arch_keys(arch, in_chans, size, classes)]
    settings = {"space": "t", "space_config": {}, "input_size": size, "in_chans": in_chans}
    settings |= {"num_classes": classes, "dtype": "fp32"}
    entries = {k: {"median_ms": 0.25, "spread_ms": 0.01, "rounds": 10} for k in keys}
    provenance = {"device": "testbox", "backend": "ort", **({"measure": measure} if measure else {})}
    LatencyTable(settings, provenance, entries, anchor).save(path)
    return 0.25 * len(keys)


def test_trained_card_has_every_figure(tmp_path):
    source = from_run_dir(trained_run(), None, False, str(data_file()))
    expected_ms = write_table(tmp_path / "table.json", source.arch)
    out = tmp_path / "export"
    card = run_export(source, options(out, int8=True, table=tmp_path / "table.json")).to_json()
    assert json.loads((out / "model_card.json").read_text()) == json.loads(json.dumps(card))
    assert read_card(out).to_json() == card and "pruning" not in card
    reference = measure(source.arch, 1, 28, 2)
    c = card["complexity"]
    assert (c["params"], c["macs"]) == (reference.params, reference.macs)
    assert c["peak_activation_bytes"] == reference.peak_activation_bytes
    assert c["energy_mj_estimate_fp32"] == pytest.approx(reference.energy_mj_estimate)
    assert "ESTIMATE" in c["energy_note"]
    assert card["latency"]["predicted"]["ms"] == pytest.approx(expected_ms)
    assert set(card["latency"]["measured_ms"]) == {"fp32", "int8"}
    assert set(card["clinical"]) == {"fp32", "int8"}
    assert set(card["clinical"]["int8"]) == {"val", "test"}
    contract = card["deployment_contract"]
    assert contract["threshold"] == pytest.approx(source.threshold) == card["threshold"]
    assert contract["input"]["range"] == [0.0, 1.0] and contract["normalization"]["inside_graph"]
    assert "class 1" in contract["threshold_applies_to"]
    assert card["classes"] == source.class_names == contract["class_names"]
    assert "not a medical device" in card["intended_use"].lower()
    md = (out / "model_card.md").read_text()
    for text in (source.arch.to_str(), f"{c['params']:,}", "ESTIMATE", "Not a medical device", "[0, 1]"):
        assert text in md
    assert "predicted by the table: " + f"{expected_ms:.3f} ms" in md
    assert "| int8 | test |" in md and "INT8 vs fp32" in md


def test_untrained_card_says_what_is_missing(tmp_path):
    card = run_export(from_arch(SMALL, None, None, None, None), options(tmp_path)).to_json()
    assert card["clinical"] is None and "no --data" in card["clinical_note"]
    assert card["latency"]["predicted"]["ms"] is None
    assert card["latency"]["predicted"]["note"].startswith("no table")
    md = (tmp_path / "model_card.md").read_text()
    assert "no table" in md and "untrained" in md


def test_prediction_is_corrected_for_drift_since_the_table_was_built(tmp_path):
    source = from_arch(SMALL, None, None, None, None)
    anchor = {"arch": SMALL, "median_ms": 1.0, "spread_ms": 0.0, "rounds": 1}  # 1 ms "at build"
    expected_ms = write_table(tmp_path / "table.json", source.arch, anchor=anchor)
    card = run_export(source, options(tmp_path / "out", table=tmp_path / "table.json")).to_json()
    p = card["latency"]["predicted"]
    assert p["ms"] == pytest.approx(expected_ms) and 0 < p["drift_vs_build"] < 1  # faster now than "1 ms"
    assert p["ms_drift_corrected"] == pytest.approx(expected_ms * p["drift_vs_build"])
    assert "with this machine's drift since" in (tmp_path / "out" / "model_card.md").read_text()


def test_the_tables_references_are_re_timed_in_its_own_regime(tmp_path, monkeypatch):
    """A table timed in single runs has its anchor re-timed in single runs, not in today's warm samples:
    otherwise the drift factor would hold the cache effect too."""
    from nas.export import runtime

    timed_with = []

    def spy(models, shape, settings=None):
        timed_with.append(settings)
        return time_models(models, shape, settings)

    time_models = runtime.time_models
    monkeypatch.setattr(runtime, "time_models", spy)
    source = from_arch(SMALL, None, None, None, None)
    anchor = {"arch": SMALL, "median_ms": 1.0, "spread_ms": 0.0, "rounds": 1}
    cold = {"rounds": 10, "warmup_ms": 1.0, "sample_ms": 0.0, "seed": 0}
    write_table(tmp_path / "table.json", source.arch, anchor=anchor, measure=cold)
    run_export(source, options(tmp_path / "out", table=tmp_path / "table.json"))
    assert [s.sample_ms for s in timed_with] == [0.0]


def test_table_for_another_resolution_gives_no_prediction(tmp_path):
    source = from_arch(SMALL, None, None, None, None)
    write_table(tmp_path / "t64.json", source.arch, size=64)
    card = run_export(source, options(tmp_path / "out", table=tmp_path / "t64.json")).to_json()
    assert card["latency"]["predicted"]["ms"] is None and "64" in card["latency"]["predicted"]["note"]


def test_dataset_licences():
    pneumonia = dataset_card("pneumoniamnist")
    assert pneumonia["licence"] == "CC BY 4.0"
    assert any("Yang" in c and "Scientific Data" in c for c in pneumonia["citation"])
    assert dataset_card("dermamnist")["licence"] == "CC BY-NC 4.0"
    assert "not recorded" in dataset_card("my_folder")["licence"]


COMMITTED = Path(__file__).resolve().parents[1] / "experiments" / "results" / "pneumoniamnist"


def test_committed_card_reads_and_writes_back_unchanged():
    """The card's JSON is a contract: the record reads a card written before it existed and writes the
    same keys, values and order, and the same Markdown."""
    text = (COMMITTED / "model_card.json").read_text()
    card = read_card(COMMITTED / "model_card.json")
    assert card.threshold == card.deployment_contract.threshold and card.int8 is not None
    assert json.dumps(card.to_json(), indent=2) + "\n" == text
    assert render_markdown(card) == (COMMITTED / "model_card.md").read_text()


def test_a_file_that_is_not_a_card_is_one_line(tmp_path):
    (tmp_path / "model_card.json").write_text(json.dumps({"schema": "nas-model-card/1", "arch": "x"}))
    with pytest.raises(DataError, match="is not a model card"):
        read_card(tmp_path)
    with pytest.raises(DataError, match="cannot read model card"):
        read_card(tmp_path / "missing.json")
