"""``DIR/auto.json``: where a ``nas auto`` run stands, so a killed run resumes where it was. It holds the
request, the data profile, each finished stage's record and the wall time spent so far, saved at every
stage boundary and every few seconds in between (a kill loses at most that much of the budget's count).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from nas.errors import DataError, UsageError

STATE_FILE = "auto.json"
SCHEMA_VERSION = 1
HEARTBEAT_S = 5.0


class AutoState:
    """The record of one run directory, and its clock: ``spent()`` is the wall time of every invocation."""

    def __init__(self, out: Path, data: dict[str, Any]) -> None:
        self.out, self.data = out, data
        self._since = time.monotonic()
        self._base = float(data.get("elapsed_s", 0.0))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @classmethod
    def open(cls, out: Path, request: dict[str, Any], resume: bool) -> AutoState | None:
        """The state of a run to resume (None: a fresh run). Refuses a folder that holds something else,
        an earlier run without ``--resume``, and ``--resume`` with another request."""
        path = out / STATE_FILE
        if out.exists() and not out.is_dir():
            raise DataError(f"{out} is a file; choose another --out")
        if not path.exists():
            if out.exists() and any(out.iterdir()):
                raise UsageError(f"{out} is not empty and holds no nas auto run; choose another --out")
            return None
        if not resume:
            raise UsageError(
                f"{out} holds a nas auto run: add --resume to go on with it, or choose another --out"
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise DataError(f"{path} is not a readable nas auto record; choose another --out") from None
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            raise DataError(f"{path} is not a nas auto record of this version; choose another --out")
        changed = [k for k, v in request.items() if k != "budget_minutes" and data["request"].get(k) != v]
        if changed:
            raise UsageError(
                f"{out} holds a nas auto run with other {', '.join(changed)}; choose another --out"
            )
        return cls(out, data)

    @classmethod
    def create(cls, out: Path, request: dict[str, Any]) -> AutoState:
        return cls(
            out, {"schema_version": SCHEMA_VERSION, "request": request, "elapsed_s": 0.0, "stages": {}}
        )

    def spent(self) -> float:
        return self._base + time.monotonic() - self._since

    def left(self) -> float:
        return self.data["request"]["budget_minutes"] * 60 - self.spent()

    def done(self, stage: str) -> dict[str, Any] | None:
        return self.data["stages"].get(stage)

    def set(self, key: str, value: Any) -> None:
        """Record ``key`` and save (under the lock the heartbeat saves with)."""
        with self._lock:
            self.data[key] = value
        self.save()

    def finish(self, stage: str, record: dict[str, Any]) -> None:
        with self._lock:
            self.data["stages"] = {**self.data["stages"], stage: {**record, "at_s": round(self.spent(), 1)}}
        self.save()

    def save(self) -> None:
        """Atomically: a temporary file, then ``os.replace``."""
        with self._lock:
            self.data["elapsed_s"] = round(self.spent(), 1)
            text = json.dumps(self.data, indent=1)
            self.out.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{STATE_FILE}.", dir=self.out)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, self.out / STATE_FILE)

    def __enter__(self) -> AutoState:
        def beat() -> None:
            while not self._stop.wait(HEARTBEAT_S):
                self.save()

        self.save()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=beat, daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        self.save()
