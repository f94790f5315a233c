"""R-MeeTo (arXiv 2412.12496): the rules that turn the chapter's small-scale measurements into verdicts.

Accuracies are measured on the same fixed set of test images; a difference counts when it exceeds
``SE_MULTIPLIER`` binomial standard errors of the accuracies it combines (about a 95 % interval), and
the verdict is inconclusive otherwise. Every claim also carries the preconditions of the runs it rests on
(:mod:`compendium.vision_mamba.preconditions`).

* :func:`claim_ordering`: "A beats B" (merging vs pruning, ordered vs unordered merging).
* :func:`claim_recovery`: "re-training recovers the accuracy lost by merging", judged against the
  control the claim needs: the *dense* model re-trained with the same recipe, epochs and images, so that
  what the extra training gives any model is not credited to re-training the merged one.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import pandas as pd

from ... import verdicts
from ...verdicts import Precondition
from ..preconditions import SE_MULTIPLIER, binomial_se

__all__ = ["difference_test", "claim_ordering", "recovery", "claim_recovery"]

PAPER = "rmeeto"
_RULE = "compendium.vision_mamba.rmeeto.claims."


def difference_test(a: float, b: float, n: int) -> tuple[Optional[bool], float, float]:
    """(holds, a - b, band): True when a - b exceeds the band (``SE_MULTIPLIER`` x the combined binomial
    standard error on ``n`` images), False when b - a does, None in between."""
    diff = a - b
    band = SE_MULTIPLIER * math.hypot(binomial_se(a, n), binomial_se(b, n))
    return (True if diff > band else False if diff < -band else None), diff, band


def claim_ordering(a: float, b: float, n: int, text: str, evidence: str, *, preconditions: Sequence[Precondition],
                   scale_reason: str, source: str) -> pd.DataFrame:
    """The claim ``text`` ("A beats B") from the accuracies ``a`` (A) and ``b`` (B) on ``n`` test images."""
    holds, diff, band = difference_test(a, b, n)
    return verdicts.claim(PAPER, text, holds,
                          f"{evidence}: {a:.2f} vs {b:.2f} % (difference {diff:+.2f}, {SE_MULTIPLIER:g} SE = {band:.2f}, "
                          f"{n} test images)",
                          scale="reduced", scale_reason=scale_reason, preconditions=list(preconditions),
                          rule=_RULE + "claim_ordering", source=source)


def recovery(dense: float, merged_before: float, merged_after: float, control_after: float, n: int) -> dict:
    """The accuracy merging costs, before and after re-training, against the right reference.

    ``gap_before`` = dense - merged (same weights, no re-training); ``gap_after`` = control - merged after
    re-training, the control being the dense model re-trained the same way. ``recovered`` = gap_before -
    gap_after, its ``band`` (``SE_MULTIPLIER`` SE of the four accuracies), ``share`` = recovered / gap_before,
    and ``naive_share``, the share computed against the original dense model (what the chapter reported
    before it had the control).
    """
    gap_before, gap_after = dense - merged_before, control_after - merged_after
    se = [binomial_se(v, n) for v in (dense, merged_before, merged_after, control_after)]
    band = SE_MULTIPLIER * math.sqrt(sum(s * s for s in se))
    gap_band = SE_MULTIPLIER * math.hypot(se[0], se[1])
    recovered = gap_before - gap_after
    share = recovered / gap_before if gap_before > 0 else float("nan")
    naive = (merged_after - merged_before) / gap_before if gap_before > 0 else float("nan")
    return {"gap_before": gap_before, "gap_after": gap_after, "recovered": recovered, "band": band,
            "gap_band": gap_band, "share": share, "naive_share": naive, "control_gain": control_after - dense}


def claim_recovery(dense: float, merged_before: float, merged_after: float, control_after: float, n: int, *,
                   epochs: int, preconditions: Sequence[Precondition], scale_reason: str,
                   source: str = "arXiv 2412.12496, abstract / Table 2") -> pd.DataFrame:
    """Re-training recovers the accuracy lost by merging: the gap to a dense model given the same extra
    training is smaller after re-training than the gap merging opened, by more than the band (supported);
    larger by more than the band (not supported); else inconclusive. Precondition added here: merging
    opened a gap at all (``gap_before`` beyond its own band), else there is nothing to recover."""
    r = recovery(dense, merged_before, merged_after, control_after, n)
    pres = list(preconditions) + [Precondition(
        "merging costs accuracy", f"dense - merged > {r['gap_band']:.2f} ({SE_MULTIPLIER:g} SE)",
        round(r["gap_before"], 2), r["gap_before"] > r["gap_band"])]
    holds = True if r["recovered"] > r["band"] else False if r["recovered"] < -r["band"] else None
    evidence = (f"merging costs {r['gap_before']:.2f} points ({dense:.2f} -> {merged_before:.2f}); after {epochs} "
                f"epoch(s) of re-training the merged model is {r['gap_after']:.2f} points below the dense model "
                f"re-trained the same way ({control_after:.2f} vs {merged_after:.2f}; the extra training alone moves "
                f"the dense model {r['control_gain']:+.2f}): {r['recovered']:+.2f} points recovered "
                f"({SE_MULTIPLIER:g} SE = {r['band']:.2f}; {100 * r['share']:.0f} % of the gap, against "
                f"{100 * r['naive_share']:.0f} % without the control; {n} test images)")
    return verdicts.claim(PAPER, "Re-training recovers the accuracy lost by merging", holds, evidence,
                          scale="reduced", scale_reason=scale_reason, preconditions=pres,
                          rule=_RULE + "claim_recovery", source=source)

