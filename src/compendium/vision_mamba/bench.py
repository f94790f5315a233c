"""Timing helpers shared by the benchmarks and the Vision Mamba chapters.

:func:`compare_throughput` times whole models side by side (CPU or CUDA) and :func:`speedup` pairs its rounds;
:func:`time_scans` times the sequential reference against the fast CPU scans on the
same inputs (laid out token-major, as the Vim mixer produces them), the implementations
taking turns so that changes of machine load hit all of them alike.
"""
from __future__ import annotations

import statistics
import time
from typing import Iterable, Optional

import torch

from . import _optional, cpu_kernel
from .selective_scan import (default_chunk_size, selective_scan, selective_scan_chunked,
                             selective_scan_cpu_kernel, selective_scan_ref)

__all__ = ["compare_throughput", "speedup", "scan_inputs", "time_scans"]


@torch.no_grad()
def compare_throughput(models: dict, images: torch.Tensor, warmup: int = 2, iters: int = 3,
                       rounds: int = 3, autocast_dtype: Optional[torch.dtype] = None,
                       **forward_kwargs) -> dict:
    """Images per second of several models on the same batch, measured side by side.

    The models take turns (``rounds`` rounds of ``iters`` timed forward passes each, after
    ``warmup`` passes), so changes in machine load hit all of them alike. On CUDA the device
    is synchronised around each timed round (kernels run asynchronously). ``autocast_dtype``
    (e.g. ``torch.float16``, the R-MeeTo paper's protocol) runs the passes under autocast.

    Returns per model: ``images_per_s`` (median round), ``best_images_per_s`` (fastest
    round), ``ms_per_batch`` (median round) and ``rounds`` (seconds per batch, per round).
    """
    device = images.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def ctx():
        return (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
                else torch.autocast(device.type, enabled=False))

    for m in models.values():
        m.eval()
        with ctx():
            for _ in range(warmup):
                m(images, **forward_kwargs)
    per: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for k, m in models.items():
            sync()
            t0 = time.perf_counter()
            with ctx():
                for _ in range(iters):
                    m(images, **forward_kwargs)
            sync()
            per[k].append((time.perf_counter() - t0) / iters)
    n = images.shape[0]
    return {k: {"images_per_s": n / statistics.median(v), "best_images_per_s": n / min(v),
                "ms_per_batch": 1e3 * statistics.median(v), "rounds": v} for k, v in per.items()}


def speedup(result: dict[str, dict], fast: str = "merged", slow: str = "dense") -> float:
    """Median over rounds of t(slow) / t(fast), pairing the rounds measured back to back (``result``: the
    output of :func:`compare_throughput`)."""
    return statistics.median(a / b for a, b in zip(result[slow]["rounds"], result[fast]["rounds"]))


def scan_inputs(b: int, e: int, l: int, n: int, seed: int = 0, grad: bool = False,
                device: str | torch.device = "cpu") -> dict:
    """Random scan inputs of the Vim-S kind: u, delta, z (b, e, l), B, C (b, n, l) token-major.

    Drawn on the CPU (the same numbers on every device), then moved to ``device``."""
    g = torch.Generator().manual_seed(seed)
    tm = lambda k: torch.randn(b, l, k, generator=g).transpose(1, 2)
    x = dict(u=tm(e), delta=tm(e) - 2.0, A=-torch.exp(0.5 * torch.randn(e, n, generator=g) + 1.0),
             B=tm(n), C=tm(n), D=torch.randn(e, generator=g), z=tm(e),
             delta_bias=0.1 * torch.randn(e, generator=g))
    x = {k: v.to(device) for k, v in x.items()}
    if grad:
        for v in x.values():
            v.requires_grad_()
    return x


def time_scans(lengths: Iterable[int], batch: int = 8, d_inner: int = 768, d_state: int = 16,
               repeats: int = 5, backward: bool = False, clock: str = "wall",
               chunk: Optional[int] = None, threads: Optional[int] = None,
               progress: bool = False, device: str = "cpu") -> list[dict]:
    """Best-of-``repeats`` time per call of each implementation, per sequence length.

    Implementations: "reference", "chunked" and, on the CPU where it compiles,
    "cpu_kernel"; on CUDA, "mamba_ssm" where that extra is installed. Returns one dict per
    (length, implementation) with ``best_ms``, ``median_ms``, ``speedup_vs_reference`` and
    the largest output difference from the reference. ``clock``: "wall", or "cpu" (this
    process's CPU time: less sensitive to other jobs; CUDA timings always use the wall
    clock, with the device synchronised).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    on_cuda = torch.device(device).type == "cuda"
    clock = "wall" if on_cuda else clock
    now = time.perf_counter if clock == "wall" else time.process_time
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)
    chunk = chunk or default_chunk_size(batch, d_inner, d_state)
    rows = []
    for l in lengths:
        x = scan_inputs(batch, d_inner, l, d_state, grad=backward, device=device)
        fns = {"reference": lambda: selective_scan_ref(**x, delta_softplus=True),
               "chunked": lambda: selective_scan_chunked(**x, delta_softplus=True, chunk_size=chunk)}
        if not on_cuda and cpu_kernel.available():
            fns["cpu_kernel"] = lambda: selective_scan_cpu_kernel(**x, delta_softplus=True)
        if on_cuda and _optional.HAS_MAMBA_SSM:
            fns["mamba_ssm"] = lambda: selective_scan(**x, delta_softplus=True, backend="mamba_ssm")
        times = {k: [] for k in fns}
        outs = {}

        def once(f):
            sync()
            t0 = now()
            y = f()
            if backward:
                y.sum().backward()
            sync()
            return now() - t0, y.detach()

        with torch.enable_grad() if backward else torch.no_grad():
            for f in fns.values():
                once(f)                                   # warm-up
            for _ in range(repeats):
                for k, f in fns.items():
                    t, outs[k] = once(f)
                    times[k].append(t)
        ref = min(times["reference"])
        scale = float(outs["reference"].abs().max())
        for k in fns:
            ts = sorted(times[k])
            rows.append({"length": l, "impl": k, "batch": batch, "d_inner": d_inner, "d_state": d_state,
                         "chunk": chunk if k == "chunked" else None,
                         "pass": "forward+backward" if backward else "forward",
                         "best_ms": round(ts[0] * 1e3, 2), "median_ms": round(ts[len(ts) // 2] * 1e3, 2),
                         "speedup_vs_reference": round(ref / ts[0], 2),
                         "max_abs_diff": float((outs["reference"] - outs[k]).abs().max()),
                         "max_abs_output": scale, "threads": torch.get_num_threads(), "clock": clock,
                         "device": torch.cuda.get_device_name() if on_cuda else "cpu"})
        if progress:
            print(f"L={l:4d}  reference {ref * 1e3:8.1f} ms" + "".join(
                f" | {r['impl']} {r['best_ms']:7.1f} ms = {r['speedup_vs_reference']:5.1f}x "
                f"(max |diff| {r['max_abs_diff']:.1e})" for r in rows[-len(fns) + 1:]), flush=True)
    return rows
