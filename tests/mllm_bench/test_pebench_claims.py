"""PEBench's claim rules and the shared interval rules, on hand-made runs (every branch, inconclusive included)."""

import math

import pandas as pd
import pytest

from compendium import published
from compendium.mllm_bench import stats as S
from compendium.mllm_bench.pebench import bench as B
from compendium.mllm_bench.pebench import claims as C

T1 = published.load("pebench").table("table1")
T2 = published.load("pebench").table("table2")
N_EVAL = 32


# ------------------------------------------------------------------------------------ the interval rules


def test_t_interval_by_hand():
    iv = S.t_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2) = 4.3027 -> half width 4.3027 / sqrt(3) = 2.4841
    assert iv.mean == 2.0 and iv.lo == pytest.approx(2 - 2.4841, abs=1e-3) and iv.hi == pytest.approx(2 + 2.4841, abs=1e-3)
    one = S.t_interval([5.0])
    assert one.mean == 5.0 and math.isnan(one.lo) and "no interval" in one.text()


def test_bootstrap_interval_percentiles():
    iv = S.bootstrap_interval(0.5, list(range(101)))
    assert (iv.lo, iv.hi) == (pytest.approx(2.5), pytest.approx(97.5)) and iv.mean == 0.5


def test_above_cases():
    assert S.above("x", S.t_interval([3.0, 3.1, 2.9])).decided  # wholly above 0
    low = S.above("x", S.t_interval([-3.0, -3.1, -2.9]))
    assert low.decided and not low.holds  # wholly below
    zero = S.above("x", S.t_interval([0.0, 0.0, 0.0]))
    assert zero.decided and not zero.holds  # exactly 0: decided "not above"
    straddle = S.above("x", S.t_interval([-5.0, 5.0, 3.0]))
    assert not straddle.decided and straddle.holds
    assert not S.above("x", S.t_interval([4.0])).decided  # one seed: no interval


def test_every_and_share():
    yes, no, open_yes, open_no = (S.Case("a", True, True, ""), S.Case("b", False, True, ""),
                                  S.Case("c", True, False, ""), S.Case("d", False, False, ""))
    assert S.every([yes, yes]) == (True, True)
    assert S.every([yes, open_yes]) == (True, False)
    assert S.every([open_yes, no]) == (False, True)  # one decided counter-example decides
    assert S.every([]) == (False, False)
    assert S.share_at_least([yes, open_no], 0.5) == (True, True)
    assert S.share_at_least([no, no, open_yes], 0.5) == (False, True)
    assert S.share_at_least([no, open_yes, open_yes, open_no], 0.5) == (True, False)
    assert S.share_at_least([], 0.5) == (False, False)


# ------------------------------------------------------------------------------------ hand-made runs

# A world where the paper's claims hold: Finetune knows, Goal does not, methods forget the persons and
# wreck retention, events are half forgotten, scopes and world facts drop, joint is harder, BGD helps.
REFS = {
    "person": {"Finetune": {"P-Eff": 0, "P-Gen": 5, "P-Retain": 100, "P-Scope": 0.9, "P-WF": 90},
               "Goal": {"P-Eff": 100, "P-Gen": 100, "P-Retain": 100, "P-Scope": 0.9, "P-WF": 90}},
    "event": {"Finetune": {"E-Eff": 0.1, "E-Gen": 0.1, "E-Scope": 100}, "Goal": {"E-Eff": 1.0, "E-Gen": 1.0, "E-Scope": 100}},
    "joint": {"Finetune": {"P-Eff": 0, "E-Eff": 0.1}, "Goal": {"P-Eff": 100, "E-Eff": 1.0}},
}
METHOD = {"person": {"P-Eff": 100, "P-Retain": 10, "P-Scope": 0.5, "P-WF": 80},
          "event": {"E-Eff": 0.5, "E-Scope": 80}}
JOINT = {"GD": {"P-Eff": 50, "E-Eff": 0.3}, "GD + BGD": {"P-Eff": 60, "E-Eff": 0.4},
         "KL": {"P-Eff": 40, "E-Eff": 0.3}, "KL + BGD": {"P-Eff": 55, "E-Eff": 0.4}}


def make_runs(*, seeds=(0, 1, 2), budgets=(5, 40), change=None, jitter=0.01):
    """One row per (seed, setting, method, step); ``change(rec)`` edits a row in place (hand-made cases)."""
    rows = []
    for seed in seeds:
        j = jitter * (seed - 1)  # a small seed-to-seed spread: intervals tight but not degenerate
        for setting, refs in REFS.items():
            for name, cols in refs.items():
                rows.append({"seed": seed, "setting": setting, "method": name, "step": 0, **cols})
            listed = JOINT if setting == "joint" else {m: METHOD[setting] for m in C.V1_METHODS}
            for m, cols in listed.items():
                for b in budgets:
                    rows.append({"seed": seed, "setting": setting, "method": m, "step": b,
                                 **{c: v + j * (1 if v < 50 else -1) for c, v in cols.items()}})
    for rec in rows:
        if change:
            change(rec)
    return pd.DataFrame(rows)


def verdict(frame):
    return frame.iloc[0]["verdict"]


def unmet(frame):
    return [p["name"] for p in frame.iloc[0]["preconditions"] if not p["met"]]


def test_every_claim_holds_in_the_calibrated_world():
    out = C.all_claims(make_runs(), T1, T2, n_eval=N_EVAL, budgets=[5, 40])
    assert list(out.verdict) == ["supported"] * 7
    assert set(out.scale) == {"substitute"} and all(r.startswith("compendium.mllm_bench.pebench.claims.") for r in out.rule)
    names = [p["name"] for p in out.iloc[0]["preconditions"]]
    assert names[:2] == ["the Finetune model knows the forget targets", "the Goal model does not know them"]


def test_calibration_unmet_makes_every_claim_inconclusive():
    def ignorant_finetune(rec):  # the fine-tuned model never learnt the persons
        if rec["method"] == "Finetune" and rec["setting"] == "person":
            rec["P-Eff"] = 90
    out = C.all_claims(make_runs(change=ignorant_finetune), T1, T2, n_eval=N_EVAL, budgets=[5, 40])
    assert set(out.verdict) == {"inconclusive"}
    assert all("the Finetune model knows the forget targets" in unmet(out.iloc[[i]]) for i in range(len(out)))


def test_over_forgetting_refuted_by_a_method_that_keeps_the_persons():
    def po_keeps(rec):
        if rec["method"] == "PO" and rec["setting"] == "person":
            rec["P-Retain"] = 100.0
    runs = make_runs(change=po_keeps)
    assert verdict(C.claim_over_forgetting(runs, T1)) == "not supported"
    assert verdict(C.claim_ga_family(runs, T1)) == "supported"  # PO is not in the GA family


def test_over_forgetting_undecided_interval_is_inconclusive():
    def noisy_retain(rec):  # GD's retain straddles half of Goal's over seeds
        if rec["method"] == "GD" and rec["setting"] == "person" and rec["step"]:
            rec["P-Retain"] = {0: 20.0, 1: 80.0, 2: 45.0}[rec["seed"]]
    out = C.claim_over_forgetting(make_runs(change=noisy_retain), T1)
    assert verdict(out) == "inconclusive" and unmet(out) == ["the 95 % intervals over seeds decide every method"]


def test_events_harder_at_the_ceiling_is_inconclusive_not_refuted():
    def events_forgotten(rec):
        if rec["setting"] == "event" and rec["method"] not in ("Finetune", "Goal"):
            rec["E-Eff"] = 1.0
    out = C.claim_events_harder(make_runs(change=events_forgotten), T1, n_eval=N_EVAL)
    assert verdict(out) == "inconclusive"
    assert "event forgetting below the ceiling at the full budget" in unmet(out)


def test_events_harder_refuted_when_events_go_first():
    def persons_kept(rec):  # persons barely forgotten, events half forgotten: events are easier
        if rec["setting"] == "person" and rec["method"] in C.V1_METHODS:
            rec["P-Eff"] = 20.0 + rec["seed"]
    assert verdict(C.claim_events_harder(make_runs(change=persons_kept), T1, n_eval=N_EVAL)) == "not supported"


def test_one_seed_has_no_interval():
    out = C.claim_events_harder(make_runs(seeds=(0,)), T1, n_eval=N_EVAL)
    assert verdict(out) == "inconclusive" and "no interval" in out.iloc[0]["preconditions"][-1]["measured"]


def test_interference_refuted_when_no_scope_drops():
    def no_damage(rec):
        if rec["method"] in C.V1_METHODS:
            rec.update({k: REFS[rec["setting"]]["Finetune"][k] for k in ("P-Scope", "E-Scope") if k in rec})
    assert verdict(C.claim_interference(make_runs(change=no_damage), T1)) == "not supported"


def test_world_facts_small_drops_in_large_spread_are_inconclusive():
    def noisy(rec):  # drops of about 3 points against a seed spread of 20: the case
        if rec["setting"] == "person" and rec["method"] == "SIU":
            rec["P-WF"] = {0: 67.0, 1: 107.0, 2: 87.0}[rec["seed"]] - 3
    out = C.claim_world_facts(make_runs(change=noisy), T1)
    assert verdict(out) == "inconclusive" and "SIU drop" in out.iloc[0]["preconditions"][-1]["measured"]


def test_joint_harder_both_at_the_ceiling_is_inconclusive():
    def saturated(rec):
        if rec["method"] == "GD" and rec["setting"] in ("person", "joint"):
            rec["P-Eff"] = 100.0
    out = C.claim_joint_harder(make_runs(change=saturated), T1, T2, budget=5, n_eval=N_EVAL)
    assert verdict(out) == "inconclusive" and "below the ceiling" in unmet(out)[0]


def test_joint_harder_without_the_method_is_inconclusive():
    runs = make_runs()
    out = C.claim_joint_harder(runs[runs.method != "GD"], T1, T2, budget=5, n_eval=N_EVAL)
    assert verdict(out) == "inconclusive"


def test_bgd_refuted_when_it_lowers_efficacy():
    def bgd_hurts(rec):
        if rec["method"] == "KL + BGD":
            rec.update({"P-Eff": 20.0 + rec["seed"], "E-Eff": 0.1})
    assert verdict(C.claim_bgd(make_runs(change=bgd_hurts), T1, T2, budget=5, n_eval=N_EVAL)) == "not supported"


def test_bgd_with_every_base_at_the_ceiling_is_inconclusive():
    def saturated(rec):
        if rec["setting"] == "joint" and rec["method"] not in ("Finetune", "Goal"):
            rec.update({"P-Eff": 100.0, "E-Eff": 1.0})
    out = C.claim_bgd(make_runs(change=saturated), T1, T2, budget=5, n_eval=N_EVAL)
    assert verdict(out) == "inconclusive" and "below the ceiling" in unmet(out)[0]


def test_ceiling_is_one_image():
    assert C.ceiling("P-Eff", 32) == pytest.approx(96.875) and C.ceiling("E-Eff", 20) == pytest.approx(0.95)


def test_tables_of_the_runs():
    runs = make_runs()
    mean, std = B.final_table(runs, "person", ["P-Eff", "P-Retain"], ["GA", "GD"])
    assert list(mean.index) == ["Finetune", "GA", "GD", "Goal"] and mean.loc["GA", "P-Retain"] == pytest.approx(10.0)
    assert B.plus_minus(mean, std).loc["GA", "P-Retain"] == "10.0 ± 0.0"
    curves, goal = B.budget_curves(runs, "person", "P-Eff", "P-Retain", ["GA"])
    assert list(curves["GA"].index) == [0, 5, 40] and goal["P-Eff"] == 100
