"""Part 1 of the search-quality benchmark (``benchmarks/search_quality.py``): rank fidelity. Random nets
of the experiment's space that the search would train, each scored as the search scores candidates and
trained with the final recipe on several seeds; Kendall tau between the two, next to the seed ceiling."""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

import search_quality_report as report
from search_quality_jobs import (
    Results,
    digest,
    final_recipe,
    one_thread,
    run_jobs,
    score_job,
    seed_list,
    train_job,
)

from nas.errors import NasError, UsageError
from nas.search.config import TRAINED_METRICS, ExperimentConfig, load_experiment
from nas.search.factory import dataset_shape, latency_table
from nas.search.objective import cheap_metrics, cheap_rejection
from nas.search.report import front_axes
from nas.space import SearchSpace

FULL, SCORES = "full_trainings.jsonl", "scores.jsonl"
Row = dict[str, Any]


def sample_nets(config: ExperimentConfig, n: int, seed: int) -> list[str]:
    """``n`` distinct random nets of the space that pass the experiment's cheap constraints."""
    space = SearchSpace.from_yaml(config.space)
    in_chans, num_classes = dataset_shape(config, None)
    table = latency_table(config)
    rng, nets = random.Random(seed), []
    for _ in range(1000 * n):
        if len(nets) == n:
            break
        arch = space.sample(rng)
        if arch.to_str() in nets:
            continue
        try:
            metrics = cheap_metrics(arch, in_chans, config.input_size, num_classes, table)
        except NasError:  # too small an input for the net: the search could not train it either
            continue
        if cheap_rejection(config, metrics) is None:
            nets.append(arch.to_str())
    if len(nets) < n:
        raise UsageError(f"only {len(nets)} of {n} random nets of {config.space} pass the cheap constraints")
    return nets


def score_metric(config: ExperimentConfig) -> tuple[str, bool]:
    """The trained metric the search ranks candidates by (the reward's accuracy term or the front's first
    trained objective, as ``nas finalize`` takes it), and whether higher is better."""
    for metric, direction in front_axes(config):
        if metric in TRAINED_METRICS:
            return metric, direction == "maximize"
    raise UsageError(f"experiment {config.name} ranks candidates by no trained metric: nothing to compare")


def score_recipe(config: ExperimentConfig) -> str:
    """What a search score depends on, as a short key (threads left out)."""
    training = {k: v for k, v in config.training.items() if k != "threads"}
    return digest(
        [
            config.dataset.ref,
            config.input_size,
            training,
            config.evaluation.model_dump(mode="json"),
            config.seed,
        ]
    )


def load_scorers(config: ExperimentConfig, args: argparse.Namespace) -> dict[str, ExperimentConfig]:
    """The experiment and each ``--score-experiments`` variant (same data and size), by file stem."""
    scorers = {Path(args.experiment).stem: config}
    for path in args.score_experiments:
        variant = one_thread(load_experiment(path), path)
        for key in ("dataset", "input_size", "space"):
            if getattr(variant, key) != getattr(config, key):
                raise UsageError(
                    f"{path} differs from {args.experiment} in '{key}': its scores rank other nets"
                )
        scorers[Path(path).stem] = variant
    return scorers


def fidelity_part(
    config: ExperimentConfig, args: argparse.Namespace, cache: Path, pool: Any
) -> tuple[Row, list[str]]:
    scorers = load_scorers(config, args)
    nets, seeds = sample_nets(config, args.nets, args.seed), seed_list(config, args.seeds)
    recipe, epochs = final_recipe(config, args.final_epochs, args.min_steps).to_json(), args.final_epochs
    full = Results(cache, FULL, lambda r: (r["arch"], r["seed"], r["epochs"]))
    scores = Results(cache, SCORES, lambda r: (r["recipe"], r["arch"]))
    print(f"\n[1. fidelity] {len(nets)} nets (seed {args.seed}), scores by {', '.join(scorers)}")
    print(f"  ground truth: {len(seeds)} seeds x e{epochs}, test AUC")
    jobs = []
    for i, arch in enumerate(nets, 1):
        for label, scorer in scorers.items():
            metric, _ = score_metric(scorer)
            fidelity = scorer.fidelity()["fidelity"]
            base = {
                "experiment": label,
                "recipe": score_recipe(scorer),
                "fidelity": fidelity,
                "metric": metric,
                "arch": arch,
            }
            if scores.todo(base):
                jobs.append(
                    scores.job(score_job, (scorer, arch), base, f"net {i} score [{label}: {fidelity}]")
                )
        for seed in seeds:
            base = {"arch": arch, "seed": seed, "epochs": epochs}
            if full.todo(base):
                out = cache / "trained" / digest(arch) / f"e{epochs}_seed{seed}"
                job_args = (config.dataset.ref, config.input_size, {**recipe, "seed": seed}, arch, str(out))
                jobs.append(full.job(train_job, job_args, base, f"net {i} seed {seed} e{epochs}"))
    print(f"  {len(jobs)} jobs to run ({args.jobs} at a time), the rest cached in {cache}")
    run_jobs(pool, jobs)

    test_auc = {
        a: {s: full.rows[(a, s, epochs)]["test_auc"] for s in seeds if (a, s, epochs) in full.rows}
        for a in nets
    }
    signed: dict[str, dict[str, float]] = {}
    for label, scorer in scorers.items():
        metric, higher = score_metric(scorer)
        found = {a: scores.rows.get((score_recipe(scorer), a), {}).get("val", {}).get(metric) for a in nets}
        signed[label] = {a: v if higher else -v for a, v in found.items() if v is not None and v == v}
    common = [a for a in nets if len(test_auc[a]) == len(seeds) and all(a in s for s in signed.values())]
    truth = {a: test_auc[a] for a in common}
    ceiling = report.seed_ceiling(truth, seeds)
    results = {
        label: report.rank_fidelity({a: s[a] for a in common}, truth, ceiling) for label, s in signed.items()
    }
    for i, a in enumerate(nets, 1):
        per_seed = " ".join(report.fmt(test_auc[a].get(s), 4) for s in seeds)
        score = " ".join(report.fmt(s.get(a), 4) for s in signed.values())
        missing = "" if a in common else "  (incomplete: left out)"
        print(f"  net {i:2d} {digest(a)}  score {score}  test AUC per seed {per_seed}{missing}")
    figures = {
        "nets": len(common),
        "seeds": seeds,
        "epochs": epochs,
        "scores": {label: scorer.fidelity() for label, scorer in scorers.items()},
        "results": results,
    }
    return figures, report.fidelity_lines(results, len(seeds), epochs)
