"""Seconds per full-batch training step of each GFS-chapter model on one graph (default: tolokers).

Both wall-clock and process CPU seconds are recorded (on a shared machine the CPU figure is the one that
other jobs do not inflate). A "step" is what the harness does per step: one training forward/backward/AdamW update, plus
(with ``--with-eval``, the paper's protocol) one evaluation forward. Each model is timed as the
plain GNN (r = 1) and as GNN+GFS (r = --ratio), and the MLP once. Writes a CSV and a JSON with the
machine, thread count and recipe into ``--out``.

    python benchmarks/graph_step_time.py --out runs/bench            # hidden 64 (CPU recipe)
    python benchmarks/graph_step_time.py --hidden 512 --out runs/bench512 --models GCN,SAGE
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output folder (CSV + JSON are written there)")
    ap.add_argument("--dataset", default="tolokers", help="offline graph name (default tolokers)")
    ap.add_argument("--models", default="GCN,GAT,SAGE,GT,SGC,APPNP,ACM-GCN,FAGCN,MLP", help="comma-separated models")
    ap.add_argument("--hidden", type=int, default=64, help="branch width (paper: 512)")
    ap.add_argument("--ratio", type=float, default=0.7, help="GFS ratio r for the +GFS rows (paper's tolokers value: 0.7)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per model (after --warmup)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--with-eval", action="store_true", help="add the per-step evaluation forward to each step")
    ap.add_argument("--data-root", type=Path, default=None, help="data root (default: compendium.data.fetch)")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from compendium.graphs.datasets import load_dataset
    from compendium.graphs.gfs import split_features, variant_name
    from compendium.graphs.harness import TrainConfig, build_model, parameter_groups, prepare
    from compendium.graphs.tfi import tfi

    torch.set_num_threads(args.threads)
    g = load_dataset(args.dataset, root=args.data_root)
    p = prepare(g, args.device)
    cfg = TrainConfig(hidden=args.hidden, lr=1e-3, device=args.device)
    train_idx = g.split(0)[0].to(args.device)
    scores = tfi(g.x, g.edge_index, g.y, g.split(0)[0], random_state=0)
    loss_fn = F.binary_cross_entropy_with_logits if p.binary else F.cross_entropy
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    rows = []
    for model in args.models.split(","):
        for ratio in ([0.0] if model == "MLP" else [1.0, args.ratio]):
            torch.manual_seed(0)
            xg, xm = split_features(p.x, scores, ratio)
            if model == "MLP":
                xg, xm = None, p.x
            net = build_model(model, 0 if xg is None else xg.shape[1], 0 if xm is None else xm.shape[1],
                              g.num_targets, cfg).to(args.device)
            opt = torch.optim.AdamW(parameter_groups(net, 0.0), lr=cfg.lr)

            def step():
                net.train()
                out = net(xg, xm, p.ctx)
                loss = loss_fn(out[train_idx], p.y[train_idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if args.with_eval:
                    net.eval()
                    with torch.no_grad():
                        net(xg, xm, p.ctx)

            for _ in range(args.warmup):
                step()
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step()
            sync()
            sec = (time.perf_counter() - t0) / args.steps
            # CPU seconds of this process: on a shared machine, the figure other jobs do not inflate
            cpu_sec = (time.process_time() - c0) / args.steps
            row = {"dataset": g.name, "model": model, "variant": variant_name(model, ratio), "ratio": ratio,
                   "hidden": args.hidden, "threads": args.threads, "device": args.device,
                   "with_eval": args.with_eval, "sec_per_step": sec, "cpu_sec_per_step": cpu_sec,
                   "params": sum(q.numel() for q in net.parameters())}
            rows.append(row)
            print(f"{row['variant']:12s} {sec * 1000:9.1f} ms/step wall, {cpu_sec * 1000:9.1f} ms CPU", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    stem = f"graph_step_time_{g.name}_h{args.hidden}_{args.device.replace(':', '')}"
    pd.DataFrame(rows).to_csv(args.out / f"{stem}.csv", index=False)
    meta = {"machine": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "torch": torch.__version__, "args": {k: str(v) for k, v in vars(args).items()},
            "edges_directed_with_loops": int(p.ctx.edge_index.shape[1]), "nodes": g.num_nodes, "rows": rows}
    (args.out / f"{stem}.json").write_text(json.dumps(meta, indent=2))
    print(f"wrote {args.out / stem}.csv/.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
