"""Export of 1-D signal networks: every format takes the raw series, float32 (N, channels, length), with the
normalization inside, and outputs logits; the card says so and lists the data's own labels (``classes``).

The shape always comes from the arch (``1d:`` section), never from the data: an arch and data of the other
kind are a one-line error.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from export_helpers import data_file, options, workspace

from nas import cli
from nas.data import load_dataset
from nas.errors import DataError
from nas.export.onnx import PARITY_TOLERANCE, read_metadata
from nas.export.pipeline import run_export
from nas.export.prune import prune_channels
from nas.export.quantize import ImageReader, calibration_images
from nas.export.source import from_arch, from_run_dir
from nas.export.tvm_loader import as_input
from nas.export.variants import model_logits, normalized
from nas.metrics import measure
from nas.onnxrt import SIGNAL_INPUT, session

pytestmark = pytest.mark.usefixtures("single_thread")
ARCH = "1d:conv_k9_s2_c16:ir_r2_k7_s2_e4_c24_se0.25,ds_k5_c32:head_c128"
LENGTH, LABELS = 140, ("pvc", "normal", "afib")  # sorted by the loader: afib, normal, pvc
CLASSES = sorted(LABELS)


def signals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sines whose frequency depends on the label, offset and scaled away from mean 0 and std 1 so
    that a missing normalization shows."""
    rng = np.random.default_rng(seed)
    labels = np.array([LABELS[i % len(LABELS)] for i in range(n)])
    freq = np.array([2 + 3 * LABELS.index(label) for label in labels])[:, None]
    t = np.linspace(0, 1, LENGTH)[None]
    x = np.sin(2 * np.pi * freq * t + rng.uniform(0, 6, (n, 1))) + 0.3 * rng.standard_normal((n, LENGTH))
    return (3 * x + 2).astype(np.float32)[:, None], labels


@functools.cache
def signal_file():
    """A signals .npz (``{split}_signals`` (N, 1, 140), string labels) in the export tests' workspace."""
    arrays = {}
    for seed, (split, n) in enumerate(zip(("train", "val", "test"), (90, 30, 30), strict=True)):
        arrays[f"{split}_signals"], arrays[f"{split}_labels"] = signals(n, seed)
    path = workspace() / "tinyecg.npz"
    np.savez(path, **arrays)
    return path


@functools.cache
def trained_run():
    """The 1-D arch trained for 2 epochs on the signals (arch.txt, weights.pt, metrics.json)."""
    from nas.evaluate import TrainConfig, train_final

    out = workspace() / "trained_1d"
    train_final(ARCH, load_dataset(signal_file(), None), TrainConfig(epochs=2, batch_size=16, threads=1), out)
    return out


def lively_source():
    """The untrained 1-D arch (1 channel, 140 samples, 5 classes) with weights and BatchNorm statistics
    that make its logits depend on the input (at initialization they barely do)."""
    source = from_arch(ARCH, LENGTH, 1, 5, None)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in source.network.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5, generator=generator)
                m.running_var.uniform_(0.5, 2.0, generator=generator)
                m.weight.uniform_(0.5, 1.5, generator=generator)
            elif isinstance(m, torch.nn.Conv1d | torch.nn.Linear):
                m.weight.mul_(3)
    return source


def inputs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, LENGTH), dtype=np.float32)


def onnx_input_dims(path) -> list:
    import onnx

    graph_input = onnx.load(str(path)).graph.input[0]
    return [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]


@pytest.fixture(scope="module")
def untrained(tmp_path_factory, single_thread):
    out, source = tmp_path_factory.mktemp("onnx-1d"), lively_source()
    return out, source, run_export(source, options(out, int8=True)).to_json()


def test_onnx_takes_the_raw_signal_and_matches_pytorch(untrained):
    out, source, card = untrained
    assert source.input_shape == (1, 1, LENGTH) and source.mean == [0.0] and source.std == [1.0]
    assert onnx_input_dims(out / "model.onnx") == ["batch", 1, LENGTH]
    (model_input,) = session((out / "model.onnx").read_bytes()).get_inputs()
    (int8_input,) = session((out / "model.int8.onnx").read_bytes()).get_inputs()
    assert model_input.name == int8_input.name == "signal"
    assert 0 <= card["parity"]["fp32_max_abs_diff"] < PARITY_TOLERANCE
    assert card["int8"]["calibration"]["source"] == "generated signals (no data)"
    assert card["parity"]["int8_vs_fp32_max_abs_logit_diff"] < 0.5
    assert (
        read_metadata((out / "model.onnx").read_bytes())["input"] == "float32 NCL [batch, 1, 140], raw signal"
    )
    contract = card["deployment_contract"]
    assert contract["input"] == {
        "name": "signal",
        "dtype": "float32",
        "layout": "NCL",
        "shape": ["batch", 1, LENGTH],
        "range": None,
        "values": "the raw signal",
    }
    assert card["classes"] == [f"class_{k}" for k in range(5)] == contract["class_names"]
    reference = measure(source.arch, 1, LENGTH, 5)
    assert (card["complexity"]["macs"], card["complexity"]["params"]) == (reference.macs, reference.params)
    assert card["complexity"]["peak_activation_bytes"] == reference.peak_activation_bytes
    md = (out / "model_card.md").read_text()
    assert "- Input `signal`: float32, NCL ['batch', 1, 140], the raw signal." in md


def test_normalization_buffers_are_shaped_for_the_signal():
    """Mean and std are (1, C, 1) buffers: the model agrees with the network fed (x - mean) / std."""
    source = lively_source()
    source.mean, source.std = [2.0], [3.0]
    model = normalized(source)
    assert model.mean.shape == model.std.shape == (1, 1, 1)
    x = 3 * inputs(4, seed=2) + 2
    with torch.no_grad():
        expected = source.network(torch.from_numpy((x - 2) / 3)).numpy()
    assert np.abs(model_logits(model, x) - expected).max() < 1e-5


def test_signal_data_sets_length_classes_normalization_and_calibration(tmp_path):
    source = from_arch(ARCH, None, None, None, str(signal_file()))
    assert (source.in_chans, source.input_size, source.input_shape) == (1, LENGTH, (1, 1, LENGTH))
    assert source.class_names == CLASSES and source.mean[0] == pytest.approx(2, abs=0.3)
    card = run_export(source, options(tmp_path, int8=True)).to_json()
    raw = source.splits.test.inputs  # the model file normalizes the raw series itself
    got = session((tmp_path / "model.onnx").read_bytes()).run(None, {SIGNAL_INPUT: raw})[0]
    with torch.no_grad():
        mean, std = (np.float32(v[0]) for v in (source.mean, source.std))
        expected = source.network(torch.from_numpy((raw - mean) / std)).numpy()
    assert got.shape == (len(raw), 3) and np.abs(got - expected).max() < PARITY_TOLERANCE
    assert card["classes"] == CLASSES and card["dataset"]["name"] == "tinyecg"
    assert card["int8"]["calibration"]["source"] == "training split"
    assert set(card["clinical"]) == {"fp32", "int8"} and "auc" in card["clinical"]["fp32"]["test"]
    assert card["deployment_contract"]["normalization"]["mean"] == source.mean


def test_calibration_signals_are_training_signals_or_standard_normal():
    train = signals(10, 0)[0]
    picked = calibration_images(train, 4, (1, LENGTH))
    assert picked.dtype == np.float32 and picked.shape == (4, 1, LENGTH)
    assert all(any(np.array_equal(p, t) for t in train) for p in picked)
    generated = calibration_images(None, 64, (2, LENGTH))
    assert generated.shape == (64, 2, LENGTH) and abs(generated.std() - 1) < 0.05
    assert [list(b) for b in iter(ImageReader(picked, batch=3).get_next, None)] == [["signal"]] * 2


def test_trained_run_exports_through_the_cli_with_int8_and_pruning(capsys, tmp_path):
    out = tmp_path / "export"
    argv = ["export", str(trained_run()), "--data", str(signal_file()), "--int8", "--prune", "0.5"]
    flags = ["--rounds", "5", "--calibration-images", "16", "--finetune-epochs", "1", "--threads", "1"]
    rc = cli.main([*argv, *flags, "--out", str(out)])
    printed, err = capsys.readouterr()
    assert rc == 0, err
    assert "pruned: params x" in printed and "int8: size x" in printed
    card = json.loads((out / "model_card.json").read_text())
    assert card["arch"] == ARCH and card["classes"] == CLASSES and card["pruned"]
    assert card["deployment_contract"]["input"]["shape"] == ["batch", 1, LENGTH]
    unpruned, pruned = card["pruning"]["conv_widths"]
    assert len(unpruned) == len(pruned) and sum(pruned) < 0.7 * sum(unpruned)
    assert card["pruning"]["finetune"]["epochs"] == 1 and card["pruning"]["params_ratio"] < 0.6
    assert set(card["clinical"]) == {"fp32", "int8", "unpruned_fp32"}
    assert onnx_input_dims(out / "model.onnx") == ["batch", 1, LENGTH]


def test_trained_run_without_data_still_exports_its_classes(tmp_path):
    source = from_run_dir(trained_run(), None, False, None)  # the recorded name is no known dataset
    assert source.input_shape == (1, 1, LENGTH) and source.splits is None
    card = run_export(source, options(tmp_path)).to_json()
    assert card["classes"] == CLASSES and card["clinical"] is None


@pytest.mark.extra("prune")
def test_pruning_shrinks_conv1d_layers_and_keeps_the_classes():
    source = lively_source()
    pruned = prune_channels(source.network, 0.5, source.input_shape)
    widths = [
        [m.out_channels for m in n.modules() if isinstance(m, torch.nn.Conv1d)]
        for n in (source.network, pruned)
    ]
    assert sum(widths[1]) < 0.7 * sum(widths[0])
    with torch.no_grad():
        assert pruned(torch.from_numpy(inputs(3))).shape == (3, 5)


def test_the_cli_exports_an_untrained_1d_arch(capsys, tmp_path):
    argv = ["export", "--arch", ARCH, "--input-size", "140", "--in-chans", "1", "--num-classes", "5"]
    rc = cli.main([*argv, "--rounds", "5", "--out", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["deployment_contract"]["input"]["layout"] == "NCL" and len(card["classes"]) == 5


def test_an_arch_and_data_of_the_other_kind_are_one_line_errors():
    with pytest.raises(DataError, match=r"holds images \(1x28x28\) but the arch is 1-D: export a 2-D arch"):
        from_arch(ARCH, None, None, None, str(data_file()))
    with pytest.raises(DataError, match=r"holds signals \(1x140\) but the arch is 2-D: export a 1-D arch"):
        from_arch("conv_k3_s2_c8:ir_k3_e3_c16:head_c64", None, None, None, str(signal_file()))
    with pytest.raises(DataError, match="--input-size 28 contradicts the data"):
        from_arch(ARCH, 28, None, None, str(signal_file()))


def test_the_tvm_loader_takes_signals_unscaled():
    shape = [1, 1, LENGTH]
    x = np.arange(LENGTH, dtype=np.uint8).reshape(1, LENGTH)
    assert np.array_equal(as_input(x, shape), x[None].astype(np.float32))  # no division by 255
    assert as_input(inputs(2), shape).shape == (2, 1, LENGTH)
    with pytest.raises(SystemExit, match=r"the model takes \(N, 1, 140\)"):
        as_input(inputs(2)[..., :100], shape)


@pytest.mark.extra("tvm")
def test_tvm_host_library_and_its_loader_take_the_raw_signal(tmp_path):
    out = tmp_path / "tvm"
    t = run_export(lively_source(), options(out, format="tvm")).to_json()["tvm"]
    assert t["input_shape"] == [1, 1, LENGTH] and 0 <= t["parity"]["max_abs_diff"] < PARITY_TOLERANCE
    meta = json.loads((out / "model_tvm.json").read_text())
    assert meta["input_shape"] == [1, 1, LENGTH] and meta["input"].startswith("float32 NCL, the raw signal")
    x = inputs(3, seed=5)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(
        [sys.executable, str(out / "run_tvm.py"), "x.npy", "--out", "y.npy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = model_logits(normalized(lively_source()), x)
    assert np.abs(np.load(tmp_path / "y.npy") - expected).max() < PARITY_TOLERANCE


@pytest.mark.extra("tvm")
@pytest.mark.skipif(
    shutil.which("qemu-aarch64") is None or shutil.which("aarch64-linux-gnu-gcc") is None,
    reason="needs qemu-aarch64 and aarch64-linux-gnu-gcc (apt install qemu-user gcc-aarch64-linux-gnu)",
)
def test_tvm_aarch64_kernels_run_the_signal_under_qemu(tmp_path):
    t = run_export(lively_source(), options(tmp_path, format="tvm", target="aarch64")).to_json()["tvm"]
    assert t["files"]["library"]["machine"] == "AArch64" and t["input_shape"] == [1, 1, LENGTH]
    q = t["qemu"]
    assert q["ran"] and 0 <= q["max_abs_diff"] < PARITY_TOLERANCE and q["images"] == 3


@pytest.mark.extra("executorch")
def test_executorch_program_takes_the_raw_signal(tmp_path):
    from nas.export import executorch as et

    section = run_export(lively_source(), options(tmp_path, format="executorch")).to_json()["executorch"]
    assert section["input_shape"] == [1, 1, LENGTH]
    assert 0 <= section["parity"]["max_abs_diff"] < PARITY_TOLERANCE
    method = et.load(tmp_path / "model.pte")
    assert list(method.metadata.input_tensor_meta(0).sizes()) == [1, 1, LENGTH]
    x = inputs(4, seed=7)
    assert (
        np.abs(et.logits(method, x) - model_logits(normalized(lively_source()), x)).max() < PARITY_TOLERANCE
    )


def test_a_2d_table_predicts_nothing_for_a_1d_arch(tmp_path):
    """Same channels, size and classes, but the table's space is 2-D: said so, not looked up."""
    from nas.latency.table import LatencyTable
    from nas.space import SearchSpace

    space = SearchSpace.from_yaml("mnasnet_small").config.model_dump(mode="json")
    settings = {"space": "mnasnet_small", "space_config": space, "input_size": LENGTH, "in_chans": 1}
    settings |= {"num_classes": 5, "dtype": "fp32"}
    LatencyTable(settings, {"device": "testbox", "backend": "ort"}, {}, None).save(tmp_path / "table.json")
    card = run_export(lively_source(), options(tmp_path / "out", table=tmp_path / "table.json")).to_json()
    predicted = card["latency"]["predicted"]
    assert (
        predicted["ms"] is None and predicted["note"] == "table is for 1x140x140 image inputs and 5 classes"
    )
