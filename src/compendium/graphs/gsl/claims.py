"""GSL (arXiv 2411.07672): the rules that turn the chapter's measurements into claim verdicts.

Each ``claim_*`` function decides one claim of ``published/gsl.yaml`` and returns a :class:`Decision`
(outcome, evidence, preconditions with their measured values, the rule's dotted path);
:func:`claim_cell` turns it into a results cell under the verdict contract
(:func:`compendium.verdicts.claim`): ``supported`` / ``not supported`` only when every precondition is
met, else ``inconclusive``.

Thresholds, each named once with its source:

* :data:`ALPHA` / :data:`CONFIDENCE`: the significance level of every paired test over splits or seeds
  and the matching two-sided interval (:data:`compendium.graphs.preconditions.CONFIDENCE`, shared with the GFS chapter);
* converged runs and enough splits: the graph chapters' shared preconditions
  (:func:`compendium.graphs.preconditions.precondition_converged`, ``precondition_splits``: fewer than 10 %
  of runs cut by their budget while improving; at least 3 paired splits per data set);
* :data:`MIN_SEEDS`: the paper's 10 CSBM-H seeds (``published/gsl.yaml``, setup);
* the MI gain threshold is the kNN estimator's own error on Gaussian classes whose MI is known
  (:func:`mi_gain_threshold`, measured in the chapter), never less than :data:`MI_GAIN_FLOOR`;
* :data:`MOST` and :data:`CONSISTENT`: "consistently" read as in at least 80 % of the comparisons,
  "does not" as in fewer than half (the rule's own reading of the abstract's words).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ... import verdicts
from ...verdicts import Precondition
from ..preconditions import CONFIDENCE, paired_interval, precondition_converged, precondition_splits

__all__ = [
    "ALPHA", "CONFIDENCE", "MIN_SEEDS", "MI_GAIN_FLOOR", "MOST", "CONSISTENT", "MAX_GAIN_SHARE", "Decision",
    "mi_gain_threshold", "distinct_mi_cells", "precondition_seeds", "precondition_below_ceiling",
    "precondition_baseline_tuned", "precondition_baseline_reference", "training_preconditions",
    "claim_no_mi_gain", "claim_bases_drive_gains", "claim_gsl_not_consistent", "claim_fusion_designs",
    "fusion_contrasts", "FUSION_CONTRASTS", "claim_cell", "not_run_cell", "scale_reason", "SHORT", "reading",
]

PAPER = "gsl"
#: Significance level of the paired tests (two-sided; the 95 % intervals of :data:`CONFIDENCE`).
ALPHA = 1.0 - CONFIDENCE
#: CSBM-H graphs per homophily level in the paper's study (``published/gsl.yaml``, setup "CSBM-H seeds").
MIN_SEEDS = 10
#: The smallest MI gain counted, in nats, when the estimator's measured error is smaller.
MI_GAIN_FLOOR = 0.01
#: The MI claim fails when more than this share of the distinct (basis, construction, h) measurements
#: show a significant gain (a few isolated gains read as estimator noise; more than one in ten does not).
MAX_GAIN_SHARE = 0.10
#: "Does not consistently outperform": GSL significantly better in fewer than this share of comparisons.
MOST = 0.5
#: "Consistently outperforms": significantly better in at least this share.
CONSISTENT = 0.8


@dataclass
class Decision:
    """The outcome of one claim rule: ``holds`` (True / False / None when the test cannot decide), the
    evidence sentence, the preconditions, the rule's dotted path and the table it was decided from."""

    holds: bool | None
    evidence: str
    preconditions: list[Precondition]
    rule: str
    detail: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def verdict(self) -> str:
        if self.holds is None or not all(p.met for p in self.preconditions):
            return verdicts.INCONCLUSIVE
        return verdicts.SUPPORTED if self.holds else verdicts.NOT_SUPPORTED


def _rule(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


# --------------------------------------------------------------------------------- preconditions


def precondition_seeds(n_seeds: int, required: int = MIN_SEEDS) -> Precondition:
    """The CSBM-H study uses at least the paper's number of seeds per homophily level."""
    return Precondition("enough seeds per homophily level", f">= {required} (the paper's)", int(n_seeds),
                        int(n_seeds) >= required)


def precondition_below_ceiling(mi_b: float, num_classes: int, margin: float) -> Precondition:
    """``I(Y; B)`` leaves room for a gain: below the label entropy ``ln C`` (balanced classes) by more
    than the gain threshold, else no gain could be measured at all."""
    ceiling = math.log(num_classes)
    return Precondition("I(Y; B) below its ceiling ln C", f"max mean I(Y; B) < {ceiling - margin:.3f} nats",
                        round(float(mi_b), 3), bool(np.isfinite(mi_b) and mi_b < ceiling - margin))


def precondition_baseline_tuned(tuning: pd.DataFrame, min_configs: int = 2) -> Precondition:
    """The plain GCN was tuned on validation: at least ``min_configs`` configurations per data set, the
    chosen one by mean validation metric (``tuning`` from
    :func:`compendium.graphs.gsl.experiments.tune_baseline`: one row per data set and configuration)."""
    if tuning.empty:
        return Precondition("baseline tuned on validation", f">= {min_configs} configurations per data set",
                            "no tuning run", False)
    per = tuning.groupby("dataset", sort=False).size()
    chosen_on_val = bool(tuning.groupby("dataset", sort=False).apply(
        lambda r: r.loc[r["chosen"], "val"].max() >= r["val"].max() - 1e-12, include_groups=False).all())
    return Precondition("baseline tuned on validation", f">= {min_configs} configurations per data set, chosen on validation",
                        f"{int(per.min())}-{int(per.max())} configurations on {len(per)} data sets",
                        bool(int(per.min()) >= min_configs and chosen_on_val))


def precondition_baseline_reference(ours: pd.DataFrame, reference: pd.DataFrame,
                                    confidence: float = CONFIDENCE) -> Precondition:
    """On the graphs both chapters ran, our tuned GCN(X, A) is not significantly below the GFS chapter's
    GCN: the upper end of the Welch interval of (ours − theirs) is at least 0 on every shared graph.

    ``ours`` and ``reference``: one row per (dataset, split) with a ``test`` column (fractions).
    Unmet when no graph is shared (nothing to check the baseline against).
    """
    shared = [d for d in dict.fromkeys(ours["dataset"]) if d in set(reference["dataset"])]
    if not shared:
        return Precondition("baseline reaches the GFS chapter's GCN", "on every shared graph", "no shared graph", False)
    parts, low = [], []
    for d in shared:
        a = 100 * ours.loc[ours["dataset"] == d, "test"].to_numpy(float)
        b = 100 * reference.loc[reference["dataset"] == d, "test"].to_numpy(float)
        parts.append(f"{d} {a.mean():.1f} vs {b.mean():.1f}")
        if _welch_upper(a, b, confidence) < 0:
            low.append(d)
    measured = "; ".join(parts) + (f" (significantly below on {', '.join(low)})" if low else "")
    return Precondition("baseline reaches the GFS chapter's GCN",
                        f"not significantly below on every shared graph ({100 * confidence:.0f} % Welch interval)",
                        measured, not low)


def _welch_upper(a: np.ndarray, b: np.ndarray, confidence: float) -> float:
    """Upper end of the two-sided Welch interval of ``mean(a) − mean(b)``; a sample of one contributes no
    variance (its spread is unknown), and with no variance at all the difference itself."""
    terms = [(x.var(ddof=1) / len(x), len(x) - 1) for x in (a, b) if len(x) > 1]
    var = sum(v for v, _ in terms)
    diff = float(a.mean() - b.mean())
    if var <= 0:
        return diff
    dof = var ** 2 / sum(v ** 2 / k for v, k in terms if v > 0)
    return diff + float(stats.t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(var)


def training_preconditions(runs: pd.DataFrame, tuning: pd.DataFrame, reference: pd.DataFrame) -> list[Precondition]:
    """The preconditions of every claim built on trained GCNs: converged runs, enough paired splits per
    data set, the baseline tuned on validation and not below the GFS chapter's GCN on the shared graphs."""
    baseline = runs[(runs["variant"] == "GCN(X)")]
    splits = runs.groupby("dataset", sort=False)["split"].nunique().to_dict()
    return [precondition_converged(runs), precondition_splits(splits, what="data set"),
            precondition_baseline_tuned(tuning), precondition_baseline_reference(baseline, reference)]


# --------------------------------------------------------------------------------- MI claim


def mi_gain_threshold(checks: pd.DataFrame, floor: float = MI_GAIN_FLOOR) -> verdicts.Tolerance:
    """The smallest MI gain the claim counts: the estimator's largest error on the Gaussian checks
    (columns ``Monte-Carlo I(Y;X)`` and ``kNN estimate``), at least ``floor``."""
    err = float((checks["kNN estimate"] - checks["Monte-Carlo I(Y;X)"]).abs().max())
    return verdicts.Tolerance(max(err, floor), f"the kNN estimator's largest error on {len(checks)} Gaussian checks "
                                               f"with known MI ({err:.3f} nats), at least {floor} nats")


def distinct_mi_cells(csbm: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct measurement of ``I(Y; Â'B) − I(Y; B)``: per (basis, construction, h) the
    seeds' gains, with the homophily levels whose per-seed values are identical merged into one cell
    (``h`` then lists them). With ``B = X`` the new graph is built from ``X`` alone, which the CSBM-H
    generator draws before the edges, so every ``h`` repeats the same measurement; counting it once per
    ``h`` would weigh it eleven times."""
    g = csbm.assign(gain=csbm["I_A'B"] - csbm["I_B"])
    cells = []
    for (b, c), part in g.groupby(["basis", "construction"], sort=False):
        groups: dict[tuple, list] = {}
        for h, r in part.groupby("h", sort=True):
            r = r.sort_values("seed")
            key = tuple(np.round(r[["I_B", "I_A'B"]].to_numpy(float).ravel(), 12))
            groups.setdefault(key, []).append((h, r))
        for members in groups.values():
            hs = [h for h, _ in members]
            r = members[0][1]
            cells.append({"basis": b, "construction": c, "h": ", ".join(f"{h:g}" for h in hs) if len(hs) > 1 else hs[0],
                          "levels": len(hs), "seeds": int(r["seed"].nunique()), "I_B": r["I_B"].mean(),
                          "I_A'B": r["I_A'B"].mean(), "I_AB": float(np.mean([m[1]["I_AB"].mean() for m in members])),
                          "gain": r["gain"].mean(), "_gains": r["gain"].to_numpy(float)})
    return pd.DataFrame(cells)


def claim_no_mi_gain(csbm: pd.DataFrame, threshold: verdicts.Tolerance, *, num_classes: int = 2,
                     alpha: float = ALPHA, max_share: float = MAX_GAIN_SHARE) -> Decision:
    """"No MI gain from the constructed graph": over the distinct measurements of
    :func:`distinct_mi_cells`, a cell gains when its mean ``I(Y; Â'B) − I(Y; B)`` exceeds ``threshold``
    and a one-sided t-test over seeds gives ``p < alpha``. Holds when no cell gains; not supported when
    more than ``max_share`` of them do; inconclusive in between. Preconditions: enough seeds, ``I(Y; B)``
    below its ceiling."""
    cells = distinct_mi_cells(csbm)
    tol = float(threshold.value)
    p = [float(stats.ttest_1samp(x, 0.0, alternative="greater").pvalue) if len(x) > 1 and x.std() > 0 else float("nan")
         for x in cells["_gains"]]
    cells = cells.drop(columns="_gains").assign(p=p)
    cells["gains"] = (cells["gain"] > tol) & (cells["p"] < alpha)
    n_gain, n = int(cells["gains"].sum()), len(cells)
    share = n_gain / n if n else float("nan")
    holds = None if not n else (True if n_gain == 0 else (False if share > max_share else None))
    pres = [precondition_seeds(int(cells["seeds"].min()) if n else 0),
            precondition_below_ceiling(float(cells["I_B"].max()) if n else float("nan"), num_classes, tol)]
    merged = cells[cells["levels"] > 1]
    worst = cells.loc[cells["gain"].idxmax()] if n else None
    orig = (csbm["I_AB"] - csbm["I_B"]).groupby(csbm["basis"]).mean() if n else pd.Series(dtype=float)
    evidence = (f"{n} distinct measurements (basis × construction × homophily; "
                f"{len(merged)} with B independent of h counted once instead of {int(merged['levels'].sum())} times): "
                f"I(Y; Â'B) exceeds I(Y; B) by more than {tol:.3f} nats ({threshold.source}) with one-sided p < {alpha:g} "
                f"in {n_gain}/{n}")
    if worst is not None:
        evidence += (f"; largest mean gain {worst['gain']:+.3f} nats (B = {worst['basis']}, {worst['construction']}, "
                     f"h = {worst['h']}). For contrast, the original graph's convolution changes I by "
                     + ", ".join(f"{b}: {v:+.3f}" for b, v in orig.items()) + " nats on average over h.")
    return Decision(holds, evidence, pres, _rule(claim_no_mi_gain), cells)


# --------------------------------------------------------------------------------- trained-model claims


def claim_bases_drive_gains(abl: pd.DataFrame, preconditions: Sequence[Precondition], alpha: float = ALPHA) -> Decision:
    """"Pretrained bases, not GSL, drive the gains" (``abl`` from
    :func:`compendium.graphs.gsl.experiments.ablation`): on the data sets where GSL(B*) beats the plain
    GNN significantly, the basis gain is at least the graph gain on at least half, and the graph gain is
    significant on at most a third of all data sets. Not supported when a significant graph gain larger
    than the basis gain shows on more than a third of the data sets; inconclusive when no data set shows
    a significant total gain."""
    n = len(abl)
    if n == 0:
        return Decision(None, "no data set ran the ablation.", list(preconditions), _rule(claim_bases_drive_gains), abl)
    sig_total = abl[(abl["p total"] < alpha) & (abl["total"] > 0)]
    graph_sig = abl[(abl["p graph"] < alpha) & (abl["graph gain"] > 0)]
    graph_dominates = graph_sig[graph_sig["graph gain"] > graph_sig["basis gain"]]
    basis_dominates = sig_total[sig_total["basis gain"] >= sig_total["graph gain"]]
    if len(graph_dominates) > n / 3:
        holds = False
    elif len(sig_total) == 0:
        holds = None
    else:
        holds = len(basis_dominates) >= len(sig_total) / 2 and len(graph_sig) <= n / 3
    fmt = lambda r: f"{r.dataset} ({r['B*']}: basis {r['basis gain']:+.1f}, graph {r['graph gain']:+.1f})"
    evidence = (f"{n} data sets, GCN, paired over splits. GSL on the best pretrained basis beats plain GCN(X, A) "
                f"significantly on {len(sig_total)}: {', '.join(fmt(r) for _, r in sig_total.iterrows()) or 'none'}. "
                f"The basis accounts for at least as much as the new graph on {len(basis_dominates)} of them. "
                f"The new graph adds a significant gain over GCN(B*, A) on {len(graph_sig)}/{n} data sets"
                f"{': ' + ', '.join(graph_sig.dataset) if len(graph_sig) else ''}.")
    evidence += (f" Mean over data sets: basis gain {abl['basis gain'].mean():+.2f}, graph gain "
                 f"{abl['graph gain'].mean():+.2f} points.")
    return Decision(holds, evidence, list(preconditions), _rule(claim_bases_drive_gains), abl)


def claim_gsl_not_consistent(cmp: pd.DataFrame, preconditions: Sequence[Precondition], alpha: float = ALPHA,
                             most: float = MOST, consistent: float = CONSISTENT) -> Decision:
    """"GSL does not consistently beat the baseline" (``cmp`` from
    :func:`compendium.graphs.gsl.experiments.gsl_vs_baseline`: GNN+GSL vs the same GNN on the same basis,
    per data set, backbone and basis). Holds when GSL is significantly better in fewer than ``most`` of the
    comparisons; not supported when it is in at least ``consistent`` of them; inconclusive between."""
    n = len(cmp)
    counts = cmp["outcome"].value_counts() if n else pd.Series(dtype=int)
    better, worse, tie = (int(counts.get(k, 0)) for k in ("better", "worse", "tie"))
    frac = better / n if n else float("nan")
    holds = None if not n else (True if frac < most else (False if frac >= consistent else None))
    evidence = (f"{n} comparisons (data set × backbone × basis, paired over splits, p < {alpha:g}): GSL significantly "
                f"better in {better}, worse in {worse}, no significant difference in {tie}")
    if n:
        evidence += f"; mean gain {cmp['gain'].mean():+.2f} points (median {cmp['gain'].median():+.2f})."
    return Decision(holds, evidence, list(preconditions), _rule(claim_gsl_not_consistent), cmp)


#: The two contrasts of the fusion claim: (name, the recommended design, the design it is compared with).
FUSION_CONTRASTS = (("parameter separation", ("early", False), ("early", True)),
                    ("early fusion", ("early", False), ("late", False)))


def fusion_contrasts(fus_runs: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Each contrast of :data:`FUSION_CONTRASTS` in test points, paired over (data set, split) with the
    constructions averaged per pair (the constructions share a split, so they are not independent), with
    its mean and ``confidence`` interval. ``fus_runs``: run rows with ``dataset``, ``split``,
    ``construction``, ``fusion``, ``shared``, ``test``."""
    g = fus_runs[fus_runs["gsl"].astype(bool)]
    rows = []
    for name, (f_a, sh_a), (f_b, sh_b) in FUSION_CONTRASTS:
        pick = lambda f, sh: g[(g["fusion"] == f) & (g["shared"].astype(bool) == sh)].groupby(
            ["dataset", "split"])["test"].mean()
        a, b = pick(f_a, sh_a), pick(f_b, sh_b)
        diff = (100 * (a - b)).dropna()
        mean, low, high = paired_interval(diff.to_numpy(), confidence)
        rows.append({"contrast": name, "recommended": f"{f_a}, {'shared' if sh_a else 'separate'}",
                     "against": f"{f_b}, {'shared' if sh_b else 'separate'}", "pairs": len(diff), "mean": mean,
                     "low": low, "high": high})
    return pd.DataFrame(rows)


def claim_fusion_designs(contrasts: pd.DataFrame, preconditions: Sequence[Precondition],
                         confidence: float = CONFIDENCE) -> Decision:
    """"Parameter separation and early fusion are effective" (``contrasts`` from
    :func:`fusion_contrasts`): holds when early fusion with separate parameters beats both the shared
    version and late fusion (mean paired difference > 0), fails when it loses either contrast. The
    deciding contrasts' ``confidence`` intervals must exclude 0 (a precondition, with the given ones),
    else the verdict is inconclusive."""
    n = len(contrasts)
    if n == 0 or contrasts["mean"].isna().any():
        holds, deciding = None, contrasts
    else:
        lost = contrasts[contrasts["mean"] <= 0]
        holds = lost.empty
        deciding = contrasts if holds else lost
    excludes = [bool(r["low"] > 0 or r["high"] < 0) for _, r in deciding.iterrows()]
    interval = Precondition(f"{100 * confidence:.0f} % interval of the deciding contrast(s) excludes 0", "excludes 0",
                            "; ".join(f"{r['contrast']} [{r['low']:+.2f}, {r['high']:+.2f}]" for _, r in deciding.iterrows())
                            or "no contrast", bool(excludes) and all(excludes))
    evidence = "; ".join(f"{r['contrast']}: {r['recommended']} − {r['against']} = {r['mean']:+.2f} points "
                         f"({100 * confidence:.0f} % interval [{r['low']:+.2f}, {r['high']:+.2f}], {int(r['pairs'])} "
                         f"paired data set × split)" for _, r in contrasts.iterrows()) + "."
    return Decision(holds, evidence, [*preconditions, interval], _rule(claim_fusion_designs), contrasts)


# --------------------------------------------------------------------------------- cells


def scale_reason(datasets: Sequence[str], backbones: Sequence[str], steps: int, tuned: bool) -> str:
    """What separates the chapter's runs from the paper's (the scale of every claim here is ``reduced``)."""
    return (f"CPU recipe: {'/'.join(backbones)} only (the paper: four backbones), "
            f"{'a small tuning grid for the plain GCN' if tuned else 'no tuning'} (the paper tunes GNN and GNN+GSL "
            f"over one search space), at most {steps} steps with early stopping, {len(datasets)} offline graphs")


def claim_cell(claim_id: str, decision: Decision, *, scale: str, scale_reason: str) -> pd.DataFrame:
    """The results cell of claim ``claim_id`` of ``published/gsl.yaml`` decided by ``decision``."""
    from .experiments import paper_claims

    c = paper_claims()[claim_id]
    return verdicts.claim(PAPER, " ".join(c["text"].split()), decision.holds, decision.evidence, scale=scale,
                          scale_reason=scale_reason, preconditions=decision.preconditions, rule=decision.rule,
                          source=c["source"])


def not_run_cell(table) -> pd.DataFrame:
    """A ``not run here`` cell for a published table that has no transcribed values (``table``: a
    :class:`compendium.published.PublishedTable`)."""
    reason = " ".join(table.not_transcribed.split())
    return pd.DataFrame([{"paper": PAPER, "table": table.id, "kind": "cell", "row": table.title, "column": "all cells",
                          "published": None, "reproduced": None, "difference": None, "tolerance": None,
                          "tolerance_source": "", "verdict": verdicts.NOT_RUN, "reason": reason,
                          "reason_class": "other", "basis": "paper", "basis_note": "", "scale": "paper",
                          "scale_reason": "", "equivalence": "", "counted": True, "counted_in": "",
                          "preconditions": [], "rule": "", "unit": "", "source": table.source}],
                        columns=verdicts.RESULT_COLUMNS)


#: Short names of the claims, for the chapter's generated reading.
SHORT = {"no_mi_gain": "No MI gain from the constructed graph",
         "bases_drive_gains": "The pretrained bases, not the learned graph, carry the gains",
         "gsl_not_consistent": "GNN+GSL does not consistently beat the GNN",
         "fusion_designs": "Parameter separation and early fusion are the effective designs"}


def reading(decisions: Mapping[str, Decision]) -> str:
    """The chapter's reading of its claim verdicts, generated from the decisions (Markdown): per claim the
    verdict, what the test found and, when inconclusive, the preconditions that were not met."""
    lines = []
    for cid, d in decisions.items():
        unmet = [p for p in d.preconditions if not p.met]
        outcome = {True: "the test finds what the paper says", False: "the test finds the opposite",
                   None: "the test itself cannot decide"}[d.holds]
        text = f"* **{SHORT.get(cid, cid)}** — *{d.verdict}*: {outcome}."
        if unmet and d.verdict == verdicts.INCONCLUSIVE:
            text += " Not met: " + "; ".join(p.text() for p in unmet) + "."
        lines.append(text)
    return "\n".join(lines)
