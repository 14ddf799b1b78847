"""Write an export into a fresh folder next to its destination and move it into place only when it is
complete, so that a failed step (a parity check, a compiler, a missing tool) never leaves half an export.

A destination that already holds an export gets the new one instead: the files the previous export
wrote (listed in its ``MANIFEST``) are removed first, so no stale ``tvm_tuning/`` stays beside an untuned
library, while files the export did not write (a user's notes, a benchmark table) are left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nas.errors import UsageError

MANIFEST = ".nas_export.json"


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A new empty folder beside ``out`` to write into; moved into ``out`` if the block completes,
    removed if it raises."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; export into a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        yield stage
        _publish(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out: Path) -> None:
    written = sorted(p.name for p in stage.iterdir())
    (stage / MANIFEST).write_text(json.dumps({"files": written}, indent=2) + "\n")
    if not out.exists():
        os.replace(stage, out)
        return
    for name in {*_previous(out), *written}:
        _remove(out / name)
    for name in [*written, MANIFEST]:
        os.replace(stage / name, out / name)


def _previous(out: Path) -> list[str]:
    """What the export already in ``out`` wrote (nothing known: an older export, or none)."""
    try:
        files = json.loads((out / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [n for n in files if isinstance(n, str) and Path(n).name == n and n not in ("", ".", "..")]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
