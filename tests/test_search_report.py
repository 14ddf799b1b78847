"""Search reports (Pareto front, trials.csv, pareto.csv, pareto.png, summary.json) and ``nas search``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
import yaml

from nas.cli import main
from nas.search.config import ExperimentConfig
from nas.search.factory import default_objective
from nas.search.report import BASE_COLUMNS, front_axes, pareto_front, write_report
from nas.search.run import run_search
from nas.search.summary import read_summary

ROOT = Path(__file__).resolve().parents[1]
AXES = [("val_auc", "maximize"), ("latency_ms", "minimize")]


@pytest.fixture(autouse=True)
def single_thread(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    torch.set_num_threads(threads)


def row(number: int, auc: float | None, lat: float, state: str = "COMPLETE", feasible=True, arch=None):
    r = {"number": number, "state": state, "feasible": feasible, "arch": arch or f"arch{number}"}
    r["latency_ms"] = lat
    if auc is not None:
        r["val_auc"] = auc
    return r


# ---- the Pareto front ------------------------------------------------------------------------


def test_pareto_front_on_hand_made_rows():
    rows = [
        row(0, 0.90, 10.0),  # front
        row(1, 0.80, 5.0),  # front: faster, less accurate
        row(2, 0.85, 12.0),  # dominated by 0 on both
        row(3, 0.90, 11.0),  # dominated by 0: as accurate, slower
        row(4, 0.95, 20.0, feasible=False),  # would be on the front, breaks a constraint
        row(5, 0.99, 1.0, state="REJECTED", feasible=None),  # rejected before training
        row(6, 0.99, 1.0, state="FAIL", feasible=None),
        row(7, None, 0.5),  # lacks an axis
        row(8, 0.90, 10.0),  # a tie with 0, another arch: both stay
        row(9, 0.90, 10.0, arch="arch0"),  # a tie with 0, the same arch (a cached twin): once
        row(10, 0.97, 30.0),  # front: most accurate
    ]
    front = pareto_front(rows, AXES)
    assert [r["val_auc"] for r in front] == sorted(r["val_auc"] for r in front)  # by the first axis
    assert sorted(r["arch"] for r in front) == ["arch0", "arch1", "arch10", "arch8"]
    assert {r["number"] for r in front} == {1, 8, 9, 10}  # the later twin of arch0 stands for it


def test_pareto_front_respects_directions():
    rows = [row(0, 0.9, 10.0), row(1, 0.8, 5.0), row(2, 0.95, 20.0)]
    both_max = pareto_front(rows, [("val_auc", "maximize"), ("latency_ms", "maximize")])
    assert [r["number"] for r in both_max] == [2]
    both_min = pareto_front(rows, [("val_auc", "minimize"), ("latency_ms", "minimize")])
    assert [r["number"] for r in both_min] == [1]
    assert pareto_front([], AXES) == []


def test_front_axes_follow_the_experiment():
    def config(**keys):
        return ExperimentConfig.model_validate({"name": "x", "space": "mnasnet_small"} | keys)

    weighted = config(reward={"type": "weighted_sum", "weights": {"val_auc": 1.0, "params": -1e-6}})
    assert front_axes(weighted) == [("val_auc", "maximize"), ("params", "minimize")]
    soft = config(reward={"type": "mnasnet_soft", "target": 1.0}, latency={"table": "t.json"})
    assert front_axes(soft) == [("val_auc", "maximize"), ("latency_ms", "minimize")]
    pareto = config(mode="pareto", objectives=[{"metric": "params"}, {"metric": "val_ece"}])
    assert front_axes(pareto) == [("params", "minimize"), ("val_ece", "minimize")]


# ---- the files of a run ----------------------------------------------------------------------

CHEAP = {
    "name": "report",
    "space": "mnasnet_small",
    "mode": "pareto",
    "objectives": [{"metric": "params"}, {"metric": "peak_activation_kb"}],
    "reward": {"type": "weighted_sum", "weights": {"params": -1.0e-6}},
    # constraints on cheap metrics: a candidate breaking one is rejected before anything else; the limits
    # sit inside mnasnet_small's spread, so seed 1 breaks each of them and keeps some candidates
    "constraints": [{"metric": "macs", "max": 1.0e7}, {"metric": "params", "max": 2.1e5}],
    "strategy": {"name": "nsga2", "population": 4},
    "trials": 6,
    "seed": 1,
}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_write_report_after_a_small_run(tmp_path):
    config = ExperimentConfig.model_validate(CHEAP | {"out": str(tmp_path / "run")})
    study = run_search(config, default_objective)
    out = Path(config.out)
    summary = write_report(study, config, out, references={"ref": {"params": 1e5}})

    trials = read_csv(out / "trials.csv")
    assert [int(r["number"]) for r in trials] == list(range(len(study.trials)))
    assert {"number", "state", "arch", "reward", "feasible", "params", "macs", "constraint_0"} <= set(
        trials[0]
    )
    states = [r["state"] for r in trials]
    assert "REJECTED" in states and "COMPLETE" in states  # seed 1 gives both
    for r, t in zip(trials, study.trials, strict=True):
        assert r["arch"] == t.user_attrs["arch"]
        within = float(r["macs"]) <= 1.0e7 and float(r["params"]) <= 2.1e5
        if r["state"] == "REJECTED":  # both constraints are on cheap metrics: broken, never trained
            assert not within and r["rejected"].split()[0] in ("macs", "params") and r["feasible"] == ""
        else:
            assert within and r["feasible"] == "True" and r["rejected"] == ""

    pareto = read_csv(out / "pareto.csv")
    assert pareto and all(r["state"] == "COMPLETE" and r["feasible"] == "True" for r in pareto)
    assert [int(r["number"]) for r in pareto] == [r.number for r in summary.pareto]
    points = [(float(r["params"]), float(r["peak_activation_kb"])) for r in trials if r["feasible"] == "True"]
    for r in pareto:  # nothing feasible dominates a front member
        mine = (float(r["params"]), float(r["peak_activation_kb"]))
        assert not any(p[0] <= mine[0] and p[1] <= mine[1] and p != mine for p in points)

    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    saved = json.loads((out / "summary.json").read_text())
    assert list(saved) == [  # the keys are a contract: nas train, nas export and the benchmarks read them
        "schema_version",
        "name",
        "space",
        "dataset",
        "input_size",
        "mode",
        "strategy",
        "storage",
        "counts",
        "best",
        "pareto_axes",
        "pareto",
        "trials",
        "rungs",
    ]
    assert list(saved["trials"][0])[:8] == BASE_COLUMNS and "params" in saved["trials"][0]
    assert saved["counts"] == {s: states.count(s) for s in set(states)}
    assert sum(saved["counts"].values()) == len(study.trials) == 6
    assert saved["storage"] == f"sqlite:///{(out / 'study.db').resolve()}"
    assert saved["pareto_axes"] == ["params", "peak_activation_kb"]
    completed = [r for r in summary.trials if r.state == "COMPLETE"]
    assert saved["best"]["reward"] == max(r.reward for r in completed)
    assert saved["best"]["number"] in {t.number for t in study.trials}
    assert read_summary(out).pareto == summary.pareto


# ---- nas search ------------------------------------------------------------------------------


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["search", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str) -> str:
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def write_experiment(tmp_path: Path, filename: str = "exp.yaml", **keys) -> Path:
    data = {
        "name": "cli",
        "space": "mnasnet_small",
        "reward": {"type": "weighted_sum", "weights": {"params": -1.0e-6, "peak_activation_kb": -1.0e-3}},
        "strategy": {"name": "random"},
        "trials": 3,
        "out": str(tmp_path / "run"),
    } | keys
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_search_writes_the_files_and_prints_the_front(tmp_path, capsys):
    path = write_experiment(tmp_path)
    out = tmp_path / "elsewhere"
    rc, stdout, err = cli(capsys, str(path), "--trials", "4", "--out", str(out))
    assert rc == 0, err
    for name in ("trials.csv", "pareto.csv", "pareto.png", "summary.json", "config.yaml", "study.db"):
        assert (out / name).is_file(), name
    assert not (tmp_path / "run").exists()  # --out wins over the file's out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"COMPLETE": 4}
    assert "Pareto front (params vs peak_activation_kb)" in stdout
    for r in summary["pareto"]:
        assert f"│ {r['number']} " in stdout
    assert 'trials: {"COMPLETE": 4}' in stdout and "optuna-dashboard" in stdout
    assert yaml.safe_load((out / "config.yaml").read_text())["trials"] == 4

    # the same command again resumes: nothing more to run, the same files; trials, timeout and
    # workers may differ between a run and its resumption
    rc, stdout, err = cli(
        capsys, str(path), "--trials", "4", "--out", str(out), "--timeout", "60", "--workers", "1"
    )
    assert rc == 0, err
    assert json.loads((out / "summary.json").read_text())["counts"] == {"COMPLETE": 4}


def test_cli_missing_experiment_is_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nas.cli", "search", str(tmp_path / "missing.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    err = one_line_error(result.returncode, result.stderr)
    assert "missing.yaml" in err and "cannot read" in err
    assert result.stdout == ""


def test_cli_bad_yaml(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [oops\n")
    rc, stdout, err = cli(capsys, str(path))
    assert "not a valid YAML file" in one_line_error(rc, err) and stdout == ""


def test_cli_bad_key(tmp_path, capsys):
    rc, _, err = cli(capsys, str(write_experiment(tmp_path, trails=3)))
    assert "key 'trails'" in one_line_error(rc, err)


def test_cli_refuses_an_out_dir_holding_another_experiment(tmp_path, capsys):
    first = write_experiment(tmp_path, trials=1)
    assert cli(capsys, str(first))[0] == 0
    other = write_experiment(
        tmp_path, "other.yaml", reward={"type": "weighted_sum", "weights": {"macs": -1.0e-6}}
    )
    rc, _, err = cli(capsys, str(other))
    err = one_line_error(rc, err)
    assert "holds another experiment" in err and "reward" in err
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["reward"]["weights"] == {
        "params": -1.0e-6,
        "peak_activation_kb": -1.0e-3,
    }  # the first experiment's record stays


@pytest.mark.parametrize(
    ("record", "message"),
    [("a: [\n", "is not a readable experiment record"), ("- a\n", "is not an experiment record")],
)
def test_cli_run_dir_with_a_broken_record_is_one_line(tmp_path, capsys, record, message):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(record)
    rc, _, err = cli(capsys, str(write_experiment(tmp_path, trials=1)))
    assert f"{tmp_path / 'run' / 'config.yaml'} {message}" in one_line_error(rc, err)


def test_cli_run_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    rc, _, err = cli(capsys, str(write_experiment(tmp_path, trials=1)), "--out", str(tmp_path / "afile"))
    assert f"run directory {tmp_path / 'afile'} is a file" in one_line_error(rc, err)


def test_cli_a_typo_is_checked_before_the_run_is_recorded(tmp_path, capsys):
    """A wrong table path fails in one line and records nothing, so the corrected rerun is not refused."""
    typo = write_experiment(tmp_path, latency={"table": str(tmp_path / "no-such-table.json")})
    rc, _, err = cli(capsys, str(typo))
    assert "no-such-table.json" in one_line_error(rc, err)
    assert not (tmp_path / "run").exists()
    rc, _, err = cli(capsys, str(write_experiment(tmp_path, trials=1)))  # the table left out
    assert rc == 0, err


def test_references_the_table_cannot_measure_never_cost_the_report(tmp_path, capsys, caplog):
    """An imported table has no anchor: references outside its space get no latency, with a note."""
    data = json.loads((ROOT / "latency_tables" / "dev-epyc-2core" / "mnasnet_small-28.json").read_text())
    data["anchor"] = None
    (tmp_path / "table.json").write_text(json.dumps(data))
    path = write_experiment(
        tmp_path,
        latency={"table": str(tmp_path / "table.json")},
        reward={"type": "weighted_sum", "weights": {"latency_ms": -1.0}},
        trials=1,
    )
    rc, _, err = cli(capsys, str(path))
    assert rc == 0, err
    assert "have no latency in the report" in caplog.text and "no anchor" in caplog.text
    for name in ("trials.csv", "pareto.csv", "pareto.png", "summary.json"):
        assert (tmp_path / "run" / name).is_file(), name


@pytest.mark.parametrize(("flag", "value"), [("--trials", "0"), ("--workers", "0"), ("--timeout", "0")])
def test_a_bad_flag_is_blamed_on_the_flag_not_the_file(capsys, tmp_path, flag, value):
    rc = main(["search", "experiments/quickstart.yaml", flag, value, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert f"argument {flag}: " in err and "quickstart.yaml" not in err
    assert not (tmp_path / "run").exists()


def test_cli_help_lists_the_yaml_keys(capsys):
    with pytest.raises(SystemExit) as info:
        main(["search", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--trials", "--timeout", "--storage", "--workers", "--out"):
        assert option in text
    for key in ExperimentConfig.model_fields:
        assert f"\n    {key} " in text, key
    assert "experiments/quickstart.yaml" in text
