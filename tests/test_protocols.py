"""Evaluation protocols (holdout, kfold, repeats), the log-loss and Brier metrics, and what a search
records of them, on tiny generated data."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from medmnist_data import tiny_splits

import nas.evaluate.train as train_module
from nas.data.splits import Split, Splits
from nas.errors import ConfigError, DataError
from nas.evaluate import TrainConfig
from nas.evaluate.protocols import PROTOCOLS, EvaluationConfig, aggregate, run_protocol
from nas.evaluate.protocols.kfold import check_data, fold_assignment
from nas.metrics.clinical import brier_score, clinical_metrics, log_loss
from nas.registry import REGISTRIES, registry
from nas.search.config import LOWER_IS_BETTER, TRAINED_METRICS, ExperimentConfig, experiment_from
from nas.search.report import write_report
from nas.search.run import run_search

ARCH = "conv_k3_s2_c8:ir_k3_e2_c16:head"
FAST = TrainConfig(epochs=2, batch_size=16, lr=3e-3, threads=1)
BASE = {"name": "protocols", "space": "mnasnet_small"}

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]


class Untouchable:
    """A test split that fails the test on any read."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read ({name})")

    def __len__(self):
        raise AssertionError("the test split was read (len)")


def without_test(splits):
    """``splits`` whose test split raises on access (set past the frozen dataclass's checks)."""
    splits = dataclasses.replace(splits)
    object.__setattr__(splits, "test", Untouchable())
    return splits


@pytest.fixture(scope="module")
def splits():
    return tiny_splits(sizes=(36, 18, 16))


@pytest.fixture
def spy(monkeypatch):
    """Every candidate training the protocols start: its val labels, seed and returned metrics."""
    calls = []
    real = train_module.evaluate_candidate

    def recording(arch, splits, config, report=None, val_probs=False):
        result = real(arch, splits, config, report=report, val_probs=val_probs)
        calls.append({"labels": splits.val.labels, "seed": config.seed, "val": result["val"]})
        return result

    monkeypatch.setattr(train_module, "evaluate_candidate", recording)
    return calls


# ---- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evaluation", "message"),
    [
        (
            {"protocol": "loo"},
            "key 'evaluation.protocol': unknown evaluation protocol 'loo' (known: holdout, kfold)",
        ),
        (
            {"protocol": "kfold", "folds": 1},
            "key 'evaluation.folds': Input should be greater than or equal to 2",
        ),
        ({"repeats": 0}, "key 'evaluation.repeats': Input should be greater than or equal to 1"),
        ({"folds": 3}, "the holdout protocol takes no 'folds'"),
        ({"protocol": "kfold", "fold": 3}, "key 'evaluation.fold'"),
    ],
)
def test_bad_evaluation_is_one_line(evaluation, message):
    with pytest.raises(ConfigError) as info:
        experiment_from(BASE | {"evaluation": evaluation})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_evaluation_defaults_and_fidelity():
    plain = experiment_from(BASE)
    assert plain.evaluation == EvaluationConfig(protocol="holdout", folds=None, repeats=1)
    assert plain.fidelity() == {
        "fidelity": "holdout e5",
        "protocol": "holdout",
        "folds": None,
        "repeats": 1,
        "epochs": 5,
        "seed": 0,
    }
    kfold = experiment_from(
        BASE | {"evaluation": {"protocol": "kfold", "repeats": 2}, "training": {"epochs": 3}, "seed": 7}
    )
    assert kfold.evaluation.folds == 5  # the default, recorded
    assert kfold.fidelity()["fidelity"] == "kfold5 x2 e3" and kfold.fidelity()["seed"] == 7


def test_protocols_are_a_registry_listed_by_plugins():
    assert "protocol" in REGISTRIES and registry("protocol") is PROTOCOLS
    assert set(PROTOCOLS) >= {"holdout", "kfold"}


def test_new_metrics_are_lower_is_better_objectives():
    for metric in ("val_logloss", "val_brier"):
        assert metric in TRAINED_METRICS and metric in LOWER_IS_BETTER
    config = experiment_from(
        BASE
        | {
            "mode": "pareto",
            "objectives": [{"metric": "val_logloss"}, {"metric": "params"}],
            "constraints": [{"metric": "val_brier", "max": 0.2}],
            "strategy": {"name": "nsga2"},
        }
    )
    assert config.objectives[0].resolved_direction == "minimize" and config.needs_training()


# ---- log loss and Brier ----------------------------------------------------------------------


def test_logloss_and_brier_by_hand():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.3, 0.6, 0.1])
    loss = -(math.log(0.8) + math.log(0.7) + math.log(0.6) + math.log(0.9)) / 4
    brier = (0.2**2 + 0.3**2 + 0.4**2 + 0.1**2) / 4
    assert log_loss(y, p) == pytest.approx(loss) and brier_score(y, p) == pytest.approx(brier)
    two_columns = np.stack([1 - p, p], axis=1)
    m = clinical_metrics(y, two_columns)
    assert m["logloss"] == pytest.approx(loss) and m["brier"] == pytest.approx(brier)
    assert log_loss([1, 0], [1.0, 1.0]) == pytest.approx(-math.log(1e-15) / 2, rel=1e-4)  # clipped, finite

    y3 = np.array([0, 2, 1])
    p3 = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.5, 0.0]])
    m3 = clinical_metrics(y3, p3)
    assert m3["logloss"] == pytest.approx(-(math.log(0.7) + math.log(0.6) + math.log(0.5)) / 3)
    sums = [0.3**2 + 0.2**2 + 0.1**2, 0.1**2 + 0.3**2 + 0.4**2, 0.5**2 + 0.5**2 + 0.0]
    assert m3["brier"] == pytest.approx(sum(sums) / 3)

    ym = np.array([[1, 0], [0, 1]])
    pm = np.array([[0.9, 0.2], [0.4, 0.5]])
    mm = clinical_metrics(ym, pm)
    assert mm["logloss"] == pytest.approx(
        -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.5)) / 4
    )
    assert mm["brier"] == pytest.approx((0.01 + 0.04 + 0.16 + 0.25) / 4)


# ---- folds -----------------------------------------------------------------------------------


def test_folds_are_stratified_complete_and_seeded():
    labels = np.array([0] * 30 + [1] * 10 + [2] * 7)
    assigned = fold_assignment(labels, 4, seed=3)
    assert sorted(np.bincount(assigned)) in ([11, 12, 12, 12], [11, 11, 12, 13])  # every example once
    for k, n in enumerate(np.bincount(labels)):
        per_fold = np.bincount(assigned[labels == k], minlength=4)
        assert per_fold.max() - per_fold.min() <= 1 and per_fold.sum() == n
    assert np.array_equal(assigned, fold_assignment(labels, 4, seed=3))
    assert not np.array_equal(assigned, fold_assignment(labels, 4, seed=4))


def test_too_few_examples_of_a_class_for_the_folds(splits):
    with pytest.raises(DataError, match="kfold with 40 folds needs at least 40 examples of every class"):
        check_data(splits, EvaluationConfig(protocol="kfold", folds=40))


def test_a_rare_class_is_enough_for_multi_class_folds_not_binary():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 8, 8, 1), dtype=np.uint8)

    def data(task: str, labels: np.ndarray) -> Splits:
        names = tuple(str(k) for k in range(labels.max() + 1))
        part = Split(images[:20], labels[:20])
        return Splits("rare", task, names, part, Split(images[20:], labels[20:]), part)

    rare = np.array([0] * 19 + [2] + [1] * 19 + [2])  # class 2: one in train, one in val
    check_data(data("multi-class", rare), EvaluationConfig(protocol="kfold", folds=5))
    with pytest.raises(DataError, match=r"at least 2 examples of every class in train \+ val; class '2' has"):
        check_data(
            data("multi-class", np.where(np.arange(40) == 39, 0, rare)),
            EvaluationConfig(protocol="kfold", folds=5),
        )
    binary = np.array([0] * 19 + [1] + [0] * 19 + [1])
    with pytest.raises(DataError, match=r"at least 5 examples of every class in train \+ val; class '1' has"):
        check_data(data("binary", binary), EvaluationConfig(protocol="kfold", folds=5))


def test_kfold_score_is_the_mean_of_the_folds(splits, spy):
    reports = []
    evaluation = EvaluationConfig(protocol="kfold", folds=3)
    metrics = run_protocol(
        ARCH, without_test(splits), FAST, evaluation, lambda step, m: reports.append((step, m))
    )
    assert len(spy) == 3
    held = np.concatenate([c["labels"] for c in spy])
    assert len(held) == len(splits.train) + len(splits.val)  # every example of train + val held out once
    assert sorted(held.tolist()) == sorted(np.concatenate([splits.train.labels, splits.val.labels]).tolist())
    for name in ("auc", "accuracy", "logloss", "brier"):
        values = [c["val"][name] for c in spy]
        assert metrics[name] == pytest.approx(np.mean(values))
        assert metrics[f"{name}_std"] == pytest.approx(np.std(values, ddof=1))
    assert {"auc_oof", "logloss_oof", "brier_oof"} <= set(metrics) and 0 <= metrics["auc_oof"] <= 1
    # pruning: every epoch of the first fold, then the running mean after each later fold
    assert [step for step, _ in reports] == [1, 2, 4, 6]
    assert reports[2][1]["auc"] == pytest.approx(np.mean([c["val"]["auc"] for c in spy[:2]]))
    assert reports[3][1]["auc"] == pytest.approx(metrics["auc"])
    assert run_protocol(ARCH, without_test(splits), FAST, evaluation) == metrics  # same seed, same figures


def test_repeats_use_successive_seeds(splits, spy):
    metrics = run_protocol(ARCH, splits, FAST, EvaluationConfig(repeats=2))
    assert [c["seed"] for c in spy] == [0, 1]
    assert metrics["auc"] == pytest.approx(np.mean([c["val"]["auc"] for c in spy]))
    assert "auc_std" in metrics and "auc_oof" not in metrics

    spy.clear()
    run_protocol(ARCH, splits, FAST, EvaluationConfig(protocol="kfold", folds=2, repeats=2))
    assert [c["seed"] for c in spy] == [0, 0, 1, 1]


def test_holdout_once_is_the_trainer_as_before(splits):
    from nas.evaluate.train import evaluate_candidate

    assert (
        run_protocol(ARCH, splits, FAST, EvaluationConfig()) == evaluate_candidate(ARCH, splits, FAST)["val"]
    )


def test_aggregate_leaves_undefined_runs_out():
    out = aggregate([{"auc": 0.5, "epoch": 2}, {"auc": math.nan, "epoch": 1}, {"auc": 0.7, "epoch": 3}])
    assert out["auc"] == pytest.approx(0.6) and out["auc_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert out["epoch"] == 2


# ---- a search ----------------------------------------------------------------------------------


def test_kfold_search_never_reads_test_and_records_fidelity(tmp_path, monkeypatch, splits):
    monkeypatch.setattr("nas.search.factory.load_splits", lambda config: without_test(splits))
    config = ExperimentConfig.model_validate(
        BASE
        | {
            "reward": {"type": "weighted_sum", "weights": {"val_auc": 1.0, "val_logloss": -0.1}},
            "strategy": {"name": "random"},
            "pruner": {"name": "none"},
            "training": {"epochs": 1, "batch_size": 16, "threads": 1},
            "evaluation": {"protocol": "kfold", "folds": 2},
            "trials": 2,
            "seed": 3,
            "workers": 1,  # the patched loader lives in this process only; a spawned worker would race it
            "out": str(tmp_path / "run"),
        }
    )
    study = run_search(config, _objective)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    write_report(study, config, Path(config.out))
    with (Path(config.out) / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        assert row["fidelity"] == "kfold2 e1" and row["protocol"] == "kfold" and row["folds"] == "2"
        assert (row["repeats"], row["epochs"], row["seed"]) == ("1", "1", "3")
        for name in ("val_auc", "val_auc_std", "val_auc_oof", "val_logloss", "val_logloss_std", "val_brier"):
            assert math.isfinite(float(row[name])), name
        assert float(row["reward"]) == pytest.approx(float(row["val_auc"]) - 0.1 * float(row["val_logloss"]))


def _objective(config):
    from nas.search.factory import default_objective

    return default_objective(config)


def test_a_changed_evaluation_is_another_experiment(tmp_path):
    import yaml

    from nas.errors import UsageError
    from nas.search.runner import CONFIG_FILE, check_run_dir

    config = experiment_from(BASE | {"reward": {"type": "weighted_sum", "weights": {"params": -1.0}}})
    older = config.model_dump(mode="json")
    del older["evaluation"]  # a run recorded before the key existed: holdout, as it was run
    (tmp_path / CONFIG_FILE).write_text(yaml.safe_dump(older))
    check_run_dir(config, tmp_path)
    kfold = config.model_copy(update={"evaluation": EvaluationConfig(protocol="kfold")})
    with pytest.raises(UsageError, match=r"\(evaluation differ\)"):
        check_run_dir(kfold, tmp_path)
