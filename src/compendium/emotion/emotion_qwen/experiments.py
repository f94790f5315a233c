"""Emotion-Qwen (Huang et al., arXiv 2505.06685): the Hybrid Compressor and the published scoring scripts' parsers.

Sources (``../shared/research/emotion.md`` section 4): ``24DavidHuang/Emotion-Qwen`` @ ``8c52bf3`` holds the README
(architecture figure ``images/Emotion-Qwen.png``), training and evaluation scripts, and no modelling code (it ships
inside the Google-Drive checkpoint). A third-party, hook-verified module map (**unconfirmed**) names the top-level
modules ``vpm`` (Qwen2.5-VL ViT, width 1280), ``llm`` (Qwen2.5-7B, 3584), ``generalcompressor`` and
``emotioncompressor`` (``MoECompressor``), ``gatenet`` (``GateNetWithAttention``), and reports vision tokens
[5376, 1280] for a 4x28x48 patch grid mapped by each compressor to [1344, 3584].

**Hybrid Compressor, as described** (:class:`HybridCompressor`):

- two expert compressors, each merging 2x2 neighbouring patch tokens into one LLM token. Here each expert *is*
  transformers' ``Qwen2_5_VLPatchMerger`` (RMSNorm, then Linear(4*1280 -> 4*1280), GELU, Linear(-> 3584)), so the
  general expert can load the merger of a real Qwen2.5-VL checkpoint; the emotion expert starts as a copy;
- a gating network (:class:`GateNetWithAttention`): multi-head self-attention over the vision tokens, mean-pooled
  per image, then [Linear -> ReLU -> LayerNorm] x 2 and a Linear to one weight per expert; the output is the soft
  sum w_emotion * Emotion(x) + w_general * General(x) (a dense mixture, not top-k routing);
- **assumptions** (not in the sources): the weights are normalised with a softmax (``normalise="sigmoid"`` and
  ``"none"`` are offered), there is no auxiliary balancing loss, the gate sees the unmerged ViT output tokens of
  its own image (the probe *suggests* ``vision_features.mean(0)``; ``pool_first=True`` does that), the gate's
  hidden width equals the vision width.

:func:`build_hybrid_vision_model` puts the compressor in place of the merger of
``Qwen2_5_VisionTransformerPretrainedModel``; :func:`load_vision_weights` maps Qwen2.5-VL checkpoint keys
(``visual.*`` / ``model.visual.*``) and Emotion-Qwen's top-level names (``vpm.*``, ``generalcompressor.*``,
``emotioncompressor.*``, ``gatenet.*``) onto it and reports what did not match.

**Parsers of the published evaluation scripts** (``emotion_benchmarks/DFEW/dfew_emotion_*.py``,
``emotion_benchmarks/MER2024/MER2024_*.py``), faithful and corrected:

- DFEW: the prediction is the ground-truth word if it occurs *anywhere* in the reply (substring, so "unhappy"
  counts as happy and a reply listing several emotions is always right), else ``"none"``; UAR =
  ``recall_score(average="macro")`` over the labels present in truth *or prediction*, so once any reply misses,
  ``"none"`` becomes an eighth class with recall 0 and UAR = (sum of 7 recalls) / 8;
- MER2024: ``max((emotion in reply, emotion) for emotion in classes)[1]``: with no match the prediction is
  ``"worried"`` (the lexicographic maximum), with several matches the alphabetically last one;
- corrected: the first class word that occurs as a whole word (case-insensitive), else ``"none"`` (wrong); UAR over
  the true classes only.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score, recall_score
from torch import nn

__all__ = [
    "DFEW_CLASSES",
    "MER2024_CLASSES",
    "GateNetWithAttention",
    "HybridCompressor",
    "build_hybrid_vision_model",
    "count_parameters",
    "dfew_predict",
    "dfew_scores",
    "load_vision_weights",
    "mer2024_predict",
    "mer2024_scores",
    "qwen25vl_7b_vision_config",
]

#: ``emotion_list`` of the DFEW scripts; label ids 1..7 index it.
DFEW_CLASSES = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
#: ``emotion_list`` of the MER2024 scripts.
MER2024_CLASSES = ("happy", "sad", "neutral", "angry", "surprise", "worried")


# ----------------------------------------------------------------------------------------------------------------
# The Hybrid Compressor
# ----------------------------------------------------------------------------------------------------------------
class GateNetWithAttention(nn.Module):
    """Gate over experts: tokens (N, d) of one image -> MHSA -> mean -> [Linear, ReLU, LayerNorm] x 2 -> Linear -> E.

    ``forward(x, segments)`` returns (S, E) weights, one row per segment (image or video) of ``segments`` token
    counts (one segment if None). ``normalise``: "softmax" (assumed), "sigmoid" or "none". ``pool_first`` averages
    the tokens before the attention (then attention over a single token is a linear map)."""

    def __init__(self, dim: int, num_experts: int = 2, num_heads: int = 8, hidden: int | None = None,
                 normalise: str = "softmax", pool_first: bool = False):
        super().__init__()
        if normalise not in ("softmax", "sigmoid", "none"):
            raise ValueError(f"normalise must be softmax, sigmoid or none, got {normalise!r}")
        hidden = hidden or dim
        self.normalise, self.pool_first = normalise, pool_first
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.LayerNorm(hidden),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.LayerNorm(hidden))
        self.out = nn.Linear(hidden, num_experts)

    def pooled(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, N, d) tokens, mask (B, N) True = real token -> (B, d) attended, mean-pooled features."""
        if self.pool_first:
            x = _masked_mean(x, mask).unsqueeze(1)
            mask = None
        a, _ = self.attn(x, x, x, key_padding_mask=None if mask is None else ~mask, need_weights=False)
        return _masked_mean(a, mask)

    def weights(self, pooled: torch.Tensor) -> torch.Tensor:
        logits = self.out(self.mlp(pooled))
        if self.normalise == "softmax":
            return torch.softmax(logits, dim=-1)
        if self.normalise == "sigmoid":
            return torch.sigmoid(logits)
        return logits

    def forward(self, x: torch.Tensor, segments: Sequence[int] | None = None) -> torch.Tensor:
        if x.dim() == 3:  # batched (B, N, d)
            return self.weights(self.pooled(x))
        parts = torch.split(x, list(segments)) if segments is not None else (x,)
        return torch.cat([self.weights(self.pooled(p.unsqueeze(0))) for p in parts])


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean(1)
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


class HybridCompressor(nn.Module):
    """Soft mixture of two compressors: out = w_general * general(x) + w_emotion * emotion(x).

    Called like ``Qwen2_5_VLPatchMerger``: x (N, d_vision) -> (N / 4, d_llm), with the gate computed per segment
    (:meth:`set_segments`, token counts per image in order; one segment if unset). ``last_weights`` keeps the
    (S, 2) gate output of the last call, columns (general, emotion). ``merge_unit`` = spatial_merge_size ** 2."""

    EXPERTS = ("general", "emotion")

    def __init__(self, general: nn.Module, emotion: nn.Module, gate: GateNetWithAttention, merge_unit: int = 4):
        super().__init__()
        self.general, self.emotion, self.gate = general, emotion, gate
        self.merge_unit = merge_unit
        self._segments: list[int] | None = None
        self.last_weights: torch.Tensor | None = None

    def set_segments(self, segments: Sequence[int] | None) -> None:
        self._segments = None if segments is None else [int(s) for s in segments]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        segments = self._segments or [x.shape[0]]
        if sum(segments) != x.shape[0]:
            raise ValueError(f"segments {segments} do not add up to {x.shape[0]} tokens")
        w = self.gate(x, segments)  # (S, 2)
        self.last_weights = w.detach()
        per_token = torch.repeat_interleave(w, torch.tensor([s // self.merge_unit for s in segments],
                                                            device=x.device), dim=0)  # (N/4, 2)
        return per_token[:, :1] * self.general(x) + per_token[:, 1:2] * self.emotion(x)

    def forward_batched(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched form for fixed-length inputs: x (B, N, d), mask (B, N) -> ((B, N/4, d_llm), weights (B, 2)).

        The experts see ``x.reshape(B * N, d)`` (consecutive groups of ``merge_unit`` tokens are merged)."""
        b, n, d = x.shape
        pooled = self.gate.pooled(x, mask)
        w = self.gate.weights(pooled)
        flat = x.reshape(b * n, d)
        g = self.general(flat).reshape(b, n // self.merge_unit, -1)
        e = self.emotion(flat).reshape(b, n // self.merge_unit, -1)
        return w[:, :1, None] * g + w[:, 1:2, None] * e, w


def qwen25vl_7b_vision_config(**overrides):
    """The vision config of Qwen2.5-VL-7B-Instruct (transformers' defaults for ``Qwen2_5_VLVisionConfig``, with
    width 1280): depth 32, hidden 1280, MLP 3420, 16 heads, patch 14, temporal patch 2, merge 2, window 112,
    full-attention blocks 7/15/23/31, output 3584. ``overrides`` change any field (e.g. ``depth=2``)."""
    from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig

    base = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                patch_size=14, temporal_patch_size=2, spatial_merge_size=2, window_size=112,
                fullatt_block_indexes=[7, 15, 23, 31], hidden_act="silu")
    base.update(overrides)
    return Qwen2_5_VLVisionConfig(**base)


def build_hybrid_vision_model(config=None, *, gate_heads: int = 16, gate_hidden: int | None = None,
                              normalise: str = "softmax", pool_first: bool = False):
    """A ``Qwen2_5_VisionTransformerPretrainedModel`` whose ``merger`` is a :class:`HybridCompressor`.

    ``merger.general`` is the model's own ``Qwen2_5_VLPatchMerger``; ``merger.emotion`` a deep copy of it (same
    initial weights); ``merger.gate`` a :class:`GateNetWithAttention` over the vision width. A forward pre-hook
    reads ``grid_thw`` so the gate weighs each image separately. ``pooler_output`` of the model is the merged
    token sequence (N / 4, out_hidden_size), as for Qwen2.5-VL."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    config = config or qwen25vl_7b_vision_config()
    model = Qwen2_5_VisionTransformerPretrainedModel(config)
    general = model.merger
    gate = GateNetWithAttention(config.hidden_size, 2, gate_heads, gate_hidden, normalise, pool_first)
    model.merger = HybridCompressor(general, copy.deepcopy(general), gate, config.spatial_merge_size ** 2)

    def _segments_hook(module, args, kwargs):
        grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
        if grid is not None:
            module.merger.set_segments([int(t * h * w) for t, h, w in grid.tolist()])

    model.register_forward_pre_hook(_segments_hook, with_kwargs=True)
    return model


_KEY_RULES = (
    # Emotion-Qwen top-level names (unconfirmed module map) -> this model
    (re.compile(r"^(?:model\.)?generalcompressor\."), "merger.general."),
    (re.compile(r"^(?:model\.)?emotioncompressor\."), "merger.emotion."),
    (re.compile(r"^(?:model\.)?gatenet\."), "merger.gate."),
    (re.compile(r"^(?:model\.)?vpm\."), ""),
    # Qwen2.5-VL checkpoints: the single merger initialises the general expert (and the emotion copy)
    (re.compile(r"^(?:model\.)?visual\.merger\."), "merger.general."),
    (re.compile(r"^(?:model\.)?visual\."), ""),
)


@dataclass
class LoadReport:
    loaded: list[str]
    missing: list[str]
    unexpected: list[str]
    shape_mismatch: list[str]


def load_vision_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, copy_general_to_emotion: bool
                        = True) -> LoadReport:
    """Load a Qwen2.5-VL (``visual.*`` / ``model.visual.*``) or Emotion-Qwen (``vpm.*``, ``generalcompressor.*``,
    ``emotioncompressor.*``, ``gatenet.*``) state dict into a :func:`build_hybrid_vision_model` model.

    Keys outside the vision part (``llm.*``, ``lm_head.*``, ``model.language_model.*``) are ignored. When the
    checkpoint has no emotion expert, ``copy_general_to_emotion`` initialises it from the general one. Returns which
    model keys were loaded, which stayed missing, and which checkpoint keys matched nothing or had another shape
    (an Emotion-Qwen ``MoECompressor`` whose internals differ from ``Qwen2_5_VLPatchMerger`` shows up here)."""
    own = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected, mismatch = [], []
    for key, value in state_dict.items():
        for rule, repl in _KEY_RULES:
            if rule.match(key):
                new = rule.sub(repl, key, count=1)
                break
        else:
            continue  # language model, lm_head, ...
        if new not in own:
            unexpected.append(key)
        elif tuple(own[new].shape) != tuple(value.shape):
            mismatch.append(f"{key}: {tuple(value.shape)} vs {tuple(own[new].shape)}")
        else:
            mapped[new] = value
    if copy_general_to_emotion and not any(k.startswith("merger.emotion.") for k in mapped):
        for k, v in list(mapped.items()):
            if k.startswith("merger.general."):
                mapped["merger.emotion." + k[len("merger.general."):]] = v.clone()
    model.load_state_dict(mapped, strict=False)
    missing = sorted(k for k in own if k not in mapped)
    return LoadReport(sorted(mapped), missing, unexpected, mismatch)


def read_vision_state_dict(folder) -> dict[str, torch.Tensor]:
    """The vision-side tensors of a local checkpoint folder of ``*.safetensors`` files (keys containing
    ``visual.``, ``vpm.``, ``compressor.`` or ``gatenet.``), as fp32 — the input of :func:`load_vision_weights`."""
    from pathlib import Path

    from safetensors import safe_open

    files = sorted(Path(folder).expanduser().glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors files in {folder}: pass a local Qwen2.5-VL / Emotion-Qwen folder")
    out: dict[str, torch.Tensor] = {}
    for f in files:
        with safe_open(str(f), "pt") as handle:
            for key in handle.keys():
                if any(s in key for s in ("visual.", "vpm.", "compressor.", "gatenet.")):
                    out[key] = handle.get_tensor(key).float()
    return out


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------------------------------------------
# The evaluation scripts' parsers
# ----------------------------------------------------------------------------------------------------------------
def _first_whole_word(response: str, classes: Sequence[str]) -> str:
    text = response.lower()
    hits = [(m.start(), c) for c in classes for m in [re.search(rf"\b{re.escape(c)}\b", text)] if m]
    return min(hits)[1] if hits else "none"


def dfew_predict(response: str, label: str, mode: str = "faithful") -> str:
    """The DFEW prediction: faithful = ``label`` if ``label`` is a substring of the reply else ``"none"``;
    corrected = the first DFEW class that occurs as a whole word, else ``"none"`` (does not look at the label)."""
    if mode == "faithful":
        return label if label.lower() in response.lower() else "none"
    if mode == "corrected":
        return _first_whole_word(response, DFEW_CLASSES)
    raise ValueError(f"mode must be faithful or corrected, got {mode!r}")


def dfew_scores(labels: Sequence[str], responses: Sequence[str], *, matching: str = "faithful",
                uar: str = "faithful") -> dict[str, float]:
    """WAR and UAR of DFEW replies. ``matching`` picks the prediction rule (:func:`dfew_predict`); ``uar``:
    "faithful" = ``recall_score(macro)`` over truth and prediction labels (so "none" can be an 8th class),
    "corrected" = macro recall over the true classes only. WAR = weighted recall = accuracy in both."""
    labels = [str(x).lower() for x in labels]
    preds = [dfew_predict(r, lab, matching) for r, lab in zip(responses, labels)]
    war = recall_score(labels, preds, average="weighted", zero_division=0)
    if uar == "faithful":
        u = recall_score(labels, preds, average="macro", zero_division=0)
    elif uar == "corrected":
        u = recall_score(labels, preds, labels=sorted(set(labels)), average="macro", zero_division=0)
    else:
        raise ValueError(f"uar must be faithful or corrected, got {uar!r}")
    return {"WAR": float(war), "UAR": float(u), "n": len(labels), "none": preds.count("none")}


def mer2024_predict(response: str, mode: str = "faithful") -> str:
    """The MER2024 prediction: faithful = ``max((emotion in reply, emotion) ...)[1]`` over :data:`MER2024_CLASSES`
    (no match -> "worried", several -> the alphabetically last); corrected = first whole-word class, else "none"."""
    if mode == "faithful":
        text = response.lower()
        return max((emotion.lower() in text, emotion) for emotion in MER2024_CLASSES)[1]
    if mode == "corrected":
        return _first_whole_word(response, MER2024_CLASSES)
    raise ValueError(f"mode must be faithful or corrected, got {mode!r}")


def mer2024_scores(labels: Sequence[str], responses: Sequence[str], mode: str = "faithful") -> dict[str, float]:
    """Weighted F1 and accuracy of MER2024 replies (``f1_score(average="weighted")`` as the script)."""
    labels = [str(x).lower() for x in labels]
    preds = [mer2024_predict(r, mode) for r in responses]
    return {"WAF": float(f1_score(labels, preds, average="weighted", zero_division=0)),
            "accuracy": float(accuracy_score(labels, preds)), "n": len(labels),
            "worried by default": sum(p == "worried" and "worried" not in r.lower() for p, r in zip(preds, responses)),
            "none": preds.count("none")}


def strategy_replies(strategy: str, labels: Sequence[str], classes: Sequence[str]) -> list[str]:
    """Replies of simple answer strategies, to show what a scorer rewards on a real label distribution:
    "oracle" (the true word), "every class" (all class words listed), "no class word" (an unparseable reply),
    "always <class>"."""
    if strategy == "oracle":
        return [str(x) for x in labels]
    if strategy == "every class":
        return [", ".join(classes)] * len(labels)
    if strategy == "no class word":
        return ["I cannot tell from this clip."] * len(labels)
    if strategy.startswith("always "):
        return [strategy[len("always "):]] * len(labels)
    raise ValueError(f"unknown strategy {strategy!r}")


def read_dfew_labels(csv_path) -> list[str]:
    """A DFEW ``set_k.csv`` (``video_name,label``, label ids 1..7) -> class words (:data:`DFEW_CLASSES`)."""
    df = pd.read_csv(csv_path)
    if (df["label"] < 1).any():
        raise ValueError("DFEW label ids start at 1")
    return [DFEW_CLASSES[i - 1] for i in df["label"]]


def read_mer2024_labels(csv_path) -> list[str]:
    """``reference-semi.csv`` / ``reference-noise.csv`` (``name,discrete``) -> lower-cased class words."""
    return [str(x).lower() for x in pd.read_csv(csv_path)["discrete"]]


__all__ += ["strategy_replies", "read_dfew_labels", "read_mer2024_labels", "read_vision_state_dict", "LoadReport"]
