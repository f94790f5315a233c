"""DyVM (Wu et al., "DyVM: Dynamic Vision Mamba", arXiv 2504.04787): token pruning and dynamic block
(scan-direction) selection on Vision Mamba.

:mod:`~compendium.vision_mamba.dyvm.model` (DyVM on the shared Vim port, its loss),
:mod:`~compendium.vision_mamba.dyvm.train` (fine-tuning the chapter's tiny Vim with DyVM's loss, cached),
:mod:`~compendium.vision_mamba.dyvm.claims` (published-vs-measured cells and claim verdicts),
:mod:`~compendium.vision_mamba.dyvm.chapter` (the tables, figures, readings and verdict assembly called by
``notebooks/dyvm/dyvm.ipynb``).
"""
