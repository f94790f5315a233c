"""GFS's feature split and the two-branch model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compendium.graphs.gfs.model import GFSModel, feature_order, split_features, split_point, variant_name
from compendium.graphs.models import ModelConfig, make_context


def test_split_by_score_hand_case():
    x = torch.arange(12.0).view(3, 4)  # column j holds j, j+4, j+8
    scores = np.array([0.1, 0.5, 0.3, 0.9])
    g, m = split_features(x, scores, 0.5)
    assert torch.equal(g[0], torch.tensor([3.0, 1.0]))  # highest TFI first
    assert torch.equal(m[0], torch.tensor([2.0, 0.0]))


def test_split_point_truncates_like_the_official_code():
    assert split_point(7, 0.8) == 5 and split_point(10, 0.7) == 7 and split_point(1703, 0.5) == 851
    with pytest.raises(ValueError):
        split_point(5, 1.5)


def test_extreme_ratios_drop_a_branch():
    x = torch.randn(5, 4)
    g, m = split_features(x, None, 1.0)
    assert m is None and torch.equal(g, x)
    g, m = split_features(x, None, 0.0)
    assert g is None and torch.equal(m, x)


def test_ties_keep_column_order():
    assert feature_order(np.array([0.2, 0.5, 0.2, 0.5])).tolist() == [1, 3, 0, 2]


def test_variant_names():
    assert variant_name("GCN", 1.0) == "GCN" and variant_name("GCN", 0.0) == "MLP"
    assert variant_name("GAT", 0.6) == "GAT+GFS"


def test_gfs_model_combines_both_branches(load):
    g = load("texas_4_classes")
    ctx = make_context(g.edge_index, g.num_nodes)
    cfg = ModelConfig(hidden=16)
    xg, xm = split_features(g.x, np.arange(g.num_features)[::-1].astype(float), 0.3)
    model = GFSModel("GCN", xg.shape[1], xm.shape[1], g.num_classes, cfg)
    assert model.gnn is not None and model.mlp is not None
    assert model.output.in_features == 32 and len(model.mlp.blocks) == 3 and len(model.gnn.blocks) == 2
    out = model(xg, xm, ctx)
    assert out.shape == (g.num_nodes, g.num_classes)
    out.sum().backward()
    assert model.gnn.input.weight.grad.abs().sum() > 0 and model.mlp.input.weight.grad.abs().sum() > 0
    # the MLP branch ignores the graph; the GNN branch does not
    model.eval()
    empty = make_context(torch.empty(2, 0, dtype=torch.long), g.num_nodes)
    with torch.no_grad():
        a, b = model.mlp(xm, ctx), model.mlp(xm, empty)
        c, d = model.gnn(xg, ctx), model.gnn(xg, empty)
    assert torch.equal(a, b) and not torch.allclose(c, d)
    single = GFSModel("GCN", g.num_features, 0, 1, cfg)
    assert single.mlp is None and single(g.x, None, ctx).shape == (g.num_nodes,)
