"""Without an optional extra, the feature that needs it says in one line how to install it (exit 2).

Each test hides the extra's module (``sys.modules[name] = None`` makes its import fail as if it were not
installed), so these run whether or not the extras are present.
"""

from __future__ import annotations

import sys

import pytest
from export_helpers import SMALL

from nas import cli
from nas.errors import MissingExtraError
from nas.latency.backends import make_backend


@pytest.fixture
def without(monkeypatch):
    def hide(module: str) -> None:
        monkeypatch.setitem(sys.modules, module, None)

    return hide


def one_line_error(capsys, *argv: str) -> str:
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_tvm_latency_backends_name_the_extra(without, capsys, tmp_path):
    without("tvm")
    err = one_line_error(
        capsys, "latency", "build", "--space", "mnasnet_small", "--input-size", "28", "--backend", "tvm",
        "--device", "x", "--out", str(tmp_path / "t.json"),
    )  # fmt: skip
    assert "needs the 'tvm' extra" in err and "pip install 'nas[tvm]'" in err
    with pytest.raises(MissingExtraError, match=r"pip install 'nas\[tvm\]'"):
        make_backend("tvm-rpc", rpc_host="127.0.0.1")


def test_tvm_export_names_the_extra(without, capsys, tmp_path):
    without("tvm")
    err = one_line_error(capsys, "export", "--arch", SMALL, "--format", "tvm", "--out", str(tmp_path / "e"))
    assert "pip install 'nas[tvm]'" in err
    assert not (tmp_path / "e").exists()


def test_pruning_names_the_extra(without, capsys, tmp_path):
    without("torch_pruning")
    err = one_line_error(capsys, "export", "--arch", SMALL, "--prune", "0.3", "--out", str(tmp_path / "e"))
    assert "needs the 'prune' extra" in err and "pip install 'nas[prune]'" in err


def test_postgresql_storage_names_the_extra(without, capsys, tmp_path):
    without("psycopg")
    experiment = tmp_path / "cheap.yaml"
    experiment.write_text(
        "name: cheap\nspace: mnasnet_small\nreward: {type: weighted_sum, weights: {params: -1.0e-6}}\n"
    )
    url = "postgresql://nobody@127.0.0.1:1/none"
    err = one_line_error(capsys, "search", str(experiment), "--storage", url, "--out", str(tmp_path / "run"))
    assert "needs the 'postgres' extra" in err and "pip install 'nas[postgres]'" in err


def test_a_missing_package_of_an_extra_names_the_extra(monkeypatch):
    """TVM installed without tornado (its RPC tracker needs it, undeclared): still the extra's message."""
    from nas import extras
    from nas.errors import MissingExtraError

    real = extras.importlib.import_module

    def without_tornado(name, *args, **kwargs):
        if name == "tvm.rpc":
            raise ModuleNotFoundError("No module named 'tornado'", name="tornado")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(extras.importlib, "import_module", without_tornado)
    with pytest.raises(
        MissingExtraError, match=r"'tvm' extra, which is not installed: pip install 'nas\[tvm\]'"
    ):
        extras.require("tvm", "tvm.rpc")


def test_a_missing_package_outside_the_extra_is_a_bug_not_a_missing_extra(monkeypatch):
    from nas import extras

    def broken(name, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'numpy.core._x'", name="numpy.core._x")

    monkeypatch.setattr(extras.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError):
        extras.require("prune")
