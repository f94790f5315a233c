"""Which package files a piece of code really depends on: the import closure inside ``compendium``.

The runner's up-to-date fingerprint hashes these files (a change to ``datasets/cifar.py`` marks
stale exactly the chapters whose imports reach it), and the layout test reads the same import graph to
hold the floors.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["PACKAGE", "module_imports", "module_file", "closure", "code_imports", "published_keys"]

PACKAGE = Path(__file__).resolve().parent
_MAGIC = re.compile(r"^(\s*)[%!].*$", re.MULTILINE)
_PUBLISHED_LOAD = re.compile(r"""published\.load\(\s*["'](\w+)["']""")


def module_file(module: str) -> Path | None:
    """The file of a ``compendium`` module (a package's ``__init__.py``), or None if there is none."""
    parts = module.split(".")
    if parts[0] != "compendium":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    name = ".".join(rel.parts)
    return name.removesuffix(".__init__")


def _imports_in(tree: ast.AST, package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # `from compendium import verdicts` imports the module compendium.verdicts
            found |= {f"{mod}.{a.name}" for a in node.names if module_file(f"{mod}.{a.name}")}
    return {m for m in found if m == "compendium" or m.startswith("compendium.")}


@lru_cache(maxsize=None)
def module_imports(path: Path) -> frozenset[str]:
    """The ``compendium`` modules one package file imports (relative imports resolved)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return frozenset(_imports_in(ast.parse(path.read_text()), package))


def code_imports(code: str) -> set[str]:
    """The ``compendium`` modules a notebook's code imports. IPython magics and shell lines become
    ``pass`` (keeping blocks valid); a cell that still does not parse is read line by line."""
    found: set[str] = set()
    for cell in code.split("\n\n# --- cell ---\n"):
        try:
            found |= _imports_in(ast.parse(_MAGIC.sub(r"\1pass", cell)), "")
        except SyntaxError:
            for line in cell.splitlines():
                try:
                    found |= _imports_in(ast.parse(line.strip()), "")
                except SyntaxError:
                    continue
    return found


def closure(modules: set[str]) -> list[Path]:
    """Every package file reached from ``modules``: each module, the packages above it, and what they import."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        mod = todo.pop()
        parts = mod.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            path = module_file(".".join(parts[:i]))
            if path is None or path in seen:
                continue
            seen.add(path)
            todo.extend(module_imports(path))
    return sorted(seen)


def published_keys(code: str) -> set[str] | None:
    """The papers whose published numbers the code loads (``published.load("vim")``); None when it
    loads one by a computed key (then it may read any of them)."""
    if re.search(r"""published\.load\(\s*(?!["'])""", code):
        return None
    return set(_PUBLISHED_LOAD.findall(code))
