"""The MER2025 track-1 baseline model (``MER2025_Track1/main-release.py`` with ``--model attention`` /
``attention_topn``; ``toolkit/models/attention_topn.py``, ``toolkit/models/modules/encoder.py`` of
``zeroQiaoba/MERTools``): one :class:`MLPEncoder` per input feature and the fusion with raw (unnormalised) weights,
:class:`AttentionFusion`. Its training protocol is in :mod:`compendium.emotion.mer2025.experiments`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["AttentionFusion", "MLPEncoder"]


class MLPEncoder(nn.Module):
    """MERTools ``MLPEncoder``: x (B, in) -> Dropout -> [Linear, ReLU] x 3 -> (B, hidden)."""

    def __init__(self, in_size: int, hidden_size: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(p=dropout)
        self.linear_1 = nn.Linear(in_size, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, hidden_size)
        self.linear_3 = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.linear_1(self.drop(x)))
        y = torch.relu(self.linear_2(y))
        return torch.relu(self.linear_3(y))


class AttentionFusion(nn.Module):
    """The track-1 ``attention`` / ``attention_topn`` model over ``k = len(feat_dims)`` input features.

    forward(feats: list of k tensors (B, d_i)) -> (fused (B, hidden), logits (B, num_classes), weights (B, k)).
    ``weights`` are the raw outputs of ``fc_att``: they are not normalised, can be negative and need not sum to 1.
    Module names follow ``Attention_TOPN`` (``encoder0``..., ``attention_mlp``, ``fc_att``, ``fc_out_1``,
    ``fc_out_2``).
    """

    def __init__(self, feat_dims: Sequence[int], hidden_dim: int = 128, dropout: float = 0.3, num_classes: int = 6,
                 valence_dim: int = 0):
        super().__init__()
        self.feat_dims = tuple(int(d) for d in feat_dims)
        for i, dim in enumerate(self.feat_dims):
            self.add_module(f"encoder{i}", MLPEncoder(dim, hidden_dim, dropout))
        k = len(self.feat_dims)
        self.attention_mlp = MLPEncoder(hidden_dim * k, hidden_dim, dropout)
        self.fc_att = nn.Linear(hidden_dim, k)
        self.fc_out_1 = nn.Linear(hidden_dim, num_classes)
        self.fc_out_2 = nn.Linear(hidden_dim, valence_dim) if valence_dim else None  # valence head, off in 2025

    def forward(self, feats: Sequence[torch.Tensor]):
        hiddens = [getattr(self, f"encoder{i}")(x) for i, x in enumerate(feats)]
        weights = self.fc_att(self.attention_mlp(torch.cat(hiddens, dim=1)))  # (B, k), raw
        stacked = torch.stack(hiddens, dim=2)  # (B, hidden, k)
        fused = torch.matmul(stacked, weights.unsqueeze(2)).squeeze(2)  # (B, hidden)
        return fused, self.fc_out_1(fused), weights
