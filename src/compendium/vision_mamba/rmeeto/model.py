"""R-MeeTo: merged-token re-training for Vision Mamba.

"Faster Vision Mamba is Rebuilt in Minutes via Merged Token Re-training",
arXiv 2412.12496. Code: NUS-HPC-AI-Lab/R-MeeTo @ 535a826c, ``image_task/R_MeeTo/merge.py``
(``RMeeTo_Merge``), ``image_task/R_MeeTo/RMeeTo_vim.py`` (``RMeeToBlock``,
``RMeeTo_Mamba.calculate_flop_inference``), ``image_task/main.py`` and
``image_task/utils/losses.py``. This is an independent re-implementation on top of our Vim
port (:mod:`compendium.vision_mamba.vim`); parameter names are Vim's, so an official Vim or
R-MeeTo checkpoint loads into :class:`RMeeToVim` unchanged (merging has no parameters).

Merging (ToMe's bipartite soft matching, adapted to a middle class token and a 1-D scan):

1. **Where.** At the *start* of block i (before add + norm + mixer) for i > 0 and
   i % ``merge_interval`` == 0: blocks 2, 4, ..., 22 of a 24-block Vim (11 merge points).
2. **How many.** ``r = num_prune`` tokens per merge point, at most floor((L - 1) / 2):
   Vim-Ti r = 5 (197 -> 142 tokens), Vim-S and Vim-B r = 11 (197 -> 76).
3. **Metric.** The block's input hidden state (the previous block's mixer output, not the
   residual stream), class token removed, L2-normalised.
4. **Matching.** Non-class tokens at even positions form set A, odd positions set B. Each A
   token picks its most cosine-similar B token; the r A tokens with the highest scores are
   merged into their partners, the other A tokens stay.
5. **Combining.** Size-weighted average: x <- sum(size * x) / sum(size) over each group, with
   the token sizes carried from block to block. The residual stream is merged with the same
   plan and the same weights. ``prune=True`` drops the r A tokens instead (the pruning baseline).
6. **Order.** Survivors are re-sorted into their original order (the 1-D scan sees the image
   in raster order, minus the merged tokens); the class token goes back at
   ``int(p * (t - r) // t)`` for a class token at p in a sequence of t tokens. ``ordered=False``
   is the code's unordered variant: [unmerged A tokens by descending score, class token
   inserted at ``int(p * (a - r) // a)`` among them (a = |A|), then all B tokens].

The official code has one more rule, kept here as an option: the argument ``compare``
(default 11) overrides r at the *last* merge point so that the sequence ends at
``197 - 11 * compare`` = 76 tokens (the code hard-codes 197 and 11). With r = 11 this changes
nothing; with Vim-Ti's r = 5 the last merge point merges 71 tokens (147 -> 76) although the
FLOPs function still counts 142 tokens. :class:`MergeConfig` leaves it off by default (the
paper's schedule); ``compare=11`` reproduces the code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bench import compare_throughput
from ..flops import block_flops
from ..vim import Vim, VimConfig

__all__ = [
    "MergeConfig",
    "MergePlan",
    "PAPER_MERGE",
    "bipartite_soft_matching",
    "apply_merge",
    "merge_wavg",
    "merge_sources",
    "merge_points",
    "token_schedule",
    "matching_flops",
    "rmeeto_flops",
    "RMeeToVim",
    "MergeTrace",
    "distill_loss",
    "throughput",
]


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MergeConfig:
    """Where and how R-MeeTo merges tokens (defaults: the code's defaults with r = 5)."""

    num_prune: int = 5            # r, tokens removed at each merge point
    merge_interval: int = 2       # merge before blocks i > 0 with i % interval == 0
    merge_odd: bool = False       # ``--if_merge_odd``: before blocks with (i + 1) % interval == 0
    ordered: bool = True          # ``--if_order``: survivors back in their original order
    prune: bool = False           # ``--if_pruning``: drop the matched A tokens instead of merging
    distance: str = "cosine"      # "cosine" | "l1" | "l2" (scores are -distance for l1/l2)
    choose: int = 1               # match each A token to its k-th best B token (1 = best)
    merge_mode: str = "sum"       # scatter reduction inside the size-weighted average
    compare: Optional[int] = None  # the code's last-merge-point override (11 in the code)

    def to_dict(self) -> dict:
        return asdict(self)


#: The paper's main setting per model (``exp_sh/tab2/vim_{tiny,small,base}.sh``).
PAPER_MERGE = {
    "tiny": MergeConfig(num_prune=5),
    "small": MergeConfig(num_prune=11),
    "base": MergeConfig(num_prune=11),
}


def merge_points(depth: int = 24, merge_interval: int = 2, merge_odd: bool = False) -> list[int]:
    """Indices of the blocks that merge at their start: [2, 4, ..., 22] for 24 blocks."""
    if merge_odd:
        return [i for i in range(1, depth) if (i + 1) % merge_interval == 0]
    return [i for i in range(1, depth) if i % merge_interval == 0]


def _is_last_point(i: int, depth: int, merge_interval: int) -> bool:
    # the code's test: (block_len - block_idx) <= merge_interval
    return depth - i <= merge_interval


# ----------------------------------------------------------------------------------------
# Matching and merging
# ----------------------------------------------------------------------------------------
@dataclass
class MergePlan:
    """The result of bipartite matching on a (B, t, C) sequence with the class token at ``cls_pos``.

    Indices refer to the class-free sequence split into A = even positions and B = odd
    positions: ``src_idx`` (B, r) are the A tokens that disappear, ``dst_idx`` (B, r) the B
    tokens they go into, ``unm_idx`` (B, |A| - r) the A tokens that stay (by descending score).
    """

    r: int
    t: int
    cls_pos: int
    src_idx: Tensor
    dst_idx: Tensor
    unm_idx: Tensor

    @property
    def new_length(self) -> int:
        return self.t - self.r


def bipartite_soft_matching(metric: Tensor, r: int, cls_pos: int, distance: str = "cosine",
                            choose: int = 1) -> Optional[MergePlan]:
    """Match A (even) to B (odd) non-class tokens of ``metric`` (B, t, C); None if r <= 0.

    ``r`` is capped at floor((t - 1) / 2). Ties in the scores are broken by position (stable
    sort), where the official code's order is unspecified.
    """
    t = metric.shape[1]
    r = min(int(r), (t - 1) // 2)
    if r <= 0:
        return None
    with torch.no_grad():
        m = torch.cat([metric[:, :cls_pos], metric[:, cls_pos + 1:]], dim=1).float()
        a, b = m[:, ::2], m[:, 1::2]
        if distance == "cosine":
            a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            b = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            scores = a @ b.transpose(1, 2)
        elif distance in ("l1", "l2"):
            # the code L2-normalises the metric first, whatever the distance
            m = m / m.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            a, b = m[:, ::2], m[:, 1::2]
            scores = -torch.cdist(a, b, p=1 if distance == "l1" else 2)
        else:
            raise ValueError(f"unknown distance {distance!r}")
        if choose == 1:
            best, best_idx = scores.max(dim=-1)
        else:
            k = min(choose, scores.shape[-1])
            vals, idx = scores.sort(dim=-1, descending=True, stable=True)
            best, best_idx = vals[..., k - 1], idx[..., k - 1]
        order = best.argsort(dim=-1, descending=True, stable=True)
        src_idx = order[:, :r]
        unm_idx = order[:, r:]
        dst_idx = best_idx.gather(1, src_idx)
    return MergePlan(r=r, t=t, cls_pos=cls_pos, src_idx=src_idx, dst_idx=dst_idx, unm_idx=unm_idx)


def _take(x: Tensor, idx: Tensor) -> Tensor:
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def apply_merge(x: Tensor, plan: Optional[MergePlan], ordered: bool = True, prune: bool = False,
                mode: str = "sum") -> tuple[Tensor, int]:
    """Apply ``plan`` to a (B, t, C) tensor; returns (merged (B, t - r, C), new class position).

    Merging reduces each group with ``mode`` ("sum" inside :func:`merge_wavg`; "mean",
    "amax", "amin" as in the code's ``merge_mode``); ``prune=True`` drops the A tokens.
    """
    if plan is None:
        return x, None
    p, r = plan.cls_pos, plan.r
    cls = x[:, p:p + 1]
    rest = torch.cat([x[:, :p], x[:, p + 1:]], dim=1)
    a, b = rest[:, ::2], rest[:, 1::2]
    unm = _take(a, plan.unm_idx)
    if not prune:
        src = _take(a, plan.src_idx)
        b = b.scatter_reduce(1, plan.dst_idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]), src,
                             reduce=mode, include_self=True)
    if ordered:
        # positions in the class-free sequence: A token j was at 2j, B token j at 2j + 1
        pos = torch.cat([2 * plan.unm_idx,
                         2 * torch.arange(b.shape[1], device=x.device).expand(x.shape[0], -1) + 1],
                        dim=1)
        seq = _take(torch.cat([unm, b], dim=1), pos.argsort(dim=1))
        new_p = int(p * (plan.t - r) // plan.t)
        return torch.cat([seq[:, :new_p], cls, seq[:, new_p:]], dim=1), new_p
    n_a = a.shape[1]
    new_p = int(p * (n_a - r) // n_a)
    return torch.cat([unm[:, :new_p], cls, unm[:, new_p:], b], dim=1), new_p


def merge_wavg(plan: Optional[MergePlan], x: Tensor, size: Optional[Tensor] = None,
               ordered: bool = True, prune: bool = False, mode: str = "sum"):
    """Size-weighted merge: returns (merged x, merged sizes, new class position).

    ``size`` (B, t, 1) counts the original tokens behind each token (ones at the start).
    """
    if size is None:
        size = torch.ones_like(x[..., :1], dtype=torch.float32)
    if plan is None:
        return x, size, None
    xs, new_p = apply_merge(x * size, plan, ordered, prune, mode)
    new_size, _ = apply_merge(size, plan, ordered, prune, mode)
    return (xs / new_size).to(x.dtype), new_size, new_p


def merge_sources(plan: Optional[MergePlan], source: Tensor, ordered: bool = True,
                  prune: bool = False) -> Tensor:
    """Track which original tokens each token stands for: ``source`` (B, t, T0) 0/1 rows."""
    if plan is None:
        return source
    return apply_merge(source, plan, ordered, prune, mode="amax")[0]


# ----------------------------------------------------------------------------------------
# Token schedule and FLOPs
# ----------------------------------------------------------------------------------------
def token_schedule(cfg: VimConfig, merge: MergeConfig, as_executed: bool = True) -> list[dict]:
    """Per block: tokens entering the block after merging, and the r merged at its start.

    ``as_executed=True`` follows the model (r capped at floor((L-1)/2), the ``compare``
    override at the last merge point); ``False`` follows the code's FLOPs function, which
    subtracts ``num_prune`` at every merge point and ignores both. Each row:
    {"block", "merge", "tokens_in" (before merging), "r", "tokens" (after)}.
    """
    points = set(merge_points(cfg.depth, merge.merge_interval, merge.merge_odd))
    n_points = len(points)
    L = cfg.num_tokens
    rows = []
    for i in range(cfg.depth):
        r = 0
        if i in points:
            r = merge.num_prune
            if as_executed:
                if merge.compare is not None and _is_last_point(i, cfg.depth, merge.merge_interval):
                    r = L - (cfg.num_tokens - n_points * merge.compare)
                r = max(0, min(r, (L - 1) // 2))
        rows.append({"block": i, "merge": i in points, "tokens_in": L, "r": r, "tokens": L - r})
        L -= r
    return rows


def matching_flops(n_tokens: float, d: int, r: int) -> float:
    """The code's cost of one merge point with metric X (``calculate_flops_designer_ToMe``).

    6 n C (normalisation) + 2C (n/2)^2 (A-B dot products, n/2 as a real number) + r C.
    """
    return 6 * n_tokens * d + 2 * d * (n_tokens / 2) ** 2 + r * d


def rmeeto_flops(cfg: VimConfig, merge: MergeConfig, as_executed: bool = False,
                 both_directions: bool = False, breakdown: bool = False):
    """Analytic MACs of a merged Vim on one image, following ``calculate_flop_inference``.

    Per block the Vim terms of :func:`flops.block_flops` on the block's token count (one scan
    direction, as published; ``both_directions=True`` counts both), plus the matching cost
    at each merge point (on the length before merging), the patch embedding counted on
    197 tokens (the code uses ``num_patches + 1``, one token more than the convolution
    produces) and the head. With the paper's r (5 / 11 / 11) this gives 1.28462 /
    3.58456 / 13.20744 G for Vim-Ti / S / B. ``as_executed=True`` counts the schedule the
    model runs instead (differs only with ``compare`` or when r hits its cap).
    """
    terms: dict[str, float] = {}
    for row in token_schedule(cfg, merge, as_executed=as_executed):
        blk = block_flops(row["tokens"], cfg.embed_dim, cfg.d_state, cfg.d_conv, cfg.expand,
                          cfg.dt_rank_, directions=2 if both_directions else 1)
        for k, v in blk.items():
            terms[k] = terms.get(k, 0) + v
        if row["merge"]:
            terms["matching"] = terms.get("matching", 0) + matching_flops(
                row["tokens_in"], cfg.embed_dim, row["r"])
    terms["patch_embed"] = cfg.num_tokens * cfg.embed_dim * cfg.in_chans * cfg.patch_size ** 2
    terms["head"] = cfg.embed_dim * cfg.num_classes
    total = sum(terms.values())
    return (total, terms) if breakdown else total


# ----------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------
@dataclass
class MergeTrace:
    """What one forward pass did.

    ``tokens`` and ``cls_positions``: sequence length and class-token index entering each
    block (after that block's merge); ``ids`` (B, L_final): the original index of each final
    token's surviving representative (the B token or unmerged A token that absorbed the
    others); ``sizes`` (B, L_final, 1): how many original tokens each final token stands for;
    ``sources`` (B, L_final, L0): 0/1 membership, only with ``track_sources=True``.
    """

    tokens: list[int]
    cls_positions: list[int]
    ids: Optional[Tensor] = None
    sizes: Optional[Tensor] = None
    sources: Optional[Tensor] = None


class RMeeToVim(Vim):
    """A Vim that merges tokens R-MeeTo's way (same parameters and state-dict names as Vim).

    Build it from a trained dense model with :meth:`from_vim` (weights copied) or like a
    :class:`Vim` plus a :class:`MergeConfig`. ``merge=None`` or ``num_prune=0`` is the dense
    model. ``forward(x)`` returns logits; :meth:`forward_trace` also returns a
    :class:`MergeTrace`.
    """

    def __init__(self, cfg: VimConfig = VimConfig(), merge: Optional[MergeConfig] = MergeConfig(),
                 device=None, dtype=None):
        super().__init__(cfg, device=device, dtype=dtype)
        self.merge = merge if merge is not None else MergeConfig(num_prune=0)

    @classmethod
    def from_vim(cls, model: Vim, merge: Optional[MergeConfig] = MergeConfig(),
                 **cfg_overrides) -> "RMeeToVim":
        """A merged copy of ``model`` (weights copied; ``cfg_overrides`` e.g. drop_path_rate)."""
        cfg = replace(model.cfg, **cfg_overrides)
        p = next(model.parameters())
        new = cls(cfg, merge, device=p.device, dtype=p.dtype)
        new.load_state_dict(model.state_dict())
        new.train(model.training)
        return new

    def set_merge(self, merge: Optional[MergeConfig]) -> "RMeeToVim":
        self.merge = merge if merge is not None else MergeConfig(num_prune=0)
        return self

    def _run(self, x: Tensor, trace: bool = False, track_sources: bool = False):
        m = self.merge
        hidden = self.embed(x)
        residual = None
        Bsz, L, _ = hidden.shape
        size = torch.ones(Bsz, L, 1, device=hidden.device, dtype=torch.float32)
        pos = self.cfg.cls_position
        source = ids = None
        if trace:
            ids = torch.arange(L, device=hidden.device).expand(Bsz, L).unsqueeze(-1)
        if track_sources:
            source = torch.eye(L, device=hidden.device).expand(Bsz, L, L)
        points = set(merge_points(self.cfg.depth, m.merge_interval, m.merge_odd)) if m.num_prune else set()
        n_points = len(points)
        tokens, positions = [], []
        for i, layer in enumerate(self.layers):
            if i in points:
                r = m.num_prune
                if m.compare is not None and _is_last_point(i, self.cfg.depth, m.merge_interval):
                    r = hidden.shape[1] - (self.cfg.num_tokens - n_points * m.compare)
                plan = bipartite_soft_matching(hidden, r, pos, m.distance, m.choose)
                if plan is not None:
                    hidden, new_size, new_pos = merge_wavg(plan, hidden, size, m.ordered, m.prune,
                                                           m.merge_mode)
                    residual, _, _ = merge_wavg(plan, residual, size, m.ordered, m.prune,
                                                m.merge_mode)
                    if source is not None:
                        source = merge_sources(plan, source, m.ordered, m.prune)
                    if ids is not None:   # representatives keep their own index
                        ids = apply_merge(ids, plan, m.ordered, prune=True)[0]
                    size, pos = new_size, new_pos
            tokens.append(hidden.shape[1])
            positions.append(pos)
            hidden, residual = layer(hidden, residual)
        out = self.final_norm(hidden, residual)
        info = MergeTrace(tokens, positions, ids[..., 0], size, source) if trace else None
        return out, pos, info

    def forward_tokens(self, x: Tensor) -> Tensor:
        """All tokens after ``norm_f`` (merged sequence; class token at :attr:`last_cls_position`)."""
        out, pos, _ = self._run(x)
        self.last_cls_position = pos
        return out

    def forward_features(self, x: Tensor) -> Tensor:
        out, pos, _ = self._run(x)
        return out[:, pos]

    def forward_trace(self, x: Tensor, track_sources: bool = False) -> tuple[Tensor, MergeTrace]:
        out, pos, info = self._run(x, trace=True, track_sources=track_sources)
        self.last_cls_position = pos
        return self.head(out[:, pos]), info


# ----------------------------------------------------------------------------------------
# Re-training loss
# ----------------------------------------------------------------------------------------
def distill_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor,
                 distill_weight: float = 0.5, clf_weight: float = 1.0,
                 label_smoothing: float = 0.0) -> tuple[Tensor, dict]:
    """R-MeeTo's loss (``DistillDiffPruningLoss_dynamic``): CE + 0.5 * KL to the frozen teacher.

    The KL term is ``F.kl_div(log_softmax(student), log_softmax(teacher), log_target=True,
    reduction="batchmean")`` = KL(p_teacher || p_student), averaged over the batch. ``targets``
    are class indices or soft targets (B, K) (mixup); the code uses timm's
    SoftTargetCrossEntropy under mixup and label smoothing 0.1.
    """
    if targets.ndim == 2:
        ce = torch.sum(-targets * F.log_softmax(student_logits, dim=-1), dim=-1).mean()
    else:
        ce = F.cross_entropy(student_logits, targets, label_smoothing=label_smoothing)
    kl = F.kl_div(F.log_softmax(student_logits, dim=-1), F.log_softmax(teacher_logits.detach(), dim=-1),
                  reduction="batchmean", log_target=True)
    loss = clf_weight * ce + distill_weight * kl
    return loss, {"ce": float(ce.detach()), "kl": float(kl.detach())}


# ----------------------------------------------------------------------------------------
# Throughput
# ----------------------------------------------------------------------------------------
def throughput(models: dict[str, nn.Module], x: Tensor, warmup: int = 3, iters: int = 10,
               repeats: int = 5, autocast_dtype: Optional[torch.dtype] = None) -> dict[str, dict]:
    """Images per second of each model on the same batch ``x``, measured side by side.

    :func:`compendium.vision_mamba.bench.compare_throughput` with ``repeats`` rounds; per
    model ``images_per_s`` (median round), ``best_images_per_s``, ``ms_per_batch`` and
    ``rounds`` (seconds per batch in each round; :func:`~compendium.vision_mamba.bench.speedup` pairs them). The paper's
    protocol (``utils/calc_flops.py::throughput``) is fp16 autocast, batch 128, 100 warm-up + 30
    timed iterations on a GPU.
    """
    return compare_throughput(models, x, warmup, iters, repeats, autocast_dtype)
