"""The measurement interface every backend (ONNX Runtime, TVM, TVM over RPC) implements.

A backend gets a batch of named modules and times them *interleaved*: warm-up, then rounds in which
every item runs a few iterations, the order shuffled per round, so that drift of a shared machine hits
all items alike. It reports per item the median over rounds and a robust spread.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Any, Protocol

from torch import nn


@dataclass(frozen=True)
class Item:
    """One thing to time: a module in eval mode and the shape of its single input."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class Timing:
    """Median milliseconds per run over ``rounds`` rounds, and the interquartile range in ms."""

    median_ms: float
    spread_ms: float
    rounds: int

    def to_json(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "spread_ms": self.spread_ms, "rounds": self.rounds}


@dataclass(frozen=True)
class Settings:
    """How long to measure: warm-up per item, rounds, and the length of one timed sample.

    A sample runs an item back to back for ``sample_ms`` (at least once), as a deployed network runs
    frame after frame, so its weights are as warm in cache as in use. Timed one run per sample
    (``sample_ms`` 0, the default until December 2026), an item runs right after other items and pays
    for the cache they evicted: how much depends on its neighbours, so whole networks timed that way
    disagree with block sums (mnasnet_small at 28x28 on ONNX Runtime, 1 thread, a 2-core EPYC: 84 % of
    200 held-out nets within ±10 % of the calibrated table, Kendall tau 0.934) and with each other (the
    anchor's median moved 0.35-0.43 ms between sets of 20 nets). With blocks and nets timed warm, the
    table puts 99 % within ±10 % (tau 0.975) and the anchor stays within 0.273-0.280 ms. Tables and
    measured nets record these settings, and whatever re-times them (``validate``, finalists, reference
    nets) reads them back with ``recorded``, so a table is always compared in its own regime.
    """

    rounds: int = 100
    warmup_ms: float = 10.0
    sample_ms: float = 2.0
    seed: int = 0

    @classmethod
    def recorded(cls, measure: dict[str, Any] | None) -> Settings:
        """The settings a table or measured-nets file records (its provenance's ``measure``); a
        file that records none (an imported table) gets today's defaults."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (measure or {}).items() if k in known})


class Backend(Protocol):
    """What the table builder and the validator need from a backend, made as ``cls(threads, **options)``.

    ``name`` is the name it is registered under and ``threads`` the constructor's: the table records
    both, whatever ``provenance()`` says. Optional: ``dtypes`` (the number types it measures, default
    fp32) and a static ``options_from_provenance(provenance) -> dict``, the constructor options that
    rebuild it from a table's provenance for validation (default: none).
    """

    name: str
    version: str
    threads: int
    options: tuple[str, ...]  # the keyword options the constructor takes besides ``threads``

    def measure(self, items: list[Item], settings: Settings) -> dict[str, Timing]:
        """Time ``items`` interleaved; a result per item name."""
        ...

    def provenance(self) -> dict[str, Any]:
        """Backend name, version, threads and library versions, stored in the table."""
        ...


def backend_dtypes(backend: Backend) -> tuple[str, ...]:
    """The number types (a key's dtype) a backend measures: its optional ``dtypes``, else fp32 only."""
    return tuple(getattr(backend, "dtypes", ("fp32",)))


def summarize(samples: list[float]) -> Timing:
    """Median and interquartile range of per-run times (ms) from the rounds."""
    if len(samples) < 2:
        value = samples[0] if samples else float("nan")
        return Timing(value, 0.0, len(samples))
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return Timing(statistics.median(samples), q3 - q1, len(samples))
