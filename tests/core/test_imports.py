"""The runner's fingerprint follows the real import closure of a notebook's code."""

from __future__ import annotations

from pathlib import Path

from compendium import imports, runner

ROOT = Path(__file__).resolve().parents[2]


def _rel(paths):
    return {str(p.relative_to(imports.PACKAGE)) for p in paths}


def test_code_imports_survive_magics_and_aliases():
    code = 'import sys\nif "google.colab" in sys.modules:\n    %pip install -q x\n' \
           "\n\n# --- cell ---\nfrom compendium import published, verdicts\n" \
           "from compendium.emotion.eibench import experiments as eb\n"
    expected = {"compendium.published", "compendium.verdicts", "compendium.emotion.eibench.experiments"}
    assert expected <= imports.code_imports(code)


def test_closure_follows_imports_of_imports():
    files = _rel(imports.closure({"compendium.emotion.emotion_qwen.forgetting"}))
    # emotion_qwen.forgetting imports the CIFAR loader: a change there must mark its chapter stale
    assert "datasets/cifar.py" in files and "emotion/__init__.py" in files and "__init__.py" in files
    assert not any(f.startswith("graphs/") for f in files)


def test_notebook_files_used_include_its_published_numbers_and_not_other_domains():
    used = _rel(runner._package_files_used(ROOT / "notebooks" / "affectgpt" / "mer_unibench.ipynb"))
    assert "published/affectgpt.yaml" in used and "verdicts.py" in used
    assert not any(f.startswith(("graphs/", "vision_mamba/", "mllm_bench/")) for f in used)
    assert imports.published_keys('published.load("vim")') == {"vim"}
    assert imports.published_keys("published.load(key)") is None
