"""Throughput of a dense Vim and its R-MeeTo merged copy (same weights), measured side by side.

Random input (throughput does not depend on the weights' values); the dense and merged models
take turns so that machine load hits both alike. The paper (arXiv 2412.12496) measures on GPUs
with fp16 autocast at batch 128 (100 warm-up + 30 timed iterations) and reports 1.2x (up to
1.5x) on Vim-S. Writes a JSON with the machine, thread count and settings into ``--out``.

    python benchmarks/rmeeto_throughput.py --model small --out runs/rmeeto_tp              # CPU, Vim-S
    python benchmarks/rmeeto_throughput.py --model small --device cuda --fp16 --batch 128 \\
        --warmup 100 --iters 30 --out runs/rmeeto_tp_gpu                                    # paper protocol
    python benchmarks/rmeeto_throughput.py --model cifar --out runs/rmeeto_tp_cifar         # the chapter's tiny Vim

Models: ``tiny`` / ``small`` / ``base`` (the released Vim geometries, 224 px, 197 tokens) with the
paper's r (5 / 11 / 11), or ``cifar`` (the chapter's tiny Vim on 32 px CIFAR-10, its r taken
from ``--num-prune``, default 8). ``--num-prune`` overrides r; ``--prune`` times the pruning
baseline (same token counts, no averaging).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

#: The chapter's tiny Vim (keep in sync with notebooks/rmeeto; the Vim-helper's train.py may define it).
CIFAR_VIM = dict(img_size=32, patch_size=4, stride=4, embed_dim=64, depth=8, d_state=8, num_classes=10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output folder (a JSON is written there)")
    ap.add_argument("--model", default="small", choices=["tiny", "small", "base", "cifar"])
    ap.add_argument("--num-prune", type=int, default=None, help="r per merge point (default: the paper's)")
    ap.add_argument("--prune", action="store_true", help="time the pruning baseline instead of merging")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5, help="alternating rounds; the median round counts")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fp16", action="store_true", help="fp16 autocast (the paper's protocol; GPU)")
    ap.add_argument("--scan-backend", default="auto", help="selective-scan backend (see selective_scan)")
    args = ap.parse_args(argv)

    import torch

    from compendium.vision_mamba.bench import speedup
    from compendium.vision_mamba.flops import vim_flops
    from compendium.vision_mamba.rmeeto.model import PAPER_MERGE, MergeConfig, RMeeToVim, rmeeto_flops, throughput
    from compendium.vision_mamba.vim import VIM_CONFIGS, Vim, VimConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model == "cifar":
        cfg = VimConfig(**CIFAR_VIM, scan_backend=args.scan_backend)
        merge = MergeConfig(num_prune=8)
    else:
        cfg = replace(VIM_CONFIGS[args.model], scan_backend=args.scan_backend)
        merge = PAPER_MERGE[args.model]
    if args.num_prune is not None:
        merge = replace(merge, num_prune=args.num_prune)
    merge = replace(merge, prune=args.prune)
    dense = Vim(cfg).to(args.device)
    merged = RMeeToVim.from_vim(dense, merge)
    x = torch.randn(args.batch, 3, cfg.img_size, cfg.img_size, device=args.device)
    res = throughput({"dense": dense, "merged": merged}, x, warmup=args.warmup, iters=args.iters,
                     repeats=args.repeats, autocast_dtype=torch.float16 if args.fp16 else None)
    ratio = speedup(res)
    flops_dense = vim_flops(cfg)
    flops_merged = rmeeto_flops(cfg, merge, as_executed=True)
    report = {
        "model": args.model, "config": cfg.to_dict(), "merge": merge.to_dict(),
        "batch": args.batch, "warmup": args.warmup, "iters": args.iters, "repeats": args.repeats,
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "fp16": args.fp16, "torch": torch.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": res, "speedup": ratio,
        "flops_dense": flops_dense, "flops_merged": flops_merged,
        "flops_ratio": flops_dense / flops_merged,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"rmeeto_throughput_{args.model}_{args.device.split(':')[0]}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    for name, r in res.items():
        print(f"{name:7s} {r['images_per_s']:9.1f} img/s  {r['ms_per_batch']:8.1f} ms/batch")
    print(f"speed-up {ratio:.2f}x (median of paired rounds)   FLOPs ratio {flops_dense / flops_merged:.2f}x   -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
