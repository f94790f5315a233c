"""R-MeeTo ("Faster Vision Mamba is Rebuilt in Minutes via Merged Token Re-training", arXiv 2412.12496):
merged-token re-training for Vision Mamba.

:mod:`~compendium.vision_mamba.rmeeto.model` (token merging on the shared Vim port, its FLOPs and loss),
:mod:`~compendium.vision_mamba.rmeeto.train` (re-training the merged tiny Vim with distillation, cached),
:mod:`~compendium.vision_mamba.rmeeto.claims` (claim verdicts),
:mod:`~compendium.vision_mamba.rmeeto.chapter` (the tables, figures, readings and verdict assembly called by
``notebooks/rmeeto/retraining.ipynb``).
"""
