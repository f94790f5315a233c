"""Emotion-wheel metrics of AffectGPT (arXiv 2501.16566), OV-MER (arXiv 2410.01495), MER2024 and MER2025.

Modules (a paper's package holds ``experiments``, ``chapter`` and, where it has one, ``model``):

- ``wheel``: the five emotion wheels, the GPT synonym and word-form maps, the label mapping with the official
  alphabetically-first rule, and the official list-string parser.
- ``metrics``: hit rate, binary sentiment F1, EW precision/recall/F, the MER2024 OV metric, MER2025 track 1 and
  track 4 metrics.
- ``unibench``: the readers of the MER-UniBench and OV-MER files (AffectGPT's outputs, the MERBench labels, the OV-MER
  label lists and descriptions) and the OV-MER zero-shot baseline scoring, shared by the papers below.
- ``affectgpt`` (package): scoring AffectGPT's published per-sample outputs against the MERBench labels,
  best-checkpoint selection, and the OV-MER table's residuals.
- ``mer2025`` (package): MER2025 (arXiv 2504.19423) track glue and the official track-1 baseline with its 5-fold
  protocol.
- ``eibench`` (package): EIBench (arXiv 2504.07521) data, human evaluation and the LLM-judge scorer (as written,
  corrected).
- ``emotion_qwen`` (package): Emotion-Qwen's (arXiv 2505.06685) Hybrid Compressor on Qwen2.5-VL classes and the
  DFEW / MER2024 scoring scripts' parsers, and a small real experiment of its forgetting claim.
- ``backbones``: small real pretrained models from PyPI wheels (SmolLM2-135M-Instruct, all-MiniLM-L6-v2,
  MobileNetV2), loaded offline.

Everything is implemented from the metric definitions in ``../shared/research/emotion.md`` (sections 1.3, 1.4, 2.4,
2.5), which describe ``zeroQiaoba/AffectGPT`` @ ``d961cab04ab2903fefb22a641331e1242949b15d`` and
``zeroQiaoba/MERTools`` @ ``89120b780ab18b28349f0e37dcc12b8cc253cb02``.
"""

from compendium.emotion.wheel import EmotionWheels, string_to_list  # noqa: F401
