"""FLOPs of Vim and DyVM: the papers' analytic count, and a hook-based count that checks it.

Convention of the papers (DyVM ``calc_flops.py``, R-MeeTo ``calculate_flop_inference``):
1 multiply-accumulate = 1 "FLOP"; batch 1; norms, activations, additions and the position
embedding are not counted. Per Vim block with l tokens, d = d_model, E = expand * d,
N = d_state, R = dt_rank, K = d_conv:

    in_proj  = l d 2E          conv1d  = (l + K - 1) E K      x_proj   = l E (R + 2N)
    dt_proj  = l R E           scan    = 9 l E N + 2 l E      out_proj = l E d

(the scan term is 9 L D N from state-spaces/mamba issue #110 plus the D skip and the z
gate). The published Vim FLOPs (1.45 / 5.08 / 18.87 G for Ti / S / B, as printed in the
R-MeeTo and DyVM tables) count conv1d, x_proj, dt_proj and the scan **once** per block
although bimamba-v2 runs them for both directions; ``both_directions=True`` counts both.

DyVM (arXiv 2504.04787) multiplies those four per-direction terms by the measured block
keep ratio beta, uses the pruned sequence lengths after each pruning location, and adds
the token predictors, n (d^2 + d^2/2 + d^2/8 + d/2) for n tokens entering a predictor.
"""
from __future__ import annotations

import math
import re
from typing import Iterable, Optional

import torch
from torch import nn

from .selective_scan import SelectiveScan
from .vim import CausalConv1d, VimConfig

__all__ = [
    "block_flops",
    "vim_flops",
    "dyvm_token_schedule",
    "dyvm_flops",
    "predictor_flops",
    "count_flops",
]


def block_flops(l: int, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                dt_rank: Optional[int] = None, directions: int = 1,
                ssm_scale: float = 1.0) -> dict[str, float]:
    """Per-term MACs of one Vim block on ``l`` tokens.

    ``directions`` (1 as published, 2 for what bimamba-v2 executes) multiplies the
    direction-specific terms (conv1d, x_proj, dt_proj, scan); ``ssm_scale`` multiplies
    them further (DyVM's block keep ratio).
    """
    d, N, K = d_model, d_state, d_conv
    E = expand * d
    R = dt_rank if dt_rank is not None else math.ceil(d / 16)
    k = directions * ssm_scale
    return {
        "in_proj": l * d * 2 * E,
        "conv1d": k * (l + K - 1) * E * K,
        "x_proj": k * l * E * (R + 2 * N),
        "dt_proj": k * l * R * E,
        "scan": k * (9 * l * E * N + 2 * l * E),
        "out_proj": l * E * d,
    }


def _stem_head(cfg: VimConfig) -> dict[str, int]:
    return {"patch_embed": cfg.num_patches * cfg.embed_dim * cfg.in_chans * cfg.patch_size ** 2,
            "head": cfg.embed_dim * cfg.num_classes}


def vim_flops(cfg: VimConfig, both_directions: bool = False, breakdown: bool = False):
    """Analytic MACs of a Vim forward pass on one image (the published convention by default).

    Vim-Ti / S / B at 224 x 224: 1,448,965,632 / 5,076,593,664 / 18,867,836,928.
    """
    blk = block_flops(cfg.num_tokens, cfg.embed_dim, cfg.d_state, cfg.d_conv, cfg.expand,
                      cfg.dt_rank_, directions=2 if both_directions else 1)
    terms = {k: cfg.depth * v for k, v in blk.items()}
    terms.update(_stem_head(cfg))
    total = sum(terms.values())
    total = int(total) if float(total).is_integer() else total
    return (total, terms) if breakdown else total


def dyvm_token_schedule(num_patches: int = 196, keep_ratio: float = 0.7, stages: int = 3) -> list[int]:
    """Non-class tokens kept after each pruning stage: int(num_patches * rho**s), s = 1..stages.

    196 patches, rho = 0.7 -> [137, 96, 67] (sequence lengths 138 / 97 / 68 with the class token).
    """
    return [int(keep_ratio ** s * num_patches) for s in range(1, stages + 1)]


def predictor_flops(n_tokens: int, d: int) -> int:
    """MACs of DyVM's ``PredictorLG`` (Linear d->d, d->d/2, d/2->d/4, d/4->2) on n tokens."""
    return n_tokens * (d * d + d * (d // 2) + (d // 2) * (d // 4) + (d // 4) * 2)


def dyvm_flops(cfg: VimConfig, keep_ratio: float = 0.7, block_keep_ratio: float = 1.0,
               pruning_loc: Iterable[int] = (6, 12, 18), breakdown: bool = False):
    """Analytic MACs of DyVM on one image, following the DyVM repository's ``calc_flops.py``.

    ``block_keep_ratio`` is beta, the fraction of scan directions kept; the paper's
    FLOPs use the *measured* test-set mean of the gates, not the training target.
    """
    loc = sorted(pruning_loc)
    kept = dyvm_token_schedule(cfg.num_patches, keep_ratio, len(loc))
    terms: dict[str, float] = {}
    for i in range(cfg.depth):
        stage = sum(1 for p in loc if p <= i)
        l = cfg.num_tokens if stage == 0 else kept[stage - 1] + 1
        blk = block_flops(l, cfg.embed_dim, cfg.d_state, cfg.d_conv, cfg.expand, cfg.dt_rank_,
                          directions=1, ssm_scale=block_keep_ratio)
        for k, v in blk.items():
            terms[k] = terms.get(k, 0) + v
    entering = [cfg.num_patches] + kept[:-1]
    terms["predictors"] = sum(predictor_flops(n, cfg.embed_dim) for n in entering)
    terms.update(_stem_head(cfg))
    total = sum(terms.values())
    return (total, terms) if breakdown else total


# ----------------------------------------------------------------------------------------
# Hook-based counter
# ----------------------------------------------------------------------------------------
def _module_macs(module: nn.Module, inputs, output) -> int:
    if isinstance(module, nn.Linear):
        return inputs[0].numel() // module.in_features * module.in_features * module.out_features
    if isinstance(module, CausalConv1d):   # (B, L, E) in; counts the K-1 padded outputs too
        b, l, e = inputs[0].shape
        k = module.kernel_size[0]
        return b * (l + k - 1) * e * k
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        k = math.prod(module.kernel_size)
        return output.numel() * (module.in_channels // module.groups) * k
    if isinstance(module, SelectiveScan):
        u, A = inputs[0], inputs[2]
        b, d, l = u.shape
        n = A.shape[1]
        macs = 9 * b * d * l * n
        macs += b * d * l * (int(len(inputs) > 5 and inputs[5] is not None)
                             + int(len(inputs) > 6 and inputs[6] is not None))
        return macs
    return 0


@torch.no_grad()
def count_flops(model: nn.Module, x: torch.Tensor, directions: str = "both",
                exclude: Iterable[str] = (), per_sample: bool = True) -> dict[str, float]:
    """Count MACs by running ``model(x)`` with forward hooks on Linear, Conv and scans.

    ``directions="forward"`` skips the backward-direction modules (names ending in
    ``_b``), which gives the published convention. ``exclude``: regular expressions of
    module names to skip (e.g. ``"block_head"``). Works on the ``meta`` device.
    Returns {module name: MACs} plus "total"; divided by the batch size if ``per_sample``.
    """
    if directions not in ("both", "forward"):
        raise ValueError("directions must be 'both' or 'forward'")
    pats = [re.compile(p) for p in exclude]
    counts: dict[str, float] = {}
    handles = []
    for name, m in model.named_modules():
        if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, SelectiveScan)):
            continue
        if directions == "forward" and name.endswith("_b"):
            continue
        if any(p.search(name) for p in pats):
            continue

        def hook(mod, inp, out, name=name):
            counts[name] = counts.get(name, 0) + _module_macs(mod, inp, out)
        handles.append(m.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    scale = x.shape[0] if per_sample else 1
    out = {k: v / scale for k, v in counts.items()}
    out["total"] = sum(out.values())
    return out
