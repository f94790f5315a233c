"""The verdict contract on hand-made cells: every rule refuses what it should, with a clear error."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from compendium import published, verdicts
from compendium.verdicts import ContractError, Precondition, Tolerance

RULE = "tests.core.test_verdicts.toy_rule"


def _table(cells, decimals=2, tolerance=None, tolerance_source="", basis="paper", **extra):
    return published.PublishedTable(paper="toy", id="t1", title="toy", source="arXiv 0000.00000, Table 1",
                                    cells=cells, decimals=decimals, tolerance=tolerance,
                                    tolerance_source=tolerance_source, basis=basis, **extra)


def _met(name="converged", met=True):
    return Precondition(name, "best step before the last 10 %", 120 if met else 200, met)


def test_verdict_per_cell_at_paper_scale():
    table = _table([
        {"row": "m", "column": "a", "value": 78.54},
        {"row": "m", "column": "b", "value": 81.30},
        {"row": "m", "column": "c", "value": 50.00},
        {"row": "m", "column": "d", "value": 10.00},
        {"row": "m", "column": "e", "value": 1.00},
    ], tolerance=0.5, tolerance_source="the paper's ± std")
    got = verdicts.compare(table, {("m", "a"): 78.5449, ("m", "b"): 81.304, ("m", "c"): 50.4,
                                   ("m", "d"): 12.0, ("m", "e"): verdicts.not_run("labels on Baidu")}, scale="paper")
    assert list(got["verdict"]) == ["exact", "exact", "within tolerance", "differs", "not run here"]
    assert got.loc[4, "reason"] == "labels on Baidu" and got.loc[4, "reason_class"] == "data"
    assert got.loc[3, "difference"] == pytest.approx(2.0)
    assert set(got["basis"]) == {"paper"} and set(got["scale"]) == {"paper"}
    assert got.loc[2, "tolerance_source"] == "the paper's ± std"
    # 78.546 rounds to 78.55: not exact at two decimals.
    one = _table([{"row": "m", "column": "a", "value": 78.54}])
    assert verdicts.compare(one, {("m", "a"): 78.546}, scale="paper")["verdict"][0] == "differs"


def test_exact_means_equal_at_printed_precision_and_is_shown_at_it():
    table = _table([{"row": "Vim-T", "column": "params (M)", "value": 7.0, "decimals": 0}])
    got = verdicts.compare(table, {("Vim-T", "params (M)"): 7.15}, scale="paper")
    assert got["verdict"][0] == "exact"
    shown = verdicts.show(got).data
    assert shown.loc[0, "published"] == "7" and shown.loc[0, "measured"] == "7"


def test_reduced_or_substitute_scale_is_not_comparable_with_its_reason():
    table = _table([{"row": "m", "column": "a", "value": 80.0}])
    got = verdicts.compare(table, {("m", "a"): 80.0}, scale="reduced", scale_reason="100 steps, not 1,000")
    assert got["verdict"][0] == "not comparable" and "100 steps" in got["reason"][0]
    with pytest.raises(ContractError, match="scale_reason"):
        verdicts.compare(table, {("m", "a"): 80.0}, scale="substitute")
    with pytest.raises(ContractError, match="scale must be one of"):
        verdicts.compare(table, {("m", "a"): 80.0}, scale="small")


def test_declared_equivalence_allows_a_verdict_at_reduced_scale():
    eq = {"scale": "reduced", "argument": "FLOPs are analytic: training length does not change them"}
    table = _table([{"row": "m", "column": "GFLOPs", "value": 1.5, "equivalence": eq}], decimals=1)
    got = verdicts.compare(table, {("m", "GFLOPs"): 1.52}, scale="reduced", scale_reason="4 epochs")
    assert got["verdict"][0] == "exact" and "analytic" in got["equivalence"][0]
    # the equivalence names one scale: a substitute still is not comparable
    got = verdicts.compare(table, {("m", "GFLOPs"): 1.52}, scale="substitute", scale_reason="another model")
    assert got["verdict"][0] == "not comparable"


def test_tolerance_needs_a_source():
    with pytest.raises(ContractError, match="no source"):
        Tolerance(1.0, "")
    table = _table([{"row": "m", "column": "a", "value": 80.0}])
    with pytest.raises(ContractError, match="Tolerance"):
        verdicts.compare(table, {("m", "a"): 80.4}, scale="paper", tolerance=0.5)
    got = verdicts.compare(table, {("m", "a"): 80.4}, scale="paper", tolerance=verdicts.seed_spread([80, 80.5, 79.6]))
    assert got["verdict"][0] == "within tolerance" and "3 seeds" in got["tolerance_source"][0]
    with pytest.raises(ValueError, match="tolerance_source"):
        published._check_table("toy", {"id": "t", "basis": "paper", "tolerance": 1.0, "cells": [{"row": "a", "column": "b", "value": 1}]})
    with pytest.raises(ValueError, match="tolerance_source"):
        published._check_table("toy", {"id": "t", "basis": "paper", "tolerance_source": "printed",
                                       "cells": [{"row": "a", "column": "b", "value": 1, "tolerance": 2}]})


def test_published_data_needs_a_basis_and_derived_says_how():
    with pytest.raises(ValueError, match="basis must be one of"):
        published._check_table("toy", {"id": "t", "cells": [{"row": "a", "column": "b", "value": 1}]})
    with pytest.raises(ValueError, match="basis_note"):
        published._check_table("toy", {"id": "t", "basis": "derived", "cells": [{"row": "a", "column": "b", "value": 1}]})
    with pytest.raises(ValueError, match="equivalence"):
        published._check_table("toy", {"id": "t", "basis": "paper", "equivalence": {"scale": "reduced"},
                                       "cells": [{"row": "a", "column": "b", "value": 1}]})


def test_validate_refuses_hand_made_cells_that_break_the_contract():
    table = _table([{"row": "m", "column": "a", "value": 80.0}])
    good = verdicts.compare(table, {("m", "a"): 80.0}, scale="paper").to_dict("records")[0]
    verdicts.validate(good)
    for change, message in [
        ({"basis": None}, "basis must be one of"),
        ({"scale": None}, "scale must be one of"),
        ({"scale": "reduced"}, "needs a declared equivalence"),
        ({"tolerance": 0.5, "tolerance_source": ""}, "without a source"),
        ({"verdict": "within tolerance", "tolerance": None}, "without a tolerance"),
        ({"basis": "derived", "basis_note": ""}, "how it is derived"),
        ({"verdict": "supported"}, "cannot read"),
    ]:
        with pytest.raises(ContractError, match=message):
            verdicts.validate({**good, **change})


def test_claim_needs_scale_rule_and_met_preconditions():
    ok = verdicts.claim("toy", "X beats Y", True, "3 of 3 datasets", scale="paper", preconditions=[_met()], rule=RULE)
    assert ok["verdict"][0] == "supported" and ok["preconditions"][0][0]["met"] is True
    no = verdicts.claim("toy", "X beats Y", False, "0 of 3", scale="reduced", scale_reason="CPU recipe",
                        preconditions=[_met()], rule=RULE)
    assert no["verdict"][0] == "not supported"
    unmet = verdicts.claim("toy", "X beats Y", True, "3 of 3", scale="paper",
                           preconditions=[_met(), _met("enough seeds", met=False)], rule=RULE)
    assert unmet["verdict"][0] == "inconclusive" and "enough seeds" in unmet["reason"][0]
    undecided = verdicts.claim("toy", "X beats Y", None, "interval spans 0", scale="paper", preconditions=[], rule=RULE)
    assert undecided["verdict"][0] == "inconclusive"
    with pytest.raises(ContractError, match="needs its preconditions"):
        verdicts.claim("toy", "X beats Y", True, "3 of 3", scale="paper", preconditions=[], rule=RULE)
    with pytest.raises(ContractError, match="scale must be one of"):
        verdicts.claim("toy", "X beats Y", True, "3 of 3", scale="", preconditions=[_met()], rule=RULE)
    with pytest.raises(ContractError, match="rule"):
        verdicts.claim("toy", "X beats Y", True, "3 of 3", scale="paper", preconditions=[_met()], rule="")
    # a hand-made supported claim with an unmet precondition is refused
    cell = {**ok.to_dict("records")[0], "preconditions": [{"name": "seeds", "required": 5, "measured": 3, "met": False}]}
    with pytest.raises(ContractError, match="unmet preconditions"):
        verdicts.validate(cell)
    with pytest.raises(ContractError, match="without preconditions"):
        verdicts.validate({**cell, "preconditions": []})


def test_substitute_claims_read_on_the_substitute():
    sub = verdicts.claim("toy", "X beats Y", False, "0 of 3", scale="substitute", scale_reason="SmolLM2 for a 7B",
                         preconditions=[_met()], rule=RULE)
    shown = verdicts.show_claims(sub).data
    assert shown.loc[0, "verdict"] == "on the substitute: fails"


def test_not_run_classes():
    assert verdicts.reason_class("needs ImageNet-1k") == "data"
    assert verdicts.reason_class("7B checkpoint not offline") == "model"
    assert verdicts.reason_class("per-sample outputs never published") == "unpublished"
    assert verdicts.reason_class("anything", "compute") == "compute"
    with pytest.raises(ContractError):
        verdicts.not_run("x", kind="bogus")


def test_save_validates_collect_counts_once_and_page_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_RESULTS_DIR", str(tmp_path / "book" / "toy"))
    table = _table([{"row": "m", "column": "a", "value": 1.0}, {"row": "m", "column": "b", "value": 2.0}])
    twice = _table([{"row": "m", "column": "c", "value": 3.0}], counted_in="other/t9")
    recount = _table([{"row": "rows", "column": "n", "value": 10.0}], basis="recount")
    res = verdicts.compare(table, {("m", "a"): 1.0}, scale="paper")
    dup = verdicts.compare(twice, {("m", "c"): 3.0}, scale="paper")
    rc = verdicts.compare(recount, {("rows", "n"): 10.0}, scale="paper")
    claim = verdicts.claim("toy", "X beats Y", True, "3 of 3 datasets", scale="paper", preconditions=[_met()], rule=RULE)
    path = verdicts.save([res, dup, rc, claim], "toy", "nb")
    payload = json.loads(path.read_text())
    assert len(payload["cells"]) == 5 and all({"basis", "scale"} <= set(c) for c in payload["cells"])
    cells = verdicts.collect(tmp_path / "book")
    assert verdicts.check_book(tmp_path / "book") == []
    summary = verdicts.summary(cells)
    assert int(summary.loc[summary["table"] == "t1", "exact"].sum()) == 2  # the duplicated fact is not counted
    assert len(verdicts.consistency_checks(cells)) == 1
    fig = verdicts.plot_matrix(cells)
    assert len(fig.axes) == 2
    bad = {**res.to_dict("records")[0], "scale": "reduced"}
    with pytest.raises(ContractError):
        verdicts.save(pd.DataFrame([bad]), "toy", "nb2")


def test_show_drops_empty_columns_and_is_deterministic():
    table = _table([{"row": "m", "column": "a", "value": 1615.0, "decimals": 0}])
    got = verdicts.compare(table, {("m", "a"): 1615.0}, scale="paper")
    first, second = verdicts.show(got), verdicts.show(got)
    assert first._repr_html_() == second._repr_html_()
    assert "1615" in first._repr_html_() and "1615.00" not in first._repr_html_()
    assert "scale" in first.data.columns and "reason" not in first.data.columns


def test_published_files_name_sources_and_bases():
    for paper in published.papers():
        p = published.load(paper)
        for t in p.tables:
            assert t.source, (paper, t.id)
            assert t.cells or t.not_transcribed, f"{paper}/{t.id}: no cells and no not_transcribed reason"
            if t.cells:
                assert set(t.frame()["basis"]) <= set(published.BASES)


def test_affectgpt_table2_has_the_seven_reproducible_cells():
    frame = published.load("affectgpt").table("table2").frame()
    row = frame[frame["row"] == "AffectGPT (AVT)"].set_index("column")["value"]
    assert row["MER2023"] == 78.54 and row["SIMSv2"] == 86.18 and len(row) == 10
