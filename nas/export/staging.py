"""Write an export into a hidden stage folder inside its destination and move it into place only when it
is complete, so that a failed step (a parity check, a compiler, a missing tool) never leaves half an
export, and a failed move never leaves the user with neither the old export nor the new one.

The stage lives inside ``out`` (created if needed, and removed again on failure if it was), not beside
it: so every move is a rename within one folder, on one filesystem even when ``out`` is a symlink to
another disk, and an existing ``out`` need not have a writable parent.

A destination that already holds an export gets the new one instead: the files the previous export
wrote (listed in its ``MANIFEST``) are moved into a backup folder, the new ones moved in, and the backup
deleted last; if a move fails, what was moved in is removed and the backup moved back. Files the previous
export did not list (a user's notes, a benchmark table) are never touched, unless the new export writes a
file of the same name: that one is replaced (and restored like the others if publishing fails).
Operating-system failures (a folder that is not writable, a full disk) are one-line ``DataError``s.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from nas.errors import DataError, UsageError

MANIFEST = ".nas_export.json"
STAGE, BACKUP = ".nas_export.stage-", ".nas_export.backup-"  # prefixes of the hidden work folders
FULL = (errno.ENOSPC, errno.EDQUOT)  # writing the export itself fails for want of space: not a bug


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A new empty folder to write the export into; its files are moved into ``out`` if the block
    completes, and it is removed either way."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; export into a folder")
    created = not out.exists()
    stage = out / f"{STAGE}{uuid.uuid4().hex[:8]}"
    try:
        stage.mkdir(parents=True)
    except OSError as exc:
        raise _data_error(exc, out) from None
    try:
        yield stage
        _publish(stage, out)
    except OSError as exc:
        if exc.errno not in FULL:
            raise  # anything else writing into the fresh stage is the code's fault
        raise _data_error(exc, out) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with suppress(OSError):
                out.rmdir()  # only if empty: the export failed before anything was moved in


def _publish(stage: Path, out: Path) -> None:
    """Move the stage's files into ``out`` in place of the previous export's; all or nothing."""
    new = sorted(p.name for p in stage.iterdir() if p.name != MANIFEST)
    old = sorted(name for name in {*_previous(out), *new, MANIFEST} if _exists(out / name))
    backup = out / f"{BACKUP}{uuid.uuid4().hex[:8]}"
    aside: list[str] = []
    moved: list[str] = []
    try:
        (stage / MANIFEST).write_text(json.dumps({"files": new}, indent=2) + "\n")
        backup.mkdir()
        for name in old:
            os.replace(out / name, backup / name)
            aside.append(name)
        for name in [*new, MANIFEST]:
            os.replace(stage / name, out / name)
            moved.append(name)
    except OSError as exc:
        _restore(out, backup, aside, moved)
        raise _data_error(exc, out) from None
    shutil.rmtree(backup, ignore_errors=True)  # the new export is in place: a leftover is only clutter


def _restore(out: Path, backup: Path, aside: list[str], moved: list[str]) -> None:
    """Undo a publish that failed half way: the new files out, the previous export's back."""
    try:
        for name in moved:
            _remove(out / name)
        for name in aside:
            os.replace(backup / name, out / name)
    except OSError as exc:
        raise DataError(
            f"publishing into {out} failed and so did restoring the previous export "
            f"({exc.strerror or exc}): its files are in {backup}"
        ) from None
    with suppress(OSError):
        backup.rmdir()  # empty again (or never made)


def _previous(out: Path) -> list[str]:
    """What the export already in ``out`` wrote (nothing known: an older export, or none)."""
    try:
        files = json.loads((out / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [n for n in files if isinstance(n, str) and Path(n).name == n and n not in ("", ".", "..")]


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif _exists(path):
        path.unlink()


def _data_error(exc: OSError, out: Path) -> DataError:
    """One line naming the destination and the operating system's reason."""
    return DataError(f"cannot write the export to {out}: {exc.strerror or exc}")
