"""DyVM (arXiv 2504.04787): the rules that turn the chapter's measurements into verdicts.

* :func:`flops_reduction_range`: the Vim-S FLOPs reduction over the block keep ratios the paper's
  configuration allows (the paper does not print the ratio its Vim-S run measured), with the band as a
  sourced :class:`~compendium.verdicts.Tolerance`.
* ``claim_*``: the paper's claims tested on the tiny Vim (reduced scale), each under its preconditions
  (:mod:`compendium.vision_mamba.preconditions`): an unmet one makes the verdict inconclusive.
* :func:`reading`: the chapter's reading of its own numbers, generated from them.

Thresholds are named once here, with where they come from.
"""
from __future__ import annotations

import math
import statistics
from typing import Sequence

import pandas as pd

from ... import verdicts
from ...verdicts import Precondition, Tolerance
from ..flops import dyvm_flops, vim_flops
from ..preconditions import SE_MULTIPLIER, above_chance, binomial_se, converged
from ..vim import VimConfig

__all__ = ["BETA_RANGE", "ABOUT_A_THIRD", "SMALL_DROP_FACTOR", "SKIPPING_BELOW", "SPEEDUP_MARGIN",
           "MIN_TIMING_ROUNDS", "flops_reduction_range", "training_preconditions", "claim_flops_for_accuracy",
           "claim_block_selection", "claim_wallclock", "reading"]

PAPER = "dyvm"
_RULE = "compendium.vision_mamba.dyvm.claims."

#: The block keep ratios beta that DyVM's Vim-S configuration allows: from the training target 0.8
#: (``--block-keep-ratio 0.8`` in the released Vim-S scripts, which the loss pulls the gates to) to 1.0
#: (every scan direction kept; the gates can only switch a direction off). The repository's one logged
#: run (MambaReg-S) measures 0.886-0.888 at inference, inside it.
BETA_RANGE = (0.8, 1.0)
#: "About a third of the FLOPs": the abstract's -35.2 % read as at least 30 %.
ABOUT_A_THIRD = 30.0
#: A "small" accuracy drop: at most this many times the paper's own Vim-S drop (1.7 points, headline table).
SMALL_DROP_FACTOR = 2.0
#: Block selection skips directions at inference when the measured keep ratio is below this (1.0: none
#: skipped; 1 % leaves room for a single gate in a depth-8 model).
SKIPPING_BELOW = 0.99
#: Faster in wall-clock time: the median paired speed-up exceeds 1 + this margin (5 %, above the
#: round-to-round noise of a shared CPU).
SPEEDUP_MARGIN = 0.05
#: Paired timing rounds needed before a speed verdict.
MIN_TIMING_ROUNDS = 3


def flops_reduction_range(cfg: VimConfig, keep_ratio: float = 0.7, betas: Sequence[float] = BETA_RANGE,
                          pruning_loc: Sequence[int] = (6, 12, 18)) -> dict:
    """FLOPs reduction (%) of DyVM against its Vim over a range of block keep ratios.

    FLOPs are linear in beta, so the range's ends bound it. Returns ``low`` / ``high`` (the reduction at
    the largest / smallest beta), ``mid`` (their centre) and ``tolerance`` (half the width, with its source)
    to compare the centre with a published reduction whose beta is not printed.
    """
    dense = vim_flops(cfg)
    lo_beta, hi_beta = min(betas), max(betas)
    low = 100.0 * (1.0 - dyvm_flops(cfg, keep_ratio, hi_beta, pruning_loc) / dense)
    high = 100.0 * (1.0 - dyvm_flops(cfg, keep_ratio, lo_beta, pruning_loc) / dense)
    source = (f"the block keep ratio of the paper's Vim-S run is not printed; its configuration allows beta from "
              f"{lo_beta:g} (the training target) to {hi_beta:g} (every scan direction kept), over which the "
              f"repository's formula at rho {keep_ratio:g} gives a reduction of {low:.2f} to {high:.2f} %")
    return {"low": low, "high": high, "mid": (low + high) / 2, "betas": (lo_beta, hi_beta),
            "tolerance": Tolerance((high - low) / 2, source)}


def training_preconditions(dense_history: Sequence[dict], dyvm_history: Sequence[dict], dense_acc: float,
                           n_test: int) -> list[Precondition]:
    """What every small-scale DyVM claim rests on: the dense model and the DyVM fine-tuning have finished
    learning (held-out curve), and the dense model is off the accuracy floor."""
    return [converged(dense_history, "dense tiny Vim"), converged(dyvm_history, "DyVM fine-tuning"),
            above_chance(dense_acc, n_test, "dense tiny Vim")]


def claim_flops_for_accuracy(flops_reduction: float, dense_acc: float, dyvm_acc: float, n_test: int,
                             paper_drop: float, *, preconditions: Sequence[Precondition], scale_reason: str,
                             source: str = "arXiv 2504.04787, abstract (Vim-S: -35.2 % FLOPs, -1.7 top-1)") -> pd.DataFrame:
    """About a third of the FLOPs removed (>= ``ABOUT_A_THIRD`` %) for a small accuracy drop (at most
    ``SMALL_DROP_FACTOR`` x the paper's ``paper_drop``)."""
    drop = dense_acc - dyvm_acc
    limit = SMALL_DROP_FACTOR * paper_drop
    band = SE_MULTIPLIER * math.hypot(binomial_se(dense_acc, n_test), binomial_se(dyvm_acc, n_test))
    holds = flops_reduction >= ABOUT_A_THIRD and drop <= limit
    evidence = (f"FLOPs -{flops_reduction:.1f} % (about a third: >= {ABOUT_A_THIRD:g} %); top-1 {dense_acc:.2f} -> "
                f"{dyvm_acc:.2f} % on {n_test} test images, a drop of {drop:.2f} points "
                f"(small: <= {SMALL_DROP_FACTOR:g} x the paper's {paper_drop:g} = {limit:.1f}; "
                f"{SE_MULTIPLIER:g} SE of the drop {band:.2f})")
    return verdicts.claim(PAPER, "About a third of the FLOPs removed for a small accuracy drop", holds, evidence,
                          scale="reduced", scale_reason=scale_reason, preconditions=list(preconditions),
                          rule=_RULE + "claim_flops_for_accuracy", source=source)


def claim_block_selection(block_keep_ratio: float, target: float, *, preconditions: Sequence[Precondition],
                          scale_reason: str, train_ratio: float = float("nan"),
                          source: str = "arXiv 2504.04787, method (dynamic block selection); DyVM repository "
                                        "calc_flops.py (measured test-set block keep ratio)") -> pd.DataFrame:
    """Dynamic block selection skips scan directions at inference: measured keep ratio < ``SKIPPING_BELOW``."""
    holds = block_keep_ratio < SKIPPING_BELOW
    evidence = (f"inference keeps {100 * block_keep_ratio:.1f} % of the scan directions (skipping: below "
                f"{100 * SKIPPING_BELOW:g} %); training target {100 * target:.0f} %"
                + (f", {100 * train_ratio:.0f} % on the last training batch" if not math.isnan(train_ratio) else ""))
    return verdicts.claim(PAPER, "Dynamic block selection skips scan directions at inference", holds, evidence,
                          scale="reduced", scale_reason=scale_reason, preconditions=list(preconditions),
                          rule=_RULE + "claim_block_selection", source=source)


def claim_wallclock(dense_rounds: Sequence[float], pruned_rounds: Sequence[float], flops_ratio: float, *,
                    setting: str, preconditions: Sequence[Precondition], scale_reason: str,
                    source: str = "arXiv 2504.04787 (throughput of the pruned models)") -> pd.DataFrame:
    """The pruned model is faster in wall-clock time: the median of the paired round ratios t(dense) /
    t(pruned) exceeds 1 + ``SPEEDUP_MARGIN``. Preconditions added here: at least ``MIN_TIMING_ROUNDS``
    rounds, and every round on the same side of the threshold (else the noise decides)."""
    ratios = [a / b for a, b in zip(dense_rounds, pruned_rounds)]
    threshold = 1.0 + SPEEDUP_MARGIN
    median = statistics.median(ratios) if ratios else float("nan")
    agree = bool(ratios) and (all(r > threshold for r in ratios) or all(r <= threshold for r in ratios))
    pres = list(preconditions) + [
        Precondition("paired timing rounds", f">= {MIN_TIMING_ROUNDS}", len(ratios), len(ratios) >= MIN_TIMING_ROUNDS),
        Precondition("rounds agree", f"every round on one side of x{threshold:.2f}",
                     ", ".join(f"x{r:.2f}" for r in ratios) or "none", agree),
    ]
    holds = (median > threshold) if ratios else None
    evidence = (f"{setting}: x{median:.2f} (median of {len(ratios)} paired rounds; faster: above x{threshold:.2f}) "
                f"for a FLOPs ratio of x{flops_ratio:.2f}")
    return verdicts.claim(PAPER, "The pruned model is faster in wall-clock time than the dense one", holds, evidence,
                          scale="reduced", scale_reason=scale_reason, preconditions=pres,
                          rule=_RULE + "claim_wallclock", source=source)


def reading(*, dense_acc: float, dyvm_acc: float, paper_drop: float, dyvm_epochs: float, dyvm_lr: float,
            tokens_left: int, tokens_total: int, beta_inference: float, beta_train: float, beta_target: float,
            naive_acc: float, speedup: float, flops_ratio: float) -> list[str]:
    """The chapter's reading of the small-scale numbers, one paragraph per finding, from the measurements."""
    drop = dense_acc - dyvm_acc
    out = [f"**Accuracy.** {dense_acc:.2f} → {dyvm_acc:.2f} % ({drop:.2f} points lost) after {dyvm_epochs:g} "
           f"epoch(s) of DyVM fine-tuning at lr {dyvm_lr:g}; the paper fine-tunes for 30 epochs after 300 dense ones "
           f"and loses {paper_drop:g} points on Vim-S."]
    if drop > SMALL_DROP_FACTOR * paper_drop:
        out[-1] += (f" A drop this size reads as a fine-tuning far too short for the pruning schedule ({tokens_left} "
                    f"of {tokens_total} tokens left after the last stage), not as a measure of DyVM at its own "
                    "recipe; the claims above are inconclusive for that reason.")
    if not math.isnan(beta_train) and beta_inference > beta_train + 0.05:
        logit = math.log(beta_train / (1 - beta_train)) if 0 < beta_train < 1 else float("nan")
        out.append(
            f"**Block selection.** The gates kept {100 * beta_train:.0f} % of the scan directions on the last training "
            f"batch (Gumbel-sigmoid; target {100 * beta_target:.0f} %) but {100 * beta_inference:.0f} % at inference. "
            f"With Gumbel noise a gate fires with probability sigmoid(logit), so a training keep ratio of "
            f"{beta_train:.2f} needs only logits near {logit:.1f}; the inference rule (sigmoid > 0.5) then keeps every "
            "gate whose logit is positive. Skipping directions at inference needs logits that differ in sign between "
            "samples and layers, which a short fine-tuning does not produce. The FLOPs use the measured inference "
            "ratio, as the paper's do.")
    else:
        out.append(f"**Block selection.** {100 * beta_inference:.0f} % of the scan directions run at inference "
                   f"(target {100 * beta_target:.0f} %"
                   + (f"; {100 * beta_train:.0f} % on the last training batch)." if not math.isnan(beta_train) else ")."))
    if naive_acc > dyvm_acc:
        out.append(
            f"**Rearranging.** Naive masking ({naive_acc:.2f} %) does better than the rearranged path ({dyvm_acc:.2f} %) "
            "on this trained model. Rearranging moves each kept token next to new neighbours in the causal convolution "
            "and the scan, which the dense weights never saw, while naive masking leaves every token where it was; "
            "after little fine-tuning the model still prefers the original positions. What rearranging buys is "
            "consistency: training sees exactly what pruned inference computes, which naive masking cannot give.")
    else:
        out.append(f"**Rearranging.** Naive masking of the same model gives {naive_acc:.2f} % against {dyvm_acc:.2f} % "
                   "for the rearranged path it was trained for.")
    out.append(f"**Speed.** x{speedup:.2f} for a FLOPs ratio of x{flops_ratio:.2f}.")
    if speedup < flops_ratio:
        out[-1] += (" Fewer tokens shrink the arithmetic but not the fixed cost of each operation (the per-layer "
                    "Python and kernel calls), and DyVM adds its predictors, gathers and sorts, so the wall-clock gain "
                    "stays below the FLOPs ratio.")
    return out
