"""Latency table files: ``latency_tables/<device>/<space>-<res>.json``, JSON only.

A table maps block keys to measured milliseconds, with the provenance needed to trust it (device, CPU,
backend and versions, threads, date, command line), the anchor network's latency at build time (later
runs re-time the anchor to divide out machine drift) and the calibration that turns a sum of blocks into
a whole-network prediction. Saving is atomic, so a build killed mid-write never leaves a broken file.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from dataclasses import field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Required

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationError,
    with_config,
)
from pydantic.dataclasses import dataclass
from typing_extensions import TypedDict  # pydantic validates only this one on Python 3.11

from nas.arch import ArchSpec, BlockSite
from nas.errors import ConfigError, first_problem
from nas.latency.keys import arch_keys, arch_weights, check_dtype
from nas.latency.predict import Calibration
from nas.outdir import write_shared
from nas.space import SearchSpace
from nas.space_config import SpaceConfig

SCHEMA_VERSION = 1
TABLES_DIR = Path("latency_tables")


def _space_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored space must pass the space schema on load, so ``LatencyTable.space`` cannot fail on it;
    ``{}`` is a table kept without its space (it prices archs but cannot sample them)."""
    try:
        if config:
            SpaceConfig.model_validate(config)
    except ValidationError as exc:
        where, problem = first_problem(exc)
        raise ValueError(f"{where}: {problem}" if where else problem) from None
    return config


Positive = Annotated[int, Field(ge=1)]


@with_config(ConfigDict(extra="allow"))  # a newer version's settings survive a load and save
class TableSettings(TypedDict):
    """What the blocks were measured for; a table answers only for these."""

    space: str
    # the space's YAML, so the table can rebuild its space; {} when not stored
    space_config: Annotated[dict[str, Any], AfterValidator(_space_config)]
    input_size: Positive
    in_chans: Positive
    num_classes: Positive
    dtype: Annotated[str, AfterValidator(check_dtype)]


@with_config(ConfigDict(extra="allow"))
class Entry(TypedDict):
    """One block key's timing (ms), over ``rounds`` rounds."""

    median_ms: StrictFloat
    spread_ms: StrictFloat
    rounds: StrictInt


@with_config(ConfigDict(extra="allow"))
class NetRecord(TypedDict, total=False):
    """A whole network timed at build time (the anchor, a calibration net): its arch, then its timing."""

    arch: Required[str]
    median_ms: float
    spread_ms: float
    rounds: int
    passes_ms: list[float]


@dataclass
class LatencyTable:
    """A device's block latencies for one space, input size and number type.

    A pydantic dataclass: the table file is this value plus ``schema_version``; loading validates it.
    """

    settings: TableSettings
    provenance: dict[str, Any]  # device, CPU, backend and its versions, threads, date, command
    entries: dict[str, Entry] = field(default_factory=dict)
    anchor: NetRecord | None = None
    calibration_nets: list[NetRecord] = field(default_factory=list)
    calibration: Calibration | None = None

    @property
    def input_size(self) -> int:
        return self.settings["input_size"]

    def space(self) -> SearchSpace:
        """The space the table was built for, from the copy of its YAML stored in the table (its schema
        was checked on load; a block the space cannot use is a ``ConfigError`` naming the field)."""
        if not self.settings["space_config"]:
            raise ConfigError("latency table has no space stored (settings.space_config is empty)")
        config = SpaceConfig.model_validate(self.settings["space_config"])
        return SearchSpace(config, f"latency table settings.space_config (space '{config.name}')")

    def sites(self, arch: ArchSpec) -> list[tuple[str, BlockSite]]:
        s = self.settings
        return arch_keys(arch, s["in_chans"], s["input_size"], s["num_classes"], s["dtype"])

    def keys(self, arch: ArchSpec) -> list[str]:
        return [k for k, _ in self.sites(arch)]

    def block_sum(self, arch: ArchSpec) -> float:
        """Sum of the arch's block medians (ms); a block the table lacks raises ``ConfigError``."""
        return self._sum(self.keys(arch))

    def weights_m(self, arch: ArchSpec) -> float:
        """The arch's parameters (millions), what the calibration's ``d`` costs."""
        return arch_weights(self.sites(arch), self.settings["num_classes"])

    def predict(self, arch: ArchSpec) -> float:
        """Predicted whole-network latency (ms): the calibrated block sum, or the raw sum if uncalibrated."""
        sites = self.sites(arch)
        total = self._sum([key for key, _ in sites])
        if self.calibration is None:
            return total
        weights = arch_weights(sites, self.settings["num_classes"]) if self.calibration.uses_weights else 0.0
        return self.calibration.apply(total, len(sites), weights)

    def _sum(self, keys: list[str]) -> float:
        total = 0.0
        for key in keys:
            entry = self.entries.get(key)
            if entry is None:
                raise ConfigError(f"latency table has no entry for block '{key}'")
            total += entry["median_ms"]
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "provenance": self.provenance,
            "settings": self.settings,
            "anchor": self.anchor,
            "calibration": self.calibration.to_json() if self.calibration else None,
            "calibration_nets": self.calibration_nets,
            "entries": dict(sorted(self.entries.items())),
        }

    @classmethod
    def from_json(cls, data: Any) -> LatencyTable:
        """Validate a table file's content; a problem is a one-line ``ConfigError`` naming the field."""
        if not isinstance(data, dict):
            raise ConfigError("not a latency table (expected a JSON object)")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"unknown latency table schema_version {version!r} (this version reads {SCHEMA_VERSION})"
            )
        try:
            return _ADAPTER.validate_python(data)
        except ValidationError as exc:
            raise ConfigError(_problem(exc)) from None

    def save(self, path: str | Path) -> None:
        """Write atomically: a temporary file in the same folder, then ``os.replace``. A path that cannot
        be written (a folder, read-only, a full disk) is a one-line ``DataError``."""
        write_shared(path, json.dumps(self.to_json(), indent=1) + "\n", "latency table")

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table; any problem is a one-line ``ConfigError`` naming the file."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read latency table: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not JSON (line {exc.lineno})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not JSON (not UTF-8 text)") from None
        try:
            return cls.from_json(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


_ADAPTER = TypeAdapter(LatencyTable)


def _problem(exc: ValidationError) -> str:
    """The first thing wrong, in one line: a missing top-level field before a problem inside one."""
    errors = exc.errors()
    first = next((e for e in errors if len(e["loc"]) == 1), errors[0])
    loc = first["loc"]
    if loc[0] == "entries" and len(loc) > 1:
        return f"entry '{loc[1]}' needs numbers {', '.join(Entry.__annotations__)}"
    if loc[0] == "settings" and len(loc) == 2 and first["type"] == "missing":
        missing = [e["loc"][1] for e in errors if e["loc"][0] == "settings" and e["type"] == "missing"]
        return f"settings lack {', '.join(map(str, missing))}"
    problem = "" if first["type"] == "missing" else f": {first['msg'].removeprefix('Value error, ')}"
    return f"malformed latency table: missing or bad field '{'.'.join(map(str, loc))}'{problem}"


def default_table_path(device: str, space: str, input_size: int) -> Path:
    return TABLES_DIR / safe_name(device) / f"{safe_name(space)}-{input_size}.json"


def shape_table_path(device: str, space: str, input_size: int, in_chans: int, num_classes: int) -> Path:
    """``default_table_path``, unless that file holds a table for another data shape: then
    ``<space>-<res>-<C>ch-<K>cls.json`` beside it."""
    path = default_table_path(device, space, input_size)
    try:
        settings = LatencyTable.load(path).settings if path.exists() else None
    except ConfigError:
        settings = None  # not a table: building there is refused with its own message
    if settings is None or (settings["in_chans"], settings["num_classes"]) == (in_chans, num_classes):
        return path
    return path.with_name(f"{path.stem}-{in_chans}ch-{num_classes}cls.json")


def safe_name(text: str) -> str:
    """A file-name-safe form of a device or space name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not name:
        raise ConfigError(f"'{text}' is not usable as a file name")
    return name


def cpu_model() -> str:
    """The CPU's name: x86 ``model name``, else an ARM board's ``Model`` or ``Hardware`` line."""
    try:
        fields = dict(
            (k.strip(), v.strip())
            for k, _, v in (line.partition(":") for line in Path("/proc/cpuinfo").read_text().splitlines())
        )
    except OSError:
        fields = {}
    for key in ("model name", "Model", "Hardware"):
        if fields.get(key):
            return fields[key]
    return platform.processor() or platform.machine()


def host_provenance(device: str) -> dict[str, Any]:
    """Where, when and how a table was measured (the backend adds its own versions)."""
    return {
        "device": device,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(sys.argv),
    }
