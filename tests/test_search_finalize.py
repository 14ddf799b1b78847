"""``nas finalize``: the front (or the reward's top) trained again on several seeds and ranked again by the
final validation figures; reruns reuse the trained directories; ``nas train --best`` follows the final
ranking; ``nas search`` finalizes at its end when the experiment says so."""

from __future__ import annotations

import csv
import inspect
import json

import optuna
import pytest
import torch
import yaml
from medmnist_data import tiny_splits, write_npz

from nas import cli
from nas.data import load_dataset
from nas.errors import ConfigError, UsageError
from nas.evaluate import cache
from nas.evaluate.recipe import final_recipe
from nas.search import factory, report
from nas.search.config import ExperimentConfig, FinalizeConfig, experiment_from
from nas.search.final import read_final
from nas.search.finalize import finalize_run, spread
from nas.search.runner import run_experiment
from nas.search.summary import read_search_run, read_summary

ARCH = "conv_k3_s2_c8:ir_k3_e2_c16:head"
ARCHS = [ARCH, "conv_k3_s2_c8:ir_k3_e3_c16:head", "conv_k3_s2_c8:ir_k5_e2_c16:head"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def experiment(tmp_path, **keys) -> ExperimentConfig:
    data = {
        "name": "finalize-test",
        "space": "mnasnet_small",
        "dataset": {"name": "tiny", "path": str(write_npz(tmp_path / "tiny.npz"))},
        "training": {"batch_size": 16, "threads": 1, "epochs": 1},
        "out": str(tmp_path / "run"),
        "seed": 7,
        "workers": 1,  # finalize trains in this process (the scripted trainer), unless a test asks
    }
    return ExperimentConfig.model_validate(data | keys)


def fake_run(tmp_path, config: ExperimentConfig, search_auc: list[float]):
    """A run directory as ``nas search`` leaves it: config.yaml and summary.json, trial i with arch i."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    rows = [
        {
            "number": i,
            "state": "COMPLETE",
            "arch": arch,
            "reward": auc,
            "feasible": True,
            "val_auc": auc,
            "params": 1000.0 * (3 - i),  # a front: more AUC, more params
        }
        for i, (arch, auc) in enumerate(zip(ARCHS, search_auc, strict=True))
    ]
    summary = {
        "dataset": config.dataset.ref,
        "mode": config.mode,
        "best": max(rows, key=lambda r: r["reward"]),
        "pareto_axes": ["val_auc", "params"],
        "pareto": rows,
        "trials": rows,
    }
    (out / "summary.json").write_text(json.dumps(summary))
    return out


@pytest.fixture
def scripted(monkeypatch):
    """The trainer replaced by final figures per arch (val AUC: arch 0 < 1 < 2), seed-dependent by 0.01;
    records every call."""
    final_auc = dict(zip(ARCHS, [0.70, 0.80, 0.90], strict=True))
    calls = []

    def train_cached(arch, splits, config, out_dir, teacher=None, progress=None):
        calls.append((arch, config.seed, config.epochs, str(out_dir)))
        auc = final_auc[arch] + 0.01 * (config.seed % 2)
        return {"val": {"auc": auc, "accuracy": 0.5}, "test": {"auc": auc - 0.1, "accuracy": 0.4}}, False

    monkeypatch.setattr(cache, "train_cached", train_cached)
    monkeypatch.setattr(factory, "load_splits", lambda config: tiny_splits())
    return calls


def test_finalize_reranks_the_reward_top_by_the_final_val_figures(tmp_path, scripted):
    config = experiment(tmp_path)
    run = fake_run(tmp_path, config, [0.99, 0.95, 0.90])  # search order 0, 1, 2; final order 2, 1, 0
    record = finalize_run(run, top=3, seeds=2, epochs=4)
    assert [t.number for t in record.trials] == [2, 1, 0]
    assert [(t.number, t.search_rank, t.final_rank) for t in record.trials] == [
        (2, 3, 1),
        (1, 2, 2),
        (0, 1, 3),
    ]
    assert {(seed, epochs) for _, seed, epochs, _ in scripted} == {(7, 4), (8, 4)}  # seed, seed + 1
    best = record.trials[0]
    assert best.val["val_auc"] == pytest.approx(0.905) and best.val_std["val_auc"] == pytest.approx(
        0.00707, 1e-2
    )
    assert best.test["test_auc"] == pytest.approx(0.805) and best.score == pytest.approx(0.905)
    assert read_final(run) == record
    rows = {int(r["number"]): r for r in csv.DictReader((run / "pareto.csv").open())}
    assert float(rows[2]["final_val_auc"]) == pytest.approx(0.905) and rows[2]["final_seeds"] == "2"
    assert rows[0]["final_rank"] == "3" and "final_val_auc_std" in rows[0]
    summary = read_summary(run)
    saved = list(json.loads((run / "summary.json").read_text()))
    assert saved[-2:] == ["final_best", "final_rank_by"] and "best" in saved  # keys only added
    assert summary.best.number == 0  # the search's own best is kept
    assert summary.final_best.number == 2 and summary.final_rank_by == "reward"
    assert read_search_run(run, None, best=True)["number"] == 2  # nas train --best follows the final ranking


def test_top_n_of_the_pareto_front_and_who_stays_on_it(tmp_path, scripted):
    objectives = [{"metric": "val_auc"}, {"metric": "params"}]
    config = experiment(tmp_path, mode="pareto", objectives=objectives, strategy={"name": "nsga2"})
    run = fake_run(tmp_path, config, [0.99, 0.95, 0.90])
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    recorded["pruner"] = {"name": "median"}  # as pareto runs before multi-fidelity promotion recorded it
    (run / "config.yaml").write_text(yaml.safe_dump(recorded))
    record = finalize_run(run, top=2, seeds=1, epochs=1)
    assert record.rank_by == "val_auc" and {a for a, *_ in scripted} == set(ARCHS[:2])  # the search's top 2
    assert [(t.number, t.final_rank) for t in record.trials] == [(1, 1), (0, 2)] and record.pick == "best"
    assert record.trials[0].val_std["val_auc"] is None  # one seed: no std
    assert [t.pareto for t in record.trials] == [
        True,
        False,
    ]  # trial 0 is now dominated (lower AUC, more params)
    assert read_search_run(run, None, best=True)["number"] == 1
    scripted.clear()
    record = finalize_run(run, top=2, seeds=1, epochs=1, pick="spread")
    # the search's best (0) and the other end of the front (2), not its top 2 by val AUC (0 and 1)
    assert {a for a, *_ in scripted} == {ARCHS[0], ARCHS[2]}
    assert [(t.number, t.search_rank, t.final_rank) for t in record.trials] == [(2, 3, 1), (0, 1, 2)]
    assert read_final(run).pick == "spread" and read_search_run(run, None, best=True)["number"] == 2


def test_the_finalists_spread_over_the_front():
    """Best first by val AUC, then each time the member farthest from the chosen ones: on a front whose
    members bunch at the slow end, three finalists are its best, its fastest and the one between them."""
    axes = [("val_auc", "maximize"), ("latency_ms", "minimize")]
    front = [  # best val AUC first, as ``candidates`` orders it
        {"number": n, "val_auc": auc, "latency_ms": ms}
        for n, auc, ms in [
            (0, 0.997, 0.12),
            (1, 0.9968, 0.11),
            (2, 0.9966, 0.09),
            (3, 0.99, 0.03),
            (4, 0.98, 0.01),
        ]
    ]
    assert [r["number"] for r in spread(front, 3, axes)] == [0, 3, 4]  # not 1 or 2, beside 0
    # the third is the farthest from *both* chosen: the middle (1), not the one beside the fastest (2)
    corner = [
        {"number": n, "val_auc": auc, "latency_ms": ms}
        for n, auc, ms in [(0, 0.99, 0.1), (1, 0.95, 0.055), (2, 0.91, 0.011), (3, 0.90, 0.010)]
    ]
    assert [r["number"] for r in spread(corner, 3, axes)] == [0, 1, 3]
    assert [r["number"] for r in spread(front, 1, axes)] == [0]
    assert [r["number"] for r in spread(front, 9, axes)] == [0, 1, 2, 3, 4]
    assert spread([], 3, axes) == []
    same = [dict(front[0], number=n) for n in range(3)]  # a flat front: no axis has a range
    assert [r["number"] for r in spread(same, 2, axes)] == [0, 1]


def test_a_search_that_completed_none_finalizes_the_furthest_trained_within_its_constraints(
    tmp_path, scripted
):
    config = experiment(tmp_path, constraints=[{"metric": "params", "max": 2500}])
    run = fake_run(tmp_path, config, [0.99, 0.95, 0.90])
    summary = json.loads((run / "summary.json").read_text())
    stopped = [  # arch 0 trained furthest but breaks the constraint; arch 2 went further than arch 1
        {**row, "state": "PRUNED", "reward": None, "feasible": None, "reached": reached}
        for row, reached in zip(summary["trials"], [10, 3, 5], strict=True)
    ]
    stopped.append({**stopped[1], "number": 3, "reached": 1, "val_auc": 0.999})  # arch 1 again, less far
    summary.update(trials=stopped, pareto=[], best=None)
    (run / "summary.json").write_text(json.dumps(summary))
    record = finalize_run(run, top=3, seeds=1, epochs=1)
    assert [(t.number, t.search_rank) for t in record.trials] == [(2, 1), (1, 2)]
    assert {a for a, *_ in scripted} == set(ARCHS[1:])
    summary["trials"] = [{**row, "params": 9000.0} for row in stopped]  # none within the constraint
    (run / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(UsageError, match="no trial with a reward within its constraints"):
        finalize_run(run, top=3, seeds=1, epochs=1)


def run_cli(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_finalize_cli_trains_reuses_and_train_best_follows(tmp_path, capsys):
    config = experiment(tmp_path)
    run = fake_run(tmp_path, config, [0.99, 0.95, 0.90])
    rc, out, err = run_cli(capsys, "finalize", run, "--top", 2, "--seeds", 1, "--epochs", 1, "--min-steps", 5)
    assert rc == 0, err
    assert "final.json" in out and out.count("(reused)") == 0
    record = read_final(run)
    assert (run / record.trials[0].dirs[0] / "metrics.json").is_file()
    recipe = final_recipe(config.train_config().replace(epochs=1), load_dataset(config.dataset.path), 5)
    assert record.train_config == recipe.to_json() and recipe.min_steps == 5  # the final recipe
    rc, out, err = run_cli(capsys, "finalize", run, "--top", 2, "--seeds", 1, "--epochs", 1, "--min-steps", 5)
    assert rc == 0, err
    assert out.count("(reused)") == 2 and read_final(run) == record  # a rerun trains nothing
    best = record.trials[0].number
    rc, out, err = run_cli(
        capsys, "train", run, "--best", "--epochs", 1, "--batch-size", 16, "--threads", 1, "--min-steps", 0
    )
    assert rc == 0, err
    assert (run / "final" / f"trial_{best}" / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "no search run at"),
        (("--top", "0"), "--top must be >= 1, got 0"),
        (("--seeds", "0"), "--seeds must be >= 1, got 0"),
        (("--min-steps", "-1"), "--min-steps must be >= 0, got -1"),
        (("--pick", "far"), "--pick: invalid choice: 'far'"),
    ],
)
def test_one_line_errors(tmp_path, capsys, argv, message):
    run = tmp_path / "run"
    if argv:
        fake_run(tmp_path, experiment(tmp_path), [0.99, 0.95, 0.90])
    else:
        run.mkdir()
    rc, _, err = run_cli(capsys, "finalize", run, *argv)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_spread_needs_a_front(tmp_path, scripted):
    """Refused for a reward-mode search; a pareto search that completed none has no front yet, so its
    stopped candidates are taken as ``best`` takes them, and the record says so."""
    with pytest.raises(ConfigError, match=r"finalize\.pick"):
        experiment_from(experiment(tmp_path).model_dump() | {"finalize": {"pick": "spread"}})
    with pytest.raises(UsageError, match="--pick spread picks along a Pareto front"):
        finalize_run(fake_run(tmp_path, experiment(tmp_path), [0.99, 0.95, 0.90]), pick="spread")
    pareto = experiment(tmp_path, mode="pareto", objectives=[{"metric": "val_auc"}, {"metric": "params"}])
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(pareto.model_dump(mode="json")))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    stopped = [
        {**row, "state": "PRUNED", "reached": reached}
        for row, reached in zip(summary["trials"], [1, 3, 2], strict=True)
    ]
    summary.update(trials=stopped, pareto=[], best=None)
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    record = finalize_run(tmp_path / "run", top=2, seeds=1, epochs=1, pick="spread")
    assert record.pick == "best"
    assert [t.search_rank for t in record.trials] == [2, 1]  # trials 1, 2: final order


def test_every_finalize_key_is_an_argument_of_finalize_run():
    """``nas search`` finalizes with ``finalize_run(out, **config.finalize.model_dump(), ...)``."""
    assert set(FinalizeConfig.model_fields) <= set(inspect.signature(finalize_run).parameters)


def test_a_run_without_its_experiment_record(tmp_path):
    run = fake_run(tmp_path, experiment(tmp_path), [0.99, 0.95, 0.90])
    (run / "config.yaml").unlink()
    with pytest.raises(UsageError, match="no experiment record"):
        finalize_run(run, top=1, seeds=1, epochs=1)


def test_the_finalize_key(tmp_path):
    for wrong in ({"top": 0}, {"pick": "far"}):
        with pytest.raises(ConfigError, match="finalize"):
            experiment_from(experiment(tmp_path).model_dump() | {"finalize": wrong})
    with pytest.raises(UsageError, match="--pick must be one of best, spread, got 'far'"):
        finalize_run(fake_run(tmp_path, experiment(tmp_path), [0.99, 0.95, 0.90]), pick="far")
    assert experiment(tmp_path).finalize is None  # off by default


def test_search_finalizes_at_its_end(tmp_path):
    config = experiment(
        tmp_path,
        reward={"type": "weighted_sum", "weights": {"params": -1.0e-6}},  # cheap: the search trains nothing
        strategy={"name": "random"},
        trials=2,
        finalize={"top": 1, "seeds": 1, "epochs": 1, "min_steps": 0},
    )
    summary = run_experiment(config)
    record = read_final(config.out)
    assert record is not None and len(record.trials) == 1 and record.epochs == 1
    assert summary.final_best is not None and summary.final_best.number == record.trials[0].number
    assert summary.best is not None  # the search's keys are kept
    resumed = run_experiment(config.model_copy(update={"finalize": None}))  # a resume keeps the final figures
    assert resumed.final_best == summary.final_best and resumed.final_rank_by == "reward"
    assert "final_val_auc" in next(iter(csv.DictReader((tmp_path / "run" / "pareto.csv").open())))


def test_the_plot_shows_the_final_points(tmp_path, scripted, monkeypatch):
    objectives = [{"metric": "val_auc"}, {"metric": "params"}]
    config = experiment(tmp_path, mode="pareto", objectives=objectives, strategy={"name": "nsga2"})
    run = fake_run(tmp_path, config, [0.99, 0.95, 0.90])
    (run / "references.json").write_text(json.dumps({"ref": {"params": 500.0}}))
    drawn, plot_front = [], report.plot_front

    def spy(*args):
        drawn.append((args[4], args[5], plot_front(*args)))
        return drawn[-1][2]

    monkeypatch.setattr(report, "plot_front", spy)
    record = finalize_run(run, top=2, seeds=2, epochs=3)
    assert (run / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # redrawn by finalize
    (references, final, points) = drawn[-1]
    assert references == {"ref": {"params": 500.0}} and final == record
    assert [p["number"] for p in points] == [1, 0]  # best by final val first
    one = points[0]  # trial 1: search AUC 0.95; final 0.80 and 0.81 on seeds 7 and 8; params unchanged
    assert (one["x"], one["y"], one["final_x"]) == (2000.0, 0.95, 2000.0)
    assert one["final_y"] == pytest.approx(0.805) and one["final_yerr"] == pytest.approx(0.00707, 1e-2)
    assert one["final_xerr"] is None


def test_final_points_only_for_a_trained_y_axis(tmp_path, scripted):
    config = experiment(tmp_path)
    run = fake_run(tmp_path, config, [0.99, 0.95, 0.90])
    record = finalize_run(run, top=3, seeds=1, epochs=1)
    rows = [row.model_dump() for row in read_summary(run).trials]
    assert report.plot_metrics([("val_auc", "maximize"), ("params", "minimize")]) == ("params", "val_auc")
    points = report.final_points(rows, record, "params", "val_auc")
    assert [p["number"] for p in points] == [2, 1, 0] and all(p["final_yerr"] is None for p in points)
    assert report.final_points(rows, None, "params", "val_auc") == []  # not finalized
    assert report.final_points(rows, record, "val_auc", "params") == []  # y is not a trained figure
    other = [row | {"arch": "conv_k3_s2_c8:ir_k3_e6_c16:head"} if row["number"] == 2 else row for row in rows]
    assert [p["number"] for p in report.final_points(other, record, "params", "val_auc")] == [1, 0]


def test_a_resumed_run_redraws_the_final_points(tmp_path, scripted, monkeypatch):
    objectives = [{"metric": "val_auc"}, {"metric": "params"}]
    config = experiment(tmp_path, mode="pareto", objectives=objectives, strategy={"name": "nsga2"})
    run = fake_run(tmp_path, config, [0.99, 0.95, 0.90])
    record = finalize_run(run, top=2, seeds=1, epochs=1)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i, arch in enumerate(ARCHS):
        metrics = {"val_auc": [0.99, 0.95, 0.90][i], "params": 1000.0 * (3 - i)}
        attrs = {"arch": arch, "metrics": metrics, "constraints": []}
        study.add_trial(optuna.trial.create_trial(values=list(metrics.values()), user_attrs=attrs))
    drawn = []
    monkeypatch.setattr(report, "plot_front", lambda *args: drawn.append(args))
    report.write_report(study, config, run, {"ref": {"params": 500.0}})
    assert drawn[-1][4:] == ({"ref": {"params": 500.0}}, record, None)  # final points, no verified ones
    assert json.loads((run / "references.json").read_text()) == {"ref": {"params": 500.0}}


def test_parallel_final_trainings_give_the_sequential_figures(tmp_path):
    """Two single-threaded worker processes train what one process would, seed for seed."""
    config = experiment(tmp_path)
    run = fake_run(tmp_path, config, [0.99, 0.95, 0.90])
    progress = []
    parallel = finalize_run(
        run, top=2, seeds=2, epochs=1, min_steps=0, workers=2, progress=lambda *a: progress.append(a)
    )
    assert sorted(progress) == [(0, 7, False), (0, 8, False), (1, 7, False), (1, 8, False)]
    for trial_dir in (run / "finalize").iterdir():  # train again in this process, from scratch
        for trained in trial_dir.iterdir():
            (trained / "metrics.json").unlink()
    sequential = finalize_run(run, top=2, seeds=2, epochs=1, min_steps=0)
    for a, b in zip(parallel.trials, sequential.trials, strict=True):
        assert (a.number, a.final_rank, a.seeds, a.dirs) == (b.number, b.final_rank, b.seeds, b.dirs)
        for figures in ("val", "test"):  # float noise of another process only
            x, y = getattr(a, figures), getattr(b, figures)
            assert x.keys() == y.keys()
            assert all(x[k] == y[k] if x[k] is None else x[k] == pytest.approx(y[k], rel=1e-6) for k in x)


def test_parallel_final_trainings_start_with_the_costliest(tmp_path, scripted, monkeypatch):
    """The worker pool gets the candidates with the most MACs first, whatever their rank, so that the last
    trainings to end are short ones."""
    import concurrent.futures

    submitted = []

    class InlinePool:  # the pool's contract, run in this process (the scripted trainer)
        def __init__(self, max_workers, mp_context):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, arch, splits, config, out):
            submitted.append((arch, config.seed))
            future = concurrent.futures.Future()
            future.set_result(fn(arch, splits, config, out))
            return future

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", InlinePool)
    config = experiment(tmp_path)
    run = fake_run(tmp_path, config, [0.99, 0.95, 0.90])
    summary = json.loads((run / "summary.json").read_text())
    for row, macs in zip(summary["trials"], [1e5, 9e5, 5e5], strict=True):
        row["macs"] = macs
    summary["pareto"] = summary["trials"]
    (run / "summary.json").write_text(json.dumps(summary))
    record = finalize_run(run, top=2, seeds=2, epochs=1, min_steps=0, workers=2)
    assert submitted == [(ARCHS[1], 7), (ARCHS[1], 8), (ARCHS[0], 7), (ARCHS[0], 8)]
    assert [t.number for t in record.trials] == [1, 0]  # ranked by the final figures, as ever
