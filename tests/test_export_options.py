"""What ``nas export`` and ``nas.export`` check before anything is loaded: the export options (as the
CLI's argument types check them), the format options, a missing extra, and which network is asked for
(``SourceRequest``), in that order and with the same one-line messages from the CLI and the API."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from export_helpers import SMALL

import nas
from nas import cli
from nas.errors import DataError, MissingExtraError, UsageError
from nas.export import pipeline
from nas.export.format import ExportOptions
from nas.export.pipeline import check_format
from nas.export.source import SourceRequest, run_dir_or_arch


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rounds": 0}, "--rounds must be >= 1, got 0"),
        ({"calibration_images": 0}, "--calibration-images must be >= 1, got 0"),
        ({"finetune_epochs": -1}, "--finetune-epochs must be >= 0, got -1"),
        ({"round_to": 0}, "--round-to must be >= 1, got 0"),
        ({"tune": 0}, "--tune must be >= 1, got 0"),
        ({"threads": 0}, "--threads must be >= 1, got 0"),
        ({"rounds": "5"}, "--rounds must be an integer, got '5'"),
        ({"rounds": True}, "--rounds must be an integer, got True"),
        ({"prune": 1.5}, "--prune must be between 0 and 1 (exclusive), got 1.5"),
        ({"prune": 0}, "--prune must be between 0 and 1 (exclusive), got 0"),
        ({"int8": 1}, "--int8 must be True or False, got 1"),
        ({"calibration_method": "max"}, "--calibration-method must be one of minmax, entropy, percentile"),
    ],
)
def test_export_options_are_checked_when_built(changes, message):
    with pytest.raises(UsageError, match="^" + re.escape(message)):
        ExportOptions(**changes)


def test_unset_options_and_defaults_are_accepted():
    ExportOptions(tune=None, round_to=None, threads=None, prune=None, finetune_epochs=0)
    ExportOptions(tune=1, round_to=1, threads=1, prune=0.3, calibration_images=1, rounds=1)


def test_the_api_checks_options_as_the_cli_does(tmp_path):
    with pytest.raises(UsageError, match=r"^--rounds must be >= 1, got 0$"):
        nas.export(SMALL, tmp_path / "e", rounds=0)
    assert not (tmp_path / "e").exists()


def test_target_host_is_every_formats_default():
    """``--target host`` (this machine) was accepted by every format: a format without ``target`` takes it
    as unset; any other target is still refused there."""
    assert check_format(ExportOptions(target="host")).name == "onnx"
    with pytest.raises(UsageError, match="--target applies to --format tvm only, not onnx"):
        check_format(ExportOptions(target="aarch64"))


def test_a_missing_prune_extra_is_found_before_anything_is_loaded(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch_pruning", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match="needs the 'prune' extra"):
        check_format(ExportOptions(prune=0.3))
    monkeypatch.setattr(SourceRequest, "load", _not_called)
    assert cli.main(["export", "--arch", SMALL, "--prune", "0.3", "--out", str(tmp_path / "e")]) == 2
    assert "pip install 'nas[prune]'" in capsys.readouterr().err
    with pytest.raises(MissingExtraError):
        nas.export(SMALL, tmp_path / "e", prune=0.3)


def _not_called(*args, **kwargs):
    raise AssertionError("called before the checks that come first")


@pytest.mark.parametrize(
    ("request_args", "message"),
    [
        ({"trial": 1}, "--trial and --best need a search RUN_DIR"),
        ({"arch": SMALL, "best": True}, "--trial and --best need a search RUN_DIR"),
        ({}, "give RUN_DIR (a trained run, or a search run with --trial N/--best) or --arch"),
        ({"run_dir": ".", "arch": SMALL}, "give either RUN_DIR or --arch, not both"),
        ({"run_dir": ".", "input_size": 64}, "--input-size applies to --arch only"),
        ({"run_dir": ".", "in_chans": 3, "num_classes": 4}, "--in-chans, --num-classes apply to --arch only"),
        ({"run_dir": ".", "trial": 1, "best": True}, "give either --trial N or --best, not both"),
    ],
)
def test_a_wrong_source_combination_is_one_usage_error(request_args, message):
    with pytest.raises(UsageError, match="^" + re.escape(message)):
        SourceRequest(**request_args)


def test_a_missing_run_directory_is_found_when_the_request_is_built(tmp_path):
    with pytest.raises(DataError, match=f"^no such run directory: {re.escape(str(tmp_path / 'x'))}$"):
        SourceRequest(run_dir=tmp_path / "x")


def test_source_combinations_fail_before_the_format_is_checked(monkeypatch, capsys, tmp_path):
    """``--format tvm`` imports TVM in its check: a wrong combination must not wait for it."""
    monkeypatch.setattr(pipeline, "check_format", _not_called)
    monkeypatch.setattr(SourceRequest, "load", _not_called)
    err = _cli_error(capsys, "export", tmp_path, "--input-size", "64", "--format", "tvm")
    assert err == "error: --input-size applies to --arch only; a run's model has its own\n"
    assert "no such run directory" in _cli_error(capsys, "export", tmp_path / "x", "--format", "tvm")
    assert "not both" in _cli_error(capsys, "export", tmp_path, "--arch", SMALL, "--format", "tvm")
    with pytest.raises(UsageError, match="apply to --arch only"):
        nas.export(tmp_path, in_chans=3, num_classes=4, format="tvm")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"^no such run directory: runs/x$"):
        nas.export("runs/x", format="tvm")


def _cli_error(capsys, *argv) -> str:
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    return err


def test_the_api_positional_is_a_directory_or_an_arch(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mobilenet_v2").mkdir()  # named like a reference network
    (tmp_path / "run").mkdir()
    assert run_dir_or_arch("mobilenet_v2") == (None, "mobilenet_v2")
    assert run_dir_or_arch("./mobilenet_v2") == (Path("mobilenet_v2"), None)
    assert run_dir_or_arch(Path("mobilenet_v2")) == (Path("mobilenet_v2"), None)
    assert run_dir_or_arch("run") == (Path("run"), None)
    assert run_dir_or_arch("runs/typo/") == (Path("runs/typo"), None)  # a path, though it does not exist
    assert run_dir_or_arch(SMALL) == (None, SMALL)
