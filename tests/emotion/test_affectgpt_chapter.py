"""The AffectGPT chapter's steps (``compendium.emotion.affectgpt.chapter``) on small hand-made inputs.

The published tables are the real ``affectgpt.yaml`` (it ships with the package); scores, label folders and
wheels are made here, so no data download is needed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from compendium import published, verdicts
from compendium.emotion.affectgpt import chapter
from compendium.emotion.affectgpt import experiments as agpt
from compendium.emotion.metrics import hit_rate

from .toy import WHEEL_A, toy_wheels

matplotlib.use("Agg")
RECOMPUTABLE = ["MER2023", "MELD", "IEMOCAP", "MOSI", "MOSEI", "SIMS", "SIMSv2"]


@pytest.fixture(scope="module")
def paper():
    return published.load("affectgpt")


@pytest.fixture(scope="module")
def published_row(paper):
    frame = paper.table("table2").frame()
    return frame[frame["row"] == agpt.TABLE2_ROW].set_index("column")["value"]


def _scores(values: dict[str, dict[int, float]], missing=("MER2024",)) -> pd.DataFrame:
    """A score_affectgpt-like frame: ``values[dataset][epoch] = score``; ``missing`` datasets have no labels."""
    rows = []
    for name, by_epoch in values.items():
        for epoch, score in by_epoch.items():
            rows.append({"dataset": name, "metric": "hit rate", "checkpoint": epoch, "score": score, "kept": 10,
                         "status": "scored", "note": ""})
    for name in missing:
        for epoch in (30, 35):
            rows.append({"dataset": name, "metric": "hit rate", "checkpoint": epoch, "score": np.nan, "kept": 0,
                         "status": "missing labels", "note": "no labels"})
    return pd.DataFrame(rows)


def test_data_paths_prefer_an_explicit_root(monkeypatch):
    monkeypatch.setattr(chapter, "fetch", lambda key, path=None: (key, path))
    env = chapter.data_paths("")
    assert set(env) == set(chapter.DATA_KEYS) and all(path is None for _, path in env.values())
    rooted = chapter.data_paths("/somewhere", {"wheels": "emotion/affectgpt/emotion_wheel"})
    assert rooted == {"wheels": ("emotion/affectgpt/emotion_wheel",
                                 Path("/somewhere") / "emotion/affectgpt/emotion_wheel")}


def test_inputs_read_the_wheels_from_the_resolved_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(chapter, "data_paths", lambda root: {"wheels": tmp_path / root})
    monkeypatch.setattr(chapter.EmotionWheels, "from_dir", classmethod(lambda cls, d: ("wheels of", d)))
    paths, wheels, paper = chapter.inputs("w")
    assert paths == {"wheels": tmp_path / "w"} and wheels == ("wheels of", tmp_path / "w")
    assert paper.table("table2") is not None


def test_wheel_counts_and_probe_table():
    w = toy_wheels()
    assert chapter.wheel_counts(w) == (f"{len(w.words)} wheel words, {len(w.raw_mapping)} synonym keys, "
                                       f"{len(w.format_mapping)} word forms")

    class Fake:
        def map_label(self, word, k):
            return {("happy", 1): "joy", ("happy", 3): "glad"}.get((word, k))

    table = chapter.probe_table(Fake(), probe=("happy", "neutral"))
    assert list(table.columns) == [f"wheel {k}" for k in range(1, 6)]
    assert table.loc["happy"].tolist() == ["joy", "—", "glad", "—", "—"]
    assert (table.loc["neutral"] == "—").all()


def test_hand_check_reports_and_checks():
    w = toy_wheels((WHEEL_A,) * 5)  # "angry" is unknown here, so only "happy" is kept: one hit of one
    expected = hit_rate(["happy", "angry", "neutral"], ["[joyful, excited]", "[sad]", "[calm]"], w)
    assert expected.score == 1.0 and expected.kept == (1,) * 5
    text = chapter.hand_check(w, expect_score=1.0)
    first, second = text.splitlines()
    assert first == "kept per wheel (1, 1, 1, 1, 1), hit rate 1.000"
    assert second.startswith("sentiment: kept 3 (zero valence dropped), weighted F1 ")
    assert chapter.hand_check(w, expect_score=None, expect_kept=None) == text
    with pytest.raises(AssertionError, match="hit rate"):
        chapter.hand_check(w, expect_score=expected.score + 0.25)
    with pytest.raises(AssertionError, match="sentiment kept"):
        chapter.hand_check(w, expect_score=None, expect_kept=4)


def test_checkpoint_grid_orders_datasets_and_drops_missing_labels():
    scores = _scores({"MELD": {30: 40.0, 35: 45.0}, "MER2023": {30: 70.0, 35: 65.5}})
    grid = chapter.checkpoint_grid(scores)
    assert list(grid.index) == ["MER2023", "MELD"] and list(grid.columns) == [30, 35]
    spread = chapter.checkpoint_spread(grid)
    assert spread.name == "max - min over checkpoints" and spread.to_dict() == {"MER2023": 4.5, "MELD": 5.0}
    fig = chapter.plot_checkpoints(grid)
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_xlabel() == "checkpoint (epoch)"


def test_table2_against_the_paper(paper, published_row, tmp_path):
    # epoch 30 of each recomputable set scores exactly the published value, the last epoch (35) one point less
    values = {name: {30: float(published_row[name]), 35: float(published_row[name]) - 1.0} for name in RECOMPUTABLE}
    scores = _scores(values, missing=("MER2024", "OV-MERD+"))
    t2 = chapter.compare_table2(paper, scores, tmp_path, "best-on-test")
    assert set(t2.mine.row) == {agpt.TABLE2_ROW} and len(t2.mine) < len(t2.cells)
    assert t2.published_row.equals(published_row)
    assert (t2.mine.verdict == "exact").sum() == 7
    assert isinstance(t2.reproduced[(agpt.TABLE2_ROW, "MER2024")], verdicts.NotRun)
    assert set(t2.cells.loc[t2.cells.row != agpt.TABLE2_ROW, "verdict"]) == {"not run here"}
    counts = chapter.table2_counts(t2.mine, "best-on-test")
    assert counts == t2.mine.verdict.value_counts().to_string()
    with pytest.raises(AssertionError, match="8 recomputable"):
        chapter.table2_counts(t2.mine, "best-on-test", exact=8)
    last = chapter.compare_table2(paper, scores, tmp_path, "last")
    assert (last.mine.verdict == "exact").sum() == 0
    assert chapter.table2_counts(last.mine, "last") == last.mine.verdict.value_counts().to_string()
    lines = chapter.measured_lines(t2.reproduced).splitlines()
    assert len(lines) == 7 and lines[0] == f"{'MER2023':8s} {published_row['MER2023']:6.2f}"


def test_measured_lines_skip_cells_not_run():
    cells = {("r", "A"): 1.234, ("r", "Longname9"): 12.0, ("r", "B"): verdicts.not_run("no labels", kind="data")}
    assert chapter.measured_lines(cells) == "A          1.23\nLongname9  12.00"


@pytest.fixture()
def ov(paper):
    """Two models scored exactly as published, with one cell 1.5 points above the paper."""
    pub = paper.table("ovmer").wide()
    models = ["Otter", "Chat-UniVi"]
    cols = list(agpt.MAP_COLUMNS) + list(agpt.WHEEL_COLUMNS) + ["M-avg"]
    frame = pub.loc[models, cols].astype(float).copy()
    frame.loc["Otter", "W1 L1"] += 1.5
    frame["n"] = 332
    return frame


def test_ovmer_comparison_residuals_and_figures(paper, ov):
    cells = chapter.compare_ovmer(paper, ov)
    assert set(cells.rule) == {"compendium.emotion.unibench.score_ov_mer_baselines"}
    otter = cells[(cells.row == "Otter") & (cells.column == "W1 L1")].iloc[0]
    assert otter.verdict == "differs" and otter.difference == pytest.approx(1.5)
    assert (cells[(cells.row == "Otter") & (cells.column == "GPT")].verdict == "not run here").all()
    assert chapter.plot_ovmer(cells).axes[0].get_title() == "OV-MER baselines: every M1/M2/wheel cell"

    pub, offsets, effects = chapter.ovmer_residuals(ov, paper)
    assert list(pub.index) == ["Otter", "Chat-UniVi"]
    assert effects.abs().max() == pytest.approx(0.0, abs=1e-9)
    assert offsets.loc["W1 L1", "mean"] == pytest.approx(0.75) and offsets.loc["W1 L1", "n_positive"] == 1
    bars = chapter.plot_column_effects(offsets).axes[0].patches
    assert len(bars) == len(offsets) == 12


def test_synonym_ablation_passes_the_chapter_folders(monkeypatch):
    seen = {}

    def fake(output_dir, ov_store_dir, wheel_dir, published_table, subsets, setting):
        seen.update(dirs=(output_dir, ov_store_dir, wheel_dir), table=published_table, subsets=subsets, setting=setting)
        return "ablation"

    monkeypatch.setattr(chapter.agpt, "synonym_run_ablation", fake)
    paths = {"ovmer": Path("o"), "ov_store": Path("s"), "wheels": Path("w")}
    assert chapter.synonym_ablation(paths, "pub", "subtitle") == "ablation"
    assert seen == {"dirs": (Path("o"), Path("s"), Path("w")), "table": "pub", "subsets": chapter.SYNONYM_SUBSETS,
                    "setting": "subtitle"}
    assert chapter.SYNONYM_SUBSETS["all 8 (released)"] == tuple(range(1, 9))
    assert chapter.SYNONYM_SUBSETS["run 3 only"] == (3,) and len(chapter.SYNONYM_SUBSETS) == 11


def test_summary_texts():
    texts = chapter.summary_texts({"Mean": 74.456}, "last")
    assert set(texts) == {"paper_claim", "ran_here", "not_reproduced"}
    assert "mean 74.46 over nine datasets" in texts["paper_claim"]
    assert f"the {agpt.TABLE2_ROW} row" in texts["ran_here"] and "'last' checkpoint rule" in texts["ran_here"]


def _write_wheel_files(root: Path) -> tuple[list[Path], Path, Path]:
    """Wheel A of ``toy.py`` as two xlsx wheels (merged cells left empty), a one-run synonym.xlsx and a format.csv."""
    rows = [("happy", "joyful", "glad"), (None, None, "cheerful"), (None, "content", "calm"),
            ("sad", "lonely", "isolated"), (None, "hurt", "disappointed")]
    wheels = []
    for k in (1, 2):
        path = root / f"wheel{k}.xlsx"
        pd.DataFrame(rows, columns=["level1", "level2", "level3"]).to_excel(path, index=False)
        wheels.append(path)
    synonym = root / "synonym.xlsx"
    runs = {}
    for k in range(1, 9):
        runs[f"word_run{k}"] = ["Sad", "happy"]
        runs[f"synonym_run{k}"] = ["[blue, down]", "[]"]
    pd.DataFrame(runs).to_excel(synonym, index=False)
    fmt = root / "format.csv"
    pd.DataFrame({"name": ["sad", "happy", "blue"], "format": ["sadness,sadly", "happiness", ""]}).to_csv(fmt, index=False)
    return wheels, synonym, fmt


def test_wheels_from_files_reads_each_given_version(tmp_path):
    wheels, synonym, fmt = _write_wheel_files(tmp_path)
    w = chapter.wheels_from_files(wheels, synonym, fmt)
    assert w.num_wheels == 2 and w.trees[0] == WHEEL_A
    assert w.raw_mapping["blue"] == ("sad",) and w.raw_mapping["sad"] == ("sad",)
    assert w.format_mapping["sadness"] == ("sad",) and w.format_mapping["blue"] == ("blue",)
    assert w.map_label("sadness", 2) == "sad" and w.map_label("blue", 1, "level2") == "hurt"


@pytest.fixture()
def shifted(paper):
    """Two models: M1/M2 as published + 0.1, wheels 1-3 and 5 + 0.5, wheel 4 as published."""
    pub = paper.table("ovmer").wide()
    models = ["Otter", "Chat-UniVi"]
    frame = pub.loc[models, list(agpt.MAP_COLUMNS) + list(agpt.WHEEL_COLUMNS)].astype(float).copy()
    frame[list(agpt.MAP_COLUMNS)] += 0.1
    frame[list(chapter.OFFSET_GROUPS["W1-W3, W5"])] += 0.5
    return frame


def test_group_offsets_mean_sigma_and_excess(paper, shifted):
    out = chapter.group_offsets(shifted, paper.table("ovmer"))
    assert out["M1, M2"] == pytest.approx(0.1) and out["W1-W3, W5"] == pytest.approx(0.5)
    assert out["W4"] == pytest.approx(0.0, abs=1e-9) and out["W4 |r|/σ"] == pytest.approx(0.0, abs=1e-6)
    assert out["wheel excess"] == pytest.approx(0.4)
    # Otter's M1 std is 0.06 and M2's 0.02, Chat-UniVi's from the yaml: the median of 0.1/σ over the four cells
    frame = paper.table("ovmer").frame().set_index(["row", "column"])
    sig = [max(frame.loc[(m, c), "tolerance"] / 2, 0.005) for m in ("Otter", "Chat-UniVi") for c in ("M1", "M2")]
    assert out["M1, M2 |r|/σ"] == pytest.approx(float(np.median([0.1 / s for s in sig])))
    assert set(chapter.OFFSET_GROUPS["W4"]) == {"W4 L1", "W4 L2"} and len(chapter.OFFSET_GROUPS["W1-W3, W5"]) == 8


def test_wheel_version_offsets_rescores_each_variant(monkeypatch, paper, shifted):
    seen = []

    def fake(output_dir, ov_store_dir, wheel_dir, setting, wheels):
        seen.append((output_dir, ov_store_dir, wheel_dir, setting, wheels))
        return shifted + (1.0 if wheels == "newer" else 0.0)

    monkeypatch.setattr(chapter.ub, "score_ov_mer_baselines", fake)
    paths = {"ovmer": Path("o"), "ov_store": Path("s"), "wheels": Path("w")}
    table = chapter.wheel_version_offsets(paths, paper.table("ovmer"), {"released": "released", "newer": "newer"},
                                          setting="subtitle")
    assert list(table.index) == ["released", "newer"]
    assert table.loc["released", "wheel excess"] == pytest.approx(0.4)
    assert table.loc["newer", "M1, M2"] == pytest.approx(1.1) and table.loc["newer", "W4"] == pytest.approx(1.0)
    assert [s[:4] for s in seen] == [(Path("o"), Path("s"), Path("w"), "subtitle")] * 2


def test_ovmer_reading_states_counts_bands_and_the_word_form_file():
    cols = list(chapter.agpt.MAP_COLUMNS) + list(chapter.agpt.WHEEL_COLUMNS)
    cells = pd.DataFrame({"column": cols, "reproduced": 1.0, "difference": [0.1] * 11 + [-0.1],
                          "tolerance": 0.1, "verdict": ["exact", "within tolerance"] + ["differs"] * 10})
    offsets = pd.DataFrame({"within_model": 0.5, "se": 0.1}, index=cols)
    offsets.loc[["W4 L1", "W4 L2"], "within_model"] = 0.02
    effects = pd.Series([-0.5, 0.5, 1.0])
    ablation = pd.DataFrame({"M2": [0.1, 1.5, -0.9]}, index=["all", "run 1", "run 2"])
    text = chapter.ovmer_reading(cells, offsets, effects, ablation)
    assert "12 measured cells" in text and "1 is exact, 1 within tolerance and 10 differ" in text
    assert "92 %" in text and "median residual is 2.0 of the paper's σ" in text  # |0.1| / (0.1 / 2)
    assert "+0.50 to +0.50" in text and "wheel 4 +0.02" in text and "never closer than 0.90" in text
    assert "2 of 3" in text and "`format.csv` exists in two" in text
