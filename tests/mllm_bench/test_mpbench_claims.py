"""MPBench's claim rules on hand-made rows and bootstrap draws (every branch, inconclusive included)."""

import numpy as np
import pandas as pd
import pytest

from compendium import published, verdicts
from compendium.mllm_bench.mpbench import bench as B
from compendium.mllm_bench.mpbench import claims as C

WIDE = published.load("mpbench").table("table2").wide()
COLS = B.COLUMNS
SCALES = ["PRM-XS", "PRM-S", "PRM-M"]


def row(overall, **cols):
    """A Table-2 row whose paradigm scores all equal ``overall`` unless given."""
    base = {c: float(overall) for c in COLS}
    base.update({k: float(v) for k, v in cols.items()})
    return base


def make(overalls=None, *, sd=1.0, paradigms=None):
    """``ours`` and per-judge bootstrap ``draws`` (normal around the row, standard deviation ``sd``)."""
    overalls = {"random (analytic)": 32, "PRM-XS": 30, "PRM-S": 50, "PRM-M": 80, "random (analytic, SmolLM2 subset)": 28,
                "SmolLM2-135M": 14, "constant +1": 48, "oracle (program)": 98, **(overalls or {})}
    rows = {n: row(v, **(paradigms or {}).get(n, {})) for n, v in overalls.items()}
    # the paradigms rise with the judges' quality, so SC, AA and RS are rank-correlated
    ours = pd.DataFrame(rows).T[COLS]
    rng = np.random.default_rng(0)
    draws = {n: pd.DataFrame([{c: ours.loc[n, c] + rng.normal(0, sd) for c in COLS} for _ in range(200)])
             for n in ours.index if not n.startswith("random")}
    return ours, draws


def verdict(frame):
    return frame.iloc[0]["verdict"]


def unmet(frame):
    return [p["name"] for p in frame.iloc[0]["preconditions"] if not p["met"]]


def test_calibration_spans_the_paper_range():
    ours, _ = make()
    pre = C.calibration(ours, WIDE)
    assert pre.met and "SmolLM2-135M -14.0" in pre.measured and "GPT-4o" in pre.required
    weak, _ = make({"SmolLM2-135M": 40, "PRM-XS": 40})  # nobody at or below random
    assert not C.calibration(weak, WIDE).met
    short, _ = make({"PRM-M": 55})  # the strongest closes (55 - 32) / (98 - 32) = 35 % < GPT-4o's 58 %
    assert not C.calibration(short, WIDE).met


def test_scale_supported_refuted_and_inconclusive():
    ours, draws = make()
    out = C.claim_scale(ours, draws, SCALES, WIDE)
    assert verdict(out) == "supported" and out.iloc[0]["scale"] == "substitute"
    assert out.iloc[0]["rule"] == "compendium.mllm_bench.mpbench.claims.claim_scale"
    close, draws = make({"PRM-S": 79.7, "PRM-M": 80.0})  # 0.3 apart with a spread of 1: the 78.8 vs 79.1
    out = C.claim_scale(close, draws, SCALES, WIDE)
    assert verdict(out) == "inconclusive" and unmet(out) == ["the 95 % bootstrap intervals decide every step up the scale"]
    down, draws = make({"PRM-S": 90})
    assert verdict(C.claim_scale(down, draws, SCALES, WIDE)) == "not supported"
    assert verdict(C.claim_scale(ours, draws, ["PRM-XS"], WIDE)) == "inconclusive"  # nothing to compare


def test_scale_inconclusive_when_the_judges_are_not_calibrated():
    ours, draws = make({"SmolLM2-135M": 40, "PRM-XS": 40})
    out = C.claim_scale(ours, draws, SCALES, WIDE)
    assert verdict(out) == "inconclusive" and unmet(out) == ["the judges span from below random to near the oracle"]


def test_below_random():
    ours, draws = make()
    out = C.claim_below_random(ours, draws, ["PRM-XS", "SmolLM2-135M"], WIDE, COLS)
    assert verdict(out) == "supported" and "SmolLM2-135M Overall" in out.iloc[0]["reason"]
    above, draws = make({"PRM-XS": 45, "SmolLM2-135M": 45, "PRM-S": 20})  # PRM-S keeps the calibration
    assert verdict(C.claim_below_random(above, draws, ["PRM-XS", "SmolLM2-135M"], WIDE, COLS)) == "not supported"
    near, draws = make({"PRM-XS": 31.5, "PRM-S": 20}, sd=3.0)  # 0.5 under random with a spread of 3
    out = C.claim_below_random(near, draws, ["PRM-XS"], WIDE, ["Overall"])
    assert verdict(out) == "inconclusive"


def test_correlation():
    paradigms = {"PRM-S": {"AA": 30}}  # one rank swap keeps every pair positive
    ours, draws = make(paradigms=paradigms)
    assert verdict(C.claim_correlation(ours, draws, WIDE)) == "supported"
    few, fdraws = make()
    few = few.drop(index=["PRM-S", "PRM-M", "constant +1"])
    short = {k: v for k, v in fdraws.items() if k in few.index}
    out = C.claim_correlation(few, short, WIDE)  # 3 judges
    assert verdict(out) == "inconclusive" and "enough judges for a rank correlation" in unmet(out)


def test_correlation_refuted_when_a_paradigm_runs_backwards():
    flip = {n: {"RS": 100 - v} for n, v in {"PRM-XS": 30, "PRM-S": 50, "PRM-M": 80, "SmolLM2-135M": 14,
                                              "constant +1": 48, "oracle (program)": 98}.items()}
    ours, draws = make(paradigms=flip, sd=0.5)
    assert verdict(C.claim_correlation(ours, draws, WIDE)) == "not supported"


def test_domain():
    ours, _ = make()
    rng = np.random.default_rng(1)

    def domain_draws(easy, hard, sd):
        return {"easy": pd.DataFrame({"Overall": rng.normal(easy, sd, 200)}),
                "hard": pd.DataFrame({"Overall": rng.normal(hard, sd, 200)})}

    clear = pd.DataFrame({"easy": [40.0, 60.0], "hard": [30.0, 50.0]}, index=["PRM-XS", "PRM-S"])
    dd = {"PRM-XS": domain_draws(40, 30, 1), "PRM-S": domain_draws(60, 50, 1)}
    assert verdict(C.claim_domain(ours, clear, dd, WIDE)) == "supported"
    mixed = pd.DataFrame({"easy": [36.0, 50.9], "hard": [37.4, 48.3]}, index=["PRM-XS", "PRM-S"])  # the case
    dd = {"PRM-XS": domain_draws(36.0, 37.4, 2), "PRM-S": domain_draws(50.9, 48.3, 2)}
    out = C.claim_domain(ours, mixed, dd, WIDE)
    assert verdict(out) == "inconclusive" and "every scorer" in unmet(out)[0]
    backwards = pd.DataFrame({"easy": [30.0]}, index=["PRM-XS"]).assign(hard=[40.0])
    assert verdict(C.claim_domain(ours, backwards, {"PRM-XS": domain_draws(30, 40, 1)}, WIDE)) == "not supported"


def test_random_row_reconstruction_cells():
    cells = C.random_row_cells(10, "uniform")
    assert cells[("Random", "FEI")] == pytest.approx(100 / 11) and cells[("Random", "F1")] == pytest.approx(50.0)
    assert cells[("Random", "SC")] == pytest.approx((100 / 11 + 50) / 2) and cells[("Random", "RS")] == pytest.approx(25.0)
    assert isinstance(cells[("Random", "BoN")], verdicts.NotRun)
    table = published.load("mpbench").table("table2").frame()
    out = verdicts.compare(table[table.row == "Random"], cells, scale="paper")
    assert set(out.basis) == {"reconstruction"} and "29.55" in out.iloc[0]["tolerance_source"]
    assert out.set_index("column").loc["SC", "verdict"] == "within tolerance"  # 29.545 against the printed 29.6


def test_search_reading():
    hits = {"random": [True] * 20 + [False] * 80, "weak": [False] * 100, "strong": [True] * 60 + [False] * 40,
            "same": [True] * 20 + [False] * 80}
    table, text = C.search_reading(hits, baseline="random")
    assert table.loc["weak", "reads"] == "below the random pick" and table.loc["strong", "reads"] == "above the random pick"
    assert table.loc["same", "reads"] == "no decided difference"
    assert "weak (0.0): below the random pick" in text and "20.0 % of 100 problems" in text


def test_bootstrap_draws_pair_judges_and_split_domains():
    bench = B.make_benchmark(12, 4, 12, seed=0)
    from compendium.mllm_bench.mpbench import judges

    a = B.run_judge(judges.OracleJudge(), bench)
    d = B.bootstrap_draws(a, n_boot=5, seed=3)
    assert list(d.columns) == COLS and len(d) == 5 and (d["FEI"] == 100).all()
    row = B.bootstrap_row(a, n_boot=5, seed=3)
    assert row.loc["Overall", "mean"] == pytest.approx(d["Overall"].mean())
    easy = B.bootstrap_draws(a, n_boot=3, seed=0, domain="easy")
    assert len(easy) == 3
