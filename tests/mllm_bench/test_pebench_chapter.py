"""What the PEBench chapter shows (``pebench.chapter``), on hand-made runs and stand-ins for the long
steps (the protocol, the real benchmark, the results file); and the claim helpers shared through
``mllm_bench.stats``."""

from __future__ import annotations

import math
import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from compendium import published, verdicts  # noqa: E402
from compendium.mllm_bench import stats as S  # noqa: E402
from compendium.mllm_bench.pebench import bench as B  # noqa: E402
from compendium.mllm_bench.pebench import chapter as CH  # noqa: E402
from compendium.mllm_bench.pebench import claims as C  # noqa: E402
from compendium.mllm_bench.pebench import data as D  # noqa: E402
from compendium.mllm_bench.pebench import losses as L  # noqa: E402
from compendium.mllm_bench.pebench import model as Mo  # noqa: E402
from compendium.mllm_bench.pebench import scenes as Sc  # noqa: E402

T1 = published.load("pebench").table("table1")
T2 = published.load("pebench").table("table2")
ALL = list(dict.fromkeys(B.P_COLUMNS + B.E_COLUMNS + B.JOINT_COLUMNS))


def hand_runs():
    """Two seeds; Finetune and Goal at step 0, GA and GD (single) or GD and GD + BGD (joint) at budgets 5
    and 20. Every column is 10 for Finetune, 90 for Goal, the budget for GA and twice it for GD (and
    GD + BGD), plus the seed (so the standard deviation over seeds is 0.7071)."""
    rows = []
    for seed in (0, 1):
        for setting in ("person", "event", "joint"):
            rows.append({"seed": seed, "setting": setting, "method": "Finetune", "step": 0, **{c: 10.0 + seed for c in ALL}})
            rows.append({"seed": seed, "setting": setting, "method": "Goal", "step": 0, **{c: 90.0 + seed for c in ALL}})
            for m, k in ((("GD", 2), ("GD + BGD", 2)) if setting == "joint" else (("GA", 1), ("GD", 2))):
                for step in (5, 20):
                    rows.append({"seed": seed, "setting": setting, "method": m, "step": step,
                                 **{c: float(k * step + seed) for c in ALL}})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ shared claim helpers


def test_decided_and_substitute_claim():
    cases = [S.Case("a", True, True, "a +1.0 [+0.5, +1.5]"), S.Case("b", True, False, "b +0.2 [-0.1, +0.5]")]
    pre = S.decided(cases, False, "every method", intervals="95 % intervals over seeds")
    assert pre.name == "the 95 % intervals over seeds decide every method" and not pre.met
    assert pre.measured == "a +1.0 [+0.5, +1.5]; b +0.2 [-0.1, +0.5]"
    cell = S.substitute_claim("pebench", "a substitute", "pkg.claims.", "A claim", True, "evidence", [pre], "claim_x", "src")
    rec = cell.iloc[0]
    assert (rec["verdict"], rec["scale"], rec["scale_reason"], rec["rule"]) == ("inconclusive", "substitute", "a substitute",
                                                                               "pkg.claims.claim_x")
    # the papers' bindings: the interval wording and the paper's rule prefix
    assert C._decided(cases, True, "x").name == "the 95 % intervals over seeds decide x"
    assert C._claim("t", True, "e", [S.decided(cases, True, "x", intervals="i")], "claim_bgd", "s").iloc[0]["rule"] == \
        "compendium.mllm_bench.pebench.claims.claim_bgd"


# ------------------------------------------------------------------------------------ setup, the worked example


def test_setup_sets_threads_and_displays():
    with pd.option_context("display.width", 80, "display.max_columns", 5):
        t = CH.setup()
        assert pd.get_option("display.width") == 200 and pd.get_option("display.max_columns") == 30
    assert isinstance(t, float)


def test_toy_losses_by_hand(monkeypatch):
    rows = CH.toy_losses()
    # NLL = -(ln 0.5 + ln 0.8) / 2 = 0.4581; GA is its negative
    assert rows["NLL"] == pytest.approx(0.4581) and rows["GA"] == -rows["NLL"]
    assert set(rows) == {"NLL", "GA", "GD", "KL", "NPO", "SimNPO"}
    monkeypatch.setattr(L, "ga", lambda model, batch, **kw: (L.nll(model, batch.forget),))  # the wrong sign
    with pytest.raises(AssertionError, match="hand computation"):
        CH.toy_losses()


def test_loss_curves_figure():
    fig = CH.loss_curves_figure(beta=0.4)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()[:2]] == ["GA: log-probability (minimised)", "NPO, beta = 0.4"]
    # NPO at d = 2: -(2 / 0.4) ln(1 / (1 + e^0.8)) = 5 ln(1 + e^0.8) = 5 x 1.1711 = 5.856
    assert ax.get_lines()[1].get_ydata()[-1] == pytest.approx(5 * math.log(1 + math.exp(0.8)))
    plt.close(fig)


# ------------------------------------------------------------------------------------ the world


def test_world_figure_and_summary():
    world = Sc.make_world(8, 5, image_size=24, n_real_persons=2, real_per_person=3, n_pope=20, seed=3)
    fig = CH.world_figure(world)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 16 and titles[8].startswith("real: ") and "\n" in titles[-1]
    assert titles[0] == f"{world.persons[world.samples[0].person].name}\n{world.events[world.samples[0].event].name}"
    plt.close(fig)
    text = CH.world_summary(world, 5)
    assert text.startswith(f"8 persons x 5 events = {len(world.of('pebench'))} images")
    assert f"{len(world.pope)} world-fact questions\nan event's sentence and keywords: {world.events[0].description}" in text


# ------------------------------------------------------------------------------------ the protocol


def test_run_substitute_concatenates_seeds(monkeypatch):
    calls = []

    def fake_run_seed(seed, **kw):
        calls.append((seed, kw))
        frame = pd.DataFrame([{"seed": seed, "setting": "person", "method": "GA", "step": 5}])
        frame.attrs["targets"] = {"person": {"persons": [f"p{seed}"], "events": []}}
        return frame

    monkeypatch.setattr(B, "run_seed", fake_run_seed)
    lines = []
    runs = CH.run_substitute([0, 1], steps=5, eval_at=[2, 5], log=lines.append, world_kwargs={"n_persons": 4}, n_eval=3)
    assert list(runs.seed) == [0, 1]
    assert calls[0][1]["eval_at"] == (2, 5) and calls[0][1]["steps"] == 5 and calls[1][1]["n_eval"] == 3
    assert lines[0] == "targets: {'person': {'persons': ['p0'], 'events': []}}" and lines[-1].startswith("all seeds: ")
    with pytest.raises(ValueError, match="full budget"):
        CH.run_substitute([0], steps=7, eval_at=[2, 5])


def test_check_finetune_and_reference_view():
    runs = hand_runs()
    CH.check_finetune(runs.assign(**{"P-Retain": 95.0, "P-Eff": 3.0}), 80.0)
    with pytest.raises(AssertionError, match="must know the persons"):
        CH.check_finetune(runs, 80.0)  # Finetune's P-Retain is 10.5
    view = CH.reference_view(runs)
    assert view.loc[("person", "Finetune"), "P-Eff"] == 10.5 and view.loc[("event", "Goal"), "E-WF"] == 90.5
    assert list(view.columns) == B.P_COLUMNS + B.E_COLUMNS


def test_preconditions_view():
    pres = [verdicts.Precondition("a", ">= 1", 2, True), verdicts.Precondition("b", "< 0", 3, False)]
    view = CH.preconditions_view(pres)
    assert list(view.columns) == ["name", "required", "measured", "met"] and list(view.met) == [True, False]


def test_budget_figure_and_table():
    runs = hand_runs()
    fig = CH.budget_figure(runs, ["GA", "GD"])
    left = fig.axes[0]
    ga = left.get_lines()[0]
    # from Finetune (10.5) through the budgets 5 and 20 (means over seeds: 5.5, 20.5)
    assert list(ga.get_xdata()) == [10.5, 5.5, 20.5] and left.get_title() == "person unlearning"
    plt.close(fig)
    table = CH.budget_table(runs, ["GA", "GD"])
    assert table.loc[("person", "GD"), ("P-Eff", 20)] == 40.5 and table.loc[("event", "GA"), ("E-Retain", 5)] == 5.5


def test_tables_beside_the_paper():
    tab = CH.Tables.from_runs(hand_runs(), ["GA", "GD"], ["GD", "GD + BGD"])
    assert list(tab.p_mean.index) == ["Finetune", "GA", "GD", "Goal"] and tab.p_mean.loc["GD", "P-Eff"] == 40.5
    assert tab.p_std.loc["GA", "P-Eff"] == pytest.approx(math.sqrt(0.5))
    person = tab.person(T1)
    assert person.loc["GA", ("ours", "P-Eff")] == "20.5 ± 0.7" and person.loc["GA", ("paper (v1)", "P-Eff")] == T1.wide().loc["GA", "P-Eff"]
    assert tab.event(T1).loc["Goal", ("ours", "E-Eff")] == "90.50 ± 0.71"
    assert tab.joint(T2).loc["GD + BGD", ("ours", "P-Eff")] == "40.50 ± 0.71"
    cmp = tab.compared(T1, T2)
    assert set(cmp.scale) == {"substitute"} and set(cmp.rule) == {CH.MEASURED_RULE}
    assert set(cmp.table) == {"table1", "table2"}


# ------------------------------------------------------------------------------------ the real benchmark


def real_frame():
    """:func:`bench.run_real`'s shape: one row per (setting, method), Real and World Fact not measured."""
    rows = []
    for setting in ("person", "event", "joint"):
        for m in ("Finetune", "GA"):
            rows.append({"setting": setting, "method": m,
                         **{c: (float("nan") if c.endswith(("Real", "WF")) else 50.0) for c in ALL}})
    frame = pd.DataFrame(rows)
    frame.attrs["targets"] = {"person": {"persons": ["x"], "events": []}}
    return frame


def test_run_real_with_data_and_model(monkeypatch):
    seen = {}
    monkeypatch.setattr(D, "load_records", lambda source: [f"record of {source}"])
    monkeypatch.setattr(D, "to_world", lambda records, seed: ("world", records, seed))
    monkeypatch.setattr(Mo.VLM, "from_pretrained", classmethod(lambda cls, path: ("vlm", path)))

    def fake_run_real(finetuned, world, **kw):
        seen.update(finetuned=finetuned, world=world, **kw)
        return real_frame()

    monkeypatch.setattr(B, "run_real", fake_run_real)
    lines = []
    out = CH.run_real("/data/pe", "/ckpt", seed=3, methods=["GA"], joint_methods=["GD"], steps=2, stop_forget_nll=9.0,
                      log=lines.append)
    assert out is not None and seen["finetuned"] == ("vlm", "/ckpt") and seen["world"] == ("world", ["record of /data/pe"], 3)
    assert (seen["methods"], seen["joint_methods"], seen["steps"], seen["seed"], seen["stop_forget_nll"]) == (["GA"], ["GD"], 2, 3, 9.0)
    assert lines == ["targets: {'person': {'persons': ['x'], 'events': []}}"]


def test_run_real_says_what_is_missing():
    lines = []
    assert CH.run_real("", "", seed=0, methods=[], joint_methods=[], steps=1, stop_forget_nll=1.0, log=lines.append) is None
    assert lines[0].startswith("not run here: the gpu profile needs data_source and model_path") and "PEBench" in lines[1]
    lines.clear()
    assert CH.run_real("/some/folder", "", seed=0, methods=[], joint_methods=[], steps=1, stop_forget_nll=1.0,
                       log=lines.append) is None
    assert len(lines) == 1  # the data is given: only the checkpoint is missing


def test_real_view_results_save_and_summary(monkeypatch, tmp_path):
    assert CH.real_view(T1, None) is None
    assert isinstance(CH.real_view(T1, real_frame()), verdicts.HtmlTable)
    tab = CH.Tables.from_runs(hand_runs(), ["GA", "GD"], ["GD", "GD + BGD"])
    claim_cells = C._claim("A claim", None, "why", [], "claim_bgd", "src")
    out = CH.results(T1, T2, tab, claim_cells, None)
    assert out.iloc[-1]["row"] == "A claim" and len(out) == len(tab.compared(T1, T2)) + 1
    real = CH.results(T1, T2, tab, claim_cells, real_frame())
    assert set(real.rule[:-1]) == {"compendium.mllm_bench.pebench.bench.run_real"}
    saved = {}
    monkeypatch.setattr(verdicts, "save", lambda cells, paper, nb: saved.update(n=len(cells), where=(paper, nb)) or tmp_path / "x.results.json")
    lines = []
    minutes = CH.save(out, 0.0, log=lines.append)  # mllm_bench.stats.save_results, bound to this chapter
    assert saved == {"n": len(out), "where": ("pebench", "unlearning")} and minutes > 0
    assert lines[0].startswith("results written: x.results.json; notebook time ") and lines[0].endswith(" min")
    text = CH.summary_text(n_persons=12, n_events=8, methods=["GA", "GD"], joint_methods=["GD"], steps=20, seeds=[0],
                           minutes=3.4)
    assert text["ran_here"] == ("a scaled-down PEBench built here (substitute scale): 12 procedural persons x 8 events, a tiny "
                                "LLaVA trained from scratch, 2 single-target and 1 joint methods for up to 20 steps, 1 seed(s), "
                                "in 3 min on CPU.")
    assert text["paper_claim"] == CH.PAPER_CLAIM and text["not_reproduced"] == CH.NOT_REPRODUCED
