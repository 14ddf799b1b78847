"""Search quality (issue 13's figures): does the search rank candidates as full training does, does it beat
random sampling at the same budget, and does its finalized front beat hand-designed networks?

Everything follows one experiment file (dataset, space, input size, search training, evaluation protocol,
constraints, objectives); the *final recipe* is its ``training`` settings with ``--final-epochs`` epochs
and at least ``--min-steps`` optimizer steps, scaled to the data as ``nas finalize`` scales it, and
trained as ``nas finalize`` trains (``train_cached``: select on val, score test once) on seeds
``seed .. seed + n - 1``. Three parts, each runnable alone (``--part``):

1. ``fidelity``: ``--nets`` random nets of the space (seeded, only nets that pass the experiment's cheap
   constraints: nets the search would train). Each gets the search's own candidate score
   (``TrainingEvaluator`` of the experiment, and of each ``--score-experiments`` variant, e.g. holdout vs
   kfold; validation only, unpruned) and ``--seeds`` full trainings with the final recipe. Printed:
   Kendall tau between the score (the search's trained ranking metric) and the mean test AUC over seeds,
   its ceiling (mean pairwise tau between single seeds' test AUCs of the same nets) and tau/ceiling; the
   goal is >= 80 % of the ceiling. A mean of seeds is a steadier truth than the ceiling's single seeds,
   so beside it the same against one seed at a time. The score trains on the first seed, as the search
   and ``nas finalize`` do, so it shares that seed's initialisation with the first full training.
2. ``search``: the experiment as is and with ``strategy: {name: random}``, same ``trials`` and ``timeout``
   (``--trials``, ``--budget-minutes``), into ``CACHE/search_<strategy>``; both finalized alike
   (``finalize_run(top=--top, seeds=--final-seeds, epochs=--final-epochs, pick=--pick)``: ``spread``
   finalizes nets along each front rather than its top N by validation AUC); then every finalized net
   and part 3's references timed untrained (weights do not change speed) in one interleaved ONNX Runtime
   session (1 thread, batch 1, median of ``--rounds`` rounds: ``pneumoniamnist.screen_latency``).
   Printed: the hypervolume of (mean test AUC up, measured latency down) of both finalized fronts against
   one shared reference (their nadir, padded: ``search_quality_report.front_hypervolume``) and
   search/random; the goal is >= 1.2x. Beside it the same on the finalized nets' mean validation AUC and
   log loss (what a search may see): a search that wins there and not on test lost to the split, not
   to random sampling.
3. ``hand``: MobileNetV2 at widths 0.25, 0.35, 0.5 and 1.0, MnasNet-A1 and ``resnet18_medmnist`` trained
   with the final recipe on the finalize seeds, timed in the same session. Printed: a table (params,
   measured ms, ratio to resnet18_medmnist, test AUC and ACC mean±std), whether the search's finalized
   front (the finalized nets no other dominates on the final validation figures, as ``nas finalize``
   reports it: chosen without the test split) Pareto-dominates each reference, whether a front net reaches
   the published ResNet-18 (28) test AUC and ACC at <= 1/20 of resnet18_medmnist's latency and, on
   PneumoniaMNIST, test AUC >= 0.98 and ACC >= 0.93 at <= 1/50. A finalized run or a reference trained
   with another top, seeds, recipe or net definition than this benchmark's is left out.

Trainings run ``--jobs`` at a time in one-thread spawned processes; a search runs ``--jobs`` workers. The
test split is read only by the full trainings' final scoring. Resumable: every training result is
appended to a JSONL file in ``--cache`` as soon as it ends (``full_trainings.jsonl`` with the keys arch,
seed, epochs, val_auc, val_accuracy, test_auc, test_accuracy, seconds; ``scores.jsonl``;
``hand_trainings.jsonl``; diverged ones in ``failures.jsonl``); trained directories are reused; a
finished search is recorded in ``searches.jsonl`` and not run again (a search killed midway resumes with
what is left of its ``timeout``: ``spent_seconds``). ``recipe.json`` guards the cache against another
final recipe. The figures go to ``CACHE/results.json`` (each part's figures kept until that part runs
again; ``runs`` names the run each came from, ``run`` the latest) and a closing block fit for an issue
note. Trainings longer than a working session (ResNet-18's, 55-75 minutes each on one thread) are kept
in the repository, in ``experiments/results/search_quality/<dataset>/`` (``recipe.json`` and the JSONL
files): copy them into the cache to reuse them.

    python benchmarks/search_quality.py --experiment experiments/pneumoniamnist_pareto.yaml \\
        [--part all] [--nets 20 --seeds 3 --final-epochs 15] [--budget-minutes 60] [--top 5] [--jobs 2]
    # smoke run; /tmp/retina.yaml: experiments/pneumoniamnist_pareto.yaml with dataset retinamnist,
    # training epochs 2, no latency key, macs for latency_ms; retina_kfold.yaml adds kfold (folds 2)
    python benchmarks/search_quality.py --experiment /tmp/retina.yaml --cache /tmp/sq --jobs 1 \\
        --nets 3 --seeds 2 --final-epochs 1 --trials 4 --top 2 --final-seeds 2 --rounds 20 \\
        --score-experiments /tmp/retina_kfold.yaml

How long (2 cores, ``--jobs 2``, measured rates on one thread: ``mnasnet_small`` nets train 1,200-2,000
images/s at 28 px, ``resnet18_medmnist`` about 30-40): the final recipe's floor of 1,500 steps (batch 64,
96,000 images) sets the length of every final training on both datasets (PneumoniaMNIST's 15 epochs are
1,110 steps): a searched net about a minute, ResNet-18 about 40 minutes. Fidelity (20 nets x (one score +
3 trainings)) about 50 minutes, more per ``--score-experiments`` (kfold5: about 5 short trainings per
net); search 2 x the budget (1 hour each) plus finalize (2 x 5 x 3 trainings) about 20 minutes; hand
about 1.5 hours on either dataset, nearly all of it ResNet-18's 3 seeds. RetinaMNIST's search trains on
1,080 images a fold, a quarter of PneumoniaMNIST's, but its experiment's 5 folds make a candidate cost
about as much. The smoke run above takes about 4 minutes with ``--jobs 1``.

RetinaMNIST's experiment prices latency with the table for 3 channels and 5 classes
(``mnasnet_small-28-rgb-5class.json``); an experiment without a table can search on ``macs`` or
``params`` as the cost objective: the benchmark measures every finalized net's latency itself either way.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import search_quality_report as report
from pneumoniamnist import REFERENCE, screen_latency
from proxy_fidelity import PUBLISHED
from search_quality_fidelity import fidelity_part
from search_quality_jobs import (
    Results,
    append_jsonl,
    check_cache,
    digest,
    final_recipe,
    make_pool,
    one_thread,
    read_jsonl,
    recipe_of,
    run_jobs,
    seed_list,
    train_job,
)

from nas.arch import ArchSpec, scale_width
from nas.argtypes import count, positive_int
from nas.errors import NasError, UsageError
from nas.evaluate.recipe import MIN_STEPS
from nas.metrics import measure
from nas.search.config import PICKS, ExperimentConfig, experiment_from, load_experiment
from nas.search.factory import load_splits
from nas.search.final import FinalRecord, read_final
from nas.search.finalize import finalize_run, mean_std
from nas.search.run import open_storage, open_study, storage_url
from nas.search.runner import check_run_dir, run_experiment
from nas.search.summary import shown_state
from nas.zoo import resolve_arch

WIDTHS = (0.25, 0.35, 0.5, 1.0)
VALIDATION = (("auc", True), ("logloss", False))  # final validation figures, hypervolume beside test's
PARTS = ("fidelity", "search", "hand")
HAND, SEARCHES = "hand_trainings.jsonl", "searches.jsonl"
Row = dict[str, Any]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", required=True, help="the search experiment (experiments/X.yaml)")
    parser.add_argument("--part", choices=(*PARTS, "all"), default="all")
    parser.add_argument(
        "--cache", type=Path, help="results and trainings (default runs/search_quality/<dataset>)"
    )
    parser.add_argument("--jobs", type=positive_int, default=2, help="one-thread training processes")
    parser.add_argument("--final-epochs", type=positive_int, default=15, help="epochs of the final recipe")
    parser.add_argument(
        "--min-steps",
        type=count,
        default=MIN_STEPS,
        help=f"the final recipe's floor of optimizer steps (default {MIN_STEPS}, as nas finalize)",
    )
    parser.add_argument("--nets", type=positive_int, default=20, help="fidelity: random nets")
    parser.add_argument("--seeds", type=positive_int, default=3, help="fidelity: full trainings per net")
    parser.add_argument("--seed", type=int, default=0, help="fidelity: seed of the random nets")
    parser.add_argument(
        "--score-experiments", nargs="+", default=[], help="fidelity: more protocols to score"
    )
    parser.add_argument(
        "--trials", type=positive_int, help="search: trials of both runs (default: the experiment's)"
    )
    parser.add_argument("--budget-minutes", type=float, help="search: timeout of both runs")
    parser.add_argument("--top", type=positive_int, default=5, help="search: finalized nets per run")
    parser.add_argument(
        "--pick",
        choices=PICKS,
        default="best",
        help="search: each front's top by val AUC (best), or nets spread over it (spread), as nas finalize",
    )
    parser.add_argument("--final-seeds", type=positive_int, default=3, help="search and hand: seeds per net")
    parser.add_argument("--rounds", type=positive_int, default=300, help="interleaved timing rounds")
    return parser.parse_args()


def git_commit() -> str:
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").stdout.strip() else "")


# ---------------------------------------------------------------- 2. search vs random


def search_configs(
    config: ExperimentConfig, args: argparse.Namespace, cache: Path
) -> dict[str, ExperimentConfig]:
    """The experiment and its random twin, same budget, each into ``cache/search_<strategy>``; ``search``
    first."""
    if config.strategy.name == "random":
        raise UsageError(f"{args.experiment} already uses strategy random: nothing to compare it with")
    data = config.model_dump(mode="json") | {"finalize": None, "storage": None, "workers": args.jobs}
    data |= {
        k: v
        for k, v in (("trials", args.trials), ("timeout", args.budget_minutes and args.budget_minutes * 60))
        if v
    }
    strategies = {"search": data["strategy"], "random": {"name": "random"}}
    return {
        role: experiment_from(
            data | {"strategy": s, "out": str(cache / f"search_{s['name']}")}, source=args.experiment
        )
        for role, s in strategies.items()
    }


@contextmanager
def trial_printer(config: ExperimentConfig) -> Iterator[list]:
    """``run_experiment``'s monitor: one line per finished trial of this process's worker."""
    name = Path(config.out).name

    def printed(study: Any, trial: Any) -> None:
        metrics = trial.user_attrs.get("metrics", {})
        shown = ", ".join(f"{m} {metrics[m]:.4g}" for m in config.metrics_used() if m in metrics)
        state = shown_state(trial.user_attrs, trial.state.name)
        if state == "REJECTED":
            state += f" ({trial.user_attrs['rejected']})"
        print(f"  {name}: trial {trial.number} {state} {shown}", flush=True)

    yield [printed]


def run_searches(configs: dict[str, ExperimentConfig], cache: Path, args: argparse.Namespace) -> None:
    """Each search unless recorded finished with this budget in ``searches.jsonl``; then both finalized."""
    done = {(r["out"], r["trials"], r["timeout"]) for r in read_jsonl(cache / SEARCHES)}
    for role, c in configs.items():
        if (c.out, c.trials, c.timeout) in done:
            check_run_dir(c, Path(c.out))  # the recorded search is this experiment's, not an earlier one's
            print(f"  {role} ({c.strategy.name}): finished before, in {c.out}")
            continue
        budget = f"{c.trials} trials, timeout {c.timeout or '-'} s, {c.workers} workers"
        print(f"  {role} ({c.strategy.name}): {budget} -> {c.out}")
        spent = spent_seconds(c) if c.timeout else 0.0
        if spent:
            print(f"  {role}: resumed, {spent:.0f} s of its timeout spent before")
        # a spent budget leaves a timeout the workers are past before their first trial: none starts
        resumed = c.model_copy(update={"timeout": max(c.timeout - spent, 1e-3)}) if spent else c
        start = time.time()
        summary = run_experiment(resumed, monitor=trial_printer)
        seconds = spent + time.time() - start
        append_jsonl(
            cache / SEARCHES,
            {
                "out": c.out,
                "trials": c.trials,
                "timeout": c.timeout,
                "seconds": seconds,
                "finished": len(summary.trials),
            },
        )
        print(f"  {role}: {len(summary.trials)} trials in {seconds:.0f} s")
    print(f"  finalizing both: {args.pick} {args.top}, {args.final_seeds} seeds, e{args.final_epochs}")
    for role, c in configs.items():  # one after the other, each on every job: no core idles at the tail
        record = finalize(c.out, args)
        print(f"  {role}: finalized {len(record.trials)} nets")


def spent_seconds(config: ExperimentConfig) -> float:
    """How long a search killed midway had run: from its first trial's start to its last trial's end (or
    start); 0 for one never started. It resumes with the rest of its timeout, not all of it, so that both
    strategies get the same budget."""
    if not (Path(config.out) / "study.db").is_file():
        return 0.0
    trials = open_study(config, open_storage(storage_url(config))).get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete or t.datetime_start for t in trials if t.datetime_start]
    return (max(ends) - min(starts)).total_seconds() if starts else 0.0


def finalize(run_dir: str, args: argparse.Namespace) -> FinalRecord:
    """``finalize_run`` on one search run with ``--jobs`` one-thread trainings at a time (its own spawned
    processes), printing each as it ends."""

    def progress(number: int, seed: int, reused: bool) -> None:
        print(
            f"  {Path(run_dir).name}: trial {number} seed {seed} {'reused' if reused else 'trained'}",
            flush=True,
        )

    return finalize_run(
        run_dir,
        top=args.top,
        pick=args.pick,
        seeds=args.final_seeds,
        epochs=args.final_epochs,
        min_steps=args.min_steps,
        progress=progress,
        workers=args.jobs,
    )


def finalized_rows(
    configs: dict[str, ExperimentConfig], recipe: dict[str, Any], args: argparse.Namespace
) -> dict[str, list[Row]]:
    """Each run's finalized nets (``final.json``) with this benchmark's top, seeds and final ``recipe``, as
    report rows; ``on_front``: what ``nas finalize`` reports as the front, chosen on validation only (in
    pareto mode the nets no other finalized one dominates on the final validation figures, else the best)."""
    fronts = {}
    for role, c in configs.items():
        record = read_final(c.out) if Path(c.out).is_dir() else None
        if record is None:
            continue
        if not same_finalize(record, recipe, args):
            done = f"{record.pick} {record.top}, {record.seeds} seeds, recipe {record.train_config}"
            print(f"  {c.out}: finalized with {done}, not this benchmark's: left out")
            continue
        fronts[role] = [
            {
                "name": f"{c.strategy.name}/t{t.number}",
                "arch": t.arch,
                "test": {"auc": t.test.get("test_auc"), "accuracy": t.test.get("test_accuracy")},
                "test_std": {"auc": t.test_std.get("test_auc"), "accuracy": t.test_std.get("test_accuracy")},
                "val": {m: t.val.get(f"val_{m}") for m, _ in VALIDATION},
                "seeds": len(t.seeds),
                "on_front": t.final_rank == 1 if t.pareto is None else t.pareto,
            }
            for t in record.trials
            if t.test.get("test_auc") is not None and t.test.get("test_accuracy") is not None
        ]
    return fronts


def same_finalize(record: FinalRecord, recipe: dict[str, Any], args: argparse.Namespace) -> bool:
    """Whether ``record`` was finalized as this benchmark finalizes: its top, pick, seeds, and final
    ``recipe`` (the epochs and step floor included; seeds, threads and device aside)."""
    same_recipe = recipe_of(record.train_config) == recipe_of(recipe)
    mine = (args.top, args.pick, args.final_seeds, args.final_epochs)
    settings = (record.top, record.pick, record.seeds, record.epochs) == mine
    return settings and same_recipe


# ---------------------------------------------------------------- 3. hand design


def references() -> dict[str, ArchSpec]:
    mobilenet = resolve_arch("mobilenet_v2")
    nets = {f"mobilenet_v2_{w}": scale_width(mobilenet, w) for w in WIDTHS}
    return nets | {"mnasnet_a1": resolve_arch("mnasnet_a1"), REFERENCE: resolve_arch(REFERENCE)}


def hand_part(config: ExperimentConfig, args: argparse.Namespace, cache: Path, pool: Any) -> None:
    recipe, epochs = final_recipe(config, args.final_epochs, args.min_steps).to_json(), args.final_epochs
    hand = Results(cache, HAND, lambda r: (r["model"], r["seed"], r["epochs"]))
    jobs = []
    # the costliest first (at 28 px ResNet-18 has 60x the MACs of MobileNetV2): the last to end are short
    nets = sorted(references().items(), key=lambda item: -measure(item[1], 3, config.input_size).macs)
    for name, arch in nets:
        for seed in seed_list(config, args.final_seeds):
            base = {"model": name, "arch": arch.to_str(), "seed": seed, "epochs": epochs}
            if hand.todo(base):
                out = cache / "hand" / name / f"e{epochs}_seed{seed}"
                job_args = (
                    config.dataset.ref,
                    config.input_size,
                    {**recipe, "seed": seed},
                    arch.to_str(),
                    str(out),
                )
                jobs.append(hand.job(train_job, job_args, base, f"{name} seed {seed} e{epochs}"))
    what = f"{len(references())} references x {args.final_seeds} seeds x e{epochs}"
    print(f"\n[3. hand] {what}: {len(jobs)} jobs to run")
    run_jobs(pool, jobs)


def reference_rows(config: ExperimentConfig, args: argparse.Namespace, cache: Path) -> list[Row]:
    """Every reference, with its test figures over the finalize seeds where it was trained."""
    trained = read_jsonl(cache / HAND)
    seeds = set(seed_list(config, args.final_seeds))
    rows = []
    for name, arch in references().items():
        runs = [
            r
            for r in trained
            if r["model"] == name
            and r["arch"] == arch.to_str()  # not a result of an earlier definition of the net
            and r["epochs"] == args.final_epochs
            and r["seed"] in seeds
        ]
        means, stds = (
            mean_std([{"auc": r["test_auc"], "accuracy": r["test_accuracy"]} for r in runs])
            if runs
            else ({}, {})
        )
        rows.append(
            {"name": name, "arch": arch.to_str(), "test": means, "test_std": stds, "seeds": len(runs)}
        )
    return rows


# ---------------------------------------------------------------- timing and figures


def time_and_measure(rows: list[Row], config: ExperimentConfig, args: argparse.Namespace) -> None:
    """Params of every row, and its median ms, every distinct arch timed once, all interleaved in this
    process (a net both runs finalized gets one figure); ratio to resnet18_medmnist."""
    splits = load_splits(config)
    archs = {digest(r["arch"]): ArchSpec.from_str(r["arch"]) for r in rows}
    print(f"\n[timing] {len(archs)} nets interleaved, ONNX Runtime 1 thread batch 1, {args.rounds} rounds")
    ms = screen_latency(archs, splits, args.rounds, args.seed)
    resnet_ms = ms[digest(resolve_arch(REFERENCE).to_str())]
    for r in rows:
        key = digest(r["arch"])
        r["params"] = measure(archs[key], splits.n_channels, splits.input_size, splits.num_classes).params
        r["measured_ms"], r["ratio_to_resnet18"] = ms[key], ms[key] / resnet_ms


def compare_part(
    config: ExperimentConfig, args: argparse.Namespace, cache: Path, parts: set[str]
) -> tuple[Row, list[str]]:
    """Part 2's hypervolume and part 3's table and verdicts, over one interleaved timing session."""
    configs = search_configs(config, args, cache)
    fronts = finalized_rows(configs, final_recipe(config, args.final_epochs, args.min_steps).to_json(), args)
    refs = reference_rows(config, args, cache)
    finalized = [r for rows in fronts.values() for r in rows]
    time_and_measure(refs + finalized, config, args)
    figures: Row = {}
    lines: list[str] = []
    if "search" in parts:
        if set(fronts) == {"search", "random"}:
            figures["hypervolume"] = report.front_hypervolume(fronts)
            lines += report.hypervolume_lines(figures["hypervolume"])
            figures["hypervolume_val"] = {
                metric: report.front_hypervolume(fronts, "val", metric, higher)
                for metric, higher in VALIDATION
                if all(r["val"][metric] is not None for rows in fronts.values() for r in rows)
            }
            for hv in figures["hypervolume_val"].values():
                lines += report.hypervolume_lines(hv, goal=False, references=("nadir",))
        else:
            lines.append("hypervolume: both runs must be finalized with these seeds and epochs: n/a")
    if "hand" in parts:
        trained = [
            r for r in refs if r["test"].get("auc") is not None and r["test"].get("accuracy") is not None
        ]
        print(f"\n{config.dataset.name} test split, final recipe e{args.final_epochs}, mean±std over seeds:")
        print("\n".join(report.table(trained + finalized)))
        resnet_ms = next(r["measured_ms"] for r in refs if r["name"] == REFERENCE)
        published = PUBLISHED.get(config.dataset.name.lower()) if config.input_size == 28 else None
        front = [r for r in fronts.get("search", []) if r["on_front"]]
        figures["hand"] = report.hand_verdicts(
            front,
            trained,
            resnet_ms,
            published,
            config.dataset.name.lower() == "pneumoniamnist",
        )
        lines += report.hand_lines(figures["hand"], front, {r["name"]: r for r in trained + finalized})
    figures["nets"] = refs + finalized
    return figures, lines


def header(config: ExperimentConfig, args: argparse.Namespace, parts: set[str]) -> list[str]:
    """What ran: data, space, experiment, protocol, and each part's settings."""
    lines = [
        f"search_quality on {config.dataset.ref} {config.input_size}px, space {config.space}, "
        f"commit {git_commit()}",
        f"experiment {args.experiment}: {config.mode} mode, strategy {config.strategy.name}, protocol "
        f"{config.fidelity()['fidelity']}; final recipe e{args.final_epochs}, "
        f">= {args.min_steps} steps; jobs {args.jobs}",
    ]
    if "fidelity" in parts:
        scored = ", ".join([args.experiment, *args.score_experiments])
        lines.append(
            f"fidelity: {args.nets} nets (seed {args.seed}) x {args.seeds} seeds; scores of {scored}"
        )
    if parts & {"search", "hand"}:
        budget = f"trials {args.trials or config.trials}, timeout {args.budget_minutes or '-'} min"
        lines.append(
            f"search vs random: {budget}; finalize {args.pick} {args.top} x {args.final_seeds} seeds; "
            f"hand: {args.final_seeds} seeds; timing {args.rounds} rounds"
        )
    return lines


def usage_error(exc: NasError) -> NoReturn:
    """A user's mistake (a bad experiment, another recipe's cache): one line, exit 2 as ``nas`` does."""
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    args = parse_args()
    try:
        config = one_thread(load_experiment(args.experiment), args.experiment)
        cache = args.cache or Path("runs/search_quality") / config.dataset.name
        parts = set(PARTS) if args.part == "all" else {args.part}
        check_cache(cache, config, args.min_steps)
    except NasError as exc:
        usage_error(exc)
    head = "\n".join(header(config, args, parts))
    print(head, flush=True)
    start, figures, lines = time.time(), {}, []
    try:
        with make_pool(args.jobs) as pool:
            if "fidelity" in parts:
                figures["fidelity"], found = fidelity_part(config, args, cache, pool)
                lines += found
            if "search" in parts:
                print("\n[2. search vs random]")
                run_searches(search_configs(config, args, cache), cache, args)
            if "hand" in parts:
                hand_part(config, args, cache, pool)
        if parts & {"search", "hand"}:
            compared, found = compare_part(config, args, cache, parts)
            figures |= compared
            lines += found
    except NasError as exc:
        usage_error(exc)
    path = cache / "results.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    older = previous.get("runs") or dict.fromkeys(set(previous) - {"run"}, previous.get("run"))
    runs = older | dict.fromkeys(figures, head)  # which run each part's figures are from
    path.write_text(
        json.dumps(previous | figures | {"run": head, "runs": runs}, indent=2, default=str) + "\n"
    )
    print(f"\n== figures ({time.time() - start:.0f} s; {path}) ==\n{head}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
