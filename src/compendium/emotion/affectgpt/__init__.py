"""AffectGPT (Lian et al., "AffectGPT: A New Dataset, Model, and Benchmark for Emotion Understanding with Multimodal
Large Language Models", arXiv 2501.16566): MER-UniBench (Table 2) and the OV-MER zero-shot table, rescored from the
published per-sample outputs.

Modules: :mod:`.experiments` (AffectGPT's Table 2 row from its released checkpoints' outputs, the checkpoint rules,
the OV-MER residuals and the synonym-map ablation), :mod:`.chapter` (the chapter's tables, figures, generated text
and verdict assembly, called by ``notebooks/affectgpt/mer_unibench.ipynb``). The readers of the MER-UniBench and
OV-MER files and the OV-MER scoring, which other emotion papers use too, are in :mod:`compendium.emotion.unibench`.
"""
