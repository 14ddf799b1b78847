"""Multi-fidelity (``nas.search.rungs``): the rung schedule, promotion by non-dominated rank in pareto
mode, tuned Optuna pruners in reward mode, rung counts in the report, and a SIGKILL mid-rung."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from nas.errors import ConfigError
from nas.search.config import experiment_from
from nas.search.objective import CandidateObjective
from nas.search.pareto import promotion_order
from nas.search.report import write_report
from nas.search.run import run_search
from nas.search.rungs import RUNG_ATTR, ParetoPromotion, make_pruner, rung_steps, schedule
from nas.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]
retried_trial_number = optuna.storages.RetryFailedTrialCallback.retried_trial_number
pytestmark = pytest.mark.filterwarnings(
    "ignore::optuna.exceptions.ExperimentalWarning", "ignore:Heartbeat of storage:UserWarning"
)
PARETO = {
    "name": "rungs",
    "space": "mnasnet_small",
    "dataset": {"name": "synthetic"},
    "mode": "pareto",
    "objectives": [{"metric": "val_auc"}, {"metric": "params"}],
    "strategy": {"name": "random"},
    "training": {"epochs": 9},
    "pruner": {"name": "successive_halving", "min_epochs": 1, "startup_trials": 3},
    "seed": 0,
    "workers": 1,  # one process (the default is one per core)
}


def config(tmp_path: Path, **keys):
    return experiment_from(PARETO | {"out": str(tmp_path / "run")} | keys)


# ---- the schedule ------------------------------------------------------------------------------


def test_rungs_grow_by_the_reduction_factor_and_stop_short_of_the_last_step():
    assert rung_steps(epochs=9, runs=1, min_epochs=1, eta=3) == [1, 3]  # 9 is the end, not a rung
    assert rung_steps(epochs=5, runs=1, min_epochs=3, eta=3) == [3]
    assert rung_steps(epochs=5, runs=1, min_epochs=5, eta=3) == []
    # kfold: steps past the first training are whole trainings (10 = two folds done)
    assert rung_steps(epochs=5, runs=5, min_epochs=3, eta=3) == [3, 10]
    assert rung_steps(epochs=2, runs=5, min_epochs=1, eta=2) == [1, 2, 4, 8]


def test_no_candidate_is_judged_before_half_its_epochs_by_default(tmp_path):
    c = config(tmp_path, training={"epochs": 5}, pruner={"name": "successive_halving"})
    assert c.min_epochs() == 3 and schedule(c) == ([3], 5)
    c = config(
        tmp_path,
        training={"epochs": 5},
        pruner={"name": "successive_halving"},
        evaluation={"protocol": "kfold", "folds": 3},
    )
    assert schedule(c) == ([3, 10], 15)


def test_pruner_defaults_follow_the_mode_and_median_needs_one_objective(tmp_path):
    assert config(tmp_path, pruner={}).pruner.name == "none"
    reward = experiment_from({"name": "r", "space": "mnasnet_small", "out": str(tmp_path)})
    assert reward.pruner.name == "median"
    with pytest.raises(ConfigError, match=r"pruner\.name': median compares one value"):
        config(tmp_path, pruner={"name": "median"})
    with pytest.raises(ConfigError, match="nsga2 makes each generation of completed trials only"):
        config(tmp_path, strategy={"name": "nsga2"})
    assert config(tmp_path, strategy={"name": "nsga2"}, pruner={"name": "none"}).strategy.name == "nsga2"


def test_reward_mode_pruners_wait_for_min_epochs_and_startup_trials(tmp_path):
    keys = {"name": "r", "space": "mnasnet_small", "out": str(tmp_path), "training": {"epochs": 6}}
    median = make_pruner(experiment_from(keys | {"pruner": {"name": "median"}}))
    assert isinstance(median, optuna.pruners.MedianPruner)
    study = optuna.create_study(direction="maximize", pruner=median)
    for _ in range(6):  # six trials, far apart at every step
        study.enqueue_trial({})
    values = [0.9, 0.9, 0.9, 0.9, 0.9, 0.1]
    pruned_at = []
    for value in values:
        trial = study.ask()
        for step in range(1, 7):
            trial.report(value, step)
            if trial.should_prune():
                pruned_at.append(step)
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, value)
    assert pruned_at == [3]  # the hopeless sixth trial, at step 3 (half of 6 epochs), not at step 1

    halving = make_pruner(experiment_from(keys | {"pruner": {"name": "successive_halving"}}))
    assert isinstance(halving, optuna.pruners.SuccessiveHalvingPruner)
    hyperband = make_pruner(experiment_from(keys | {"pruner": {"name": "hyperband", "min_epochs": 2}}))
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert hyperband._min_resource == 2 and hyperband._max_resource == 6


# ---- promotion by non-dominated rank -----------------------------------------------------------


def test_promotion_order_ranks_fronts_then_crowding():
    points = [(1, 5), (2, 2), (5, 1), (3, 3), (4, 4), (2.1, 2.1)]  # costs, lower is better
    order = promotion_order(points)
    assert set(order[:3]) == {0, 1, 2}  # the first front, its two ends first
    assert order[:2] in ([0, 2], [2, 0]) and order[2] == 1
    assert order[3:] == [5, 3, 4]  # then the second front (5), the third (3), the fourth (4)


def judged(study, promotion, point, step=1):
    trial = study.ask()
    verdict = promotion.judge(trial, step, point)
    study.tell(trial, state=TrialState.PRUNED) if verdict else study.tell(trial, [1.0, 1.0])
    return verdict


def test_promotion_keeps_the_non_dominated_and_stops_the_dominated(tmp_path):
    promotion = ParetoPromotion.from_config(config(tmp_path))
    assert promotion.rungs == (1, 3) and promotion.eta == 3 and promotion.startup == 3
    study = optuna.create_study(directions=["maximize", "minimize"])
    # the first two go on: fewer than startup_trials have reached the rung
    assert judged(study, promotion, {"val_auc": 0.6, "params": 9e4}) is None
    assert judged(study, promotion, {"val_auc": 0.9, "params": 5e4}) is None
    # dominated by the second (the second front of three points): only the best one of three goes on
    verdict = judged(study, promotion, {"val_auc": 0.8, "params": 6e4})
    assert verdict == "not promoted at step 1: placed 2 of 3, the best 1 go on"
    # a new non-dominated point (fastest) goes on: a front end, ranked first
    assert judged(study, promotion, {"val_auc": 0.7, "params": 1e4}) is None
    # steps that are not rungs are neither recorded nor judged
    trial = study.ask()
    assert promotion.judge(trial, 2, {"val_auc": 0.1, "params": 9e9}) is None
    assert RUNG_ATTR not in trial.user_attrs
    # every judged trial carries its rung point, in the storage
    recorded = [t.user_attrs[RUNG_ATTR]["1"]["val_auc"] for t in study.trials if RUNG_ATTR in t.user_attrs]
    assert recorded == [0.6, 0.9, 0.8, 0.7]


def test_hyperband_brackets_skip_rungs_and_compare_within_their_bracket(tmp_path):
    promotion = ParetoPromotion.from_config(
        config(tmp_path, pruner={"name": "hyperband", "min_epochs": 1, "startup_trials": 3})
    )
    assert promotion.brackets == 3 and promotion.rungs == (1, 3)
    study = optuna.create_study(directions=["maximize", "minimize"])
    verdicts = [judged(study, promotion, {"val_auc": 1.0 - 0.1 * k, "params": 9e4}) for k in range(9)]
    # trial k is in bracket k % 3; bracket 0 judges at step 1 (its third trial, 6, is dominated);
    # brackets 1 and 2 start at later rungs and are never judged at step 1
    assert [v is not None for v in verdicts] == [False] * 6 + [True, False, False]


# ---- a whole pareto search ---------------------------------------------------------------------


class EpochScript:
    """A fake trainer: reports every epoch, with an AUC the arch fixes (so ranks are stable)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def __call__(self, arch, report) -> dict[str, float]:
        auc = 0.5 + (zlib.crc32(arch.to_str().encode()) % 1000) / 2000
        for epoch in range(1, self.epochs + 1):
            report(epoch, {"val_auc": auc * epoch / self.epochs})
        return {"val_auc": auc}


def scripted(c):
    return CandidateObjective(c, SearchSpace.from_yaml(c.space), 1, 2, None, EpochScript(9))


def test_pareto_search_promotes_by_rung_and_reports_how_many_reached_each(tmp_path):
    c = config(tmp_path, trials=12)
    study = run_search(c, scripted)
    trials = study.get_trials(deepcopy=False)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete and len(pruned) + len(complete) == 12
    for t in pruned:  # stopped at a rung, with the metrics it was stopped with
        stopped_at = max(int(s) for s in t.user_attrs[RUNG_ATTR])
        assert t.user_attrs["metrics"]["val_auc"] == t.user_attrs[RUNG_ATTR][str(stopped_at)]["val_auc"]
    for t in complete:
        assert set(t.user_attrs[RUNG_ATTR]) == {"1", "3"}

    summary = write_report(study, c, Path(c.out))
    assert summary.rungs["1"] == 12 and summary.rungs["9"] == len(complete)
    assert summary.rungs["1"] >= summary.rungs["3"] >= summary.rungs["9"]
    rows = {r.number: r for r in summary.trials}
    assert all(rows[t.number].reached < 9 for t in pruned)
    assert all(rows[t.number].reached == 9 for t in complete)
    assert json.loads((Path(c.out) / "summary.json").read_text())["rungs"] == summary.rungs


# ---- SIGKILL in the middle of a rung, then resume ---------------------------------------------

KILLED = PARETO | {
    "name": "killed-rungs",
    "input_size": 28,
    "training": {"epochs": 3, "max_train_samples": 768, "batch_size": 64, "threads": 1},
    "pruner": {"name": "successive_halving", "min_epochs": 1, "startup_trials": 3},
}  # trials 0 and 1 are always promoted (fewer than 3 at the rung): the kill lands in trial 1's epoch 2 or 3


def test_sigkill_mid_search_loses_no_rung_record(tmp_path):
    out, path = tmp_path / "run", tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(KILLED | {"out": str(out)}))
    command = [sys.executable, "-m", "nas.cli", "search", str(path), "--trials", "6"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"sqlite:///{out / 'study.db'}"
    deadline, killed = time.monotonic() + 180, None
    try:
        while time.monotonic() < deadline and process.poll() is None and killed is None:
            time.sleep(0.05)
            try:
                trials = optuna.load_study(study_name="killed-rungs", storage=url).get_trials(deepcopy=False)
            except Exception:  # the storage is not there yet
                continue
            finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
            running = [t for t in trials if t.state == TrialState.RUNNING and RUNG_ATTR in t.user_attrs]
            if finished and running:
                os.kill(process.pid, signal.SIGKILL)
                killed = running[0].number
    finally:
        if process.poll() is None and killed is None:
            process.kill()
        process.wait()
    assert killed is not None, process.stderr.read().decode()[-2000:]

    def records(study):
        return {t.number: (t.state, t.user_attrs.get(RUNG_ATTR)) for t in study.get_trials(deepcopy=False)}

    before = records(optuna.load_study(study_name="killed-rungs", storage=url))
    assert before[killed][0] == TrialState.RUNNING and "1" in before[killed][1]  # killed past a rung
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    study = optuna.load_study(study_name="killed-rungs", storage=url)
    after = records(study)
    finished_before = {n: r for n, r in before.items() if r[0] in (TrialState.COMPLETE, TrialState.PRUNED)}
    assert {n: after[n] for n in finished_before} == finished_before  # nothing finished was lost
    retries = [t for t in study.get_trials(deepcopy=False) if retried_trial_number(t) == killed]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert "1" in retry.user_attrs[RUNG_ATTR]  # its own rung record, trained again
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rungs"]["1"] == 6  # every finished candidate reached the first rung; the killed one
    assert sum(summary["counts"].get(s, 0) for s in ("COMPLETE", "PRUNED")) == 6  # is counted once
