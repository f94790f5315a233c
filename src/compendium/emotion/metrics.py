"""Metrics of AffectGPT's MER-UniBench, OV-MER, MER2024-OV and MER2025, implemented from their definitions.

Sources (definitions transcribed in ``../shared/research/emotion.md``):

- Hit rate, binary sentiment F1, EW precision/recall/F: AffectGPT (arXiv 2501.16566, Table 2 metrics),
  ``AffectGPT/evaluation(-scoreonly).py`` and ``my_affectgpt/evaluation/{wheel,ew_metric}.py`` in
  ``zeroQiaoba/AffectGPT`` @ ``d961cab04ab2903fefb22a641331e1242949b15d`` (emotion.md section 1.3).
- OV-MER M1 / M2 / M3: OV-MER (arXiv 2410.01495), ``calculate_openset_overlap_rate`` / ``wheel_metric_calculation``
  in the same ``wheel.py`` (emotion.md section 2.4).
- MER2024 OV metric: ``MER2024/main-ov.py::main_metric`` in ``zeroQiaoba/MERTools`` @
  ``89120b780ab18b28349f0e37dcc12b8cc253cb02`` (emotion.md section 2.5).
- MER2025 track 1 WAF: ``MER2025/MER2025_Track1/evaluation.py``; track 4 RMSE / PCC / CCC:
  ``cai-cong/MER25_personality/train.py`` (emotion.md section 2.2).

All scores are fractions in [0, 1]; multiply by 100 for the papers' tables. Functions take plain sequences (label
strings or lists) so tests can feed hand-made cases.
"""

from __future__ import annotations

import ast
import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from compendium.emotion.wheel import EmotionWheels

__all__ = [
    "EWScore",
    "HitRate",
    "SentimentScore",
    "ccc",
    "ew_scores",
    "f_of_averages",
    "hit_rate",
    "listlist_to_list",
    "mer2024_ov_metric",
    "mer2024_string_to_list",
    "mer2025_track1_scores",
    "mer2025_track4_scores",
    "ov_mer_scores",
    "OV_MER_METRICS",
    "read_openset_synonym_zip",
    "pcc",
    "rmse",
    "sentiment_scores",
    "sentiment_to_valence",
    "set_precision_recall",
]


# --------------------------------------------------------------------------------------------------------------
# Set overlap
# --------------------------------------------------------------------------------------------------------------
def set_precision_recall(
    gt_sets: Sequence[set[str]], pred_sets: Sequence[set[str]], skip_empty_gt: bool = True
) -> tuple[float, float, int]:
    """Sample-averaged set precision and recall, and the number of samples kept.

    Per sample: if ``gt`` is empty the sample is skipped (``skip_empty_gt``; otherwise it is an error); if ``pred``
    is empty, P_i = R_i = 0; else P_i = |g & p| / |p| and R_i = |g & p| / |g|. Returns (mean P_i, mean R_i, n); with
    no kept sample, (nan, nan, 0).
    """
    if len(gt_sets) != len(pred_sets):
        raise ValueError(f"{len(gt_sets)} ground-truth sets vs {len(pred_sets)} predictions")
    precisions, recalls = [], []
    for gt, pred in zip(gt_sets, pred_sets):
        if not gt:
            if skip_empty_gt:
                continue
            raise ValueError("empty ground-truth set (recall undefined)")
        if not pred:
            precisions.append(0.0)
            recalls.append(0.0)
            continue
        inter = len(gt & pred)
        precisions.append(inter / len(pred))
        recalls.append(inter / len(gt))
    if not precisions:
        return float("nan"), float("nan"), 0
    return float(np.mean(precisions)), float(np.mean(recalls)), len(precisions)


def f_of_averages(precision: float, recall: float) -> float:
    """F = 2PR / (P + R) of already-averaged P and R (not the mean of per-sample F); 0 when P + R = 0."""
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


# --------------------------------------------------------------------------------------------------------------
# AffectGPT Basic sets: hit rate
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HitRate:
    """Hit rate: ``score`` = mean over wheels of ``per_wheel``; ``kept`` = samples with a non-empty mapped label."""

    score: float
    per_wheel: tuple[float, ...]
    kept: tuple[int, ...]


def hit_rate(
    gt_labels: Sequence[str], pred_lists: Sequence[Any], wheels: EmotionWheels, level: str = "level1"
) -> HitRate:
    """AffectGPT's "hit rate" for one-hot datasets (MER2023, MER2024, MELD, IEMOCAP); **not** accuracy.

    For each wheel k: gt = mapped({label}); skip the sample if gt is empty (all neutral samples drop, since
    "neutral" maps to nothing); pred = mapped(OV list); hit = |pred & gt| (0 or 1). HR_k = mean hit over kept samples;
    score = mean of HR_k over the wheels. ``pred_lists`` items are list strings or lists (see ``string_to_list``).
    """
    if len(gt_labels) != len(pred_lists):
        raise ValueError(f"{len(gt_labels)} labels vs {len(pred_lists)} predictions")
    per_wheel, kept = [], []
    for k in range(1, wheels.num_wheels + 1):
        hits = []
        for label, pred in zip(gt_labels, pred_lists):
            gt = wheels.map_labels([label], "wheel", k, level)
            if not gt:
                continue
            hits.append(len(wheels.map_labels(pred, "wheel", k, level) & gt))
        per_wheel.append(float(np.mean(hits)) if hits else float("nan"))
        kept.append(len(hits))
    return HitRate(score=float(np.mean(per_wheel)), per_wheel=tuple(per_wheel), kept=tuple(kept))


# --------------------------------------------------------------------------------------------------------------
# AffectGPT sentiment sets: binary weighted F1
# --------------------------------------------------------------------------------------------------------------
_VALENCE = {"positive": 1, "negative": -1, "neutral": 0}


def sentiment_to_valence(word: Any) -> int:
    """``positive`` -> 1, ``negative`` -> -1, anything else (neutral, mixed, unparseable) -> 0."""
    return _VALENCE.get(str(word).lower().strip(), 0)


@dataclass(frozen=True)
class SentimentScore:
    """Binary weighted F1 and accuracy over samples with non-zero ground-truth valence; ``kept`` = their number."""

    f1: float
    accuracy: float
    kept: int


def sentiment_scores(gt_valence: Sequence[float], pred_words: Sequence[Any]) -> SentimentScore:
    """AffectGPT's sentiment metric (MOSI, MOSEI, SIMS, SIMSv2).

    Drop samples whose ground-truth valence is 0; predicted word -> +1 / -1 / 0 (:func:`sentiment_to_valence`);
    score = ``f1_score(gt > 0, pred > 0, average='weighted')``, so a predicted neutral counts as "not positive".
    Accuracy on the same binary labels is also returned.
    """
    gt = np.asarray(gt_valence, dtype=float)
    pred = np.array([sentiment_to_valence(w) for w in pred_words], dtype=float)
    if gt.shape != pred.shape:
        raise ValueError(f"{gt.shape[0]} labels vs {pred.shape[0]} predictions")
    keep = gt != 0
    y_true, y_pred = gt[keep] > 0, pred[keep] > 0
    return SentimentScore(
        f1=float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        accuracy=float(accuracy_score(y_true, y_pred)),
        kept=int(keep.sum()),
    )


# --------------------------------------------------------------------------------------------------------------
# EW precision / recall / F (OV-MERD+, MER2025 MER-FG)
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EWScore:
    """EW metric at one level: means over wheels of F, P and R, and a per-wheel table (wheel, f, precision, recall,
    kept)."""

    f: float
    precision: float
    recall: float
    per_wheel: pd.DataFrame


def _overlap(
    gt_lists: Sequence[Any], pred_lists: Sequence[Any], wheels: EmotionWheels, mode: str, wheel: int, level: str
) -> tuple[float, float, int]:
    gt_sets = [wheels.map_labels(g, mode, wheel, level) for g in gt_lists]
    pred_sets = [wheels.map_labels(p, mode, wheel, level) for p in pred_lists]
    return set_precision_recall(gt_sets, pred_sets, skip_empty_gt=True)


def ew_scores(
    gt_lists: Sequence[Any], pred_lists: Sequence[Any], wheels: EmotionWheels, level: str = "level1"
) -> EWScore:
    """EW-based precision, recall and F at ``level`` (``wheel_metric_calculation`` in emotion.md section 1.3).

    Per wheel: map gt and pred lists with the case-3 rule, skip samples whose mapped gt is empty, P_i / R_i as in
    :func:`set_precision_recall` (empty mapped pred -> 0), then F_k = 2 P R / (P + R) of the averaged P and R.
    Returned ``f``, ``precision``, ``recall`` are means over the wheels. AffectGPT's OV-MERD+ column uses
    ``level1``; MER2025 track 2 reports L1 F, L2 F and their mean.
    """
    if len(gt_lists) != len(pred_lists):
        raise ValueError(f"{len(gt_lists)} labels vs {len(pred_lists)} predictions")
    rows = []
    for k in range(1, wheels.num_wheels + 1):
        p, r, n = _overlap(gt_lists, pred_lists, wheels, "wheel", k, level)
        rows.append({"wheel": k, "f": f_of_averages(p, r), "precision": p, "recall": r, "kept": n})
    table = pd.DataFrame(rows)
    return EWScore(
        f=float(table["f"].mean()),
        precision=float(table["precision"].mean()),
        recall=float(table["recall"].mean()),
        per_wheel=table,
    )


#: Column names of the OV-MER baseline table, in the paper's order (emotion.md section 2.4).
OV_MER_METRICS = ("M1", "M2") + tuple(f"W{k} L{lv}" for k in range(1, 6) for lv in (1, 2))


def ov_mer_scores(gt_lists: Sequence[Any], pred_lists: Sequence[Any], wheels: EmotionWheels) -> dict[str, float]:
    """The 12 OV-MER metrics and their mean ``M-avg`` (all F-scores of averaged P and R, fractions).

    Meaning of M1 and M2 (emotion.md section 2.4: "M1 = format only; M2 = format + synonym"), made concrete as the
    ``case1`` / ``case2`` mappings of the official ``wheel.py`` (``zeroQiaoba/MERTools`` @ ``89120b7``,
    ``MER2025/MER2025_Track23/my_affectgpt/evaluation/wheel.py``):

    - M1: each label -> the alphabetically first ``format.csv`` name whose forms contain it (word-form grouping);
    - M2: that name -> the alphabetically first wheel word among its synonyms (synonym grouping);
    - M3 (W k L1/L2): the EW mapping of :func:`ew_scores` for wheel k at level 1 or 2.

    Labels that map to nothing are dropped, samples with an empty mapped gt are skipped, and each value is
    F = 2PR/(P+R) of the sample-averaged P and R. ``M-avg`` = mean of the 12 values. The choice that M1/M2 are
    F-scores (not P or R alone) follows the code's ``fscore`` for every metric; with it, the recomputed M-avg of
    the published Chat-UniVi labels is 47.22 (emotion.md section 2.4).
    """
    scores: dict[str, float] = {}
    for name, mode in (("M1", "format"), ("M2", "synonym")):
        p, r, _ = _overlap(gt_lists, pred_lists, wheels, mode, 1, "level1")
        scores[name] = f_of_averages(p, r)
    for k in range(1, wheels.num_wheels + 1):
        for lv in (1, 2):
            p, r, _ = _overlap(gt_lists, pred_lists, wheels, "wheel", k, f"level{lv}")
            scores[f"W{k} L{lv}"] = f_of_averages(p, r)
    scores["M-avg"] = float(np.mean([scores[m] for m in scores]))
    return scores


# --------------------------------------------------------------------------------------------------------------
# MER2024 OV metric (GPT synonym groups)
# --------------------------------------------------------------------------------------------------------------
_QUOTES = re.compile(r"['\"]")
_BRACKETS = re.compile(r"[\[\]]")


def mer2024_string_to_list(value: Any) -> list[str]:
    """The MER2024 list parser (``MER2024/toolkit/utils/functions.py::string_to_list``), quirk included.

    Take the text between the first ``[`` and the first ``]``, split it on quote characters and keep the pieces
    whose stripped text is neither empty nor ``','`` (pieces are not stripped). ``''`` / NaN give ``[]``. So
    ``"[\\"don't believe\\", 'doubt']"`` gives ``['don', 't believe', 'doubt']``.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return []
    text = str(value)
    if "[" not in text:
        raise ValueError(f"no '[' in list string {text!r}")
    inner = text.split("[", 1)[1].split("]", 1)[0]
    return [piece for piece in _QUOTES.split(inner) if piece.strip() not in ("", ",")]


def listlist_to_list(value: str) -> list[list[str]]:
    """Parse GPT's nested-list answer ``"[['a', 'b'], ['c']]"`` the official way (split on brackets, then quotes)."""
    groups = []
    for chunk in _BRACKETS.split(value):
        if chunk.strip() in ("", ","):
            continue
        groups.append([piece for piece in _QUOTES.split(chunk) if piece.strip() not in ("", ",")])
    return groups


def _literal_list(value: Any) -> list:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return []
    parsed = ast.literal_eval(str(value))
    if not isinstance(parsed, (list, tuple)):
        raise ValueError(f"not a list: {value!r}")
    return list(parsed)


def read_openset_synonym_zip(path: str | Path) -> dict[str, str]:
    """Read ``openset-synonym.zip``: sample name -> GPT answer string (one ``<name>.npy`` per sample)."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            if not member.endswith(".npy"):
                continue
            name = Path(member).stem
            out[name] = str(np.load(io.BytesIO(zf.read(member)), allow_pickle=False).tolist())
    return out


def _mer2024_scores(
    name2gt: Mapping[str, str], name2pred: Mapping[str, str], name2groups: Mapping[str, str], parser: str
) -> dict[str, float]:
    if parser == "official":
        parse_list, parse_groups = mer2024_string_to_list, listlist_to_list
    elif parser == "literal":
        parse_list = _literal_list
        parse_groups = _literal_list
    else:
        raise ValueError(f"parser must be 'official' or 'literal', got {parser!r}")
    precisions, recalls = [], []
    for name, answer in name2groups.items():
        synonym = {}
        for group in parse_groups(answer):
            group = [str(w) for w in group]
            for word in group:
                synonym[word] = group[0]
        gt = {synonym.get(w, w) for w in (str(x).lower() for x in parse_list(name2gt[name]))}
        pred = {synonym.get(w, w) for w in (str(x).lower() for x in parse_list(name2pred[name]))}
        if not pred:
            precisions.append(0.0)
            recalls.append(0.0)
        else:
            precisions.append(len(gt & pred) / len(pred))
            recalls.append(len(gt & pred) / len(gt))
    accuracy, recall = float(np.mean(precisions)), float(np.mean(recalls))
    return {"accuracy": accuracy, "recall": recall, "average": (accuracy + recall) / 2, "n": len(precisions)}


def mer2024_ov_metric(ov_store_dir: str | Path, parser: str = "official") -> dict[str, float]:
    """MER2024 OV track metric on ``ov_store/{check-openset.csv, predict-openset.csv, openset-synonym.zip}``.

    ``MER2024/main-ov.py::main_metric`` (``zeroQiaoba/MERTools`` @ ``89120b7``): for each sample of the synonym
    zip, GPT-3.5 grouped gt and pred words into synonym clusters; every word maps to the first word of its group
    (others stay as they are); gt and pred are lower-cased sets; empty pred -> P = R = 0, else P = |g & p| / |p|,
    R = |g & p| / |g|. Returns the sample means ``accuracy`` (set-level precision) and ``recall``, ``average`` =
    their mean, and ``n`` samples. Official result: 0.5817771 / 0.4977912 / 0.5397841 (MERTools README).

    ``parser="official"`` uses the official quote-splitting parsers (:func:`mer2024_string_to_list`,
    :func:`listlist_to_list`); ``parser="literal"`` reads the lists with ``ast.literal_eval`` instead, which keeps
    "don't believe" whole and gives 0.5803 / 0.4963 / 0.5383 (emotion.md section 2.5).
    """
    root = Path(ov_store_dir)
    gt = pd.read_csv(root / "check-openset.csv", dtype=str, keep_default_na=False)
    pred = pd.read_csv(root / "predict-openset.csv", dtype=str, keep_default_na=False)
    groups = read_openset_synonym_zip(root / "openset-synonym.zip")
    return _mer2024_scores(
        dict(zip(gt["name"], gt["openset"])), dict(zip(pred["name"], pred["openset"])), groups, parser
    )


# --------------------------------------------------------------------------------------------------------------
# MER2025 tracks 1 and 4
# --------------------------------------------------------------------------------------------------------------
def mer2025_track1_scores(gt_labels: Sequence[Any], pred_labels: Sequence[Any]) -> dict[str, float]:
    """MER-SEMI (track 1): weighted F1 (WAF) and accuracy over discrete labels (``MER2025_Track1/evaluation.py``).

    Labels are compared as given (strings or indices); WAF = ``f1_score(average='weighted')``. A class never
    predicted gets F1 0 (``zero_division=0``: scikit-learn's default value, without its warning).
    """
    if len(gt_labels) != len(pred_labels):
        raise ValueError(f"{len(gt_labels)} labels vs {len(pred_labels)} predictions")
    classes = sorted(set(map(str, gt_labels)) | set(map(str, pred_labels)))
    index = {c: i for i, c in enumerate(classes)}
    y_true = [index[str(x)] for x in gt_labels]
    y_pred = [index[str(x)] for x in pred_labels]
    return {
        "waf": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
    }


def rmse(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Root mean squared error."""
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def pcc(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Pearson correlation coefficient (``np.corrcoef``)."""
    return float(np.corrcoef(np.asarray(y_true, float), np.asarray(y_pred, float))[0, 1])


def ccc(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Lin's concordance correlation: 2 cov / (var_t + var_p + (mean_t - mean_p)^2), population moments, NaN pairs
    dropped (as ``calculate_ccc`` in MERTools ``toolkit/utils/functions.py``)."""
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    keep = ~(np.isnan(t) | np.isnan(p))
    t, p = t[keep], p[keep]
    cov = np.mean((t - t.mean()) * (p - p.mean()))
    return float(2 * cov / (t.var() + p.var() + (t.mean() - p.mean()) ** 2))


def mer2025_track4_scores(y_true: Any, y_pred: Any, traits: Sequence[str] | None = None) -> pd.DataFrame:
    """MER-PR (track 4): RMSE, PCC and CCC per personality dimension (``cai-cong/MER25_personality/train.py``).

    ``y_true`` / ``y_pred``: arrays ``[num_samples]`` or ``[num_samples, num_traits]``. Returns one row per trait
    (``trait, rmse, pcc, ccc``) plus a ``mean`` row. The official ranking metric is unconfirmed (emotion.md 2.2).
    """
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    if t.ndim == 1:
        t, p = t[:, None], p[:, None]
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch {t.shape} vs {p.shape}")
    names = list(traits) if traits is not None else [f"trait{i}" for i in range(t.shape[1])]
    rows = [
        {"trait": n, "rmse": rmse(t[:, i], p[:, i]), "pcc": pcc(t[:, i], p[:, i]), "ccc": ccc(t[:, i], p[:, i])}
        for i, n in enumerate(names)
    ]
    table = pd.DataFrame(rows)
    mean = {"trait": "mean", **table[["rmse", "pcc", "ccc"]].mean().to_dict()}
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)
