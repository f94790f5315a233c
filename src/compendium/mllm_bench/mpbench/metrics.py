"""MPBench's three paradigms as metrics on per-step / per-candidate scores (arXiv 2503.12505, Table 2).

A process reward model (PRM) or a prompted judge returns a score in [-1, 1] for every step of a
solution (or for every candidate next step). The paper's Table 2 reports:

=====================  ==============================================================  ======
paradigm               metric                                                          random
=====================  ==============================================================  ======
Step Correctness       FEI: the predicted *first* erroneous step (or "none") is right   9.1
                       AEI: step-level accuracy of correct/incorrect labels            50.0
Answer Aggregation     BoN: final-answer accuracy of the best-scored candidate         40.9
                       MV: PRM-assisted majority vote over the final answers           40.9
Reasoning Proc. Search F1 and MCC of the correct/incorrect call on candidate steps     50 / 0
Overall                mean of the three paradigm scores (each the mean of its two)    31.8
=====================  ==============================================================  ======

No evaluation code is public, so these definitions are **reconstructed** from the table header, the
random row and the prompt captions (``../shared/research/mllm_benchmarks.md`` section 2.2-2.3). Every
reconstructed choice is an argument: the step threshold (a step is "correct" when its score is
``> threshold``, default 0), the solution aggregator (min / mean / prod / last), the majority-vote
variant, whether AEI counts steps after the first error, and which random baseline is printed.

All functions return percentages (MCC x 100), as the paper prints them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "first_error",
    "step_predictions",
    "step_correctness",
    "aggregate",
    "best_of_n",
    "majority_vote",
    "answer_aggregation",
    "process_search",
    "overall",
    "paradigm_scores",
    "random_fei",
    "random_f1",
    "random_baseline",
    "fei_by_position",
    "AGGREGATORS",
    "MV_RULES",
]

AGGREGATORS = ("min", "mean", "prod", "last")
MV_RULES = ("weighted", "filtered", "plain")


def first_error(labels: Sequence[int]) -> int:
    """0-based index of the first incorrect step (label 0), or -1 when every step is correct."""
    for i, y in enumerate(labels):
        if not int(y):
            return i
    return -1


def step_predictions(scores: Sequence[float], threshold: float = 0.0) -> list[int]:
    """1 (correct) where the score is strictly above ``threshold``, else 0 (reconstructed rule)."""
    return [int(float(s) > threshold) for s in scores]


def step_correctness(
    scores: Sequence[Sequence[float]],
    labels: Sequence[Sequence[int]],
    *,
    threshold: float = 0.0,
    aei_steps: str = "all",
) -> dict[str, float]:
    """FEI, AEI and their mean (SC) over a set of solutions.

    Args:
        scores: per solution, one score per step.
        labels: per solution, 1 for a correct step, 0 for an incorrect one.
        threshold: a step is predicted correct when its score is above it.
        aei_steps: ``"all"`` (every labelled step counts; our default) or ``"until_first_error"``
            (steps after the true first error are ignored, as ProcessBench-style data leaves them
            unlabelled).

    FEI counts a solution as right when the predicted first error (the first step at or below the
    threshold, or "none") equals the labelled one. AEI is the accuracy of the step labels, pooled
    over all steps (micro average).
    """
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} score lists for {len(labels)} label lists")
    if aei_steps not in ("all", "until_first_error"):
        raise ValueError("aei_steps must be 'all' or 'until_first_error'")
    fei_hits, step_hits, step_total = 0, 0, 0
    for s, y in zip(scores, labels):
        if len(s) != len(y):
            raise ValueError(f"a solution has {len(y)} labelled steps but {len(s)} scores")
        pred = step_predictions(s, threshold)
        fei_hits += first_error(pred) == first_error(y)
        stop = len(y) if aei_steps == "all" or first_error(y) < 0 else first_error(y) + 1
        step_hits += sum(int(p == int(t)) for p, t in zip(pred[:stop], y[:stop]))
        step_total += stop
    n = len(labels)
    fei = 100.0 * fei_hits / n if n else math.nan
    aei = 100.0 * step_hits / step_total if step_total else math.nan
    return {"FEI": fei, "AEI": aei, "SC": (fei + aei) / 2, "n": n, "steps": step_total}


def fei_by_position(
    scores: Sequence[Sequence[float]], labels: Sequence[Sequence[int]], *, threshold: float = 0.0
) -> dict[int, tuple[float, int]]:
    """FEI split by the true first-error position (1-based; 0 = no error): {position: (FEI %, n)}
    (the paper's Fig. 4 analysis)."""
    groups: dict[int, list[int]] = {}
    for s, y in zip(scores, labels):
        k = first_error(y) + 1
        groups.setdefault(k, []).append(int(first_error(step_predictions(s, threshold)) == first_error(y)))
    return {k: (100.0 * float(np.mean(v)), len(v)) for k, v in sorted(groups.items())}


def aggregate(step_scores: Sequence[float], how: str = "min") -> float:
    """One solution score from its step scores (the paper does not say which; reconstructed).

    ``min`` and ``mean`` work on the raw scores; ``prod`` multiplies the scores shifted to [0, 1]
    ((s + 1) / 2, as PRMBench's best-of-N code does) and maps the product back to [-1, 1];
    ``last`` takes the last step's score.
    """
    s = np.asarray(step_scores, dtype=float)
    if s.size == 0:
        raise ValueError("a solution needs at least one step score")
    if how == "min":
        return float(s.min())
    if how == "mean":
        return float(s.mean())
    if how == "prod":
        return float(2.0 * np.prod((np.clip(s, -1, 1) + 1.0) / 2.0) - 1.0)
    if how == "last":
        return float(s[-1])
    raise ValueError(f"aggregator must be one of {AGGREGATORS}, got {how!r}")


def _expected_hit(candidates: Sequence[int], answers: Sequence, gold) -> float:
    """Expected correctness when one of ``candidates`` (indices) is picked uniformly: ties split exactly."""
    return float(np.mean([answers[i] == gold for i in candidates]))


def best_of_n(solution_scores: Sequence[float], answers: Sequence, gold) -> float:
    """Best-of-N for one question: the highest-scored candidate's answer is right (1) or not (0).

    Ties are broken uniformly at random and counted in expectation, so a judge that gives every
    candidate the same score gets exactly the random-pick accuracy.
    """
    s = np.asarray(solution_scores, dtype=float)
    best = np.flatnonzero(np.isclose(s, s.max(), rtol=0, atol=1e-12))
    return _expected_hit(best, answers, gold)


def majority_vote(
    answers: Sequence,
    gold,
    solution_scores: Sequence[float] | None = None,
    *,
    rule: str = "weighted",
    threshold: float = 0.0,
) -> float:
    """PRM-assisted majority vote for one question (the rule is reconstructed; see ``MV_RULES``).

    - ``weighted``: each candidate votes for its final answer with weight (score + 1) / 2; the answer
      with the largest total wins.
    - ``filtered``: a plain vote among the candidates whose score is above ``threshold`` (all
      candidates when none is).
    - ``plain``: a plain vote, no PRM (self-consistency), for reference.

    Ties between answers are split exactly (expected correctness).
    """
    if rule not in MV_RULES:
        raise ValueError(f"rule must be one of {MV_RULES}, got {rule!r}")
    n = len(answers)
    if rule != "plain" and solution_scores is None:
        raise ValueError(f"rule {rule!r} needs solution scores")
    if rule == "plain":
        weights = np.ones(n)
    elif rule == "weighted":
        weights = (np.clip(np.asarray(solution_scores, dtype=float), -1, 1) + 1.0) / 2.0
    else:
        keep = np.asarray(solution_scores, dtype=float) > threshold
        weights = keep.astype(float) if keep.any() else np.ones(n)
    totals: dict = {}
    for a, w in zip(answers, weights):
        totals[a] = totals.get(a, 0.0) + float(w)
    if max(totals.values()) <= 0:  # every weight zero: fall back to a plain vote
        return majority_vote(answers, gold, rule="plain")
    top = max(totals.values())
    winners = [a for a, t in totals.items() if abs(t - top) <= 1e-12]
    return float(np.mean([a == gold for a in winners]))


def answer_aggregation(
    step_scores: Sequence[Sequence[Sequence[float]]],
    answers: Sequence[Sequence],
    gold: Sequence,
    *,
    aggregator: str = "min",
    mv_rule: str = "weighted",
    threshold: float = 0.0,
) -> dict[str, float]:
    """BoN, MV and their mean (AA) over questions.

    Args:
        step_scores: per question, per candidate, the step scores.
        answers: per question, each candidate's final answer.
        gold: per question, the right answer.
    """
    bon, mv = [], []
    for q_scores, q_answers, q_gold in zip(step_scores, answers, gold):
        sol = [aggregate(s, aggregator) for s in q_scores]
        bon.append(best_of_n(sol, q_answers, q_gold))
        mv.append(majority_vote(q_answers, q_gold, sol, rule=mv_rule, threshold=threshold))
    b, m = 100.0 * float(np.mean(bon)), 100.0 * float(np.mean(mv))
    return {"BoN": b, "MV": m, "AA": (b + m) / 2, "n": len(gold)}


def _f1_mcc(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """F1 of the positive class (a correct step) and the Matthews correlation, from the confusion
    counts (MCC is 0 when a row or column of the table is empty, as scikit-learn defines it)."""
    tp = float(np.sum((pred == 1) & (true == 1)))
    fp = float(np.sum((pred == 1) & (true == 0)))
    fn = float(np.sum((pred == 0) & (true == 1)))
    tn = float(np.sum((pred == 0) & (true == 0)))
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = (tp * tn - fp * fn) / denom if denom else 0.0
    return f1, mcc


def process_search(
    scores: Sequence[float] | Sequence[Sequence[float]],
    labels: Sequence[int] | Sequence[Sequence[int]],
    *,
    threshold: float = 0.0,
) -> dict[str, float]:
    """F1 (positive class: a correct candidate step) and MCC of the correct/incorrect call, and their
    mean (RS). Accepts flat lists or per-context lists of candidates (pooled)."""
    flat_s = np.asarray([x for group in scores for x in (group if isinstance(group, (list, tuple, np.ndarray)) else [group])], dtype=float)
    flat_y = np.asarray([x for group in labels for x in (group if isinstance(group, (list, tuple, np.ndarray)) else [group])], dtype=int)
    if flat_s.shape != flat_y.shape:
        raise ValueError(f"{flat_s.size} scores for {flat_y.size} labels")
    f1, mcc = _f1_mcc((flat_s > threshold).astype(int), flat_y)
    return {"F1": 100.0 * f1, "MCC": 100.0 * mcc, "RS": 100.0 * (f1 + mcc) / 2, "n": int(flat_y.size),
            "positive_rate": 100.0 * float(flat_y.mean()) if flat_y.size else math.nan}


def overall(sc: float, aa: float, rs: float) -> float:
    """The paper's Overall column: the mean of the three paradigm scores."""
    return (sc + aa + rs) / 3.0


def paradigm_scores(sc: dict, aa: dict, rs: dict) -> dict[str, float]:
    """One Table-2 row from the three paradigm dicts: Overall, FEI, AEI, SC, BoN, MV, AA, F1, MCC, RS."""
    return {
        "Overall": overall(sc["SC"], aa["AA"], rs["RS"]),
        "FEI": sc["FEI"], "AEI": sc["AEI"], "SC": sc["SC"],
        "BoN": aa["BoN"], "MV": aa["MV"], "AA": aa["AA"],
        "F1": rs["F1"], "MCC": rs["MCC"], "RS": rs["RS"],
    }


# ---------------------------------------------------------------------------- random baselines


def random_fei(labels: Sequence[Sequence[int]], rule: str = "uniform") -> float:
    """FEI of a random judge, analytically (the paper's 9.1 does not say which rule it used).

    - ``uniform``: the judge names one of the n steps or "none" uniformly: 1 / (n + 1) per solution
      (9.1 is exactly 1/11, i.e. ten steps).
    - ``coin``: every step is called correct with probability 1/2 independently; the first predicted
      error is right with probability 0.5^k (k = 1-based first error) or 0.5^n (no error).
    """
    vals = []
    for y in labels:
        n, k = len(y), first_error(y)
        if rule == "uniform":
            vals.append(1.0 / (n + 1))
        elif rule == "coin":
            vals.append(0.5 ** (k + 1) if k >= 0 else 0.5 ** n)
        else:
            raise ValueError("rule must be 'uniform' or 'coin'")
    return 100.0 * float(np.mean(vals))


def random_f1(positive_rate: float) -> float:
    """F1 (%) of coin-flip predictions when a fraction ``positive_rate`` of candidates is correct:
    precision = pi, recall = 1/2, so F1 = pi / (pi + 1/2). It is 50 only for balanced candidates."""
    pi = float(positive_rate)
    return 100.0 * pi / (pi + 0.5) if pi > 0 else 0.0


@dataclass(frozen=True)
class RandomBaseline:
    """The analytic random row, with the rule behind each number."""

    row: dict[str, float]
    rules: dict[str, str]


def random_baseline(
    sc_labels: Sequence[Sequence[int]],
    aa_answers: Sequence[Sequence],
    aa_gold: Sequence,
    rs_labels: Sequence[int] | Sequence[Sequence[int]],
    *,
    fei_rule: str = "uniform",
) -> RandomBaseline:
    """The random row computed analytically, as the paper appears to (its BoN = MV = 40.9 is the
    expected accuracy of picking one candidate at random, for both columns).

    BoN and MV are both the mean fraction of correct candidates; AEI is 50; F1 is pi / (pi + 1/2);
    MCC is 0. A Monte-Carlo judge with uniform random scores gives a *different* MV (a random-weighted
    vote still profits from the majority): compute that one by scoring with a random judge.
    """
    fei = random_fei(sc_labels, fei_rule)
    pick = 100.0 * float(np.mean([np.mean([a == g for a in ans]) for ans, g in zip(aa_answers, aa_gold)]))
    flat = [x for group in rs_labels for x in (group if isinstance(group, (list, tuple, np.ndarray)) else [group])]
    f1 = random_f1(float(np.mean(flat)))
    sc = {"FEI": fei, "AEI": 50.0, "SC": (fei + 50.0) / 2}
    aa = {"BoN": pick, "MV": pick, "AA": pick}
    rs = {"F1": f1, "MCC": 0.0, "RS": f1 / 2}
    rules = {
        "FEI": f"{fei_rule} (see random_fei)", "AEI": "coin flip per step",
        "BoN": "expected accuracy of a random pick", "MV": "same as BoN (the paper's row repeats 40.9)",
        "F1": "coin flip: pi / (pi + 1/2)", "MCC": "0 for independent guesses",
    }
    return RandomBaseline(paradigm_scores(sc, aa, rs), rules)
