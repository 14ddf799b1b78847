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

EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    # extra: (the modules it installs, the first one the feature imports; what needs it)
    "tvm": (
        ("tvm", "tvm_ffi", "cloudpickle", "tornado", "xgboost", "psutil"),
        "TVM (its latency backends and --format tvm)",
    ),
    "executorch": (("executorch",), "--format executorch"),
    "prune": (("torch_pruning",), "nas export --prune"),
    "postgres": (("psycopg",), "PostgreSQL study storage"),
}


def install_command(extra: str) -> str:
    return f"pip install 'nas[{extra}]' (from a checkout: pip install '.[{extra}]')"


def missing_extra(extra: str, used_for: str | None = None) -> MissingExtraError:
    """The one-line error for a feature whose extra is not installed."""
    what = used_for or EXTRAS[extra][1]
    return MissingExtraError(
        f"{what} needs the '{extra}' extra, which is not installed: {install_command(extra)}"
    )


def available(extra: str) -> bool:
    """Whether every package of an extra is installed (without importing any of them)."""
    return all(importlib.util.find_spec(module) is not None for module in EXTRAS[extra][0])


def require(extra: str, module: str | None = None, used_for: str | None = None) -> ModuleType:
    """Import ``module`` (default: the extra's main one) or raise a one-line ``MissingExtraError`` when it,
    or another package of the same extra it needs (TVM's RPC needs tornado), is not installed."""
    modules, _ = EXTRAS[extra]
    try:
        return importlib.import_module(module or modules[0])
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in modules:
            raise  # something outside the extra is missing: a broken install, not a missing extra
        raise missing_extra(extra, used_for) from None
