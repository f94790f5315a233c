"""Graph structure learning, re-examined (Zheng et al., arXiv 2411.07672): the framework
(bases → new structure → view fusion), the kNN mutual-information analysis on CSBM-H, and the
experiments behind the chapter ``notebooks/gsl/``.

Modules: :mod:`.adjacency` (sparse operators), :mod:`.construct` (kNN / cosine graphs),
:mod:`.mi` (kNN MI estimator), :mod:`.csbm` (CSBM-H generator), :mod:`.fusion` (backbones and
fusion), :mod:`.train` (training protocol, data preparation), :mod:`.bases` (GSL bases, GRACE),
:mod:`.experiments` (studies, the tuned baseline, comparisons), :mod:`.claims` (the claim rules and
their preconditions under the verdict contract), :mod:`.chapter` (the chapter's tables, figures, generated
text and verdict assembly, called by the notebook).
"""
