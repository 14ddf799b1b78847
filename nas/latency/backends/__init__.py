"""Measurement backends, looked up by name; each imports its heavy dependency only when made."""

from __future__ import annotations

from nas.errors import UsageError
from nas.latency.backends.base import Backend

BACKENDS = ("ort", "tvm", "tvm-rpc")


def make_backend(name: str, threads: int = 1, **options: object) -> Backend:
    """The backend called ``name``; ``options`` are backend specific.

    tvm: ``target``; tvm-rpc: ``rpc_host``, ``rpc_port``, ``rpc_key``, ``target``, ``cc``; None means unset.
    """
    if name == "ort":
        from nas.latency.backends.ort import OrtBackend

        return OrtBackend(threads=threads)
    if name == "tvm":
        from nas.latency.backends.tvm import TvmBackend

        return TvmBackend(threads=threads, target=options.get("target"))
    if name == "tvm-rpc":
        from nas.latency.backends.rpc import TvmRpcBackend

        rpc = {
            k: options[k]
            for k in ("rpc_host", "rpc_port", "rpc_key", "target", "cc")
            if options.get(k) is not None
        }
        return TvmRpcBackend(threads=threads, **rpc)  # type: ignore[arg-type]
    raise UsageError(f"unknown latency backend '{name}' (choose from {', '.join(BACKENDS)})")
