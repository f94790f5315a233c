"""What every chapter notebook repeats: the first-screen summary box and gluing it to the top of the page.

A chapter computes its verdicts at the end but shows them first: the last cell builds the box with
:func:`summary_box` and glues it (:func:`glue`); the chapter's second markdown cell holds

    ```{glue:} summary_box
    ```

so the rendered page opens with the answer (myst-nb places a glued output anywhere in its notebook).
Run in plain Jupyter, the box also shows where it is built.
"""

from __future__ import annotations

import html
import os
import subprocess
from typing import Sequence

import pandas as pd

from . import verdicts as V

__all__ = ["summary_box", "glue", "current_commit"]


def current_commit() -> str:
    """The commit the run started from (the runner sets ``COMPENDIUM_COMMIT``; else ``git``; else '')."""
    env = os.environ.get("COMPENDIUM_COMMIT")
    if env:
        return env[:10]
    try:
        out = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _counts_line(cells: pd.DataFrame) -> str:
    live = cells[cells["counted"].astype(bool)]
    nums = live[(live["kind"] != "claim") & live["basis"].isin(V.REPRODUCTION_BASES)]
    parts = [f"{int((nums['verdict'] == v).sum())} {v}" for v in V.NUMBER_VERDICTS if (nums["verdict"] == v).any()]
    checks = len(V.consistency_checks(live))
    text = ", ".join(parts) or "no published number compared"
    if checks:
        text += f"; {checks} consistency check{'s' if checks != 1 else ''} (recounts, not reproductions)"
    return text


def summary_box(
    results: pd.DataFrame | Sequence[pd.DataFrame],
    *,
    paper_claim: str,
    ran_here: str,
    headline: Sequence[str] = (),
    not_reproduced: str = "",
) -> V.HtmlTable:
    """The chapter's first screen: the paper's claim in one sentence, what ran here and at which scale,
    the counts by verdict, the headline claims with their verdicts and one-line reasons, and the run's
    profile and commit.

    Args:
        results: the chapter's results cells (what :func:`compendium.verdicts.save` writes).
        paper_claim: the paper's claim, one sentence.
        ran_here: what was run here and at which scale, one sentence.
        headline: the claim texts (rows of claim cells) to list first; default: every claim.
        not_reproduced: one sentence on what this chapter does not reproduce.
    """
    cells = results if isinstance(results, pd.DataFrame) else pd.concat(list(results), ignore_index=True)
    claims = cells[cells["kind"] == "claim"]
    if headline:
        claims = claims[claims["row"].isin(list(headline))]
    items = []
    for rec in claims.to_dict("records"):
        verdict = V._scale_label(rec["scale"], rec["verdict"])
        reason = str(rec["reason"]).split(". ")[0]
        colour = V.COLOURS.get(rec["verdict"], "#fff")
        fg = "white" if rec["verdict"] in V._DARK else "black"
        items.append(f'<li><span style="background:{colour};color:{fg};padding:0 4px;border-radius:3px">'
                     f'{html.escape(verdict)}</span> <b>{html.escape(str(rec["row"]))}</b> '
                     f'<span style="color:#555">({html.escape(rec["scale"])} scale)</span> — {html.escape(reason)}</li>')
    profile = os.environ.get("COMPENDIUM_PROFILE", "interactive")
    commit = current_commit()
    body = (
        f'<div class="cv-summary" style="border:2px solid #4a6fa5;border-radius:6px;padding:10px 14px;margin:6px 0">'
        f'<p style="margin:0 0 4px 0"><b>The paper says:</b> {html.escape(paper_claim)}</p>'
        f'<p style="margin:0 0 4px 0"><b>Run here:</b> {html.escape(ran_here)}</p>'
        f'<p style="margin:0 0 4px 0"><b>Published numbers:</b> {html.escape(_counts_line(cells))}.</p>'
        + (f'<p style="margin:0"><b>Claims:</b></p><ul style="margin:0 0 4px 0">{"".join(items)}</ul>' if items else "")
        + (f'<p style="margin:0 0 4px 0"><b>Not reproduced:</b> {html.escape(not_reproduced)}</p>' if not_reproduced else "")
        + f'<p style="margin:0;color:#555;font-size:0.85em">Executed at the <b>{html.escape(profile)}</b> profile'
        + (f', commit <code>{html.escape(commit)}</code>' if commit else "")
        + '.<span class="cv-stale"></span></p></div>'
    )
    frame = pd.DataFrame([{"paper says": paper_claim, "run here": ran_here, "numbers": _counts_line(cells)}])
    return V.HtmlTable(frame, body)


def glue(name: str, value, display: bool = False) -> None:
    """``myst_nb.glue`` when myst-nb is installed (the book), else nothing (plain Jupyter, Colab)."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - the book's extra installs it
        return
    _glue(name, value, display=display)
