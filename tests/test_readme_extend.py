"""The README's "Extend" examples, installed as the plugin package it describes (its modules and its
``nas.plugins`` entry points), then used through the same paths as the built-ins."""

from __future__ import annotations

import json
import re
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

from nas.arch import ArchSpec
from nas.builder import build_model
from nas.cli import main
from nas.errors import ConfigError, DataError
from nas.registry import PLUGIN_GROUP, REGISTRIES, registry

README = Path(__file__).resolve().parents[1] / "README.md"
MODULES = {
    "ghost": "class Ghost",
    "hill_climb": "class HillClimbSampler",
    "torch_eager": "class TorchEagerBackend",
    "my_xrays": "class MyXrays",
    "pt2": "class Pt2",
}
PLUGINS = {"block": "ghost", "strategy": "hill-climb", "backend": "torch-eager", "dataset": "my-xrays"}
PLUGINS["format"] = "pt2"
pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]


def readme_block(language: str, marker: str) -> str:
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", README.read_text(), flags=re.DOTALL | re.M)
    found = [textwrap.dedent(body) for _, body in blocks if marker in body]
    assert len(found) == 1, f"README has {len(found)} {language} blocks with {marker!r}"
    return found[0]


@pytest.fixture(scope="module")
def plugin_package(tmp_path_factory):
    """``pip install -e .`` of the README's my_nas_plugins: its modules and dist-info on sys.path."""
    root = tmp_path_factory.mktemp("site")
    package = root / "my_nas_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, marker in MODULES.items():
        (package / f"{module}.py").write_text(readme_block("python", marker))
    project = tomllib.loads(readme_block("toml", "[project.entry-points"))
    points = project["project"]["entry-points"][PLUGIN_GROUP]
    info = root / "my_nas_plugins-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-nas-plugins\nVersion: 0.1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in points.items())
    (info / "entry_points.txt").write_text(f"[{PLUGIN_GROUP}]\n{lines}")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(root))
        for kind in REGISTRIES:
            registry(kind).refresh()
        yield points
        for kind, name in PLUGINS.items():
            registry(kind).unregister(name)
            registry(kind).refresh()


def test_every_example_is_one_entry_point(plugin_package, capsys):
    assert sorted(plugin_package) == sorted(f"{kind}.{name}" for kind, name in PLUGINS.items())
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    for kind, name in PLUGINS.items():
        assert listed[kind][name] == plugin_package[f"{kind}.{name}"]


def test_block(plugin_package):
    arch = ArchSpec.from_str("conv_k3_c16:ghost_k3_s2_c32:head")
    assert arch.to_str() == "conv_k3_c16:ghost_s2_c32:head"
    model = build_model(arch, in_chans=1, num_classes=2, input_size=28).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 2)


def experiment(tmp_path: Path, **keys):
    from nas.search.config import ExperimentConfig

    data = {
        "name": "hill-climb",
        "space": "mnasnet_small",
        "reward": {"type": "weighted_sum", "weights": {"params": -1.0e-6}},
        "strategy": {"name": "hill-climb", "options": {"warmup": 3}},
        "trials": 9,
        "out": str(tmp_path / "run"),
    }
    return ExperimentConfig.model_validate(data | keys)


def test_strategy_climbs_from_the_best_so_far(plugin_package, tmp_path):
    from nas.search.factory import default_objective
    from nas.search.run import run_search
    from nas.search.strategies import fitness, make_sampler
    from nas.space import SearchSpace

    config = experiment(tmp_path)
    assert type(make_sampler(config.strategy, SearchSpace.from_yaml(config.space), 0)).__name__ == (
        "HillClimbSampler"
    )
    study = run_search(config, default_objective)
    trials = sorted(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.number)
    assert len(trials) == 9
    for i, trial in enumerate(trials[3:], start=3):
        best = max(trials[:i], key=fitness)
        changed = [name for name in best.params if best.params[name] != trial.params[name]]
        assert changed, f"trial {trial.number} repeats the best so far"
        assert trial.user_attrs["arch"] != best.user_attrs["arch"]
    # it declared that it ranks by a reward: an experiment without one is refused in one line
    with pytest.raises(Exception, match="strategy hill-climb ranks candidates by a reward"):
        experiment(
            tmp_path,
            reward=None,
            mode="pareto",
            objectives=[{"metric": "params"}, {"metric": "macs"}],
        )


def test_latency_backend(plugin_package):
    from nas.latency.backends import make_backend
    from nas.latency.backends.base import Item, Settings
    from nas.latency.validate import backend_from_provenance

    backend = make_backend("torch-eager", threads=1)
    model = build_model(ArchSpec.from_str("conv_k3_c16:ghost_s2_c32:head"), 1, 2, 28).eval()
    items = [Item("net", model, (1, 1, 28, 28)), Item("stem", model.stem, (1, 1, 28, 28))]
    timings = backend.measure(items, Settings(rounds=5, warmup_ms=1))
    assert set(timings) == {"net", "stem"} and all(t.median_ms > 0 for t in timings.values())
    assert timings["net"].median_ms > timings["stem"].median_ms
    rebuilt = backend_from_provenance(backend.provenance())
    assert type(rebuilt) is type(backend) and rebuilt.threads == 1
    with pytest.raises(Exception, match="do not apply to latency backend 'torch-eager'"):
        make_backend("torch-eager", target="host")


def test_dataset(plugin_package, tmp_path, monkeypatch):
    from nas.data import dataset_card, load_dataset

    monkeypatch.setenv("MY_XRAYS", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="my-xrays: no image folder at"):
        load_dataset("my-xrays", 28)
    rng = np.random.default_rng(0)
    for label in ("normal", "pneumonia"):
        (tmp_path / "xrays" / label).mkdir(parents=True)
        for i in range(15):
            pixels = rng.integers(0, 255, (40, 40), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "xrays" / label / f"{i}.png")
    monkeypatch.setenv("MY_XRAYS", str(tmp_path / "xrays"))
    splits = load_dataset("my-xrays", 28)
    assert splits.task == "binary" and splits.class_names == ("normal", "pneumonia")
    assert splits.train.inputs.shape[1:] == (28, 28, 1)
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == 30
    assert "not for redistribution" in dataset_card("my-xrays")["licence"]


def test_export_format(plugin_package, tmp_path, capsys):
    out = tmp_path / "export"
    argv = ["export", "--arch", "conv_k3_c16:ghost_s2_c32:head", "--input-size", "28", "--format", "pt2"]
    assert main([*argv, "--rounds", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pt2: model.pt2, parity" in printed
    card = json.loads((out / "model_card.json").read_text())
    assert card["pt2"]["file"] == "model.pt2" and card["pt2"]["max_abs_diff"] < 1e-4
    assert "## torch.export" in (out / "model_card.md").read_text()
    assert (out / "model.pt2").is_file() and (out / "model.onnx").is_file()
    assert main([*argv, "--target", "aarch64", "--out", str(tmp_path / "refused")]) == 2
    assert "--target" in capsys.readouterr().err and not (tmp_path / "refused").exists()


def test_config_error_names_a_broken_plugin(plugin_package):
    from nas.search.strategies import STRATEGIES

    STRATEGIES.register("broken", "my_nas_plugins.hill_climb:NO_SUCH_STRATEGY")
    try:
        with pytest.raises(ConfigError, match=r"strategy 'broken': 'my_nas_plugins\.hill_climb' has no"):
            STRATEGIES.get("broken")
    finally:
        STRATEGIES.unregister("broken")
