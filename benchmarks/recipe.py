"""The final-training recipe's ingredients, each measured by k-fold validation (issue 14, item 3).

    python benchmarks/recipe.py [--datasets pneumoniamnist retinamnist] [--folds 3] [--workers 2] \\
        [--out /tmp/bench/recipe] [--part ablation|recipe|all]

Only train + val are read (the official test split is not touched). They are pooled and dealt into
``2 x folds`` stratified parts (``nas.evaluate.protocols.kfold.fold_assignment``); fold k trains on all
parts but 2k and 2k+1, selects its best epoch and threshold on part 2k and is scored on part 2k+1, so
the epoch choice does not flatter the score.

- ``ablation``: the baseline (the final recipe ``nas auto`` used before this benchmark: 15 epochs,
  batch 64, AdamW lr 3e-3, cosine, shifts of 1/14, loss class weights) against the baseline with one
  ingredient changed (``VARIANTS``), then, forward selection, the best single change (no class weights)
  with each other ingredient added, for two networks (``NETS``: one inverted-residual net with SE, one
  tiny depthwise-separable net). Printed: per dataset and variant the mean over folds and networks of
  the paired difference to the baseline (AUC, ACC, balanced ACC) with its std over the folds x networks
  pairs, and the mean baseline figures.
- ``recipe``: the baseline against ``nas.evaluate.recipe.final_recipe`` (what ``nas train``,
  ``nas finalize`` and ``nas auto`` now use), the same way.
- ``signals``: for ECG5000 (``--datasets ecg5000 --part signals``), the final training of
  ``experiments/ecg5000.yaml`` (``SIGNAL_BASELINE``: 15 epochs, at least 300 steps, shifts of 1/14,
  epoch by accuracy) against one change each (``SIGNAL_VARIANTS``), for two of that search's finalists
  (``SIGNAL_NETS``).

Trainings run as ``--workers`` one-thread processes; each lands in its own directory under ``--out``
and is reused on a rerun (``nas.evaluate.cache``), so a killed run loses only the trainings under way.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from nas.data import load_dataset
from nas.data.splits import Splits
from nas.evaluate.config import TrainConfig
from nas.evaluate.protocols.kfold import fold_assignment

NETS = {
    "ir-se": "conv_k3_s2_c16::ir_k5_s2_e6_c24,ir_k5_e6_c24_noskip:ir_k3_s2_e6_c40_se0.25:"
    "ir_k3_s2_e3_c64,ir_r2_k3_e3_c64_noskip:ir_k3_e6_c72:head_c256_d0.1",
    "ds-tiny": "conv_k3_s2_c16::ds_k5_s2_c24:ds_k5_s2_c32:ds_k3_s2_c64::head_c256_d0.1",
}
BASELINE = TrainConfig(epochs=15, batch_size=64, lr=0.003, class_weighting="loss", seed=0, threads=1)
VARIANTS: dict[str, dict[str, Any]] = {
    "steps >= 500": {"min_steps": 500},
    "steps >= 1500": {"min_steps": 1500},
    "one-cycle": {"schedule": "onecycle"},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "EMA": {"ema_decay": "auto"},
    "rotate 10 + zoom 0.1": {"max_rotate": 10.0, "max_scale": 0.1},
    "colour jitter 0.2": {"color_jitter": 0.2},
    "no class weights": {"class_weighting": "none"},
    "balanced sampler": {"class_weighting": "sampler"},
    # forward selection from the best single change: each other ingredient added to it
    "no weights + steps >= 1500": {"class_weighting": "none", "min_steps": 1500},
    "no weights + EMA": {"class_weighting": "none", "ema_decay": "auto"},
    "no weights + colour jitter": {"class_weighting": "none", "color_jitter": 0.2},
}
SIGNAL_NETS = {
    "ds-ir-se": "1d:conv_k7_s2_c16::ds_k7_s2_c24_se0.25:ds_k5_c16_se0.25:ir_k7_s2_e6_c24_se0.25:ds_k7_c64"
    ":head_c128_d0.1",
    "ds-k9": "1d:conv_k7_s2_c16::ds_k7_s2_c24_se0.25:ds_k5_c32_se0.25:ir_k7_s2_e3_c24_se0.25"
    ":ds_k9_c32_se0.25:head_c128_d0.1",
}
SIGNAL_BASELINE = TrainConfig(
    epochs=15, min_steps=300, batch_size=64, lr=0.003, select_metric="accuracy", seed=0, threads=1
)
SIGNAL_VARIANTS: dict[str, dict[str, Any]] = {
    "steps >= 1500": {"min_steps": 1500},
    "no shifts": {"augment": False},
    "EMA": {"ema_decay": "auto"},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "epoch by balanced accuracy": {"select_metric": "balanced_accuracy"},
}
METRICS = ("auc", "accuracy", "balanced_accuracy")
EMA_HORIZON = 0.1  # the weight average spans about this share of the steps
_SPLITS: dict[str, Splits] = {}


def ema_decay_for(steps: int) -> float:
    """An EMA decay whose horizon (1 / (1 - decay)) is ``EMA_HORIZON`` of the training, at least 10 steps."""
    return 1 - 1 / max(10.0, EMA_HORIZON * steps)


def fold(name: str, folds: int, k: int) -> Splits:
    """Fold ``k``: train on the other parts, select on part 2k, score on part 2k+1 (as ``test``)."""
    key = f"{name}-fold{k}of{folds}"
    if key not in _SPLITS:
        splits = load_dataset(name, 28)
        data = splits.train_and_val()
        part = fold_assignment(data.labels.reshape(len(data.labels), -1)[:, 0], 2 * folds, seed=0)
        held = (part == 2 * k) | (part == 2 * k + 1)
        _SPLITS[key] = Splits(
            key,
            splits.task,
            splits.class_names,
            data.subset(np.flatnonzero(~held)),
            data.subset(np.flatnonzero(part == 2 * k)),
            data.subset(np.flatnonzero(part == 2 * k + 1)),
        )
    return _SPLITS[key]


def config_for(variant: str, splits: Splits) -> TrainConfig:
    from nas.evaluate.recipe import final_recipe

    baseline = SIGNAL_BASELINE if splits.dims == 1 else BASELINE
    if variant == "baseline":
        return baseline
    if variant == "recipe":  # as nas auto now plans it: class weights left to the recipe
        return final_recipe(BASELINE.replace(class_weighting="none"), splits)
    changes = dict((SIGNAL_VARIANTS if splits.dims == 1 else VARIANTS)[variant])
    if changes.get("ema_decay") == "auto":
        n = len(splits.train)
        changes["ema_decay"] = ema_decay_for(baseline.replace(**{**changes, "ema_decay": 0.0}).total_steps(n))
    return baseline.replace(**changes)


def nets_for(name: str) -> dict[str, str]:
    return SIGNAL_NETS if name == "ecg5000" else NETS


def train(out: str, name: str, folds: int, k: int, net: str, variant: str) -> dict[str, float]:
    """One training (or its cached result): the scored part's figures."""
    from nas.evaluate.cache import train_cached

    splits = fold(name, folds, k)
    metrics, _ = train_cached(nets_for(name)[net], splits, config_for(variant, splits), out)
    return {m: metrics["test"][m] for m in METRICS}


def run_all(jobs: list[tuple], workers: int) -> dict[tuple, dict[str, float]]:
    results = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(train, *job): job for job in jobs}
        for done, future in enumerate(as_completed(futures), 1):
            job = futures[future]
            results[job[1:]] = future.result()
            print(f"  [{done}/{len(jobs)}] {job[1]} fold {job[3]} {job[4]} {job[5]}", flush=True)
    return results


def report(datasets: list[str], folds: int, variants: list[str], results: dict) -> None:
    for name in datasets:
        nets = nets_for(name)
        base = [results[(name, folds, k, net, "baseline")] for k in range(folds) for net in nets]
        means = "  ".join(f"{m} {statistics.mean(r[m] for r in base):.4f}" for m in METRICS)
        print(f"\n{name}: baseline over {folds} folds x {len(nets)} nets: {means}")
        print(f"  {'variant':<22}" + "".join(f"{'d' + m:>24}" for m in METRICS))
        for variant in variants:
            pairs = [
                (results[(name, folds, k, net, variant)], results[(name, folds, k, net, "baseline")])
                for k in range(folds)
                for net in nets
            ]
            cells = []
            for m in METRICS:
                diffs = [a[m] - b[m] for a, b in pairs]
                cells.append(f"{statistics.mean(diffs):+.4f} +- {statistics.stdev(diffs):.4f}")
            print(f"  {variant:<22}" + "".join(f"{c:>24}" for c in cells))


def slug(variant: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "_", variant.lower()).strip("_")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["pneumoniamnist", "retinamnist"])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench/recipe"))
    parser.add_argument("--part", choices=("ablation", "recipe", "all", "signals"), default="all")
    args = parser.parse_args()
    parts = {"ablation": list(VARIANTS), "recipe": ["recipe"], "all": [*VARIANTS, "recipe"]}
    variants = (parts | {"signals": list(SIGNAL_VARIANTS)})[args.part]
    jobs = [
        (str(args.out / name / net / slug(variant) / f"fold{k}"), name, args.folds, k, net, variant)
        for name in args.datasets
        for variant in ["baseline", *variants]
        for k in range(args.folds)
        for net in nets_for(name)
    ]
    results = run_all(jobs, args.workers)
    report(args.datasets, args.folds, variants, results)


if __name__ == "__main__":
    main()
