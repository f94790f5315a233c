"""The GFS experiments' tables on hand-made runs (and one tiny real grid)."""

from __future__ import annotations

import pandas as pd
import pytest

from compendium.graphs.gfs import experiments as gexp


def hand_runs() -> pd.DataFrame:
    """GCN plain vs +GFS on three splits of 'd' (GFS better by 2-4 points) and one split of 'e'."""
    rows = []
    for s, (base, gfs) in enumerate(((0.80, 0.82), (0.81, 0.84), (0.79, 0.83))):
        rows += [{"dataset": "d", "model": "GCN", "variant": "GCN", "ratio": 1.0, "split": s, "test": base},
                 {"dataset": "d", "model": "GCN", "variant": "GCN+GFS", "ratio": 0.5, "split": s, "test": gfs},
                 {"dataset": "d", "model": "MLP", "variant": "MLP", "ratio": 0.0, "split": s, "test": 0.6}]
    rows += [{"dataset": "e", "model": "GCN", "variant": "GCN", "ratio": 1.0, "split": 0, "test": 0.7},
             {"dataset": "e", "model": "GCN", "variant": "GCN+GFS", "ratio": 0.7, "split": 0, "test": 0.6}]
    frame = pd.DataFrame(rows)
    return frame.assign(val=frame["test"], metric="accuracy", seconds=2.0, cpu_seconds=1.5, steps=40, max_steps=100,
                        best_step=20, converged=True)


def test_gfs_cases_pair_splits_and_test_one_sided():
    cases = gexp.gfs_cases(hand_runs()).set_index("dataset")
    d, e = cases.loc["d"], cases.loc["e"]
    assert d["n_splits"] == 3 and d["gain"] == pytest.approx(3.0) and d["improved"] and d["significant"]
    assert d["p_value"] < 0.05 and d["ratio"] == 0.5
    assert e["n_splits"] == 1 and not e["improved"] and not e["significant"] and pd.isna(e["p_value"])
    counts = gexp.headline(gexp.gfs_cases(hand_runs()))
    assert counts == {"cases": 2, "improved": 1, "significant": 1, "improved_pct": 50.0, "significant_pct": 50.0}
    assert gexp.headline(pd.DataFrame())["cases"] == 0


def test_main_table_wide_and_overview():
    wide = gexp.main_table_wide(hand_runs())
    assert list(wide.columns) == ["GCN base", "GCN +GFS", "MLP"]
    assert wide.loc["d", "GCN base"] == "80.00 ± 1.00" and wide.loc["e", "GCN +GFS"] == "60.00"
    over = gexp.runs_overview(hand_runs(), ratios={"d": 0.5})
    assert over.loc["d", "splits"] == 3 and over.loc["d", "runs"] == 9 and over.loc["d", "not_converged"] == 0
    assert over.loc["d", "ratio r"] == 0.5 and over.loc["e", "ratio r"] == gexp.DEFAULT_RATIO


def test_step_cost_and_selection_table():
    table, ratio = gexp.step_cost(hand_runs())
    assert table.loc["d", "GCN"] == pytest.approx(50.0) and ratio.loc[("d", "GCN")] == pytest.approx(1.0)
    sel = hand_runs().query("dataset == 'd' and model == 'GCN'").assign(
        selection=lambda f: f["variant"].map({"GCN": "none (GCN)", "GCN+GFS": "TFI"}))
    st = gexp.selection_table(sel)
    assert list(st.index) == ["TFI", "none (GCN)"] and st.loc["TFI", "d"] == pytest.approx(83.0)


def test_ratio_for_and_choices():
    assert gexp.ratio_for("tolokers") == 0.7 and gexp.ratio_for("cora") == gexp.DEFAULT_RATIO
    assert gexp.PAPER_RATIOS["minesweeper"] == 0.8 and len(gexp.PAPER_RATIOS) == 10  # gfs.yaml, table ratios
    assert gexp.ratio_for("tolokers", {"tolokers": 0.3}) == 0.3 and gexp.ratio_for("cora", 0.2) == 0.2
    gexp.check_choices(["cora"], ["GCN"], "ours")
    for bad in ((["pubmed"], [], "official"), (["cora"], ["GIN"], "official"), (["cora"], [], "theirs")):
        with pytest.raises(ValueError):
            gexp.check_choices(*bad)


def test_recorded_step_times(tmp_path):
    assert gexp.recorded_step_times(tmp_path / "none.csv") is None
    path = tmp_path / "st.csv"
    pd.DataFrame({"variant": ["GCN", "GCN+GFS", "GCN"], "backend": ["sparse", "sparse", "pyg"],
                  "cpu_sec_per_step": [0.07, 0.09, 0.5]}).to_csv(path, index=False)
    view = gexp.recorded_step_times(path)
    assert view.loc["GCN", "plain, ms CPU/step"] == 70 and view.loc["GCN", "+GFS, ms CPU/step"] == 90
    assert "ours / GCN" not in view.columns
    pd.DataFrame({"variant": ["GCN", "GCN+GFS"], "package": [0.07, 0.09], "pyg": [0.14, 0.2],
                  "package / bound": [3.04, 3.9], "package / GCN": [1.0, 1.29]}).to_csv(tmp_path / "st_side_by_side.csv", index=False)
    view = gexp.recorded_step_times(path)
    assert view.loc["GCN", "PyG / ours"] == 2.0 and view.loc["GCN", "ours / bound"] == 3.0
    assert view.loc["GCN", "ours / GCN"] == 1.0


def test_main_table_runs_every_variant(load):
    g = load("texas_4_classes")
    from compendium.graphs.harness import TrainConfig

    runs = gexp.main_table([g], TrainConfig(hidden=8, lr=1e-2, steps=3), models=["GCN"], splits={"texas_4_classes": [0]},
                           scores=gexp.tfi_scores("official"), progress=False)
    assert list(runs["variant"]) == ["GCN", "GCN+GFS", "MLP"] and set(runs["split"]) == {0}
    assert {"best_step", "steps", "max_steps", "stop_reason", "converged"} <= set(runs.columns)


def test_tfi_reading_takes_its_numbers_from_the_run():
    agree = pd.DataFrame({"dataset": ["tolokers", "cora"], "split": 0, "spearman": [1.0, 0.687],
                          "spearman ours seed vs seed": [0.988, 0.724], "mean ours": [0.030, 0.045],
                          "mean official": [0.030, 0.046]})
    text = gexp.tfi_reading(agree)
    assert "tolokers: seed-vs-seed Spearman 0.99" in text and "(Spearman 1.00)" in text
    assert "(cora: 0.72)" in text and "(Spearman 0.69)" in text and "at most 0.001 nats" in text
    assert "Cora: ours 0.045, theirs 0.046" in text
    assert "Where the estimator is stable" not in gexp.tfi_reading(agree.iloc[1:])


def test_run_scope_names_what_ran():
    from types import SimpleNamespace

    from compendium.graphs.harness import TrainConfig, per_dataset

    graphs = [SimpleNamespace(name="texas_4_classes"), SimpleNamespace(name="tolokers")]
    text = gexp.run_scope(graphs, ["GCN", "GAT"], lambda g: [0] if g.name == "tolokers" else [0, 1, 2],
                          per_dataset(TrainConfig(steps=100), {"tolokers": {"steps": 600, "patience": 25}}))
    assert text == ("**This run.** 2 GNNs (GCN and GAT), each plain and with GFS, and the MLP, on 2 graphs: "
                    "texas_4_classes (3 splits, 100 steps) and tolokers (1 split, at most 600 steps).")


def test_left_out_is_checked_and_read():
    ok = {"tolokers": {"models": ["GAT", "GT"], "reason": "budget"}}
    gexp.check_left_out(ok, ["tolokers", "cora"], ["GCN", "GAT", "GT"])
    gexp.check_left_out(None)
    for bad in ({"pubmed": {"models": ["GAT"], "reason": "x"}}, {"tolokers": {"models": ["GIN"], "reason": "x"}},
                {"tolokers": {"models": [], "reason": "x"}}, {"tolokers": {"models": ["GAT"], "reason": " "}}):
        with pytest.raises(ValueError):
            gexp.check_left_out(bad, ["tolokers", "cora"], ["GCN", "GAT", "GT"])
    assert gexp.left_out_models(ok, "tolokers") == (["GAT", "GT"], "budget")
    assert gexp.left_out_models(ok, "cora") == ([], "") and gexp.left_out_models(None, "cora") == ([], "")


def test_main_table_leaves_out_what_the_profile_says(load):
    g = load("texas_4_classes")
    from compendium.graphs.harness import TrainConfig

    runs = gexp.main_table([g], TrainConfig(hidden=8, lr=1e-2, steps=2), models=["GCN", "SGC"], splits={"texas_4_classes": [0]},
                           scores=gexp.tfi_scores("official"), progress=False,
                           left_out={"texas_4_classes": {"models": ["SGC"], "reason": "budget"}})
    assert list(runs["variant"]) == ["GCN", "GCN+GFS", "MLP"]
    wide = gexp.main_table_wide(hand_runs())
    assert wide.loc["e", "MLP"] == "not run"  # no MLP run on 'e'


def test_run_scope_names_what_was_left_out():
    from types import SimpleNamespace

    from compendium.graphs.harness import TrainConfig, per_dataset

    graphs = [SimpleNamespace(name="cora"), SimpleNamespace(name="tolokers")]
    text = gexp.run_scope(graphs, ["GCN", "GAT", "GT"], lambda g: [0, 1, 2], per_dataset(TrainConfig(steps=100)),
                          left_out={"tolokers": {"models": ["GAT", "GT"], "reason": "over the time budget"}})
    assert text.endswith(" Not run on tolokers: GAT and GT (over the time budget).")


def test_recorded_benchmarks_one_block_per_run(tmp_path):
    assert gexp.recorded_benchmarks(tmp_path) is None
    for name, ms in (("tolokers_h64_cpu", 0.07), ("tolokers_h64_cpu_gcn_gat_gt", 0.08)):
        pd.DataFrame({"variant": ["GCN"], "cpu_sec_per_step": [ms]}).to_csv(tmp_path / f"graph_step_time_{name}.csv", index=False)
        pd.DataFrame({"variant": ["GCN"], "package": [ms], "package / bound": [2.0], "package / GCN": [1.0]}).to_csv(
            tmp_path / f"graph_step_time_{name}_side_by_side.csv", index=False)
    view = gexp.recorded_benchmarks(tmp_path)
    assert list(view.index) == [("tolokers_h64_cpu", "GCN"), ("tolokers_h64_cpu_gcn_gat_gt", "GCN")]
    assert view.loc[("tolokers_h64_cpu_gcn_gat_gt", "GCN"), "plain, ms CPU/step"] == 80
