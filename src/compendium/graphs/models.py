"""The eight GNNs of arXiv 2411.07663 and its MLP, as residual branches built from PyG layers.

The GFS code (``KTTRCDL/graph-feature-selection``, forked from Platonov et al., ICLR 2023) builds
every model the same way, and so do we::

    branch(x) = LayerNorm( Block_L( ... Block_1( GELU(Dropout(Linear(x))) ) ) )
    Block(h)  = h + Module(LayerNorm(h))

with ``L = 2`` GNN blocks (``gnn_layers``) or ``L = 3`` feed-forward blocks for the MLP branch
(``mlp_layers``); hidden width 512 in the paper. The graph has one self loop per node and the
symmetric normalisation ``1/sqrt(d_u d_v)`` with degrees counted with the self loop.

Modules (``Module`` above), after the official ``modules.py``:

============  ==================================================================================  ==========================================
name          module                                                                              reference
============  ==================================================================================  ==========================================
``MLP``       feed-forward: Linear → Dropout → GELU → Linear → Dropout                            —
``GCN``       ``Â h`` then feed-forward                                                           Kipf & Welling, ICLR 2017
``GAT``       PyG ``GATConv`` (8 heads, concat) then feed-forward                                 Veličković et al., ICLR 2018
``SAGE``      PyG ``SAGEConv`` (mean; = Linear on [h, mean_N(h)]) → Dropout → GELU → Linear → Dropout  Hamilton et al., NeurIPS 2017
``GT``        PyG ``TransformerConv`` (8 heads, no root weight) → Linear → Dropout                 Shi et al., IJCAI 2021
``SGC``       ``Â h`` (no parameters)                                                             Wu et al., ICML 2019
``APPNP``     Linear then PyG ``APPNP`` (K = 2, α = 0.1, edge dropout 0.5)                         Gasteiger et al., ICLR 2019
``ACM-GCN``   low-pass ``Â h``, high-pass ``h − Â h`` and identity channels mixed by attention     Luan et al., NeurIPS 2022
``FAGCN``     PyG ``FAConv`` (tanh edge gate, ε = 0)                                              Bo et al., AAAI 2021
============  ==================================================================================  ==========================================

Differences from the DGL originals, all small: PyG's ``GATConv`` orders heads as ``[head, channel]``
and adds a bias after aggregation; ``FAConv``'s gate has no bias; ``APPNP``'s edge dropout is
applied to the normalised edge weights (as DGL's).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch_geometric.nn import APPNP, FAConv, GATConv, SAGEConv, TransformerConv

from .sparse import CSRGraph, csr_graph, dot_attention, gat_attention, spmm

__all__ = [
    "ModelConfig",
    "keep_mask",
    "Dropout",
    "GraphContext",
    "make_context",
    "GNN_NAMES",
    "MODEL_NAMES",
    "CITATIONS",
    "Branch",
    "propagate",
]

GNN_NAMES = ("GCN", "GAT", "SAGE", "GT", "SGC", "APPNP", "ACM-GCN", "FAGCN")
MODEL_NAMES = GNN_NAMES + ("MLP",)

CITATIONS = {
    "GCN": "Kipf & Welling, Semi-Supervised Classification with Graph Convolutional Networks, ICLR 2017 (arXiv 1609.02907)",
    "GAT": "Veličković et al., Graph Attention Networks, ICLR 2018 (arXiv 1710.10903)",
    "SAGE": "Hamilton, Ying & Leskovec, Inductive Representation Learning on Large Graphs, NeurIPS 2017 (arXiv 1706.02216)",
    "GT": "Shi et al., Masked Label Prediction: Unified Message Passing Model for Semi-Supervised Classification, IJCAI 2021 (arXiv 2009.03509)",
    "SGC": "Wu et al., Simplifying Graph Convolutional Networks, ICML 2019 (arXiv 1902.07153)",
    "APPNP": "Gasteiger, Bojchevski & Günnemann, Predict then Propagate, ICLR 2019 (arXiv 1810.05997)",
    "ACM-GCN": "Luan et al., Revisiting Heterophily for Graph Neural Networks, NeurIPS 2022 (arXiv 2210.07606)",
    "FAGCN": "Bo et al., Beyond Low-frequency Information in Graph Convolutional Networks, AAAI 2021 (arXiv 2101.00797)",
    "MLP": "residual MLP of Platonov et al., A critical look at the evaluation of GNNs under heterophily, ICLR 2023 (arXiv 2302.11640)",
}


@dataclass
class ModelConfig:
    """Architecture hyper-parameters; defaults are the paper's (``train.py`` of the official code)."""

    hidden: int = 512  # width of both branches
    gnn_layers: int = 2  # residual GNN blocks in the GNN branch
    mlp_layers: int = 3  # residual feed-forward blocks in the MLP branch
    dropout: float = 0.2
    heads: int = 8  # GAT / GT heads
    hidden_multiplier: int = 1  # feed-forward inner width = hidden * multiplier
    appnp_k: int = 2
    appnp_alpha: float = 0.1
    appnp_edge_drop: float = 0.5


@dataclass
class GraphContext:
    """The graph as the blocks use it: self-looped symmetric edges in CSR order and their weights.

    ``backend='sparse'`` (default) runs every layer as CSR products (:mod:`compendium.graphs.sparse`);
    ``backend='pyg'`` calls the PyG layers' own ``forward`` on ``edge_index``. Both use the same
    parameters and give the same outputs (tested); the sparse path is 5-15× faster on CPU.
    """

    csr: CSRGraph
    edge_index: torch.Tensor  # [2, E + N] (source, target), CSR order, one self loop per node
    edge_weight: torch.Tensor  # [E + N] 1/sqrt(d_u d_v), degrees counted with the self loop
    mean_weight: torch.Tensor  # [E + N] 1/d_v (mean over the in-neighbourhood incl. self)
    num_nodes: int
    backend: str = "sparse"

    def to(self, device) -> "GraphContext":
        return GraphContext(self.csr.to(device), self.edge_index.to(device), self.edge_weight.to(device),
                            self.mean_weight.to(device), self.num_nodes, self.backend)


def make_context(edge_index: torch.Tensor, num_nodes: int, device: str | torch.device = "cpu",
                 backend: str = "sparse") -> GraphContext:
    """Add one self loop per node to an undirected, loop-free ``edge_index`` and normalise symmetrically."""
    if backend not in ("sparse", "pyg"):
        raise ValueError(backend)
    loops = torch.arange(num_nodes, dtype=torch.long).repeat(2, 1)
    ei = torch.cat([edge_index.long().cpu(), loops], dim=1)
    csr, _ = csr_graph(ei, num_nodes)
    deg = torch.bincount(csr.row, minlength=num_nodes).float()
    dinv = deg.pow(-0.5)
    w = dinv[csr.col] * dinv[csr.row]
    mean_w = 1.0 / deg[csr.row]
    return GraphContext(csr, torch.stack([csr.col, csr.row]), w, mean_w, num_nodes, backend).to(device)


def propagate(g: GraphContext, x: torch.Tensor) -> torch.Tensor:
    """``Â x`` with the self-looped, symmetrically normalised adjacency."""
    return spmm(g.csr, g.edge_weight, x)


# --------------------------------------------------------------------------- modules


#: Resolution of the CPU dropout draw: each mask element is a uniform 16-bit integer
_DROP_LEVELS = 1 << 16


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> tuple[torch.Tensor, float]:
    """A CPU dropout mask and its inverted-dropout scale: each element is kept with probability
    ``1 - round(p * 2**16) / 2**16`` (within 2**-17 of ``1 - p``; the scale is the inverse of that exact
    probability, so the layer stays unbiased).

    The mask elements are 16-bit slices of 64-bit draws: four per call of the generator instead of one per
    element as ``rand_like(x) >= p`` (2.6× faster on one core for a [11,758 × 64] mask, which every
    feed-forward block draws twice per step; measured 2026-12-07)."""
    dropped = round(p * _DROP_LEVELS)
    numel = int(torch.Size(shape).numel())
    if dropped >= _DROP_LEVELS:
        return torch.zeros(shape, dtype=torch.bool), 0.0
    bits = torch.randint(-(1 << 63), (1 << 63) - 1, ((numel + 3) // 4,), dtype=torch.int64)
    keep = bits.view(torch.int16)[:numel].view(shape) >= dropped - _DROP_LEVELS // 2
    return keep, _DROP_LEVELS / (_DROP_LEVELS - dropped)


class Dropout(nn.Module):
    """Inverted dropout. On CPU the mask comes from :func:`keep_mask` (16-bit draws, four per generator
    call: several times faster than ``torch.bernoulli_`` or ``rand_like(x) >= p`` on one core); elsewhere
    it is ``F.dropout``."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, True)
        keep, scale = keep_mask(x.shape, self.p)
        return x * keep * scale


class FeedForward(nn.Module):
    def __init__(self, dim: int, cfg: ModelConfig, in_mult: int = 1):
        super().__init__()
        inner = dim * cfg.hidden_multiplier
        self.lin1 = nn.Linear(dim * in_mult, inner)
        self.lin2 = nn.Linear(inner, dim)
        self.drop = Dropout(cfg.dropout)
        self.act = nn.GELU()

    def forward(self, x, g=None):
        return self.drop(self.lin2(self.act(self.drop(self.lin1(x)))))


class GCNModule(nn.Module):
    def __init__(self, dim, cfg):
        super().__init__()
        self.ff = FeedForward(dim, cfg)

    def forward(self, x, g):
        return self.ff(propagate(g, x))


class SGCModule(nn.Module):
    def __init__(self, dim, cfg):
        super().__init__()

    def forward(self, x, g):
        return propagate(g, x)


class SAGEModule(nn.Module):
    def __init__(self, dim, cfg):
        super().__init__()
        self.conv = SAGEConv(dim, dim * cfg.hidden_multiplier, aggr="mean", root_weight=True)
        self.lin2 = nn.Linear(dim * cfg.hidden_multiplier, dim)
        self.drop = Dropout(cfg.dropout)
        self.act = nn.GELU()

    def forward(self, x, g):
        if g.backend == "pyg":
            h = self.conv(x, g.edge_index)
        else:
            h = self.conv.lin_l(spmm(g.csr, g.mean_weight, x)) + self.conv.lin_r(x)
        return self.drop(self.lin2(self.act(self.drop(h))))


class GATModule(nn.Module):
    def __init__(self, dim, cfg):
        super().__init__()
        if dim % cfg.heads:
            raise ValueError("hidden must be a multiple of heads")
        self.conv = GATConv(dim, dim // cfg.heads, heads=cfg.heads, concat=True, add_self_loops=False)
        self.ff = FeedForward(dim, cfg)

    def forward(self, x, g):
        if g.backend == "pyg":
            return self.ff(self.conv(x, g.edge_index))
        c = self.conv
        heads, ch = c.heads, c.out_channels
        h = c.lin(x)
        hs = h.view(-1, heads, ch)
        a_src = (hs * c.att_src).sum(-1)
        a_dst = (hs * c.att_dst).sum(-1)
        return self.ff(gat_attention(g.csr, h, a_src, a_dst, c.negative_slope) + c.bias)


class GTModule(nn.Module):
    def __init__(self, dim, cfg):
        super().__init__()
        if dim % cfg.heads:
            raise ValueError("hidden must be a multiple of heads")
        self.conv = TransformerConv(dim, dim // cfg.heads, heads=cfg.heads, concat=True, root_weight=False)
        self.conv.lin_skip = None  # unused without the root weight
        self.out = nn.Linear(dim, dim)
        self.drop = Dropout(cfg.dropout)

    def forward(self, x, g):
        if g.backend == "pyg":
            h = self.conv(x, g.edge_index)
        else:
            c = self.conv
            h = dot_attention(g.csr, c.lin_query(x), c.lin_key(x), c.lin_value(x), c.heads, c.out_channels ** -0.5)
        return self.drop(self.out(h))


class APPNPModule(nn.Module):
    def __init__(self, dim, cfg):
        super().__init__()
        self.lin = nn.Linear(dim, dim)
        self.prop = APPNP(K=cfg.appnp_k, alpha=cfg.appnp_alpha, dropout=cfg.appnp_edge_drop,
                          add_self_loops=False, normalize=False)
        self.edge_drop = Dropout(cfg.appnp_edge_drop)

    def forward(self, x, g):
        h0 = self.lin(x)
        if g.backend == "pyg":
            return self.prop(h0, g.edge_index, g.edge_weight)
        h = h0
        for _ in range(self.prop.K):
            w = self.edge_drop(g.edge_weight)
            h = (1 - self.prop.alpha) * spmm(g.csr, w, h) + self.prop.alpha * h0
        return h


class FAGCNModule(nn.Module):
    def __init__(self, dim, cfg):
        super().__init__()
        self.conv = FAConv(dim, eps=0.0, dropout=cfg.dropout, add_self_loops=False, normalize=False)
        self.edge_drop = Dropout(cfg.dropout)

    def forward(self, x, g):
        if g.backend == "pyg":
            return self.conv(x, x, g.edge_index, g.edge_weight)
        c = self.conv
        gate = torch.tanh(c.att_l(x).view(-1).index_select(0, g.csr.col) + c.att_r(x).view(-1).index_select(0, g.csr.row))
        return spmm(g.csr, self.edge_drop(gate) * g.edge_weight, x)


class ACMGCNModule(nn.Module):
    """ACM-GCN channel mixing (Luan et al., NeurIPS 2022), as in the GFS ``modules.py``."""

    def __init__(self, dim, cfg):
        super().__init__()
        d = dim * cfg.hidden_multiplier
        self.w_low, self.w_high, self.w_mlp = (nn.Parameter(torch.empty(dim, d)) for _ in range(3))
        self.a_low, self.a_high, self.a_mlp = (nn.Parameter(torch.empty(d, 1)) for _ in range(3))
        self.a_mix = nn.Parameter(torch.empty(3, 3))
        self.temperature = 3.0
        self.reset_parameters()

    def reset_parameters(self):
        std = 1.0 / self.w_mlp.shape[1] ** 0.5
        for w in (self.w_low, self.w_high, self.w_mlp):
            nn.init.uniform_(w, -std, std)
        for a in (self.a_low, self.a_high, self.a_mlp):
            nn.init.uniform_(a, -1.0, 1.0)  # 1/sqrt(fan-in of a column vector) = 1
        nn.init.uniform_(self.a_mix, -1 / 3 ** 0.5, 1 / 3 ** 0.5)

    def forward(self, x, g):
        low = propagate(g, x)
        high = x - low
        low = torch.relu(low @ self.w_low)
        high = torch.relu(high @ self.w_high)
        ident = torch.relu(x @ self.w_mlp)
        scores = torch.sigmoid(torch.cat([low @ self.a_low, high @ self.a_high, ident @ self.a_mlp], 1))
        att = torch.softmax(scores @ self.a_mix / self.temperature, 1)
        return 3 * (att[:, :1] * low + att[:, 1:2] * high + att[:, 2:] * ident)


MODULES = {
    "MLP": FeedForward,
    "GCN": GCNModule,
    "GAT": GATModule,
    "SAGE": SAGEModule,
    "GT": GTModule,
    "SGC": SGCModule,
    "APPNP": APPNPModule,
    "ACM-GCN": ACMGCNModule,
    "FAGCN": FAGCNModule,
}


class Residual(nn.Module):
    def __init__(self, module: nn.Module, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.module = module

    def forward(self, x, g):
        return x + self.module(self.norm(x), g)


class Branch(nn.Module):
    """``LayerNorm(Blocks(GELU(Dropout(Linear(x)))))`` with ``num_layers`` residual blocks of ``kind``."""

    def __init__(self, kind: str, in_dim: int, cfg: ModelConfig, num_layers: int | None = None):
        super().__init__()
        if kind not in MODULES:
            raise KeyError(f"unknown model {kind!r}; choose from {list(MODULES)}")
        if num_layers is None:
            num_layers = cfg.mlp_layers if kind == "MLP" else cfg.gnn_layers
        self.kind = kind
        self.input = nn.Linear(in_dim, cfg.hidden)
        self.drop = Dropout(cfg.dropout)
        self.act = nn.GELU()
        self.blocks = nn.ModuleList(Residual(MODULES[kind](cfg.hidden, cfg), cfg.hidden) for _ in range(num_layers))
        self.out_norm = nn.LayerNorm(cfg.hidden)

    def forward(self, x: torch.Tensor, g: GraphContext | None) -> torch.Tensor:
        h = self.act(self.drop(self.input(x)))
        for block in self.blocks:
            h = block(h, g)
        return self.out_norm(h)
