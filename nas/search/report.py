"""What a search leaves in its run directory: trials.csv, pareto.csv, pareto.png, summary.json (and
references.json, the reference networks' metrics the plot shows, so ``nas finalize`` can redraw it).

Written from the study alone, so it can be rewritten at any time (after a crash, by another worker).
After ``nas finalize`` the plot also shows each finalized trial at final fidelity (``final_points``), and
after ``latency: {verify: N}`` each verified net at its measured latency (``verified_points``).
The Pareto front is over the trade-off the experiment is about: its objectives in pareto mode, the
reward's accuracy and latency metrics for a MnasNet reward, the weighted metrics for a weighted sum.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas.search.config import LOWER_IS_BETTER, ExperimentConfig
from nas.search.final import COLUMN_PREFIX, FinalRecord, final_columns, read_final
from nas.search.pareto import costs, non_dominated
from nas.search.rungs import reached_step, rung_counts, schedule
from nas.search.summary import SearchSummary, TrialRow, read_summary, shown_state, write_summary
from nas.search.verified import VerifyRecord, merge_verified, read_verified

BASE_COLUMNS = ["number", "state", "arch", "reward", "feasible", "rejected", "fail_reason", "cached_from"]
REFERENCES_FILE = "references.json"


def front_axes(config: ExperimentConfig) -> list[tuple[str, str]]:
    """(metric, direction) pairs the Pareto front is taken over."""
    if config.mode == "pareto":
        return [(o.metric, o.resolved_direction) for o in config.objectives]
    if config.reward.type == "weighted_sum":
        return [(m, "minimize" if w < 0 else "maximize") for m, w in config.reward.weights.items()]
    return [(config.reward.accuracy, "maximize"), (config.reward.latency, "minimize")]


def retried_as(trials: list[FrozenTrial]) -> dict[int, int]:
    """{failed trial: its re-queued copy} for trials whose worker died or fell silent past the heartbeat
    grace (``RetryCallback``); the storage refuses a reason on a trial another worker failed. Read
    from the attribute Optuna's ``RetryHeartbeatStaleTrialCallback.retry_history`` reads: that one warns
    (experimental) on every call."""
    return {
        t.system_attrs["retry_history"][-1]: t.number for t in trials if t.system_attrs.get("retry_history")
    }


def trial_row(trial: FrozenTrial, last_step: int, retry: int | None = None) -> dict[str, Any]:
    """One trial's row; ``reached`` is the step its training got to (``nas.search.rungs``): below the
    last step for a trial stopped early, whose metrics are the ones it was stopped with. ``retry``: the
    number of its re-queued copy, for a trial failed because its worker died or fell silent."""
    attrs = trial.user_attrs
    reason = attrs.get("fail_reason")
    if reason is None and retry is not None:
        reason = f"its worker died or stopped sending heartbeats; re-queued as trial {retry}"
    violations = attrs.get("constraints")
    return {
        "number": trial.number,
        "state": shown_state(attrs, trial.state.name),
        "arch": attrs.get("arch", ""),
        "reward": attrs.get("reward"),
        "feasible": None if violations is None else all(v <= 0 for v in violations),
        "rejected": attrs.get("rejected"),
        "fail_reason": reason,
        "cached_from": attrs.get("cached_from"),
        **attrs.get("fidelity", {}),
        "reached": reached_step(trial, last_step),
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


def plot_metrics(axes: list[tuple[str, str]]) -> tuple[str, str]:
    """The plot's (x, y) metrics: the first cost (minimized) against the first other maximized metric."""
    x_metric = next((m for m, d in axes if d == "minimize"), axes[0][0])
    y_metric = next((m for m, d in axes if d == "maximize" and m != x_metric), axes[-1][0])
    return x_metric, y_metric


def plotted_row(
    by_number: dict[int, dict[str, Any]], number: int, arch: str, x_metric: str, y_metric: str
) -> dict[str, Any] | None:
    """The search's row of a recorded trial, when it is the same net and has both plotted figures."""
    row = by_number.get(number)
    if row is None or row["arch"] != arch or row.get(x_metric) is None or row.get(y_metric) is None:
        return None
    return row


def final_points(
    rows: list[dict[str, Any]], record: FinalRecord | None, x_metric: str, y_metric: str
) -> list[dict[str, Any]]:
    """Each finalized trial of ``rows`` at search fidelity (``x``, ``y``) and at final fidelity (``final_x``,
    ``final_y``: the mean over seeds; ``final_xerr``, ``final_yerr``: the std, None under 2 seeds), best
    (by final val) first. Empty unless the run is finalized and ``y_metric`` is a figure the final training
    measured (``val_auc``, ...); a cost on x (params, latency) is the same at both fidelities."""
    if record is None:
        return []
    by_number = {r["number"]: r for r in rows}
    points = []
    for trial in record.trials:
        row = plotted_row(by_number, trial.number, trial.arch, x_metric, y_metric)
        if row is None:
            continue
        columns = final_columns(trial, record)
        final_y = columns.get(COLUMN_PREFIX + y_metric)
        if final_y is None:  # not a trained metric, or not finite at final fidelity
            continue
        final_x = columns.get(COLUMN_PREFIX + x_metric)
        points.append(
            {
                "number": trial.number,
                "x": row[x_metric],
                "y": row[y_metric],
                "final_x": row[x_metric] if final_x is None else final_x,
                "final_y": final_y,
                "final_xerr": None if final_x is None else columns.get(f"{COLUMN_PREFIX}{x_metric}_std"),
                "final_yerr": columns.get(f"{COLUMN_PREFIX}{y_metric}_std"),
            }
        )
    return points


def verified_points(
    rows: list[dict[str, Any]], record: VerifyRecord | None, x_metric: str, y_metric: str
) -> list[dict[str, Any]]:
    """Each verified net of ``rows`` at its predicted (``x``, ``y``) and measured (``measured_x``,
    ``measured_y``) latency; empty unless latency is one of the plot's axes."""
    if record is None or "latency_ms" not in (x_metric, y_metric):
        return []
    by_number = {r["number"]: r for r in rows}
    points = []
    for net in record.nets:
        row = plotted_row(by_number, net.number, net.arch, x_metric, y_metric)
        if row is None:
            continue
        measured = {**row, "latency_ms": net.measured_ms}
        points.append(
            {
                "x": row[x_metric],
                "y": row[y_metric],
                "measured_x": measured[x_metric],
                "measured_y": measured[y_metric],
            }
        )
    return points


def plot_front(
    path: Path,
    rows: list[dict[str, Any]],
    front: list[dict[str, Any]],
    axes: list[tuple[str, str]],
    references,
    final: FinalRecord | None = None,
    verified: VerifyRecord | None = None,
) -> list[dict[str, Any]]:
    """Accuracy (y) against cost (x): every evaluated candidate, the front, and reference networks; after
    ``nas finalize``, each finalized trial's final-fidelity point too, with its std over seeds as an error
    bar, joined to its search-fidelity point; after verification, each verified net at its measured
    latency, joined to its predicted point. Returns the final points (``final_points``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_metric, y_metric = plot_metrics(axes)
    finals = final_points(rows, final, x_metric, y_metric)
    search = " (search fidelity)" if finals else ""
    done = [r for r in rows if r["state"] == "COMPLETE" and x_metric in r and y_metric in r]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.scatter(
        [r[x_metric] for r in done], [r[y_metric] for r in done], s=14, c="0.65", label="candidates" + search
    )
    ax.plot(
        [r[x_metric] for r in front],
        [r[y_metric] for r in front],
        "o-",
        c="tab:red",
        label="Pareto front" + search,
    )
    if finals and final is not None:
        arrow = {"arrowstyle": "->", "lw": 0.8, "ls": ":", "color": "0.35", "shrinkA": 4, "shrinkB": 6}
        for p in finals:  # search fidelity -> final fidelity
            ax.annotate("", xy=(p["final_x"], p["final_y"]), xytext=(p["x"], p["y"]), arrowprops=arrow)
        ax.errorbar(
            [p["final_x"] for p in finals],
            [p["final_y"] for p in finals],
            xerr=[p["final_xerr"] or 0.0 for p in finals],
            yerr=[p["final_yerr"] or 0.0 for p in finals],
            fmt="D",
            ms=6,
            c="tab:blue",
            capsize=3,
            lw=0.9,
            label=f"final, {final.seeds} seeds x {final.epochs} epochs",
        )
    measured = verified_points(rows, verified, x_metric, y_metric)
    if measured and verified is not None:
        arrow = {"arrowstyle": "->", "lw": 0.8, "ls": "--", "color": "k", "shrinkA": 4, "shrinkB": 5}
        for p in measured:  # predicted -> measured
            ax.annotate("", xy=(p["measured_x"], p["measured_y"]), xytext=(p["x"], p["y"]), arrowprops=arrow)
        changed = ", order changed" if verified.order_changed else ""
        ax.scatter(
            [p["measured_x"] for p in measured],
            [p["measured_y"] for p in measured],
            marker="s",
            s=30,
            c="k",
            label=f"measured on {verified.backend}{changed}",
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
    return finals


def write_references(out: Path, references: dict | None) -> None:
    """Keep the plot's reference metrics, so ``nas finalize`` redraws the plot without measuring them."""
    tmp = out / (REFERENCES_FILE + ".tmp")
    tmp.write_text(json.dumps(references or {}, indent=2))
    tmp.replace(out / REFERENCES_FILE)


def read_references(out: Path) -> dict:
    """The reference metrics ``write_report`` kept; none for an older run (or an unreadable file)."""
    try:
        data = json.loads((out / REFERENCES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_report(
    study: optuna.Study, config: ExperimentConfig, out: Path, references: dict | None = None
) -> SearchSummary:
    """Write the four result files and return the summary."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    last_step = schedule(config)[1]
    retries = retried_as(trials)
    rows = [trial_row(t, last_step, retries.get(t.number)) for t in trials]
    axes = front_axes(config)
    front = pareto_front(rows, axes)
    final = read_final(out)
    merge_final(front, final)
    verified = read_verified(out)
    merge_verified(front, verified)
    write_csv(out / "trials.csv", rows)
    write_csv(out / "pareto.csv", front)
    write_references(out, references)
    plot_front(out / "pareto.png", rows, front, axes, references, final, verified)
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
        rungs=rung_counts(trials, config) if config.needs_training() else {},
        best=best,
        pareto_axes=[m for m, _ in axes],
        pareto=front,
        trials=rows,
        verify=verified,  # a resumed run keeps it until verify_run measures the new top nets
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


def write_final_report(
    out: Path, record: FinalRecord, axes: list[tuple[str, str]] | None = None
) -> SearchSummary:
    """Rewrite ``pareto.csv`` and ``summary.json`` of the run in ``out`` with ``record``'s final figures
    (``summary.json`` gains ``final_best`` and ``final_rank_by``; its other keys are kept), and, given the
    front's ``axes``, redraw ``pareto.png`` with the final-fidelity points."""
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
    if axes:
        plot_front(out / "pareto.png", rows, front, axes, read_references(out), record, summary.verify)
    return summary


def write_verify_report(out: Path, record: VerifyRecord, axes: list[tuple[str, str]]) -> SearchSummary:
    """Rewrite ``pareto.csv`` and ``summary.json`` of the run in ``out`` with ``record``'s measured
    latency (``summary.json`` gains ``verify``; its other keys are kept) and redraw ``pareto.png``."""
    summary = read_summary(out)
    front = [row.model_dump() for row in summary.pareto]
    merge_verified(front, record)
    write_csv(out / "pareto.csv", front)
    summary.pareto = [TrialRow.model_validate(row) for row in front]
    summary.verify = record
    write_summary(summary, out)
    rows = [row.model_dump() for row in summary.trials]
    plot_front(out / "pareto.png", rows, front, axes, read_references(out), read_final(out), record)
    return summary
