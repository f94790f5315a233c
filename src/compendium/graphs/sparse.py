"""Sparse message passing on a graph whose edge set is symmetric, without per-edge feature tensors.

PyG's message passing materialises an ``[E, hidden]`` tensor per layer (gather, multiply, scatter).
On tolokers (1.04 M directed edges) that dominates a CPU step. Here every aggregation is a CSR
sparse × dense product and every per-edge score with a feature-sized inner product is a sampled
dense × dense product (``torch.sparse.sampled_addmm``). Because the edge set is symmetric, the
transpose of a CSR matrix has the same structure with its values permuted by ``rev`` (the index of
each edge's reverse), so the backward passes are CSR products too.

Entries are in CSR order: entry ``e`` is the edge ``col[e] -> row[e]`` (source -> target), i.e.
``out[v] = sum_{e: row[e] = v} value[e] * x[col[e]]``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import warnings
from dataclasses import dataclass

import torch

__all__ = ["CSRGraph", "csr_graph", "spmm", "sddmm", "segment_softmax", "retain_freed_memory"]

#: glibc ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap and stay there once freed: far above the largest per-edge,
#: per-head tensor of the chapter's graphs (tolokers, hidden 512: [1.05 M edges, 8 heads] float32, 34 MB)
_RETAIN_BYTES = 1 << 30
_retained = None


def retain_freed_memory() -> bool:
    """Serve large CPU tensors from the process heap and keep their pages after they are freed.

    GAT and GT allocate several ``[E, heads]`` tensors per layer and step (34 MB each on tolokers). That is
    above glibc's largest dynamic mmap threshold (32 MB), so each one is a fresh ``mmap`` whose pages fault
    in on first touch and are unmapped again on free: about 265,000 minor page faults per GAT step on
    tolokers. Fixing the mmap and trim thresholds (glibc ``mallopt``) makes the same pages serve every
    step; the process keeps its peak heap. Applied once per process (each worker calls it through
    :func:`compendium.graphs.harness.prepare`); returns False where the C library is not glibc.
    """
    global _retained
    if _retained is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, _RETAIN_BYTES)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2 * _RETAIN_BYTES))
        except (OSError, AttributeError):
            ok = False
        _retained = ok
    return _retained


@dataclass
class CSRGraph:
    crow: torch.Tensor  # [N + 1]
    col: torch.Tensor  # [E] source of each entry
    row: torch.Tensor  # [E] target of each entry (sorted)
    rev: torch.Tensor  # [E] index of the reverse edge
    num_nodes: int

    def to(self, device) -> "CSRGraph":
        return CSRGraph(self.crow.to(device), self.col.to(device), self.row.to(device), self.rev.to(device), self.num_nodes)

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crow, self.col, values, (self.num_nodes, self.num_nodes))


def csr_graph(edge_index: torch.Tensor, num_nodes: int) -> tuple[CSRGraph, torch.Tensor]:
    """CSR structure of a symmetric ``edge_index`` ([2, E], row 0 = source) and the permutation that
    sorts the given edges into CSR order (so per-edge values can be reordered alike)."""
    src, dst = edge_index.long()
    key = dst * num_nodes + src
    perm = torch.argsort(key)
    row, col = dst[perm], src[perm]
    counts = torch.bincount(row, minlength=num_nodes)
    crow = torch.zeros(num_nodes + 1, dtype=torch.long)
    crow[1:] = counts.cumsum(0)
    sorted_key = row * num_nodes + col
    rev_key = col * num_nodes + row
    rev = torch.searchsorted(sorted_key, rev_key)
    if not torch.equal(sorted_key[rev.clamp(max=len(sorted_key) - 1)], rev_key):
        raise ValueError("edge set is not symmetric")
    return CSRGraph(crow, col, row, rev, num_nodes), perm


def _heads(t: torch.Tensor) -> torch.Tensor:
    return t.unsqueeze(1) if t.dim() == 1 else t


def _per_head_mm(g: CSRGraph, vals_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``vals_t``: [H, E] contiguous; ``x``: [N, H*C] → [N, H*C], head by head."""
    h = vals_t.shape[0]
    if h == 1:
        return torch.sparse.mm(g.matrix(vals_t[0]), x)
    xs = x.view(x.shape[0], h, -1)
    return torch.cat([torch.sparse.mm(g.matrix(vals_t[i]), xs[:, i]) for i in range(h)], 1)


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, x, g: CSRGraph):
        vals_t = _heads(values).t().contiguous()
        ctx.save_for_backward(vals_t, x)
        ctx.g = g
        ctx.shape = values.shape
        return _per_head_mm(g, vals_t, x)

    @staticmethod
    def backward(ctx, grad_out):
        vals_t, x = ctx.saved_tensors
        g = ctx.g
        h = vals_t.shape[0]
        grad_out = grad_out.contiguous()
        grad_v = grad_x = None
        if ctx.needs_input_grad[1]:
            grad_x = _per_head_mm(g, vals_t.index_select(1, g.rev), grad_out)
        if ctx.needs_input_grad[0]:
            xs = x.view(x.shape[0], h, -1)
            go = grad_out.view(grad_out.shape[0], h, -1)
            pattern = g.matrix(torch.zeros(len(g.col), dtype=x.dtype, device=x.device))
            grad_v = torch.stack([torch.sparse.sampled_addmm(pattern, go[:, i], xs[:, i].t(), beta=0.0).values()
                                  for i in range(h)], 1).reshape(ctx.shape)
        return grad_v, grad_x, None


class _SDDMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, heads: int, g: CSRGraph):
        qs = q.contiguous().view(q.shape[0], heads, -1)
        ks = k.contiguous().view(k.shape[0], heads, -1)
        pattern = g.matrix(torch.zeros(len(g.col), dtype=q.dtype, device=q.device))
        out = torch.stack([torch.sparse.sampled_addmm(pattern, qs[:, i].contiguous(), ks[:, i].t().contiguous(),
                                                      beta=0.0).values() for i in range(heads)], 1)
        ctx.save_for_backward(q, k)
        ctx.g, ctx.heads = g, heads
        return out

    @staticmethod
    def backward(ctx, grad_vals):
        q, k = ctx.saved_tensors
        g = ctx.g
        gv_t = grad_vals.t().contiguous()
        gq = gk = None
        if ctx.needs_input_grad[0]:
            gq = _per_head_mm(g, gv_t, k.contiguous())
        if ctx.needs_input_grad[1]:
            gk = _per_head_mm(g, gv_t.index_select(1, g.rev), q.contiguous())
        return gq, gk, None, None


def spmm(g: CSRGraph, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``out[v] = sum_e value[e] x[col[e]]`` over entries with ``row[e] = v``.

    ``values`` is ``[E]`` (one weight per edge) or ``[E, H]`` (one per edge and head; ``x`` is then
    split into ``H`` equal column blocks). Differentiable in ``values`` and ``x``.
    """
    return _SpMM.apply(values, x, g)


def sddmm(g: CSRGraph, q: torch.Tensor, k: torch.Tensor, heads: int = 1) -> torch.Tensor:
    """``[E, heads]`` per-edge, per-head inner products ``<q[row[e]], k[col[e]]>`` (q, k: ``[N, heads*C]``)."""
    return _SDDMM.apply(q, k, heads, g)


def segment_softmax(g: CSRGraph, scores: torch.Tensor) -> torch.Tensor:
    """Softmax of ``[E, H]`` scores over the incoming edges of each target node."""
    n = g.num_nodes
    idx = g.row.unsqueeze(1).expand_as(scores)
    with torch.no_grad():
        m = torch.full((n, scores.shape[1]), float("-inf"), dtype=scores.dtype, device=scores.device)
        m = m.scatter_reduce(0, idx, scores, reduce="amax", include_self=True)
    ex = torch.exp(scores - m.index_select(0, g.row))
    den = torch.zeros(n, scores.shape[1], dtype=scores.dtype, device=scores.device).index_add(0, g.row, ex)
    return ex / den.index_select(0, g.row)
