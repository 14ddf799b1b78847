"""``nas auto``'s figures (issue 14): one command per dataset with a time budget, its summary against the
issue's goals, wall time against the budget.

    python benchmarks/auto.py [--datasets retinamnist pneumoniamnist pneumonia550] [--budget 30] \\
        [--out runs/auto_bench]

Per dataset, ``nas auto --data D --budget B --out OUT/D --latency-ratio R`` runs in a child process (its
wall time taken from outside, start to exit); its ``summary.json`` gives the test figures of the final
model and its latency ratio to ``resnet18_medmnist``, both networks timed interleaved on this machine by
``nas auto`` itself. Goals (R and the bar per dataset):

- ``retinamnist`` (R 1/20): test AUC >= 0.750 and ACC >= 0.531 (Google AutoML Vision's published figures);
- ``pneumoniamnist`` (R 1/40): test AUC >= 0.975;
- ``pneumonia550`` (R 1/20): a stratified 550-image subset of PneumoniaMNIST's training split (seed 0;
  the official val and test), written to ``OUT/pneumonia550.npz``: test AUC within 0.01 of
  ``resnet18_medmnist`` trained on the same subset with the run's final recipe (the experiment's training
  settings with its finalize epochs, seed 0; trained here after the run, outside its budget);
- all: wall time within 10 % of the budget.

A finished dataset (its ``summary.json`` there) is not run again; ``--resume`` goes on with a killed one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nas.data import load_dataset
from nas.data.medmnist import find_file

GOALS = {
    "retinamnist": {"ratio": 1 / 20, "auc": 0.750, "accuracy": 0.531},
    "pneumoniamnist": {"ratio": 1 / 40, "auc": 0.975},
    "pneumonia550": {"ratio": 1 / 20, "auc_vs_resnet18": 0.01},
}
SUBSET = 550


def subset_file(out: Path) -> Path:
    """PneumoniaMNIST with a stratified ``SUBSET``-image training split (seed 0), official val and test."""
    path = out / "pneumonia550.npz"
    if path.is_file():
        return path
    with np.load(find_file("pneumoniamnist", 28)) as data:
        arrays = {k: data[k] for k in data.files}
    labels = arrays["train_labels"].reshape(-1)
    rng = np.random.default_rng(0)
    classes = np.unique(labels)
    shares = [round(SUBSET * np.mean(labels == label)) for label in classes[:-1]]
    shares.append(SUBSET - sum(shares))
    keep = []
    for label, share in zip(classes, shares, strict=True):
        keep += list(rng.choice(np.flatnonzero(labels == label), size=share, replace=False))
    keep = np.sort(np.array(keep))
    arrays["train_images"], arrays["train_labels"] = (
        arrays["train_images"][keep],
        arrays["train_labels"][keep],
    )
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def run_auto(data: str, out: Path, budget: float, ratio: float) -> float:
    """``nas auto`` in a child process; its wall seconds (a finished run: the recorded ones)."""
    record = out / "bench_wall.json"
    if (out / "summary.json").is_file() and record.is_file():
        return json.loads(record.read_text())["seconds"]
    command = [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main(sys.argv[1:]))"]
    command += [
        "auto",
        "--data",
        data,
        "--budget",
        str(budget),
        "--out",
        str(out),
        "--latency-ratio",
        str(ratio),
    ]
    if (out / "auto.json").is_file():
        command.append("--resume")  # a killed benchmark: the wall time counts this invocation only
    print(" ".join(command[3:]), flush=True)
    start = time.monotonic()
    subprocess.run(command, check=True)
    seconds = time.monotonic() - start
    record.write_text(json.dumps({"seconds": seconds}))
    return seconds


def resnet18_on(data: str, run: Path) -> dict[str, float]:
    """``resnet18_medmnist`` trained with the run's final recipe on ``data``: its test figures."""
    from nas.evaluate.cache import train_cached
    from nas.search.config import load_experiment

    config = load_experiment(str(run / "experiment.yaml"))
    splits = load_dataset(data, config.input_size)
    recipe = config.finalize.train_config(config.train_config(), splits).replace(seed=0)
    metrics, _ = train_cached("resnet18_medmnist", splits, recipe, run / "resnet18_medmnist")
    return metrics["test"]


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def report(name: str, summary: dict, seconds: float, budget: float, extra: dict) -> list[str]:
    goal, test, latency = GOALS[name], summary["model"]["test"], summary["latency"]
    ratio = latency["ratio"]
    lines = [
        f"{name}: {summary['data']['train']} training images; model trial {summary['model']['trial']}, "
        f"{summary['model']['params']:,} params",
        f"  test AUC {test['auc']:.4f}  ACC {test['accuracy']:.4f}  (at threshold "
        f"{test.get('accuracy_at_threshold', float('nan')):.4f})",
        f"  latency {latency['model_ms']:.3f} ms vs resnet18_medmnist {latency['reference_ms']:.3f} ms: "
        f"1/{1 / ratio:.1f} (goal <= 1/{1 / goal['ratio']:.0f}: {verdict(ratio <= goal['ratio'])})",
        f"  wall {seconds / 60:.1f} min for a {budget:g} min budget: {seconds / 60 / budget:.2f}x "
        f"({verdict(seconds <= 1.1 * budget * 60)}, goal <= 1.10x)",
    ]
    for metric in ("auc", "accuracy"):
        if metric in goal:
            met = test[metric] >= goal[metric]
            lines.append(f"  test {metric} goal >= {goal[metric]}: {verdict(met)}")
    if "resnet18" in extra:
        ref = extra["resnet18"]
        gap = ref["auc"] - test["auc"]
        lines.append(
            f"  resnet18_medmnist, same recipe, same subset: test AUC {ref['auc']:.4f} "
            f"ACC {ref['accuracy']:.4f}; gap {gap:+.4f} "
            f"(goal <= {goal['auc_vs_resnet18']}: {verdict(gap <= goal['auc_vs_resnet18'])})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(GOALS), default=list(GOALS))
    parser.add_argument("--budget", type=float, default=30.0, help="minutes per dataset (default 30)")
    parser.add_argument("--out", type=Path, default=Path("runs/auto_bench"))
    args = parser.parse_args()
    lines = []
    for name in args.datasets:
        data = str(subset_file(args.out)) if name == "pneumonia550" else name
        out = args.out / name
        seconds = run_auto(data, out, args.budget, GOALS[name]["ratio"])
        summary = json.loads((out / "summary.json").read_text())
        extra = {"resnet18": resnet18_on(data, out)} if name == "pneumonia550" else {}
        lines += report(name, summary, seconds, args.budget, extra)
        print("\n".join(lines[-8:]), flush=True)
    text = "\n".join(lines)
    (args.out / "results.txt").write_text(text + "\n")
    print("\n" + text)


if __name__ == "__main__":
    main()
