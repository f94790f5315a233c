"""New-structure construction (kNN, node-level and graph-level cosine) and the sparse operators."""

import numpy as np
import pytest
import torch

from compendium.graphs.gsl.adjacency import adjacency, edge_homophily, undirected
from compendium.graphs.gsl.construct import construct, cos_graph_edges, cos_node_edges, knn_edges
from compendium.graphs.models import make_context


def _pairs(ei):
    return {tuple(sorted(p)) for p in ei.t().tolist()}


def test_knn_by_hand():
    b = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    # nearest of 0 is 1, of 1 is 0, of 3 is 1, of 7 is 3
    assert knn_edges(b, k=1).t().tolist() == [[0, 1], [1, 0], [2, 1], [3, 2]]
    assert _pairs(construct("knn", b, k=1)) == {(0, 1), (1, 2), (2, 3)}


def test_cos_node_by_hand():
    ang = torch.tensor([0.0, 0.1, 1.5, 1.6, 3.0])
    b = torch.stack([ang.cos(), ang.sin()], 1) * torch.tensor([[1.0], [5.0], [2.0], [0.3], [1.0]])  # norms do not matter
    assert cos_node_edges(b, k=1).t().tolist() == [[0, 1], [1, 0], [2, 3], [3, 2], [4, 3]]


def test_cos_graph_by_hand():
    ang = torch.tensor([0.0, 0.05, 1.0, 1.3, 3.0])
    b = torch.stack([ang.cos(), ang.sin()], 1)
    assert _pairs(cos_graph_edges(b, num_pairs=2)) == {(0, 1), (2, 3)}
    # threshold: cos(0.3) ≈ 0.955 keeps (0,1) and (2,3) but not (1,2): cos(0.95) ≈ 0.58
    assert _pairs(cos_graph_edges(b, threshold=0.9)) == {(0, 1), (2, 3)}


@pytest.mark.parametrize("method", ["knn", "cos-node", "cos-graph"])
def test_chunking_symmetry_no_self_loops(method):
    b = torch.randn(57, 6, generator=torch.Generator().manual_seed(0))
    e1, e2 = construct(method, b, k=4, chunk=5), construct(method, b, k=4, chunk=1024)
    assert torch.equal(e1, e2)
    assert (e1[0] != e1[1]).all()
    assert _pairs(e1) == _pairs(e1.flip(0))
    # every node has at least k neighbours for the node-level rules; cos-graph keeps k*N pairs
    deg = torch.bincount(e1[0], minlength=57)
    if method == "cos-graph":
        assert e1.shape[1] == 2 * 4 * 57
    else:
        assert (deg >= 4).all()


def test_knn_and_cos_graph_match_brute_force():
    rng = np.random.default_rng(1)
    b = rng.standard_normal((40, 3)).astype(np.float32)
    d = ((b[:, None] - b[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    want = {(i, j) for i in range(40) for j in np.argsort(d[i])[:3]}
    got = {tuple(p) for p in knn_edges(torch.as_tensor(b), k=3).t().tolist()}
    assert got == want
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    s = bn @ bn.T
    iu = np.triu_indices(40, 1)
    top = np.argsort(-s[iu])[:25]
    assert _pairs(cos_graph_edges(torch.as_tensor(b), num_pairs=25, chunk=7)) == {(int(iu[0][t]), int(iu[1][t])) for t in top}


def test_adjacency_matches_gcn_normalisation_and_gradients():
    ei = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 2]])  # path 0-1-2-3, listed partly
    a = adjacency(ei, 4, "sym")
    dense_a = torch.zeros(4, 4)
    for i, j in [(0, 1), (1, 2), (2, 3)]:
        dense_a[i, j] = dense_a[j, i] = 1
    dense_a += torch.eye(4)
    dinv = dense_a.sum(1).pow(-0.5)
    want = dinv[:, None] * dense_a * dinv[None, :]
    assert torch.allclose(a.dense(), want)
    # same operator as the GFS harness builds
    ctx = make_context(undirected(ei, 4), 4)
    theirs = torch.zeros(4, 4)
    theirs[ctx.edge_index[1], ctx.edge_index[0]] = ctx.edge_weight  # (source, target) pairs
    assert torch.allclose(theirs, want)
    m = adjacency(ei, 4, "mean", self_loops=False)
    assert torch.allclose(m.dense().sum(1), torch.ones(4))
    for op in (a, m):
        x = torch.randn(4, 3, requires_grad=True)
        (op @ x).pow(2).sum().backward()
        x2 = x.detach().clone().requires_grad_(True)
        (op.dense() @ x2).pow(2).sum().backward()
        assert torch.allclose(x.grad, x2.grad, atol=1e-6)


def test_edge_homophily():
    y = torch.tensor([0, 0, 1, 1])
    assert edge_homophily(undirected(torch.tensor([[0, 1], [1, 2]]), 4), y) == pytest.approx(0.5)


def test_sparse_features_product_and_gradient():
    from compendium.graphs.gsl.adjacency import SparseFeatures, as_features

    x = (torch.rand(40, 25, generator=torch.Generator().manual_seed(0)) > 0.8).float()
    x[0] = 0
    x[-1] = 0  # empty first and last rows
    sf = SparseFeatures(x)
    w = torch.randn(25, 6, requires_grad=True)
    out = sf.matmul(w)
    assert torch.allclose(out, x @ w, atol=1e-6)
    out.pow(2).sum().backward()
    g = w.grad.clone()
    w.grad = None
    (x @ w).pow(2).sum().backward()
    assert torch.allclose(g, w.grad, atol=1e-5)
    assert isinstance(as_features(x), SparseFeatures) and isinstance(as_features(torch.ones(3, 3)), torch.Tensor)
