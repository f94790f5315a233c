"""Selective scan (the S6 layer of Mamba): sequential reference, fast CPU scan, dispatcher.

Mamba (Gu & Dao, arXiv 2312.00752), Alg. 2 and eqs. (2a), (2b), (4): per channel d and
state n, with ZOH for A and Euler for B,

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t        (state, b x d x n)
    y_t = <h_t, C_t> + D * u_t,   then  y_t <- y_t * SiLU(z_t)

Shape letters (as in mamba-ssm's ``selective_scan_interface.py``): b batch, d channels
(``d_inner`` of the mixer), l sequence length, n state size (``d_state``).

Four implementations with one signature (mamba-ssm's ``selective_scan_fn``):

* :func:`selective_scan_ref`: the equations above, a Python loop over l (clear, slow).
* :func:`selective_scan_chunked`: the fast pure-PyTorch scan. The sequence is cut into
  chunks of a few steps; for each chunk the discretisation exp(delta*A) and delta*B*u
  are computed for all its steps at once into two reused buffers (no large
  allocations), the recurrence runs in place, and the contraction with C is taken per
  chunk, all token-major. It has its own backward (a reverse-time scan over the chunks,
  from the chunk-start states saved in the forward), so training does not go through a
  Python-level autograd graph of ``l`` steps.
* :func:`selective_scan_cpu_kernel`: the same recurrence fused in a small C kernel
  (:mod:`.cpu_kernel`, compiled on first use), for float32 on the CPU.
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

from . import _optional, cpu_kernel

__all__ = [
    "selective_scan_ref",
    "selective_scan_chunked",
    "selective_scan_cpu_kernel",
    "selective_scan",
    "available_backends",
    "default_chunk_size",
    "SelectiveScan",
]

_LOG2E = 1.0 / math.log(2.0)
BACKENDS = ("auto", "ref", "chunked", "cpu_kernel", "mamba_ssm")
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


def _blk(x: Tensor) -> Tensor:
    """(b, k, l) -> contiguous (b, l, k); free when x is a transposed view of (b, l, k)."""
    return x.mT.contiguous()


def _steps(x: Tensor, s: int, e: int) -> Tensor:
    """Steps s..e-1 of a (b, l, k) tensor as a contiguous (e - s, b, k) copy (small)."""
    return x[:, s:e].transpose(0, 1).contiguous()


def _scan_forward_core(u: Tensor, dt: Tensor, A2t: Tensor, B: Tensor, C: Tensor,
                       chunk: int, want_y: bool = True, starts: Optional[list] = None):
    """Forward recurrence, chunk by chunk, in the token-major layout.

    u, dt: (b, l, d); A2t: (n, d) = A.T * log2(e); B, C: (b, l, n), all contiguous.
    The two reused buffers are (chunk, b, n, d): the state of one step, (b, n, d), is
    contiguous and the contraction with C is a sum over a middle dimension (vectorised
    over d). Returns y (b, l, d) or None, and the last state (b, n, d). When ``starts``
    is a list, the state entering every chunk is appended to it (for the backward pass).
    """
    b, l, d = u.shape
    n = A2t.shape[0]
    h = u.new_zeros(b, n, d)
    y = u.new_empty(b, l, d) if want_y else None
    T = min(chunk, max(l, 1))
    a_buf = u.new_empty(T, b, n, d)
    x_buf = u.new_empty(T, b, n, d)
    y_buf = u.new_empty(T, b, d)
    for s, e in _segments(l, chunk):
        t = e - s
        a, x = a_buf[:t], x_buf[:t]
        if starts is not None:
            starts.append(h.clone())
        dt_c = _steps(dt, s, e)                                                # (t, b, d)
        torch.mul(dt_c[:, :, None, :], A2t, out=a).exp2_()                     # exp(dt*A)
        torch.mul((dt_c * _steps(u, s, e))[:, :, None, :], _steps(B, s, e)[..., None], out=x)
        x[0].addcmul_(a[0], h)                                                 # + dt*B*u
        for i in range(1, t):
            x[i].addcmul_(a[i], x[i - 1])                                      # h_t in place
        h.copy_(x[t - 1])
        if want_y:
            torch.sum(x.mul_(_steps(C, s, e)[..., None]), dim=2, out=y_buf[:t])  # <h_t, C_t>
            y[:, s:e] = y_buf[:t].transpose(0, 1)
    return y, h


class _ChunkedScanFn(torch.autograd.Function):
    """y_t = <h_t, C_t>, h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t, token-major (b, l, .) tensors."""

    @staticmethod
    def forward(ctx, u, dt, A, B, C, chunk):
        need_grad = any(ctx.needs_input_grad[:5])
        starts: Optional[list] = [] if need_grad else None
        y, h = _scan_forward_core(u, dt, (A * _LOG2E).t().contiguous(), B, C, chunk, starts=starts)
        ctx.save_for_backward(u, dt, A, B, C, *(starts or []))
        ctx.chunk = chunk
        h = h.transpose(1, 2)
        ctx.mark_non_differentiable(h)
        return y, h

    @staticmethod
    def backward(ctx, gy, _g_last):
        u, dt, A, B, C, *starts = ctx.saved_tensors
        gy = gy.contiguous()
        chunk = ctx.chunk
        b, l, d = u.shape
        n = A.shape[1]
        At = A.t().contiguous()
        A2t = At * _LOG2E
        gu, gdt = torch.empty_like(u), torch.empty_like(u)
        gB, gC = torch.empty_like(B), torch.empty_like(C)
        gAt = torch.zeros_like(At)
        carry = u.new_zeros(b, n, d)         # a_e * g_e handed back from the next chunk
        for k, (s, e) in reversed(list(enumerate(_segments(l, chunk)))):
            t = e - s
            dt_c, u_c, gy_c = _steps(dt, s, e), _steps(u, s, e), _steps(gy, s, e)   # (t, b, d)
            dtu_c = dt_c * u_c
            B_c, C_c = _steps(B, s, e)[..., None], _steps(C, s, e)[..., None]       # (t, b, n, 1)
            a = torch.mul(dt_c[:, :, None, :], A2t).exp2_()                   # (t, b, n, d)
            x = dtu_c[:, :, None, :] * B_c                                     # dt*B*u
            H = torch.empty_like(x)
            torch.addcmul(x[0], a[0], starts[k], out=H[0])
            for i in range(1, t):
                torch.addcmul(x[i], a[i], H[i - 1], out=H[i])                  # states h_t
            gC[:, s:e] = torch.linalg.vecdot(H, gy_c[:, :, None, :]).transpose(0, 1)
            G = gy_c[:, :, None, :] * C_c                                      # dL/dh_t, local
            G[t - 1].add_(carry)
            for i in range(t - 2, -1, -1):
                G[i].addcmul_(a[i + 1], G[i + 1])                              # reverse scan
            carry = a[0] * G[0]
            gB[:, s:e] = torch.linalg.vecdot(G, dtu_c[:, :, None, :]).transpose(0, 1)
            GB = torch.linalg.vecdot(G, B_c, dim=2)                            # sum_n g B
            S = H.sub_(x).mul_(G)                                              # g a_t h_{t-1}
            gdt[:, s:e] = (torch.linalg.vecdot(S, At, dim=2) + GB * u_c).transpose(0, 1)
            gu[:, s:e] = (GB * dt_c).transpose(0, 1)
            gAt += S.mul_(dt_c[:, :, None, :]).sum((0, 1))
        return gu, gdt, gAt.t(), gB, gC, None


class _KernelScanFn(torch.autograd.Function):
    """The whole selective scan (bias, softplus, D, z included) in the fused C kernel."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, bias, softplus):
        At = A.t().contiguous()
        out, h = cpu_kernel.scan_forward(u, delta, At, B, C, D, z, bias, softplus)
        ctx.save_for_backward(u, delta, At, B, C, D, z, bias)
        ctx.softplus = softplus
        h = h.transpose(1, 2)
        ctx.mark_non_differentiable(h)
        return out, h

    @staticmethod
    def backward(ctx, gout, _g_last):
        u, delta, At, B, C, D, z, bias = ctx.saved_tensors
        g = cpu_kernel.scan_backward(u, delta, At, B, C, gout.contiguous(), D, z, bias, ctx.softplus)
        return g["u"], g["delta"], g["At"].t(), g["B"], g["C"], g["D"], g["z"], g["bias"], None


def _token_major_scan(fn, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                      chunk_size):
    dtype_in, wd = u.dtype, _work_dtype(u)
    u_t = _blk(u.to(wd))                                     # (b, l, d)
    dt_t = _blk(delta.to(wd))
    if delta_bias is not None:
        dt_t = dt_t + delta_bias.to(wd)
    if delta_softplus:
        dt_t = F.softplus(dt_t)
    b, l, d = u_t.shape
    n = A.shape[1]
    chunk = chunk_size or default_chunk_size(b, d, n, torch.finfo(wd).bits // 8)
    y, h = fn.apply(u_t, dt_t, A.to(wd), _blk(B.to(wd)), _blk(C.to(wd)), int(chunk))
    if D is not None:
        y = torch.addcmul(y, u_t, D.to(wd))
    if z is not None:
        y = y * F.silu(_blk(z.to(wd)))
    out = y.to(dtype_in).mT
    return (out, h) if return_last_state else out


def selective_scan_chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                           D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                           delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                           return_last_state: bool = False, chunk_size: Optional[int] = None):
    """Fast pure-PyTorch selective scan; arguments, shapes and results as :func:`selective_scan_ref`.

    ``chunk_size`` (steps per chunk) defaults to :func:`default_chunk_size`. Gradients
    flow to u, delta, A, B, C, D, z and delta_bias (not through ``last_state``). The
    work is done token-major: inputs that are transposed views of (b, l, .) tensors (as
    the Vim mixer passes them) are used without copies, and the output is returned as
    such a view.
    """
    return _token_major_scan(_ChunkedScanFn, u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                             return_last_state, chunk_size)


def selective_scan_cpu_kernel(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                              D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                              delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                              return_last_state: bool = False):
    """The fused C kernel of :mod:`.cpu_kernel` (float32 work; CPU). Same contract as above.

    Raises RuntimeError when the kernel cannot be compiled here (no C compiler).
    """
    if not cpu_kernel.available():
        raise RuntimeError(f"the fused CPU scan kernel is unavailable: {cpu_kernel.load_error()}")
    if u.dtype == torch.float64:
        raise TypeError("the fused CPU kernel works in float32; use selective_scan_chunked for float64")
    f32 = lambda t: None if t is None else t.to(torch.float32)
    c32 = lambda t: None if t is None else t.to(torch.float32).contiguous()
    out, h = _KernelScanFn.apply(_blk(f32(u)), _blk(f32(delta)), f32(A), _blk(f32(B)), _blk(f32(C)),
                                 c32(D), None if z is None else _blk(f32(z)), c32(delta_bias),
                                 bool(delta_softplus))
    out = out.to(u.dtype).mT
    return (out, h) if return_last_state else out


# ----------------------------------------------------------------------------------------
# Dispatcher
# ----------------------------------------------------------------------------------------
def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """Backends that can run on ``device`` in this environment."""
    names = ["ref", "chunked"]
    kind = torch.device(device).type
    if kind == "cpu" and cpu_kernel.available():
        names.append("cpu_kernel")
    if kind == "cuda" and _optional.HAS_MAMBA_SSM:
        names.append("mamba_ssm")
    return names


def _resolve_backend(backend: str, u: Tensor) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown selective-scan backend {backend!r}; choose from {BACKENDS}")
    on_cuda = u.device.type == "cuda"
    if backend == "auto":
        if on_cuda:
            if _optional.HAS_MAMBA_SSM:
                return "mamba_ssm"
            _warn_once("auto-cuda", "mamba-ssm's CUDA selective scan is not available; "
                       "falling back to the chunked PyTorch scan (slower). To use the "
                       "kernel, " + _optional.GPU_INSTALL_HINT)
            return "chunked"
        if u.device.type == "cpu" and u.dtype != torch.float64:
            if cpu_kernel.available():
                return "cpu_kernel"
            _warn_once("auto-cpu", "the fused CPU scan kernel could not be compiled "
                       f"({cpu_kernel.load_error()}); falling back to the chunked PyTorch scan.")
        return "chunked"
    if backend == "mamba_ssm" and not (on_cuda and _optional.HAS_MAMBA_SSM):
        why = "the tensors are not on CUDA" if not on_cuda else "mamba-ssm is not importable"
        _warn_once("mamba-" + why, f"backend 'mamba_ssm' requested but {why}; falling back "
                   "to the chunked PyTorch scan. " + ("" if not on_cuda else
                                                       "To use the kernel, " + _optional.GPU_INSTALL_HINT))
        return "chunked"
    if backend == "cpu_kernel" and (on_cuda or u.dtype == torch.float64 or not cpu_kernel.available()):
        why = ("the tensors are not on the CPU" if on_cuda else "it works in float32 only"
               if u.dtype == torch.float64 else f"it cannot be compiled ({cpu_kernel.load_error()})")
        _warn_once("kernel-" + why, f"backend 'cpu_kernel' requested but {why}; falling back "
                   "to the chunked PyTorch scan.")
        return "chunked"
    return backend


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                   D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                   delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                   return_last_state: bool = False, backend: str = "auto"):
    """Selective scan with backend selection; arguments as in :func:`selective_scan_ref`.

    ``backend``: "auto" (CUDA tensors: mamba-ssm's kernel when installed, else the chunked
    scan; CPU: the fused C kernel for float32/bfloat16/float16 when it compiles, else the
    chunked scan; float64: the chunked scan), "ref", "chunked", "cpu_kernel" or
    "mamba_ssm". A fallback warns once per process.
    """
    if u.device.type == "meta":   # shape-only runs (FLOPs counting): no arithmetic to do
        out = u.new_empty(u.shape)
        return (out, u.new_empty(u.shape[0], u.shape[1], A.shape[1])) if return_last_state else out
    name = _resolve_backend(backend, u)
    if name == "mamba_ssm":
        # The CUDA kernel wants u, delta, z and variable B / C in one dtype (A, D and the
        # bias stay float32); under autocast that is the autocast dtype, as in the official
        # Vim, whose fused path casts its inputs the same way.
        dt = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else u.dtype
        fn = _optional.mamba_ssm_selective_scan_fn()
        return fn(u.to(dt), delta.to(dt), A, B.to(dt).contiguous(), C.to(dt).contiguous(), D,
                  None if z is None else z.to(dt), delta_bias, delta_softplus, return_last_state)
    fn = {"ref": selective_scan_ref, "chunked": selective_scan_chunked,
          "cpu_kernel": selective_scan_cpu_kernel}[name]
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
