"""The GSL chapter's claim rules and preconditions on hand-made inputs: every branch, inconclusive included."""

import math

import numpy as np
import pandas as pd
import pytest

from compendium import verdicts
from compendium.graphs.gsl import claims as C
from compendium.verdicts import Precondition

MET = [Precondition("converged", "< 10 %", "0/20 runs", True)]
UNMET = [Precondition("converged", "< 10 %", "5/20 runs", False)]


# ------------------------------------------------------------------------------ preconditions


def test_seeds_and_ceiling():
    assert C.precondition_seeds(10).met and not C.precondition_seeds(3).met
    assert C.precondition_below_ceiling(0.5, 2, 0.01).met
    assert not C.precondition_below_ceiling(math.log(2) - 0.005, 2, 0.01).met  # no room for a 0.01-nat gain
    assert not C.precondition_below_ceiling(float("nan"), 2, 0.01).met


def test_baseline_tuned():
    t = pd.DataFrame({"dataset": ["a"] * 2 + ["b"] * 2, "val": [0.5, 0.6, 0.7, 0.4], "chosen": [False, True, True, False]})
    assert C.precondition_baseline_tuned(t).met
    t.loc[1, "chosen"], t.loc[0, "chosen"] = False, True  # chose the worse validation score
    assert not C.precondition_baseline_tuned(t).met
    one = pd.DataFrame({"dataset": ["a"], "val": [0.5], "chosen": [True]})
    assert not C.precondition_baseline_tuned(one).met  # one configuration is no tuning
    assert not C.precondition_baseline_tuned(pd.DataFrame()).met


def _runs(dataset, tests):
    return pd.DataFrame({"dataset": dataset, "split": range(len(tests)), "test": tests})


def test_baseline_reference():
    ours = pd.concat([_runs("cora", [0.86, 0.87, 0.88]), _runs("texas", [0.60, 0.62, 0.58])])
    ref = pd.concat([_runs("cora", [0.85, 0.86, 0.87]), _runs("texas", [0.61, 0.59, 0.60, 0.62])])
    p = C.precondition_baseline_reference(ours, ref)
    assert p.met and "cora 87.0 vs 86.0" in p.measured
    ref_high = pd.concat([_runs("cora", [0.85, 0.86, 0.87]), _runs("texas", [0.76, 0.77, 0.78])])
    p = C.precondition_baseline_reference(ours, ref_high)
    assert not p.met and "significantly below on texas" in p.measured
    one_split = _runs("texas", [0.9])  # a reference of one run: its spread is unknown, ours alone counts
    assert not C.precondition_baseline_reference(_runs("texas", [0.6, 0.61, 0.59]), one_split).met
    assert not C.precondition_baseline_reference(ours, _runs("actor", [0.3, 0.31])).met  # nothing shared


def test_training_preconditions_read_the_runs():
    runs = pd.DataFrame({"dataset": ["a"] * 6, "variant": ["GCN(X)"] * 3 + ["GCN(MLP)"] * 3, "split": [0, 1, 2] * 2,
                         "test": [0.6, 0.61, 0.62] * 2, "converged": [True] * 6})
    tuning = pd.DataFrame({"dataset": ["a", "a"], "val": [0.5, 0.6], "chosen": [False, True]})
    pres = C.training_preconditions(runs, tuning, _runs("a", [0.6, 0.62, 0.61]))
    assert [p.met for p in pres] == [True, True, True, True]
    runs.loc[:4, "converged"] = False
    assert not C.training_preconditions(runs, tuning, _runs("a", [0.6, 0.62]))[0].met


# ------------------------------------------------------------------------------ the MI claim


def _csbm(gain_x=-0.02, gain_ax=-0.02, seeds=10, hs=(0.0, 0.5, 1.0)):
    rows = []
    for h in hs:
        for s in range(seeds):
            noise = 0.001 * (s % 3)
            # B = X: identical at every h (the graph built from X does not see A)
            rows.append({"h": h, "seed": s, "basis": "X", "construction": "knn", "I_B": 0.3 + noise,
                         "I_AB": 0.3 + h / 10, "I_A'B": 0.3 + noise + gain_x})
            rows.append({"h": h, "seed": s, "basis": "AX", "construction": "knn", "I_B": 0.2 + h / 10 + noise,
                         "I_AB": 0.25 + h / 10, "I_A'B": 0.2 + h / 10 + gain_ax + 0.002 * (s % 2)})
    return pd.DataFrame(rows)


def test_distinct_cells_count_a_repeated_measurement_once():
    cells = C.distinct_mi_cells(_csbm())
    assert len(cells) == 1 + 3  # B = X once, B = AX once per h
    x = cells[cells.basis == "X"].iloc[0]
    assert x.levels == 3 and x.h == "0, 0.5, 1"


def test_mi_threshold_is_the_estimators_error():
    checks = pd.DataFrame({"Monte-Carlo I(Y;X)": [0.305, 0.526, 0.0], "kNN estimate": [0.318, 0.526, 0.001]})
    t = C.mi_gain_threshold(checks)
    assert t.value == pytest.approx(0.013) and "Gaussian checks" in t.source
    assert C.mi_gain_threshold(checks.assign(**{"kNN estimate": checks["Monte-Carlo I(Y;X)"]})).value == C.MI_GAIN_FLOOR


TOL = verdicts.Tolerance(0.01, "hand-made")


def test_mi_claim_holds_fails_and_in_between():
    d = C.claim_no_mi_gain(_csbm(), TOL)
    assert d.holds is True and d.verdict == verdicts.SUPPORTED and "0/4" in d.evidence
    assert d.rule == "compendium.graphs.gsl.claims.claim_no_mi_gain"
    d = C.claim_no_mi_gain(_csbm(gain_ax=0.05), TOL)
    assert d.holds is False and d.verdict == verdicts.NOT_SUPPORTED and "3/4" in d.evidence
    # one gaining cell in eleven distinct ones (9 %): neither none nor more than 10 %
    hs = tuple(np.round(np.linspace(0, 1, 10), 2))
    frame = _csbm(hs=hs)
    frame.loc[(frame.basis == "AX") & (frame.h == hs[-1]), "I_A'B"] += 0.08
    d = C.claim_no_mi_gain(frame, TOL)
    assert len(d.detail) == 11 and int(d.detail.gains.sum()) == 1
    assert d.holds is None and d.verdict == verdicts.INCONCLUSIVE


def test_mi_claim_inconclusive_on_unmet_preconditions():
    d = C.claim_no_mi_gain(_csbm(seeds=3), TOL)
    assert d.holds is True and d.verdict == verdicts.INCONCLUSIVE
    assert [p.name for p in d.preconditions if not p.met] == ["enough seeds per homophily level"]
    near_ceiling = _csbm()
    near_ceiling["I_B"] = math.log(2)
    assert C.claim_no_mi_gain(near_ceiling, TOL).verdict == verdicts.INCONCLUSIVE


def test_a_gain_below_the_threshold_or_not_significant_does_not_count():
    small = C.claim_no_mi_gain(_csbm(gain_ax=0.005), TOL)
    assert small.holds is True
    noisy = _csbm(gain_ax=0.0)
    noisy.loc[noisy.basis == "AX", "I_A'B"] += np.where(noisy.loc[noisy.basis == "AX", "seed"] % 2, 0.3, -0.28)
    assert C.claim_no_mi_gain(noisy, TOL).holds is True  # mean +0.01 but p > 0.05


# ------------------------------------------------------------------------------ trained-model claims


def _abl(rows):
    return pd.DataFrame([dict(zip(["dataset", "B*", "basis gain", "p basis", "graph gain", "p graph", "total", "p total"], r))
                         for r in rows])


def test_bases_drive_gains_every_branch():
    holds = _abl([("a", "MLP", 10.0, 0.001, 0.5, 0.4, 10.5, 0.001), ("b", "GCN", 0.2, 0.5, -0.3, 0.3, -0.1, 0.8),
                  ("c", "GCL", 3.0, 0.01, 0.0, 0.9, 3.0, 0.02)])
    d = C.claim_bases_drive_gains(holds, MET)
    assert d.holds is True and d.verdict == verdicts.SUPPORTED
    assert C.claim_bases_drive_gains(holds, UNMET).verdict == verdicts.INCONCLUSIVE
    fails = holds.copy()
    fails[["graph gain", "p graph"]] = [[12.0, 0.001], [5.0, 0.001], [4.0, 0.01]]
    assert C.claim_bases_drive_gains(fails, MET).verdict == verdicts.NOT_SUPPORTED
    # basis smaller than graph on the one significant data set, graph not dominant elsewhere: fails softly
    mixed = _abl([("a", "MLP", 1.0, 0.3, 4.0, 0.3, 5.0, 0.01), ("b", "GCN", 0.0, 0.9, 0.0, 0.9, 0.0, 0.9),
                  ("c", "GCL", 0.0, 0.9, 0.0, 0.9, 0.0, 0.9)])
    assert C.claim_bases_drive_gains(mixed, MET).holds is False
    none = _abl([("a", "MLP", 1.0, 0.3, 0.5, 0.4, 1.5, 0.3)])
    d = C.claim_bases_drive_gains(none, MET)
    assert d.holds is None and d.verdict == verdicts.INCONCLUSIVE
    assert C.claim_bases_drive_gains(_abl([]), MET).holds is None


def test_gsl_not_consistent_every_branch():
    cmp = pd.DataFrame({"outcome": ["better"] * 2 + ["tie"] * 6 + ["worse"] * 2, "gain": np.linspace(-1, 1, 10)})
    d = C.claim_gsl_not_consistent(cmp, MET)
    assert d.verdict == verdicts.SUPPORTED and "better in 2, worse in 2" in d.evidence
    assert C.claim_gsl_not_consistent(cmp, UNMET).verdict == verdicts.INCONCLUSIVE
    cmp["outcome"] = "better"
    assert C.claim_gsl_not_consistent(cmp, MET).verdict == verdicts.NOT_SUPPORTED
    cmp.loc[:3, "outcome"] = "tie"  # 6/10 better: neither "not consistently" nor "consistently"
    assert C.claim_gsl_not_consistent(cmp, MET).holds is None
    assert C.claim_gsl_not_consistent(cmp.iloc[:0], MET).holds is None


def _fusion_runs(early_sep, early_sh, late_sep, splits=6, datasets=("a", "b")):
    rows = []
    for ds in datasets:
        for s in range(splits):
            wobble = 0.002 * ((s * 7 + len(ds)) % 5)
            for c in ("knn", "cos-node"):
                for (f, sh), base in ((("early", False), early_sep), (("early", True), early_sh), (("late", False), late_sep)):
                    rows.append({"dataset": ds, "split": s, "construction": c, "fusion": f, "shared": sh, "gsl": True,
                                 "test": base + wobble * (1 if (f, sh) == ("early", False) else -1)})
    return pd.DataFrame(rows)


def test_fusion_contrasts_pair_over_dataset_and_split():
    con = C.fusion_contrasts(_fusion_runs(0.80, 0.75, 0.78))
    assert list(con.contrast) == ["parameter separation", "early fusion"]
    assert (con.pairs == 12).all()  # 2 data sets x 6 splits, constructions averaged
    assert con.loc[0, "mean"] == pytest.approx(5.0, abs=1.0) and con.loc[0, "low"] > 0


def test_fusion_claim_every_branch():
    d = C.claim_fusion_designs(C.fusion_contrasts(_fusion_runs(0.80, 0.75, 0.78)), MET)
    assert d.holds is True and d.verdict == verdicts.SUPPORTED
    assert d.rule == "compendium.graphs.gsl.claims.claim_fusion_designs"
    assert C.claim_fusion_designs(C.fusion_contrasts(_fusion_runs(0.80, 0.75, 0.78)), UNMET).verdict == verdicts.INCONCLUSIVE
    # late fusion clearly better: fails, decided by the early-fusion contrast alone
    d = C.claim_fusion_designs(C.fusion_contrasts(_fusion_runs(0.80, 0.75, 0.85)), MET)
    assert d.holds is False and d.verdict == verdicts.NOT_SUPPORTED and "early fusion [" in d.preconditions[-1].measured
    # a gap of the order of the split-to-split noise: the interval contains 0
    noisy = _fusion_runs(0.80, 0.75, 0.80)
    rng = np.random.default_rng(0)
    noisy["test"] += rng.normal(0, 0.02, len(noisy))
    d = C.claim_fusion_designs(C.fusion_contrasts(noisy), MET)
    assert d.verdict == verdicts.INCONCLUSIVE and not d.preconditions[-1].met
    # nothing to compare (the recommended design was not run)
    none = _fusion_runs(0.8, 0.75, 0.78)
    none = none[~((none.fusion == "early") & ~none.shared)]
    d = C.claim_fusion_designs(C.fusion_contrasts(none), MET)
    assert d.holds is None and d.verdict == verdicts.INCONCLUSIVE


# ------------------------------------------------------------------------------ cells


def test_claim_cell_obeys_the_contract():
    d = C.claim_gsl_not_consistent(pd.DataFrame({"outcome": ["tie"] * 4, "gain": [0.0] * 4}), MET)
    cell = C.claim_cell("gsl_not_consistent", d, scale="reduced", scale_reason="CPU recipe")
    rec = cell.iloc[0]
    assert rec.verdict == verdicts.SUPPORTED and rec.scale == "reduced" and rec.rule == d.rule
    assert rec.preconditions[0]["measured"] == "0/20 runs"
    verdicts.validate(rec.to_dict())
    unmet = C.claim_cell("gsl_not_consistent", C.claim_gsl_not_consistent(cell.iloc[:0].assign(outcome=[]), UNMET),
                         scale="reduced", scale_reason="CPU recipe")
    assert unmet.iloc[0].verdict == verdicts.INCONCLUSIVE


def test_not_run_cell_and_scale_reason():
    from compendium import published

    table = published.load("gsl").table("table2")
    cell = C.not_run_cell(table).iloc[0]
    assert cell.verdict == verdicts.NOT_RUN and cell.reason
    verdicts.validate(cell.to_dict())
    text = C.scale_reason(["a", "b"], ["GCN"], 200, tuned=True)
    assert "GCN only" in text and "2 offline graphs" in text and "tuning grid" in text
