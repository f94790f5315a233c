"""The GSL chapter's experiments (arXiv 2411.07672) on the shared graph data, and the claim tests.

* :func:`csbm_study`: CSBM-H graphs across homophily ``h`` and seeds: ``I(Y; B)``, ``I(Y; ÂB)``,
  ``I(Y; Â'B)`` for each construction, the homophily of ``A`` and ``A'``, and the accuracy of
  ``MLP(B)``, ``GCN(B, A)`` and ``GCN(B, A')`` (the paper's Figures 1/3 set-up).
* :func:`run_variants` / :func:`main_variants`: GNNs with and without GSL under the same bases on
  real graphs, one row per (variant, split).
* :func:`paired`, :func:`gsl_vs_baseline`, :func:`ablation`: the comparisons the claims rest on,
  paired over splits (two-sided paired t-test).
* :func:`claim_no_mi_gain`, :func:`claim_bases_drive_gains`, :func:`claim_gsl_not_consistent`: the
  three claims with their decision rules, each returning ``(holds, evidence)`` for
  :func:`compendium.verdicts.claim`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm.auto import tqdm

from ..harness import TrainConfig
from ..tfi import global_z_norm
from .adjacency import edge_homophily
from .bases import PRETRAINED, GRACEConfig, basis_ax, make_basis
from .construct import construct
from .csbm import CSBMH, csbm_h
from .fusion import GraphSet, GSLNet
from .mi import mi_knn
from .train import GSL_RECIPE, GSLData, fit

__all__ = [
    "Variant", "csbm_batch", "csbm_study", "run_variant", "run_variants", "main_variants", "fusion_variants", "paired", "gsl_vs_baseline",
    "ablation", "claim_no_mi_gain", "claim_bases_drive_gains", "claim_gsl_not_consistent", "claim_fusion_designs",
    "new_graph", "paper_claims", "plot_csbm",
]


# ------------------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One model: a backbone reading basis ``basis`` over the original graph (``construction=None``)
    or over views fused with a graph built from the basis."""

    backbone: str = "GCN"
    basis: str = "X"
    construction: str | None = None  # knn / cos-node / cos-graph; None = no GSL
    fusion: str = "single"  # single (new graph alone when construction is set) / early / late
    shared: bool = False

    @property
    def gsl(self) -> bool:
        return self.construction is not None

    @property
    def name(self) -> str:
        if not self.gsl:
            return f"{self.backbone}({self.basis})"
        how = "new graph only" if self.fusion == "single" else f"{self.fusion}, {'shared' if self.shared else 'separate'}"
        return f"{self.backbone}+GSL({self.basis}; {self.construction}; {how})"


def _per_copy(b) -> bool:
    return isinstance(b, torch.Tensor) and b.dim() == 3


def new_graph(d: GSLData, basis, basis_name: str, construction: str, k: int) -> GraphSet:
    """``G'`` built from the basis: one graph for a shared basis, one per split for a per-split
    basis; cached on ``d``."""
    key = ("G'", basis_name, construction, k)
    if key not in d.cache:
        if _per_copy(basis):
            ei = [construct(construction, basis[i], k=k) for i in range(basis.shape[0])]
        else:
            ei = construct(construction, basis, k=k)
        d.cache[key] = GraphSet(ei, d.num_nodes, f"{construction}({basis_name})")
    return d.cache[key]


def _homophily(g: GraphSet, labels: torch.Tensor) -> float:
    return float(np.mean([edge_homophily(e, labels[min(i, labels.shape[0] - 1)]) for i, e in enumerate(g.edge_indices)]))


def run_variant(d: GSLData, v: Variant, cfg: TrainConfig = GSL_RECIPE, k: int = 5, gcl: GRACEConfig | None = None,
                basis=None) -> pd.DataFrame:
    """Train one variant on every split of ``d`` (one batched fit); one row per split."""
    if basis is None:
        basis, info = make_basis(d, v.basis, cfg, gcl)
    else:
        info = {}
    graphs = [d.graph]
    hom_new, edges_new = float("nan"), 0.0
    if v.gsl:
        g2 = new_graph(d, basis, v.basis, v.construction, k)
        graphs = [g2] if v.fusion == "single" else [d.graph, g2]
        hom_new, edges_new = _homophily(g2, d.labels), g2.num_edges
    torch.manual_seed(cfg.seed)
    model = GSLNet(v.backbone, d.copies, basis.shape[-1], cfg.hidden, d.out_dim, layers=cfg.gnn_layers,
                   dropout=cfg.dropout, fusion=v.fusion, shared=v.shared, num_views=len(graphs))
    r = fit(model, d, basis, graphs, cfg)
    rows = []
    for s in range(d.copies):
        rows.append({"dataset": d.name, "variant": v.name, "backbone": v.backbone, "basis": v.basis,
                     "construction": v.construction or "", "fusion": v.fusion if v.gsl else "",
                     "shared": v.shared if v.gsl else None, "gsl": v.gsl, "split": s, "val": r["val"][s],
                     "test": r["test"][s], "train": r["train"][s], "best_step": int(r["best_step"][s]),
                     "seconds": r["seconds"] / d.copies, "steps": r["steps"], "metric": d.metric,
                     "homophily_new": hom_new, "edges_new": edges_new,
                     "pretrain_test": float(info["test"][s]) if "test" in info else float("nan")})
    return pd.DataFrame(rows)


def run_variants(d: GSLData, variants: list[Variant], cfg: TrainConfig = GSL_RECIPE, k: int = 5,
                 gcl: GRACEConfig | None = None, progress: bool = True, desc: str | None = None) -> pd.DataFrame:
    """Every variant on every split of ``d``; one row per (variant, split), metrics as fractions.
    ``seconds`` is the batched fit's wall time divided by the number of splits."""
    frames = [run_variant(d, v, cfg, k, gcl) for v in tqdm(variants, desc=desc or d.name, leave=False, disable=not progress)]
    return pd.concat(frames, ignore_index=True)


def main_variants(backbones=("GCN",), bases=("X", "AX", "MLP", "GCN", "GCL"), construction: str = "knn",
                  fusion: str = "early", shared: bool = False, with_mlp: bool = True) -> list[Variant]:
    """For every backbone and basis: the GNN without GSL and with GSL (same basis); plus ``MLP(B)``."""
    out = []
    for b in bases:
        if with_mlp:
            out.append(Variant("MLP", b))
        for bb in backbones:
            out.append(Variant(bb, b))
            out.append(Variant(bb, b, construction, fusion, shared))
    return out


def fusion_variants(backbone: str = "GCN", bases=("X",), constructions=("knn", "cos-node", "cos-graph")) -> list[Variant]:
    """Every construction × {new graph only, early/late × shared/separate}, with the no-GSL baseline."""
    out = []
    for b in bases:
        out.append(Variant(backbone, b))
        for c in constructions:
            out.append(Variant(backbone, b, c, "single"))
            for f in ("early", "late"):
                for sh in (True, False):
                    out.append(Variant(backbone, b, c, f, sh))
    return out


# ------------------------------------------------------------------------------------- CSBM-H


def csbm_batch(h: float, seeds, params: CSBMH | None = None) -> GSLData:
    """The CSBM-H graphs of one homophily level, one copy per seed (features, graph, split per copy)."""
    graphs = [csbm_h(h, seed=s, params=params) for s in seeds]
    n = graphs[0].num_nodes
    x = torch.stack([global_z_norm(g.x) for g in graphs])
    y = torch.stack([g.y for g in graphs])
    return GSLData(name=f"CSBM-H(h={h:g})", x=x, y=y, graph=GraphSet([g.edge_index for g in graphs], n, "A"),
                   train_masks=torch.cat([g.train_masks for g in graphs]), val_masks=torch.cat([g.val_masks for g in graphs]),
                   test_masks=torch.cat([g.test_masks for g in graphs]), binary=False, num_classes=2,
                   metric="accuracy", cache={"graphs": graphs})


def csbm_study(hs=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), seeds=range(10),
               bases=("X", "AX"), constructions=("knn", "cos-node", "cos-graph"), k: int = 5,
               params: CSBMH | None = None, cfg: TrainConfig = GSL_RECIPE, train_models: bool = True,
               model_constructions=("knn",), fused_model: bool = False, mi_k: int = 3,
               progress: bool = True) -> pd.DataFrame:
    """MI and accuracy on CSBM-H graphs; one row per (h, seed, basis, construction).

    Columns: ``I_B`` = I(Y; B), ``I_AB`` = I(Y; ÂB) on the original graph, ``I_A'B`` = I(Y; Â'B) on
    the graph built from B, in nats (estimated on all nodes); ``h_A``/``h_A'`` edge homophily; and,
    with ``train_models``, the test accuracy of ``MLP(B)`` and ``GCN(B, A)`` and, for the
    constructions in ``model_constructions``, ``GCN(B, A')`` (new graph alone) and with
    ``fused_model`` ``GCN(B, A+A')`` (early fusion, separate parameters); NaN elsewhere.
    """
    rows = []
    seeds = list(seeds)
    for h in tqdm(hs, desc="CSBM-H", leave=False, disable=not progress):
        d = csbm_batch(h, seeds, params)
        y = d.labels
        for bname in bases:
            b = d.x if bname == "X" else basis_ax(d)
            ab = d.graph.apply(d.graph.sym, b)
            base_acc = {}
            if train_models:
                for name, v in (("MLP(B)", Variant("MLP", bname)), ("GCN(B,A)", Variant("GCN", bname))):
                    base_acc[name] = run_variant(d, v, cfg, k, basis=b)["test"].to_numpy()
            for c in constructions:
                g2 = new_graph(d, b, bname, c, k)
                ab2 = g2.apply(g2.sym, b)
                acc = dict(base_acc)
                if train_models:
                    nan = np.full(len(seeds), np.nan)
                    acc["GCN(B,A')"] = (run_variant(d, Variant("GCN", bname, c, "single"), cfg, k, basis=b)["test"].to_numpy()
                                        if c in model_constructions else nan)
                    if fused_model:
                        acc["GCN(B,A+A')"] = (run_variant(d, Variant("GCN", bname, c, "early", False), cfg, k, basis=b)["test"].to_numpy()
                                              if c in model_constructions else nan)
                for i, s in enumerate(seeds):
                    row = {"h": h, "seed": s, "basis": bname, "construction": c,
                           "I_B": mi_knn(b[i], y[i], k=mi_k, random_state=s),
                           "I_AB": mi_knn(ab[i], y[i], k=mi_k, random_state=s),
                           "I_A'B": mi_knn(ab2[i], y[i], k=mi_k, random_state=s),
                           "h_A": edge_homophily(d.graph.edge_indices[i], y[i]),
                           "h_A'": edge_homophily(g2.edge_indices[i], y[i])}
                    row.update({name: float(v[i]) for name, v in acc.items()})
                    rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- comparisons


def paired(a: pd.Series, b: pd.Series) -> dict:
    """``a − b`` paired over splits (both indexed by split): mean, std, n, two-sided t-test p-value."""
    j = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
    diff = j["a"] - j["b"]
    n = len(diff)
    if n >= 2 and diff.std(ddof=1) > 0:
        p = float(stats.ttest_rel(j["a"], j["b"]).pvalue)
    else:
        p = float("nan") if n < 2 else (1.0 if diff.abs().max() == 0 else 0.0)
    return {"diff": float(diff.mean()) if n else float("nan"), "diff_std": float(diff.std(ddof=1)) if n > 1 else float("nan"),
            "n": n, "p": p}


def _by_split(runs: pd.DataFrame, dataset: str, variant: str, col: str = "test") -> pd.Series:
    r = runs[(runs.dataset == dataset) & (runs.variant == variant)]
    return r.set_index("split")[col]


def _outcome(diff: float, p: float, alpha: float) -> str:
    if np.isnan(p) or p >= alpha:
        return "tie"
    return "better" if diff > 0 else "worse"


def gsl_vs_baseline(runs: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Every GSL variant against the same backbone on the same basis without GSL, in points (×100)."""
    out = []
    for (ds, var), r in runs[runs.gsl].groupby(["dataset", "variant"], sort=False):
        first = r.iloc[0]
        base = f"{first.backbone}({first.basis})"
        c = paired(_by_split(runs, ds, var), _by_split(runs, ds, base))
        gsl_m, base_m = _by_split(runs, ds, var).mean(), _by_split(runs, ds, base).mean()
        out.append({"dataset": ds, "backbone": first.backbone, "basis": first.basis, "construction": first.construction,
                    "fusion": first.fusion, "shared": first.shared, "variant": var, "baseline": base,
                    "baseline_test": 100 * base_m, "gsl_test": 100 * gsl_m, "gain": 100 * c["diff"],
                    "gain_std": 100 * c["diff_std"], "n": c["n"], "p": c["p"], "outcome": _outcome(c["diff"], c["p"], alpha)})
    return pd.DataFrame(out)


def ablation(runs: pd.DataFrame, backbone: str = "GCN", construction: str = "knn", fusion: str = "early",
             shared: bool = False, pretrained=PRETRAINED, alpha: float = 0.05) -> pd.DataFrame:
    """Separate the pretrained basis' gain from the new graph's, per dataset (points, paired over splits).

    ``B*`` is the pretrained basis with the best mean **validation** metric of ``backbone(B, A)``
    (never chosen on test). Columns: the four cells of {X, B*} × {A, A + A'} and
    ``basis gain`` = backbone(B*, A) − backbone(X, A), ``graph gain`` = GSL(B*) − backbone(B*, A),
    ``graph gain on X`` = GSL(X) − backbone(X, A), ``total`` = GSL(B*) − backbone(X, A).
    """
    v = Variant(backbone, "X", construction, fusion, shared)
    rows = []
    for ds in dict.fromkeys(runs.dataset):
        r = runs[runs.dataset == ds]
        cands = [b for b in pretrained if f"{backbone}({b})" in set(r.variant)]
        if not cands:
            continue
        val = {b: _by_split(runs, ds, f"{backbone}({b})", "val").mean() for b in cands}
        best = max(val, key=val.get)
        plain = _by_split(runs, ds, f"{backbone}(X)")
        gsl_x = _by_split(runs, ds, replace(v, basis="X").name)
        base_b = _by_split(runs, ds, f"{backbone}({best})")
        gsl_b = _by_split(runs, ds, replace(v, basis=best).name)
        bg, gg, gx, tot = paired(base_b, plain), paired(gsl_b, base_b), paired(gsl_x, plain), paired(gsl_b, plain)
        rows.append({"dataset": ds, "B*": best, f"{backbone}(X, A)": 100 * plain.mean(),
                     f"{backbone}+GSL(X)": 100 * gsl_x.mean(), f"{backbone}(B*, A)": 100 * base_b.mean(),
                     f"{backbone}+GSL(B*)": 100 * gsl_b.mean(),
                     "basis gain": 100 * bg["diff"], "p basis": bg["p"], "graph gain": 100 * gg["diff"], "p graph": gg["p"],
                     "graph gain on X": 100 * gx["diff"], "p graph on X": gx["p"], "total": 100 * tot["diff"], "p total": tot["p"],
                     "n": bg["n"]})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- claims


def claim_no_mi_gain(csbm: pd.DataFrame, tol: float = 0.01, alpha: float = 0.05) -> tuple[bool | None, str, pd.DataFrame]:
    """"No MI gain from the constructed graph": ``I(Y; Â'B) − I(Y; B)`` over seeds, per (basis,
    construction, h). A cell counts as a gain when its mean exceeds ``tol`` nats and a one-sided
    t-test over seeds gives ``p < alpha``. Holds when no cell gains; not supported when more than
    10 % of cells gain; inconclusive in between."""
    g = csbm.assign(gain=csbm["I_A'B"] - csbm["I_B"], gain_A=csbm["I_AB"] - csbm["I_B"])
    cells = []
    for (b, c, h), r in g.groupby(["basis", "construction", "h"]):
        x = r["gain"].to_numpy()
        p = float(stats.ttest_1samp(x, 0.0, alternative="greater").pvalue) if len(x) > 1 and x.std() > 0 else float("nan")
        cells.append({"basis": b, "construction": c, "h": h, "I_B": r["I_B"].mean(), "I_A'B": r["I_A'B"].mean(),
                      "I_AB": r["I_AB"].mean(), "gain": x.mean(), "p": p,
                      "gains": bool(x.mean() > tol and (np.isnan(p) or p < alpha))})
    cells = pd.DataFrame(cells)
    n_gain, n = int(cells.gains.sum()), len(cells)
    frac = n_gain / n if n else float("nan")
    holds = True if n_gain == 0 else (False if frac > 0.10 else None)
    worst = cells.loc[cells.gain.idxmax()]
    orig = g.groupby("basis")["gain_A"].max()
    evidence = (f"CSBM-H, {g.seed.nunique()} seeds × {g.h.nunique()} homophily levels × {g.basis.nunique()} bases × "
                f"{g.construction.nunique()} constructions: I(Y; Â'B) exceeds I(Y; B) by more than {tol} nats "
                f"(one-sided p < {alpha}) in {n_gain}/{n} cells; largest mean gain {worst.gain:+.3f} nats "
                f"(B = {worst.basis}, {worst.construction}, h = {worst.h:g}). For contrast, the original graph's "
                f"convolution gains up to {', '.join(f'{b}: {v:+.3f}' for b, v in orig.items())} nats.")
    return holds, evidence, cells


def claim_bases_drive_gains(abl: pd.DataFrame, alpha: float = 0.05) -> tuple[bool | None, str]:
    """"Pretrained bases, not GSL, drive the gains": on the datasets where GSL(B*) beats the plain
    GNN significantly, the basis gain is at least the graph gain, and across all datasets the
    graph gain is significant on at most a third of them. Not supported when either fails clearly
    (a significant graph gain larger than the basis gain on more than a third of the datasets);
    inconclusive when no dataset shows a significant total gain."""
    n = len(abl)
    sig_total = abl[(abl["p total"] < alpha) & (abl["total"] > 0)]
    graph_sig = abl[(abl["p graph"] < alpha) & (abl["graph gain"] > 0)]
    graph_dominates = abl[(abl["p graph"] < alpha) & (abl["graph gain"] > 0) & (abl["graph gain"] > abl["basis gain"])]
    basis_dominates = sig_total[sig_total["basis gain"] >= sig_total["graph gain"]]
    if len(graph_dominates) > n / 3:
        holds = False
    elif len(sig_total) == 0:
        holds = None
    else:
        holds = len(basis_dominates) >= len(sig_total) / 2 and len(graph_sig) <= n / 3
    fmt = lambda r: f"{r.dataset} ({r['B*']}: basis {r['basis gain']:+.1f}, graph {r['graph gain']:+.1f})"
    evidence = (f"{n} datasets, GCN, paired over splits. GSL on the best pretrained basis beats plain GCN(X, A) "
                f"significantly on {len(sig_total)}: {', '.join(fmt(r) for _, r in sig_total.iterrows()) or 'none'}. "
                f"The basis accounts for at least as much as the new graph on {len(basis_dominates)} of them. "
                f"The new graph adds a significant gain over GCN(B*, A) on {len(graph_sig)}/{n} datasets"
                f"{': ' + ', '.join(graph_sig.dataset) if len(graph_sig) else ''}. Mean over datasets: basis gain "
                f"{abl['basis gain'].mean():+.2f}, graph gain {abl['graph gain'].mean():+.2f} points.")
    return holds, evidence


def claim_gsl_not_consistent(cmp: pd.DataFrame, consistent: float = 0.8, alpha: float = 0.05) -> tuple[bool | None, str]:
    """"GSL does not consistently beat the baseline": GNN+GSL vs the same GNN on the same basis, per
    (dataset, backbone, basis). Holds when GSL is significantly better in fewer than half of the
    comparisons; not supported when it is in at least ``consistent`` of them; inconclusive between."""
    n = len(cmp)
    counts = cmp.outcome.value_counts()
    better, worse, tie = (int(counts.get(k, 0)) for k in ("better", "worse", "tie"))
    frac = better / n if n else float("nan")
    holds = True if frac < 0.5 else (False if frac >= consistent else None)
    evidence = (f"{n} comparisons (dataset × backbone × basis, paired over splits, p < {alpha}): GSL significantly "
                f"better in {better}, worse in {worse}, no significant difference in {tie}; mean gain "
                f"{cmp.gain.mean():+.2f} points (median {cmp.gain.median():+.2f}).")
    return holds, evidence


# ------------------------------------------------------------------------------------- the paper's claims, figure


def paper_claims() -> dict[str, dict]:
    """The claims recorded in ``compendium/published/gsl.yaml`` (id → text, source)."""
    from importlib import resources

    import yaml

    raw = yaml.safe_load(resources.files("compendium.published").joinpath("gsl.yaml").read_text())
    return {c["id"]: c for c in raw.get("claims", [])}


def claim_fusion_designs(fus: pd.DataFrame, alpha: float = 0.05) -> tuple[bool | None, str, pd.DataFrame]:
    """"Early fusion and parameter separation are effective": from :func:`gsl_vs_baseline` rows of
    the fusion ablation, the mean gain over the no-GSL baseline of each (fusion, shared) design.
    Holds when early fusion with separate parameters has the highest mean gain of the fused designs
    and is not significantly worse than the baseline on most datasets; not supported when another
    design is better by more than one point on average; inconclusive otherwise."""
    f = fus.copy()
    f["design"] = np.where(f.fusion == "single", "new graph only",
                           f.fusion + np.where(f.shared.astype(bool), ", shared", ", separate"))
    per = f.groupby("design").agg(gain=("gain", "mean"), better=("outcome", lambda o: int((o == "better").sum())),
                                   worse=("outcome", lambda o: int((o == "worse").sum())), n=("outcome", "size"))
    per = per.sort_values("gain", ascending=False)
    fused = per.drop(index="new graph only", errors="ignore")
    es = "early, separate"
    if es not in fused.index:
        return None, "early fusion with separate parameters was not run", per
    top = fused.index[0]
    gap = fused.gain.iloc[0] - fused.loc[es, "gain"]
    worse_most = fused.loc[es, "worse"] > fused.loc[es, "n"] / 2
    holds = True if (top == es and not worse_most) else (False if gap > 1.0 or worse_most else None)
    evidence = (f"{f.dataset.nunique()} datasets × {f.construction.nunique()} constructions, GCN on basis "
                f"{', '.join(sorted(f.basis.unique()))}; mean gain over the same GCN without GSL, in points: "
                + "; ".join(f"{i} {r.gain:+.2f} (better {int(r.better)}, worse {int(r.worse)} of {int(r.n)})" for i, r in per.iterrows())
                + f". Best fused design: {top}.")
    return holds, evidence, per


def plot_csbm(csbm: pd.DataFrame, construction: str = "knn"):
    """The paper's Figure 1/3 set-up: MI (top) and test accuracy (bottom) against homophily, one
    column per basis; mean over seeds with a ±1 std band. Returns the figure."""
    import matplotlib.pyplot as plt

    df = csbm[csbm.construction == construction]
    bases = list(dict.fromkeys(df.basis))
    acc_cols = [c for c in ("MLP(B)", "GCN(B,A)", "GCN(B,A')", "GCN(B,A+A')") if c in df.columns]
    rows = 2 if acc_cols else 1
    fig, axes = plt.subplots(rows, len(bases), figsize=(5.2 * len(bases), 3.6 * rows), squeeze=False, sharex=True)
    mi_lines = [("I_B", "I(Y; B)", "black"), ("I_AB", "I(Y; ÂB), original graph", "tab:green"),
                ("I_A'B", f"I(Y; Â'B), {construction} graph", "tab:red")]
    acc_lines = {"MLP(B)": "black", "GCN(B,A)": "tab:green", "GCN(B,A')": "tab:red", "GCN(B,A+A')": "tab:purple"}
    for j, b in enumerate(bases):
        g = df[df.basis == b].groupby("h")
        for col, label, colour in mi_lines:
            m, s = g[col].mean(), g[col].std(ddof=1).fillna(0)
            axes[0, j].plot(m.index, m.values, marker="o", ms=3, color=colour, label=label)
            axes[0, j].fill_between(m.index, m - s, m + s, color=colour, alpha=0.2)
        axes[0, j].set_title(f"B = {'ÂX' if b == 'AX' else b}")
        axes[0, j].set_ylabel("MI with labels (nats)")
        if acc_cols:
            for col in acc_cols:
                m, s = g[col].mean(), g[col].std(ddof=1).fillna(0)
                axes[1, j].plot(m.index, 100 * m.values, marker="o", ms=3, color=acc_lines[col],
                                label=col.replace("B,", "B, ").replace("A+A'", "A + A'"))
                axes[1, j].fill_between(m.index, 100 * (m - s), 100 * (m + s), color=acc_lines[col], alpha=0.15)
            axes[1, j].set_ylabel("test accuracy (%)")
        axes[-1, j].set_xlabel("homophily h of the original graph")
    axes[0, -1].legend(fontsize=8, loc="best")
    if acc_cols:
        axes[1, -1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
