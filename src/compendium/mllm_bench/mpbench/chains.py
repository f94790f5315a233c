"""Multi-step arithmetic reasoning chains, generated and checked by program: the scaled-down MPBench.

A problem is a start value and a list of instructions ("add 7", "multiply by 2", ...); a solution is
one step per instruction, written ``a op b = c``. A step is **correct** exactly when it is locally
valid: ``a`` is the previous step's claimed result (the start value for the first step), ``op`` and
``b`` are the instruction's, and ``c`` is ``a op b``. So a step that correctly continues from a wrong
value is labelled correct, and the first-error position is well defined.

Errors are injected at known steps, of four kinds: ``arithmetic`` (wrong result), ``operand`` (wrong
number taken from the instruction), ``operation`` (wrong operation) and ``copy`` (the previous result
copied wrongly). Every value stays in 0..99, so each number is one token for the trained scorers.

Domains (the analogue of MPBench's science / commonsense / mathematics split): ``easy`` uses
additions and subtractions of 1..9; ``hard`` adds multiplications and exact divisions by 2..5 and
additions/subtractions of up to 30.

What this replaces (labelled in the chapter): M3CoT's multimodal science, commonsense and maths
problems, their GPT-4/Gemini/human-curated erroneous steps and the policy models' candidate solutions.
There is no image: the problem is given in text.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = [
    "OPS",
    "DOMAINS",
    "ERROR_KINDS",
    "Instruction",
    "Step",
    "Problem",
    "SCItem",
    "AAItem",
    "RSItem",
    "apply",
    "step_is_valid",
    "label_steps",
    "make_problem",
    "correct_solution",
    "inject_error",
    "sample_solution",
    "make_step_correctness",
    "make_answer_aggregation",
    "make_search",
    "propose_next_steps",
]

OPS = ("+", "-", "*", "/")
WORDS = {"+": "add {b}", "-": "subtract {b}", "*": "multiply by {b}", "/": "divide by {b}"}
DOMAINS = {
    "easy": {"ops": ("+", "-"), "addsub": (1, 9), "muldiv": (2, 5)},
    "hard": {"ops": ("+", "-", "*", "/"), "addsub": (1, 30), "muldiv": (2, 5)},
}
ERROR_KINDS = ("arithmetic", "operand", "operation", "copy")
LO, HI = 0, 99


def apply(a: int, op: str, b: int) -> int | None:
    """``a op b`` when it is an integer in 0..99, else None."""
    if op == "+":
        c = a + b
    elif op == "-":
        c = a - b
    elif op == "*":
        c = a * b
    elif op == "/":
        if b == 0 or a % b:
            return None
        c = a // b
    else:
        raise ValueError(f"unknown operation {op!r}")
    return c if LO <= c <= HI else None


@dataclass(frozen=True)
class Instruction:
    op: str
    b: int

    def text(self) -> str:
        return WORDS[self.op].format(b=self.b)


@dataclass(frozen=True)
class Step:
    a: int
    op: str
    b: int
    c: int

    def text(self) -> str:
        return f"{self.a} {self.op} {self.b} = {self.c}"


@dataclass(frozen=True)
class Problem:
    start: int
    instructions: tuple[Instruction, ...]
    domain: str = "easy"

    @property
    def answer(self) -> int:
        v = self.start
        for ins in self.instructions:
            v = apply(v, ins.op, ins.b)
        return v

    def text(self) -> str:
        parts = ", then ".join(i.text() for i in self.instructions)
        return f"Start with {self.start}. In order: {parts}. What is the result?"


def step_is_valid(step: Step, prev: int, ins: Instruction) -> bool:
    """The labelling rule: locally valid given the previous claimed value ``prev``."""
    return step.a == prev and step.op == ins.op and step.b == ins.b and apply(step.a, step.op, step.b) == step.c


def label_steps(problem: Problem, steps: list[Step]) -> list[int]:
    """1 for every locally valid step, else 0."""
    labels, prev = [], problem.start
    for step, ins in zip(steps, problem.instructions):
        labels.append(int(step_is_valid(step, prev, ins)))
        prev = step.c
    return labels


def _feasible_instructions(v: int, domain: str) -> list[Instruction]:
    spec = DOMAINS[domain]
    out = []
    for op in spec["ops"]:
        lo, hi = spec["addsub"] if op in "+-" else spec["muldiv"]
        for b in range(lo, hi + 1):
            if apply(v, op, b) is not None:
                out.append(Instruction(op, b))
    return out


def make_problem(rng: random.Random, n_steps: int = 6, domain: str = "easy") -> Problem:
    """A random problem whose every intermediate value is an integer in 0..99: a start value in
    2..60, then at each step an operation drawn uniformly among the feasible ones, then its operand."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {tuple(DOMAINS)}")
    start = v = rng.randint(2, 60)
    ins = []
    for _ in range(n_steps):
        options = _feasible_instructions(v, domain)
        op = rng.choice(sorted({o.op for o in options}))
        choice = rng.choice([o for o in options if o.op == op])
        ins.append(choice)
        v = apply(v, choice.op, choice.b)
    return Problem(start, tuple(ins), domain)


def correct_solution(problem: Problem) -> list[Step]:
    steps, v = [], problem.start
    for ins in problem.instructions:
        c = apply(v, ins.op, ins.b)
        steps.append(Step(v, ins.op, ins.b, c))
        v = c
    return steps


def _corrupt(step: Step, ins: Instruction, prev: int, kind: str, rng: random.Random) -> Step | None:
    """One wrong step of the given kind, or None when that kind is impossible here."""
    deltas = [d for d in range(-5, 6) if d]
    rng.shuffle(deltas)
    if kind == "arithmetic":
        for d in deltas:
            c = step.c + d
            if LO <= c <= HI:
                return Step(prev, ins.op, ins.b, c)
    elif kind == "operand":
        for d in deltas:
            b = ins.b + d
            if b > 0 and (c := apply(prev, ins.op, b)) is not None:
                return Step(prev, ins.op, b, c)
    elif kind == "operation":
        ops = [o for o in OPS if o != ins.op]
        rng.shuffle(ops)
        for op in ops:
            if (c := apply(prev, op, ins.b)) is not None:
                return Step(prev, op, ins.b, c)
    elif kind == "copy":
        for d in deltas:
            a = prev + d
            if LO <= a <= HI and (c := apply(a, ins.op, ins.b)) is not None:
                return Step(a, ins.op, ins.b, c)
    else:
        raise ValueError(f"error kind must be one of {ERROR_KINDS}")
    return None


def _continue(problem: Problem, steps: list[Step], start_at: int) -> list[Step] | None:
    """Correct steps from index ``start_at`` on, continuing from the last claimed value; None if an
    instruction cannot be applied exactly to a wrong value."""
    out = list(steps[:start_at])
    v = out[-1].c if out else problem.start
    for ins in problem.instructions[start_at:]:
        c = apply(v, ins.op, ins.b)
        if c is None:
            return None
        out.append(Step(v, ins.op, ins.b, c))
        v = c
    return out


def inject_error(problem: Problem, position: int, rng: random.Random, kinds=ERROR_KINDS, tries: int = 20):
    """The correct solution with a wrong step at ``position`` (0-based), later steps continuing
    correctly from the wrong value. Returns (steps, kind) or None when no kind fits."""
    base = correct_solution(problem)
    prev = base[position - 1].c if position else problem.start
    for _ in range(tries):
        kind = rng.choice(list(kinds))
        bad = _corrupt(base[position], problem.instructions[position], prev, kind, rng)
        if bad is None:
            continue
        steps = _continue(problem, base[:position] + [bad], position + 1)
        if steps is not None:
            return steps, kind
    return None


def _rounded(a: int, op: str, b: int) -> int:
    """What a policy writes when an instruction has no exact result: the rounded value, clipped."""
    c = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
    return int(min(HI, max(LO, round(c))))


def sample_solution(problem: Problem, error_rate: float, rng: random.Random, kinds=ERROR_KINDS) -> list[Step]:
    """A noisy policy: each step is wrong with probability ``error_rate`` (several errors can occur),
    otherwise it continues correctly from the last claimed value. When a wrong value makes the next
    instruction inexact (an odd number to halve), the policy writes the rounded result: also wrong."""
    steps: list[Step] = []
    v = problem.start
    for ins in problem.instructions:
        good = apply(v, ins.op, ins.b)
        step = None
        if good is None:
            step = Step(v, ins.op, ins.b, _rounded(v, ins.op, ins.b))
        elif rng.random() < error_rate:
            for _ in range(10):
                step = _corrupt(Step(v, ins.op, ins.b, good), ins, v, rng.choice(list(kinds)), rng)
                if step is not None:
                    break
        if step is None:
            step = Step(v, ins.op, ins.b, good)
        steps.append(step)
        v = step.c
    return steps


# ------------------------------------------------------------------------------------ datasets


@dataclass
class SCItem:
    """A Step Correctness case: a solution with per-step labels."""

    problem: Problem
    steps: list[Step]
    labels: list[int]
    kind: str = ""

    @property
    def question(self) -> str:
        return self.problem.text()

    @property
    def step_texts(self) -> list[str]:
        return [s.text() for s in self.steps]


@dataclass
class AAItem:
    """An Answer Aggregation case: N sampled solutions to one problem."""

    problem: Problem
    candidates: list[list[Step]]
    labels: list[list[int]] = field(default_factory=list)

    @property
    def question(self) -> str:
        return self.problem.text()

    @property
    def answers(self) -> list[int]:
        return [c[-1].c for c in self.candidates]

    @property
    def gold(self) -> int:
        return self.problem.answer


@dataclass
class RSItem:
    """A Reasoning Process Search case: correct history steps and candidate next steps."""

    problem: Problem
    history: list[Step]
    candidates: list[Step]
    labels: list[int]

    @property
    def question(self) -> str:
        return self.problem.text()

    @property
    def prev(self) -> int:
        return self.history[-1].c if self.history else self.problem.start

    @property
    def instruction(self) -> Instruction:
        return self.problem.instructions[len(self.history)]


def _domains(domain_mix: dict[str, float] | None) -> tuple[list[str], list[float]]:
    mix = domain_mix or {"easy": 0.5, "hard": 0.5}
    return list(mix), [float(w) for w in mix.values()]


def make_step_correctness(n: int, *, n_steps: int = 6, error_share: float = 0.8, seed: int = 0,
                          domain_mix: dict[str, float] | None = None) -> list[SCItem]:
    """``n`` solutions; a share ``error_share`` has one injected error at a uniformly drawn step."""
    rng = random.Random(seed)
    names, weights = _domains(domain_mix)
    items: list[SCItem] = []
    while len(items) < n:
        problem = make_problem(rng, n_steps, rng.choices(names, weights)[0])
        if rng.random() < error_share:
            made = inject_error(problem, rng.randrange(n_steps), rng)
            if made is None:
                continue
            steps, kind = made
        else:
            steps, kind = correct_solution(problem), "none"
        items.append(SCItem(problem, steps, label_steps(problem, steps), kind))
    return items


def make_answer_aggregation(n: int, *, n_candidates: int = 8, n_steps: int = 6, error_rate: float = 0.14,
                            seed: int = 0, domain_mix: dict[str, float] | None = None) -> list[AAItem]:
    """``n`` problems with ``n_candidates`` solutions each from the noisy policy."""
    rng = random.Random(seed)
    names, weights = _domains(domain_mix)
    items = []
    for _ in range(n):
        problem = make_problem(rng, n_steps, rng.choices(names, weights)[0])
        cands = [sample_solution(problem, error_rate, rng) for _ in range(n_candidates)]
        items.append(AAItem(problem, cands, [label_steps(problem, c) for c in cands]))
    return items


def propose_next_steps(problem: Problem, history: list[Step], k: int, error_rate: float, rng: random.Random) -> list[Step]:
    """``k`` candidate next steps from the noisy policy (each wrong with probability ``error_rate``)."""
    i = len(history)
    v = history[-1].c if history else problem.start
    sub = Problem(v, problem.instructions[i:i + 1], problem.domain)
    return [sample_solution(sub, error_rate, rng)[0] for _ in range(k)]


def make_search(n: int, *, n_correct: int = 1, n_wrong: int = 1, n_steps: int = 6, seed: int = 0,
                domain_mix: dict[str, float] | None = None) -> list[RSItem]:
    """``n`` contexts (a problem and its first k correct steps, k uniform in 0..n_steps-1) with
    ``n_correct`` copies of the right next step and ``n_wrong`` distinct wrong ones, shuffled.

    Balanced candidates (1 + 1, the default) make the coin-flip F1 equal to the paper's 50; with
    1 + 3 it would be 33 (see ``metrics.random_f1``)."""
    rng = random.Random(seed)
    names, weights = _domains(domain_mix)
    items = []
    while len(items) < n:
        problem = make_problem(rng, n_steps, rng.choices(names, weights)[0])
        good = correct_solution(problem)
        k = rng.randrange(n_steps)
        ins, prev = problem.instructions[k], (good[k - 1].c if k else problem.start)
        wrong: list[Step] = []
        for _ in range(50):
            if len(wrong) == n_wrong:
                break
            bad = _corrupt(good[k], ins, prev, rng.choice(ERROR_KINDS), rng)
            if bad is not None and bad not in wrong and not step_is_valid(bad, prev, ins):
                wrong.append(bad)
        if len(wrong) < n_wrong:
            continue
        cands = [(good[k], 1)] * n_correct + [(w, 0) for w in wrong]
        rng.shuffle(cands)
        items.append(RSItem(problem, good[:k], [c for c, _ in cands], [y for _, y in cands]))
    return items
