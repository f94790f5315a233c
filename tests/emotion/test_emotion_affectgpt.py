"""Real-data checks: AffectGPT Table 2 cells, MER2024-OV and the OV-MER baseline table from published files.

Data: ``COMPENDIUM_DATA`` (``shared_data`` fixture), layout in ``../shared/data/SOURCES.md``. Published values come from
``compendium.published`` (``affectgpt.yaml``: arXiv 2501.16566 Table 2, transcribed from
``zeroQiaoba/AffectGPT@d961cab04ab2903fefb22a641331e1242949b15d`` ``AffectGPT/assert/main-result.png``); the recomputed
values quoted below are from ``../shared/research/emotion.md`` sections 1.4, 2.4 and 2.5.
"""

from __future__ import annotations

import pandas as pd
import pytest

from compendium import published, verdicts
from compendium.emotion.affectgpt import experiments as agpt
from compendium.emotion.affectgpt.experiments import (best_checkpoints, score_affectgpt,
                                                    score_affectgpt_on_ovmerd)
from compendium.emotion.metrics import ew_scores, mer2024_ov_metric
from compendium.emotion.unibench import (
    OV_MER_MODELS,
    UNIBENCH,
    find_checkpoints,
    load_merbench_labels,
    missing_labels,
    score_ov_mer_baselines,
)
from compendium.emotion.wheel import EmotionWheels

RECOMPUTABLE = ["MER2023", "MELD", "IEMOCAP", "MOSI", "MOSEI", "SIMS", "SIMSv2"]


@pytest.fixture(scope="module")
def paths(shared_data):
    e = shared_data / "emotion"
    return {
        "output": e / "affectgpt/output",
        "labels": e / "mertools/MERBench/dataset",
        "wheels": e / "affectgpt/emotion_wheel",
        "ov_store": e / "mertools/MER2024/ov_store",
        "ov_mer": e / "ov-mer/output",
    }


@pytest.fixture(scope="module")
def scores(paths):
    return score_affectgpt(paths["output"], paths["labels"], paths["wheels"])


@pytest.fixture(scope="module")
def best(scores):
    return best_checkpoints(scores).set_index("dataset")


def test_every_checkpoint_scored(scores):
    assert len(scores) == 9 * 7
    assert sorted(scores["checkpoint"].unique()) == [30, 35, 40, 45, 50, 55, 60]
    assert set(scores.loc[scores.status == "scored", "dataset"]) == set(RECOMPUTABLE)


def test_table2_cells_to_two_decimals(best):
    """The 7 recomputable AffectGPT (A V T) cells of Table 2 equal the paper at 2 decimals."""
    cells = published.load("affectgpt").table("table2").frame()
    paper = cells[cells.row == "AffectGPT (AVT)"].set_index("column")["value"]
    for dataset in RECOMPUTABLE:
        assert round(best.loc[dataset, "score"], 2) == pytest.approx(paper[dataset], abs=1e-9), dataset


def test_best_checkpoints_and_kept_counts(best, scores):
    # emotion.md 1.4: best checkpoints chosen on the test set; 1.3: kept samples
    assert best.loc[RECOMPUTABLE, "checkpoint"].tolist() == [50, 30, 35, 40, 30, 30, 35]
    assert best.loc[RECOMPUTABLE, "kept"].tolist() == [323, 1354, 857, 656, 3634, 388, 911]
    mer = scores[scores.dataset == "MER2023"]
    assert mer["score"].round(2).tolist() == [72.55, 76.79, 73.44, 74.64, 78.54, 75.70, 73.69]
    assert mer["kept_per_wheel"].iloc[0] == (323, 323, 323, 323, 305)  # "surprise" is lost in wheel 5
    meld = scores[scores.dataset == "MELD"]["kept_per_wheel"].iloc[0]
    assert min(meld) == 1005 and max(meld) == 1354
    assert scores.groupby("dataset")["n_samples"].first()[RECOMPUTABLE].tolist() == [411, 2610, 1241, 686, 4659,
                                                                                    457, 1034]


def test_missing_labels_reported_not_raised(best, scores, paths):
    for dataset, expected in [("MER2024", "mer2024-dataset-process/label-6way.npz"),
                              ("OV-MERD+", "ovmerdplus-process/ovlabel.csv")]:
        row = best.loc[dataset]
        assert row["status"] == "missing labels"
        assert expected in row["note"] and "pan.baidu.com" in row["note"]
        assert scores[scores.dataset == dataset]["score"].isna().all()
    assert scores.loc[scores.dataset == "MER2024", "n_samples"].iloc[0] == 1169  # predictions are there
    assert scores.loc[scores.dataset == "OV-MERD+", "n_samples"].iloc[0] == 532
    assert missing_labels(paths["labels"])["dataset"].tolist() == ["MER2024", "OV-MERD+"]
    with pytest.raises(FileNotFoundError, match="Baidu"):
        load_merbench_labels(paths["labels"], "MER2024")


def test_find_checkpoints(paths):
    ck = find_checkpoints(paths["output"], "SIMS")
    assert ck["checkpoint"].tolist() == [30, 35, 40, 45, 50, 55, 60]
    assert ck["sentiment"].notna().all()
    assert find_checkpoints(paths["output"], "MELD")["sentiment"].isna().all()


def test_mer2024_ov_metric_official_and_literal(paths):
    off = mer2024_ov_metric(paths["ov_store"], "official")
    # MERTools MER2024/README.md and main-ov.py: 0.581777108433735 / 0.4977911646586345 / 0.5397841365461847
    assert off["n"] == 332
    assert off["accuracy"] == pytest.approx(0.5817771, abs=5e-8)
    assert off["recall"] == pytest.approx(0.4977912, abs=5e-8)
    assert off["average"] == pytest.approx(0.5397841, abs=5e-8)
    lit = mer2024_ov_metric(paths["ov_store"], "literal")  # emotion.md 2.5: the parser quirk costs 0.15 points
    assert (round(lit["accuracy"], 4), round(lit["recall"], 4), round(lit["average"], 4)) == (0.5803, 0.4963, 0.5383)


def test_ew_on_mer2024_predictions(paths):
    """emotion.md 2.5 (our computation): EW L1 F 55.37 (P 55.94, R 54.85), L2 F 42.45 on the MER2024 OV example."""
    wheels = EmotionWheels.from_dir(paths["wheels"])
    gt = pd.read_csv(paths["ov_store"] / "check-openset.csv")
    pred = pd.read_csv(paths["ov_store"] / "predict-openset.csv").set_index("name").loc[gt["name"], "openset"]
    l1 = ew_scores(gt["openset"].tolist(), pred.tolist(), wheels, "level1")
    l2 = ew_scores(gt["openset"].tolist(), pred.tolist(), wheels, "level2")
    assert [round(100 * x, 2) for x in (l1.f, l1.precision, l1.recall, l2.f)] == [55.37, 55.94, 54.85, 42.45]


def test_ov_mer_baselines(paths):
    table = score_ov_mer_baselines(paths["ov_mer"], paths["ov_store"], paths["wheels"])
    assert list(table.index) == list(OV_MER_MODELS)
    assert (table["n"] == 332).all()
    # emotion.md 2.4, "Recomputed M-avg" (our computation from the same files)
    recomputed = {"Chat-UniVi": 47.22, "LLaMA-VID": 45.01, "mPLUG-Owl": 46.15, "Video-ChatGPT": 46.80,
                  "SALMONN": 43.65, "Video-LLaVA": 43.53, "VideoChat2": 43.23, "Otter": 39.73, "VideoChat": 38.21,
                  "Qwen-Audio": 32.60}
    assert table["M-avg"].round(2).to_dict() == recomputed
    # OV-MER table (OV-MER/assert/results.png @ d961cab, via emotion.md 2.4), M-avg column: within 0.80 points
    paper = {"Chat-UniVi": 46.75, "LLaMA-VID": 45.81, "mPLUG-Owl": 45.63, "Video-ChatGPT": 46.02, "SALMONN": 43.53,
             "Video-LLaVA": 43.27, "VideoChat2": 42.65, "Otter": 39.41, "VideoChat": 37.58, "Qwen-Audio": 31.84}
    gaps = (table["M-avg"].round(2) - pd.Series(paper)).abs().round(2)
    assert gaps.max() == 0.80 and gaps.min() == 0.12
    # M-avg is the mean of the 12 metric columns
    assert table["M-avg"].tolist() == pytest.approx(table.iloc[:, :12].mean(axis=1).tolist())


def test_affectgpt_on_ovmerd_overlap(paths):
    """Indicative (emotion.md 1.4): ckpt-60 L1 EW-F 61.7 on the 332 OV-MERD samples, others 64.0-65.9."""
    t = score_affectgpt_on_ovmerd(paths["output"], paths["ov_store"], paths["wheels"]).set_index("checkpoint")
    assert (t["n_overlap"] == 332).all()
    assert round(t.loc[60, "ew_f_l1"], 1) == 61.7
    others = t.drop(index=60)["ew_f_l1"]
    assert round(others.min(), 1) == 64.0 and round(others.max(), 1) == 65.9


# ---------------------------------------------------------------------------------------------- checkpoint rules
def _toy_scores():
    """Two labelled datasets x epochs 30/45/60 and one without labels; hand-checkable maxima."""
    rows = []
    for dataset, values in {"MER2023": (70.0, 75.0, 72.0), "MELD": (55.0, 50.0, 53.0)}.items():
        for epoch, score in zip((30, 45, 60), values):
            rows.append({"dataset": dataset, "kind": "basic", "metric": "hit rate", "checkpoint": epoch,
                         "loss": 1.0, "score": score, "accuracy": float("nan"), "n_samples": 10, "kept": 9,
                         "kept_per_wheel": None, "status": "scored", "note": ""})
    for epoch in (30, 45, 60):
        rows.append({"dataset": "MER2024", "kind": "basic", "metric": "hit rate", "checkpoint": epoch, "loss": 1.0,
                     "score": float("nan"), "accuracy": float("nan"), "n_samples": 10, "kept": 0,
                     "kept_per_wheel": None, "status": "missing labels", "note": "expected x; hosted on Baidu"})
    return pd.DataFrame(rows)


def test_choose_checkpoints_every_rule():
    scores = _toy_scores()
    best = agpt.choose_checkpoints(scores, "best-on-test").set_index("dataset")
    assert best.loc["MER2023", "checkpoint"] == 45 and best.loc["MELD", "checkpoint"] == 30
    assert pd.isna(best.loc["MER2024", "score"])  # missing labels keep a row
    last = agpt.choose_checkpoints(scores, "last").set_index("dataset")
    assert set(last["checkpoint"]) == {60} and last.loc["MELD", "score"] == 53.0
    # epoch means: 30 -> 62.5, 45 -> 62.5, 60 -> 62.5: ties keep the first epoch
    mean = agpt.choose_checkpoints(scores, "best-mean")
    assert set(mean["checkpoint"]) == {30}
    rules = agpt.compare_rules(scores)
    assert list(rules.columns) == list(agpt.CHECKPOINT_RULES)
    assert rules.loc["MER2023"].tolist()[:2] == [75.0, 72.0]
    with pytest.raises(ValueError, match="checkpoint rule"):
        agpt.choose_checkpoints(scores, "best-on-validation")


def test_table2_measured_not_run_and_mean():
    chosen = pd.DataFrame({"dataset": list(UNIBENCH), "score": [float(i) for i in range(9)]})
    chosen.loc[chosen.dataset.isin(["MER2024", "OV-MERD+"]), "score"] = float("nan")
    missing = pd.DataFrame({"dataset": ["MER2024", "OV-MERD+"], "expected": ["a", "b"], "hosted": ["Baidu A", "Baidu B"]})
    paper_row = {name: 100.0 for name in UNIBENCH}
    cells = agpt.table2_measured(chosen, missing, paper_row)
    row = agpt.TABLE2_ROW
    assert cells[(row, "MELD")] == 2.0
    assert isinstance(cells[(row, "MER2024")], verdicts.NotRun) and "Baidu A" in cells[(row, "MER2024")].reason
    assert cells[(row, "MER2024")].kind == "data"
    # measured 0,2,3,4,5,6,7 plus the paper's 100 for the two missing columns: mean 227 / 9 = 25.22
    mean = cells[(row, "Mean")]
    assert isinstance(mean, verdicts.NotRun) and "25.22" in mean.reason and "MER2024, OV-MERD+" in mean.reason
    full = chosen.fillna(1.0)
    assert agpt.table2_measured(full, missing.iloc[:0], paper_row)[(row, "Mean")] == pytest.approx(
        full["score"].mean())


def test_ovmer_measured_gpt_column_is_not_run():
    ov = pd.DataFrame({"M1": [20.0], "M2": [25.0], "M-avg": [22.5], "n": [332]}, index=["Otter"])
    cells = agpt.ovmer_measured(ov)
    assert cells[("Otter", "M1")] == 20.0 and ("Otter", "n") not in cells
    assert cells[("Otter", "GPT")].kind == "unpublished"


def test_ovmer_offsets_separate_model_and_column_effects():
    """measured = published + model shift + column shift: the within-model column effect recovers the column
    shift relative to the M1/M2 columns, whatever the model shifts are."""
    cols = list(agpt.MAP_COLUMNS) + list(agpt.WHEEL_COLUMNS)
    published_table = pd.DataFrame(40.0, index=["a", "b", "c"], columns=cols)
    model_shift = pd.Series({"a": -1.0, "b": 0.5, "c": 2.0})
    column_shift = pd.Series({c: (0.6 if c.startswith(("W1", "W2", "W3", "W5")) else 0.0) for c in cols})
    measured = published_table.add(model_shift, axis=0).add(column_shift, axis=1)
    offsets = agpt.ovmer_offsets(measured, published_table)
    assert offsets.loc["W1 L1", "within_model"] == pytest.approx(0.6)
    assert offsets.loc["W4 L2", "within_model"] == pytest.approx(0.0)
    assert offsets.loc["W3 L2", "se"] == pytest.approx(0.0)
    assert offsets.loc["W2 L1", "mean"] == pytest.approx(0.6 + model_shift.mean())
    assert offsets.loc["M1", "n_positive"] == 2
    effects = agpt.model_effects(measured, published_table)
    assert effects.to_dict() == pytest.approx(model_shift.to_dict())


def test_synonym_run_ablation_moves_m2_not_m1(paths):
    published_table = published.load("affectgpt").table("ovmer").wide()
    ablation = agpt.synonym_run_ablation(paths["ov_mer"], paths["ov_store"], paths["wheels"], published_table,
                                         {"all 8": tuple(range(1, 9)), "run 1": (1,)})
    assert ablation.loc["all 8", "M1"] == pytest.approx(ablation.loc["run 1", "M1"])  # word forms only
    assert round(ablation.loc["all 8", "M2"], 2) == 0.11 and round(ablation.loc["run 1", "M2"], 2) == 1.18
    assert round(ablation.loc["all 8", "W5 L1"], 2) == 0.72


def test_readings_state_the_counts():
    cells = pd.DataFrame({"verdict": ["exact", "exact", "not run here"], "reproduced": [1.0, 2.0, None]})
    rules = pd.DataFrame({"best-on-test": [80.0, 60.0], "last": [78.0, 59.0], "best-mean": [79.0, 60.0]})
    text = agpt.table2_reading(cells, rules, "best-on-test")
    assert "2 of the row's 3 cells" in text and "2 exact" in text and "1.50 points" in text and "up to 2.00" in text
    assert "points per dataset" not in agpt.table2_reading(cells, rules, "last")
