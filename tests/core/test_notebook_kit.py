"""The first-screen summary box: built from results cells, with counts, claims and the run's profile."""

from __future__ import annotations

from compendium import notebook, published, verdicts
from compendium.verdicts import Precondition


def test_summary_box_counts_and_claims(monkeypatch):
    monkeypatch.setenv("COMPENDIUM_PROFILE", "paper")
    monkeypatch.setenv("COMPENDIUM_COMMIT", "abc1234567890")
    table = published.PublishedTable(paper="toy", id="t", title="t", source="arXiv 0000.00000, Table 1",
                                     cells=[{"row": "m", "column": "a", "value": 1.0},
                                            {"row": "m", "column": "b", "value": 2.0}], decimals=1, basis="paper")
    cells = verdicts.compare(table, {("m", "a"): 1.0, ("m", "b"): verdicts.not_run("ImageNet")}, scale="paper")
    claim = verdicts.claim("toy", "GFS helps", None, "interval spans 0. more text", scale="reduced",
                           scale_reason="CPU recipe", preconditions=[Precondition("converged", True, False, False)],
                           rule="tests.core.test_notebook_kit")
    box = notebook.summary_box([cells, claim], paper_claim="GFS helps GNNs.", ran_here="8 GNNs on 10 graphs.")
    text = box._repr_html_()
    assert "1 exact, 1 not run here" in text and "GFS helps" in text and "inconclusive" in text
    assert "paper</b> profile" in text and "abc1234567" in text and "more text" not in text
    assert "What this reproduces" in text and "toy · t: 1 of 2 cells at the paper&#x27;s scale" in text
    assert "1 not run (data not available offline)" in text
