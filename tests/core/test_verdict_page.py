"""The verdict page's pieces on a hand-made book: one chapter under the contract, one written before it."""

from __future__ import annotations

import json

import pytest

from compendium import published, verdict_page, verdicts
from compendium.verdicts import Precondition

RULE = "tests.core.test_verdict_page.toy_rule"


def _table(cells, basis="paper", **extra):
    return published.PublishedTable(paper="gfs", id="t1", title="toy", source="arXiv 0000.00000, Table 1",
                                    cells=cells, decimals=2, basis=basis, **extra)


@pytest.fixture
def book(tmp_path, monkeypatch):
    """book/gfs/gfs.results.json under the contract; book/dyvm/dyvm.results.json from before it."""
    monkeypatch.setenv("COMPENDIUM_RESULTS_DIR", str(tmp_path / "book" / "gfs"))
    nums = _table([{"row": "GCN", "column": c, "value": v} for c, v in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0))])
    measured = verdicts.compare(nums, {("GCN", "a"): 1.0, ("GCN", "b"): 2.5, ("GCN", "c"): verdicts.not_run("ImageNet")},
                                scale="paper", default_reason="labels on Baidu")
    reduced = verdicts.compare(_table([{"row": "GAT", "column": "a", "value": 5.0}]), {("GAT", "a"): 4.0},
                               scale="reduced", scale_reason="100 steps, not 1,000")
    recount = verdicts.compare(_table([{"row": "rows", "column": "n", "value": 10.0}], basis="recount"),
                               {("rows", "n"): 10.0}, scale="paper")
    met = [Precondition("converged", "best step before the last 10 %", 40, True)]
    unmet = [Precondition("converged", "best step before the last 10 %", 100, False)]
    claims = [verdicts.claim("gfs", "GFS helps", True, "9 of 10", scale="paper", preconditions=met, rule=RULE),
              verdicts.claim("gfs", "GFS never hurts", False, "1 of 10 worse", scale="reduced",
                             scale_reason="100 steps", preconditions=unmet, rule=RULE)]
    verdicts.save([measured, reduced, recount, *claims], "gfs", "gfs")
    old = tmp_path / "book" / "dyvm"
    old.mkdir(parents=True)
    (old / "dyvm.results.json").write_text(json.dumps({"paper": "dyvm", "notebook": "dyvm", "profile": "paper", "cells": [
        {"paper": "dyvm", "table": "t", "row": "r", "column": "c", "published": 1.0, "reproduced": 1.0, "verdict": "exact"}]}))
    return tmp_path / "book"


def test_split_contract_lists_notebooks_written_before_it(book):
    cells = verdicts.collect(book)
    current, before = verdict_page.split_contract(cells)
    assert set(current["notebook"]) == {"gfs"} and len(current) == 8
    assert before.to_dict("records") == [{"notebook": "dyvm", "paper": "dyvm", "profile": "paper", "cells": 1}]


def test_page_rows_count_only_contract_cells_and_say_which_chapters_predate_it(book):
    rows = verdict_page.page_rows(verdicts.collect(book)).data.rename(columns=dict(
        (short, long) for long, short in verdict_page.SHORT_HEADERS.items())).set_index("paper")
    gfs = rows.loc[verdict_page.PAPERS["gfs"]]
    dyvm = rows.loc[verdict_page.PAPERS["dyvm"] + verdict_page.PRE_CONTRACT]
    assert (gfs["measured at paper scale"], gfs["exact + within"], gfs["differs"], gfs["not comparable"]) == (2, 1, 1, 1)
    assert gfs["not run here"] == "2 data"  # ImageNet and labels on Baidu
    assert gfs["claims, paper scale (S / N / I)"] == "1 / 0 / 0" and gfs["claims, reduced (S / N / I)"] == "0 / 0 / 1"
    assert gfs["consistency checks"] == 1 and dyvm["measured at paper scale"] == 0
    assert set(verdict_page.SHORT_HEADERS) == set(verdicts.paper_rows(verdicts.collect(book), ["gfs"]).columns) - {"paper"}
    assert 'id="cv-paper-rows"' in verdict_page.page_rows(verdicts.collect(book))._repr_html_()


def test_intro_follows_the_counts(book):
    text = verdict_page.intro_markdown(verdicts.collect(book))
    assert "**1 exact**" in text and "**1 differs**" in text and "within tolerance" not in text
    assert "1 was measured only at a reduced or substitute scale" in text
    assert "2 claims tested as a whole: at paper scale 1 supported; at reduced scale 1 inconclusive." in text
    assert "1 consistency check " in text and "1 notebook was executed before the contract and is not counted" in text
    empty = verdict_page.intro_markdown(verdicts.collect(book).iloc[0:0])
    assert "No chapter has been executed under the verdict contract yet" in empty and "exact" not in empty


def test_lead_sentence_follows_the_counts(book):
    cells = verdicts.collect(book)
    assert verdict_page.lead_markdown(cells) == (
        "10 papers re-executed: 2 published numbers measured at the paper's scale (1 exact, 1 differs); "
        "1 measured at a smaller scale (not comparable); 2 claims tested. "
        "One row per paper, counted from the chapters' results files:")
    assert "no chapter has been executed" in verdict_page.lead_markdown(cells.iloc[0:0])


def test_no_exact_claimed_when_no_cell_is_exact(book):
    cells = verdicts.collect(book)
    cells = cells[~((cells["notebook"] == "gfs") & (cells["verdict"] == "exact") & (cells["basis"] == "paper"))]
    text = verdict_page.intro_markdown(cells)
    assert "None is exact at the paper's printed precision" in text and "**0 exact**" not in text


def test_paper_section_links_the_chapter_and_gives_the_reasons(book):
    cells, pages = verdicts.collect(book), verdict_page.chapter_pages(book)
    assert pages == {"dyvm": "dyvm/dyvm", "gfs": "gfs/gfs"}
    section = verdict_page.paper_section(cells, "gfs", pages)._repr_html_()
    assert '<a href="../gfs/gfs.html">gfs</a>' in section
    assert "1 published number that differ" in section and "2.50" in section
    assert "GFS never hurts" in section and "GFS helps" not in section  # supported claims are not listed here
    assert "100 steps, not 1,000" in section and "labels on Baidu" in section and "ImageNet" in section
    old = verdict_page.paper_section(cells, "dyvm", pages)._repr_html_()
    assert "before the verdict contract" in old and '<a href="../dyvm/dyvm.html">' in old
    assert "No chapter page has results yet" in verdict_page.paper_section(cells, "mpbench", pages)._repr_html_()


def test_figure_image_is_a_png():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    image = verdict_page.figure_image(fig)
    plt.close(fig)
    assert image.data[:8] == b"\x89PNG\r\n\x1a\n" and image.format == "png"


def test_a_long_list_of_differences_folds_under_its_count(book, monkeypatch):
    monkeypatch.setattr(verdict_page, "MAX_ROWS", 0)
    section = verdict_page.paper_section(verdicts.collect(book), "gfs", verdict_page.chapter_pages(book))._repr_html_()
    assert "<details><summary>All 1 cells that differ, with their reasons</summary>" in section
    assert "cells that differ</th>" in section and "2.50" in section


def test_reasons_are_capped_with_a_remainder():
    import pandas as pd

    frame = pd.DataFrame({"reason": [f"r{i}" for i in range(verdict_page.MAX_REASONS + 3)] + ["r0"]})
    got = verdict_page._reason_counts(frame, "reason")
    assert got.iloc[0].to_dict() == {"cells": 2, "reason": "r0"}
    assert got.iloc[-1].to_dict() == {"cells": 3, "reason": "3 other reasons (see the chapter)"}


def test_consistency_and_before_contract_tables(book):
    cells, pages = verdicts.collect(book), verdict_page.chapter_pages(book)
    checks = verdict_page.consistency_section(cells)
    assert checks.data.to_dict("records") == [{"paper": "gfs", "basis": "recount", "verdict": "exact", "cells": 1}]
    assert "<details>" in checks._repr_html_()
    before = verdict_page.before_contract_table(cells, pages)._repr_html_()
    assert '<a href="../dyvm/dyvm.html">dyvm</a>' in before
    only_new = cells[cells["notebook"] == "gfs"]
    assert "Every results file was written under the contract" in verdict_page.before_contract_table(only_new, pages)._repr_html_()
    assert "No consistency check" in verdict_page.consistency_section(cells[cells["notebook"] == "dyvm"])._repr_html_()


def test_not_transcribed_tables_are_named_and_papers_follow_the_book():
    frame = verdict_page.not_transcribed_table().data
    assert len(frame) and frame["why"].map(bool).all()
    assert set(verdict_page.PAPERS) == set(published.papers())


def test_pages_follow_the_paper_index_and_the_table_of_contents_lists_every_notebook():
    from pathlib import Path

    import yaml

    from compendium import papers

    assert [k for k in verdict_page.PAPERS if k not in verdict_page.BASE_MODELS] == papers.keys()
    toc = (Path(__file__).resolve().parents[2] / "book" / "_toc.yml").read_text()
    assert yaml.safe_load(toc)["root"] == "status/verdicts"  # the book opens on the answer
    for paper in papers.index():
        for nb in paper.notebooks:
            assert f"file: {paper.key}/{nb}\n" in toc, f"{paper.key}/{nb} is not in book/_toc.yml"
