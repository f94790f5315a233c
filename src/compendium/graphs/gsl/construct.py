"""New-structure construction (step 2 of the GSL framework of arXiv 2411.07672).

A GSL basis ``B`` (one row per node) becomes a new graph ``G'`` by similarity. Three rules:

``knn``
    each node is joined to its ``k`` nearest nodes in Euclidean distance (the paper's CSBM-H
    study uses a kNN graph, k = 5);
``cos-node``
    node-level cosine rule: each node keeps the ``k`` nodes most cosine-similar to it (a
    per-node threshold);
``cos-graph``
    graph-level cosine rule: one global threshold on the cosine similarity, set so that the graph
    keeps the ``k·N`` most similar pairs (the same edge budget as the node-level rules, so the
    three graphs are comparable).

Our reading of "cosine graph-level / node-level" is taken from the research note (§2.2), the
paper body was not available to us. Every rule works in row chunks, never holding the ``N × N``
similarity matrix, drops self pairs, and returns an undirected edge list (a directed kNN edge
``i → j`` becomes ``{i, j}``). Cost ``O(N² d)``.
"""

from __future__ import annotations

import torch

from .adjacency import undirected

__all__ = ["CONSTRUCTIONS", "knn_edges", "cos_node_edges", "cos_graph_edges", "construct"]

CONSTRUCTIONS = ("knn", "cos-node", "cos-graph")


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(n, start + size)


def _as_float(b) -> torch.Tensor:
    if hasattr(b, "to_dense") and not isinstance(b, torch.Tensor):  # SparseFeatures
        return b.to_dense().float()
    b = torch.as_tensor(b)
    if b.is_sparse:
        b = b.to_dense()
    return b.detach().float()


def _row_topk(b: torch.Tensor, k: int, score, chunk: int) -> torch.Tensor:
    n = b.shape[0]
    k = min(k, n - 1)
    src, dst = [], []
    for s, e in _chunks(n, chunk):
        sim = score(b[s:e], b)
        sim[torch.arange(e - s), torch.arange(s, e)] = -float("inf")  # no self pairs
        idx = sim.topk(k, dim=1).indices
        src.append(torch.arange(s, e).repeat_interleave(k))
        dst.append(idx.reshape(-1))
    return torch.stack([torch.cat(src), torch.cat(dst)])


def _normalise(b: torch.Tensor) -> torch.Tensor:
    return b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)


def knn_edges(b, k: int = 5, chunk: int = 1024) -> torch.Tensor:
    """Directed edges ``i → j`` to the ``k`` Euclidean nearest neighbours of every node (self excluded)."""
    b = _as_float(b)
    sq = (b * b).sum(1)

    def neg_dist2(q, allb):
        return 2 * q @ allb.T - sq[None, :]  # = -|q - b|^2 + |q|^2; the row constant does not change the order

    return _row_topk(b, k, neg_dist2, chunk)


def cos_node_edges(b, k: int = 5, chunk: int = 1024) -> torch.Tensor:
    """Directed edges ``i → j`` to the ``k`` most cosine-similar nodes of every node."""
    bn = _normalise(_as_float(b))
    return _row_topk(bn, k, lambda q, allb: q @ allb.T, chunk)


def cos_graph_edges(b, num_pairs: int | None = None, k: int = 5, threshold: float | None = None,
                    chunk: int = 1024) -> torch.Tensor:
    """Pairs whose cosine similarity passes one global threshold.

    Give ``threshold`` for a fixed cut, or ``num_pairs`` (default ``k·N``) to keep that many of the
    most similar unordered pairs. Returns each kept pair once (``i < j``).
    """
    bn = _normalise(_as_float(b))
    n = bn.shape[0]
    budget = int(num_pairs if num_pairs is not None else k * n)
    vals, src, dst = [], [], []
    for s, e in _chunks(n, chunk):
        sim = bn[s:e] @ bn.T
        rows = torch.arange(s, e)[:, None]
        sim = sim.masked_fill(torch.arange(n)[None, :] <= rows, -float("inf"))  # upper triangle only
        if threshold is not None:
            r, c = (sim > threshold).nonzero(as_tuple=True)
            src.append(r + s), dst.append(c)
            continue
        flat = sim.reshape(-1)
        m = min(budget, int(torch.isfinite(flat).sum()))
        if m == 0:
            continue
        v, i = flat.topk(m)
        vals.append(v), src.append(i // n + s), dst.append(i % n)
    if not src:
        return torch.zeros(2, 0, dtype=torch.long)
    src, dst = torch.cat(src), torch.cat(dst)
    if threshold is None:
        v = torch.cat(vals)
        keep = v.topk(min(budget, v.numel())).indices
        src, dst = src[keep], dst[keep]
    return torch.stack([src, dst])


def construct(method: str, b, k: int = 5, chunk: int = 1024) -> torch.Tensor:
    """The new graph ``G'`` from basis ``b`` by ``method`` (one of :data:`CONSTRUCTIONS`), undirected
    (both directions listed), no self loops."""
    b = _as_float(b)
    if method == "knn":
        ei = knn_edges(b, k, chunk)
    elif method == "cos-node":
        ei = cos_node_edges(b, k, chunk)
    elif method == "cos-graph":
        ei = cos_graph_edges(b, k=k, chunk=chunk)
    else:
        raise ValueError(f"unknown construction {method!r}; choose from {CONSTRUCTIONS}")
    return undirected(ei, b.shape[0])
