"""The JSON records a search run keeps beside its study (``summary.json``, ``final.json``): each written
atomically, read back validated with one-line errors, and refused when a newer nas wrote it. The modules
that own a record (``nas.search.summary``, ``nas.search.final``) use these; no other module touches the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError

from nas.errors import DataError, first_problem

Record = TypeVar("Record", bound=BaseModel)


def version_type(current: int) -> Any:
    """The type of a record's ``schema_version`` field: a file from a newer nas fails validation."""

    def not_newer(version: int) -> int:
        if version > current:
            raise ValueError(f"schema_version {version} is newer than this nas reads ({current})")
        return version

    return Annotated[int, AfterValidator(not_newer)]


def write_record(path: Path, text: str) -> Path:
    """Write atomically, so a reader (``nas train``, another worker) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def read_record(model: type[Record], path: Path, what: str) -> Record:
    """``path`` validated as ``model``; a broken file is a one-line ``DataError``: "is not {what}"."""
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        where, problem = first_problem(exc)
        raise DataError(f"{path} is not {what}: {where + ': ' if where else ''}{problem}") from None
