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
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nas.arch import ArchSpec
from nas.errors import ConfigError
from nas.latency.keys import arch_keys
from nas.latency.predict import Calibration
from nas.space import SearchSpace
from nas.space_config import SpaceConfig

SCHEMA_VERSION = 1
TABLES_DIR = Path("latency_tables")
ENTRY_FIELDS = ("median_ms", "spread_ms", "rounds")
SETTINGS_FIELDS = ("space", "space_config", "input_size", "in_chans", "num_classes", "dtype")


@dataclass
class LatencyTable:
    """A device's block latencies for one space, input size and number type."""

    settings: dict[str, Any]  # space, space_config, input_size, in_chans, num_classes, dtype
    provenance: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    anchor: dict[str, Any] | None = None  # arch, median_ms, spread_ms, rounds
    calibration_nets: list[dict[str, Any]] = field(default_factory=list)  # the same, per calibration net
    calibration: Calibration | None = None

    @property
    def input_size(self) -> int:
        return self.settings["input_size"]

    def space(self) -> SearchSpace:
        """The space the table was built for, from the copy of its YAML stored in the table."""
        config = SpaceConfig.model_validate(self.settings["space_config"])
        return SearchSpace(config, f"<table space '{config.name}'>")

    def keys(self, arch: ArchSpec) -> list[str]:
        s = self.settings
        return [k for k, _ in arch_keys(arch, s["in_chans"], s["input_size"], s["num_classes"], s["dtype"])]

    def block_sum(self, arch: ArchSpec) -> float:
        """Sum of the arch's block medians (ms); a block the table lacks raises ``ValueError``."""
        total = 0.0
        for key in self.keys(arch):
            entry = self.entries.get(key)
            if entry is None:
                raise ConfigError(f"latency table has no entry for block '{key}'")
            total += entry["median_ms"]
        return total

    def predict(self, arch: ArchSpec) -> float:
        """Predicted whole-network latency (ms): the calibrated block sum, or the raw sum if uncalibrated."""
        total = self.block_sum(arch)
        return self.calibration.apply(total, len(self.keys(arch))) if self.calibration else total

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
        if not isinstance(data, dict):
            raise ConfigError("not a latency table (expected a JSON object)")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"unknown latency table schema_version {version!r} (this version reads {SCHEMA_VERSION})"
            )
        try:
            settings, provenance, entries = data["settings"], data["provenance"], data["entries"]
            missing = [k for k in SETTINGS_FIELDS if k not in settings]
            if missing:
                raise ConfigError(f"settings lack {', '.join(missing)}")
            for key, entry in entries.items():
                if not all(isinstance(entry.get(f), int | float) for f in ENTRY_FIELDS):
                    raise ConfigError(f"entry '{key}' needs numbers {', '.join(ENTRY_FIELDS)}")
            calibration = Calibration.from_json(data["calibration"]) if data.get("calibration") else None
            nets = list(data.get("calibration_nets") or [])
            return cls(settings, provenance, entries, data.get("anchor"), nets, calibration)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"malformed latency table: missing or bad field {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write atomically: a temporary file in the same folder, then ``os.replace``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a table is meant to be shared
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_json(), f, indent=1)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table; any problem is a one-line ``ValueError`` naming the file."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read latency table: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not JSON (line {exc.lineno})") from None
        try:
            return cls.from_json(data)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def default_table_path(device: str, space: str, input_size: int) -> Path:
    return TABLES_DIR / safe_name(device) / f"{safe_name(space)}-{input_size}.json"


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
