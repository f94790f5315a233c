"""MER2025 (compendium.emotion.mer2025.experiments): the track-1 baseline model and protocol, MER-FG / MER-DES glue,
loaders.

Every expected value is worked out by hand in the comments."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch

from compendium.emotion.mer2025 import experiments as m
from compendium.emotion.mer2025.model import AttentionFusion, MLPEncoder

from .toy import toy_wheels


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models on a shared 2-core machine: one intra-op thread is many times faster than two.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_fusion_weights_are_raw_not_softmax():
    torch.manual_seed(0)
    model = AttentionFusion([3, 3, 3], hidden_dim=4, dropout=0.0)
    # Force fc_att to output the constant weights (2, -1, 0.5): a softmax could never give a negative weight.
    with torch.no_grad():
        model.fc_att.weight.zero_()
        model.fc_att.bias.copy_(torch.tensor([2.0, -1.0, 0.5]))
    model.eval()
    x = [torch.randn(5, 3) for _ in range(3)]
    fused, logits, weights = model(x)
    h = [getattr(model, f"encoder{i}")(x[i]) for i in range(3)]
    assert torch.allclose(weights, torch.tensor([2.0, -1.0, 0.5]).expand(5, 3))
    assert torch.allclose(fused, 2 * h[0] - h[1] + 0.5 * h[2], atol=1e-6)
    assert fused.shape == (5, 4) and logits.shape == (5, 6)
    assert model.fc_out_2 is None  # no valence head in 2025


def test_mlp_encoder_layout():
    enc = MLPEncoder(7, 5, dropout=0.5)
    names = [n for n, _ in enc.named_parameters()]
    assert names == ["linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias", "linear_3.weight",
                     "linear_3.bias"]
    enc.eval()
    assert (enc(torch.randn(4, 7)) >= 0).all()  # ends in ReLU


def test_official_folds():
    folds = m.official_folds(12, 5, random.Random(0))
    # floor(12 / 5) = 2 per fold, the last fold takes the remaining 4
    assert [len(e) for _, e in folds] == [2, 2, 2, 2, 4]
    evals = np.concatenate([e for _, e in folds])
    assert sorted(evals) == list(range(12))
    for train, ev in folds:
        assert set(train).isdisjoint(ev) and len(train) + len(ev) == 12
    again = m.official_folds(12, 5, random.Random(0))
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))


def test_ce_loss_is_mean_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([0, 2])
    assert m._ce_loss(logits, target).item() == pytest.approx(torch.nn.functional.cross_entropy(logits, target).item())


def test_random_config_from_grid():
    cfg = m.random_config(random.Random(3), num_epochs=7)
    assert cfg.hidden_dim in m.TUNE_GRID["hidden_dim"] and cfg.dropout in m.TUNE_GRID["dropout"]
    assert cfg.lr in m.TUNE_GRID["lr"] and cfg.num_epochs == 7
    assert m.random_config(random.Random(3)) == m.random_config(random.Random(3))


def test_cross_validate_keeps_first_best_epoch_and_averages_folds():
    data = m.synthetic_track1(120, 30, dims={"a": 6, "b": 4}, separation={"a": 4.0, "b": 3.0}, seed=1)
    assert data.synthetic and data.origin.startswith("SYNTHETIC")
    x, xt = data.inputs(["a", "b", "a"])
    res = m.cross_validate(x, data.y_train, m.Track1Config(hidden_dim=16, lr=1e-2, num_epochs=8, seed=0), xt, data.y_test)
    for fold, curve in zip(res.folds.itertuples(), res.curves):
        assert fold.best_epoch == int(np.argmax(curve))
        assert fold.eval_waf == pytest.approx(max(curve))
    assert res.cv_waf == pytest.approx(res.folds.eval_waf.mean())
    assert res.test_outputs.shape == (30, 6) and len(res.fold_test_logits) == 5
    assert np.allclose(res.test_outputs, np.mean(res.fold_test_logits, axis=0))
    assert res.test_waf == pytest.approx(res.test_scores("logits")["waf"])
    assert res.cv_waf > 0.5  # well-separated classes: far above the 1/6 chance level
    assert res.mean_weights.shape == (3,)


def test_logit_vs_probability_averaging():
    # One confident fold and three mild ones: mean logits (5, 1.5) -> class 0; mean probabilities
    # (1 + 3 * 0.119) / 4 = 0.339 for class 0 vs 0.661 for class 1 -> class 1.
    res = m.CVResult(config=m.Track1Config(), folds=pd.DataFrame(), cv_waf=0.0, cv_acc=0.0,
                     fold_test_logits=[np.array([[20.0, 0.0]])] + [np.array([[0.0, 2.0]])] * 3)
    assert res.averaged("logits").argmax(1)[0] == 0
    probs = res.averaged("probs")
    assert probs[0, 0] == pytest.approx((1 + 3 / (1 + np.exp(2))) / 4, abs=1e-6)
    assert probs.argmax(1)[0] == 1


def test_merfg_by_hand():
    w = toy_wheels()
    gt = ["[happy, sad]", "[lonely]"]
    pred = ["[joyful]", "[calm, hurt]"]
    # L1, wheel A: s1 g {happy, sad} p {happy}: P 1 R 1/2; s2 g {sad} p {happy, sad}: P 1/2 R 1 -> F 0.75
    #     wheel B: s1 g {negative} p {positive}: 0, 0; s2 g {negative} p {negative}: 1, 1 -> F 0.5   => L1 0.625
    # L2, wheel A: s1 g {content, hurt} p {joyful}: 0; s2 g {lonely} p {content, hurt}: 0 -> F 0
    #     wheel B: s1 g {hurt} p {glad}: 0; s2 g {hurt} p {hurt}: 1 -> F 0.5                  => L2 0.25
    s = m.merfg_scores(gt, pred, w)
    assert s["L1"] == pytest.approx(0.625)
    assert s["L2"] == pytest.approx(0.25)
    assert s["mean"] == pytest.approx(0.4375)


def test_waf_glue():
    s = m.waf(["happy", "sad", "sad", "neutral"], ["happy", "sad", "happy", "neutral"])
    # F1: happy 2/3 (support 1), sad 2/3 (support 2), neutral 1 (support 1) -> (2/3 + 4/3 + 1) / 4 = 0.75
    assert s["waf"] == pytest.approx(0.75) and s["accuracy"] == pytest.approx(0.75)


def test_merpr_glue():
    t = m.merpr_scores([[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]], [[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]], ["O", "C"])
    assert list(t.trait) == ["O", "C", "mean"]
    assert np.allclose(t[["rmse", "pcc", "ccc"]].to_numpy(), [[0, 1, 1]] * 3)


def test_postprocess_and_extract_openset():
    assert m.postprocess_qwen("  Output: [happy, sad]\n") == "[happy, sad]"
    assert m.postprocess_qwen("输出：[平静]") == "[平静]"
    assert m.postprocess_qwen("[a,\nb]") == "[a,b]"
    seen = []

    def chat(messages):
        seen.append(messages)
        return "Output: [calm]"

    out = m.extract_openset(["He smiles."], chat)
    assert out == ["[calm]"]
    assert seen[0] == [{"role": "user", "content": m.OPENSET_PROMPT.format(reason="He smiles.")}]
    assert seen[0][0]["content"].endswith("Input: He smiles.; Output: ")


def test_goemotions_as_mer(shared_data):
    df = m.goemotions_as_mer(shared_data / "text/goemotions/ekman", "dev")
    assert set(df.label) == set(m.EMOTIONS)
    assert (df.y == df.label.map({e: i for i, e in enumerate(m.EMOTIONS)})).all()
    assert "disgust" not in set(df.ekman)
    small = m.goemotions_as_mer(shared_data / "text/goemotions/ekman", "dev", limit=300, seed=0)
    assert abs(len(small) - 300) <= 6 and set(small.id) <= set(df.id)


def test_load_mer2025_track1_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_TRUST_PICKLE", "1")  # the label file below is written by this test
    with pytest.raises(FileNotFoundError, match="gated"):
        m.load_mer2025_track1(tmp_path / "absent", {"audio": "x"})
    train = {"s1": {"emo": "happy", "val": -10}, "s2": {"emo": "worried", "val": -10}}
    test = {"t1": {"emo": "neutral", "val": -10}}
    np.savez(tmp_path / "track1_label_6way.npz", train_corpus=np.array(train, dtype=object),
             test1_corpus=np.array(test, dtype=object))
    feat = tmp_path / "features" / "toy-UTT"
    feat.mkdir(parents=True)
    np.save(feat / "s1.npy", np.array([[1.0, 2.0], [3.0, 4.0]]))  # frame-level: mean over frames -> (2, 3)
    np.save(feat / "s2.npy", np.array([5.0, 6.0]))
    np.save(feat / "t1.npy", np.array([[0.0, 1.0]]))
    pd.DataFrame({"name": ["t1"], "discrete": ["sad"]}).to_csv(tmp_path / "test.csv", index=False)
    data = m.load_mer2025_track1(tmp_path, {"audio": "toy"}, tmp_path / "test.csv")
    assert np.allclose(data.train["audio"], [[2.0, 3.0], [5.0, 6.0]])
    assert list(data.y_train) == [2, 4] and list(data.y_test) == [3]
    path = m.write_submission(data.test_names, np.array([[0, 0, 0, 1.0, 0, 0]]), tmp_path / "sub.csv")
    assert pd.read_csv(path).to_dict("records") == [{"name": "t1", "discrete": "sad"}]


def test_load_descriptions_pairs_with_published_extraction(shared_data):
    # MER-DES on the OV-MER release: the free-text descriptions and Qwen2.5's label lists cover the same 332 samples
    from compendium.emotion.unibench import load_descriptions, load_openset_npz

    base = shared_data / "emotion/ov-mer/output/results-ovmerd/Chat-UniVi"
    desc = load_descriptions(base / "output-reason-7b-nosubtitle-addsub-eng.npz")
    lists = load_openset_npz(base / "output-reason-7b-nosubtitle-addsub-eng-openset.npz")
    assert len(desc) == 332 and set(desc) == set(lists)
    assert all(isinstance(v, str) and v for v in desc.values())


def test_goemotions_mapping_is_declared():
    # the substitute's class mapping the chapter prints: fear stands in for worried, disgust has no MER class
    assert m.GOEMOTIONS_EKMAN_TO_MER["fear"] == "worried" and "disgust" not in m.GOEMOTIONS_EKMAN_TO_MER
    assert sorted(m.GOEMOTIONS_EKMAN_TO_MER.values()) == sorted(m.EMOTIONS)


# ---------------------------------------------------------------------------------------------- MER-FG, derived
def _ovmer_table(rows):
    from compendium.published import PublishedTable

    cells = [{"row": model, "column": f"W{k} L{lv}", "value": value + k + (10 if lv == 2 else 0)}
             for model, value in rows.items() for k in range(1, 6) for lv in (1, 2)]
    return PublishedTable(paper="affectgpt", id="ovmer", title="t", source="arXiv 2410.01495, table", cells=cells,
                          decimals=2, basis="paper")


def test_merfg_from_wheel_cells_and_published_derived():
    # W k L1 = v + k (mean v + 3), W k L2 = v + k + 10 (mean v + 13): L1 43, L2 53, mean 48 for v = 40
    table = _ovmer_table({"Otter": 40.0, "Qwen-Audio": 30.0})
    assert m.merfg_from_wheel_cells(table.wide().loc["Otter"]) == {"L1": 43.0, "L2": 53.0, "mean": 48.0}
    derived = m.merfg_published(table, ["Otter"])
    assert derived.basis == "derived" and derived.basis_note and derived.counted_in == m.MERFG_COUNTED_IN
    assert derived.tolerance is None and "arXiv 2410.01495" in derived.source
    assert [c["value"] for c in derived.cells] == [43.0, 53.0, 48.0]
    from compendium import verdicts

    cells = verdicts.compare(derived, {("Otter", "L1"): 43.0, ("Otter", "L2"): 53.5}, scale="paper")
    assert cells.verdict.tolist() == ["exact", "differs", "not run here"]
    assert not cells.counted.any() and (cells.counted_in == "affectgpt/ovmer").all()


def test_merfg_measured_from_scores():
    scores = pd.DataFrame({f"W{k} L{lv}": [float(k + lv)] for k in range(1, 6) for lv in (1, 2)}, index=["Otter"])
    assert m.merfg_measured(scores) == {("Otter", "L1"): 4.0, ("Otter", "L2"): 5.0, ("Otter", "mean"): 4.5}


# ---------------------------------------------------------------------------------------------- MER-DES extractor
def test_emotion_lexicon_scopes():
    wheels = toy_wheels()
    lexicon = m.emotion_lexicon(wheels)
    # forms whose name is a wheel word; "blue" is a name but no wheel word
    assert {"happiness", "joy", "sadness", "gladness", "hurt"} <= set(lexicon) and "blue" not in lexicon
    assert "blue" in m.emotion_lexicon(wheels, "all")
    with pytest.raises(ValueError, match="scope"):
        m.emotion_lexicon(wheels, "some")


def test_extract_wheel_labels_rules():
    lexicon = {"happy": 1, "sad": 1, "at ease": 2, "ease": 1, "calm": 1}
    text = ("The room is calm and bright. She seems happy, not sad, and so at ease. "
            "He appears happy again; she doesn't feel calm")
    # sentence 1 has no cue word (scene); "sad" is negated; "at ease" beats "ease"; "happy" once; "n't" negates calm
    assert m.extract_wheel_labels(text, lexicon) == ["happy", "at ease"]
    # without cue filtering the scene sentence counts too; a wider window also drops "at ease" ("not sad and so")
    assert m.extract_wheel_labels(text, lexicon, cue_stems=()) == ["calm", "happy", "at ease"]
    assert m.extract_wheel_labels(text, lexicon, negation_window=4) == ["happy"]
    assert m.extract_wheel_labels("", lexicon) == [] and m.extract_wheel_labels("She seems fine.", {}) == []
    assert m.as_list_string(["happy", "at ease"]) == "[happy, at ease]" and m.as_list_string([]) == "[]"


def test_rank_agreement():
    assert m.rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])["rho"] == pytest.approx(1.0)
    back = m.rank_agreement([1, 2, 3, 4], [4, 3, 2, 1])
    assert back["rho"] == pytest.approx(-1.0) and back["n"] == 4
    with pytest.raises(ValueError, match="same length"):
        m.rank_agreement([1, 2], [1, 2])


def test_merdes_lexicon_scores_on_published_descriptions(shared_data):
    from compendium.emotion.wheel import EmotionWheels

    e = shared_data / "emotion"
    wheels = EmotionWheels.from_dir(e / "affectgpt/emotion_wheel")
    check = pd.read_csv(e / "mertools/MER2024/ov_store/check-openset.csv", dtype=str, keep_default_na=False)
    labels = dict(zip(check["name"], check["openset"]))
    table = m.merdes_lexicon_scores(e / "ov-mer/output", labels, wheels, ["Otter"])
    row = table.loc["Otter"]
    assert row["n"] == 332 and 0 <= row["empty"] < 0.1
    # the Qwen columns are MER-FG of the published extraction (the AffectGPT page's OV-MER route gives 42.61)
    assert round(row["Qwen mean"], 2) == 42.61
    assert round(row["lexicon mean"], 2) == 41.97


def test_readings_follow_the_numbers():
    assert "-0.15 points" in m.parser_reading({"average": 0.5397841}, {"average": 0.5382781})
    cells = pd.DataFrame({"column": ["L1", "mean", "mean", "mean"], "published": [1.0, 1.0, 2.0, 3.0],
                          "reproduced": [1.0, 1.5, 2.5, 3.5], "difference": [0.0, 0.5, 0.5, 0.5],
                          "verdict": ["exact", "differs", "differs", "differs"]})
    text = m.merfg_reading(cells)
    assert "4 MER-FG cells recomputed: 1 exact, 3 differ" in text and "Spearman 1.00" in text
    qwen = [30.0, 35.0, 40.0, 45.0, 50.0, 55.0]
    good = pd.DataFrame({"Qwen mean": qwen, "lexicon mean": [31.0, 32.0, 33.0, 34.0, 35.0, 36.0],
                         "agreement": 60.0})
    bad = good.assign(**{"lexicon mean": [36.0, 31.0, 35.0, 32.0, 34.0, 33.0]})
    text = m.merdes_reading(good, bad)
    assert "Spearman 1.00" in text and "below 0.05" in text and "narrower spread" in text
    text = m.merdes_reading(bad.assign(**{"lexicon mean": [36.0, 31.0, 35.0, 32.0, 34.0, 80.0]}), bad)
    assert "not distinguishable from chance" in text and "narrower spread" not in text


# ---------------------------------------------------------------------------------------------- the chapter's runs
def test_track1_settings_follow_the_modalities():
    data = m.synthetic_track1(30, 12, seed=0)
    assert list(m.track1_settings(data)) == ["A", "T", "V", "AVT"]
    text_only = m.Track1Data(train={"text": data.train["text"]}, y_train=data.y_train, test={}, y_test=None,
                             origin="toy")
    assert m.track1_settings(text_only) == {"T": ("text", "text", "text")}


def test_goemotions_track1_encodes_both_splits(shared_data):
    calls = []
    encode = lambda texts: calls.append(len(texts)) or np.ones((len(texts), 4))  # noqa: E731 - a stand-in encoder
    data = m.goemotions_track1(shared_data / "text/goemotions/ekman", 60, 30, 0, encode)
    assert data.train["text"].shape == (len(data.y_train), 4) and data.test["text"].shape[0] == len(data.y_test)
    assert calls == [len(data.y_train), len(data.y_test)] and data.origin.startswith("SUBSTITUTE")
    assert abs(len(data.y_train) - 60) <= 6 and set(data.y_train) <= set(range(6))


def test_random_search_rows_and_seeds():
    data = m.synthetic_track1(60, 24, dims={"audio": 4, "text": 4, "video": 4}, seed=1)
    lines = []
    runs, results = m.random_search(data, {"T": ("text",) * 3, "AVT": ("audio", "text", "video")}, 2, 2, 5,
                                    log=lines.append)
    assert list(zip(runs.run, runs.setting)) == [(0, "T"), (0, "AVT"), (1, "T"), (1, "AVT")]
    assert set(results) == {(0, "T"), (0, "AVT"), (1, "T"), (1, "AVT")} and len(lines) == 4
    assert results[(1, "T")].config.seed == 6 and results[(0, "AVT")].config.num_epochs == 2
    # the same draws as random_config on a Random(seed) stream
    first = m.random_config(random.Random(5))
    assert (runs.hidden[0], runs.dropout[0], runs.lr[0]) == (first.hidden_dim, first.dropout, first.lr)
    assert {"test WAF (logit avg)", "test WAF (prob avg)"} <= set(runs.columns)
    assert runs["CV WAF"].between(0, 100).all()
