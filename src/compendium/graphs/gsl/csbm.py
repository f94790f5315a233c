"""CSBM-H: two-class contextual stochastic block graphs with a set homophily (Luan et al., NeurIPS 2023).

The GSL paper (arXiv 2411.07672, Figures 1/3) studies its MI argument on these graphs. The
generator follows the model of ``SitaoLuan/When-Do-GNNs-Help`` ``csbm-h.py`` (commit
``3cbf5352a707eb89ce36a2d45f878536c14b7370``; its command-line defaults are ours: class centres
``μ0 = (−1, 0)``, ``μ1 = (1, 0)``, variances ``σ0² = 1``, ``σ1² = 5``, degrees ``d0 = d1 = 5``):

* node ``v`` of class ``c`` has feature ``x_v ~ N(μ_c, σ_c² I)``;
* it draws ``d_c`` neighbours: each one is, independently, of its own class with probability
  ``h`` (else of the other class), chosen uniformly in that class (no self loops, no repeats);
* the drawn edges are made undirected, so the graph's edge homophily is about ``h``.

That reference code computes the aggregated distributions analytically; here the graph itself is
sampled so that GNNs can be trained on it and new graphs built from it. The class sizes (500 per
class by default, the reference uses 100) are our choice: the GSL paper's CSBM-H sizes were not
available to us.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..datasets import GraphData, random_splits
from .adjacency import undirected

__all__ = ["CSBMH", "csbm_h"]


@dataclass
class CSBMH:
    """CSBM-H parameters (defaults: the reference script's, with 500 nodes per class)."""

    n0: int = 500
    n1: int = 500
    mu0: tuple[float, ...] = (-1.0, 0.0)
    mu1: tuple[float, ...] = (1.0, 0.0)
    sigma0: float = 1.0  # variance of class 0 (the reference script's sigma0)
    sigma1: float = 5.0  # variance of class 1
    d0: int = 5
    d1: int = 5


def csbm_h(h: float, seed: int = 0, params: CSBMH | None = None, train: float = 0.5, val: float = 0.25) -> GraphData:
    """One CSBM-H graph with homophily ``h`` and one random ``train/val/test`` split (seeded by ``seed``)."""
    if not 0.0 <= h <= 1.0:
        raise ValueError("h must be in [0, 1]")
    p = params or CSBMH()
    rng = np.random.default_rng(seed)
    n = p.n0 + p.n1
    y = np.repeat([0, 1], [p.n0, p.n1])
    mu = np.stack([np.asarray(p.mu0, float), np.asarray(p.mu1, float)])
    sd = np.sqrt([p.sigma0, p.sigma1])
    x = mu[y] + sd[y, None] * rng.standard_normal((n, mu.shape[1]))
    members = [np.flatnonzero(y == 0), np.flatnonzero(y == 1)]
    src, dst = [], []
    for v in range(n):
        c = y[v]
        d = p.d0 if c == 0 else p.d1
        same = rng.binomial(d, h)
        own = members[c][members[c] != v]
        pick_own = rng.choice(own, size=min(same, own.size), replace=False)
        pick_other = rng.choice(members[1 - c], size=min(d - same, members[1 - c].size), replace=False)
        nb = np.concatenate([pick_own, pick_other])
        src.append(np.full(nb.size, v)), dst.append(nb)
    ei = torch.as_tensor(np.stack([np.concatenate(src), np.concatenate(dst)]), dtype=torch.long)
    tr, va, te = random_splits(n, 1, train, val, seed=seed)
    return GraphData(name=f"CSBM-H(h={h:g}, seed={seed})", x=torch.as_tensor(x, dtype=torch.float32),
                     y=torch.as_tensor(y, dtype=torch.long), edge_index=undirected(ei, n),
                     train_masks=tr, val_masks=va, test_masks=te, metric="accuracy",
                     source="CSBM-H generator (Luan et al., NeurIPS 2023), sampled graph",
                     splits_note=f"1 random {train:.0%}/{val:.0%}/{1 - train - val:.0%} split, seed {seed}",
                     extra={"h": h, "seed": seed, "params": p})
