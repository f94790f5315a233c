"""Selective scan (the S6 layer of Mamba): sequential reference, fast CPU scan, dispatcher.

Mamba (Gu & Dao, arXiv 2312.00752), Alg. 2 and eqs. (2a), (2b), (4): per channel d and
state n, with ZOH for A and Euler for B,

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t        (state, b x d x n)
    y_t = <h_t, C_t> + D * u_t,   then  y_t <- y_t * SiLU(z_t)

Shape letters (as in mamba-ssm's ``selective_scan_interface.py``): b batch, d channels
(``d_inner`` of the mixer), l sequence length, n state size (``d_state``).

Three implementations with one signature (mamba-ssm's ``selective_scan_fn``):

* :func:`selective_scan_ref`: the equations above, a Python loop over l (clear, slow).
* :func:`selective_scan_chunked`: the fast CPU scan. The sequence is cut into chunks of
  a few steps; for each chunk the discretisation exp(delta*A) and delta*B*u are computed
  for all its steps at once into two reused buffers (no large allocations), the
  recurrence runs in place, and the output contraction with C is taken per chunk. It has
  its own backward (a reverse-time scan that recomputes the states chunk by chunk, as
  the CUDA kernel does), so training does not go through a Python-level autograd graph
  of ``l`` steps.
* the mamba-ssm CUDA kernel, used by :func:`selective_scan` for CUDA tensors when the
  optional ``mamba-ssm`` package imports.

:func:`selective_scan` chooses among them and warns once when it falls back.
Used by :mod:`compendium.vision_mamba.vim` and the DyVM chapter of the book.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _optional

__all__ = [
    "selective_scan_ref",
    "selective_scan_chunked",
    "selective_scan",
    "available_backends",
    "default_chunk_size",
    "SelectiveScan",
]

_LOG2E = 1.0 / math.log(2.0)
BACKENDS = ("auto", "ref", "chunked", "mamba_ssm")
_warned: set[str] = set()


def _warn_once(key: str, msg: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _work_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _prepare_delta(delta: Tensor, delta_bias: Optional[Tensor], delta_softplus: bool,
                   dtype: torch.dtype) -> Tensor:
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return delta


def _finish(y: Tensor, u: Tensor, D: Optional[Tensor], z: Optional[Tensor]) -> Tensor:
    if D is not None:
        y = y + u * D.to(y.dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y


# ----------------------------------------------------------------------------------------
# Sequential reference
# ----------------------------------------------------------------------------------------
def selective_scan_ref(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                       D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                       delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                       return_last_state: bool = False):
    """Plain sequential selective scan (Mamba Alg. 2), a Python loop over the sequence.

    Args:
        u: (b, d, l) input.
        delta: (b, d, l) step sizes before ``delta_bias`` and softplus.
        A: (d, n) real state matrix (diagonal per channel), negative for stability.
        B: (b, n, l) input-dependent input matrix.
        C: (b, n, l) input-dependent output matrix.
        D: (d,) skip connection, optional.
        z: (b, d, l) gate, optional: the output is multiplied by SiLU(z).
        delta_bias: (d,) added to delta before the softplus, optional.
        delta_softplus: apply softplus to delta.
        return_last_state: also return the final state h_l, (b, d, n).

    Returns:
        out (b, d, l) in the dtype of ``u`` (computed in float32, or float64 for float64
        input), and ``last_state`` (b, d, n) when asked for.
    """
    dtype_in, wd = u.dtype, _work_dtype(u)
    u = u.to(wd)
    delta = _prepare_delta(delta, delta_bias, delta_softplus, wd)
    A, B, C = A.to(wd), B.to(wd), C.to(wd)
    b, d, l = u.shape
    deltaA = torch.exp(delta[..., None] * A[:, None, :])              # (b, d, l, n)
    deltaB_u = (delta * u)[..., None] * B.transpose(1, 2)[:, None]    # (b, d, l, n)
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(l):
        h = deltaA[:, :, t] * h + deltaB_u[:, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(b, d, 0)
    out = _finish(y, u, D, z).to(dtype_in)
    return (out, h) if return_last_state else out


# ----------------------------------------------------------------------------------------
# Fast CPU scan
# ----------------------------------------------------------------------------------------
def default_chunk_size(b: int, d: int, n: int, element_size: int = 4) -> int:
    """Chunk length whose two (chunk, b, d, n) buffers stay around 1.5 MB each.

    Measured on a 2-core AMD EPYC (benchmarks/selective_scan_speed.py): at the Vim-S
    shape (b=8, d=768, n=16) chunks of 4 steps were fastest.
    """
    per_step = max(1, b * d * n * element_size)
    return int(min(32, max(2, round(1.5e6 / per_step))))


def _segments(l: int, chunk: int):
    return [(s, min(s + chunk, l)) for s in range(0, l, chunk)]


def _scan_forward_core(dl: Tensor, dul: Tensor, Bl: Tensor, Cl: Tensor, A2: Tensor,
                       chunk: int, want_y: bool = True, starts: Optional[list] = None):
    """Forward recurrence in the (l, b, ...) layout.

    dl, dul: (l, b, d) delta and delta*u; Bl, Cl: (l, b, n); A2: (d, n) = A*log2(e).
    Returns y (l, b, d) or None, and the last state (b, d, n). When ``starts`` is a list,
    the state entering every chunk is appended to it (used by the backward pass).
    """
    l, b, d = dl.shape
    n = A2.shape[1]
    h = dl.new_zeros(b, d, n)
    y = dl.new_empty(l, b, d) if want_y else None
    T = min(chunk, max(l, 1))
    a_buf = dl.new_empty(T, b, d, n)
    x_buf = dl.new_empty(T, b, d, n)
    for s, e in _segments(l, chunk):
        t = e - s
        a, x = a_buf[:t], x_buf[:t]
        if starts is not None:
            starts.append(h.clone())
        torch.mul(dl[s:e, :, :, None], A2, out=a).exp2_()            # exp(delta*A)
        torch.mul(dul[s:e, :, :, None], Bl[s:e, :, None, :], out=x)  # delta*B*u
        x[0].addcmul_(a[0], h)
        for i in range(1, t):
            x[i].addcmul_(a[i], x[i - 1])                             # h_t, in place
        h.copy_(x[t - 1])
        if want_y:
            torch.sum(x.mul_(Cl[s:e, :, None, :]), dim=-1, out=y[s:e])  # <h_t, C_t>
    return y, h


class _ChunkedScanFn(torch.autograd.Function):
    """y_t = <h_t, C_t> with h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t; inputs (b, d, l)."""

    @staticmethod
    def forward(ctx, u, dt, A, B, C, chunk):
        dl = dt.permute(2, 0, 1).contiguous()
        dul = (dt * u).permute(2, 0, 1).contiguous()
        Bl = B.permute(2, 0, 1).contiguous()
        Cl = C.permute(2, 0, 1).contiguous()
        y, h = _scan_forward_core(dl, dul, Bl, Cl, A * _LOG2E, chunk)
        ctx.save_for_backward(u, dt, A, B, C)
        ctx.chunk = chunk
        ctx.mark_non_differentiable(h)
        return y.permute(1, 2, 0), h

    @staticmethod
    def backward(ctx, gy, _g_last):
        u, dt, A, B, C = ctx.saved_tensors
        chunk = ctx.chunk
        dl = dt.permute(2, 0, 1).contiguous()                    # (l, b, d)
        ul = u.permute(2, 0, 1).contiguous()
        dul = dl * ul
        Bl = B.permute(2, 0, 1).contiguous()                     # (l, b, n)
        Cl = C.permute(2, 0, 1).contiguous()
        gyl = gy.permute(2, 0, 1).contiguous()                   # (l, b, d)
        A2 = A * _LOG2E
        l, b, d = dl.shape
        n = A.shape[1]
        starts: list = []
        _scan_forward_core(dl, dul, Bl, Cl, A2, chunk, want_y=False, starts=starts)

        gdl, gul = torch.empty_like(dl), torch.empty_like(dl)
        gBl, gCl = torch.empty_like(Bl), torch.empty_like(Cl)
        gA = torch.zeros_like(A)
        carry = dl.new_zeros(b, d, n)        # a_{e} * g_{e} handed back from the next chunk
        for k, (s, e) in reversed(list(enumerate(_segments(l, chunk)))):
            t = e - s
            a = torch.mul(dl[s:e, :, :, None], A2).exp2_()                 # (t, b, d, n)
            x = dul[s:e, :, :, None] * Bl[s:e, :, None, :]               # delta*B*u
            H = torch.empty_like(x)
            torch.addcmul(x[0], a[0], starts[k], out=H[0])
            for i in range(1, t):
                torch.addcmul(x[i], a[i], H[i - 1], out=H[i])             # states h_t
            gCl[s:e] = torch.matmul(gyl[s:e, :, None, :], H).squeeze(2)  # sum_d gy h
            G = gyl[s:e, :, :, None] * Cl[s:e, :, None, :]                 # dL/dh_t, local
            G[t - 1].add_(carry)
            for i in range(t - 2, -1, -1):
                G[i].addcmul_(a[i + 1], G[i + 1])                          # reverse scan
            carry = a[0] * G[0]
            gBl[s:e] = torch.matmul(dul[s:e, :, None, :], G).squeeze(2)  # sum_d g dt u
            GB = (G * Bl[s:e, :, None, :]).sum(-1)                         # sum_n g B
            S = H.sub_(x).mul_(G)                                          # g * a_t * h_{t-1}
            gdl[s:e] = (S * A).sum(-1) + GB * ul[s:e]
            gul[s:e] = GB * dl[s:e]
            gA += (S * dl[s:e, :, :, None]).sum((0, 1))
        return (gul.permute(1, 2, 0), gdl.permute(1, 2, 0), gA,
                gBl.permute(1, 2, 0), gCl.permute(1, 2, 0), None)


def selective_scan_chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                           D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                           delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                           return_last_state: bool = False, chunk_size: Optional[int] = None):
    """Fast CPU selective scan; same arguments, shapes and results as :func:`selective_scan_ref`.

    ``chunk_size`` (steps per chunk) defaults to :func:`default_chunk_size`. Gradients
    flow to u, delta, A, B, C, D, z and delta_bias (not through ``last_state``).
    """
    dtype_in, wd = u.dtype, _work_dtype(u)
    u = u.to(wd)
    dt = _prepare_delta(delta, delta_bias, delta_softplus, wd)
    b, d, l = u.shape
    n = A.shape[1]
    chunk = chunk_size or default_chunk_size(b, d, n, torch.finfo(wd).bits // 8)
    y, h = _ChunkedScanFn.apply(u, dt, A.to(wd), B.to(wd), C.to(wd), int(chunk))
    out = _finish(y, u, D, z).to(dtype_in)
    return (out, h) if return_last_state else out


# ----------------------------------------------------------------------------------------
# Dispatcher
# ----------------------------------------------------------------------------------------
def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """Backends that can run on ``device`` in this environment."""
    names = ["ref", "chunked"]
    if torch.device(device).type == "cuda" and _optional.HAS_MAMBA_SSM:
        names.append("mamba_ssm")
    return names


def _resolve_backend(backend: str, u: Tensor) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown selective-scan backend {backend!r}; choose from {BACKENDS}")
    on_cuda = u.device.type == "cuda"
    if backend == "auto":
        if on_cuda and _optional.HAS_MAMBA_SSM:
            return "mamba_ssm"
        if on_cuda:
            _warn_once("auto-cuda", "mamba-ssm's CUDA selective scan is not available; "
                       "falling back to the chunked PyTorch scan (slower). To use the "
                       "kernel, " + _optional.GPU_INSTALL_HINT)
        return "chunked"
    if backend == "mamba_ssm" and not (on_cuda and _optional.HAS_MAMBA_SSM):
        why = "the tensors are not on CUDA" if not on_cuda else "mamba-ssm is not importable"
        _warn_once("mamba-" + why, f"backend 'mamba_ssm' requested but {why}; falling back "
                   "to the chunked PyTorch scan. " + ("" if not on_cuda else
                                                       "To use the kernel, " + _optional.GPU_INSTALL_HINT))
        return "chunked"
    return backend


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                   D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                   delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                   return_last_state: bool = False, backend: str = "auto"):
    """Selective scan with backend selection; arguments as in :func:`selective_scan_ref`.

    ``backend``: "auto" (mamba-ssm's CUDA kernel for CUDA tensors when installed, else the
    chunked scan), "ref", "chunked" or "mamba_ssm". A fallback warns once per process.
    """
    name = _resolve_backend(backend, u)
    if name == "mamba_ssm":
        fn = _optional.mamba_ssm_selective_scan_fn()
        return fn(u, delta, A, B.contiguous(), C.contiguous(), D, z, delta_bias,
                  delta_softplus, return_last_state)
    fn = selective_scan_ref if name == "ref" else selective_scan_chunked
    return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


class SelectiveScan(nn.Module):
    """Parameter-free module around :func:`selective_scan`.

    A module (not a bare function call) so that forward hooks can see every scan, e.g.
    the FLOPs counter in :mod:`compendium.vision_mamba.flops`. Adds no state-dict keys.
    """

    def __init__(self, backend: str = "auto"):
        super().__init__()
        self.backend = backend

    def forward(self, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
        return selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                              backend=self.backend)

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}"


@contextlib.contextmanager
def scan_backend(module: nn.Module, backend: str):
    """Temporarily set the backend of every :class:`SelectiveScan` inside ``module``."""
    scans = [m for m in module.modules() if isinstance(m, SelectiveScan)]
    old = [m.backend for m in scans]
    for m in scans:
        m.backend = backend
    try:
        yield module
    finally:
        for m, b in zip(scans, old):
            m.backend = b
