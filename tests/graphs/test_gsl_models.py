"""CSBM-H generator, backbones and fusion, batched training (tiny graphs, seconds)."""

import numpy as np
import pytest
import torch

from compendium.graphs.gsl.adjacency import SparseFeatures, edge_homophily
from compendium.graphs.gsl.csbm import CSBMH, csbm_h
from compendium.graphs.gsl.experiments import Variant, csbm_batch, run_variant
from compendium.graphs.gsl.fusion import BLinear, GraphSet, GSLNet
from compendium.graphs.harness import TrainConfig

SMALL = CSBMH(n0=60, n1=60)
FAST = TrainConfig(hidden=16, gnn_layers=2, dropout=0.0, lr=0.05, weight_decay=0.0, steps=40)


@pytest.mark.parametrize("h", [0.0, 0.3, 1.0])
def test_csbm_h_homophily_degrees_and_seed(h):
    g = csbm_h(h, seed=1, params=CSBMH(n0=300, n1=300))
    hom = edge_homophily(g.edge_index, g.y)
    assert hom == pytest.approx(h, abs=0.04)
    deg = torch.bincount(g.edge_index[0], minlength=g.num_nodes)
    assert deg.float().mean() == pytest.approx(2 * 5, rel=0.05)  # each node draws 5, undirected
    assert (deg >= 5).all()
    g2 = csbm_h(h, seed=1, params=CSBMH(n0=300, n1=300))
    assert torch.equal(g.x, g2.x) and torch.equal(g.edge_index, g2.edge_index)
    m0 = g.x[g.y == 0].mean(0)
    assert m0[0] == pytest.approx(-1.0, abs=0.2)
    assert g.x[g.y == 1].var(0).mean() == pytest.approx(5.0, rel=0.2)
    assert g.train_masks.shape == (1, 600) and int(g.train_masks.sum()) == pytest.approx(300, abs=1)


def test_blinear_copies_are_independent_linears():
    lin = BLinear(3, 4, 5)
    x = torch.randn(7, 4)
    out = lin(x)
    for s in range(3):
        assert torch.allclose(out[s], x @ lin.weight_of(s) + lin.bias[s], atol=1e-6)
    xs = torch.randn(3, 7, 4)
    assert torch.allclose(lin(xs)[1], xs[1] @ lin.weight_of(1) + lin.bias[1], atol=1e-6)
    sp = SparseFeatures((torch.rand(7, 4) > 0.6).float())
    assert torch.allclose(lin(sp), lin(sp.to_dense()), atol=1e-6)


def test_graphset_shared_and_per_copy_agree():
    g = csbm_h(0.5, seed=0, params=SMALL)
    shared = GraphSet(g.edge_index, g.num_nodes)
    per = GraphSet([g.edge_index, g.edge_index], g.num_nodes)
    h = torch.randn(2, g.num_nodes, 3)
    assert torch.allclose(shared.apply(shared.sym, h), per.apply(per.sym, h), atol=1e-6)
    assert torch.allclose(shared.apply(shared.mean, h)[0], shared.mean.dense() @ h[0], atol=1e-5)


def test_early_shared_gcn_is_one_convolution_over_the_mean_operator():
    g = csbm_h(0.5, seed=0, params=SMALL)
    n = g.num_nodes
    a, b = GraphSet(g.edge_index, n), GraphSet(csbm_h(1.0, seed=2, params=SMALL).edge_index, n)
    torch.manual_seed(0)
    net = GSLNet("GCN", 1, 2, 8, 3, layers=1, dropout=0.0, fusion="early", shared=True, num_views=2).eval()
    w, bias = net.stacks[0][0].lin.weight_of(0), net.stacks[0][0].lin.bias[0]
    op = 0.5 * (a.sym.dense() + b.sym.dense())
    assert torch.allclose(net(g.x, [a, b])[0], op @ (g.x @ w + bias), atol=1e-5)


@pytest.mark.parametrize("backbone", ["GCN", "SAGE", "MLP"])
@pytest.mark.parametrize("fusion, shared", [("single", True), ("early", True), ("early", False), ("late", True), ("late", False)])
def test_shapes_and_parameter_counts(backbone, fusion, shared):
    g = csbm_h(0.5, seed=0, params=SMALL)
    views = 1 if fusion == "single" else 2
    gs = [GraphSet(g.edge_index, g.num_nodes)] * views
    net = GSLNet(backbone, 4, 2, 8, 3, fusion=fusion, shared=shared, num_views=views)
    out, hidden = net(g.x, gs, return_hidden=True)
    assert out.shape == (4, g.num_nodes, 3)
    assert (hidden is None) == (fusion == "late")
    single = sum(p.numel() for p in GSLNet(backbone, 4, 2, 8, 3).parameters())
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == (single if (shared or fusion == "single") else 2 * single)
    with pytest.raises(ValueError):
        net(g.x, gs + gs)


def test_batched_fit_learns_and_keeps_copies_apart():
    d = csbm_batch(1.0, seeds=[0, 1], params=SMALL)
    r = run_variant(d, Variant("GCN", "X"), FAST)
    assert (r.test > 0.85).all()  # h = 1: averaging over same-class neighbours separates the classes (30 test nodes)
    r2 = run_variant(d, Variant("MLP", "X"), FAST)
    assert (r2.test < r.test + 1e-9).all()
    # copy 1 alone gives the same result as copy 1 in the batch when its weights start the same
    one = csbm_batch(1.0, seeds=[1], params=SMALL)
    torch.manual_seed(0)
    both = GSLNet("MLP", 2, 2, 16, 2, dropout=0.0)
    alone = GSLNet("MLP", 1, 2, 16, 2, dropout=0.0)
    with torch.no_grad():
        for cb, ca in zip(both.modules(), alone.modules()):
            if isinstance(cb, BLinear):
                ca.weight.copy_(cb.weight_of(1))
                ca.bias.copy_(cb.bias[1:2])
    from compendium.graphs.gsl.train import fit

    rb, ra = fit(both, d, d.x, [d.graph], FAST), fit(alone, one, one.x, [one.graph], FAST)
    assert rb["test"][1] == pytest.approx(ra["test"][0]) and rb["best_step"][1] == ra["best_step"][0]


def test_gsl_variant_builds_graph_from_basis():
    d = csbm_batch(0.2, seeds=[0, 1], params=SMALL)
    r = run_variant(d, Variant("GCN", "X", "knn", "early", False), FAST)
    assert len(r) == 2 and r.gsl.all()
    g2 = d.cache[("G'", "X", "knn", 5)]
    assert not g2.shared and len(g2.edge_indices) == 2
    assert r.homophily_new.iloc[0] > 0.6  # kNN in feature space is more homophilous than h = 0.2


def test_binary_roc_auc_path():
    # A 2-class task scored by ROC-AUC (as tolokers/minesweeper): one logit, BCE, per-split AUC.
    d = csbm_batch(1.0, seeds=[0, 1], params=SMALL)
    d.binary, d.metric, d.y = True, "roc_auc", d.y.float()
    r = run_variant(d, Variant("GCN", "X", "knn", "early", False), FAST)
    assert (r.test > 0.9).all() and (r.test <= 1.0).all() and (r.metric == "roc_auc").all()


def test_early_stopping_freezes_each_copy_as_if_trained_alone():
    from dataclasses import replace

    from compendium.graphs.gsl.train import fit

    stop = replace(FAST, patience=3, steps=60, lr=0.2)
    d = csbm_batch(0.5, seeds=[0, 1], params=SMALL)
    one = csbm_batch(0.5, seeds=[1], params=SMALL)
    torch.manual_seed(0)
    both = GSLNet("MLP", 2, 2, 16, 2, dropout=0.0)
    alone = GSLNet("MLP", 1, 2, 16, 2, dropout=0.0)
    with torch.no_grad():
        for cb, ca in zip(both.modules(), alone.modules()):
            if isinstance(cb, BLinear):
                ca.weight.copy_(cb.weight_of(1))
                ca.bias.copy_(cb.bias[1:2])
    rb, ra = fit(both, d, d.x, [d.graph], stop), fit(alone, one, one.x, [one.graph], stop)
    for key in ("test", "best_step", "steps", "stop_reason", "converged"):
        assert rb[key][1] == ra[key][0], key
    assert (rb["stop_reason"] == "patience").all() and (rb["steps"] == rb["best_step"] + 3).all() and rb["converged"].all()
    # a run cut by its budget at its best step did not converge
    cut = fit(GSLNet("MLP", 2, 2, 16, 2, dropout=0.0), d, d.x, [d.graph], replace(FAST, steps=1, patience=3))
    assert (cut["stop_reason"] == "max_steps").all() and not cut["converged"].any() and (cut["steps"] == 1).all()
