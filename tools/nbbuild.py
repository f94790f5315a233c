"""Tiny helper to write a notebook from a list of (kind, source, tags) cells.

Notebook sources live as .ipynb files; chapter authors may write them with this helper from a
short Python script (``python tools/nbbuild.py`` is not needed at run time).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat as nbf

COLAB_CELL = '''# Colab only: install the compendium package (hidden in the book).
import sys
if "google.colab" in sys.modules:
    %pip install -q "compendium @ git+https://github.com/compendium-book/compendium"'''


def build(path: str | Path, cells: list[tuple]) -> None:
    nb = nbf.v4.new_notebook()
    out = []
    for cell in cells:
        kind, source = cell[0], textwrap.dedent(cell[1]).strip("\n")
        tags = list(cell[2]) if len(cell) > 2 else []
        meta = {"tags": tags} if tags else {}
        if kind == "md":
            out.append(nbf.v4.new_markdown_cell(source, metadata=meta))
        else:
            out.append(nbf.v4.new_code_cell(source, metadata=meta))
    nb.cells = out
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, str(path))
