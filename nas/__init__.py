"""Hardware-aware neural architecture search for edge medical AI.

The public API for notebooks and scripts; each name imports its module (and torch) only when used::

    import nas
    space = nas.load_space("mnasnet_small")
    model = nas.build_model(space.sample(random.Random(0)), in_chans=1, num_classes=2, input_size=28)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nas")
except PackageNotFoundError:  # a checkout on sys.path, not installed
    __version__ = "0+unknown"
