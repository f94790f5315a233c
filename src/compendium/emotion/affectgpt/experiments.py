"""Score AffectGPT's published per-sample outputs (MER-UniBench, Table 2) and the OV-MER zero-shot baselines.

Inputs (emotion.md sections 1.4 and 2.4), read by :mod:`compendium.emotion.unibench`:

- AffectGPT outputs: ``AffectGPT/output/`` of ``zeroQiaoba/AffectGPT`` @ ``d961cab04ab2903fefb22a641331e1242949b15d``
  (book key ``emotion/affectgpt/output``): ``results-<set>/<run>/checkpoint_0000NN_loss_<x>-openset.npz`` (OV label
  lists, arrays ``filenames`` / ``fileitems``) and ``...-openset-sentiment.npz`` (one sentiment word per sample,
  sentiment sets only), for epochs 30, 35, ..., 60.
- Labels: ``MERBench/dataset/*-process/*.npz`` of ``zeroQiaoba/MERTools`` @ ``89120b780ab18b28349f0e37dcc12b8cc253cb02``
  (book key ``emotion/mertools/MERBench/dataset``).
- OV-MER baselines: ``OV-MER/output/results-ovmerd/<model>/output-reason-7b-nosubtitle-addsub-eng-openset.npz`` of the
  AffectGPT commit, scored against ``MER2024/ov_store/check-openset.csv`` (332 OV-MERD labels) of MERTools
  (:func:`compendium.emotion.unibench.score_ov_mer_baselines`, shared with the MER2025 chapter).

The paper (arXiv 2501.16566, Table 2) reports, per dataset, the best of the 7 checkpoints **chosen on the test set**
(``evaluation-scoreonly.py``); :func:`best_checkpoints` does the same and the chapter must say so. MER2024 and
OV-MERD+ have predictions but their labels are only on Baidu Netdisk; they come back as "missing labels".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compendium import verdicts
from compendium.emotion.metrics import ew_scores, hit_rate, sentiment_scores
from compendium.emotion.unibench import (UNIBENCH, UniBenchSet, _aligned, _read_check_openset, find_checkpoints,
                                         load_merbench_labels, load_openset_npz, score_ov_mer_baselines)
from compendium.emotion.wheel import EmotionWheels

__all__ = [
    "AFFECTGPT_RUN",
    "CHECKPOINT_RULES",
    "MAP_COLUMNS",
    "OV_MER_GPT_REASON",
    "TABLE2_ROW",
    "WHEEL_COLUMNS",
    "best_checkpoints",
    "choose_checkpoints",
    "compare_rules",
    "model_effects",
    "ovmer_measured",
    "ovmer_offsets",
    "score_affectgpt",
    "score_affectgpt_on_ovmerd",
    "synonym_run_ablation",
    "table2_measured",
]

#: The released AffectGPT run (training on MER-Caption+ with face input).
AFFECTGPT_RUN = "emercoarse_highlevelfilter4_outputhybird_bestsetup_bestfusion_lz_20250110100"

_METRIC_NAME = {"basic": "hit rate", "sentiment": "binary weighted F1", "finegrained": "EW F (L1)"}


# --------------------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------------------
def _score_one(spec: UniBenchSet, labels: Mapping[str, Any], ckpt: pd.Series, wheels: EmotionWheels) -> dict:
    if spec.kind == "sentiment":
        if ckpt["sentiment"] is None:
            raise FileNotFoundError(f"no sentiment file next to {ckpt['openset']}")
        gt, pred = _aligned(labels, load_openset_npz(ckpt["sentiment"]), ckpt["sentiment"])
        s = sentiment_scores(gt, pred)
        return {"score": 100 * s.f1, "accuracy": 100 * s.accuracy, "kept": s.kept, "kept_per_wheel": None}
    gt, pred = _aligned(labels, load_openset_npz(ckpt["openset"]), ckpt["openset"])
    if spec.kind == "basic":
        h = hit_rate(gt, pred, wheels)
        return {"score": 100 * h.score, "accuracy": np.nan, "kept": h.kept[0], "kept_per_wheel": h.kept}
    e = ew_scores(gt, pred, wheels, "level1")
    kept = tuple(int(k) for k in e.per_wheel["kept"])
    return {"score": 100 * e.f, "accuracy": np.nan, "kept": kept[0], "kept_per_wheel": kept}


def score_affectgpt(
    output_dir: str | Path,
    labels_dir: str | Path,
    wheel_dir: str | Path,
    datasets: list[str] | None = None,
    run: str | None = None,
) -> pd.DataFrame:
    """Score every checkpoint of every MER-UniBench dataset from AffectGPT's published outputs.

    ``output_dir``: AffectGPT ``output/`` (holds ``results-<set>/``); ``labels_dir``: MERBench ``dataset/``;
    ``wheel_dir``: ``emotion_wheel/``. Returns a tidy DataFrame, one row per (dataset, checkpoint), columns:
    ``dataset, kind, metric, checkpoint, loss, score`` (percent, as in Table 2), ``accuracy`` (percent, sentiment
    sets), ``n_samples`` (labelled test samples), ``kept`` (samples scored; wheel 1 for the wheel metrics),
    ``kept_per_wheel``, ``status`` (``"scored"`` or ``"missing labels"``) and ``note`` (for missing labels: the
    expected file and where it is hosted). Missing labels never raise.
    """
    wheels = EmotionWheels.from_dir(wheel_dir)
    rows = []
    for name in datasets or list(UNIBENCH):
        spec = UNIBENCH[name]
        ckpts = find_checkpoints(output_dir, name, run)
        base = {"dataset": name, "kind": spec.kind, "metric": _METRIC_NAME[spec.kind]}
        try:
            labels = load_merbench_labels(labels_dir, name)
        except FileNotFoundError as err:
            for _, ck in ckpts.iterrows():
                rows.append({**base, "checkpoint": ck["checkpoint"], "loss": ck["loss"], "score": np.nan,
                             "accuracy": np.nan, "n_samples": len(load_openset_npz(ck["openset"])), "kept": 0,
                             "kept_per_wheel": None, "status": "missing labels", "note": str(err)})
            continue
        for _, ck in ckpts.iterrows():
            result = _score_one(spec, labels, ck, wheels)
            rows.append({**base, "checkpoint": ck["checkpoint"], "loss": ck["loss"], **result,
                         "n_samples": len(labels), "status": "scored", "note": ""})
    columns = ["dataset", "kind", "metric", "checkpoint", "loss", "score", "accuracy", "n_samples", "kept",
               "kept_per_wheel", "status", "note"]
    return pd.DataFrame(rows, columns=columns)


def best_checkpoints(df: pd.DataFrame) -> pd.DataFrame:
    """Best checkpoint per dataset, **selected on the test set** as the authors' ``evaluation-scoreonly.py`` does.

    Takes :func:`score_affectgpt`'s output; returns one row per dataset (in input order) with ``checkpoint`` and
    ``score`` of the maximum (first epoch on ties), plus ``status`` / ``note``; datasets with missing labels keep a
    row with NaN score and their note.
    """
    out = []
    for name, group in df.groupby("dataset", sort=False):
        scored = group[group["status"] == "scored"]
        if scored.empty:
            first = group.iloc[0]
            out.append({"dataset": name, "metric": first["metric"], "checkpoint": np.nan, "score": np.nan,
                        "kept": 0, "status": first["status"], "note": first["note"]})
            continue
        best = scored.loc[scored["score"].idxmax()]
        out.append({"dataset": name, "metric": best["metric"], "checkpoint": best["checkpoint"],
                    "score": best["score"], "kept": best["kept"], "status": "scored", "note": ""})
    table = pd.DataFrame(out)
    table["checkpoint"] = table["checkpoint"].astype("Int64")
    return table


def score_affectgpt_on_ovmerd(
    output_dir: str | Path, ov_store_dir: str | Path, wheel_dir: str | Path, run: str | None = None
) -> pd.DataFrame:
    """Indicative only: EW F (L1 and L2) of AffectGPT's OV-MERD+ predictions on the 332 OV-MERD samples they share.

    The ground truth here is the older OV-MERD label set (``MER2024/ov_store/check-openset.csv``), not OV-MERD+'s
    withheld labels, so this does not reproduce the OV-MERD+ column of Table 2 (our computation, emotion.md 1.4).
    Columns: ``checkpoint, n_overlap, ew_f_l1, ew_f_l2`` (percent).
    """
    wheels = EmotionWheels.from_dir(wheel_dir)
    labels = _read_check_openset(ov_store_dir)
    rows = []
    for _, ck in find_checkpoints(output_dir, "OV-MERD+", run).iterrows():
        preds = load_openset_npz(ck["openset"])
        names = [n for n in labels if n in preds]
        gt, pred = [labels[n] for n in names], [preds[n] for n in names]
        rows.append({"checkpoint": ck["checkpoint"], "n_overlap": len(names),
                     "ew_f_l1": 100 * ew_scores(gt, pred, wheels, "level1").f,
                     "ew_f_l2": 100 * ew_scores(gt, pred, wheels, "level2").f})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------------
# Checkpoint rules and the measured cells of the chapter's tables
# --------------------------------------------------------------------------------------------------------------
#: How one checkpoint per dataset is chosen among the released epochs 30..60: ``best-on-test`` (the authors' rule in
#: ``evaluation-scoreonly.py``: the best epoch per dataset, chosen on the test labels), ``last`` (epoch 60 for every
#: dataset) and ``best-mean`` (one epoch for every dataset: the best mean over the labelled sets).
CHECKPOINT_RULES = ("best-on-test", "last", "best-mean")

#: The row of Table 2 whose per-sample outputs are published.
TABLE2_ROW = "AffectGPT (AVT)"


def choose_checkpoints(scores: pd.DataFrame, rule: str) -> pd.DataFrame:
    """One checkpoint per dataset under ``rule`` (one of :data:`CHECKPOINT_RULES`), from :func:`score_affectgpt`.

    Returns columns ``dataset, metric, checkpoint, score, kept``, one row per scored dataset (``best-on-test`` also
    keeps a NaN row for each dataset with missing labels, as :func:`best_checkpoints` does).
    """
    if rule not in CHECKPOINT_RULES:
        raise ValueError(f"checkpoint rule must be one of {CHECKPOINT_RULES}, got {rule!r}")
    if rule == "best-on-test":
        return best_checkpoints(scores)[["dataset", "metric", "checkpoint", "score", "kept"]]
    scored = scores[scores["status"] == "scored"]
    if rule == "last":
        epoch = scored["checkpoint"].max()
    else:
        # first epoch on ties, as idxmax does
        epoch = scored.groupby("checkpoint")["score"].mean().idxmax()
    chosen = scored[scored["checkpoint"] == epoch]
    return chosen[["dataset", "metric", "checkpoint", "score", "kept"]].reset_index(drop=True)


def compare_rules(scores: pd.DataFrame) -> pd.DataFrame:
    """Score per dataset (rows) under every checkpoint rule (columns), percent."""
    return pd.concat({rule: choose_checkpoints(scores, rule).set_index("dataset")["score"]
                      for rule in CHECKPOINT_RULES}, axis=1)


def table2_measured(chosen: pd.DataFrame, missing: pd.DataFrame, published_row: Mapping[str, float]) -> dict:
    """The measured cells of :data:`TABLE2_ROW`: ``{(row, dataset): score or NotRun}``.

    ``chosen``: :func:`choose_checkpoints`; ``missing``: :func:`missing_labels` (a dataset without public labels
    reads *not run here*, naming where its labels are hosted); ``published_row``: the paper's values of the row by
    column, used only to state in the reason what the Mean would be with the paper's values for the missing columns
    (the Mean is not run: it needs every column).
    """
    by_name = chosen.set_index("dataset")["score"]
    hosted = missing.set_index("dataset")["hosted"] if len(missing) else pd.Series(dtype=str)
    cells: dict = {}
    filled = []
    for name in UNIBENCH:
        value = by_name.get(name, np.nan)
        if pd.notna(value):
            cells[(TABLE2_ROW, name)] = float(value)
            filled.append(float(value))
        else:
            where = hosted.get(name, "unknown")
            cells[(TABLE2_ROW, name)] = verdicts.not_run(f"test labels not public here; hosted on {where}", kind="data")
            filled.append(float(published_row[name]))
    unmeasured = [n for n in UNIBENCH if isinstance(cells[(TABLE2_ROW, n)], verdicts.NotRun)]
    cells[(TABLE2_ROW, "Mean")] = verdicts.not_run(
        f"needs every column ({', '.join(unmeasured)} not measured); with the paper's values for those the mean of "
        f"the measured row is {np.mean(filled):.2f}", kind="data") if unmeasured else float(np.mean(filled))
    return cells


#: The OV-MER cell that needs per-sample GPT-3.5 groupings, which were not released.
OV_MER_GPT_REASON = "the GPT-3.5 grouping metric needs per-sample GPT outputs that are not published"


def ovmer_measured(ov: pd.DataFrame) -> dict:
    """The measured OV-MER cells ``{(model, column): value or NotRun}`` from :func:`score_ov_mer_baselines`."""
    cells = {(m, c): float(ov.loc[m, c]) for m in ov.index for c in ov.columns if c != "n"}
    for m in ov.index:
        cells[(m, "GPT")] = verdicts.not_run(OV_MER_GPT_REASON, kind="unpublished")
    return cells


# --------------------------------------------------------------------------------------------------------------
# The OV-MER residuals: which part belongs to the model's extraction run, which to the metric's column
# --------------------------------------------------------------------------------------------------------------
#: Columns that use the emotion wheels (the metric M3) and those that do not (M1 word forms, M2 + synonyms).
WHEEL_COLUMNS = tuple(f"W{k} L{lv}" for k in range(1, 6) for lv in (1, 2))
MAP_COLUMNS = ("M1", "M2")


def ovmer_offsets(measured: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Split the residuals (measured - published) of the OV-MER table into a model part and a column part.

    ``measured`` / ``published``: models x the 12 metric columns (M1, M2, W1 L1 .. W5 L2), percent. Each model's
    published cells average several sampled label extractions while one extraction is released, so a model whose
    released run happens to be better moves all its cells together: that is the *model effect* (mean of the model's
    12 residuals). What remains within a model (residual - model effect) is the *column effect*: it cannot come from
    which extraction was released, only from how a column maps labels (word forms, synonyms, wheel files).

    Returns one row per column: ``mean`` residual, ``within_model`` (mean over models of the residual minus the
    model's mean over M1 and M2, the two columns that use no wheel), its standard error ``se`` over models and
    ``n_positive`` (models with a positive residual); plus the rows ``model effect sd`` (spread of the model effects)
    in the ``mean`` column.
    """
    cols = list(MAP_COLUMNS) + list(WHEEL_COLUMNS)
    resid = measured.loc[:, cols] - published.loc[measured.index, cols]
    no_wheel = resid[list(MAP_COLUMNS)].mean(axis=1)
    within = resid.sub(no_wheel, axis=0)
    n = len(resid)
    table = pd.DataFrame({
        "mean": resid.mean(),
        "within_model": within.mean(),
        "se": within.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan,
        "n_positive": (resid > 0).sum(),
    })
    table.index.name = "column"
    return table


def model_effects(measured: pd.DataFrame, published: pd.DataFrame) -> pd.Series:
    """Each model's mean residual over the columns that use no wheel (M1, M2): how much its released extraction run
    sits above (or below) the published average of several runs, before any wheel file is involved."""
    cols = list(MAP_COLUMNS)
    return (measured.loc[:, cols] - published.loc[measured.index, cols]).mean(axis=1).rename("model effect")


def synonym_run_ablation(
    output_dir: str | Path,
    ov_store_dir: str | Path,
    wheel_dir: str | Path,
    published: pd.DataFrame,
    subsets: Mapping[str, tuple[int, ...]],
    setting: str = "nosubtitle-addsub",
) -> pd.DataFrame:
    """Mean residual per OV-MER column when the synonym map is built from a subset of ``synonym.xlsx``'s 8 GPT runs.

    The released map is the union of the 8 runs; if the paper had scored with an older, smaller map, the columns
    that use synonyms (M2 and the wheels) would move while M1 (word forms only) stays. ``subsets``: label -> run
    numbers (1-based), e.g. ``{"all 8": (1, ..., 8), "run 1": (1,)}``. Returns one row per subset, one column per
    metric (mean over models of measured - published, percent).
    """
    rows = {}
    for label, runs in subsets.items():
        wheels = EmotionWheels.from_dir(wheel_dir, synonym_runs=tuple(runs))
        ov = score_ov_mer_baselines(output_dir, ov_store_dir, wheel_dir, setting=setting, wheels=wheels)
        cols = list(MAP_COLUMNS) + list(WHEEL_COLUMNS)
        rows[label] = (ov[cols] - published.loc[ov.index, cols]).mean()
    return pd.DataFrame(rows).T


# --------------------------------------------------------------------------------------------------------------
# Readings: the chapter's text, generated from the measured tables
# --------------------------------------------------------------------------------------------------------------
def table2_reading(cells: pd.DataFrame, rules: pd.DataFrame, rule: str) -> str:
    """Markdown: what the Table 2 comparison shows (``cells``: the compare() rows of :data:`TABLE2_ROW`;
    ``rules``: :func:`compare_rules`; ``rule``: the checkpoint rule used for the comparison)."""
    counts = cells["verdict"].value_counts()
    measured = cells[cells["reproduced"].notna()]
    text = (f"With the rule **{rule}**, {len(measured)} of the row's {len(cells)} cells are measured: "
            f"{int(counts.get('exact', 0))} exact at the paper's two decimals, "
            f"{int(counts.get('differs', 0))} differ; {int(counts.get('not run here', 0))} are not run here "
            "(the reasons name where the missing labels are hosted).")
    if rule == "best-on-test" and {"last", "best-mean"} <= set(rules.columns):
        drop_last = (rules["best-on-test"] - rules["last"]).dropna()
        drop_mean = (rules["best-on-test"] - rules["best-mean"]).dropna()
        text += (f" Choosing the checkpoint on the test labels is worth {drop_last.mean():.2f} points per dataset "
                 f"on average against the last epoch (up to {drop_last.max():.2f}) and {drop_mean.mean():.2f} "
                 "against one epoch chosen for all datasets: the row a new model has to beat without looking at "
                 "test labels is lower by that much.")
    return text
