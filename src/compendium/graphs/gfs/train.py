"""The GFS chapter's training loop: one model (plain GNN, GNN+GFS at ratio ``r``, or the MLP) on one graph
and split, and the grid of such runs (optionally in worker processes).

The protocol is the official GFS code's (inherited from Platonov et al., ICLR 2023); the shared pieces
(recipe, best-validation selection, ROC-AUC) are in :mod:`compendium.graphs.harness`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
with warnings.catch_warnings():  # "IProgress not found": fall back to text bars quietly
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

from ..datasets import GraphData, global_z_norm
from ..harness import BestValidation, TrainConfig, parameter_groups, roc_auc
from ..models import GraphContext, make_context
from ..sparse import retain_freed_memory
from .model import GFSModel, split_features, variant_name

__all__ = ["PAPER_RECIPE", "CI_RECIPE", "Prepared", "prepare", "build_model", "train_run", "run_grid", "chunk_cost",
           "submission_order"]


#: The paper's recipe (hidden 512, lr 3e-5, 1000 steps): GPU-sized.
PAPER_RECIPE = TrainConfig()
#: A reduced CPU recipe (hidden 64, lr 1e-3, 200 steps); see the chapter for what it changes.
CI_RECIPE = TrainConfig(hidden=64, lr=1e-3, steps=200)


@dataclass
class Prepared:
    """A dataset ready for training: z-normed features, targets, graph context, metric."""

    data: GraphData
    x: torch.Tensor
    y: torch.Tensor
    ctx: GraphContext
    binary: bool
    device: str


def prepare(g: GraphData, device: str = "cpu") -> Prepared:
    """Z-norm the features (global mean/std), build the self-looped normalised graph, move to ``device``.

    On CPU, large freed tensors are kept in the heap from here on (:func:`~compendium.graphs.sparse.retain_freed_memory`):
    GAT and GT steps otherwise spend about half their time faulting in fresh pages."""
    if device == "cpu":
        retain_freed_memory()
    binary = g.num_targets == 1
    y = g.y.float() if binary else g.y.long()
    return Prepared(data=g, x=global_z_norm(g.x).to(device), y=y.to(device),
                    ctx=make_context(g.edge_index, g.num_nodes, device), binary=binary, device=device)


def build_model(model: str, in_gnn: int, in_mlp: int, out_dim: int, cfg: TrainConfig) -> GFSModel:
    """A :class:`GFSModel` for ``model`` (one of ``GNN_NAMES``); ``model='MLP'`` builds the MLP branch only."""
    if model == "MLP":
        return GFSModel("GCN", 0, in_gnn + in_mlp, out_dim, cfg.model_config())
    return GFSModel(model, in_gnn, in_mlp, out_dim, cfg.model_config())


def _metric(p: Prepared, logits: torch.Tensor, idx: torch.Tensor) -> float:
    if p.binary:
        return roc_auc(p.y[idx], logits[idx])
    return float((logits[idx].argmax(1) == p.y[idx]).float().mean())


def train_run(p: Prepared, model: str, ratio: float, split: int, cfg: TrainConfig,
              scores: np.ndarray | None = None) -> dict:
    """Train one model on one split; return val/test at the best validation step, how training ended
    (:meth:`BestValidation.record`) and timings.

    ``ratio`` is GFS's ``r`` (1 = plain GNN, 0 = plain MLP); ``scores`` ranks the features (TFI by
    default in the experiments; needed for 0 < r < 1). Metrics are fractions in [0, 1].
    """
    if model == "MLP":
        ratio = 0.0
    if 0.0 < ratio < 1.0 and scores is None:
        raise ValueError("GFS (0 < r < 1) needs feature scores")
    torch.manual_seed(cfg.seed + split)
    train_idx, val_idx, test_idx = (t.to(p.device) for t in p.data.split(split))
    x_gnn, x_mlp = split_features(p.x, scores, ratio)
    in_gnn = 0 if x_gnn is None else x_gnn.shape[1]
    in_mlp = 0 if x_mlp is None else x_mlp.shape[1]
    net = build_model(model, in_gnn, in_mlp, p.data.num_targets, cfg).to(p.device)
    if model == "MLP":
        x_gnn, x_mlp = None, p.x
    opt = torch.optim.AdamW(parameter_groups(net, cfg.weight_decay), lr=cfg.lr, foreach=True)
    loss_fn = F.binary_cross_entropy_with_logits if p.binary else F.cross_entropy
    best = BestValidation(cfg.steps, cfg.patience)
    best_test, step = float("nan"), 0
    sync = torch.cuda.synchronize if p.device.startswith("cuda") else (lambda: None)
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(1, cfg.steps + 1):
        net.train()
        logits = net(x_gnn, x_mlp, p.ctx)
        loss = loss_fn(logits[train_idx], p.y[train_idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            net.eval()
            with torch.no_grad():
                logits = net(x_gnn, x_mlp, p.ctx)
            if best.update(step, _metric(p, logits, val_idx)):
                best_test = _metric(p, logits, test_idx)
            if best.stop:
                break
    sync()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return {"dataset": p.data.name, "model": model, "variant": variant_name(model, ratio), "ratio": ratio,
            "split": split, "val": best.best_val, "test": best_test, "metric": p.data.metric, **best.record(step),
            "seconds": seconds, "cpu_seconds": cpu_seconds, "in_gnn": in_gnn, "in_mlp": in_mlp,
            "params": sum(q.numel() for q in net.parameters())}


ScoreFn = Callable[[GraphData, int], np.ndarray]


def chunk_cost(g: GraphData, n_runs: int) -> tuple[int, int]:
    """A key for ordering work, not a time: the graph's node count, then the number of runs. On the ten graphs
    the node count ranks the measured seconds per run all but once (tolokers 81 s, minesweeper 40, actor 13,
    cora 12, citeseer 10, ..., texas 0.9 in the 2026-12-07 paper run; citeseer has more nodes than cora): a step
    costs more on a larger graph, and the large graphs also train longer before they stop."""
    return g.num_nodes, n_runs


def submission_order(chunks: list[tuple]) -> list[int]:
    """Indices of ``(graph, items, cfg)`` chunks, costliest first (ties keep their order): greedy list scheduling
    with the longest tasks first ends with the short ones, so the workers finish within one short task of each
    other instead of one worker training the last large graph alone."""
    keys = [chunk_cost(g, len(items)) for g, items, _ in chunks]
    return sorted(range(len(chunks)), key=lambda i: (-keys[i][0], -keys[i][1]))


_WORKER_PREPARED: dict[str, Prepared] = {}


def _run_chunk(task) -> list[dict]:
    """Worker: train a list of (model, ratio, split, scores, extra) on one graph."""
    g, items, cfg, threads = task
    if threads:
        torch.set_num_threads(threads)
    p = _WORKER_PREPARED.get(g.name)
    if p is None:
        _WORKER_PREPARED.clear()
        p = _WORKER_PREPARED[g.name] = prepare(g, cfg.device)
    rows = []
    for m, r, s, sc, extra in items:
        row = train_run(p, m, r, s, cfg, sc)
        row.update(extra or {})
        rows.append(row)
    return rows


def run_grid(graphs: Iterable[GraphData], jobs: Iterable[tuple] | Callable[[GraphData], Iterable[tuple]],
             cfg: TrainConfig | Callable[[GraphData], TrainConfig], splits: Iterable[int] | Callable[[GraphData], Iterable[int]] = range(10),
             scores: ScoreFn | dict[str, ScoreFn] | None = None, progress: bool = True, extra: dict | None = None,
             workers: int = 1, tag_column: str = "job") -> pd.DataFrame:
    """Run every ``(model, ratio)`` job on every graph and split; one row per run.

    ``jobs`` / ``splits`` may be callables of the graph (per-dataset ratios or split counts).
    ``scores(graph, split)`` gives the feature ranking for GFS runs. A job may be a 3-tuple
    ``(model, ratio, tag)``: then ``scores`` may be a dict ``{tag: scores_fn}`` and the tag is stored
    in the column ``tag_column`` (e.g. one job per feature-selection criterion). ``extra`` columns are added to
    every row (e.g. the selection method). ``workers > 1`` trains in that many processes, one torch
    thread each (one task = one model on all its splits of one graph). ``cfg`` may be a function of
    the graph (per-dataset step counts).
    """
    cfg_for = cfg if callable(cfg) else (lambda _g: cfg)
    chunks = []  # (graph, [(model, ratio, split, scores, extra)], cfg)
    for g in graphs:
        js = list(jobs(g) if callable(jobs) else jobs)
        ss = list(splits(g) if callable(splits) else splits)
        for job in js:
            m, r = job[0], float(job[1])
            tag = job[2] if len(job) > 2 else None
            fn = scores.get(tag) if isinstance(scores, dict) else scores
            ex = dict(extra or {})
            if tag is not None:
                ex[tag_column] = tag
            items = []
            for s in ss:
                sc = fn(g, int(s)) if (fn is not None and 0.0 < r < 1.0 and m != "MLP") else None
                items.append((m, r, int(s), sc, ex))
            chunks.append((g, items, cfg_for(g)))
    rows: list[dict] = []
    bar = tqdm(total=sum(len(c[1]) for c in chunks), disable=not progress, desc="runs", leave=False, mininterval=5.0)
    if workers <= 1:
        prepared: dict[str, Prepared] = {}
        for g, items, c in chunks:
            if g.name not in prepared:
                prepared = {g.name: prepare(g, c.device)}  # one dataset in memory at a time
            for m, r, s, sc, ex in items:
                row = train_run(prepared[g.name], m, r, s, c, sc)
                row.update(ex or {})
                rows.append(row)
                bar.update()
                bar.set_postfix_str(f"{g.name} {row['variant']} split {s}: test {row['test']:.4f}")
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            # Largest first: the pool takes tasks in submission order, so the last tasks to start are the small
            # graphs' and no worker idles for long at the end; rows keep the job order (``results`` is indexed).
            futures = [None] * len(chunks)
            for i in submission_order(chunks):
                g, items, c = chunks[i]
                futures[i] = ex.submit(_run_chunk, (g, items, c, 1))
            results: list[list[dict]] = [[] for _ in futures]
            from concurrent.futures import as_completed

            index = {f: i for i, f in enumerate(futures)}
            for f in as_completed(futures):
                results[index[f]] = f.result()
                bar.update(len(results[index[f]]))
                last = results[index[f]][-1]
                bar.set_postfix_str(f"{last['dataset']} {last['variant']}: test {last['test']:.4f}")
        rows = [r for chunk in results for r in chunk]
    bar.close()
    return pd.DataFrame(rows)


