"""EIBench (compendium.emotion.eibench.experiments): the judge scorer as written and corrected, human evaluation,
statistics.

Expected values are worked out in the comments; the real-data tests pin the counts of the published files."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from compendium.emotion.eibench import experiments as e

HAPPY = "CAER-S/train/Happy/0001.png"
HAPPY2 = "CAER-S/train/Happy/0002.png"
SAD = "EmoSet-118k/image/sadness/sadness_00001.jpg"


def test_split_triggers():
    assert e.split_triggers("1. Mechanical issues.\n2. Sense of defeat.\n3. A difficult situation") == [
        "Mechanical issues", "Sense of defeat", "A difficult situation"]
    assert e.split_triggers("") == []


def test_categories_official_vs_corrected():
    assert e.category_official(HAPPY) == e.category_corrected(HAPPY) == "happy"
    assert e.category_official(SAD) == e.category_corrected(SAD) == "sad"
    # A file name containing "sad" in the excitement folder: the substring rule tests "sad" before "excit".
    odd = "EmoSet-118k/image/excitement/sad_dog.jpg"
    assert e.category_official(odd) == "sad" and e.category_corrected(odd) == "excitement"
    assert e.category_official("CAER-S/train/Surprise/1.png") is None


def test_parsers():
    assert e.parse_score_official("Assessment {score: 3/5} because") == (3, 5)
    for text in ("{Score: 3/5}", "{score:3/5}", "{score: 3 / 5}", "score: 3/5"):
        assert e.parse_score_official(text) is None
    assert e.parse_score_corrected("{Score: 3/5}") == (3, 5)
    assert e.parse_score_corrected("{ score :3 / 5 }") == (3, 5)
    assert e.parse_score_corrected("{score: 1/0}") is None


def test_retry_loop_quirk():
    # "{Score: ...}" passes the lower-cased retry test on the first try ...
    reply, tries = e.judge_with_retries(lambda attempt: "{Score: 3/5}")
    assert tries == 1 and reply == "{Score: 3/5}"
    # ... and then fails the case-sensitive regex.
    assert e.parse_score_official(reply) is None
    calls = []
    reply, tries = e.judge_with_retries(lambda attempt: calls.append(attempt) or "no format")
    assert (reply, tries, calls) == ("{score: 0/1}", 5, [0, 1, 2, 3, 4])


def test_official_scores_reuse_previous_value():
    judged = [(HAPPY, "{score: 2/4}"), (HAPPY2, "I cannot say."), (SAD, "{score: 6/5}")]
    s = e.official_scores(judged)
    # overall over the parsed replies only: (0.5 + 1.2) / 2; 6/5 is not clamped
    assert s.overall == pytest.approx(0.85)
    # the failed reply re-uses the previous value 0.5 in the happy list
    assert s.per_category["happy"] == pytest.approx(0.5) and s.category_counts["happy"] == 2
    assert s.per_category["sad"] == pytest.approx(1.2)
    assert (s.n_scored, s.n_failed) == (2, 1)
    with pytest.raises(UnboundLocalError):
        e.official_scores([(HAPPY, "nothing"), (SAD, "{score: 1/2}")])


def test_corrected_scores():
    judged = [(HAPPY, "{score: 2/4}"), (HAPPY2, "I cannot say."), (SAD, "{Score: 6/5}")]
    s = e.corrected_scores(judged)
    # 0.5 and min(6, 5) / 5 = 1.0; the failure is excluded everywhere
    assert s.overall == pytest.approx(0.75)
    assert s.per_category["happy"] == pytest.approx(0.5) and s.category_counts["happy"] == 1
    assert s.n_failed == 1
    # with the ground-truth trigger counts as denominators: 2/8 and min(6, 10)/10
    s2 = e.corrected_scores(judged, n_truth={HAPPY: 8, SAD: 10})
    assert s2.overall == pytest.approx((0.25 + 0.6) / 2)
    assert math.isnan(s2.per_category["angry"])


def test_complex_judge_messages():
    one = e.complex_judge_messages("A dog barks.", ["1. The dog.\n2. Noise."])
    # one question per line (the released file): the same conversation as the complex template
    assert one == e.judge_messages("A dog barks.", "1. The dog.\n2. Noise.", complex_=True)
    two = e.complex_judge_messages("A dog barks.", ["1. The dog.", "1. Noise."])[1]["content"]
    # two questions on one line: one instruction, then the record repeated with each truth
    assert two.count("Your task is to assess") == 1 and two.count("Record of comprehension:\nA dog barks..") == 2
    assert two.endswith("Ground Truth:\n1. Noise.\n\nYour Assessment:")
    assert "Ground Truth:\n1. The dog.\n\nYour Assessment: The record is below:" in two


def test_official_complex_scores():
    replies = ["{score: 1/4} one of four", "{Score: 3/4}", "{score: 6/5}", "no format"]
    s = e.official_complex_scores(replies)
    # parsed: 1/4 and 6/5 (unclamped) -> (0.25 + 1.2) / 2; the other two are only counted, never re-used
    assert s.overall == pytest.approx(0.725)
    assert (s.n_scored, s.n_failed) == (2, 2) and s.per_category == {}
    assert e.official_complex_scores(["nothing"]).overall == 0.0  # calculate_average_score of an empty list


def test_corrected_complex_scores():
    replies = ["{score: 1/4} one of four", "{Score: 3/4}", "{score: 6/5}", "no format"]
    s = e.corrected_complex_scores(replies)
    # 1/4, 3/4, min(6, 5)/5 = 1 -> 2 / 3; the unparsed reply excluded
    assert s.overall == pytest.approx(2 / 3) and (s.n_scored, s.n_failed) == (3, 1)
    # annotated trigger counts 5, 3, 4, 2 as denominators: 1/5, min(3, 3)/3, min(6, 4)/4 -> (0.2 + 1 + 1) / 3
    s2 = e.corrected_complex_scores(replies, [5, 3, 4, 2])
    assert s2.overall == pytest.approx(2.2 / 3)
    assert math.isnan(e.corrected_complex_scores(["no format"]).overall)
    with pytest.raises(ValueError):
        e.corrected_complex_scores(replies, [1, 2])


def test_human_eval_summary_by_hand():
    rows = []
    for ann, scores in {"a": {"happy": [5, 3], "angry": [4], "sad": [2, 2], "excitement": [5]},
                        "b": {"happy": [4], "angry": [4, 2], "sad": [3], "excitement": [1, 5]}}.items():
        for cat, vals in scores.items():
            rows += [{"annotator": ann, "path": f"x/{cat}", "score": v, "category": cat} for v in vals]
    t = e.human_eval_summary(pd.DataFrame(rows))
    # a: category means 4, 4, 2, 5 -> overall 3.75; b: 4, 3, 3, 3 -> 3.25; mean of annotators 3.5
    assert t.loc["a", "overall"] == pytest.approx(3.75) and t.loc["b", "overall"] == pytest.approx(3.25)
    assert t.loc["mean", "overall"] == pytest.approx(3.5)
    assert t.loc["mean", "happy"] == pytest.approx(4.0)
    # population std: a happy {5, 3} -> 1; b happy {4} -> 0; pooled sqrt((1 + 0) / 2)
    assert t.loc["mean", "happy std"] == pytest.approx(math.sqrt(0.5))


def test_generate_answers_needs_images(tmp_path):
    with pytest.raises(FileNotFoundError, match="request"):
        e.generate_answers(tmp_path / "model", tmp_path / "no-images", pd.DataFrame(columns=["path", "question"]))


def test_judge_messages_and_prompts():
    msgs = e.judge_messages("Raised fist.", "1. Raised fist.\n2. Protest.")
    assert msgs[0] == {"role": "system", "content": e.JUDGE_SYSTEM}
    user = msgs[1]["content"]
    assert user.startswith("Your task is to assess a record aimed at comprehend an emotion")
    assert "Record of comprehension:\nRaised fist.. Here is the ground truth label:" in user
    assert user.endswith("Ground Truth:\n1. Raised fist.\n2. Protest.\n\nYour Assessment:")
    assert "comprehending an emotion" in e.judge_messages("a", "b", complex_=True)[1]["content"]
    assert e.ANSWER_PROMPT.format(question="Why?") == (
        "You are a good expert of emotion understanding. Look at the image, Why?")


def test_real_files(shared_data):
    root = shared_data / "emotion/eibench"
    basic, complex_ = e.load_basic(root), e.load_complex(root)
    stats = e.dataset_statistics(basic, complex_)
    assert (stats["basic questions"], stats["complex questions"]) == (1615, 50)
    assert (stats["CAER-S"], stats["EmoSet-118K"]) == (433, 1182)
    assert [stats[c] for c in e.CATEGORIES] == [91, 342, 462, 720]
    assert round(stats["triggers mean"], 2) == 4.60 and (stats["triggers min"], stats["triggers max"]) == (2, 10)
    assert (basic.category == basic.category_official).all()
    summary = e.human_eval_summary(e.load_human_eval(root))
    assert round(summary.loc["mean", "overall"], 3) == 4.416
    assert sorted(round(v, 3) for v in summary.drop("mean")["overall"]) == [4.076, 4.310, 4.862]
    # per-category means over the 3 annotators (emotion.md 3.1: happy 4.282, angry 4.607, sad 4.124, exc. 4.651)
    assert [round(summary.loc["mean", c], 3) for c in e.CATEGORIES] == [4.282, 4.607, 4.124, 4.651]
    # 200 samples per annotator: happy 13, angry 50, sad 75, excitement 62
    counts = e.load_human_eval(root).groupby(["annotator", "category"]).size().unstack()[list(e.CATEGORIES)]
    assert (counts.to_numpy() == [[13, 50, 75, 62]] * 3).all()
    complex_ = e.load_complex(root)
    assert complex_.line.nunique() == 50 and (complex_.groupby("line").size() == 1).all()  # one question per line
    recs = e.constructed_records(basic, 8, seed=0)
    assert len(recs) == 24 and set(recs.condition) == {"full", "half", "other"}
    half = recs[recs.condition == "half"]
    assert (half.expected == [math.ceil(n / 2) / n for n in half.n_triggers]).all()


# ---------------------------------------------------------------------------------------------------------------
# The embedding judge, its validation, and the complex-vs-basic claim (hand-made inputs, a bag-of-words encoder)
# ---------------------------------------------------------------------------------------------------------------
VOCAB = ["rain", "dog", "lost", "tears", "party", "gift", "fist", "protest"]


def bow_encode(texts):
    """A hand-checkable encoder: normalised word counts over VOCAB (a zero vector gets one extra dimension)."""
    import numpy as np

    rows = []
    for t in texts:
        words = t.lower().replace(",", " ").split()
        v = np.array([words.count(w) for w in VOCAB] + [0.0], float)
        if not v.any():
            v[-1] = 1.0
        rows.append(v / np.linalg.norm(v))
    return np.array(rows)


def test_answer_segments():
    assert e.answer_segments("1. Rain. 2. A lost dog; tears.") == ["Rain", "A lost dog", "tears"]
    assert e.answer_segments("Rain\n\n2) Lost dog!") == ["Rain", "Lost dog"]
    assert e.answer_segments("...") == []


def test_embedding_recall_by_hand():
    triggers = [["rain", "lost dog"], ["party", "gift"]]
    got = e.embedding_recall(["It is the rain. A lost dog.", "A gift"], triggers, bow_encode)
    # answer 1: "rain" matches "It is the rain" exactly in the bag of words (1.0); "lost dog" -> "A lost dog" (1.0)
    # answer 2: "party" has no word in common (0.0), "gift" matches (1.0) -> 0.5
    assert got == pytest.approx([1.0, 0.5])
    assert math.isnan(e.embedding_recall(["rain"], [[]], bow_encode)[0])
    with pytest.raises(ValueError):
        e.embedding_recall(["a"], [["b"], ["c"]], bow_encode)


def test_shuffled_pairs_is_a_derangement():
    import numpy as np

    for seed in range(5):
        perm = e.shuffled_pairs(7, seed)
        assert sorted(perm) == list(range(7)) and not (perm == np.arange(7)).any()
    with pytest.raises(ValueError):
        e.shuffled_pairs(1)
    groups = ["a", "a", "a", "b", "c", "c", "d"]
    perm = e.shuffled_pairs(7, 0, groups=groups)
    assert all(groups[i] != groups[j] for i, j in enumerate(perm))
    with pytest.raises(ValueError, match="across groups"):
        e.shuffled_pairs(3, 0, groups=["a", "a", "b"])


def test_spearman_interval():
    perfect = e.spearman_interval([1, 2, 3, 4, 5, 6], [2, 4, 6, 8, 10, 12], n_boot=200)
    assert perfect["rho"] == pytest.approx(1.0) and perfect["low"] == pytest.approx(1.0)
    flat = e.spearman_interval([1, 2, 3, 4], [0.4, 0.4, 0.4, 0.4], n_boot=50)
    assert math.isnan(flat["rho"]) and math.isnan(flat["low"])  # a constant judge has no rank correlation
    grouped = e.spearman_interval([1, 0, 1, 0, 1, 0], [1, 0, 1, 0, 1, 0], groups=[1, 1, 2, 2, 3, 3], n_boot=50)
    assert grouped["groups"] == 3 and grouped["rho"] == pytest.approx(1.0)


def test_mean_and_difference_intervals():
    m = e.mean_interval([1.0, 1.0, 1.0], n_boot=100)
    assert (m["mean"], m["low"], m["high"]) == (1.0, 1.0, 1.0)
    d = e.difference_interval([0.6] * 40, [0.4] * 40, n_boot=100)
    assert d["diff"] == pytest.approx(0.2) and d["low"] == pytest.approx(0.2) and d["n_a"] == 40


def test_validate_judge_on_constructed_records():
    recs = pd.DataFrame({"path": ["a", "a", "a", "b", "b", "b"], "condition": ["full", "half", "other"] * 2,
                         "expected": [1.0, 0.5, 0.0, 1.0, 0.6, 0.0], "judge": [0.9, 0.5, 0.1, 1.0, 0.7, float("nan")]})
    v = e.validate_judge(recs, "judge", n_boot=50)
    # ranks agree except the tie of the two full records (expected 1.0, judged 0.9 and 1.0)
    assert v["records"] == 5 and v["of"] == 6 and 0.95 < v["rho"] < 1.0
    assert v["mean (full)"] == pytest.approx(0.95) and v["mean |judge - expected|"] == pytest.approx(0.3 / 5)


GOOD = {"rho": 0.9, "low": 0.85, "high": 0.95}


def _gap(basic_mean, complex_mean, n=40, floor_gap=0.2, validation=GOOD, n_complex=None):
    import numpy as np

    rng = np.random.default_rng(0)
    nc = n_complex or n
    noise = 0.05 * rng.standard_normal(max(n, nc))
    basic, complex_ = basic_mean + noise[:n], complex_mean + noise[:nc]  # equal means: a difference of exactly 0
    return e.claim_complex_gap(basic, basic - floor_gap, complex_, complex_ - floor_gap, validation,
                               scale_reason="text-only 135M model", n_boot=200)


def test_claim_complex_gap_every_branch():
    assert _gap(0.6, 0.4).verdict[0] == "supported"          # basic above complex, interval above 0
    assert _gap(0.4, 0.6).verdict[0] == "not supported"      # complex above basic
    undecided = _gap(0.5, 0.5)
    assert undecided.verdict[0] == "inconclusive" and "contains 0" in undecided.reason[0]
    # each precondition, unmet, makes the verdict inconclusive and is named
    bad_judge = _gap(0.6, 0.4, validation={"rho": float("nan"), "low": float("nan"), "high": float("nan")})
    assert bad_judge.verdict[0] == "inconclusive" and "judge validated" in bad_judge.reason[0]
    few = _gap(0.6, 0.4, n_complex=10)
    assert few.verdict[0] == "inconclusive" and "enough questions" in few.reason[0]
    floor = _gap(0.6, 0.4, floor_gap=-0.1)
    assert floor.verdict[0] == "inconclusive" and "above their floor" in floor.reason[0]
    cell = _gap(0.6, 0.4).iloc[0]
    assert cell.rule == "compendium.emotion.eibench.experiments.claim_complex_gap" and cell.scale == "substitute"
    assert {p["name"] for p in cell.preconditions} == {
        "judge validated", "enough questions", "basic answers above their floor", "complex answers above their floor"}


class _EchoLM:
    """A fake chat LM: replies with a fixed text (records the prompts it saw)."""

    def __init__(self, reply):
        self.reply, self.seen = reply, []

    def chat(self, messages, **kw):
        self.seen.append((messages, kw))
        return kw.get("prefix", "") + self.reply


def test_judge_runners_and_text_answers():
    recs = pd.DataFrame({"record": ["Rain."], "truth": ["1. Rain.\n2. Dog."], "n_triggers": [2]})
    replies, tries = e.judge_faithful(_EchoLM("no format"), recs, max_new_tokens=4)
    assert replies == ["{score: 0/1}"] and tries == [5]
    forced = e.judge_forced(_EchoLM("3/4}"), recs)
    assert forced["judge c/t"][0] == "3/4" and forced.score[0] == pytest.approx(0.75)
    assert forced.recall[0] == pytest.approx(1.0)  # min(3, 2) / 2 annotated triggers
    lm = _EchoLM(" The rain. ")
    assert e.text_answers(lm, ["Why sad?"]) == ["The rain."]
    assert lm.seen[0][0][0]["content"].endswith("Look at the image, Why sad?")
