"""The registry every extension point uses: lazy imports, one-line errors, entry-point plugins."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from nas.cli import main
from nas.errors import ConfigError, UsageError
from nas.registry import PLUGIN_GROUP, REGISTRIES, Registry, registry


def test_builtin_is_imported_only_when_looked_up():
    things = Registry("thing", {"dumps": "json:dumps", "lazy": "nas_never_imported_module:X"})
    assert things.names() == ("dumps", "lazy") and "dumps" in things and list(things) == ["dumps", "lazy"]
    assert things.get("dumps") is json.dumps
    assert "nas_never_imported_module" not in sys.modules


def test_unknown_name_lists_the_known_ones():
    things = Registry("thing", {"a": "json:dumps", "b": "json:loads"})
    with pytest.raises(UsageError, match=r"^unknown thing 'c' \(known: a, b\)$"):
        things.get("c")


def test_broken_targets_are_config_errors_that_name_the_entry():
    things = Registry("thing", {"gone": "nas_no_such_module:X", "typo": "json:dumsp"})
    with pytest.raises(ConfigError, match="thing 'gone': module 'nas_no_such_module' not found"):
        things.get("gone")
    with pytest.raises(ConfigError, match="thing 'typo': 'json' has no attribute 'dumsp'"):
        things.get("typo")


def test_register_an_object_and_unregister():
    things = Registry("thing", {})
    marker = object()
    things.register("mine", marker)
    assert things.get("mine") is marker
    things.unregister("mine")
    assert "mine" not in things


def test_every_kind_has_its_registry():
    for kind in REGISTRIES:
        assert isinstance(registry(kind), Registry) and registry(kind).names()
    with pytest.raises(UsageError, match="unknown extension kind 'widget'"):
        registry("widget")


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A distribution on sys.path, as ``pip install`` leaves one: a module and its entry points."""
    (tmp_path / "nas_demo_plugin.py").write_text(
        textwrap.dedent(
            """
            from nas.data.synthetic import Generated

            DATASET = Generated()
            """
        )
    )
    info = tmp_path / "nas_demo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nas-demo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{PLUGIN_GROUP}]\n"
        "dataset.demo-xrays = nas_demo_plugin:DATASET\n"
        "dataset.synthetic = nas_demo_plugin:SHADOW\n"
        "widget.spinner = nas_demo_plugin:SPINNER\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    datasets = registry("dataset")
    datasets.refresh()
    yield datasets
    datasets.unregister("demo-xrays")
    datasets.refresh()


def test_entry_point_plugin_is_found_without_editing_the_package(installed_plugin, capsys):
    from nas.data import load_dataset

    assert "demo-xrays" in installed_plugin
    assert load_dataset("demo-xrays", 28).num_classes == 2
    assert installed_plugin.describe()["synthetic"] == "nas.data.synthetic:DATASET"  # never shadowed
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["dataset"]["demo-xrays"] == "nas_demo_plugin:DATASET"
    assert listed["ignored_entry_points"] == ["widget.spinner = nas_demo_plugin:SPINNER"]


def test_plugins_command_lists_every_kind(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for kind in REGISTRIES:
        assert f"\n{kind} (" in f"\n{out}"
    assert "  mnasnet-rl " in out and "  tvm-rpc " in out and "  pneumoniamnist " in out


def test_no_registry_module_imports_a_heavy_optional_package():
    """Listing every name must not import TVM or ExecuTorch (``nas --help`` stays fast)."""
    import subprocess

    code = (
        "import sys; from nas.registry import REGISTRIES, registry\n"
        "[registry(k).names() for k in REGISTRIES]\n"
        "print(sorted(m for m in ('tvm', 'executorch', 'torch_pruning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_an_entry_must_carry_the_name_it_is_registered_under():
    """Arch strings, tables and cards record an entry's own name and look it up again by it."""
    from nas.blocks import BLOCKS

    things = Registry("block", {}, label="block type")
    things.register("ghostly", BLOCKS.get("ir"))
    with pytest.raises(ConfigError, match="block type 'ghostly' calls itself 'ir'"):
        things.get("ghostly")


def test_dataset_names_match_in_any_case_plugins_too():
    from nas.data import DATASETS, Dataset

    assert "PneumoniaMNIST" in DATASETS and DATASETS.get("PneumoniaMNIST") is DATASETS.get("pneumoniamnist")
    mine: Dataset = DATASETS.get("synthetic")
    DATASETS.register("My-Xrays", mine)
    try:
        assert "my-xrays" in DATASETS and DATASETS.get("MY-XRAYS") is mine
    finally:
        DATASETS.unregister("my-Xrays")
    assert "my-xrays" not in DATASETS
