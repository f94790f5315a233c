"""A fused CPU selective-scan kernel (forward and backward), compiled on first use.

Eager PyTorch cannot fuse the scan: every step of the chunked scan is a separate pass
over a (steps, b, n, d) tensor, and ``exp`` alone costs about as much as the other
passes together. This module holds a ~100-line C kernel doing the whole recurrence in
one loop nest per batch element: the state (n x d) stays in cache, the inner loop runs
over the channels d (contiguous, vectorised, ``expf`` from glibc's vector math library
under ``-ffast-math``). The backward pass stores the states of one sequence and runs
the reverse-time recurrence, as mamba-ssm's CUDA kernel does per chunk.

It is compiled with the system C compiler (``cc``, or ``$CC``) into the cache folder
(``<cache>/artifacts/vision_mamba/kernels``, keyed by source, flags and CPU) the first
time it is needed, in about a second, and loaded with ``ctypes``. The batch is split over
``torch.get_num_threads()`` Python threads (``ctypes`` releases the GIL). Where no compiler
works, :func:`load` returns None and :mod:`.selective_scan` falls back to the pure
PyTorch chunked scan with a warning. float32 only.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import torch

from ..paths import artifacts_dir

__all__ = ["load", "available", "scan_forward", "scan_backward", "SOURCE", "FLAGS"]

SOURCE = r"""
#include <math.h>
#include <string.h>

/* Layouts (row-major, float32): u, delta, z, y, gu, gdelta, gz: (b, l, d);
   B, C, gB, gC: (b, l, n); A, gA: (n, d) (A transposed); bias, D, gbias, gD: (d);
   h_last: (b, n, d); H, E (scratch): (l, n, d); g, zeros: (n, d); w (scratch): (3, d).
   dt = softplus(delta + bias) (when softplus), else delta + bias;
   h_t = exp(dt_t * A) * h_{t-1} + dt_t * u_t * B_t ;  y_t = sum_n C_t[n] h_t[n, :];
   out_t = (y_t + D * u_t) * silu(z_t). bias, D, z may be NULL.                      */

static inline float softplusf(float x) { return x > 20.f ? x : log1pf(expf(x)); }
static inline float sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }

static void dt_row(const float *delta_t, const float *bias, int softplus, float *dt, int d)
{
    #pragma omp simd
    for (int j = 0; j < d; ++j) {
        const float v = delta_t[j] + (bias ? bias[j] : 0.f);
        dt[j] = softplus ? softplusf(v) : v;
    }
}

void scan_fwd(const float *u, const float *delta, const float *bias, int softplus,
              const float *A, const float *B, const float *C, const float *D, const float *z,
              float *y, float *h_last, float *w, int b, int l, int d, int n)
{
    float *dt = w;
    for (int bb = 0; bb < b; ++bb) {
        float *h = h_last + (long)bb * n * d;
        memset(h, 0, sizeof(float) * n * d);
        for (int t = 0; t < l; ++t) {
            const long row = (long)bb * l + t;
            const float *u_t = u + row * d;
            const float *B_t = B + row * n, *C_t = C + row * n;
            float *y_t = y + row * d;
            dt_row(delta + row * d, bias, softplus, dt, d);
            memset(y_t, 0, sizeof(float) * d);
            for (int k = 0; k < n; ++k) {
                const float Bk = B_t[k], Ck = C_t[k];
                const float *Ak = A + (long)k * d;
                float *hk = h + (long)k * d;
                #pragma omp simd
                for (int j = 0; j < d; ++j) {
                    const float a = expf(dt[j] * Ak[j]);
                    const float hv = a * hk[j] + dt[j] * u_t[j] * Bk;
                    hk[j] = hv;
                    y_t[j] += hv * Ck;
                }
            }
            if (D || z) {
                const float *z_t = z ? z + row * d : 0;
                #pragma omp simd
                for (int j = 0; j < d; ++j) {
                    float v = y_t[j] + (D ? D[j] * u_t[j] : 0.f);
                    if (z_t) v *= z_t[j] * sigmoidf(z_t[j]);
                    y_t[j] = v;
                }
            }
        }
    }
}

void scan_bwd(const float *u, const float *delta, const float *bias, int softplus,
              const float *A, const float *B, const float *C, const float *D, const float *z,
              const float *gout, float *gu, float *gdelta, float *gA, float *gB, float *gC,
              float *gD, float *gbias, float *gz, float *H, float *E, float *g,
              const float *zeros, float *w, int b, int l, int d, int n)
{
    const long nd = (long)n * d;
    float *dt = w, *gy = w + d, *gdt = w + 2 * d;
    for (int bb = 0; bb < b; ++bb) {
        /* forward sweep: all states of this sequence */
        for (int t = 0; t < l; ++t) {
            const long row = (long)bb * l + t;
            const float *u_t = u + row * d, *B_t = B + row * n;
            const float *Hp = t ? H + (t - 1) * nd : zeros;
            float *Ht = H + t * nd, *Et = E + t * nd;
            dt_row(delta + row * d, bias, softplus, dt, d);
            for (int k = 0; k < n; ++k) {
                const float Bk = B_t[k];
                const float *Ak = A + (long)k * d, *hp = Hp + (long)k * d;
                float *ht = Ht + (long)k * d, *et = Et + (long)k * d;
                #pragma omp simd
                for (int j = 0; j < d; ++j) {
                    const float a = expf(dt[j] * Ak[j]);
                    et[j] = a;                       /* kept for the reverse sweep */
                    ht[j] = a * hp[j] + dt[j] * u_t[j] * Bk;
                }
            }
        }
        /* reverse sweep; g holds a_{t+1} * dL/dh_{t+1} */
        memset(g, 0, sizeof(float) * nd);
        for (int t = l - 1; t >= 0; --t) {
            const long row = (long)bb * l + t;
            const float *u_t = u + row * d, *go_t = gout + row * d;
            const float *B_t = B + row * n, *C_t = C + row * n;
            const float *Hp = t ? H + (t - 1) * nd : zeros, *Ht = H + t * nd, *Et = E + t * nd;
            float *gu_t = gu + row * d, *gdelta_t = gdelta + row * d;
            float *gB_t = gB + row * n, *gC_t = gC + row * n;
            dt_row(delta + row * d, bias, softplus, dt, d);
            /* output gate and skip: out = (y + D u) * silu(z) */
            if (z) {
                const float *z_t = z + row * d;
                float *gz_t = gz + row * d;
                memset(gy, 0, sizeof(float) * d);
                for (int k = 0; k < n; ++k) {          /* y_t again, from the stored states */
                    const float Ck = C_t[k];
                    const float *ht = Ht + (long)k * d;
                    #pragma omp simd
                    for (int j = 0; j < d; ++j) gy[j] += Ck * ht[j];
                }
                #pragma omp simd
                for (int j = 0; j < d; ++j) {
                    const float pre = gy[j] + (D ? D[j] * u_t[j] : 0.f);
                    const float sg = sigmoidf(z_t[j]);
                    gz_t[j] = go_t[j] * pre * sg * (1.f + z_t[j] * (1.f - sg));
                    gy[j] = go_t[j] * z_t[j] * sg;
                }
            } else {
                memcpy(gy, go_t, sizeof(float) * d);
            }
            #pragma omp simd
            for (int j = 0; j < d; ++j) {
                gu_t[j] = D ? gy[j] * D[j] : 0.f;
                gdt[j] = 0.f;
            }
            if (D) {
                #pragma omp simd
                for (int j = 0; j < d; ++j) gD[j] += gy[j] * u_t[j];
            }
            for (int k = 0; k < n; ++k) {
                const float Bk = B_t[k], Ck = C_t[k];
                const float *Ak = A + (long)k * d, *hp = Hp + (long)k * d, *ht = Ht + (long)k * d;
                const float *ek = Et + (long)k * d;
                float *gk = g + (long)k * d, *gAk = gA + (long)k * d;
                float sC = 0.f, sB = 0.f;
                #pragma omp simd reduction(+:sC,sB)
                for (int j = 0; j < d; ++j) {
                    const float G = gy[j] * Ck + gk[j];
                    const float a = ek[j];
                    const float S = G * a * hp[j];
                    sC += gy[j] * ht[j];
                    sB += G * dt[j] * u_t[j];
                    gdt[j] += S * Ak[j] + G * u_t[j] * Bk;
                    gu_t[j] += G * dt[j] * Bk;
                    gAk[j] += S * dt[j];
                    gk[j] = a * G;
                }
                gC_t[k] = sC;
                gB_t[k] = sB;
            }
            /* through dt = softplus(delta + bias) */
            const float *delta_t = delta + row * d;
            #pragma omp simd
            for (int j = 0; j < d; ++j) {
                const float v = delta_t[j] + (bias ? bias[j] : 0.f);
                const float gd = softplus ? gdt[j] * (v > 20.f ? 1.f : sigmoidf(v)) : gdt[j];
                gdelta_t[j] = gd;
                if (gbias) gbias[j] += gd;
            }
        }
    }
}
"""

FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-shared", "-fPIC"]

_lib = None
_tried = False
_error: Optional[str] = None


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        flags = ""
    import platform

    return platform.machine() + platform.system() + flags


def _compile(target: Path) -> None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise RuntimeError("no C compiler found (set CC)")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "scan.c"
        src.write_text(SOURCE)
        out = Path(tmp) / target.name
        cmd = [cc, *FLAGS, str(src), "-o", str(out), "-lm"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
        os.replace(out, target)      # atomic: parallel first uses do not see half a file


def load():
    """The compiled kernel (a ``ctypes.CDLL``), compiling it if needed; None if impossible."""
    global _lib, _tried, _error
    if _tried:
        return _lib
    _tried = True
    if os.environ.get("COMPENDIUM_NO_CPU_KERNEL"):
        _error = "disabled by COMPENDIUM_NO_CPU_KERNEL"
        return None
    key = hashlib.sha256((SOURCE + " ".join(FLAGS) + _cpu_signature()).encode()).hexdigest()[:16]
    target = artifacts_dir("vision_mamba", "kernels") / f"selective_scan_{key}.so"
    try:
        if not target.is_file():
            _compile(target)
        lib = ctypes.CDLL(str(target))
        f = ctypes.c_void_p
        i = ctypes.c_int
        lib.scan_fwd.argtypes = [f, f, f, i] + [f] * 8 + [i] * 4
        lib.scan_bwd.argtypes = [f, f, f, i] + [f] * 19 + [i] * 4
        lib.scan_fwd.restype = lib.scan_bwd.restype = None
        _lib = lib
    except Exception as exc:  # noqa: BLE001 - any failure means: use the PyTorch scan
        _error = str(exc)
        _lib = None
    return _lib


def available() -> bool:
    return load() is not None


def load_error() -> Optional[str]:
    return _error


def _ptr(t: Optional[torch.Tensor]):
    if t is None:
        return None
    assert t.dtype == torch.float32 and t.is_contiguous() and t.device.type == "cpu"
    return ctypes.c_void_p(t.data_ptr())


_pool = None


def _parts(b: int) -> list[tuple[int, int]]:
    """Split the batch over ``torch.get_num_threads()`` threads (ctypes releases the GIL)."""
    k = max(1, min(b, torch.get_num_threads()))
    step = -(-b // k)
    return [(i, min(i + step, b)) for i in range(0, b, step)]


def _run(jobs):
    global _pool
    if len(jobs) == 1:
        return [jobs[0]()]
    if _pool is None or _pool._max_workers < len(jobs):
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="scan")
    return [f.result() for f in [_pool.submit(j) for j in jobs]]


def scan_forward(u, delta, At, B, C, D=None, z=None, bias=None, softplus=False):
    """Fused forward. u, delta, z: (b, l, d); At: (n, d); B, C: (b, l, n); D, bias: (d,).

    Contiguous float32 CPU tensors. Returns out = (y + D u) * silu(z) (b, l, d), with
    dt = softplus(delta + bias), and the last state (b, n, d). The batch is split over
    ``torch.get_num_threads()`` threads.
    """
    lib = load()
    b, l, d = u.shape
    n = At.shape[0]
    y = torch.empty_like(u)
    h = u.new_empty(b, n, d)

    def job(s, e):
        w = u.new_empty(3, d)
        sl = lambda t: None if t is None else t[s:e]
        lib.scan_fwd(_ptr(sl(u)), _ptr(sl(delta)), _ptr(bias), int(softplus), _ptr(At), _ptr(sl(B)),
                     _ptr(sl(C)), _ptr(D), _ptr(sl(z)), _ptr(sl(y)), _ptr(sl(h)), _ptr(w), e - s, l, d, n)

    _run([lambda s=s, e=e: job(s, e) for s, e in _parts(b)])
    return y, h


def scan_backward(u, delta, At, B, C, gout, D=None, z=None, bias=None, softplus=False):
    """Gradients of sum(out * gout): dict with u, delta, At, B, C and D, z, bias when given."""
    lib = load()
    b, l, d = u.shape
    n = At.shape[0]
    gu, gdelta = torch.empty_like(u), torch.empty_like(u)
    gB, gC = torch.empty_like(B), torch.empty_like(C)
    gz = torch.empty_like(z) if z is not None else None

    def job(s, e):
        gAt = torch.zeros_like(At)
        gD = torch.zeros_like(D) if D is not None else None
        gbias = torch.zeros_like(bias) if bias is not None else None
        H = u.new_empty(max(l, 1), n, d)
        E = u.new_empty(max(l, 1), n, d)
        g = u.new_empty(n, d)
        zeros = u.new_zeros(n, d)
        w = u.new_empty(3, d)
        sl = lambda t: None if t is None else t[s:e]
        lib.scan_bwd(_ptr(sl(u)), _ptr(sl(delta)), _ptr(bias), int(softplus), _ptr(At), _ptr(sl(B)),
                     _ptr(sl(C)), _ptr(D), _ptr(sl(z)), _ptr(sl(gout)), _ptr(sl(gu)), _ptr(sl(gdelta)),
                     _ptr(gAt), _ptr(sl(gB)), _ptr(sl(gC)), _ptr(gD), _ptr(gbias), _ptr(sl(gz)),
                     _ptr(H), _ptr(E), _ptr(g), _ptr(zeros), _ptr(w), e - s, l, d, n)
        return gAt, gD, gbias

    parts = _run([lambda s=s, e=e: job(s, e) for s, e in _parts(b)])
    total = lambda i: None if parts[0][i] is None else sum(p[i] for p in parts)
    return {"u": gu, "delta": gdelta, "At": total(0), "B": gB, "C": gC, "D": total(1), "z": gz,
            "bias": total(2)}
