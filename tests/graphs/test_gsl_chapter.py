"""The GSL chapter's module (compendium.graphs.gsl.chapter): setup, hand checks, tables, figures, verdict
assembly and the generated texts, on hand-made inputs (and Texas with a tiny recipe for the training calls)."""

import contextlib
import io

import pandas as pd
import pytest
import torch

from compendium import published, verdicts
from compendium.graphs.gsl import chapter
from compendium.graphs.gsl import claims as cl
from compendium.graphs.gsl.bases import GRACEConfig
from compendium.graphs.gsl.train import GSL_RECIPE, prepare_gsl
from compendium.graphs.harness import TrainConfig
from compendium.verdicts import Precondition

TINY = TrainConfig(hidden=8, gnn_layers=2, dropout=0.5, lr=1e-2, weight_decay=5e-4, steps=4, eval_every=1, patience=30)
GCL = GRACEConfig(hidden=8, proj=8, steps=2)


def test_setup_sets_threads_seeds_and_the_recipes(capsys):
    before = pd.get_option("display.max_colwidth")
    try:
        run = chapter.setup(steps=7, gcl_steps=3, csbm_steps=5)
        assert pd.get_option("display.max_colwidth") == 200
    finally:
        pd.set_option("display.max_colwidth", before)
    assert torch.get_num_threads() == 1
    assert run.cfg.steps == 7 and run.csbm_cfg.steps == 5 and run.gcl.steps == 3
    assert run.cfg.lr == GSL_RECIPE.lr and run.csbm_cfg.hidden == GSL_RECIPE.hidden
    assert run.paper.arxiv == "2411.07672"
    assert run.wall0 > 0 and run.cpu0 > 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2-layer models") and out[1].startswith("baseline tuning grid: {'lr'") and "steps=3" in out[2]


def test_construction_demo_gives_the_hand_checked_graphs():
    lines = chapter.construction_demo().splitlines()
    assert lines[0] == "kNN (k=1) edges: [(0, 1), (1, 2), (2, 3)]"  # the path 0-1-3-7 (node indices)
    assert lines[1].startswith("cos-node (k=1): [(0, 1)") and lines[2].startswith("cos-graph (the 2 most similar pairs): [")
    assert lines[2].count("(") == 3  # two pairs in the list


def test_mi_checks_and_the_threshold(capsys):
    checks, threshold = chapter.mi_checks(n=300)
    assert list(checks.columns) == ["classes", "Monte-Carlo I(Y;X)", "kNN estimate"] and len(checks) == 3
    assert checks["classes"].iloc[0] == "N([-1.0, 0.0], 1I) vs N([1.0, 0.0], 5I)"
    assert checks["Monte-Carlo I(Y;X)"].iloc[2] == pytest.approx(0.0, abs=1e-6)
    err = (checks["kNN estimate"] - checks["Monte-Carlo I(Y;X)"]).abs().max()
    assert threshold.value == pytest.approx(max(err, cl.MI_GAIN_FLOOR))
    assert capsys.readouterr().out.startswith(f"gain threshold of the MI claim: {threshold.value:.3f} nats (")


def test_csbm_study_table_and_figure(capsys):
    csbm = chapter.csbm_study([0.0, 1.0], 2, ["knn", "cos-graph"], ["knn"], 20, 3, TINY)
    assert len(csbm) == 2 * 2 * 2 * 2  # h × seed × basis × construction
    assert csbm.loc[csbm.construction == "cos-graph", "GCN(B,A')"].isna().all()
    assert capsys.readouterr().out.startswith("16 (h, seed, basis, construction) points in ")
    fig = chapter.csbm_figure(csbm, 3)
    assert fig._suptitle.get_text().endswith("kNN graph, k = 3") and len(fig.axes) == 4
    view = chapter.mi_table(csbm)
    assert ("I_A'B - I_B", "knn") in view.columns and len(view) == 4  # (basis, h)
    row = csbm[(csbm.basis == "X") & (csbm.construction == "knn") & (csbm.h == 0.0)]
    assert view.loc[("X", 0.0), ("I_A'B - I_B", "knn")] == pytest.approx((row["I_A'B"] - row["I_B"]).mean(), abs=5e-4)


def test_shown_prints_the_evidence(capsys):
    d = cl.Decision(True, "the evidence.", [], "rule")
    assert chapter.shown(d) is d and capsys.readouterr().out == "the evidence.\n"


def _tiny_graph_data(name="toy"):
    """A hand-made GraphData: 12 nodes in two classes on a ring, 10 official 50/25/25-ish splits."""
    from compendium.graphs.datasets import GraphData

    n = 12
    src = torch.arange(n)
    ei = torch.cat([torch.stack([src, (src + 1) % n]), torch.stack([(src + 1) % n, src])], 1)
    y = torch.tensor([0, 1] * (n // 2))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=gen) + y[:, None].float()
    masks = torch.zeros(3, 10, n, dtype=torch.bool)
    for s in range(10):
        perm = torch.randperm(n, generator=gen)
        masks[0, s, perm[:6]], masks[1, s, perm[6:9]], masks[2, s, perm[9:]] = True, True, True
    return GraphData(name=name, x=x, y=y, edge_index=ei, train_masks=masks[0], val_masks=masks[1], test_masks=masks[2],
                     metric="accuracy", source="hand-made")


def test_load_graphs_and_the_datasets_table(monkeypatch):
    seen = []
    monkeypatch.setattr(chapter, "load_dataset", lambda name, root=None: seen.append((name, root)) or _tiny_graph_data(name))
    prepared = chapter.load_graphs(["a", "b"], 3, {"b": 2}, "")
    assert [p.copies for p in prepared.values()] == [3, 2] and seen == [("a", None), ("b", None)]
    chapter.load_graphs(["a"], 1, {}, "/data")
    assert str(seen[-1][1]) == "/data"
    table = chapter.datasets_table(prepared)
    assert "splits" not in table.columns and "source" not in table.columns
    assert table["splits used here"].iloc[1].startswith("2 × ") and table["nodes"].tolist() == [12, 12]


@pytest.fixture(scope="module")
def texas(shared_data):
    from compendium.graphs.datasets import load_dataset

    return prepare_gsl(load_dataset("texas", root=shared_data), num_splits=2)


@pytest.fixture(scope="module")
def main_run(texas):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runs, tuning, recipes = chapter.run_main({"texas": texas}, ["GCN"], ["X", "MLP"], "knn", "early", False, TINY, 3, GCL)
    return runs, tuning, recipes, out.getvalue()


def test_run_main_tunes_then_runs_every_variant(main_run, texas):
    runs, tuning, recipes, printed = main_run
    assert printed.startswith("texas: 5 variants × 2 splits (+ 3 tuning configurations) in ")
    assert set(runs.variant) == {"GCN(X)", "GCN+GSL(X; knn; early, separate)", "GCN(MLP)",
                                 "GCN+GSL(MLP; knn; early, separate)", "MLP(X)"}
    assert len(runs) == 5 * 2 and len(tuning) == 4 and int(tuning.chosen.sum()) == 1
    assert recipes["texas"].steps == TINY.steps
    cells = chapter.cells_table(runs)
    assert list(cells.columns) == ["GCN", "GCN+GSL", "MLP"] and " ± " in cells.loc[(texas.name, "X"), "GCN"]


def test_baseline_check_and_the_gfs_comparison(main_run, texas, tmp_path, capsys, monkeypatch):
    runs, tuning, _, _ = main_run
    csv = tmp_path / "gfs.runs.csv"
    pd.DataFrame({"dataset": [texas.name] * 3, "variant": ["GCN", "GCN", "GCN+GFS"], "split": [0, 1, 0],
                  "test": [0.0, 0.02, 0.9], "steps": [10] * 3, "best_step": [5] * 3}).to_csv(csv)
    gfs_gcn, pre = chapter.baseline_check(runs, tuning, {"texas": texas}, csv)
    assert gfs_gcn.test.tolist() == [0.0, 0.02] and len(pre) == 4
    assert capsys.readouterr().out.splitlines()[0] == pre[0].text()
    both = chapter.baseline_vs_gfs(runs, gfs_gcn)
    assert list(both.columns) == ["GCN(X, A) here (tuned)", "GFS chapter's GCN"]
    assert both.loc[texas.name, "GFS chapter's GCN"] == 1.0
    monkeypatch.setattr(chapter.paths, "book_dir", lambda: tmp_path / "book")
    assert chapter.gfs_runs_csv() == tmp_path / "book" / "gfs" / "gfs.runs.csv"
    none, _ = chapter.baseline_check(runs, tuning, {"texas": texas})  # no GFS file in that book
    assert none.empty


def _cmp():
    return pd.DataFrame({"dataset": ["a", "a", "b"], "backbone": ["GCN"] * 3, "basis": ["X", "MLP", "X"],
                         "baseline_test": [50.0, 60.0, 70.0], "gsl_test": [52.0, 59.0, 70.5], "gain": [2.0, -1.0, 0.5],
                         "p": [0.01, 0.02, 0.5], "outcome": ["better", "worse", "tie"], "extra": [1, 2, 3]})


def test_comparison_table_and_gain_figure(capsys):
    view = chapter.comparison_table(_cmp())
    assert "extra" not in view.columns and len(view) == 3
    assert "better" in capsys.readouterr().out
    fig = chapter.gain_figure(_cmp())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a · MLP", "b · X", "a · X"]  # sorted by gain
    assert ax.get_ylabel() == "GSL − baseline (points)"


def test_fusion_ablation_table_and_claim(main_run, texas, monkeypatch, capsys):
    runs, tuning, recipes, _ = main_run
    small = prepare_gsl(_tiny_graph_data("toy"), num_splits=2)
    loaded = []
    monkeypatch.setattr(chapter, "load_dataset", lambda name, root=None: loaded.append(root) or _tiny_graph_data(name))
    monkeypatch.setattr(chapter, "prepare_gsl", lambda g, num_splits: loaded.append(num_splits) or small)
    fus_runs, fus = chapter.fusion_ablation(["texas", "toy"], ["X"], {"texas": texas}, recipes, TINY, 2, "", 3, GCL, 0.05)
    assert loaded == [None, 2]  # toy was not in the main comparison: loaded and prepared here
    assert set(fus_runs.dataset) == {texas.name, "toy"} and len(fus) == 2 * 3 * 5
    assert capsys.readouterr().out.startswith(f"{len(fus_runs)} runs in ")
    table = chapter.fusion_table(fus)
    assert list(table.columns) == ["new graph only", "early, shared", "early, separate", "late, shared", "late, separate"]
    assert len(table) == 2 * 3
    decision = chapter.fusion_claim(fus_runs, tuning, pd.DataFrame(columns=["dataset", "split", "test"]), ["texas", "toy"])
    names = [p.name for p in decision.preconditions]
    assert names[0].startswith("converged") and names[1].startswith("enough splits") and len(names) == 3
    assert capsys.readouterr().out == decision.evidence + "\n"


def _decision(holds=True):
    return cl.Decision(holds, "evidence. More.", [Precondition("converged runs", "< 10 %", 0.0, True)], "a.rule")


def _runs():
    return pd.DataFrame({"backbone": ["GCN", "GCN", "MLP", "GCN"], "basis": ["X", "MLP", "X", "X"],
                         "dataset": ["texas", "texas", "texas", "cornell"]})


def test_results_assemble_the_claim_cells_and_the_not_run_tables():
    run = chapter.Setup(TINY, GCL, TINY, published.load("gsl"), 0.0, 0.0)
    decisions = chapter.decisions(_decision(), _decision(False), _decision(None), _decision())
    assert list(decisions) == ["no_mi_gain", "bases_drive_gains", "gsl_not_consistent", "fusion_designs"]
    cells = chapter.results(decisions, run, _runs(), csbm_nodes=20, csbm_seeds=2, csbm_levels=3)
    assert len(cells) == 6 and list(cells.kind[:4]) == ["claim"] * 4
    assert list(cells.verdict[:3]) == [verdicts.SUPPORTED, verdicts.NOT_SUPPORTED, verdicts.INCONCLUSIVE]
    assert (cells.verdict[4:] == verdicts.NOT_RUN).all() and list(cells.table[4:]) == ["table1", "table2"]
    assert cells.scale_reason[0].startswith("CSBM-H at our settings (20 nodes per class, 2 seeds, 3 homophily levels")
    assert cells.scale_reason[1] == cl.scale_reason(["texas", "cornell"], ["GCN"], TINY.steps, tuned=True)
    assert cells.scale_reason[3] == cells.scale_reason[1] and set(cells.scale[:4]) == {"reduced"}


def test_this_run_and_the_summary_texts(monkeypatch):
    run = chapter.Setup(TINY, GCL, TINY, None, 0.0, 0.0)
    prepared = {"texas": prepare_gsl(_tiny_graph_data("texas"), num_splits=2),
                "cornell": prepare_gsl(_tiny_graph_data("cornell"), num_splits=1)}
    monkeypatch.setenv("COMPENDIUM_PROFILE", "ci")
    text = chapter.this_run(run, _runs(), prepared, 3, ["texas"], [0.0, 1.0], 2, 20, cpu_s=120.0, wall_s=180.0)
    header, rule, row = text.splitlines()
    assert header == "| this run | measured here (one thread) | what it ran |" and rule == "|---|---|---|"
    assert row.startswith("| the ci profile | 2 min CPU, 3 min wall | GCN on 2 graphs (texas and cornell; splits: texas 2, "
                          "cornell 1), at most 4 steps, baseline grid of 4 configurations, 2 bases, GRACE 3 steps; ")
    assert row.endswith("construction × fusion on texas; CSBM-H 2 levels × 2 seeds, 20 nodes per class |")
    monkeypatch.delenv("COMPENDIUM_PROFILE")
    clocked = chapter.this_run(run, _runs().iloc[[0]], prepared, 3, ["texas"], [0.0], 2, 20)
    assert "| the interactive profile | " in clocked and "1 basis," in clocked and "GCN on 1 graph (texas;" in clocked
    texts = chapter.summary_texts(_runs(), [0.0, 0.5, 1.0], 2)
    assert texts["paper_claim"] == chapter.PAPER_CLAIM and texts["not_reproduced"] == chapter.NOT_REPRODUCED
    assert texts["ran_here"] == ("GCN with and without GSL under 2 bases on 2 graphs (texas and cornell), the baseline "
                                 "tuned on validation, plus the CSBM-H MI study (3 homophily levels × 2 seeds): reduced scale.")
