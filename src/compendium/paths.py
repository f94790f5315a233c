"""Where things are: the repository, its notebooks and book, the cache.

Notebooks run with their own folder as working directory (papermill, nbval, Jupyter), so they ask
here instead of writing relative paths.
"""

from __future__ import annotations

import os
from pathlib import Path

_MARKERS = ("_config.yml", "pyproject.toml")


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: ``COMPENDIUM_ROOT``, else the first folder upwards holding
    ``_config.yml`` and ``pyproject.toml`` (from ``start`` or the working directory, then from this
    file)."""
    env = os.environ.get("COMPENDIUM_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    for origin in (Path(start or os.getcwd()).resolve(), Path(__file__).resolve()):
        for folder in (origin, *origin.parents):
            if all((folder / m).exists() for m in _MARKERS):
                return folder
    raise FileNotFoundError(
        "cannot find the compendium repository (a folder with _config.yml and pyproject.toml); "
        "set COMPENDIUM_ROOT"
    )


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def book_dir() -> Path:
    return repo_root() / "book"


def cache_root() -> Path:
    """``COMPENDIUM_CACHE`` or ``~/.cache/compendium``: downloads, decoded data, trained weights."""
    base = os.environ.get("COMPENDIUM_CACHE")
    return Path(base).expanduser() if base else Path.home() / ".cache" / "compendium"


def artifacts_dir(*parts: str) -> Path:
    """A folder in the cache for computed artifacts (trained weights, decoded arrays), created."""
    path = cache_root().joinpath("artifacts", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
