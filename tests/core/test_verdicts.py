"""Verdicts on hand-made tables; published numbers load with their sources."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from compendium import published, verdicts


def _table(cells, decimals=2, tolerance=None):
    return published.PublishedTable(paper="toy", id="t1", title="toy", source="arXiv 0000.00000, Table 1",
                                    cells=cells, decimals=decimals, tolerance=tolerance)


def test_verdict_per_cell():
    table = _table([
        {"row": "m", "column": "a", "value": 78.54},
        {"row": "m", "column": "b", "value": 81.30},
        {"row": "m", "column": "c", "value": 50.00},
        {"row": "m", "column": "d", "value": 10.00},
        {"row": "m", "column": "e", "value": 1.00},
    ], tolerance=0.5)
    got = verdicts.compare(table, {("m", "a"): 78.5449, ("m", "b"): 81.304, ("m", "c"): 50.4,
                                   ("m", "d"): 12.0, ("m", "e"): verdicts.not_run("labels on Baidu")})
    assert list(got["verdict"]) == ["exact", "exact", "within tolerance", "differs", "not run here"]
    assert got.loc[4, "reason"] == "labels on Baidu"
    assert got.loc[3, "difference"] == pytest.approx(2.0)
    # 78.546 rounds to 78.55: not exact at two decimals.
    assert verdicts.compare(_table([{"row": "m", "column": "a", "value": 78.54}]), {("m", "a"): 78.546})["verdict"][0] == "differs"


def test_missing_reproduced_cell_is_not_run_with_default_reason():
    got = verdicts.compare(_table([{"row": "x", "column": "y", "value": 1.0}]), pd.DataFrame(columns=["row", "column", "value"]),
                           default_reason="no per-sample outputs published")
    assert got["verdict"][0] == "not run here" and "per-sample" in got["reason"][0]


def test_frame_input_with_nan_value_and_reason():
    rep = pd.DataFrame([{"row": "x", "column": "y", "value": float("nan"), "reason": "ImageNet"}])
    got = verdicts.compare(_table([{"row": "x", "column": "y", "value": 1.0}]), rep)
    assert got["verdict"][0] == "not run here" and got["reason"][0] == "ImageNet"


def test_save_collect_summary_and_plot(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_RESULTS_DIR", str(tmp_path / "book" / "toy"))
    table = _table([{"row": "m", "column": "a", "value": 1.0}, {"row": "m", "column": "b", "value": 2.0}])
    res = verdicts.compare(table, {("m", "a"): 1.0})
    claim = verdicts.claim("toy", "X beats Y", True, "3 of 3 datasets")
    path = verdicts.save([res, claim], "toy", "nb")
    payload = json.loads(path.read_text())
    assert payload["paper"] == "toy" and len(payload["cells"]) == 3
    for cell in payload["cells"]:
        assert {"paper", "table", "published", "reproduced", "verdict"} <= set(cell)
    cells = verdicts.collect(tmp_path / "book")
    summary = verdicts.summary(cells)
    assert int(summary.loc[summary["table"] == "t1", "exact"].iloc[0]) == 1
    fig = verdicts.plot_matrix(cells)
    assert len(fig.axes) == 2  # one panel per (paper, table): t1 and claims


def test_published_files_name_sources():
    for paper in published.papers():
        p = published.load(paper)
        for t in p.tables:
            assert t.source, (paper, t.id)
            assert t.cells or t.not_transcribed, f"{paper}/{t.id}: no cells and no not_transcribed reason"


def test_affectgpt_table2_has_the_seven_reproducible_cells():
    frame = published.load("affectgpt").table("table2").frame()
    row = frame[frame["row"] == "AffectGPT (AVT)"].set_index("column")["value"]
    assert row["MER2023"] == 78.54 and row["SIMSv2"] == 86.18 and len(row) == 10
