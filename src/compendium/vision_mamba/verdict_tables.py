"""Helpers for the Vision Mamba chapters' published-vs-measured tables."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from ..published import PublishedTable

__all__ = ["split_table"]


def split_table(table: PublishedTable, cells: Iterable[tuple[str, str]]) -> tuple[PublishedTable, PublishedTable]:
    """``table`` split into the cells ``(row, column)`` and the others, e.g. to compare a measured cell at
    its own scale (or with its own tolerance) while the rest of the table stays as it is."""
    keys = {(str(r), str(c)) for r, c in cells}
    inside = [c for c in table.cells if (str(c["row"]), str(c["column"])) in keys]
    outside = [c for c in table.cells if (str(c["row"]), str(c["column"])) not in keys]
    return replace(table, cells=inside), replace(table, cells=outside)
