"""TFI on hand-checkable graphs, and against the authors' committed vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from compendium.graphs.datasets import GraphData, global_z_norm
from compendium.graphs.gfs.tfi import (SELECTION_METHODS, compare_with_official, load_official_tfi,
                                   neighbour_average, selection_scores, tfi)


def _graph(edges, n):
    e = torch.tensor(edges, dtype=torch.long).t()
    return torch.cat([e, e.flip(0)], 1)


def test_neighbour_average_by_hand():
    # path 0 - 1 - 2 plus a self loop on 1 that must be ignored: degrees 1, 2, 1
    ei = torch.cat([_graph([(0, 1), (1, 2)], 3), torch.tensor([[1], [1]])], 1)
    x = torch.tensor([[1.0, 0.0], [2.0, 4.0], [3.0, 8.0]])
    got = neighbour_average(x, ei)
    c = 1 / (math.sqrt(2) + 1e-7)
    want = torch.tensor([[2 * c, 4 * c], [(1 + 3) * c, (0 + 8) * c], [2 * c, 4 * c]])
    assert torch.allclose(got, want, atol=1e-6)


def test_isolated_node_gets_zero():
    ei = _graph([(0, 1)], 3)
    out = neighbour_average(torch.ones(3, 1), ei)
    assert out[2, 0] == 0 and out[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_global_z_norm_uses_one_mean_and_std():
    x = torch.tensor([[0.0, 10.0], [2.0, 20.0]])
    z = global_z_norm(x)
    assert z.mean().abs() < 1e-6 and abs(z.std().item() - 1) < 1e-6
    assert not torch.allclose(z[:, 0].mean(), torch.tensor(0.0))  # not per column


def _two_community_graph(seed=0, n=400):
    """Nodes 0..n/2-1 are class 0, the rest class 1. Edges: inside-class only ("homophilous" part)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    edges = set()
    for v in range(n):
        for _ in range(4):
            u = rng.integers(0, n // 2) + (n // 2) * y[v]
            if u != v:
                edges.add((min(u, v), max(u, v)))
    return _graph(sorted(edges), n), torch.tensor(y), rng


def test_tfi_prefers_features_that_aggregation_makes_informative():
    ei, y, rng = _two_community_graph()
    n = len(y)
    weak = y.numpy() + rng.normal(0, 2.0, n)  # noisy label signal: averaging neighbours denoises it
    noise = rng.normal(0, 1.0, n)  # no signal at all
    x = torch.tensor(np.stack([weak, noise], 1), dtype=torch.float32)
    t = tfi(x, ei, y, torch.arange(n), random_state=0)
    assert t[0] > 0.3 and t[1] < 0.05
    raw = selection_scores("MI (no graph)", GraphData("toy", x, y, ei, torch.ones(1, n, dtype=torch.bool),
                                                        torch.zeros(1, n, dtype=torch.bool),
                                                        torch.zeros(1, n, dtype=torch.bool), "roc_auc"), 0)
    assert t[0] > 2 * raw[0]  # the topology adds information the raw column lacks


def test_tfi_uses_training_labels_only():
    ei, y, rng = _two_community_graph(1)
    n = len(y)
    x = torch.tensor(np.stack([y.numpy() + rng.normal(0, 2.0, n), rng.normal(0, 1, n)], 1), dtype=torch.float32)
    train = torch.arange(0, n, 2)
    a = tfi(x, ei, y, train, random_state=3)
    y2 = y.clone()
    y2[1::2] = 1 - y2[1::2]  # flip every label outside the training set
    b = tfi(x, ei, y2, train, random_state=3)
    assert np.allclose(a, b)
    c = tfi(x, ei, 1 - y, train, random_state=3)  # relabelling the classes leaves MI unchanged
    assert np.allclose(a, c)


def test_tfi_matches_the_authors_vectors_on_tolokers(load, shared_data):
    # the estimator is random: two of our seeds agree to Spearman ~0.98 on tolokers (measured), so we
    # require the official vector to agree with ours about as well as our seeds agree with each other
    g = load("tolokers")
    df = compare_with_official(g, [0], root=shared_data)
    row = df.iloc[0]
    assert row["spearman"] >= 0.9
    assert row["spearman"] >= row["spearman ours seed vs seed"] - 0.1
    assert abs(row["mean ours"] - row["mean official"]) < 0.003
    ref = load_official_tfi("tolokers", 0, root=shared_data)
    assert ref.shape == (10,)


def test_every_selection_criterion_scores_every_feature(load):
    g = load("texas_4_classes")
    for meth in SELECTION_METHODS:
        if meth in ("TFI", "MI (no graph)"):
            continue  # kNN estimators over 1,703 columns: seconds each; TFI is covered above
        s = selection_scores(meth, g, 0)
        assert s.shape == (g.num_features,) and np.isfinite(s).all(), meth
    assert not np.allclose(selection_scores("h_attr", g, 0), selection_scores("h_GE", g, 0))
