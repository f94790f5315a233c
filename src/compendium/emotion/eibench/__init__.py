"""EIBench (Lin et al., "Why We Feel: Breaking Boundaries in Emotional Reasoning with Multimodal Large Language
Models", arXiv 2504.07521; formerly EmCoBench): the emotion-trigger benchmark and its LLM-judge scoring.

Modules: :mod:`.experiments` (the benchmark's loaders and statistics, the judge scorers as written and corrected,
the human evaluation, the judges' validation, the text-only and VLM answers and the complex-vs-basic claim),
:mod:`.chapter` (the chapter's tables, figures, generated text and verdict assembly, called by
``notebooks/eibench/eibench.ipynb``).
"""
