"""Export formats as plugins: a format registered from outside works through ``nas export``, options
apply to the formats that declare them, a failed export leaves no half-written folder, and a re-export
replaces the previous export's files but no one else's."""

from __future__ import annotations

import json
import sys

import pytest
from export_helpers import SMALL, options

import nas
from nas import cli
from nas.errors import DataError, UsageError
from nas.export import FORMATS
from nas.export.pipeline import run_export
from nas.export.source import from_arch
from nas.export.staging import MANIFEST, staged

pytestmark = pytest.mark.usefixtures("single_thread")
FAST = ("--rounds", "5")


class Stamp:
    """A tiny third-party format: the first bytes of the ONNX model, and a work folder."""

    options = ("target",)

    def __init__(self, name: str | None = "stamp", fail: bool = False) -> None:
        self.name, self.fail = name, fail

    def check(self, options) -> None:
        if options.target not in (None, "paper"):
            raise UsageError(f"stamp: unknown target '{options.target}' (paper)")

    def export(self, model, reference, options, out_dir):
        (out_dir / "model.stamp").write_bytes(reference.onnx_fp32[:16])
        (out_dir / "stamp_work").mkdir()
        (out_dir / "stamp_work" / "log.txt").write_text("stamped\n")
        if self.fail:
            raise DataError("stamp: the ink ran out")
        return {"file": "model.stamp", "images": len(reference.images), "target": options.target}

    def card_lines(self, section) -> list[str]:
        return ["", "## Stamp", "", f"- File: `{section['file']}` ({section['images']} images checked)"]

    def summary(self, section) -> str:
        return f"stamp: {section['file']} for {section['target']}"


@pytest.fixture
def stamp():
    FORMATS.register("stamp", Stamp())
    FORMATS.register("broken-stamp", Stamp("broken-stamp", fail=True))
    yield
    FORMATS.unregister("stamp")
    FORMATS.unregister("broken-stamp")


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main(["export", "--arch", SMALL, *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_registered_format_exports_through_the_cli(stamp, capsys, tmp_path):
    rc, printed, err = run(capsys, "--format", "stamp", "--target", "paper", "--out", tmp_path / "e", *FAST)
    assert rc == 0, err
    card = json.loads((tmp_path / "e" / "model_card.json").read_text())
    assert card["stamp"] == {"file": "model.stamp", "images": 5, "target": "paper"}
    assert (tmp_path / "e" / "model.stamp").read_bytes() == (tmp_path / "e" / "model.onnx").read_bytes()[:16]
    assert (
        "## Stamp\n\n- File: `model.stamp` (5 images checked)"
        in (tmp_path / "e" / "model_card.md").read_text()
    )
    assert "stamp: model.stamp for paper" in printed.splitlines()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--target", "paper"), "--target applies to --format tvm, stamp or broken-stamp only, not onnx"),
        (("--format", "stamp", "--tune", "3"), "--tune applies to --format tvm only, not stamp"),
        (("--format", "stamp", "--int8"), "--int8 applies to --format onnx only, not stamp"),
        (("--format", "stamp", "--target", "slate"), "stamp: unknown target 'slate' (paper)"),
        (("--format", "stamps"), "unknown format 'stamps' (known: onnx, tvm, executorch, stamp"),
    ],
)
def test_options_apply_to_the_formats_that_declare_them(stamp, capsys, tmp_path, argv, message):
    rc, _, err = run(capsys, *argv, "--out", tmp_path / "e")
    assert rc == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "e").exists()


def test_a_format_that_fails_to_load_does_not_break_the_option_message(stamp, capsys, tmp_path, monkeypatch):
    (tmp_path / "exploding_format.py").write_text("raise RuntimeError('a bug in a plugin')\n")
    monkeypatch.syspath_prepend(tmp_path)
    FORMATS.register("exploding", "exploding_format:FORMAT")
    FORMATS.register("tvm", "exploding_format:FORMAT")  # so that no format that loads takes --tune
    try:
        rc, _, err = run(capsys, "--target", "paper", "--out", tmp_path / "e")
        assert rc == 2 and "--target applies to --format stamp or broken-stamp only, not onnx\n" in err, err
        rc, _, err = run(capsys, "--tune", "3", "--out", tmp_path / "e")
        assert rc == 2 and err == "error: --tune does not apply to --format onnx (no format takes it)\n", err
    finally:
        FORMATS.unregister("exploding")
        FORMATS.register("tvm", "nas.export.tvm:FORMAT")


class Counted(Stamp):
    """A format that counts its checks."""

    checks = 0

    def check(self, options) -> None:
        Counted.checks += 1


def test_the_format_is_checked_once_and_its_section_keyed_by_its_registered_name(capsys, tmp_path):
    FORMATS.register("counted", Counted(name=None))  # the registered name is the one the card uses
    try:
        rc, printed, err = run(capsys, "--format", "counted", "--out", tmp_path / "e", *FAST)
        assert rc == 0 and Counted.checks == 1, err
        assert (
            json.loads((tmp_path / "e" / "model_card.json").read_text())["counted"]["file"] == "model.stamp"
        )
        assert (
            "## Stamp" in (tmp_path / "e" / "model_card.md").read_text() and "stamp: model.stamp" in printed
        )
        card = nas.export(SMALL, tmp_path / "api", format="counted", rounds=5)
        assert Counted.checks == 2 and card == json.loads((tmp_path / "api" / "model_card.json").read_text())
    finally:
        FORMATS.unregister("counted")


def test_a_failed_format_leaves_no_output_folder(stamp, capsys, tmp_path):
    rc, _, err = run(capsys, "--format", "broken-stamp", "--out", tmp_path / "e", *FAST)
    assert rc == 2 and "the ink ran out" in err
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging folder


def test_a_failed_reexport_leaves_the_previous_export_as_it_was(stamp, tmp_path):
    out = tmp_path / "e"
    run_export(from_arch(SMALL, None, None, None, None), options(out, int8=True))
    (out / "notes.txt").write_text("mine\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataError, match="ink"):
        run_export(from_arch(SMALL, None, None, None, None), options(out, format="broken-stamp"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["e"]


def test_a_reexport_replaces_the_previous_files_and_keeps_the_users(stamp, tmp_path):
    out = tmp_path / "e"
    run_export(from_arch(SMALL, None, None, None, None), options(out, format="stamp"))
    assert {"model.stamp", "stamp_work"} <= {p.name for p in out.iterdir()}
    (out / "notes.txt").write_text("mine\n")
    card = run_export(from_arch(SMALL, None, None, None, None), options(out, int8=True)).to_json()
    names = {p.name for p in out.iterdir()}
    assert names == {
        "model.onnx",
        "model.int8.onnx",
        "model_card.json",
        "model_card.md",
        MANIFEST,
        "notes.txt",
    }
    assert "stamp" not in card and "## Stamp" not in (out / "model_card.md").read_text()
    assert (out / "notes.txt").read_text() == "mine\n"


def test_staging_moves_in_only_on_success(tmp_path):
    out = tmp_path / "deep" / "out"
    with pytest.raises(RuntimeError), staged(out) as stage:
        (stage / "a.bin").write_bytes(b"a")
        raise RuntimeError("a bug half way")
    assert not out.exists() and list((tmp_path / "deep").iterdir()) == []
    with staged(out) as stage:
        (stage / "a.bin").write_bytes(b"a")
    assert json.loads((out / MANIFEST).read_text()) == {"files": ["a.bin"]}
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is a file"), staged(tmp_path / "file"):
        pass


def test_missing_tvm_says_which_extra_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tvm", None)  # import tvm now fails as if it were not installed
    rc, _, err = run(capsys, "--format", "tvm", "--out", tmp_path / "e")
    assert rc == 2 and err.count("\n") == 1, err
    assert "needs the 'tvm' extra" in err and "pip install 'nas[tvm]'" in err
    assert not (tmp_path / "e").exists()
