"""What the MPBench chapter (``notebooks/mpbench/prm_paradigms.ipynb``) shows: the worked metric example,
the check of the paper's Table 2, our Table 2 with its bootstrap, the judges' runs, the sensitivity
tables, the figures, the online search, the real-benchmark branch, the results it saves and the
summary box's sentences. The notebook holds the parameters and calls these; the rules that decide
the claims are in :mod:`compendium.mllm_bench.mpbench.claims`.
"""

from __future__ import annotations

import random
import time
from functools import partial
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from compendium import verdicts

from .. import stats as S
from . import bench, chains, claims, judges, metrics

__all__ = ["setup", "toy_metrics", "check_paper_table", "table2_cells", "example_text", "benchmark_summary",
           "train_judges", "run_judges", "our_table", "shown_table", "table2_figure", "judged", "small_judges",
           "aggregator_sensitivity", "median_threshold", "correlations", "bias_text", "fei_by_position", "by_domain",
           "position_domain_figure", "search_problems", "run_search", "search_figure", "run_real", "real_view", "results", "save",
           "summary_text", "PAPER_CLAIM", "NOT_REPRODUCED"]

PAPER, NOTEBOOK = "mpbench", "prm_paradigms"
COLS = bench.COLUMNS
PARADIGMS = ["SC", "AA", "RS"]
SMOL, ORACLE, CONSTANT = "SmolLM2-135M", "oracle (program)", "constant +1"
NO_PRM = "no PRM (random pick)"
#: The one Table 2 row whose averages are not the means of its cells (shown as printed).
INCONSISTENT = ["InternVL2.5-38B"]
PAPER_CLAIM = ("Multimodal LLMs used as process reward models are weak critics: scale helps, small models fall below "
               "random, the three paradigms (step correctness, answer aggregation, search) are related but distinct, "
               "and mathematics is the hardest domain.")
NOT_REPRODUCED = ("none of the twelve judges or the MPBench data are reachable here: every model cell of Table 2 is not run; "
                  "the random row is recomputed from our reading of the definitions (a consistency check).")


def setup(seed: int) -> float:
    """One torch thread (two shared cores: one thread is faster than two), torch seeded, no weight-loading
    bars, wide pandas displays; returns the chapter's start time (``time.perf_counter``)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    import transformers

    transformers.utils.logging.disable_progress_bar()  # no weight-loading bars in the book
    pd.set_option("display.width", 160)
    return time.perf_counter()


def toy_metrics() -> dict[str, float]:
    """The three paradigms on made-up cases small enough to check by hand (checked): FEI 1/2 and AEI 5/6,
    BoN 50 and weighted MV 100, F1 50 and MCC 0. Returns the paradigm scores rounded to 2 decimals."""
    # Step Correctness: solution A has its first error at step 2 and the judge finds it; solution B is correct
    # but the judge flags step 2 -> FEI 1/2; 5 of the 6 step calls are right -> AEI 5/6.
    sc = metrics.step_correctness([[0.9, -0.5, 0.7], [0.2, -0.1, 0.3]], [[1, 0, 1], [1, 1, 1]])
    # Answer Aggregation: BoN takes the best-scored candidate; the weighted vote adds (score + 1) / 2 per answer.
    aa = metrics.answer_aggregation([[[0.5, 0.9], [-0.2, 0.3], [0.8, 1.0]], [[-0.5, 0.2], [0.5, 0.6]]],
                                    [[4, 4, 9], [1, 2]], [4, 2])
    # Reasoning Process Search: calls 1 0 1 0 against truth 1 0 0 1 -> F1 = 2*1 / (2*1 + 1 + 1) = 50, MCC = 0.
    rs = metrics.process_search([0.5, -0.5, 0.2, -0.3], [1, 0, 0, 1])
    if not ((round(sc["FEI"], 6), round(sc["AEI"], 4)) == (50.0, 83.3333)
            and (aa["BoN"], aa["MV"]) == (50.0, 100.0) and (rs["F1"], rs["MCC"]) == (50.0, 0.0)):
        raise AssertionError(f"the metrics disagree with the hand computation: {sc}, {aa}, {rs}")
    return {k: round(v, 2) for k, v in metrics.paradigm_scores(sc, aa, rs).items()}


def check_paper_table(wide: pd.DataFrame, *, expected: Sequence[str] = tuple(INCONSISTENT), log=print) -> list[str]:
    """The rows of the paper's Table 2 whose averages (SC, AA, RS, Overall) disagree with their cells by
    more than 0.1; printed, and checked against ``expected``."""
    check = pd.DataFrame({
        "SC - mean(FEI, AEI)": wide.SC - (wide.FEI + wide.AEI) / 2,
        "AA - mean(BoN, MV)": wide.AA - (wide.BoN + wide.MV) / 2,
        "RS - mean(F1, MCC)": wide.RS - (wide.F1 + wide.MCC) / 2,
        "Overall - mean(SC, AA, RS)": wide.Overall - (wide.SC + wide.AA + wide.RS) / 3,
    }).round(2)
    inconsistent = check.index[(check.abs() > 0.1 + 1e-6).any(axis=1)].tolist()
    log(f"rows whose averages disagree with their cells: {inconsistent}")
    if inconsistent != list(expected):
        raise AssertionError(f"expected {list(expected)} to be the only inconsistent rows, got {inconsistent}")
    return inconsistent


def table2_cells(table2, fei_rule: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 2's results cells: the random row recomputed from our reading (a reconstruction, at paper
    scale) and every model row not run here. Returns (all cells, the random row's)."""
    random_cells = claims.random_row_cells(10, fei_rule)
    pub = table2.frame()
    cmp_random = verdicts.compare(pub[pub.row == "Random"], random_cells, scale="paper",
                                  rule="compendium.mllm_bench.mpbench.claims.random_row_cells")
    not_here = verdicts.not_run("the model's weights or API and the MPBench data are not reachable here (gpu profile: give them)",
                                kind="model")
    cmp_models = verdicts.compare(pub[pub.row != "Random"], {}, scale="paper", default_reason=not_here.reason)
    cmp_models["reason_class"] = not_here.kind
    return pd.concat([cmp_random, cmp_models], ignore_index=True), cmp_random


def example_text(b: bench.Benchmark) -> str:
    """The first step-correctness solution with an injected error, step by step, and the first search context."""
    example = b.sc[next(i for i, it in enumerate(b.sc) if 0 < metrics.first_error(it.labels))]
    lines = [example.question]
    for k, (text, y) in enumerate(zip(example.step_texts, example.labels), start=1):
        lines.append(f"  Step {k}: {text:14s} {'correct' if y else 'WRONG (' + example.kind + ')'}")
    ctx = b.rs[0]
    lines += ["", f"search context: {[s.text() for s in ctx.history]} -> candidates {[c.text() for c in ctx.candidates]} "
                  f"labels {ctx.labels}"]
    return "\n".join(lines)


def benchmark_summary(b: bench.Benchmark) -> pd.DataFrame:
    return pd.Series(b.summary()).round(1).to_frame("value")


def train_judges(scales: Sequence[str], *, updates: int, seed: int) -> tuple[dict, pd.DataFrame]:
    """One trained step scorer per size in ``scales`` (keys of ``judges.SCALES``). Returns the judges by
    name and a table of their parameters, training solutions and training seconds."""
    judge_list, timings = {}, {}
    for name in scales:
        cfg = judges.SCALES[name]
        t0 = time.perf_counter()
        judge_list[name] = judges.train_step_scorer(cfg["hidden"], cfg["layers"], cfg["heads"], cfg["n_train"], lr=cfg["lr"],
                                                    updates=updates, seed=seed, name=name)
        timings[name] = time.perf_counter() - t0
    table = pd.DataFrame({name: {"parameters": j.n_parameters, "training solutions": judges.SCALES[name]["n_train"],
                                 "train seconds": round(timings[name], 1)} for name, j in judge_list.items()}).T
    return judge_list, table


def run_judges(b: bench.Benchmark, judge_list: Mapping, *, run_smollm: bool, smollm_items: Sequence[int],
               log=print) -> tuple[dict, bench.Benchmark]:
    """Every judge on the benchmark: the trained scorers, the constant +1 critic, the oracle, and (with
    ``run_smollm``) SmolLM2-135M on the subset ``smollm_items``. Returns the runs by name and the subset."""
    runs = {name: bench.run_judge(j, b) for name, j in judge_list.items()}
    runs[CONSTANT] = bench.run_judge(judges.ConstantJudge(1.0), b)
    runs[ORACLE] = bench.run_judge(judges.OracleJudge(), b)
    smol_bench = b.subset(*smollm_items)
    if run_smollm:
        t0 = time.perf_counter()
        smol = judges.load_smollm2()
        run = runs[SMOL] = bench.run_judge(smol, smol_bench)
        n = sum(len(x) for x in run.sc_scores) + sum(len(s) for q in run.aa_scores for s in q) + sum(len(x) for x in run.rs_scores)
        log(f"SmolLM2: {n} scores in {time.perf_counter() - t0:.0f} s (load included)")
    return runs, smol_bench


def our_table(runs: Mapping[str, bench.JudgeRun], rand: pd.DataFrame, smol_bench: bench.Benchmark, scales: Sequence[str], *,
              run_smollm: bool, n_boot: int, seed: int, fei_rule: str, options: Mapping) -> tuple[pd.DataFrame, dict]:
    """Our Table 2: one row per judge, the random rows (analytic, Monte Carlo; and analytic on SmolLM2's
    subset), in reading order; and each judge's bootstrap draws (same ``seed``: paired across judges)."""
    rows, draws = {}, {}
    for name, run in runs.items():
        draws[name] = bench.bootstrap_draws(run, n_boot=n_boot, seed=seed, **options)
        rows[name] = pd.Series(bench.table_row(run, **options))[COLS]
    ours = pd.DataFrame(rows).T
    ours.loc[claims.RANDOM] = rand.loc[claims.RANDOM]
    ours.loc["random (Monte Carlo)"] = rand.loc["random (Monte Carlo)"]
    if run_smollm:
        ours.loc[claims.SMOL_RANDOM] = bench.random_rows(smol_bench, n_draws=20, seed=seed, fei_rule=fei_rule,
                                                         **options).loc[claims.RANDOM]
    order = ([claims.RANDOM, "random (Monte Carlo)"] + list(scales) + ([claims.SMOL_RANDOM, SMOL] if run_smollm else [])
             + [CONSTANT, ORACLE])
    return ours.loc[order], draws


def shown_table(ours: pd.DataFrame, draws: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """``ours`` to 1 decimal, each judge's cells as "value ± bootstrap standard deviation"."""
    shown = ours.round(1).astype(str)
    for name, frame in draws.items():
        shown.loc[name] = [f"{v:.1f} ± {s:.1f}" for v, s in zip(ours.loc[name], frame.std(ddof=1))]
    return shown


def table2_figure(wide: pd.DataFrame, ours: pd.DataFrame):
    """The paradigm scores, the paper's (Table 2, the inconsistent row left out) beside ours, each with
    its random Overall dashed. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    pub = wide.drop(index=INCONSISTENT)[PARADIGMS + ["Overall"]]
    pub.plot(kind="bar", ax=axes[0], legend=False)
    axes[0].axhline(wide.loc["Random", "Overall"], color="k", ls="--", lw=1)
    axes[0].set_title("paper (Table 2): paradigm scores; dashed = random Overall")
    mine = ours.drop(index=[i for i in ours.index if i.startswith("random")])[PARADIGMS + ["Overall"]]
    mine.plot(kind="bar", ax=axes[1])
    axes[1].axhline(ours.loc[claims.RANDOM, "Overall"], color="k", ls="--", lw=1)
    axes[1].set_title("scaled-down: paradigm scores; dashed = random Overall")
    for ax in axes:
        ax.set_ylabel("score")
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    fig.tight_layout()
    return fig


def judged(scales: Sequence[str], run_smollm: bool) -> list[str]:
    """The judges whose reconstructed choices are varied: the trained scorers, and SmolLM2 when it ran."""
    return list(scales) + ([SMOL] if run_smollm else [])


def small_judges(scales: Sequence[str], run_smollm: bool) -> list[str]:
    """The small judges of the below-random claim: the smallest scorer, and SmolLM2 when it ran."""
    return [scales[0]] + ([SMOL] if run_smollm else [])


def aggregator_sensitivity(runs: Mapping[str, bench.JudgeRun], names: Sequence[str], options: Mapping) -> pd.DataFrame:
    """BoN under every aggregator and MV under every vote rule, per judge (the other options fixed)."""
    sens = {}
    for name in names:
        r = runs[name]
        sens[name] = {**{f"BoN ({a})": bench.table_row(r, **{**options, "aggregator": a})["BoN"] for a in metrics.AGGREGATORS},
                      **{f"MV ({m})": bench.table_row(r, **{**options, "mv_rule": m})["MV"] for m in metrics.MV_RULES}}
    return pd.DataFrame(sens).T.round(1)


def median_threshold(runs: Mapping[str, bench.JudgeRun], names: Sequence[str], options: Mapping) -> pd.DataFrame:
    """AEI and MCC at the threshold of ``options`` and at each judge's median step score."""
    calib = {}
    for name in names:
        r = runs[name]
        med = float(np.median(np.concatenate([np.ravel(x) for x in r.sc_scores] + [np.ravel(x) for x in r.rs_scores])))
        calib[name] = {"median score": med, **{f"{c} @0": bench.table_row(r, **options)[c] for c in ("AEI", "MCC")},
                       **{f"{c} @median": bench.table_row(r, **{**options, "threshold": med})[c] for c in ("AEI", "MCC")}}
    return pd.DataFrame(calib).T.round(2)


def correlations(wide: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlations of the paradigm scores across judges: the paper's 11 consistent models
    beside our judges."""
    paper_corr = wide.drop(index=["Random"] + INCONSISTENT)[PARADIGMS].corr(method="spearman")
    our_corr = ours.loc[claims.judges_of(ours), PARADIGMS].astype(float).corr(method="spearman")
    return pd.concat({"paper (11 models)": paper_corr, "scaled-down": our_corr}, axis=1).round(2)


def bias_text(b: bench.Benchmark, ours: pd.DataFrame, runs: Mapping[str, bench.JudgeRun], wide: pd.DataFrame, *,
              threshold: float, run_smollm: bool) -> str:
    """The biased critics: the constant +1 critic against the error-free share, how SmolLM2's scores fall
    around the threshold, and the paper's rows with FEI < 11 with their AEI."""
    share_clean = 100 * np.mean([min(i.labels) == 1 for i in b.sc])
    lines = [f"constant +1 critic: FEI {ours.loc[CONSTANT, 'FEI']:.1f} (= error-free share {share_clean:.1f}), "
             f"AEI {ours.loc[CONSTANT, 'AEI']:.1f}, MCC {ours.loc[CONSTANT, 'MCC']:.1f}"]
    if run_smollm:
        flat = np.concatenate([np.ravel(x) for x in runs[SMOL].sc_scores])
        lines.append(f"SmolLM2: {100 * np.mean(flat > threshold):.1f} % of its step scores above the threshold {threshold}; "
                     f"score range {flat.min():.2f} .. {flat.max():.2f}")
    low_fei = wide[(wide.FEI < 11)].index.drop("Random", errors="ignore").tolist()
    lines.append(f"paper rows with FEI < 11: {low_fei} their AEI: {wide.loc[low_fei, 'AEI'].tolist()}")
    return "\n".join(lines)


def fei_by_position(runs: Mapping[str, bench.JudgeRun], scales: Sequence[str], threshold: float) -> pd.DataFrame:
    """FEI (%) by the position of the first error (row "no error": error-free solutions), per trained scorer."""
    pos = {name: {k: v[0] for k, v in metrics.fei_by_position(r.sc_scores, r.sc_labels, threshold=threshold).items()}
           for name, r in runs.items() if name in scales}
    return pd.DataFrame(pos).rename(index={0: "no error"}).round(1)


def by_domain(runs: Mapping[str, bench.JudgeRun], scales: Sequence[str], *, n_boot: int, seed: int,
              options: Mapping) -> tuple[pd.DataFrame, dict]:
    """Each trained scorer's Overall on the easy and hard domains, and its bootstrap draws within each."""
    dom = pd.DataFrame({name: {d: bench.table_row(runs[name], domain=d, **options)["Overall"] for d in ("easy", "hard")}
                        for name in scales}).T
    domain_draws = {name: {d: bench.bootstrap_draws(runs[name], n_boot=n_boot, seed=seed, domain=d, **options)
                           for d in ("easy", "hard")} for name in scales}
    return dom, domain_draws


def position_domain_figure(pos_frame: pd.DataFrame, dom: pd.DataFrame):
    """FEI by error position (left) and Overall by domain (right). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    pos_frame.drop(index="no error").plot(marker="o", ax=axes[0])
    axes[0].set_xlabel("position of the first error")
    axes[0].set_ylabel("FEI (%)")
    axes[0].set_title("FEI by error position")
    dom.plot(kind="bar", ax=axes[1])
    axes[1].set_ylabel("Overall")
    axes[1].set_title("Overall by domain")
    fig.tight_layout()
    return fig


def search_problems(n: int, seed: int) -> list:
    """``n`` fresh six-step problems, easy or hard at random (seeded apart from the benchmark's)."""
    rng = random.Random(10_000 + seed)
    return [chains.make_problem(rng, 6, rng.choice(["easy", "hard"])) for _ in range(n)]


def run_search(problems: Sequence, judge_list: Mapping, scales: Sequence[str], *, k: int, policy_error_rate: float,
               aggregator: str, seed: int, beam: int) -> tuple[pd.DataFrame, str, dict]:
    """Greedy search guided by each trained scorer and the oracle, against a random pick
    (:func:`claims.search_reading`: the table and its sentence), with a ``beam``-wide beam search beside
    it. Returns (the table, the sentence, each search's per-problem hits)."""
    kw = dict(k=k, policy_error_rate=policy_error_rate, aggregator=aggregator, seed=seed)
    hits = {NO_PRM: bench.search_hits(problems, None, **kw)}
    beams = {}
    for name in list(scales) + [ORACLE]:
        j = judges.OracleJudge() if name.startswith("oracle") else judge_list[name]
        hits[name] = bench.search_hits(problems, j, **kw)
        beams[name] = bench.search_accuracy(problems, j, beam=beam, **kw)
    search, text = claims.search_reading(hits, baseline=NO_PRM, seed=seed)
    search[f"beam {beam}"] = pd.Series(beams)
    return search, text, hits


def search_figure(search: pd.DataFrame, hits: Mapping[str, Sequence[bool]]):
    """Greedy-search accuracy per PRM, bars coloured by the reading, with the 95 % interval of the
    difference to the random pick (dashed). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(search.index, search["greedy"].astype(float),
           yerr=[(search["minus random pick"] - search["lo"]).astype(float), (search["hi"] - search["minus random pick"]).astype(float)],
           color=["#d73027" if r.startswith("below") else "#1a9850" if r.startswith("above") else "#bbbbbb" for r in search["reads"]],
           capsize=3)
    ax.axhline(100 * np.mean(hits[NO_PRM]), color="k", ls="--", lw=1, label="random pick")
    ax.set_ylabel("greedy-search accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title("PRM-guided greedy search (bars: 95 % interval of the difference to the random pick)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def run_real(data_source: str, image_root: str, judge_path: str, *, judge_row: str, real_limit: int, table2,
             options: Mapping, log=print) -> pd.DataFrame | None:
    """The gpu profile's run: the judge at ``judge_path`` on the first ``real_limit`` items per paradigm of
    the real MPBench, its row beside the paper's ``judge_row`` (reduced scale: our prompt, a subset; not
    judged against it). Without data or judge, says what is missing and returns None."""
    from . import data as mpdata

    if data_source and judge_path:
        recs = {p: mpdata.load_records(mpdata.locate(data_source, p))[:real_limit] for p in mpdata.FILES}
        root = image_root or None
        real_run = bench.run_judge_on_cases(
            judges.VisionLanguageJudge.from_pretrained(judge_path),
            mpdata.step_cases(recs["step_correctness"], image_root=root),
            mpdata.aggregation_cases(recs["answer_aggregation"], image_root=root),
            mpdata.search_cases(recs["reasoning_process_search"], image_root=root), name=judge_row)
        real_row = bench.table_row(real_run, **options)
        # our prompt and the first real_limit items per paradigm: beside the paper's row, not judged against it
        return verdicts.compare(table2.frame().query("row == @judge_row"), {(judge_row, c): v for c, v in real_row.items()},
                                scale="reduced", scale_reason=f"the first {real_limit} items per paradigm; our prompt "
                                "(the paper's is not published)", rule="compendium.mllm_bench.mpbench.bench.run_judge_on_cases")
    try:
        mpdata.locate(data_source or "MPBench-not-given", "step_correctness")
    except mpdata.MPBenchNotFound as err:
        log(f"not run here: {err}")
    return None


def results(parts: Sequence[pd.DataFrame], real_cmp: pd.DataFrame | None) -> pd.DataFrame:
    """Every results cell of the chapter: ``parts`` (Table 2, the claims), then the real run's row if it ran."""
    return pd.concat(list(parts) + ([real_cmp] if real_cmp is not None else []), ignore_index=True)


#: Write the chapter's results and say where (:func:`compendium.mllm_bench.stats.save_results`); returns its minutes.
save = partial(S.save_results, paper=PAPER, notebook=NOTEBOOK)


def summary_text(b: bench.Benchmark, *, scales: Sequence[str], run_smollm: bool, minutes: float) -> dict[str, str]:
    """The summary box's sentences (``notebook.summary_box``'s ``paper_claim``, ``ran_here``, ``not_reproduced``)."""
    ran_here = (f"the paradigms' metrics on a scaled-down benchmark built here (substitute scale): {len(b.sc)} + {len(b.aa)} + "
                f"{len(b.rs)} arithmetic items, {len(scales)} trained scorers"
                + (", SmolLM2-135M on a subset" if run_smollm else "") + f", an oracle and a constant critic, in {minutes:.0f} min on CPU.")
    return {"paper_claim": PAPER_CLAIM, "ran_here": ran_here, "not_reproduced": NOT_REPRODUCED}


def real_view(real_cmp: pd.DataFrame | None):
    """The real run's row beside the paper's (None when it did not run)."""
    return None if real_cmp is None else verdicts.show(real_cmp)
