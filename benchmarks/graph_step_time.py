"""Seconds per full-batch training step of each GFS-chapter model on one graph (default: tolokers), three ways
side by side: the package's CSR path (``backend sparse``), plain PyG message passing on the same modules and
parameters (``backend pyg``), and a memory-traffic lower bound.

Both wall-clock and process CPU seconds are recorded (on a shared machine the CPU figure is the one that
other jobs do not inflate), with the minor page faults per step. A "step" is what the harness does per step: one
training forward/backward/AdamW update, plus (with ``--with-eval``, the paper's protocol) one evaluation forward.
Each model is timed as the plain GNN (r = 1) and as GNN+GFS (r = --ratio), and the MLP once; with ``--rounds R`` every
variant is timed R times, in turn with the others, and its fastest round is kept (on a shared machine, the round least
disturbed by other jobs).

The bound: a step cannot be faster than streaming, once per sparse product it does (forward and backward,
:data:`SPARSE_PRODUCTS` per GNN layer), the edge list (8 B column index + 4 B per value and head per edge) and the
dense operand and result (hidden x 4 B per node each), at the single-thread copy bandwidth measured in the same run
(a 256 MB tensor copy: bytes read + written / seconds). It ignores element-wise per-edge work, so it is a lower
bound; the MLP has no sparse product (no bound). Writes a CSV and a JSON with the machine, thread count,
bandwidth and recipe into ``--out``.

    python benchmarks/graph_step_time.py --out runs/bench            # hidden 64 (CPU recipe)
    python benchmarks/graph_step_time.py --hidden 512 --out runs/bench512 --models GCN,SAGE
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

#: Sparse products (CSR x dense, or sampled dense x dense) per GNN layer and training step, forward + backward,
#: and the values per edge each streams (heads), read off compendium.graphs.models / sparse.
SPARSE_PRODUCTS = {
    "GCN": (2, 1), "SGC": (2, 1), "SAGE": (2, 1), "ACM-GCN": (2, 1),  # spmm forward, spmm for grad x
    "APPNP": (4, 1),  # K = 2 propagations, forward and backward
    "FAGCN": (3, 1),  # spmm forward; grad x and grad of the edge gate
    "GAT": (3, 8),  # per-head spmm forward; grad x and grad of the attention values
    "GT": (6, 8),  # sddmm + spmm forward; grad of values and v, grad q and k
}


def copy_bandwidth(nbytes: int = 256 << 20, repeats: int = 5) -> float:
    """Single-thread copy bandwidth, bytes per second (read + write), best of ``repeats``."""
    import torch

    a = torch.ones(nbytes // 4)
    b = torch.empty_like(a)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        b.copy_(a)
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def bound_seconds(model: str, edges: int, nodes: int, hidden: int, layers: int, bandwidth: float) -> float:
    """The memory-traffic lower bound of one training step (see the module docstring); NaN for the MLP."""
    if model not in SPARSE_PRODUCTS:
        return float("nan")
    products, heads = SPARSE_PRODUCTS[model]
    per_product = edges * (8 + 4 * heads) + (nodes + 1) * 8 + 2 * nodes * hidden * 4
    return layers * products * per_product / bandwidth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output folder (CSV + JSON are written there)")
    ap.add_argument("--dataset", default="tolokers", help="offline graph name (default tolokers)")
    ap.add_argument("--models", default="GCN,GAT,SAGE,GT,SGC,APPNP,ACM-GCN,FAGCN,MLP", help="comma-separated models")
    ap.add_argument("--hidden", type=int, default=64, help="branch width (paper: 512)")
    ap.add_argument("--ratio", type=float, default=0.7, help="GFS ratio r for the +GFS rows (paper's tolokers value: 0.7)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per model and round (after --warmup)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="time each variant this many times, in turn with the others, and keep its fastest round "
                         "(on a shared machine: the round least disturbed by other jobs)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--with-eval", action="store_true", help="add the per-step evaluation forward to each step")
    ap.add_argument("--backends", default="sparse,pyg", help="sparse (the package's CSR path), pyg (PyG message passing)")
    ap.add_argument("--data-root", type=Path, default=None, help="data root (default: compendium.data.fetch)")
    ap.add_argument("--suffix", default="", help="appended to the output file names (e.g. a subset of models)")
    ap.add_argument("--note", default="", help="free text stored in the JSON (e.g. 'taken under load')")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from compendium.graphs.datasets import load_dataset
    from compendium.graphs.gfs.model import split_features, variant_name
    from compendium.graphs.gfs.train import build_model, prepare
    from compendium.graphs.harness import TrainConfig, parameter_groups
    from compendium.graphs.models import make_context
    from compendium.graphs.gfs.tfi import tfi

    torch.set_num_threads(args.threads)
    g = load_dataset(args.dataset, root=args.data_root)
    p = prepare(g, args.device)  # on CPU this also keeps large freed tensors in the heap
    contexts = {"sparse": p.ctx, "pyg": make_context(g.edge_index, g.num_nodes, args.device, backend="pyg")}
    bandwidth = copy_bandwidth() if args.device == "cpu" else float("nan")
    edges = int(p.ctx.edge_index.shape[1])
    cfg = TrainConfig(hidden=args.hidden, lr=1e-3, device=args.device)
    train_idx = g.split(0)[0].to(args.device)
    scores = tfi(g.x, g.edge_index, g.y, g.split(0)[0], random_state=0)
    loss_fn = F.binary_cross_entropy_with_logits if p.binary else F.cross_entropy
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    rows = []
    timed = [(m, b) for m in args.models.split(",") for b in (["sparse"] if m == "MLP" else args.backends.split(","))]
    variants = []  # (model, backend, ratio, step function, parameter count), each warmed up once
    for model, backend in timed:
        ctx = contexts[backend]
        for ratio in ([0.0] if model == "MLP" else [1.0, args.ratio]):
            torch.manual_seed(0)
            xg, xm = split_features(p.x, scores, ratio)
            if model == "MLP":
                xg, xm = None, p.x
            net = build_model(model, 0 if xg is None else xg.shape[1], 0 if xm is None else xm.shape[1],
                              g.num_targets, cfg).to(args.device)
            opt = torch.optim.AdamW(parameter_groups(net, 0.0), lr=cfg.lr)

            def step(net=net, opt=opt, xg=xg, xm=xm, ctx=ctx):
                net.train()
                out = net(xg, xm, ctx)
                loss = loss_fn(out[train_idx], p.y[train_idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if args.with_eval:
                    net.eval()
                    with torch.no_grad():
                        net(xg, xm, ctx)

            for _ in range(args.warmup):
                step()
            variants.append((model, backend, ratio, step, sum(q.numel() for q in net.parameters())))
    best: dict[int, tuple[float, float, float]] = {}
    for _ in range(max(1, args.rounds)):
        for i, (model, backend, ratio, step, _) in enumerate(variants):
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(args.steps):
                step()
            sync()
            sec = (time.perf_counter() - t0) / args.steps
            # CPU seconds of this process: on a shared machine, the figure other jobs do not inflate
            cpu_sec = (time.process_time() - c0) / args.steps
            faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / args.steps
            if i not in best or cpu_sec < best[i][1]:
                best[i] = (sec, cpu_sec, faults)
    for i, (model, backend, ratio, _, params) in enumerate(variants):
        sec, cpu_sec, faults = best[i]
        row = {"dataset": g.name, "model": model, "variant": variant_name(model, ratio), "ratio": ratio,
               "backend": backend, "hidden": args.hidden, "threads": args.threads, "device": args.device,
               "with_eval": args.with_eval, "rounds": args.rounds, "sec_per_step": sec, "cpu_sec_per_step": cpu_sec,
               "minor_faults_per_step": faults,
               "bound_sec_per_step": bound_seconds(model, edges, g.num_nodes, args.hidden, cfg.gnn_layers, bandwidth),
               "params": params}
        rows.append(row)
        print(f"{row['variant']:12s} {backend:6s} {sec * 1000:9.1f} ms/step wall, {cpu_sec * 1000:9.1f} ms CPU, "
              f"bound {row['bound_sec_per_step'] * 1000:6.1f} ms, {faults:9.0f} faults", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    stem = f"graph_step_time_{g.name}_h{args.hidden}_{args.device.replace(':', '')}{args.suffix}"
    frame = pd.DataFrame(rows)
    # side by side: each variant's package step, PyG step and bound (CPU seconds), and the ratios the issue tracks
    sparse = frame[frame["backend"] == "sparse"].set_index("variant")
    side = sparse[["model", "cpu_sec_per_step", "bound_sec_per_step"]].rename(columns={"cpu_sec_per_step": "package"})
    if "pyg" in set(frame["backend"]):
        side["pyg"] = frame[frame["backend"] == "pyg"].set_index("variant")["cpu_sec_per_step"]
    side["package / bound"] = side["package"] / side["bound_sec_per_step"]
    gcn = side.loc["GCN", "package"] if "GCN" in side.index else float("nan")
    side["package / GCN"] = side["package"] / gcn
    side.reset_index().to_csv(args.out / f"{stem}_side_by_side.csv", index=False)
    print(side.round(3).to_string())
    frame.to_csv(args.out / f"{stem}.csv", index=False)
    meta = {"machine": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "copy_bandwidth_bytes_per_sec": bandwidth,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "note": args.note, "torch": torch.__version__, "args": {k: str(v) for k, v in vars(args).items()},
            "edges_directed_with_loops": int(p.ctx.edge_index.shape[1]), "nodes": g.num_nodes, "rows": rows}
    (args.out / f"{stem}.json").write_text(json.dumps(meta, indent=2))
    print(f"wrote {args.out / stem}.csv/.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
