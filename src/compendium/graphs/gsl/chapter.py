"""The GSL chapter's (notebooks/gsl/structure_learning.ipynb) setup, hand checks, tables, figures, generated
Markdown, verdict assembly and summary texts.

The notebook holds the parameters, the calls and what they show; every table, figure and generated sentence is
built here from the run's measurements, so that it is tested (tests/graphs/test_gsl_chapter.py). The studies
and the comparisons are :mod:`.experiments`, the claim rules :mod:`.claims`; this module only calls them in the
chapter's order and shapes what they return for the page (the computations, seeds and recipes are theirs).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ... import paths, published
from ...published import PublishedPaper
from ..datasets import dataset_table, load_dataset
from ..harness import TrainConfig, format_mean_std, with_overrides
from . import claims as cl
from . import experiments as ex
from .bases import GRACEConfig
from .construct import construct, cos_graph_edges
from .csbm import CSBMH
from .mi import gaussian_mixture_mi, mi_knn
from .train import GSL_RECIPE, GSLData, describe, prepare_gsl

__all__ = [
    "Setup", "setup", "construction_demo", "GAUSSIAN_CHECKS", "mi_checks", "csbm_study", "csbm_figure", "mi_table",
    "shown", "load_graphs", "datasets_table", "run_main", "cells_table", "gfs_runs_csv", "baseline_check",
    "baseline_vs_gfs", "comparison_table", "gain_figure", "fusion_ablation", "fusion_table", "fusion_claim",
    "PAPER_CLAIM", "NOT_REPRODUCED", "decisions", "results", "this_run", "summary_texts",
]


# ------------------------------------------------------------------------------------- setup


@dataclass
class Setup:
    """The chapter's recipes, published data and the clocks started at setup (for the Reproduce table)."""

    cfg: TrainConfig
    gcl: GRACEConfig
    csbm_cfg: TrainConfig
    paper: PublishedPaper
    wall0: float
    cpu0: float


def setup(steps: int, gcl_steps: int, csbm_steps: int) -> Setup:
    """One torch thread (the book is built on shared 2-core machines), seeds 0 (torch, NumPy), wide table
    cells, the clocks, and the recipes of the parameters (printed: the training recipe, the baseline's tuning
    grid, GRACE's configuration)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    pd.set_option("display.max_colwidth", 200)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    cfg = with_overrides(GSL_RECIPE, steps=steps)
    gcl_cfg = GRACEConfig(steps=gcl_steps)
    run = Setup(cfg=cfg, gcl=gcl_cfg, csbm_cfg=with_overrides(cfg, steps=csbm_steps), paper=published.load("gsl"),
                wall0=wall0, cpu0=cpu0)
    print(describe(cfg))
    print("baseline tuning grid:", ex.BASELINE_GRID)
    print(gcl_cfg)
    return run


# ------------------------------------------------------------------------------------- the pieces, by hand


def _pairs(edges: torch.Tensor) -> list[tuple]:
    return sorted({tuple(sorted(e)) for e in edges.t().tolist()})


def construction_demo() -> str:
    """The three constructions on hand-checkable points: four nodes on a line at 0, 1, 3, 7 (kNN, k = 1: the
    path 0-1-3-7) and five directions of different lengths (the cosine rules see the directions only)."""
    b = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    angles = torch.tensor([0.0, 0.05, 1.0, 1.3, 3.0])
    dirs = torch.stack([angles.cos(), angles.sin()], 1) * torch.tensor([[1.0], [4.0], [0.5], [2.0], [1.0]])
    return "\n".join([f"kNN (k=1) edges: {_pairs(construct('knn', b, k=1))}",
                      f"cos-node (k=1): {_pairs(construct('cos-node', dirs, k=1))}",
                      f"cos-graph (the 2 most similar pairs): {_pairs(cos_graph_edges(dirs, num_pairs=2))}"])


#: The Gaussian checks of the MI estimator: (class means, class standard deviations); the last has no MI.
GAUSSIAN_CHECKS = (([[-1.0, 0.0], [1.0, 0.0]], [1.0, 5 ** 0.5]), ([[0.0, 0.0], [3.0, 0.0]], [1.0, 1.0]),
                   ([[0.0, 0.0], [0.0, 0.0]], [1.0, 1.0]))


def mi_checks(cases=GAUSSIAN_CHECKS, n: int = 2000, seed: int = 0):
    """The kNN MI estimator against the Monte-Carlo MI of two Gaussian classes, ``n`` draws per case (one
    generator seeded ``seed`` for all cases). Returns (one row per case, the MI claim's gain threshold from
    :func:`.claims.mi_gain_threshold`) and prints the threshold."""
    rng = np.random.default_rng(seed)
    checks = []
    for means, sds in cases:
        y = rng.integers(0, 2, n)
        x = np.asarray(means)[y] + np.asarray(sds)[y, None] * rng.standard_normal((n, 2))
        checks.append({"classes": f"N({means[0]}, {sds[0]**2:g}I) vs N({means[1]}, {sds[1]**2:g}I)",
                       "Monte-Carlo I(Y;X)": gaussian_mixture_mi(means, sds), "kNN estimate": mi_knn(x, y)})
    checks = pd.DataFrame(checks)
    threshold = cl.mi_gain_threshold(checks)
    print(f"gain threshold of the MI claim: {threshold.value:.3f} nats ({threshold.source})")
    return checks, threshold


# ------------------------------------------------------------------------------------- 1. CSBM-H


def csbm_study(hs: Sequence[float], seeds: int, constructions: Sequence[str], model_constructions: Sequence[str],
               nodes: int, k: int, cfg: TrainConfig) -> pd.DataFrame:
    """:func:`.experiments.csbm_study` at the chapter's parameters (``nodes`` per class, seeds ``0..seeds-1``);
    prints the number of points and the CPU time."""
    t0 = time.process_time()
    csbm = ex.csbm_study(hs=tuple(hs), seeds=range(seeds), constructions=tuple(constructions), k=k,
                         params=CSBMH(n0=nodes, n1=nodes), cfg=cfg, model_constructions=tuple(model_constructions),
                         progress=False)
    print(f"{len(csbm)} (h, seed, basis, construction) points in {time.process_time() - t0:.0f} s of CPU time")
    return csbm


def _closed(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)
    return fig


def csbm_figure(csbm: pd.DataFrame, k: int, construction: str = "knn"):
    """:func:`.experiments.plot_csbm` with the chapter's title; returned closed (``display`` it)."""
    fig = ex.plot_csbm(csbm, construction)
    fig.suptitle("CSBM-H: mutual information with the labels (top) and test accuracy (bottom); kNN graph, k = %d" % k,
                 y=1.02)
    return _closed(fig)


def mi_table(csbm: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of the MI columns and ``h_A'`` per (basis, h), one column group per construction, with
    the gain ``I(Y; Â'B) − I(Y; B)``."""
    view = csbm.groupby(["basis", "construction", "h"])[["I_B", "I_AB", "I_A'B", "h_A'"]].mean()
    view["I_A'B - I_B"] = view["I_A'B"] - view["I_B"]
    return view.unstack("construction").round(3)


def shown(decision: cl.Decision) -> cl.Decision:
    """Print a claim rule's evidence sentence and return the decision (the notebook calls the rule itself)."""
    print(decision.evidence)
    return decision


# ------------------------------------------------------------------------------------- 2. GNN vs GNN+GSL


def load_graphs(datasets: Sequence[str], num_splits: int, splits_override: Mapping[str, int],
                data_root: str = "") -> dict[str, GSLData]:
    """Every dataset with its 50/25/25 splits (``splits_override`` gives fewer to named graphs); ``data_root``:
    a folder laid out like ``compendium data list``, empty for the default resolution."""
    root = Path(data_root) if data_root else None
    graphs = {name: load_dataset(name, root=root) for name in datasets}
    return {name: prepare_gsl(g, num_splits=int(splits_override.get(name, num_splits))) for name, g in graphs.items()}


def datasets_table(prepared: Mapping[str, GSLData]) -> pd.DataFrame:
    """The graphs' table (:func:`compendium.graphs.datasets.dataset_table`) with the splits used here."""
    table = dataset_table([p.source for p in prepared.values()])
    table["splits used here"] = [f"{p.copies} × " + p.cache["splits_note"] for p in prepared.values()]
    return table.drop(columns=["splits", "source"])


def run_main(prepared: Mapping[str, GSLData], backbones: Sequence[str], bases: Sequence[str], construction: str,
             fusion: str, shared: bool, cfg: TrainConfig, k: int, gcl: GRACEConfig):
    """Per dataset, :func:`.experiments.run_tuned` (the baseline tuned first) over the main variants and the
    MLP on ``X``; prints each dataset's count and CPU time. Returns (runs, tuning table, recipe per dataset)."""
    recipes, tunings, frames = {}, [], []
    variants = ex.main_variants(tuple(backbones), tuple(bases), construction, fusion, shared, with_mlp=False)
    for name, d in prepared.items():
        t0 = time.process_time()
        recipes[name], tuning, frame = ex.run_tuned(d, variants + [ex.Variant("MLP", "X")], cfg, k=k, gcl=gcl)
        tunings.append(tuning)
        frames.append(frame)
        print(f"{name}: {frame.variant.nunique()} variants × {d.copies} splits (+ {len(tuning) - 1} tuning "
              f"configurations) in {time.process_time() - t0:.0f} s of CPU time")
    return pd.concat(frames, ignore_index=True), pd.concat(tunings, ignore_index=True), recipes


def cells_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Test mean ± std over splits (points), one row per (dataset, basis), one column per backbone ± GSL."""
    view = runs.assign(column=np.where(runs.gsl, runs.backbone + "+GSL", runs.backbone)).groupby(
        ["dataset", "basis", "column"], sort=False)["test"].agg(["mean", "std"])
    view["cell"] = [format_mean_std(100 * m, 100 * s) for m, s in zip(view["mean"], view["std"])]
    return view["cell"].unstack("column")


def gfs_runs_csv() -> Path:
    """The GFS chapter's per-run file in the book (the reference of the baseline check)."""
    return paths.book_dir() / "gfs" / "gfs.runs.csv"


def baseline_check(runs: pd.DataFrame, tuning: pd.DataFrame, prepared: Mapping[str, GSLData], gfs_csv=None):
    """The GFS chapter's GCN runs on the graphs here (``gfs_csv``: default :func:`gfs_runs_csv`) and the
    training preconditions of :func:`.claims.training_preconditions` (printed). Returns both."""
    gfs_gcn = ex.gfs_reference(gfs_runs_csv() if gfs_csv is None else gfs_csv, [d.name for d in prepared.values()])
    pre = cl.training_preconditions(runs, tuning, gfs_gcn)
    for p in pre:
        print(p.text())
    return gfs_gcn, pre


def baseline_vs_gfs(runs: pd.DataFrame, gfs_gcn: pd.DataFrame) -> pd.DataFrame:
    """Mean test score (points) of the tuned GCN(X, A) here and of the GFS chapter's GCN, on the shared graphs."""
    return pd.DataFrame({"GCN(X, A) here (tuned)": 100 * runs[runs.variant == "GCN(X)"].groupby("dataset", sort=False).test.mean(),
                         "GFS chapter's GCN": 100 * gfs_gcn.groupby("dataset").test.mean()}).dropna().round(2)


def comparison_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """The comparisons of :func:`.experiments.gsl_vs_baseline` for the page (the outcome counts printed)."""
    print(cmp.outcome.value_counts().to_string())
    return cmp[["dataset", "backbone", "basis", "baseline_test", "gsl_test", "gain", "p", "outcome"]].round(3)


def gain_figure(cmp: pd.DataFrame):
    """GSL − baseline per comparison, sorted, coloured by outcome; returned closed (``display`` it)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    colours = {"better": "#1a9850", "tie": "#bdbdbd", "worse": "#d73027"}
    order = cmp.sort_values("gain").reset_index(drop=True)
    ax.bar(range(len(order)), order.gain, color=[colours[o] for o in order.outcome])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(order)), [f"{r.dataset[:10]} · {r.basis}" for r in order.itertuples()], rotation=90, fontsize=7)
    ax.set_ylabel("GSL − baseline (points)")
    ax.set_title("GNN+GSL vs the same GNN on the same basis (green/red: significant)")
    return _closed(fig)


# ------------------------------------------------------------------------------------- 4. construction × fusion


def fusion_ablation(datasets: Sequence[str], bases: Sequence[str], prepared: Mapping[str, GSLData],
                    recipes: Mapping[str, TrainConfig], cfg: TrainConfig, num_splits: int, data_root: str, k: int,
                    gcl: GRACEConfig, alpha: float):
    """Every construction × fusion design of :func:`.experiments.fusion_variants` (GCN) on ``datasets``, each with
    its tuned recipe (``cfg`` and ``num_splits`` for a dataset the main comparison did not run), and their
    comparisons with the same GCN without GSL; prints the count and CPU time. Returns (runs, comparisons)."""
    t0 = time.process_time()
    root = Path(data_root) if data_root else None
    fus_runs = pd.concat([ex.run_variants(prepared[name] if name in prepared else prepare_gsl(load_dataset(name, root=root), num_splits=num_splits),
                                          ex.fusion_variants("GCN", tuple(bases)), recipes.get(name, cfg), k=k, gcl=gcl, progress=False)
                          for name in datasets], ignore_index=True)
    fus = ex.gsl_vs_baseline(fus_runs, alpha=alpha)
    print(f"{len(fus_runs)} runs in {time.process_time() - t0:.0f} s of CPU time")
    return fus_runs, fus


def fusion_table(fus: pd.DataFrame) -> pd.DataFrame:
    """Gain over the same GCN without GSL (points) per (dataset, basis, construction), one column per design."""
    design = np.where(fus.fusion == "single", "new graph only",
                      fus.fusion + np.where(fus.shared.astype(bool), ", shared", ", separate"))
    return fus.assign(design=design).pivot_table(index=["dataset", "basis", "construction"], columns="design",
                                                 values="gain", sort=False).round(2)


def fusion_claim(fus_runs: pd.DataFrame, tuning: pd.DataFrame, gfs_gcn: pd.DataFrame,
                 datasets: Sequence[str]) -> cl.Decision:
    """:func:`.claims.claim_fusion_designs` on the contrasts of ``fus_runs``, with the convergence and splits
    preconditions of those runs (the ablation datasets' tuning); prints the evidence."""
    pre = [p for p in cl.training_preconditions(fus_runs, tuning[tuning.dataset.isin(list(datasets))], gfs_gcn)
           if p.name.startswith(("converged", "enough splits"))]
    return shown(cl.claim_fusion_designs(cl.fusion_contrasts(fus_runs), pre))


# ------------------------------------------------------------------------------------- verdicts, Reproduce, summary


#: The paper's claim in one sentence (the summary box).
PAPER_CLAIM = ("Similarity-based graph structure learning adds no information the GSL bases do not already carry: "
               "the pretrained bases, not the learned graph, drive the gains, and GNN+GSL does not consistently beat "
               "the GNN under the same bases.")
#: What the chapter does not reproduce (the summary box).
NOT_REPRODUCED = "the paper's Tables 1 and 2 (values not available to us) and its other backbones and graphs."


def decisions(no_mi_gain: cl.Decision, bases_drive_gains: cl.Decision, gsl_not_consistent: cl.Decision,
              fusion_designs: cl.Decision) -> dict[str, cl.Decision]:
    """The four claims' decisions by claim id of ``published/gsl.yaml``, in the page's order."""
    return {"no_mi_gain": no_mi_gain, "bases_drive_gains": bases_drive_gains, "gsl_not_consistent": gsl_not_consistent,
            "fusion_designs": fusion_designs}


def results(decisions: Mapping[str, cl.Decision], run: Setup, runs: pd.DataFrame, *, csbm_nodes: int,
            csbm_seeds: int, csbm_levels: int) -> pd.DataFrame:
    """The chapter's results cells: one claim cell per decision (claim id → decision, in the page's order; all
    at the reduced scale, the MI claim's reason naming the CSBM-H settings, the others the CPU recipe), then
    the paper's Tables 1 and 2 as not run here."""
    what_ran = ex.scope(runs)
    scale_note = cl.scale_reason(what_ran["datasets"], what_ran["backbones"], run.cfg.steps,
                                 tuned=len(ex.grid_configs(run.cfg)) > 1)
    mi_scale_note = (f"CSBM-H at our settings ({csbm_nodes} nodes per class, {csbm_seeds} seeds, {csbm_levels} homophily "
                     "levels, kNN MI estimator with k = 3); the paper's own generator settings and estimator are not all stated")
    notes = {"no_mi_gain": mi_scale_note}
    return pd.concat([cl.claim_cell(cid, d, scale="reduced", scale_reason=notes.get(cid, scale_note))
                      for cid, d in decisions.items()]
                     + [cl.not_run_cell(run.paper.table(t)) for t in ("table1", "table2")], ignore_index=True)


def _bases_text(runs: pd.DataFrame) -> str:
    n = runs.loc[runs.backbone != "MLP", "basis"].nunique()
    return f"{n} bas{'es' if n != 1 else 'is'}"


def this_run(run: Setup, runs: pd.DataFrame, prepared: Mapping[str, GSLData], gcl_steps: int,
             ablation_datasets: Sequence[str], csbm_h: Sequence[float], csbm_seeds: int, csbm_nodes: int, *,
             cpu_s: float | None = None, wall_s: float | None = None) -> str:
    """The Reproduce section's generated row (Markdown): this run's profile, its CPU and wall time since
    :func:`setup` (one thread; ``cpu_s``/``wall_s`` override the clocks) and what it ran."""
    cpu_s = time.process_time() - run.cpu0 if cpu_s is None else cpu_s
    wall_s = time.perf_counter() - run.wall0 if wall_s is None else wall_s
    what_ran = ex.scope(runs)
    splits_text = ", ".join(f"{n} {p.copies}" for n, p in prepared.items())
    profile = os.environ.get("COMPENDIUM_PROFILE", "interactive")
    return ("| this run | measured here (one thread) | what it ran |\n|---|---|---|\n"
            f"| the {profile} profile | {cpu_s / 60:.0f} min CPU, {wall_s / 60:.0f} min wall | "
            f"{what_ran['backbones_text']} on {what_ran['count_text']} ({what_ran['datasets_text']}; "
            f"splits: {splits_text}), at most {run.cfg.steps} steps, baseline grid of {len(ex.grid_configs(run.cfg))} "
            f"configurations, {_bases_text(runs)}, GRACE {gcl_steps} steps; construction × fusion on "
            f"{', '.join(ablation_datasets)}; CSBM-H {len(csbm_h)} levels × {csbm_seeds} seeds, {csbm_nodes} nodes "
            "per class |")


def summary_texts(runs: pd.DataFrame, csbm_h: Sequence[float], csbm_seeds: int) -> dict:
    """The summary box's sentences (keyword arguments of :func:`compendium.notebook.summary_box`)."""
    what_ran = ex.scope(runs)
    return {"paper_claim": PAPER_CLAIM,
            "ran_here": (f"{what_ran['backbones_text']} with and without GSL under {_bases_text(runs)} on "
                         f"{what_ran['count_text']} ({what_ran['datasets_text']}), the baseline tuned on validation, "
                         f"plus the CSBM-H MI study ({len(csbm_h)} homophily levels × {csbm_seeds} seeds): reduced scale."),
            "not_reproduced": NOT_REPRODUCED}
