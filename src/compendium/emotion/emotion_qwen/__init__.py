"""Emotion-Qwen (Huang et al., "Emotion-Qwen: A Unified Framework for Emotion and Vision Understanding", arXiv
2505.06685): the Hybrid Compressor on transformers' Qwen2.5-VL classes, the published DFEW / MER2024 scoring scripts'
parsers, and a small real experiment of the forgetting claim.

Modules: :mod:`.experiments` (the Hybrid Compressor and its gate, the vision model built around it and the checkpoint
key mapping, the DFEW and MER2024 parsers as written and corrected), :mod:`.forgetting` (the CPU-scale forgetting
experiment with real frozen encoders, its power analysis and the claim rule), :mod:`.chapter` (the chapter's tables,
figure, generated text and verdict assembly, called by ``notebooks/emotion_qwen/emotion_qwen.ipynb``). The readers of
AffectGPT's published answers that the chapter rescores are in :mod:`compendium.emotion.unibench`.
"""
