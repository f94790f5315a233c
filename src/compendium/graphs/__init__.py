"""Graph chapters: GFS/TFI (arXiv 2411.07663, :mod:`~compendium.graphs.gfs`) and GSL (arXiv 2411.07672,
:mod:`~compendium.graphs.gsl`), on a core both share.

Shared core: :mod:`~compendium.graphs.datasets` (offline graphs with their official splits),
:mod:`~compendium.graphs.models` (8 GNNs + MLP), :mod:`~compendium.graphs.sparse` (CSR message passing),
:mod:`~compendium.graphs.harness` (recipe, best-validation selection with early stopping, ROC-AUC, mean ± std),
:mod:`~compendium.graphs.preconditions` (the claim preconditions both chapters check).
"""
