"""ExecuTorch export: a .pte that the ExecuTorch runtime loads and that matches PyTorch, its model card
section, and the one-line errors of options that do not apply to it."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from export_helpers import SMALL

from nas import cli
from nas.export import executorch as et
from nas.export.onnx import PARITY_TOLERANCE, Normalized, ParityError
from nas.export.source import from_arch

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.extra("executorch")]
FAST = ("--rounds", "5")


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 28, 28), dtype=np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, single_thread):
    """One ``nas export --arch SMALL --format executorch`` (28x28, 1 channel, untrained): its folder and
    what it printed."""
    out = tmp_path_factory.mktemp("executorch")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = cli.main(["export", "--arch", SMALL, "--format", "executorch", "--out", str(out), *FAST])
    assert rc == 0, stderr.getvalue()
    return out, stdout.getvalue()


def test_pte_loads_in_the_executorch_runtime_and_matches_pytorch(exported):
    out, _ = exported
    assert {"model.pte", "model.onnx", "model_card.json", "model_card.md"} <= {p.name for p in out.iterdir()}
    method = et.load(out / "model.pte")
    meta = method.metadata
    assert meta.num_inputs() == 1 and list(meta.input_tensor_meta(0).sizes()) == [1, 1, 28, 28]
    source = from_arch(SMALL, None, None, None, None)  # the same seed-0 weights the command exported
    model = Normalized(source.network, source.mean, source.std).eval()
    x = images(4, seed=7)
    got = et.logits(method, x)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert got.shape == (4, 2) and np.abs(got - expected).max() < PARITY_TOLERANCE


def test_card_has_the_executorch_section(exported):
    out, printed = exported
    card = json.loads((out / "model_card.json").read_text())
    section = card["executorch"]
    assert section["file"] == "model.pte" and section["bytes"] == (out / "model.pte").stat().st_size
    assert section["batch"] == 1 and section["delegate"] == "XNNPACK" and section["executorch"] == "1.5.1"
    assert 0 <= section["parity"]["max_abs_diff"] < section["parity"]["tolerance"] == PARITY_TOLERANCE
    delegation = section["delegation"]
    assert delegation["delegated_subgraphs"] >= 1 and delegation["delegated_ops"] > 10
    assert delegation["non_delegated_ops"] == len(delegation["non_delegated_op_types"]) == 0
    latency = section["latency"]
    ratio = latency["executorch_ms"]["median_ms"] / latency["onnx_fp32_ms"]["median_ms"]
    assert latency["ratio_vs_onnx"] == pytest.approx(ratio) and latency["executorch_ms"]["rounds"] == 5
    assert "Python call overhead is included" in latency["how"]
    markdown = (out / "model_card.md").read_text()
    assert "## ExecuTorch" in markdown and "`model.pte`" in markdown and "static batch 1" in markdown
    assert "executorch: model.pte, parity" in printed


def test_normalization_is_inside_the_program_and_a_wrong_program_fails_parity(tmp_path):
    source = from_arch(SMALL, None, None, None, None)
    torch.manual_seed(0)
    with torch.no_grad():  # non-trivial BatchNorm: an untrained network's logits hardly see its input
        for m in source.network.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
    model = Normalized(source.network, [0.3], [0.2]).eval()
    program, _ = et.lower(model, (1, 1, 28, 28))
    (tmp_path / "m.pte").write_bytes(program)
    method = et.load(tmp_path / "m.pte")
    x = images(3)
    with torch.no_grad():
        expected = source.network.eval()(torch.from_numpy((x - 0.3) / 0.2)).numpy()
    assert np.abs(et.logits(method, x) - expected).max() < PARITY_TOLERANCE
    assert et.parity(model, method, x) < PARITY_TOLERANCE
    with pytest.raises(ParityError, match="ExecuTorch parity failed"):  # normalized otherwise: 1e-2 off
        et.parity(Normalized(source.network, [0.5], [0.5]).eval(), method, x)


def one_line_error(capsys, *argv) -> str:
    rc = cli.main(["export", "--arch", SMALL, "--format", "executorch", *argv])
    _, err = capsys.readouterr()
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--int8",), "--int8 applies to --format onnx only"),
        (("--target", "aarch64"), "--target applies to --format tvm only"),
        (("--target", "aarch64"), "--target applies to --format tvm only"),
        (("--tune", "8"), "--tune applies to --format tvm only, not executorch"),
    ],
)
def test_options_that_do_not_apply_are_one_line(capsys, argv, message):
    assert message in one_line_error(capsys, *argv)


def test_missing_executorch_says_how_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch", None)  # import executorch fails as if not installed
    assert "pip install 'nas[executorch]'" in one_line_error(capsys)


def test_the_check_does_not_import_executorch():
    """Importing ExecuTorch takes seconds: the check before anything is built only looks it up."""
    code = (
        "import sys; from nas.export import FORMATS; from nas.export.format import ExportOptions; "
        "FORMATS.get('executorch').check(ExportOptions(format='executorch')); "
        "assert 'executorch' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
