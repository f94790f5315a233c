"""GFS / TFI (arXiv 2411.07663): the rules that turn the chapter's runs into tables and claim verdicts.

Every threshold is named once, here or in ``published/gfs.yaml``:

* the headline share (83.75 % of 80 cases, arXiv v1 abstract) is read from the published table
  ``headline``; our share is judged by its exact binomial (Clopper-Pearson) interval, not by a band;
* the GCN baselines must reach Platonov et al.'s anchors within the ± std printed beside them (the
  ``tolerance`` of table ``platonov_anchors``);
* our TFI against the authors' vectors is judged by the sampling error of Spearman's correlation
  (Fisher z, :func:`spearman_gap_z`), not by a band;
* :data:`MOST` and :data:`PAPER_SPLITS` below; :data:`MAX_NOT_CONVERGED`, :data:`MIN_SPLITS` and :data:`CONFIDENCE`
  in :mod:`compendium.graphs.preconditions` (shared with the GSL chapter), each with its source.

A claim reads ``supported`` / ``not supported`` only when its preconditions (converged runs, enough
splits, anchored baselines, a resolved difference) are met (:func:`compendium.verdicts.claim`).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ... import published, verdicts
from ...verdicts import NotRun, Precondition
from ..datasets import GraphData, edge_homophily
from ..harness import TrainConfig
from .train import PAPER_RECIPE
from ..preconditions import (CONFIDENCE, MAX_NOT_CONVERGED, MIN_SPLITS, paired_interval,  # noqa: F401 (re-exported)
                            precondition_converged, precondition_splits)

__all__ = [
    "MAX_NOT_CONVERGED", "MIN_SPLITS", "CONFIDENCE", "MOST", "PAPER_SPLITS",
    "published_share", "recipe_scale", "share_interval", "paired_interval", "spearman_gap_z",
    "precondition_converged", "precondition_splits", "precondition_anchors",
    "headline_share", "headline_cells", "anchor_cells", "tuned_cells", "statistics_cells",
    "claim_headline", "claim_tfi_selection", "claim_tfi_matches_official",
]

PAPER = "gfs"
#: "Most" cases: more than half (the headline's word).
MOST = 0.5
#: Splits of the official protocol (``train.py``: run i on split i, i < 10).
PAPER_SPLITS = 10


def published_share(column: str = "arXiv v1") -> float:
    """The headline share of significantly improved cases (percent), from ``published/gfs.yaml``."""
    cells = published.load(PAPER).table("headline").frame()
    return float(cells.loc[cells["column"] == column, "value"].iloc[0])


def recipe_scale(configs: Sequence[TrainConfig], splits: int) -> tuple[str, str]:
    """``('paper', '')`` when every config is the paper's recipe and ``splits`` reaches its 10 splits; else
    ``('reduced', what differs)``."""
    diffs = []
    for field, label in (("hidden", "hidden"), ("lr", "AdamW lr"), ("steps", "steps"), ("weight_decay", "wd")):
        ours = sorted({getattr(c, field) for c in configs})
        paper = getattr(PAPER_RECIPE, field)
        if ours != [paper]:
            diffs.append(f"{label} {', '.join(f'{v:g}' for v in ours)} (paper {paper:g})")
    stopping = sorted({c.patience for c in configs if c.patience})
    if stopping:
        diffs.append(f"early stopping after {', '.join(map(str, stopping))} evaluations (paper: none)")
    if splits < PAPER_SPLITS:
        diffs.append(f"at most {splits} splits per graph (paper {PAPER_SPLITS})")
    return ("reduced", "; ".join(diffs)) if diffs else ("paper", "")


def share_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial share ``k / n``, as fractions."""
    if n == 0:
        return (float("nan"), float("nan"))
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def spearman_gap_z(floor: float, observed: float, n: int) -> float:
    """How many standard errors ``observed`` (Spearman of ours vs the authors') lies below ``floor``
    (Spearman of two of our seeds), both over ``n`` features, in Fisher's z.

    Var(atanh r_s) ~ (1 + r_s^2 / 2) / (n - 3) (Bonett & Wright 2000, Psychometrika 65:23-28); the two
    coefficients are treated as independent, so the variances add. NaN for n <= 3.
    """
    if n <= 3 or not (np.isfinite(floor) and np.isfinite(observed)):
        return float("nan")
    zf, zo = (math.atanh(min(max(r, -0.9999), 0.9999)) for r in (floor, observed))
    r_mean = (floor + observed) / 2
    se = math.sqrt(2 * (1 + r_mean ** 2 / 2) / (n - 3))
    return (zf - zo) / se


# --------------------------------------------------------------------------- preconditions


def precondition_anchors(summary: pd.DataFrame, model: str = "GCN") -> Precondition:
    """``model``'s mean test metric within Platonov et al.'s ± std of their anchor, on every anchored graph run.

    ``summary``: :func:`compendium.graphs.harness.summarise` of the runs (percent).
    """
    anchors = published.load(PAPER).table("platonov_anchors").frame()
    anchors = anchors[anchors["row"] == model]
    mean = summary[summary["variant"] == model].set_index("dataset")["test_mean"]
    parts, met = [], True
    for rec in anchors.to_dict("records"):
        if rec["column"] not in mean.index:
            continue
        ours, tol = float(mean[rec["column"]]), float(rec["tolerance"])
        ok = abs(ours - rec["value"]) <= tol
        met &= ok
        parts.append(f"{rec['column']} {ours:.2f} vs {rec['value']:.2f} ± {tol:.2f}")
    if not parts:
        return Precondition(f"{model} baseline reaches Platonov et al.'s anchors", "within their ± std",
                            "no anchored graph (tolokers, minesweeper, ...) in this run", False)
    return Precondition(f"{model} baseline reaches Platonov et al.'s anchors", "within their ± std",
                        "; ".join(parts), met)


# --------------------------------------------------------------------------- published vs measured


def _measured(summary: pd.DataFrame, dataset: str, variant: str):
    hit = summary[(summary["dataset"] == dataset) & (summary["variant"] == variant)]
    return float(hit["test_mean"].iloc[0]) if len(hit) else None


def _absent(dataset: str, not_offline: Mapping[str, dict]) -> NotRun:
    if dataset in not_offline:
        return verdicts.not_run(f"{dataset} not offline ({not_offline[dataset]['reason']})", kind="data")
    return verdicts.not_run("not in this profile's datasets/models", kind="compute")


#: Platonov et al.'s rows that are models of the GFS set (their other rows have no counterpart here).
ANCHOR_ROWS = {"ResNet (MLP)": "MLP", "GCN": "GCN", "SAGE": "SAGE", "GAT": "GAT", "GT": "GT"}


def _left_out(left_out: Mapping[str, dict] | None, dataset: str, model: str) -> NotRun | None:
    entry = (left_out or {}).get(dataset) or {}
    if model in entry.get("models", []):
        return verdicts.not_run(f"{model} not run on {dataset} in this profile: {entry.get('reason', '')}", kind="compute")
    return None


def anchor_cells(summary: pd.DataFrame, not_offline: Mapping[str, dict],
                 left_out: Mapping[str, dict] | None = None) -> dict:
    """``{(row, column): value or NotRun}`` for table ``platonov_anchors`` from our plain models; a GNN the
    profile leaves out on a graph (``left_out``, as :func:`compendium.graphs.gfs.experiments.check_left_out`) is
    not run there, with the profile's reason."""
    out = {}
    for rec in published.load(PAPER).table("platonov_anchors").frame().to_dict("records"):
        key, ours = (rec["row"], rec["column"]), ANCHOR_ROWS.get(rec["row"])
        if ours is None:
            out[key] = verdicts.not_run("variant of Platonov et al. not in the GFS model set", kind="other")
            continue
        value = _measured(summary, rec["column"], ours)
        skipped = _left_out(left_out, rec["column"], ours)
        out[key] = value if value is not None else (skipped or _absent(rec["column"], not_offline))
    return out


def tuned_cells(summary: pd.DataFrame, not_offline: Mapping[str, dict]) -> dict:
    """``{(row, column): value or NotRun}`` for table ``tuned_gcn_gfs`` from our GCN+GFS runs."""
    out = {}
    for rec in published.load(PAPER).table("tuned_gcn_gfs").frame().to_dict("records"):
        value = _measured(summary, rec["row"], "GCN+GFS")
        out[(rec["row"], rec["column"])] = value if value is not None else _absent(rec["row"], not_offline)
    return out


def statistics_cells(graphs: Sequence[GraphData], not_offline: Mapping[str, dict]) -> dict:
    """``{(row, column): value or NotRun}`` for table ``dataset_statistics``: our recount of the loaded graphs
    (undirected edges counted once, edge homophily)."""
    ours = {}
    for g in graphs:
        ours.update({(g.name, "nodes"): g.num_nodes, (g.name, "edges"): g.edge_index.shape[1] // 2,
                     (g.name, "features"): g.num_features, (g.name, "classes"): g.num_classes,
                     (g.name, "h_edge"): edge_homophily(g)})
    out = {}
    for rec in published.load(PAPER).table("dataset_statistics").frame().to_dict("records"):
        key = (rec["row"], rec["column"])
        if key in ours:
            out[key] = ours[key]
        elif rec["row"] in not_offline:
            out[key] = verdicts.not_run(f"not offline: {not_offline[rec['row']]['reason']}", kind="data")
        else:
            out[key] = verdicts.not_run("dataset not loaded in this profile", kind="compute")
    return out


def headline_share(cases: pd.DataFrame) -> dict:
    """Counts behind the headline: cases, testable cases (>= :data:`MIN_SPLITS` splits), improved in mean,
    significant, the significant share of testable cases (percent) and its interval (percent)."""
    testable = cases[cases["n_splits"] >= MIN_SPLITS] if len(cases) else cases
    n, k = len(testable), int(testable["significant"].sum()) if len(testable) else 0
    lo, hi = share_interval(k, n)
    return {"cases": len(cases), "improved": int(cases["improved"].sum()) if len(cases) else 0,
            "testable": n, "significant": k, "share": 100 * k / n if n else float("nan"),
            "low": 100 * lo, "high": 100 * hi}


def headline_cells(cases: pd.DataFrame) -> dict:
    """``{(row, column): value or NotRun}`` for table ``headline``: our significant share, both editions."""
    h = headline_share(cases)
    value = h["share"] if h["testable"] else verdicts.not_run(
        f"no case with {MIN_SPLITS}+ splits in this profile", kind="compute")
    return {(rec["row"], rec["column"]): value
            for rec in published.load(PAPER).table("headline").frame().to_dict("records")}


# --------------------------------------------------------------------------- claims


def claim_headline(cases: pd.DataFrame, runs: pd.DataFrame, summary: pd.DataFrame, *, alpha: float,
                   scale: str, scale_reason: str = "", left_out: Mapping[str, dict] | None = None) -> pd.DataFrame:
    """"GFS significantly improves most GNN x dataset cases (83.75 % of 80)", on our cases.

    A case is significant when its one-sided paired t-test over splits (:func:`experiments.gfs_cases`) is
    below ``alpha``. Our share of significant cases among the testable ones has an exact 95 % interval:
    above it, the paper's share is refuted (not supported); containing it with a lower bound above one
    half, supported; else too few cases to tell (holds = None). Preconditions: converged runs, enough
    splits in every case, the GCN baseline at Platonov et al.'s anchors. Cases a profile leaves out
    (``left_out``) are named in the evidence.
    """
    paper_pct = published_share()
    h = headline_share(cases)
    if h["testable"] == 0:
        holds = None
    elif h["high"] < paper_pct:
        holds = False
    elif h["low"] > 100 * MOST:
        holds = True
    else:
        holds = None
    evidence = (f"{h['significant']}/{h['testable']} cases with {MIN_SPLITS}+ splits significant (one-sided paired "
                f"t-test, alpha {alpha:g}): {h['share']:.1f} %, exact {100 * CONFIDENCE:.0f} % interval "
                f"[{h['low']:.1f}, {h['high']:.1f}] % against the paper's {paper_pct:g} %; "
                f"{h['improved']}/{h['cases']} cases improved in mean") if h["testable"] else (
                f"no case has {MIN_SPLITS}+ paired splits; {h['improved']}/{h['cases']} cases improved in mean")
    skipped = [f"{m} on {d}" for d, entry in (left_out or {}).items() for m in entry.get("models", [])]
    if skipped:
        evidence += f"; not run here: {', '.join(skipped)}"
    n_splits = {f"{d}/{m}": int(n) for d, m, n in cases[["dataset", "model", "n_splits"]].itertuples(index=False)}
    pres = [precondition_converged(runs[runs["model"] != "MLP"]), precondition_splits(n_splits),
            precondition_anchors(summary)]
    return verdicts.claim(
        PAPER, f"GFS significantly improves most GNN x dataset cases ({paper_pct:g} % of 80 in arXiv v1)", holds,
        evidence, scale=scale, scale_reason=scale_reason, preconditions=pres,
        rule="compendium.graphs.gfs.claims.claim_headline", source="arXiv 2411.07663v1 abstract")


def claim_tfi_selection(sel_runs: pd.DataFrame, *, scale: str, scale_reason: str = "") -> pd.DataFrame:
    """"TFI outperforms other feature-selection criteria for GFS", per data set against the best other one.

    On each data set, TFI − (the other criterion with the highest mean) over paired splits with its 95 %
    interval: better (interval above 0), worse (below) or unresolved. Holds when TFI is better on more than
    half the data sets. Preconditions: converged runs, enough splits, and the difference resolved on more
    than half the data sets (else the criteria are within noise of each other here).
    """
    gfs = sel_runs[~sel_runs["selection"].str.startswith("none")]
    rows = {}
    for d, grp in gfs.groupby("dataset", sort=False):
        wide = grp.pivot_table(index="split", columns="selection", values="test")
        if "TFI" not in wide.columns or wide.shape[1] < 2:
            continue
        others = wide.drop(columns="TFI")
        rival = others.mean().idxmax()
        mean, lo, hi = paired_interval(100 * (wide["TFI"] - others[rival]).dropna())
        rows[d] = {"rival": rival, "gain": mean, "low": lo, "high": hi, "splits": int(wide["TFI"].notna().sum()),
                   "outcome": "better" if lo > 0 else ("worse" if hi < 0 else "unresolved")}
    n = len(rows)
    better = [d for d, r in rows.items() if r["outcome"] == "better"]
    resolved = [d for d, r in rows.items() if r["outcome"] != "unresolved"]
    holds = None if n == 0 else len(better) > n * MOST
    evidence = "; ".join(f"{d}: TFI − {r['rival']} {r['gain']:+.2f} points [{r['low']:+.2f}, {r['high']:+.2f}] "
                         f"over {r['splits']} splits ({r['outcome']})" for d, r in rows.items()) or "no data set compared"
    pres = [precondition_converged(sel_runs), precondition_splits({d: r["splits"] for d, r in rows.items()}, "data set"),
            Precondition(f"difference resolved ({100 * CONFIDENCE:.0f} % interval excludes 0)",
                         "on more than half the data sets", f"{len(resolved)}/{n}", n > 0 and len(resolved) > n * MOST)]
    return verdicts.claim(PAPER, "TFI outperforms other feature-selection criteria for GFS", holds, evidence,
                          scale=scale, scale_reason=scale_reason, preconditions=pres,
                          rule="compendium.graphs.gfs.claims.claim_tfi_selection",
                          source="arXiv 2411.07663 (ICLR version)")


def claim_tfi_matches_official(agree: pd.DataFrame) -> pd.DataFrame:
    """"TFI as defined in the paper regenerates the authors' committed vectors", within the estimator's noise.

    ``agree``: :func:`experiments.tfi_agreement` (per data set and split: Spearman with the authors'
    vector, Spearman between two of our seeds, number of features). Holds when on no case the first lies
    significantly below the second (:func:`spearman_gap_z` beyond the two-sided 95 % normal quantile).
    Preconditions: the noise floor (a second seed) measured on every case, and at least one case with
    enough features for the test.
    """
    n = len(agree)
    floor_col = "spearman ours seed vs seed"
    floor = agree[floor_col] if floor_col in agree else pd.Series([np.nan] * n, index=agree.index)
    z = pd.Series([spearman_gap_z(f, o, int(k)) for f, o, k in zip(floor, agree["spearman"], agree["features"])],
                  index=agree.index, dtype=float)
    limit = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    below = agree[z > limit]
    testable = int(z.notna().sum())
    holds = None if testable == 0 else below.empty
    evidence = (f"Spearman with the authors' vectors vs our seed-vs-seed Spearman on {n} data set × split cases "
                f"({testable} with enough features to test): "
                + (f"significantly lower on {', '.join(f'{d} split {s}' for d, s in zip(below['dataset'], below['split']))}"
                   if len(below) else f"never significantly lower (largest gap {z.max():.2f} standard errors, "
                   f"limit {limit:.2f})" if testable else "no case to test"))
    pres = [Precondition("noise floor measured (a second estimator seed)", f"on all {n} cases",
                         f"{int(floor.notna().sum())}/{n}", n > 0 and int(floor.notna().sum()) == n),
            Precondition("cases with more than 3 features (Fisher z needs n > 3)", ">= 1", testable, testable >= 1)]
    return verdicts.claim(PAPER, "TFI as defined in the paper regenerates the authors' committed TFI vectors "
                          "(up to the estimator's own noise)", holds, evidence, scale="paper", preconditions=pres,
                          rule="compendium.graphs.gfs.claims.claim_tfi_matches_official",
                          source="KTTRCDL/graph-feature-selection@12ea16a data/TFI", table="tfi")
