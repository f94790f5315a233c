"""Selective scan: reference against a scalar loop, the chunked CPU scan against the
reference (values and gradients, per-dtype tolerances), the dispatcher, and the CUDA
kernel against the reference where CUDA and mamba-ssm exist."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from compendium.vision_mamba import _optional, cpu_kernel
from compendium.vision_mamba import selective_scan as ss
from compendium.vision_mamba.selective_scan import (available_backends, selective_scan,
                                                    selective_scan_chunked, selective_scan_cpu_kernel,
                                                    selective_scan_ref)

needs_kernel = pytest.mark.skipif(not cpu_kernel.available(),
                                  reason=f"fused CPU kernel not compiled: {cpu_kernel.load_error()}")

# rtol, atol per dtype (mamba-ssm's test uses fp32 6e-4 / 2e-3; our two CPU scans agree closer)
TOL = {torch.float64: (1e-10, 1e-10), torch.float32: (1e-4, 1e-4), torch.bfloat16: (2e-2, 5e-2)}


def make_inputs(b=2, d=6, l=11, n=4, dtype=torch.float32, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    t = dict(u=r(b, d, l), delta=0.5 * r(b, d, l), A=-(torch.rand(d, n, generator=g, dtype=torch.float64) * 3 + 0.1),
             B=r(b, n, l), C=r(b, n, l), D=r(d), z=r(b, d, l), delta_bias=0.1 * r(d))
    out = {}
    for k, v in t.items():
        v = v.to(dtype if k in ("u", "delta", "B", "C", "z") else (torch.float64 if dtype == torch.float64 else torch.float32))
        out[k] = v.requires_grad_(grad)
    return out


def scalar_loop(u, delta, A, B, C, D, z, delta_bias):
    """Mamba Alg. 2 written with Python scalars, one channel and one state at a time."""
    b, d, l = u.shape
    n = A.shape[1]
    out = torch.zeros(b, d, l, dtype=torch.float64)
    for bi in range(b):
        for di in range(d):
            h = [0.0] * n
            for t in range(l):
                dt = F.softplus(delta[bi, di, t] + delta_bias[di]).item()
                y = 0.0
                for ni in range(n):
                    h[ni] = math.exp(dt * A[di, ni].item()) * h[ni] + dt * B[bi, ni, t].item() * u[bi, di, t].item()
                    y += C[bi, ni, t].item() * h[ni]
                y += D[di].item() * u[bi, di, t].item()
                out[bi, di, t] = y * F.silu(z[bi, di, t]).item()
    return out


def test_reference_matches_scalar_recurrence():
    x = make_inputs(b=1, d=2, l=4, n=3, dtype=torch.float64)
    y = selective_scan_ref(**x, delta_softplus=True)
    torch.testing.assert_close(y, scalar_loop(**x), rtol=1e-12, atol=1e-12)


def test_toy_decay_by_hand():
    # one channel, one state: A = -ln 2, delta = 1 -> h_t = h_{t-1}/2 + u_t B_t; C = 1
    u = torch.tensor([[[1.0, 0.0, 0.0, 4.0]]])
    ones = torch.ones(1, 1, 4)
    y = selective_scan_ref(u, ones, torch.tensor([[-math.log(2.0)]]), ones, ones)
    torch.testing.assert_close(y, torch.tensor([[[1.0, 0.5, 0.25, 4.125]]]))
    y2 = selective_scan_chunked(u, ones, torch.tensor([[-math.log(2.0)]]), ones, ones, chunk_size=3)
    torch.testing.assert_close(y2, y)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("chunk", [1, 3, 4, 16])
@pytest.mark.parametrize("extras", [True, False])
def test_chunked_matches_reference(dtype, chunk, extras):
    x = make_inputs(l=13, dtype=dtype)
    if not extras:
        x.update(D=None, z=None, delta_bias=None)
    y0, h0 = selective_scan_ref(**x, delta_softplus=extras, return_last_state=True)
    y1, h1 = selective_scan_chunked(**x, delta_softplus=extras, return_last_state=True, chunk_size=chunk)
    rtol, atol = TOL[dtype]
    assert y1.dtype == dtype
    torch.testing.assert_close(y1, y0, rtol=rtol, atol=atol)
    torch.testing.assert_close(h1, h0, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_chunked_gradients_match_reference(dtype):
    x0 = make_inputs(l=10, dtype=dtype, grad=True)
    x1 = {k: v.detach().clone().requires_grad_() for k, v in x0.items()}
    w = torch.randn(x0["u"].shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    (selective_scan_ref(**x0, delta_softplus=True) * w).sum().backward()
    (selective_scan_chunked(**x1, delta_softplus=True, chunk_size=3) * w).sum().backward()
    rtol, atol = (1e-9, 1e-9) if dtype == torch.float64 else (1e-4, 1e-4)
    for k in x0:
        torch.testing.assert_close(x1[k].grad, x0[k].grad, rtol=rtol, atol=atol, msg=k)


def test_chunked_gradcheck():
    x = make_inputs(b=1, d=3, l=7, n=2, dtype=torch.float64, grad=True)
    names = list(x)
    f = lambda *a: selective_scan_chunked(**dict(zip(names, a)), delta_softplus=True, chunk_size=3)
    assert torch.autograd.gradcheck(f, tuple(x.values()))


def test_token_major_inputs_give_same_result():
    x = make_inputs(l=9)
    y0 = selective_scan_chunked(**x, delta_softplus=True)
    tm = {k: (v.transpose(1, 2).contiguous().transpose(1, 2) if v.ndim == 3 else v) for k, v in x.items()}
    assert tm["u"].stride(1) == 1
    torch.testing.assert_close(selective_scan_chunked(**tm, delta_softplus=True), y0, rtol=1e-6, atol=1e-6)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("extras", [True, False])
def test_cpu_kernel_matches_reference(dtype, extras):
    x = make_inputs(l=13, d=24, dtype=dtype)
    if not extras:
        x.update(D=None, z=None, delta_bias=None)
    y0, h0 = selective_scan_ref(**x, delta_softplus=extras, return_last_state=True)
    y1, h1 = selective_scan_cpu_kernel(**x, delta_softplus=extras, return_last_state=True)
    rtol, atol = TOL[dtype]
    assert y1.dtype == dtype
    torch.testing.assert_close(y1, y0, rtol=rtol, atol=atol)
    torch.testing.assert_close(h1, h0, rtol=rtol, atol=atol)


@needs_kernel
@pytest.mark.parametrize("extras", [True, False])
def test_cpu_kernel_gradients_match_reference(extras):
    x0 = make_inputs(l=10, d=24, grad=True)
    if not extras:
        x0.update(D=None, z=None, delta_bias=None)
    x1 = {k: None if v is None else v.detach().clone().requires_grad_() for k, v in x0.items()}
    w = torch.randn(x0["u"].shape, generator=torch.Generator().manual_seed(1))
    (selective_scan_ref(**x0, delta_softplus=extras) * w).sum().backward()
    (selective_scan_cpu_kernel(**x1, delta_softplus=extras) * w).sum().backward()
    for k, v in x0.items():
        if v is not None:
            torch.testing.assert_close(x1[k].grad, v.grad, rtol=1e-4, atol=1e-4, msg=k)


def test_dispatcher_cpu_and_errors():
    x = make_inputs()
    backends = available_backends("cpu")
    assert backends[:2] == ["ref", "chunked"] and set(backends) <= {"ref", "chunked", "cpu_kernel"}
    y_auto = selective_scan(**x, delta_softplus=True)
    fast = selective_scan_cpu_kernel if "cpu_kernel" in backends else selective_scan_chunked
    torch.testing.assert_close(y_auto, fast(**x, delta_softplus=True), rtol=0, atol=0)
    x64 = make_inputs(dtype=torch.float64)            # float64: the chunked scan
    torch.testing.assert_close(selective_scan(**x64, delta_softplus=True),
                               selective_scan_chunked(**x64, delta_softplus=True), rtol=0, atol=0)
    torch.testing.assert_close(selective_scan(**x, delta_softplus=True, backend="ref"),
                               selective_scan_ref(**x, delta_softplus=True), rtol=0, atol=0)
    with pytest.raises(ValueError, match="unknown selective-scan backend"):
        selective_scan(**x, backend="triton")


def test_dispatcher_warns_once_on_fallback(monkeypatch):
    monkeypatch.setattr(ss, "_warned", set())
    x = make_inputs()
    with pytest.warns(RuntimeWarning, match="falling back"):
        y = selective_scan(**x, backend="mamba_ssm")
    torch.testing.assert_close(y, selective_scan_chunked(**x), rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        selective_scan(**x, backend="mamba_ssm")      # second time: silent


def test_meta_device_shapes():
    x = {k: v.to("meta") for k, v in make_inputs().items()}
    y, h = selective_scan(**x, return_last_state=True)
    assert y.shape == (2, 6, 11) and h.shape == (2, 6, 4) and y.is_meta


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and _optional.HAS_MAMBA_SSM),
                    reason="needs CUDA and the mamba-ssm extra")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_kernel_matches_reference(dtype):
    x = {k: v.cuda() for k, v in make_inputs(b=2, d=8, l=64, n=16, dtype=dtype).items()}
    y0 = selective_scan_ref(**x, delta_softplus=True)
    y1 = selective_scan(**x, delta_softplus=True, backend="mamba_ssm")
    rtol, atol = (6e-4, 2e-3) if dtype == torch.float32 else (3e-2, 5e-2)
    torch.testing.assert_close(y1, y0, rtol=rtol, atol=atol)
    torch.testing.assert_close(selective_scan(**x, delta_softplus=True, backend="chunked"), y0,
                               rtol=rtol, atol=atol)


def test_auto_falls_back_when_kernel_cannot_compile(monkeypatch):
    monkeypatch.setattr(ss, "_warned", set())
    monkeypatch.setattr(cpu_kernel, "_tried", True)
    monkeypatch.setattr(cpu_kernel, "_lib", None)
    monkeypatch.setattr(cpu_kernel, "_error", "no C compiler found (set CC)")
    x = make_inputs()
    assert available_backends("cpu") == ["ref", "chunked"]
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        y = selective_scan(**x)
    torch.testing.assert_close(y, selective_scan_chunked(**x), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="unavailable"):
        selective_scan_cpu_kernel(**x)
