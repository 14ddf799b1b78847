"""Publishing an export is all or nothing: a move that fails half way (another filesystem, a full disk,
a folder that is not writable) leaves the previous export as it was and says so in one line, and files
the previous export did not write are never touched."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from export_helpers import SMALL

from nas import cli
from nas.errors import DataError
from nas.export.staging import MANIFEST, staged


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones too) with its bytes (None: a folder)."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))
    }


def export(out: Path, files: dict[str, bytes]) -> None:
    with staged(out) as stage:
        for name, data in files.items():
            (stage / name).parent.mkdir(exist_ok=True)
            (stage / name).write_bytes(data)


@pytest.fixture
def previous(tmp_path) -> Path:
    """An export (a file and a work folder) beside a user's notes and a file the export did not list."""
    out = tmp_path / "e"
    export(out, {"a.bin": b"old a", "work/log.txt": b"old log"})
    (out / "notes.txt").write_text("mine\n")
    (out / "b.bin").write_bytes(b"the user's b")
    return out


def failing_move(monkeypatch, target: Path, code: int = errno.EXDEV) -> None:
    """``os.replace`` onto ``target`` fails as a move to another filesystem does."""
    replace = os.replace

    def move(src, dst):
        if Path(dst) == target:
            raise OSError(code, os.strerror(code), str(src), None, str(dst))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", move)


def test_a_failed_move_restores_the_previous_export(previous, monkeypatch):
    before = tree(previous)
    failing_move(monkeypatch, previous / "c.bin")  # after a.bin and b.bin were moved in
    with pytest.raises(DataError, match=r"^cannot write the export to .*/e: Invalid cross-device link$"):
        export(previous, {"a.bin": b"new a", "b.bin": b"new b", "c.bin": b"new c"})
    assert tree(previous) == before  # no stage, no backup, nothing new, the old files back


def test_a_publish_replaces_only_what_the_previous_export_listed(previous):
    export(previous, {"a.bin": b"new a", "b.bin": b"new b"})
    assert tree(previous) == {
        MANIFEST: json.dumps({"files": ["a.bin", "b.bin"]}, indent=2).encode() + b"\n",
        "a.bin": b"new a",
        "b.bin": b"new b",  # a name the export writes replaces the user's file of that name
        "notes.txt": b"mine\n",
    }  # the old work folder is gone (the manifest listed it) and no backup is left


def test_an_out_that_links_to_another_folder_receives_the_export(tmp_path):
    disk = tmp_path / "other_disk"
    disk.mkdir()
    (tmp_path / "e").symlink_to(disk)
    export(tmp_path / "e", {"a.bin": b"a"})
    assert (tmp_path / "e").is_symlink() and set(tree(disk)) == {"a.bin", MANIFEST}


def test_a_full_disk_is_a_data_error_and_a_bug_stays_a_bug(tmp_path):
    full = r"cannot write the export to .*/e: No space left on device"
    with pytest.raises(DataError, match=full), staged(tmp_path / "e"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(FileNotFoundError), staged(tmp_path / "e") as stage:
        (stage / "missing" / "a.bin").write_bytes(b"")  # the code's own mistake: not the user's
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_destination_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    mkdir = Path.mkdir

    def denied(self, *args, **kwargs):  # as for anyone but root in a folder they cannot write
        if self.parent == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    rc = cli.main(["export", "--arch", SMALL, "--rounds", "2", "--out", str(locked / "e")])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"error: cannot write the export to {locked / 'e'}: Permission denied\n"
