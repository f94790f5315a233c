"""Intervals and the decision rules the MLLM-benchmark claims share.

A claim tested on a substitute is decided from intervals, never from a point estimate against a band
typed after seeing the gap: each *case* (a method, a judge, a pair of judges) is a comparison of a
measured quantity with a threshold, with a 95 % interval (a t-interval over seeds, or a bootstrap
interval over items). A case is *decided* when its interval lies wholly on one side of the threshold.
:func:`every` and :func:`share_at_least` combine cases into the claim's outcome and say whether the
intervals decide it; the claim functions turn "not decided" into an unmet precondition
(:func:`decided`), so the verdict reads *inconclusive* and names it, and record the claim on the
substitute (:func:`substitute_claim`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as _stats

from compendium import verdicts
from compendium.verdicts import Precondition

__all__ = ["LEVEL", "Interval", "t_interval", "bootstrap_interval", "Case", "above", "every", "share_at_least",
           "decided", "substitute_claim", "save_results"]

#: The confidence level of every interval (issue 13: "the difference's 95 % interval excludes 0").
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean with its ``LEVEL`` interval [lo, hi] (NaN when ``n`` is too small) and how it was made."""

    mean: float
    lo: float
    hi: float
    n: int
    how: str

    def text(self, digits: int = 1) -> str:
        if math.isnan(self.lo):
            return f"{self.mean:.{digits}f} (no interval: n = {self.n})"
        return f"{self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def t_interval(values: Sequence[float], *, how: str = "seeds") -> Interval:
    """Mean and Student-t interval of independent repeats (seeds). Fewer than 2 values: no interval."""
    vals = np.asarray([float(v) for v in values], dtype=float)
    n = len(vals)
    mean = float(vals.mean()) if n else float("nan")
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n, f"t-interval over {n} {how}")
    half = float(_stats.t.ppf(0.5 + LEVEL / 2, n - 1) * vals.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n, f"t-interval over {n} {how}")


def bootstrap_interval(estimate: float, draws: Sequence[float], *, how: str = "items") -> Interval:
    """The point ``estimate`` with the percentile interval of its bootstrap ``draws``."""
    d = np.asarray([float(v) for v in draws], dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return Interval(float(estimate), float("nan"), float("nan"), len(d), f"bootstrap over {how}")
    lo, hi = np.quantile(d, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Interval(float(estimate), float(lo), float(hi), len(d), f"bootstrap ({len(d)} resamples) over {how}")


@dataclass(frozen=True)
class Case:
    """One comparison inside a claim: does it hold at the point estimate, and does the interval decide it?"""

    name: str
    holds: bool
    decided: bool
    text: str


def above(name: str, interval: Interval, threshold: float = 0.0, *, digits: int = 1) -> Case:
    """The case "``interval.mean`` > ``threshold``": decided when the interval lies wholly above it, or
    wholly at or below it."""
    holds = bool(interval.mean > threshold)
    decided = not math.isnan(interval.lo) and (interval.lo > threshold or interval.hi <= threshold)
    return Case(name, holds, decided, f"{name} {interval.text(digits)}")


def every(cases: Sequence[Case]) -> tuple[bool, bool]:
    """"Every case holds": (outcome at the point estimates, decided by the intervals). One decided
    counter-example decides it; otherwise every case must be decided."""
    holds = all(c.holds for c in cases) and bool(cases)
    decided = bool(cases) and (all(c.decided for c in cases) or any(c.decided and not c.holds for c in cases))
    if decided and any(c.decided and not c.holds for c in cases):
        holds = False
    return holds, decided


def share_at_least(cases: Sequence[Case], share: float) -> tuple[bool, bool]:
    """"At least ``share`` of the cases hold": (outcome at the point estimates, decided by the intervals).
    Decided when the decided-true cases already reach the share, or the decided-false ones rule it out."""
    n = len(cases)
    if not n:
        return False, False
    holds = sum(c.holds for c in cases) >= share * n
    sure_true = sum(c.holds and c.decided for c in cases)
    sure_false = sum((not c.holds) and c.decided for c in cases)
    if sure_true >= share * n:
        return True, True
    if n - sure_false < share * n:
        return False, True
    return holds, False


def decided(cases: Sequence[Case], decided: bool, what: str, *, intervals: str) -> Precondition:
    """The precondition "the ``intervals`` decide ``what``", its measured value the cases' texts
    (``intervals``: e.g. "95 % intervals over seeds", "95 % bootstrap intervals")."""
    return Precondition(f"the {intervals} decide {what}",
                        "every interval on one side of its threshold, or one decided counter-example",
                        "; ".join(c.text for c in cases), decided)


def substitute_claim(paper: str, substitute: str, rule_prefix: str, text: str, holds, evidence: str,
                     preconditions, rule: str, source: str):
    """A claim of ``paper`` tested on its ``substitute`` (scale "substitute"), decided by the function
    ``rule_prefix + rule``."""
    return verdicts.claim(paper, text, holds, evidence, scale="substitute", scale_reason=substitute,
                          preconditions=preconditions, rule=rule_prefix + rule, source=source)


def save_results(results, t_start: float, *, paper: str, notebook: str, log=print) -> float:
    """Write a chapter's results (``verdicts.save``) and say where; returns the minutes since ``t_start``
    (a ``time.perf_counter`` value)."""
    path = verdicts.save(results, paper, notebook)
    minutes = (time.perf_counter() - t_start) / 60
    log(f"results written: {path.name}; notebook time {minutes:.1f} min")
    return minutes
