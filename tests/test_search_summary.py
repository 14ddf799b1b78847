"""summary.json: written strict, read typed; files from older versions still load."""

from __future__ import annotations

import json

import pytest

from nas.errors import DataError, UsageError
from nas.search.summary import SCHEMA_VERSION, SearchSummary, read_search_run, read_summary, write_summary

ARCH = "conv_k3_s2_c8:head"


def test_round_trip_keeps_metrics_and_writes_strict_json(tmp_path):
    row = {"number": 2, "state": "COMPLETE", "arch": ARCH, "reward": float("nan"), "params": 1e4}
    summary = SearchSummary(dataset="pneumoniamnist", best=row, trials=[row], counts={"COMPLETE": 1})
    path = write_summary(summary, tmp_path)
    saved = json.loads(path.read_text())  # NaN became null, so strict parsers read it too
    assert saved["schema_version"] == SCHEMA_VERSION and saved["best"]["reward"] is None
    assert saved["trials"][0]["params"] == 1e4
    loaded = read_summary(tmp_path)
    assert loaded.trials[0].params == 1e4 and loaded.best.number == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_an_old_summary_loads(tmp_path):
    """No schema_version, mode or input_size, and the dataset as the experiment's {name, path}."""
    old = {"best": None, "trials": [{"number": 0, "arch": ARCH}], "dataset": {"name": "x", "path": "d.npz"}}
    (tmp_path / "summary.json").write_text(json.dumps(old))
    assert read_search_run(tmp_path, 0, False) == {
        "number": 0,
        "arch": ARCH,
        "dataset": "d.npz",
        "input_size": 28,
    }
    with pytest.raises(UsageError, match="no best trial"):
        read_search_run(tmp_path, None, True)
    old["dataset"] = {"name": "pneumoniamnist", "path": None}  # the name where no path was given
    (tmp_path / "summary.json").write_text(json.dumps(old))
    assert read_search_run(tmp_path, 0, False)["dataset"] == "pneumoniamnist"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not a search summary: Invalid JSON"),
        ('{"best": null, "dataset": "x"}', "not a search summary: trials: Field required"),
        (
            '{"schema_version": 9, "best": null, "trials": [], "dataset": "x"}',
            "schema_version: schema_version 9 is newer than this nas reads (1)",
        ),
    ],
)
def test_broken_summaries_are_one_line_errors(tmp_path, content, message):
    (tmp_path / "summary.json").write_text(content)
    with pytest.raises(DataError) as info:
        read_summary(tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_summary_without_best_picks_trials_and_says_best_is_missing(tmp_path):
    """``best`` is optional: ``--trial N`` works, ``--best`` says in one line that the file has none."""
    old = {"trials": [{"number": 3, "arch": ARCH}], "dataset": "x"}
    (tmp_path / "summary.json").write_text(json.dumps(old))
    assert read_summary(tmp_path).best is None
    assert read_search_run(tmp_path, 3, False)["arch"] == ARCH
    with pytest.raises(UsageError, match=r"no best trial \(no 'best' key\): pick one with --trial N$"):
        read_search_run(tmp_path, None, True)
