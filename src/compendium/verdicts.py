"""Published vs reproduced: one verdict per cell, a styled table, a JSON results file, the matrix.

Verdicts, from best to worst:

- ``exact``: the reproduced value, rounded to the precision the paper prints, equals it;
- ``within tolerance``: it differs by no more than the stated tolerance (the reason for the
  tolerance is part of the table's note);
- ``differs``: outside the tolerance — the chapter must explain it;
- ``not run here``: no value was measured, with the reason (missing labels, ImageNet, 7B model...).

Claims (a sentence of the paper tested as a whole) get ``supported``, ``not supported`` or
``inconclusive`` through :func:`claim`.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from . import published as _published

__all__ = [
    "VERDICTS",
    "NotRun",
    "not_run",
    "compare",
    "claim",
    "show",
    "save",
    "results_dir",
    "collect",
    "summary",
    "plot_matrix",
]

EXACT, WITHIN, DIFFERS, NOT_RUN = "exact", "within tolerance", "differs", "not run here"
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
VERDICTS = [EXACT, WITHIN, DIFFERS, NOT_RUN, SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE]
COLOURS = {
    EXACT: "#1a9850",
    WITHIN: "#91cf60",
    DIFFERS: "#d73027",
    NOT_RUN: "#bdbdbd",
    SUPPORTED: "#1a9850",
    NOT_SUPPORTED: "#d73027",
    INCONCLUSIVE: "#fee08b",
}
RESULT_COLUMNS = [
    "paper", "table", "row", "column", "published", "reproduced", "difference", "tolerance",
    "verdict", "reason", "unit", "source",
]


@dataclass(frozen=True)
class NotRun:
    """A cell that was not measured here, and why."""

    reason: str


def not_run(reason: str) -> NotRun:
    return NotRun(reason)


def _decimals_of(value: float) -> int:
    text = repr(float(value))
    return 0 if "e" in text else max(0, len(text.split(".")[1].rstrip("0")))


def _as_lookup(reproduced) -> dict[tuple[str, str], object]:
    if isinstance(reproduced, Mapping):
        return {(str(r), str(c)): v for (r, c), v in reproduced.items()}
    frame = pd.DataFrame(reproduced)
    lookup: dict[tuple[str, str], object] = {}
    for rec in frame.to_dict("records"):
        value = rec.get("value")
        reason = rec.get("reason") or rec.get("note")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            value = NotRun(str(reason) if reason else "not measured")
        lookup[(str(rec["row"]), str(rec["column"]))] = value
    return lookup


def verdict_for(published: float, reproduced: float, decimals: int | None, tolerance: float | None) -> str:
    """The verdict of one measured cell (see the module docstring)."""
    d = _decimals_of(published) if decimals is None else int(decimals)
    # Half a unit in the last printed digit, with room for float noise.
    if abs(round(reproduced, d) - published) <= 0.5 * 10 ** (-d) * 1e-6 + 1e-12:
        return EXACT
    if tolerance is not None and abs(reproduced - published) <= tolerance + 1e-12:
        return WITHIN
    return DIFFERS


def compare(
    published: "pd.DataFrame | _published.PublishedTable",
    reproduced,
    *,
    tolerance: float | None = None,
    default_reason: str = "not measured here",
) -> pd.DataFrame:
    """Put reproduced values beside the published ones, with a verdict per cell.

    Args:
        published: a :class:`~compendium.published.PublishedTable` or its ``frame()``.
        reproduced: a DataFrame with columns ``row``, ``column``, ``value`` (NaN value + ``reason``
            for a cell not run), or a mapping ``{(row, column): value or NotRun}``.
        tolerance: overrides the table's/cells' tolerance when given.
        default_reason: the reason shown for published cells with no reproduced entry.

    Returns:
        One row per published cell with the columns of ``RESULT_COLUMNS``.
    """
    frame = published.frame() if isinstance(published, _published.PublishedTable) else published
    lookup = _as_lookup(reproduced)
    rows = []
    for cell in frame.to_dict("records"):
        got = lookup.get((cell["row"], cell["column"]), NotRun(default_reason))
        tol = tolerance if tolerance is not None else cell.get("tolerance")
        tol = None if tol is None or (isinstance(tol, float) and math.isnan(tol)) else float(tol)
        dec = cell.get("decimals")
        dec = None if dec is None or (isinstance(dec, float) and math.isnan(dec)) else int(dec)
        base = {
            "paper": cell["paper"], "table": cell["table"], "row": cell["row"], "column": cell["column"],
            "published": float(cell["value"]), "tolerance": tol, "unit": cell.get("unit", ""),
            "source": cell.get("source", ""),
        }
        if isinstance(got, NotRun):
            rows.append({**base, "reproduced": None, "difference": None, "verdict": NOT_RUN, "reason": got.reason})
        else:
            value = float(got)
            rows.append({
                **base, "reproduced": value, "difference": value - float(cell["value"]),
                "verdict": verdict_for(float(cell["value"]), value, dec, tol), "reason": "",
            })
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def claim(paper: str, text: str, holds: bool | None, evidence: str, *, source: str = "", table: str = "claims") -> pd.DataFrame:
    """One claim of a paper tested here: ``holds`` True/False/None (inconclusive) with the evidence."""
    verdict = SUPPORTED if holds else (INCONCLUSIVE if holds is None else NOT_SUPPORTED)
    return pd.DataFrame([{
        "paper": paper, "table": table, "row": text, "column": "claim", "published": None,
        "reproduced": None, "difference": None, "tolerance": None, "verdict": verdict,
        "reason": evidence, "unit": "", "source": source,
    }], columns=RESULT_COLUMNS)


def show(results: pd.DataFrame, *, digits: int = 2):
    """The comparison as a styled table (green exact, light green within tolerance, red differs,
    grey not run), for the notebook."""
    view = results[["table", "row", "column", "published", "reproduced", "difference", "verdict", "reason"]].copy()

    def colour(v):
        return f"background-color: {COLOURS.get(v, 'white')}; color: {'white' if v in (EXACT, DIFFERS, SUPPORTED, NOT_SUPPORTED) else 'black'}"

    fmt = {c: (lambda x, d=digits: "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}")
           for c in ("published", "reproduced", "difference")}
    return view.style.format(fmt).map(colour, subset=["verdict"]).hide(axis="index")


def results_dir() -> Path:
    """Where results files go: ``COMPENDIUM_RESULTS_DIR`` (the runner sets it to the executed
    notebook's folder in ``book/``), else the cache, so interactive and test runs never touch the tree."""
    env = os.environ.get("COMPENDIUM_RESULTS_DIR")
    if env:
        path = Path(env)
    else:
        from .paths import cache_root

        path = cache_root() / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(results: pd.DataFrame | Iterable[pd.DataFrame], paper: str, notebook: str, *, profile: str | None = None) -> Path:
    """Write ``<notebook>.results.json``: one object per cell (paper, table, row, column, published,
    reproduced, verdict, reason, ...). Returns the path."""
    if not isinstance(results, pd.DataFrame):
        results = pd.concat(list(results), ignore_index=True)
    records = json.loads(results[RESULT_COLUMNS].to_json(orient="records"))
    payload = {
        "paper": paper,
        "notebook": notebook,
        "profile": profile or os.environ.get("COMPENDIUM_PROFILE", "interactive"),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": {v: int(n) for v, n in results["verdict"].value_counts().items()},
        "cells": records,
    }
    path = results_dir() / f"{notebook}.results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def collect(book_dir: str | os.PathLike) -> pd.DataFrame:
    """Every cell of every ``*.results.json`` under the book folder, with the notebook and profile."""
    frames = []
    for path in sorted(Path(book_dir).rglob("*.results.json")):
        payload = json.loads(path.read_text())
        frame = pd.DataFrame(payload["cells"], columns=RESULT_COLUMNS)
        frame["notebook"] = payload.get("notebook", path.stem)
        frame["profile"] = payload.get("profile", "")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=RESULT_COLUMNS + ["notebook", "profile"])
    return pd.concat(frames, ignore_index=True)


def summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Verdict counts per paper and table."""
    if cells.empty:
        return pd.DataFrame(columns=["paper", "table", *VERDICTS, "total"])
    counts = cells.groupby(["paper", "table", "verdict"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[v for v in VERDICTS if v in counts.columns])
    counts["total"] = counts.sum(axis=1)
    return counts.reset_index()


def plot_matrix(cells: pd.DataFrame, *, papers: list[str] | None = None):
    """The verdict matrix: one panel per paper and table, one coloured square per published cell
    (rows and columns as the table prints them). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    papers = papers or list(dict.fromkeys(cells["paper"]))
    panels = [(p, t) for p in papers for t in dict.fromkeys(cells.loc[cells["paper"] == p, "table"])]
    heights = [max(1, cells[(cells["paper"] == p) & (cells["table"] == t)]["row"].nunique()) for p, t in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.0 + 0.3 * sum(heights) + 1.1 * len(panels)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (p, t) in zip(axes[:, 0], panels):
        sub = cells[(cells["paper"] == p) & (cells["table"] == t)]
        rows = list(dict.fromkeys(sub["row"]))
        cols = list(dict.fromkeys(sub["column"]))
        for rec in sub.itertuples():
            ax.add_patch(plt.Rectangle((cols.index(rec.column), rows.index(rec.row)), 0.94, 0.9,
                                       color=COLOURS.get(rec.verdict, "white")))
        ax.set_xlim(0, max(1, len(cols)))
        ax.set_ylim(max(1, len(rows)), 0)
        ax.set_xticks([i + 0.47 for i in range(len(cols))], [str(c)[:24] for c in cols], rotation=35, ha="right",
                      rotation_mode="anchor", fontsize=8)
        ax.set_yticks([i + 0.45 for i in range(len(rows))], [str(r)[:60] for r in rows], fontsize=8)
        ax.set_title(f"{p} · {t}", loc="left", fontsize=10, fontweight="bold")
        for side in ("top", "right", "left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.tick_params(length=0)
    present = [v for v in VERDICTS if v in set(cells["verdict"])]
    fig.legend(handles=[Patch(color=COLOURS[v], label=v) for v in present], loc="upper right", ncol=len(present),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return fig
