"""Training: short candidate evaluation for the search, final training, knowledge distillation.

Names resolve lazily so that ``nas.evaluate.cli`` (imported when the ``nas`` parser is built) and
``nas.evaluate.config`` do not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "nas.evaluate.config",
    "TrainingDiverged": "nas.evaluate.config",
    "TrainedModel": "nas.evaluate.checkpoint",
    "load_trained": "nas.evaluate.checkpoint",
    "evaluate_candidate": "nas.evaluate.train",
    "train_final": "nas.evaluate.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nas.evaluate' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
