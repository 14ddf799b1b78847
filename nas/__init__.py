"""Hardware-aware neural architecture search for edge medical AI.

The public API for notebooks and scripts (``nas.api``); each name imports its module (and torch) only
when used::

    import nas
    space = nas.load_space("mnasnet_small")
    model = nas.build_model(space.sample(random.Random(0)), in_chans=1, num_classes=2, input_size=28)
    summary = nas.search("quickstart", trials=5, out="runs/q")
    card = nas.export(summary.best.arch, out="export", int8=True)
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("nas")
except PackageNotFoundError:  # a checkout on sys.path, not installed
    __version__ = "0+unknown"

_API = {  # name: "module:attr", or a callable package (see nas.api)
    "load_space": "nas.api:load_space",
    "build_model": "nas.builder:build_model",
    "search": "nas.search",
    "export": "nas.export",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'nas' has no attribute '{name}'")
    module, _, attr = _API[name].partition(":")
    found = importlib.import_module(module)
    return getattr(found, attr) if attr else found


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
