"""Topological Feature Informativeness (TFI), arXiv 2411.07663 (Zheng et al., ICLR 2025).

For feature column ``j``: ``TFI_j = I( (D^-1/2 A D^-1/2 X)_{:,j} ; Y )`` estimated on the training
nodes of the split with scikit-learn's kNN mutual-information estimator (``mutual_info_classif``,
3 neighbours). As in the official ``utils.py::mi_agg``:

* ``A`` is the undirected graph **without** self loops (neighbours only); degrees are taken from it
  and the edge coefficient is ``1 / (sqrt(d_u d_v) + 1e-7)``;
* ``X`` is z-normed with one global mean and standard deviation over the whole matrix;
* only the training nodes of the current split enter the estimator; TFI is computed once per split
  on the input features.

The estimator is random (scikit-learn adds a tiny jitter to continuous features and breaks ties
with it), so two runs with different seeds do not give identical vectors. :func:`seed_agreement`
measures that noise floor; our TFI cannot be expected to agree with the authors' committed vectors
better than two of our own seeds agree with each other.

Also here: the feature-homophily criteria GFS is compared against in the ICLR version (``h_GE``,
``h_attr``, ``h_sim-cos``, ``h_sim-euc``, ``h_CTF``), plain MI on the raw features (no graph) and
random scores, all behind :func:`selection_scores`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau, spearmanr
from sklearn.feature_selection import mutual_info_classif

from ..datasets import OFFLINE_DATASETS, NOT_OFFLINE, GraphData, global_z_norm

__all__ = [
    "neighbour_average",
    "tfi",
    "tfi_per_split",
    "load_official_tfi",
    "official_tfi_stem",
    "seed_agreement",
    "compare_with_official",
    "selection_scores",
    "SELECTION_METHODS",
]

EPS = 1e-7


def _degrees(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    return torch.bincount(edge_index[0], minlength=n).float()


def neighbour_average(x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """``D^-1/2 A D^-1/2 X`` over neighbours only (self loops dropped), coefficient ``1/(sqrt(d_u d_v)+eps)``.

    ``edge_index`` must list both directions of every undirected edge; row ``v`` of the result is
    ``sum_{u in N(v)} x_u / (sqrt(d_u d_v) + 1e-7)``. Isolated nodes get 0.
    """
    n = x.shape[0]
    keep = edge_index[0] != edge_index[1]
    src, dst = edge_index[:, keep]
    deg = _degrees(torch.stack([src, dst]), n)
    coef = 1.0 / (torch.sqrt(deg[src] * deg[dst]) + EPS)
    out = torch.zeros_like(x, dtype=torch.float32)
    out.index_add_(0, dst, x[src].float() * coef[:, None])
    return out


def tfi(x: torch.Tensor, edge_index: torch.Tensor, y: torch.Tensor, train_idx: torch.Tensor | None = None,
        random_state: int | None = 0, n_neighbors: int = 3, z_norm: bool = True, n_jobs: int | None = None) -> np.ndarray:
    """TFI of every feature column (length ``F``), on the training nodes ``train_idx`` (all if None).

    ``random_state`` fixes scikit-learn's jitter (the official code passes none: its values are not
    reproducible run to run).
    """
    if z_norm:
        x = global_z_norm(x)
    agg = neighbour_average(x, edge_index)
    yy = y
    if train_idx is not None:
        agg, yy = agg[train_idx], y[train_idx]
    return mutual_info_classif(agg.numpy().astype(np.float64), yy.numpy(), n_neighbors=n_neighbors,
                               random_state=random_state, n_jobs=n_jobs)


def tfi_per_split(g: GraphData, splits: list[int] | None = None, random_state: int | None = 0,
                  cache_dir: str | os.PathLike | None = None, n_jobs: int | None = None) -> np.ndarray:
    """``[len(splits), F]`` TFI, one row per split (training nodes of that split).

    With ``cache_dir`` the vectors are stored as ``<name>_tfi_split<i>_seed<s>.npy`` and reused.
    """
    splits = list(range(g.num_splits)) if splits is None else list(splits)
    rows = []
    for i in splits:
        path = None
        if cache_dir is not None and random_state is not None:
            path = Path(cache_dir) / f"{g.name}_tfi_split{i}_seed{random_state}.npy"
            if path.exists():
                rows.append(np.load(path))
                continue
        v = tfi(g.x, g.edge_index, g.y, g.split(i)[0], random_state=random_state, n_jobs=n_jobs)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, v)
        rows.append(v)
    return np.stack(rows)


# --------------------------------------------------------------------------- official vectors


def official_tfi_stem(name: str) -> str:
    """File stem of the authors' TFI vectors for one of our dataset names."""
    key = name.lower().replace("-", "_")
    if key in OFFLINE_DATASETS:
        return OFFLINE_DATASETS[key]["tfi"]
    for k in NOT_OFFLINE:
        if k.lower() == key:
            return k
    raise KeyError(name)


def load_official_tfi(name: str, split: int, root: str | os.PathLike | None = None) -> np.ndarray:
    """The authors' committed TFI vector (``KTTRCDL/graph-feature-selection@12ea16a data/TFI``)."""
    key = f"graphs/gfs-official/data/TFI/{official_tfi_stem(name)}_mi_agg_z-norm_mask_{split}.npy"
    if root is not None:
        path = Path(root) / key
    else:
        from compendium.data import fetch

        path = fetch(key)
    return np.load(path).astype(np.float64)


def _top_overlap(a: np.ndarray, b: np.ndarray, frac: float) -> float:
    k = max(1, int(len(a) * frac))
    ta = set(np.argsort(-a, kind="stable")[:k])
    tb = set(np.argsort(-b, kind="stable")[:k])
    return len(ta & tb) / k


def seed_agreement(g: GraphData, split: int = 0, seeds: tuple[int, int] = (0, 1), n_jobs: int | None = None) -> float:
    """Spearman correlation between our TFI with two estimator seeds: the noise floor of any comparison."""
    tr = g.split(split)[0]
    a = tfi(g.x, g.edge_index, g.y, tr, random_state=seeds[0], n_jobs=n_jobs)
    b = tfi(g.x, g.edge_index, g.y, tr, random_state=seeds[1], n_jobs=n_jobs)
    return float(spearmanr(a, b).statistic)


def compare_with_official(g: GraphData, splits: list[int] | None = None, root: str | os.PathLike | None = None,
                          ours: np.ndarray | None = None, frac: float = 0.5, with_seed_floor: bool = True,
                          n_jobs: int | None = None) -> pd.DataFrame:
    """Per split: Spearman / Kendall rank correlation of our TFI with the authors', top-``frac``
    overlap (the features GFS would send to the GNN branch at ``r = frac``), both means, and (optionally)
    the Spearman correlation between two of our own seeds (the estimator's noise floor).
    """
    splits = list(range(min(g.num_splits, 10))) if splits is None else list(splits)
    if ours is None:
        ours = tfi_per_split(g, splits, n_jobs=n_jobs)
    rows = []
    for k, i in enumerate(splits):
        ref = load_official_tfi(g.name, i, root)
        mine = ours[k]
        row = {"dataset": g.name, "split": i, "features": len(mine),
               "spearman": float(spearmanr(mine, ref).statistic),
               "kendall": float(kendalltau(mine, ref).statistic),
               f"top-{int(frac * 100)}% overlap": _top_overlap(mine, ref, frac),
               "mean ours": float(mine.mean()), "mean official": float(ref.mean())}
        if with_seed_floor:
            other = tfi(g.x, g.edge_index, g.y, g.split(i)[0], random_state=12345, n_jobs=n_jobs)
            row["spearman ours seed vs seed"] = float(spearmanr(mine, other).statistic)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- other selection criteria


def _mi_raw(g: GraphData, train_idx, seed, n_jobs=None):
    x = global_z_norm(g.x)
    return mutual_info_classif(x[train_idx].numpy().astype(np.float64), g.y[train_idx].numpy(), random_state=seed,
                               n_jobs=n_jobs)


def _h_ge(g: GraphData, train_idx, seed):
    # generalised edge homophily per feature: mean over (directed, non-self) edges of cos(x_u, x_v),
    # which for scalars is sign(x_u) * sign(x_v) (0 where either is 0), as in the official h_GE.
    x = global_z_norm(g.x)
    src, dst = g.edge_index
    s = torch.sign(x)
    return (s[src] * s[dst]).mean(0).numpy()


def _h_attr(g: GraphData, train_idx, seed):
    # attribute homophily (official utils.attribute_homophily): graph with self loops,
    # sum_u (1/d_u) sum_{v in N(u) ∪ u} x_u x_v / sum_u x_u, per feature.
    x = global_z_norm(g.x)
    n = g.num_nodes
    loops = torch.arange(n).repeat(2, 1)
    src, dst = torch.cat([g.edge_index, loops], 1)
    deg = torch.bincount(src, minlength=n).float()
    agg = torch.zeros_like(x).index_add_(0, src, x[src] * x[dst]) / deg[:, None]
    tot = x.sum(0)
    tot[tot == 0] = 1
    return (agg.sum(0) / tot).numpy()


def _h_sim(g: GraphData, train_idx, seed, kind):
    # local similarity (official localsim_{cos,euc}_homophily): per edge (u->v) a per-feature
    # similarity, averaged per source node by its degree, then over nodes.
    x = global_z_norm(g.x)
    n = g.num_nodes
    src, dst = g.edge_index
    if kind == "cos":
        norm = x.norm(dim=1)
        sim = x[src] * x[dst] / (norm[src] * norm[dst])[:, None]
    else:
        sim = -(x[src] - x[dst])
    sim = torch.nan_to_num(sim, nan=0.0)
    deg = torch.bincount(dst, minlength=n).float().clamp(min=1)
    node = torch.zeros_like(x).index_add_(0, src, sim) / deg[:, None]
    return node.mean(0).numpy()


def _h_ctf(g: GraphData, train_idx, seed):
    # class-controlled feature homophily on the training subgraph (official class_controlled_feature_homophily,
    # with its edge/node indexing slip corrected: each edge's own distance is used).
    x = global_z_norm(g.x)[train_idx]
    y = g.y[train_idx]
    n = len(train_idx)
    remap = torch.full((g.num_nodes,), -1, dtype=torch.long)
    remap[train_idx] = torch.arange(n)
    src, dst = remap[g.edge_index]
    keep = (src >= 0) & (dst >= 0)
    src, dst = src[keep], dst[keep]
    means = torch.stack([x[y == c].mean(0) if (y == c).any() else torch.zeros(x.shape[1])
                         for c in range(int(g.y.max()) + 1)])
    c = x - means[y]
    base = 2 * (c - c.mean(0)) ** 2
    dist = (c[src] - c[dst]) ** 2
    node = torch.zeros_like(x).index_add_(0, src, base[src] - dist)
    return node.mean(0).numpy()


def _random(g: GraphData, train_idx, seed):
    return np.random.default_rng(seed).random(g.num_features)


SELECTION_METHODS = {
    "TFI": lambda g, tr, s, n_jobs=None: tfi(g.x, g.edge_index, g.y, tr, random_state=s, n_jobs=n_jobs),
    "MI (no graph)": _mi_raw,
    "h_GE": _h_ge,
    "h_attr": _h_attr,
    "h_sim-cos": lambda g, tr, s: _h_sim(g, tr, s, "cos"),
    "h_sim-euc": lambda g, tr, s: _h_sim(g, tr, s, "euc"),
    "h_CTF": _h_ctf,
    "random": _random,
}


def selection_scores(method: str, g: GraphData, split: int, seed: int = 0, n_jobs: int | None = None) -> np.ndarray:
    """Per-feature scores (higher = sent to the GNN branch first) for one selection criterion.

    ``method`` is a key of :data:`SELECTION_METHODS`: ``TFI``, ``MI (no graph)`` (the same estimator
    on the raw features: feature selection that ignores the graph), the five feature-homophily
    criteria of the ICLR version (``h_GE``, ``h_attr``, ``h_sim-cos``, ``h_sim-euc``, ``h_CTF``;
    re-implemented from the official ``utils.py``), and ``random``.
    """
    tr = g.split(split)[0]
    if method in ("TFI", "MI (no graph)"):  # the kNN estimators: parallel over features with n_jobs
        return np.asarray(SELECTION_METHODS[method](g, tr, seed, n_jobs=n_jobs), dtype=np.float64)
    return np.asarray(SELECTION_METHODS[method](g, tr, seed), dtype=np.float64)
