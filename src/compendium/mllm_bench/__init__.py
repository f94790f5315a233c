"""Benchmarks of multimodal LLMs: PEBench (machine unlearning, arXiv 2503.12545) and MPBench (process
reward models, arXiv 2503.12505).

Neither paper released code. Each subpackage holds (a) the benchmark's machinery as the paper defines
it, able to run the real benchmark from data and checkpoints the user supplies, and (b) a scaled-down
benchmark built from procedures (no downloads) on which every method really runs. What is defined by
the paper and what we reconstructed is said in each function's docstring; the research note is
``../shared/research/mllm_benchmarks.md``.

Subpackages:

- ``mpbench``: the three paradigms (step correctness, answer aggregation, reasoning process search),
  random baselines, online PRM-guided search, judges (trained tiny transformers, prompted causal LMs
  such as SmolLM2-135M-Instruct, prompted vision-language models), arithmetic reasoning chains.
- ``pebench``: the unlearning losses (GA, GD, KL, PO, DPO, NPO, SimNPO, SIU, BGD), the metrics
  (efficacy, generality, retain, scope, real, world fact), procedural persons x event scenes, a tiny
  image-question model built from ``transformers`` classes.
"""
