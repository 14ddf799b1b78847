"""Every shipped experiment file loads, and names a space and latency table that fit each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.latency.table import LatencyTable
from nas.search.config import load_experiment
from nas.space import SearchSpace

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_loads_with_a_matching_table(path, monkeypatch):
    monkeypatch.chdir(path.parents[1])  # experiment paths are relative to the checkout
    config = load_experiment(path)
    space = SearchSpace.from_yaml(config.space)
    if config.latency is not None:
        table = LatencyTable.load(config.latency.table)
        assert table.settings["space"] == space.name
        assert table.settings["input_size"] == config.input_size


def test_the_quickstart_and_the_real_experiment_are_shipped():
    assert {"quickstart", "pneumoniamnist", "pneumoniamnist_pareto"} <= {p.stem for p in EXPERIMENTS}
