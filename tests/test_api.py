"""The notebook API (``nas.load_space``, ``nas.build_model``, ``nas.search``, ``nas.export``) on tiny
generated data: each call does what its command does, and ``import nas`` stays light."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nas
from nas.errors import ConfigError, UsageError

README = Path(__file__).resolve().parents[1] / "README.md"

TINY = {
    "name": "tiny",
    "space": "mnasnet_small",
    "dataset": {"name": "synthetic"},
    "training": {"epochs": 1, "max_train_samples": 64, "batch_size": 32, "threads": 1},
    "strategy": {"name": "random"},
    "pruner": {"name": "none"},
    "trials": 5,
}


def test_load_space_and_build_model():
    space = nas.load_space("mnasnet_small")
    arch = space.sample(random.Random(0))
    for model in (nas.build_model(arch, 1, 2, 28), nas.build_model(str(arch), 1, 2, 28)):
        assert model.eval()(torch.zeros(1, 1, 28, 28)).shape == (1, 2)


def test_readme_example(tmp_path, monkeypatch, capsys):
    """The README's "Use from Python" block, as written, from a directory outside the checkout."""
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.DOTALL | re.M)
    (code,) = [block for block in blocks if "nas.search(" in block]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README 'Use from Python'", "exec"), {})
    summary = json.loads((tmp_path / "runs" / "notebook" / "summary.json").read_text())
    assert sum(summary["counts"].values()) == 4
    card = json.loads((tmp_path / "runs" / "notebook-export" / "model_card.json").read_text())
    assert card["arch"] == summary["best"]["arch"] and "int8" in card
    assert capsys.readouterr().out.startswith(summary["best"]["arch"])


def test_a_bad_experiment_mapping_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^experiment: key 'trials': ") as info:
        nas.search(TINY, trials=0, out=str(tmp_path / "run"))
    assert "\n" not in str(info.value) and not (tmp_path / "run").exists()


def test_export_names_unknown_options_in_one_line(tmp_path):
    valid = r"\(valid: format, target, tune, int8, calibration_images, .*, seed\)$"
    with pytest.raises(UsageError, match=r"^unknown export option\(s\) int9, out_dir " + valid):
        nas.export("any_arch", tmp_path / "e", int9=True, out_dir=tmp_path)  # out_dir is ``out`` here
    assert not (tmp_path / "e").exists()


def test_search_and_export_stay_callable_after_their_modules_are_imported():
    code = (
        "import sys, nas, nas.search.config, nas.export.format; "
        "assert callable(nas.search) and callable(nas.export) and nas.search.config.load_experiment; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_nas_is_light_and_lists_the_api():
    code = "import sys, nas; assert 'torch' not in sys.modules; print(sorted(nas.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(sorted(["__version__", "build_model", "export", "load_space", "search"]))
