"""Experiment files: what loads, and the one-line error (file and key) for what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.search.config import DatasetConfig, ExperimentConfig, default_workers, load_experiment

CHEAP = """\
name: cheap
space: mnasnet_small
reward: {type: weighted_sum, weights: {params: -1.0e-6}}
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(path: Path, overrides: dict | None = None) -> str:
    with pytest.raises(ValueError) as info:
        load_experiment(path, overrides)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


@pytest.mark.default_workers
def test_minimal_experiment_loads_with_defaults(tmp_path):
    config = load_experiment(write(tmp_path, "name: tiny\nspace: mnasnet_small\n"))
    assert isinstance(config, ExperimentConfig)
    assert (config.name, config.space, config.mode) == ("tiny", "mnasnet_small", "reward")
    assert config.dataset.name == "synthetic" and config.input_size == 28
    assert config.strategy.name == "tpe" and config.trials == 20 and config.workers == default_workers()
    assert config.storage is None and config.latency is None
    # the default reward is validation AUC: it needs training
    assert config.metrics_used() == ["val_auc"] and config.needs_training()


def test_cheap_experiment_needs_no_training(tmp_path):
    config = load_experiment(write(tmp_path, CHEAP + "constraints: [{metric: macs, max: 1.0e+6}]\n"))
    assert config.metrics_used() == ["macs", "params"]
    assert not config.needs_training()
    assert config.constraints[0].max == 1e6 and config.constraints[0].min is None


def test_full_experiment_loads(tmp_path):
    text = """\
name: full
space: mnasnet_small
dataset: {name: synthetic}
input_size: 32
latency: {table: some/table.json}
training: {epochs: 1, max_train_samples: 128, batch_size: 64}
mode: pareto
objectives: [{metric: val_auc}, {metric: latency_ms}, {metric: params, direction: maximize}]
constraints: [{metric: peak_activation_kb, max: 256}, {metric: val_auc, min: 0.6}]
reward: {type: mnasnet_soft, target: 0.2}
strategy: {name: nsga2, population: 8}
pruner: {name: none}
trials: 12
timeout: 30
storage: sqlite:///x.db
workers: 2
seed: 3
out: runs/full
"""
    config = load_experiment(write(tmp_path, text))
    assert [o.resolved_direction for o in config.objectives] == ["maximize", "minimize", "maximize"]
    train = config.train_config()
    assert (train.epochs, train.max_train_samples, train.batch_size, train.seed) == (1, 128, 64, 3)
    assert config.reward.w == -0.07 and config.reward.target == 0.2
    assert config.strategy.population == 8 and config.timeout == 30 and config.workers == 2


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ("colour: blue\n", "colour", "Extra inputs"),
        ("trials: many\n", "trials", "integer"),
        ("trials: 0\n", "trials", "greater than or equal to 1"),
        ("workers: [1, 2]\n", "workers", "integer"),
        ("strategy: {name: annealing}\n", "strategy.name", "random"),
        (
            "dataset: {name: pneumoniamnsit}\n",
            "dataset",
            "unknown dataset 'pneumoniamnsit' (known: synthetic",
        ),
        ("strategy: {name: random, popsize: 3}\n", "strategy.popsize", "Extra inputs"),
        (
            "mode: pareto\nobjectives: [{metric: params}]\n",
            "objectives",
            "at least two objectives",
        ),
        (
            "reward: {type: weighted_sum, weights: {latency_ms: -1.0}}\n",
            "latency",
            "latency_ms is used",
        ),
        ("strategy: {name: nsga2}\n", "strategy.name", "nsga2 needs mode: pareto"),
        ("reward: {type: mnasnet_soft}\n", "reward", "needs 'target'"),
        ("reward: {latency: val_auc, target: 1}\n", "reward", "'latency' is val_auc: the cost LAT is one of"),
        (
            "reward: {accuracy: val_logloss, target: 1}\n",
            "reward",
            "'accuracy' is val_logloss, lower-is-better",
        ),
        ("reward: {type: mnasnet_hard, target: -1}\n", "reward.target", "greater than 0"),
        ("reward: {type: weighted_sum}\n", "reward", "needs 'weights'"),
        ("reward: {type: weighted_sum, weights: {flops: 1.0}}\n", "reward.weights.flops", "'params'"),
        ("objectives: [{metric: flops}, {metric: params}]\n", "objectives.0.metric", "'macs'"),
        ("constraints: [{metric: params}]\n", "constraints.0", "needs 'min' or 'max'"),
        (
            "constraints: [{metric: params, min: 100, max: 10}]\n",
            "constraints.0",
            "min 100 is above max 10: no candidate could meet it",
        ),
        (
            "mode: pareto\nobjectives: [{metric: val_auc}, {metric: params}, {metric: val_auc}]\n",
            "objectives",
            "val_auc given more than once",
        ),
        ("constraints: [{metric: accuracy, max: 1}]\n", "constraints.0.metric", "'val_accuracy'"),
        ("training: {epochz: 3}\n", "training", "unknown training setting(s): epochz"),
        ("training: {epochs: 0}\n", "training", "epochs must be >= 1"),
        ("strategy: {name: evolution, population: 3, sample_size: 5}\n", "strategy", "exceeds"),
    ],
)
def test_bad_key_is_one_line_naming_file_and_key(tmp_path, body, key, words):
    message = load_error(write(tmp_path, "name: bad\nspace: mnasnet_small\n" + body))
    assert f"key '{key}" in message, message
    assert words in message, message


def test_missing_name_is_named(tmp_path):
    message = load_error(write(tmp_path, "space: mnasnet_small\n"))
    assert "key 'name'" in message and "required" in message.lower()


def test_training_error_comes_from_the_trainer_config(tmp_path):
    from nas.evaluate.config import TrainConfig

    with pytest.raises(ValueError) as trainer:
        TrainConfig.from_json({"epochz": 3})
    message = load_error(write(tmp_path, CHEAP + "training: {epochz: 3}\n"))
    assert message.endswith(str(trainer.value))


def test_missing_file(tmp_path):
    message = load_error(tmp_path / "nowhere.yaml")
    assert "cannot read" in message


def test_invalid_yaml(tmp_path):
    message = load_error(write(tmp_path, "name: [unclosed\nspace: {\n"))
    assert "not a valid YAML file" in message


@pytest.mark.parametrize("text", ["- name: x\n- space: y\n", "just a string\n", ""])
def test_yaml_that_is_not_a_mapping(tmp_path, text):
    message = load_error(write(tmp_path, text))
    assert "expected a mapping" in message


def test_cli_overrides_apply_and_none_leaves_the_file_value(tmp_path):
    path = write(tmp_path, CHEAP + "trials: 5\nworkers: 1\nout: runs/a\n")
    overrides = {"trials": 9, "timeout": 12.5, "storage": "sqlite:///o.db", "workers": None, "out": "runs/b"}
    config = load_experiment(path, overrides)
    assert (config.trials, config.timeout, config.storage) == (9, 12.5, "sqlite:///o.db")
    assert (config.workers, config.out) == (1, "runs/b")
    assert load_experiment(path).trials == 5  # the file is not changed


def test_overrides_are_validated_too(tmp_path):
    message = load_error(write(tmp_path, CHEAP), {"trials": 0})
    assert "key 'trials'" in message


def test_a_dataset_is_referred_to_by_its_path_else_its_name(tmp_path):
    assert DatasetConfig().ref == "synthetic"
    assert DatasetConfig(name="pneumoniamnist").ref == "pneumoniamnist"
    assert DatasetConfig(path=str(tmp_path)).ref == str(tmp_path)
