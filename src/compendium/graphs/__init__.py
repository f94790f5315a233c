"""Graph chapters: GFS/TFI (arXiv 2411.07663) and the GNN harness the graph papers share.

Modules: :mod:`~compendium.graphs.datasets` (offline graphs with their official splits),
:mod:`~compendium.graphs.tfi` (Topological Feature Informativeness and other selection criteria),
:mod:`~compendium.graphs.gfs` (the feature split and the two-branch model),
:mod:`~compendium.graphs.models` (8 GNNs + MLP), :mod:`~compendium.graphs.sparse` (CSR message passing),
:mod:`~compendium.graphs.harness` (training / evaluation), :mod:`~compendium.graphs.experiments`
(tables, claims, figures). ``gsl`` holds the GSL chapter (arXiv 2411.07672).
"""
