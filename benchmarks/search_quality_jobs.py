"""The search-quality benchmark's trainings (``benchmarks/search_quality.py``): the final recipe, one-thread
worker processes (spawn), and the JSONL files of the cache that keep every finished result, so that a
killed run loses nothing.

Each job is a module-level function a spawned worker can import; it loads its data once per process and
returns a plain dict (``{"error": ...}`` when the training diverged: the recipe does not suit that net,
which is a result too, kept so that a rerun does not train it again).
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import UsageError
from nas.evaluate.config import TrainConfig
from nas.search.config import ExperimentConfig, FinalizeConfig, experiment_from

FAILURES = "failures.jsonl"
Row = dict[str, Any]


# ---------------------------------------------------------------- JSONL files


def append_jsonl(path: Path, row: Row) -> None:
    """Append one line; a last line cut short by a kill is closed first, so it spoils only itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab+") as f:
        f.seek(0, 2)
        cut = f.tell() > 0 and (f.seek(-1, 2), f.read(1))[1] != b"\n"
        f.write((b"\n" if cut else b"") + json.dumps(row).encode() + b"\n")


def read_jsonl(path: Path) -> list[Row]:
    """Every complete line of ``path`` (none when it does not exist); a line cut by a kill is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def digest(value: Any) -> str:
    """A short stable name for a JSON-able value (an arch string, a recipe): directory names, keys."""
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:10]


# ---------------------------------------------------------------- the recipe and the cache


def one_thread(config: ExperimentConfig, source: str) -> ExperimentConfig:
    """``config`` training on one torch thread (threads change speed, not results): the jobs are the cores."""
    data = config.model_dump(mode="json")
    data["training"] = {**data["training"], "threads": 1}
    return experiment_from(data, source=source)


def final_recipe(config: ExperimentConfig, epochs: int, min_steps: int) -> TrainConfig:
    """What ``finalize_run(epochs=epochs, min_steps=min_steps)`` trains with: the experiment's training
    settings, the final epochs, and the recipe scaled to the data (``FinalizeConfig.train_config``), so
    hand designs and fidelity nets train exactly as the finalized fronts do."""
    from nas.search.factory import load_splits

    final = FinalizeConfig(epochs=epochs, min_steps=min_steps)
    return final.train_config(config.train_config(), load_splits(config))


def seed_list(config: ExperimentConfig, n: int) -> list[int]:
    """The seeds ``finalize_run`` trains on: the experiment's training seed and the next ``n - 1``."""
    first = config.train_config().seed
    return list(range(first, first + n))


def recipe_of(settings: dict[str, Any], *also: str) -> dict[str, Any]:
    """A training's settings less how it ran (seed, threads, device) and ``also``: what makes two
    trainings the same recipe."""
    return {k: v for k, v in settings.items() if k not in ("seed", "threads", "device", *also)}


def check_cache(cache: Path, config: ExperimentConfig, min_steps: int) -> None:
    """Refuse a cache whose trainings were made with another dataset or final recipe (epochs and seeds are
    per line)."""
    settings = final_recipe(config, 1, min_steps).to_json()
    recipe = {
        "dataset": config.dataset.ref,
        "input_size": config.input_size,
        "training": recipe_of(settings, "epochs"),
    }
    path = cache / "recipe.json"
    recorded = json.loads(path.read_text()) if path.is_file() else recipe
    recorded.get("training", {}).pop("device", None)  # caches from before device: auto
    if recorded != recipe:
        raise UsageError(
            f"{cache} holds trainings of another dataset or recipe ({path}); use another --cache"
        )
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recipe, indent=2) + "\n")


class Results:
    """One JSONL file of results in the cache, keyed by ``key`` (a tuple of a row's fields); a failed job
    goes to ``failures.jsonl`` under this file's name and is not run again either, and a key already
    given a job is not given another (two scorers that differ only in the metric they rank by share one
    training: the score's key leaves the metric out)."""

    def __init__(self, cache: Path, name: str, key: Callable[[Row], tuple]) -> None:
        self.path, self.failures, self.name, self.key = cache / name, cache / FAILURES, name, key
        self.rows = {key(r): r for r in read_jsonl(self.path)}
        self.failed = {key(r) for r in read_jsonl(self.failures) if r.get("file") == name}
        self.queued: set[tuple] = set()

    def todo(self, base: Row) -> bool:
        key = self.key(base)
        return key not in self.rows and key not in self.failed and key not in self.queued

    def job(self, fn: Callable[..., Row], args: tuple, base: Row, label: str) -> Job:
        self.queued.add(self.key(base))

        def done(result: Row) -> None:
            if "error" in result:
                append_jsonl(self.failures, {"file": self.name, **base, **result})
                self.failed.add(self.key(base))
                print(f"  {label}: FAILED: {result['error']}", flush=True)
                return
            row = {**base, **result}
            append_jsonl(self.path, row)
            self.rows[self.key(row)] = row
            print(f"  {label}: {describe(result)} ({result['seconds']:.0f} s)", flush=True)

        return Job(fn, args, done)


def describe(result: Row) -> str:
    if "test_auc" in result:
        val, test, acc = result["val_auc"], result["test_auc"], result["test_accuracy"]
        return f"val AUC {val:.4f}, test AUC {test:.4f} ACC {acc:.4f}"
    return ", ".join(f"{k} {v:.4f}" for k, v in result["val"].items() if k in ("val_auc", "val_logloss"))


# ---------------------------------------------------------------- the pool


def make_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` spawned worker processes, each with one torch thread (the machine's cores are the jobs)."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_setup, initargs=(os.getpid(),))


def _worker_setup(parent: int) -> None:
    """One torch thread, and an exit as soon as ``parent`` is gone: a worker of a killed run would
    otherwise wait for work forever (it holds its own queue's pipe open)."""
    import torch

    torch.set_num_threads(1)

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()


@dataclass(frozen=True)
class Job:
    """``fn(*args)`` in a worker; ``done(result)`` in this process as soon as it returns."""

    fn: Callable[..., Row]
    args: tuple[Any, ...]
    done: Callable[[Row], None]


def run_jobs(pool: ProcessPoolExecutor, jobs: list[Job]) -> None:
    """Run every job on ``pool``, handing each result to its ``done`` in the order they finish; on an
    error (a bug) or an interrupt, the jobs not started yet are cancelled."""
    futures = {pool.submit(job.fn, *job.args): job for job in jobs}
    try:
        for future in as_completed(futures):
            futures[future].done(future.result())
    except BaseException:
        for future in futures:
            future.cancel()
        raise


# ---------------------------------------------------------------- jobs (run in a worker)


@functools.lru_cache(maxsize=4)
def _splits(ref: str, input_size: int):
    from nas.data import load_dataset

    return load_dataset(ref, input_size)


@functools.lru_cache(maxsize=4)
def _evaluator(config_json: str):
    from nas.search.config import experiment_from
    from nas.search.factory import TrainingEvaluator

    return TrainingEvaluator(experiment_from(json.loads(config_json)))


def score_job(config: ExperimentConfig, arch: str) -> Row:
    """The search's own score of ``arch``: ``TrainingEvaluator(config)``, as a trial runs it (unpruned)."""
    from nas.arch import ArchSpec
    from nas.search.objective import CandidateFailed

    evaluator = _evaluator(json.dumps(config.model_dump(mode="json"), sort_keys=True))
    start = time.perf_counter()
    try:
        val = evaluator(ArchSpec.from_str(arch), lambda step, metrics: None)
    except CandidateFailed as exc:
        return {"error": str(exc)}
    return {"val": val, "seconds": time.perf_counter() - start}


def train_job(dataset: str, input_size: int, train_config: Row, arch: str, out_dir: str) -> Row:
    """One training with the final recipe, as ``nas finalize`` trains (``train_cached``: a directory
    already trained with this recipe is reused); its validation and test figures."""
    from nas.evaluate.cache import train_cached
    from nas.evaluate.config import TrainingDiverged

    start = time.perf_counter()
    try:
        metrics, reused = train_cached(
            arch, _splits(dataset, input_size), TrainConfig.from_json(train_config), out_dir
        )
    except TrainingDiverged as exc:
        return {"error": str(exc)}
    val, test = metrics["val"], metrics["test"]
    return {
        "val_auc": val["auc"],
        "val_accuracy": val["accuracy"],
        "test_auc": test["auc"],
        "test_accuracy": test["accuracy"],
        "seconds": metrics["train_seconds"] if reused else time.perf_counter() - start,
    }
