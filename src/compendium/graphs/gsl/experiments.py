"""The GSL chapter's experiments (arXiv 2411.07672) on the shared graph data, and the claim tests.

* :func:`csbm_study`: CSBM-H graphs across homophily ``h`` and seeds: ``I(Y; B)``, ``I(Y; ÂB)``,
  ``I(Y; Â'B)`` for each construction, the homophily of ``A`` and ``A'``, and the accuracy of
  ``MLP(B)``, ``GCN(B, A)`` and ``GCN(B, A')`` (the paper's Figures 1/3 set-up).
* :func:`run_variants` / :func:`main_variants`: GNNs with and without GSL under the same bases on
  real graphs, one row per (variant, split).
* :func:`tune_baseline`: the plain GCN tuned on validation over :data:`BASELINE_GRID`; the chosen
  recipe is then every model's recipe on that data set (GSL gets no search of its own, so the
  comparison leans towards the baseline, never against it);
* :func:`gfs_reference`: the GFS chapter's GCN runs on the graphs both chapters use (a check that the
  baseline is not handicapped);
* :func:`paired`, :func:`gsl_vs_baseline`, :func:`ablation`: the comparisons the claims rest on,
  paired over splits (two-sided paired t-test).

The claim rules are in :mod:`.claims`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import product

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm.auto import tqdm

from ..datasets import global_z_norm
from ..harness import TrainConfig
from .adjacency import edge_homophily
from .bases import PRETRAINED, GRACEConfig, basis_ax, make_basis
from .construct import construct
from .csbm import CSBMH, csbm_h
from .fusion import GraphSet, GSLNet
from .mi import mi_knn
from .train import GSL_RECIPE, GSLData, fit

__all__ = [
    "Variant", "csbm_batch", "csbm_study", "run_variant", "run_variants", "main_variants", "fusion_variants", "paired", "gsl_vs_baseline",
    "ablation", "BASELINE_GRID", "grid_configs", "tune_baseline", "run_tuned", "gfs_reference", "scope", "new_graph", "paper_claims",
    "plot_csbm",
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
                     "steps": int(r["steps"][s]), "max_steps": r["max_steps"], "stop_reason": r["stop_reason"][s],
                     "converged": bool(r["converged"][s]), "seconds": r["seconds"] / d.copies, "metric": d.metric,
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


# ------------------------------------------------------------------------------------- the baseline


#: The plain GCN's tuning grid (issue 17: "the GCN baseline tuned on validation over a small grid,
#: reported"): OpenGSL's defaults (lr 1e-2, dropout 0.5; weight decay 5e-4) and one step down in each,
#: four configurations, the most the paper profile's CPU budget allows beside the grid of variants.
BASELINE_GRID = {"lr": (1e-2, 5e-3), "dropout": (0.5, 0.2)}


def grid_configs(cfg: TrainConfig, grid: dict = BASELINE_GRID) -> list[TrainConfig]:
    """Every combination of ``grid`` applied to ``cfg`` (in the grid's order)."""
    keys = list(grid)
    return [replace(cfg, **dict(zip(keys, values))) for values in product(*(grid[k] for k in keys))]


def tune_baseline(d: GSLData, cfg: TrainConfig = GSL_RECIPE, grid: dict = BASELINE_GRID,
                  backbone: str = "GCN") -> tuple[TrainConfig, pd.DataFrame, pd.DataFrame]:
    """``backbone(X, A)`` for every configuration of ``grid`` on every split of ``d``; the configuration
    with the best mean validation metric (first on ties) is returned with one row per configuration
    (``val``/``test`` means as fractions, the share of converged runs, ``chosen``) and the chosen
    configuration's runs."""
    rows, chosen_runs, best = [], None, None
    for c in grid_configs(cfg, grid):
        r = run_variant(d, Variant(backbone, "X"), c)
        val = float(r["val"].mean())
        rows.append({"dataset": d.name, **{k: getattr(c, k) for k in grid}, "val": val, "test": float(r["test"].mean()),
                     "test_std": float(r["test"].std(ddof=1)) if len(r) > 1 else float("nan"),
                     "converged": float(r["converged"].mean()), "median_best_step": float(r["best_step"].median())})
        if best is None or val > best[0]:
            best, chosen_runs = (val, c), r
    table = pd.DataFrame(rows)
    table["chosen"] = [all(getattr(best[1], k) == row[k] for k in grid) for row in table.to_dict("records")]
    return best[1], table, chosen_runs


def run_tuned(d: GSLData, variants: list[Variant], cfg: TrainConfig = GSL_RECIPE, k: int = 5,
              gcl: GRACEConfig | None = None, grid: dict = BASELINE_GRID) -> tuple[TrainConfig, pd.DataFrame, pd.DataFrame]:
    """:func:`tune_baseline` on ``d``, then every other variant with the chosen recipe (the baseline's
    runs are reused). Returns the chosen recipe, the tuning table and one row per (variant, split)."""
    chosen, tuning, base_runs = tune_baseline(d, cfg, grid)
    baseline = Variant("GCN", "X")
    others = run_variants(d, [v for v in variants if v != baseline], chosen, k, gcl, progress=False)
    frames = [base_runs, others] if baseline in variants else [others]
    return chosen, tuning, pd.concat(frames, ignore_index=True)


def gfs_reference(path, datasets, model: str = "GCN") -> pd.DataFrame:
    """The GFS chapter's ``model`` runs (``variant == model``: no feature selection) on ``datasets``, one
    row per (dataset, split) with ``test`` as a fraction; empty when the file is absent. ``path``: the
    chapter's ``gfs.runs.csv`` in ``book/gfs/``."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=["dataset", "split", "test", "steps", "best_step"])
    runs = pd.read_csv(path)
    keep = runs[(runs["variant"] == model) & runs["dataset"].isin(list(datasets))]
    return keep[[c for c in ("dataset", "split", "test", "steps", "best_step", "max_steps", "converged") if c in keep]].reset_index(drop=True)


def scope(runs: pd.DataFrame) -> dict:
    """What ran, for the chapter's prose: ``backbones`` (the GNNs, without the MLP reference),
    ``datasets`` and the text forms ``backbones_text`` / ``datasets_text`` / ``count_text``."""
    backbones = [b for b in dict.fromkeys(runs["backbone"]) if b != "MLP"]
    datasets = list(dict.fromkeys(runs["dataset"]))
    names = {"SAGE": "GraphSAGE"}

    def join(items):
        items = list(items)
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

    return {"backbones": backbones, "datasets": datasets, "backbones_text": join(names.get(b, b) for b in backbones),
            "datasets_text": join(datasets), "count_text": f"{len(datasets)} graph{'s' if len(datasets) != 1 else ''}"}


# ------------------------------------------------------------------------------------- the paper's claims, figure


def paper_claims() -> dict[str, dict]:
    """The claims recorded in ``compendium/published/gsl.yaml`` (id → text, source)."""
    from importlib import resources

    import yaml

    raw = yaml.safe_load(resources.files("compendium.published").joinpath("gsl.yaml").read_text())
    return {c["id"]: c for c in raw.get("claims", [])}


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
