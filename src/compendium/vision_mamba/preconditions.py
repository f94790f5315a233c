"""Preconditions of the Vision Mamba chapters' small-scale claims (the verdict contract, issue 13).

A claim on the tiny Vim can read *supported* / *not supported* only when the runs it rests on have
finished learning and its accuracies are off the floor; these functions measure that on the runs'
recorded histories and return :class:`~compendium.verdicts.Precondition` objects.

Histories are lists of records, one per evaluation, each with the held-out accuracy ``acc`` (%) and its
position in the run: ``step`` (``train.fit_vim`` / ``dyvm.train.fit_dyvm``) or ``epoch`` (``rmeeto.train.retrain``,
whose record 0 is the model before re-training).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from ..verdicts import Precondition

__all__ = ["LATE_FRACTION", "SE_MULTIPLIER", "CIFAR10_CHANCE", "binomial_se", "best_position", "converged",
           "above_chance"]

#: The contract's convergence rule (issue 13): a run has converged when its best held-out evaluation is
#: not in the last 10 % of its budget.
LATE_FRACTION = 0.1
#: Differences count when they exceed this many (binomial) standard errors: about a 95 % interval.
SE_MULTIPLIER = 2.0
#: The floor of top-1 accuracy on CIFAR-10's 10 balanced classes (%).
CIFAR10_CHANCE = 10.0


def binomial_se(acc: float, n: int) -> float:
    """Standard error (points) of an accuracy ``acc`` (%) measured on ``n`` images; p(1-p) is floored
    at 1e-4 so that 0 % and 100 % keep a non-zero error."""
    p = acc / 100.0
    return 100.0 * math.sqrt(max(p * (1.0 - p), 1e-4) / n)


def _position(rec: dict) -> float:
    return float(rec["step"] if rec.get("step") is not None else rec["epoch"])


def best_position(history: Sequence[dict], metric: str = "acc") -> Optional[dict]:
    """The record with the best ``metric`` (the first one on ties: a plateau counts from its start)."""
    recs = [r for r in history if r.get(metric) is not None and _position(r) > 0]
    if not recs:
        return None
    return max(recs, key=lambda r: (r[metric], -_position(r)))


def converged(history: Sequence[dict], what: str, budget: Optional[float] = None,
              metric: str = "acc") -> Precondition:
    """``<what> converged``: the best held-out ``metric`` is not in the last ``LATE_FRACTION`` of the
    budget (``budget``: steps or epochs; default the last record's position, i.e. the run ran to its
    budget). Unmet, and says so, when the run recorded no held-out curve or a single evaluation."""
    name = f"{what} converged"
    required = f"best held-out {metric} before the last {100 * LATE_FRACTION:.0f} % of the budget"
    recs = [r for r in history if r.get(metric) is not None and _position(r) > 0]
    if not recs:
        return Precondition(name, required, "no held-out curve recorded", False)
    total = float(budget if budget is not None else max(_position(r) for r in recs))
    unit = "step" if recs[0].get("step") is not None else "epoch"
    if len(recs) == 1:
        only = recs[0]
        return Precondition(name, required, f"one evaluation only ({unit} {_position(only):g} of {total:g}, "
                                            f"{only[metric]:.2f}): no curve to tell", False)
    best = best_position(recs, metric)
    curve = ", ".join(f"{r[metric]:.2f}" for r in recs)
    late = _position(best) > (1.0 - LATE_FRACTION) * total
    return Precondition(name, required, f"best {best[metric]:.2f} at {unit} {_position(best):g} of {total:g} "
                                        f"(curve {curve})", not late)


def above_chance(acc: float, n: int, what: str, chance: float = CIFAR10_CHANCE) -> Precondition:
    """``<what> off the floor``: the accuracy exceeds chance by more than ``SE_MULTIPLIER`` standard errors."""
    band = SE_MULTIPLIER * binomial_se(chance, n)
    return Precondition(f"{what} above chance", f"> {chance:g} % + {band:.2f} ({SE_MULTIPLIER:g} SE, {n} images)",
                        round(float(acc), 2), acc > chance + band)
