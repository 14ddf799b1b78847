"""Latency predictor kinds, looked up by the ``kind`` of a predictor file, and the one loader of a latency
file: a table (``nas.latency.table``) or a predictor (``nas.latency.predictors.base``), told apart by
the predictor's ``kind``. A new kind is one module with a ``Predictor`` subclass plus one line in
``PREDICTORS`` (or, from another package, an entry point ``predictor.<kind>`` in ``nas.plugins``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from nas.errors import ConfigError
from nas.registry import Registry

if TYPE_CHECKING:
    from nas.latency.predictors.base import Predictor
    from nas.latency.table import LatencyTable

PREDICTORS: Registry[type[Predictor]] = Registry(
    "predictor",
    {
        "fitted": "nas.latency.predictors.fitted:FittedPredictor",
        "adapted": "nas.latency.predictors.adapted:AdaptedPredictor",
    },
    label="latency predictor kind",
)


def load_latency(path: str | Path) -> LatencyTable | Predictor:
    """The table or predictor at ``path`` (a shipped one by its relative path too); any problem is a
    one-line ``ConfigError`` naming the file."""
    from nas.latency.predictors.base import from_json
    from nas.latency.table import LatencyTable
    from nas.resources import find_file

    path = find_file(path)
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return LatencyTable.load(path)  # its own messages for an unreadable file
    if not (isinstance(data, dict) and "kind" in data):
        return LatencyTable.load(path)
    try:
        return from_json(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
