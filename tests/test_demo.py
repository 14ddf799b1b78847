"""``nas demo``: the search -> train -> export loop end to end on generated data, and how it finds data."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from medmnist_data import write_npz

from nas import cli, demo
from nas.errors import DataError


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_demo_runs_search_train_and_export(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from outside the checkout: the experiment and its table are shipped
    out = tmp_path / "demo"
    code = cli.main(["demo", "--data", "synthetic", "--trials", "3", "--epochs", "1", "--out", str(out)])
    assert code == 0
    experiment = yaml.safe_load((out / "experiment.yaml").read_text())
    assert experiment["dataset"] == {"name": "synthetic"} and experiment["out"] == str(out / "search")
    for path in ("search/pareto.png", "search/summary.json", "final/metrics.json", "final/weights.pt"):
        assert (out / path).is_file(), path
    summary = json.loads((out / "search" / "summary.json").read_text())
    card = json.loads((out / "export" / "model_card.json").read_text())
    assert card["arch"] == summary["best"]["arch"]  # the searched best is what was trained and exported
    assert (out / "export" / "model.onnx").stat().st_size > 0
    assert "ONNX model and model card" in capsys.readouterr().out


def test_missing_data_falls_back_to_generated_images_and_says_how_to_get_it(monkeypatch, capsys):
    def missing(name, size=28, root=None):
        raise DataError(f"{name}.npz not found in ~/.medmnist: put it at ~/.medmnist/{name}.npz")

    monkeypatch.setattr("nas.data.medmnist.find_file", missing)
    assert demo.demo_dataset(None) == {"name": "synthetic"}
    said = " ".join(capsys.readouterr().out.split())
    assert "put it at ~/.medmnist/pneumoniamnist.npz" in said and "generated" in said


def test_found_data_is_used(monkeypatch, tmp_path):
    monkeypatch.setattr("nas.data.medmnist.find_file", lambda name, size=28, root=None: tmp_path / "x.npz")
    assert demo.demo_dataset(None) == {"name": "pneumoniamnist"}


def test_a_given_npz_file_becomes_the_dataset_path(tmp_path):
    path = write_npz(tmp_path / "pneumoniamnist.npz")
    assert demo.demo_dataset(str(path)) == {"path": str(path)}


@pytest.mark.parametrize(
    "argv",
    [["demo", "--data", "/nowhere/x.npz"], ["demo", "--experiment", "/nowhere.yaml", "--data", "synthetic"]],
)
def test_bad_input_is_one_line_and_exit_2(argv, tmp_path, capsys):
    assert cli.main([*argv, "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_an_out_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    with pytest.raises(DataError, match=r"cannot write the demo to .*afile: it is a file"):
        demo.write_experiment("demo", {"name": "synthetic"}, tmp_path / "afile")
    assert cli.main(["demo", "--data", "synthetic", "--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the demo") and err.count("\n") == 1


def test_the_default_demo_is_nas_auto_with_a_five_minute_budget(tmp_path, monkeypatch):
    import nas.auto.cli
    import nas.auto.run

    calls = []
    monkeypatch.setattr(nas.auto.run, "run_auto", lambda request, **kw: calls.append(request) or {"ok": 1})
    monkeypatch.setattr(nas.auto.cli, "print_summary", lambda summary: calls.append(summary))
    assert cli.main(["demo", "--data", "synthetic", "--out", str(tmp_path / "d")]) == 0
    request, printed = calls
    assert (request.data, request.budget_minutes, request.out) == ("synthetic", 5.0, tmp_path / "d")
    assert request.resume and printed == {"ok": 1}  # a second demo goes on with (or reprints) the first
    assert cli.main(["demo", "--data", "synthetic", "--budget", "2", "--out", str(tmp_path / "d")]) == 0
    assert calls[2].budget_minutes == 2.0
