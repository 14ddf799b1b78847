"""Works outside the checkout: bundled experiments and latency tables are found from any directory, and
the wheel ships them (``pyproject.toml`` maps each shipped folder under ``nas/_bundled/``)."""

from __future__ import annotations

import json
import tomllib
from importlib import resources as importlib_resources
from pathlib import Path

import pytest

from nas import cli, resources
from nas.search.config import load_experiment
from nas.search.factory import latency_table
from nas.space import SearchSpace
from nas.space_config import SpaceError

ROOT = Path(__file__).resolve().parents[1]
TABLE = "latency_tables/dev-epyc-2core/mnasnet_small-28.json"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working directory outside the checkout."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_bundled_experiment_loads_by_name_or_relative_path_from_any_directory(elsewhere):
    assert load_experiment("quickstart").name == "quickstart"
    assert load_experiment("experiments/quickstart.yaml").name == "quickstart"
    assert resources.find_experiment("demo") == ROOT / "experiments" / "demo.yaml"


def test_its_latency_table_is_the_shipped_one(elsewhere):
    table = latency_table(load_experiment("quickstart"))
    assert table is not None and table.settings["space"] == "mnasnet_small"
    assert resources.find_file(TABLE) == ROOT / TABLE


def test_a_file_in_the_working_directory_wins(elsewhere):
    mine = elsewhere / "experiments" / "quickstart.yaml"
    mine.parent.mkdir()
    mine.write_text(
        (ROOT / "experiments" / "quickstart.yaml").read_text().replace("name: quickstart", "name: mine")
    )
    assert load_experiment("quickstart").name == "mine"
    assert resources.find_experiment("experiments/quickstart.yaml") == Path("experiments/quickstart.yaml")


def test_a_missing_experiment_names_the_bundled_ones(elsewhere):
    with pytest.raises(ValueError, match=r"nowhere: cannot read: .*\(bundled: demo, .*quickstart") as info:
        load_experiment("nowhere")
    assert "\n" not in str(info.value)


def test_a_bundled_space_loads_by_name_or_relative_path_from_any_directory(elsewhere, capsys):
    assert SearchSpace.from_yaml("search_spaces/fbnet.yaml").source == str(
        ROOT / "search_spaces" / "fbnet.yaml"
    )
    assert SearchSpace.from_yaml("mnasnet").name == "mnasnet"
    assert cli.main(["space", "sample", "search_spaces/fbnet.yaml", "-n", "2", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_a_space_file_in_the_working_directory_wins(elsewhere):
    mine = elsewhere / "search_spaces" / "mnasnet_small.yaml"
    mine.parent.mkdir()
    mine.write_text((ROOT / "search_spaces" / "mnasnet_small.yaml").read_text())
    assert (
        SearchSpace.from_yaml("search_spaces/mnasnet_small.yaml").source == "search_spaces/mnasnet_small.yaml"
    )
    (elsewhere / "quickstart").mkdir()  # a run folder named like a bundled experiment does not hide it
    assert resources.find_experiment("quickstart") == ROOT / "experiments" / "quickstart.yaml"


def test_a_missing_space_names_the_bundled_ones(elsewhere):
    with pytest.raises(SpaceError, match=r"^nowhere: no such space file \(bundled spaces: fbnet, mnasnet, "):
        SearchSpace.from_yaml("nowhere")


def test_an_unknown_path_is_reported_as_given(elsewhere):
    assert resources.find_file("latency_tables/none/x.json") == Path("latency_tables/none/x.json")
    assert resources.find_file("README.md") == Path("README.md")  # only the shipped folders are looked up


def test_an_installed_package_reads_its_bundled_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(resources, "CHECKOUT", tmp_path)  # no checkout beside the package
    bundled = Path(str(importlib_resources.files("nas"))) / "_bundled"
    assert resources.bundled_dir("experiments") == bundled / "experiments"


def test_the_wheel_ships_every_bundled_folder_under_nas_bundled():
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["sources"] == {name: f"nas/_bundled/{name}" for name in resources.SHIPPED}
    assert set(resources.SHIPPED) <= set(wheel["only-include"])


def test_nas_search_quickstart_runs_from_another_directory(elsewhere, capsys):
    code = cli.main(["search", "quickstart", "--trials", "1", "--out", "runs/q"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((elsewhere / "runs" / "q" / "summary.json").read_text())  # outputs stay in the cwd
    assert sum(summary["counts"].values()) == 1
