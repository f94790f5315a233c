"""Speed of the selective scan on CPU: sequential reference vs the chunked scan.

Default shape: Vim-S (batch 8, d_inner E = 768, d_state N = 16), sequence lengths from 32
to 512 (197 is Vim at 224 x 224). Inputs are laid out token-major, as the Vim mixer
produces them. Both implementations get the same tensors; their outputs are compared.
Times are the best of ``--repeats`` alternating runs (wall clock, torch threads as given).

    python benchmarks/selective_scan_speed.py --out benchmarks/results/selective_scan
    python benchmarks/selective_scan_speed.py --lengths 197 --repeats 7 --backward

Writes ``<out>.csv`` (one row per length and implementation) and ``<out>.png`` (time and
speed-up against the sequence length).
"""
from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

import torch


def make_inputs(b: int, e: int, l: int, n: int, seed: int = 0, grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    tm = lambda k: torch.randn(b, l, k, generator=g).transpose(1, 2)   # (b, k, l), token-major
    x = dict(u=tm(e), delta=tm(e) - 2.0, A=-torch.exp(0.5 * torch.randn(e, n, generator=g) + 1.0),
             B=tm(n), C=tm(n), D=torch.randn(e, generator=g), z=tm(e),
             delta_bias=0.1 * torch.randn(e, generator=g))
    if grad:
        for v in x.values():
            v.requires_grad_()
    return x


CLOCK = time.perf_counter


def timed(fn, backward: bool):
    t0 = CLOCK()
    y = fn()
    if backward:
        y.sum().backward()
    return CLOCK() - t0, y


def run(args) -> list[dict]:
    from compendium.vision_mamba.selective_scan import (default_chunk_size, selective_scan_chunked,
                                                        selective_scan_ref)

    torch.set_num_threads(args.threads)
    rows = []
    for l in args.lengths:
        x = make_inputs(args.batch, args.dim, l, args.state, grad=args.backward)
        chunk = args.chunk or default_chunk_size(args.batch, args.dim, args.state)
        fns = {"reference": lambda: selective_scan_ref(**x, delta_softplus=True),
               "chunked": lambda: selective_scan_chunked(**x, delta_softplus=True, chunk_size=chunk)}
        times = {k: [] for k in fns}
        outs = {}
        ctx = torch.enable_grad() if args.backward else torch.no_grad()
        with ctx:
            for k, f in fns.items():           # warm-up
                timed(f, args.backward)
            for _ in range(args.repeats):
                for k, f in fns.items():
                    t, outs[k] = timed(f, args.backward)
                    times[k].append(t)
        diff = float((outs["reference"] - outs["chunked"]).abs().max())
        scale = float(outs["reference"].abs().max())
        best_ref = min(times["reference"])
        for k in fns:
            best = min(times[k])
            rows.append({"length": l, "impl": k, "batch": args.batch, "d_inner": args.dim,
                         "d_state": args.state, "chunk": chunk if k == "chunked" else "",
                         "pass": "forward+backward" if args.backward else "forward",
                         "best_ms": round(best * 1e3, 2),
                         "median_ms": round(sorted(times[k])[len(times[k]) // 2] * 1e3, 2),
                         "speedup_vs_reference": round(best_ref / best, 2),
                         "max_abs_diff": diff, "max_abs_output": scale, "threads": args.threads,
                         "clock": args.clock})
        print(f"L={l:4d}  reference {best_ref * 1e3:8.1f} ms   chunked {min(times['chunked']) * 1e3:7.1f} ms"
              f"   speed-up {best_ref / min(times['chunked']):5.1f}x   max |diff| {diff:.1e} (|y| up to {scale:.1f})",
              flush=True)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for impl, style in (("reference", "o-"), ("chunked", "s-")):
        r = [row for row in rows if row["impl"] == impl]
        ax1.plot([x["length"] for x in r], [x["best_ms"] for x in r], style, label=impl)
    ax1.set(xlabel="sequence length L", ylabel="time per call (ms)", yscale="log",
            title="selective scan, CPU")
    ax1.legend()
    r = [row for row in rows if row["impl"] == "chunked"]
    ax2.plot([x["length"] for x in r], [x["speedup_vs_reference"] for x in r], "s-", color="C1")
    ax2.axhline(10, color="grey", ls=":", lw=1)
    ax2.set(xlabel="sequence length L", ylabel="speed-up (x)", ylim=(0, None),
            title=f"chunked vs reference (batch {r[0]['batch']}, E {r[0]['d_inner']}, N {r[0]['d_state']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=[32, 64, 128, 197, 256, 512])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--dim", type=int, default=768, help="d_inner (768 for Vim-S)")
    p.add_argument("--state", type=int, default=16, help="d_state N")
    p.add_argument("--chunk", type=int, default=None, help="chunk length (default: automatic)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backward", action="store_true", help="time forward + backward")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall clock, or this process's CPU time (less sensitive to other jobs "
                        "on a shared machine; with 1 thread it is close to the wall time "
                        "of an idle machine)")
    p.add_argument("--out", type=Path, default=None, help="write <out>.csv and <out>.png")
    args = p.parse_args(argv)
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} thread(s), {args.clock} clock")
    rows = run(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out.with_suffix(".csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        plot(rows, args.out.with_suffix(".png"))
        print(f"wrote {args.out.with_suffix('.csv')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
