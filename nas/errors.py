"""Errors that say whose fault they are.

A ``NasError`` is a problem with what the user gave: a command line, a config file, a dataset, a run
directory, a missing optional package. The ``nas`` command prints it as one line and exits with code 2.
Any other exception is a bug in this package or a library it calls: one line, exit code 1, and
``nas --debug`` shows the traceback.

``NasError`` subclasses ``ValueError`` so that library callers who caught ``ValueError`` before the
hierarchy existed keep working; the CLI no longer treats a bare ``ValueError`` as the user's fault.
"""

from __future__ import annotations


class NasError(ValueError):
    """The user's input cannot be used; the message is one line that says what to change."""


class UsageError(NasError):
    """Bad command-line arguments, or options that do not go together."""


class ConfigError(NasError):
    """An experiment, search-space, latency-table or target file that cannot be used."""


class DataError(NasError):
    """A dataset, run directory or trained model that is missing, unreadable or does not fit."""


class MissingExtraError(NasError):
    """An optional dependency is not installed; the message names the ``pip install`` that adds it."""


def first_problem(exc: Exception) -> tuple[str, str]:
    """The first problem of a pydantic ``ValidationError``: its dotted location (``settings.dtype``, empty
    for the whole object) and its message without pydantic's "Value error, " prefix, for one-line errors
    that name the file and the field."""
    error = exc.errors()[0]  # type: ignore[attr-defined]
    return ".".join(str(part) for part in error["loc"]), error["msg"].removeprefix("Value error, ")
