"""MER2025 (Lian et al., "MER 2025: When Affective Computing Meets Large Language Models", arXiv 2504.19423): the four
tracks' metrics and the official track-1 baseline with its 5-fold protocol.

Modules: :mod:`.model` (the track-1 baseline's encoders and raw-weight attention fusion), :mod:`.experiments` (its
training protocol and random search, the track-1 data sources, MER-FG / MER-DES / MER-PR glue, MER-FG derived from
the OV-MER table and the lexicon MER-DES extractor), :mod:`.chapter` (the chapter's tables, figures, generated text
and verdict assembly, called by ``notebooks/mer2025/mer2025.ipynb``). The OV-MER readers and scoring it shares with
AffectGPT are in :mod:`compendium.emotion.unibench`.
"""
