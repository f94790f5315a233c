"""Preconditions and intervals shared by the two graph chapters (GFS/TFI, arXiv 2411.07663; GSL, 2411.07672).

A claim built on graph runs counts only when the runs converged and each compared case has enough paired
splits (:func:`compendium.verdicts.claim` reads these :class:`~compendium.verdicts.Precondition` objects).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..verdicts import Precondition

__all__ = ["MAX_NOT_CONVERGED", "MIN_SPLITS", "CONFIDENCE", "paired_interval", "precondition_converged",
           "precondition_splits"]

#: At most this share of runs may stop at their budget while still improving (issue 17, "Done when":
#: fewer than 10 % of runs stop at their maximum budget while improving).
MAX_NOT_CONVERGED = 0.10
#: Paired splits a case needs before its one-sided paired t-test can count (issue 17: at least 3 splits;
#: with 2 the test has one degree of freedom and a 95 % interval about 25 standard errors wide).
MIN_SPLITS = 3
#: Confidence of every interval below (the paper's significance level, alpha = 0.05, two-sided).
CONFIDENCE = 0.95

def paired_interval(diff: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of paired differences and its t interval ``(mean, low, high)``; NaN bounds for fewer than 2."""
    d = np.asarray(diff, dtype=float)
    mean = float(d.mean()) if len(d) else float("nan")
    if len(d) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half



# --------------------------------------------------------------------------- preconditions


def precondition_converged(runs: pd.DataFrame) -> Precondition:
    """Share of runs that stopped at their budget while still improving (``converged`` from the harness)."""
    n = len(runs)
    bad = int((~runs["converged"].astype(bool)).sum()) if n else 0
    share = bad / n if n else float("nan")
    where = runs[~runs["converged"].astype(bool)].groupby("dataset", sort=False).size() if n else pd.Series(dtype=int)
    detail = f"{bad}/{n} runs ({100 * share:.0f} %)" if n else "no runs"
    if len(where):
        detail += " (" + ", ".join(f"{d} {c}" for d, c in where.items()) + ")"
    return Precondition("converged: runs cut by their budget while improving",
                        f"< {100 * MAX_NOT_CONVERGED:.0f} %", detail, bool(n) and share < MAX_NOT_CONVERGED)


def precondition_splits(n_splits: Mapping[str, int], what: str = "case") -> Precondition:
    """Every ``what`` (a case or a data set: name -> paired splits) has at least :data:`MIN_SPLITS`."""
    short = {k: int(v) for k, v in n_splits.items() if v < MIN_SPLITS}
    measured = f"{len(n_splits) - len(short)}/{len(n_splits)} {what}s"
    if short:
        measured += "; short: " + ", ".join(f"{k} ({v})" for k, v in list(short.items())[:6])
        measured += ", …" if len(short) > 6 else ""
    return Precondition(f"enough splits for a paired test", f"every {what} >= {MIN_SPLITS} paired splits",
                        measured, bool(n_splits) and not short)
