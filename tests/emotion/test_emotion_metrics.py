"""Metrics on hand-made cases (compendium.emotion.metrics); every expected value is worked out in the comments."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from compendium.emotion.metrics import (
    ccc,
    ew_scores,
    f_of_averages,
    hit_rate,
    listlist_to_list,
    mer2024_ov_metric,
    mer2024_string_to_list,
    mer2025_track1_scores,
    mer2025_track4_scores,
    ov_mer_scores,
    pcc,
    rmse,
    sentiment_scores,
    sentiment_to_valence,
    set_precision_recall,
)

from .toy import WHEEL_A, toy_wheels


def test_set_precision_recall_rules():
    gt = [{"a", "b"}, {"a"}, set(), {"c"}]
    pred = [{"a"}, set(), {"a"}, {"c", "d"}]
    # sample 1: P 1, R 1/2; sample 2: empty pred -> 0, 0; sample 3: empty gt -> skipped; sample 4: P 1/2, R 1
    p, r, n = set_precision_recall(gt, pred)
    assert (p, r, n) == pytest.approx((0.5, 0.5, 3))
    with pytest.raises(ValueError):
        set_precision_recall(gt, pred, skip_empty_gt=False)
    assert f_of_averages(2 / 3, 1 / 2) == pytest.approx(4 / 7)
    assert f_of_averages(0.0, 0.0) == 0.0


def test_hit_rate_by_hand():
    w = toy_wheels()
    gt = ["happy", "sad", "sad", "neutral"]
    pred = ["[joy, calm]", "[lonely]", "[joy]", "[calm]"]
    # wheel A: happy/happy hit, sad/sad hit, sad/happy miss, neutral skipped -> 2/3 over 3 kept
    # wheel B: "happy" is not in B (skipped), negative/negative hit, negative/positive miss, neutral skipped -> 1/2
    h = hit_rate(gt, pred, w)
    assert h.per_wheel == pytest.approx((2 / 3, 1 / 2))
    assert h.kept == (3, 2)
    assert h.score == pytest.approx(7 / 12)


def test_sentiment_by_hand():
    assert [sentiment_to_valence(x) for x in ["positive", " Negative", "neutral", "mixed", "??"]] == [1, -1, 0, 0, 0]
    gt = [1.2, -0.4, 0.0, 2.0, -1.0]
    pred = ["positive", "neutral", "negative", "negative", "negative"]
    # gt 0 dropped -> y_true [T, F, T, F], y_pred [T, F, F, F] (neutral is "not positive")
    # class True: P 1, R 1/2, F1 2/3; class False: P 2/3, R 1, F1 4/5; weighted (support 2, 2) = 11/15
    s = sentiment_scores(gt, pred)
    assert s.kept == 4
    assert s.accuracy == pytest.approx(3 / 4)
    assert s.f1 == pytest.approx(11 / 15)


def test_ew_scores_by_hand():
    w = toy_wheels()
    gt = ["[happy, sad]", "[calm]", "[neutral]", "[lonely]"]
    pred = ["[joy]", "[]", "[sad]", "[sad]"]
    # wheel A: s1 P 1, R 1/2; s2 empty pred 0, 0; s3 skipped; s4 1, 1 -> P 2/3, R 1/2, F 4/7 (mean per-sample F would
    # be 5/9: F-of-averages differs)
    # wheel B: s1 gt {negative} vs {positive} 0, 0; s2 gt empty (calm not in B) skipped; s4 1, 1 -> P = R = F = 1/2
    e = ew_scores(gt, pred, w)
    assert list(e.per_wheel["kept"]) == [3, 2]
    assert e.per_wheel["f"].tolist() == pytest.approx([4 / 7, 1 / 2])
    assert e.f == pytest.approx(15 / 28)
    assert e.precision == pytest.approx(7 / 12)
    assert e.recall == pytest.approx(1 / 2)


def test_ew_scores_level2():
    w = toy_wheels(trees=(WHEEL_A,))
    # level 2: happy -> content, sad -> hurt, joy -> joyful, sadness -> hurt
    e = ew_scores(["[happy, sad]"], ["[joy, sadness]"], w, "level2")
    assert (e.precision, e.recall, e.f) == pytest.approx((1 / 2, 1 / 2, 1 / 2))


def test_ov_mer_scores_by_hand():
    w = toy_wheels()
    gt = ["[glad]", "[gladness]"]
    pred = ["[happiness]", "[glad]"]
    s = ov_mer_scores(gt, pred, w)
    # M1 (forms): s1 {glad} vs {happy} 0; s2 {glad} vs {glad} 1 -> P = R = F = 1/2
    assert s["M1"] == pytest.approx(0.5)
    # M2 (forms + synonyms): glad -> happy, gladness -> glad -> happy, happiness -> happy: both hit -> 1
    assert s["M2"] == pytest.approx(1.0)
    # wheel A: everything lands on happy (L1) / content (L2) -> 1, 1
    assert s["W1 L1"] == pytest.approx(1.0) and s["W1 L2"] == pytest.approx(1.0)
    # wheel B: "happiness" is not in B (empty pred -> 0); s2 positive/positive (L1), glad/glad (L2) -> 1/2
    assert s["W2 L1"] == pytest.approx(0.5) and s["W2 L2"] == pytest.approx(0.5)
    assert s["M-avg"] == pytest.approx(0.75)


# ----------------------------------------------------------------------------------------------------------------
# MER2024 OV metric: parsers and a tiny ov_store
# ----------------------------------------------------------------------------------------------------------------
def test_mer2024_parsers():
    assert mer2024_string_to_list("['happy', 'sad']") == ["happy", "sad"]
    assert mer2024_string_to_list("[\"don't believe\", 'doubt']") == ["don", "t believe", "doubt"]
    assert mer2024_string_to_list("[]") == []
    assert mer2024_string_to_list("") == []
    # only the first [...] is read
    assert mer2024_string_to_list("x ['a'] ['b']") == ["a"]
    assert listlist_to_list("[['joyful', 'happy'], ['sad']]") == [["joyful", "happy"], ["sad"]]


def _write_ov_store(root, gt, pred, groups):
    names = list(gt)
    pd.DataFrame({"name": names, "openset": [gt[n] for n in names]}).to_csv(root / "check-openset.csv", index=False)
    pd.DataFrame({"name": names, "openset": [pred[n] for n in names]}).to_csv(
        root / "predict-openset.csv", index=False
    )
    with zipfile.ZipFile(root / "openset-synonym.zip", "w") as zf:
        for name, answer in groups.items():
            buf = io.BytesIO()
            np.save(buf, np.array(answer))
            zf.writestr(f"openset-synonym/{name}.npy", buf.getvalue())


def test_mer2024_ov_metric_tiny(tmp_path):
    gt = {"s1": "['Happy', 'joyful', 'sad']", "s2": "[\"don't believe\", 'doubt']", "s3": "['calm']"}
    pred = {"s1": "['glad', 'angry']", "s2": "['doubt']", "s3": "[]"}
    groups = {
        "s1": "[['happy', 'joyful', 'glad'], ['sad'], ['angry']]",
        "s2": "[['don', 't believe', 'doubt']]",  # GPT saw the quirk-split words
        "s3": "[['calm']]",
    }
    _write_ov_store(tmp_path, gt, pred, groups)
    # official: s1 gt {happy, sad}, pred {happy, angry} -> 1/2, 1/2; s2 {don} vs {don} -> 1, 1; s3 empty pred 0, 0
    off = mer2024_ov_metric(tmp_path, "official")
    assert (off["accuracy"], off["recall"], off["average"], off["n"]) == pytest.approx((0.5, 0.5, 0.5, 3))
    # literal: s2 gt {"don't believe", don} vs {don} -> P 1, R 1/2; so recall 1/3, average 5/12
    lit = mer2024_ov_metric(tmp_path, "literal")
    assert (lit["accuracy"], lit["recall"], lit["average"]) == pytest.approx((0.5, 1 / 3, 5 / 12))
    with pytest.raises(ValueError):
        mer2024_ov_metric(tmp_path, "other")


# ----------------------------------------------------------------------------------------------------------------
# MER2025 tracks 1 and 4
# ----------------------------------------------------------------------------------------------------------------
def test_mer2025_track1_by_hand():
    s = mer2025_track1_scores(["happy", "sad", "happy", "angry"], ["happy", "happy", "happy", "angry"])
    # angry F1 1 (support 1); happy P 2/3 R 1 F1 4/5 (support 2); sad F1 0 (support 1) -> WAF (1 + 8/5 + 0)/4
    assert s["accuracy"] == pytest.approx(3 / 4)
    assert s["waf"] == pytest.approx(0.65)


def test_mer2025_track4_by_hand():
    t, p = [1, 2, 3, 4], [1, 2, 3, 5]
    # errors (0, 0, 0, 1): RMSE 1/2; deviations t (-1.5, -.5, .5, 1.5), p (-1.75, -.75, .25, 2.25):
    # sum of products 6.5, sum of squares 5 and 8.75 -> PCC 6.5 / sqrt(43.75);
    # CCC = 2 * 6.5/4 / (5/4 + 8.75/4 + 0.25**2) = 3.25 / 3.5 = 13/14
    assert rmse(t, p) == pytest.approx(0.5)
    assert pcc(t, p) == pytest.approx(6.5 / np.sqrt(43.75))
    assert ccc(t, p) == pytest.approx(13 / 14)
    assert ccc(t, [x + 1 for x in t]) == pytest.approx(2 * 1.25 / (2.5 + 1))  # a shift lowers CCC, not PCC
    table = mer2025_track4_scores(np.c_[t, t], np.c_[p, t], traits=["O", "C"])
    assert table["trait"].tolist() == ["O", "C", "mean"]
    assert table.loc[1, "ccc"] == pytest.approx(1.0)
    assert table.loc[2, "rmse"] == pytest.approx(0.25)
