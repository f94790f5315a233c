"""The GFS/TFI claim rules on hand-made measurements: every branch, inconclusive included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium import verdicts
from compendium.graphs.gfs import claims as gc
from compendium.graphs.gfs.train import PAPER_RECIPE
from compendium.graphs.harness import TrainConfig


def cases_frame(significant: list[bool], n_splits: int = 3, datasets=None) -> pd.DataFrame:
    n = len(significant)
    return pd.DataFrame({"dataset": datasets or [f"d{i}" for i in range(n)], "model": "GCN", "n_splits": n_splits,
                         "improved": significant, "significant": significant, "gain": 1.0})


def runs_frame(converged: list[bool], dataset: str = "minesweeper") -> pd.DataFrame:
    return pd.DataFrame({"dataset": dataset, "model": "GCN", "variant": "GCN", "converged": converged,
                         "best_step": 10, "steps": 20, "max_steps": 100})


def gcn_summary(**means) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": d, "variant": "GCN", "test_mean": v} for d, v in means.items()])


AT_ANCHOR = gcn_summary(minesweeper=89.75)  # Platonov et al.: 89.75 ± 0.52


def test_published_share_is_read_from_the_yaml():
    assert gc.published_share() == 83.75 and gc.published_share("ICLR 2025") == 90.0


def test_share_interval_is_clopper_pearson():
    lo, hi = gc.share_interval(0, 3)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 3))
    lo, hi = gc.share_interval(67, 80)
    assert lo < 0.8375 < hi and lo > 0.5
    assert all(np.isnan(gc.share_interval(0, 0)))


def test_recipe_scale():
    assert gc.recipe_scale([PAPER_RECIPE], 10) == ("paper", "")
    scale, why = gc.recipe_scale([TrainConfig(hidden=64, lr=1e-3, steps=600, patience=25)], 3)
    assert scale == "reduced"
    for part in ("hidden 64 (paper 512)", "lr 0.001 (paper 3e-05)", "steps 600 (paper 1000)", "early stopping",
                 "at most 3 splits per graph (paper 10)"):
        assert part in why
    assert gc.recipe_scale([PAPER_RECIPE], 5)[0] == "reduced"


def test_precondition_anchors():
    assert gc.precondition_anchors(AT_ANCHOR).met
    assert gc.precondition_anchors(gcn_summary(minesweeper=89.75 + 0.52, texas=60.0)).met  # edge of the band
    pre = gc.precondition_anchors(gcn_summary(minesweeper=89.0, tolokers=83.64))
    assert not pre.met and "minesweeper 89.00 vs 89.75 ± 0.52" in pre.measured
    pre = gc.precondition_anchors(gcn_summary(texas=60.0))
    assert not pre.met and "no anchored graph" in pre.measured


def headline(cases, runs=None, summary=AT_ANCHOR):
    runs = runs_frame([True] * 10) if runs is None else runs
    return gc.claim_headline(cases, runs, summary, alpha=0.05, scale="reduced", scale_reason="hidden 64").iloc[0]


def test_headline_supported_when_the_interval_holds_the_paper_share_above_one_half():
    cell = headline(cases_frame([True] * 17 + [False] * 3))  # 85 %: [62, 97] %
    assert cell["verdict"] == "supported" and cell["rule"] == "compendium.graphs.gfs.claims.claim_headline"
    assert "83.75 %" in cell["row"] and "17/20" in cell["reason"]
    assert [p["name"] for p in cell["preconditions"]][:2] == ["converged: runs cut by their budget while improving",
                                                             "enough splits for a paired test"]


def test_headline_not_supported_when_the_interval_lies_below_the_paper_share():
    cell = headline(cases_frame([True] * 5 + [False] * 15))  # 25 %: upper bound 49 %
    assert cell["verdict"] == "not supported"


def test_headline_inconclusive_when_too_few_cases_or_no_testable_case():
    assert headline(cases_frame([True, True, False]))["verdict"] == "inconclusive"  # [9, 99] %: lower bound <= 50 %
    cell = headline(cases_frame([True] * 4, n_splits=1))
    assert cell["verdict"] == "inconclusive" and "no case has 3+ paired splits" in cell["reason"]


@pytest.mark.parametrize("runs,summary,unmet", [
    (runs_frame([False] * 5 + [True] * 5), AT_ANCHOR, "converged"),
    (None, gcn_summary(minesweeper=85.0), "anchors"),
])
def test_headline_inconclusive_on_an_unmet_precondition(runs, summary, unmet):
    cell = headline(cases_frame([True] * 17 + [False] * 3), runs=runs, summary=summary)
    assert cell["verdict"] == "inconclusive" and unmet in cell["reason"]


def test_headline_inconclusive_when_one_case_has_too_few_splits():
    cases = cases_frame([True] * 17 + [False] * 3)
    cases.loc[0, "n_splits"] = 1
    cell = headline(cases)
    assert cell["verdict"] == "inconclusive" and "enough splits" in cell["reason"]


def test_headline_cells_are_not_comparable_at_reduced_scale():
    from compendium import published

    table = published.load("gfs").table("headline")
    out = verdicts.compare(table, gc.headline_cells(cases_frame([True, False, True])), scale="reduced",
                           scale_reason="hidden 64")
    assert set(out["verdict"]) == {"not comparable"} and out["reproduced"].iloc[0] == pytest.approx(200 / 3)
    out = verdicts.compare(table, gc.headline_cells(cases_frame([True], n_splits=2)), scale="reduced",
                           scale_reason="hidden 64")
    assert set(out["verdict"]) == {"not run here"}


def test_anchor_and_tuned_cells():
    summary = pd.DataFrame([{"dataset": "minesweeper", "variant": v, "test_mean": m}
                            for v, m in (("GCN", 89.8), ("MLP", 50.0), ("GCN+GFS", 90.1))])
    not_offline = {"tolokers": {"reason": "test"}, "roman_empire": {"reason": "no file"}}
    anchors = gc.anchor_cells(summary, not_offline)
    assert anchors[("GCN", "minesweeper")] == 89.8 and anchors[("ResNet (MLP)", "minesweeper")] == 50.0
    assert anchors[("ResNet+SGC", "minesweeper")].kind == "other"
    assert anchors[("GCN", "roman_empire")].kind == "data" and anchors[("GAT", "minesweeper")].kind == "compute"
    tuned = gc.tuned_cells(summary, not_offline)
    assert tuned[("minesweeper", "GCN+GFS")] == 90.1 and tuned[("roman_empire", "GCN+GFS")].kind == "data"


def selection_runs(tfi: list[float], rival: list[float], datasets=("a", "b", "c"), converged=True) -> pd.DataFrame:
    rows = []
    for d in datasets:
        for s, (t, r) in enumerate(zip(tfi, rival)):
            rows += [{"dataset": d, "split": s, "selection": "TFI", "test": t, "converged": converged},
                     {"dataset": d, "split": s, "selection": "random", "test": r, "converged": converged},
                     {"dataset": d, "split": s, "selection": "none (GCN)", "test": 0.99, "converged": converged}]
    return pd.DataFrame(rows)


def selection(runs):
    return gc.claim_tfi_selection(runs, scale="reduced", scale_reason="hidden 64").iloc[0]


def test_selection_supported_not_supported_and_inconclusive():
    assert selection(selection_runs([0.6, 0.62, 0.61], [0.5, 0.51, 0.5]))["verdict"] == "supported"
    cell = selection(selection_runs([0.5, 0.51, 0.5], [0.6, 0.62, 0.61]))
    assert cell["verdict"] == "not supported" and "worse" in cell["reason"]
    cell = selection(selection_runs([0.6, 0.5, 0.55], [0.5, 0.6, 0.56]))  # within noise
    assert cell["verdict"] == "inconclusive" and "difference resolved" in cell["reason"]
    cell = selection(selection_runs([0.6, 0.62], [0.5, 0.51]))  # two splits
    assert cell["verdict"] == "inconclusive" and "enough splits" in cell["reason"]
    cell = selection(selection_runs([0.6, 0.62, 0.61], [0.5, 0.51, 0.5], converged=False))
    assert cell["verdict"] == "inconclusive" and "converged" in cell["reason"]
    empty = selection_runs([0.6, 0.62, 0.61], [0.5, 0.51, 0.5])
    assert selection(empty[empty["selection"] != "TFI"])["verdict"] == "inconclusive"


def agreement(spearman, floor, features=1000):
    return pd.DataFrame({"dataset": [f"d{i}" for i in range(len(spearman))], "split": 0, "features": features,
                         "spearman": spearman, "spearman ours seed vs seed": floor})


def test_spearman_gap_z():
    assert gc.spearman_gap_z(0.7, 0.7, 1000) == 0
    assert gc.spearman_gap_z(0.9, 0.5, 1000) > 10 and gc.spearman_gap_z(0.5, 0.9, 1000) < -10
    assert gc.spearman_gap_z(1.0, 1.0, 10) == 0 and np.isnan(gc.spearman_gap_z(0.9, 0.8, 3))


def test_tfi_agreement_claim_every_branch():
    def verdict(frame):
        return gc.claim_tfi_matches_official(frame).iloc[0]

    cell = verdict(agreement([0.69, 0.25], [0.72, 0.28]))
    assert cell["verdict"] == "supported" and cell["scale"] == "paper" and cell["table"] == "tfi"
    cell = verdict(agreement([0.5, 0.25], [0.9, 0.28]))
    assert cell["verdict"] == "not supported" and "d0 split 0" in cell["reason"]
    assert verdict(agreement([0.69], [np.nan]))["verdict"] == "inconclusive"  # noise floor not measured
    assert verdict(agreement([0.9], [0.95], features=3))["verdict"] == "inconclusive"  # too few features
    assert verdict(agreement([], []))["verdict"] == "inconclusive"


def test_statistics_cells_recount_the_loaded_graphs(load):
    g = load("minesweeper")
    cells = gc.statistics_cells([g], {"roman_empire": {"reason": "no file"}})
    assert cells[("minesweeper", "nodes")] == 10000 and cells[("minesweeper", "edges")] == 39402
    assert cells[("minesweeper", "h_edge")] == pytest.approx(0.6828, abs=5e-5)
    assert cells[("roman_empire", "nodes")].kind == "data" and cells[("tolokers", "nodes")].kind == "compute"


def test_left_out_models_are_not_run_cells_with_the_reason_and_named_in_the_headline():
    summary = pd.DataFrame([{"dataset": "tolokers", "variant": "GCN", "test_mean": 83.5}])
    left_out = {"tolokers": {"models": ["GAT", "GT"], "reason": "over the time budget"}}
    anchors = gc.anchor_cells(summary, {}, left_out)
    assert anchors[("GCN", "tolokers")] == 83.5
    cell = anchors[("GAT", "tolokers")]
    assert cell.kind == "compute" and cell.reason == "GAT not run on tolokers in this profile: over the time budget"
    assert gc.anchor_cells(summary, {})[("GAT", "tolokers")].reason == "not in this profile's datasets/models"
    runs = runs_frame([True] * 10)
    cell = gc.claim_headline(cases_frame([True] * 17 + [False] * 3), runs, AT_ANCHOR, alpha=0.05, scale="reduced",
                             scale_reason="hidden 64", left_out=left_out).iloc[0]
    assert "not run here: GAT on tolokers, GT on tolokers" in cell["reason"]
