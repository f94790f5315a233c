"""Real-data checks: AffectGPT Table 2 cells, MER2024-OV and the OV-MER baseline table from published files.

Data: ``COMPENDIUM_DATA`` (``shared_data`` fixture), layout in ``../shared/data/SOURCES.md``. Published values come from
``compendium.published`` (``affectgpt.yaml``: arXiv 2501.16566 Table 2, transcribed from
``zeroQiaoba/AffectGPT@d961cab04ab2903fefb22a641331e1242949b15d`` ``AffectGPT/assert/main-result.png``); the recomputed
values quoted below are from ``../shared/research/emotion.md`` sections 1.4, 2.4 and 2.5.
"""

from __future__ import annotations

import pandas as pd
import pytest

from compendium import published
from compendium.emotion.affectgpt import (
    OV_MER_MODELS,
    best_checkpoints,
    find_checkpoints,
    load_merbench_labels,
    missing_labels,
    score_affectgpt,
    score_affectgpt_on_ovmerd,
    score_ov_mer_baselines,
)
from compendium.emotion.metrics import ew_scores, mer2024_ov_metric
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
