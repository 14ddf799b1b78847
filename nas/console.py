"""The rich console every command prints to."""

from __future__ import annotations

import sys

from rich.console import Console


def console() -> Console:
    """Piped output gets a wide fixed width, so tables keep one line per row."""
    return Console() if sys.stdout.isatty() else Console(width=160)
