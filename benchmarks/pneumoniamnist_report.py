"""The PneumoniaMNIST benchmark's tables and verdicts (``benchmarks/pneumoniamnist.py`` measures): the
results table, in the terminal and as Markdown, the issue's goal per found network, Pareto dominance over
the hand-designed baselines, and the search's hypervolume against the random run."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from nas.console import console
from nas.search.pareto import dominates, shortfall

COMPARED = ("mobilenet_v2_0.35", "mnasnet_a1")  # the hand-designed baselines the goal names
COMMITTED = "committed"  # the row name of ``--committed``'s model
GOAL_AUC, GOAL_ACC = 0.98, 0.93
out = console()


def goal_failures(row: dict[str, Any], max_ratio: float) -> list[str]:
    """What keeps ``row`` from the issue's goal; empty when it reaches it."""
    test, fails = row["test"], []
    if not test["auc"] >= GOAL_AUC:
        fails.append(f"test AUC {test['auc']:.4f} < {GOAL_AUC}")
    if not test["accuracy"] >= GOAL_ACC:
        fails.append(f"test ACC {test['accuracy']:.4f} < {GOAL_ACC}")
    if not row["ratio_to_resnet18"] <= max_ratio:
        fails.append(f"latency {ratio_text(row['ratio_to_resnet18'])} of ResNet-18 > {ratio_text(max_ratio)}")
    return fails


def measured(row: dict[str, Any]) -> tuple[float, float]:
    """A row's (test AUC, measured latency) as costs (``nas.search.pareto``: lower is better)."""
    return -row["test"]["auc"], row["measured_ms"]


def ratio_text(ratio: float) -> str:
    return f"1/{1 / ratio:.0f}" if ratio < 1 else f"{ratio:.2f}x"


def predicted_text(row: dict[str, Any]) -> str:
    """The table's (fp32) prediction, or "-" where it cannot price the arch or the row is int8."""
    ms = row["predicted_ms"]
    return "-" if ms is None or row["precision"] != "fp32" else f"{ms:.3f}"


COLUMNS = [
    ("model", lambda r: r["name"]),
    ("prec", lambda r: r["precision"]),
    ("params", lambda r: f"{r['params']:,}"),
    ("MACs", lambda r: f"{r['macs'] / 1e6:.2f} M"),
    ("peak KB", lambda r: f"{r['peak_activation_kb']:.1f}"),
    ("pred ms", lambda r: predicted_text(r)),
    ("ms", lambda r: f"{r['measured_ms']:.3f}"),
    ("vs ResNet-18 fp32", lambda r: ratio_text(r["ratio_to_resnet18"])),
    ("ACC", lambda r: f"{r['test']['accuracy']:.4f}"),
    ("AUC", lambda r: f"{r['test']['auc']:.4f}"),
    ("sens", lambda r: f"{r['test']['sensitivity']:.4f}"),
    ("spec", lambda r: f"{r['test']['specificity']:.4f}"),
    ("ECE", lambda r: f"{r['test']['ece']:.4f}"),
]


def print_table(rows: list[dict[str, Any]], caption: str) -> None:
    table = Table(
        title="PneumoniaMNIST: found networks vs same-recipe baselines (test split)", caption=caption
    )
    for name, _ in COLUMNS:
        table.add_column(name, justify="left" if name in ("model", "prec") else "right")
    for row in rows:
        table.add_row(*(cell(row) for _, cell in COLUMNS))
    out.print(table)


def markdown(rows: list[dict[str, Any]], caption: str) -> str:
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r) for _, cell in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + f"\n\n{caption}\n"


def print_verdicts(rows: list[dict[str, Any]], found: dict[str, str], max_ratio: float) -> dict[str, Any]:
    """The goal per found network (``found``: name to role), and dominance over the hand-designed
    baselines; returned for the JSON."""
    fp32 = {r["name"]: r for r in rows if r["precision"] == "fp32"}
    int8 = {r["name"]: r for r in rows if r["precision"] == "int8"}
    goal = f"test AUC >= {GOAL_AUC}, ACC >= {GOAL_ACC}, latency <= {ratio_text(max_ratio)} of ResNet-18"
    out.print(f"\n[bold]Goal[/bold] ({goal}):")
    verdicts: dict[str, Any] = {"goal": {}, "dominance": {}}
    for name, role in found.items():
        fails = {p: goal_failures(table[name], max_ratio) for p, table in (("fp32", fp32), ("int8", int8))}
        verdicts["goal"][name] = fails
        for precision, failing in fails.items():
            text = "reaches it" if not failing else "fails: " + "; ".join(failing)
            out.print(f"  {name} {precision} ({role}): {text}")
    out.print("\n[bold]Pareto dominance[/bold] on (test AUC up, measured fp32 latency down):")
    for base in (b for b in COMPARED if b in fp32):
        base_costs = measured(fp32[base])
        winners = [name for name in found if dominates(measured(fp32[name]), base_costs)]
        closest = min(found, key=lambda name: shortfall(measured(fp32[name]), base_costs), default=None)
        verdicts["dominance"][base] = {"dominated_by": winners, "closest": closest}
        out.print(f"  {base}: dominated by {', '.join(winners) or 'none'}")
        if closest is not None and not winners:
            r, b = fp32[closest], fp32[base]
            out.print(
                f"    closest: {closest} (AUC {r['test']['auc'] - b['test']['auc']:+.4f}, "
                f"latency {r['measured_ms'] / b['measured_ms']:.2f}x of {base})"
            )
    if COMMITTED in fp32:
        verdicts[COMMITTED] = print_against_committed(fp32, found)
    return verdicts


def print_against_committed(fp32: dict[str, dict[str, Any]], found: dict[str, str]) -> dict[str, Any]:
    """Which found networks may replace the committed model: higher test AUC and lower fp32 latency,
    both timed in this run (issue 13's rule for updating it)."""
    base = fp32[COMMITTED]
    out.print(
        f"\n[bold]Against the committed model[/bold] (test AUC {base['test']['auc']:.4f}, "
        f"{base['measured_ms']:.3f} ms): a replacement must be better on both"
    )
    verdicts = {}
    for name in found:
        row = fp32[name]
        auc_delta = row["test"]["auc"] - base["test"]["auc"]
        latency_ratio = row["measured_ms"] / base["measured_ms"]
        better = auc_delta > 0 and latency_ratio < 1
        verdicts[name] = {"auc_delta": auc_delta, "latency_ratio": latency_ratio, "better": better}
        text = "better on both" if better else "not better on both"
        out.print(f"  {name}: AUC {auc_delta:+.4f}, latency {latency_ratio:.2f}x: {text}")
    return verdicts


def print_hypervolume(result: dict[str, Any]) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in result["trials"].items())
    axes = "(table latency down, val AUC up), feasible completed trials"
    out.print(f"\n[bold]Hypervolume[/bold] on {axes} ({counts}):")
    for label, r in result["references"].items():
        line = (
            f"  reference {label} ({r['point'][0]:.3f} ms, AUC {r['point'][1]:.4f}): search {r['search']:.4f}"
        )
        if "random" in r:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            line += f", random {r['random']:.4f}, search/random {ratio}"
        out.print(line)
