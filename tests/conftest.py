"""Shared fixtures. Tests read real data from ``COMPENDIUM_DATA`` (CI: ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"

# Point the data layer at the shared copies unless the caller chose a root; never download in tests.
os.environ.setdefault("COMPENDIUM_DATA", str(DEFAULT_DATA))
os.environ.setdefault("COMPENDIUM_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The data root (``COMPENDIUM_DATA``); tests that need it skip loudly only if it is absent."""
    root = Path(os.environ["COMPENDIUM_DATA"])
    if not root.is_dir():
        pytest.fail(f"data root {root} missing: set COMPENDIUM_DATA to the shared data folder")
    return root


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
