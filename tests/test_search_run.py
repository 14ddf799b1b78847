"""Running and resuming searches on a real storage: resume to a larger budget, SIGKILL mid-trial and
resume, two workers on SQLite (and PostgreSQL where CI provides one), failing and rejected candidates."""

from __future__ import annotations

import csv
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from nas.arch import ArchSpec
from nas.search import run as run_module
from nas.search.config import ExperimentConfig
from nas.search.factory import default_objective
from nas.search.objective import CandidateFailed, CandidateObjective
from nas.search.report import retried_as, write_report
from nas.search.run import (
    FINISHED,
    fail_dead_local_trials,
    open_storage,
    open_study,
    run_search,
    storage_url,
)
from nas.search.rungs import make_pruner
from nas.search.summary import shown_state
from nas.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
CHEAP_REWARD = {"type": "weighted_sum", "weights": {"params": -1.0e-6}}


@pytest.fixture(autouse=True)
def single_thread(monkeypatch):
    """One torch thread here and in every process the tests start (they inherit the environment)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    torch.set_num_threads(threads)


def experiment(tmp_path: Path, **keys) -> ExperimentConfig:
    data = {
        "name": "run-test",
        "space": "mnasnet_small",
        "reward": CHEAP_REWARD,
        "strategy": {"name": "evolution", "population": 4, "sample_size": 2},
        "trials": 6,
        "out": str(tmp_path / "run"),
        "seed": 0,
        "workers": 1,  # one process unless a test asks for more (the default is one per core)
    }
    return ExperimentConfig.model_validate(data | keys)


def check_study(study: optuna.Study, finished: int) -> list[optuna.trial.FrozenTrial]:
    """Exactly ``finished`` finished trials, unique numbers, nothing left running, and no arch
    evaluated twice: a repeat is a copy of its twin's metrics (``cached_from``)."""
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) and sorted(numbers) == list(range(len(numbers)))
    done = [t for t in trials if t.state in FINISHED]
    assert len(done) == finished, Counter(t.state.name for t in trials)
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    evaluated = Counter(t.user_attrs["arch"] for t in done if "cached_from" not in t.user_attrs)
    assert evaluated and max(evaluated.values()) == 1, evaluated.most_common(2)
    by_number = {t.number: t for t in trials}
    for t in done:
        if "cached_from" in t.user_attrs:
            twin = by_number[t.user_attrs["cached_from"]]
            assert twin.state == TrialState.COMPLETE and twin.number < t.number
            assert twin.user_attrs["arch"] == t.user_attrs["arch"]
            assert twin.user_attrs["metrics"] == t.user_attrs["metrics"]
    return done


def snapshot(trials) -> dict[int, tuple]:
    return {t.number: (t.state, t.values, t.user_attrs.get("arch"), t.params) for t in trials}


# ---- (a) resume to a larger budget -----------------------------------------------------------


def test_rerun_with_more_trials_finishes_the_remainder(tmp_path):
    config = experiment(tmp_path, trials=4)
    study = run_search(config, default_objective)
    first = snapshot(check_study(study, 4))
    assert storage_url(config) == f"sqlite:///{(tmp_path / 'run' / 'study.db').resolve()}"

    study = run_search(config.model_copy(update={"trials": 7}), default_objective)
    done = check_study(study, 7)
    assert {n: v for n, v in snapshot(done).items() if n in first} == first
    assert len(study.trials) == 7
    # the same total again: nothing to do
    study = run_search(config.model_copy(update={"trials": 7}), default_objective)
    assert len(study.trials) == 7


# ---- (c) two workers on SQLite, (d) on PostgreSQL ---------------------------------------------


class SlowObjective(CandidateObjective):
    """The cheap objective, made to last: trials overlap across workers. Every worker waits for the
    others to be up (files in the run directory), so all of them take part."""

    def evaluate(self, trial, arch):
        out = Path(self.config.out)
        deadline = time.monotonic() + 60
        while len(list(out.glob("up-*"))) < self.config.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(random.uniform(0.1, 0.3))
        return super().evaluate(trial, arch)


def slow_objective(config: ExperimentConfig) -> CandidateObjective:
    """Module-level, so spawned workers can rebuild it."""
    base = default_objective(config)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    (Path(config.out) / f"up-{os.getpid()}").touch()
    return SlowObjective(base.config, base.space, base.in_chans, base.num_classes, base.table)


def two_workers(config: ExperimentConfig) -> None:
    study = run_search(config, slow_objective)
    done = check_study(study, config.trials)
    workers = Counter(t.user_attrs["worker"] for t in done)
    assert len(workers) == 2, workers  # both processes ran trials
    # a worker that started the last trial together with another stands down (never evaluated); a
    # trial failed as stale (a worker starved of CPU past the heartbeat's grace) was re-queued
    requeued = {t.system_attrs.get("failed_trial") for t in study.trials}
    failed = [t for t in study.trials if t.state == TrialState.FAIL and t.number not in requeued]
    assert all(t.user_attrs["fail_reason"].startswith("surplus") for t in failed)
    assert all("arch" not in t.user_attrs for t in failed)


def test_two_workers_on_sqlite(tmp_path):
    two_workers(experiment(tmp_path, trials=10, workers=2, strategy={"name": "random"}))


@pytest.mark.extra("postgres")
def test_two_workers_on_postgresql(tmp_path):
    url = os.environ.get("NAS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("NAS_TEST_POSTGRES_URL is not set (CI's .ci/run starts a PostgreSQL and sets it)")
    name = f"nas-test-{uuid.uuid4().hex[:8]}"
    config = experiment(tmp_path, name=name, trials=10, workers=2, storage=url, strategy={"name": "tpe"})
    try:
        two_workers(config)
    finally:
        optuna.delete_study(study_name=name, storage=url)


def trials_csv_row(run: Path, number: int) -> dict[str, str]:
    with (run / "trials.csv").open() as f:
        return next(r for r in csv.DictReader(f) if r["number"] == str(number))


class StarvedObjective(CandidateObjective):
    """Trial 1's worker stops sending heartbeats (a suspended or starved process) long enough for
    another worker's ``fail_stale_trials`` to fail it and re-queue its candidate, then finishes it."""

    def evaluate(self, trial, arch):
        if trial.number == 1:
            other = optuna.load_study(
                study_name=self.config.name, storage=open_storage(storage_url(self.config))
            )
            # SQLite's clock has whole seconds, so a heartbeat 1.5 s old can read as 1 s: not yet
            # past a 1 s grace. Poll, as another worker would, until this trial is failed.
            deadline = time.monotonic() + 15
            while other.trials[1].state == TrialState.RUNNING and time.monotonic() < deadline:
                time.sleep(0.5)
                optuna.storages.fail_stale_trials(other)
            assert other.trials[1].state == TrialState.FAIL
        return super().evaluate(trial, arch)


def test_a_worker_whose_trial_another_failed_as_stale_goes_on(tmp_path, monkeypatch, caplog):
    """Optuna's ``optimize`` raises when it tells a trial another worker has failed; the worker drops
    that result, says so, and the study still ends with its trials, the re-queued candidate among them."""
    monkeypatch.setattr(run_module, "HEARTBEAT_S", 60)  # one heartbeat as the trial starts, no more
    monkeypatch.setattr(run_module, "GRACE_S", 1)
    config = experiment(tmp_path, trials=4, strategy={"name": "random"})

    def starved(config: ExperimentConfig) -> CandidateObjective:
        base = default_objective(config)
        return StarvedObjective(base.config, base.space, base.in_chans, base.num_classes, base.table)

    study = run_search(config, starved)
    done = check_study(study, 4)
    taken = study.trials[1]
    assert taken.state == TrialState.FAIL and "metrics" not in taken.user_attrs
    retried = [t for t in done if t.system_attrs.get("failed_trial") == taken.number]
    assert len(retried) == 1 and retried[0].params == taken.params
    assert "trial 1 was failed by another worker" in caplog.text
    # the storage refuses a reason on a trial another worker failed: the report gives it one
    write_report(study, config, Path(config.out))
    row = trials_csv_row(Path(config.out), 1)
    assert row["state"] == "FAIL"
    assert row["fail_reason"].endswith(f"re-queued as trial {retried[0].number}")


def test_a_worker_that_starts_the_last_trial_second_stands_down(tmp_path):
    """Two workers can both see one trial missing and start it; the later-numbered one is not run."""
    config = experiment(tmp_path, trials=3, strategy={"name": "random"})
    other: dict = {}

    def other_worker_starts_the_last_trial(study, trial) -> None:
        if trial.number == 1:  # after this worker's check that one more is needed
            other["study"] = optuna.load_study(study_name=config.name, storage=storage_url(config))
            other["trial"] = other["study"].ask()

    study = run_search(config, default_objective, callbacks=[other_worker_starts_the_last_trial])
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING, TrialState.FAIL]
    surplus = study.trials[3]
    assert surplus.user_attrs["fail_reason"].startswith("surplus") and "arch" not in surplus.user_attrs
    assert shown_state(surplus.user_attrs, surplus.state.name) == "SURPLUS"  # not a failed candidate
    other["study"].tell(other["trial"], -1.0)
    assert len(study.get_trials(states=FINISHED)) == 3


# ---- (b) SIGKILL mid-trial, then resume -------------------------------------------------------

# Each trial trains briefly (about half a second), so the kill lands inside one.
KILL_EXPERIMENT = {
    "name": "killed",
    "space": "mnasnet_small",
    "dataset": {"name": "synthetic"},
    "input_size": 28,
    "training": {"epochs": 1, "max_train_samples": 256, "batch_size": 64, "threads": 1},
    "reward": {"type": "weighted_sum", "weights": {"val_auc": 1.0, "params": -1.0e-7}},
    "pruner": {"name": "none"},
    "strategy": {"name": "evolution", "population": 3, "sample_size": 2},
    "seed": 0,
}


def db_state(db: Path) -> tuple[int, int | None]:
    """(finished trials, number of a RUNNING trial that has its arch), read without Optuna."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
        rows = connection.execute(
            "SELECT t.number, t.state, EXISTS(SELECT 1 FROM trial_user_attributes a "
            "WHERE a.trial_id = t.trial_id AND a.key = 'arch') FROM trials t"
        ).fetchall()
    finished = sum(state in ("COMPLETE", "PRUNED") for _, state, _ in rows)
    running = [number for number, state, has_arch in rows if state == "RUNNING" and has_arch]
    return finished, running[0] if running else None


def test_sigkill_mid_trial_then_resume_loses_and_duplicates_nothing(tmp_path):
    trials = 5
    out = tmp_path / "run"
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(KILL_EXPERIMENT | {"out": str(out)}))
    command = [sys.executable, "-m", "nas.cli", "search", str(path), "--trials", str(trials)]
    db = out / "study.db"

    log = tmp_path / "first-run.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline, killed = time.monotonic() + 120, None
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                finished, running = db_state(db) if db.exists() else (0, None)
            except sqlite3.OperationalError:  # tables not there yet, or locked for a moment
                finished, running = 0, None
            if finished >= 3 and running is not None:
                os.kill(process.pid, signal.SIGKILL)
                killed = running
                break
            time.sleep(0.02)
    finally:
        if process.poll() is None and killed is None:
            process.kill()
        process.wait()
    assert killed is not None, log.read_text()[-2000:]
    assert process.returncode == -signal.SIGKILL

    url = f"sqlite:///{db}"
    before = optuna.load_study(study_name="killed", storage=url).get_trials(deepcopy=True)
    assert [t.state for t in before if t.number == killed] == [TrialState.RUNNING]
    finished_before = snapshot(t for t in before if t.state in FINISHED)
    assert len(finished_before) >= 3
    killed_params = next(t.params for t in before if t.number == killed)

    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]

    study = optuna.load_study(study_name="killed", storage=url)
    after = study.get_trials(deepcopy=False)
    done = check_study(study, trials)
    assert {n: v for n, v in snapshot(done).items() if n in finished_before} == finished_before
    assert next(t for t in after if t.number == killed).state == TrialState.FAIL
    retries = [t for t in after if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed]
    assert len(retries) == 1 and retries[0].state in FINISHED
    assert retries[0].params == killed_params  # the killed candidate itself was re-queued
    assert retries[0].user_attrs["worker"].rpartition(":")[2] != str(process.pid)  # run by the rerun
    assert (out / "summary.json").exists()
    row = trials_csv_row(out, killed)
    assert row["fail_reason"].endswith(f"re-queued as trial {retries[0].number}")


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # ask() outside optimize()
def test_dead_local_workers_trials_are_failed_and_requeued_at_once(tmp_path):
    config = experiment(tmp_path)
    Path(config.out).mkdir(parents=True)
    study = open_study(config, open_storage(storage_url(config)))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    owners = {
        "dead": f"{socket.gethostname()}:{int(dead.stdout)}",
        "alive": f"{socket.gethostname()}:{os.getpid()}",
        "remote": f"another-host:{int(dead.stdout)}",  # left to the heartbeat's grace period
    }
    running = {}
    for owner, worker in owners.items():
        trial = study.ask()
        trial.suggest_categorical("s1.op", ["ir_e3", "ir_e6", "ds"])
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("arch", owner)
        running[owner] = trial.number

    assert fail_dead_local_trials(study) == 1
    trials = {t.number: t for t in study.get_trials()}
    assert trials[running["dead"]].state == TrialState.FAIL
    assert trials[running["alive"]].state == trials[running["remote"]].state == TrialState.RUNNING
    (retry,) = [t for t in trials.values() if t.state == TrialState.WAITING]
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == running["dead"]
    assert retry.params == trials[running["dead"]].params
    # the re-queued copy must not carry the dead worker's id, or a worker starting it would be failed
    assert "worker" not in retry.user_attrs
    assert retried_as(list(trials.values())) == {running["dead"]: retry.number}  # what reports name
    assert fail_dead_local_trials(study) == 0


def test_a_trial_names_its_worker_before_it_samples(tmp_path):
    """So a worker killed while the sampler runs leaves a trial that a restart recognizes as dead."""
    seen = []

    class Spy(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, name, distribution):
            seen.append(trial.user_attrs.get("worker"))
            return super().sample_independent(study, trial, name, distribution)

    config = experiment(tmp_path)
    objective = CandidateObjective(config, SearchSpace.from_yaml("mnasnet_small"), 1, 2)
    study = optuna.create_study(direction="maximize", sampler=Spy(seed=0))
    study.optimize(objective, n_trials=1)
    assert len(seen) == len(objective.space.params)
    assert set(seen) == {f"{socket.gethostname()}:{os.getpid()}"}


# ---- (e) failing candidates, (f) rejected before training -------------------------------------


class ScriptedEvaluator:
    """A fake accuracy evaluator: counts calls, fails on the calls it is told to."""

    def __init__(self, fail_calls=()) -> None:
        self.calls: list[str] = []
        self.fail_calls = set(fail_calls)

    def __call__(self, arch: ArchSpec, report) -> dict[str, float]:
        self.calls.append(arch.to_str())
        if len(self.calls) in self.fail_calls:
            raise CandidateFailed("loss is NaN at epoch 1")
        report(1, {"val_auc": 0.7})
        return {"val_auc": 0.7 + 1e-7 * len(self.calls)}


TRAINED_REWARD = {"type": "weighted_sum", "weights": {"val_auc": 1.0, "params": -1.0e-7}}


def trained_objective(tmp_path: Path, evaluator, **keys) -> CandidateObjective:
    config = experiment(tmp_path, reward=TRAINED_REWARD, strategy={"name": "random"}, **keys)
    return CandidateObjective(config, SearchSpace.from_yaml("mnasnet_small"), 1, 2, None, evaluator)


def test_failing_candidate_fails_its_trial_and_the_search_goes_on(tmp_path):
    evaluator = ScriptedEvaluator(fail_calls={2})
    objective = trained_objective(tmp_path, evaluator)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=5, catch=(CandidateFailed,))
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL] + [TrialState.COMPLETE] * 3
    failed = study.trials[1]
    assert failed.user_attrs["fail_reason"] == "loss is NaN at epoch 1"
    assert "reward" not in failed.user_attrs and "metrics" not in failed.user_attrs
    assert len(evaluator.calls) == 5
    for t in study.trials[2:]:
        assert t.user_attrs["metrics"]["val_auc"] > 0.7 and "fail_reason" not in t.user_attrs


def test_search_replaces_failed_candidates_within_reason(tmp_path):
    """``trials`` counts finished trials: failed candidates are replaced, but not forever."""
    space = SearchSpace.from_yaml("mnasnet_small")
    evaluator = ScriptedEvaluator(fail_calls={2, 3})
    config = experiment(tmp_path, trials=4, reward=TRAINED_REWARD, strategy={"name": "random"})
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() + 1)  # not what worker 0 sets (cores / workers)
    try:
        study = run_search(config, lambda c: CandidateObjective(c, space, 1, 2, None, evaluator))
        assert torch.get_num_threads() == os.cpu_count() + 1  # the search gives the process its threads back
    finally:
        torch.set_num_threads(threads)
    assert [t.state.name for t in study.trials].count("FAIL") == 2
    check_study(study, 4)
    assert len(evaluator.calls) == 6

    hopeless = ScriptedEvaluator(fail_calls=range(1, 100))
    config = experiment(tmp_path, name="hopeless", trials=2, reward=TRAINED_REWARD)
    study = run_search(config, lambda c: CandidateObjective(c, space, 1, 2, None, hopeless))
    assert {t.state for t in study.trials} == {TrialState.FAIL}
    assert len(study.trials) == len(hopeless.calls) == 6  # 2 * trials + 2 attempts, then it stops


def test_hard_constraint_rejects_before_training(tmp_path):
    evaluator = ScriptedEvaluator()
    objective = trained_objective(
        tmp_path,
        evaluator,
        constraints=[{"metric": "params", "max": 150_000}, {"metric": "val_auc", "min": 0.5}],
    )
    # the experiment's own pruner (Optuna's default one would judge the first reported epoch)
    pruner = make_pruner(objective.config)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0), pruner=pruner)
    study.optimize(objective, n_trials=8)
    rejected = [t for t in study.trials if "rejected" in t.user_attrs]
    trained = [t for t in study.trials if "rejected" not in t.user_attrs]
    assert rejected and trained  # the seed gives both kinds
    assert all(t.state == TrialState.PRUNED for t in rejected)
    assert all(t.user_attrs["metrics"]["params"] > 150_000 for t in rejected)
    assert all(t.user_attrs["rejected"].startswith("params ") for t in rejected)
    assert all("val_auc" not in t.user_attrs["metrics"] for t in rejected)
    # the evaluator saw exactly the candidates within the constraint
    assert evaluator.calls == [t.user_attrs["arch"] for t in trained]
    assert all(
        t.state == TrialState.COMPLETE and t.user_attrs["metrics"]["params"] <= 150_000 for t in trained
    )
    assert all(t.user_attrs["constraints"][0] <= 0 for t in trained)


def test_pareto_mode_hands_each_constraint_to_optuna(tmp_path):
    """NSGA-II ranks feasible trials first by the constraints each trial sets (Optuna 5's
    ``Trial.set_constraint``); reward mode folds violations into the reward and sets none."""
    constraints = [{"metric": "val_auc", "min": 0.7}, {"metric": "params", "max": 10_000_000}]
    pareto = {
        "mode": "pareto",
        "reward": None,
        "strategy": {"name": "nsga2", "population": 4},
        "objectives": [{"metric": "val_auc", "direction": "maximize"}, {"metric": "params"}],
    }
    config = experiment(tmp_path, constraints=constraints, **pareto)
    objective = CandidateObjective(
        config, SearchSpace.from_yaml("mnasnet_small"), 1, 2, None, ScriptedEvaluator()
    )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=3)
    for t in study.trials:
        assert t.constraints == {f"constraint_{i}": v for i, v in enumerate(t.user_attrs["constraints"])}
    reward_study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    reward_study.optimize(
        trained_objective(tmp_path, ScriptedEvaluator(), constraints=constraints), n_trials=2
    )
    assert all(t.constraints == {} for t in reward_study.trials)
