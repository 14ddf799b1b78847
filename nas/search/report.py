"""What a search leaves in its run directory: trials.csv, pareto.csv, pareto.png, summary.json.

Written from the study alone, so it can be rewritten at any time (after a crash, by another worker).
The Pareto front is over the trade-off the experiment is about: its objectives in pareto mode, the
reward's accuracy and latency metrics for a MnasNet reward, the weighted metrics for a weighted sum.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas.search.config import LOWER_IS_BETTER, ExperimentConfig
from nas.search.final import COLUMN_PREFIX, FinalRecord, final_columns, read_final
from nas.search.pareto import costs, non_dominated
from nas.search.summary import SearchSummary, TrialRow, read_summary, write_summary

BASE_COLUMNS = ["number", "state", "arch", "reward", "feasible", "rejected", "fail_reason", "cached_from"]


def front_axes(config: ExperimentConfig) -> list[tuple[str, str]]:
    """(metric, direction) pairs the Pareto front is taken over."""
    if config.mode == "pareto":
        return [(o.metric, o.resolved_direction) for o in config.objectives]
    if config.reward.type == "weighted_sum":
        return [(m, "minimize" if w < 0 else "maximize") for m, w in config.reward.weights.items()]
    return [(config.reward.accuracy, "maximize"), (config.reward.latency, "minimize")]


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    attrs = trial.user_attrs
    violations = attrs.get("constraints")
    return {
        "number": trial.number,
        "state": "REJECTED" if "rejected" in attrs else trial.state.name,
        "arch": attrs.get("arch", ""),
        "reward": attrs.get("reward"),
        "feasible": None if violations is None else all(v <= 0 for v in violations),
        "rejected": attrs.get("rejected"),
        "fail_reason": attrs.get("fail_reason"),
        "cached_from": attrs.get("cached_from"),
        **attrs.get("fidelity", {}),
        **attrs.get("metrics", {}),
        **{f"constraint_{i}": v for i, v in enumerate(violations or [])},
    }


def pareto_front(rows: list[dict[str, Any]], axes: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Feasible completed rows that no other such row dominates on ``axes``."""
    pool = [r for r in rows if r["state"] == "COMPLETE" and r["feasible"] and all(m in r for m, _ in axes)]
    front = non_dominated(pool, lambda row: costs(row, axes))
    first = axes[0][0]
    return sorted({r["arch"]: r for r in front}.values(), key=lambda r: r[first])


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(BASE_COLUMNS + [k for row in rows for k in row]))
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def plot_front(
    path: Path,
    rows: list[dict[str, Any]],
    front: list[dict[str, Any]],
    axes: list[tuple[str, str]],
    references,
) -> None:
    """Accuracy (y) against cost (x): every evaluated candidate, the front, and reference networks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_metric = next((m for m, d in axes if d == "minimize"), axes[0][0])
    y_metric = next((m for m, d in axes if d == "maximize" and m != x_metric), axes[-1][0])
    done = [r for r in rows if r["state"] == "COMPLETE" and x_metric in r and y_metric in r]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.scatter([r[x_metric] for r in done], [r[y_metric] for r in done], s=14, c="0.65", label="candidates")
    ax.plot(
        [r[x_metric] for r in front], [r[y_metric] for r in front], "o-", c="tab:red", label="Pareto front"
    )
    for name, value in (references or {}).items():
        if x_metric in value and y_metric in value:
            ax.scatter([value[x_metric]], [value[y_metric]], marker="*", s=120, label=name)
        elif x_metric in value:
            ax.axvline(value[x_metric], ls="--", lw=0.8, c="0.3")
            ax.annotate(name, (value[x_metric], ax.get_ylim()[0]), rotation=90, fontsize=7, va="bottom")
    ax.set_xlabel(x_metric + (" (lower is better)" if x_metric in LOWER_IS_BETTER else ""))
    ax.set_ylabel(y_metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(
    study: optuna.Study, config: ExperimentConfig, out: Path, references: dict | None = None
) -> SearchSummary:
    """Write the four result files and return the summary."""
    rows = [trial_row(t) for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)]
    axes = front_axes(config)
    front = pareto_front(rows, axes)
    final = read_final(out)
    merge_final(front, final)
    write_csv(out / "trials.csv", rows)
    write_csv(out / "pareto.csv", front)
    plot_front(out / "pareto.png", rows, front, axes, references)
    scored = [r for r in rows if r["state"] == "COMPLETE" and r["reward"] is not None]
    best = max(scored, key=lambda r: r["reward"], default=None)
    states = [r["state"] for r in rows]
    summary = SearchSummary(
        name=config.name,
        space=config.space,
        dataset=config.dataset.ref,
        input_size=config.input_size,
        mode=config.mode,
        strategy=config.strategy.name,
        storage=config.storage or f"sqlite:///{(out / 'study.db').resolve()}",
        counts={s: states.count(s) for s in sorted(set(states))},
        best=best,
        pareto_axes=[m for m, _ in axes],
        pareto=front,
        trials=rows,
    )
    if final is not None:  # a resumed run keeps its final figures (rerun nas finalize for a new front)
        best = final_best(rows, final)
        summary.final_best = None if best is None else TrialRow.model_validate(best)
        summary.final_rank_by = final.rank_by
    write_summary(summary, out)
    return summary


def merge_final(rows: list[dict[str, Any]], record: FinalRecord | None) -> None:
    """Give the finalized ``rows`` their final-fidelity columns (``final_val_auc``, ...), in place; stale
    final columns of the others are dropped."""
    trials = {t.number: t for t in record.trials} if record is not None else {}
    for row in rows:
        for key in [k for k in row if k.startswith(COLUMN_PREFIX)]:
            del row[key]
        trial = trials.get(row["number"])
        if trial is not None and trial.arch == row["arch"] and record is not None:
            row.update(final_columns(trial, record))


def final_best(rows: list[dict[str, Any]], record: FinalRecord) -> dict[str, Any] | None:
    """The trial row ``record`` ranks first by its final validation figures, with its final columns."""
    best = record.best
    row = next((r for r in rows if best is not None and r["number"] == best.number), None)
    if best is None or row is None or row["arch"] != best.arch:
        return None
    return {k: v for k, v in row.items() if not k.startswith(COLUMN_PREFIX)} | final_columns(best, record)


def write_final_report(out: Path, record: FinalRecord) -> SearchSummary:
    """Rewrite ``pareto.csv`` and ``summary.json`` of the run in ``out`` with ``record``'s final figures
    (``summary.json`` gains ``final_best`` and ``final_rank_by``; its other keys are kept)."""
    summary = read_summary(out)
    front = [row.model_dump() for row in summary.pareto]
    merge_final(front, record)
    write_csv(out / "pareto.csv", front)
    rows = [row.model_dump() for row in summary.trials]
    best = final_best(rows, record)
    summary.pareto = [TrialRow.model_validate(row) for row in front]
    summary.final_best = None if best is None else TrialRow.model_validate(best)
    summary.final_rank_by = record.rank_by
    write_summary(summary, out)
    return summary
