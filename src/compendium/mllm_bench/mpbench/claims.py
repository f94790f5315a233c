"""MPBench's claims (arXiv 2503.12505), decided on the scaled-down benchmark, and its random row.

The claims are tested on a **substitute** (arithmetic chains checked by program, tiny trained scorers and
SmolLM2-135M as judges), so each verdict reads "on the substitute". Before any claim the substitute is
**calibrated** against what it must match *in kind* (issue 18): its judges span the paper's range, from
below random (the paper's InternVL2.5-1B, Overall 31.3 against random 31.8) to near the oracle (at least
the share of the random-to-perfect gap that the paper's best judge closes, read from Table 2). That is a
precondition of every claim, beside the 95 % bootstrap intervals over items that decide each comparison
(``mllm_bench.stats``); an interval that straddles the threshold leaves the claim *inconclusive*, naming it.

Inputs: ``ours`` (one Table-2 row per judge, indexed by judge name, with the rows ``random (analytic)``
and, when SmolLM2 ran on its subset, ``random (analytic, SmolLM2 subset)``), and ``draws`` (per judge,
:func:`compendium.mllm_bench.mpbench.bench.bootstrap_draws` with one seed, so judges on the same items
are paired).
"""

from __future__ import annotations

from functools import partial
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from compendium import verdicts
from compendium.verdicts import Precondition

from .. import stats as S
from . import metrics as M

__all__ = ["SUBSTITUTE", "MIN_JUDGES", "RANDOM", "random_for", "calibration", "claim_scale", "claim_below_random",
           "claim_correlation", "claim_domain", "random_row_cells", "search_reading"]

PAPER = "mpbench"
SUBSTITUTE = ("arithmetic reasoning chains checked by program, tiny BERT scorers trained here and SmolLM2-135M stand in "
              "for MPBench's M3CoT items and its twelve multimodal LLMs")
RULE = "compendium.mllm_bench.mpbench.claims."
RANDOM = "random (analytic)"
SMOL = "SmolLM2-135M"
SMOL_RANDOM = "random (analytic, SmolLM2 subset)"
#: With fewer than 5 judges no Spearman correlation is significant at 5 % (two-sided, exact: at n = 4 the
#: smallest p is 2/24 = 0.083).
MIN_JUDGES = 5
PAIRS = (("SC", "AA"), ("SC", "RS"), ("AA", "RS"))


def random_for(name: str, ours: pd.DataFrame) -> pd.Series:
    """The analytic random row of the items ``name`` was scored on (SmolLM2 runs on a subset)."""
    return ours.loc[SMOL_RANDOM if name == SMOL and SMOL_RANDOM in ours.index else RANDOM]


def judges_of(ours: pd.DataFrame) -> list[str]:
    return [n for n in ours.index if not n.startswith("random")]


def calibration(ours: pd.DataFrame, paper_wide: pd.DataFrame, *, oracle: str = "oracle (program)") -> Precondition:
    """The judges span the paper's range: the weakest at or below random (on its own items), the strongest
    (the oracle excluded) closing at least the share of the random-to-oracle gap that the paper's best
    judge closes between random and a perfect 100."""
    judges = [n for n in judges_of(ours) if n != oracle]
    margin = {n: float(ours.loc[n, "Overall"] - random_for(n, ours)["Overall"]) for n in judges}
    top = max(judges, key=lambda n: ours.loc[n, "Overall"])
    gap = float(ours.loc[oracle, "Overall"] - ours.loc[RANDOM, "Overall"])
    share = float(ours.loc[top, "Overall"] - ours.loc[RANDOM, "Overall"]) / gap if gap > 0 else float("nan")
    rows = paper_wide.drop(index="Random")
    best = rows["Overall"].idxmax()
    paper_share = (rows.loc[best, "Overall"] - paper_wide.loc["Random", "Overall"]) / (100 - paper_wide.loc["Random", "Overall"])
    weakest = min(margin, key=margin.get)
    met = bool(margin[weakest] <= 0 and share >= paper_share)
    return Precondition(
        "the judges span from below random to near the oracle",
        f"weakest Overall at or below random; strongest closes >= {paper_share:.0%} of the random-to-oracle gap "
        f"(the paper's {best}: {rows.loc[best, 'Overall']:g} against random {paper_wide.loc['Random', 'Overall']:g}, Table 2)",
        f"weakest {weakest} {margin[weakest]:+.1f} against random; strongest {top} closes {share:.0%}", met)


def _interval(point: float, draws) -> S.Interval:
    return S.bootstrap_interval(point, draws)


#: The shared rules (``mllm_bench.stats``), bound to this paper.
_decided = partial(S.decided, intervals="95 % bootstrap intervals")
_claim = partial(S.substitute_claim, PAPER, SUBSTITUTE, RULE)


def claim_scale(ours: pd.DataFrame, draws: Mapping[str, pd.DataFrame], scales: Sequence[str],
                paper_wide: pd.DataFrame) -> pd.DataFrame:
    """Larger judges score higher: every step up the scale axis raises Overall (paired bootstrap
    interval of the difference above 0)."""
    cases = [S.above(f"{a} -> {b}", _interval(ours.loc[b, "Overall"] - ours.loc[a, "Overall"],
                                                draws[b]["Overall"] - draws[a]["Overall"]))
             for a, b in zip(scales, scales[1:])]
    holds, decided = S.every(cases)
    w = paper_wide
    evidence = (f"paper: Qwen2.5-VL 3B/7B/72B Overall {w.loc['Qwen2.5-VL-3B', 'Overall']:g}/{w.loc['Qwen2.5-VL-7B', 'Overall']:g}/"
                f"{w.loc['Qwen2.5-VL-72B', 'Overall']:g}; InternVL2.5 8B -> 26B drops {w.loc['InternVL2.5-8B', 'Overall']:g} -> "
                f"{w.loc['InternVL2.5-26B', 'Overall']:g}. On the substitute, Overall "
                + " / ".join(f"{ours.loc[n, 'Overall']:.1f}" for n in scales) + f" over {', '.join(scales)}")
    pres = [calibration(ours, paper_wide), _decided(cases, decided, "every step up the scale")]
    return _claim("Larger judges score higher (scale helps)", holds if len(scales) > 1 else None, evidence, pres,
                  "claim_scale", "arXiv 2503.12505, Table 2 and abstract")


def claim_below_random(ours: pd.DataFrame, draws: Mapping[str, pd.DataFrame], small: Sequence[str],
                       paper_wide: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Small judges fall below random on some sub-metric: some (judge, column) whose bootstrap interval
    lies wholly below the analytic random value of its items."""
    cases = []
    for name in small:
        rnd = random_for(name, ours)
        for c in columns:
            cases.append(S.above(f"{name} {c} below random by", _interval(rnd[c] - ours.loc[name, c], rnd[c] - draws[name][c])))
    holds, decided = S.share_at_least(cases, 1 / len(cases)) if cases else (False, False)
    below = [c.name.replace(" below random by", "") for c in cases if c.holds and c.decided]
    paper_below = [c for c in columns if paper_wide.loc["InternVL2.5-1B", c] < paper_wide.loc["Random", c]]
    evidence = (f"paper: InternVL2.5-1B below random on {', '.join(paper_below)}; Qwen2.5-VL-3B MCC "
                f"{paper_wide.loc['Qwen2.5-VL-3B', 'MCC']:g}. On the substitute, below random with the interval: "
                + (", ".join(below) or "nothing"))
    pres = [calibration(ours, paper_wide), _decided([c for c in cases if c.holds] or cases, decided, "some sub-metric")]
    return _claim("Small judges fall below random on some sub-metrics", holds, evidence, pres, "claim_below_random",
                  "arXiv 2503.12505, Table 2")


def _spearman(frame: pd.DataFrame) -> dict[tuple[str, str], float]:
    corr = frame[["SC", "AA", "RS"]].astype(float).corr(method="spearman")
    return {(a, b): float(corr.loc[a, b]) for a, b in PAIRS}


def claim_correlation(ours: pd.DataFrame, draws: Mapping[str, pd.DataFrame], paper_wide: pd.DataFrame,
                      *, exclude_paper: Sequence[str] = ("Random", "InternVL2.5-38B")) -> pd.DataFrame:
    """The three paradigm scores are positively correlated across judges: each pair's Spearman correlation
    over the judges, its interval from the judges' bootstrap resamples, above 0."""
    judges = judges_of(ours)
    point = _spearman(ours.loc[judges])
    n_boot = min(len(draws[j]) for j in judges)
    boot = [_spearman(pd.DataFrame({j: draws[j].iloc[i] for j in judges}).T) for i in range(n_boot)]
    cases = [S.above(f"{a}-{b}", _interval(point[(a, b)], [r[(a, b)] for r in boot]), digits=2) for a, b in PAIRS]
    holds, decided = S.every(cases)
    paper = _spearman(paper_wide.drop(index=list(exclude_paper)))
    evidence = ("Spearman across judges, paper (Table 2, 11 models): " + ", ".join(f"{a}-{b} {paper[(a, b)]:.2f}" for a, b in PAIRS)
                + f"; on the substitute ({len(judges)} judges): " + ", ".join(f"{a}-{b} {point[(a, b)]:.2f}" for a, b in PAIRS))
    pres = [calibration(ours, paper_wide),
            Precondition("enough judges for a rank correlation", f">= {MIN_JUDGES}", len(judges), len(judges) >= MIN_JUDGES),
            _decided(cases, decided, "every pair")]
    return _claim("The three paradigm scores are positively correlated across judges", holds, evidence, pres,
                  "claim_correlation", "arXiv 2503.12505, Fig. 3 (recomputed from Table 2)")


def claim_domain(ours: pd.DataFrame, by_domain: pd.DataFrame, domain_draws: Mapping[str, Mapping[str, pd.DataFrame]],
                 paper_wide: pd.DataFrame) -> pd.DataFrame:
    """Harder problems are harder to judge: per scorer, Overall on the easy domain minus the hard one
    (bootstrap interval within each domain) above 0, for every scorer. ``by_domain``: Overall per
    scorer (index) and domain (columns ``easy``, ``hard``)."""
    cases = [S.above(f"{n} easy - hard", _interval(by_domain.loc[n, "easy"] - by_domain.loc[n, "hard"],
                                                   domain_draws[n]["easy"]["Overall"] - domain_draws[n]["hard"]["Overall"]))
             for n in by_domain.index]
    holds, decided = S.every(cases)
    evidence = ("on the substitute, Overall on the easy (+, -) vs the hard (x, /) domain per scorer: "
                + "; ".join(f"{n} {r.easy:.1f} -> {r.hard:.1f}" for n, r in by_domain.iterrows())
                + ". The paper's per-domain numbers (Table 3) are not transcribed here")
    pres = [calibration(ours, paper_wide), _decided(cases, decided, "every scorer")]
    return _claim("Harder problems are harder to judge (the paper: mathematics is the hardest domain)", holds, evidence,
                  pres, "claim_domain", "arXiv 2503.12505, Table 3 (claim from the text)")


def random_row_cells(n_steps: int, fei_rule: str) -> dict:
    """The paper's random row recomputed from our reading of its definitions (a **reconstruction**: the
    paper does not say how it was computed): FEI of a uniform pick among ``n_steps`` steps or "none",
    AEI 50 (a coin per step), F1 of coin flips on balanced candidates, MCC 0, and their averages. BoN,
    MV and the Overall need the real data's share of correct candidates and are not recomputed."""
    fei = M.random_fei([[1] * n_steps], fei_rule)
    f1 = M.random_f1(0.5)
    cells = {("Random", "FEI"): fei, ("Random", "AEI"): 50.0, ("Random", "SC"): (fei + 50) / 2,
             ("Random", "F1"): f1, ("Random", "MCC"): 0.0, ("Random", "RS"): (f1 + 0.0) / 2}
    for col in ("BoN", "MV", "AA", "Overall"):
        cells[("Random", col)] = verdicts.not_run("needs the share of correct candidates in the real answer-aggregation set",
                                                  kind="data")
    return cells


def search_reading(hits: Mapping[str, Sequence[bool]], *, baseline: str, greedy: str = "greedy", n_boot: int = 1000,
                   seed: int = 0) -> tuple[pd.DataFrame, str]:
    """What the online search shows: per PRM, greedy-search accuracy minus the random pick's, with a
    bootstrap interval over problems (paired: the same problems), and one sentence per outcome (below the
    random pick, no decided difference, above it). ``hits``: per name, per-problem success."""
    rng = np.random.default_rng(seed)
    base = np.asarray(hits[baseline], dtype=float)
    idx = rng.integers(0, len(base), (n_boot, len(base)))
    rows = {}
    for name, h in hits.items():
        if name == baseline:
            continue
        diff = 100 * (np.asarray(h, dtype=float) - base)
        iv = S.bootstrap_interval(float(diff.mean()), diff[idx].mean(axis=1), how="problems")
        rows[name] = {greedy: 100 * float(np.mean(h)), "minus random pick": iv.mean, "lo": iv.lo, "hi": iv.hi,
                      "reads": "below the random pick" if iv.hi < 0 else ("above the random pick" if iv.lo > 0 else "no decided difference")}
    table = pd.DataFrame(rows).T.infer_objects()
    parts = []
    for reads in ("below the random pick", "no decided difference", "above the random pick"):
        names = [n for n in table.index if table.loc[n, "reads"] == reads]
        if names:
            parts.append(f"{', '.join(f'{n} ({float(table.loc[n, greedy]):.1f})' for n in names)}: {reads}")
    text = (f"Greedy search guided by each PRM against the random pick ({100 * base.mean():.1f} % of {len(base)} problems), "
            "95 % bootstrap interval of the difference: " + "; ".join(parts) + ".")
    return table, text
