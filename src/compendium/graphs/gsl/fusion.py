"""GNN backbones and view fusion (step 3 of the GSL framework of arXiv 2411.07672), batched over
independent copies of a problem.

**Batching.** A run trains the same architecture on ``S`` independent problems over the same
``N`` nodes: the 10 splits of a dataset, or the seeds of a synthetic study. Every copy has its own
weights (a weight tensor ``[S, d_in, d_out]``), its own dropout masks and its own loss term, and
Adam's update is element-wise, so the copies do not interact: this is ``S`` separate trainings run
in one set of tensor operations (on a small graph the per-operation overhead, not arithmetic, is
the cost). Inputs may be shared by all copies (``[N, d]`` or sparse) or per copy (``[S, N, d]``);
graphs likewise (:class:`GraphSet`).

**Backbones** — the small two-layer GNNs the paper takes from OpenGSL's defaults (research note
§2.2: "layer count follows OpenGSL defaults"; OpenGSL's GCN: 2 layers, hidden 64):

========  ===================================================================  ============================
``GCN``   ``Â (h W)``, ``Â = D^-1/2 (A + I) D^-1/2``                             Kipf & Welling, ICLR 2017
``SAGE``  ``h W_self + mean_{N(v)}(h) W_nb``                                     Hamilton et al., NeurIPS 2017
``MLP``   ``h W`` (the graph is ignored)                                         —
========  ===================================================================  ============================

with ReLU and dropout between layers (no dropout on the input: the inputs range from 2-d CSBM-H
features, where dropping half the input cripples an MLP, to sparse bag-of-words).

**Fusion** of the original view ``A`` with the constructed view ``A'`` (our reading of the
paper's "early/late fusion, shared/separate parameters"):

``single``  one view (the original graph, or the new graph alone);
``early``   every layer sees both views, ``h ← mean_v conv_v(h, view_v)``: with ``shared``
            parameters ``conv_v`` is one module (for GCN: one convolution over ``(Â + Â')/2``),
            with separate parameters each view has its own;
``late``    one full stack per view, logits averaged (``shared``: the same stack on both views).
"""

from __future__ import annotations

import math
from functools import cached_property

import torch
from torch import nn

from .adjacency import Adjacency, SparseFeatures, adjacency, undirected

__all__ = ["GraphSet", "BACKBONES", "FUSIONS", "BLinear", "Conv", "GSLNet", "dropout"]

BACKBONES = ("GCN", "SAGE", "MLP")
FUSIONS = ("single", "early", "late")


class GraphSet:
    """One graph per copy: either a single graph shared by all copies, or ``S`` graphs (one per
    copy, e.g. a graph built from a per-split basis), applied as one block-diagonal operator."""

    def __init__(self, edge_index: torch.Tensor | list[torch.Tensor], num_nodes: int, name: str = ""):
        self.num_nodes = num_nodes
        self.name = name
        if isinstance(edge_index, (list, tuple)):
            self.shared = False
            self.edge_indices = [undirected(e, num_nodes) for e in edge_index]
        else:
            self.shared = True
            self.edge_indices = [undirected(edge_index, num_nodes)]

    @property
    def edge_index(self) -> torch.Tensor:
        """The (first) graph's undirected edge list."""
        return self.edge_indices[0]

    def _block(self) -> torch.Tensor:
        n = self.num_nodes
        return torch.cat([e + i * n for i, e in enumerate(self.edge_indices)], dim=1)

    @cached_property
    def sym(self) -> Adjacency:
        if self.shared:
            return adjacency(self.edge_indices[0], self.num_nodes, "sym", self_loops=True)
        return adjacency(self._block(), self.num_nodes * len(self.edge_indices), "sym", self_loops=True)

    @cached_property
    def mean(self) -> Adjacency:
        if self.shared:
            return adjacency(self.edge_indices[0], self.num_nodes, "mean", self_loops=False)
        return adjacency(self._block(), self.num_nodes * len(self.edge_indices), "mean", self_loops=False)

    def apply(self, op: Adjacency, h: torch.Tensor) -> torch.Tensor:
        """``op`` on every copy of ``h`` (``[S, N, d]``)."""
        s, n, d = h.shape
        if self.shared:
            out = op @ h.transpose(0, 1).reshape(n, s * d)
            return out.reshape(n, s, d).transpose(0, 1)
        if len(self.edge_indices) != s:
            raise ValueError(f"graph set has {len(self.edge_indices)} graphs for {s} copies")
        return (op @ h.reshape(s * n, d)).reshape(s, n, d)

    @property
    def num_edges(self) -> float:
        """Mean number of undirected edges over the graphs."""
        return sum(e.shape[1] for e in self.edge_indices) / (2 * len(self.edge_indices))

    def __repr__(self) -> str:
        kind = "shared" if self.shared else f"{len(self.edge_indices)} graphs"
        return f"GraphSet({self.name or 'graph'}: {self.num_nodes} nodes, {self.num_edges:.0f} edges, {kind})"


def dropout(x, p: float, training: bool):
    """Inverted dropout with the mask drawn as ``rand >= p``, the trick of the GFS harness's
    ``compendium.graphs.models.Dropout`` (``F.dropout``'s Bernoulli draw was 7× slower here on one
    core)."""
    if not training or p == 0.0 or isinstance(x, SparseFeatures):
        return x
    return x * (torch.rand_like(x) >= p) / (1.0 - p)


class BLinear(nn.Module):
    """``S`` independent linear maps with Glorot-uniform weights and zero biases (the initialisation
    of Kipf & Welling's GCN and PyG's ``GCNConv``). Input: shared ``[N, d]`` or
    :class:`SparseFeatures`, or per copy ``[S, N, d]``; output ``[S, N, d_out]``.

    The weight is stored as ``[d_in, S·d_out]`` so that a shared input needs one matrix product
    and no copy of the (possibly large: 1,703 × 10 × 64 for WebKB) weight per step.
    """

    def __init__(self, copies: int, d_in: int, d_out: int, bias: bool = True):
        super().__init__()
        bound = math.sqrt(6.0 / (d_in + d_out))
        self.weight = nn.Parameter(torch.empty(d_in, copies * d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(copies, 1, d_out)) if bias else None
        self.copies, self.d_in, self.d_out = copies, d_in, d_out

    def weight_of(self, s: int) -> torch.Tensor:
        """Copy ``s``'s weight, ``[d_in, d_out]``."""
        return self.weight[:, s * self.d_out:(s + 1) * self.d_out]

    def forward(self, x):
        s, d_out = self.copies, self.d_out
        if isinstance(x, SparseFeatures) or x.dim() == 2:
            out = x.matmul(self.weight) if isinstance(x, SparseFeatures) else x @ self.weight
            out = out.reshape(-1, s, d_out).transpose(0, 1)
        else:
            out = torch.bmm(x, self.weight.reshape(self.d_in, s, d_out).transpose(0, 1))
        return out + self.bias if self.bias is not None else out


class Conv(nn.Module):
    """One layer of a backbone, split into a view-free ``transform`` and a per-view ``propagate``
    so that shared early fusion pays for the transform once."""

    def __init__(self, kind: str, copies: int, d_in: int, d_out: int):
        super().__init__()
        if kind not in BACKBONES:
            raise KeyError(f"unknown backbone {kind!r}; choose from {BACKBONES}")
        self.kind = kind
        if kind in ("GCN", "MLP"):
            self.lin = BLinear(copies, d_in, d_out)
        else:
            self.lin_self = BLinear(copies, d_in, d_out)
            self.lin_nb = BLinear(copies, d_in, d_out, bias=False)

    def transform(self, x):
        if self.kind in ("GCN", "MLP"):
            return self.lin(x)
        return self.lin_self(x), self.lin_nb(x)

    def propagate(self, t, g: GraphSet):
        if self.kind == "MLP":
            return t
        if self.kind == "GCN":
            return g.apply(g.sym, t)
        return t[0] + g.apply(g.mean, t[1])

    def forward(self, x, g: GraphSet):
        return self.propagate(self.transform(x), g)


class GSLNet(nn.Module):
    """A backbone over one view or fused views, ``copies`` independent copies.

    ``forward(x, graphs)`` returns logits ``[S, N, C]`` (``[S, N]`` for one output) and, with
    ``return_hidden``, the first layer's output after ReLU (``[S, N, hidden]``; single/early fusion).
    """

    def __init__(self, backbone: str, copies: int, in_dim: int, hidden: int, out_dim: int, layers: int = 2,
                 dropout: float = 0.5, fusion: str = "single", shared: bool = True, num_views: int = 1):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose from {FUSIONS}")
        if fusion == "single":
            num_views = 1
        self.backbone, self.fusion, self.shared, self.num_views = backbone, fusion, shared, num_views
        self.p = dropout
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        n_stacks = 1 if (shared or fusion == "single") else num_views
        self.stacks = nn.ModuleList(
            nn.ModuleList(Conv(backbone, copies, dims[i], dims[i + 1]) for i in range(layers)) for _ in range(n_stacks))
        self.layers = layers

    def _stack(self, v: int):
        return self.stacks[0 if len(self.stacks) == 1 else v]

    def forward(self, x, graphs: list[GraphSet], return_hidden: bool = False):
        graphs = list(graphs)
        if len(graphs) != self.num_views:
            raise ValueError(f"model expects {self.num_views} view(s), got {len(graphs)}")
        hidden = None
        if self.fusion == "late":
            outs = []
            for v, g in enumerate(graphs):
                h = x
                for i, conv in enumerate(self._stack(v)):
                    h = conv(dropout(h, self.p, self.training and i > 0), g)
                    if i < self.layers - 1:
                        h = torch.relu(h)
                outs.append(h)
            out = torch.stack(outs).mean(0)
        else:
            h = x
            for i in range(self.layers):
                h = dropout(h, self.p, self.training and i > 0)
                if len(self.stacks) == 1:
                    conv = self.stacks[0][i]
                    t = conv.transform(h)
                    outs = [conv.propagate(t, g) for g in graphs]
                else:
                    outs = [self.stacks[v][i](h, g) for v, g in enumerate(graphs)]
                h = outs[0] if len(outs) == 1 else torch.stack(outs).mean(0)
                if i < self.layers - 1:
                    h = torch.relu(h)
                    if i == 0:
                        hidden = h
            out = h
        out = out.squeeze(-1) if out.shape[-1] == 1 else out
        return (out, hidden) if return_hidden else out
