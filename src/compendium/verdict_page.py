"""The verdict page (``notebooks/status/verdicts.ipynb``), the book's landing page: what it shows is
built here, so that the notebook only calls and glues.

Every count comes from the chapters' results files (:func:`compendium.verdicts.collect`) and the published
data; the introduction's sentences are generated from those counts, so it never says "exact" where no
cell is. Results files written before the verdict contract (cells without ``basis`` / ``scale``) are
not counted: they are listed apart as "executed before the contract".
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from . import published
from . import verdicts as V

__all__ = ["PAPERS", "split_contract", "chapter_pages", "page_rows", "figure_image", "lead_markdown", "intro_markdown", "paper_section",
           "consistency_section", "before_contract_table", "not_transcribed_table"]

#: The book's papers in the order of the table of contents: key -> short name (paper + what is reproduced).
#: Vim is the base model of DyVM and R-MeeTo; its published numbers are measured in those chapters.
PAPERS = {
    "gfs": "GFS / TFI: feature selection for GNNs",
    "gsl": "GSL rethinking: is structure learning needed?",
    "dyvm": "DyVM: dynamic token and block pruning",
    "rmeeto": "R-MeeTo: merged-token re-training",
    "vim": "Vim: the base model, measured in DyVM",
    "affectgpt": "AffectGPT: MER-UniBench",
    "mer2025": "MER2025: the challenge's tracks",
    "eibench": "EIBench: emotion interpretation",
    "emotion_qwen": "Emotion-Qwen: compressor and forgetting",
    "pebench": "PEBench: unlearning persons and events",
    "mpbench": "MPBench: process reward paradigms",
}

#: Papers measured inside other chapters (not a chapter of their own).
BASE_MODELS = {"vim"}
#: The claim verdicts a paper's section lists beside its numbers that differ.
SHOWN_VERDICTS = (V.NOT_SUPPORTED, V.INCONCLUSIVE)
#: Above this many cells that differ, a section folds the list under a count per table.
MAX_ROWS = 15
#: How many distinct reasons a section lists for its not comparable / not run cells before "and N more".
MAX_REASONS = 6


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value == ""


def split_contract(cells: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells written under the contract, one row per notebook written before it).

    A notebook's results file predates the contract when its cells carry no ``basis`` or no ``scale``;
    none of its cells is counted on the page."""
    if cells.empty:
        return cells, pd.DataFrame(columns=["notebook", "paper", "profile", "cells"])
    old = cells["basis"].map(_missing) | cells["scale"].map(_missing)
    old_notebooks = set(cells.loc[old, "notebook"])
    before = cells[cells["notebook"].isin(old_notebooks)]
    listed = (before.groupby("notebook")
              .agg(paper=("paper", lambda s: ", ".join(sorted(set(s)))), profile=("profile", "first"),
                   cells=("row", "size"))
              .reset_index())
    return cells[~cells["notebook"].isin(old_notebooks)].reset_index(drop=True), listed


def chapter_pages(book_dir: str | Path) -> dict[str, str]:
    """notebook name -> its page in the book relative to the book root, without suffix (``gfs/tfi``)."""
    root = Path(book_dir)
    return {p.name.removesuffix(".results.json"): str(p.relative_to(root).with_name(p.name.removesuffix(".results.json")))
            for p in sorted(root.rglob("*.results.json"))}


def _link(page: str, text: str, *, prefix: str = "../") -> str:
    return f'<a href="{html.escape(prefix + page)}.html">{html.escape(text)}</a>'


#: Appended to a paper's name in the first table while its chapter's results predate the contract.
PRE_CONTRACT = " (old run, not counted)"
#: The first table's column headers, shortened so that its twelve columns fit a reading column.
SHORT_HEADERS = {
    "published cells": "published", "tables not transcribed": "not transcribed",
    "measured at paper scale": "at paper scale", "exact + within": "exact + within", "differs": "differs",
    "not comparable": "not compa­rable", "not run here": "not run here",
    "claims, paper scale (S / N / I)": "claims at paper scale S / N / I",
    "claims, reduced (S / N / I)": "claims reduced S / N / I",
    "claims, substitute (holds / fails / I)": "claims on substitutes holds / fails / I",
    "consistency checks": "consis­tency checks",
}


def page_rows(cells: pd.DataFrame, papers: dict[str, str] | None = None) -> V.HtmlTable:
    """The first table: :func:`compendium.verdicts.paper_rows` over the cells written under the contract,
    one row per paper under its short name; a chapter not re-executed under the contract says so there."""
    papers = papers or PAPERS
    current, before = split_contract(cells)
    rows = V.paper_rows(current, list(papers))
    stale = set(before["paper"].str.split(", ").explode()) if len(before) else set()
    done = set(current["paper"])
    rows["paper"] = [papers.get(key, key) + (PRE_CONTRACT if key in stale and key not in done
                                             else " (partly an old run)" if key in stale else "")
                     for key in rows["paper"]]
    rows = rows.rename(columns=SHORT_HEADERS)
    numeric = {c for c in rows.columns if c not in ("paper", "not transcribed", "not run here")}
    table = V._render(rows, numeric, {"paper"})
    return V.HtmlTable(table.data, f'<div id="cv-paper-rows">{table._repr_html_()}</div>')


def figure_image(fig, dpi: int = 100):
    """A matplotlib figure as a PNG image (what the book shows whatever the kernel's backend)."""
    import io

    from IPython.display import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return Image(data=buffer.getvalue(), format="png")


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 or word.endswith("s") else "s")


def intro_markdown(cells: pd.DataFrame, papers: dict[str, str] | None = None) -> str:
    """The page's opening paragraph, every number and verdict word taken from the counts."""
    papers = papers or PAPERS
    current, before = split_contract(cells)
    tables = [t for key in papers if key in published.papers() for t in published.load(key).tables]
    transcribed = sum(len(t.cells) for t in tables if t.counted)
    missing = sum(1 for t in tables if t.not_transcribed)
    live = current[current["counted"].astype(bool)] if len(current) else current
    nums = live[(live["kind"] != "claim") & live["basis"].isin(V.REPRODUCTION_BASES)] if len(live) else live
    claims = live[live["kind"] == "claim"] if len(live) else live
    count = (lambda frame, v: int((frame["verdict"] == v).sum()) if len(frame) else 0)
    judged = sum(count(nums, v) for v in V.JUDGING)
    chapters = [key for key in papers if key not in BASE_MODELS]
    parts = [f"This book re-executes {len(chapters)} papers"
             + (" (and measures the base model two of them build on). " if BASE_MODELS & set(papers) else ". ")
             + f"Their published data hold {transcribed} numbers transcribed with their sources; "
             f"{_n(missing, 'table')} {'is' if missing == 1 else 'are'} not transcribed yet and named below."]
    if len(current) == 0:
        parts.append("No chapter has been executed under the verdict contract yet, so no verdict is counted here.")
    else:
        if judged:
            verdict_words = [f"**{count(nums, v)} {v}**" for v in V.JUDGING if count(nums, v)]
            exact_note = "" if count(nums, V.EXACT) else " None is exact at the paper's printed precision."
            parts.append(f"Of the published numbers, {judged} were measured at the paper's scale (its inputs and "
                         f"recipe, or a computation scale does not change): {', '.join(verdict_words)}.{exact_note}")
        else:
            parts.append("No published number has been measured at the paper's scale yet.")
        was = (lambda n: f"{n} {'was' if n == 1 else 'were'}")
        other = [f"{was(count(nums, V.NOT_COMPARABLE))} measured only at a reduced or substitute scale "
                 "and stand beside the paper's number as *not comparable*"] if count(nums, V.NOT_COMPARABLE) else []
        if count(nums, V.NOT_RUN):
            other.append(f"{was(count(nums, V.NOT_RUN))} not run here, each with its reason")
        if other:
            parts.append("; ".join(other).capitalize() + ".")
        if len(claims):
            by_scale = []
            for scale in V.SCALES:
                sub = claims[claims["scale"] == scale]
                if len(sub):
                    words = ", ".join(f"{count(sub, v)} {V._scale_label(scale, v).replace('on the substitute: ', '')}"
                                      for v in V.CLAIM_VERDICTS if count(sub, v))
                    by_scale.append(f"at {scale} scale {words}" if scale != "substitute" else f"on substitutes {words}")
            parts.append(f"{_n(len(claims), 'claim')} tested as a whole: {'; '.join(by_scale)}.")
        checks = len(V.consistency_checks(live))
        if checks:
            parts.append(f"{_n(checks, 'consistency check')} (recounts of shared files or of our own constants) "
                         "are listed apart: they are not reproductions.")
    if len(before):
        one = len(before) == 1
        parts.append(f"{_n(len(before), 'notebook')} {'was' if one else 'were'} executed before the contract and "
                     f"{'is' if one else 'are'} not counted (listed at the end).")
    return " ".join(parts)


def lead_markdown(cells: pd.DataFrame, papers: dict[str, str] | None = None) -> str:
    """One sentence above the first table: what the counts say, from the counts."""
    papers = papers or PAPERS
    current, _ = split_contract(cells)
    chapters = len([key for key in papers if key not in BASE_MODELS])
    if len(current) == 0:
        return f"{chapters} papers re-executed; no chapter has been executed under the verdict contract yet."
    live = current[current["counted"].astype(bool)]
    nums = live[(live["kind"] != "claim") & live["basis"].isin(V.REPRODUCTION_BASES)]
    claims = live[live["kind"] == "claim"]
    judged = nums[nums["verdict"].isin(V.JUDGING)]["verdict"].value_counts()
    words = ", ".join(f"{int(judged[v])} {v}" for v in V.JUDGING if v in judged)
    measured = (f"{int(judged.sum())} published numbers measured at the paper's scale ({words})" if len(judged)
                else "no published number measured at the paper's scale yet")
    return (f"{chapters} papers re-executed: {measured}; "
            f"{int((nums['verdict'] == V.NOT_COMPARABLE).sum())} measured at a smaller scale (not comparable); "
            f"{_n(len(claims), 'claim')} tested. One row per paper, counted from the chapters' results files:")


def _reason_counts(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Distinct reasons with how many cells give each, the most frequent first."""
    reasons = frame[column].fillna("").map(lambda r: r or "(no reason given)")
    counts = reasons.value_counts()
    out = pd.DataFrame({"cells": counts.values, "reason": counts.index})
    if len(out) > MAX_REASONS:
        rest = int(out["cells"].iloc[MAX_REASONS:].sum())
        out = pd.concat([out.iloc[:MAX_REASONS],
                         pd.DataFrame([{"cells": rest, "reason": f"{len(out) - MAX_REASONS} other reasons (see the chapter)"}])])
    return out.reset_index(drop=True)


def paper_section(cells: pd.DataFrame, paper: str, pages: dict[str, str]) -> V.HtmlTable:
    """A paper's section: links to its chapter pages, then the cells that differ (and the claims not
    borne out) with their reasons, then why the rest is not comparable or not run."""
    current, before = split_contract(cells)
    own = current[current["paper"] == paper]
    notebooks = sorted(set(cells.loc[cells["paper"] == paper, "notebook"]))
    links = ", ".join(_link(pages[nb], nb) for nb in notebooks if nb in pages)
    parts = [f"<p>Chapter: {links}.</p>" if links else "<p>No chapter page has results yet.</p>"]
    if paper in set(before["paper"].str.split(", ").explode() if len(before) else []) and own.empty:
        parts.append("<p>Executed before the verdict contract: not counted until re-executed.</p>")
        return V.HtmlTable(pd.DataFrame(), "".join(parts))
    if own.empty:
        return V.HtmlTable(pd.DataFrame(), "".join(parts))
    live = own[own["counted"].astype(bool)]
    nums = live[(live["kind"] != "claim") & live["basis"].isin(V.REPRODUCTION_BASES)]
    differ = nums[nums["verdict"] == V.DIFFERS]
    frame = pd.DataFrame()
    if len(differ):
        table = V.show(differ, caption=f"{_n(len(differ), 'published number')} that differ")
        frame = table.data
        if len(differ) > MAX_ROWS:  # a long list folds: its count per table first, every cell one click away
            per_table = differ.groupby("table").size().reset_index(name="cells that differ")
            parts.append(V._render(per_table, {"cells that differ"}, set())._repr_html_()
                         + f"<details><summary>All {len(differ)} cells that differ, with their reasons</summary>"
                         + table._repr_html_() + "</details>")
        else:
            parts.append(table._repr_html_())
    else:
        parts.append("<p>No published number measured at the paper's scale differs.</p>")
    claims = live[(live["kind"] == "claim") & live["verdict"].isin(SHOWN_VERDICTS)]
    if len(claims):
        parts.append(V.show_claims(claims, caption=f"{_n(len(claims), 'claim')} not supported or inconclusive")._repr_html_())
    for verdict, column in ((V.NOT_COMPARABLE, "reason"), (V.NOT_RUN, "reason")):
        sub = nums[nums["verdict"] == verdict]
        if len(sub):
            reasons = _reason_counts(sub, column)
            parts.append(V._render(reasons, {"cells"}, {"reason"},
                                   caption=f"{_n(len(sub), 'cell')} {verdict}, by reason")._repr_html_())
    return V.HtmlTable(frame, "".join(parts))


def consistency_section(cells: pd.DataFrame) -> V.HtmlTable:
    """Recounts and reconstructions, per paper and verdict, then every such cell in a details element."""
    current, _ = split_contract(cells)
    checks = V.consistency_checks(current) if len(current) else current
    if len(checks) == 0:
        return V.HtmlTable(pd.DataFrame(), "<p>No consistency check in the results files under the contract.</p>")
    counts = checks.groupby(["paper", "basis", "verdict"]).size().reset_index(name="cells")
    summary = V._render(counts, {"cells"}, set(), caption="Consistency checks per paper (not reproductions)")
    detail = V.show(checks)
    text = (summary._repr_html_() + f"<details><summary>All {len(checks)} consistency checks</summary>"
            + detail._repr_html_() + "</details>")
    return V.HtmlTable(counts, text)


def before_contract_table(cells: pd.DataFrame, pages: dict[str, str]) -> V.HtmlTable:
    """The notebooks whose results file predates the contract, with a link to each."""
    _, before = split_contract(cells)
    if before.empty:
        return V.HtmlTable(before, "<p>Every results file was written under the contract.</p>")
    table = V._render(before, {"cells"}, set())
    text = table._repr_html_()
    for nb in before["notebook"]:  # the notebook names become links to their pages
        if nb in pages:
            text = text.replace(f"<td class=\"\">{html.escape(nb)}</td>", f"<td>{_link(pages[nb], nb)}</td>", 1)
    return V.HtmlTable(table.data, text)


def not_transcribed_table(papers: dict[str, str] | None = None) -> V.HtmlTable:
    """Every published table not transcribed yet, with why and where it would come from."""
    papers = papers or PAPERS
    rows = [{"paper": papers[key], "table": t.id, "title": t.title, "why": t.not_transcribed}
            for key in papers if key in published.papers() for t in published.load(key).tables if t.not_transcribed]
    frame = pd.DataFrame(rows, columns=["paper", "table", "title", "why"])
    return V._render(frame, set(), {"title", "why"})
