"""Finalize a search run: its best candidates trained again with the full recipe on several seeds, then
ranked again by those final-fidelity validation figures (``nas finalize RUN``, and ``nas search`` at its
end when the experiment has a ``finalize`` key).

Who is finalized: the top ``top`` of the completed trials (reward mode, one trial per arch), ranked at
search fidelity by the reward when the experiment has one, else by the front's first trained metric
(``val_auc``, ...), or in pareto mode the front's top ``top`` by that ranking (``pick`` ``best``) or
``top`` members spread over it (``spread``: the best first, then each time the member farthest from
those already chosen). A search too short to complete any candidate (a 5-fold search of a few minutes)
gives the candidates stopped early within the constraints instead, the furthest trained first:
successive halving's best guess, rather than no model. Each is trained by ``train_final`` with the
experiment's ``training`` settings for ``epochs`` final epochs plus the data-scaled final recipe
(``nas.evaluate.recipe``; ``recipe: plain`` leaves it out), on seeds ``seed .. seed + seeds - 1``
(``seed`` the experiment's training seed), into ``RUN/finalize/trial_<n>/e<epochs>_seed<s>``; a
directory already trained with that recipe is reused (``nas.evaluate.cache``), so a rerun trains nothing
again.

The final ranking uses the mean over seeds of the validation figures only (the reward recomputed with
them, or the metric itself); the test figures are measured once per training and only reported. The
results go to ``final.json`` (``nas.search.final``), the ``final_*`` columns of ``pareto.csv`` and
``summary.json``'s ``final_best``, which ``nas train RUN --best`` then trains.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from nas.errors import ConfigError, DataError, UsageError
from nas.search.config import PICKS, TRAINED_METRICS, ExperimentConfig, FinalizeConfig, experiment_from
from nas.search.final import FinalRecord, FinalTrial, write_final
from nas.search.pareto import costs, non_dominated
from nas.search.summary import SearchSummary, read_summary

FINAL_DIR = "finalize"
DEFAULTS = FinalizeConfig()
Progress = Callable[[int, int, bool], None]  # (trial number, seed, reused) after each training
Row = dict[str, Any]


def finalize_run(
    run_dir: str | Path,
    top: int = DEFAULTS.top,
    seeds: int = DEFAULTS.seeds,
    epochs: int = DEFAULTS.epochs,
    progress: Progress | None = None,
    workers: int | None = 1,
    recipe: str = DEFAULTS.recipe,
    min_steps: int = DEFAULTS.min_steps,
    pick: str = DEFAULTS.pick,
) -> FinalRecord:
    """Finalize the search run in ``run_dir`` (see the module docstring); return what ``final.json`` holds.
    ``recipe`` and ``min_steps``: as the experiment's ``finalize`` key (``FinalizeConfig.train_config``).
    ``workers`` > 1 trains that many networks at once, each in its own single-threaded process (on a
    small CPU, two 1-thread trainings side by side did 1.95x one thread's work, one 2-thread 1.31x);
    None: the experiment's ``workers``. ``pick``: ``best`` or ``spread`` (the module docstring)."""
    from nas.search.factory import load_splits
    from nas.search.report import front_axes, write_final_report

    for name, value in (("top", top), ("seeds", seeds), ("epochs", epochs)):
        if value < 1:
            raise UsageError(f"--{name} must be >= 1, got {value}")
    if min_steps < 0:
        raise UsageError(f"--min-steps must be >= 0, got {min_steps}")
    if pick not in PICKS:
        raise UsageError(f"--pick must be one of {', '.join(PICKS)}, got {pick!r}")
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    config = run_config(run_dir)
    axes = front_axes(config)
    rank_by, descending = ranking(config, axes)
    pool = candidates(summary, config, rank_by, descending)
    if pick == "spread" and config.mode != "pareto":
        raise UsageError(f"--pick spread picks along a Pareto front; {run_dir} is a reward-mode search")
    if pick == "spread" and not completed(summary, config):
        pick = "best"  # no front yet: the candidates stopped early, the furthest trained first
    chosen = spread(pool, top, axes) if pick == "spread" else pool[:top]
    if not chosen:
        raise UsageError(f"{run_dir} has no trial with a {rank_by} within its constraints to finalize")
    splits = load_splits(config)
    final = FinalizeConfig(top=top, seeds=seeds, epochs=epochs, recipe=recipe, min_steps=min_steps, pick=pick)
    base = final.train_config(config.train_config(), splits)
    jobs = [
        (row, seed, run_dir / FINAL_DIR / f"trial_{row['number']}" / f"e{epochs}_seed{seed}")
        for row in chosen
        for seed in range(base.seed, base.seed + seeds)
    ]
    trained = _train_all(jobs, splits, base, config.workers if workers is None else workers, progress)
    finals: list[tuple[FinalTrial, Row]] = []
    for row in chosen:
        mine = [(seed, out) for r, seed, out in jobs if r is row]
        runs = [trained[out] for _, out in mine]
        dirs = [str(out.relative_to(run_dir)) for _, out in mine]
        used = [seed for seed, _ in mine]
        val, val_std = mean_std([_prefixed(m["val"], "val_") for m in runs])
        test, test_std = mean_std([_prefixed(m["test"], "test_") for m in runs])
        final_row = row | {k: v for k, v in val.items() if k in TRAINED_METRICS}
        trial = FinalTrial(
            number=row["number"],
            arch=row["arch"],
            search_rank=pool.index(row) + 1,
            final_rank=0,
            search_score=score(row, config, rank_by),
            score=score(final_row, config, rank_by),
            seeds=used,
            dirs=dirs,
            val=val,
            val_std=val_std,
            test=test,
            test_std=test_std,
        )
        finals.append((trial, final_row))
    _rank(finals, descending)
    if config.mode == "pareto":
        _mark_front(finals, axes)
    record = FinalRecord(
        top=top,
        seeds=seeds,
        epochs=epochs,
        rank_by=rank_by,
        train_config=base.to_json(),
        pick=pick,
        trials=sorted((t for t, _ in finals), key=lambda t: t.final_rank),
    )
    write_final(record, run_dir)
    write_final_report(run_dir, record, axes)
    return record


def _train_all(
    jobs: list[tuple[Row, int, Path]], splits: Any, base: Any, workers: int, progress: Progress | None
) -> dict[Path, dict[str, Any]]:
    """Every (candidate, seed) trained (or reused) into its directory: in this process, or ``workers``
    spawned single-threaded ones, the candidates with the most MACs first; ``progress`` after each, in the
    order they end."""
    from nas.evaluate.cache import train_cached

    results: dict[Path, dict[str, Any]] = {}

    def done(row: Row, seed: int, out: Path, metrics: dict[str, Any], reused: bool) -> None:
        results[out] = metrics
        if progress is not None:
            progress(row["number"], seed, reused)

    if workers <= 1:
        for row, seed, out in jobs:
            done(
                row, seed, out, *train_cached(row["arch"], splits, dataclasses.replace(base, seed=seed), out)
            )
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    single = dataclasses.replace(base, threads=1)
    context = multiprocessing.get_context("spawn")
    # the costliest first (MACs: Kendall tau 0.82 with training time over ten finalized nets), so that
    # the last trainings to end are short ones, not a long one on one core while the others idle
    costliest_first = sorted(jobs, key=lambda job: -(job[0].get("macs") or 0.0))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(train_cached, row["arch"], splits, dataclasses.replace(single, seed=seed), out): (
                row,
                seed,
                out,
            )
            for row, seed, out in costliest_first
        }
        for future in as_completed(futures):
            done(*futures[future], *future.result())
    return results


def run_config(run_dir: Path) -> ExperimentConfig:
    """The experiment recorded in ``run_dir/config.yaml`` (what ``nas search`` wrote)."""
    from nas.search.runner import CONFIG_FILE

    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir} has no experiment record ({path}): give a run made by nas search")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise DataError(f"{path} is not a readable experiment record") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is not an experiment record (not a mapping)")
    data.pop("pruner", None)  # finalize prunes nothing, and older pareto records name a median pruner
    try:
        return experiment_from(data, source=str(path))
    except ConfigError as exc:
        raise DataError(str(exc)) from None


def ranking(config: ExperimentConfig, axes: list[tuple[str, str]]) -> tuple[str, bool]:
    """What the candidates are ranked by, and whether higher is better: the reward when the experiment
    has one, else the front's first trained metric."""
    if config.reward is not None:
        return "reward", True
    trained = [(m, d) for m, d in axes if m in TRAINED_METRICS]
    if not trained:
        raise UsageError(
            f"the front ({', '.join(m for m, _ in axes)}) has no trained metric and the experiment no "
            "reward: final training would change nothing it is ranked by"
        )
    metric, direction = trained[0]
    return metric, direction == "maximize"


def score(row: Mapping[str, Any], config: ExperimentConfig, rank_by: str) -> float | None:
    """``row``'s ranking key: its reward recomputed from its metrics, or the metric; None when missing."""
    from nas.search.reward import reward

    try:
        value = reward(row, config.reward) if rank_by == "reward" and config.reward else row[rank_by]
    except (KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def candidates(summary: SearchSummary, config: ExperimentConfig, rank_by: str, descending: bool) -> list[Row]:
    """The pool, best first at search fidelity: the front (pareto mode) or every completed, feasible
    trial (reward mode); when there is none, the trials stopped early within the constraints, the
    furthest trained first; one per arch; a trial without a ranking key is left out."""
    pool = completed(summary, config)
    stopped = not pool
    if stopped:
        pool = [r.model_dump() for r in summary.trials if r.state == "PRUNED"]
        pool = [r for r in pool if _within(r, config)]
    scored = [(score(r, config, rank_by), r) for r in pool]
    ordered = sorted(
        ((s, r) for s, r in scored if s is not None), key=lambda p: p[0], reverse=descending
    )  # a stable sort: ties keep trial order
    if stopped:
        ordered.sort(key=lambda p: p[1].get("reached") or 0, reverse=True)
    unique: dict[str, Row] = {}
    for _, row in ordered:
        unique.setdefault(row["arch"], row)
    return list(unique.values())


def spread(front: list[Row], top: int, axes: list[tuple[str, str]]) -> list[Row]:
    """``top`` members of ``front`` (best first) that cover it: the first, then each time the member
    farthest (Euclidean, each axis scaled to the front's range) from the nearest one already chosen, ties
    to the better; returned best first. On a front of (val AUC, latency) the top N by val AUC are its N
    slowest members (PneumoniaMNIST: the 5 slowest of 10), which leaves a user who needs a faster net no
    final figures for one, and a front measure such as the hypervolume only one end to measure."""
    points = [costs(row, axes) for row in front]
    lows = [min(axis) for axis in zip(*points, strict=True)]
    spans = [max(axis) - low or 1.0 for axis, low in zip(zip(*points, strict=True), lows, strict=True)]
    scaled = [[(v - low) / span for v, low, span in zip(p, lows, spans, strict=True)] for p in points]
    chosen = [0] if front else []
    while len(chosen) < min(top, len(front)):
        rest = [i for i in range(len(front)) if i not in chosen]
        chosen.append(max(rest, key=lambda i: min(math.dist(scaled[i], scaled[j]) for j in chosen)))
    return [front[i] for i in sorted(chosen)]


def completed(summary: SearchSummary, config: ExperimentConfig) -> list[Row]:
    """The search's own pool: the front (pareto mode) or every completed, feasible trial with a reward."""
    if config.mode == "pareto":
        return [r.model_dump() for r in summary.pareto]
    return [
        r.model_dump()
        for r in summary.trials
        if r.state == "COMPLETE" and r.feasible is not False and r.reward is not None
    ]


def _within(row: Row, config: ExperimentConfig) -> bool:
    """Whether a stopped trial's recorded metrics meet every constraint (a missing one does not)."""
    return all(
        isinstance(row.get(c.metric), int | float) and c.violation(row[c.metric]) <= 0
        for c in config.all_constraints()
    )


def mean_std(runs: list[dict[str, float]]) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Per metric present in every run: the mean and the sample standard deviation (None for one run);
    a non-finite value anywhere makes both None."""
    means: dict[str, float | None] = {}
    stds: dict[str, float | None] = {}
    for name in [k for k in runs[0] if all(k in r for r in runs)]:
        values = [r[name] for r in runs]
        finite = all(math.isfinite(v) for v in values)
        means[name] = statistics.fmean(values) if finite else None
        stds[name] = statistics.stdev(values) if finite and len(values) > 1 else None
    return means, stds


def _prefixed(metrics: Mapping[str, Any], prefix: str) -> dict[str, float]:
    return {
        f"{prefix}{k}": float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v is not None
    }


def _rank(finals: list[tuple[FinalTrial, Row]], descending: bool) -> None:
    """``final_rank`` 1 for the best final score; trials without one last, ties in search order."""
    scored = [t for t, _ in finals if t.score is not None]
    order = sorted(scored, key=lambda t: t.score if descending else -t.score, reverse=True)  # type: ignore[operator]
    order += [t for t, _ in finals if t.score is None]
    for rank, trial in enumerate(order, 1):
        trial.final_rank = rank


def _mark_front(finals: list[tuple[FinalTrial, Row]], axes: list[tuple[str, str]]) -> None:
    """Pareto mode: which finalized trials no other dominates on the final figures (None: a figure is
    missing)."""
    complete = [(t, r) for t, r in finals if all(isinstance(r.get(m), int | float) for m, _ in axes)]
    front = {id(t) for t, _ in non_dominated(complete, lambda pair: costs(pair[1], axes))}
    for trial, _ in complete:
        trial.pareto = id(trial) in front
