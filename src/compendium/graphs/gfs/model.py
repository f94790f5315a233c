"""Graph Feature Selection (GFS), arXiv 2411.07663: split the features by TFI between a GNN and an MLP.

Features are sorted by their score (TFI by default), descending; with ``split = int(F * r)`` the
first ``split`` columns (high TFI, "GNN-favoured") feed a GNN branch and the other ``F - split`` an
MLP branch. Each branch ends in a LayerNorm; the two outputs are concatenated and one linear layer
gives the logits. Both branches train jointly under one loss. ``r = 1`` is the plain GNN, ``r = 0``
the plain MLP (official ``model.py`` / ``datasets.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models import Branch, GraphContext, ModelConfig

__all__ = ["feature_order", "split_point", "split_features", "GFSModel", "variant_name"]


def feature_order(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    """Column indices sorted by score, highest first (ties keep column order)."""
    s = np.asarray(scores, dtype=np.float64)
    return np.argsort(-s, kind="stable")


def split_point(num_features: int, ratio: float) -> int:
    """Number of columns sent to the GNN branch: ``int(F * r)`` as in the official code."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError("ratio must be in [0, 1]")
    return int(num_features * ratio)


def split_features(x: torch.Tensor, scores: np.ndarray | None, ratio: float) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(x_gnn, x_mlp)``: the top-``r`` columns by score and the rest (``None`` for an empty side).

    ``scores=None`` keeps the column order (only meaningful for ``r`` in {0, 1}).
    """
    f = x.shape[1]
    order = np.arange(f) if scores is None else feature_order(scores)
    k = split_point(f, ratio)
    idx = torch.as_tensor(order.copy(), dtype=torch.long)
    x_gnn = x[:, idx[:k]] if k > 0 else None
    x_mlp = x[:, idx[k:]] if k < f else None
    return x_gnn, x_mlp


def variant_name(model: str, ratio: float) -> str:
    """``GCN`` (r = 1), ``MLP`` (r = 0) or ``GCN+GFS`` (0 < r < 1)."""
    if ratio >= 1.0:
        return model
    if ratio <= 0.0:
        return "MLP"
    return f"{model}+GFS"


class GFSModel(nn.Module):
    """A GNN branch on ``x_gnn`` and an MLP branch on ``x_mlp``, joined by one linear layer.

    Either input dimension may be 0, which drops that branch (plain MLP or plain GNN).
    """

    def __init__(self, gnn: str, in_gnn: int, in_mlp: int, out_dim: int, cfg: ModelConfig | None = None):
        super().__init__()
        cfg = cfg or ModelConfig()
        if in_gnn == 0 and in_mlp == 0:
            raise ValueError("no input features")
        self.gnn = Branch(gnn, in_gnn, cfg) if in_gnn > 0 else None
        self.mlp = Branch("MLP", in_mlp, cfg) if in_mlp > 0 else None
        width = cfg.hidden * ((self.gnn is not None) + (self.mlp is not None))
        self.output = nn.Linear(width, out_dim)

    def forward(self, x_gnn: torch.Tensor | None, x_mlp: torch.Tensor | None, g: GraphContext) -> torch.Tensor:
        parts = []
        if self.gnn is not None:
            parts.append(self.gnn(x_gnn, g))
        if self.mlp is not None:
            parts.append(self.mlp(x_mlp, g))
        out = self.output(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
        return out.squeeze(1) if out.shape[1] == 1 else out
