"""The search-quality benchmark's figures (``benchmarks/search_quality.py`` measures): rank fidelity
against its seed-noise ceiling, the hypervolume of the finalized search front against random sampling's,
and the front against hand-designed references; each as a dict (for ``results.json``) and as the short
lines of the closing block."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from pneumoniamnist_report import GOAL_ACC, GOAL_AUC, measured, ratio_text

from nas.latency.validate import kendall_tau
from nas.search.hypervolume import comparison_frame, hypervolume
from nas.search.pareto import dominates, shortfall

FIDELITY_GOAL = 0.80  # of the ceiling
HYPERVOLUME_GOAL = 1.2  # search / random
PUBLISHED_RATIO = (
    1 / 20
)  # the published ResNet-18 (28) figures at this fraction of resnet18_medmnist's latency
GOAL_RATIO = 1 / 50  # PneumoniaMNIST's goal
Row = dict[str, Any]


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else "MET" if ok else "NOT MET"


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


# ---------------------------------------------------------------- 1. rank fidelity


def seed_ceiling(test_auc: Mapping[str, Mapping[int, float]], seeds: Sequence[int]) -> float | None:
    """Mean Kendall tau between two independent seeds' test AUCs over the same nets, over every pair of
    seeds: how well any single training could rank these nets. None with one seed."""
    pairs = list(itertools.combinations(seeds, 2))
    if not pairs:
        return None
    nets = list(test_auc)
    return statistics.fmean(
        kendall_tau([test_auc[n][a] for n in nets], [test_auc[n][b] for n in nets]) for a, b in pairs
    )


def rank_fidelity(
    score: Mapping[str, float], test_auc: Mapping[str, Mapping[int, float]], ceiling: float | None
) -> Row:
    """Kendall tau between ``score`` (higher is better) and the mean test AUC over seeds, and its share of
    ``ceiling``; the goal is 80 % of it (issue 13's definition). The mean of several seeds is a less noisy
    truth than the one seed each side of the ceiling, so the share can pass 100 %; ``single_tau`` (the mean
    over seeds of tau against one seed's test AUC) and ``single_share`` compare like with like."""
    nets = list(score)
    scores = [score[n] for n in nets]
    truth = [statistics.fmean(test_auc[n].values()) for n in nets]
    tau = kendall_tau(scores, truth)
    seeds = sorted(set.intersection(*(set(test_auc[n]) for n in nets))) if nets else []
    single = [kendall_tau(scores, [test_auc[n][s] for n in nets]) for s in seeds]
    single_tau = statistics.fmean(single) if single else float("nan")
    share = _share(tau, ceiling)
    return {
        "nets": len(nets),
        "tau": tau,
        "ceiling": ceiling,
        "share": share,
        "met": None if share is None else share >= FIDELITY_GOAL,
        "single_tau": single_tau,
        "single_share": _share(single_tau, ceiling),
    }


def _share(tau: float, ceiling: float | None) -> float | None:
    return tau / ceiling if ceiling and ceiling > 0 and tau == tau else None


def fidelity_lines(results: Mapping[str, Row], seeds: int, epochs: int) -> list[str]:
    lines = []
    for label, r in results.items():
        share = "-" if r["share"] is None else f"{r['share']:.0%}"
        single = "-" if r.get("single_share") is None else f"{r['single_share']:.0%}"
        lines.append(
            f"rank fidelity [{label}]: tau {fmt(r['tau'])} vs ceiling {fmt(r['ceiling'])} = {share} of "
            f"ceiling (goal >= {FIDELITY_GOAL:.0%}): {met(r['met'])}; {r['nets']} nets x {seeds} seeds "
            f"x e{epochs}; against one seed at a time (like the ceiling) tau {fmt(r.get('single_tau'))} "
            f"= {single}"
        )
    return lines


# ---------------------------------------------------------------- 2. search vs random


def front_hypervolume(
    fronts: Mapping[str, Sequence[Row]], split: str = "test", metric: str = "auc", higher: bool = True
) -> Row:
    """Hypervolume of (measured latency down, mean ``split`` ``metric`` over seeds, ``higher`` better) of the
    ``search`` and ``random`` finalized nets, scaled by the union's ranges (``nas.search.hypervolume``),
    against two shared references. The goal's figure is test AUC; the same on the validation figures
    (what a search may see) tells a search that lost from a validation split that does not predict test.

    ``nadir``, the goal's: the union's worst corner moved out by 1 / (n - 1) of each range, n the larger
    front's size (Ishibuchi et al. 2018, "How to specify a reference point in hypervolume calculation for
    fair performance comparison"), so that a front's extreme nets count too; at the worst corner itself a
    front of five nets holding both extremes would count for nothing. ``median``: the median random net,
    stricter (only nets better than a typical random one on both objectives count)."""
    sign = 1 if higher else -1
    runs = {
        name: [(r["measured_ms"], sign * r[split][metric]) for r in rows] for name, rows in fronts.items()
    }
    scale, frame = comparison_frame([p for points in runs.values() for p in points], runs["random"])
    margin = 1 / max(1, max(len(points) for points in runs.values()) - 1)
    worst_cost, worst_score = frame["worst"]
    references = {
        "nadir": (worst_cost + margin * scale[0], worst_score - margin * scale[1]),
        "median": frame["median"],
    }
    result: Row = {
        "axes": f"{split} {metric} {'up' if higher else 'down'}, measured ms down",
        "nets": {k: len(v) for k, v in runs.items()},
        "references": {},
    }
    for key, reference in references.items():
        volumes = {name: hypervolume(points, reference, scale) for name, points in runs.items()}
        ratio = volumes["search"] / volumes["random"] if volumes["random"] else None
        result["references"][key] = {
            "point": (reference[0], sign * reference[1]),  # in the metric's own units
            **volumes,
            "ratio": ratio,
            "met": None if ratio is None else ratio >= HYPERVOLUME_GOAL,
        }
    return result


def hypervolume_lines(
    hv: Row, goal: bool = True, references: Sequence[str] = ("nadir", "median")
) -> list[str]:
    """One line per reference named; ``goal``: the goal's verdict on the nadir line (the test AUC figure)."""
    counts = ", ".join(f"{k} {v}" for k, v in hv["nets"].items())
    lines = []
    for key in references:
        r = hv["references"][key]
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        verdict = f" (goal >= {HYPERVOLUME_GOAL}x): {met(r['met'])}" if goal and key == "nadir" else ""
        lines.append(
            f"hypervolume ({hv['axes']}; ref {key} {r['point'][0]:.3f} ms, {r['point'][1]:.4f}): "
            f"search {r['search']:.4f}, random {r['random']:.4f}, ratio {ratio}{verdict}; "
            f"finalized nets {counts}"
        )
    return lines


# ---------------------------------------------------------------- 3. hand design


def pm(row: Row, metric: str) -> str:
    std = row["test_std"].get(metric)
    return f"{fmt(row['test'][metric], 4)}±{fmt(std, 4)}"


def table(rows: Sequence[Row]) -> list[str]:
    """A Markdown table: model, params, measured ms, ratio to resnet18_medmnist, test AUC and ACC."""
    lines = [
        "| model | params | ms | vs resnet18 | test AUC | test ACC | seeds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = ratio_text(r["ratio_to_resnet18"])
        lines.append(
            f"| {r['name']} | {r['params']:,} | {r['measured_ms']:.3f} | {ratio} | "
            f"{pm(r, 'auc')} | {pm(r, 'accuracy')} | {r['seeds']} |"
        )
    return lines


def dominance(front: Sequence[Row], references: Sequence[Row]) -> dict[str, Row]:
    """Per reference: the front's nets that Pareto-dominate it on (mean test AUC up, measured ms down),
    and, when none does, the closest one (``shortfall``)."""
    result = {}
    for ref in references:
        winners = [r["name"] for r in front if dominates(measured(r), measured(ref))]
        closest = min(front, key=lambda r: shortfall(measured(r), measured(ref)), default=None)
        result[ref["name"]] = {
            "dominated_by": winners,
            "closest": None if winners or closest is None else closest["name"],
        }
    return result


def reaching(rows: Sequence[Row], auc: float, accuracy: float, max_ms: float) -> list[str]:
    """Names of the nets whose mean test AUC and ACC reach ``auc`` and ``accuracy`` within ``max_ms``."""
    return [
        r["name"]
        for r in rows
        if r["test"]["auc"] >= auc and r["test"]["accuracy"] >= accuracy and r["measured_ms"] <= max_ms
    ]


def hand_verdicts(
    front: Sequence[Row],
    references: Sequence[Row],
    resnet_ms: float,
    published: Row | None,
    pneumonia: bool,
) -> Row:
    """Dominance of every reference by the search front, the published ResNet-18 (28) figures at 1/20 of
    its latency, and (PneumoniaMNIST) the goal of AUC >= 0.98, ACC >= 0.93 at 1/50. ``front``: the nets
    finalize chose on validation, so no verdict picks among nets by their test figures."""
    verdicts: Row = {"dominance": dominance(front, references) if front else None}
    if published is not None:
        verdicts["published"] = {
            **published,
            "max_ms": resnet_ms * PUBLISHED_RATIO,
            "reached_by": reaching(
                front, published["auc"], published["accuracy"], resnet_ms * PUBLISHED_RATIO
            ),
        }
    if pneumonia:
        verdicts["goal"] = {
            "max_ms": resnet_ms * GOAL_RATIO,
            "reached_by": reaching(front, GOAL_AUC, GOAL_ACC, resnet_ms * GOAL_RATIO),
        }
    return verdicts


def hand_lines(verdicts: Row, front: Sequence[Row], by_name: Mapping[str, Row]) -> list[str]:
    lines = []
    if verdicts["dominance"] is None:
        lines.append("search front vs hand design: no finalized search front (run --part search)")
    else:
        lines.append(
            f"search front (finalized, non-dominated on validation): {', '.join(r['name'] for r in front)}"
        )
        for name, d in verdicts["dominance"].items():
            text = f"dominated by {', '.join(d['dominated_by'])}" if d["dominated_by"] else "NOT dominated"
            if d["closest"]:
                c, ref = by_name[d["closest"]], by_name[name]
                text += (
                    f" (closest {d['closest']}: AUC {c['test']['auc'] - ref['test']['auc']:+.4f}, "
                    f"latency {c['measured_ms'] / ref['measured_ms']:.2f}x)"
                )
            lines.append(f"front vs {name}: {text}")
        count, total = (
            sum(bool(d["dominated_by"]) for d in verdicts["dominance"].values()),
            len(verdicts["dominance"]),
        )
        lines.append(f"front dominates {count}/{total} references: {met(count == total)}")
    if "published" in verdicts:
        p = verdicts["published"]
        who = ", ".join(p["reached_by"]) or "no front net"
        ok = bool(p["reached_by"]) if front else None
        lines.append(
            f"published ResNet-18 (28) AUC {p['auc']:.3f} ACC {p['accuracy']:.3f} at <= "
            f"{ratio_text(PUBLISHED_RATIO)} of resnet18 ({p['max_ms']:.3f} ms): {who}: {met(ok)}"
        )
    if "goal" in verdicts:
        g = verdicts["goal"]
        who = ", ".join(g["reached_by"]) or "none"
        lines.append(
            f"PneumoniaMNIST goal AUC >= {GOAL_AUC} ACC >= {GOAL_ACC} at <= {ratio_text(GOAL_RATIO)} of "
            f"resnet18 ({g['max_ms']:.3f} ms), a search front net: {who}: {met(bool(g['reached_by']))}"
        )
    return lines
