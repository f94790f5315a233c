"""GSL bases on a real graph, the 50/25/25 splits, and the decision rules behind the chapter's claims."""

import numpy as np
import pandas as pd
import pytest
import torch

from compendium import published
from compendium.graphs.datasets import load_dataset
from compendium.graphs.gsl.adjacency import SparseFeatures
from compendium.graphs.gsl.bases import GRACEConfig, basis_ax, make_basis
from compendium.graphs.gsl.experiments import (
    BASELINE_GRID, Variant, ablation, gfs_reference, grid_configs, gsl_vs_baseline, paired, paper_claims, run_variants,
    scope, tune_baseline,
)
from compendium.graphs.gsl.train import prepare_gsl
from compendium.graphs.harness import TrainConfig

TINY = TrainConfig(hidden=16, gnn_layers=2, dropout=0.5, lr=1e-2, weight_decay=5e-4, steps=8)


@pytest.fixture(scope="module")
def texas(shared_data):
    return prepare_gsl(load_dataset("texas", root=shared_data), num_splits=2)


def test_texas_splits_are_50_25_25_and_disjoint(texas):
    assert texas.copies == 2
    tr, va, te = texas.train_masks, texas.val_masks, texas.test_masks
    assert not (tr & va).any() and not (tr & te).any() and not (va & te).any()
    assert int((tr | va | te)[0].sum()) == 182  # the node of Texas's one-node class is in no official split
    assert tr[0].float().sum() / 182 == pytest.approx(0.5, abs=0.01)
    assert not torch.equal(tr[0], tr[1])
    assert "random 50/25/25" in texas.cache["splits_note"]
    assert isinstance(texas.x, SparseFeatures)
    assert torch.allclose(texas.x.to_dense().sum(1)[texas.x.to_dense().sum(1) > 0], torch.tensor(1.0))


def test_all_five_bases_and_a_gsl_variant_on_texas(texas):
    shapes = {}
    for b in ("X", "AX", "MLP", "GCN", "GCL"):
        basis, _ = make_basis(texas, b, TINY, GRACEConfig(hidden=16, proj=16, steps=3))
        shapes[b] = tuple(basis.shape)
    n = texas.num_nodes
    assert shapes["X"] == shapes["AX"] == (n, 1703)
    assert shapes["MLP"] == shapes["GCN"] == (2, n, 16)  # one embedding per split: trained on its labels
    assert shapes["GCL"] == (n, 16)
    ax = basis_ax(texas)
    ax = ax.to_dense() if isinstance(ax, SparseFeatures) else ax
    assert torch.allclose(ax, texas.graph.sym @ texas.dense_x(), atol=1e-6)
    runs = run_variants(texas, [Variant("GCN", "MLP"), Variant("GCN", "MLP", "knn", "early", False)], TINY, progress=False)
    assert len(runs) == 4 and runs.test.between(0, 1).all()
    g2 = texas.cache[("G'", "MLP", "knn", 5)]
    assert not g2.shared and len(g2.edge_indices) == 2  # per-split basis -> per-split graph


def test_paired():
    a = pd.Series([0.5, 0.6, 0.7], index=[0, 1, 2])
    assert paired(a + 0.1, a)["diff"] == pytest.approx(0.1)
    assert paired(a + 0.1, a)["p"] == 0.0
    r = paired(pd.Series([0.5, 0.7, 0.6, 0.9]), pd.Series([0.6, 0.6, 0.6, 0.6]))
    assert r["n"] == 4 and r["p"] > 0.05


def _runs(base_scores, variant_scores, variant="GCN+GSL(X; knn; early, separate)", basis="X", dataset="D", val=None):
    rows = []
    for name, scores, gsl in ((f"GCN({basis})", base_scores, False), (variant, variant_scores, True)):
        for s, t in enumerate(scores):
            rows.append({"dataset": dataset, "variant": name, "backbone": "GCN", "basis": basis, "construction": "knn" if gsl else "",
                         "fusion": "early" if gsl else "", "shared": False if gsl else None, "gsl": gsl, "split": s,
                         "test": t, "val": (val or {}).get(name, t)})
    return pd.DataFrame(rows)


def test_gsl_vs_baseline_outcomes():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.7, 10)
    better = gsl_vs_baseline(_runs(base, base + 0.05 + rng.normal(0, 0.005, 10)))
    assert better.outcome.item() == "better" and better.gain.item() == pytest.approx(5.0, abs=0.5)
    tie = gsl_vs_baseline(_runs(base, base + rng.normal(0, 0.02, 10)))
    assert tie.outcome.item() == "tie"


def test_ablation_picks_the_basis_on_validation_not_test():
    frames = []
    for b, val, test in (("MLP", 0.9, 0.6), ("GCN", 0.7, 0.8)):
        frames.append(_runs([test] * 4, [test] * 4, variant=f"GCN+GSL({b}; knn; early, separate)", basis=b,
                            val={f"GCN({b})": val}))
    frames.append(_runs([0.5, 0.52, 0.5, 0.51], [0.5, 0.5, 0.52, 0.5]))
    abl = ablation(pd.concat(frames, ignore_index=True))
    assert abl["B*"].item() == "MLP"
    assert abl["basis gain"].item() == pytest.approx(100 * (0.6 - 0.5075))


def test_tune_baseline_chooses_on_validation_and_reports_every_config(texas):
    grid = {"lr": (1e-2, 5e-3), "dropout": (0.5, 0.0)}
    assert len(grid_configs(TINY, grid)) == 4 and len(grid_configs(TINY)) == len(BASELINE_GRID["lr"]) * len(BASELINE_GRID["dropout"])
    cfg, table, runs = tune_baseline(texas, TINY, grid)
    assert len(table) == 4 and int(table.chosen.sum()) == 1
    assert table.loc[table.chosen, "val"].item() == table.val.max()
    assert (cfg.lr, cfg.dropout) == tuple(table.loc[table.chosen, ["lr", "dropout"]].iloc[0])
    assert len(runs) == texas.copies and runs.val.mean() == pytest.approx(table.val.max())
    assert {"best_step", "steps", "max_steps", "stop_reason", "converged"} <= set(runs.columns)


def test_gfs_reference_reads_the_plain_gcn_runs(tmp_path):
    path = tmp_path / "gfs.runs.csv"
    pd.DataFrame({"dataset": ["cora", "cora", "cora", "texas_4_classes"], "variant": ["GCN", "GCN+GFS", "GCN", "GCN"],
                  "split": [0, 0, 1, 0], "test": [0.8, 0.9, 0.82, 0.7], "steps": [100] * 4, "best_step": [50] * 4}).to_csv(path)
    ref = gfs_reference(path, ["cora"])
    assert ref.test.tolist() == [0.8, 0.82]
    assert gfs_reference(tmp_path / "absent.csv", ["cora"]).empty


def test_scope_names_what_ran():
    runs = pd.DataFrame({"backbone": ["MLP", "GCN", "SAGE", "GCN"], "dataset": ["a", "a", "a", "b"]})
    s = scope(runs)
    assert s["backbones"] == ["GCN", "SAGE"] and s["backbones_text"] == "GCN and GraphSAGE"
    assert s["datasets_text"] == "a and b" and s["count_text"] == "2 graphs"
    assert scope(runs[runs.backbone != "SAGE"].iloc[:2])["backbones_text"] == "GCN"


def test_published_claims_are_sourced():
    paper = published.load("gsl")
    assert paper.arxiv == "2411.07672"
    assert all(t.not_transcribed and not t.cells for t in paper.tables)  # no table values invented
    claims = paper_claims()
    assert {"no_mi_gain", "bases_drive_gains", "gsl_not_consistent"} <= set(claims)
    assert all("2411.07672" in c["source"] or "OpenReview" in c["source"] for c in claims.values())
