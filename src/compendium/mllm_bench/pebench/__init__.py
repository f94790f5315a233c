"""PEBench (arXiv 2503.12545v1): machine unlearning in multimodal LLMs, persons x events.

- ``losses``: GA, GD, KL, PO, DPO, NPO, SimNPO, SIU (simplified) and BGD (reconstructed) on any
  transformers VLM batch;
- ``metrics``: name precision, keyword recall (the offline stand-in for GPT-4 G-Eval), ROUGE-L, POPE
  accuracy; efficacy, generality, retain, scope, real and world fact;
- ``scenes``: fictitious persons x event scenes rendered procedurally, a second "real" family, and
  POPE-style object questions (the scaled-down benchmark's data);
- ``model``: the VLM adapter (batches with answer-only labels, greedy answers) and a tiny LLaVA
  (CLIP + Llama from transformers configs) with a word-level tokenizer;
- ``bench``: targets, Finetune / Goal training, the unlearning loop with early stopping and budget
  checkpoints, evaluation of every Table-1/Table-2 column, and the protocol on the real benchmark
  (``run_real``, ``compare_real``: the ``gpu`` profile);
- ``claims``: the paper's claims decided on the scaled-down runs, with the substitute's calibration and
  the intervals over seeds as preconditions;
- ``data``: the real PEBench (``xuzhaopan/PEBench``) from a folder or the hub.
"""

from . import bench, claims, losses, metrics, model, scenes  # noqa: F401
