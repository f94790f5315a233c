"""Speed of the selective scan: sequential reference vs the fast scans (CPU, or CUDA).

Implementations: ``reference`` (mamba-ssm's ``selective_scan_ref`` algorithm: discretise
everything, then a Python loop over the sequence), ``chunked`` (pure PyTorch, chunks of
a few steps with in-place buffers) and ``cpu_kernel`` (the same recurrence fused in a
small C kernel compiled on first use; skipped where no C compiler works). With
``--device cuda``: ``reference``, ``chunked`` and, where the gpu extra is installed,
``mamba_ssm`` (the official CUDA kernel).

Default shape: Vim-S (batch 8, d_inner E = 768, d_state N = 16), sequence lengths from 32
to 512 (197 is Vim at 224 x 224). Inputs are laid out token-major, as the Vim mixer
produces them. Both implementations get the same tensors; their outputs are compared.
Times are the best of ``--repeats`` alternating runs (wall clock, torch threads as given).

    python benchmarks/selective_scan_speed.py --out benchmarks/results/selective_scan
    python benchmarks/selective_scan_speed.py --lengths 197 --repeats 7 --backward
    python benchmarks/selective_scan_speed.py --device cuda --out runs/selective_scan_cuda

Writes ``<out>.csv`` (one row per length and implementation) and ``<out>.png`` (time and
speed-up against the sequence length).
"""
from __future__ import annotations

import argparse
import platform
from pathlib import Path

import pandas as pd
import torch


def run(args) -> list[dict]:
    from compendium.vision_mamba.bench import time_scans

    return time_scans(args.lengths, args.batch, args.dim, args.state, args.repeats, args.backward,
                      args.clock, args.chunk, args.threads, progress=True, device=args.device)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    impls = [i for i in ("reference", "chunked", "cpu_kernel", "mamba_ssm") if any(r["impl"] == i for r in rows)]
    for c, impl in enumerate(impls):
        r = [row for row in rows if row["impl"] == impl]
        ax1.plot([x["length"] for x in r], [x["best_ms"] for x in r], "os^d"[c] + "-", color=f"C{c}",
                 label=impl)
        if impl != "reference":
            ax2.plot([x["length"] for x in r], [x["speedup_vs_reference"] for x in r], "os^d"[c] + "-",
                     color=f"C{c}", label=impl)
    ax1.set(xlabel="sequence length L", ylabel="time per call (ms)", yscale="log",
            title=f"selective scan, {rows[0].get('device', 'cpu')}")
    ax1.legend()
    ax2.legend()
    r = [row for row in rows if row["impl"] == "chunked"]
    ax2.axhline(10, color="grey", ls=":", lw=1)
    ax2.set(xlabel="sequence length L", ylabel="speed-up (x)", ylim=(0, None),
            title=f"fast scans vs reference (batch {r[0]['batch']}, E {r[0]['d_inner']}, N {r[0]['d_state']})")
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
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall clock, or this process's CPU time (less sensitive to other jobs "
                        "on a shared machine; with 1 thread it is close to the wall time "
                        "of an idle machine)")
    p.add_argument("--out", type=Path, default=None, help="write <out>.csv and <out>.png")
    args = p.parse_args(argv)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} thread(s), {args.clock} clock")
    rows = run(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out.with_suffix(".csv"), index=False)
        plot(rows, args.out.with_suffix(".png"))
        print(f"wrote {args.out.with_suffix('.csv')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
