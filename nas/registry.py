"""Name -> "module:attr" registries for every extension point, imported lazily.

Each extension point (blocks, search strategies, evaluation protocols, latency backends and predictors,
datasets, export formats) owns one ``Registry`` whose built-in entries are one line each. Nothing is
imported until a name is looked up, so ``nas --help`` lists every choice without importing TVM. The
names feed CLI choices, experiment validation and help texts, so a name is written once.

Packages outside this one add entries through the entry-point group ``nas.plugins``; an entry point's
name is ``<kind>.<name>`` and its value the usual ``module:attr``::

    [project.entry-points."nas.plugins"]
    "strategy.annealing" = "my_package.annealing:STRATEGY"
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from nas.errors import ConfigError, UsageError

PLUGIN_GROUP = "nas.plugins"
REGISTRIES = {  # the <kind> of an entry point: the registry it adds to
    "block": "nas.blocks:BLOCKS",
    "strategy": "nas.search.strategies:STRATEGIES",
    "protocol": "nas.evaluate.protocols:PROTOCOLS",
    "backend": "nas.latency.backends:BACKENDS",
    "predictor": "nas.latency.predictors:PREDICTORS",
    "dataset": "nas.data:DATASETS",
    "format": "nas.export:FORMATS",
}

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one kind of extension, each mapped to a ``"module:attr"`` string or the object itself."""

    def __init__(
        self, kind: str, builtins: dict[str, str], label: str | None = None, casefold: bool = False
    ) -> None:
        self.kind = kind  # the <kind> of "<kind>.<name>" entry points, a key of REGISTRIES
        self.label = label or kind  # as messages name it: "unknown latency backend 'x'"
        self.casefold = casefold  # names match in any case (datasets: PneumoniaMNIST = pneumoniamnist)
        self._targets: dict[str, str | T] = {self._key(name): target for name, target in builtins.items()}
        self._loaded: dict[str, T] = {}
        self._plugins_read = False

    def register(self, name: str, target: str | T) -> None:
        """Add (or replace) ``name``: ``"module:attr"`` is imported when first looked up."""
        name = self._key(name)
        self._targets[name] = target
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that registered an example use this to clean up)."""
        name = self._key(name)
        self._targets.pop(name, None)
        self._loaded.pop(name, None)

    def names(self) -> tuple[str, ...]:
        self._read_plugins()
        return tuple(self._targets)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name is a one-line ``UsageError`` listing the known.

        An entry with a ``name`` attribute (blocks, backends, formats) must carry the name it is
        registered under: that name is what arch strings, tables and cards record and look up again."""
        name = self._key(name)
        if name in self._loaded:  # the hot path: block types are looked up per block of every arch
            return self._loaded[name]
        if name not in self.names():
            raise UsageError(f"unknown {self.label} '{name}' (known: {', '.join(self.names())})")
        target = self._targets[name]
        found = _resolve(target, f"{self.label} '{name}'") if isinstance(target, str) else target
        own = getattr(found, "name", name)
        if isinstance(own, str) and self._key(own) != name:
            raise ConfigError(f"{self.label} '{name}' calls itself '{own}': register it under its own name")
        self._loaded[name] = found
        return found

    def refresh(self) -> None:
        """Read the ``nas.plugins`` entry points again (a plugin installed into a running process)."""
        self._plugins_read = False

    def describe(self) -> dict[str, str]:
        """Every name with where it comes from (``module:attr``), for ``nas plugins``."""
        self._read_plugins()
        return {name: t if isinstance(t, str) else _where(t) for name, t in self._targets.items()}

    def _key(self, name: str) -> str:
        return name.lower() if self.casefold else name

    def _read_plugins(self) -> None:
        if self._plugins_read:
            return
        self._plugins_read = True
        for point in entry_points(group=PLUGIN_GROUP):
            kind, _, name = point.name.partition(".")
            if kind == self.kind and name:
                self._targets.setdefault(self._key(name), point.value)  # a plugin never shadows a built-in


def registry(kind: str) -> Registry:
    """The registry of an entry-point kind (``strategy``, ``format``, ...)."""
    if kind not in REGISTRIES:
        raise UsageError(f"unknown extension kind '{kind}' (known: {', '.join(REGISTRIES)})")
    found = _resolve(REGISTRIES[kind], f"registry '{kind}'")
    assert isinstance(found, Registry) and found.kind == kind, REGISTRIES[kind]
    return found


def stray_plugins() -> list[str]:
    """Entry points of the group whose name does not start with a known kind: never loaded."""
    return [
        f"{point.name} = {point.value}"
        for point in entry_points(group=PLUGIN_GROUP)
        if point.name.partition(".")[0] not in REGISTRIES or not point.name.partition(".")[2]
    ]


def _where(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _resolve(target: str, what: str) -> object:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and f"{module_name}.".startswith(f"{exc.name}."):
            raise ConfigError(
                f"{what}: module '{module_name}' not found (is its package installed?)"
            ) from None
        raise
    obj: object = module
    for part in attr.split(".") if attr else ():
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{what}: '{module_name}' has no attribute '{attr}'") from None
    return obj
