"""GFS/TFI (arXiv 2411.07663): Graph Feature Selection and Topological Feature Informativeness.

:mod:`~compendium.graphs.gfs.model` (the feature split and the two-branch model),
:mod:`~compendium.graphs.gfs.tfi` (TFI and the other selection criteria),
:mod:`~compendium.graphs.gfs.train` (one run and the grid of runs),
:mod:`~compendium.graphs.gfs.experiments` (the chapter's tables and figures),
:mod:`~compendium.graphs.gfs.claims` (published-vs-measured cells and claim verdicts).
"""
