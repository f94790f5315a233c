"""EIBench (Lin et al., "Why We Feel...", arXiv 2504.07521; formerly EmCoBench): emotion-trigger benchmark.

Sources: ``Lum1104/EIBench`` @ ``aff98d088367e60ac412905dd534f0cf062386b7`` (``../shared/research/emotion.md``
section 3): ``EI_Basic/{user.jsonl, basic_ground_truth.json, llama3-eval.py, gpt-eval.py, get_scores.py}``,
``EI_Complex/{ec_complex.jsonl, llama3-eval-complex.py, gpt-eval-complex.py, get_scores_complex.py}``,
``human_eval/score_786{1,2,6}.jsonl`` and ``EmCoBench/human_eval/analysis.py``.

The task: given an image and "What might have caused ...?", list the triggers of the emotion. A judge LLM compares
the answer ("record of comprehension") with the ground-truth trigger list and replies ``{score: correct/total}``.

**The authors' scorer, as written** (:func:`official_scores`):

- judge prompt :data:`JUDGE_BASIC` / :data:`JUDGE_COMPLEX` with system message :data:`JUDGE_SYSTEM`; Llama-3 judge:
  sampling, temperature 0.1, top_p 0.9, up to 512 new tokens, retried up to 5 times until ``"{score: "`` appears in
  the *lower-cased* reply, else the reply is replaced by ``{score: 0/1}`` (:func:`judge_with_retries`);
- parsing: the case-sensitive regex ``\\{score: (\\d+)/\\d+\\}``; per-sample score correct/total (no clamp:
  6/5 counts 1.2);
- categories by path substring, in this order: ``"Happy"``, ``"sad"``, ``"Angry"``, ``"excit"``;
- **quirk 1**: when the regex fails, the overall list gets nothing but the category list gets the *previous*
  sample's score (the loop variable is reused; on the first sample the script would crash);
- **quirk 2**: the retry test lower-cases the reply, the regex does not: ``{Score: 3/5}`` ends the retries and then
  fails to parse;
- overall = mean over parsed samples (sample-weighted), categories = mean per list;
- complex set: one prompt per line of ``ec_complex.jsonl`` (answers aligned with ground truth by line index, a
  mismatch is only printed), reported as "recall"; the GPT complex script accumulates earlier prompts into later
  ones and the argparse flag ``--ec-data-file`` does not match the ``args.ei_data_file`` the code reads (both
  scripts crash as written). ``llama3-eval-complex.py`` appends one "record + ground truth" block per question of
  the line to a single prompt (:func:`complex_judge_messages`; every line of the released file has one question);
  ``get_scores_complex.py`` averages correct/total over the replies the regex parses and only prints the others
  (:func:`official_complex_scores`; no categories, no re-used value).

**A corrected variant** (:func:`corrected_scores`, :func:`corrected_complex_scores`): a tolerant regex (case, spaces), correct clamped to total,
failures counted and excluded (never replaced), optionally the denominator fixed to the number of ground-truth
triggers instead of the judge's own count, categories from the image folder.

**Human evaluation** (:func:`human_eval_summary`): 3 annotators scored 200 samples 1-5; per annotator the mean per
category, overall = mean of the 4 category means; then averaged over annotators (``analysis.py``); published
overall 4.416.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "ANSWER_PROMPT",
    "CATEGORIES",
    "JUDGE_BASIC",
    "JUDGE_COMPLEX",
    "JUDGE_SYSTEM",
    "GAP_CLAIM",
    "JUDGE_MIN_RHO",
    "MIN_QUESTIONS",
    "answer_segments",
    "category_corrected",
    "claim_complex_gap",
    "difference_interval",
    "embedding_recall",
    "judge_faithful",
    "judge_forced",
    "judge_precondition",
    "mean_interval",
    "minilm_encoder",
    "shuffled_pairs",
    "spearman_interval",
    "text_answers",
    "validate_judge",
    "category_official",
    "complex_judge_messages",
    "constructed_records",
    "corrected_complex_scores",
    "corrected_scores",
    "dataset_statistics",
    "generate_answers",
    "human_eval_summary",
    "judge_messages",
    "judge_with_retries",
    "load_basic",
    "load_complex",
    "load_human_eval",
    "official_complex_scores",
    "official_scores",
    "parse_score_corrected",
    "parse_score_official",
    "split_triggers",
]

#: Category names in the order of ``get_scores.py`` (happy, angry, sad, excitement).
CATEGORIES = ("happy", "angry", "sad", "excitement")

#: The prompt every baseline model answers (``baselines/*``): "{question}" is the user.jsonl question.
ANSWER_PROMPT = "You are a good expert of emotion understanding. Look at the image, {question}"

JUDGE_SYSTEM = ("You are a helpful and precise assistant for checking the quality of the answer. Only say the "
                "content user wanted.")

#: ``llama3-eval.py`` (basic; note "comprehend an emotion") and ``llama3-eval-complex.py`` ("comprehending").
JUDGE_BASIC = (
    "Your task is to assess a record aimed at comprehend an emotion and compare it against the truth label. "
    "Determine the number of potential triggers identified correctly versus those missed. Please provide your "
    "assessment in the format: {score: correct/total}, e.g. {score: 2/5} for 2 correct and 5 in total. And include "
    "an explanation of your assessment."
    " The record is below:\n\nRecord of comprehension:\n{record}. Here is the ground truth label:\n\nGround Truth:\n"
    "{truth}\n\nYour Assessment:"
)
JUDGE_COMPLEX = JUDGE_BASIC.replace("aimed at comprehend an", "aimed at comprehending an")

_OFFICIAL_RE = re.compile(r"\{score: (\d+)/\d+\}")
_CORRECTED_RE = re.compile(r"\{\s*score\s*:\s*(\d+)\s*/\s*(\d+)\s*\}", re.IGNORECASE)
_TRIGGER_RE = re.compile(r"^\s*\d+\s*[.)]\s*")


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------
def split_triggers(text: str) -> list[str]:
    """A ground-truth string ``"1. a.\\n2. b"`` -> ``["a", "b"]`` (numbering and a final period removed)."""
    out = []
    for line in str(text).splitlines():
        line = _TRIGGER_RE.sub("", line).strip()
        if line:
            out.append(line[:-1] if line.endswith(".") else line)
    return out


def category_official(path: str) -> str | None:
    """``get_scores.py``: "Happy" / "sad" / "Angry" / "excit" substrings tested in that order (case-sensitive)."""
    for needle, name in (("Happy", "happy"), ("sad", "sad"), ("Angry", "angry"), ("excit", "excitement")):
        if needle in path:
            return name
    return None


def category_corrected(path: str) -> str | None:
    """The class folder of the image: CAER-S ``.../Happy|Angry/...``, EmoSet ``image/<emotion>/...``."""
    parts = path.split("/")
    folder = parts[-2].lower() if len(parts) >= 2 else ""
    return {"happy": "happy", "angry": "angry", "anger": "angry", "sadness": "sad", "sad": "sad",
            "excitement": "excitement"}.get(folder)


def _source(path: str) -> str:
    return path.split("/")[0]


def load_basic(root: str | Path) -> pd.DataFrame:
    """EI_Basic: one row per question (path, question, truth text, triggers list, n_triggers, source, category)."""
    root = Path(root)
    questions = {}
    with open(root / "EI_Basic" / "user.jsonl") as f:
        for line in f:
            if line.strip():
                questions.update(json.loads(line))
    truth = json.loads((root / "EI_Basic" / "basic_ground_truth.json").read_text())
    rows = []
    for path, question in questions.items():
        text = truth.get(path)
        triggers = split_triggers(text) if text is not None else []
        rows.append({"path": path, "question": question, "truth": text, "triggers": triggers,
                     "n_triggers": len(triggers), "source": _source(path), "category": category_corrected(path),
                     "category_official": category_official(path)})
    return pd.DataFrame(rows)


def load_complex(root: str | Path) -> pd.DataFrame:
    """EI_Complex: one row per line of ``ec_complex.jsonl`` (path, question, truth, triggers, n_triggers)."""
    rows = []
    with open(Path(root) / "EI_Complex" / "ec_complex.jsonl") as f:
        for line_no, line in enumerate(f):
            if not line.strip():
                continue
            for path, qa in json.loads(line).items():
                for question, text in qa.items():
                    triggers = split_triggers(text)
                    rows.append({"line": line_no, "path": path, "question": question, "truth": text,
                                 "triggers": triggers, "n_triggers": len(triggers)})
    return pd.DataFrame(rows)


def load_human_eval(root: str | Path, annotators: Sequence[str] = ("7861", "7862", "7866")) -> pd.DataFrame:
    """The human scores: one row per (annotator, path) with the integer score and its category."""
    rows = []
    for ann in annotators:
        with open(Path(root) / "human_eval" / f"score_{ann}.jsonl") as f:
            for line in f:
                if line.strip():
                    for path, score in json.loads(line).items():
                        rows.append({"annotator": ann, "path": path, "score": int(score)})
    df = pd.DataFrame(rows)
    # analysis.py: "happy" / "sad" / "angry" / "excitement" tested in that order on the lower-cased path
    df["category"] = [next((c for c in ("happy", "sad", "angry", "excitement") if c in p.lower()), None)
                      for p in df["path"]]
    return df


def dataset_statistics(basic: pd.DataFrame, complex_: pd.DataFrame) -> dict[str, float]:
    """Counts recomputed from the files: questions per set, per source and category, triggers per sample."""
    stats = {
        "basic questions": len(basic),
        "complex questions": len(complex_),
        "complex images": complex_["path"].nunique(),
        "basic + complex": len(basic) + len(complex_),
        "CAER-S": int((basic.source == "CAER-S").sum()),
        "EmoSet-118K": int((basic.source == "EmoSet-118k").sum()),
    }
    for cat in CATEGORIES:
        stats[cat] = int((basic.category == cat).sum())
    stats.update({
        "triggers mean": float(basic.n_triggers.mean()),
        "triggers min": int(basic.n_triggers.min()),
        "triggers max": int(basic.n_triggers.max()),
        "complex triggers mean": float(complex_.n_triggers.mean()),
    })
    return stats


# ----------------------------------------------------------------------------------------------------------------
# Human evaluation
# ----------------------------------------------------------------------------------------------------------------
def human_eval_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """``analysis.py``: per annotator the mean and population std of each category and overall = mean of the four
    category means (std = sqrt of the mean variance); then the row ``mean`` averages the annotators' means and pools
    their stds as sqrt(mean of variances). Columns: ``<category>``, ``overall``, ``<category> std``, ``overall std``."""
    rows = {}
    for ann, group in scores.groupby("annotator", sort=True):
        means = group.groupby("category")["score"].mean()
        stds = group.groupby("category")["score"].std(ddof=0)
        row = {c: means[c] for c in CATEGORIES}
        row["overall"] = float(np.mean([means[c] for c in CATEGORIES]))
        row.update({f"{c} std": stds[c] for c in CATEGORIES})
        row["overall std"] = float(np.sqrt(np.mean([stds[c] ** 2 for c in CATEGORIES])))
        rows[ann] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    mean = {c: table[c].mean() for c in list(CATEGORIES) + ["overall"]}
    mean.update({f"{c} std": float(np.sqrt((table[f"{c} std"] ** 2).mean())) for c in CATEGORIES})
    mean["overall std"] = float(np.sqrt(np.mean([mean[f"{c} std"] ** 2 for c in CATEGORIES])))
    table.loc["mean"] = mean
    return table


# ----------------------------------------------------------------------------------------------------------------
# The judge
# ----------------------------------------------------------------------------------------------------------------
def judge_messages(record: str, truth: str, complex_: bool = False) -> list[dict]:
    """The judge conversation: system :data:`JUDGE_SYSTEM`, user :data:`JUDGE_BASIC` (or ``_COMPLEX``)."""
    template = JUDGE_COMPLEX if complex_ else JUDGE_BASIC
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": template.replace("{record}", str(record)).replace("{truth}", str(truth))}]


_COMPLEX_HEADER = JUDGE_COMPLEX.split(" The record is below:")[0]
_COMPLEX_BLOCK = " The record is below:" + JUDGE_COMPLEX.split(" The record is below:")[1]


def complex_judge_messages(record: str, truths: Sequence[str]) -> list[dict]:
    """The judge conversation of ``llama3-eval-complex.py`` for one line of ``ec_complex.jsonl``: the instruction,
    then for **each** ground-truth trigger list of the line one block "The record is below: ... Record of
    comprehension: {record}. Here is the ground truth label: ... Ground Truth: {truth} ... Your Assessment:" appended
    to the same user message (so the record is repeated once per question). With one question per line, as in the
    released file, this is :func:`judge_messages` with ``complex_=True``."""
    if isinstance(truths, str):
        truths = [truths]
    content = _COMPLEX_HEADER
    for truth in truths:
        content += _COMPLEX_BLOCK.replace("{record}", str(record)).replace("{truth}", str(truth))
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": content}]


def judge_with_retries(generate: Callable[[int], str], max_tries: int = 5) -> tuple[str, int]:
    """The retry loop of ``llama3-eval.py``: call ``generate(attempt)`` until ``"{score: "`` is in the lower-cased
    reply; after ``max_tries`` failures the reply becomes ``"{score: 0/1}"``. Returns (reply, attempts used)."""
    for attempt in range(max_tries):
        reply = generate(attempt)
        if "{score: " in reply.lower():
            return reply, attempt + 1
    return "{score: 0/1}", max_tries


def parse_score_official(text: str) -> tuple[int, int] | None:
    """``get_scores.py``: the first ``{score: c/t}`` (exact case and spacing) -> (c, t); None if absent."""
    match = _OFFICIAL_RE.search(text)
    if not match:
        return None
    correct, total = match[0].split(" ")[1].split("/")
    return int(correct), int(total.replace("}", ""))


def parse_score_corrected(text: str) -> tuple[int, int] | None:
    """Tolerant parse: any case, optional spaces; None if absent or total is 0."""
    match = _CORRECTED_RE.search(text)
    if not match or int(match[2]) == 0:
        return None
    return int(match[1]), int(match[2])


@dataclass(frozen=True)
class JudgeScores:
    """Scores of one judged answer file (fractions): ``overall``, ``per_category`` means, counts."""

    overall: float
    per_category: dict[str, float]
    n_scored: int
    n_failed: int
    category_counts: dict[str, int]

    def row(self) -> dict:
        return {"overall": self.overall, **self.per_category, "n_scored": self.n_scored, "n_failed": self.n_failed}


def official_scores(judged: Iterable[tuple[str, str]]) -> JudgeScores:
    """``get_scores.py`` on (path, judge reply) pairs, quirks included (see the module docstring).

    Raises ``UnboundLocalError`` if the very first reply does not parse, as the script does."""
    scores: list[float] = []
    lists: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    failed = 0
    have_value = False
    score_value = 0.0
    for path, reply in judged:
        parsed = parse_score_official(reply)
        if parsed:
            score_value = parsed[0] / parsed[1]
            have_value = True
            scores.append(score_value)
        else:
            failed += 1
        cat = category_official(path)
        if cat is not None:
            if not have_value:
                raise UnboundLocalError("first judged reply has no {score: c/t}; get_scores.py crashes here")
            lists[cat].append(score_value)
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731  (the script's calculate_average_score)
    return JudgeScores(overall=mean(scores), per_category={c: mean(v) for c, v in lists.items()},
                       n_scored=len(scores), n_failed=failed, category_counts={c: len(v) for c, v in lists.items()})


def corrected_scores(judged: Iterable[tuple[str, str]], n_truth: Mapping[str, int] | None = None) -> JudgeScores:
    """The corrected scorer: tolerant parse, correct clamped to total, failures excluded everywhere, categories from
    the image folder, and (when ``n_truth`` maps path -> number of ground-truth triggers) the denominator fixed to
    that number, so the score is the recall of the ground-truth triggers."""
    scores: list[float] = []
    lists: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    failed = 0
    for path, reply in judged:
        parsed = parse_score_corrected(reply)
        if parsed is None:
            failed += 1
            continue
        correct, total = parsed
        if n_truth is not None and path in n_truth:
            total = n_truth[path]
        value = min(correct, total) / total
        scores.append(value)
        cat = category_corrected(path)
        if cat is not None:
            lists[cat].append(value)
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return JudgeScores(overall=mean(scores), per_category={c: mean(v) for c, v in lists.items()},
                       n_scored=len(scores), n_failed=failed, category_counts={c: len(v) for c, v in lists.items()})


def official_complex_scores(replies: Iterable[str]) -> JudgeScores:
    """``get_scores_complex.py`` on the judge replies of the complex set (one per line of ``ec_complex.jsonl``):
    the mean of correct/total over the replies the case-sensitive regex parses (no clamp), the others only counted
    as failed (the script prints their path); 0 when nothing parses. The README reports this mean as "recall".
    Unlike the basic script there are no categories and no re-used previous value."""
    scores, failed = [], 0
    for reply in replies:
        parsed = parse_score_official(reply)
        if parsed:
            scores.append(parsed[0] / parsed[1])
        else:
            failed += 1
    return JudgeScores(overall=sum(scores) / len(scores) if scores else 0.0, per_category={},
                       n_scored=len(scores), n_failed=failed, category_counts={})


def corrected_complex_scores(replies: Iterable[str], n_truth: Sequence[int] | None = None) -> JudgeScores:
    """The corrected complex scorer: tolerant parse, correct clamped to total, failures counted and excluded (NaN
    when nothing parses), and with ``n_truth`` (the number of ground-truth triggers of each line, in the same
    order) the denominator fixed to it, so the mean is the recall of the annotated triggers."""
    replies = list(replies)
    if n_truth is not None and len(n_truth) != len(replies):
        raise ValueError(f"{len(replies)} replies vs {len(n_truth)} trigger counts")
    scores, failed = [], 0
    for i, reply in enumerate(replies):
        parsed = parse_score_corrected(reply)
        if parsed is None:
            failed += 1
            continue
        correct, total = parsed
        if n_truth is not None:
            total = int(n_truth[i])
        scores.append(min(correct, total) / total)
    return JudgeScores(overall=float(np.mean(scores)) if scores else float("nan"), per_category={},
                       n_scored=len(scores), n_failed=failed, category_counts={})


# ----------------------------------------------------------------------------------------------------------------
# Records with a known answer (to measure a judge)
# ----------------------------------------------------------------------------------------------------------------
def constructed_records(basic: pd.DataFrame, num: int, seed: int = 0) -> pd.DataFrame:
    """Answers whose correct score is known by construction, from real ground-truth triggers.

    For ``num`` samples drawn at random, taken round-robin over the four categories: ``full`` = all ground-truth triggers (expected
    n/n), ``half`` = the first ceil(n/2) triggers (expected ceil(n/2)/n), ``other`` = the triggers of a different
    sample of the same category (expected close to 0: may share a generic trigger). Columns: ``path, condition,
    record, truth, expected, n_triggers, category``."""
    rng = np.random.default_rng(seed)
    pool = basic[basic.n_triggers > 0].reset_index(drop=True)
    per_cat = max(1, -(-num // len(CATEGORIES)))
    by_cat = [list(rng.choice(np.flatnonzero(pool.category == cat), size=per_cat, replace=False))
              for cat in CATEGORIES]
    picked = [i for group in zip(*by_cat) for i in group][:num]  # round-robin over the categories
    rows = []
    for i in picked:
        row = pool.iloc[i]
        trig = row.triggers
        half = trig[: int(np.ceil(len(trig) / 2))]
        others = np.flatnonzero((pool.category == row.category).to_numpy() & (np.arange(len(pool)) != i))
        other = pool.iloc[int(rng.choice(others))].triggers
        for cond, rec, exp in (("full", trig, 1.0), ("half", half, len(half) / len(trig)), ("other", other, 0.0)):
            rows.append({"path": row.path, "condition": cond,
                         "record": " ".join(f"{t}." for t in rec), "truth": row.truth, "expected": exp,
                         "n_triggers": len(trig), "category": row.category})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# Running a chat-LM judge (SmolLM2 here, Llama-3-8B on a GPU) and measuring its agreement with known scores
# ----------------------------------------------------------------------------------------------------------------
def judge_faithful(judge, records: pd.DataFrame, *, max_new_tokens: int, seed: int = 0,
                   complex_: bool = False) -> tuple[list[str], list[int]]:
    """The authors' protocol on ``records`` (columns ``record``, ``truth``): sampling at temperature 0.1, top-p 0.9,
    up to 5 tries until ``"{score: "`` appears (:func:`judge_with_retries`). Returns (replies, tries per record)."""
    replies, tries = [], []
    for rec in records.itertuples():
        msgs = (complex_judge_messages(rec.record, [rec.truth]) if complex_
                else judge_messages(rec.record, rec.truth))
        reply, used = judge_with_retries(lambda attempt: judge.chat(
            msgs, max_new_tokens=max_new_tokens, do_sample=True, temperature=0.1, top_p=0.9,
            seed=seed * 100 + attempt))
        replies.append(reply)
        tries.append(used)
    return replies, tries


def judge_forced(judge, records: pd.DataFrame, *, max_new_tokens: int = 8) -> pd.DataFrame:
    """Format-forced decoding: ``{score: `` is written at the start of the assistant's turn and the judge decodes
    greedily from there. Returns ``records`` with ``reply``, ``judge c/t``, ``score`` (correct/judge's total) and
    ``recall`` (correct / annotated triggers), NaN where the reply does not parse."""
    out = records.copy()
    out["reply"] = [judge.chat(judge_messages(r.record, r.truth), max_new_tokens=max_new_tokens, prefix="{score: ")
                    for r in records.itertuples()]
    parsed = [parse_score_corrected(r) for r in out.reply]
    out["judge c/t"] = [f"{p[0]}/{p[1]}" if p else "—" for p in parsed]
    out["score"] = [min(p[0], p[1]) / p[1] if p else np.nan for p in parsed]
    out["recall"] = [min(p[0], n) / n if p else np.nan for p, n in zip(parsed, out.n_triggers)]
    return out


# ----------------------------------------------------------------------------------------------------------------
# An offline judge: sentence-embedding similarity between an answer and the annotated triggers
# ----------------------------------------------------------------------------------------------------------------
_SEGMENT_RE = re.compile(r"(?:\n+|(?<=[.;!?])\s+|^\s*\d+\s*[.)]\s*)", re.MULTILINE)


def answer_segments(text: str) -> list[str]:
    """An answer cut into the phrases a trigger can match: lines, sentences and ``;`` clauses, list numbering
    removed, final punctuation stripped as :func:`split_triggers` does. ``"1. Rain. 2. A lost dog; tears."`` ->
    ``["Rain", "A lost dog", "tears"]``."""
    parts = [p.strip() for p in _SEGMENT_RE.split(str(text)) if p and p.strip()]
    parts = [_TRIGGER_RE.sub("", p).strip().rstrip(".;!? ").strip() for p in parts]
    return [p for p in parts if re.search(r"\w", p)]


def minilm_encoder(max_length: int = 32) -> Callable[[Sequence[str]], np.ndarray]:
    """``encode(texts) -> (N, 384)`` L2-normalised all-MiniLM-L6-v2 sentence embeddings (the model loaded once)."""
    from compendium.emotion.backbones import encode_texts, load_minilm

    model = load_minilm()
    return lambda texts: encode_texts(list(texts), max_length=max_length, model=model)["sentence"]


def embedding_recall(answers: Sequence[str], triggers: Sequence[Sequence[str]],
                     encode: Callable[[Sequence[str]], np.ndarray]) -> np.ndarray:
    """The embedding judge: for each answer, the mean over its annotated triggers of the best cosine similarity
    between the trigger and any phrase of the answer (:func:`answer_segments`). 1 when every trigger appears
    verbatim; no threshold to tune. ``encode`` returns L2-normalised embeddings (:func:`minilm_encoder`)."""
    if len(answers) != len(triggers):
        raise ValueError(f"{len(answers)} answers vs {len(triggers)} trigger lists")
    segs = [answer_segments(a) or [str(a)] for a in answers]
    texts = list(dict.fromkeys([s for ss in segs for s in ss] + [t for ts in triggers for t in ts]))
    vectors = np.asarray(encode(texts), dtype=np.float64)
    index = {t: i for i, t in enumerate(texts)}
    scores = []
    for ss, ts in zip(segs, triggers):
        if not ts:
            scores.append(np.nan)
            continue
        sim = vectors[[index[t] for t in ts]] @ vectors[[index[s] for s in ss]].T
        scores.append(float(np.clip(sim.max(axis=1), -1.0, 1.0).mean()))
    return np.asarray(scores)


def shuffled_pairs(n: int, seed: int = 0, groups: Sequence | None = None) -> np.ndarray:
    """A random derangement of ``range(n)``: answer i is scored against the triggers of question ``perm[i]``, the
    floor an answer reaches without being about its own item. With ``groups`` (e.g. the image path: several complex
    questions share an image and its triggers) no item is paired with one of its own group."""
    if n < 2:
        raise ValueError("a derangement needs at least 2 items")
    keys = np.arange(n) if groups is None else np.asarray(list(groups))
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        order = rng.permutation(n)
        perm = np.empty(n, dtype=int)
        perm[order] = np.roll(order, -1)  # one random cycle through all items: nobody keeps its place
        if not (keys[perm] == keys).any():
            return perm
    raise ValueError("no pairing across groups found: one group holds most of the items")


def spearman_interval(x: Sequence[float], y: Sequence[float], *, groups: Sequence | None = None,
                      n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Spearman's rho of ``x`` and ``y`` with a percentile bootstrap interval. With ``groups`` the bootstrap
    resamples whole groups (the records built from one sample move together). Resamples where either side is
    constant are skipped; rho is NaN when the full data is constant on either side."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    keys = np.asarray(groups)[ok] if groups is not None else np.arange(len(x))

    def rho(a, b):
        return float(spearmanr(a, b).statistic) if len(a) > 2 and np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")

    point = rho(x, y)
    uniq = list(dict.fromkeys(keys.tolist()))
    members = {k: np.flatnonzero(keys == k) for k in uniq}
    rng = np.random.default_rng(seed)
    boots = []
    if not np.isnan(point):
        for _ in range(n_boot):
            idx = np.concatenate([members[uniq[i]] for i in rng.integers(0, len(uniq), len(uniq))])
            boots.append(rho(x[idx], y[idx]))
    boots = np.asarray([b for b in boots if not np.isnan(b)])
    tail = 100 * (1 - level) / 2
    low, high = (np.percentile(boots, [tail, 100 - tail]) if len(boots) else (np.nan, np.nan))
    return {"rho": point, "low": float(low), "high": float(high), "n": int(len(x)), "groups": len(uniq)}


def mean_interval(values: Sequence[float], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """The mean of ``values`` (e.g. paired differences) with a percentile bootstrap interval."""
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    rng = np.random.default_rng(seed)
    boots = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(axis=1) if len(v) else np.array([])
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(boots, [tail, 100 - tail]) if len(v) else (np.nan, np.nan)
    return {"mean": float(v.mean()) if len(v) else float("nan"), "low": float(low), "high": float(high), "n": len(v)}


def difference_interval(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                        level: float = 0.95) -> dict:
    """mean(a) - mean(b) of two independent samples, with a percentile bootstrap interval (each side resampled)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    rng = np.random.default_rng(seed)
    boots = (a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1) - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(boots, [tail, 100 - tail])
    return {"diff": float(a.mean() - b.mean()), "low": float(low), "high": float(high), "n_a": len(a), "n_b": len(b)}


def validate_judge(records: pd.DataFrame, column: str, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """A judge's agreement with the known scores of :func:`constructed_records`: Spearman's rho of ``column`` with
    ``expected`` (bootstrap interval over samples), the mean absolute error, the mean per condition and how many
    records the judge scored."""
    ok = records.dropna(subset=[column])
    out = spearman_interval(ok[column], ok["expected"], groups=ok["path"], n_boot=n_boot, seed=seed)
    out.update({"records": len(ok), "of": len(records), "mean |judge - expected|": float((ok[column] - ok.expected).abs().mean())
                if len(ok) else float("nan")})
    out.update({f"mean ({c})": float(ok[ok.condition == c][column].mean()) for c in ("full", "half", "other")})
    return out


# ----------------------------------------------------------------------------------------------------------------
# Answers from a small text-only LLM (the substitute for the benchmark's vision-language models)
# ----------------------------------------------------------------------------------------------------------------
def text_answers(lm, questions: Sequence[str], *, max_new_tokens: int = 32, progress: bool = False) -> list[str]:
    """Greedy answers of a chat LM to :data:`ANSWER_PROMPT` without the image (it cannot see one): what the
    question's wording and the model's priors about the named emotion give."""
    items = list(questions)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="answers", leave=False)
    return [lm.chat([{"role": "user", "content": ANSWER_PROMPT.format(question=q)}],
                    max_new_tokens=max_new_tokens).strip() for q in items]


# ----------------------------------------------------------------------------------------------------------------
# Claims (rules with their thresholds, named once)
# ----------------------------------------------------------------------------------------------------------------
#: A judge is used for a claim only when the lower end of the 95 % interval of its Spearman rho with the known
#: scores of the constructed records reaches 0.5, Cohen's (1988) threshold for a large correlation.
JUDGE_MIN_RHO = 0.5
#: Questions per set below which a bootstrap interval on a mean score is not trusted (the complex set has 50).
MIN_QUESTIONS = 30

GAP_CLAIM = ("Models score lower on complex (multi-faceted) EI questions than on basic ones "
             "(the paper's 'performance gaps, especially for more intricate scenarios')")
GAP_SOURCE = "arXiv 2504.07521 abstract; README basic vs complex tables"


def judge_precondition(validation: Mapping, name: str = "judge validated") -> "Precondition":
    """The judge-validation precondition: lower end of Spearman's 95 % interval >= :data:`JUDGE_MIN_RHO`."""
    from compendium.verdicts import Precondition

    low = validation.get("low", float("nan"))
    return Precondition(name, f"Spearman 95 % CI low >= {JUDGE_MIN_RHO}",
                        f"rho {validation.get('rho', float('nan')):.2f} [{low:.2f}, {validation.get('high', float('nan')):.2f}]",
                        bool(np.isfinite(low) and low >= JUDGE_MIN_RHO))


def claim_complex_gap(basic: Sequence[float], basic_floor: Sequence[float], complex_: Sequence[float],
                      complex_floor: Sequence[float], validation: Mapping, *, scale: str = "substitute",
                      scale_reason: str = "", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The complex-vs-basic gap on one answer model, scored by a judge.

    ``basic`` / ``complex_``: the judge's score of each answer; ``*_floor``: the same answers scored against the
    triggers of another question of the same set (:func:`shuffled_pairs`). Holds when basic - complex has a 95 %
    interval above 0, fails when it is below 0, else undecided. Preconditions: the judge is validated
    (:func:`judge_precondition`), at least :data:`MIN_QUESTIONS` answers per set, and in each set the answers beat
    their floor (paired difference interval above 0: they say something about their own item)."""
    from compendium.verdicts import Precondition, claim

    gap = difference_interval(basic, complex_, n_boot=n_boot, seed=seed)
    floors = {name: mean_interval(np.asarray(s, float) - np.asarray(f, float), n_boot=n_boot, seed=seed)
              for name, s, f in (("basic", basic, basic_floor), ("complex", complex_, complex_floor))}
    pres = [judge_precondition(validation),
            Precondition("enough questions", f">= {MIN_QUESTIONS} per set", f"basic {gap['n_a']}, complex {gap['n_b']}",
                         min(gap["n_a"], gap["n_b"]) >= MIN_QUESTIONS)]
    for name, f in floors.items():
        pres.append(Precondition(f"{name} answers above their floor", "answer - shuffled-triggers score: 95 % CI low > 0",
                                 f"{f['mean']:+.3f} [{f['low']:+.3f}, {f['high']:+.3f}]", bool(f["low"] > 0)))
    holds = True if gap["low"] > 0 else (False if gap["high"] < 0 else None)
    evidence = (f"basic {np.nanmean(basic):.3f} vs complex {np.nanmean(complex_):.3f}: gap {gap['diff']:+.3f} "
                f"[{gap['low']:+.3f}, {gap['high']:+.3f}] (95 % bootstrap CI, {gap['n_a']} + {gap['n_b']} answers)")
    if holds is None:
        evidence += "; the interval contains 0"
    if holds is None and not all(p.met for p in pres):  # verdicts.claim names unmet ones only for a decided test
        evidence = "unmet: " + "; ".join(p.text() for p in pres if not p.met) + ". " + evidence
    return claim("eibench", GAP_CLAIM, holds, evidence, scale=scale, scale_reason=scale_reason,
                 preconditions=pres, rule=f"{__name__}.claim_complex_gap", source=GAP_SOURCE, table="claims")


# ----------------------------------------------------------------------------------------------------------------
# Answers from a vision-language model (GPU machine, user-supplied images)
# ----------------------------------------------------------------------------------------------------------------
def generate_answers(model_path: str | Path, image_root: str | Path, questions: pd.DataFrame, *,
                     max_new_tokens: int = 256, limit: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Answer EIBench questions with a local vision-language checkpoint (``AutoModelForImageTextToText``, e.g.
    Qwen2-VL-7B-Instruct or LLaVA-NeXT), greedy, with :data:`ANSWER_PROMPT`.

    ``image_root`` holds ``CAER-S/...`` and ``EmoSet-118k/...`` as in ``user.jsonl`` (both data sets are
    request-only). Returns ``path, question, answer`` rows; missing images are skipped and listed in the
    ``missing`` attribute of the result."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    root = Path(image_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"no image folder at {root}: EIBench images come from EmoSet-118K (vcc.tech/EmoSet) and CAER-S "
            "(caer-dataset.github.io), both by request; put them under <root>/EmoSet-118k/... and <root>/CAER-S/...")
    processor = AutoProcessor.from_pretrained(model_path)
    model = AutoModelForImageTextToText.from_pretrained(
        model_path, dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32,
        device_map="auto" if torch.cuda.is_available() else None)
    model.eval()
    rows, missing = [], []
    items = questions.head(limit) if limit else questions
    iterator = items.itertuples()
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(items), desc="answers")
    for row in iterator:
        image_path = root / row.path
        if not image_path.exists():
            missing.append(row.path)
            continue
        messages = [{"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": ANSWER_PROMPT.format(question=row.question)}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(images=[Image.open(image_path).convert("RGB")], text=[prompt], return_tensors="pt")
        inputs = inputs.to(model.device)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        text = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]
        rows.append({"path": row.path, "question": row.question, "answer": text.strip()})
    result = pd.DataFrame(rows, columns=["path", "question", "answer"])
    result.attrs["missing"] = missing
    return result
