"""What the PEBench chapter (``notebooks/pebench/unlearning.ipynb``) shows: the worked loss example, the
figures, the tables of the scaled-down runs beside the paper's, the real-benchmark branch, the results
it saves and the summary box's sentences. The notebook holds the parameters and calls these; the
rules that decide the claims are in :mod:`compendium.mllm_bench.pebench.claims`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from compendium import verdicts

from .. import stats as S
from . import bench, claims, losses

__all__ = ["setup", "toy_losses", "loss_curves_figure", "world_figure", "world_summary", "run_substitute",
           "check_finetune", "reference_view", "preconditions_view", "budget_figure", "budget_table", "Tables", "run_real", "real_view",
           "results", "save", "summary_text", "PAPER_CLAIM", "NOT_REPRODUCED"]

PAPER, NOTEBOOK = "pebench", "unlearning"
PAPER_CLAIM = ("Every unlearning method forgets fictitious persons but also the persons it should keep; events are much "
               "harder to forget than persons; forgetting one concept damages the other in the same image; BGD helps "
               "when a person and an event are forgotten together.")
NOT_REPRODUCED = ("PEBench's images and LLaVA-1.5-7B are not reachable here: each Table 1 and 2 cell shows the "
                  "substitute's value as not comparable; the paper's recipe (forget ratio, steps) is unpublished.")
MEASURED_RULE = "compendium.mllm_bench.pebench.bench.final_table"


def setup() -> float:
    """One torch thread (two shared cores: one thread is faster than two), wide pandas displays; returns
    the chapter's start time (``time.perf_counter``)."""
    torch.set_num_threads(1)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    return time.perf_counter()


def toy_losses() -> dict[str, float]:
    """Every loss on a made-up model with fixed next-token probabilities (``losses.FixedModel``): the
    answer's two tokens have probabilities 0.5 and 0.8, so the token-averaged NLL is
    -(ln 0.5 + ln 0.8) / 2 and GA is its negative (checked). Returns the losses rounded to 4 decimals."""
    toy_batch = {"input_ids": torch.tensor([[0, 1, 2]]), "labels": torch.tensor([[-100, 1, 2]])}
    current = losses.FixedModel([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [1 / 3] * 3])
    reference = losses.FixedModel([[0.25, 0.25, 0.5], [0.2, 0.2, 0.6], [1 / 3] * 3])
    b = losses.UnlearnBatch(forget=toy_batch, retain=toy_batch, forget_idk=toy_batch)
    rows = {"NLL": float(losses.nll(current, toy_batch))}
    for name, fn, kw in [("GA", losses.ga, {}), ("GD", losses.gd, {}), ("KL", losses.kl, {"ref": reference}),
                         ("NPO", losses.npo, {"ref": reference, "alpha": 0.0}), ("SimNPO", losses.simnpo, {"alpha": 0.0})]:
        rows[name] = float(fn(current, b, **kw)[0])
    if not (abs(rows["NLL"] - (-(math.log(0.5) + math.log(0.8)) / 2)) < 1e-6 and abs(rows["GA"] + rows["NLL"]) < 1e-6):
        raise AssertionError(f"the losses disagree with the hand computation: {rows}")
    return {k: round(v, 4) for k, v in rows.items()}


def loss_curves_figure(beta: float = 0.4):
    """GA's loss (unbounded) against NPO's (saturating) as functions of the forget answer's relative
    log-probability, with GA's early stop dotted. Returns the figure."""
    import matplotlib.pyplot as plt

    d = np.linspace(-30, 2, 200)  # log pi(y|x) - log pi_ref(y|x) (GA: the log-probability itself)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(d, d, label="GA: log-probability (minimised)")
    ax.plot(d, -(2 / beta) * np.log(1 / (1 + np.exp(beta * d))), label=f"NPO, beta = {beta:g}")
    ax.axvline(-10, color="grey", ls=":", lw=1)
    ax.set_xlabel("log-probability of the forget answer (relative)")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    ax.set_title("GA is unbounded; NPO saturates (dotted: GA's early stop)")
    return fig


def world_figure(world):
    """Eight benchmark images (person and event named), four of the "real" family and four world-fact
    images (question and answer). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 8, figsize=(13, 3.8))
    picks = [s for s in world.samples if s.kind == "pebench"][:8] + world.of("real")[:4] + world.pope[:8:2]
    for ax, s in zip(axes.flat, picks):
        ax.imshow(s.image, interpolation="nearest")
        ax.axis("off")
        if s.kind == "pebench":
            title = f"{world.persons[s.person].name}\n{world.events[s.event].name}"
        elif s.kind == "real":
            title = f"real: {world.real_persons[s.person].name}\n{world.events[s.event].name}"
        else:
            title = f"{s.question}\n{s.answer}"
        ax.set_title(title, fontsize=6)
    return fig


def world_summary(world, n_events: int) -> str:
    """The world's size in two lines, and one event's sentence with its keywords."""
    return (f"{len(world.persons)} persons x {n_events} events = {len(world.of('pebench'))} images "
            f"({len(world.of('pebench', 'heldout'))} held out); {len(world.real_persons)} real-family persons at "
            f"{len(world.events) - n_events} other events, {len(world.of('real'))} images; {len(world.pope)} world-fact questions\n"
            f"an event's sentence and keywords: {world.events[0].description} -> {world.events[0].keywords}")


def run_substitute(seeds: Sequence[int], *, steps: int, eval_at: Sequence[int], log=print, **kwargs) -> pd.DataFrame:
    """:func:`bench.run_seed` for every seed (``kwargs`` passed on; ``eval_at`` as a tuple), printing each
    seed's targets; the frames concatenated. The full budget ``steps`` must be one of ``eval_at``."""
    if steps not in eval_at:
        raise ValueError("the full budget must be one of the evaluated budgets")
    t0 = time.perf_counter()
    frames = []
    for seed in seeds:
        frames.append(bench.run_seed(seed, steps=steps, eval_at=tuple(eval_at), log=log, **kwargs))
        log(f"targets: {frames[-1].attrs['targets']}")
    runs = pd.concat(frames, ignore_index=True)
    log(f"all seeds: {time.perf_counter() - t0:.0f} s")
    return runs


def check_finetune(runs: pd.DataFrame, min_finetune_retain: float) -> None:
    """Stop the chapter unless the Finetune model recognises at least ``min_finetune_retain`` % of the
    persons (P-Retain) and forgets at most the rest of them (P-Eff)."""
    ft = runs[(runs.method == "Finetune") & (runs.setting == "person")]
    if not (ft["P-Retain"].mean() >= min_finetune_retain and ft["P-Eff"].mean() <= 100 - min_finetune_retain):
        raise AssertionError("the Finetune model must know the persons (train longer)")


def reference_view(runs: pd.DataFrame) -> pd.DataFrame:
    """The Finetune and Goal models' columns, mean over seeds, per setting."""
    refs = runs[runs.method.isin(["Finetune", "Goal"])]
    return refs.groupby(["setting", "method"])[bench.P_COLUMNS + bench.E_COLUMNS].mean().round(2)


def preconditions_view(preconditions: Sequence[verdicts.Precondition]) -> pd.DataFrame:
    """One row per precondition (name, required, measured, met)."""
    return pd.DataFrame([p.as_dict() for p in preconditions])


def budget_figure(runs: pd.DataFrame, methods: Sequence[str]):
    """Forgetting against retention over the step budget, person and event unlearning side by side: one
    line per method (from the Finetune model), the Goal model as a star. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, (setting, x, y) in zip(axes, [("person", "P-Eff", "P-Retain"), ("event", "E-Eff", "E-Retain")]):
        lines, goal = bench.budget_curves(runs, setting, x, y, methods)
        for m, pts in lines.items():
            ax.plot(pts[x], pts[y], marker="o", ms=3, label=m)
        ax.scatter([goal[x]], [goal[y]], marker="*", s=200, color="k", label="Goal", zorder=5)
        ax.set_xlabel(f"{x} (forgetting)")
        ax.set_ylabel(f"{y} (retention)")
        ax.set_title(f"{setting} unlearning")
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def budget_table(runs: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Efficacy and retain of the single-target methods by budget (columns), mean over seeds."""
    single = runs[runs.method.isin(methods) & runs.setting.isin(["person", "event"])]
    budget = single.groupby(["setting", "method", "step"])[["P-Eff", "P-Retain", "E-Eff", "E-Retain"]].mean().round(2)
    return budget.unstack("step")


@dataclass(frozen=True)
class Tables:
    """Mean and standard deviation over seeds at the full budget (:func:`bench.final_table`) of the person,
    event and joint settings."""

    p_mean: pd.DataFrame
    p_std: pd.DataFrame
    e_mean: pd.DataFrame
    e_std: pd.DataFrame
    j_mean: pd.DataFrame
    j_std: pd.DataFrame

    @classmethod
    def from_runs(cls, runs: pd.DataFrame, methods: Sequence[str], joint_methods: Sequence[str]) -> "Tables":
        return cls(*bench.final_table(runs, "person", bench.P_COLUMNS, methods),
                   *bench.final_table(runs, "event", bench.E_COLUMNS, methods),
                   *bench.final_table(runs, "joint", bench.JOINT_COLUMNS, joint_methods))

    def person(self, table1) -> pd.DataFrame:
        """Person unlearning, "mean ± std", beside the paper's Table 1."""
        return pd.concat({"ours": bench.plus_minus(self.p_mean, self.p_std),
                          "paper (v1)": table1.wide()[bench.P_COLUMNS].astype(object)}, axis=1)

    def event(self, table1) -> pd.DataFrame:
        """Event unlearning, "mean ± std" (2 decimals), beside the paper's Table 1."""
        return pd.concat({"ours": bench.plus_minus(self.e_mean, self.e_std, 2),
                          "paper (v1)": table1.wide()[bench.E_COLUMNS].astype(object)}, axis=1)

    def joint(self, table2) -> pd.DataFrame:
        """Joint unlearning, "mean ± std" (2 decimals), beside the paper's Table 2."""
        return pd.concat({"ours": bench.plus_minus(self.j_mean, self.j_std, 2),
                          "paper (v1)": table2.wide()[bench.JOINT_COLUMNS].astype(object)}, axis=1)

    def compared(self, table1, table2) -> pd.DataFrame:
        """The substitute's values beside the paper's Tables 1 and 2, never judged against them."""
        cmp1 = verdicts.compare(table1, bench.measured_cells(self.p_mean, self.e_mean), scale="substitute",
                                scale_reason=claims.SUBSTITUTE, rule=MEASURED_RULE)
        cmp2 = verdicts.compare(table2, bench.measured_cells(self.j_mean), scale="substitute",
                                scale_reason=claims.SUBSTITUTE, rule=MEASURED_RULE)
        return pd.concat([cmp1, cmp2], ignore_index=True)


def run_real(data_source: str, model_path: str, *, seed: int, methods: Sequence[str], joint_methods: Sequence[str],
             steps: int, stop_forget_nll: float, log=print) -> pd.DataFrame | None:
    """The gpu profile's run on the real PEBench (``data_source``) from a LLaVA-1.5 checkpoint already
    fine-tuned on it (``model_path``): :func:`bench.run_real`, its targets printed. Without both, says
    what is missing and returns None."""
    from . import data as pedata
    from . import model

    if data_source and model_path:
        real_world = pedata.to_world(pedata.load_records(data_source), seed=seed)
        finetuned = model.VLM.from_pretrained(model_path)
        real_runs = bench.run_real(finetuned, real_world, methods=methods, joint_methods=joint_methods, steps=steps,
                                   seed=seed, stop_forget_nll=stop_forget_nll)
        log(f"targets: {real_runs.attrs['targets']}")
        return real_runs
    log("not run here: the gpu profile needs data_source and model_path (unlearning.gpu.yaml)")
    if not data_source:
        try:
            pedata.load_records("PEBench-not-given")
        except pedata.PEBenchNotFound as err:
            log(str(err))
    return None


def real_view(table1, real_runs: pd.DataFrame | None):
    """The real run's person and event rows beside Table 1 (None when it did not run)."""
    return None if real_runs is None else verdicts.show(bench.compare_real(table1, real_runs, ("person", "event")))


def results(table1, table2, tables: Tables, claim_cells: pd.DataFrame, real_runs: pd.DataFrame | None) -> pd.DataFrame:
    """Every results cell of the chapter: Tables 1 and 2 (the real run's values when it ran, else the
    substitute's, not comparable), then the claims."""
    if real_runs is not None:
        cmp = pd.concat([bench.compare_real(table1, real_runs, ("person", "event")),
                         bench.compare_real(table2, real_runs, "joint")], ignore_index=True)
    else:
        cmp = tables.compared(table1, table2)
    return pd.concat([cmp, claim_cells], ignore_index=True)


#: Write the chapter's results and say where (:func:`compendium.mllm_bench.stats.save_results`); returns its minutes.
save = partial(S.save_results, paper=PAPER, notebook=NOTEBOOK)


def summary_text(*, n_persons: int, n_events: int, methods: Sequence[str], joint_methods: Sequence[str], steps: int,
                 seeds: Sequence[int], minutes: float) -> dict[str, str]:
    """The summary box's sentences (``notebook.summary_box``'s ``paper_claim``, ``ran_here``, ``not_reproduced``)."""
    ran_here = (f"a scaled-down PEBench built here (substitute scale): {n_persons} procedural persons x {n_events} events, "
                f"a tiny LLaVA trained from scratch, {len(methods)} single-target and {len(joint_methods)} joint methods for "
                f"up to {steps} steps, {len(seeds)} seed(s), in {minutes:.0f} min on CPU.")
    return {"paper_claim": PAPER_CLAIM, "ran_here": ran_here, "not_reproduced": NOT_REPRODUCED}
