"""The compendium: re-executing ten 2024-2025 papers, table by table.

Subpackages hold the logic the book's notebooks call: ``data`` (one registry and resolver for every
file the book reads), ``published`` (the papers' numbers, with their sources), ``verdicts`` (published
vs reproduced), ``runner`` (papermill execution with provenance, batches through dask), and one
subpackage per domain (``emotion``, ``graphs``, ``vision_mamba``, ...).
"""

__version__ = "0.1.0"
