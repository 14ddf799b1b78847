"""Candidate evaluation, final training and distillation on a tiny generated dataset."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch
from medmnist_data import tiny_splits

from nas.data.splits import Split, Splits
from nas.errors import ConfigError, DataError, NasError
from nas.evaluate import TrainConfig, TrainingDiverged, evaluate_candidate, load_trained, train_final
from nas.evaluate.augment import random_shift
from nas.evaluate.loop import distillation_loss
from nas.metrics.clinical import clinical_metrics

ARCH = "conv_k3_s2_c8:ir_k3_e2_c16:head"
TEACHER = "conv_k3_c16:ir_k3_s2_e2_c16:head"
FAST = TrainConfig(epochs=5, batch_size=16, lr=3e-3, threads=1)


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def splits():
    return tiny_splits()


@pytest.fixture(scope="module")
def candidate(splits):
    reports = []
    result = evaluate_candidate(ARCH, splits, FAST, report=lambda epoch, m: reports.append((epoch, m)))
    return result, reports


def test_short_training_learns_the_signal(candidate):
    result, reports = candidate
    assert [epoch for epoch, _ in reports] == [1, 2, 3, 4, 5]
    aucs = [m["auc"] for _, m in reports]
    assert aucs[-1] > 0.9 and aucs[-1] > aucs[0]
    assert result["score"] == max(aucs) == result["val"]["auc"]
    assert result["best_epoch"] == aucs.index(max(aucs)) + 1
    assert result["arch"] == ARCH and result["threads"] == 1 and result["images_per_second"] > 0
    assert len(result["normalization"]["mean"]) == 1


def test_same_seed_same_metrics(splits, candidate):
    again = evaluate_candidate(ARCH, splits, FAST)
    assert again["history"] == candidate[0]["history"]


def test_pruning_exception_propagates(splits):
    class Pruned(Exception):
        pass

    calls = []

    def report(epoch, metrics):
        calls.append(epoch)
        raise Pruned

    with pytest.raises(Pruned):
        evaluate_candidate(ARCH, splits, FAST, report=report)
    assert calls == [1]


def test_divergence_raises_with_reason(splits):
    with pytest.raises(
        TrainingDiverged, match=r"training loss became (nan|inf) at epoch 1, step \d+ \(lr 1e\+09\)"
    ):
        evaluate_candidate(ARCH, splits, TrainConfig(epochs=2, batch_size=16, lr=1e9, optimizer="sgd"))
    assert issubclass(TrainingDiverged, ValueError)


@pytest.mark.parametrize("weighting", ["loss", "sampler"])
def test_class_weighting_and_subset(splits, weighting):
    config = TrainConfig(epochs=1, batch_size=16, class_weighting=weighting, max_train_samples=40, threads=1)
    result = evaluate_candidate(ARCH, splits, config)
    assert result["history"][0]["epoch"] == 1
    assert result["images_per_second"] * result["train_seconds"] == pytest.approx(40)


def test_multi_label_and_multi_class_tasks(tmp_path):
    rng = np.random.default_rng(0)

    def split(n, k):
        return Split(rng.integers(0, 255, (n, 28, 28, 3), dtype=np.uint8), rng.integers(0, 2, (n, k)))

    multi_label = Splits("ml", "multi-label", ("a", "b", "c"), split(16, 3), split(8, 3), split(8, 3))
    config = TrainConfig(epochs=1, batch_size=8, class_weighting="loss", label_smoothing=0.1)
    assert 0 <= evaluate_candidate(ARCH, multi_label, config)["val"]["auc"] <= 1
    distilled = train_final(ARCH, multi_label, config, tmp_path, teacher="conv_k3_c8:head")
    assert distilled["threshold"] == 0.5 and set(distilled["kd"]["with_kd"]) == {"val", "test"}
    labels = [rng.integers(0, 3, n) for n in (16, 9, 9)]
    images = [rng.integers(0, 255, (n, 28, 28, 1), dtype=np.uint8) for n in (16, 9, 9)]
    multi_class = Splits("mc", "multi-class", ("a", "b", "c"), *map(Split, images, labels))
    assert "balanced_accuracy" in evaluate_candidate(ARCH, multi_class, config)["val"]


def test_final_training_writes_reloadable_model(splits, tmp_path):
    metrics = train_final(ARCH, splits, FAST, tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert (tmp_path / "arch.txt").read_text().strip() == ARCH
    assert saved["val"]["auc"] > 0.9 and saved["threshold"] == saved["val"]["threshold"]
    assert saved["test"]["threshold"] == saved["threshold"]  # chosen on val, applied to test
    assert set(saved["normalization"]) == {"mean", "std"} and saved["class_names"] == ["normal", "square"]
    assert saved["config"]["epochs"] == 5 and 1 <= saved["best_epoch"] <= 5
    state = torch.load(tmp_path / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    trained = load_trained(tmp_path)
    assert (
        clinical_metrics(splits.test.labels, trained.predict(splits.test), saved["threshold"])
        == saved["test"]
    )


def test_distillation_reports_with_and_without(splits, tmp_path):
    config = TrainConfig(epochs=2, batch_size=16, lr=3e-3, threads=1, kd_temperature=2.0, kd_alpha=0.5)
    metrics = train_final(ARCH, splits, config, tmp_path, teacher=TEACHER)
    report = json.loads((tmp_path / "kd_report.json").read_text())
    assert report == json.loads(json.dumps(metrics["kd"]))
    assert report["teacher"]["arch"] == TEACHER and report["kd_alpha"] == 0.5
    for run in ("without_kd", "with_kd"):
        assert set(report[run]) == {"val", "test"}
    assert report["with_kd"]["test"] == metrics["test"] and metrics["distilled"]
    assert (
        json.loads((tmp_path / "no_kd" / "metrics.json").read_text())["test"] == report["without_kd"]["test"]
    )
    # a trained directory works as a teacher too
    again = train_final(
        ARCH, splits, TrainConfig(epochs=1, threads=1), tmp_path / "b", teacher=tmp_path / "teacher"
    )
    assert again["kd"]["teacher"] == report["teacher"]


def test_bad_teacher_and_arch(splits, tmp_path):
    with pytest.raises(ValueError, match="neither a trained model directory") as info:
        train_final(ARCH, splits, FAST, tmp_path, teacher=tmp_path / "missing")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="neither a reference network"):
        evaluate_candidate("resnet_huge", splits, FAST)


def test_an_output_folder_that_cannot_be_written_fails_before_training(splits, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("trained although the output folder cannot be written")

    monkeypatch.setattr("nas.evaluate.train.fit", never)
    (tmp_path / "afile").write_text("")
    for out in (tmp_path / "afile", tmp_path / "afile" / "run"):
        with pytest.raises(DataError, match=r"cannot write the trained model to .*afile"):
            train_final(ARCH, splits, FAST, out)


def test_distillation_loss():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    assert distillation_loss(logits, logits, 3.0, False).item() == pytest.approx(0.0, abs=1e-7)
    t = torch.tensor([[0.0, 1.0, 0.0]])
    p = torch.softmax(t / 2, dim=1)
    q = torch.softmax(logits / 2, dim=1)
    expected = 4 * (p * (p.log() - q.log())).sum()
    assert distillation_loss(logits, t, 2.0, False).item() == pytest.approx(expected.item(), rel=1e-6)
    assert distillation_loss(logits, t, 2.0, True).item() >= 0


def test_random_shift_moves_content():
    x = torch.zeros(4, 1, 6, 6)
    x[:, :, 2, 2] = 1
    shifted = random_shift(x, 1, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and torch.equal(shifted.sum(dim=(1, 2, 3)), torch.ones(4))
    assert torch.equal(random_shift(x, 0, torch.Generator()), x)


def test_config_validation():
    for bad in ({"epochs": 0}, {"lr": 0}, {"optimizer": "adam"}, {"class_weighting": "yes"}, {"kd_alpha": 2}):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)
    assert TrainConfig.from_json(TrainConfig(lr=0.1).to_json()) == TrainConfig(lr=0.1)
    with pytest.raises(ConfigError, match=r"^unknown training setting\(s\): epochz, momentun$"):
        TrainConfig.from_json({"lr": 0.1, "momentun": 0.9, "epochz": 1})
    with pytest.raises(ConfigError, match=r"^epochs: Input should be a valid integer"):
        TrainConfig(epochs="many")
    assert TrainConfig(lr=0.1).replace(epochs=2) == TrainConfig(lr=0.1, epochs=2)
    with pytest.raises(ConfigError, match=r"^epochs must be >= 1, got 0$"):
        TrainConfig().replace(epochs=0)  # a copy is checked too


def test_config_is_a_frozen_dataclass_as_in_earlier_releases():
    """Users' scripts call ``dataclasses.replace``/``asdict``/``fields`` on it; replace validates too."""
    config = TrainConfig(lr=0.1)
    assert dataclasses.replace(config, epochs=2) == TrainConfig(lr=0.1, epochs=2)
    assert dataclasses.asdict(config) == config.to_json() and config.to_json()["lr"] == 0.1
    assert [f.name for f in dataclasses.fields(TrainConfig)][:3] == ["epochs", "batch_size", "lr"]
    with pytest.raises(ConfigError, match=r"^epochs must be >= 1, got 0$"):
        dataclasses.replace(config, epochs=0)
    with pytest.raises(ConfigError, match=r"^unknown training setting\(s\): epochz$"):
        dataclasses.replace(config, epochz=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0  # type: ignore[misc]
    assert hash(config) == hash(TrainConfig(lr=0.1))


def test_divergence_is_its_own_error():
    """One line (exit 2) since the fix is the recipe, but not a config error: every setting was valid."""
    assert issubclass(TrainingDiverged, NasError) and not issubclass(TrainingDiverged, ConfigError)


def test_torch_settings_are_restored(splits):
    assert not torch.are_deterministic_algorithms_enabled()
    result = evaluate_candidate(ARCH, splits, TrainConfig(epochs=1, batch_size=32, threads=2))
    assert result["threads"] == 2
    assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()


def test_device_auto_trains_where_it_can_and_a_bad_device_is_one_line():
    assert TrainConfig().device == "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert TrainConfig().torch_device() == expected and TrainConfig(device="cpu").torch_device() == "cpu"
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"):
        TrainConfig(device="gpu")


def test_a_step_floor_raises_the_steps_on_a_small_split_only():
    config = TrainConfig(epochs=2, batch_size=10, min_steps=50)
    assert config.steps_per_pass(95) == 10 and config.total_steps(95) == 50
    assert config.steps_per_pass(91) == 9  # a last batch of one is dropped
    assert config.total_steps(1000) == 200  # 2 passes are more than the floor
    assert TrainConfig(epochs=2, batch_size=10).total_steps(95) == 20


def test_a_refit_trains_on_train_and_val_for_the_selected_passes_and_keeps_the_selection_threshold(
    splits, tmp_path
):
    plain = train_final(ARCH, splits, FAST, tmp_path / "plain")
    metrics = train_final(ARCH, splits, FAST.replace(refit=True), tmp_path / "refit")
    # validation is the selection run's (out of sample), the same as without refit
    assert metrics["val"] == plain["val"] and metrics["best_epoch"] == plain["best_epoch"]
    assert metrics["threshold"] == plain["threshold"] == metrics["test"]["threshold"]
    n_train, n_all = len(splits.train), len(splits.train) + len(splits.val)
    refit = metrics["refit"]
    assert refit["train_examples"] == n_all and refit["selected_epoch"] == plain["best_epoch"]
    selected_steps = plain["best_epoch"] * FAST.total_steps(n_train) // FAST.epochs
    assert refit["steps"] == max(
        round(selected_steps * n_all / n_train), plain["best_epoch"] * FAST.steps_per_pass(n_all)
    )
    # the kept model is the refit one, normalized by train + val, and it is what test scored
    both = np.concatenate([splits.train.inputs, splits.val.inputs]).astype(np.float64) / 255
    assert metrics["normalization"]["mean"] == pytest.approx([both.mean()], rel=1e-4)
    trained = load_trained(tmp_path / "refit")
    assert (
        clinical_metrics(splits.test.labels, trained.predict(splits.test), metrics["threshold"])
        == (metrics["test"])
    )
    assert metrics["test"] != plain["test"]
    assert "refit" not in plain


def test_a_refit_keeps_its_last_epoch_whatever_val_says(splits):
    from nas.builder import build_model
    from nas.evaluate.loop import fit

    model = build_model(ARCH, 1, 2, splits.input_size)
    result = fit(model, splits, FAST, select_best=False)
    assert result.best_epoch == FAST.epochs
    assert all(torch.equal(result.best_state[k], v) for k, v in model.state_dict().items())


def test_a_step_floor_stretches_each_epoch_and_keeps_the_epochs(splits):
    from nas.builder import build_model
    from nas.evaluate.loop import fit

    n = len(splits.train)
    floor = 3 * FAST.steps_per_pass(n) + 1
    result = fit(build_model(ARCH, 1, 2, splits.input_size), splits, FAST.replace(epochs=2, min_steps=floor))
    assert [h["epoch"] for h in result.history] == [1, 2]  # two validations, as asked
    assert result.images_seen == floor * FAST.batch_size  # 64 images: every batch full


def test_one_cycle_warms_up_to_the_learning_rate_then_decays():
    from nas.evaluate.loop import _schedule

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    schedule = _schedule(optimizer, TrainConfig(lr=0.01, schedule="onecycle"), 100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    peak = rates.index(max(rates))
    assert max(rates) == pytest.approx(0.01) and 20 < peak < 40
    assert rates[0] < 0.001 and rates[-1] < 1e-5


def test_with_ema_the_kept_weights_are_the_average_that_was_scored(splits):
    from nas.builder import build_model
    from nas.evaluate.loop import fit, predict_probs, split_metrics, to_tensor

    config = FAST.replace(epochs=3, ema_decay=0.9, select_metric="accuracy")
    torch.manual_seed(0)
    model = build_model(ARCH, splits.n_channels, splits.num_classes, splits.input_size)
    result = fit(model, splits, config)
    model.load_state_dict(result.best_state)
    probs = predict_probs(model, to_tensor(splits.val, "cpu"), result.mean, result.std, splits.task, True)
    kept = split_metrics(splits.val.labels, probs, splits.task, config)
    assert kept["auc"] == pytest.approx(result.history[result.best_epoch - 1]["auc"])
    plain = evaluate_candidate(ARCH, splits, config.replace(ema_decay=0.0))
    assert plain["history"] != result.history


def test_modality_augmentation_trains_and_bad_amounts_are_one_line(splits):
    config = FAST.replace(epochs=2, max_rotate=10, max_scale=0.1, color_jitter=0.2, flips="horizontal")
    assert evaluate_candidate(ARCH, splits, config)["history"][-1]["auc"] > 0.5
    assert config.augmentation().flips == "horizontal"
    assert config.replace(augment=False).augmentation().max_shift == 0
    for bad, message in (
        ({"flips": "sideways"}, "flips must be one of none, horizontal, vertical, both, got 'sideways'"),
        ({"max_rotate": -1}, "max_rotate must be in [0, 180]"),
        ({"ema_decay": 1.0}, "ema_decay in [0, 1)"),
        ({"min_steps": -5}, "min_steps must be >= 0"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            TrainConfig(**bad)
