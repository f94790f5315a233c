"""The papers' published numbers, stored as data with their sources.

One YAML file per paper (``<paper>.yaml`` beside this module)::

    paper: affectgpt
    title: "AffectGPT: ..."
    arxiv: "2501.16566"
    tables:
      - id: table2
        title: "MER-UniBench"
        source: "arXiv 2501.16566, Table 2 (transcribed from zeroQiaoba/AffectGPT@d961cab, AffectGPT/assert/main-result.png)"
        decimals: 2            # the precision the paper prints (an 'exact' verdict means equal at it)
        tolerance: 0.5         # optional: the 'within tolerance' band, in the table's units
        unit: "%"
        cells:
          - {row: "AffectGPT (AVT)", column: "MER2023", value: 78.54}

A table the book has not transcribed yet says so with ``not_transcribed: "<why / where>"`` and no
cells, so the chapter can state it instead of inventing numbers. Cells may carry their own
``tolerance``, ``decimals``, ``unit``, ``source`` and ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import pandas as pd
import yaml

__all__ = ["PublishedTable", "PublishedPaper", "load", "papers"]

CELL_COLUMNS = ["paper", "table", "row", "column", "value", "unit", "decimals", "tolerance", "source", "note"]


@dataclass
class PublishedTable:
    paper: str
    id: str
    title: str
    source: str
    cells: list[dict] = field(default_factory=list)
    decimals: int | None = None
    tolerance: float | None = None
    unit: str = ""
    not_transcribed: str | None = None
    note: str = ""

    def frame(self) -> pd.DataFrame:
        """One row per published cell, with its source and the precision/tolerance that apply."""
        rows = []
        for cell in self.cells:
            rows.append(
                {
                    "paper": self.paper,
                    "table": self.id,
                    "row": str(cell["row"]),
                    "column": str(cell["column"]),
                    "value": float(cell["value"]),
                    "unit": cell.get("unit", self.unit),
                    "decimals": cell.get("decimals", self.decimals),
                    "tolerance": cell.get("tolerance", self.tolerance),
                    "source": cell.get("source", self.source),
                    "note": cell.get("note", ""),
                }
            )
        return pd.DataFrame(rows, columns=CELL_COLUMNS)

    def wide(self) -> pd.DataFrame:
        """The table as the paper prints it: rows × columns."""
        frame = self.frame()
        if frame.empty:
            return frame
        order_rows = list(dict.fromkeys(frame["row"]))
        order_cols = list(dict.fromkeys(frame["column"]))
        return frame.pivot(index="row", columns="column", values="value").loc[order_rows, order_cols]


@dataclass
class PublishedPaper:
    paper: str
    title: str
    arxiv: str
    tables: list[PublishedTable]
    note: str = ""

    def table(self, table_id: str) -> PublishedTable:
        for t in self.tables:
            if t.id == table_id:
                return t
        raise KeyError(f"{self.paper} has no published table {table_id!r}; it has {[t.id for t in self.tables]}")

    def frame(self) -> pd.DataFrame:
        frames = [t.frame() for t in self.tables if t.cells]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CELL_COLUMNS)


def papers() -> list[str]:
    """The papers that have a published-numbers file."""
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=None)
def load(paper: str) -> PublishedPaper:
    """Load ``<paper>.yaml``; every table must name its source."""
    path = resources.files(__package__).joinpath(f"{paper}.yaml")
    if not path.is_file():
        raise KeyError(f"no published numbers for {paper!r}; known papers: {papers()}")
    raw = yaml.safe_load(path.read_text())
    tables = []
    for t in raw.get("tables", []):
        if not t.get("source"):
            raise ValueError(f"{paper}.yaml: table {t.get('id')!r} has no source")
        tables.append(
            PublishedTable(
                paper=raw["paper"],
                id=t["id"],
                title=t.get("title", t["id"]),
                source=t["source"],
                cells=t.get("cells", []) or [],
                decimals=t.get("decimals"),
                tolerance=t.get("tolerance"),
                unit=t.get("unit", ""),
                not_transcribed=t.get("not_transcribed"),
                note=t.get("note", ""),
            )
        )
    return PublishedPaper(raw["paper"], raw.get("title", ""), str(raw.get("arxiv", "")), tables, raw.get("note", ""))
