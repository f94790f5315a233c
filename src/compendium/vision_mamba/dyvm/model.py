"""Dynamic Vision Mamba (DyVM): token pruning and dynamic block (scan-direction) selection.

Wu et al., "DyVM: Dynamic Vision Mamba", arXiv 2504.04787. Code: NUS-HPC-AI-Lab/DyVM @
441121c2, ``Image_Classification/Vim&VideoMamba/vim/{models/vim.py, models/predictor.py,
utils.py, losses.py}`` and the modified mixer ``DynamicMamba`` in its vendored
``mamba_ssm/modules/mamba_simple.py``. Parameter names follow that code
(``score_predictors.{0,1,2}``, ``layers.{i}.mixer.block_head``), so a Vim checkpoint
loads into :class:`DyVM` with only the new modules missing.

Token pruning (before blocks ``pruning_loc`` = 6, 12, 18): a ``PredictorLG`` scores the
non-class tokens; stage s keeps ``int(rho**s * M)`` of the M patches (rho = 0.7: 137,
96, 67 of 196). Two computations of the same function:

* **pruned** (inference): top-k, indices sorted to keep the original order, the tokens
  are gathered, the class token is re-inserted at ``k // 2``; the sequence gets shorter.
* **masked** (training): full length. The tokens are *rearranged* per sample as
  [kept tokens in order] + [pruned tokens], the class token is re-inserted in the middle
  of the kept block, and a 0/1 mask multiplies ``x`` before and after the causal
  convolution in both scan directions. In the forward scan the pruned tokens come after
  every kept token (causality hides them); in the backward scan they come first with
  u = 0 and B = x_proj(0) = 0, so the state stays exactly 0. Hence masked == pruned.
  Training uses Gumbel-softmax hard decisions (straight-through).

``mode="naive"`` masks the pruned tokens in place without rearranging (ViT-style); the
state then decays through the masked positions and the result differs from pruning.

Block selection: per layer a ``block_head`` Linear(2E, 2) reads the class-token column of
the ``in_proj`` output and gates the forward / backward scans: Gumbel-sigmoid (tau 2,
hard, straight-through) in training, ``sigmoid > 0.5`` at inference, where a skipped
direction is not computed for that sample. ``in_proj``/``out_proj`` always run and the
output is still divided by 2.

Loss (``DyVMLoss_Token_Block``): CE + lambda_tok/3 * sum_s mean_b(mean(D_s) - rho^s)^2
+ lambda_blk * (mean(gates) - beta)^2 + 0.5 * (KL(student, teacher logits) + MSE of the
kept tokens against the frozen dense model's tokens at the same original positions).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..flops import dyvm_token_schedule
from ..vim import BiMambaV2, Vim, VimConfig

__all__ = [
    "DyVMConfig",
    "DyVM",
    "LogitsRecordingGates",
    "DyVMOutput",
    "PredictorLG",
    "DynamicBiMamba",
    "gumbel_sigmoid",
    "dyvm_loss",
    "teacher_outputs",
    "rearrange_kept_first",
    "set_static_gates",
]


@dataclass(frozen=True)
class DyVMConfig:
    """DyVM hyper-parameters on top of a :class:`VimConfig` (defaults: the Vim-S scripts)."""

    vim: VimConfig = field(default_factory=lambda: VimConfig(embed_dim=384))
    pruning_loc: tuple = (6, 12, 18)   # blocks before which tokens are pruned
    keep_ratio: float = 0.7            # rho; stage s keeps rho**s of the patches (0.9 for Vim-T)
    block_select: bool = True          # dynamic selection of the scan directions
    block_tau: float = 2.0             # Gumbel-sigmoid temperature (block_sel_tau)
    block_threshold: float = 0.5
    block_head_bias: float = 5.0       # sigmoid(5) = 0.993: both directions start on

    @property
    def keep_counts(self) -> list[int]:
        return dyvm_token_schedule(self.vim.num_patches, self.keep_ratio, len(self.pruning_loc))


# ----------------------------------------------------------------------------------------
# Pieces
# ----------------------------------------------------------------------------------------
class PredictorLG(nn.Module):
    """DynamicViT's local-global token scorer; returns log-probabilities (keep, drop)."""

    def __init__(self, embed_dim: int, device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        d = embed_dim
        self.in_conv = nn.Sequential(nn.LayerNorm(d, **fk), nn.Linear(d, d, **fk), nn.GELU())
        self.out_conv = nn.Sequential(
            nn.Linear(d, d // 2, **fk), nn.GELU(), nn.Linear(d // 2, d // 4, **fk), nn.GELU(),
            nn.Linear(d // 4, 2, **fk), nn.LogSoftmax(dim=-1))

    def forward(self, x: Tensor, policy: Tensor) -> Tensor:
        """x: (B, N, d) tokens, policy: (B, N, 1) 1 = currently kept. Returns (B, N, 2)."""
        x = self.in_conv(x)
        B, N, C = x.shape
        local = x[..., : C // 2]
        glob = (x[..., C // 2:] * policy).sum(1, keepdim=True) / (policy.sum(1, keepdim=True) + 1)
        return self.out_conv(torch.cat([local, glob.expand(B, N, C // 2)], dim=-1))


def gumbel_sigmoid(logits: Tensor, tau: float = 1.0, hard: bool = True, threshold: float = 0.5,
                   stochastic: bool = True) -> Tensor:
    """sigmoid((logits + g1 - g2) / tau) with g ~ Gumbel(0, 1); hard: 0/1 straight-through.

    ``stochastic=False`` is the inference rule: sigmoid(logits), thresholded if ``hard``.
    """
    if stochastic:
        g1 = -torch.empty_like(logits).exponential_().log()
        g2 = -torch.empty_like(logits).exponential_().log()
        soft = torch.sigmoid((logits + g1 - g2) / tau)
    else:
        soft = torch.sigmoid(logits)
    if not hard:
        return soft
    hard_y = (soft > threshold).to(soft.dtype)
    return hard_y - soft.detach() + soft


class DynamicBiMamba(BiMambaV2):
    """Vim's mixer plus DyVM's ``block_head`` that gates the two scan directions per sample."""

    def __init__(self, *args, block_tau: float = 2.0, block_threshold: float = 0.5,
                 block_head_bias: float = 5.0, **kwargs):
        super().__init__(*args, **kwargs)
        fk = {"device": self.in_proj.weight.device, "dtype": self.in_proj.weight.dtype}
        self.block_head = nn.Linear(2 * self.d_inner, 2, **fk)
        self.block_tau, self.block_threshold = block_tau, block_threshold
        if not self.block_head.weight.is_meta:
            nn.init.zeros_(self.block_head.weight)
            nn.init.constant_(self.block_head.bias, block_head_bias)
        self.block_head.bias._no_reinit = True

    def forward(self, hidden_states: Tensor, mask: Optional[Tensor] = None,
                cls_position=None, select: bool = True, stochastic: bool = False,
                skip: bool = False):
        """Returns (output (B, L, d), gates (B, 2) for the forward / backward scan).

        ``select=False`` keeps both directions. ``skip=True`` (inference) runs a direction
        only for the samples whose gate is 1; otherwise outputs are multiplied by the gates.
        """
        xz = self.in_proj(hidden_states)                               # (B, L, 2E)
        x, z = xz.chunk(2, dim=-1)
        B = x.shape[0]
        if select:
            if isinstance(cls_position, Tensor):
                col = xz[torch.arange(B, device=xz.device), cls_position]
            else:
                col = xz[:, cls_position]
            gates = gumbel_sigmoid(self.block_head(col), self.block_tau, True,
                                   self.block_threshold, stochastic)
        else:
            gates = xz.new_ones(B, 2)
        if mask is not None:
            mask = mask.reshape(B, -1, 1).to(x.dtype)
        ys = []
        for k, backward in ((0, False), (1, True)):
            xk, zk = (x.flip(1), z.flip(1)) if backward else (x, z)
            mk = None if mask is None else (mask.flip(1) if backward else mask)
            if skip and select:
                idx = (gates[:, k] > 0.5).nonzero(as_tuple=True)[0]
                y = x.new_zeros(x.shape)
                if idx.numel():
                    y[idx] = self.direction(xk[idx], zk[idx], backward,
                                            None if mk is None else mk[idx]).to(y.dtype)
            else:
                y = self.direction(xk, zk, backward, mk) * gates[:, k, None, None]
            ys.append(y)
        return self.combine(ys[0], ys[1]), gates


def rearrange_kept_first(keep: Tensor, *tensors: Tensor):
    """Per sample, order tokens as [kept, in original order] + [pruned, in original order].

    keep: (B, N) or (B, N, 1) 0/1 decisions; tensors: (B, N, ...) to permute the same way.
    Returns the permuted keep, the permuted tensors, and the number kept per sample (B,).
    """
    k2 = keep.reshape(keep.shape[0], keep.shape[1])
    N = k2.shape[1]
    key = (k2 <= 0.5).long() * N + torch.arange(N, device=keep.device)
    order = key.argsort(dim=1)
    out = [keep.gather(1, order.view(*order.shape, *([1] * (keep.ndim - 2))).expand_as(keep))]
    for t in tensors:
        idx = order.view(*order.shape, *([1] * (t.ndim - 2))).expand(-1, -1, *t.shape[2:])
        out.append(t.gather(1, idx))
    return out[0], out[1:], (k2 > 0.5).sum(1)


def _split_cls(tokens: Tensor, pos: Tensor):
    """(B, L, ...) -> class token (B, 1, ...) at per-sample ``pos`` and the others (B, L-1, ...)."""
    B, L = tokens.shape[:2]
    j = torch.arange(L - 1, device=tokens.device).expand(B, -1)
    src = j + (j >= pos[:, None]).long()
    cls = tokens[torch.arange(B, device=tokens.device), pos].unsqueeze(1)
    idx = src.view(B, L - 1, *([1] * (tokens.ndim - 2))).expand(-1, -1, *tokens.shape[2:])
    return cls, tokens.gather(1, idx)


def _insert_cls(cls: Tensor, other: Tensor, pos: Tensor) -> Tensor:
    """Inverse of :func:`_split_cls`: insert (B, 1, ...) at per-sample ``pos``."""
    B, N = other.shape[:2]
    both = torch.cat([other, cls], dim=1)                           # class token at index N
    j = torch.arange(N + 1, device=other.device).expand(B, -1)
    p = pos[:, None]
    src = torch.where(j < p, j, torch.where(j == p, torch.full_like(j, N), j - 1))
    idx = src.view(B, N + 1, *([1] * (other.ndim - 2))).expand(-1, -1, *other.shape[2:])
    return both.gather(1, idx)


@dataclass
class DyVMOutput:
    """Outputs of :meth:`DyVM.forward`.

    logits (B, classes); tokens (B, M, d): final non-class tokens (masked/naive modes);
    token_policy (B, M, 1): final keep mask in the same order; decisions: per stage the
    (B, M) keep decisions (masked/naive) for the ratio loss; current_pos (B, M or k):
    original patch index of each token; gates (depth, B, 2): scan-direction gates.
    """

    logits: Tensor
    gates: Tensor
    current_pos: Tensor
    tokens: Optional[Tensor] = None
    token_policy: Optional[Tensor] = None
    decisions: list = field(default_factory=list)

    @property
    def block_keep_ratio(self) -> float:
        return float(self.gates.detach().float().mean())


# ----------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------
class DyVM(Vim):
    """Vim with DyVM's token predictors and per-layer scan-direction gates."""

    mixer_cls = DynamicBiMamba

    def __init__(self, cfg: DyVMConfig = DyVMConfig(), device=None, dtype=None):
        self.dcfg = cfg
        super().__init__(cfg.vim, device=device, dtype=dtype)
        self.score_predictors = nn.ModuleList(
            PredictorLG(cfg.vim.embed_dim, device=device, dtype=dtype) for _ in cfg.pruning_loc)
        if not self.cls_token.is_meta:
            for m in self.score_predictors.modules():   # DyVM's _init_weights for new Linears
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)

    def make_mixer(self, cfg: VimConfig, device=None, dtype=None) -> nn.Module:
        d = self.dcfg
        return DynamicBiMamba(cfg.embed_dim, d_state=cfg.d_state, d_conv=cfg.d_conv,
                              expand=cfg.expand, dt_rank=cfg.dt_rank_,
                              if_divide_out=cfg.if_divide_out, scan_backend=cfg.scan_backend,
                              block_tau=d.block_tau, block_threshold=d.block_threshold,
                              block_head_bias=d.block_head_bias, device=device, dtype=dtype)

    @classmethod
    def from_vim(cls, vim: Vim, cfg: Optional[DyVMConfig] = None, **overrides) -> "DyVM":
        """A DyVM initialised from a trained Vim (new modules keep their initialisation)."""
        cfg = cfg or DyVMConfig(vim=vim.cfg, **overrides)
        if cfg.vim != vim.cfg:
            cfg = replace(cfg, vim=vim.cfg)
        model = cls(cfg, device=vim.cls_token.device, dtype=vim.cls_token.dtype)
        missing, unexpected = model.load_state_dict(vim.state_dict(), strict=False)
        assert not unexpected, unexpected
        assert all(k.startswith("score_predictors") or ".block_head." in k for k in missing), missing
        return model

    def forward(self, x: Tensor, mode: Optional[str] = None,
                stochastic: Optional[bool] = None) -> DyVMOutput:
        """mode: "pruned" (default in eval), "masked" (default in training) or "naive".

        stochastic (default: ``self.training``): Gumbel token and block decisions; else
        top-k tokens and thresholded gates. "pruned" needs deterministic decisions.
        """
        mode = mode or ("masked" if self.training else "pruned")
        stochastic = self.training if stochastic is None else stochastic
        if mode not in ("pruned", "masked", "naive"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode == "pruned" and stochastic:
            raise ValueError("physical pruning needs deterministic decisions (stochastic=False)")
        if mode == "pruned":
            return self._forward_pruned(x)
        return self._forward_masked(x, stochastic, rearrange=(mode == "masked"))

    def _mixer_kwargs(self, stochastic: bool, skip: bool) -> dict:
        return {"select": self.dcfg.block_select, "stochastic": stochastic, "skip": skip}

    def _forward_pruned(self, x: Tensor) -> DyVMOutput:
        hidden = self.embed(x)
        B, L, _ = hidden.shape
        M = L - 1
        p = M // 2
        residual = None
        pos = torch.arange(M, device=x.device).expand(B, -1)
        keep = dict(zip(self.dcfg.pruning_loc, self.dcfg.keep_counts))
        stage, gates = 0, []
        for i, layer in enumerate(self.layers):
            if i in keep:
                cls_h, oth_h = hidden[:, p:p + 1], torch.cat([hidden[:, :p], hidden[:, p + 1:]], 1)
                cls_r, oth_r = residual[:, p:p + 1], torch.cat([residual[:, :p], residual[:, p + 1:]], 1)
                policy = oth_h.new_ones(B, oth_h.shape[1], 1)
                score = self.score_predictors[stage](oth_h + oth_r.to(oth_h.dtype), policy)[..., 0]
                k = keep[i]
                idx = score.topk(k, dim=1).indices.sort(dim=1).values
                g = idx[..., None].expand(-1, -1, oth_h.shape[-1])
                oth_h, oth_r, pos = oth_h.gather(1, g), oth_r.gather(1, g), pos.gather(1, idx)
                p = k // 2
                hidden = torch.cat([oth_h[:, :p], cls_h, oth_h[:, p:]], 1)
                residual = torch.cat([oth_r[:, :p], cls_r, oth_r[:, p:]], 1)
                stage += 1
            normed, residual = layer.add_norm(hidden, residual)
            hidden, g_i = layer.mixer(normed, cls_position=p, **self._mixer_kwargs(False, True))
            gates.append(g_i)
        h = self.final_norm(hidden, residual)
        return DyVMOutput(logits=self.head(h[:, p]), gates=torch.stack(gates), current_pos=pos)

    def _forward_masked(self, x: Tensor, stochastic: bool, rearrange: bool) -> DyVMOutput:
        hidden = self.embed(x)
        B, L, _ = hidden.shape
        M = L - 1
        cls_pos = torch.full((B,), M // 2, dtype=torch.long, device=x.device)
        residual, mask = None, None
        pos = torch.arange(M, device=x.device).expand(B, -1)
        policy = hidden.new_ones(B, M, 1)
        keep_counts = dict(zip(self.dcfg.pruning_loc, self.dcfg.keep_counts))
        stage, gates, decisions = 0, [], []
        for i, layer in enumerate(self.layers):
            if i in keep_counts:
                cls_h, oth_h = _split_cls(hidden, cls_pos)
                cls_r, oth_r = _split_cls(residual, cls_pos)
                logp = self.score_predictors[stage](oth_h + oth_r.to(oth_h.dtype), policy)
                if stochastic:
                    dec = F.gumbel_softmax(logp, hard=True)[..., 0:1] * policy
                else:   # top-k among the tokens still kept: the inference rule
                    score = logp[..., 0].masked_fill(policy[..., 0] <= 0.5, float("-inf"))
                    idx = score.topk(keep_counts[i], dim=1).indices
                    dec = torch.zeros_like(policy).scatter_(1, idx[..., None], 1.0)
                decisions.append(dec[..., 0])
                if rearrange:
                    dec, (oth_h, oth_r, pos), n_keep = rearrange_kept_first(dec, oth_h, oth_r, pos)
                    cls_pos = n_keep // 2
                hidden = _insert_cls(cls_h, oth_h, cls_pos)
                residual = _insert_cls(cls_r, oth_r, cls_pos)
                mask = _insert_cls(dec.new_ones(B, 1, 1), dec, cls_pos)[..., 0]
                policy = dec
                stage += 1
            normed, residual = layer.add_norm(hidden, residual)
            hidden, g_i = layer.mixer(normed, mask=mask, cls_position=cls_pos,
                                      **self._mixer_kwargs(stochastic, False))
            gates.append(g_i)
        h = self.final_norm(hidden, residual)
        cls_t, others = _split_cls(h, cls_pos)
        return DyVMOutput(logits=self.head(cls_t[:, 0]), gates=torch.stack(gates), current_pos=pos,
                          tokens=others, token_policy=policy.detach(), decisions=decisions)


@torch.no_grad()
def set_static_gates(model: DyVM, block_keep_ratio: float) -> int:
    """Fix the gates so that a fraction ``block_keep_ratio`` of the 2 x depth scan directions run.

    For throughput measurements with untrained (random) weights: the backward direction is
    switched off (block_head weight 0, bias -10) in evenly spaced layers, everything else
    on (bias +10). Trained DyVM gates vary per sample; this keeps the same average.
    Returns the number of directions switched off.
    """
    mixers = [layer.mixer for layer in model.layers]
    n_off = int(round((1.0 - block_keep_ratio) * 2 * len(mixers)))
    off = set(torch.linspace(0, len(mixers) - 1, n_off).round().long().tolist()) if n_off else set()
    extra = n_off - len(off)             # more than one direction per layer when beta < 0.5
    for i, m in enumerate(mixers):
        m.block_head.weight.zero_()
        m.block_head.bias.fill_(10.0)
        if i in off:
            m.block_head.bias[1] = -10.0
            if extra > 0:
                m.block_head.bias[0] = -10.0
                extra -= 1
    return n_off


class LogitsRecordingGates(nn.Module):
    """A DyVM that returns plain logits (for evaluators that expect a classifier) and records the
    scan-direction gates it used, so the block keep ratio is measured on the same images.

    ``block_keep_ratio``: the mean gate over every image seen so far (images weighted equally).
    """

    def __init__(self, model: DyVM):
        super().__init__()
        self.model = model
        self._gate_sum, self._images = 0.0, 0

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        self._gate_sum += out.gates.float().mean().item() * x.shape[0]
        self._images += x.shape[0]
        return out.logits

    @property
    def block_keep_ratio(self) -> float:
        return self._gate_sum / self._images if self._images else float("nan")


# ----------------------------------------------------------------------------------------
# Loss
# ----------------------------------------------------------------------------------------
@torch.no_grad()
def teacher_outputs(teacher: Vim, x: Tensor):
    """Frozen dense model: (logits (B, classes), non-class tokens after norm_f (B, M, d))."""
    tokens = teacher.forward_tokens(x)
    p = teacher.cfg.cls_position
    return teacher.head(tokens[:, p]), torch.cat([tokens[:, :p], tokens[:, p + 1:]], 1)


def dyvm_loss(out: DyVMOutput, labels: Tensor, teacher_logits: Tensor, teacher_tokens: Tensor,
              keep_ratio: float, block_keep_target: float = 0.8, token_weight: float = 10.0,
              block_weight: float = 10.0, distill_weight: float = 0.5, clf_weight: float = 1.0,
              label_smoothing: float = 0.0):
    """DyVM's ``DyVMLoss_Token_Block`` (mse_token=True). Returns (loss, dict of parts).

    Weights as in the released scripts: lambda_tok = lambda_blk = 10, distillation 0.5;
    beta = 0.8 for Vim-T/S (0.7 for Vim-B).
    """
    cls_loss = F.cross_entropy(out.logits, labels, label_smoothing=label_smoothing)
    ratio = out.logits.new_zeros(())
    for s, dec in enumerate(out.decisions, start=1):
        ratio = ratio + ((dec.mean(1) - keep_ratio ** s) ** 2).mean()
    n_stages = max(1, len(out.decisions))
    block = (out.gates.mean() - block_keep_target) ** 2
    kl = F.kl_div(F.log_softmax(out.logits, -1), F.log_softmax(teacher_logits, -1),
                  reduction="batchmean", log_target=True)
    B, N, D = out.tokens.shape
    t_tok = teacher_tokens.gather(1, out.current_pos[..., None].expand(-1, -1, D))
    keep = out.token_policy.reshape(B * N) > 0.5
    tok = ((out.tokens.reshape(B * N, D)[keep] - t_tok.reshape(B * N, D)[keep]) ** 2).mean() \
        if keep.any() else out.logits.new_zeros(())
    parts = {"cls": clf_weight * cls_loss, "token_ratio": token_weight * ratio / n_stages,
             "block_ratio": block_weight * block, "kl": distill_weight * kl,
             "token_distill": distill_weight * tok}
    return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}
