"""The papers' published numbers, stored as data with their sources.

One YAML file per paper (``<paper>.yaml`` beside this module)::

    paper: affectgpt
    title: "AffectGPT: ..."
    arxiv: "2501.16566"
    tables:
      - id: table2
        title: "MER-UniBench"
        source: "arXiv 2501.16566, Table 2 (transcribed from zeroQiaoba/AffectGPT@d961cab, AffectGPT/assert/main-result.png)"
        basis: paper           # paper | derived (+ basis_note: how) | recount | reconstruction
        decimals: 2            # the precision the paper prints (an 'exact' verdict means equal at it)
        tolerance: 0.5         # optional: the 'within tolerance' band, in the table's units ...
        tolerance_source: "the paper's ± std (Table 3)"   # ... and where it comes from (required with it)
        equivalence:           # optional: why a reduced-scale measurement measures the same quantity
          scale: reduced
          argument: "FLOPs are analytic: the training recipe does not change them"
        counted_in: "affectgpt/ov_mer"   # optional: the fact is counted in another chapter; shown here only
        unit: "%"
        cells:
          - {row: "AffectGPT (AVT)", column: "MER2023", value: 78.54}

A table the book has not transcribed yet says so with ``not_transcribed: "<why / where>"`` and no
cells, so the chapter can state it instead of inventing numbers. Cells may carry their own
``tolerance`` (with ``tolerance_source``), ``decimals``, ``unit``, ``source``, ``basis``, ``basis_note``,
``equivalence`` and ``note``. Loading refuses a table with cells and no ``basis``, a ``derived`` basis
without ``basis_note``, and a tolerance without its source (see :mod:`compendium.verdicts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import pandas as pd
import yaml

__all__ = ["PublishedTable", "PublishedPaper", "load", "papers"]

CELL_COLUMNS = ["paper", "table", "row", "column", "value", "unit", "decimals", "tolerance", "tolerance_source",
                "basis", "basis_note", "equivalence", "counted", "counted_in", "source", "note"]
BASES = ("paper", "derived", "recount", "reconstruction")


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
    basis: str | None = None
    basis_note: str = ""
    tolerance_source: str = ""
    equivalence: dict | None = None
    counted_in: str = ""

    @property
    def counted(self) -> bool:
        """False when the same published fact is counted in another chapter (``counted_in``)."""
        return not self.counted_in

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
                    "tolerance_source": cell.get("tolerance_source", "") if "tolerance" in cell else self.tolerance_source,
                    "basis": cell.get("basis", self.basis),
                    "basis_note": cell.get("basis_note", self.basis_note),
                    "equivalence": cell.get("equivalence", self.equivalence),
                    "counted": not cell.get("counted_in", self.counted_in),
                    "counted_in": cell.get("counted_in", self.counted_in),
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


def _check_table(paper: str, t: dict) -> None:
    """The contract's rules on published data: every cell has a basis; a derived one says how; every
    tolerance names its source; an equivalence names its scale and argument."""
    where = f"{paper}.yaml, table {t.get('id')!r}"
    for cell in [t] + list(t.get("cells") or []):
        basis = cell.get("basis", t.get("basis"))
        if cell is not t or t.get("cells"):
            if basis not in BASES:
                raise ValueError(f"{where}: basis must be one of {BASES} (table or cell), got {basis!r}")
            if basis == "derived" and not cell.get("basis_note", t.get("basis_note")):
                raise ValueError(f"{where}: a derived basis needs basis_note (how it is derived)")
        # A band set at a level (table or cell) names its source at that same level.
        if cell.get("tolerance") is not None and not cell.get("tolerance_source"):
            raise ValueError(f"{where}: tolerance {cell.get('tolerance')} without tolerance_source "
                             f"(cell {cell.get('row', '')!r} {cell.get('column', '')!r})")
        eq = cell.get("equivalence")
        if eq is not None and not (isinstance(eq, dict) and eq.get("scale") in ("reduced", "substitute") and eq.get("argument")):
            raise ValueError(f"{where}: equivalence needs scale (reduced | substitute) and argument")


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
        _check_table(paper, t)
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
                basis=t.get("basis"),
                basis_note=t.get("basis_note", ""),
                tolerance_source=t.get("tolerance_source", ""),
                equivalence=t.get("equivalence"),
                counted_in=t.get("counted_in", ""),
            )
        )
    return PublishedPaper(raw["paper"], raw.get("title", ""), str(raw.get("arxiv", "")), tables, raw.get("note", ""))
