"""The steps of the AffectGPT chapter (``notebooks/affectgpt/mer_unibench.ipynb``), so that the notebook holds calls.

Imported by that chapter only: the scoring itself lives in :mod:`compendium.emotion.affectgpt.experiments` (the
readers and the OV-MER scoring it shares with the MER2025 and Emotion-Qwen chapters in
:mod:`compendium.emotion.unibench`); this module resolves the chapter's data, builds its tables against the
published data, draws its figures and writes the summary's sentences. Nothing here changes a computation of the
chapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from compendium import published, verdicts
from compendium.data import fetch
from compendium.emotion import unibench as ub
from compendium.emotion.affectgpt import experiments as agpt
from compendium.emotion.metrics import hit_rate, sentiment_scores
from compendium.emotion.wheel import (EmotionWheels, build_format_mapping, build_raw_mapping, read_format_table,
                                      read_synonym_runs, read_wheel)

#: The registered data folders the chapter reads, by the name the chapter uses for them.
DATA_KEYS = {"outputs": "emotion/affectgpt/output", "labels": "emotion/mertools/MERBench/dataset",
             "wheels": "emotion/affectgpt/emotion_wheel", "ovmer": "emotion/ov-mer/output",
             "ov_store": "emotion/mertools/MER2024/ov_store"}
#: The words whose mapping the chapter shows in every wheel.
PROBE = ("happy", "angry", "worried", "fear", "surprise", "neutral")
#: Subsets of ``synonym.xlsx``'s eight GPT runs for
#: :func:`compendium.emotion.affectgpt.experiments.synonym_run_ablation`.
SYNONYM_SUBSETS = {"all 8 (released)": tuple(range(1, 9)), **{f"run {k} only": (k,) for k in range(1, 9)},
                   "runs 1-2": (1, 2), "runs 1-4": (1, 2, 3, 4)}
#: The Table 2 cells of :data:`~compendium.emotion.affectgpt.experiments.TABLE2_ROW` recomputable from public labels.
RECOMPUTABLE_CELLS = 7


def data_paths(data_root: str = "", keys: Mapping[str, str] = DATA_KEYS) -> dict[str, Path]:
    """The chapter's data folders by name; a non-empty ``data_root`` (laid out like ``compendium data list``) wins
    over the environment."""
    return {name: fetch(key, path=Path(data_root) / key if data_root else None) for name, key in keys.items()}


def inputs(data_root: str = "") -> tuple[dict[str, Path], EmotionWheels, object]:
    """``(paths, wheels, paper)``: :func:`data_paths`, the emotion wheels read from them and the published data."""
    paths = data_paths(data_root)
    return paths, EmotionWheels.from_dir(paths["wheels"]), published.load("affectgpt")


def wheel_counts(wheels: EmotionWheels) -> str:
    """One line: how many wheel words, synonym keys and word forms the wheel files hold."""
    return (f"{len(wheels.words)} wheel words, {len(wheels.raw_mapping)} synonym keys, "
            f"{len(wheels.format_mapping)} word forms")


def probe_table(wheels: EmotionWheels, probe=PROBE) -> pd.DataFrame:
    """Words (rows) x wheels 1-5: the wheel word each maps to under the official rule ("—": none)."""
    probe = list(probe)
    return pd.DataFrame({f"wheel {k}": [wheels.map_label(w, k) or "—" for w in probe] for k in range(1, 6)},
                        index=probe)


def hand_check(wheels: EmotionWheels, expect_score: float | None = 0.5, expect_kept: int | None = 3) -> str:
    """The three-sample hit rate and the four-sample sentiment score the chapter checks by hand, as two lines.

    Raises ``AssertionError`` when the hit rate is not ``expect_score`` or the sentiment score does not keep
    ``expect_kept`` samples (``None``: not checked)."""
    toy = hit_rate(["happy", "angry", "neutral"], ["[joyful, excited]", "[sad]", "[calm]"], wheels)
    toy_sent = sentiment_scores([1.2, -0.4, 0.0, 2.0], ["positive", "neutral", "negative", "positive"])
    assert expect_score is None or toy.score == expect_score, f"hand-checked hit rate {toy.score}, not {expect_score}"
    assert expect_kept is None or toy_sent.kept == expect_kept, f"sentiment kept {toy_sent.kept}, not {expect_kept}"
    return (f"kept per wheel {toy.kept}, hit rate {toy.score:.3f}\n"
            f"sentiment: kept {toy_sent.kept} (zero valence dropped), weighted F1 {toy_sent.f1:.3f}, "
            f"accuracy {toy_sent.accuracy:.3f}")


def checkpoint_grid(scores: pd.DataFrame) -> pd.DataFrame:
    """Dataset (rows, in MER-UniBench's order) x checkpoint epoch: the score of every scored checkpoint."""
    grid = scores[scores.status == "scored"].pivot(index="dataset", columns="checkpoint", values="score")
    return grid.loc[[d for d in ub.UNIBENCH if d in grid.index]]


def checkpoint_spread(grid: pd.DataFrame) -> pd.Series:
    """Per dataset, the best minus the worst checkpoint's score."""
    return (grid.max(axis=1) - grid.min(axis=1)).rename("max - min over checkpoints")


def plot_checkpoints(grid: pd.DataFrame):
    """One line per dataset: the score of each released checkpoint. Returns the figure, closed (``display`` it)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, row in grid.iterrows():
        ax.plot(row.index, row.values, marker="o", label=name)
    ax.set_xlabel("checkpoint (epoch)")
    ax.set_ylabel("score (%)")
    ax.set_title("AffectGPT (A V T): score of each released checkpoint")
    ax.legend(ncol=4, fontsize=8)
    plt.close(fig)
    return fig


@dataclass
class Table2:
    """Table 2 against the paper: ``cells`` (every row, from :func:`compendium.verdicts.compare`), ``mine`` (the
    cells of :data:`~compendium.emotion.affectgpt.experiments.TABLE2_ROW`), ``reproduced`` (its measured cells) and
    ``published_row`` (the paper's values of that row by column)."""

    cells: pd.DataFrame
    mine: pd.DataFrame
    reproduced: dict
    published_row: pd.Series


def compare_table2(paper, scores: pd.DataFrame, labels_dir: str | Path, checkpoint_rule: str) -> Table2:
    """Table 2 of ``paper`` (``published.load("affectgpt")``) beside the row recomputed from ``scores``
    (:func:`~compendium.emotion.affectgpt.experiments.score_affectgpt`) with ``checkpoint_rule``."""
    table2 = paper.table("table2")
    chosen = agpt.choose_checkpoints(scores, checkpoint_rule)
    missing = ub.missing_labels(labels_dir)
    frame = table2.frame()
    published_row = frame[frame["row"] == agpt.TABLE2_ROW].set_index("column")["value"]
    reproduced = agpt.table2_measured(chosen, missing, published_row)
    cells = verdicts.compare(table2, reproduced, scale="paper",
                             default_reason=verdicts.not_run("no per-sample outputs published for this model",
                                                             kind="unpublished").reason,
                             rule="compendium.emotion.affectgpt.experiments.table2_measured")
    return Table2(cells, cells[cells.row == agpt.TABLE2_ROW], reproduced, published_row)


def measured_lines(reproduced: Mapping) -> str:
    """The measured cells of ``reproduced`` (``{(row, column): value or NotRun}``), one ``column value`` a line."""
    return "\n".join(f"{name:8s} {value:6.2f}" for (_, name), value in reproduced.items()
                     if not isinstance(value, verdicts.NotRun))


def table2_counts(mine: pd.DataFrame, checkpoint_rule: str, exact: int = RECOMPUTABLE_CELLS) -> str:
    """The verdict counts of the row; with the authors' rule (``best-on-test``) the ``exact`` recomputable cells
    must match the paper exactly (``AssertionError`` otherwise)."""
    if checkpoint_rule == "best-on-test":
        assert (mine.verdict == "exact").sum() == exact, f"the {exact} recomputable cells must match the paper exactly"
    return mine.verdict.value_counts().to_string()


def compare_ovmer(paper, ov: pd.DataFrame) -> pd.DataFrame:
    """The OV-MER table of ``paper`` beside ``ov`` (:func:`~compendium.emotion.unibench.score_ov_mer_baselines`)."""
    return verdicts.compare(paper.table("ovmer"), agpt.ovmer_measured(ov), scale="paper",
                            default_reason="no published label lists for this model",
                            rule="compendium.emotion.unibench.score_ov_mer_baselines")


def plot_ovmer(cells: pd.DataFrame):
    """Published against recomputed, every measured OV-MER cell, with the diagonal. Returns the figure, closed (``display`` it)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    measured = cells.dropna(subset=["reproduced"])
    lo = measured[["published", "reproduced"]].min().min() - 2
    hi = measured[["published", "reproduced"]].max().max() + 2
    ax.scatter(measured.published, measured.reproduced, s=12, alpha=0.6)
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
    ax.set_xlabel("published (%)")
    ax.set_ylabel("recomputed from one published run (%)")
    ax.set_title("OV-MER baselines: every M1/M2/wheel cell")
    plt.close(fig)
    return fig


def ovmer_residuals(ov: pd.DataFrame, paper) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """The OV-MER residuals split: ``(published, offsets, effects)``: the paper's metric columns for the models of
    ``ov``, :func:`~compendium.emotion.affectgpt.experiments.ovmer_offsets` and
    :func:`~compendium.emotion.affectgpt.experiments.model_effects`."""
    measured = ov.drop(columns=["n", "M-avg"])
    published_table = paper.table("ovmer").wide().loc[ov.index]
    return (published_table, agpt.ovmer_offsets(measured, published_table),
            agpt.model_effects(measured, published_table))


def synonym_ablation(paths: Mapping[str, Path], published_table: pd.DataFrame, setting: str,
                     subsets: Mapping[str, tuple[int, ...]] = SYNONYM_SUBSETS) -> pd.DataFrame:
    """:func:`~compendium.emotion.affectgpt.experiments.synonym_run_ablation` on the chapter's folders
    (:func:`data_paths`)."""
    return agpt.synonym_run_ablation(paths["ovmer"], paths["ov_store"], paths["wheels"], published_table, subsets,
                                     setting=setting)


#: Column groups of the wheel-offset experiment (:func:`wheel_version_offsets`): the columns without a wheel, the
#: wheels whose cells sit far above the paper, and wheel 4, which does not.
OFFSET_GROUPS = {"M1, M2": agpt.MAP_COLUMNS,
                 "W1-W3, W5": tuple(c for c in agpt.WHEEL_COLUMNS if not c.startswith("W4")),
                 "W4": tuple(c for c in agpt.WHEEL_COLUMNS if c.startswith("W4"))}


def wheels_from_files(wheel_files: Sequence[str | Path], synonym_xlsx: str | Path,
                      format_csv: str | Path) -> EmotionWheels:
    """The maps built from explicit files (one version of each: ``wheel1..5.xlsx`` in order, ``synonym.xlsx``,
    ``format.csv``), read as :meth:`EmotionWheels.from_dir` reads its folder; e.g. copies of older commits."""
    return EmotionWheels(trees=[read_wheel(f) for f in wheel_files],
                         raw_mapping=build_raw_mapping(read_synonym_runs(synonym_xlsx)),
                         format_mapping=build_format_mapping(read_format_table(format_csv)))


def group_offsets(measured: pd.DataFrame, paper_table, groups: Mapping[str, Sequence[str]] = OFFSET_GROUPS) -> dict:
    """Per column group: the mean residual (measured - published, over the models of ``measured`` and the group's
    columns) and the median of |residual| / σ, σ being the paper's ± std (half the cell's 2σ tolerance of
    ``paper_table``, the ``ovmer`` table; a std printed as 0.00 counts as 0.005). Keys ``"<group>"`` and
    ``"<group> |r|/σ"``, and ``"wheel excess"``: the second group's mean minus the first's."""
    frame = paper_table.frame()
    value = frame.pivot(index="row", columns="column", values="value")
    sigma = (frame.pivot(index="row", columns="column", values="tolerance") / 2).clip(lower=0.005)
    out = {}
    for name, cols in groups.items():
        cols = list(cols)
        resid = measured.loc[:, cols] - value.loc[measured.index, cols]
        out[name] = float(resid.to_numpy().mean())
        out[f"{name} |r|/σ"] = float(np.median((resid.abs() / sigma.loc[measured.index, cols]).to_numpy()))
    names = list(groups)
    out["wheel excess"] = out[names[1]] - out[names[0]]
    return out


def wheel_version_offsets(paths: Mapping[str, Path], paper_table, variants: Mapping[str, EmotionWheels],
                          setting: str = "nosubtitle-addsub",
                          groups: Mapping[str, Sequence[str]] = OFFSET_GROUPS) -> pd.DataFrame:
    """The OV-MER table rescored under each version of the wheel files: one row per variant (``label -> maps``, e.g.
    :func:`wheels_from_files` on copies of each commit's files), the columns of :func:`group_offsets`.

    A file version that the paper used would bring the ``W1-W3, W5`` offset down to the ``M1, M2`` one (``wheel
    excess`` near 0) while the ``M1, M2`` group, which reads no wheel, stays. ``paths``: :func:`data_paths`."""
    rows = {}
    for label, wheels in variants.items():
        ov = ub.score_ov_mer_baselines(paths["ovmer"], paths["ov_store"], paths["wheels"], setting=setting,
                                       wheels=wheels)
        rows[label] = group_offsets(ov, paper_table, groups)
    return pd.DataFrame(rows).T


def plot_column_effects(offsets: pd.DataFrame):
    """Bars: each column's residual within the model (± 2 s.e. over the models). Returns the figure, closed (``display`` it)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.bar(offsets.index, offsets["within_model"], yerr=2 * offsets["se"],
           color=["#999"] * len(agpt.MAP_COLUMNS) + ["#4a6fa5"] * (len(offsets) - len(agpt.MAP_COLUMNS)))
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("residual minus the model's\nM1/M2 residual (points)")
    ax.set_title("column effect within each model (± 2 s.e. over the 10 models)")
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    plt.close(fig)
    return fig


def summary_texts(published_row: Mapping[str, float], checkpoint_rule: str) -> dict[str, str]:
    """The summary box's sentences (``paper_claim``, ``ran_here``, ``not_reproduced``) for ``notebook.summary_box``."""
    return dict(
        paper_claim=f"AffectGPT with audio, video and text leads MER-UniBench (Table 2: mean "
                    f"{published_row['Mean']:.2f} over nine datasets), ahead of every zero-shot MLLM.",
        ran_here=f"the {agpt.TABLE2_ROW} row of Table 2 recomputed from the authors' per-sample outputs with the "
                 f"'{checkpoint_rule}' checkpoint rule, and the OV-MER zero-shot table from its published label lists: "
                 "metrics on published outputs (paper scale).",
        not_reproduced="the MER2024 and OV-MERD+ columns (labels on Baidu only), the Mean, the other rows of Table 2 "
                       "(no per-sample outputs), the OV-MER GPT column (GPT-3.5 groupings not released).")




def ovmer_reading(cells: pd.DataFrame, offsets: pd.DataFrame, effects: pd.Series, ablation: pd.DataFrame) -> str:
    """Markdown: the OV-MER comparison against the paper's ± std bands, and what the residual decomposition, the
    synonym-map ablation and the published versions of the wheel files show (it replaced an earlier reading in the
    scoring module, written before the ± std was transcribed and before the 2026 word-form file was found)."""
    measured = cells[cells["reproduced"].notna() & (cells["column"] != "M-avg")]
    counts = measured["verdict"].value_counts()
    above = float((measured["difference"] > 0).mean())
    sigma_units = (measured["difference"].abs() / (measured["tolerance"] / 2)).median()
    wheel = offsets.loc[[c for c in agpt.WHEEL_COLUMNS if c in offsets.index]]
    w4 = wheel.loc[[c for c in wheel.index if c.startswith("W4")]]
    others = wheel.drop(index=w4.index)
    m2 = ablation["M2"]
    full = ablation.index[0]
    n = {v: int(counts.get(v, 0)) for v in ("exact", "within tolerance", "differs")}
    return (
        f"Of the {len(measured)} measured cells (M-avg aside), {n['exact']} {'is' if n['exact'] == 1 else 'are'} "
        f"exact, {n['within tolerance']} within tolerance and {n['differs']} differ; {100 * above:.0f} % lie above "
        f"the paper (mean {measured['difference'].mean():+.2f} points). Each band is twice the ± std the paper prints "
        f"beside the cell (or the printed precision where larger); the median residual is {sigma_units:.1f} of the "
        "paper's σ (half a band), so the released run is not one draw from the runs behind the printed mean ± std, "
        "or that ± std measures something narrower.\n\n"
        f"**What explains the offset.** Two parts. (1) A *model effect*: each model's released extraction run sits "
        f"as a whole above or below the published mean; on the columns that use no wheel (M1, M2) it ranges from "
        f"{effects.min():+.2f} to {effects.max():+.2f} points ({(effects > 0).sum()} of {len(effects)} models above, "
        f"mean {effects.mean():+.2f}), and it moves all twelve cells of a model together. (2) A *column effect* within "
        f"each model, measured against that model's M1/M2 residual: wheels 1–3 and 5 sit "
        f"{others['within_model'].min():+.2f} to {others['within_model'].max():+.2f} points higher (standard errors "
        f"over the models {others['se'].min():.2f}–{others['se'].max():.2f}), wheel 4 "
        f"{w4['within_model'].min():+.2f} to {w4['within_model'].max():+.2f}. An extraction run cannot produce a "
        "column effect (it changes the label lists, which every column reads), so the column part comes from the "
        "mapping side.\n\n"
        f"**Not the synonym map's version.** Built from any single one of the eight GPT synonym runs, or from the "
        f"first few, the map puts M2 between {m2.drop(index=full).min():+.2f} and {m2.drop(index=full).max():+.2f} "
        f"points from the paper (never closer than {m2.drop(index=full).abs().min():.2f}), against {m2[full]:+.2f} "
        "with the released union of all eight; M1, which uses no synonym, does not move.\n\n"
        "**The word-form file is the candidate left.** Every published copy of the five wheels and of `synonym.xlsx` "
        "is one version, and the official precomputed wheel maps (MERTools, MER2026 Track 2) equal the ones built "
        "here. The word-form file `format.csv` exists in two: the one scored here and a 2026 revision that drops the "
        "root word from 17 '-less' / '-ed' names. M1 and M2 map a label to the first name listing it, so such a link "
        "leaves them unchanged, while the wheel metric takes every name that lists the label, so one link can move "
        "a label to another cluster: the same pattern as the column effect above. Rescored with the 2026 file "
        "(`wheel_version_offsets`, run by hand: that file is not in the data registry) the wheel cells move further "
        "from the paper, not closer. The files the paper used in 2024 are not published, so an earlier word-form or "
        "wheel file remains the likely explanation, untested."
    )
