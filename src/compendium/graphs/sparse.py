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

__all__ = ["CSRGraph", "csr_graph", "spmm", "sddmm", "segment_softmax", "gat_attention", "dot_attention",
           "NO_SHIFT_LIMIT", "retain_freed_memory"]

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
    :func:`compendium.graphs.gfs.train.prepare`); returns False where the C library is not glibc.
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



# --------------------------------------------------------------------------- fused attention (GAT, GT)
#
# ``out[v, h] = sum_e softmax_{e in in(v)}(z[e, h]) x[col[e], h]`` computed one head at a time on [E] vectors
# (4 MB on tolokers, cache-sized) instead of [E, H] tensors through autograd, with the backward pass written out,
# so that no per-edge intermediate beyond the exponentials is kept, and with fewer passes over the edges:
# * the normaliser comes out of the aggregation itself (one extra column of ones);
# * the softmax is shift-invariant, so the shift only guards exp against overflow: where a bound on |z| computed
#   on the nodes (|a_src| + |a_dst| for GAT, Cauchy-Schwarz for GT) is at most :data:`NO_SHIFT_LIMIT`, exp(z) is
#   taken unshifted (every term within [e^-60, e^60]: no overflow, no underflow to 0, float32 or 64); otherwise
#   the segment maximum is subtracted first, as PyG does.
# With ``ex[e] = exp(z[e] - shift_v)``, ``den[v] = sum ex`` and ``gp = grad_out / den``:
#   grad x[u]  = sum_{e: col[e] = u} ex[e] gp[row[e]]                 (the transposed product, values ``ex[rev]``)
#   grad z[e]  = ex[e] (<gp[row[e]], x[col[e]]> - <gp[row[e]], out[row[e]]>)
# and the second term rides in the sampled product as one more column (``[gp, <gp, out>] . [x, -1]``).

#: Largest bound on |score| for which exp is taken without the segment-max shift
NO_SHIFT_LIMIT = 60.0


def _pattern(g: CSRGraph, like: torch.Tensor) -> torch.Tensor:
    return g.matrix(torch.zeros(len(g.col), dtype=like.dtype, device=like.device))


def _softmax_aggregate(g: CSRGraph, z: torch.Tensor, x: torch.Tensor, shift: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn the scores ``z`` ([E], overwritten) into ``ex = exp(z - shift_v)`` (``shift_v``: the segment max, or
    0 when ``shift`` is False) and return ``(out, den)``: the softmax-weighted sum of ``x`` ([N, C]) per target
    ([N, C]) and the normaliser ([N])."""
    if shift:
        z.sub_(torch.segment_reduce(z, "max", offsets=g.crow).index_select(0, g.row))
    z.exp_()
    agg = torch.sparse.mm(g.matrix(z), torch.cat([x, x.new_ones(x.shape[0], 1)], 1))
    # > e^-60 wherever a segment has an entry; the floor only keeps nodes without entries at 0 (not 0/0)
    den = agg[:, -1].clamp_min(torch.finfo(x.dtype).tiny)
    return agg[:, :-1] / den.unsqueeze(1), den


def _softmax_aggregate_backward(g: CSRGraph, pattern: torch.Tensor, ex: torch.Tensor, den: torch.Tensor,
                                x: torch.Tensor, out: torch.Tensor, grad_out: torch.Tensor,
                                scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of :func:`_softmax_aggregate` for one head: ``(scale * grad_z [E], grad_x [N, C])``."""
    gp = grad_out / den.unsqueeze(1)
    grad_x = torch.sparse.mm(g.matrix(ex.index_select(0, g.rev)), gp)
    lhs = torch.cat([gp, (gp * out).sum(1, keepdim=True)], 1)
    if scale != 1.0:
        lhs.mul_(scale)
    rhs = torch.cat([x, x.new_full((x.shape[0], 1), -1.0)], 1)
    grad_z = torch.sparse.sampled_addmm(pattern, lhs, rhs.t(), beta=0.0).values().mul_(ex)
    return grad_z, grad_x


class _GATAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, a_src, a_dst, g: CSRGraph, negative_slope: float):
        n, heads = a_src.shape
        xs = x.contiguous().view(n, heads, -1)
        a_src_t, a_dst_t = a_src.t().contiguous(), a_dst.t().contiguous()
        ex_t = x.new_empty(heads, len(g.col))
        positive = torch.empty(heads, len(g.col), dtype=torch.bool, device=x.device)
        den_t = x.new_empty(heads, n)
        out = x.new_empty(n, heads, xs.shape[2])
        shift = (a_src_t.abs().amax(1) + a_dst_t.abs().amax(1) > NO_SHIFT_LIMIT).tolist()  # |leaky(s + d)| <= |s| + |d|
        for h in range(heads):
            z = torch.index_select(a_src_t[h], 0, g.col, out=ex_t[h])
            z.add_(a_dst_t[h].index_select(0, g.row))
            torch.gt(z, 0, out=positive[h])
            torch.nn.functional.leaky_relu_(z, negative_slope)
            out[:, h], den_t[h] = _softmax_aggregate(g, z, xs[:, h], shift[h])
        ctx.save_for_backward(xs, ex_t, positive, den_t, out)
        ctx.g, ctx.negative_slope = g, negative_slope
        return out.view(n, -1)

    @staticmethod
    def backward(ctx, grad_out):
        xs, ex_t, positive, den_t, out = ctx.saved_tensors
        g = ctx.g
        n, heads, ch = xs.shape
        go = grad_out.contiguous().view(n, heads, ch)
        pattern = _pattern(g, xs)
        grad_x = torch.empty_like(xs)
        grad_src, grad_dst = xs.new_zeros(heads, n), xs.new_empty(heads, n)
        for h in range(heads):
            gz, grad_x[:, h] = _softmax_aggregate_backward(g, pattern, ex_t[h], den_t[h], xs[:, h].contiguous(),
                                                           out[:, h], go[:, h])
            gz = torch.where(positive[h], gz, gz * ctx.negative_slope)
            grad_dst[h] = torch.segment_reduce(gz, "sum", offsets=g.crow)
            grad_src[h].index_add_(0, g.col, gz)
        return grad_x.view(n, -1), grad_src.t(), grad_dst.t(), None, None


class _DotAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, g: CSRGraph, heads: int, scale: float):
        n = q.shape[0]
        qs, ks, vs = (t.contiguous().view(n, heads, -1) for t in (q, k, v))
        pattern = _pattern(g, q)
        ex_t = q.new_empty(heads, len(g.col))
        den_t = q.new_empty(heads, n)
        out = v.new_empty(n, heads, vs.shape[2])
        # Cauchy-Schwarz: |scale <q_v, k_u>| <= scale max |q| max |k|
        shift = (abs(scale) * qs.norm(dim=2).amax(0) * ks.norm(dim=2).amax(0) > NO_SHIFT_LIMIT).tolist()
        for h in range(heads):
            z = torch.sparse.sampled_addmm(pattern, qs[:, h], ks[:, h].t(), beta=0.0, alpha=scale).values()
            out[:, h], den_t[h] = _softmax_aggregate(g, z, vs[:, h], shift[h])
            ex_t[h] = z
        ctx.save_for_backward(qs, ks, vs, ex_t, den_t, out)
        ctx.g, ctx.scale = g, scale
        return out.view(n, -1)

    @staticmethod
    def backward(ctx, grad_out):
        qs, ks, vs, ex_t, den_t, out = ctx.saved_tensors
        g = ctx.g
        n, heads, _ = qs.shape
        go = grad_out.contiguous().view(n, heads, -1)
        pattern = _pattern(g, qs)
        grad_q, grad_k, grad_v = torch.empty_like(qs), torch.empty_like(ks), torch.empty_like(vs)
        for h in range(heads):
            gz, grad_v[:, h] = _softmax_aggregate_backward(g, pattern, ex_t[h], den_t[h], vs[:, h].contiguous(),
                                                           out[:, h], go[:, h], ctx.scale)
            grad_q[:, h] = torch.sparse.mm(g.matrix(gz), ks[:, h].contiguous())
            grad_k[:, h] = torch.sparse.mm(g.matrix(gz.index_select(0, g.rev)), qs[:, h].contiguous())
        return grad_q.view(n, -1), grad_k.view(n, -1), grad_v.view(n, -1), None, None, None


def gat_attention(g: CSRGraph, x: torch.Tensor, a_src: torch.Tensor, a_dst: torch.Tensor,
                  negative_slope: float = 0.2) -> torch.Tensor:
    """GAT aggregation: ``out[v, h] = sum_e softmax_v(LeakyReLU(a_src[col[e], h] + a_dst[v, h])) x[col[e], h]``.

    ``x``: [N, H*C] (head-major columns, as PyG's ``GATConv``), ``a_src`` / ``a_dst``: [N, H] → [N, H*C].
    Equals ``spmm(g, segment_softmax(g, leaky_relu(a_src[col] + a_dst[row])), x)`` (tested), with about
    one [E] vector per head kept for the backward pass."""
    return _GATAttention.apply(x, a_src, a_dst, g, float(negative_slope))


def dot_attention(g: CSRGraph, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                  scale: float) -> torch.Tensor:
    """Graph transformer aggregation: ``out[v, h] = sum_e softmax_v(scale <q[v, h], k[col[e], h]>) v[col[e], h]``.

    ``q``, ``k``, ``v``: [N, H*C] → [N, H*C]. Equals ``spmm(g, segment_softmax(g, scale * sddmm(g, q, k, H)), v)``
    (tested)."""
    return _DotAttention.apply(q, k, v, g, int(heads), float(scale))
