"""``nas auto`` on generated data: refused runs leave nothing behind, a killed run resumes and keeps its
budget, and every stage's output is where the summary says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from medmnist_data import write_npz

from nas import cli
from nas.auto.plan import finalize_size
from nas.auto.state import STATE_FILE

TABLE = "latency_tables/dev-epyc-2core/mnasnet_small-28.json"  # 1 channel, 2 classes
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_npz(tmp_path_factory.mktemp("data") / "xray.npz", sizes=(64, 32, 32))


def refused(capsys, *argv) -> str:
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_refused_runs_leave_nothing(tmp_path, capsys, data):
    out = tmp_path / "run"
    base = ["auto", "--data", data, "--budget", "1", "--out", out, "--table", TABLE]
    assert "not allowed with" in refused(capsys, *base, "--max-latency-ms", "1", "--latency-ratio", "0.1")
    assert "unknown format 'nope'" in refused(capsys, *base, "--format", "nope")
    stray = tmp_path / "stray.npz"
    arrays = dict(np.load(data))
    arrays["train_labels"] = arrays["train_labels"].copy()
    arrays["train_labels"][0] = 7
    np.savez(stray, **arrays)
    assert "label 7 occurs only in train" in refused(capsys, *base[:2], stray, *base[3:])
    assert not out.exists()
    err = refused(capsys, *base, "--max-latency-ms", "0.001")  # no net of the space is that fast
    assert "latency budget 0.001 ms is below the fastest" in err and not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert "not empty and holds no nas auto run" in refused(capsys, *base)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_finalize_fits_the_time_left():
    assert finalize_size(10, 1, 200) == (5, 3)
    assert finalize_size(10, 1, 100) == (3, 3)
    assert finalize_size(10, 1, 45) == (2, 2)
    assert finalize_size(10, 1, 25) == (2, 1)
    assert finalize_size(10, 1, 5) == (1, 1)  # the final model is always trained


def test_the_timing_waves_seeds_are_reused_not_counted_as_time():
    assert finalize_size(600, 2, 20, done=2) == (1, 2)  # no time left: the best on the wave's two seeds
    assert finalize_size(600, 2, 600, done=2) == (2, 2)  # one more wave: the runner-up on two seeds
    assert finalize_size(100, 1, 150, done=2) == (2, 1)  # one new training: the runner-up, one seed each
    assert finalize_size(10, 1, 130, done=2) == (5, 3)  # 13 new and 2 done: 5 candidates x 3 seeds


def test_a_final_training_is_estimated_from_the_slowest_of_the_trials_trained_furthest():
    from datetime import datetime, timedelta

    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from nas.auto.plan import final_training_seconds

    def trial(seconds: float, epochs: int, state=TrialState.PRUNED):
        start = datetime(2026, 1, 1)
        made = create_trial(
            state=state,
            value=0.5 if state == TrialState.COMPLETE else None,
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            intermediate_values={e: 0.5 for e in range(1, epochs + 1)},
        )
        made.datetime_start, made.datetime_complete = start, start + timedelta(seconds=seconds)
        return made

    stopped_early = trial(6.0, 3)  # its start-up weighs on 3 epochs: 2 s an epoch
    furthest = [trial(10.0, 10), trial(15.0, 10)]  # 1 s and 1.5 s an epoch of 100 images
    assert final_training_seconds([stopped_early, *furthest], 100, 2000) == pytest.approx(30.0)
    completed = trial(25.0, 25, TrialState.COMPLETE)  # 1 s an epoch: once one completed, it alone
    assert final_training_seconds([stopped_early, *furthest, completed], 100, 2000) == pytest.approx(20.0)
    rejected = create_trial(state=TrialState.PRUNED)  # never trained: nothing to go by
    assert final_training_seconds([rejected], 100, 2000) == 0.0


def test_final_trainings_are_timed_and_counted_in_waves_side_by_side_as_finalize_runs_them():
    from nas.auto.plan import final_seconds, wave_size

    assert [wave_size(w) for w in (1, 2, 3, 16)] == [1, 2, 3, 3]  # seeds of the best: all kept
    assert [final_seconds(n, 90, workers=2) for n in (0, 1, 2, 3, 4)] == [0, 90, 90, 180, 180]
    assert final_seconds(3, 45, workers=1) == 135
    # two side by side in 90 s: 2 waves fit in 200 s, 4 new trainings + the wave's 2 = 2 x 3 seeds
    assert finalize_size(90, 2, 200, done=2) == (2, 3)
    assert finalize_size(90, 2, 100, done=2) == (2, 2)  # one wave: 2 new, the runner-up's 2 seeds


def test_finalizing_is_planned_for_the_candidates_there_are():
    from nas.auto.plan import most_final_trainings

    assert [most_final_trainings(n) for n in (0, 1, 2, 5, 40)] == [3, 3, 6, 15, 15]


def test_the_final_step_floor_shrinks_with_a_small_budget():
    from nas.auto.plan import final_min_steps, final_steps
    from nas.evaluate.recipe import MIN_STEPS

    assert final_min_steps(60) == final_min_steps(30) == MIN_STEPS and final_min_steps(2) == MIN_STEPS // 15
    assert final_steps(1080, MIN_STEPS) == MIN_STEPS  # RetinaMNIST: 15 passes would be 255 steps
    assert final_steps(100_000, MIN_STEPS) == 15 * (100_000 // 64 + 1)  # a large set: its 15 passes


def test_a_step_floor_is_fitted_to_a_share_of_its_time_down_to_the_recipes_passes():
    from nas.auto.plan import fitted_floor

    assert fitted_floor(1080, 1500, 0.5) == 750
    assert fitted_floor(1080, 1500, 0.01) == 255  # 15 passes of 17 steps: the floor stops counting
    assert fitted_floor(1080, 1500, 2.0) == 1500  # never raised
    assert fitted_floor(64, 100, 0.0) == 15


def ten_minute_run(tmp_path, monkeypatch, data):
    """A 10-minute ``nas auto`` run's state, experiment and data profile, its clock standing still at 0."""
    from nas.auto.plan import experiment
    from nas.auto.profile import load_profile
    from nas.auto.state import AutoState
    from nas.search.config import load_experiment

    profile = load_profile(str(data), None)
    out = tmp_path / "run"
    state = AutoState.create(out, {"budget_minutes": 10.0})
    state.set("search_until_s", 300.0)
    (out / "experiment.yaml").write_text(
        yaml.safe_dump(experiment(profile, str(data), "mnasnet_small", Path(TABLE), "auc", 0.5, 300, 10, out))
    )
    config = load_experiment(str(out / "experiment.yaml"))
    assert config.finalize.min_steps == 500  # a third of the final recipe's 1,500 steps at 10 minutes
    monkeypatch.setattr(state, "spent", lambda: 0.0)
    return state, config, profile


def test_the_search_ends_where_the_first_final_trainings_fit_and_their_floor_is_lowered_if_they_do_not(
    tmp_path, monkeypatch, data
):
    from nas.auto import run

    state, config, profile = ten_minute_run(tmp_path, monkeypatch, data)
    out = tmp_path / "run"
    said: list[str] = []

    def fit(estimate: float):
        monkeypatch.setattr(run, "_final_estimate", lambda *args: estimate)
        return run._fit_final_wave(state, config, profile, said.append)

    assert fit(120.0) is config and state.data["search_until_s"] == 300  # 600 s - 90 s finish - 120 s
    assert state.data["final_estimate_s"] == 120 and not said
    assert fit(400.0) is config and state.data["search_until_s"] == 110
    assert said == ["search: its share shortened to leave 400 s for the first final trainings"]
    fitted = fit(2040.0)  # 4x what is left: a quarter of the steps
    assert fitted.finalize.min_steps == 125 and "min_steps: 125" in (out / "experiment.yaml").read_text()
    assert state.data["search_until_s"] == 0 and state.data["final_estimate_s"] == 510  # ends now
    assert said[-2:] == [
        "finalize: the final recipe's floor lowered from 500 to 125 steps to fit",
        "search: its share shortened to leave 510 s for the first final trainings",
    ]


def test_the_floor_is_checked_again_against_the_best_candidates_own_trials_before_it_trains(
    tmp_path, monkeypatch, data
):
    from datetime import datetime, timedelta

    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from nas.auto import plan, run
    from nas.search import run as search_run

    state, config, profile = ten_minute_run(tmp_path, monkeypatch, data)
    final_images = plan.final_steps(profile.train, 500) * plan.BATCH

    def trial(arch: str, estimate: float, **attrs):
        """A completed 10-epoch trial of ``arch`` timed so that a final training lasts ``estimate`` s."""
        start = datetime(2026, 1, 1)
        made = create_trial(
            state=TrialState.COMPLETE,
            value=0.5,
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            user_attrs={"arch": arch, **attrs},
            intermediate_values={e: 0.5 for e in range(1, 11)},
        )
        seconds = estimate / final_images * 10 * plan.epoch_images(profile)
        made.datetime_start, made.datetime_complete = start, start + timedelta(seconds=seconds)
        return made

    # the best net's own training: 4x the 510 s left; another net's (slower) and its cached copy do not count
    trials = [trial("best", 2040.0), trial("other", 9000.0), trial("best", 1.0, cached_from=0)]
    monkeypatch.setattr(search_run, "open_storage", lambda url: None)
    monkeypatch.setattr(
        search_run, "open_study", lambda *args: type("S", (), {"get_trials": lambda s, **k: trials})()
    )
    found = [{"arch": "best"}, {"arch": "other"}]
    said: list[str] = []
    fitted = run._fit_best(state, config, profile, found, said.append)
    assert fitted.finalize.min_steps == 125
    assert said == ["finalize: the final recipe's floor lowered from 500 to 125 steps to fit"]
    trials[0] = trial("best", 100.0)  # fits: nothing changes
    assert run._fit_best(state, fitted, profile, found, said.append) is fitted and len(said) == 1
    assert run._fit_best(state, fitted, profile, [], said.append) is fitted  # nothing to finalize yet


def test_the_reference_estimate_is_its_time_per_image_times_the_recipes_images(monkeypatch):
    from nas.arch import ArchSpec
    from nas.auto import reference
    from nas.zoo import resolve_arch

    tiny = ArchSpec.from_str("conv_k3_s2_c8:ir_k3_e2_c16:head")
    per_image = reference.seconds_per_image(tiny, 1, 28, 2, batch=16)
    assert 0 < per_image < reference.seconds_per_image(resolve_arch("resnet18_medmnist"), 1, 28, 2, batch=16)
    monkeypatch.setattr(reference, "seconds_per_image", lambda *args: 0.01)
    seconds = reference.estimate_training_seconds(tiny, 1, 28, 2, steps=33, batch=64)
    assert seconds == pytest.approx(0.01 * 33 * 64 * reference.EVAL_OVERHEAD)


def test_a_killed_run_resumes_within_its_budget(tmp_path, capsys, data):
    out, budget = tmp_path / "run", 2.0
    argv = ["auto", "--data", str(data), "--budget", str(budget), "--out", str(out), "--table", TABLE]
    argv += ["--max-latency-ms", "0.5"]
    command = [
        sys.executable,
        "-c",
        "import sys; from nas.cli import main; sys.exit(main(sys.argv[1:]))",
        *argv,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "search" / "study.db").exists() and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        time.sleep(8)  # a few trials in
        assert process.poll() is None
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    state = json.loads((out / STATE_FILE).read_text())
    assert "search" not in state["stages"] and state["elapsed_s"] > 0

    assert "add --resume" in refused(capsys, *argv)
    assert "other max_latency_ms" in refused(capsys, *argv[:-1], "0.4", "--resume")
    assert cli.main([*argv, "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    state = json.loads((out / STATE_FILE).read_text())
    stages = {"table", "budget", "reference_plan", "search", "finalize", "export", "measure"}
    assert set(state["stages"]) >= stages
    assert state["final_estimate_s"] > 0  # taken a third of the way through the search's share
    assert summary["budget"]["spent_minutes"] <= 1.1 * budget
    model = summary["model"]
    assert 0 <= model["test"]["auc"] <= 1 and model["params"] > 0
    assert summary["latency"]["model_ms"] > 0 and summary["latency"]["ratio"] < 1
    assert summary["latency_budget_ms"] == 0.5
    reference = summary["reference"]
    assert reference["estimate_s"] > 0 and reference["trained"] == (reference["test"] is not None)
    for key in ("experiment", "search", "model", "model_card"):
        assert Path(summary["files"][key]).exists()
    assert (out / "model" / "model.onnx").is_file()
    experiment = (out / "experiment.yaml").read_text()
    assert "protocol: kfold" in experiment and f"table: {TABLE}" in experiment
    assert "recipe: final" in experiment
    floor = yaml.safe_load(experiment)["finalize"]["min_steps"]  # a 2-minute run's, or lowered to fit
    assert 15 <= floor <= 100
    assert "nas auto" in capsys.readouterr().out  # the summary table


def test_objectives_map_to_a_validation_metric_and_its_settings():
    from nas.auto.plan import objective_settings
    from nas.errors import UsageError

    assert objective_settings("balanced_accuracy") == (
        "val_balanced_accuracy",
        {"select_metric": "balanced_accuracy"},
    )
    assert objective_settings("auc") == ("val_auc", {})
    metric, settings = objective_settings("sensitivity@spec=0.9", "binary")
    assert metric == "val_sensitivity"
    assert settings == {"threshold_method": "specificity", "target_specificity": 0.9}
    with pytest.raises(UsageError, match="needs a binary task; this data is multi-class"):
        objective_settings("sensitivity@spec=0.9", "multi-class")
    for bad in ("f1", "sensitivity@spec=1.5", "sensitivity@spec=0"):
        with pytest.raises(UsageError, match="--objective must be one of"):
            objective_settings(bad)


def test_the_search_maximizes_the_objective_within_the_budget(tmp_path):
    """Reward mode, the reward the objective itself under the budget (MnasNet's hard constraint), so
    finalize ranks every feasible candidate by validation, not only a front's fast corner; an experiment
    an earlier version wrote in pareto mode still names the metric its model is chosen by."""
    from nas.auto.plan import experiment
    from nas.auto.profile import DataProfile
    from nas.auto.run import objective_metric
    from nas.search.config import experiment_from
    from nas.search.reward import reward

    profile = DataProfile("scans", "binary", "image", 1, 28, 2, ("0", "1"), 600, 200, 200, (300, 300))
    data = experiment(
        profile, "scans.npz", "mnasnet_small", Path(TABLE), "balanced_accuracy", 0.25, 60, 30, tmp_path
    )
    config = experiment_from(data, source="test")
    assert config.mode == "reward" and config.constraints[0].max == 0.25
    assert objective_metric(config) == "val_balanced_accuracy"
    for ms in (0.05, 0.25):  # a faster net gains nothing within the budget
        assert reward({"val_balanced_accuracy": 0.8, "latency_ms": ms}, config.reward) == 0.8
    older = data | {"mode": "pareto", "reward": None}
    older["objectives"] = [{"metric": "val_auc"}, {"metric": "latency_ms", "direction": "minimize"}]
    assert objective_metric(experiment_from(older, source="test")) == "val_auc"


def test_an_image_folder_is_read_at_the_tables_size_and_a_clashing_size_is_refused(tmp_path, capsys):
    from test_folder import write_folder

    root = tmp_path / "scans"
    write_folder(root, counts=(30, 30), size=40)
    out = tmp_path / "run"
    base = ["auto", "--data", root, "--budget", "1", "--out", out, "--table", TABLE]
    assert "--input-size 32 differs from the table's 28" in refused(capsys, *base, "--input-size", "32")
    assert cli.main([str(a) for a in [*base, "--max-latency-ms", "0.001"]]) == 2  # read, then refused
    said, err = capsys.readouterr()
    assert "data: scans: binary, 2 classes, 1x28x28" in said
    assert "latency budget 0.001 ms" in err and not out.exists()


def test_a_budget_that_too_few_nets_meet_is_refused_saying_what_would_do():
    from nas.auto.run import _check_feasible
    from nas.errors import UsageError

    predicted = [0.01 * i for i in range(1, 201)]  # 200 nets, 0.01-2.00 ms
    _check_feasible(predicted, 0.04, "s")  # 4 of 200: 2 %, enough
    with pytest.raises(UsageError, match=r"0\.030 ms admits 3 of 200 random nets of s \(1\.5%\).*0\.210 ms"):
        _check_feasible(predicted, 0.03, "s")
    with pytest.raises(UsageError, match="below the fastest of 200 nets of s"):
        _check_feasible(predicted, 0.005, "s")
