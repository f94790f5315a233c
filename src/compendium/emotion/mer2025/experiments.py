"""MER2025 (Lian et al., arXiv 2504.19423): the four tracks' metrics and the official track-1 baseline model.

Sources (``../shared/research/emotion.md`` section 2; code in ``zeroQiaoba/MERTools``, folder ``MER2025/``):

- **MER-SEMI (track 1)**: weighted-average F1 (WAF) over the 6 classes ``neutral, angry, happy, sad, worried,
  surprise`` (``MER2025_Track1/evaluation.py``; accuracy is printed by the training loop's ``calculate_results``).
  The metric itself is :func:`compendium.emotion.metrics.mer2025_track1_scores`.
- **MER-FG (track 2)**: the emotion-wheel F-score at level 1 and level 2, each the mean over the 5 wheels of
  F = 2PR/(P+R) of sample-averaged P and R; ``MER2025_Track23/evaluation.py`` prints [L1, L2, mean] x 100
  (:func:`merfg_scores`, built on :func:`compendium.emotion.metrics.ew_scores`).
- **MER-DES (track 3)**: the same ``evaluation.py`` treats any result file that is not ``*-openset.npz`` as
  free-text descriptions, turns them into open-vocabulary label lists with Qwen2.5 (vLLM, temperature 0.7,
  top_p 0.8, repetition_penalty 1.05, max_tokens 512, one user turn, the prompt :data:`OPENSET_PROMPT`, the reply
  cleaned by :func:`postprocess_qwen`) and scores them with the MER-FG metric. Whether the final MER-DES ranking
  used only this or added human judgement is **unconfirmed** (the paper text has not been checked).
- **MER-PR (track 4)**: RMSE, PCC and CCC per Big-Five trait (``cai-cong/MER25_personality/train.py``);
  :func:`compendium.emotion.metrics.mer2025_track4_scores`. The official ranking metric is unconfirmed.

The track-1 baseline (``MER2025_Track1/main-release.py`` with ``--model attention`` / ``attention_topn``;
``toolkit/models/attention_topn.py``, ``toolkit/models/modules/encoder.py``, ``toolkit/dataloader/mer2025.py``):

- one :class:`~compendium.emotion.mer2025.model.MLPEncoder` per input feature (Dropout, then [Linear, ReLU] x 3 to
  ``hidden_dim``); a unimodal run feeds the same feature three times; ``attention_topn`` takes the top-n features of
  each modality (the model: :class:`~compendium.emotion.mer2025.model.AttentionFusion`);
- ``attention_mlp`` = MLPEncoder(k * hidden -> hidden), ``fc_att`` = Linear(hidden -> k): **raw** fusion weights,
  no softmax; fused = sum_m w_m h_m; ``fc_out_1`` = Linear(hidden -> 6) (and ``fc_out_2`` for valence, of width 0
  in 2025);
- loss: log-softmax + NLL summed / batch size; Adam, L2 1e-5, 100 epochs, batch 32; hyper-parameters drawn at
  random per run from ``model-tune.yaml`` (hidden 64/128/256, dropout 0.2-0.5, lr 1e-3/1e-4);
- 5-fold cross-validation on the training set (``random_split_indexes``: Python ``random.shuffle`` of the indices,
  4 folds of floor(n/5), the last takes the rest); per fold the epoch with the best validation WAF is kept (first
  on ties); the test outputs of the 5 kept models are averaged. **The averaged "emo_probs" are the raw outputs of
  ``fc_out_1`` (logits), not softmax probabilities** — :class:`Track1Config` ``average="logits"`` copies that,
  ``"probs"`` averages probabilities instead.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from compendium import data
from compendium.emotion.mer2025.model import AttentionFusion
from compendium.emotion.metrics import ew_scores, mer2025_track1_scores, mer2025_track4_scores
from compendium.emotion.unibench import load_descriptions, load_openset_npz
from compendium.emotion.wheel import EmotionWheels
from compendium.published import PublishedTable

__all__ = [
    "EMOTIONS",
    "TUNE_GRID",
    "GOEMOTIONS_EKMAN_TO_MER",
    "OPENSET_PROMPT",
    "CUE_STEMS",
    "MERFG_COLUMNS",
    "MERFG_COUNTED_IN",
    "SETTINGS",
    "NEGATION_WINDOW",
    "NEGATORS",
    "CVResult",
    "Track1Config",
    "Track1Data",
    "as_list_string",
    "cross_validate",
    "emotion_lexicon",
    "extract_wheel_labels",
    "extract_openset",
    "goemotions_as_mer",
    "goemotions_track1",
    "load_mer2025_track1",
    "merdes_lexicon_scores",
    "merfg_from_wheel_cells",
    "merfg_measured",
    "merfg_published",
    "merfg_scores",
    "merpr_scores",
    "official_folds",
    "postprocess_qwen",
    "random_config",
    "random_search",
    "rank_agreement",
    "synthetic_track1",
    "track1_settings",
    "waf",
    "write_submission",
]

#: ``emos_mer`` of ``MER2025_Track1/toolkit/globals.py``: class index order of the baseline.
EMOTIONS = ("neutral", "angry", "happy", "sad", "worried", "surprise")

#: The random-search grid of ``model-tune.yaml`` for ``attention`` (emotion.md 2.3). ``grad_clip`` is not in the
#: research note; -1 (no clipping) is assumed.
TUNE_GRID: dict[str, tuple] = {
    "hidden_dim": (64, 128, 256),
    "dropout": (0.2, 0.3, 0.4, 0.5),
    "lr": (1e-3, 1e-4),
    "grad_clip": (-1.0,),
}


# ----------------------------------------------------------------------------------------------------------------
# Track 1: metric
# ----------------------------------------------------------------------------------------------------------------
def waf(gt_labels: Sequence[Any], pred_labels: Sequence[Any]) -> dict[str, float]:
    """MER-SEMI weighted-average F1 and accuracy (fractions); see ``metrics.mer2025_track1_scores``."""
    return mer2025_track1_scores(gt_labels, pred_labels)


# ----------------------------------------------------------------------------------------------------------------
# Track 1: the official baseline's training run (the model: compendium.emotion.mer2025.model)
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Track1Config:
    """One training run of the baseline. Defaults are one point of :data:`TUNE_GRID`; ``num_epochs`` 100,
    ``batch_size`` 32 and ``l2`` 1e-5 are the script's defaults."""

    hidden_dim: int = 128
    dropout: float = 0.3
    lr: float = 1e-3
    grad_clip: float = -1.0
    l2: float = 1e-5
    batch_size: int = 32
    num_epochs: int = 100
    num_folds: int = 5
    seed: int = 0
    average: str = "logits"  # "logits" (official: raw outputs averaged over folds) or "probs"


def random_config(rng: random.Random, **fixed: Any) -> Track1Config:
    """Draw ``hidden_dim``, ``dropout``, ``lr``, ``grad_clip`` from :data:`TUNE_GRID` (``func_random_select``:
    ``random.randint`` per key, in the grid's key order); ``fixed`` sets the other fields."""
    drawn = {key: values[rng.randint(0, len(values) - 1)] for key, values in TUNE_GRID.items()}
    return Track1Config(**{**drawn, **fixed})


def official_folds(num_samples: int, num_folds: int = 5, rng: random.Random | None = None) -> list[tuple]:
    """``random_split_indexes``: shuffle ``arange(n)`` with Python's ``random.shuffle``, cut ``num_folds - 1``
    folds of ``floor(n / num_folds)`` and give the rest to the last; fold i is the validation set of split i.
    Returns ``[(train_idx, eval_idx), ...]`` as int arrays."""
    indices = np.arange(num_samples)
    (rng or random).shuffle(indices)
    each = int(num_samples / num_folds)
    folds = [indices[each * i: each * (i + 1)] for i in range(num_folds - 1)] + [indices[each * (num_folds - 1):]]
    assert sum(len(f) for f in folds) == num_samples
    return [(np.concatenate([folds[j] for j in range(num_folds) if j != i]), folds[i]) for i in range(num_folds)]


def _ce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # MERTools CELoss: log_softmax + nll_loss(reduction="sum") / batch size (= mean cross-entropy)
    return nn.functional.nll_loss(torch.log_softmax(logits, dim=1), target, reduction="sum") / len(target)


def _batches(n: int, batch_size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def _predict(model: AttentionFusion, feats: Sequence[torch.Tensor], batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    n = feats[0].shape[0]
    return torch.cat([model([f[i:i + batch_size] for f in feats])[1] for i in range(0, n, batch_size)])


@dataclass
class CVResult:
    """Outcome of one cross-validated run (fractions).

    ``folds``: per fold the best epoch (0-based), its validation WAF / accuracy, the validation size;
    ``cv_waf`` / ``cv_acc``: their means (``gain_cv_results``); ``test_outputs``: the fold-averaged test outputs
    (logits or probabilities, see ``config.average``); ``test_waf`` / ``test_acc``: scored against test labels when
    they were given; ``curves``: per fold the validation WAF of every epoch."""

    config: Track1Config
    folds: pd.DataFrame
    cv_waf: float
    cv_acc: float
    test_outputs: np.ndarray | None = None
    test_waf: float | None = None
    test_acc: float | None = None
    curves: list[list[float]] = field(default_factory=list)
    mean_weights: np.ndarray | None = None
    fold_test_logits: list[np.ndarray] = field(default_factory=list)
    y_test: np.ndarray | None = None

    def averaged(self, average: str = "logits") -> np.ndarray:
        """The test outputs averaged over the fold models: raw ``"logits"`` (official) or softmax ``"probs"``."""
        if average == "logits":
            return np.mean(self.fold_test_logits, axis=0)
        if average == "probs":
            return np.mean([torch.softmax(torch.as_tensor(o), 1).numpy() for o in self.fold_test_logits], axis=0)
        raise ValueError(f"average must be 'logits' or 'probs', got {average!r}")

    def test_scores(self, average: str = "logits") -> dict[str, float]:
        """WAF and accuracy of the fold-averaged test outputs (needs the test labels)."""
        if self.y_test is None:
            raise ValueError("no test labels were given")
        return mer2025_track1_scores(self.y_test, self.averaged(average).argmax(1))

    def summary(self) -> dict:
        return {**asdict(self.config), "cv_waf": self.cv_waf, "cv_acc": self.cv_acc, "test_waf": self.test_waf,
                "test_acc": self.test_acc}


def cross_validate(
    x: Sequence[np.ndarray],
    y: np.ndarray,
    config: Track1Config,
    x_test: Sequence[np.ndarray] | None = None,
    y_test: np.ndarray | None = None,
    *,
    progress: bool = False,
) -> CVResult:
    """Train the baseline with the official 5-fold protocol.

    Args:
        x: one array (N, d_i) per input feature (a unimodal run passes the same array three times).
        y: (N,) class indices in ``0..5`` (order of :data:`EMOTIONS`, or any 6-class order).
        config: hyper-parameters; ``config.seed`` seeds the fold split (``random``), the initialisation and the
            batch order (torch).
        x_test / y_test: the test features (and labels, if known) scored with the fold-averaged outputs.
    """
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    feats = [torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in x]
    target = torch.as_tensor(np.asarray(y), dtype=torch.long)
    test_feats = [torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in x_test] if x_test is not None else None
    num_classes = int(max(int(target.max()) + 1, 6))
    rows, curves, fold_outputs, weights = [], [], [], []
    folds = official_folds(len(target), config.num_folds, rng)
    iterator = enumerate(folds)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(folds), desc="folds", leave=False)
    for fold, (train_idx, eval_idx) in iterator:
        model = AttentionFusion([f.shape[1] for f in feats], config.hidden_dim, config.dropout, num_classes)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.l2)
        train_idx, eval_idx = torch.as_tensor(train_idx), torch.as_tensor(eval_idx)
        x_eval = [f[eval_idx] for f in feats]
        y_eval = target[eval_idx].numpy()
        best, best_epoch, best_acc, best_test, best_weights, curve = -math.inf, -1, 0.0, None, None, []
        for epoch in range(config.num_epochs):
            model.train()
            for batch in _batches(len(train_idx), config.batch_size, gen):
                idx = train_idx[batch]
                optimizer.zero_grad()
                loss = _ce_loss(model([f[idx] for f in feats])[1], target[idx])
                loss.backward()
                if config.grad_clip != -1:
                    nn.utils.clip_grad_value_(model.parameters(), config.grad_clip)
                optimizer.step()
            pred = _predict(model, x_eval).argmax(1).numpy()
            score = mer2025_track1_scores(y_eval, pred)
            curve.append(score["waf"])
            if score["waf"] > best:  # np.argmax keeps the first best epoch
                best, best_epoch, best_acc = score["waf"], epoch, score["accuracy"]
                if test_feats is not None:
                    best_test = _predict(model, test_feats)
                model.eval()
                with torch.no_grad():
                    best_weights = model(x_eval)[2].mean(0).numpy()
        rows.append({"fold": fold, "best_epoch": best_epoch, "eval_waf": best, "eval_acc": best_acc,
                     "n_eval": len(eval_idx)})
        curves.append(curve)
        weights.append(best_weights)
        if best_test is not None:
            fold_outputs.append(best_test.numpy())
    table = pd.DataFrame(rows)
    result = CVResult(config=config, folds=table, cv_waf=float(table.eval_waf.mean()),
                      cv_acc=float(table.eval_acc.mean()), curves=curves,
                      mean_weights=np.mean(weights, axis=0))
    if fold_outputs:
        result.fold_test_logits = fold_outputs
        result.test_outputs = result.averaged(config.average)
        if y_test is not None:
            result.y_test = np.asarray(y_test)
            scores = mer2025_track1_scores(result.y_test, result.test_outputs.argmax(1))
            result.test_waf, result.test_acc = scores["waf"], scores["accuracy"]
    return result


# ----------------------------------------------------------------------------------------------------------------
# Track 1: data
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Track1Data:
    """Features for the baseline: ``train`` / ``test`` map a modality name to (N, d) arrays; ``y_*`` class
    indices in :data:`EMOTIONS` order (``y_test`` None when withheld); ``origin`` says what the data is (real
    MER2025, a substitute, or synthetic)."""

    train: dict[str, np.ndarray]
    y_train: np.ndarray
    test: dict[str, np.ndarray]
    y_test: np.ndarray | None
    origin: str
    synthetic: bool = False
    train_names: list[str] = field(default_factory=list)
    test_names: list[str] = field(default_factory=list)

    def inputs(self, modalities: Sequence[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The feature lists for a run over ``modalities`` (repeat a name to feed a feature several times)."""
        return [self.train[m] for m in modalities], [self.test[m] for m in modalities]


def synthetic_track1(num_train: int = 300, num_test: int = 120, dims: Mapping[str, int] | None = None,
                     separation: Mapping[str, float] | None = None, seed: int = 0) -> Track1Data:
    """SYNTHETIC class-conditional Gaussian features in the layout of MER2025 track 1 (for CI only).

    Each modality has its own class means (norm ``separation[m]``) plus unit Gaussian noise, so modalities differ
    in how informative they are and fusion can help. Labels are uniform over the 6 classes. Says
    ``synthetic=True`` and ``origin="SYNTHETIC ..."``; never a stand-in for a result."""
    dims = dict(dims or {"audio": 32, "text": 24, "video": 16})
    separation = dict(separation or {"audio": 1.0, "text": 1.5, "video": 0.7})
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(EMOTIONS), num_train + num_test)
    feats = {}
    for m, d in dims.items():
        means = rng.normal(size=(len(EMOTIONS), d))
        means *= separation[m] / np.linalg.norm(means, axis=1, keepdims=True)
        feats[m] = (means[y] + rng.normal(size=(len(y), d))).astype(np.float32)
    return Track1Data(
        train={m: f[:num_train] for m, f in feats.items()}, y_train=y[:num_train],
        test={m: f[num_train:] for m, f in feats.items()}, y_test=y[num_train:],
        origin=f"SYNTHETIC Gaussian features ({num_train} train / {num_test} test, seed {seed}) - not MER2025",
        synthetic=True,
    )


#: GoEmotions' Ekman labels onto MER's 6 classes (disgust has no MER counterpart and is dropped).
GOEMOTIONS_EKMAN_TO_MER = {"neutral": "neutral", "anger": "angry", "joy": "happy", "sadness": "sad",
                           "fear": "worried", "surprise": "surprise"}


def goemotions_as_mer(ekman_dir: str | Path, split: str, limit: int | None = None, seed: int = 0) -> pd.DataFrame:
    """GoEmotions (Demszky et al., ACL 2020; ``ekman/`` split TSVs) as a 6-class MER-style set.

    Keeps comments with exactly one Ekman label that maps onto MER's classes (:data:`GOEMOTIONS_EKMAN_TO_MER`);
    ``limit`` draws a class-stratified random subset of that size (``seed``). Columns: ``id, text, ekman, label``
    (MER class name), ``y`` (index in :data:`EMOTIONS`)."""
    root = Path(ekman_dir)
    names = [n.strip() for n in (root / "labels.txt").read_text().splitlines() if n.strip()]
    df = pd.read_csv(root / f"{split}.tsv", sep="\t", header=None, names=["text", "labels", "id"], dtype=str,
                     keep_default_na=False, quoting=3)
    single = df[~df["labels"].str.contains(",")].copy()
    single["ekman"] = [names[int(i)] for i in single["labels"]]
    single = single[single["ekman"].isin(GOEMOTIONS_EKMAN_TO_MER)].copy()
    single["label"] = single["ekman"].map(GOEMOTIONS_EKMAN_TO_MER)
    single["y"] = single["label"].map({e: i for i, e in enumerate(EMOTIONS)})
    single = single[["id", "text", "ekman", "label", "y"]].reset_index(drop=True)
    if limit is not None and limit < len(single):
        frac = limit / len(single)
        parts = [g.sample(n=max(1, int(round(len(g) * frac))), random_state=seed) for _, g in single.groupby("y")]
        single = pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return single


_GATED = (
    "MER2025 track-1 data not found at {where}. The data set is gated (Hugging Face MERChallenge/MER2025, "
    "CC BY-NC 4.0: accept the terms there). Lay it out as MERTools MER2025_Track1 does: "
    "<root>/track1_label_6way.npz (train_corpus / test1_corpus, from toolkit/preprocess/mer2025.py) or "
    "<root>/track1_train_disdim.csv (+ track_all_candidates.csv), and utterance-level features "
    "<root>/features/<feature>/<sample>.npy from MER2025_Track1/feature_extraction (extractor weights on Baidu), "
    "e.g. chinese-hubert-large-UTT, chinese-roberta-wwm-ext-UTT, clip-vit-large-patch14-UTT."
)


def _read_feature_dir(folder: Path, names: Sequence[str]) -> np.ndarray:
    rows = []
    for name in names:
        arr = np.load(folder / f"{name}.npy")
        rows.append(arr.mean(axis=0) if arr.ndim == 2 else arr.reshape(-1))  # utterance-level: mean over frames
    return np.stack(rows).astype(np.float32)


def _find_feature(root: Path, feature: str) -> Path:
    base = root / "features" if (root / "features").is_dir() else root
    for cand in (feature, f"{feature}-UTT", f"{feature}_UTT"):
        if (base / cand).is_dir():
            return base / cand
    raise FileNotFoundError(f"feature folder {feature!r} not under {base}; have: "
                            f"{sorted(p.name for p in base.iterdir() if p.is_dir())[:20]}")


def load_mer2025_track1(root: str | Path, features: Mapping[str, str], test_labels_csv: str | Path | None = None
                        ) -> Track1Data:
    """Real MER2025 track-1 features (gated data; the layout of ``MER2025_Track1``).

    Args:
        root: the processed data folder (``mer2025-dataset-process``), holding the label file and ``features/``.
        features: modality -> feature folder name, e.g. ``{"audio": "chinese-hubert-large-UTT", ...}``.
        test_labels_csv: optional ``name,discrete`` csv of test labels (``track1_test_dis.csv``; not public).
    Raises ``FileNotFoundError`` with the instructions in :data:`_GATED` when the data is absent.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(_GATED.format(where=root))
    index = {e: i for i, e in enumerate(EMOTIONS)}
    if (root / "track1_label_6way.npz").exists():
        # A pickled dict made by your own preprocessing: unpickled only with the opt-in COMPENDIUM_TRUST_PICKLE=1.
        with np.load(data.require_verified(root / "track1_label_6way.npz", "MER2025 label file"), allow_pickle=True) as z:
            train_corpus, test_corpus = z["train_corpus"].item(), z["test1_corpus"].item()
        train_names = list(train_corpus)
        y_train = np.array([index[train_corpus[n]["emo"]] for n in train_names])
        test_names = list(test_corpus)
    elif (root / "track1_train_disdim.csv").exists():
        df = pd.read_csv(root / "track1_train_disdim.csv")
        train_names, y_train = list(df["name"]), np.array([index[e] for e in df["discrete"]])
        cand = root / "track_all_candidates.csv"
        test_names = list(pd.read_csv(cand)["name"]) if cand.exists() else []
    else:
        raise FileNotFoundError(_GATED.format(where=root / "track1_label_6way.npz"))
    train, test = {}, {}
    for modality, feature in features.items():
        folder = _find_feature(root, feature)
        train[modality] = _read_feature_dir(folder, train_names)
        if test_names:
            test[modality] = _read_feature_dir(folder, test_names)
    y_test = None
    if test_labels_csv:
        lab = pd.read_csv(test_labels_csv)
        name2 = dict(zip(lab["name"], lab["discrete"]))
        keep = [i for i, n in enumerate(test_names) if n in name2]
        test = {m: f[keep] for m, f in test.items()}
        test_names = [test_names[i] for i in keep]
        y_test = np.array([index[name2[n]] for n in test_names])
    return Track1Data(train=train, y_train=y_train, test=test, y_test=y_test, origin=f"MER2025 track 1 ({root})",
                      train_names=train_names, test_names=test_names)


def write_submission(names: Sequence[str], outputs: np.ndarray, path: str | Path) -> Path:
    """The CodaLab submission csv (``name,discrete``) from fold-averaged outputs (argmax over :data:`EMOTIONS`)."""
    path = Path(path)
    pd.DataFrame({"name": list(names), "discrete": [EMOTIONS[i] for i in np.asarray(outputs).argmax(1)]}).to_csv(
        path, index=False)
    return path


# ----------------------------------------------------------------------------------------------------------------
# Tracks 2-4
# ----------------------------------------------------------------------------------------------------------------
def merfg_scores(gt_lists: Sequence[Any], pred_lists: Sequence[Any], wheels: EmotionWheels) -> dict[str, float]:
    """MER-FG: ``L1`` and ``L2`` (each the EW F-score averaged over the wheels) and ``mean`` = (L1 + L2) / 2, as
    ``MER2025_Track23/evaluation.py`` prints them (fractions here)."""
    l1 = ew_scores(gt_lists, pred_lists, wheels, "level1").f
    l2 = ew_scores(gt_lists, pred_lists, wheels, "level2").f
    return {"L1": l1, "L2": l2, "mean": (l1 + l2) / 2}


def merpr_scores(y_true: Any, y_pred: Any, traits: Sequence[str] | None = None) -> pd.DataFrame:
    """MER-PR: RMSE / PCC / CCC per trait plus their mean (``metrics.mer2025_track4_scores``)."""
    return mer2025_track4_scores(y_true, y_pred, traits)


#: ``reason_to_openset_qwen`` prompt of MERTools (``toolkit/utils/qwen.py``): description -> OV label list.
OPENSET_PROMPT = (
    "Please assume the role of an expert in the field of emotions. We provide clues that may be related to the "
    "emotions of the characters. Based on the provided clues, please identify the emotional states of the main "
    "character. The main character is the one with the most detailed clues. Please separate different emotional "
    "categories with commas and output only the clearly identifiable emotional categories in a list format. If none "
    "are identified, please output an empty list. Input: We cannot recognize his emotional state; Output: [] Input: "
    "His emotional state is happy, sad, and angry; Output: [happy, sad, angry] Input: {reason}; Output: "
)

_PREFIXES = ("输入", "输出", "翻译", "让我们来翻译一下：", "output", "Output", "input", "Input")


def postprocess_qwen(response: str) -> str:
    """``func_postprocess_qwen``: strip, drop one leading "Input"/"Output"-style prefix (checked in the official
    order, each at most once), a leading colon, and every newline."""
    response = response.strip()
    for prefix in _PREFIXES:
        if response.startswith(prefix):
            response = response[len(prefix):]
    response = response.strip()
    for colon in (":", "："):
        if response.startswith(colon):
            response = response[len(colon):]
    return response.strip().replace("\n", "").strip()


def extract_openset(descriptions: Sequence[str], chat: Callable[[list[dict]], str]) -> list[str]:
    """MER-DES step 1: each description -> an OV label list string, with :data:`OPENSET_PROMPT` in one user turn
    (as ``get_completion_qwen_bacth``) and :func:`postprocess_qwen`. ``chat(messages) -> reply`` is the LLM."""
    return [postprocess_qwen(chat([{"role": "user", "content": OPENSET_PROMPT.format(reason=d)}]))
            for d in descriptions]


# ----------------------------------------------------------------------------------------------------------------
# MER-FG of the OV-MER zero-shot baselines: published cells derived from the OV-MER table (counted there)
# ----------------------------------------------------------------------------------------------------------------
#: MER-FG's three printed columns.
MERFG_COLUMNS = ("L1", "L2", "mean")

#: Where the MER-FG values of the OV-MER baselines are counted: the AffectGPT chapter scores the OV-MER cells they
#: are averaged from, so they are shown here and counted there, once.
MERFG_COUNTED_IN = "affectgpt/ovmer"


def merfg_from_wheel_cells(wheel_cells: Mapping[str, float]) -> dict[str, float]:
    """MER-FG ``L1``, ``L2``, ``mean`` from one model's OV-MER wheel cells ``{"W1 L1": ..., "W5 L2": ...}``: the
    mean over the five wheels at each level (``ew_scores`` averages F over wheels the same way), and their mean."""
    l1 = float(np.mean([wheel_cells[f"W{k} L1"] for k in range(1, 6)]))
    l2 = float(np.mean([wheel_cells[f"W{k} L2"] for k in range(1, 6)]))
    return {"L1": l1, "L2": l2, "mean": (l1 + l2) / 2}


def merfg_published(ov_table, models: Sequence[str]):
    """The MER-FG cells of ``models`` derived from the OV-MER table (``published.load("affectgpt").table("ovmer")``):
    a :class:`~compendium.published.PublishedTable` with basis ``derived`` (how: :func:`merfg_from_wheel_cells`),
    counted in :data:`MERFG_COUNTED_IN`, without a tolerance (the OV-MER table's ± std is not transcribed)."""
    wide = ov_table.wide()
    cells = []
    for model in models:
        for column, value in merfg_from_wheel_cells(wide.loc[model]).items():
            cells.append({"row": model, "column": column, "value": round(value, 4)})
    return PublishedTable(
        paper="mer2025", id="merfg_ovmerd",
        title="MER-FG [L1, L2, mean] of the OV-MER zero-shot baselines on OV-MERD (x100)",
        source=f"derived from {ov_table.source}", cells=cells, decimals=2, unit="%", basis="derived",
        basis_note="mean over the five wheels of the OV-MER table's W k L1 (L1) and W k L2 (L2) cells, and their "
                   "mean: MER-FG's definition applied to the published per-wheel values",
        counted_in=MERFG_COUNTED_IN)


def merfg_measured(ov_scores: pd.DataFrame) -> dict:
    """``{(model, column): value}`` of MER-FG from :func:`compendium.emotion.unibench.score_ov_mer_baselines`."""
    return {(model, column): value for model in ov_scores.index
            for column, value in merfg_from_wheel_cells(ov_scores.loc[model]).items()}


# ----------------------------------------------------------------------------------------------------------------
# MER-DES with a deterministic extractor: free text -> emotion-wheel labels, no language model
# ----------------------------------------------------------------------------------------------------------------
#: Words that cancel an emotion word found within :data:`NEGATION_WINDOW` tokens after them ("not happy",
#: "neither too happy nor too sad"), plus any token ending in "n't".
NEGATORS = frozenset({"not", "no", "never", "neither", "nor", "without", "hardly", "cannot", "lack", "lacks"})
NEGATION_WINDOW = 3
#: Word stems that mark a sentence as stating an emotional state ("appears", "seems", "suggests", "inferred",
#: "feeling", "emotional state", "expression", "mood"): only such sentences are read, because the descriptions
#: also describe the scene ("a bright room", "her mouth is open"), which the LLM extraction is asked to ignore.
CUE_STEMS = ("emotion", "feel", "mood", "state", "express", "appear", "seem", "infer", "suggest", "indicat", "sens")

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")


def emotion_lexicon(wheels: EmotionWheels, scope: str = "wheel") -> dict[str, int]:
    """Word forms (lower case, possibly several words) an extractor looks for -> their number of words.

    ``scope="wheel"``: the forms (``format.csv``) whose name is a word of one of the five wheels ("frustration" ->
    frustrated); ``"all"``: every form in ``format.csv`` (the 1,255 GPT synonyms' forms as well, which include scene
    words such as "related" or "intense")."""
    if scope not in ("wheel", "all"):
        raise ValueError(f"scope must be 'wheel' or 'all', got {scope!r}")
    words = wheels.words
    return {form: len(form.split()) for form, names in wheels.format_mapping.items()
            if scope == "all" or any(n in words for n in names)}


def extract_wheel_labels(text: str, lexicon: Mapping[str, int], *, cue_stems: Sequence[str] = CUE_STEMS,
                         negation_window: int = NEGATION_WINDOW) -> list[str]:
    """Emotion words of a free-text description, in order of first appearance, without repeats.

    Per sentence (split after ``. ! ? ;``) that contains one of ``cue_stems`` (all sentences if it is empty): tokens
    are lower-case words; at each position the longest lexicon entry (up to its longest entry's length) wins; an
    entry preceded within ``negation_window`` tokens by a negator (:data:`NEGATORS`, or a token ending in "n't") is
    dropped. Deterministic: the same text always gives the same list.
    """
    longest = max(lexicon.values(), default=1)
    found: list[str] = []
    for sentence in _SENTENCE.split(text.lower()):
        if cue_stems and not any(stem in sentence for stem in cue_stems):
            continue
        tokens = _TOKEN.findall(sentence)
        i = 0
        while i < len(tokens):
            match = next((" ".join(tokens[i:i + n]) for n in range(min(longest, len(tokens) - i), 0, -1)
                          if " ".join(tokens[i:i + n]) in lexicon), None)
            if match is None:
                i += 1
                continue
            before = tokens[max(0, i - negation_window):i]
            if not any(t in NEGATORS or t.endswith("n't") for t in before) and match not in found:
                found.append(match)
            i += lexicon[match]
    return found


def as_list_string(labels: Sequence[str]) -> str:
    """``["happy", "sad"]`` -> ``"[happy, sad]"``, the format of the published OV label lists."""
    return "[" + ", ".join(labels) + "]"


def merdes_lexicon_scores(
    ovmer_dir: str | Path,
    labels: Mapping[str, str],
    wheels: EmotionWheels,
    models: Sequence[str],
    *,
    scope: str = "wheel",
    setting: str = "nosubtitle-addsub",
) -> pd.DataFrame:
    """MER-DES scores of the published descriptions with :func:`extract_wheel_labels` in place of Qwen2.5-7B.

    For each model: its descriptions (``results-ovmerd/<model>/output-reason-7b-{setting}-eng.npz``) and Qwen's
    published label lists for them (``...-eng-openset.npz``), on the samples with a label in ``labels``. Returns one
    row per model (percent): ``lexicon L1/L2/mean`` (MER-FG of the lexicon lists against the true labels), ``Qwen
    L1/L2/mean`` (the same for Qwen's lists: the published extraction), ``agreement`` (MER-FG mean of the lexicon
    lists scored against Qwen's lists as reference), ``empty`` (share of descriptions giving no label) and ``n``.
    """
    root = Path(ovmer_dir)
    if (root / "results-ovmerd").is_dir():
        root = root / "results-ovmerd"
    lexicon = emotion_lexicon(wheels, scope)
    rows = []
    for model in models:
        base = root / model / f"output-reason-7b-{setting}-eng"
        descriptions = load_descriptions(base.with_name(base.name + ".npz"))
        qwen = load_openset_npz(base.with_name(base.name + "-openset.npz"))
        names = [n for n in labels if n in descriptions and n in qwen]
        extracted = [extract_wheel_labels(descriptions[n], lexicon) for n in names]
        ours = [as_list_string(x) for x in extracted]
        truth = [labels[n] for n in names]
        lex = merfg_scores(truth, ours, wheels)
        ref = merfg_scores(truth, [qwen[n] for n in names], wheels)
        agree = merfg_scores([qwen[n] for n in names], ours, wheels)
        rows.append({"model": model, **{f"lexicon {k}": 100 * v for k, v in lex.items()},
                     **{f"Qwen {k}": 100 * v for k, v in ref.items()}, "agreement": 100 * agree["mean"],
                     "empty": float(np.mean([not x for x in extracted])), "n": len(names)})
    return pd.DataFrame(rows).set_index("model")


def rank_agreement(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Spearman's rank correlation of two score lists (e.g. the models' MER-DES by two extractors), with its
    two-sided p-value and ``n``."""
    from scipy.stats import spearmanr

    if len(a) != len(b) or len(a) < 3:
        raise ValueError(f"need two lists of the same length >= 3, got {len(a)} and {len(b)}")
    result = spearmanr(a, b)
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": len(a)}


# ----------------------------------------------------------------------------------------------------------------
# Readings: the chapter's text, generated from the measured tables
# ----------------------------------------------------------------------------------------------------------------
def parser_reading(official: Mapping[str, float], literal: Mapping[str, float]) -> str:
    """Markdown: how much the official quote-splitting list parser moves the MER2024 OV average."""
    gap = 100 * (literal["average"] - official["average"])
    return (f"The values depend on the official list parser, which splits on quote characters: \"don't believe\" "
            f"becomes \"don\" + \"t believe\". Reading the lists literally moves the average by {gap:+.2f} points "
            f"({official['average']:.7f} → {literal['average']:.7f}).")


def merfg_reading(cells: pd.DataFrame) -> str:
    """Markdown: the MER-FG comparison of the OV-MER baselines (``cells``: compare() rows of the derived table)."""
    measured = cells[cells["reproduced"].notna()]
    counts = measured["verdict"].value_counts()
    means = measured[measured["column"] == "mean"]
    rho = rank_agreement(list(means["published"]), list(means["reproduced"]))["rho"]
    return (f"{len(measured)} MER-FG cells recomputed: {int(counts.get('exact', 0))} exact, "
            f"{int(counts.get('differs', 0))} differ (mean difference {measured['difference'].mean():+.2f}, "
            f"largest {measured['difference'].abs().max():.2f} points); the ten models' MER-FG means rank alike "
            f"(Spearman {rho:.2f}). These cells are derived from the OV-MER table and counted on the AffectGPT page, "
            "where the residuals are traced to the released extraction runs and to the wheel columns.")


def merdes_reading(wheel_scope: pd.DataFrame, all_scope: pd.DataFrame) -> str:
    """Markdown: how well the deterministic extractor stands in for the Qwen2.5-7B extraction."""
    rank_wheel = rank_agreement(list(wheel_scope["Qwen mean"]), list(wheel_scope["lexicon mean"]))
    rank_all = rank_agreement(list(all_scope["Qwen mean"]), list(all_scope["lexicon mean"]))
    gap = (wheel_scope["lexicon mean"] - wheel_scope["Qwen mean"])
    return (
        f"With the wheel-word lexicon the extractor ranks the {rank_wheel['n']} models with Spearman "
        f"{rank_wheel['rho']:.2f} (p = {rank_wheel['p']:.3f}) against the published Qwen2.5-7B extraction; with every "
        f"word form of `format.csv` it falls to {rank_all['rho']:.2f} (p = {rank_all['p']:.2f}), because scene words "
        f"(\"related\", \"intense\", \"strong\") then count as emotions. Its MER-DES scores sit "
        f"{gap.min():+.2f} to {gap.max():+.2f} points from Qwen's (mean {gap.mean():+.2f}), and its lists agree with "
        f"Qwen's at MER-FG {wheel_scope['agreement'].min():.1f}–{wheel_scope['agreement'].max():.1f}. "
        + ("It orders the describers much as the LLM does (the rank correlation's p-value is below 0.05)"
           if rank_wheel["p"] < 0.05 and rank_wheel["rho"] > 0 else
           "Its ranking of the describers is not distinguishable from chance at 10 models (p ≥ 0.05)")
        + (f", with a narrower spread (standard deviation over models {wheel_scope['lexicon mean'].std():.2f} "
           f"against {wheel_scope['Qwen mean'].std():.2f})" if wheel_scope["lexicon mean"].std()
           < wheel_scope["Qwen mean"].std() else "")
        + ". Its scores are labelled *substitute* and get no verdict on a published number.")


# ----------------------------------------------------------------------------------------------------------------
# Track 1: the chapter's runs (data source, modality settings, the random search)
# ----------------------------------------------------------------------------------------------------------------
#: The modality settings of MERTools' ``run-unimodal.sh`` / ``run-multimodal.sh`` (a unimodal run feeds one feature
#: three times), for the modalities a data set has.
SETTINGS = {"A": ("audio",) * 3, "T": ("text",) * 3, "V": ("video",) * 3, "AVT": ("audio", "text", "video")}


def track1_settings(data: Track1Data) -> dict[str, tuple[str, ...]]:
    """The settings of :data:`SETTINGS` whose modalities ``data`` has (GoEmotions: text only)."""
    return {name: mods for name, mods in SETTINGS.items() if set(mods) <= set(data.train)}


def goemotions_track1(ekman_dir: str | Path, num_train: int, num_test: int, seed: int,
                      encode: Callable[[list[str]], np.ndarray]) -> Track1Data:
    """The real text substitute of track 1: GoEmotions comments as MER classes (:func:`goemotions_as_mer`,
    class-stratified subsets of ``num_train`` / ``num_test``), encoded by ``encode`` (texts -> (N, d) sentence
    embeddings; the chapter passes all-MiniLM-L6-v2)."""
    train = goemotions_as_mer(ekman_dir, "train", limit=num_train, seed=seed)
    test = goemotions_as_mer(ekman_dir, "test", limit=num_test, seed=seed)
    return Track1Data(
        train={"text": np.asarray(encode(list(train.text)))}, y_train=train.y.to_numpy(),
        test={"text": np.asarray(encode(list(test.text)))}, y_test=test.y.to_numpy(),
        origin=f"SUBSTITUTE: GoEmotions comments (Ekman labels as MER classes: fear as worried, disgust dropped), "
               f"all-MiniLM-L6-v2 embeddings; {len(train)} train / {len(test)} test; not MER2025")


def random_search(data: Track1Data, settings: Mapping[str, Sequence[str]], num_runs: int, num_epochs: int,
                  seed: int, *, log: Callable[[str], None] | None = print) -> tuple[pd.DataFrame, dict]:
    """The official protocol's random search: ``num_runs`` draws of :func:`random_config` (a ``random.Random(seed)``
    stream; run ``r`` trains with seed ``seed + r``), each cross-validated (:func:`cross_validate`) on every setting.

    Returns a table (one row per run x setting: the drawn hyper-parameters, CV WAF / accuracy, the kept epochs, and
    with test labels the test WAF of logit-averaged and probability-averaged fold outputs; percent) and the
    :class:`CVResult` of each ``(run, setting)``. ``log`` receives one line per finished run (None: silent)."""
    rng = random.Random(seed)
    rows, results = [], {}
    for r in range(num_runs):
        cfg = random_config(rng, num_epochs=num_epochs, seed=seed + r)
        for name, mods in settings.items():
            x_train, x_test = data.inputs(list(mods))
            res = cross_validate(x_train, data.y_train, cfg, x_test if len(data.test) else None, data.y_test)
            results[(r, name)] = res
            row = {"run": r, "setting": name, "hidden": cfg.hidden_dim, "dropout": cfg.dropout, "lr": cfg.lr,
                   "CV WAF": 100 * res.cv_waf, "CV acc": 100 * res.cv_acc,
                   "best epochs": "/".join(str(e) for e in res.folds.best_epoch)}
            if res.test_waf is not None:
                row.update({"test WAF (logit avg)": 100 * res.test_waf, "test acc": 100 * res.test_acc,
                            "test WAF (prob avg)": 100 * res.test_scores("probs")["waf"]})
            rows.append(row)
            if log is not None:
                log(f"run {r} {name:4s} hidden {cfg.hidden_dim:3d} dropout {cfg.dropout} lr {cfg.lr:g}: "
                    f"CV WAF {100 * res.cv_waf:.2f}")
    return pd.DataFrame(rows), results
