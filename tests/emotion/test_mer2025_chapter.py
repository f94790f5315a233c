"""The MER2025 chapter's steps (``compendium.emotion.mer2025.chapter``) on small hand-made inputs.

The published tables are the real ``mer2025.yaml`` / ``affectgpt.yaml`` (they ship with the package); data
folders, label lists, descriptions and the language model are made here, so no download is needed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from compendium import published
from compendium.emotion.mer2025 import chapter
from compendium.emotion.mer2025 import experiments as mer
from compendium.emotion.mer2025.model import AttentionFusion

from .toy import WHEEL_A, toy_wheels

matplotlib.use("Agg")
WHEEL_COLS = [f"W{k} L{lv}" for k in range(1, 6) for lv in (1, 2)]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def paper():
    return published.load("mer2025")


def test_setup_checks_features_and_resolves_folders(monkeypatch):
    monkeypatch.setattr(chapter, "fetch", lambda key, path=None: Path(key) if path is None else Path(path))
    monkeypatch.setattr(chapter.EmotionWheels, "from_dir", classmethod(lambda cls, d: ("wheels of", d)))
    torch.set_num_threads(2)
    paths, wheels, paper = chapter.setup("", "synthetic")
    assert torch.get_num_threads() == 1
    assert set(paths) == {"wheels", "ov_store", "ovmer"} and wheels == ("wheels of", Path(chapter.DATA_KEYS["wheels"]))
    assert paper.table("semi") is not None
    paths, _, _ = chapter.setup("/root", "goemotions", threads=None)
    assert paths["ekman"] == Path("/root") / chapter.DATA_KEYS["ekman"]
    with pytest.raises(ValueError, match="features must be"):
        chapter.setup("", "mp4")


def test_hand_checks():
    assert chapter.hand_check_waf() == "WAF 0.7500, accuracy 0.7500"
    table = chapter.merpr_example()
    assert table.loc[0, "rmse"] == pytest.approx(np.sqrt(0.125))


def test_fusion_demo_is_seeded_and_describes_the_model():
    text = chapter.fusion_demo(0, dims=(3, 2, 2), hidden_dim=4, batch=4)
    assert text == chapter.fusion_demo(0, dims=(3, 2, 2), hidden_dim=4, batch=4)
    n = sum(p.numel() for p in AttentionFusion([3, 2, 2], hidden_dim=4).parameters())
    lines = text.splitlines()
    assert lines[0].startswith(f"parameters: {n:,}  (")
    assert lines[1] == "fused (4, 4), logits (4, 6), raw weights (4, 3)"
    assert lines[2] == "raw weights of 4 random inputs (rows do not sum to 1):" and len(lines) == 7


def test_track1_data_sources(monkeypatch):
    synthetic = chapter.track1_data("synthetic", {}, num_train=12, num_test=6, seed=3)
    assert synthetic.synthetic and np.array_equal(synthetic.y_train, mer.synthetic_track1(12, 6, seed=3).y_train)

    seen = {}
    monkeypatch.setattr(chapter.mer, "load_mer2025_track1", lambda root, feats, csv: seen.update(mer=(root, feats, csv)))
    chapter.track1_data("mer2025", {}, num_train=1, num_test=1, seed=0, feature_names={"audio": "a"})
    assert seen["mer"] == ("(not given)", {"audio": "a"}, None)
    chapter.track1_data("mer2025", {}, num_train=1, num_test=1, seed=0, mer2025_root="/m", test_labels_csv="t.csv")
    assert seen["mer"] == ("/m", {}, "t.csv")

    def fake_goemotions(ekman, num_train, num_test, seed, encode):
        seen["go"] = (ekman, num_train, num_test, seed, encode(["a", "b"]))
        return "goemotions data"

    monkeypatch.setattr(chapter.mer, "goemotions_track1", fake_goemotions)
    logged = []
    data = chapter.track1_data("goemotions", {"ekman": Path("e")}, num_train=5, num_test=2, seed=1,
                               encode=lambda texts: np.ones((len(texts), 2)), log=logged.append)
    assert data == "goemotions data" and seen["go"][:4] == (Path("e"), 5, 2, 1) and seen["go"][4].shape == (2, 2)
    assert len(logged) == 1 and logged[0].startswith("MiniLM sentence embeddings in ")
    assert chapter.track1_data("goemotions", {"ekman": Path("e")}, num_train=5, num_test=2, seed=1,
                               encode=lambda t: np.ones((len(t), 2)), log=None) == "goemotions data"


def test_minilm_keeps_the_sentence_embeddings(monkeypatch):
    from compendium.emotion import backbones

    calls = []

    def fake(texts, tokens=True):
        calls.append(tokens)
        return {"sentence": np.full((len(texts), 3), 7.0), "mask": None}

    monkeypatch.setattr(backbones, "encode_texts_cached", fake)
    assert chapter._minilm(["x", "y"]).shape == (2, 3) and calls == [False]


def test_describe_track1():
    data = mer.Track1Data(train={"text": np.zeros((3, 2))}, y_train=np.array([2, 2, 0]), test={}, y_test=None,
                          origin="HAND-MADE")
    assert chapter.describe_track1(data, {"T": ("text",) * 3}) == (
        "HAND-MADE\ntrain labels: {'happy': 2, 'neutral': 1}\nsettings: T")


@pytest.fixture(scope="module")
def searched():
    data = mer.synthetic_track1(30, 10, seed=0)
    settings = {"T": ("text",) * 3, "AVT": ("audio", "text", "video")}
    logged = []
    runs, results = chapter.random_search(data, settings, num_runs=1, num_epochs=1, seed=0, log=logged.append)
    return data, settings, runs, results, logged


def test_random_search_and_the_best_run(searched):
    data, settings, runs, results, logged = searched
    assert len(runs) == 2 and logged[-1].startswith("2 cross-validated runs in ") and len(logged) == 3
    key, best = chapter.best_run(results)
    assert best.cv_waf == max(r.cv_waf for r in results.values()) and results[key] is best
    avt_key, _ = chapter.best_run(results, "AVT")
    assert avt_key[1] == "AVT"
    w = best.mean_weights
    assert chapter.best_weights(results) == f"raw weights of the best run: {np.round(w, 3)} sum {round(float(w.sum()), 3)}"
    quiet = chapter.random_search(data, settings, num_runs=1, num_epochs=1, seed=0, log=None)
    assert quiet[0].equals(runs)  # seeded: the same runs, and nothing logged


def test_plot_runs_both_panels(searched):
    _, settings, _, results, _ = searched
    fig = chapter.plot_runs(results, settings)
    assert fig.axes[1].get_title() == "raw fusion weights (mean over validation samples)"
    only_text = {k: v for k, v in results.items() if k[1] == "T"}
    fig = chapter.plot_runs(only_text, {"T": ("text",) * 3})
    assert fig.axes[1].get_title() == "raw weights of the three copies of one feature"
    assert len(fig.axes[0].lines) == len(chapter.best_run(only_text)[1].curves)


def test_compare_semi_measures_only_real_features_with_labels(searched, paper):
    data, settings, runs, results, _ = searched
    cells = chapter.compare_semi(paper, data, results, settings, "synthetic")
    assert cells.reproduced.isna().all() and set(cells.verdict) == {"not run here"}
    assert set(cells.scale) == {"substitute"} and "this run used synthetic gaussian features" in cells.reason.iloc[0]
    real = chapter.compare_semi(paper, data, results, settings, "mer2025")
    row = real[real.row == "official baseline (attention fusion)"]
    assert row.reproduced.iloc[0] == pytest.approx(100 * chapter.best_run(results, "AVT")[1].test_waf)
    assert set(real.scale) == {"paper"}
    withheld = chapter.compare_semi(paper, mer.Track1Data(data.train, data.y_train, data.test, None, "MER2025"),
                                    results, settings, "mer2025")
    assert withheld.reproduced.isna().all() and "withheld" in withheld.reason.iloc[0]


def test_side_table_and_submission(searched, tmp_path):
    data, _, runs, results, _ = searched
    side = chapter.side_table(runs, data)
    assert list(side.index) == ["AVT", "T"] and side.loc["T", "CV WAF"] == round(runs[runs.setting == "T"]["CV WAF"].max(), 2)
    assert set(side["data"]) == {data.origin.split(";")[0]}
    assert chapter.write_submission("synthetic", data, results, str(tmp_path / "s.csv")) is None
    assert chapter.write_submission("mer2025", data, results, "") is None
    named = mer.Track1Data(data.train, data.y_train, data.test, data.y_test, data.origin,
                           test_names=[f"s{i}" for i in range(10)])
    logged = []
    path = chapter.write_submission("mer2025", named, results, str(tmp_path / "s.csv"), log=logged.append)
    sub = pd.read_csv(path)
    assert list(sub.name) == named.test_names and set(sub.discrete) <= set(mer.EMOTIONS)
    assert logged == [f"submission written: {path}"]


def test_compare_mer2024_ov(monkeypatch, paper):
    frame = paper.table("mer2024_ov").frame().set_index("column")["value"]
    exact = {key: float(frame[col]) for key, col in chapter.MER2024_OV_COLUMNS.items()}
    literal = {k: v + 0.001 for k, v in exact.items()}
    monkeypatch.setattr(chapter, "mer2024_ov_metric", lambda store, parser: exact if parser == "official" else literal)
    official, lit, cells = chapter.compare_mer2024_ov(paper, "store")
    assert official is exact and lit is literal and (cells.verdict == "exact").all() and len(cells) == 3
    text = chapter.parser_lines(exact, literal).splitlines()
    assert text[0] == f"official parser: {exact['accuracy']:.7f} {exact['recall']:.7f} {exact['average']:.7f}"
    assert text[1].startswith("literal parser:  ")
    monkeypatch.setattr(chapter, "mer2024_ov_metric", lambda store, parser: literal)
    with pytest.raises(AssertionError, match="exactly"):
        chapter.compare_mer2024_ov(paper, "store")


def test_merfg_against_the_ovmer_table():
    ov_table = published.load("affectgpt").table("ovmer")
    scores = ov_table.wide().loc[["Otter", "Chat-UniVi"], WHEEL_COLS].astype(float)
    cells = chapter.compare_merfg(scores)
    assert len(cells) == 6 and cells.difference.abs().max() < 1e-9
    assert set(cells.rule) == {"compendium.emotion.mer2025.experiments.merfg_measured"}
    assert chapter.compare_merfg(scores, ov_table).equals(cells)
    wide = chapter.merfg_wide(cells)
    assert list(wide.index) == ["Otter", "Chat-UniVi"] and wide[("difference", "L1")].abs().max() == 0


@pytest.fixture()
def ovmer(tmp_path):
    """A MER2024 ov_store with three labelled samples and Chat-UniVi's published lists for two of them."""
    store, out = tmp_path / "store", tmp_path / "ovmer"
    store.mkdir()
    pd.DataFrame({"name": ["a", "b", "c"], "openset": ["[happy]", "[sad]", "[calm]"]}).to_csv(
        store / "check-openset.csv", index=False)
    base = out / chapter.CHAT_UNIVI
    base.parent.mkdir(parents=True)
    np.savez(f"{base}-openset.npz", filenames=np.array(["b", "a"]), fileitems=np.array(["[lonely]", "[joyful]"]))
    return store, out


def test_ovmerd_reference_and_the_direct_check(ovmer):
    ref = chapter.ovmerd_reference(*ovmer)
    assert ref.labels == {"a": "[happy]", "b": "[sad]", "c": "[calm]"} and ref.names == ["a", "b"]
    assert ref.chat_univi == {"b": "[lonely]", "a": "[joyful]"}
    wheels = toy_wheels((WHEEL_A,) * 5)
    direct = mer.merfg_scores(["[happy]", "[sad]"], ["[joyful]", "[lonely]"], wheels)
    scores = pd.DataFrame({c: [100 * direct["L1" if c.endswith("L1") else "L2"]] for c in WHEEL_COLS}, index=["Chat-UniVi"])
    assert chapter.merfg_direct_check(ref, wheels, scores) == (
        f"Chat-UniVi MER-FG: L1 {100 * direct['L1']:.2f}, L2 {100 * direct['L2']:.2f}, mean {100 * direct['mean']:.2f}")
    with pytest.raises(AssertionError, match="routes differ"):
        chapter.merfg_direct_check(ref, wheels, scores + 1.0)


def test_merdes_scores_example_and_figure(monkeypatch, ovmer):
    ref = chapter.ovmerd_reference(*ovmer)
    wheels = toy_wheels((WHEEL_A,) * 5)

    def fake_scores(ovmer_dir, labels, w, models, scope):
        return pd.DataFrame({"Qwen mean": [10.0, 20.0, 30.0], "lexicon mean": [12.0, 18.0, 35.0] if scope == "wheel"
                             else [30.0, 20.0, 10.0], "n": [2, 2, 2]}, index=models)

    monkeypatch.setattr(chapter.mer, "merdes_lexicon_scores", fake_scores)
    logged = []
    merdes = chapter.merdes_scores(ovmer[1], ref, wheels, ["m1", "m2", "m3"], log=logged.append)
    assert set(merdes) == {"wheel", "all"} and logged[0].startswith("12 extractions (two lexicons) in ")
    assert chapter.merdes_scores(ovmer[1], ref, wheels, ["m1", "m2", "m3"], scopes=("wheel",), log=None)["wheel"].equals(
        merdes["wheel"])
    one = []
    chapter.merdes_scores(ovmer[1], ref, wheels, ["m1", "m2", "m3"], scopes=("wheel",), log=one.append)
    assert one[0].startswith("6 extractions (1 lexicons)")

    descriptions = {"a": "He appears joyful and calm.", "b": "She seems lonely."}
    monkeypatch.setattr(chapter.ub, "load_descriptions", lambda path: descriptions)
    line = chapter.merdes_example(ovmer[1], ref, wheels)
    expected = mer.extract_wheel_labels(descriptions["a"], mer.emotion_lexicon(wheels))
    assert line == f"Chat-UniVi, a → lexicon: {expected} | Qwen: [joyful] | truth: [happy]"

    fig = chapter.plot_merdes(merdes)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["lexicon: wheel (Spearman 1.00)", "lexicon: all (Spearman -1.00)"]

    texts = chapter.summary_texts(mer.Track1Data({}, np.array([]), {}, None, "SYNTHETIC x; more"), merdes)
    assert "the track-1 baseline on SYNTHETIC x;" in texts["ran_here"]
    assert "Spearman 1.00 with the published Qwen extraction over 3 models" in texts["ran_here"]
    assert set(texts) == {"paper_claim", "ran_here", "not_reproduced"}


def test_llm_extraction(monkeypatch, ovmer):
    ref = chapter.ovmerd_reference(*ovmer)
    wheels = toy_wheels((WHEEL_A,) * 5)
    logged = []
    assert chapter.llm_extraction(ovmer[1], ref, wheels, "", 2, 8, 0, log=logged.append) is None
    assert logged == ["LLM extraction not run: it needs des_model (a local Qwen2.5-7B-Instruct folder, gpu profile)"]

    monkeypatch.setattr(chapter.ub, "load_descriptions", lambda path: {"a": "joyful text", "b": "lonely", "z": "x"})
    calls = []

    class FakeLM:
        name = "a fake chat model with a long name"

        def chat(self, messages, **kw):
            calls.append(kw)
            return "Output: [happy]" if "joyful" in messages[0]["content"] else "[]"

    table = chapter.llm_extraction(ovmer[1], ref, wheels, "/model", 5, 8, 3, load=lambda path: FakeLM())
    assert list(table.index) == ["Qwen2.5-7B extraction (published)", "a fake chat model with a extraction"]
    assert calls == [dict(max_new_tokens=8, seed=3, **chapter.QWEN_SAMPLING)] * 2
    ours = mer.merfg_scores(["[happy]", "[sad]"], ["[happy]", "[]"], wheels)
    assert table.iloc[1]["L1"] == round(100 * ours["L1"], 2)

    from compendium.emotion import backbones

    monkeypatch.setattr(backbones, "load_chat_lm", lambda path: FakeLM())
    assert chapter.llm_extraction(ovmer[1], ref, wheels, "/model", 1, 8, 3).shape == (2, 3)
