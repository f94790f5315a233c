"""MPBench (arXiv 2503.12505): multimodal LLMs as process reward models, three paradigms.

- ``metrics``: step correctness (FEI, AEI), answer aggregation (best-of-N, PRM-assisted majority
  vote, min/mean/prod/last aggregators), reasoning process search (F1, MCC), overall, and the
  analytic random baselines with their ambiguities;
- ``chains``: arithmetic reasoning chains generated and checked by program, errors injected at known
  steps, a noisy policy, balanced candidate next steps (the scaled-down benchmark);
- ``judges``: the judge interface and judges (random, constant, oracle, trained tiny BERT scorers,
  prompted causal LMs incl. SmolLM2-135M-Instruct, prompted vision-language models);
- ``bench``: running a judge over the three paradigms, Table-2 rows, bootstraps, random rows,
  online PRM-guided greedy/beam search;
- ``claims``: the paper's claims decided on the substitute judges (calibration: the judges span random
  to the oracle; paired bootstrap intervals), the random row as a reconstruction, the search reading;
- ``data``: the real benchmark's JSON files from a folder or the hub id ``xuzhaopan/MPBench``.
"""

from . import bench, chains, claims, data, judges, metrics  # noqa: F401
