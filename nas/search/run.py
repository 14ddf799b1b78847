"""Run (or resume) a search: one Optuna study in a storage, any number of worker processes.

Crash safety comes from the storage: every finished trial is committed there as it ends. A restarted
command loads the same study, fails the trials its killed processes left RUNNING (at once for processes
of this host that no longer exist, after the heartbeat's grace period for others), re-queues their
candidates (``RetryHeartbeatStaleTrialCallback``) and runs only the remainder of ``trials``. Workers on one or
many machines share a study through its storage URL (SQLite for one machine, PostgreSQL for many).
A worker starts a trial only while finished plus running trials are fewer than ``trials`` and replaces
failed candidates, so the study ends with exactly ``trials`` finished ones (unless time runs out).
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import torch
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from nas.errors import ConfigError
from nas.extras import require
from nas.search.config import ExperimentConfig
from nas.search.objective import CandidateFailed, CandidateObjective
from nas.search.rungs import RUNG_ATTR, make_pruner
from nas.search.strategies import make_sampler

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
HEARTBEAT_S = 5
GRACE_S = 20

TrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]
ObjectiveFactory = Callable[[ExperimentConfig], CandidateObjective]  # module-level: workers are spawned

log = logging.getLogger(__name__)


def storage_url(config: ExperimentConfig) -> str:
    return config.storage or f"sqlite:///{Path(config.out).resolve() / 'study.db'}"


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines and experimental-feature warnings would drown the progress bar."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class RetryCallback(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a stale trial, less the dead process's ``worker`` id (the re-queued copy must
    not look dead to ``fail_dead_local_trials`` while a live worker is starting it) and its rung records
    (the copy trains again from scratch and records its own)."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trial = copy.copy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in ("worker", RUNG_ATTR)}
        super().__call__(study, trial)


def open_storage(url: str) -> RDBStorage:
    """An RDB storage with heartbeats, so a killed worker's trial is noticed and retried."""
    if url.startswith(("postgresql://", "postgresql+psycopg://")):
        require("postgres")  # SQLAlchemy's driver for these; its own error would not name the extra
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                heartbeat_stale_trial_callback=RetryCallback(max_retry=2),
            )
    except Exception as exc:  # sqlalchemy raises many kinds; the user needs the one line
        raise ConfigError(f"cannot open storage {url}: {str(exc).splitlines()[0]}") from None


def open_study(config: ExperimentConfig, storage: RDBStorage, sampler=None) -> optuna.Study:
    directions = (
        [o.resolved_direction for o in config.objectives] if config.mode == "pareto" else ["maximize"]
    )
    study = optuna.create_study(
        storage=storage,
        study_name=config.name,
        directions=directions,
        sampler=sampler,
        pruner=make_pruner(config),
        load_if_exists=True,
    )
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(
            f"study '{config.name}' in {storage.url} has other objectives; use another --out or name"
        )
    return study


def fail_dead_local_trials(study: optuna.Study) -> int:
    """Fail (and re-queue) RUNNING trials whose worker process on this host is gone: a SIGKILLed
    search resumes at once instead of waiting out the heartbeat grace period."""
    host = socket.gethostname()
    retry = RetryCallback(max_retry=2)
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        if study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            retry(study, study._storage.get_trial(trial._trial_id))
            failed += 1
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def claimed_count(study: optuna.Study, below: int | None = None) -> int:
    """Finished trials plus running ones (only those numbered below ``below``, when given): what the
    study will have once every worker is done with what it started."""
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    return sum(t.state in FINISHED or below is None or t.number < below for t in trials)


class SurplusTrial(Exception):
    """Another worker started the study's last trial first: this one is not run (it ends FAIL)."""


class TrialTakenOver(Exception):
    """Another worker failed this worker's running trial as stale (no heartbeat for ``GRACE_S``: a
    suspended or starved process) and re-queued its candidate; this worker's result is dropped."""


def run_worker(
    config: ExperimentConfig,
    make_objective: ObjectiveFactory,
    index: int = 0,
    callbacks: list[TrialCallback] | None = None,
) -> None:
    """One worker's loop: runs trials until the study has ``config.trials`` finished ones or time is up.
    A trial another worker took over (``TrialTakenOver``) makes Optuna's ``optimize`` raise when it
    tells the result; the worker says so and goes on with what is left, instead of dying."""
    quiet_optuna()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // config.workers))  # workers share the cores
    if torch.cuda.is_available():  # workers share the GPUs, round robin (training.device auto uses it)
        torch.cuda.set_device(index % torch.cuda.device_count())
    deadline = None if config.timeout is None else time.monotonic() + config.timeout
    objective = make_objective(config)
    storage = open_storage(storage_url(config))
    study = open_study(config, storage)
    fail_dead_local_trials(study)
    optuna.storages.fail_stale_trials(study)
    # a fresh seed per (worker, restart): a resumed process must not redraw the first run's candidates
    seed = config.seed + 7919 * index + 104729 * len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(config.strategy, objective.space, seed, policy_seed=config.seed)
    taken: list[int] = []

    def objective_unless_surplus(trial: optuna.Trial) -> float | list[float]:
        # workers check the total before they start a trial, but two can start the last one at
        # once: the later-numbered one stands down, so the study ends with exactly ``trials``
        if claimed_count(study, below=trial.number) >= config.trials:
            trial.set_user_attr("surplus", True)  # reports show it as SURPLUS, not a failed candidate
            trial.set_user_attr("fail_reason", "surplus: another worker started the study's last trial")
            raise SurplusTrial(f"trial {trial.number} is not needed")
        try:
            return objective(trial)
        finally:  # whether it ended, failed, or a write hit Optuna's UpdateFinishedTrialError
            if storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
                taken.append(trial.number)
                raise TrialTakenOver(f"trial {trial.number} was taken over")

    def stop_when_claimed(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if claimed_count(study) >= config.trials:
            study.stop()

    while (remaining := config.trials - claimed_count(study)) > 0:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        try:
            study.optimize(
                objective_unless_surplus,
                n_trials=2 * remaining + 2,  # failed candidates are replaced, within reason
                timeout=left,
                callbacks=[stop_when_claimed, *(callbacks or [])],
                catch=(CandidateFailed, SurplusTrial),
                gc_after_trial=False,
                show_progress_bar=False,
            )
            return
        except Exception:
            if not taken:
                raise
            log.warning(
                "note: trial %d was failed by another worker (no heartbeat from this one for %d s) and "
                "its candidate re-queued; this worker drops its result and goes on",
                taken.pop(),
                GRACE_S,
            )


def run_search(
    config: ExperimentConfig,
    make_objective: ObjectiveFactory,
    callbacks: list[TrialCallback] | None = None,
) -> optuna.Study:
    """Run ``config.workers`` workers on the study (this process is worker 0) and return the study."""
    Path(config.out).mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    others = [
        context.Process(target=run_worker, args=(config, make_objective, k), daemon=False)
        for k in range(1, config.workers)
    ]
    for process in others:
        process.start()
    threads = torch.get_num_threads()
    try:
        run_worker(config, make_objective, 0, callbacks)
    finally:
        torch.set_num_threads(threads)  # worker 0 took this process's share of the cores: give it back
        for process in others:
            process.join()
    quiet_optuna()
    return open_study(config, open_storage(storage_url(config)))
