"""Readers of MER-UniBench and OV-MER files that more than one emotion paper uses (AffectGPT, MER2025, Emotion-Qwen).

Files read (``../shared/research/emotion.md`` sections 1.4 and 2.4):

- AffectGPT outputs: ``AffectGPT/output/`` of ``zeroQiaoba/AffectGPT`` @ ``d961cab04ab2903fefb22a641331e1242949b15d``
  (book key :data:`OUTPUT_KEY`): ``results-<set>/<run>/checkpoint_0000NN_loss_<x>-openset.npz`` (OV label lists,
  arrays ``filenames`` / ``fileitems``) and ``...-openset-sentiment.npz`` (one sentiment word per sample, sentiment
  sets only): :func:`find_checkpoints` lists the registered ones, :func:`load_openset_npz` reads one.
- Labels: ``MERBench/dataset/*-process/*.npz`` (and ``ovmerdplus-process/ovlabel.csv``) of ``zeroQiaoba/MERTools`` @
  ``89120b780ab18b28349f0e37dcc12b8cc253cb02`` (book key ``emotion/mertools/MERBench/dataset``), one per dataset of
  :data:`UNIBENCH`: :func:`load_merbench_labels`; :func:`missing_labels` names the absent ones (MER2024 and OV-MERD+
  labels are only on Baidu Netdisk) and where they are hosted.
- OV-MER outputs: ``OV-MER/output/results-ovmerd/<model>/output-reason-7b-<setting>-eng-openset.npz`` (OV label lists,
  :func:`load_openset_npz`) and ``...-eng.npz`` (free-text descriptions, ``name2reason``: :func:`load_descriptions`) of
  the AffectGPT commit (book key ``emotion/ov-mer/output``), scored by :func:`score_ov_mer_baselines` against
  ``MER2024/ov_store/check-openset.csv`` (332 OV-MERD labels) of MERTools.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compendium import data
from compendium.emotion.metrics import OV_MER_METRICS, ov_mer_scores
from compendium.emotion.wheel import EmotionWheels

__all__ = [
    "OUTPUT_KEY",
    "OV_MER_MODELS",
    "UNIBENCH",
    "UniBenchSet",
    "find_checkpoints",
    "load_descriptions",
    "load_merbench_labels",
    "load_openset_npz",
    "missing_labels",
    "score_ov_mer_baselines",
]

_BAIDU_UNIBENCH = (
    "Baidu Netdisk https://pan.baidu.com/s/1kbfs5pG_hAri0QwvQl-Ecg?pwd=b9vn (TeraBox mirror "
    "https://1024terabox.com/s/1AE7uAU3Ib8aRBSyF1TMpow), the MER-UniBench 'dataset' folder of the "
    "zeroQiaoba/AffectGPT README"
)
_BAIDU_OVMERDPLUS = (
    "Baidu Netdisk https://pan.baidu.com/s/1nBTw_ujSTQPAMyIs5Qv8Zw?pwd=k8tj (TeraBox mirror "
    "https://1024terabox.com/s/1O130fc81FVsGGsrjLuHyDA), the OV-MERD+ link of the zeroQiaoba/AffectGPT README"
)


@dataclass(frozen=True)
class UniBenchSet:
    """One MER-UniBench dataset: where its predictions and labels are and how it is scored.

    ``kind``: ``"basic"`` (hit rate), ``"sentiment"`` (binary weighted F1) or ``"finegrained"`` (EW F, level 1).
    ``label_file`` is relative to the MERBench ``dataset/`` directory; ``corpus`` the key inside the npz;
    ``classes`` maps integer labels to names (None: labels are strings already); ``name_prefix`` keeps only names
    starting with it (IEMOCAP session 5 = test); ``hosted`` says where a missing label file can be obtained.
    """

    name: str
    folder: str
    kind: str
    label_file: str
    corpus: str | None = None
    classes: tuple[str, ...] | None = None
    name_prefix: str | None = None
    hosted: str = ""


#: The 9 datasets of Table 2, in the paper's column order (emotion.md sections 1.1 and 1.4).
UNIBENCH: dict[str, UniBenchSet] = {
    s.name: s
    for s in [
        UniBenchSet("MER2023", "mer2023", "basic", "mer2023-dataset-process/label-6way.npz", "test1_corpus"),
        UniBenchSet(
            "MER2024", "mer2024", "basic", "mer2024-dataset-process/label-6way.npz", None, hosted=_BAIDU_UNIBENCH
        ),
        UniBenchSet(
            "MELD", "meld", "basic", "meld-process/label.npz", "test_corpus",
            classes=("anger", "joy", "sadness", "neutral", "disgust", "fear", "surprise"),
        ),
        UniBenchSet(
            "IEMOCAP", "iemocapfour", "basic", "iemocap-process/label_4way.npz", "whole_corpus",
            classes=("happy", "sad", "neutral", "anger"), name_prefix="Ses05",
        ),
        UniBenchSet("MOSI", "cmumosi", "sentiment", "cmumosi-process/label.npz", "test_corpus"),
        UniBenchSet("MOSEI", "cmumosei", "sentiment", "cmumosei-process/label.npz", "test_corpus"),
        UniBenchSet("SIMS", "sims", "sentiment", "sims-process/label.npz", "test_corpus"),
        UniBenchSet("SIMSv2", "simsv2", "sentiment", "simsv2-process/label.npz", "test_corpus"),
        UniBenchSet(
            "OV-MERD+", "ovmerdplus", "finegrained", "ovmerdplus-process/ovlabel.csv", None, hosted=_BAIDU_OVMERDPLUS
        ),
    ]
}

_CKPT = re.compile(r"checkpoint_(\d+)_loss_([0-9.]+)-openset\.npz$")


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------
def load_openset_npz(path: str | Path) -> dict[str, str]:
    """Read an ``*-openset.npz`` / ``*-openset-sentiment.npz``: sample name -> item (list string or word)."""
    with np.load(path, allow_pickle=False) as z:
        names, items = z["filenames"].tolist(), z["fileitems"].tolist()
    if len(names) != len(items):
        raise ValueError(f"{path}: {len(names)} names vs {len(items)} items")
    return dict(zip(names, items))


#: Registry folder of AffectGPT's published outputs: the checkpoints a loader may read are the ones registered below it.
OUTPUT_KEY = "emotion/affectgpt/output"


def _registered_checkpoints(dataset: UniBenchSet) -> dict[str, list[str]]:
    """run name -> registered ``*-openset.npz`` file names of ``results-<set>/<run>/`` (from the registry, not a
    folder listing, so a file dropped into the folder never becomes a checkpoint)."""
    runs: dict[str, list[str]] = {}
    for rel in data.registered_below(OUTPUT_KEY):
        folder, run, name = (rel.split("/") + ["", ""])[:3]
        if folder == f"results-{dataset.folder}" and _CKPT.search(name):
            runs.setdefault(run, []).append(name)
    return runs


def _warn_unregistered_checkpoints(folder: Path, registered: set[str]) -> None:
    extra = sorted(p.name for p in folder.glob("checkpoint_*.npz") if p.name not in registered) if folder.is_dir() else []
    if extra:
        warnings.warn(f"{folder}: ignoring {len(extra)} unregistered checkpoint file(s): {', '.join(extra[:3])}"
                      f"{' …' if len(extra) > 3 else ''} (see `compendium data check`)", stacklevel=3)


def find_checkpoints(output_dir: str | Path, dataset: str, run: str | None = None) -> pd.DataFrame:
    """The registered checkpoints of ``dataset`` found under ``output_dir`` (AffectGPT's ``output/``, in the published
    ``results-<set>/<run>/`` layout or flattened as ``results-<set>/``): columns ``checkpoint`` (epoch), ``loss``,
    ``openset`` (path), ``sentiment`` (path or None), sorted by epoch. Unregistered files there are ignored, with a
    warning."""
    spec = UNIBENCH[dataset]
    base = Path(output_dir) / f"results-{spec.folder}"
    runs = _registered_checkpoints(spec)
    if run is None:
        if len(runs) > 1:
            raise ValueError(f"{base}: the registry holds several runs {sorted(runs)}; pass run=...")
        run = next(iter(runs), "")
    registered = set(data.registered_below(f"{OUTPUT_KEY}/results-{spec.folder}/{run}"))
    run_dir = base / run if (base / run).is_dir() else base  # flattened layout: checkpoints directly in results-<set>/
    _warn_unregistered_checkpoints(run_dir, registered)
    rows = []
    for name in runs.get(run, []):
        path = run_dir / name
        if not path.is_file():
            continue
        m = _CKPT.search(name)
        sentiment_name = name.replace("-openset.npz", "-openset-sentiment.npz")
        rows.append({
            "checkpoint": int(m.group(1)),
            "loss": float(m.group(2)),
            "openset": path,
            "sentiment": run_dir / sentiment_name if sentiment_name in registered and (run_dir / sentiment_name).is_file() else None,
        })
    return pd.DataFrame(rows, columns=["checkpoint", "loss", "openset", "sentiment"]).sort_values(
        "checkpoint", ignore_index=True
    )


def load_merbench_labels(labels_dir: str | Path, dataset: str) -> dict[str, Any]:
    """Test labels of a MER-UniBench dataset: name -> emotion word (basic sets) or valence (sentiment sets).

    ``labels_dir`` is the MERBench ``dataset/`` directory. Raises ``FileNotFoundError`` naming the expected file and
    where it is hosted when the label file is absent (MER2024, OV-MERD+).
    """
    spec = UNIBENCH[dataset]
    path = Path(labels_dir) / spec.label_file
    if not path.exists():
        raise FileNotFoundError(f"{dataset} labels not found: expected {path}; hosted on {spec.hosted or 'unknown'}")
    if spec.kind == "finegrained":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        column = "openset" if "openset" in df.columns else df.columns[1]
        return dict(zip(df["name"], df[column]))
    # The label files hold pickled dicts: only a file whose checksum is registered is unpickled.
    with np.load(data.require_verified(path, "MERBench label file"), allow_pickle=True) as z:
        corpus = z[spec.corpus].item()
    out: dict[str, Any] = {}
    for name, entry in corpus.items():
        if spec.name_prefix and not name.startswith(spec.name_prefix):
            continue
        if spec.kind == "sentiment":
            out[name] = float(entry["val"])
        else:
            emo = entry["emo"]
            out[name] = spec.classes[int(emo)] if spec.classes is not None else str(emo)
    return out


def missing_labels(labels_dir: str | Path) -> pd.DataFrame:
    """Datasets whose label file is absent: columns ``dataset``, ``expected`` (path), ``hosted`` (where to get it)."""
    rows = []
    for spec in UNIBENCH.values():
        path = Path(labels_dir) / spec.label_file
        if not path.exists():
            rows.append({"dataset": spec.name, "expected": str(path), "hosted": spec.hosted or "unknown"})
    return pd.DataFrame(rows, columns=["dataset", "expected", "hosted"])


def load_descriptions(path: str | Path) -> dict[str, str]:
    """A ``name2reason`` npz (OV-MER / AffectGPT free-text outputs): sample name -> description.

    These files hold a pickled dict, so they are read with ``allow_pickle=True``, and only from a file whose checksum
    is registered (or with the opt-in ``COMPENDIUM_TRUST_PICKLE=1``)."""
    with np.load(data.require_verified(path, "description file"), allow_pickle=True) as z:
        return {str(k): str(v) for k, v in z["name2reason"].item().items()}


# --------------------------------------------------------------------------------------------------------------
# OV-MER zero-shot baselines
# --------------------------------------------------------------------------------------------------------------
def _aligned(labels: Mapping[str, Any], preds: Mapping[str, Any], where: Path) -> tuple[list, list]:
    missing = [n for n in labels if n not in preds]
    if missing:
        raise KeyError(f"{where}: no prediction for {len(missing)} labelled samples, e.g. {missing[:3]}")
    names = list(labels)
    return [labels[n] for n in names], [preds[n] for n in names]


def _read_check_openset(ov_store_dir: str | Path) -> dict[str, str]:
    df = pd.read_csv(Path(ov_store_dir) / "check-openset.csv", dtype=str, keep_default_na=False)
    return dict(zip(df["name"], df["openset"]))


#: The 10 baselines with published OV labels, in the order of the OV-MER table (emotion.md section 2.4).
OV_MER_MODELS = ("Qwen-Audio", "Otter", "VideoChat", "Video-LLaVA", "SALMONN", "VideoChat2", "Video-ChatGPT",
                 "LLaMA-VID", "mPLUG-Owl", "Chat-UniVi")


def score_ov_mer_baselines(
    output_dir: str | Path,
    ov_store_dir: str | Path,
    wheel_dir: str | Path,
    setting: str = "nosubtitle-addsub",
    models: tuple[str, ...] | None = None,
    wheels: EmotionWheels | None = None,
) -> pd.DataFrame:
    """Recompute the OV-MER zero-shot table (M1, M2, M3 wheels 1-5 at L1/L2, M-avg; percent) from published labels.

    ``output_dir``: ``OV-MER/output`` (holding ``results-ovmerd/``) or ``results-ovmerd`` itself; each model's file is
    ``<model>/output-reason-7b-{setting}-eng-openset.npz``; ``setting`` ``"nosubtitle-addsub"`` is the one of the
    table (``"subtitle"`` and ``"nosubtitle"`` give much lower numbers). Ground truth: the 332 OV-MERD labels of
    ``ov_store_dir/check-openset.csv``. Metric definitions in :func:`compendium.emotion.metrics.ov_mer_scores`.
    Returns one row per model (index ``model``) with columns ``M1, M2, W1 L1, ..., W5 L2, M-avg`` and ``n``.
    The result is approximate (emotion.md 2.4: the table averages several extraction runs; Chat-UniVi 47.22 here vs
    46.75 in the table). ``wheels``: maps built otherwise than from ``wheel_dir`` (e.g. a subset of the synonym
    runs, :func:`synonym_run_ablation`).
    """
    root = Path(output_dir)
    if (root / "results-ovmerd").is_dir():
        root = root / "results-ovmerd"
    wheels = wheels or EmotionWheels.from_dir(wheel_dir)
    labels = _read_check_openset(ov_store_dir)
    rows = []
    for model in models or OV_MER_MODELS:
        path = root / model / f"output-reason-7b-{setting}-eng-openset.npz"
        gt, pred = _aligned(labels, load_openset_npz(path), path)
        scores = ov_mer_scores(gt, pred, wheels)
        rows.append({"model": model, **{k: 100 * v for k, v in scores.items()}, "n": len(gt)})
    return pd.DataFrame(rows, columns=["model", *OV_MER_METRICS, "M-avg", "n"]).set_index("model")
