"""Throughput of a dense Vim and its DyVM copy (same weights), measured side by side.

DyVM (arXiv 2504.04787) prunes tokens before blocks 6 / 12 / 18 (keep rho, rho^2, rho^3;
rho = 0.7 for Vim-S/B, 0.9 for Vim-T) and skips scan directions (block keep ratio beta;
its FLOPs use the measured ratio, about 0.89 on Vim-S). The paper measures on GPUs (fp32,
batch 1024, 50 warm-up + 30 timed iterations). Here: random input, the models take
turns so machine load hits both alike, and the gates of an untrained DyVM are fixed to
reach beta (``set_static_gates``); with ``--weights`` the cached CIFAR-10 models of the
chapter are used instead (their own gates).

    python benchmarks/vim_throughput.py --model small --out benchmarks/results/vim_throughput
    python benchmarks/vim_throughput.py --model cifar --batch 128
    python benchmarks/vim_throughput.py --model small --device cuda --batch 256 --iters 30

Writes ``<out>.csv`` (one row per model and setting).
"""
from __future__ import annotations

import argparse
import platform
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="small", choices=["tiny", "small", "base", "cifar"])
    p.add_argument("--keep-ratio", type=float, default=None, help="rho (default: 0.9 tiny, else 0.7)")
    p.add_argument("--block-keep", type=float, nargs="+", default=[1.0, 0.89, 0.8],
                   help="beta values to time (fixed gates)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--scan-backend", default="auto")
    p.add_argument("--out", type=Path, default=None, help="write <out>.csv")
    args = p.parse_args(argv)

    from compendium.vision_mamba.dyvm.model import DyVM, DyVMConfig, set_static_gates
    from compendium.vision_mamba.flops import dyvm_flops, vim_flops
    from compendium.vision_mamba.train import CIFAR_VIM, compare_throughput
    from compendium.vision_mamba.vim import VIM_CONFIGS, Vim

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    if args.model == "cifar":
        cfg, loc = replace(CIFAR_VIM, scan_backend=args.scan_backend), (2, 4, 6)
    else:
        cfg, loc = replace(VIM_CONFIGS[args.model], scan_backend=args.scan_backend), (6, 12, 18)
    rho = args.keep_ratio or (0.9 if args.model == "tiny" else 0.7)
    dense = Vim(cfg).to(dev).eval()
    x = torch.randn(args.batch, 3, cfg.img_size, cfg.img_size, device=dev)
    models = {"dense": dense}
    for beta in args.block_keep:
        dy = DyVM.from_vim(dense, DyVMConfig(vim=cfg, pruning_loc=loc, keep_ratio=rho)).to(dev).eval()
        set_static_gates(dy, beta)
        models[f"DyVM beta={beta:g}"] = dy
    print(f"{args.model}: {cfg.num_tokens} tokens, rho {rho}, pruning before blocks {loc}; batch "
          f"{args.batch}; torch {torch.__version__} on {args.device} "
          f"({platform.processor() or platform.machine()}, {args.threads} thread(s))", flush=True)
    res = compare_throughput(models, x, args.warmup, args.iters, args.rounds)
    base = res["dense"]["images_per_s"]
    rows = []
    for name, r in res.items():
        beta = 1.0 if name == "dense" else float(name.split("=")[1])
        fl = vim_flops(cfg) if name == "dense" else dyvm_flops(cfg, rho, beta, loc)
        rows.append({"model": args.model, "variant": name, "keep_ratio": "" if name == "dense" else rho,
                     "block_keep_ratio": "" if name == "dense" else beta, "batch": args.batch,
                     "images_per_s": round(r["images_per_s"], 2), "speedup": round(r["images_per_s"] / base, 3),
                     "gflops": round(fl / 1e9, 4), "flops_reduction_pct": round(100 * (1 - fl / vim_flops(cfg)), 2),
                     "device": args.device, "threads": args.threads})
        print(f"  {name:16s} {r['images_per_s']:9.2f} img/s  x{r['images_per_s'] / base:5.2f}   "
              f"{fl / 1e9:7.4f} GFLOPs ({rows[-1]['flops_reduction_pct']:+.1f} % fewer)", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out.with_suffix(".csv"), index=False)
        print(f"wrote {args.out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
