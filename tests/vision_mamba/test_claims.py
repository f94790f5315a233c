"""The DyVM and R-MeeTo claim rules and their preconditions, on hand-made inputs: every branch,
inconclusive included."""
from __future__ import annotations

import math

import pytest

from compendium import verdicts
from compendium.verdicts import Precondition
from compendium.vision_mamba.dyvm import claims as dc
from compendium.vision_mamba.rmeeto import claims as rc
from compendium.vision_mamba.preconditions import above_chance, best_position, binomial_se, converged
from compendium.vision_mamba.verdict_tables import split_table
from compendium.vision_mamba.vim import VIM_CONFIGS

MET = Precondition("dense converged", "best before the last 10 %", "epoch 2 of 4", True)
UNMET = Precondition("dense converged", "best before the last 10 %", "epoch 4 of 4", False)
WHY = "tiny Vim on CIFAR-10"


def _curve(accs, key="step", every=100):
    return [{key: every * (i + 1), "acc": a} for i, a in enumerate(accs)]


# ------------------------------------------------------------------ preconditions


def test_binomial_se_by_hand():
    assert binomial_se(50.0, 100) == pytest.approx(5.0)          # 100 * sqrt(0.25 / 100)
    assert binomial_se(100.0, 100) == pytest.approx(0.1)         # floored p(1-p) = 1e-4


def test_converged_branches():
    still_rising = converged(_curve([40, 50, 55, 58]), "dense")
    assert not still_rising.met and "step 400 of 400" in still_rising.measured
    plateau = converged(_curve([40, 58, 58, 57]), "dense")        # ties count from the plateau's start
    assert plateau.met and "step 200" in plateau.measured
    assert best_position(_curve([40, 58, 58]))["step"] == 200
    # 10 evaluations, best at the 9th of 10: 900 <= 0.9 * 1000, not late
    assert converged(_curve([1, 2, 3, 4, 5, 6, 7, 8, 9, 8.5]), "x").met
    # an explicit budget longer than the records: best at 400 of 1000 is early
    assert converged(_curve([40, 50, 55, 58]), "x", budget=1000).met
    one = converged(_curve([37.8]), "DyVM fine-tuning")
    assert not one.met and "one evaluation only" in one.measured and one.name == "DyVM fine-tuning converged"
    none = converged([], "dense")
    assert not none.met and "no held-out curve" in none.measured
    # R-MeeTo histories: record 0 (before re-training) is not a point of the curve
    epochs = [{"epoch": 0, "acc": 90.0}, {"epoch": 1, "acc": 50}, {"epoch": 2, "acc": 60}, {"epoch": 3, "acc": 55}]
    assert converged(epochs, "re-training").met


def test_above_chance_branches():
    assert above_chance(58.0, 2000, "dense").met
    floor = above_chance(10.5, 2000, "dense")                     # 2 SE of 10 % on 2,000 images = 1.34
    assert not floor.met and "10 %" in floor.required


# ------------------------------------------------------------------ DyVM


def test_flops_reduction_range_brackets_the_formula():
    cfg = VIM_CONFIGS["small"]
    r = dc.flops_reduction_range(cfg, 0.7)
    assert r["low"] == pytest.approx(34.10, abs=0.01) and r["high"] == pytest.approx(36.19, abs=0.01)
    assert r["mid"] == pytest.approx((r["low"] + r["high"]) / 2)
    assert r["tolerance"].value == pytest.approx((r["high"] - r["low"]) / 2)
    assert "not printed" in r["tolerance"].source and "0.8" in r["tolerance"].source
    # a degenerate range (beta known) has no band
    assert dc.flops_reduction_range(cfg, 0.7, (0.9, 0.9))["tolerance"].value == 0


def test_training_preconditions():
    pres = dc.training_preconditions(_curve([40, 50, 58, 57]), _curve([37.8]), 58.0, 10000)
    assert [p.met for p in pres] == [True, False, True]


@pytest.mark.parametrize("reduction, drop, pres, verdict", [
    (35.0, 1.0, [MET], "supported"),
    (35.0, 5.0, [MET], "not supported"),                         # drop above 2 x 1.7
    (20.0, 1.0, [MET], "not supported"),                         # not a third of the FLOPs
    (35.0, 1.0, [MET, UNMET], "inconclusive"),
])
def test_claim_flops_for_accuracy(reduction, drop, pres, verdict):
    got = dc.claim_flops_for_accuracy(reduction, 60.0, 60.0 - drop, 10000, 1.7, preconditions=pres, scale_reason=WHY)
    assert got["verdict"][0] == verdict and got["scale"][0] == "reduced"
    assert got["rule"][0] == "compendium.vision_mamba.dyvm.claims.claim_flops_for_accuracy"


@pytest.mark.parametrize("beta, pres, verdict", [
    (0.85, [MET], "supported"), (1.0, [MET], "not supported"), (0.85, [UNMET], "inconclusive")])
def test_claim_block_selection(beta, pres, verdict):
    got = dc.claim_block_selection(beta, 0.8, preconditions=pres, scale_reason=WHY, train_ratio=0.8)
    assert got["verdict"][0] == verdict and "80 % on the last training batch" in got["reason"][0]


@pytest.mark.parametrize("dense, pruned, pres, verdict", [
    ([1.3, 1.3, 1.3], [1.0, 1.0, 1.0], [MET], "supported"),
    ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [MET], "not supported"),
    ([1.3, 1.0, 1.3], [1.0, 1.0, 1.0], [MET], "inconclusive"),   # rounds disagree: noise decides
    ([1.3, 1.3], [1.0, 1.0], [MET], "inconclusive"),             # too few rounds
    ([1.3, 1.3, 1.3], [1.0, 1.0, 1.0], [UNMET], "inconclusive"),
    ([], [], [MET], "inconclusive"),                              # nothing timed
])
def test_claim_wallclock(dense, pruned, pres, verdict):
    got = dc.claim_wallclock(dense, pruned, 1.5, setting="CPU", preconditions=pres, scale_reason=WHY)
    assert got["verdict"][0] == verdict
    verdicts.validate(got.to_dict("records")[0])


def test_reading_follows_the_numbers():
    common = dict(paper_drop=1.7, dyvm_epochs=0.5, dyvm_lr=2e-4, tokens_left=22, tokens_total=65, beta_target=0.8,
                  flops_ratio=1.5)
    bad = dc.reading(dense_acc=58.0, dyvm_acc=38.0, beta_inference=1.0, beta_train=0.8, naive_acc=45.0, speedup=1.2,
                     **common)
    text = " ".join(bad)
    assert "20.00 points lost" in text and "far too short" in text and "logits near 1.4" in text
    assert "Naive masking (45.00 %) does better" in text and "stays below the FLOPs ratio" in text
    good = " ".join(dc.reading(dense_acc=58.0, dyvm_acc=57.0, beta_inference=0.82, beta_train=0.8, naive_acc=30.0,
                               speedup=1.6, **common))
    assert "far too short" not in good and "82 % of the scan directions run" in good
    assert "Naive masking of the same model gives 30.00" in good and "stays below" not in good
    no_train = " ".join(dc.reading(dense_acc=58.0, dyvm_acc=57.0, beta_inference=0.82, beta_train=math.nan,
                                   naive_acc=30.0, speedup=1.6, **common))
    assert "(target 80 %)." in no_train


# ------------------------------------------------------------------ R-MeeTo


def test_difference_test_branches():
    # 2 SE of two accuracies near 50 % on 2,000 images: 2 * sqrt(2) * 1.118 = 3.16
    assert rc.difference_test(60.0, 50.0, 2000)[0] is True
    assert rc.difference_test(50.0, 60.0, 2000)[0] is False
    holds, diff, band = rc.difference_test(51.0, 50.0, 2000)
    assert holds is None and diff == pytest.approx(1.0) and band == pytest.approx(3.16, abs=0.01)


@pytest.mark.parametrize("a, b, pres, verdict", [
    (60.0, 50.0, [MET], "supported"), (50.0, 60.0, [MET], "not supported"), (51.0, 50.0, [MET], "inconclusive"),
    (60.0, 50.0, [UNMET], "inconclusive")])
def test_claim_ordering(a, b, pres, verdict):
    got = rc.claim_ordering(a, b, 2000, "merge beats prune", "r 12", preconditions=pres, scale_reason=WHY,
                            source="Table 1")
    assert got["verdict"][0] == verdict and got["rule"][0].endswith("rmeeto.claims.claim_ordering")


def test_recovery_by_hand():
    r = rc.recovery(dense=60.0, merged_before=40.0, merged_after=58.0, control_after=64.0, n=2000)
    assert r["gap_before"] == 20.0 and r["gap_after"] == 6.0 and r["recovered"] == 14.0
    assert r["share"] == pytest.approx(0.7) and r["naive_share"] == pytest.approx(0.9)
    assert r["control_gain"] == 4.0


@pytest.mark.parametrize("merged_after, control_after, merged_before, pres, verdict", [
    (58.0, 64.0, 40.0, [MET], "supported"),            # the gap shrinks from 20 to 6 points
    (40.0, 70.0, 40.0, [MET], "not supported"),        # the control gains 10, the merged model nothing: gap 30
    (50.0, 71.0, 40.0, [MET], "inconclusive"),         # gap 20 -> 21: within the band
    (58.0, 64.0, 40.0, [UNMET], "inconclusive"),
    (60.0, 60.0, 59.5, [MET], "inconclusive"),         # merging cost nothing measurable: nothing to recover
])
def test_claim_recovery(merged_after, control_after, merged_before, pres, verdict):
    got = rc.claim_recovery(60.0, merged_before, merged_after, control_after, 2000, epochs=3, preconditions=pres,
                            scale_reason=WHY)
    assert got["verdict"][0] == verdict
    names = [p["name"] for p in got["preconditions"][0]]
    assert names[-1] == "merging costs accuracy"
    if merged_before == 59.5:
        assert got["preconditions"][0][-1]["met"] is False


def test_split_table():
    from compendium import published

    abstract = published.load("rmeeto").table("abstract")
    inside, outside = split_table(abstract, [("Vim-S", "speed-up (x)")])
    assert [(c["row"], c["column"]) for c in inside.cells] == [("Vim-S", "speed-up (x)")]
    assert len(outside.cells) == len(abstract.cells) - 1 and inside.source == abstract.source
