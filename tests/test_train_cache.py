"""Trained networks reused by recipe, on a tiny generated dataset."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from medmnist_data import tiny_splits

from nas.evaluate import TrainConfig
from nas.evaluate.cache import cached_metrics, train_cached
from nas.evaluate.checkpoint import METRICS_FILE

ARCH = "conv_k3_s2_c8:ir_k3_e2_c16:head"
TEACHER = "conv_k3_c16:ir_k3_s2_e2_c16:head"
FAST = TrainConfig(epochs=1, batch_size=16, lr=3e-3, threads=1)


def fast(**changes) -> TrainConfig:
    return TrainConfig(**{**FAST.to_json(), **changes})


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def splits():
    return tiny_splits()


@pytest.fixture(scope="module")
def trained(splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "net"
    metrics, reused = train_cached(ARCH, splits, FAST, out)
    assert not reused
    return out, metrics


def test_same_recipe_is_reused(splits, trained):
    out, metrics = trained
    weights = (out / "weights.pt").stat().st_mtime_ns
    again, reused = train_cached(ARCH, splits, fast(threads=2, device="cpu"), out)  # where, not the recipe
    assert reused and again == metrics
    assert (out / "weights.pt").stat().st_mtime_ns == weights


@pytest.mark.parametrize(
    "change",
    [
        {"config": fast(epochs=2)},
        {"arch": TEACHER},
        {"teacher": TEACHER},
        {"splits": replace(tiny_splits(), name="other")},
    ],
    ids=["epochs", "arch", "teacher", "dataset"],
)
def test_another_recipe_is_not_reused(splits, trained, change):
    out, _ = trained
    request = {"arch": ARCH, "splits": splits, "config": FAST, "teacher": None, **change}
    assert cached_metrics(out, **request) is None


def test_not_a_trained_directory(splits, trained, tmp_path):
    assert cached_metrics(tmp_path, ARCH, splits, FAST) is None
    out, _ = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("arch.txt", "weights.pt"):
        (broken / name).write_bytes((out / name).read_bytes())
    (broken / METRICS_FILE).write_text("{not json")
    assert cached_metrics(broken, ARCH, splits, FAST) is None
    (broken / METRICS_FILE).write_text(json.dumps({"dataset": "tiny"}))  # no recipe recorded
    assert cached_metrics(broken, ARCH, splits, FAST) is None


def test_distilled_is_reused_for_the_same_teacher_arch(splits, trained, tmp_path):
    teacher_dir, _ = trained
    out = tmp_path / "student"
    metrics, reused = train_cached(TEACHER, splits, FAST, out, teacher=teacher_dir)
    assert not reused and metrics["kd"]["teacher"]["arch"] == ARCH
    assert cached_metrics(out, TEACHER, splits, FAST, teacher=teacher_dir) == metrics
    assert cached_metrics(out, TEACHER, splits, FAST, teacher=ARCH) == metrics  # the teacher's arch counts
    assert cached_metrics(out, TEACHER, splits, FAST) is None


def test_a_directory_trained_before_a_setting_existed_is_still_reused(splits, trained):
    """Settings added in later releases (min_steps, ema_decay, ...) read as their defaults."""
    out, metrics = trained
    recorded = json.loads((out / METRICS_FILE).read_text())
    for newer in ("min_steps", "ema_decay", "max_rotate", "flips"):
        del recorded["config"][newer]
    (out / METRICS_FILE).write_text(json.dumps(recorded))
    assert cached_metrics(out, ARCH, splits, FAST) is not None
    assert cached_metrics(out, ARCH, splits, fast(min_steps=100)) is None
    (out / METRICS_FILE).write_text(json.dumps(metrics))
