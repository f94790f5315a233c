"""The EIBench chapter's steps (``compendium.emotion.eibench.chapter``) on small hand-made inputs.

The published tables are the real ``eibench.yaml`` (it ships with the package), or copies of its frames with the
values a toy input gives; the benchmark files, the judge, the encoder and the vision-language model are made here,
so no download and no model load is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from compendium import published
from compendium.emotion.eibench import chapter
from compendium.emotion.eibench import experiments as eib

matplotlib.use("Agg")

PATHS = {"happy": ["CAER-S/train/Happy/h1.png", "CAER-S/train/Happy/h2.png"],
         "angry": ["CAER-S/train/Angry/a1.png", "CAER-S/train/Angry/a2.png"],
         "sad": ["EmoSet-118k/image/sadness/s1.jpg", "EmoSet-118k/image/sadness/s2.jpg"],
         "excitement": ["EmoSet-118k/image/excitement/e1.jpg", "EmoSet-118k/image/excitement/e2.jpg"]}
TRIGGERS = ["1. Rain falls.\n2. A dog barks.", "1. A gift arrives.\n2. Friends laugh.\n3. Music plays."]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def paper():
    return published.load("eibench")


def _write_benchmark(root: Path) -> None:
    (root / "EI_Basic").mkdir(parents=True)
    (root / "EI_Complex").mkdir()
    (root / "human_eval").mkdir()
    paths = [p for ps in PATHS.values() for p in ps]
    with open(root / "EI_Basic" / "user.jsonl", "w") as f:
        for p in paths:
            f.write(json.dumps({p: f"What might have caused the emotion in {p}?"}) + "\n")
    truth = {p: TRIGGERS[i % 2] for i, p in enumerate(paths)}
    (root / "EI_Basic" / "basic_ground_truth.json").write_text(json.dumps(truth))
    with open(root / "EI_Complex" / "ec_complex.jsonl", "w") as f:
        f.write(json.dumps({paths[0]: {"Why happy and sad?": TRIGGERS[1]}}) + "\n\n")
        f.write(json.dumps({paths[1]: {"Why both?": TRIGGERS[0]}}) + "\n")
    for k, ann in enumerate(("7861", "7862", "7866")):
        with open(root / "human_eval" / f"score_{ann}.jsonl", "w") as f:
            for i, p in enumerate(paths):
                f.write(json.dumps({p: str(1 + (i + k) % 5)}) + "\n")


@pytest.fixture()
def bench(tmp_path, monkeypatch):
    _write_benchmark(tmp_path)
    monkeypatch.setattr(chapter, "fetch", lambda key: tmp_path)
    monkeypatch.delenv("COMPENDIUM_DATA", raising=False)
    lines = []
    torch.set_num_threads(2)
    basic, complex_set, human, paper = chapter.setup("/some/root", log=lines.append)
    assert torch.get_num_threads() == 1 and chapter.os.environ["COMPENDIUM_DATA"] == "/some/root"
    assert lines == ["8 basic questions, 2 complex questions, 24 human scores"]
    assert paper.table("basic") is not None
    chapter.setup("", threads=None, log=None)
    return basic, complex_set, human


class _FakePaper:
    """The real published data, with some tables replaced by hand-made frames."""

    def __init__(self, real, **frames):
        self.real, self.frames = real, frames

    def table(self, name):
        return self.frames.get(name, self.real.table(name))


def _with_values(table, values):
    frame = table.frame().copy()
    frame["value"] = [values[(r, c)] for r, c in zip(frame.row, frame.column)]
    return frame


class _FakeLM:
    """A fake chat LM: replies with a fixed text after the forced prefix (if any)."""

    name = "fake-lm"

    def __init__(self, reply="{score: 2/2} ok"):
        self.reply, self.calls = reply, 0

    def chat(self, messages, **kw):
        self.calls += 1
        return kw.get("prefix", "") + self.reply


def _encoder():
    def encode(texts):
        rng = np.random.default_rng(len(texts))
        vecs = np.array([[len(t) % 7 + 1.0, t.count("a") + 1.0, t.count(" ") + 1.0] for t in texts])
        vecs = vecs + rng.normal(0, 1e-3, vecs.shape)
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    return encode


def test_statistics_tables_and_reading(bench, paper):
    basic, complex_set, _ = bench
    stats, cmp_stats = chapter.compare_statistics(paper, basic, complex_set)
    assert stats["basic questions"] == 8 and stats["happy"] == 2
    assert set(cmp_stats.verdict) <= {"exact", "differs", "within tolerance"}
    good = pd.DataFrame({"verdict": ["exact", "exact", "differs"]})
    assert chapter.statistics_line({"a": 1, "b": 2.345}, good) == "{'a': 1, 'b': 2.35}"
    with pytest.raises(AssertionError):
        chapter.statistics_line(stats, pd.DataFrame({"verdict": ["differs", "differs"]}))
    # a README "samples" count that differs, and a recount that agrees
    toy = pd.DataFrame({"basis": ["paper", "paper", "recount"], "verdict": ["exact", "differs", "exact"],
                        "published": [8.0, 1700.0, 4.0], "reproduced": [8.0, 10.0, 4.0]})
    text = chapter.statistics_reading(toy, basic, complex_set)
    assert text.startswith("Of the counts printed in the paper or README, 1 of 2 match the files; the other 1 cells")
    assert "\"1,700 samples\": the files hold 8 basic + 2 complex = 10 questions (the complex ones on 2 images)" in text
    assert text.endswith("puts 8 of 8 paths in the same category as their folder.")
    fig = chapter.plot_triggers(basic)
    assert [ax.get_xlabel() for ax in fig.axes] == ["ground-truth triggers per question", ""]


def test_human_tables(bench, paper):
    _, _, human = bench
    summary = eib.human_eval_summary(human)
    values = {("mean of 3 annotators", c): round(summary.loc["mean", c], 3) for c in (*eib.CATEGORIES, "overall")}
    for i, v in enumerate(sorted(summary.drop("mean")["overall"])):
        values[("per annotator, ascending", f"annotator {i + 1}")] = round(v, 3)
    fake = _FakePaper(paper, human_eval=_with_values(paper.table("human_eval"), values))
    cmp_human = chapter.compare_human(fake, summary)
    assert len(cmp_human) == 8 and (cmp_human.verdict == "exact").all()
    with pytest.raises(AssertionError):
        chapter.compare_human(paper, summary)  # the toy scores are not the published ones
    line = chapter.human_weights_line(summary, human)
    assert line == (f"category-weighted (published) {summary.loc['mean', 'overall']:.3f}; "
                    f"sample-weighted {human.score.mean():.3f}")


def test_cfsa_is_sample_weighted(paper):
    lines = []
    sizes = {"happy": 91, "angry": 342, "sad": 462, "excitement": 720}  # the category sizes the files give
    cmp_cfsa = chapter.compare_cfsa(paper, sizes, log=lines.append)
    assert len(cmp_cfsa) == 1 and cmp_cfsa.verdict.iloc[0] in ("exact", "within tolerance")
    assert lines[0].startswith("sample-weighted 68.8") and "(published 68.81)" in lines[0]
    with pytest.raises(AssertionError):  # equal sizes: the plain mean, which misses the printed overall
        chapter.compare_cfsa(paper, dict.fromkeys(sizes, 1), log=None)


def test_hand_made_replies(bench):
    basic, _, _ = bench
    prompt = chapter.judge_prompt(basic, "An answer.")
    assert prompt.startswith("[system]\n") and "\n\n[user]\n" in prompt and prompt.endswith("\n")
    off, cor, table = chapter.toy_scores()
    assert list(table.scorer) == ["as written", "corrected"]
    assert chapter.toy_lines(off, cor) == ("as written: overall 0.567, angry 0.500, sad 0.600\n"
                                           "corrected:  overall 0.562, angry 0.625, sad 0.500")
    with pytest.raises(AssertionError):
        chapter.toy_lines(cor, off)
    assert chapter.toy_complex_line() == "complex recall as written 0.725 (2 unparsed); corrected 0.733 (1 unparsed)"
    with pytest.raises(AssertionError):
        chapter.toy_complex_line(["{score: 1/1}"], [1])


def test_llm_judge_steps(bench, monkeypatch):
    basic, _, _ = bench
    lines = []
    from compendium.emotion import backbones

    monkeypatch.setattr(backbones, "load_chat_lm", lambda path: _FakeLM())
    assert chapter.load_judge("", basic, 1, 1, seed=0, log=None)[0].name == "fake-lm"
    judge, records = chapter.load_judge("", basic, 1, 2, seed=0, load=lambda path: _FakeLM(), log=lines.append)
    assert judge.name == "fake-lm" and len(records) == 8 * 3 and lines[0].startswith("judge: fake-lm; loaded in")
    faithful = chapter.judge_faithfully(judge, records, 1, max_new_tokens=4, seed=0, log=lines.append)
    assert len(faithful) == 3 and list(faithful.tries) == [1, 1, 1] and lines[-1].startswith("3 records, 3 generations")
    fallbacks, table = chapter.faithful_scores(faithful, log=lines.append)
    assert fallbacks == 0 and list(table.scorer) == ["as written", "corrected"]
    assert lines[-1].startswith("0 of 3 records fell back to {score: 0/1} after 5 tries; mean correct score")
    forced = chapter.judge_forced(_FakeLM("2/5}"), records, 2, log=lines.append)
    assert len(forced) == 6 and lines[-1].startswith("6 records in")
    validation, copied = chapter.validate_llm(forced, seed=0, log=lines.append)
    assert copied == 6 and lines[-1] == "replies equal to the prompt's example '{score: 2/5}': 6 of 6; distinct replies: 1"
    assert list(chapter.validation_frame(validation).index) == list(validation)
    fig = chapter.plot_forced(forced, "x" * 50)
    assert fig.axes[0].get_title() == "x" * 40
    text = chapter.llm_judge_reading(fallbacks, faithful, forced, copied, validation)
    assert "6 of 6 replies are the prompt's own example" in text and "undefined (the judge's scores do not vary)" in text
    assert text.endswith("in the `gpu` profile (`judge_model`).")
    good = {"LLM, format-forced, judge's total": {"rho": 0.9, "low": 0.7, "high": 0.95}}
    text = chapter.llm_judge_reading(0, faithful, forced, 0, good)
    assert "0.90 [0.70, 0.95]" in text and "**yes**" in text


def test_embedding_judge_and_the_gap(bench):
    basic, complex_set, _ = bench
    lines = []
    emb = chapter.validate_embedding(basic, 4, seed=0, encoder=_encoder, log=lines.append)
    assert len(emb.validation) == 12 and lines[-1].startswith("12 records scored in")
    assert emb.result["records"] == 12
    llm = {"LLM": dict(emb.result)}
    table = chapter.judges_table(llm, emb.result)
    assert list(table.index) == ["LLM", "MiniLM embedding recall"] and list(table.columns) == chapter.VALIDATION_COLUMNS
    fig = chapter.plot_embedding(emb.validation)
    assert fig.axes[0].get_title() == "all-MiniLM-L6-v2 trigger recall"
    ev = {"records": 12, "rho": 0.8, "low": 0.6, "high": 0.9, "groups": 4, "mean (other)": 0.41}
    text = chapter.embedding_reading(ev)
    assert "ranks the 12 records with Spearman's ρ = 0.80 [0.60, 0.90]" in text and "**yes**" in text
    assert "still scores 0.41 on average" in text
    judge = _FakeLM("Rain falls. A dog barks.")
    basic_q, complex_q, answered = chapter.text_only_answers(judge, emb.encode, basic, complex_set, 3, seed=0,
                                                            log=lines.append)
    assert (len(basic_q), len(complex_q), len(answered)) == (3, 2, 5)
    assert lines[-1].startswith("3 basic + 2 complex answers from fake-lm in")
    assert {"score", "floor"} <= set(answered.columns)
    claim = chapter.gap_claim(basic_q, complex_q, ev, judge.name, seed=0)
    assert "answers from fake-lm without the image" in claim.iloc[0].scale_reason
    text = chapter.gap_reading(claim)
    assert text.startswith("**Reading.** ") and ": unmet " in text
    met = claim.copy()
    met.at[met.index[0], "preconditions"] = [{**p, "met": True} for p in claim.iloc[0].preconditions]
    assert chapter.gap_reading(met).startswith(f"**Reading.** {met.iloc[0].reason}. On the substitute")
    texts = chapter.summary_texts("fake-lm", basic_q, complex_q)
    assert "(3 + 2 text-only answers from fake-lm)" in texts["ran_here"] and set(texts) == {
        "paper_claim", "ran_here", "not_reproduced"}


def test_model_answers_and_published_tables(bench, paper, tmp_path, monkeypatch):
    basic, complex_set, _ = bench
    lines, shown = [], []
    kw = dict(vlm_model="", image_root="", num_answers=0, max_new_tokens=4, seed=0, log=lines.append,
              show=shown.append)
    run = chapter.model_answers(_FakeLM(), basic, complex_set, answers_file="", **{**kw, "show": None})
    assert run.answers is None and run.scores is None and shown == []
    assert lines[-1].startswith("no answers to judge")
    cmp_basic, cmp_complex = chapter.compare_published(paper, run, basic, complex_set, "", log=lines.append)
    assert (cmp_basic.verdict == "not run here").all() and (cmp_complex.verdict == "not run here").all()
    # a JSONL file of answers for every basic question
    answers_file = tmp_path / "answers.jsonl"
    answers_file.write_text("".join(json.dumps({p: "Rain falls."}) + "\n" for p in basic.path) + "\n")
    run = chapter.model_answers(_FakeLM("{score: 1/2}"), basic, complex_set, answers_file=str(answers_file), **kw)
    assert len(run.answers) == 8 and run.complex_answers is None and len(shown) == 1
    assert run.scores.iloc[0]["overall"] == pytest.approx(0.5)
    row = "User Question: LLaVA-NeXT-7B"
    monkeypatch.setattr(chapter.eib, "generate_answers", lambda model, images, questions: (
        questions.assign(answer="Rain falls.").pipe(lambda q: (q.attrs.update(missing=[]), q)[1])))
    # a vision-language model answering every basic and complex question
    run = chapter.model_answers(_FakeLM("{score: 1/2}"), basic, complex_set, answers_file="",
                                **{**kw, "vlm_model": "vlm", "num_answers": -1})
    assert (len(run.answers), len(run.complex_answers)) == (8, 2) and len(shown) == 3
    assert lines[-1] == "8 basic and 2 complex answers; 0 images missing"
    assert list(run.complex_scores.scorer) == ["as written (recall)", "corrected"]
    cmp_basic, cmp_complex = chapter.compare_published(paper, run, basic, complex_set, row, log=lines.append)
    cell = cmp_basic[(cmp_basic.row == row) & (cmp_basic.column == chapter.JUDGE_COL)]
    assert cell.reproduced.iloc[0] == pytest.approx(50.0)
    cell = cmp_complex[(cmp_complex.row == "LLaVA-NeXT-7B") & (cmp_complex.column == chapter.JUDGE_COL)]
    assert cell.reproduced.iloc[0] == pytest.approx(50.0)
    assert lines[-1] == (cmp_basic.verdict.value_counts().to_string() + "\n"
                         + cmp_complex.verdict.value_counts().to_string())
    # only some questions: the published cells stay not run
    run = chapter.model_answers(_FakeLM("{score: 1/2}"), basic, complex_set, answers_file="",
                                **{**kw, "vlm_model": "vlm", "num_answers": 2})
    assert len(run.answers) == 2
    cmp_basic, _ = chapter.compare_published(paper, run, basic, complex_set, row, log=None)
    assert (cmp_basic.verdict == "not run here").all()

