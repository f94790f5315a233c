"""Mutual information between node representations and labels, ``I(Y; B)``, by nearest neighbours.

The estimator is Ross's kNN estimator for a continuous vector and a discrete label (B. C. Ross,
*Mutual Information between Discrete and Continuous Data Sets*, PLoS ONE 2014), the one behind
scikit-learn's ``mutual_info_classif`` (there applied to one column at a time). For every sample
``i`` with label ``y_i``:

* ``r_i`` = distance to its ``k``-th nearest neighbour among the ``N_{y_i}`` samples of its class;
* ``m_i`` = number of samples of any class closer than ``r_i`` (itself included);

and ``Î = ψ(N) + ⟨ψ(k)⟩ − ⟨ψ(N_{y_i})⟩ − ⟨ψ(m_i)⟩`` in nats, clipped at 0. Distances are Euclidean
over the whole vector (this is the multivariate version; with one column it equals scikit-learn's
value, which is tested). As in scikit-learn, a tiny jitter (``1e-10 × max(1, mean |x|)``) breaks ties
between identical rows; classes with a single sample are left out.

The GSL paper (arXiv 2411.07672) compares ``I(Y; ÂB)`` (one convolution on the original graph) and
``I(Y; Â'B)`` (on the constructed graph) with ``I(Y; B)``; :func:`convolved` makes those
representations.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import digamma

from .adjacency import adjacency

__all__ = ["mi_knn", "mi_per_feature", "convolved", "gaussian_mixture_mi"]


def _sq_dist(a: np.ndarray, b: np.ndarray, exact: bool) -> np.ndarray:
    """Squared Euclidean distances; ``exact`` (one column) takes ``(a − b)²`` directly."""
    if exact:
        return (a[:, 0][:, None] - b[None, :, 0]) ** 2
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _kth_within(x: np.ndarray, k: int, chunk: int, exact: bool) -> np.ndarray:
    """Squared distance of every row to its k-th nearest other row."""
    n = x.shape[0]
    out = np.empty(n)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        d = _sq_dist(x[s:e], x, exact)
        d[np.arange(e - s), np.arange(s, e)] = np.inf
        out[s:e] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return out


def mi_knn(x, y, k: int = 3, jitter: bool = True, random_state: int | None = 0, chunk: int = 1024,
           exact_1d: bool = True) -> float:
    """``I(Y; X)`` in nats for ``x`` of shape ``[N, d]`` (or ``[N]``) and integer labels ``y``.

    ``jitter``: add scikit-learn's tie-breaking noise (``random_state`` seeds it). With ``d = 1``
    and ``exact_1d`` the distances are taken as ``|x_i − x_j|`` directly (scikit-learn's numbers).
    """
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y).reshape(-1)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]} labels")
    x = x.copy()
    if jitter:
        rng = np.random.default_rng(random_state)
        x += 1e-10 * np.maximum(1.0, np.abs(x).mean(0)) * rng.standard_normal(x.shape)
    labels, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, labels[counts > 1])
    x, y = x[keep], y[keep]
    n = x.shape[0]
    if n == 0 or len(np.unique(y)) < 2:
        return 0.0
    exact = x.shape[1] == 1 and exact_1d
    # Strictly inside the radius: the k-th neighbour itself is out (scikit-learn's nextafter). The
    # matrix-product distances can round differently between the two passes, so a relative margin
    # of 1e-9 stands in for one ulp there.
    shrink = 1.0 if exact else 1.0 - 1e-9
    radius2 = np.empty(n)
    k_all = np.empty(n)
    n_class = np.empty(n)
    for lab in np.unique(y):
        idx = np.flatnonzero(y == lab)
        kk = min(k, idx.size - 1)
        radius2[idx] = _kth_within(x[idx], kk, chunk, exact)
        k_all[idx] = kk
        n_class[idx] = idx.size
    m = np.empty(n)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        d = _sq_dist(x[s:e], x, exact)
        m[s:e] = (d < shrink * radius2[s:e, None]).sum(1)  # self included
    m = np.maximum(m, 1)
    mi = digamma(n) + digamma(k_all).mean() - digamma(n_class).mean() - digamma(m).mean()
    return float(max(0.0, mi))


def mi_per_feature(x, y, k: int = 3, random_state: int = 0) -> float:
    """Mean over columns of scikit-learn's ``mutual_info_classif`` (the TFI-style, one-column view)."""
    from sklearn.feature_selection import mutual_info_classif

    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y).reshape(-1)
    return float(mutual_info_classif(x, y, n_neighbors=k, random_state=random_state).mean())


def convolved(b: torch.Tensor, edge_index: torch.Tensor, norm: str = "sym", self_loops: bool = True) -> torch.Tensor:
    """One parameter-free graph convolution ``Â B`` over ``edge_index`` (undirected)."""
    a = adjacency(edge_index, b.shape[0], norm=norm, self_loops=self_loops)
    with torch.no_grad():
        return a @ b.float()


def gaussian_mixture_mi(means, sigmas, priors=None, num_samples: int = 400_000, seed: int = 0) -> float:
    """Monte-Carlo ``I(Y; X)`` for ``X | Y=c ~ N(means[c], sigmas[c]² I)``: ``E[log p(x|y) − log p(x)]``.

    The reference value the estimator is tested against (standard error about 1e-3 nats at the
    default sample size).
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim == 1:
        means = means[:, None]
    c, d = means.shape
    sig = np.asarray(sigmas, dtype=np.float64).reshape(c)
    pri = np.full(c, 1.0 / c) if priors is None else np.asarray(priors, dtype=np.float64)
    rng = np.random.default_rng(seed)
    ys = rng.choice(c, size=num_samples, p=pri)
    xs = means[ys] + sig[ys, None] * rng.standard_normal((num_samples, d))
    logp = np.stack([-0.5 * ((xs - means[j]) ** 2).sum(1) / sig[j] ** 2 - d * np.log(sig[j]) for j in range(c)], 1)
    logp_y = logp[np.arange(num_samples), ys]
    logp_x = np.log((np.exp(logp - logp.max(1, keepdims=True)) * pri).sum(1)) + logp.max(1)
    return float((logp_y - logp_x).mean())
