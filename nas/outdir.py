"""Output folders checked before the long work that fills them: a command given a bad ``--out`` (a file,
a path under a file, a read-only or full disk) fails in one line at its start, not after minutes of
training or timing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from nas.errors import DataError


def writable_dir(path: str | Path, what: str) -> Path:
    """``path`` as a folder that exists and takes new files (created with its parents if missing);
    otherwise a one-line ``DataError`` naming ``what`` goes there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"cannot write {what} to {path}: it is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".nas-write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataError(f"cannot write {what} to {path}: {exc.strerror or exc}") from None
    return path


def write_shared(path: str | Path, text: str, what: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, then ``os.replace``),
    readable by all (mkstemp makes it owner-only; tables and predictors are meant to be shared). A path
    that cannot be written (a folder, read-only, a full disk) is a one-line ``DataError`` naming ``what``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.chmod(tmp, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DataError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
