"""Measurement backends, looked up by name; each imports its heavy dependency only when made.

A backend is one module with a class that takes ``threads`` and the keyword options it lists in its
``options`` attribute (see ``nas.latency.backends.base.Backend``), plus one line in ``BACKENDS`` (or,
from another package, an entry point ``backend.<name>`` in the group ``nas.plugins``).
"""

from __future__ import annotations

from nas.errors import ConfigError, UsageError
from nas.latency.backends.base import Backend
from nas.registry import Registry

BACKENDS: Registry[type[Backend]] = Registry(
    "backend",
    {
        "ort": "nas.latency.backends.ort:OrtBackend",
        "tvm": "nas.latency.backends.tvm:TvmBackend",
        "tvm-rpc": "nas.latency.backends.rpc:TvmRpcBackend",
    },
    label="latency backend",
)


def make_backend(name: str, threads: int = 1, **options: object) -> Backend:
    """The backend called ``name``; ``options`` are backend specific, None means unset.

    tvm: ``target``; tvm-rpc: ``rpc_host``, ``rpc_port``, ``rpc_key``, ``target``, ``cc``.
    """
    backend = BACKENDS.get(name)
    given = {key: value for key, value in options.items() if value is not None}
    accepted = tuple(getattr(backend, "options", ()))
    extra = [key for key in given if key not in accepted]
    if extra:
        takes = ", ".join(accepted) or "none"
        raise UsageError(
            f"option(s) {', '.join(extra)} do not apply to latency backend '{name}' (its options: {takes})"
        )
    made = backend(threads=threads, **given)
    if getattr(made, "name", None) != name or getattr(made, "threads", None) != threads:
        raise ConfigError(
            f"latency backend '{name}' must have name = '{name}' and keep its threads in .threads "
            "(tables record both)"
        )
    return made
