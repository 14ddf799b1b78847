"""Optional dependencies, imported only by the feature that needs them (Optuna's ``try_import`` idea).

``pip install nas`` searches, builds ONNX Runtime tables, trains and exports ONNX/INT8; the extras
below add the rest. ``require(extra)`` imports an extra's module or raises one ``MissingExtraError``
naming the install command, so a user never meets a raw ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from nas.errors import MissingExtraError

EXTRAS: dict[str, tuple[str, str]] = {
    # extra: (the module it provides, what needs it)
    "tvm": ("tvm", "TVM latency backends and --format tvm"),
    "executorch": ("executorch", "--format executorch"),
    "prune": ("torch_pruning", "nas export --prune"),
    "postgres": ("psycopg", "PostgreSQL study storage"),
}


def install_command(extra: str) -> str:
    return f"pip install 'nas[{extra}]'"


def available(extra: str) -> bool:
    """Whether an extra's module can be imported (without importing it)."""
    return importlib.util.find_spec(EXTRAS[extra][0]) is not None


def require(extra: str, module: str | None = None) -> ModuleType:
    """Import ``module`` (default: the extra's own) or raise a one-line ``MissingExtraError``."""
    name, used_for = EXTRAS[extra]
    try:
        return importlib.import_module(module or name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != (module or name).split(".")[0]:
            raise  # a module the extra itself needs is missing: a broken install, not a missing extra
        raise MissingExtraError(
            f"{used_for} needs the '{extra}' extra, which is not installed: {install_command(extra)}"
        ) from None
