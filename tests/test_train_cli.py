"""``nas train``, in process through ``nas.cli.main``."""

from __future__ import annotations

import json

import pytest
import torch
from medmnist_data import write_npz

from nas import cli
from nas.search.summary import read_search_run

ARCH = "conv_k3_s2_c8:ir_k3_e2_c16:head"
COMMON = ("--epochs", "2", "--batch-size", "16", "--threads", "1", "--min-steps", "0")


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data(tmp_path):
    return write_npz(tmp_path / "pneumoniamnist.npz")


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str) -> str:
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_train_arch_on_npz(capsys, tmp_path, data):
    rc, out, err = run(capsys, "train", "--arch", ARCH, "--data", data, "--out", tmp_path / "run", *COMMON)
    assert rc == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["arch"] == ARCH and metrics["config"]["epochs"] == 2
    assert "test" in out and "images/s" in out and f"{metrics['test']['auc']:.4f}" in out


def write_summary(run_dir, data):
    run_dir.mkdir()
    summary = {
        "best": {"number": 3, "arch": ARCH},
        "trials": [{"number": 1, "arch": "conv_k3_s2_c8:head"}, {"number": 3, "arch": ARCH}],
        "dataset": str(data),
        "input_size": 28,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_train_from_search_run(capsys, tmp_path, data):
    run_dir = write_summary(tmp_path / "search", data)
    assert read_search_run(run_dir, None, True)["number"] == 3
    assert read_search_run(run_dir, 1, False)["arch"] == "conv_k3_s2_c8:head"
    rc, _, err = run(capsys, "train", run_dir, "--trial", "1", *COMMON)
    assert rc == 0, err
    metrics = json.loads((run_dir / "final" / "trial_1" / "metrics.json").read_text())
    assert metrics["arch"] == "conv_k3_s2_c8:head" and metrics["dataset"] == "pneumoniamnist"


def test_search_run_errors(capsys, tmp_path, data):
    err = one_line_error(*run(capsys, "train", tmp_path, "--best")[::2])
    assert f"no search run at {tmp_path} (expected {tmp_path / 'summary.json'})" in err
    run_dir = write_summary(tmp_path / "search", data)
    assert "has no trial 7 (trials: 1, 3)" in one_line_error(
        *run(capsys, "train", run_dir, "--trial", "7")[::2]
    )
    assert "--trial N or --best" in one_line_error(*run(capsys, "train", run_dir)[::2])
    assert "not both" in one_line_error(*run(capsys, "train", run_dir, "--best", "--arch", ARCH)[::2])
    (run_dir / "summary.json").write_text(json.dumps({"best": None, "trials": [], "dataset": "x"}))
    assert "no best trial" in one_line_error(*run(capsys, "train", run_dir, "--best")[::2])
    pareto = {"best": None, "mode": "pareto", "trials": [{"number": 0, "arch": ARCH}], "dataset": "x"}
    (run_dir / "summary.json").write_text(json.dumps(pareto))
    assert "no single best: pick a trial from" in one_line_error(
        *run(capsys, "train", run_dir, "--best")[::2]
    )
    (run_dir / "summary.json").write_text("{}")
    assert "not a search summary" in one_line_error(*run(capsys, "train", run_dir, "--best")[::2])


def test_usage_errors(capsys, tmp_path, data, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MEDMNIST_ROOT", raising=False)
    assert "--arch ARCH_OR_NAME with --data" in one_line_error(*run(capsys, "train", "--arch", ARCH)[::2])
    assert "--trial and --best need" in one_line_error(*run(capsys, "train", "--best")[::2])
    err = one_line_error(*run(capsys, "train", "--arch", "conv_k3_q9:head", "--data", data)[::2])
    assert "conv_k3_q9" in err
    err = one_line_error(*run(capsys, "train", "--arch", ARCH, "--data", tmp_path / "nope")[::2])
    assert "neither a known dataset" in err
    err = one_line_error(
        *run(capsys, "train", "--arch", ARCH, "--data", "breastmnist", "--input-size", "64")[::2]
    )
    assert "put it at" in err and "breastmnist_64.npz" in err
    err = one_line_error(*run(capsys, "train", "--arch", ARCH, "--data", data, "--optimizer", "adam")[::2])
    assert "invalid choice: 'adam'" in err
    assert "must be >= 1" in one_line_error(*run(capsys, "train", "--arch", ARCH, "--epochs", "0")[::2])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_what_is_refused_writes_nothing(capsys, tmp_path, data):
    """Refused before the output folder is made: a device this machine lacks, a net for another kind of
    data, a teacher that is neither a model nor an arch, or one trained for other classes."""
    out = tmp_path / "t"
    train = ("train", "--arch", ARCH, "--data", data, "--out", out, *COMMON)
    err = one_line_error(*run(capsys, *train, "--device", "cuda")[::2])
    assert "device 'cuda': this machine has 0 CUDA GPU(s); use auto or cpu" in err
    err = one_line_error(*run(capsys, *train, "--arch", "1d:conv_k7_s2_c8:head_c16")[::2])
    assert "is a 1-D network" in err
    err = one_line_error(*run(capsys, *train, "--teacher", tmp_path / "nope")[::2])
    assert "is neither a trained model directory" in err
    three = write_npz(tmp_path / "rgb_xrays.npz", sizes=(24, 12, 12), channels=3)
    assert run(capsys, "train", "--arch", ARCH, "--data", three, "--out", tmp_path / "rgb", *COMMON)[0] == 0
    err = one_line_error(*run(capsys, *train, "--teacher", tmp_path / "rgb")[::2])
    assert "was trained for 3 channel(s)" in err
    assert not out.exists()


def test_train_with_teacher(capsys, tmp_path, data):
    rc, out, err = run(
        capsys,
        "train",
        "--arch",
        ARCH,
        "--data",
        data,
        "--out",
        tmp_path / "kd",
        "--teacher",
        "conv_k3_c8:head",
        "--kd-temperature",
        "2",
        "--kd-alpha",
        "0.5",
        *COMMON,
    )
    assert rc == 0, err
    report = json.loads((tmp_path / "kd" / "kd_report.json").read_text())
    assert report["kd_temperature"] == 2.0 and report["teacher"]["arch"] == "conv_k3_c8:head"
    assert "with KD test" in out and "no KD test" in out and "teacher test" in out


def test_the_final_recipe_is_the_default_and_plain_keeps_the_flags(capsys, tmp_path, data):
    argv = ("train", "--arch", ARCH, "--data", data, "--epochs", "1", "--batch-size", "16", "--threads", "1")
    rc, _, err = run(
        capsys, *argv, "--out", tmp_path / "final", "--min-steps", "8", "--flips", "horizontal", "--refit"
    )
    assert rc == 0, err
    metrics = json.loads((tmp_path / "final" / "metrics.json").read_text())
    config = metrics["config"]
    assert config["min_steps"] == 8 and config["flips"] == "horizontal" and config["refit"]
    assert metrics["refit"]["selected_epoch"] == 1 and metrics["refit"]["steps"] >= 8
    assert len(json.loads((tmp_path / "final" / "metrics.json").read_text())["history"]) == 1  # the epochs
    rc, _, err = run(capsys, *argv, "--out", tmp_path / "plain", "--recipe", "plain")
    assert rc == 0, err
    config = json.loads((tmp_path / "plain" / "metrics.json").read_text())["config"]
    assert config["min_steps"] == 0 and config["flips"] == "none" and not config["refit"]
    err = one_line_error(*run(capsys, *argv, "--min-steps", "-3")[::2])
    assert "min_steps must be >= 0" in err and not (tmp_path / "runs").exists()
