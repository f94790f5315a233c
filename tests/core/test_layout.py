"""The shape of the project: the paper index agrees with the tree, and imports respect the floors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compendium import imports, papers, published

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
# Floors, lowest first: a module may import its own floor or lower ones, never a higher floor.
TOP = {"compendium.runner", "compendium.cli"}
DOMAINS = ("graphs", "vision_mamba", "emotion", "mllm_bench")


def _floor(mod: str) -> int:
    if mod in TOP:
        return 4
    if mod in ("compendium.notebook", "compendium.verdict_page", "compendium.bookclean", "compendium.launch"):
        return 3
    if mod in ("compendium.verdicts",):
        return 2
    if any(mod.startswith(f"compendium.{d}") for d in DOMAINS):
        return 1
    return 0  # data, published, paths, papers and the package itself


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_respect_the_floors(path):
    mod = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
    for target in imports.module_imports(path):
        if target == "compendium":
            continue
        up = _floor(target) > _floor(mod) and not (_floor(mod) == 1 and _floor(target) == 2)
        assert not up, f"{mod} imports {target}, a higher floor"
        # A domain never imports another domain.
        here = next((d for d in DOMAINS if mod.startswith(f"compendium.{d}")), None)
        there = next((d for d in DOMAINS if target.startswith(f"compendium.{d}")), None)
        assert not (here and there and here != there), f"{mod} (domain {here}) imports {target} (domain {there})"


# A paper's package (named by its key) is imported only by its own modules and by the floors above the domains;
# what two papers share lives in the domain's shared core. Every paper of the index has its package (issue 14).
PAPER_PACKAGES = ("compendium.graphs.gfs", "compendium.graphs.gsl",
                  "compendium.mllm_bench.pebench", "compendium.mllm_bench.mpbench",
                  "compendium.emotion.affectgpt", "compendium.emotion.mer2025", "compendium.emotion.eibench",
                  "compendium.emotion.emotion_qwen", "compendium.vision_mamba.dyvm", "compendium.vision_mamba.rmeeto")


def test_every_paper_of_the_index_has_its_package():
    assert {p.rpartition(".")[2] for p in PAPER_PACKAGES} == set(papers.keys())


def _paper_of(mod: str) -> str | None:
    return next((p for p in PAPER_PACKAGES if mod == p or mod.startswith(p + ".")), None)


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_paper_packages_do_not_import_each_other_and_the_shared_core_does_not_import_them(path):
    mod = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
    if _floor(mod) > 1:
        return
    for target in imports.module_imports(path):
        there = _paper_of(target)
        assert there is None or there == _paper_of(mod), f"{mod} imports {target} (paper package {there})"
