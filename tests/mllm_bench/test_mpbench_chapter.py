"""What the MPBench chapter shows (``mpbench.chapter``), on a small benchmark scored by the oracle and
constant judges, with stand-ins for the long or unreachable steps (training, SmolLM2, the real data)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from compendium import published, verdicts  # noqa: E402
from compendium.mllm_bench import stats as S  # noqa: E402
from compendium.mllm_bench.mpbench import bench as B  # noqa: E402
from compendium.mllm_bench.mpbench import chapter as CH  # noqa: E402
from compendium.mllm_bench.mpbench import claims as C  # noqa: E402
from compendium.mllm_bench.mpbench import data as D  # noqa: E402
from compendium.mllm_bench.mpbench import judges as J  # noqa: E402
from compendium.mllm_bench.mpbench import metrics as M  # noqa: E402

TABLE2 = published.load("mpbench").table("table2")
WIDE = TABLE2.wide()
OPTIONS = dict(threshold=0.0, aggregator="min", mv_rule="weighted", aei_steps="all")
SCALES = ["PRM-XS", "PRM-S"]


@pytest.fixture(scope="module")
def small():
    """A small benchmark; the two "scorers" are the oracle and a critic that calls every step wrong;
    SmolLM2 is replaced by the constant +1 critic."""
    b = B.make_benchmark(24, 6, 16, seed=0)
    judge_list = {"PRM-XS": J.ConstantJudge(-1.0, name="PRM-XS"), "PRM-S": J.OracleJudge()}
    return b, judge_list


@pytest.fixture(scope="module")
def scored(small):
    b, judge_list = small
    mp = pytest.MonkeyPatch()
    mp.setattr(J, "load_smollm2", lambda: J.ConstantJudge(1.0, name="SmolLM2-135M"))
    lines = []
    runs, smol_bench = CH.run_judges(b, judge_list, run_smollm=True, smollm_items=[4, 2, 4], log=lines.append)
    mp.undo()
    rand = B.random_rows(b, n_draws=2, seed=0, **OPTIONS)
    ours, draws = CH.our_table(runs, rand, smol_bench, SCALES, run_smollm=True, n_boot=20, seed=0, fei_rule="uniform",
                               options=OPTIONS)
    return runs, smol_bench, rand, ours, draws, lines


def test_shared_claim_helpers_bound_to_mpbench():
    cases = [S.Case("a", True, True, "a +1 [+0.5, +1.5]")]
    assert C._decided(cases, True, "every pair").name == "the 95 % bootstrap intervals decide every pair"
    cell = C._claim("t", None, "e", [], "claim_scale", "src").iloc[0]
    assert (cell["rule"], cell["scale"], cell["scale_reason"]) == ("compendium.mllm_bench.mpbench.claims.claim_scale",
                                                                   "substitute", C.SUBSTITUTE)


def test_setup_seeds_torch_and_sets_displays():
    with pd.option_context("display.width", 80):
        t = CH.setup(7)
        assert pd.get_option("display.width") == 160
    assert isinstance(t, float) and torch.initial_seed() == 7


def test_toy_metrics_by_hand(monkeypatch):
    toy = CH.toy_metrics()
    # SC = (50 + 83.33) / 2 = 66.67; AA = (50 + 100) / 2 = 75; RS = (50 + 0) / 2 = 25; Overall their mean 55.56
    assert toy == {"Overall": 55.56, "FEI": 50.0, "AEI": 83.33, "SC": 66.67, "BoN": 50.0, "MV": 100.0, "AA": 75.0,
                   "F1": 50.0, "MCC": 0.0, "RS": 25.0}
    monkeypatch.setattr(M, "process_search", lambda scores, labels: {"F1": 40.0, "MCC": 0.0, "RS": 20.0})
    with pytest.raises(AssertionError, match="hand computation"):
        CH.toy_metrics()


def test_check_paper_table_and_its_cells():
    lines = []
    assert CH.check_paper_table(WIDE, log=lines.append) == ["InternVL2.5-38B"]
    assert lines == ["rows whose averages disagree with their cells: ['InternVL2.5-38B']"]
    with pytest.raises(AssertionError, match="only inconsistent rows"):
        CH.check_paper_table(WIDE, expected=(), log=lambda _: None)
    cells, random_cells = CH.table2_cells(TABLE2, "uniform")
    assert set(random_cells.row) == {"Random"} and len(cells) == len(TABLE2.frame())
    models = cells[cells.row != "Random"]
    assert set(models.reason_class) == {"model"} and models.reproduced.isna().all()


def test_example_and_summary(small):
    b, _ = small
    text = CH.example_text(b)
    lines = text.split("\n")
    assert lines[0].startswith("Start with ") and any("WRONG (" in line for line in lines)
    assert lines[-1].startswith("search context: ") and "-> candidates" in lines[-1]
    summary = CH.benchmark_summary(b)
    assert summary.loc["step correctness: solutions", "value"] == 24 and list(summary.columns) == ["value"]


def test_train_judges_table(monkeypatch):
    calls = []

    class Fake:
        n_parameters = 123

    def fake_train(hidden, layers, heads, n_train, *, lr, updates, seed, name):
        calls.append((hidden, n_train, updates, seed, name))
        return Fake()

    monkeypatch.setattr(J, "train_step_scorer", fake_train)
    judge_list, table = CH.train_judges(["PRM-XS"], updates=5, seed=2)
    cfg = J.SCALES["PRM-XS"]
    assert calls == [(cfg["hidden"], cfg["n_train"], 5, 2, "PRM-XS")] and list(judge_list) == ["PRM-XS"]
    assert table.loc["PRM-XS", "parameters"] == 123 and table.loc["PRM-XS", "training solutions"] == cfg["n_train"]


def test_run_judges_and_our_table(small, scored):
    b, _ = small
    runs, smol_bench, rand, ours, draws, lines = scored
    assert list(runs) == ["PRM-XS", "PRM-S", "constant +1", "oracle (program)", "SmolLM2-135M"]
    assert len(smol_bench.sc) == 4 and lines[0].startswith("SmolLM2: ") and "scores in" in lines[0]
    # 4 solutions x 6 steps + 2 questions x 8 candidates x 6 steps + 4 contexts x 2 candidates
    assert lines[0].startswith(f"SmolLM2: {4 * 6 + 2 * 8 * 6 + sum(len(i.labels) for i in smol_bench.rs)} scores")
    assert list(ours.index) == ["random (analytic)", "random (Monte Carlo)", "PRM-XS", "PRM-S",
                                "random (analytic, SmolLM2 subset)", "SmolLM2-135M", "constant +1", "oracle (program)"]
    assert ours.loc["PRM-S", "FEI"] == 100.0 and set(draws) == set(runs) and len(draws["PRM-S"]) == 20
    shown = CH.shown_table(ours, draws)
    assert shown.loc["PRM-S", "FEI"] == "100.0 ± 0.0" and "±" not in shown.loc["random (analytic)", "FEI"]
    without_smol = {k: v for k, v in runs.items() if k != "SmolLM2-135M"}
    ours2, _ = CH.our_table(without_smol, rand, smol_bench, SCALES, run_smollm=False, n_boot=2, seed=0,
                            fei_rule="uniform", options=OPTIONS)
    assert "SmolLM2-135M" not in ours2.index and "random (analytic, SmolLM2 subset)" not in ours2.index


def test_run_judges_without_smollm(small):
    b, judge_list = small
    lines = []
    runs, smol_bench = CH.run_judges(b, judge_list, run_smollm=False, smollm_items=[1, 1, 1], log=lines.append)
    assert "SmolLM2-135M" not in runs and lines == [] and len(smol_bench.aa) == 1


def test_figures(scored):
    _, _, _, ours, _, _ = scored
    fig = CH.table2_figure(WIDE, ours)
    assert [ax.get_title() for ax in fig.axes] == ["paper (Table 2): paradigm scores; dashed = random Overall",
                                                   "scaled-down: paradigm scores; dashed = random Overall"]
    assert "InternVL2.5-38B" not in [t.get_text() for t in fig.axes[0].get_xticklabels()]
    plt.close(fig)


def test_judge_lists():
    assert CH.judged(SCALES, True) == ["PRM-XS", "PRM-S", "SmolLM2-135M"] and CH.judged(SCALES, False) == SCALES
    assert CH.small_judges(SCALES, True) == ["PRM-XS", "SmolLM2-135M"] and CH.small_judges(SCALES, False) == ["PRM-XS"]


def test_sensitivity_threshold_and_correlations(scored):
    runs, _, _, ours, _, _ = scored
    sens = CH.aggregator_sensitivity(runs, SCALES, OPTIONS)
    assert list(sens.columns) == [f"BoN ({a})" for a in M.AGGREGATORS] + [f"MV ({m})" for m in M.MV_RULES]
    assert sens.loc["PRM-S", "BoN (min)"] == round(B.table_row(runs["PRM-S"], **OPTIONS)["BoN"], 1)
    med = CH.median_threshold(runs, SCALES, OPTIONS)
    # the critic that calls every step wrong: all its scores are -1, so the median is -1
    assert med.loc["PRM-XS", "median score"] == -1.0 and list(med.columns) == ["median score", "AEI @0", "MCC @0",
                                                                               "AEI @median", "MCC @median"]
    corr = CH.correlations(WIDE, ours)
    assert corr.shape == (3, 6) and corr.loc["SC", ("paper (11 models)", "SC")] == 1.0


def test_bias_text(small, scored):
    b, _ = small
    runs, _, _, ours, _, _ = scored
    text = CH.bias_text(b, ours, runs, WIDE, threshold=0.0, run_smollm=True)
    share = 100 * np.mean([min(i.labels) == 1 for i in b.sc])
    assert text.startswith(f"constant +1 critic: FEI {ours.loc['constant +1', 'FEI']:.1f} (= error-free share {share:.1f})")
    # the stand-in SmolLM2 scores +1 everywhere
    assert "SmolLM2: 100.0 % of its step scores above the threshold 0.0; score range 1.00 .. 1.00" in text
    assert text.split("\n")[-1].startswith("paper rows with FEI < 11: [")
    assert len(CH.bias_text(b, ours, runs, WIDE, threshold=0.0, run_smollm=False).split("\n")) == 2


def test_position_and_domain(scored):
    runs, _, _, _, _, _ = scored
    pos = CH.fei_by_position(runs, SCALES, 0.0)
    assert list(pos.columns) == SCALES and "no error" in pos.index and (pos["PRM-S"] == 100.0).all()
    dom, domain_draws = CH.by_domain(runs, SCALES, n_boot=3, seed=0, options=OPTIONS)
    assert list(dom.columns) == ["easy", "hard"] and len(domain_draws["PRM-S"]["hard"]) == 3
    fig = CH.position_domain_figure(pos, dom)
    assert [ax.get_title() for ax in fig.axes] == ["FEI by error position", "Overall by domain"]
    plt.close(fig)


def test_search(small):
    _, judge_list = small
    problems = CH.search_problems(6, seed=0)
    assert len(problems) == 6 and problems[0].text() == CH.search_problems(6, seed=0)[0].text()
    search, text, hits = CH.run_search(problems, judge_list, SCALES, k=3, policy_error_rate=0.3, aggregator="min", seed=0,
                                       beam=2)
    assert list(hits) == ["no PRM (random pick)", "PRM-XS", "PRM-S", "oracle (program)"]
    assert list(search.index) == ["PRM-XS", "PRM-S", "oracle (program)"] and "beam 2" in search.columns
    assert search.loc["oracle (program)", "greedy"] == 100.0 and text.startswith("Greedy search guided by each PRM")
    fig = CH.search_figure(search, hits)
    assert fig.axes[0].get_ylabel() == "greedy-search accuracy (%)"
    plt.close(fig)


def test_run_real_with_data_and_judge(monkeypatch, small):
    b, _ = small
    run = B.run_judge(J.OracleJudge(), b)
    seen = {}
    monkeypatch.setattr(D, "locate", lambda source, paradigm: f"{source}/{paradigm}")
    monkeypatch.setattr(D, "load_records", lambda path: [path] * 5)
    monkeypatch.setattr(D, "step_cases", lambda recs, image_root: ("sc", len(recs), image_root))
    monkeypatch.setattr(D, "aggregation_cases", lambda recs, image_root: ("aa", len(recs), image_root))
    monkeypatch.setattr(D, "search_cases", lambda recs, image_root: ("rs", len(recs), image_root))
    monkeypatch.setattr(J.VisionLanguageJudge, "from_pretrained", classmethod(lambda cls, path: ("judge", path)))

    def fake_cases(judge, sc, aa, rs, *, name):
        seen.update(judge=judge, sc=sc, aa=aa, rs=rs, name=name)
        return run

    monkeypatch.setattr(B, "run_judge_on_cases", fake_cases)
    cmp = CH.run_real("/mp", "", "/ckpt", judge_row="Qwen2.5-VL-7B", real_limit=3, table2=TABLE2, options=OPTIONS)
    assert seen == {"judge": ("judge", "/ckpt"), "sc": ("sc", 3, None), "aa": ("aa", 3, None), "rs": ("rs", 3, None),
                    "name": "Qwen2.5-VL-7B"}
    assert set(cmp.row) == {"Qwen2.5-VL-7B"} and set(cmp.scale) == {"reduced"}
    assert cmp.set_index("column").loc["FEI", "reproduced"] == B.table_row(run, **OPTIONS)["FEI"]
    assert isinstance(CH.real_view(cmp), verdicts.HtmlTable) and CH.real_view(None) is None


def test_run_real_says_what_is_missing():
    lines = []
    assert CH.run_real("", "", "", judge_row="x", real_limit=1, table2=TABLE2, options=OPTIONS, log=lines.append) is None
    assert lines[0].startswith("not run here: MPBench file") and "MPBench-not-given" in lines[0]


def test_results_save_and_summary(small):
    b, _ = small
    cells, _ = CH.table2_cells(TABLE2, "uniform")
    claim = C._claim("A claim", None, "why", [], "claim_scale", "src")
    out = CH.results([cells, claim], None)
    assert len(out) == len(cells) + 1
    assert len(CH.results([cells, claim], claim)) == len(cells) + 2
    assert CH.save.func is S.save_results and CH.save.keywords == {"paper": "mpbench", "notebook": "prm_paradigms"}
    text = CH.summary_text(b, scales=SCALES, run_smollm=True, minutes=2.2)
    assert text["ran_here"] == ("the paradigms' metrics on a scaled-down benchmark built here (substitute scale): 24 + 6 + 16 "
                                "arithmetic items, 2 trained scorers, SmolLM2-135M on a subset, an oracle and a constant "
                                "critic, in 2 min on CPU.")
    assert "SmolLM2" not in CH.summary_text(b, scales=SCALES, run_smollm=False, minutes=2.2)["ran_here"]
    assert text["paper_claim"] == CH.PAPER_CLAIM and text["not_reproduced"] == CH.NOT_REPRODUCED
