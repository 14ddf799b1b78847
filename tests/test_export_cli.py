"""``nas export`` in process through ``nas.cli.main``."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from export_helpers import SMALL, data_file, trained_run

from nas import cli

FAST = ("--rounds", "5", "--calibration-images", "16", "--finetune-epochs", "1", "--threads", "1")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(capsys, *argv) -> str:
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.fixture
def search_run(tmp_path):
    """A search run whose trial 3 was trained (``nas train RUN --trial 3`` writes final/trial_3)."""
    run_dir = tmp_path / "search"
    summary = {
        "best": {"number": 3, "arch": SMALL},
        "trials": [{"number": 1, "arch": SMALL}, {"number": 3, "arch": SMALL}],
        "dataset": {"name": "tinyxray", "path": str(data_file())},  # as the search writes it
        "input_size": 28,
    }
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(json.dumps(summary))
    shutil.copytree(trained_run(), run_dir / "final" / "trial_3")
    return run_dir


def test_export_untrained_arch(capsys, tmp_path):
    # --target host (this machine) is what every format builds for: ONNX accepts it, as it always did
    rc, out, err = run(
        capsys, "export", "--arch", SMALL, "--int8", "--target", "host", "--out", tmp_path, *FAST
    )
    assert rc == 0, err
    names = {"model.onnx", "model.int8.onnx", "model_card.md", "model_card.json"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    assert "parity vs PyTorch" in out and "int8: size x" in out


@pytest.mark.extra("prune")
def test_export_best_trial_of_a_search_run(capsys, search_run):
    rc, out, err = run(capsys, "export", search_run, "--best", "--prune", "0.3", *FAST)
    assert rc == 0, err
    card = json.loads((search_run / "final" / "trial_3" / "export" / "model_card.json").read_text())
    assert "trial 3" in card["origin"] and card["clinical"] is not None and "pruned: params x" in out


def test_trained_dir_without_its_data_exports_fp32_but_not_int8(capsys, tmp_path):
    rc, _, err = run(capsys, "export", trained_run(), "--out", tmp_path, *FAST)
    assert rc == 0, err
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["clinical"] is None and "pass --data" in card["clinical_note"]
    assert "need its data" in one_line_error(capsys, "export", trained_run(), "--int8", "--out", tmp_path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--arch", SMALL, "--format", "tflite"), "unknown format 'tflite'"),
        (("--arch", SMALL, "--target", "riscv"), "--target applies to --format tvm only, not onnx"),
        (("--arch", SMALL, "--target", "aarch64"), "applies to --format tvm only"),
        (("--arch", SMALL, "--tune", "8"), "--tune applies to --format tvm only"),
        (("--arch", "conv_k3_c8:bogus_k3:head"), "bogus"),
        (("--arch", "not_a_net"), "neither a reference network"),
        (("--arch", SMALL, "--prune", "1.5"), "between 0 and 1"),
        (("missing-run-dir",), "no such run directory"),
        ((), "give RUN_DIR"),
        (("--arch", SMALL, "--best"), "need a search RUN_DIR"),
    ],
)
def test_bad_input_is_one_line(capsys, argv, message):
    assert message in one_line_error(capsys, "export", *argv)


def test_bad_search_run_input_is_one_line(capsys, search_run, tmp_path):
    assert "no trial 7" in one_line_error(capsys, "export", search_run, "--trial", "7")
    assert "--trial N or --best" in one_line_error(capsys, "export", search_run)
    err = one_line_error(capsys, "export", search_run, "--trial", "1")
    assert "no trained weights" in err and f"nas train {search_run} --trial 1" in err
    assert "not both" in one_line_error(capsys, "export", search_run, "--best", "--arch", SMALL)
    assert "neither a trained" in one_line_error(capsys, "export", tmp_path)
    assert "drop --trial" in one_line_error(capsys, "export", trained_run(), "--best")


def test_untrained_arch_on_data_takes_the_data_shape(capsys, tmp_path):
    rc, _, err = run(
        capsys, "export", "--arch", SMALL, "--data", data_file(), "--int8", "--out", tmp_path, *FAST
    )
    assert rc == 0, err
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["int8"]["calibration"]["source"] == "training split" and card["clinical"] is not None
    assert card["deployment_contract"]["normalization"]["mean"] != [0.5]
    err = one_line_error(capsys, "export", "--arch", SMALL, "--data", data_file(), "--num-classes", "3")
    assert "contradicts" in err
    assert "applies to --arch only" in one_line_error(capsys, "export", trained_run(), "--input-size", "64")


def _metrics(**changes):
    """metrics.json with keys changed (None: removed)."""

    def change(data: bytes) -> bytes:
        metrics = {**json.loads(data), **changes}
        return json.dumps({k: v for k, v in metrics.items() if v is not None}).encode()

    return change


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("metrics.json", _metrics(task=None, class_names=None), "no 'task', 'class_names'"),
        ("metrics.json", _metrics(in_chans="1"), "'in_chans' must be a positive integer"),
        ("metrics.json", _metrics(normalization={}), "'normalization' must have 'mean' and 'std'"),
        ("metrics.json", lambda _: b"\xff\xfe not utf-8", "codec can't decode"),
        ("metrics.json", lambda _: b"{", "not JSON"),
        ("metrics.json", lambda _: b"[]", "not a JSON object"),
        ("weights.pt", lambda _: b"", "the file is empty or cut short"),
        ("weights.pt", lambda _: b"garbage", "not a plain state dict of tensors"),
        ("weights.pt", lambda data: data[:200], "PytorchStreamReader"),
        ("weights.pt", lambda data: data[:-30], "Invalid argument"),  # cut short another way
        ("arch.txt", lambda _: b"\xff\xfe", "codec can't decode"),
    ],
)
def test_a_damaged_trained_run_is_one_data_error_naming_the_file(capsys, tmp_path, name, damage, message):
    run_dir = tmp_path / "damaged"
    shutil.copytree(trained_run(), run_dir)
    (run_dir / name).write_bytes(damage((run_dir / name).read_bytes()))
    err = one_line_error(capsys, "export", run_dir, "--out", tmp_path / "e", *FAST)
    assert f"{run_dir / name}: " in err and message in err, err
    assert not (tmp_path / "e").exists()
