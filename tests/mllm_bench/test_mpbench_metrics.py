"""MPBench metrics on hand-made cases; every expected value is worked out in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef

from compendium import published
from compendium.mllm_bench.mpbench import metrics as M


def test_first_error_and_threshold():
    assert M.first_error([1, 1, 0, 1]) == 2
    assert M.first_error([1, 1]) == -1
    assert M.first_error([]) == -1
    # a score of exactly the threshold is "incorrect" (strictly above counts as correct)
    assert M.step_predictions([0.5, 0.0, -0.1]) == [1, 0, 0]
    assert M.step_predictions([0.5, 0.0, -0.1], threshold=-0.2) == [1, 1, 1]


def test_step_correctness_by_hand():
    # A: labels 1 0 1, predictions 1 0 1 -> first error 1 = 1 (hit), 3/3 steps right
    # B: labels 1 1 1, predictions 1 0 1 -> first error 1 vs none (miss), 2/3 steps right
    scores = [[0.9, -0.5, 0.7], [0.2, -0.1, 0.3]]
    labels = [[1, 0, 1], [1, 1, 1]]
    r = M.step_correctness(scores, labels)
    assert r["FEI"] == pytest.approx(50.0)
    assert r["AEI"] == pytest.approx(100 * 5 / 6)
    assert r["SC"] == pytest.approx((50 + 100 * 5 / 6) / 2)
    # steps after the true first error dropped: A keeps 2 steps (2 right), B keeps 3 (2 right) -> 4/5
    r2 = M.step_correctness(scores, labels, aei_steps="until_first_error")
    assert r2["AEI"] == pytest.approx(80.0) and r2["steps"] == 5
    with pytest.raises(ValueError):
        M.step_correctness([[0.1]], [[1, 1]])


def test_fei_by_position():
    scores = [[1, -1, 1], [1, 1, 1], [-1, 1, 1]]
    labels = [[1, 0, 1], [1, 1, 0], [0, 1, 1]]
    # positions (1-based): 2 hit, 3 miss (predicted none), 1 hit
    assert M.fei_by_position(scores, labels) == {1: (100.0, 1), 2: (100.0, 1), 3: (0.0, 1)}


def test_aggregators():
    s = [0.5, -0.5, 1.0]
    assert M.aggregate(s, "min") == -0.5
    assert M.aggregate(s, "mean") == pytest.approx(1 / 3)
    # shifted: 0.75 * 0.25 * 1 = 0.1875 -> back to [-1, 1]: 2 * 0.1875 - 1
    assert M.aggregate(s, "prod") == pytest.approx(-0.625)
    assert M.aggregate(s, "last") == 1.0
    with pytest.raises(ValueError):
        M.aggregate(s, "max")


def test_best_of_n_splits_ties():
    assert M.best_of_n([0.1, 0.9, 0.3], [5, 7, 8], 7) == 1.0
    assert M.best_of_n([0.1, 0.9, 0.9], [5, 7, 8], 7) == 0.5  # tie between a right and a wrong answer
    assert M.best_of_n([0.0] * 4, [1, 2, 2, 2], 2) == 0.75  # a constant judge = a random pick


def test_majority_vote_rules():
    answers, gold = [3, 3, 5, 5, 5], 3
    scores = [1.0, 1.0, -1.0, -1.0, -0.8]
    # weighted: 3 gets 1 + 1 = 2; 5 gets 0 + 0 + 0.1 = 0.1 -> 3 wins
    assert M.majority_vote(answers, gold, scores, rule="weighted") == 1.0
    # plain vote: 5 has three votes
    assert M.majority_vote(answers, gold, rule="plain") == 0.0
    # filtered: only the two candidates scored above 0 vote
    assert M.majority_vote(answers, gold, scores, rule="filtered") == 1.0
    # nobody above the threshold: back to the plain vote
    assert M.majority_vote(answers, gold, [-1.0] * 5, rule="filtered") == 0.0
    # a two-way tie is split
    assert M.majority_vote([1, 2], 1, rule="plain") == 0.5
    with pytest.raises(ValueError):
        M.majority_vote(answers, gold, rule="weighted")


def test_answer_aggregation_two_questions():
    # q1: candidates (answers 4, 4, 9), step scores -> min: 0.5, -0.2, 0.8 -> BoN picks 9 (wrong);
    #     weighted vote: 4 -> 0.75 + 0.4 = 1.15, 9 -> 0.9 -> 4 (right)
    # q2: candidates (answers 1, 2), min: -0.5, 0.5 -> BoN picks 2 (right); vote: 1 -> 0.25, 2 -> 0.75 -> right
    step_scores = [[[0.5, 0.9], [-0.2, 0.3], [0.8, 1.0]], [[-0.5, 0.2], [0.5, 0.6]]]
    r = M.answer_aggregation(step_scores, [[4, 4, 9], [1, 2]], [4, 2])
    assert r["BoN"] == pytest.approx(50.0)
    assert r["MV"] == pytest.approx(100.0)
    assert r["AA"] == pytest.approx(75.0)


def test_process_search_by_hand_and_against_sklearn():
    # predictions 1 0 1 0 against 1 0 0 1: TP 1, FP 1, FN 1, TN 1 -> F1 2/4, MCC 0
    r = M.process_search([0.5, -0.5, 0.2, -0.3], [1, 0, 0, 1])
    assert r["F1"] == pytest.approx(50.0) and r["MCC"] == pytest.approx(0.0) and r["RS"] == pytest.approx(25.0)
    assert M.process_search([[0.9, -0.9], [-0.1, 0.4]], [[1, 0], [0, 1]])["MCC"] == pytest.approx(100.0)
    rng = np.random.default_rng(0)
    s, y = rng.uniform(-1, 1, 200), rng.integers(0, 2, 200)
    r = M.process_search(list(s), list(y))
    assert r["F1"] == pytest.approx(100 * f1_score(y, s > 0))
    assert r["MCC"] == pytest.approx(100 * matthews_corrcoef(y, s > 0))
    # a judge that calls everything correct: MCC 0 (as scikit-learn), F1 = 2 pi / (1 + pi)
    r = M.process_search([1.0] * 4, [1, 0, 0, 0])
    assert r["MCC"] == 0.0 and r["F1"] == pytest.approx(100 * 2 * 0.25 / 1.25)


def test_random_baselines_analytic():
    # ten steps: a uniform pick among 11 answers -> the paper's 9.1
    assert M.random_fei([[1] * 10], "uniform") == pytest.approx(100 / 11)
    assert round(M.random_fei([[1] * 10], "uniform"), 1) == 9.1
    # coin flips: first error at step 1 -> 1/2; no error in 2 steps -> 1/4
    assert M.random_fei([[0, 1, 1], [1, 1]], "coin") == pytest.approx(100 * (0.5 + 0.25) / 2)
    assert M.random_f1(0.5) == pytest.approx(50.0)
    assert M.random_f1(0.25) == pytest.approx(100 / 3)  # 1 correct + 3 wrong candidates
    base = M.random_baseline([[1] * 10], [[1, 2, 2, 3, 1]], [1], [[1, 0], [0, 1]])
    assert base.row["BoN"] == base.row["MV"] == pytest.approx(40.0)
    assert base.row["F1"] == pytest.approx(50.0) and base.row["MCC"] == 0.0


def test_overall_reproduces_the_papers_random_row():
    row = M.paradigm_scores({"FEI": 9.1, "AEI": 50.0, "SC": 29.55}, {"BoN": 40.9, "MV": 40.9, "AA": 40.9},
                            {"F1": 50.0, "MCC": 0.0, "RS": 25.0})
    assert round(row["Overall"], 1) == 31.8


def test_published_table2_rows_are_consistent_except_internvl38b():
    """The transcription check: every row's averages agree to 0.1 (rounding), except the row the
    research note flags (InternVL2.5-38B), which must disagree."""
    t = published.load("mpbench").table("table2").wide()
    assert t.shape == (13, 10)
    bad = []
    for row, v in t.iterrows():
        ok = (abs((v["FEI"] + v["AEI"]) / 2 - v["SC"]) <= 0.1 + 1e-6 and abs((v["BoN"] + v["MV"]) / 2 - v["AA"]) <= 0.1 + 1e-6
              and abs((v["F1"] + v["MCC"]) / 2 - v["RS"]) <= 0.1 + 1e-6
              and abs((v["SC"] + v["AA"] + v["RS"]) / 3 - v["Overall"]) <= 0.1 + 1e-6)
        if not ok:
            bad.append(row)
    assert bad == ["InternVL2.5-38B"]


def test_monte_carlo_random_judge_matches_analytic_where_it_should():
    from compendium.mllm_bench.mpbench import bench, judges

    b = bench.make_benchmark(200, 60, 300, seed=5)
    run = bench.run_judge(judges.RandomJudge(1), b)
    row = bench.table_row(run)
    analytic = M.random_baseline([i.labels for i in b.sc], [i.answers for i in b.aa], [i.gold for i in b.aa],
                                 [i.labels for i in b.rs]).row
    assert abs(row["AEI"] - 50) < 4 and abs(row["MCC"]) < 12 and abs(row["F1"] - 50) < 7
    assert abs(row["BoN"] - analytic["BoN"]) < 12
    # the random-weighted vote profits from the majority: it beats a random pick (the MV ambiguity)
    assert row["MV"] > analytic["MV"] + 5
    assert not math.isnan(row["Overall"])


def test_table_row_domains_and_bootstrap_by_hand():
    """A hand-made JudgeRun: two solutions (one per domain), one question, two search contexts."""
    from compendium.mllm_bench.mpbench import bench

    run = bench.JudgeRun(
        "hand", sc_scores=[[0.5, -0.5], [0.5, 0.5]], sc_labels=[[1, 0], [1, 0]],
        aa_scores=[[[0.9], [-0.9]]], aa_answers=[[3, 4]], aa_gold=[3],
        rs_scores=[[0.5, -0.5], [0.5, 0.5]], rs_labels=[[1, 0], [0, 1]],
        domains={"sc": ["easy", "hard"], "aa": ["easy"], "rs": ["easy", "hard"]})
    # easy: FEI 1/1, AEI 2/2; BoN and MV right; search calls 1 0 vs 1 0 -> F1 100, MCC 100
    easy = bench.table_row(run, domain="easy")
    assert (easy["FEI"], easy["AEI"], easy["BoN"], easy["MV"], easy["F1"], easy["MCC"]) == (100, 100, 100, 100, 100, 100)
    assert easy["Overall"] == 100
    # all items: FEI 1/2 (the second misses the error at step 2), AEI 3/4; search calls 1 0 1 1 vs 1 0 0 1:
    # TP 2, FP 1, FN 0, TN 1 -> F1 4/5, MCC (2*1 - 1*0) / sqrt(3 * 2 * 2 * 1) = 2 / sqrt(12)
    row = bench.table_row(run)
    assert row["FEI"] == 50 and row["AEI"] == 75 and row["F1"] == pytest.approx(80)
    assert row["MCC"] == pytest.approx(100 * 2 / math.sqrt(12))
    # the bootstrap of a column that every resample agrees on has no spread
    boot = bench.bootstrap_row(run, n_boot=50, seed=0)
    assert boot.loc["BoN", "mean"] == 100 and boot.loc["BoN", "std"] == 0
    assert boot.loc["FEI", "lo"] <= row["FEI"] <= boot.loc["FEI", "hi"] and boot.loc["FEI", "std"] > 0
