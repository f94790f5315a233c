"""Vision Mamba (Vim), a pure-PyTorch port of the official model.

Zhu et al., "Vision Mamba: Efficient Visual Representation Learning with Bidirectional
State Space Model", ICML 2024, arXiv 2401.09417. Code: hustvl/Vim @ dd0358ad
(``vim/models_mamba.py``) and its vendored ``mamba-1p1p1/mamba_ssm/modules/mamba_simple.py``
with ``bimamba_type="v2"``.

What is kept exactly as in the official model (so that the official checkpoints load
with ``strict=True`` and compute the same function):

* patch embedding ``Conv2d(3, d, 16, stride 16)``, no norm; the class token is inserted
  in the *middle* of the patch sequence (position M // 2 = 98 for 196 patches); learned
  absolute position embedding;
* 24 blocks in the order Add -> RMSNorm -> mixer, returning (hidden, residual), with the
  residual stream kept in float32 (``residual_in_fp32``); after the last block one more
  add, ``norm_f`` and the head on the class token;
* the bidirectional Mamba "v2" mixer: shared ``in_proj`` and ``out_proj``; separate
  ``conv1d``/``x_proj``/``dt_proj``/``A_log``/``D`` for the forward direction and
  ``conv1d_b``/``x_proj_b``/``dt_proj_b``/``A_b_log``/``D_b`` for the backward one;
  output ``out_proj((y_fwd + flip(y_bwd)) / 2)`` (``if_divide_out``);
* the initialisation (dt bias = softplus^-1 of log-uniform [1e-3, 1e-1], S4D-real A,
  D = 1, ``out_proj`` rescaled by 1/sqrt(depth), lecun-normal patch conv, trunc-normal
  class token, position embedding and head) and the state-dict names.

The official "slow path" (``use_fast_path=False``) silently runs only the forward
direction; this port always runs both. Used by the DyVM and R-MeeTo chapters
(``notebooks/dyvm``, ``notebooks/rmeeto``) and by :mod:`compendium.vision_mamba.dyvm` and
:mod:`compendium.vision_mamba.rmeeto`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .selective_scan import SelectiveScan

__all__ = [
    "VimConfig",
    "Vim",
    "BiMambaV2",
    "Block",
    "RMSNorm",
    "PatchEmbed",
    "vim_tiny",
    "vim_small",
    "vim_base",
    "VIM_CONFIGS",
    "CHECKPOINTS",
    "load_checkpoint",
    "load_checkpoint_file",
    "count_parameters",
    "CheckpointNotFoundError",
]


@dataclass(frozen=True)
class VimConfig:
    """Hyper-parameters of a Vim model (defaults: Vim-Ti at 224 x 224, as released)."""

    img_size: int = 224          # input resolution (square)
    patch_size: int = 16         # patch-embedding kernel
    stride: int = 16             # patch-embedding stride (8 for the "+" fine-tuned models)
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 192         # d_model: 192 / 384 / 768 for Ti / S / B
    depth: int = 24
    d_state: int = 16            # N
    d_conv: int = 4              # K
    expand: int = 2              # d_inner = expand * d_model
    dt_rank: Optional[int] = None  # None: ceil(d_model / 16)
    drop_rate: float = 0.0       # dropout after the position embedding
    drop_path_rate: float = 0.0  # stochastic depth (0.0 Vim-Ti, 0.05 Vim-S in the scripts)
    norm_eps: float = 1e-5
    residual_in_fp32: bool = True
    if_divide_out: bool = True   # average the two directions
    scan_backend: str = "auto"   # see selective_scan.selective_scan

    @property
    def grid_size(self) -> int:
        return (self.img_size - self.patch_size) // self.stride + 1

    @property
    def num_patches(self) -> int:
        return self.grid_size ** 2

    @property
    def num_tokens(self) -> int:
        return self.num_patches + 1

    @property
    def cls_position(self) -> int:
        return self.num_patches // 2

    @property
    def d_inner(self) -> int:
        return self.expand * self.embed_dim

    @property
    def dt_rank_(self) -> int:
        return self.dt_rank if self.dt_rank is not None else math.ceil(self.embed_dim / 16)

    def to_dict(self) -> dict:
        return asdict(self)


VIM_CONFIGS = {
    "tiny": VimConfig(embed_dim=192),
    "small": VimConfig(embed_dim=384, drop_path_rate=0.05),
    "base": VimConfig(embed_dim=768),
}

#: Official checkpoints (Hugging Face repositories named in the hustvl/Vim README) and
#: the top-1 accuracies the README reports for them.
CHECKPOINTS = {
    "tiny": {"hf_repo": "hustvl/Vim-tiny-midclstok", "file": "vim_t_midclstok_76p1acc.pth", "top1": 76.1},
    "small": {"hf_repo": "hustvl/Vim-small-midclstok", "file": "vim_s_midclstok_80p5acc.pth", "top1": 80.5},
    "base": {"hf_repo": "hustvl/Vim-base-midclstok", "file": "vim_b_midclstok_81p9acc.pth", "top1": 81.9},
}


# ----------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight, computed in float32; no bias (as mamba-ssm)."""

    def __init__(self, dim: int, eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(self.weight.dtype)


class PatchEmbed(nn.Module):
    """Conv2d patch embedding: (B, 3, H, W) -> (B, M, d), no normalisation."""

    def __init__(self, cfg: VimConfig, device=None, dtype=None):
        super().__init__()
        self.img_size = cfg.img_size
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, kernel_size=cfg.patch_size,
                              stride=cfg.stride, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"expected {self.img_size}x{self.img_size} images, got "
                             f"{tuple(x.shape[-2:])}")
        return self.proj(x).flatten(2).transpose(1, 2)


class DropPath(nn.Module):
    """Stochastic depth per sample (identity at evaluation or with p = 0)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class CausalConv1d(nn.Conv1d):
    """Depthwise causal convolution (left padding K-1) on (B, L, E) tokens.

    An ``nn.Conv1d`` (same ``weight`` (E, 1, K) and ``bias`` as mamba's ``conv1d``) whose
    forward takes and returns the token-major layout (B, L, E), as K shifted
    multiply-adds: no transposes around the scan. Equals ``conv1d(x.mT)[..., :L].mT``.
    """

    def __init__(self, channels: int, kernel_size: int, device=None, dtype=None):
        super().__init__(channels, channels, kernel_size, groups=channels,
                         padding=kernel_size - 1, bias=True, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        K = self.kernel_size[0]
        L = x.shape[1]
        xp = F.pad(x, (0, 0, K - 1, 0))
        w = self.weight[:, 0, :]                                 # (E, K)
        y = torch.addcmul(self.bias, xp[:, 0:L], w[:, 0])
        for k in range(1, K):
            y = torch.addcmul(y, xp[:, k:k + L], w[:, k])
        return y


class BiMambaV2(nn.Module):
    """Bidirectional Mamba mixer of Vim (``Mamba(bimamba_type="v2", if_divide_out=True)``).

    Input and output (B, L, d_model); internally the token-major layout (B, L, E) is
    kept throughout (the scan receives transposed views). ``mask`` (B, L) or (B, L, 1),
    optional: the DyVM masked mode, in which ``x`` is multiplied by the mask before and
    after the causal convolution in both directions (the backward direction uses the
    flipped mask).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: Optional[int] = None, dt_min: float = 1e-3, dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4, if_divide_out: bool = True,
                 scan_backend: str = "auto", device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = dt_rank if dt_rank is not None else math.ceil(d_model / 16)
        self.if_divide_out = if_divide_out
        E, R, N = self.d_inner, self.dt_rank, d_state
        self.in_proj = nn.Linear(d_model, 2 * E, bias=False, **fk)
        for sfx in ("", "_b"):
            setattr(self, "conv1d" + sfx, CausalConv1d(E, d_conv, **fk))
            setattr(self, "x_proj" + sfx, nn.Linear(E, R + 2 * N, bias=False, **fk))
            setattr(self, "dt_proj" + sfx, nn.Linear(R, E, bias=True, **fk))
        A_log = torch.log(torch.arange(1, N + 1, dtype=torch.float32, device=device)).repeat(E, 1)
        self.A_log = nn.Parameter(A_log.clone())            # S4D-real: A = -(1..N)
        self.D = nn.Parameter(torch.ones(E, device=device))
        self.A_b_log = nn.Parameter(A_log.clone())
        self.D_b = nn.Parameter(torch.ones(E, device=device))
        self.out_proj = nn.Linear(E, d_model, bias=False, **fk)
        self.scan = SelectiveScan(scan_backend)
        self.scan_b = SelectiveScan(scan_backend)
        for p in (self.A_log, self.D, self.A_b_log, self.D_b):
            p._no_weight_decay = True
        self._dt_init = (dt_min, dt_max, dt_init_floor)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """Mamba's dt initialisation: weight U(+-R^-0.5), bias = softplus^-1(dt)."""
        if self.in_proj.weight.is_meta:
            return
        dt_min, dt_max, floor = self._dt_init
        for proj in (self.dt_proj, self.dt_proj_b):
            std = self.dt_rank ** -0.5
            nn.init.uniform_(proj.weight, -std, std)
            dt = torch.exp(torch.rand(self.d_inner, device=proj.bias.device)
                           * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=floor)
            proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))   # inverse softplus
            proj.bias._no_reinit = True

    def direction(self, x: Tensor, z: Tensor, backward: bool, mask: Optional[Tensor] = None) -> Tensor:
        """One scan direction on (B, L, E) inputs, already flipped if ``backward``.

        ``mask``: (B, L, 1) or None. Returns the gated scan output y, (B, L, E), before
        the output projection.
        """
        sfx = "_b" if backward else ""
        conv, x_proj, dt_proj = (getattr(self, n + sfx) for n in ("conv1d", "x_proj", "dt_proj"))
        A_log, D = (self.A_b_log, self.D_b) if backward else (self.A_log, self.D)
        scan = self.scan_b if backward else self.scan
        if mask is not None:
            x = x * mask
        u = F.silu(conv(x))                              # causal depthwise conv + SiLU
        if mask is not None:
            u = u * mask
        x_dbl = x_proj(u)                                # (B, L, R + 2N)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = dt_proj(dt)                              # (B, L, E), bias inside
        A = -torch.exp(A_log.float())
        y = scan(u.mT, delta.mT, A, B.mT, C.mT, D.float(), z.mT, None, True)   # (B, E, L) views
        return y.mT

    def forward(self, hidden_states: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        x, z = self.in_proj(hidden_states).chunk(2, dim=-1)   # (B, L, E) each
        if mask is not None:
            mask = mask.reshape(mask.shape[0], -1, 1).to(x.dtype)
        y_f = self.direction(x, z, backward=False, mask=mask)
        y_b = self.direction(x.flip(1), z.flip(1), backward=True,
                             mask=None if mask is None else mask.flip(1))
        return self.combine(y_f, y_b)

    def combine(self, y_f: Tensor, y_b: Tensor) -> Tensor:
        """out_proj((y_fwd + flip(y_bwd)) / 2), y in (B, L, E); returns (B, L, d)."""
        y = y_f + y_b.flip(1)
        if self.if_divide_out:
            y = y / 2
        return self.out_proj(y.to(self.out_proj.weight.dtype))


class Block(nn.Module):
    """Add -> RMSNorm -> mixer; returns (mixer output, residual), residual in fp32."""

    def __init__(self, mixer: nn.Module, dim: int, eps: float = 1e-5, drop_path: float = 0.0,
                 residual_in_fp32: bool = True, device=None, dtype=None):
        super().__init__()
        self.mixer = mixer
        self.norm = RMSNorm(dim, eps=eps, device=device, dtype=dtype)
        self.drop_path = DropPath(drop_path)
        self.residual_in_fp32 = residual_in_fp32

    def add_norm(self, hidden: Tensor, residual: Optional[Tensor]):
        residual = hidden if residual is None else residual + self.drop_path(hidden)
        normed = self.norm(residual.to(self.norm.weight.dtype))
        if self.residual_in_fp32:
            residual = residual.float()
        return normed, residual

    def forward(self, hidden: Tensor, residual: Optional[Tensor] = None, **mixer_kwargs):
        normed, residual = self.add_norm(hidden, residual)
        return self.mixer(normed, **mixer_kwargs), residual


# ----------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------
class Vim(nn.Module):
    """Vision Mamba classifier with a middle class token (the released Vim-Ti/S/B)."""

    mixer_cls = BiMambaV2

    def __init__(self, cfg: VimConfig = VimConfig(), device=None, dtype=None):
        super().__init__()
        self.cfg = cfg
        fk = {"device": device, "dtype": dtype}
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg, **fk)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d, **fk))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_tokens, d, **fk))
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(d, cfg.num_classes, **fk) if cfg.num_classes > 0 else nn.Identity()
        dpr = [0.0] + torch.linspace(0, cfg.drop_path_rate, cfg.depth).tolist()
        self.layers = nn.ModuleList(
            Block(self.make_mixer(cfg, **fk), d, eps=cfg.norm_eps, drop_path=dpr[i],
                  residual_in_fp32=cfg.residual_in_fp32, **fk)
            for i in range(cfg.depth))
        self.norm_f = RMSNorm(d, eps=cfg.norm_eps, **fk)
        self.drop_path = DropPath(cfg.drop_path_rate)
        self.init_weights()

    def make_mixer(self, cfg: VimConfig, device=None, dtype=None) -> nn.Module:
        return self.mixer_cls(cfg.embed_dim, d_state=cfg.d_state, d_conv=cfg.d_conv,
                             expand=cfg.expand, dt_rank=cfg.dt_rank_, if_divide_out=cfg.if_divide_out,
                             scan_backend=cfg.scan_backend, device=device, dtype=dtype)

    @torch.no_grad()
    def init_weights(self) -> None:
        """The official initialisation (``VisionMamba.__init__`` + mamba ``_init_weights``)."""
        if self.cls_token.is_meta:
            return
        conv = self.patch_embed.proj
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        # lecun_normal_: truncated normal with std sqrt(1/fan_in) (timm's variance scaling)
        nn.init.trunc_normal_(conv.weight, std=math.sqrt(1.0 / fan_in) / .87962566103423978)
        nn.init.zeros_(conv.bias)
        if isinstance(self.head, nn.Linear):
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():   # mamba _init_weights: zero Linear biases except dt_proj
            if isinstance(m, nn.Linear) and m.bias is not None and not getattr(m.bias, "_no_reinit", False):
                nn.init.zeros_(m.bias)
        for layer in self.layers:  # GPT-2 style rescale of out_proj, n_residuals_per_layer=1
            w = layer.mixer.out_proj.weight
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            w /= math.sqrt(self.cfg.depth)

    def no_weight_decay(self) -> set[str]:
        names = {"pos_embed", "cls_token"}
        names |= {n for n, p in self.named_parameters() if getattr(p, "_no_weight_decay", False)}
        return names

    def embed(self, x: Tensor) -> Tensor:
        """Patch embedding, middle class token, position embedding: (B, 3, H, W) -> (B, L, d)."""
        x = self.patch_embed(x)
        B, M, _ = x.shape
        p = M // 2
        x = torch.cat([x[:, :p], self.cls_token.expand(B, -1, -1), x[:, p:]], dim=1)
        return self.pos_drop(x + self.pos_embed)

    def final_norm(self, hidden: Tensor, residual: Tensor) -> Tensor:
        residual = residual + self.drop_path(hidden)
        return self.norm_f(residual.to(self.norm_f.weight.dtype))

    def forward_tokens(self, x: Tensor) -> Tensor:
        """All tokens after ``norm_f``: (B, 3, H, W) -> (B, L, d); class token at M // 2."""
        hidden, residual = self.embed(x), None
        for layer in self.layers:
            hidden, residual = layer(hidden, residual)
        return self.final_norm(hidden, residual)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.forward_tokens(x)[:, self.cfg.cls_position]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))


def _factory(name: str, **overrides) -> Vim:
    device, dtype = overrides.pop("device", None), overrides.pop("dtype", None)
    return Vim(replace(VIM_CONFIGS[name], **overrides), device=device, dtype=dtype)


def vim_tiny(**overrides) -> Vim:
    """Vim-Ti (d 192, 24 blocks): 7.15 M parameters. Keyword overrides go to VimConfig."""
    return _factory("tiny", **overrides)


def vim_small(**overrides) -> Vim:
    """Vim-S (d 384, 24 blocks): 25.80 M parameters."""
    return _factory("small", **overrides)


def vim_base(**overrides) -> Vim:
    """Vim-B (d 768, 24 blocks): 97.60 M parameters."""
    return _factory("base", **overrides)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class CheckpointNotFoundError(FileNotFoundError):
    """Raised when an official checkpoint file is not where the user said it is."""


def load_checkpoint_file(path: str | Path, map_location: str | torch.device = "cpu"):
    """``torch.load`` of a checkpoint file, safely: tensors and plain containers only (``weights_only=True``).
    A file whose pickle needs more (e.g. an ``argparse.Namespace`` saved by a training script) is unpickled
    fully only if its checksum is registered, or with the documented opt-in ``COMPENDIUM_TRUST_PICKLE=1``
    for a file of your own (:func:`compendium.data.require_verified`)."""
    import pickle

    from ..data import require_verified

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        require_verified(path, "checkpoint")
        return torch.load(path, map_location=map_location, weights_only=False)


def load_checkpoint(path: str | Path, variant: Optional[str] = None, model: Optional[Vim] = None,
                    map_location: str | torch.device = "cpu", strict: bool = True) -> Vim:
    """Load an official hustvl/Vim checkpoint (``{"model": state_dict}``) into our model.

    ``variant`` ("tiny", "small", "base") builds the model; or pass ``model``. The file
    is never downloaded: download it yourself (see :data:`CHECKPOINTS`) and give its path.
    """
    path = Path(path).expanduser()
    if model is None and variant is None:
        raise ValueError("give variant='tiny'|'small'|'base' or a model")
    if not path.is_file():
        hint = "\n".join(f"  {k}: https://huggingface.co/{v['hf_repo']} -> {v['file']}"
                         for k, v in CHECKPOINTS.items()
                         if variant is None or k == variant)
        raise CheckpointNotFoundError(
            f"Vim checkpoint not found: {path}\nDownload the official weights (ImageNet-1K, "
            f"middle class token) and pass the file's path:\n{hint}")
    state = load_checkpoint_file(path, map_location)
    if isinstance(state, dict) and "model" in state:
        state = state["model"]
    if model is None:
        model = _factory(variant)
    model.load_state_dict(state, strict=strict)
    return model
