"""The steps of the EIBench chapter (``notebooks/eibench/eibench.ipynb``), so that the notebook holds calls.

Imported by that chapter only: the benchmark's loaders, the judge scorers (as written and corrected), the judges'
validation and the complex-vs-basic claim live in :mod:`compendium.emotion.eibench.experiments`; this module loads
the chapter's inputs, builds its tables against the published data, draws its figures and writes its sentences.
Nothing here changes a computation of the chapter: seeds, recipes and their order are the notebook's.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from compendium import published, verdicts
from compendium.data import fetch
from compendium.emotion.eibench import experiments as eib

#: The published statistics the recount answers, by the key of :func:`experiments.dataset_statistics`.
BASIC_STATS = ("CAER-S", "EmoSet-118K", "happy", "angry", "sad", "excitement", "triggers mean", "triggers min",
               "triggers max")
#: The README row whose four category scores and overall check the sample-weighted aggregation.
CFSA_ROW = "CFSA (LLaVA-NeXT-34B), LLaMA-3 judge"
JUDGE_COL = "LLaMA-3 judge"
CONDITION_COLOURS = (("full", "#1a9850"), ("half", "#fee08b"), ("other", "#d73027"))
#: Four basic replies a reader can score by hand (path, reply), and the annotated triggers of each path.
TOY_BASIC = [
    ("CAER-S/train/Angry/a.png", "{score: 2/4} Two triggers match."),
    ("CAER-S/train/Angry/b.png", "{Score: 3/4} Three match."),  # accepted by the retry loop, missed by the regex
    ("EmoSet-118k/image/sadness/c.jpg", "{score: 6/5} All found and more."),  # correct > total
    ("EmoSet-118k/image/sadness/d.jpg", "{score: 0/1}"),  # the fallback after 5 failed tries
]
TOY_N_TRUTH = {"CAER-S/train/Angry/a.png": 4, "CAER-S/train/Angry/b.png": 4,
               "EmoSet-118k/image/sadness/c.jpg": 5, "EmoSet-118k/image/sadness/d.jpg": 5}
#: The same four kinds of reply for the complex set, and the annotated triggers of each line.
TOY_COMPLEX = ["{score: 1/4} One of four.", "{Score: 3/4}", "{score: 6/5}", "I cannot tell."]
TOY_N_COMPLEX = [5, 3, 4, 2]
VALIDATION_COLUMNS = ["records", "groups", "rho", "low", "high", "mean |judge - expected|", "mean (full)",
                      "mean (half)", "mean (other)"]


def _log(log: Callable[[str], None] | None, text: str) -> None:
    if log is not None:
        log(text)


def setup(data_root: str = "", threads: int | None = 1, log: Callable[[str], None] | None = print):
    """Set torch's threads (one is faster for a 135M model on a shared 2-core machine; ``None``: untouched), let a
    non-empty ``data_root`` win over COMPENDIUM_DATA and the cache, and return ``(basic, complex_set, human,
    paper)``; ``log`` gets their sizes."""
    if threads is not None:
        torch.set_num_threads(threads)
    if data_root:  # an explicit data folder wins over COMPENDIUM_DATA and the cache
        os.environ["COMPENDIUM_DATA"] = data_root
    root = fetch("emotion/eibench")
    basic = eib.load_basic(root)
    complex_set = eib.load_complex(root)
    human = eib.load_human_eval(root)
    paper = published.load("eibench")
    _log(log, f"{len(basic)} basic questions, {len(complex_set)} complex questions, {len(human)} human scores")
    return basic, complex_set, human, paper


def compare_statistics(paper, basic: pd.DataFrame, complex_set: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """``(stats, cmp_stats)``: the benchmark's statistics recounted from the files, and against the paper's /
    README's table."""
    stats = eib.dataset_statistics(basic, complex_set)
    reproduced = {("EI_Basic", k): v for k, v in stats.items() if k in BASIC_STATS}
    reproduced[("EI_Basic", "questions")] = stats["basic questions"]
    reproduced[("EI_Complex", "questions")] = stats["complex questions"]
    reproduced[("README", "samples")] = stats["basic + complex"]
    return stats, verdicts.compare(paper.table("statistics"), reproduced, scale="paper")


def statistics_line(stats: Mapping[str, float], cmp_stats: pd.DataFrame) -> str:
    """The statistics, floats to 2 decimals; checks that every cell but one is exact."""
    assert (cmp_stats.verdict == "exact").sum() == len(cmp_stats) - 1
    return str({k: (round(v, 2) if isinstance(v, float) else v) for k, v in stats.items()})


def plot_triggers(basic: pd.DataFrame):
    """Triggers per question and the mean per category. Returns the figure, closed (``display`` it)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    basic.n_triggers.value_counts().sort_index().plot.bar(ax=axes[0], color="#4575b4")
    axes[0].set_xlabel("ground-truth triggers per question")
    axes[0].set_ylabel("questions")
    basic.groupby("category").n_triggers.mean().reindex(eib.CATEGORIES).plot.bar(ax=axes[1], color="#91bfdb")
    axes[1].set_ylabel("mean triggers")
    axes[1].set_xlabel("")
    fig.tight_layout()
    plt.close(fig)
    return fig


def statistics_reading(cmp_stats: pd.DataFrame, basic: pd.DataFrame, complex_set: pd.DataFrame) -> str:
    """Markdown: how many printed counts match, what the one that differs is, and the category rule's agreement."""
    printed = cmp_stats[cmp_stats.basis == "paper"]
    differs = printed[printed.verdict == "differs"]
    return (
        f"Of the counts printed in the paper or README, {int((printed.verdict == 'exact').sum())} of {len(printed)} "
        f"match the files; the other {int((cmp_stats.basis == 'recount').sum())} cells recount the files and agree "
        f"with the earlier recount ({int((cmp_stats[cmp_stats.basis == 'recount'].verdict == 'exact').sum())} exact). "
        + "".join(f"The **differs** is the README's \"{r.published:,.0f} samples\": the files hold {len(basic):,} "
                  f"basic + {len(complex_set)} complex = {r.reproduced:,.0f} questions (the complex ones on "
                  f"{complex_set.path.nunique()} images), and {r.published:,.0f} matches neither count, so it is most "
                  "likely a typo. " for r in differs.itertuples())
        + f"The scoring script's category rule (path substrings tested in order) puts "
        f"{int((basic.category == basic.category_official).sum()):,} of {len(basic):,} paths in the same category as "
        "their folder."
    )


def compare_human(paper, summary: pd.DataFrame) -> pd.DataFrame:
    """The recomputed human-evaluation summary against the earlier recount (all exact, checked)."""
    he_rep = {("mean of 3 annotators", c): summary.loc["mean", c] for c in (*eib.CATEGORIES, "overall")}
    for i, v in enumerate(sorted(summary.drop("mean")["overall"])):
        he_rep[("per annotator, ascending", f"annotator {i + 1}")] = v
    cmp_human = verdicts.compare(paper.table("human_eval"), he_rep, scale="paper")
    assert (cmp_human.verdict == "exact").all()
    return cmp_human


def human_weights_line(summary: pd.DataFrame, human: pd.DataFrame) -> str:
    """The human overall weighted by category (published) and by sample."""
    return f"category-weighted (published) {summary.loc['mean', 'overall']:.3f}; sample-weighted {human.score.mean():.3f}"


def compare_cfsa(paper, stats: Mapping[str, float], log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """CFSA's printed overall against the sample-weighted mean of its four category values (within the printed
    rounding, checked; the plain mean misses it by more than 0.5, checked); ``log`` gets both means."""
    cfsa_table = paper.table("cfsa_categories")
    cfsa = cfsa_table.frame().set_index("column")["value"]
    sizes = pd.Series({c: stats[c] for c in eib.CATEGORIES})
    sample_weighted = float((cfsa[list(eib.CATEGORIES)] * sizes).sum() / sizes.sum())
    category_mean = float(cfsa[list(eib.CATEGORIES)].mean())
    # the four category values are inputs, not verdicts: only the printed overall is compared
    overall_cell = cfsa_table.frame().query("column == 'overall'")
    cmp_cfsa = verdicts.compare(overall_cell, {(CFSA_ROW, "overall"): sample_weighted}, scale="paper")
    _log(log, f"sample-weighted {sample_weighted:.3f}  vs  mean of categories {category_mean:.3f}  "
              f"(published {cfsa['overall']})")
    assert cmp_cfsa.verdict.iloc[0] in ("exact", "within tolerance")
    assert abs(category_mean - cfsa["overall"]) > 0.5
    return cmp_cfsa


def judge_prompt(basic: pd.DataFrame, answer: str = "The man is angry because someone insulted him.") -> str:
    """The judge's messages for ``answer`` against the first basic item's triggers, as text."""
    return "\n".join(f"[{m['role']}]\n{m['content']}\n" for m in eib.judge_messages(answer, basic.iloc[0].truth))


def toy_scores(toy: Sequence[tuple[str, str]] = TOY_BASIC, n_truth: Mapping[str, int] = TOY_N_TRUTH):
    """``(as written, corrected, table)`` of the hand-made basic replies."""
    off, cor = eib.official_scores(toy), eib.corrected_scores(toy, n_truth)
    table = pd.DataFrame([{"scorer": "as written", **off.row()}, {"scorer": "corrected", **cor.row()}])
    return off, cor, table


def toy_lines(off, cor) -> str:
    """The two scorers on the hand-made replies; checks (0.5 + 1.2 + 0) / 3 and (0.5 + 0.75 + 1 + 0) / 4."""
    assert math.isclose(off.overall, 1.7 / 3) and math.isclose(cor.overall, 2.25 / 4)
    return (f"as written: overall {off.overall:.3f}, angry {off.per_category['angry']:.3f}, "
            f"sad {off.per_category['sad']:.3f}\n"
            f"corrected:  overall {cor.overall:.3f}, angry {cor.per_category['angry']:.3f}, "
            f"sad {cor.per_category['sad']:.3f}")


def toy_complex_line(replies: Sequence[str] = TOY_COMPLEX, n_truth: Sequence[int] = TOY_N_COMPLEX) -> str:
    """The complex scorers on the hand-made replies; checks (1/4 + 6/5) / 2 and (1/5 + 3/3 + 4/4) / 3."""
    off_c = eib.official_complex_scores(replies)
    cor_c = eib.corrected_complex_scores(replies, n_truth)
    assert math.isclose(off_c.overall, 0.725) and math.isclose(cor_c.overall, 2.2 / 3)
    return (f"complex recall as written {off_c.overall:.3f} ({off_c.n_failed} unparsed); "
            f"corrected {cor_c.overall:.3f} ({cor_c.n_failed} unparsed)")


def load_judge(judge_model: str, basic: pd.DataFrame, num_faithful: int, num_forced: int, seed: int,
               load: Callable | None = None, log: Callable[[str], None] | None = print):
    """The chat-LM judge (``load``: :func:`backbones.load_chat_lm`) and the constructed records it is validated
    on (``max(num_faithful, num_forced) * 4`` samples, x3 records)."""
    if load is None:
        from compendium.emotion.backbones import load_chat_lm as load
    t0 = time.time()
    judge = load(judge_model)
    _log(log, f"judge: {judge.name}; loaded in {time.time() - t0:.0f} s")
    records = eib.constructed_records(basic, max(num_faithful, num_forced) * 4, seed=seed)
    return judge, records


def judge_faithfully(judge, records: pd.DataFrame, num_faithful: int, max_new_tokens: int, seed: int,
                     log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """The first ``num_faithful`` records of each condition judged with the authors' protocol (``reply``,
    ``tries`` columns added)."""
    faithful = records.groupby("condition", sort=False).head(num_faithful).reset_index(drop=True)
    t0 = time.time()
    replies, tries = eib.judge_faithful(judge, faithful, max_new_tokens=max_new_tokens, seed=seed)
    faithful["reply"], faithful["tries"] = replies, tries
    _log(log, f"{len(faithful)} records, {sum(tries)} generations in {time.time() - t0:.0f} s")
    return faithful


def faithful_scores(faithful: pd.DataFrame, log: Callable[[str], None] | None = print) -> tuple[int, pd.DataFrame]:
    """``(fallbacks, table)``: how many replies fell back to ``{score: 0/1}``, and both scorers on the replies."""
    fallbacks = int((faithful.reply == "{score: 0/1}").sum())
    judged_f = list(zip(faithful.path, faithful.reply))
    n_truth_f = dict(zip(faithful.path, faithful.n_triggers))
    table = pd.DataFrame([{"scorer": "as written", **eib.official_scores(judged_f).row()},
                          {"scorer": "corrected", **eib.corrected_scores(judged_f, n_truth_f).row()}])
    _log(log, f"{fallbacks} of {len(faithful)} records fell back to {{score: 0/1}} after 5 tries; "
              f"mean correct score of these records {faithful.expected.mean():.3f}")
    return fallbacks, table


def judge_forced(judge, records: pd.DataFrame, num_forced: int,
                 log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """The first ``num_forced`` records of each condition judged with format-forced decoding."""
    t0 = time.time()
    forced = eib.judge_forced(judge, records.groupby("condition", sort=False).head(num_forced).reset_index(drop=True))
    _log(log, f"{len(forced)} records in {time.time() - t0:.0f} s")
    return forced


def validate_llm(forced: pd.DataFrame, seed: int, log: Callable[[str], None] | None = print) -> tuple[dict, int]:
    """``(validations, copied)``: the forced judge validated with its own and the annotated totals, and how many
    replies copy the prompt's example ``{score: 2/5}``."""
    llm_validation = {"LLM, format-forced, judge's total": eib.validate_judge(forced, "score", seed=seed),
                      "LLM, format-forced, annotated total": eib.validate_judge(forced, "recall", seed=seed)}
    copied = int((forced["judge c/t"] == "2/5").sum())
    _log(log, f"replies equal to the prompt's example '{{score: 2/5}}': {copied} of {len(forced)}; "
              f"distinct replies: {forced['judge c/t'].nunique()}")
    return llm_validation, copied


def validation_frame(llm_validation: Mapping[str, Mapping]) -> pd.DataFrame:
    """The LLM judge's validations, one row each."""
    return pd.DataFrame(llm_validation).T


def plot_forced(forced: pd.DataFrame, title: str):
    """The forced judge's scores against the known ones, by condition. Returns the figure, closed."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for cond, colour in CONDITION_COLOURS:
        sub = forced[forced.condition == cond]
        ax.scatter(sub.expected + np.random.default_rng(0).normal(0, 0.01, len(sub)), sub.score, label=cond,
                   color=colour)
    ax.plot([0, 1], [0, 1], color="grey", lw=1)
    ax.set_xlabel("correct score (by construction)")
    ax.set_ylabel("judge's score")
    ax.set_title(title[:40])
    ax.legend()
    plt.close(fig)
    return fig


def llm_judge_reading(fallbacks: int, faithful: pd.DataFrame, forced: pd.DataFrame, copied: int,
                      llm_validation: Mapping[str, Mapping]) -> str:
    """Markdown: what the LLM judge does under both protocols, and whether it is validated."""
    v = llm_validation["LLM, format-forced, judge's total"]
    return (
        f"**What the LLM judge does.** Under the authors' protocol {fallbacks} of {len(faithful)} records ended as "
        f"`{{score: 0/1}}` after five tries. Forced into the format, {copied} of {len(forced)} replies are the "
        f"prompt's own example `{{score: 2/5}}` and {forced['judge c/t'].nunique()} distinct replies occur; "
        f"Spearman's ρ with the known scores is "
        + (f"{v['rho']:.2f} [{v['low']:.2f}, {v['high']:.2f}]" if np.isfinite(v["rho"])
           else "undefined (the judge's scores do not vary)")
        + f". Validated (interval above {eib.JUDGE_MIN_RHO}): **{'yes' if eib.judge_precondition(v).met else 'no'}**. "
        "The same cells run Meta-Llama-3-8B-Instruct in the `gpu` profile (`judge_model`)."
    )


@dataclass
class EmbeddingJudge:
    """The MiniLM embedding judge: its encoder, the constructed records it scored and its validation."""

    encode: Callable
    validation: pd.DataFrame
    result: dict


def validate_embedding(basic: pd.DataFrame, num_validation: int, seed: int, encoder: Callable | None = None,
                       log: Callable[[str], None] | None = print) -> EmbeddingJudge:
    """The embedding judge (``encoder``: :func:`experiments.minilm_encoder`) validated on fresh constructed records
    (seed ``seed + 1``)."""
    t0 = time.time()
    encode = (encoder or eib.minilm_encoder)()
    validation = eib.constructed_records(basic, num_validation, seed=seed + 1)
    validation["embedding"] = eib.embedding_recall(list(validation.record),
                                                   [eib.split_triggers(t) for t in validation.truth], encode)
    result = eib.validate_judge(validation, "embedding", seed=seed)
    _log(log, f"{len(validation)} records scored in {time.time() - t0:.0f} s")
    return EmbeddingJudge(encode, validation, result)


def judges_table(llm_validation: Mapping[str, Mapping], embedding_validation: Mapping) -> pd.DataFrame:
    """The validations of all judges side by side."""
    judges = pd.DataFrame({**llm_validation, "MiniLM embedding recall": embedding_validation}).T
    return judges[VALIDATION_COLUMNS]


def plot_embedding(validation: pd.DataFrame):
    """The embedding judge's scores against the known ones, by condition. Returns the figure, closed."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for cond, colour in CONDITION_COLOURS:
        sub = validation[validation.condition == cond]
        ax.scatter(sub.expected, sub.embedding, label=cond, color=colour, s=12, alpha=0.7)
    ax.plot([0, 1], [0, 1], color="grey", lw=1)
    ax.set_xlabel("correct score (by construction)")
    ax.set_ylabel("embedding judge's score")
    ax.set_title("all-MiniLM-L6-v2 trigger recall")
    ax.legend()
    plt.close(fig)
    return fig


def embedding_reading(ev: Mapping) -> str:
    """Markdown: the embedding judge's rank correlation, whether it is validated, and its floor."""
    return (
        f"The embedding judge ranks the {ev['records']} records with Spearman's ρ = {ev['rho']:.2f} "
        f"[{ev['low']:.2f}, {ev['high']:.2f}] (95 % bootstrap over {ev['groups']} samples): validated "
        f"**{'yes' if eib.judge_precondition(ev).met else 'no'}**. It is not calibrated: an answer that shares nothing "
        f"with the triggers still scores {ev['mean (other)']:.2f} on average (the triggers of another image of the "
        f"same category), so its scores are compared with each other, never read as recalls."
    )


def text_only_answers(judge, encode: Callable, basic: pd.DataFrame, complex_set: pd.DataFrame,
                      num_text_answers: int, seed: int, log: Callable[[str], None] | None = print):
    """``(basic_q, complex_q, answered)``: ``num_text_answers`` random basic and the first complex questions
    answered without the image by ``judge``, each answer scored against its own triggers (``score``) and against
    another item's (``floor``) by the embedding judge; ``answered`` stacks both sets."""
    basic_q = basic.sample(min(num_text_answers, len(basic)), random_state=seed).reset_index(drop=True)
    complex_q = complex_set.head(num_text_answers).reset_index(drop=True)
    t0 = time.time()
    basic_q["answer"] = eib.text_answers(judge, basic_q.question)
    complex_q["answer"] = eib.text_answers(judge, complex_q.question)
    for frame in (basic_q, complex_q):
        frame["score"] = eib.embedding_recall(list(frame.answer), list(frame.triggers), encode)
        frame["floor"] = eib.embedding_recall(
            list(frame.answer), list(frame.triggers.iloc[eib.shuffled_pairs(len(frame), seed, groups=frame.path)]),
            encode)
    _log(log, f"{len(basic_q)} basic + {len(complex_q)} complex answers from {judge.name} in {time.time() - t0:.0f} s")
    answered = pd.concat([basic_q.assign(set="basic"), complex_q.assign(set="complex")], ignore_index=True)
    return basic_q, complex_q, answered


def gap_claim(basic_q: pd.DataFrame, complex_q: pd.DataFrame, embedding_validation: Mapping, judge_name: str,
              seed: int) -> pd.DataFrame:
    """The paper's complex-vs-basic claim tested on the text-only substitute."""
    return eib.claim_complex_gap(
        basic_q.score, basic_q.floor, complex_q.score, complex_q.floor, embedding_validation, seed=seed,
        scale_reason=(f"answers from {judge_name} without the image (text only), scored by the MiniLM embedding "
                      "judge; the paper: vision-language models' answers scored by Llama-3-8B / GPT-3.5"))


def gap_reading(claim: pd.DataFrame) -> str:
    """Markdown: the claim's verdict on the substitute and its unmet preconditions."""
    cell = claim.iloc[0]
    unmet = [p["name"] for p in cell.preconditions if not p["met"]]
    return (
        f"**Reading.** {cell.reason.split('. ')[-1] if unmet else cell.reason}. On the substitute the claim reads "
        f"**{verdicts.show_claims(claim).data.verdict.iloc[0]}**"
        + (f": unmet {', '.join(unmet)}." if unmet else ".")
        + " A text-only model cannot see what the triggers describe, so beating the floor is the test that its "
        "answers carry anything about their own item; where they do not, a gap between the sets would only reflect "
        "how the questions are worded."
    )


@dataclass
class ModelRun:
    """Model answers (basic and complex; ``None`` when none) and their judged scores (``None`` when not judged)."""

    answers: pd.DataFrame | None = None
    complex_answers: pd.DataFrame | None = None
    scores: pd.DataFrame | None = None
    complex_scores: pd.DataFrame | None = None


def model_answers(judge, basic: pd.DataFrame, complex_set: pd.DataFrame, *, vlm_model: str, image_root: str,
                  num_answers: int, answers_file: str, max_new_tokens: int, seed: int,
                  log: Callable[[str], None] | None = print, show: Callable | None = None) -> ModelRun:
    """A vision-language model's answers (``vlm_model`` on ``image_root``) or a JSONL file's, judged with the
    authors' protocol and scored both ways; ``show`` (IPython's ``display`` when None) gets the score tables."""
    if show is None:
        from IPython.display import display as show
    run = ModelRun()
    if vlm_model and num_answers:
        questions = basic if num_answers < 0 else basic.head(num_answers)
        # one model load for the basic questions and the 50 complex ones ((path, question) pairs never coincide)
        generated = eib.generate_answers(vlm_model, image_root, pd.concat(
            [questions[["path", "question"]], complex_set[["path", "question"]]], ignore_index=True))
        is_complex = pd.Series(list(zip(generated.path, generated.question))).isin(
            set(zip(complex_set.path, complex_set.question))).to_numpy()
        run.answers, run.complex_answers = generated[~is_complex], generated[is_complex]
        _log(log, f"{len(run.answers)} basic and {len(run.complex_answers)} complex answers; "
                  f"{len(generated.attrs['missing'])} images missing")
    elif answers_file:
        with open(answers_file) as f:
            run.answers = pd.DataFrame([{"path": p, "answer": a} for line in f if line.strip()
                                        for p, a in json.loads(line).items()])
    if run.answers is not None and len(run.answers):
        answers = run.answers
        to_judge = pd.DataFrame({"path": answers.path.to_numpy(), "record": answers.answer.to_numpy(),
                                 "truth": answers.path.map(dict(zip(basic.path, basic.truth))).to_numpy()})
        replies, _ = eib.judge_faithful(judge, to_judge, max_new_tokens=max_new_tokens, seed=seed)
        judged = list(zip(to_judge.path, replies))
        run.scores = pd.DataFrame([{"scorer": "as written", **eib.official_scores(judged).row()},
                                   {"scorer": "corrected", **eib.corrected_scores(
                                       judged, dict(zip(basic.path, basic.n_triggers))).row()}])
        show(run.scores.round(4))
    else:
        _log(log, "no answers to judge: the images are request-only (set vlm_model + image_root, or answers_file)")
    if run.complex_answers is not None and len(run.complex_answers):
        complex_answers = run.complex_answers
        # one judge prompt per line of ec_complex.jsonl (llama3-eval-complex.py)
        lines = complex_set.set_index(["path", "question"]).loc[list(zip(complex_answers.path,
                                                                         complex_answers.question))]
        to_judge_c = pd.DataFrame({"record": complex_answers.answer.to_numpy(), "truth": lines.truth.to_numpy()})
        replies_c, _ = eib.judge_faithful(judge, to_judge_c, max_new_tokens=max_new_tokens, seed=seed, complex_=True)
        run.complex_scores = pd.DataFrame([
            {"scorer": "as written (recall)", **eib.official_complex_scores(replies_c).row()},
            {"scorer": "corrected", **eib.corrected_complex_scores(replies_c, list(lines.n_triggers)).row()}])
        show(run.complex_scores.round(4))
    return run


def compare_published(paper, run: ModelRun, basic: pd.DataFrame, complex_set: pd.DataFrame, answers_row: str,
                      log: Callable[[str], None] | None = print) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(cmp_basic, cmp_complex)``: a verdict on a published cell needs the paper's recipe (that model's answers
    on every question, the Llama-3-8B judge); otherwise the cells are not run here. ``log`` gets the counts."""
    basic_rep = {}
    if run.scores is not None and answers_row and len(run.answers) == len(basic):
        basic_rep[(answers_row, JUDGE_COL)] = 100 * float(run.scores.iloc[0]["overall"])
    cmp_basic = verdicts.compare(
        paper.table("basic"), basic_rep, scale="paper",
        default_reason="needs the model's answers (images request-only; no answers published) and the judge")
    complex_rep, complex_row = {}, answers_row.split(": ", 1)[-1]  # the complex table names the model only
    if run.complex_scores is not None and answers_row and len(run.complex_answers) == len(complex_set):
        complex_rep[(complex_row, JUDGE_COL)] = 100 * float(run.complex_scores.iloc[0]["overall"])
    cmp_complex = verdicts.compare(
        paper.table("complex"), complex_rep, scale="paper",
        default_reason="needs the model's answers on the 50 complex questions (images request-only) and the judge")
    _log(log, cmp_basic.verdict.value_counts().to_string() + "\n" + cmp_complex.verdict.value_counts().to_string())
    return cmp_basic, cmp_complex


def summary_texts(judge_name: str, basic_q: pd.DataFrame, complex_q: pd.DataFrame) -> dict[str, str]:
    """The summary box's sentences (``paper_claim``, ``ran_here``, ``not_reproduced``)."""
    return dict(
        paper_claim=("EIBench measures why an emotion arises: models list its triggers, an LLM judge counts those "
                     "found, and models fall short, especially on complex multi-faceted questions."),
        ran_here=(f"the benchmark files recounted and the judge's scoring scripts as written; a {judge_name} judge "
                  f"and an offline MiniLM embedding judge validated on constructed answers; the complex-vs-basic gap "
                  f"on a substitute ({len(basic_q)} + {len(complex_q)} text-only answers from {judge_name})."),
        not_reproduced=("the README's model scores (answers need request-only images; no answers or judge outputs "
                        "published)."),
    )

