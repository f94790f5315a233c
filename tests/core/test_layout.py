"""The shape of the project: the paper index agrees with the tree, and imports respect the floors."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from compendium import papers, published

SRC = Path(__file__).resolve().parents[2] / "src" / "compendium"
NOTEBOOKS = SRC.parents[1] / "notebooks"


def test_index_matches_notebooks_and_published_data():
    for p in papers.index():
        assert re.fullmatch(r"\d{4}\.\d{5}", p.arxiv), p
        assert published.load(p.key).arxiv == p.arxiv, p.key
        for nb in p.notebooks:
            assert (NOTEBOOKS / p.key / f"{nb}.ipynb").is_file(), (p.key, nb)
        if p.repository:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", p.repository), p.repository
    chapters = {d.name for d in NOTEBOOKS.iterdir() if d.is_dir() and d.name != "status"}
    assert chapters == set(papers.keys())


def test_readme_table_is_generated_from_the_index():
    readme = (NOTEBOOKS.parent / "README.md").read_text()
    assert papers.markdown_table() in readme, "regenerate the README's table: papers.markdown_table()"
