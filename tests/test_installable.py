"""Works outside the checkout: bundled spaces, experiments and latency tables are found from any directory,
and the wheel ships them (``pyproject.toml`` maps each shipped folder under ``nas/_bundled/``): the wheel
is built, installed apart and run from elsewhere."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import zipfile
from importlib import resources as importlib_resources
from pathlib import Path

import pytest
import yaml

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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, built offline by the project's build backend (the ``dev`` extra)."""
    from hatchling.build import build_wheel

    out = tmp_path_factory.mktemp("wheel")
    with contextlib.chdir(ROOT):
        return out / build_wheel(str(out))


def test_the_wheel_ships_the_package_and_its_data_under_nas_bundled(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names}
    assert "nas" in tops and all(top == "nas" or top.endswith(".dist-info") for top in tops)  # no tests/
    for folder in resources.SHIPPED:
        shipped = {
            f"nas/_bundled/{path.relative_to(ROOT).as_posix()}"
            for path in (ROOT / folder).rglob("*")
            if path.is_file() and "results" not in path.parts
        }
        assert shipped and shipped <= names
    assert not any("/results/" in name or "__pycache__" in name for name in names)


def test_the_installed_wheel_runs_from_another_directory(wheel, tmp_path):
    """Installed apart from the checkout (PYTHONPATH puts it before the editable install), the package
    finds its bundled space, experiment and latency table and runs a search and an export."""
    site, cwd = tmp_path / "site", tmp_path / "work"
    cwd.mkdir()
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target"]
    subprocess.run([*pip, str(site), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}

    def python(*args: str) -> str:
        done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = "import nas, nas.resources as r; print(nas.__file__, r.find_experiment('quickstart'))"
    assert all(Path(path).is_relative_to(site) for path in python("-c", where).split())
    # quickstart cut to seconds: the space by name, the table by its relative path, from the wheel
    tiny = yaml.safe_load((site / "nas" / "_bundled" / "experiments" / "quickstart.yaml").read_text())
    tiny["training"].update(epochs=1, max_train_samples=64)
    (cwd / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    python("-m", "nas.cli", *shlex.split("search tiny.yaml --trials 2 --out runs/q"))
    summary = json.loads((cwd / "runs" / "q" / "summary.json").read_text())
    assert sum(summary["counts"].values()) == 2
    export = "export --arch mobilenet_v2 --input-size 28 --in-chans 1 --num-classes 2 --rounds 5 --out x"
    python("-m", "nas.cli", *shlex.split(export))
    assert (cwd / "x" / "model.onnx").is_file() and (cwd / "x" / "model_card.json").is_file()
