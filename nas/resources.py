"""The data the package ships (search spaces, experiments, latency tables), found from any directory.

A relative path an experiment or a command names (``experiments/quickstart.yaml``,
``latency_tables/dev-epyc-2core/mnasnet_small-28.json``) is read from the working directory when it is
there, else from the shipped copy: the checkout's when the package runs from one, else the wheel's
``nas/_bundled/`` (``pyproject.toml`` puts it there). A bare name (``mnasnet``, ``quickstart``) is a
bundled file of that folder. Run outputs stay relative to the working directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
SHIPPED = ("search_spaces", "experiments", "latency_tables")


def bundled_dir(name: str) -> Path:
    """A shipped folder (``search_spaces``, ``experiments``, ``latency_tables``): beside the package in a
    checkout, inside it in a wheel."""
    checkout = CHECKOUT / name
    if (CHECKOUT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return Path(str(resources.files("nas") / "_bundled" / name))


def find_file(path: str | Path) -> Path:
    """``path`` if it exists, else the shipped file at that relative path; unchanged when neither does,
    so the reader reports the path as given."""
    path = Path(path)
    if path.exists() or path.is_absolute() or not path.parts or path.parts[0] not in SHIPPED:
        return path
    shipped = bundled_dir(path.parts[0]).joinpath(*path.parts[1:])
    return shipped if shipped.is_file() else path


def find_shipped(path_or_name: str | Path, folder: str) -> Path:
    """A data file by path (from the working directory, else the shipped copy), or a bundled one by name
    (``mnasnet`` in ``search_spaces``: search_spaces/mnasnet.yaml); unchanged when none matches, so the
    reader reports it as given."""
    path = find_file(path_or_name)
    if path.is_file() or path.suffix or len(path.parts) != 1:
        return path
    named = find_file(Path(folder) / f"{path}.yaml")
    return named if named.is_file() else path


def bundled_names(folder: str) -> list[str]:
    """The names :func:`find_shipped` accepts for ``folder``, for error messages and listings."""
    return sorted(p.stem for p in bundled_dir(folder).glob("*.yaml"))


def find_experiment(path_or_name: str | Path) -> Path:
    """An experiment file by path, or a bundled one by name (``quickstart``: experiments/quickstart.yaml)."""
    return find_shipped(path_or_name, "experiments")


def bundled_experiments() -> list[str]:
    return bundled_names("experiments")
