"""Run a judge over the three paradigms, keep its raw scores, and turn them into Table-2 rows.

The raw scores are kept (:class:`JudgeRun`) so that every reconstructed choice (threshold,
aggregator, majority-vote rule) can be varied without scoring again, and so that rows can be
bootstrapped over items. Also: online PRM-guided greedy / beam search (:func:`prm_search`), which
MPBench only scores offline through its "reasoning process search" paradigm.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from . import chains as C
from . import metrics as M
from .judges import Judge, SearchCase, aa_solution_cases, as_search_case, as_solution_case

__all__ = ["Benchmark", "JudgeRun", "make_benchmark", "run_judge", "table_row", "bootstrap_row", "bootstrap_draws",
           "random_rows", "prm_search", "search_hits", "search_accuracy", "COLUMNS"]

COLUMNS = ["Overall", "FEI", "AEI", "SC", "BoN", "MV", "AA", "F1", "MCC", "RS"]


@dataclass
class Benchmark:
    """The three synthetic test sets."""

    sc: list
    aa: list
    rs: list

    def summary(self) -> dict:
        return {
            "step correctness: solutions": len(self.sc),
            "  with an injected error (%)": 100 * float(np.mean([min(i.labels) == 0 for i in self.sc])),
            "  steps": sum(len(i.labels) for i in self.sc),
            "answer aggregation: questions": len(self.aa),
            "  candidates per question": len(self.aa[0].candidates) if self.aa else 0,
            "  correct final answers among candidates (%)": 100 * float(np.mean([np.mean([a == i.gold for a in i.answers]) for i in self.aa])),
            "process search: contexts": len(self.rs),
            "  candidates": sum(len(i.labels) for i in self.rs),
            "  correct candidate next steps (%)": 100 * float(np.mean([y for i in self.rs for y in i.labels])),
        }

    def subset(self, n_sc: int, n_aa: int, n_rs: int) -> "Benchmark":
        """The first items of each set (the sets are already shuffled by construction)."""
        return Benchmark(self.sc[:n_sc], self.aa[:n_aa], self.rs[:n_rs])


def make_benchmark(n_sc: int = 600, n_aa: int = 200, n_rs: int = 600, *, n_candidates: int = 8, n_steps: int = 6,
                   policy_error_rate: float = 0.16, n_wrong: int = 1, seed: int = 0,
                   domain_mix: dict[str, float] | None = None) -> Benchmark:
    """The scaled-down MPBench (seeds 0..999 are test seeds; scorers train on seeds >= 1000)."""
    return Benchmark(
        C.make_step_correctness(n_sc, n_steps=n_steps, seed=seed, domain_mix=domain_mix),
        C.make_answer_aggregation(n_aa, n_candidates=n_candidates, n_steps=n_steps, error_rate=policy_error_rate,
                                  seed=seed + 1, domain_mix=domain_mix),
        C.make_search(n_rs, n_wrong=n_wrong, n_steps=n_steps, seed=seed + 2, domain_mix=domain_mix),
    )


@dataclass
class JudgeRun:
    """A judge's raw scores on a benchmark, with the labels they are scored against."""

    name: str
    sc_scores: list[list[float]]
    sc_labels: list[list[int]]
    aa_scores: list[list[list[float]]]
    aa_answers: list[list]
    aa_gold: list
    rs_scores: list[list[float]]
    rs_labels: list[list[int]]
    seconds: float = 0.0
    domains: dict = field(default_factory=dict)


def run_judge(judge: Judge, bench: Benchmark, *, name: str | None = None) -> JudgeRun:
    """Score every step of the step-correctness solutions, every candidate solution of the
    aggregation questions and every candidate next step of the search contexts."""
    t0 = time.perf_counter()
    sc_scores = judge.score_solutions([as_solution_case(i) for i in bench.sc])
    aa_scores = [judge.score_solutions(aa_solution_cases(i)) for i in bench.aa]
    rs_scores = judge.score_candidates([as_search_case(i) for i in bench.rs])
    return JudgeRun(
        name or judge.name, sc_scores, [i.labels for i in bench.sc], aa_scores, [i.answers for i in bench.aa],
        [i.gold for i in bench.aa], rs_scores, [i.labels for i in bench.rs], time.perf_counter() - t0,
        {"sc": [i.problem.domain for i in bench.sc], "aa": [i.problem.domain for i in bench.aa],
         "rs": [i.problem.domain for i in bench.rs]},
    )


def _row(run: JudgeRun, sc_idx, aa_idx, rs_idx, *, threshold, aggregator, mv_rule, aei_steps) -> dict[str, float]:
    sc = M.step_correctness([run.sc_scores[i] for i in sc_idx], [run.sc_labels[i] for i in sc_idx],
                            threshold=threshold, aei_steps=aei_steps)
    aa = M.answer_aggregation([run.aa_scores[i] for i in aa_idx], [run.aa_answers[i] for i in aa_idx],
                              [run.aa_gold[i] for i in aa_idx], aggregator=aggregator, mv_rule=mv_rule,
                              threshold=threshold)
    rs = M.process_search([run.rs_scores[i] for i in rs_idx], [run.rs_labels[i] for i in rs_idx], threshold=threshold)
    return M.paradigm_scores(sc, aa, rs)


def table_row(run: JudgeRun, *, threshold: float = 0.0, aggregator: str = "min", mv_rule: str = "weighted",
              aei_steps: str = "all", domain: str | None = None) -> dict[str, float]:
    """The Table-2 columns for one judge (optionally on one domain only)."""
    def idx(key, n):
        return [i for i in range(n) if domain is None or run.domains[key][i] == domain]

    return _row(run, idx("sc", len(run.sc_labels)), idx("aa", len(run.aa_gold)), idx("rs", len(run.rs_labels)),
                threshold=threshold, aggregator=aggregator, mv_rule=mv_rule, aei_steps=aei_steps)


def bootstrap_draws(run: JudgeRun, *, n_boot: int = 200, seed: int = 0, domain: str | None = None,
                    **options) -> pd.DataFrame:
    """``n_boot`` bootstrap resamples over items (each paradigm resampled separately; ``domain``: within
    that domain's items only), one row of every column per resample. Judges scored on the same
    benchmark with the same ``seed`` get the same resamples, so their differences are paired."""
    rng = np.random.default_rng(seed)
    pools = [np.array([i for i in range(len(labels)) if domain is None or run.domains[key][i] == domain])
             for key, labels in (("sc", run.sc_labels), ("aa", run.aa_gold), ("rs", run.rs_labels))]
    opts = {"threshold": 0.0, "aggregator": "min", "mv_rule": "weighted", "aei_steps": "all", **options}
    rows = [_row(run, *(pool[rng.integers(0, len(pool), len(pool))] for pool in pools), **opts) for _ in range(n_boot)]
    return pd.DataFrame(rows)[COLUMNS]


def bootstrap_row(run: JudgeRun, *, n_boot: int = 200, seed: int = 0, **options) -> pd.DataFrame:
    """Bootstrap over items (each paradigm resampled separately): mean, std and the 95 % interval of
    every column."""
    frame = bootstrap_draws(run, n_boot=n_boot, seed=seed, **options)
    return pd.DataFrame({"mean": frame.mean(), "std": frame.std(ddof=1), "lo": frame.quantile(0.025),
                         "hi": frame.quantile(0.975)})


def random_rows(bench: Benchmark, *, n_draws: int = 20, seed: int = 0, fei_rule: str = "uniform",
                **options) -> pd.DataFrame:
    """The random row two ways: analytic (as the paper appears to compute it) and Monte Carlo (a judge
    with uniform scores, averaged over ``n_draws`` seeds)."""
    from .judges import RandomJudge

    analytic = M.random_baseline([i.labels for i in bench.sc], [i.answers for i in bench.aa],
                                 [i.gold for i in bench.aa], [i.labels for i in bench.rs], fei_rule=fei_rule).row
    mc = pd.DataFrame([table_row(run_judge(RandomJudge(seed + d), bench), **options) for d in range(n_draws)])[COLUMNS]
    return pd.DataFrame({"random (analytic)": pd.Series(analytic)[COLUMNS], "random (Monte Carlo)": mc.mean()}).T


# ------------------------------------------------------------------------------- online search


def prm_search(problem: C.Problem, judge: Judge | None, *, k: int = 4, beam: int = 1, policy_error_rate: float = 0.3,
               aggregator: str = "min", rng: random.Random) -> list[C.Step]:
    """Step-level search driven by a PRM: at every step the noisy policy proposes ``k`` next steps for
    each of the ``beam`` partial solutions; the judge scores them and the ``beam`` best partial
    solutions (by the aggregated step scores) are kept. ``beam = 1`` is greedy search;
    ``judge = None`` keeps a random proposal (no PRM)."""
    beams: list[tuple[list[C.Step], list[float]]] = [([], [])]
    for _ in problem.instructions:
        grown = []
        for hist, scores in beams:
            cands = C.propose_next_steps(problem, hist, k, policy_error_rate, rng)
            if judge is None:
                cand_scores = [rng.random() for _ in cands]
            else:
                case = SearchCase(problem.text(), [s.text() for s in hist], [c.text() for c in cands], None,
                                  problem, hist, cands)
                cand_scores = judge.score_candidates([case])[0]
            grown += [(hist + [c], scores + [float(s)]) for c, s in zip(cands, cand_scores)]
        grown.sort(key=lambda e: M.aggregate(e[1], aggregator), reverse=True)
        beams = grown[:beam]
    return beams[0][0]


def search_hits(problems: Sequence[C.Problem], judge: Judge | None, *, seed: int = 0, **kwargs) -> list[bool]:
    """Per problem, whether :func:`prm_search` reaches the right final answer."""
    rng = random.Random(seed)
    return [prm_search(p, judge, rng=rng, **kwargs)[-1].c == p.answer for p in problems]


def search_accuracy(problems: Sequence[C.Problem], judge: Judge | None, *, seed: int = 0, **kwargs) -> float:
    """Final-answer accuracy (%) of :func:`prm_search` over ``problems``."""
    return 100.0 * float(np.mean(search_hits(problems, judge, seed=seed, **kwargs)))


# ------------------------------------------------------------------------------- the real benchmark


def _norm(answer) -> str:
    return str(answer).strip().strip(".").lower()


def run_judge_on_cases(judge: Judge, sc_pairs, aa_cases, rs_pairs, *, name: str | None = None) -> JudgeRun:
    """Like :func:`run_judge`, on cases read from the real MPBench files (``mpbench.data``); final
    answers are compared after stripping and lower-casing."""
    t0 = time.perf_counter()
    sc_scores = judge.score_solutions([c for c, _ in sc_pairs]) if sc_pairs else []
    aa_scores = [judge.score_solutions([SolutionCaseFor(c.question, steps, c.image) for steps in c.candidates])
                 for c in aa_cases]
    rs_scores = judge.score_candidates([c for c, _ in rs_pairs]) if rs_pairs else []
    return JudgeRun(
        name or judge.name, sc_scores, [y for _, y in sc_pairs], aa_scores,
        [[_norm(a) for a in c.answers] for c in aa_cases], [_norm(c.gold) for c in aa_cases], rs_scores,
        [y for _, y in rs_pairs], time.perf_counter() - t0,
        {"sc": [""] * len(sc_pairs), "aa": [""] * len(aa_cases), "rs": [""] * len(rs_pairs)},
    )


def SolutionCaseFor(question, steps, image):  # noqa: N802 - a small constructor alias
    from .judges import SolutionCase

    return SolutionCase(question, list(steps), image)
