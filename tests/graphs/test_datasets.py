"""Loading the offline graphs with their official splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compendium.graphs.datasets import (NOT_OFFLINE, OFFLINE_DATASETS, _load_npz, dataset_table, edge_homophily,
                                        load_dataset, not_offline_table, random_splits)

# nodes / features / classes from ../shared/research/data_and_models.md §2.1 and graphs.md §1.1(d)
EXPECTED = {
    "cora": (2708, 1433, 7), "citeseer": (3327, 3703, 6), "texas_4_classes": (183, 1703, 5),
    "cornell": (183, 1703, 5), "wisconsin": (251, 1703, 5), "actor": (7600, 932, 5),
    "chameleon_filtered": (890, 2325, 5), "squirrel_filtered": (2223, 2089, 5),
    "tolokers": (11758, 10, 2), "minesweeper": (10000, 7, 2),
}


@pytest.mark.parametrize("name", sorted(OFFLINE_DATASETS))
def test_each_dataset_loads_with_ten_disjoint_splits(load, name):
    g = load(name)
    assert (g.num_nodes, g.num_features, g.num_classes) == EXPECTED[name]
    assert g.num_splits == 10
    tr, va, te = g.train_masks.int(), g.val_masks.int(), g.test_masks.int()
    assert int((tr + va + te).max()) == 1  # disjoint
    assert all(int(m.sum()) > 0 for m in (g.train_masks[0], g.val_masks[0], g.test_masks[0]))
    src, dst = g.edge_index
    assert not bool((src == dst).any())  # no self loops
    pairs = set(zip(src.tolist(), dst.tolist()))
    assert all((d, s) in pairs for s, d in list(pairs)[:2000])  # undirected
    assert g.metric == ("roc_auc" if g.num_classes == 2 else "accuracy")


def test_paper_statistics(load):
    # edge counts and edge homophily of the GFS statistics table (graphs.md §1.1 d)
    t, m = load("tolokers"), load("minesweeper")
    assert t.edge_index.shape[1] // 2 == 519_000 and m.edge_index.shape[1] // 2 == 39_402
    assert round(edge_homophily(t), 4) == 0.5945 and round(edge_homophily(m), 4) == 0.6828
    assert len(dataset_table([t, m])) == 2


@pytest.mark.parametrize("name", ["wisconsin", "actor", "tolokers", "minesweeper"])
def test_pyg_classes_reproduce_the_yandex_npz(load, shared_data, name):
    a, b = load(name), _load_npz(name, shared_data)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(a.train_masks, b.train_masks) and torch.equal(a.val_masks, b.val_masks)
    assert torch.equal(a.test_masks, b.test_masks)


def test_texas_4_classes_is_pyg_texas_without_the_singleton(load, shared_data, pyg_cache):
    from torch_geometric.datasets import WebKB

    from compendium.graphs.datasets import _link_geom

    _link_geom("texas", pyg_cache / "webkb" / "texas" / "raw", shared_data)
    d = WebKB(str(pyg_cache / "webkb"), "Texas")[0]
    g = load("texas_4_classes")
    assert torch.equal(d.x, g.x) and torch.equal(d.y, g.y)
    in_splits = g.train_masks[0] | g.val_masks[0] | g.test_masks[0]
    left_out = (~in_splits).nonzero().view(-1).tolist()
    assert len(left_out) == 1 and int((g.y == g.y[left_out[0]]).sum()) == 1


def test_registered_cornell_features_duplicate_texas(shared_data):
    # why cornell is read from the yandex npz and not through PyG WebKB
    a = (shared_data / "graphs/geom-gcn/new_data/cornell/out1_node_feature_label.txt").read_bytes()
    b = (shared_data / "graphs/geom-gcn/new_data/texas/out1_node_feature_label.txt").read_bytes()
    assert a == b
    z = np.load(shared_data / "graphs/heterophilous/cornell.npz")
    t = np.load(shared_data / "graphs/heterophilous/texas.npz")
    assert not np.array_equal(z["node_labels"], t["node_labels"])


def test_random_splits_follow_the_authors_recipe():
    tr, va, te = random_splits(2708, 10, 0.5, 0.25, seed=0)
    assert tr.shape == (10, 2708)
    # rank r <= 0.5 n  -> floor(0.5 n) + 1 training nodes (ranks start at 0)
    assert int(tr[0].sum()) == 1355 and int(va[0].sum()) == 677 and int(te[0].sum()) == 676
    assert not torch.equal(tr[0], tr[1])
    tr2, _, _ = random_splits(2708, 10, 0.5, 0.25, seed=0)
    assert torch.equal(tr, tr2)  # deterministic, and does not disturb the global RNG state:
    s = torch.random.get_rng_state()
    random_splits(10, 1)
    assert torch.equal(s, torch.random.get_rng_state())


def test_not_offline_datasets_are_listed_and_raise_with_their_source(shared_data):
    t = not_offline_table()
    assert set(t["dataset"]) == set(NOT_OFFLINE)
    assert {"roman_empire", "amazon_ratings", "questions", "pubmed", "Children", "Photo"} <= set(t["dataset"])
    with pytest.raises(FileNotFoundError, match="heterophilous-graphs"):
        load_dataset("roman-empire", root=shared_data)
    with pytest.raises(KeyError):
        load_dataset("no-such-graph", root=shared_data)


def test_offline_graphs_match_the_published_statistics(load):
    from compendium.published import load as load_published

    stats = load_published("gfs").table("dataset_statistics").wide()
    for name in ("tolokers", "minesweeper"):
        g = load(name)
        row = stats.loc[name]
        assert (g.num_nodes, g.edge_index.shape[1] // 2, g.num_features, g.num_classes) == (
            row["nodes"], row["edges"], row["features"], row["classes"])
        assert round(edge_homophily(g), 4) == row["h_edge"]
