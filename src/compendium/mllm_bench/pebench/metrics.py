"""PEBench's metrics: efficacy, generality, retain, scope, real and world fact (arXiv 2503.12545v1, Table 1).

Table 1's header says which score each column uses:

=================  ==========  ==========  ==========  =========  =========  ==========
setting            Efficacy    Generality  Retain      Scope      Real       World Fact
=================  ==========  ==========  ==========  =========  =========  ==========
person unlearning  Precision   Precision   Precision   ROUGE-L    Precision  POPE
event unlearning   G-Eval      G-Eval      G-Eval      Precision  ROUGE-L    POPE
=================  ==========  ==========  ==========  =========  =========  ==========

What each column measures is **reconstructed** from the numbers (research note section 1.3):
efficacy is forgetting on the forget set's training images (person: 100 - name precision), generality
the same on unseen images of the forget target, retain the non-target persons/events, scope the
*other* concept on the forget images (cross-concept interference), real a data family outside the
benchmark, world fact general utility (POPE accuracy). Precision columns are in %, G-Eval and ROUGE-L
in [0, 1].

**Substitutions.** G-Eval is GPT-4 as a judge and cannot run offline; we score event descriptions by
*keyword recall* (the share of the event's keywords that appear in the answer) and report ROUGE-L
beside it. Name "precision" is the exact-match rate of the full name (our reading). World Fact is
POPE accuracy in the paper (:func:`pope_accuracy`, for real POPE data); the scaled-down benchmark
uses :func:`object_f1` on its own object questions.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

import numpy as np

__all__ = [
    "normalise",
    "name_precision",
    "keyword_recall",
    "rouge_l",
    "pope_accuracy",
    "object_f1",
    "person_efficacy",
    "event_efficacy",
]


def normalise(text: str) -> str:
    """Lower-case, punctuation to spaces, single spaces."""
    return " ".join(re.sub(r"[^\w\s]", " ", str(text).lower()).split())


def name_precision(predictions: Sequence[str], names: Sequence[str], *, rule: str = "exact") -> float:
    """% of answers that give the right full name: ``exact`` (the answer is the name) or ``contains``
    (the name appears in the answer, for chatty models)."""
    if len(predictions) != len(names):
        raise ValueError(f"{len(predictions)} answers for {len(names)} names")
    if not names:
        return float("nan")
    if rule == "exact":
        hits = [normalise(p) == normalise(n) for p, n in zip(predictions, names)]
    elif rule == "contains":
        hits = [f" {normalise(n)} " in f" {normalise(p)} " for p, n in zip(predictions, names)]
    else:
        raise ValueError("rule must be 'exact' or 'contains'")
    return 100.0 * float(np.mean(hits))


def keyword_recall(prediction: str, keywords: Sequence[str]) -> float:
    """The share of ``keywords`` that occur as words in the answer (our offline stand-in for G-Eval)."""
    words = set(normalise(prediction).split())
    kws = [normalise(k) for k in keywords]
    return float(np.mean([all(w in words for w in k.split()) for k in kws])) if kws else float("nan")


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (``rouge-score`` 0.1.2, no stemming)."""
    return float(_scorer().score(reference, prediction)["rougeL"].fmeasure)


def pope_accuracy(predictions: Sequence[str], answers: Sequence[str]) -> float:
    """% of yes/no answers that match (POPE accuracy); an answer counts as "yes" when its first word
    is "yes", as "no" when it is "no", and as wrong otherwise."""
    def first(t):
        w = normalise(t).split()
        return w[0] if w else ""

    return 100.0 * float(np.mean([first(p) == normalise(a) for p, a in zip(predictions, answers)]))


def object_f1(predictions: Sequence[str], answers: Sequence[str]) -> float:
    """% F1 of the objects named ("red circle and green square"), pooled over answers: every named
    object that is not in the image is a false positive (a hallucination), every missed one a false
    negative. The scaled-down benchmark's world-fact score (a POPE-like probe)."""
    def objects(text):
        words = normalise(text).split()
        return {(a, b) for a, b in zip(words, words[1:]) if a not in ("and",) and b not in ("and",)} & _OBJECTS

    tp = fp = fn = 0
    for p, a in zip(predictions, answers):
        got, want = objects(p), objects(a)
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    return 100.0 * 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else float("nan")


def _object_pairs():
    from .scenes import COLOURS, SHAPES

    return {(c, s) for c in COLOURS for s in SHAPES}


_OBJECTS = _object_pairs()


def person_efficacy(predictions: Sequence[str], names: Sequence[str], **kw) -> float:
    """Person efficacy / generality: 100 - name precision (%)."""
    return 100.0 - name_precision(predictions, names, **kw)


def event_efficacy(predictions: Sequence[str], keyword_lists: Sequence[Sequence[str]]) -> float:
    """Event efficacy / generality: 1 - mean keyword recall, in [0, 1] (G-Eval's scale)."""
    return 1.0 - float(np.mean([keyword_recall(p, k) for p, k in zip(predictions, keyword_lists)]))
